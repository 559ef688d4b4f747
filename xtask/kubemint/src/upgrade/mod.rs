//! `upgrade-plan`: the path Kubernetes supports from a profile set's release to a target, one
//! minor at a time, as kubeadm's `upgrade plan` names it, taken further. For each hop (the
//! latest patch of the next minor the lock pins): what the set's checks find at that release,
//! the edits that resolve them without a decision (removed flags dropped, renamed ones renamed,
//! removed admission plugins and gates taken out of their lists, required flags added), what is
//! left for a person, and the cluster-level steps no image can take ([`steps`]).
//!
//! Everything is planned through the one front end ([`crate::front::plan_set_in`]) on the
//! edited texts, nothing written; [`write`] puts one hop's profile set into a new directory.

pub mod edit;
pub mod steps;

use crate::front::check::{Finding, Minor, Severity, upgrade as skew};
use crate::front::profile::Files;
use crate::front::{self, FrontError, Request as FrontRequest, Selection};
use crate::inputs::lock::{Lock, LockError};
use crate::plan::Version;
use edit::SetDocs;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use steps::ClusterStep;

/// What to plan.
#[derive(Clone, Debug)]
pub struct Request {
    /// The project: `images/` and `vendor/releases.toml` live here.
    pub root: PathBuf,
    /// The profile set to upgrade.
    pub profiles_dir: PathBuf,
    /// The release to reach, e.g. `v1.33.5`.
    pub to: String,
}

/// The hops from the set's release to the target.
#[derive(Clone, Debug, Serialize)]
pub struct UpgradePlan {
    /// The profile set, project-relative.
    pub profiles: String,
    /// The release the set runs (its oldest master's, in a rolling upgrade).
    pub from: String,
    pub to: String,
    pub hops: Vec<Hop>,
}

/// One minor.
#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    /// The release the masters leave.
    pub from: String,
    /// The release they move to.
    pub to: String,
    /// The lock entry the hop builds from; `None` when the lock pins no release of that minor.
    pub release: Option<String>,
    /// What the set as it stands gets at `to`, before any edit.
    pub findings: Vec<Finding>,
    /// The edits made to the set's files.
    pub edits: Vec<AppliedEdit>,
    /// What the edited set still gets at `to` (errors and warnings): for a person to decide,
    /// each left as a comment in the hop's files.
    pub remaining: Vec<Finding>,
    pub cluster_steps: Vec<ClusterStep>,
    /// The hop's profile set, by file name.
    #[serde(skip)]
    pub files: BTreeMap<String, String>,
}

/// One change to one file of the set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedEdit {
    /// Project-relative.
    pub file: String,
    /// `release`, `remove-flag`, `set-flag`, `rename-flag` or `remove-item`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What the edit does, in words.
    pub change: String,
    /// The finding it resolves.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A default a person should confirm (a comment in the file says so).
    pub decide: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    Front(#[from] FrontError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0:?} is not a Kubernetes 1.x release like v1.33.5")]
    Release(String),
    #[error(
        "{set} runs {from}, newer than {to}: kubemint plans upgrades one minor at a time, not downgrades"
    )]
    Downgrade {
        set: String,
        from: String,
        to: String,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path} exists and is not empty: --write makes a new profile set")]
    NotEmpty { path: PathBuf },
    #[error("{path}: cannot write the hop's profile set: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no hop to write: {set} already runs {to}")]
    NoHop { set: String, to: String },
}

/// The `*.toml` files of a profile set, by path.
fn read_set(dir: &Path) -> Result<BTreeMap<PathBuf, String>, UpgradeError> {
    let read_err = |source| UpgradeError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut texts = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|source| UpgradeError::Read {
                path: path.clone(),
                source,
            })?;
            texts.insert(path, text);
        }
    }
    Ok(texts)
}

/// The release of each minor a hop goes to: the latest patch the lock pins.
fn latest_patches(lock: &Lock) -> BTreeMap<u32, (Version, String)> {
    let mut out: BTreeMap<u32, (Version, String)> = BTreeMap::new();
    for r in &lock.releases {
        let Some(v) = Version::of_release(&r.name) else {
            continue;
        };
        // Only plain releases (v1.N.P): a custom pin is never picked for a hop.
        if v.major != 1 || v.patch.is_none() || r.name.trim_start_matches('v') != v.to_string() {
            continue;
        }
        if out.get(&v.minor).is_none_or(|(o, _)| v > *o) {
            out.insert(v.minor, (v, r.name.clone()));
        }
    }
    out
}

/// Plans the set at `release` from `texts`.
fn check_at(
    req: &Request,
    texts: &BTreeMap<PathBuf, String>,
    release: Option<&str>,
) -> Result<front::Planned, UpgradeError> {
    let front_req = FrontRequest {
        root: req.root.clone(),
        profiles_dir: req.profiles_dir.clone(),
        selection: Selection::All,
        release: release.map(str::to_owned),
        sample: false,
        epoch: None,
    };
    Ok(front::plan_set_in(&front_req, Files::with(texts))?)
}

/// The line a finding is known by in a hop (the same finding of several masters is one).
fn key(f: &Finding) -> (Option<String>, Option<String>, String) {
    (f.component.clone(), f.flag.clone(), f.message.clone())
}

/// Plans the hops from the set's release to `req.to`.
pub fn plan(req: &Request) -> Result<UpgradePlan, UpgradeError> {
    let lock = Lock::load(&req.root.join("vendor"))?;
    let patches = latest_patches(&lock);
    let set = front::relative(&req.root, &req.profiles_dir);
    let to_minor =
        Minor::of_release(&req.to).ok_or_else(|| UpgradeError::Release(req.to.clone()))?;
    let mut texts = read_set(&req.profiles_dir)?;
    let planned = check_at(req, &texts, None)?;
    // The set's release: its oldest master's (a set in a rolling upgrade finishes it first).
    let mut from: Option<(Minor, String)> = None;
    for m in &planned.masters {
        let minor = Minor::of_release(&m.profile.release)
            .ok_or_else(|| UpgradeError::Release(m.profile.release.clone()))?;
        if from.as_ref().is_none_or(|(f, _)| minor < *f) {
            from = Some((minor, m.profile.release.clone()));
        }
    }
    let Some((from_minor, from_release)) = from else {
        return Err(UpgradeError::Release(String::new()));
    };
    if to_minor < from_minor {
        return Err(UpgradeError::Downgrade {
            set,
            from: from_release,
            to: req.to.clone(),
        });
    }
    let steps = steps::table();
    let mut hops = Vec::new();
    let mut leaving = from_release.clone();
    for minor in skew::path(from_minor, to_minor) {
        let (release, pinned) = if minor == to_minor {
            (
                req.to.clone(),
                lock.releases.iter().any(|r| r.name == req.to),
            )
        } else {
            match patches.get(&minor.0) {
                Some((_, name)) => (name.clone(), true),
                None => (format!("v1.{}", minor.0), false),
            }
        };
        let hop = hop(req, &set, &mut texts, &leaving, &release, pinned, steps)?;
        leaving = release;
        hops.push(hop);
    }
    Ok(UpgradePlan {
        profiles: set,
        from: from_release,
        to: req.to.clone(),
        hops,
    })
}

/// One hop: the set in `texts` moved to `release`; `texts` become the hop's set.
fn hop(
    req: &Request,
    set: &str,
    texts: &mut BTreeMap<PathBuf, String>,
    leaving: &str,
    release: &str,
    pinned: bool,
    steps: &steps::Steps,
) -> Result<Hop, UpgradeError> {
    let rel = |p: &Path| front::relative(&req.root, p);
    let from_minor =
        Minor::of_release(leaving).ok_or_else(|| UpgradeError::Release(leaving.to_owned()))?;
    let to_minor =
        Minor::of_release(release).ok_or_else(|| UpgradeError::Release(release.to_owned()))?;
    let mut findings = check_at(req, texts, Some(release))?.report.findings;
    if !pinned {
        findings.push(
            Finding::new(
                Severity::Warning,
                set,
                format!("vendor/releases.toml pins no release of {to_minor}: this hop's images cannot be built until one is"),
            )
            .fix(format!(
                "pin the latest {to_minor} patch: `cargo xtask pin {release}.N --file PATH --url URL`, with the sha512 its CHANGELOG publishes"
            )),
        );
    }
    let mut docs =
        SetDocs::parse(texts).map_err(|(path, message)| UpgradeError::Toml { path, message })?;
    let mut edits = Vec::new();
    let hop_note = format!("upgrade-plan {release}:");
    for (path, old) in docs.set_release(
        release,
        &format!(
            "{hop_note} was {old_placeholder}",
            old_placeholder = leaving
        ),
    ) {
        edits.push(AppliedEdit {
            file: rel(&path),
            action: "release".into(),
            component: None,
            flag: None,
            value: Some(release.to_owned()),
            change: format!("release = \"{release}\" (was {old})"),
            reason: format!("the hop from {from_minor} to {to_minor}"),
            source: Some(skew::SKEW.to_owned()),
            decide: false,
        });
    }
    // Edits until none is left to make (an edit may uncover another: a removed value's flag).
    let mut applied: BTreeSet<crate::front::check::Edit> = BTreeSet::new();
    let mut round = findings.clone();
    let mut remaining = Vec::new();
    for _ in 0..4 {
        let mut any = false;
        for f in round.iter().filter(|f| f.severity <= Severity::Warning) {
            let Some(e) = &f.edit else {
                continue;
            };
            if !applied.insert(e.clone()) {
                continue;
            }
            let decide = matches!(e, crate::front::check::Edit::SetFlag { decide: true, .. });
            let why = format!(
                "{}{}",
                f.flag
                    .as_deref()
                    .map(|fl| format!("--{fl}: "))
                    .unwrap_or_default(),
                f.message
            );
            let note = if decide {
                format!("{hop_note} {e}: {why}. DECIDE: a default kubemint chose; confirm it")
            } else {
                format!("{hop_note} {e}: {why}")
            };
            for path in docs.apply(e, &note) {
                any = true;
                let (action, flag, value) = match e {
                    crate::front::check::Edit::RemoveFlag { flag, .. } => {
                        ("remove-flag", flag.clone(), None)
                    }
                    crate::front::check::Edit::SetFlag { flag, value, .. } => {
                        ("set-flag", flag.clone(), Some(value.clone()))
                    }
                    crate::front::check::Edit::RenameFlag { from, to, .. } => {
                        ("rename-flag", from.clone(), Some(to.clone()))
                    }
                    crate::front::check::Edit::RemoveItem { flag, item, .. } => {
                        ("remove-item", flag.clone(), Some(item.clone()))
                    }
                };
                edits.push(AppliedEdit {
                    file: rel(&path),
                    action: action.into(),
                    component: Some(e.component().to_owned()),
                    flag: Some(flag),
                    value,
                    change: e.to_string(),
                    reason: format!("{}: {why}", f.severity),
                    source: f.source.clone(),
                    decide,
                });
            }
        }
        *texts = docs.texts();
        remaining = check_at(req, texts, None)?
            .report
            .findings
            .into_iter()
            .filter(|f| f.severity <= Severity::Warning)
            .collect();
        if !any
            || !remaining
                .iter()
                .any(|f| f.edit.as_ref().is_some_and(|e| !applied.contains(e)))
        {
            break;
        }
        round = remaining.clone();
    }
    // What is left for a person, once each, next to the flag it is about.
    let mut seen = BTreeSet::new();
    for f in &remaining {
        if !seen.insert(key(f)) {
            continue;
        }
        let fix = f
            .fix
            .as_deref()
            .map(|x| format!("; fix: {x}"))
            .unwrap_or_default();
        let flag = f
            .flag
            .as_deref()
            .map(|x| format!("--{x}: "))
            .unwrap_or_default();
        docs.annotate(
            f.component.as_deref(),
            f.flag.as_deref(),
            &format!(
                "{hop_note} DECIDE ({}): {flag}{}{fix}",
                f.severity, f.message
            ),
        );
    }
    docs.annotate_top(
        &format!(
            "{hop_note} the hop from {leaving} of `cargo xtask upgrade-plan --profiles {set} --to {}`, which lists its cluster steps",
            req.to
        ),
        ": the hop from ",
    );
    *texts = docs.texts();
    let files = texts
        .iter()
        .filter_map(|(p, t)| Some((p.file_name()?.to_string_lossy().into_owned(), t.clone())))
        .collect();
    Ok(Hop {
        from: leaving.to_owned(),
        to: release.to_owned(),
        release: pinned.then(|| release.to_owned()),
        findings,
        edits,
        remaining,
        cluster_steps: steps.of_hop(from_minor, to_minor),
        files,
    })
}

/// Writes hop `index`'s profile set into `dir`, which must not exist or be empty: the files
/// go to a staging directory beside it, renamed into place when all are written.
pub fn write(plan: &UpgradePlan, index: usize, dir: &Path) -> Result<Vec<PathBuf>, UpgradeError> {
    let Some(hop) = plan.hops.get(index) else {
        return Err(UpgradeError::NoHop {
            set: plan.profiles.clone(),
            to: plan.to.clone(),
        });
    };
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| UpgradeError::Write { path, source }
    };
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(write_err(dir))?
            .next()
            .is_none();
        if !empty {
            return Err(UpgradeError::NotEmpty {
                path: dir.to_owned(),
            });
        }
        std::fs::remove_dir(dir).map_err(write_err(dir))?;
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "profiles".into());
    let staging = parent.join(format!(".{name}.upgrade-plan"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(write_err(&staging))?;
    }
    std::fs::create_dir(&staging).map_err(write_err(&staging))?;
    let mut written = Vec::new();
    for (file, text) in &hop.files {
        let path = staging.join(file);
        std::fs::write(&path, text).map_err(write_err(&path))?;
        written.push(dir.join(file));
    }
    std::fs::rename(&staging, dir).map_err(write_err(dir))?;
    Ok(written)
}

impl UpgradePlan {
    /// The plan for people: each hop with its findings (the same finding of several masters
    /// once), edits, what is left to decide and its cluster steps.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let n = self.hops.len();
        let _ = writeln!(
            out,
            "upgrade plan for {}: {} → {}, {n} hop{} (Kubernetes upgrades one minor at a time)",
            self.profiles,
            self.from,
            self.to,
            if n == 1 { "" } else { "s" }
        );
        if n == 0 {
            out.push_str("nothing to do: the set already runs that minor\n");
        }
        for (i, hop) in self.hops.iter().enumerate() {
            let _ = writeln!(out, "\nhop {}/{n}: {} → {}", i + 1, hop.from, hop.to);
            findings_block(&mut out, &format!("at {}", hop.to), &hop.findings);
            if hop.edits.is_empty() {
                out.push_str("  edits: none\n");
            } else {
                out.push_str("  edits:\n");
                let mut seen = BTreeSet::new();
                for e in &hop.edits {
                    if seen.insert((e.file.clone(), e.change.clone())) {
                        let _ = writeln!(out, "    {}: {}", e.file, e.change);
                    }
                }
            }
            if hop.remaining.is_empty() {
                out.push_str("  left for a person: nothing\n");
            } else {
                findings_block(
                    &mut out,
                    "left for a person (DECIDE comments in the hop's files)",
                    &hop.remaining,
                );
            }
            out.push_str("  cluster steps:\n");
            for s in &hop.cluster_steps {
                let u = if s.unverified { "; unverified" } else { "" };
                let _ = writeln!(out, "    {}: {} ({}{u})", s.when, s.step, s.source);
            }
        }
        out
    }
}

/// A finding without its profile: the same one of several masters.
type FindingKey = (Severity, Option<String>, Option<String>, String);

/// `  findings at v1.20.15: 2 errors, 1 warning, 12 notes` and the errors and warnings, each
/// once with the masters it concerns.
fn findings_block(out: &mut String, what: &str, findings: &[Finding]) {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let (e, w, n) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Note),
    );
    let _ = writeln!(
        out,
        "  {what}: {e} error{}, {w} warning{}, {n} note{}",
        plural(e),
        plural(w),
        plural(n)
    );
    let mut grouped: Vec<(FindingKey, Vec<&str>)> = Vec::new();
    for f in findings.iter().filter(|f| f.severity <= Severity::Warning) {
        let k = (
            f.severity,
            f.component.clone(),
            f.flag.clone(),
            f.message.clone(),
        );
        match grouped.iter_mut().find(|(g, _)| *g == k) {
            Some((_, profiles)) => profiles.push(&f.profile),
            None => grouped.push((k, vec![&f.profile])),
        }
    }
    for ((severity, component, flag, message), profiles) in grouped {
        let mut line = format!("    {severity}: {}", profiles.join(", "));
        if let Some(c) = component {
            let _ = write!(line, ": {c}");
        }
        if let Some(f) = flag {
            let _ = write!(line, ": --{f}");
        }
        let _ = writeln!(out, "{line}: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_take_the_latest_patch_of_plain_releases() {
        let mut lock = Lock::default();
        for (name, sha) in [
            ("v1.15.1", "a"),
            ("v1.15.12", "b"),
            ("v1.15.9", "c"),
            ("v1.15.99-custom", "d"),
            ("v1.16.0", "e"),
        ] {
            lock.upsert(crate::inputs::lock::Release {
                name: name.into(),
                file: "f.tar.gz".into(),
                sha512: sha.repeat(128),
                size: None,
                urls: vec![],
                source: Some("s".into()),
            });
        }
        let p = latest_patches(&lock);
        assert_eq!(p[&15].1, "v1.15.12");
        assert_eq!(p[&16].1, "v1.16.0");
        assert_eq!(p.len(), 2);
    }
}
