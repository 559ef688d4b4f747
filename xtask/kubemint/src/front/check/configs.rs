//! Configuration files a plan renders, checked against the release: the audit policy through
//! [`super::audit`], the KubeSchedulerConfiguration's version and the unauthenticated listener
//! it opens until v1.23. Which apiVersion a release reads is [`super::api_versions`]'s table.

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
    let base = |severity: Severity, message: String| {
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
    listener(&doc.root, minor, &base, out);
}

/// Where the scheduler's listener facts come from.
const LISTENER: &str = "kube-scheduler with --config: the listener is the file's healthzBindAddress and metricsBindAddress (cmd/kube-scheduler/app/options ApplyToFromLoadedConfig; --port and --address ignored, kubernetes/kubernetes#109900); v1alpha1-v1beta2 default them to 0.0.0.0:10251 (pkg/scheduler/apis/config/v1alpha1 defaults.go; #96345); a port of 0 opens no listener (k8s.io/apiserver DeprecatedInsecureServingOptions.ApplyTo); the file is validated from v1.17 (#84815), where port 0 is refused (IsValidSocketAddr: 1-65535); v1.23 refuses any but an empty or 0 port (#96345, #106866)";

/// The unauthenticated listener the KubeSchedulerConfiguration opens (health and metrics):
/// until v1.23 it is the file's, whatever --port says. A key that is missing, empty or has no
/// port means 0.0.0.0:10251 (the releases' defaulting); port 0 closes it where the file is not
/// validated yet (before v1.17); from v1.17 to v1.22 the validation refuses port 0, so loopback
/// is the best there is; from v1.23 anything but an empty or 0 port is fatal.
fn listener(
    root: &yaml_rust2::Yaml,
    minor: Minor,
    base: &dyn Fn(Severity, String) -> Finding,
    out: &mut Vec<Finding>,
) {
    const KEYS: [&str; 2] = ["healthzBindAddress", "metricsBindAddress"];
    const VALIDATED_FROM: Minor = Minor(17);
    const GONE_FROM: Minor = Minor(23);
    if minor >= GONE_FROM {
        for key in KEYS {
            let Some(addr) = yaml::str_at(root, key) else {
                continue;
            };
            let port = addr.rsplit_once(':').map_or("", |(_, p)| p);
            if !addr.is_empty() && port != "0" {
                out.push(
                    base(
                        Severity::Error,
                        format!(
                            "{key}: {addr}: from v1.23 it must be empty or with an explicit 0 port, and kube-scheduler refuses to start"
                        ),
                    )
                    .fix(format!("remove {key}"))
                    .source(LISTENER),
                );
            }
        }
        return;
    }
    // Both keys resolve to an address; equal ones are one listener.
    let mut seen: Vec<(String, Vec<&str>)> = Vec::new();
    for key in KEYS {
        let written = yaml::str_at(root, key).unwrap_or("");
        let addr = match written.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() => format!("{}:{p}", h.trim_matches(['[', ']'])),
            _ => "0.0.0.0:10251".to_owned(),
        };
        match seen.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, keys)) => keys.push(key),
            None => seen.push((addr, vec![key])),
        }
    }
    for (addr, keys) in seen {
        let what = keys.join(" and ");
        let Some((host, port)) = addr.rsplit_once(':') else {
            continue;
        };
        let closed = if minor < VALIDATED_FROM {
            "127.0.0.1:0"
        } else {
            "127.0.0.1:10251"
        };
        let fix = keys
            .iter()
            .map(|k| format!("set {k}: {closed}"))
            .collect::<Vec<_>>()
            .join(", ");
        let finding = if port == "0" {
            (minor >= VALIDATED_FROM).then(|| {
                base(
                    Severity::Error,
                    format!(
                        "{what}: {addr}: from v1.17 the file is validated and port 0 is refused (a port between 1 and 65535): kube-scheduler refuses to start"
                    ),
                )
                .fix(format!("{fix} (v1.17 to v1.22 cannot close it while --config is given)"))
            })
        } else if !is_loopback(host) {
            Some(
                base(
                    Severity::Error,
                    format!(
                        "{what}: {addr} serves unauthenticated, unauthorized access beyond loopback{}",
                        if yaml::str_at(root, keys[0]).is_none_or(|w| !w.contains(':')) {
                            " (the release's default when the key has no port)"
                        } else {
                            ""
                        }
                    ),
                )
                .fix(fix),
            )
        } else if minor < VALIDATED_FROM {
            Some(
                base(
                    Severity::Warning,
                    format!(
                        "{what}: {addr} serves unauthenticated, unauthorized access (loopback: anyone on the master); port 0 closes it on {minor}"
                    ),
                )
                .fix(fix),
            )
        } else {
            Some(
                base(
                    Severity::Note,
                    format!(
                        "{what}: {addr} serves unauthenticated, unauthorized access on loopback: {minor} cannot close it while --config is given (port 0 is refused from v1.17), v1.23 removes it"
                    ),
                )
                .fix("keep it on loopback; it goes with v1.23"),
            )
        };
        if let Some(f) = finding {
            out.push(f.source(LISTENER));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_config_file() {
        let mut out = Vec::new();
        let good = "apiVersion: kubescheduler.config.k8s.io/v1alpha1\nkind: KubeSchedulerConfiguration\nhealthzBindAddress: 127.0.0.1:0\nmetricsBindAddress: 127.0.0.1:0\n";
        check_scheduler_config("m", "/k.yaml", good, Minor(14), &mut out);
        assert!(out.is_empty(), "{out:?}");
        let bad = "apiVersion: kubescheduler.config.k8s.io/v1alpha1\nkind: Scheduler\nhealthzBindAddress: 127.0.0.1:0\nmetricsBindAddress: 0.0.0.0:10251\n";
        check_scheduler_config("m", "/k.yaml", bad, Minor(14), &mut out);
        check_scheduler_config("m", "/k.yaml", bad, Minor(33), &mut out);
        let lines: Vec<String> = out.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            lines,
            [
                "error: m: kube-scheduler: --config: /k.yaml: kind: must be KubeSchedulerConfiguration; fix: set kind: KubeSchedulerConfiguration",
                "error: m: kube-scheduler: --config: /k.yaml: metricsBindAddress: 0.0.0.0:10251 serves unauthenticated, unauthorized access beyond loopback; fix: set metricsBindAddress: 127.0.0.1:0",
                "error: m: kube-scheduler: --config: /k.yaml: apiVersion kubescheduler.config.k8s.io/v1alpha1 was removed in v1.19; fix: use apiVersion: kubescheduler.config.k8s.io/v1",
                "error: m: kube-scheduler: --config: /k.yaml: kind: must be KubeSchedulerConfiguration; fix: set kind: KubeSchedulerConfiguration",
                "error: m: kube-scheduler: --config: /k.yaml: metricsBindAddress: 0.0.0.0:10251: from v1.23 it must be empty or with an explicit 0 port, and kube-scheduler refuses to start; fix: remove metricsBindAddress",
            ]
        );
    }

    /// What the scheduler's file opens, release by release: "closed" means closed.
    #[test]
    fn scheduler_listener() {
        let at = |text: &str, minor: u32| {
            let mut out = Vec::new();
            let doc = format!(
                "apiVersion: kubescheduler.config.k8s.io/{}\nkind: KubeSchedulerConfiguration\n{text}",
                crate::front::plan::scheduler_config_api(minor)
            );
            check_scheduler_config("m", "/k.yaml", &doc, Minor(minor), &mut out);
            out.iter()
                .map(|f| (f.severity, f.message.clone()))
                .collect::<Vec<_>>()
        };
        // No keys: the releases' default, 0.0.0.0:10251, one listener for both.
        let f = at("", 14);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, Severity::Error);
        assert!(
            f[0].1.starts_with("/k.yaml: healthzBindAddress and metricsBindAddress: 0.0.0.0:10251 serves unauthenticated"),
            "{f:?}"
        );
        // The same on v1.19 to v1.22 (v1beta1, v1beta2).
        assert_eq!(at("", 22)[0].0, Severity::Error);
        // Loopback with a port: a warning where port 0 would close it, a note where it cannot.
        let loopback = "healthzBindAddress: 127.0.0.1:10251\nmetricsBindAddress: 127.0.0.1:10251\n";
        assert_eq!(at(loopback, 14)[0].0, Severity::Warning);
        assert_eq!(at(loopback, 17)[0].0, Severity::Note);
        assert_eq!(at(loopback, 22)[0].0, Severity::Note);
        // Port 0: closed before v1.17, refused from it.
        let zero = "healthzBindAddress: 127.0.0.1:0\nmetricsBindAddress: 127.0.0.1:0\n";
        assert!(at(zero, 14).is_empty());
        assert!(at(zero, 16).is_empty());
        assert_eq!(at(zero, 17)[0].0, Severity::Error);
        // v1.23 on: nothing to close, but a port in the file is fatal.
        assert!(at("", 23).is_empty());
        assert!(at(zero, 23).is_empty());
        assert_eq!(at(loopback, 23).len(), 2);
        // The image's template opens no more than the check reports.
        let env = crate::front::render::environment([(
            "s",
            include_str!("../../../../../images/control-plane/templates/kube-scheduler.yaml.j2"),
        )])
        .unwrap();
        for minor in 14..=33 {
            let rendered = env
                .get_template("s")
                .unwrap()
                .render(minijinja::context! {
                    profile => "m",
                    paths => minijinja::context! { conf_dir => "/etc/k8s/kubernetes" },
                    kubernetes => minijinja::context! {
                        version => format!("1.{minor}"),
                        minor => minor,
                        scheduler_config_api => crate::front::plan::scheduler_config_api(minor),
                    },
                })
                .unwrap();
            let mut out = Vec::new();
            check_scheduler_config("m", "/k.yaml", &rendered, Minor(minor), &mut out);
            let worst = out.iter().map(|f| f.severity).min();
            match minor {
                14..=16 => assert!(
                    rendered.contains("healthzBindAddress: 127.0.0.1:0\n") && out.is_empty(),
                    "v1.{minor}: {rendered}\n{out:?}"
                ),
                17..=22 => assert_eq!(worst, Some(Severity::Note), "v1.{minor}: {out:?}"),
                _ => assert!(
                    out.is_empty() && !rendered.contains("BindAddress"),
                    "v1.{minor}: {out:?}"
                ),
            }
        }
    }
}
