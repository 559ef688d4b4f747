//! Which apiVersion of each configuration kind a release reads: the table in
//! `api_versions.toml` (embedded), each row with its source, and the finding for a file
//! written at a version its release does not read, or reads with a deprecation warning.

use super::{Minor, Severity, Stage};
use serde::Deserialize;
use std::sync::OnceLock;

/// The table's text, as shipped in the binary.
pub const TABLE: &str = include_str!("api_versions.toml");

/// One group/version of a configuration kind, and the releases that read it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiVersion {
    pub kind: String,
    pub group: String,
    pub version: String,
    pub from: Minor,
    pub deprecated: Option<Minor>,
    pub removed: Option<Minor>,
    pub source: String,
}

impl ApiVersion {
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    fn read_by(&self, minor: Minor) -> bool {
        self.from <= minor && self.removed.is_none_or(|r| minor < r)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    config: Vec<ApiVersion>,
}

/// Parses and validates the table: sources present, versions in order, no row twice.
pub fn parse(text: &str) -> Result<Vec<ApiVersion>, String> {
    let rows = toml::from_str::<RawTable>(text)
        .map_err(|e| e.to_string())?
        .config;
    let mut problems = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let at = format!("config[{i}] ({} {})", r.kind, r.api_version());
        if r.source.trim().is_empty() {
            problems.push(format!("{at}: no source"));
        }
        for (what, v) in [("deprecated", r.deprecated), ("removed", r.removed)] {
            if let Some(v) = v
                && v <= r.from
            {
                problems.push(format!("{at}: {what} {v} is not after from {}", r.from));
            }
        }
        if rows[..i]
            .iter()
            .any(|o| o.kind == r.kind && o.api_version() == r.api_version())
        {
            problems.push(format!("{at}: listed twice"));
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems.join("\n"))
    }
}

/// The embedded table. It is validated by the tests; a broken one is a bug of this binary.
pub fn table() -> &'static [ApiVersion] {
    static CELL: OnceLock<Vec<ApiVersion>> = OnceLock::new();
    CELL.get_or_init(|| match parse(TABLE) {
        Ok(t) => t,
        Err(e) => panic!("xtask/kubemint/src/front/check/api_versions.toml is invalid:\n{e}"),
    })
}

/// What is wrong with `api_version` for a file of `kind` read by release `minor`, if anything:
/// (severity, message, fix, source).
pub fn check_api_version(
    kind: &str,
    api_version: &str,
    minor: Minor,
) -> Option<(Severity, String, String, String)> {
    let rows: Vec<&ApiVersion> = table().iter().filter(|r| r.kind == kind).collect();
    // The version to write instead: the newest the release reads without a warning.
    let best = rows
        .iter()
        .filter(|r| r.read_by(minor) && r.deprecated.is_none_or(|d| minor < d))
        .max_by_key(|r| r.from)
        .or_else(|| {
            rows.iter()
                .filter(|r| r.read_by(minor))
                .max_by_key(|r| r.from)
        });
    let fix = match best {
        Some(b) => format!("use apiVersion: {}", b.api_version()),
        None => format!("kubemint knows no {kind} version that {minor} reads"),
    };
    let Some(row) = rows.iter().find(|r| r.api_version() == api_version) else {
        let known = rows
            .iter()
            .map(|r| r.api_version())
            .collect::<Vec<_>>()
            .join(", ");
        return Some((
            Severity::Error,
            format!("apiVersion {api_version:?} is not a {kind} version (known: {known})"),
            fix,
            rows.first().map(|r| r.source.clone()).unwrap_or_default(),
        ));
    };
    let (severity, message) = match Stage::of(Some(row.from), row.deprecated, row.removed, minor) {
        Stage::NotYet { added } => (
            Severity::Error,
            format!("apiVersion {api_version} is read from {added}, not by {minor}"),
        ),
        Stage::Removed { removed, .. } => (
            Severity::Error,
            format!("apiVersion {api_version} was removed in {removed}"),
        ),
        Stage::Deprecated {
            deprecated,
            removed,
        } => {
            let until = removed
                .map(|r| format!(", removed in {r}"))
                .unwrap_or_default();
            (
                Severity::Warning,
                format!("apiVersion {api_version} is deprecated since {deprecated}{until}"),
            )
        }
        Stage::Current => return None,
    };
    Some((severity, message, fix, row.source.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_is_valid() {
        let t = parse(TABLE).unwrap();
        assert!(t.iter().any(|r| r.kind == "Policy"));
        assert!(t.iter().any(|r| r.kind == "KubeSchedulerConfiguration"));
        assert!(parse("[[config]]\nkind = \"K\"\ngroup = \"g\"\nversion = \"v1\"\nfrom = \"1.10\"\nremoved = \"1.9\"\nsource = \"\"\n").is_err());
    }

    #[test]
    fn audit_versions() {
        let c = |v: &str, m: u32| check_api_version("Policy", v, Minor(m));
        assert_eq!(c("audit.k8s.io/v1", 14), None);
        assert_eq!(c("audit.k8s.io/v1", 33), None);
        // v1.14 to v1.20 read v1beta1 without a word; v1.21 warns (kubernetes#98858).
        assert_eq!(c("audit.k8s.io/v1beta1", 14), None);
        assert_eq!(c("audit.k8s.io/v1beta1", 20), None);
        let (s, msg, fix, _) = c("audit.k8s.io/v1beta1", 21).unwrap();
        assert_eq!(s, Severity::Warning);
        assert_eq!(
            msg,
            "apiVersion audit.k8s.io/v1beta1 is deprecated since v1.21, removed in v1.24"
        );
        assert_eq!(fix, "use apiVersion: audit.k8s.io/v1");
        let (s, msg, _, _) = c("audit.k8s.io/v1beta1", 24).unwrap();
        assert_eq!(
            (s, msg.as_str()),
            (
                Severity::Error,
                "apiVersion audit.k8s.io/v1beta1 was removed in v1.24"
            )
        );
        assert_eq!(c("audit.k8s.io/v1", 11).unwrap().0, Severity::Error);
        assert!(
            c("audit.k8s.io/v2", 33)
                .unwrap()
                .1
                .contains("not a Policy version")
        );
    }

    #[test]
    fn scheduler_versions() {
        let c = |v: &str, m: u32| check_api_version("KubeSchedulerConfiguration", v, Minor(m));
        for (m, ok) in [
            (14, "v1alpha1"),
            (18, "v1alpha2"),
            (20, "v1beta1"),
            (22, "v1beta2"),
            (24, "v1beta3"),
            (33, "v1"),
        ] {
            assert_eq!(
                c(&format!("kubescheduler.config.k8s.io/{ok}"), m),
                None,
                "{ok} at 1.{m}"
            );
            // The scheduler template picks the same version.
            let picked = crate::front::plan::scheduler_config_api(m);
            assert_eq!(
                c(&format!("kubescheduler.config.k8s.io/{picked}"), m),
                None,
                "{picked} at 1.{m}"
            );
        }
        let (s, msg, fix, _) = c("kubescheduler.config.k8s.io/v1alpha1", 33).unwrap();
        assert_eq!(s, Severity::Error);
        assert_eq!(
            msg,
            "apiVersion kubescheduler.config.k8s.io/v1alpha1 was removed in v1.19"
        );
        assert_eq!(fix, "use apiVersion: kubescheduler.config.k8s.io/v1");
        assert_eq!(
            c("kubescheduler.config.k8s.io/v1", 24).unwrap().0,
            Severity::Error
        );
    }
}
