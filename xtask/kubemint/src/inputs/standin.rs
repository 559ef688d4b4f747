//! The sample release's stand-in executables: POSIX sh scripts that behave, as far as systemd and
//! a health probe can see, like the binaries they stand in for, so that a sample build installed
//! on a host or booted in a VM comes up as a control plane would.
//!
//! - kube-apiserver, kube-controller-manager and kube-scheduler ([`component`]) refuse a flag
//!   their release does not know (the flag table, [`flags::Table::known`], embedded in the
//!   script, sorted), open every file their flags name ([`flags::reads_file`]) and the files
//!   those name (a kubeconfig's certificates, the scheduler configuration's kubeconfig) as the
//!   user they run as, then serve `ok` at `/healthz`, `/livez` and `/readyz` over TLS with
//!   `openssl s_server -WWW` on `--secure-port`: the apiserver with its `--tls-cert-file`, the
//!   others with a self-signed certificate made at start. The apiserver tells systemd it is
//!   ready (Type=notify).
//! - kubectl ([`kubectl`]) opens its kubeconfig, the files it names and each `-f` manifest, and
//!   exits 0: what the addons unit needs.
//! - Every other executable prints its name ([`super::sample::tiny_executable`]).
//!
//! The scripts need only what a Debian host has (sh, awk, coreutils, openssl, systemd-notify)
//! and work inside the units' sandbox (a private, writable `/tmp`; nothing else written). They
//! are text rendered from the release's name alone: the same name gives the same bytes.

use crate::front::check::Minor;
use crate::front::check::flags::{self, reads_file};
use crate::front::render;

const COMPONENT: &str = include_str!("standin/component.sh");
const KUBECTL: &str = include_str!("standin/kubectl.sh");

/// The components that get a behaving stand-in: name, default secure port, whether it notifies
/// systemd (`Type=notify`). v1.14's defaults; the ports have not changed since.
const SERVERS: &[(&str, u16, bool)] = &[
    ("kube-apiserver", 6443, true),
    ("kube-controller-manager", 10257, false),
    ("kube-scheduler", 10259, false),
];

/// The stand-in of `name` in release `release`: a behaving script for the control-plane
/// components and kubectl, the name-printing one for everything else.
pub fn executable(name: &str, release: &str) -> Result<String, minijinja::Error> {
    if name == "kubectl" {
        return kubectl(release);
    }
    match component(name, release)? {
        Some(script) => Ok(script),
        None => Ok(super::sample::tiny_executable(name, release)),
    }
}

/// The stand-in of a control-plane component, or `None` for a binary that is not one.
pub fn component(name: &str, release: &str) -> Result<Option<String>, minijinja::Error> {
    let Some(&(_, port, notify)) = SERVERS.iter().find(|(n, _, _)| *n == name) else {
        return Ok(None);
    };
    let minor = Minor::of_release(release);
    let known = flags::table().known(name, minor);
    let files: Vec<&str> = known.iter().copied().filter(|f| reads_file(f)).collect();
    let short: Vec<&str> = known.iter().copied().filter(|f| f.len() == 1).collect();
    let env = render::environment([("component.sh", COMPONENT)])?;
    let text = env
        .get_template("component.sh")?
        .render(minijinja::context! {
            name => name,
            release => release,
            minor => minor.map_or_else(|| format!("release {release}"), |m| m.to_string()),
            known => known.join(" "),
            files => files.join(" "),
            short => short.join(" "),
            port => port,
            notify => notify,
        })?;
    Ok(Some(text))
}

/// The stand-in of kubectl.
pub fn kubectl(release: &str) -> Result<String, minijinja::Error> {
    let env = render::environment([("kubectl.sh", KUBECTL)])?;
    env.get_template("kubectl.sh")?
        .render(minijinja::context! { release => release })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(script: &'a str, prefix: &str) -> &'a str {
        script
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line {prefix}… in\n{script}"))
    }

    #[test]
    fn the_flag_list_is_the_release_s_sorted() {
        let s = component("kube-apiserver", "v1.14.2").unwrap().unwrap();
        let known: Vec<&str> = line(&s, "known='")
            .trim_matches([' ', '\''])
            .split(' ')
            .collect();
        assert!(known.is_sorted(), "{known:?}");
        assert!(known.contains(&"insecure-port") && known.contains(&"tls-cert-file"));
        assert!(!known.contains(&"authorization-config"));
        let files = line(&s, "files='");
        assert!(files.contains(" tls-private-key-file ") && files.contains(" audit-policy-file "));
        assert!(!files.contains("audit-log-path") && !files.contains("log-dir"));
        assert_eq!(line(&s, "short='"), " v '");
        assert_eq!(line(&s, "port="), "6443");
        assert!(s.contains("systemd-notify --ready"));
        // v1.33: the removed flags are gone, the new ones there.
        let s = component("kube-apiserver", "v1.33.5").unwrap().unwrap();
        assert!(!line(&s, "known='").contains(" insecure-port "));
        assert!(line(&s, "known='").contains(" authorization-config "));
        // The others do not notify; each has its own port and flags.
        let s = component("kube-scheduler", "v1.14.2").unwrap().unwrap();
        assert!(!s.contains("systemd-notify") && !s.contains("{{") && !s.contains("{%"));
        assert_eq!(line(&s, "port="), "10259");
        assert!(line(&s, "files='").contains(" config "));
        let s = component("kube-controller-manager", "v1.14.2")
            .unwrap()
            .unwrap();
        assert_eq!(line(&s, "port="), "10257");
        assert!(line(&s, "files='").contains(" service-account-private-key-file "));
    }

    #[test]
    fn deterministic_and_only_for_components() {
        for name in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
        ] {
            let a = executable(name, "v1.14.2").unwrap();
            assert_eq!(a, executable(name, "v1.14.2").unwrap());
            assert_ne!(a, executable(name, "v1.33.5").unwrap());
            assert!(a.starts_with("#!/bin/sh\n") && a.contains("v1.14.2"), "{a}");
        }
        assert_eq!(component("kubelet", "v1.14.2").unwrap(), None);
        assert_eq!(
            executable("kubelet", "v1.14.2").unwrap(),
            crate::inputs::sample::tiny_executable("kubelet", "v1.14.2")
        );
        // A release name that is no 1.x version: every flag the table has for it.
        let s = component("kube-apiserver", "custom").unwrap().unwrap();
        assert!(line(&s, "known='").contains(" insecure-port "));
        assert!(line(&s, "known='").contains(" authorization-config "));
    }
}
