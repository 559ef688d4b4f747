//! `verify`: a root, an OCI layout, a sysext, confext or disk image, or a whole output
//! directory, against a manifest.json ([`Expected`]), by the shared [`rules`](super::rules).
//!
//! Inside an image the rules are the installer's plus one: an image holds exactly its
//! manifest's entries (in the part it carries: `/usr` and `/opt` for a sysext, `/etc` for a
//! confext, all of it for the OCI image), so anything else in it is `unexpected`, owned
//! directory or not; and a secret found in an image is a finding whatever its mode.

use super::rules::{self, Kind};
use super::view::{MemView, RootView, View};
use super::{AuditError, Expected, Finding, Manifest, Report, gpt, io_err, oci, squashfs};
use crate::manifest::FileRow;
use std::collections::BTreeSet;
use std::path::Path;

/// Which part of the tree an artefact carries.
fn in_scope(scope: &[&str], path: &str) -> bool {
    scope.is_empty()
        || scope
            .iter()
            .any(|r| path == *r || path.strip_prefix(r).is_some_and(|x| x.starts_with('/')))
}

fn parse_mode(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches('0'), 8).unwrap_or(0)
}

/// The rules for one manifest row (the script's `check_entry`).
pub fn check_row(m: &Manifest, row: &FileRow, view: &dyn View) -> Vec<Finding> {
    let path = row.path.as_str();
    let mut out = Vec::new();
    let actual = view.get(path);
    let want = match row.kind.as_str() {
        "dir" => "a directory",
        "symlink" => "a symlink",
        _ => "a regular file",
    };
    let Some(a) = actual else {
        return vec![Finding::new(
            Kind::Missing,
            path,
            format!("missing, expected {want}"),
        )];
    };
    match row.kind.as_str() {
        "dir" | "file" => {
            let expected_kind = row.kind.as_str();
            if a.kind == "symlink" {
                return vec![
                    Finding::new(Kind::Missing, path, format!("a symlink, expected {want}"))
                        .values(expected_kind, "symlink"),
                ];
            }
            if a.kind != expected_kind {
                return vec![
                    Finding::new(Kind::Type, path, format!("a {}, expected {want}", a.kind))
                        .values(expected_kind, a.kind),
                ];
            }
            if row.kind == "dir" && rules::owned(&m.owns, path).is_none() {
                return out;
            }
        }
        _ => {
            if a.kind != "symlink" {
                return vec![
                    Finding::new(
                        Kind::Type,
                        path,
                        format!("a {}, expected a symlink", a.kind),
                    )
                    .values("symlink", a.kind),
                ];
            }
            let target = row.target.clone().unwrap_or_default();
            let got = a.target.clone().unwrap_or_default();
            if got != target {
                out.push(
                    Finding::new(
                        Kind::Target,
                        path,
                        format!("links to {got}, expected {target}"),
                    )
                    .values(target, got),
                );
            }
            return out;
        }
    }
    let mode = parse_mode(&row.mode);
    if a.mode != mode {
        out.push(
            Finding::new(
                Kind::Mode,
                path,
                format!("mode {:04o}, expected {}", a.mode, row.mode),
            )
            .values(row.mode.clone(), format!("{:04o}", a.mode)),
        );
    }
    if (a.uid, a.gid) != (row.uid, row.gid) {
        out.push(
            Finding::new(
                Kind::Owner,
                path,
                format!(
                    "owner {}:{}, expected {}:{}",
                    a.uid, a.gid, row.uid, row.gid
                ),
            )
            .values(
                format!("{}:{}", row.uid, row.gid),
                format!("{}:{}", a.uid, a.gid),
            ),
        );
    }
    if row.kind == "file" {
        let size = row.size.unwrap_or(0);
        if a.size != size {
            out.push(
                Finding::new(
                    Kind::Changed,
                    path,
                    format!("size {}, expected {size}", a.size),
                )
                .values(size.to_string(), a.size.to_string()),
            );
        }
        let sha = row.sha256.clone().unwrap_or_default();
        match view.sha256(path) {
            Ok(got) if got == sha => {}
            Ok(got) => out.push(
                Finding::new(Kind::Changed, path, format!("sha256 {got}, expected {sha}"))
                    .values(sha, got),
            ),
            Err(why) => out.push(Finding::new(
                Kind::Changed,
                path,
                format!("content unreadable: {why}"),
            )),
        }
    }
    out
}

/// Every rule over `view`: the rows in `scope` (empty: all), the owned directories, the
/// units' drop-ins and overrides, the secrets; with `image`, also anything the manifest lacks
/// anywhere, and any secret at all. Returns the findings and how many rows were checked.
pub fn check_view(
    m: &Manifest,
    view: &dyn View,
    scope: &[&str],
    image: bool,
) -> (Vec<Finding>, usize) {
    let mut out = Vec::new();
    let mut checked = 0;
    let known: BTreeSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    for row in m.files.iter().filter(|r| in_scope(scope, &r.path)) {
        checked += 1;
        out.extend(check_row(m, row, view));
    }
    // Unexpected entries.
    let mut reported = BTreeSet::new();
    for o in m.owns.iter().filter(|o| in_scope(scope, o)) {
        if view.get(o).is_none_or(|a| a.kind != "dir") {
            continue;
        }
        for p in view.below(o) {
            if !known.contains(p.as_str()) && reported.insert(p.clone()) {
                out.push(Finding::new(
                    Kind::Unexpected,
                    &p,
                    format!("not in the image, in a directory it owns ({o})"),
                ));
            }
        }
    }
    let secrets: BTreeSet<&str> = m.secrets.iter().map(|s| s.path.as_str()).collect();
    if image && let Some(all) = view.all() {
        for p in all {
            if p != "/"
                && !known.contains(p.as_str())
                && !secrets.contains(p.as_str())
                && reported.insert(p.clone())
            {
                out.push(Finding::new(
                    Kind::Unexpected,
                    &p,
                    "not in the image's manifest",
                ));
            }
        }
    }
    // Drop-ins and overrides of the units the image ships.
    let shipped = rules::shipped_units(m.files.iter().map(|f| (f.path.as_str(), f.kind == "file")));
    for u in &shipped {
        for d in rules::UNIT_DIRS {
            for p in view.below(&format!("{d}/{u}.d")) {
                out.push(Finding::new(Kind::DropIn, &p, format!("changes {u}")));
            }
            let unit = format!("{d}/{u}");
            if d != rules::UNIT_DIRS[3]
                && let Some(a) = view.get(&unit)
                && a.target.as_deref() != Some("/dev/null")
            {
                out.push(Finding::new(
                    Kind::Override,
                    &unit,
                    format!("replaces the image's {u}"),
                ));
            }
        }
    }
    // Secrets: owner, mode and type; never the content.
    for s in &m.secrets {
        let Some(a) = view.get(&s.path) else {
            continue;
        };
        if image {
            out.push(Finding::new(
                Kind::Secret,
                &s.path,
                "present in an image: secrets are delivered apart, never built in",
            ));
            continue;
        }
        if a.kind != "file" {
            out.push(Finding::new(
                Kind::Secret,
                &s.path,
                format!("a {}, expected a regular file", a.kind),
            ));
            continue;
        }
        if let (Some(uid), Some(gid)) = (
            view.id_of("passwd", &s.owner),
            view.id_of("group", &s.group),
        ) && (a.uid, a.gid) != (uid, gid)
        {
            out.push(
                Finding::new(
                    Kind::Secret,
                    &s.path,
                    format!(
                        "owner {}:{}, expected {uid}:{gid} ({}:{})",
                        a.uid, a.gid, s.owner, s.group
                    ),
                )
                .values(format!("{uid}:{gid}"), format!("{}:{}", a.uid, a.gid)),
            );
        }
        if a.mode != parse_mode(&s.mode) {
            out.push(
                Finding::new(
                    Kind::Secret,
                    &s.path,
                    format!("mode {:04o}, expected {}", a.mode, s.mode),
                )
                .values(s.mode.clone(), format!("{:04o}", a.mode)),
            );
        }
    }
    // A root: an installer switch cut short, the units' enablement (the image's own .wants
    // links) and masking.
    if !image && view.get(INSTALLER_JOURNAL).is_some() {
        out.push(Finding::new(
            Kind::Interrupted,
            INSTALLER_JOURNAL,
            "an install or rollback was cut short: run the installer with --recover".to_owned(),
        ));
    }
    if !image {
        for row in m.files.iter().filter(|r| r.kind == "symlink") {
            let Some(rest) = row.path.strip_prefix(rules::SHIPPED_UNITS_DIR) else {
                continue;
            };
            let Some((target, unit)) = rest.split_once(".wants/") else {
                continue;
            };
            if view.get(&row.path).is_none_or(|a| a.kind != "symlink") {
                out.push(Finding::new(
                    Kind::Disabled,
                    unit,
                    format!("not enabled (no {})", row.path),
                ));
            }
            let _ = target;
            for d in &rules::UNIT_DIRS[..2] {
                let p = format!("{d}/{unit}");
                if view.get(&p).and_then(|a| a.target).as_deref() == Some("/dev/null") {
                    out.push(Finding::new(
                        Kind::Disabled,
                        unit,
                        format!("masked ({p} -> /dev/null)"),
                    ));
                }
            }
        }
    }
    (out, checked)
}

/// The installer's switch journal: there only while a switch between generations is under way.
const INSTALLER_JOURNAL: &str = "/var/lib/kubemint/switch";

fn report(m: &Manifest, target: &str) -> Report {
    Report {
        profile: m.profile.clone(),
        release: m.release.name.clone(),
        target: target.to_owned(),
        ..Report::default()
    }
}

/// An installed root (the installer's `--verify`, from outside).
pub fn root(exp: &Expected, dir: &Path) -> Report {
    let m = &exp.manifest;
    let mut r = report(m, &dir.display().to_string());
    let view = RootView {
        root: dir.to_owned(),
    };
    let (findings, checked) = check_view(m, &view, &[], false);
    r.findings = findings;
    r.checked = checked;
    if view.id_of("passwd", "root").is_none() {
        r.notes.push(format!(
            "{} has no /etc/passwd yet: secrets' owners are not checked (their names have no numbers until it boots)",
            dir.display()
        ));
    }
    r
}

/// The part of the tree a squashfs image carries: a confext `/etc`, a sysext `/usr` and `/opt`.
fn squashfs_scope(view: &MemView) -> &'static [&'static str] {
    if view.entries.contains_key("/etc") {
        &["/etc"]
    } else {
        &["/usr", "/opt"]
    }
}

/// A squashfs image at `offset` of `path` (a sysext or confext file, or a partition).
pub fn squashfs_at(
    m: &Manifest,
    path: &Path,
    offset: u64,
    place: &str,
) -> Result<(Vec<Finding>, usize), AuditError> {
    let img = match squashfs::read(path, offset) {
        Ok(img) => img,
        Err(e @ squashfs::ReadError::Format { .. }) => {
            return Ok((
                vec![Finding::new(
                    Kind::Changed,
                    place,
                    format!("unreadable: {e}"),
                )],
                1,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let view = MemView::from_squashfs(&img);
    let (findings, checked) = check_view(m, &view, squashfs_scope(&view), true);
    Ok((
        findings.into_iter().map(|f| f.within(place)).collect(),
        checked,
    ))
}

/// A sysext, confext, DDI or bootable disk.
pub fn disk(exp: &Expected, path: &Path, shown: &str) -> Result<Report, AuditError> {
    let m = &exp.manifest;
    let mut r = report(m, shown);
    let (findings, checked, notes) = disk_findings(m, path, shown)?;
    r.findings = findings;
    r.checked = checked;
    r.notes = notes;
    Ok(r)
}

fn disk_findings(
    m: &Manifest,
    path: &Path,
    shown: &str,
) -> Result<(Vec<Finding>, usize, Vec<String>), AuditError> {
    let mut notes = Vec::new();
    let Some(table) = gpt::read(path).map_err(io_err(path))? else {
        let (f, c) = squashfs_at(m, path, 0, shown)?;
        return Ok((f, c, notes));
    };
    let mut findings = Vec::new();
    let mut checked = 0;
    for p in &table.partitions {
        let place = format!("{shown} partition {} ({})", p.index, p.label);
        match p.type_guid.as_str() {
            gpt::ROOT_X86_64 => {
                let (f, c) = squashfs_at(m, path, p.offset(), &place)?;
                findings.extend(f);
                checked += c;
            }
            gpt::USR_X86_64 => notes.push(format!(
                "{place}: the base's /usr, not the profile's: skipped"
            )),
            gpt::ESP => {
                let (f, c, n) = esp_findings(m, path, p.offset(), &place)?;
                findings.extend(f);
                checked += c;
                notes.extend(n);
            }
            other => notes.push(format!("{place}: type {other} not checked")),
        }
    }
    Ok((findings, checked, notes))
}

/// The ESP of a bootable disk: the sysext and confext it carries (`kubemint/extensions/`,
/// `kubemint/confexts/`), each the very bytes of an output the manifest lists, and each
/// verified inside. The boot loader and kernel come from the base: not checked here.
fn esp_findings(
    m: &Manifest,
    path: &Path,
    offset: u64,
    place: &str,
) -> Result<(Vec<Finding>, usize, Vec<String>), AuditError> {
    let unreadable = |e: std::io::Error| AuditError::Unreadable {
        path: path.to_owned(),
        why: format!("{place}: {e}"),
    };
    let fat = super::fat::Fat::open(path, offset).map_err(unreadable)?;
    let nodes = fat.walk().map_err(unreadable)?;
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut checked = 0;
    for (kind, dir) in [
        ("sysext", "kubemint/extensions/"),
        ("confext", "kubemint/confexts/"),
    ] {
        let rows: Vec<&crate::manifest::Output> =
            m.outputs.iter().filter(|o| o.kind == kind).collect();
        let found: Vec<&super::fat::Node> = nodes
            .iter()
            .filter(|n| !n.dir && n.path.starts_with(dir) && n.path.ends_with(".raw"))
            .collect();
        if found.is_empty() {
            findings.push(
                Finding::new(Kind::Missing, dir, format!("no {kind} in the ESP")).within(place),
            );
        }
        for n in found {
            checked += 1;
            let inner = format!("{place} {}", n.path);
            let Some(at) = fat.contiguous(n).map_err(unreadable)? else {
                notes.push(format!(
                    "{inner}: its clusters are not contiguous: not read"
                ));
                continue;
            };
            let sha = range_sha256(path, at, n.size)?;
            if !rows.iter().any(|o| o.sha256 == sha && o.size == n.size) {
                let want = rows.first().map(|o| o.sha256.clone()).unwrap_or_default();
                findings.push(
                    Finding::new(
                        Kind::Changed,
                        &n.path,
                        format!("sha256 {sha}, not the build's {kind} ({want})"),
                    )
                    .values(want, sha)
                    .within(place),
                );
            }
            let (f, c) = squashfs_at(m, path, at, &inner)?;
            findings.extend(f);
            checked += c;
        }
    }
    Ok((findings, checked, notes))
}

/// The sha256 of `len` bytes of `path` from `offset`.
fn range_sha256(path: &Path, offset: u64, len: u64) -> Result<String, AuditError> {
    use sha2::Digest;
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset + done)
            .map_err(io_err(path))?;
        hash.update(&buf[..n]);
        done += n as u64;
    }
    Ok(hex::encode(hash.finalize()))
}

/// An OCI image layout (`tag` picks a manifest of its index).
pub fn oci_layout(
    exp: &Expected,
    dir: &Path,
    tag: Option<&str>,
    shown: &str,
) -> Result<Report, AuditError> {
    let m = &exp.manifest;
    let mut r = report(m, shown);
    let (findings, checked) = oci_findings(m, dir, tag, shown)?;
    r.findings = findings;
    r.checked = checked;
    Ok(r)
}

fn oci_findings(
    m: &Manifest,
    dir: &Path,
    tag: Option<&str>,
    place: &str,
) -> Result<(Vec<Finding>, usize), AuditError> {
    let read = oci::read_layout(dir, tag)?;
    let mut findings = read.findings.clone();
    let want = |k: &str| m.oci[k].as_str().unwrap_or_default().to_owned();
    if !m.oci.is_null() {
        for (field, got) in [
            ("manifest_digest", &read.manifest_digest),
            ("config_digest", &read.config_digest),
        ] {
            let w = want(field);
            if !got.is_empty() && *got != w {
                findings.push(
                    Finding::new(
                        Kind::Changed,
                        "index.json",
                        format!("{field} {got}, expected {w}"),
                    )
                    .values(w, got.clone()),
                );
            }
        }
    }
    let (f, checked) = check_view(m, &read.view, &[], true);
    findings.extend(f);
    Ok((
        findings.into_iter().map(|f| f.within(place)).collect(),
        checked,
    ))
}

/// How `verify --output` treats signatures.
#[derive(Clone, Copy, Debug)]
pub struct Signatures<'a> {
    /// Check every signature with this key (`--trusted-key`: an armored or binary OpenPGP key,
    /// public or secret); without one, signatures present are a note.
    pub trusted_key: Option<&'a Path>,
    /// A directory (it must exist) for gpgv's keyrings: each check makes one below it and
    /// removes it after.
    pub scratch: &'a Path,
}

/// A build's output directory: every output row's file with its size and sha256, SHA256SUMS,
/// manifest.json itself, each image inside, and its signatures ([`super::signed`]).
///
/// A signed output (`build-image --sign-key`) is compared with an unsigned reference without
/// the key: manifest.json modulo its `signature` rows and its `report` row's digests, the
/// page re-rendered from this manifest.json, SHA256SUMS modulo the lines of the signatures,
/// manifest.json and the page (each line still checked against its file). The signatures'
/// own rows are checked against their files; with a trusted key, each signature is verified.
pub fn output_dir(
    exp: &Expected,
    dir: &Path,
    signatures: Signatures<'_>,
) -> Result<Report, AuditError> {
    use super::signed;
    let m = &exp.manifest;
    let mut r = report(m, &dir.display().to_string());
    let mut findings = Vec::new();
    let mut checked = 0;
    // manifest.json itself: the same bytes, or the same modulo the signatures.
    let here = dir.join("manifest.json");
    checked += 1;
    let mut own: Option<serde_json::Value> = None;
    match std::fs::read(&here) {
        Err(_) => findings.push(Finding::new(Kind::Missing, "manifest.json", "missing")),
        Ok(bytes) => {
            own = serde_json::from_slice(&bytes).ok();
            if bytes != exp.bytes {
                let want: serde_json::Value =
                    serde_json::from_slice(&exp.bytes).unwrap_or_default();
                let drift = match &own {
                    Some(got) => signed::manifest_drift(&want, got),
                    None => vec!["(not JSON)".to_owned()],
                };
                if !drift.is_empty() {
                    let (w, g) = (
                        crate::util::hash::sha256_hex(&exp.bytes),
                        crate::util::hash::sha256_hex(&bytes),
                    );
                    findings.push(
                        Finding::new(
                            Kind::Changed,
                            "manifest.json",
                            format!("sha256 {g}, expected {w} (differs in {})", drift.join(", ")),
                        )
                        .values(w, g),
                    );
                }
            }
        }
    }
    let own_rows = own.as_ref().map(signed::output_rows).unwrap_or_default();
    // Every output row.
    let mut present = BTreeSet::new();
    let mut absent = BTreeSet::new();
    for o in &m.outputs {
        checked += 1;
        let path = dir.join(&o.path);
        present.insert(o.path.clone());
        if !path.exists() {
            absent.insert(o.path.clone());
            findings.push(Finding::new(
                Kind::Missing,
                &o.path,
                format!("the {} is missing", o.kind),
            ));
            continue;
        }
        // A signature's bytes depend on the key: checked against this output's own row below.
        if o.kind == "signature" {
            continue;
        }
        let (size, sha) = if o.kind == "oci-layout" {
            crate::pack::oci::layout_identity(&path).map_err(io_err(&path))?
        } else {
            let (sha, size) = crate::util::hash::sha256_file(&path).map_err(io_err(&path))?;
            (size, sha)
        };
        // The page shows every output row, signatures too: a signed output's page is the one
        // its own manifest.json renders (which is the reference's, modulo the signatures).
        if (size, &sha) != (o.size, &o.sha256)
            && !(o.kind == "report"
                && own
                    .as_ref()
                    .is_some_and(|v| signed::page_of(v).is_some_and(|p| p.sha256 == sha)))
        {
            findings.push(
                Finding::new(
                    Kind::Changed,
                    &o.path,
                    format!(
                        "{}: size {size} sha256 {sha}, expected size {} sha256 {}",
                        o.kind, o.size, o.sha256
                    ),
                )
                .values(o.sha256.clone(), sha),
            );
        }
        // Inside each image.
        match o.kind.as_str() {
            "oci-layout" => {
                let (f, c) = oci_findings(m, &path, None, &o.path)?;
                findings.extend(f);
                checked += c;
            }
            "sysext" | "confext" | "disk" | "bootable" => {
                let (f, c, notes) = disk_findings(m, &path, &o.path)?;
                findings.extend(f);
                checked += c;
                r.notes.extend(notes);
            }
            _ => {}
        }
    }
    // This output's own signature and page rows: their files are what its manifest.json says.
    for o in own_rows
        .iter()
        .filter(|o| matches!(o.kind.as_str(), "signature" | "report"))
    {
        checked += 1;
        let path = dir.join(&o.path);
        present.insert(o.path.clone());
        if !path.exists() {
            if absent.insert(o.path.clone()) {
                findings.push(Finding::new(
                    Kind::Missing,
                    &o.path,
                    format!("the {} is missing (manifest.json lists it)", o.kind),
                ));
            }
            continue;
        }
        let (sha, size) = crate::util::hash::sha256_file(&path).map_err(io_err(&path))?;
        if (size, &sha) != (o.size, &o.sha256) {
            findings.push(
                Finding::new(
                    Kind::Changed,
                    &o.path,
                    format!(
                        "{}: size {size} sha256 {sha}, but manifest.json lists size {} sha256 {}",
                        o.kind, o.size, o.sha256
                    ),
                )
                .values(o.sha256.clone(), sha),
            );
        }
    }
    // SHA256SUMS: every line holds, and (given a reference build) it is the same file, modulo
    // the signatures.
    let sums = dir.join("SHA256SUMS");
    checked += 1;
    match std::fs::read_to_string(&sums) {
        Err(_) => findings.push(Finding::new(Kind::Missing, "SHA256SUMS", "missing")),
        Ok(text) => {
            for (i, line) in text.lines().enumerate() {
                let Some((sha, rel)) = line.split_once("  ") else {
                    findings.push(Finding::new(
                        Kind::Changed,
                        "SHA256SUMS",
                        format!("line {}: not `SHA256  PATH`", i + 1),
                    ));
                    continue;
                };
                let p = dir.join(rel);
                match crate::util::hash::sha256_file(&p) {
                    Ok((got, _)) if got == sha => {}
                    Ok((got, _)) => findings.push(
                        Finding::new(
                            Kind::Changed,
                            rel,
                            format!("SHA256SUMS line {} says {sha}, the file is {got}", i + 1),
                        )
                        .values(sha, got),
                    ),
                    Err(_) => findings.push(Finding::new(
                        Kind::Missing,
                        rel,
                        format!("named by SHA256SUMS line {}, not there", i + 1),
                    )),
                }
            }
            if let Some(reference) = &exp.dir
                && let Ok(want) = std::fs::read_to_string(reference.join("SHA256SUMS"))
                && want != text
            {
                let signatures: BTreeSet<String> = m
                    .outputs
                    .iter()
                    .chain(&own_rows)
                    .filter(|o| o.kind == "signature")
                    .map(|o| o.path.clone())
                    .collect();
                let drift = signed::sums_drift(&want, &text, &signatures);
                if !drift.is_empty() {
                    findings.push(Finding::new(
                        Kind::Changed,
                        "SHA256SUMS",
                        format!("differs from the reference build's: {}", drift.join("; ")),
                    ));
                }
            }
        }
    }
    // Signatures: verified with the trusted key, else a note.
    let is_signed = signed::is_signed(dir, &own_rows);
    let (f, c, notes) = signed::check(dir, &own_rows, signatures.trusted_key, signatures.scratch)?;
    findings.extend(f);
    checked += c;
    r.notes.extend(notes);
    // Anything else in the directory.
    let mut known: BTreeSet<String> = ["manifest.json", "SHA256SUMS", "build-key.json"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if is_signed {
        known.insert(signed::SUMS_SIGNATURE.to_owned());
    }
    known.extend(present.iter().cloned());
    // What SHA256SUMS lists (the reference build's when there is one, else this one's): the
    // files beside the images (an update server's SHA256SUMS) are outputs too.
    let listed = exp
        .dir
        .as_ref()
        .map(|d| d.join("SHA256SUMS"))
        .unwrap_or_else(|| sums.clone());
    if let Ok(text) = std::fs::read_to_string(&listed) {
        known.extend(
            text.lines()
                .filter_map(|l| l.split_once("  ").map(|(_, p)| p.to_owned())),
        );
    }
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let inside = known.iter().any(|k| {
            rel == *k
                || rel
                    .strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with('/'))
                || k.strip_prefix(rel.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        });
        if !inside {
            findings.push(Finding::new(
                Kind::Unexpected,
                &rel,
                "not an output of the build",
            ));
        }
    }
    r.findings = findings;
    r.checked = checked;
    Ok(r)
}
