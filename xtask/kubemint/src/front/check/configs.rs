//! Configuration files a plan renders, checked against the release: the audit policy through
//! [`super::audit`], the KubeSchedulerConfiguration's version and its unauthenticated v1alpha1
//! endpoints. Which apiVersion a release reads is [`super::api_versions`]'s table.

use super::api_versions::check_api_version;
use super::yaml;
use super::{Finding, Minor, Severity, Target, audit, flag_value, is_loopback};

/// Checks the rendered configuration files a master's flags point at.
pub fn check(m: &Target<'_>, out: &mut Vec<Finding>) {
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
