//! Configuration files a plan renders, checked against the release: the apiVersion table
//! (`configs.toml`, embedded) for every kind, the audit policy through [`super::audit`], the
//! KubeSchedulerConfiguration's version and its unauthenticated v1alpha1 endpoints.

use super::cross::{Master, is_loopback};
use super::flags::Stage;
use super::yaml;
use super::{Finding, Minor, Severity, audit, flag_value};
use serde::Deserialize;
use std::sync::OnceLock;

/// The table's text, as shipped in the binary.
pub const TABLE: &str = include_str!("configs.toml");

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
        Err(e) => panic!("xtask/src/check/configs.toml is invalid:\n{e}"),
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

/// Checks the rendered configuration files a master's flags point at.
pub fn check(m: &Master<'_>, out: &mut Vec<Finding>) {
    let profile = &m.profile.name;
    if let Some(path) = flag_value(m.profile, "kube-apiserver", "audit-policy-file")
        && let Some(file) = m.plan.files.iter().find(|f| f.path == path)
    {
        for issue in audit::validate(&file.content, m.minor) {
            let at = if issue.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", issue.path)
            };
            let mut f = Finding::new(
                issue.severity,
                profile,
                format!("{path}: {at}{}", issue.message),
            )
            .component("kube-apiserver")
            .flag("audit-policy-file")
            .source(&issue.source);
            if let Some(fix) = issue.fix {
                f = f.fix(fix);
            }
            out.push(f);
        }
    }
    if let Some(path) = flag_value(m.profile, "kube-scheduler", "config")
        && let Some(file) = m.plan.files.iter().find(|f| f.path == path)
    {
        check_scheduler_config(profile, path, &file.content, m.minor, out);
    }
}

/// The KubeSchedulerConfiguration: a version the release reads, the right kind, and (v1alpha1)
/// no unauthenticated health or metrics endpoint beyond loopback.
pub fn check_scheduler_config(
    profile: &str,
    path: &str,
    text: &str,
    minor: Minor,
    out: &mut Vec<Finding>,
) {
    const KIND: &str = "KubeSchedulerConfiguration";
    let base = |severity, message: String| {
        Finding::new(severity, profile, format!("{path}: {message}"))
            .component("kube-scheduler")
            .flag("config")
    };
    let doc = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            out.push(base(Severity::Error, e).fix("fix the template the file is rendered from"));
            return;
        }
    };
    match yaml::str_at(&doc.root, "apiVersion") {
        Some(v) => {
            if let Some((severity, message, fix, source)) = check_api_version(KIND, v, minor) {
                out.push(base(severity, message).fix(fix).source(&source));
            }
        }
        None => out.push(
            base(Severity::Error, "apiVersion: missing".into())
                .fix("set apiVersion to a kubescheduler.config.k8s.io version the release reads"),
        ),
    }
    if yaml::str_at(&doc.root, "kind") != Some(KIND) {
        out.push(
            base(Severity::Error, format!("kind: must be {KIND}")).fix(format!("set kind: {KIND}")),
        );
    }
    for key in ["healthzBindAddress", "metricsBindAddress"] {
        let Some(addr) = yaml::str_at(&doc.root, key) else {
            continue;
        };
        let (host, port) = match addr.rsplit_once(':') {
            Some((h, p)) => (h.trim_matches(['[', ']']), p),
            None => (addr, ""),
        };
        if port != "0" && !is_loopback(host) {
            out.push(
                base(
                    Severity::Error,
                    format!("{key}: {addr} serves unauthenticated beyond loopback"),
                )
                .fix(format!(
                    "set {key}: 127.0.0.1:{}",
                    if port.is_empty() { "10251" } else { port }
                ))
                .source("facts: kube-scheduler (1.14 serves unauthenticated on :10251)"),
            );
        }
    }
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
        let (s, msg, fix, _) = c("audit.k8s.io/v1beta1", 14).unwrap();
        assert_eq!(s, Severity::Warning);
        assert_eq!(
            msg,
            "apiVersion audit.k8s.io/v1beta1 is deprecated since v1.12, removed in v1.24"
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
            let picked = crate::plan::scheduler_config_api(m);
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

    #[test]
    fn scheduler_config_file() {
        let mut out = Vec::new();
        let good = "apiVersion: kubescheduler.config.k8s.io/v1alpha1\nkind: KubeSchedulerConfiguration\nhealthzBindAddress: 127.0.0.1:10251\n";
        check_scheduler_config("m", "/k.yaml", good, Minor(14), &mut out);
        assert!(out.is_empty(), "{out:?}");
        let bad = "apiVersion: kubescheduler.config.k8s.io/v1alpha1\nkind: Scheduler\nmetricsBindAddress: 0.0.0.0:10251\n";
        check_scheduler_config("m", "/k.yaml", bad, Minor(33), &mut out);
        let lines: Vec<String> = out.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            lines,
            [
                "error: m: kube-scheduler: --config: /k.yaml: apiVersion kubescheduler.config.k8s.io/v1alpha1 was removed in v1.19; fix: use apiVersion: kubescheduler.config.k8s.io/v1",
                "error: m: kube-scheduler: --config: /k.yaml: kind: must be KubeSchedulerConfiguration; fix: set kind: KubeSchedulerConfiguration",
                "error: m: kube-scheduler: --config: /k.yaml: metricsBindAddress: 0.0.0.0:10251 serves unauthenticated beyond loopback; fix: set metricsBindAddress: 127.0.0.1:10251",
            ]
        );
    }
}
