//! `diff`: how two masters differ, in the order an auditor asks. First the meaning: the
//! release and its digest; per component, the flags added, removed and changed (as the plan, or
//! the manifest's `components`, has them); the audit policy's rules; the units; the secrets each
//! expects. Then the files (added, removed, changed, with sizes and digests, from the
//! manifests). Then what the two share: OCI layers and disk partitions by digest.
//!
//! A side is a manifest and, when it can be had, the plan it was built from (the command line
//! plans a profile, or re-plans an output's profile and says when its files changed since).

use super::Manifest;
use crate::front::plan::Plan;
use crate::manifest::FileRow;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One side of a comparison.
pub struct Side<'a> {
    /// As given on the command line.
    pub label: String,
    pub manifest: &'a Manifest,
    pub plan: Option<&'a Plan>,
}

/// A value on each side (`None`: absent there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed: `release`, `kube-apiserver --advertise-address`, `secret /etc/…`, …
    pub what: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
}

/// A part both sides have, or one only has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Part {
    /// `oci layer release`, `disk partition root-x86-64`, `output payload`, …
    pub what: String,
    pub digest: String,
    /// `shared`, `only a` or `only b`.
    pub on: &'static str,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    pub a: String,
    pub b: String,
    /// Release, flags per component, audit rules, units, secrets.
    pub meaning: Vec<Change>,
    pub files: Vec<FileChange>,
    pub parts: Vec<Part>,
    /// What could not be compared, and why.
    pub notes: Vec<String>,
}

impl Diff {
    /// No difference in meaning, files or parts.
    pub fn is_empty(&self) -> bool {
        self.meaning.is_empty()
            && self.files.is_empty()
            && self.parts.iter().all(|p| p.on == "shared")
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        if self.is_empty() {
            out.push_str(&format!("{} and {}: no differences\n", self.a, self.b));
            return out;
        }
        out.push_str(&format!("--- {}\n+++ {}\n", self.a, self.b));
        out.push_str("meaning:\n");
        if self.meaning.is_empty() {
            out.push_str("  the same\n");
        }
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        for c in &self.meaning {
            match (&c.a, &c.b) {
                (None, Some(b)) => out.push_str(&format!("  + {}: {b}\n", c.what)),
                (Some(a), None) => out.push_str(&format!("  - {}: {a}\n", c.what)),
                _ => out.push_str(&format!(
                    "  ~ {}: {} -> {}\n",
                    c.what,
                    show(&c.a),
                    show(&c.b)
                )),
            }
        }
        out.push_str("files:\n");
        if self.files.is_empty() {
            out.push_str("  the same\n");
        }
        for f in &self.files {
            let mark = match f.change {
                "added" => "+",
                "removed" => "-",
                _ => "~",
            };
            match f.change {
                "changed" => out.push_str(&format!(
                    "  {mark} {}: {} -> {}\n",
                    f.path,
                    show(&f.a),
                    show(&f.b)
                )),
                _ => out.push_str(&format!(
                    "  {mark} {}: {}\n",
                    f.path,
                    show(if f.change == "added" { &f.b } else { &f.a })
                )),
            }
        }
        out.push_str("shared:\n");
        for p in &self.parts {
            out.push_str(&format!("  {} {}: {}\n", p.on, p.what, p.digest));
        }
        let shared = self.parts.iter().filter(|p| p.on == "shared").count();
        out.push_str(&format!(
            "{} meaning change(s), {} file(s) differ, {shared} of {} parts shared\n",
            self.meaning.len(),
            self.files.len(),
            self.parts.len()
        ));
        out
    }
}

/// The flags of each component: component → flag → value, as the plan resolved them (or,
/// without a plan, as the manifest's `components` recorded them).
pub fn flags(
    plan: Option<&Plan>,
    m: &Manifest,
) -> Option<BTreeMap<String, BTreeMap<String, String>>> {
    if let Some(plan) = plan {
        return Some(
            plan.components
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        c.flags
                            .iter()
                            .map(|f| (f.name.clone(), f.value.clone()))
                            .collect(),
                    )
                })
                .collect(),
        );
    }
    let components = m.rest.get("components")?.as_array()?;
    Some(
        components
            .iter()
            .filter_map(|c| {
                let flags = c["flags"]
                    .as_array()?
                    .iter()
                    .filter_map(|f| {
                        Some((
                            f["name"].as_str()?.to_owned(),
                            f["value"].as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                Some((c["name"].as_str()?.to_owned(), flags))
            })
            .collect(),
    )
}

/// The rules of the audit policy files (rendered files named `*audit*.yaml`): each rule line
/// as written, to list the ones added and removed.
fn audit_lines(plan: &Plan) -> BTreeMap<String, Vec<String>> {
    plan.files
        .iter()
        .filter(|f| {
            let name = f.path.rsplit('/').next().unwrap_or("");
            name.contains("audit") && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
        .map(|f| {
            (
                f.path.clone(),
                f.content
                    .lines()
                    .map(str::trim_end)
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .collect()
}

fn describe(f: &FileRow) -> String {
    match f.kind.as_str() {
        "file" => format!(
            "file {} {}:{} {} bytes sha256 {}",
            f.mode,
            f.uid,
            f.gid,
            f.size.unwrap_or(0),
            f.sha256.as_deref().unwrap_or("-")
        ),
        "symlink" => format!("symlink -> {}", f.target.as_deref().unwrap_or("")),
        k => format!("{k} {} {}:{}", f.mode, f.uid, f.gid),
    }
}

fn change(out: &mut Vec<Change>, what: String, a: Option<String>, b: Option<String>) {
    if a != b {
        out.push(Change { what, a, b });
    }
}

fn parts_of(m: &Manifest) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in m.oci["layers"].as_array().into_iter().flatten() {
        out.insert(
            format!("oci layer {}", l["role"].as_str().unwrap_or("?")),
            l["digest"].as_str().unwrap_or_default().to_owned(),
        );
    }
    for (disk, v) in [("disk", &m.disk), ("bootable disk", &m.boot)] {
        for p in v["partitions"].as_array().into_iter().flatten() {
            if let Some(sha) = p["sha256"].as_str() {
                out.insert(
                    format!(
                        "{disk} partition {}",
                        p["label"].as_str().unwrap_or_default()
                    ),
                    format!("sha256:{sha}"),
                );
            }
        }
    }
    for o in &m.outputs {
        out.insert(
            format!("{} {}", o.kind, o.path),
            format!("sha256:{}", o.sha256),
        );
    }
    out
}

/// Compares two sides.
pub fn diff(a: &Side<'_>, b: &Side<'_>) -> Diff {
    let (ma, mb) = (a.manifest, b.manifest);
    let mut d = Diff {
        a: a.label.clone(),
        b: b.label.clone(),
        ..Diff::default()
    };
    // The meaning.
    let m = &mut d.meaning;
    change(
        m,
        "release".into(),
        Some(ma.release.name.clone()),
        Some(mb.release.name.clone()),
    );
    change(
        m,
        "release sha512".into(),
        Some(ma.release.sha512.clone()),
        Some(mb.release.sha512.clone()),
    );
    change(
        m,
        "sample".into(),
        Some(ma.sample.to_string()),
        Some(mb.sample.to_string()),
    );
    let version = |x: &Manifest| {
        x.rest
            .get("version")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    change(m, "version".into(), version(ma), version(mb));
    if let (Some(fa), Some(fb)) = (flags(a.plan, ma), flags(b.plan, mb)) {
        let components: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
        for c in components {
            let empty = BTreeMap::new();
            let (xa, xb) = (fa.get(c).unwrap_or(&empty), fb.get(c).unwrap_or(&empty));
            let names: BTreeSet<&String> = xa.keys().chain(xb.keys()).collect();
            for n in names {
                change(
                    m,
                    format!("{c} --{n}"),
                    xa.get(n).cloned(),
                    xb.get(n).cloned(),
                );
            }
        }
    }
    match (a.plan, b.plan) {
        (Some(pa), Some(pb)) => {
            let (aa, ab) = (audit_lines(pa), audit_lines(pb));
            let files: BTreeSet<&String> = aa.keys().chain(ab.keys()).collect();
            for f in files {
                let none = Vec::new();
                let (la, lb) = (aa.get(f).unwrap_or(&none), ab.get(f).unwrap_or(&none));
                let (sa, sb): (BTreeSet<&String>, BTreeSet<&String>) =
                    (la.iter().collect(), lb.iter().collect());
                for l in sa.difference(&sb) {
                    m.push(Change {
                        what: format!("audit rule in {f}"),
                        a: Some(l.trim().to_owned()),
                        b: None,
                    });
                }
                for l in sb.difference(&sa) {
                    m.push(Change {
                        what: format!("audit rule in {f}"),
                        a: None,
                        b: Some(l.trim().to_owned()),
                    });
                }
            }
            let (ua, ub): (BTreeSet<&String>, BTreeSet<&String>) =
                (pa.units.iter().collect(), pb.units.iter().collect());
            for u in ua.union(&ub) {
                change(
                    m,
                    format!("unit {u}"),
                    ua.contains(u).then(|| "shipped".to_owned()),
                    ub.contains(u).then(|| "shipped".to_owned()),
                );
            }
            change(m, "service user".into(), Some(pa.user.clone()), Some(pb.user.clone()));
        }
        _ => d.notes.push(
            "audit rules and units are compared only with both plans; a side had none (see its note)".into(),
        ),
    }
    let secrets = |m: &Manifest| -> BTreeMap<String, String> {
        m.secrets
            .iter()
            .map(|s| {
                (
                    s.path.clone(),
                    format!(
                        "{}:{} {}{}",
                        s.owner,
                        s.group,
                        s.mode,
                        if s.optional { " optional" } else { "" }
                    ),
                )
            })
            .collect()
    };
    let (sa, sb) = (secrets(ma), secrets(mb));
    for p in sa.keys().chain(sb.keys()).collect::<BTreeSet<_>>() {
        change(
            &mut d.meaning,
            format!("secret {p}"),
            sa.get(p).cloned(),
            sb.get(p).cloned(),
        );
    }
    // The files.
    let fa: BTreeMap<&str, &FileRow> = ma.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let fb: BTreeMap<&str, &FileRow> = mb.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for p in fa.keys().chain(fb.keys()).collect::<BTreeSet<_>>() {
        match (fa.get(p), fb.get(p)) {
            (Some(x), None) => d.files.push(FileChange {
                path: (*p).to_owned(),
                change: "removed",
                a: Some(describe(x)),
                b: None,
            }),
            (None, Some(y)) => d.files.push(FileChange {
                path: (*p).to_owned(),
                change: "added",
                a: None,
                b: Some(describe(y)),
            }),
            (Some(x), Some(y)) if x != y => d.files.push(FileChange {
                path: (*p).to_owned(),
                change: "changed",
                a: Some(describe(x)),
                b: Some(describe(y)),
            }),
            _ => {}
        }
    }
    // What is shared: by digest, whatever the names.
    let (pa, pb) = (parts_of(ma), parts_of(mb));
    let da: BTreeSet<&String> = pa.values().collect();
    let db: BTreeSet<&String> = pb.values().collect();
    for (what, digest) in &pa {
        d.parts.push(Part {
            what: what.clone(),
            digest: digest.clone(),
            on: if db.contains(digest) {
                "shared"
            } else {
                "only a"
            },
        });
    }
    for (what, digest) in &pb {
        if !da.contains(digest) {
            d.parts.push(Part {
                what: what.clone(),
                digest: digest.clone(),
                on: "only b",
            });
        }
    }
    d
}
