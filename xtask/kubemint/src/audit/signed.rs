//! Signed output directories (`build-image --sign-key`) in `verify --output`: how one compares
//! with an unsigned reference build without the key, and the signatures' check with
//! `--trusted-key` ([`crate::attest::sign::verify`], gpgv).
//!
//! A signed build differs from the same build unsigned only by: manifest.json's `signature`
//! rows (`provenance.intoto.json.gpg`, `extensions/SHA256SUMS.gpg`, `confexts/SHA256SUMS.gpg`);
//! its page (`report.html` lists every output row) and so the `report` row's size and sha256;
//! SHA256SUMS's lines for the signatures, manifest.json and the page; and `SHA256SUMS.gpg`,
//! which nothing lists. So manifest.json is compared modulo those rows ([`manifest_drift`]),
//! the page against the one the output's own manifest.json renders ([`page_of`]), SHA256SUMS
//! modulo those lines ([`sums_drift`]); everything else is compared as for an unsigned output,
//! and every line of SHA256SUMS and every row of the output's own manifest.json is still
//! checked against its file. No drift hides behind a signature: a changed row of the
//! manifest, a changed page or a changed line is still a finding.
//!
//! Which files are signed: what `build-image --sign-key` signs (SHA256SUMS, the provenance,
//! the extensions' and confexts' SHA256SUMS, when present) and whatever else the manifest's
//! `signature` rows name ([`signed_files`]). With a trusted key each must have a signature
//! that gpgv accepts; a missing or bad one is a `signature` finding, and so is an output with
//! no signatures at all. Without a key, signatures present are a note.

use super::rules::Kind;
use super::{AuditError, Finding};
use crate::attest::sign::{self, SignError};
use crate::manifest::Output;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level SHA256SUMS's signature (no manifest row can name it: it is made last).
pub const SUMS_SIGNATURE: &str = "SHA256SUMS.gpg";

/// What `build-image --sign-key` signs, those of them that exist.
const BUILD_SIGNS: [&str; 4] = [
    "SHA256SUMS",
    crate::attest::PROVENANCE_FILE,
    "extensions/SHA256SUMS",
    "confexts/SHA256SUMS",
];

/// The lines of SHA256SUMS a signature changes besides its own: manifest.json (it lists the
/// signatures) and the page (it shows them).
const RESIGNED: [&str; 2] = ["manifest.json", crate::report::FILE];

/// A manifest.json's `outputs` rows (none when it has none or they are unreadable).
pub fn output_rows(manifest: &Value) -> Vec<Output> {
    serde_json::from_value(manifest["outputs"].clone()).unwrap_or_default()
}

/// A manifest.json modulo signatures: without its `signature` rows, its `report` row without
/// size and sha256 (the row itself stays: a page gone from the manifest is drift).
pub fn unsigned(manifest: &Value) -> Value {
    let mut v = manifest.clone();
    if let Some(rows) = v.get_mut("outputs").and_then(Value::as_array_mut) {
        rows.retain(|r| r["kind"] != "signature");
        for r in rows.iter_mut().filter(|r| r["kind"] == "report") {
            if let Some(o) = r.as_object_mut() {
                o.remove("size");
                o.remove("sha256");
            }
        }
    }
    v
}

/// Where two manifest.json documents differ modulo signatures: the top-level fields, and for
/// `outputs` the rows' paths (`outputs (payload.tar.gz)`). Empty: the same build.
pub fn manifest_drift(want: &Value, got: &Value) -> Vec<String> {
    let (want, got) = (unsigned(want), unsigned(got));
    let (Some(w), Some(g)) = (want.as_object(), got.as_object()) else {
        return if want == got {
            Vec::new()
        } else {
            vec!["(not a JSON object)".to_owned()]
        };
    };
    let keys: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        if w.get(k) == g.get(k) {
            continue;
        }
        if k == "outputs" {
            let rows = |v: &Value| -> BTreeMap<String, Value> {
                v["outputs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| (r["path"].as_str().unwrap_or_default().to_owned(), r.clone()))
                    .collect()
            };
            let (rw, rg) = (rows(&want), rows(&got));
            let paths: BTreeSet<&String> = rw.keys().chain(rg.keys()).collect();
            let changed: Vec<&str> = paths
                .into_iter()
                .filter(|p| rw.get(*p) != rg.get(*p))
                .map(String::as_str)
                .collect();
            if changed.is_empty() {
                out.push("outputs (their order)".to_owned());
            } else {
                out.push(format!("outputs ({})", changed.join(", ")));
            }
        } else {
            out.push(k.clone());
        }
    }
    out
}

/// The page a manifest.json renders, as build-image writes it (from the manifest less its own
/// `report` row), as its output row; None when the manifest cannot be read as a page's.
pub fn page_of(manifest: &Value) -> Option<Output> {
    let mut v = manifest.clone();
    v.get_mut("outputs")?
        .as_array_mut()?
        .retain(|r| r["kind"] != "report");
    let view: crate::report::View = serde_json::from_value(v).ok()?;
    let page = crate::report::render(
        &[crate::report::Master {
            manifest: view,
            manifest_sha256: None,
        }],
        None,
    );
    Some(crate::report::output_row(page.as_bytes()))
}

/// How two SHA256SUMS differ, but for the lines of `signatures` and of manifest.json and the
/// page (each line is checked against its file, and those files otherwise): one entry per path.
pub fn sums_drift(want: &str, got: &str, signatures: &BTreeSet<String>) -> Vec<String> {
    fn lines(text: &str) -> BTreeMap<&str, &str> {
        text.lines()
            .map(|l| match l.split_once("  ") {
                Some((sha, path)) => (path, sha),
                None => (l, ""),
            })
            .collect()
    }
    let (w, g) = (lines(want), lines(got));
    let paths: BTreeSet<&str> = w.keys().chain(g.keys()).copied().collect();
    let mut out = Vec::new();
    for p in paths {
        if signatures.contains(p) || RESIGNED.contains(&p) {
            continue;
        }
        match (w.get(p), g.get(p)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => out.push(format!("{p}: {b}, the reference's {a}")),
            (Some(_), None) => out.push(format!("{p}: no line")),
            (None, _) => out.push(format!("{p}: a line the reference lacks")),
        }
    }
    out
}

/// Whether an output directory is signed: its manifest lists signatures, or SHA256SUMS has one.
pub fn is_signed(dir: &Path, rows: &[Output]) -> bool {
    rows.iter().any(|o| o.kind == "signature") || dir.join(SUMS_SIGNATURE).exists()
}

/// The files of a signed output directory that must carry a signature `<file>.gpg`, in order.
pub fn signed_files(dir: &Path, rows: &[Output]) -> Vec<String> {
    let mut files: BTreeSet<String> = BTreeSet::new();
    files.insert("SHA256SUMS".to_owned());
    files.extend(
        BUILD_SIGNS
            .iter()
            .filter(|f| dir.join(f).is_file())
            .map(|f| (*f).to_owned()),
    );
    files.extend(
        rows.iter()
            .filter(|o| o.kind == "signature")
            .filter_map(|o| o.path.strip_suffix(".gpg"))
            .map(str::to_owned),
    );
    files.into_iter().collect()
}

/// The signatures of the output directory `dir` (whose manifest.json lists `rows`): each
/// verified with `trusted_key` when given (gpgv, a keyring made in a directory below
/// `scratch`), else a note that they were not. Findings, signatures checked, notes.
pub fn check(
    dir: &Path,
    rows: &[Output],
    trusted_key: Option<&Path>,
    scratch: &Path,
) -> Result<(Vec<Finding>, usize, Vec<String>), AuditError> {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    if !is_signed(dir, rows) {
        if let Some(key) = trusted_key {
            findings.push(Finding::new(
                Kind::Signature,
                SUMS_SIGNATURE,
                format!(
                    "not signed (no {SUMS_SIGNATURE}, no signature rows in manifest.json), but --trusted-key {} asks for signatures",
                    key.display()
                ),
            ));
        }
        return Ok((findings, 0, notes));
    }
    let files = signed_files(dir, rows);
    let Some(key) = trusted_key else {
        let sigs: Vec<String> = files.iter().map(|f| format!("{f}.gpg")).collect();
        notes.push(format!(
            "signatures {}: not checked: give --trusted-key FILE (the signer's public key)",
            sigs.join(", ")
        ));
        return Ok((findings, 0, notes));
    };
    let mut checked = 0;
    for (i, f) in files.iter().enumerate() {
        checked += 1;
        let sig_rel = format!("{f}.gpg");
        let sig = dir.join(&sig_rel);
        if !sig.is_file() {
            findings.push(Finding::new(
                Kind::Signature,
                &sig_rel,
                format!("missing: {f} is not signed"),
            ));
            continue;
        }
        if !dir.join(f).is_file() {
            findings.push(Finding::new(
                Kind::Signature,
                &sig_rel,
                format!("{f}, which it signs, is missing"),
            ));
            continue;
        }
        match sign::verify(&dir.join(f), &sig, key, &scratch.join(format!("gpgv-{i}"))) {
            Ok(()) => {}
            Err(SignError::Bad { stderr, .. }) => findings.push(Finding::new(
                Kind::Signature,
                &sig_rel,
                format!(
                    "does not verify {f} with {}: {}",
                    key.display(),
                    if stderr.is_empty() {
                        "gpgv refused it"
                    } else {
                        &stderr
                    }
                ),
            )),
            Err(e) => return Err(e.into()),
        }
    }
    Ok((findings, checked, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(signed: bool, page_sha: &str) -> Value {
        let mut outputs = vec![
            json!({"kind": "payload", "path": "m.tar.gz", "size": 1, "sha256": "aa"}),
            json!({"kind": "provenance", "path": "provenance.intoto.json", "size": 2, "sha256": "bb"}),
        ];
        if signed {
            outputs.push(json!({"kind": "signature", "path": "provenance.intoto.json.gpg", "size": 3, "sha256": "cc"}));
        }
        outputs
            .push(json!({"kind": "report", "path": "report.html", "size": 4, "sha256": page_sha}));
        json!({"profile": "m", "epoch": 1, "outputs": outputs})
    }

    #[test]
    fn a_signed_manifest_matches_its_unsigned_build_and_drift_still_shows() {
        let unsigned = manifest(false, "dd");
        let signed = manifest(true, "ee");
        assert!(manifest_drift(&unsigned, &signed).is_empty());
        assert!(manifest_drift(&signed, &unsigned).is_empty());
        // A changed row, a changed field, a page gone from the manifest: drift.
        let mut changed = signed.clone();
        changed["outputs"][0]["sha256"] = json!("ab");
        assert_eq!(manifest_drift(&unsigned, &changed), ["outputs (m.tar.gz)"]);
        let mut changed = signed.clone();
        changed["epoch"] = json!(2);
        assert_eq!(manifest_drift(&unsigned, &changed), ["epoch"]);
        let mut changed = signed.clone();
        changed["outputs"].as_array_mut().unwrap().pop();
        assert_eq!(
            manifest_drift(&unsigned, &changed),
            ["outputs (report.html)"]
        );
    }

    #[test]
    fn sums_differ_only_where_signatures_reach() {
        let want = "aa  m.tar.gz\n01  manifest.json\n02  report.html\n";
        let got =
            "aa  m.tar.gz\n03  manifest.json\ncc  provenance.intoto.json.gpg\n04  report.html\n";
        let sigs: BTreeSet<String> = ["provenance.intoto.json.gpg".to_owned()].into();
        assert!(sums_drift(want, got, &sigs).is_empty());
        // A signature the manifest does not list, a changed or dropped line: drift.
        assert_eq!(
            sums_drift(want, got, &BTreeSet::new()),
            ["provenance.intoto.json.gpg: a line the reference lacks"]
        );
        let got = "ab  m.tar.gz\n03  manifest.json\n";
        assert_eq!(
            sums_drift(want, got, &sigs),
            ["m.tar.gz: ab, the reference's aa"]
        );
        assert_eq!(sums_drift(want, "", &sigs), ["m.tar.gz: no line"]);
    }

    #[test]
    fn signed_files_are_what_the_build_signs_and_the_rows_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("extensions")).unwrap();
        std::fs::write(dir.path().join("extensions/SHA256SUMS"), "").unwrap();
        std::fs::write(dir.path().join("provenance.intoto.json"), "").unwrap();
        let rows = [Output {
            kind: "signature".into(),
            path: "other.json.gpg".into(),
            size: 0,
            sha256: String::new(),
        }];
        assert!(is_signed(dir.path(), &rows));
        assert!(!is_signed(dir.path(), &[]));
        assert_eq!(
            signed_files(dir.path(), &rows),
            [
                "SHA256SUMS",
                "extensions/SHA256SUMS",
                "other.json",
                "provenance.intoto.json"
            ]
        );
    }

    #[test]
    fn without_a_key_signatures_are_a_note_and_with_one_an_unsigned_output_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("SHA256SUMS"), "").unwrap();
        std::fs::write(dir.path().join(SUMS_SIGNATURE), "").unwrap();
        let (f, c, notes) = check(dir.path(), &[], None, dir.path()).unwrap();
        assert!(f.is_empty() && c == 0);
        assert!(notes[0].contains("SHA256SUMS.gpg: not checked: give --trusted-key"));
        std::fs::remove_file(dir.path().join(SUMS_SIGNATURE)).unwrap();
        let (f, _, _) = check(dir.path(), &[], Some(Path::new("key.asc")), dir.path()).unwrap();
        assert_eq!(f[0].kind, Kind::Signature);
        assert_eq!(f[0].path, SUMS_SIGNATURE);
    }
}
