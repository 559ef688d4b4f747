//! `check`: every flag, config version and known pitfall of a set of plans checked against the
//! release each targets. The front end runs it on every selection, before any input is looked
//! for; `cargo xtask check` prints what it finds.
//!
//! The facts live in data embedded in the binary: [`flags`] (`flags.toml`: each flag's release
//! history and value rules) and [`api_versions`] (`api_versions.toml`: which apiVersion of each
//! configuration file a release reads). [`configs`] checks the rendered configuration files,
//! [`audit`] validates the audit policy as the apiserver loads it; [`cross`] holds the checks
//! across flags, files, secrets, networks and masters that catch the seed guide's class of
//! mistakes; [`upgrade`] holds one minor at a time (skipped minors, a rolling upgrade across the
//! set, leader-election locks that do not see each other). Everything works on plans, so a check reads no release tarball and needs neither
//! the lock, the store nor the network.

pub mod api_versions;
pub mod audit;
pub mod configs;
pub mod cross;
pub mod flags;
pub mod upgrade;
pub(crate) mod yaml;

use crate::front::plan::{Plan, Version};
use crate::front::profile::Profile;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// How much a finding matters. Errors stop a build; warnings are shown by every build; notes
/// are facts the user cannot act on at this release ("deprecated, but the only way to close
/// port 8080 on v1.14"), shown by `check` and by `build-image --verbose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// Where a release stands in the life of a flag or an apiVersion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Not added yet in this release.
    NotYet {
        added: Minor,
    },
    Current,
    Deprecated {
        deprecated: Minor,
        removed: Option<Minor>,
    },
    Removed {
        removed: Minor,
        deprecated: Option<Minor>,
    },
}

impl Stage {
    /// The stage of something `added`, `deprecated` and `removed` in those releases, at `minor`.
    pub fn of(
        added: Option<Minor>,
        deprecated: Option<Minor>,
        removed: Option<Minor>,
        minor: Minor,
    ) -> Stage {
        match (added, deprecated, removed) {
            (Some(added), _, _) if minor < added => Stage::NotYet { added },
            (_, deprecated, Some(removed)) if minor >= removed => Stage::Removed {
                removed,
                deprecated,
            },
            (_, Some(deprecated), removed) if minor >= deprecated => Stage::Deprecated {
                deprecated,
                removed,
            },
            _ => Stage::Current,
        }
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
        Version::of_release(name).and_then(Minor::of_version)
    }

    /// The minor of a Kubernetes version, if it is a 1.x.
    pub fn of_version(v: Version) -> Option<Minor> {
        (v.major == 1).then_some(Minor(v.minor))
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
    /// The fix as an edit of the profile's flags, when it needs no decision: what
    /// `upgrade-plan` applies. Absent from the JSON when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit: Option<Edit>,
}

/// A mechanical edit of a component's flags: what a finding's fix does to a profile set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Edit {
    /// Drop `--flag`.
    RemoveFlag { component: String, flag: String },
    /// Set `--flag` to `value` (add it when it is missing). `decide`: the value is a default a
    /// person should confirm (the edit leaves a comment saying so).
    SetFlag {
        component: String,
        flag: String,
        value: String,
        decide: bool,
        /// `component:flag` whose value (as written, a template kept a template) `value` is.
        #[serde(skip_serializing_if = "Option::is_none")]
        copy_of: Option<String>,
    },
    /// Rename `--from` to `--to`, keeping its value.
    RenameFlag {
        component: String,
        from: String,
        to: String,
    },
    /// Drop one entry of a comma-separated list (`Gate=true`, an admission plugin); the flag
    /// goes when the list is left empty.
    RemoveItem {
        component: String,
        flag: String,
        item: String,
    },
}

impl Edit {
    /// The component the edit changes.
    pub fn component(&self) -> &str {
        match self {
            Edit::RemoveFlag { component, .. }
            | Edit::SetFlag { component, .. }
            | Edit::RenameFlag { component, .. }
            | Edit::RemoveItem { component, .. } => component,
        }
    }
}

impl fmt::Display for Edit {
    /// `kube-apiserver: remove --kubelet-https`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::RemoveFlag { component, flag } => write!(f, "{component}: remove --{flag}"),
            Edit::SetFlag {
                component,
                flag,
                value,
                decide,
                ..
            } => {
                write!(f, "{component}: set --{flag}={value}")?;
                if *decide {
                    f.write_str(" (a default: confirm it)")?;
                }
                Ok(())
            }
            Edit::RenameFlag {
                component,
                from,
                to,
            } => write!(f, "{component}: rename --{from} to --{to}"),
            Edit::RemoveItem {
                component,
                flag,
                item,
            } => write!(f, "{component}: remove {item} from --{flag}"),
        }
    }
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
            edit: None,
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

    pub fn edit(mut self, edit: Edit) -> Finding {
        self.edit = Some(edit);
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
            notes: usize,
            findings: &'a [Finding],
        }
        Json {
            checked: &self.checked,
            errors: self.errors(),
            warnings: self.warnings(),
            notes: self.notes(),
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

    pub fn notes(&self) -> usize {
        self.count(Severity::Note)
    }

    /// The findings at `severity` or worse.
    pub fn at_least(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity <= severity)
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
            let (e, w, n) = (self.errors(), self.warnings(), self.notes());
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            out.push_str(&format!(
                "checked {what}: {e} error{}, {w} warning{}, {n} note{}\n",
                plural(e),
                plural(w),
                plural(n),
            ));
        }
        out
    }
}

/// The profile set the checked plans belong to: every profile of its directory.
#[derive(Clone, Debug)]
pub struct Set {
    /// The directory, as written in messages.
    pub dir: String,
    /// How many profiles of the set run kube-apiserver.
    pub apiservers: usize,
}

/// One master as checked: its profile, its plan, and the release it is checked against.
pub struct Target<'a> {
    pub profile: &'a Profile,
    pub plan: &'a Plan,
    pub minor: Minor,
}

impl Target<'_> {
    fn flag(&self, component: &str, name: &str) -> Option<&str> {
        flag_value(self.profile, component, name)
    }

    fn finding(&self, severity: Severity, component: &str, flag: &str, message: String) -> Finding {
        Finding::new(severity, &self.profile.name, message)
            .component(component)
            .flag(flag)
    }
}

/// Every check over the plans of one profile set, in the order given.
pub fn run<'a>(set: &Set, plans: impl IntoIterator<Item = (&'a Profile, &'a Plan)>) -> Report {
    let mut report = Report::default();
    let mut targets = Vec::new();
    for (profile, plan) in plans {
        report.checked.push(Checked {
            profile: profile.name.clone(),
            release: plan.release.name.clone(),
        });
        let Some(minor) = Minor::of_version(plan.release.version) else {
            report.findings.push(
                Finding::new(
                    Severity::Warning,
                    &profile.name,
                    format!(
                        "release {:?} is Kubernetes {}, not a 1.x: flags and configuration versions were not checked",
                        plan.release.name, plan.release.version
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
            flags::check_in(
                flags::table(),
                &profile.name,
                component,
                &c.flags,
                Some(&profile.components),
                minor,
                findings,
            );
        }
        let target = Target {
            profile,
            plan,
            minor,
        };
        configs::check(&target, findings);
        cross::check_master(&target, set, findings);
        upgrade::check_master(&target, findings);
        targets.push(target);
    }
    cross::check_set(&targets, &mut report.findings);
    upgrade::check_set(&targets, &mut report.findings);
    report
}

/// Whether `host` is a loopback address (or `localhost`).
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
                Finding::new(Severity::Note, "master-2", "something to know"),
            ],
        };
        assert_eq!(
            report.render(),
            "error: master-1: kube-apiserver: --kubelet-https: removed in v1.22 (deprecated since v1.19); fix: remove --kubelet-https\n\
             warning: master-2: something to look at\n\
             note: master-2: something to know\n\
             checked master-1, master-2 against v1.33.5: 1 error, 1 warning, 1 note\n"
        );
        assert_eq!(report.at_least(Severity::Warning).count(), 2);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["errors"], 1);
        assert_eq!(json["warnings"], 1);
        assert_eq!(json["notes"], 1);
        assert_eq!(json["findings"][0]["fix"], "remove --kubelet-https");
        assert_eq!(json["findings"][1]["severity"], "warning");
    }
}
