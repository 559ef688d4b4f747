//! `check`: every flag, config version and known pitfall of a profile set checked against the
//! release it targets, before anything is built.
//!
//! The facts live in data embedded in the binary: [`flags`] (`check/flags.toml`: each flag's
//! release history and value rules) and [`configs`] (`check/configs.toml`: which apiVersion of
//! each configuration file a release reads). [`audit`] validates the rendered audit policy as
//! the apiserver does; [`cross`] holds the checks across flags, files, secrets, networks and
//! masters that catch the seed guide's class of mistakes. Everything works on plans, so a check
//! reads no release tarball and needs neither the store nor the network.

pub mod audit;
pub mod configs;
pub mod cross;
pub mod flags;
mod yaml;

use crate::image::Image;
use crate::lock::{Lock, Release};
use crate::plan::{self, Plan};
use crate::profile::{self, Profile};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A Kubernetes 1.x minor release, as the tables name them ("1.24"); shown as `v1.24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor(pub u32);

impl Minor {
    /// Parses `1.24` (a table's spelling).
    pub fn parse(s: &str) -> Result<Minor, String> {
        s.strip_prefix("1.")
            .and_then(|m| m.parse().ok())
            .map(Minor)
            .ok_or_else(|| format!("{s:?} is not a Kubernetes minor release like \"1.24\""))
    }

    /// The minor of a release name (`v1.14.2`, `1.33.5`, `v1.14.2-custom`), if it is a 1.x.
    pub fn of_release(name: &str) -> Option<Minor> {
        match plan::kubernetes_version(name) {
            Some((1, minor)) => Some(Minor(minor)),
            _ => None,
        }
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Minor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Minor, D::Error> {
        let s = String::deserialize(d)?;
        Minor::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One finding: where (profile, component, flag), what, the fix, and the source of the fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub profile: String,
    pub component: Option<String>,
    /// Without the leading `--`.
    pub flag: Option<String>,
    /// What is wrong: lowercase, no trailing period.
    pub message: String,
    /// The concrete edit that resolves it, e.g. "remove --kubelet-https".
    pub fix: Option<String>,
    /// Where the fact behind the finding comes from (a row of the embedded tables).
    pub source: Option<String>,
}

impl Finding {
    pub fn new(severity: Severity, profile: &str, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            profile: profile.to_owned(),
            component: None,
            flag: None,
            message: message.into(),
            fix: None,
            source: None,
        }
    }

    pub fn component(mut self, component: &str) -> Finding {
        self.component = Some(component.to_owned());
        self
    }

    pub fn flag(mut self, flag: &str) -> Finding {
        self.flag = Some(flag.to_owned());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }

    pub fn source(mut self, source: &str) -> Finding {
        self.source = Some(source.to_owned());
        self
    }
}

impl fmt::Display for Finding {
    /// `error: master-1: kube-apiserver: --kubelet-https: removed in v1.22 …; fix: remove …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.profile)?;
        if let Some(c) = &self.component {
            write!(f, ": {c}")?;
        }
        if let Some(flag) = &self.flag {
            write!(f, ": --{flag}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

/// A profile that was checked, and the release it was checked against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub profile: String,
    pub release: String,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub checked: Vec<Checked>,
    pub findings: Vec<Finding>,
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            checked: &'a [Checked],
            errors: usize,
            warnings: usize,
            findings: &'a [Finding],
        }
        Json {
            checked: &self.checked,
            errors: self.errors(),
            warnings: self.warnings(),
            findings: &self.findings,
        }
        .serialize(s)
    }
}

impl Report {
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// One line per finding, then a summary line saying what was checked against which
    /// release; every line ends with a newline.
    pub fn render(&self) -> String {
        let mut out: String = self.findings.iter().map(|f| format!("{f}\n")).collect();
        if !self.checked.is_empty() {
            let mut by_release: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for c in &self.checked {
                by_release
                    .entry(c.release.as_str())
                    .or_default()
                    .push(c.profile.as_str());
            }
            let what = by_release
                .iter()
                .map(|(release, profiles)| format!("{} against {release}", profiles.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            let (e, w) = (self.errors(), self.warnings());
            out.push_str(&format!(
                "checked {what}: {e} error{}, {w} warning{}\n",
                if e == 1 { "" } else { "s" },
                if w == 1 { "" } else { "s" },
            ));
        }
        out
    }
}

/// What `cargo xtask check` checks.
#[derive(Clone, Debug)]
pub struct Options {
    pub root: PathBuf,
    pub profiles_dir: PathBuf,
    pub profiles: Vec<String>,
    /// Check against this release instead of each profile's own.
    pub release: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no profile given: name one or more (e.g. master-1), or pass --all")]
    NoProfiles,
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Profiles(Vec<profile::ProfileError>),
}

/// Loads and plans the profiles and checks them. A release the lock does not pin is checked
/// all the same, from a stand-in entry: only its name (its version) matters here.
pub fn check(opts: &Options) -> anyhow::Result<Report> {
    if opts.profiles.is_empty() {
        return Err(CheckError::NoProfiles.into());
    }
    let mut profiles = Vec::new();
    let mut problems = Vec::new();
    for name in &opts.profiles {
        match profile::load(&opts.profiles_dir, name) {
            Ok(p) => profiles.push(p),
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(CheckError::Profiles(problems).into());
    }
    let vendor = opts.root.join("vendor");
    let lock = if vendor.join(crate::lock::LOCK_FILE).exists() {
        Lock::load(&vendor)?
    } else {
        Lock::default()
    };
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    let mut plans = Vec::new();
    for profile in profiles {
        let name = opts.release.as_ref().unwrap_or(&profile.release);
        let release = lock
            .releases
            .iter()
            .find(|r| &r.name == name)
            .cloned()
            .unwrap_or_else(|| stand_in(name));
        if !images.contains_key(&profile.image) {
            let image = Image::load(&opts.root.join("images"), &profile.image)?;
            images.insert(profile.image.clone(), image);
        }
        let plan = plan::plan(&profile, &images[&profile.image], &release, false)?;
        plans.push((profile, plan));
    }
    Ok(run(&opts.profiles_dir, &plans))
}

/// A lock entry for a release that is not pinned: checks need only its name.
fn stand_in(name: &str) -> Release {
    Release {
        name: name.to_owned(),
        file: "kubernetes-server-linux-amd64.tar.gz".into(),
        sha512: "0".repeat(128),
        size: None,
        urls: Vec::new(),
        source: None,
    }
}

/// The checks `build-image` runs on its plans before it looks for any input.
pub fn preflight(profiles_dir: &Path, plans: &[(Profile, Plan)]) -> Report {
    run(profiles_dir, plans)
}

/// The profile set a checked profile belongs to: every profile of its directory.
#[derive(Clone, Debug)]
pub struct Set {
    /// The directory, as written in messages.
    pub dir: String,
    /// How many profiles of the set run kube-apiserver.
    pub apiservers: usize,
}

impl Set {
    /// Reads the set in `dir`; profiles that do not load are left out (they are reported
    /// when they are checked themselves).
    pub fn load(dir: &Path) -> Set {
        let names = profile::list(dir).unwrap_or_default();
        let apiservers = names
            .iter()
            .filter_map(|n| profile::load(dir, n).ok())
            .filter(|p| p.components.contains_key("kube-apiserver"))
            .count();
        Set {
            dir: dir.display().to_string(),
            apiservers,
        }
    }
}

/// Every check over plans of one profile set.
pub fn run(profiles_dir: &Path, plans: &[(Profile, Plan)]) -> Report {
    let set = Set::load(profiles_dir);
    run_with(&set, plans)
}

/// [`run`] with the set already known.
pub fn run_with(set: &Set, plans: &[(Profile, Plan)]) -> Report {
    let mut report = Report::default();
    let mut masters = Vec::new();
    for (profile, plan) in plans {
        report.checked.push(Checked {
            profile: profile.name.clone(),
            release: plan.release.name.clone(),
        });
        let Some(minor) =
            Minor::of_release(&plan.release.name).or_else(|| Minor::of_release(&profile.release))
        else {
            report.findings.push(
                Finding::new(
                    Severity::Warning,
                    &profile.name,
                    format!(
                        "cannot tell the Kubernetes 1.x version of release {:?}: flags and configuration versions were not checked",
                        plan.release.name
                    ),
                )
                .fix("name the release like v1.33.5"),
            );
            continue;
        };
        if Minor::of_release(&plan.release.name).is_none() {
            report.findings.push(
                Finding::new(
                    Severity::Warning,
                    &profile.name,
                    format!(
                        "cannot tell the Kubernetes version of release {:?}: checked as {minor}, the version of the profile's release {}",
                        plan.release.name, profile.release
                    ),
                )
                .fix("name the release like v1.33.5"),
            );
        }
        let findings = &mut report.findings;
        for (component, c) in &profile.components {
            flags::check(
                flags::table(),
                &profile.name,
                component,
                &c.flags,
                minor,
                findings,
            );
        }
        let master = cross::Master {
            profile,
            plan,
            minor,
        };
        configs::check(&master, findings);
        cross::check_master(&master, set, findings);
        masters.push(master);
    }
    cross::check_set(&masters, &mut report.findings);
    report
}

/// The value of `--name` of `component` in `profile`, if set.
pub fn flag_value<'a>(profile: &'a Profile, component: &str, name: &str) -> Option<&'a str> {
    profile
        .components
        .get(component)?
        .flags
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minors() {
        assert_eq!(Minor::parse("1.24"), Ok(Minor(24)));
        assert!(Minor::parse("2.0").is_err());
        assert!(Minor::parse("v1.24").is_err());
        assert_eq!(Minor::of_release("v1.14.2"), Some(Minor(14)));
        assert_eq!(Minor::of_release("v1.33.5-custom"), Some(Minor(33)));
        assert_eq!(Minor::of_release("bench-synthetic"), None);
        assert_eq!(Minor(22).to_string(), "v1.22");
    }

    #[test]
    fn renders_one_line_per_finding_and_a_summary() {
        let report = Report {
            checked: vec![
                Checked {
                    profile: "master-1".into(),
                    release: "v1.33.5".into(),
                },
                Checked {
                    profile: "master-2".into(),
                    release: "v1.33.5".into(),
                },
            ],
            findings: vec![
                Finding::new(
                    Severity::Error,
                    "master-1",
                    "removed in v1.22 (deprecated since v1.19)",
                )
                .component("kube-apiserver")
                .flag("kubelet-https")
                .fix("remove --kubelet-https"),
                Finding::new(Severity::Warning, "master-2", "something to look at"),
            ],
        };
        assert_eq!(
            report.render(),
            "error: master-1: kube-apiserver: --kubelet-https: removed in v1.22 (deprecated since v1.19); fix: remove --kubelet-https\n\
             warning: master-2: something to look at\n\
             checked master-1, master-2 against v1.33.5: 1 error, 1 warning\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["errors"], 1);
        assert_eq!(json["warnings"], 1);
        assert_eq!(json["findings"][0]["fix"], "remove --kubelet-https");
        assert_eq!(json["findings"][1]["severity"], "warning");
    }
}
