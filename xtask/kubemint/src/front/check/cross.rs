//! Checks across flags, files, secrets, networks and masters: the seed guide's class of
//! mistakes, each of which every single flag would pass on its own.
//!
//! Per master: a path a flag (or a kubeconfig, or the scheduler configuration) reads that
//! neither the image nor its declared secrets provide (the guide's `proxy-clinet.pem`); a
//! secret read by a component whose start does not check it; an empty
//! `--requestheader-allowed-names` where a front proxy is trusted; one CA for client and
//! front-proxy authentication; an unauthenticated port beyond loopback; addresses and networks
//! that disagree with what the profile declares; `--apiserver-count` against the set.
//! Across the set: apiservers more than one minor apart, and a controller manager or scheduler
//! newer than the apiserver its kubeconfig points at.

use super::yaml;
use super::{Finding, Set, Severity, Target, flags, is_loopback};
use crate::front::plan::{Plan, Secret};
use crate::front::profile::values::Cidr;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Flags whose value is a file the component reads at start: a fact about flags, kept with the
/// flag table (the sample release's stand-ins read the same files).
pub use super::flags::reads_file;

/// What provides a path on a master.
enum Provided<'a> {
    /// A file of the image, with its rendered content.
    File(&'a str),
    /// A binary or link of the image.
    Tree,
    /// A declared secret, delivered apart.
    Secret(&'a Secret),
}

fn provided<'a>(plan: &'a Plan, path: &str) -> Option<Provided<'a>> {
    if let Some(f) = plan.files.iter().find(|f| f.path == path) {
        return Some(Provided::File(&f.content));
    }
    if plan.binaries.iter().any(|b| b.path == path) || plan.links.iter().any(|l| l.path == path) {
        return Some(Provided::Tree);
    }
    plan.secrets
        .iter()
        .find(|s| s.path == path)
        .map(Provided::Secret)
}

/// The declared secret or image file closest to `path`, if it is a likely misspelling.
fn nearest<'a>(plan: &'a Plan, path: &str) -> Option<&'a str> {
    plan.secrets
        .iter()
        .map(|s| s.path.as_str())
        .chain(plan.files.iter().map(|f| f.path.as_str()))
        .map(|p| (strsim::levenshtein(p, path), p))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, p)| p)
}

/// Checks everything one master's plan and flags say about itself.
pub fn check_master(m: &Target<'_>, set: &Set, out: &mut Vec<Finding>) {
    file_references(m, out);
    front_proxy(m, out);
    same_ca(m, out);
    insecure_ports(m, out);
    addresses(m, out);
    apiserver_count(m, set, out);
}

/// Every file a flag, a kubeconfig or the scheduler configuration reads must be in the image
/// or a declared secret; a secret must name the component among its `used_by`, or the unit's
/// check-secrets does not wait for it.
fn file_references(m: &Target<'_>, out: &mut Vec<Finding>) {
    for (component, c) in &m.profile.components {
        // Each kubeconfig file is read once per component, however many flags name it.
        let mut kubeconfigs = BTreeSet::new();
        for flag in c.flags.iter().filter(|f| reads_file(&f.name)) {
            let path = flag.value.as_str();
            if path.is_empty() {
                continue;
            }
            let Some(what) = reference(m, component, &flag.name, "", path, out) else {
                continue;
            };
            let Provided::File(text) = what else {
                continue;
            };
            if flag.name.ends_with("kubeconfig") {
                if kubeconfigs.insert(path.to_owned()) {
                    kubeconfig_references(m, component, &flag.name, path, text, out);
                }
            } else if component == "kube-scheduler" && flag.name == "config" {
                let Ok(doc) = yaml::parse(text) else {
                    continue; // reported by the configuration check
                };
                let client = yaml::get(&doc.root, "clientConnection");
                if let Some(kc) = client.and_then(|c| yaml::str_at(c, "kubeconfig"))
                    && let Some(Provided::File(kc_text)) = reference(
                        m,
                        component,
                        "config",
                        &format!("{path}: clientConnection.kubeconfig: "),
                        kc,
                        out,
                    )
                    && kubeconfigs.insert(kc.to_owned())
                {
                    kubeconfig_references(m, component, "config", kc, kc_text, out);
                }
            }
        }
    }
}

/// One reference: an error if nothing provides `path`, a warning if a secret provides it
/// without checking it for `component`. `at` prefixes the message (the file and key holding
/// the reference, when it is not the flag itself).
fn reference<'a>(
    m: &'a Target<'_>,
    component: &str,
    flag: &str,
    at: &str,
    path: &str,
    out: &mut Vec<Finding>,
) -> Option<Provided<'a>> {
    let image = &m.plan.image;
    match provided(m.plan, path) {
        None => {
            let fix = match nearest(m.plan, path) {
                Some(near) => format!(
                    "did you mean {near}? else declare {path} as a [[secret]] in images/{image}/image.toml"
                ),
                None => format!(
                    "declare {path} as a [[secret]] in images/{image}/image.toml, or correct the path"
                ),
            };
            out.push(
                m.finding(
                    Severity::Error,
                    component,
                    flag,
                    format!("{at}{path} is neither a file of image {image} nor a declared secret: {component} cannot start"),
                )
                .fix(fix),
            );
            None
        }
        Some(Provided::Secret(s)) => {
            if !s.used_by.iter().any(|u| u == component) {
                out.push(
                    m.finding(
                        Severity::Warning,
                        component,
                        flag,
                        format!(
                            "{at}{path} is a declared secret, but not used_by {component}: its check-secrets does not wait for it"
                        ),
                    )
                    .fix(format!(
                        "add \"{component}\" to used_by of the [[secret]] {path} in images/{image}/image.toml"
                    )),
                );
            }
            Some(Provided::Secret(s))
        }
        other => other,
    }
}

/// The certificate authority, client certificate, key and token file a kubeconfig names.
fn kubeconfig_references(
    m: &Target<'_>,
    component: &str,
    flag: &str,
    path: &str,
    text: &str,
    out: &mut Vec<Finding>,
) {
    let Ok(doc) = yaml::parse(text) else {
        out.push(
            m.finding(
                Severity::Error,
                component,
                flag,
                format!("{path}: not a readable kubeconfig"),
            )
            .fix("fix the template the file is rendered from"),
        );
        return;
    };
    let mut refs = Vec::new();
    for (i, c) in yaml::list_at(&doc.root, "clusters").iter().enumerate() {
        if let Some(v) =
            yaml::get(c, "cluster").and_then(|c| yaml::str_at(c, "certificate-authority"))
        {
            refs.push((format!("clusters[{i}].cluster.certificate-authority"), v));
        }
    }
    for (i, u) in yaml::list_at(&doc.root, "users").iter().enumerate() {
        for key in ["client-certificate", "client-key", "tokenFile"] {
            if let Some(v) = yaml::get(u, "user").and_then(|u| yaml::str_at(u, key)) {
                refs.push((format!("users[{i}].user.{key}"), v));
            }
        }
    }
    for (key, value) in refs {
        reference(m, component, flag, &format!("{path}: {key}: "), value, out);
    }
}

/// The host of every `server:` a kubeconfig names.
pub fn kubeconfig_servers(text: &str) -> Vec<String> {
    let Ok(doc) = yaml::parse(text) else {
        return Vec::new();
    };
    yaml::list_at(&doc.root, "clusters")
        .iter()
        .filter_map(|c| yaml::get(c, "cluster").and_then(|c| yaml::str_at(c, "server")))
        .filter_map(url_host)
        .collect()
}

/// `https://10.0.0.1:6443/x` → `10.0.0.1`; `https://[::1]:6443` → `::1`.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// `--requestheader-allowed-names` left empty where requests are taken from a front proxy:
/// the guide's `""` next to the apiserver's proxy client certificate, and any component with a
/// `--requestheader-client-ca-file` but no allowed names (every certificate that CA signed may
/// then claim any user in X-Remote-User).
fn front_proxy(m: &Target<'_>, out: &mut Vec<Finding>) {
    let empty = |names: Option<&str>| {
        names
            .unwrap_or("")
            .trim_matches(|c: char| c == '"' || c == '\'' || c == ',' || c.is_whitespace())
            .is_empty()
    };
    for component in m.profile.components.keys() {
        let c = component.as_str();
        if !empty(m.flag(c, "requestheader-allowed-names")) {
            continue;
        }
        let proxy = (c == "kube-apiserver")
            .then(|| m.flag(c, "proxy-client-cert-file"))
            .flatten();
        let ca = m.flag(c, "requestheader-client-ca-file");
        let message = match (proxy, ca) {
            (Some(cert), _) => format!(
                "empty while --proxy-client-cert-file is set ({cert}): any certificate the requestheader CA signed is trusted as the front proxy, and a literal '' rejects the proxy itself (\"cn=aggregator is not in the allowed list\"), so aggregated APIs such as metrics fail with Forbidden"
            ),
            (None, Some(ca)) => format!(
                "empty while --requestheader-client-ca-file is set ({ca}): every client certificate that CA signed is trusted as a front proxy and may claim any user and group in the X-Remote-* headers"
            ),
            (None, None) => continue,
        };
        let fix = match proxy {
            Some(cert) => format!(
                "set --requestheader-allowed-names to the CN of {cert} (kubeadm: front-proxy-client; the guide: aggregator)"
            ),
            None => "set --requestheader-allowed-names to the CN of the front proxy's client certificate (the apiserver's --requestheader-allowed-names; kubeadm: front-proxy-client)".to_owned(),
        };
        out.push(
            m.finding(Severity::Error, c, "requestheader-allowed-names", message)
                .fix(fix)
                .source("facts: front proxy (aggregation) pitfalls (an empty --requestheader-allowed-names trusts any CN the requestheader CA signed); k8s.io/apiserver DelegatingAuthenticationOptions"),
        );
    }
}

/// One CA for client certificates and for the front proxy.
fn same_ca(m: &Target<'_>, out: &mut Vec<Finding>) {
    for component in m.profile.components.keys() {
        let (Some(client), Some(front)) = (
            m.flag(component, "client-ca-file"),
            m.flag(component, "requestheader-client-ca-file"),
        ) else {
            continue;
        };
        if client == front {
            out.push(
                m.finding(
                    Severity::Warning,
                    component,
                    "requestheader-client-ca-file",
                    format!(
                        "the same CA as --client-ca-file ({client}): every client certificate is also tried as a front proxy, flooding the log with \"cn=… is not in the allowed list\""
                    ),
                )
                .fix("sign the front-proxy client certificate with a CA of its own (kubeadm: front-proxy-ca) and point --requestheader-client-ca-file at it")
                .source("facts: front proxy (aggregation) pitfalls"),
            );
        }
    }
}

/// A port served without authentication, open beyond loopback (error) or on loopback
/// (warning), whether set by a flag or left open by the release's default.
fn insecure_ports(m: &Target<'_>, out: &mut Vec<Finding>) {
    let table = flags::table();
    for ins in &table.insecure {
        let c = ins.component.as_str();
        if !m.profile.components.contains_key(c) {
            continue;
        }
        // Next to --config the scheduler's listener is the file's (checked with the file).
        if c == "kube-scheduler" && m.flag(c, "config").is_some() {
            continue;
        }
        let gone = table
            .row(c, &ins.port)
            .and_then(|r| r.removed)
            .is_some_and(|r| m.minor >= r);
        if gone {
            continue;
        }
        let (port, by_default) = match m.flag(c, &ins.port) {
            Some(v) => match v.trim().parse::<u16>() {
                Ok(p) => (p, false),
                Err(_) => continue,
            },
            None if m.minor < ins.open_by_default_until => (ins.default_port, true),
            None => continue,
        };
        if port == 0 {
            continue;
        }
        let address = m.flag(c, &ins.address).unwrap_or(&ins.default_address);
        let how = if by_default {
            format!("without --{}=0, {} serves", ins.port, m.minor)
        } else {
            "serves".to_owned()
        };
        let (severity, message) = if is_loopback(address) {
            (
                Severity::Warning,
                format!(
                    "{how} unauthenticated, unauthorized access on {address}:{port} (loopback: anyone on the master)"
                ),
            )
        } else {
            (
                Severity::Error,
                format!(
                    "{how} unauthenticated, unauthorized access on {address}:{port}, beyond loopback"
                ),
            )
        };
        out.push(
            m.finding(severity, c, &ins.port, message)
                .fix(format!("set --{}=0", ins.port))
                .source(&ins.source),
        );
    }
}

/// Addresses and networks against what the profile declares.
fn addresses(m: &Target<'_>, out: &mut Vec<Finding>) {
    let host = m.profile.host.address;
    let service = m.profile.cluster.service_cidr;
    let ports = m.profile.cluster.node_port_range;
    if service.contains(host) {
        out.push(
            Finding::new(
                Severity::Error,
                &m.profile.name,
                format!("host.address {host} lies inside the service network {service}: service IPs would shadow the master"),
            )
            .fix("choose a cluster.service_cidr that no master or node address falls in"),
        );
    }
    if let Some(v) = m.flag("kube-apiserver", "advertise-address")
        && let Ok(ip) = v.parse::<IpAddr>()
        && ip != host
    {
        out.push(
            m.finding(
                Severity::Error,
                "kube-apiserver",
                "advertise-address",
                format!(
                    "{ip} is not this master's address {host}: clients would be sent elsewhere"
                ),
            )
            .fix("set it to \"{{ host.address }}\""),
        );
    }
    for (component, c) in &m.profile.components {
        for flag in &c.flags {
            let bind = matches!(
                flag.name.as_str(),
                "bind-address" | "insecure-bind-address" | "address"
            );
            if bind
                && let Ok(ip) = flag.value.parse::<IpAddr>()
                && !(ip == host || ip.is_loopback() || ip.is_unspecified())
            {
                out.push(
                    m.finding(
                        Severity::Error,
                        component,
                        &flag.name,
                        format!("{ip} is not an address of this master ({host}, loopback or unspecified): it cannot bind"),
                    )
                    .fix(format!("bind to {host}, 127.0.0.1 or 0.0.0.0")),
                );
            }
            if flag.name == "service-cluster-ip-range" {
                let nets: Vec<Cidr> = flag
                    .value
                    .split(',')
                    .filter_map(|n| Cidr::parse(n.trim()).ok())
                    .collect();
                if !nets.is_empty() && !nets.contains(&service) {
                    out.push(
                        m.finding(
                            Severity::Error,
                            component,
                            &flag.name,
                            format!(
                                "{} is not the declared service network {service}",
                                flag.value
                            ),
                        )
                        .fix("set it to \"{{ cluster.service_cidr }}\""),
                    );
                }
            }
            if flag.name == "service-node-port-range" && flag.value != ports.to_string() {
                out.push(
                    m.finding(
                        Severity::Error,
                        component,
                        &flag.name,
                        format!("{} is not the declared NodePort range {ports}", flag.value),
                    )
                    .fix("set it to \"{{ cluster.node_port_range }}\""),
                );
            }
            if flag.name == "cluster-cidr"
                && let Ok(pods) = Cidr::parse(flag.value.trim())
                && (pods.contains(service.addr) || service.contains(pods.addr))
            {
                out.push(
                    m.finding(
                        Severity::Error,
                        component,
                        &flag.name,
                        format!("the pod network {pods} overlaps the service network {service}"),
                    )
                    .fix("choose a pod network apart from cluster.service_cidr"),
                );
            }
        }
    }
}

/// `--apiserver-count` against the masters of the set running kube-apiserver.
fn apiserver_count(m: &Target<'_>, set: &Set, out: &mut Vec<Finding>) {
    let Some(v) = m.flag("kube-apiserver", "apiserver-count") else {
        return;
    };
    let Ok(count) = v.trim().parse::<usize>() else {
        out.push(
            m.finding(
                Severity::Error,
                "kube-apiserver",
                "apiserver-count",
                format!("{v:?} is not a number"),
            )
            .fix(format!("set it to {}", set.apiservers)),
        );
        return;
    };
    if set.apiservers > 0 && count != set.apiservers {
        out.push(
            m.finding(
                Severity::Error,
                "kube-apiserver",
                "apiserver-count",
                format!(
                    "{count}, but {} holds {} master{} running kube-apiserver",
                    set.dir,
                    set.apiservers,
                    if set.apiservers == 1 { "" } else { "s" }
                ),
            )
            .fix(format!(
                "set --apiserver-count={} (or remove it: the lease reconciler counts apiservers)",
                set.apiservers
            )),
        );
    }
}

/// Version skew across the checked masters: apiservers within one minor of each other; a
/// controller manager or scheduler never newer than the apiserver its kubeconfig points at,
/// and at most one minor older.
///
/// Every component of a master comes from that master's release, and the image's kubeconfigs
/// point at the master's own apiserver, so the second rule fires only if a kubeconfig names
/// another master of the set on another release.
pub fn check_set(masters: &[Target<'_>], out: &mut Vec<Finding>) {
    const SKEW: &str = "version skew policy (kubernetes.io/releases/version-skew-policy); facts: version skew (HA apiservers within one minor; controller-manager and scheduler never newer than the apiserver, at most one minor older)";
    let apiservers: Vec<&Target<'_>> = masters
        .iter()
        .filter(|m| m.profile.components.contains_key("kube-apiserver"))
        .collect();
    // The first of the newest, in the order checked.
    if let Some(newest) = apiservers.iter().rev().max_by_key(|m| m.minor) {
        for m in &apiservers {
            if newest.minor.0 > m.minor.0 + 1 {
                out.push(
                    Finding::new(
                        Severity::Error,
                        &m.profile.name,
                        format!(
                            "{} is more than one minor older than kube-apiserver {} on {}: HA apiservers stay within one minor",
                            m.minor, newest.minor, newest.profile.name
                        ),
                    )
                    .component("kube-apiserver")
                    .fix(format!("upgrade {} one minor at a time, or keep the set on one release", m.profile.name))
                    .source(SKEW),
                );
            }
        }
    }
    for m in masters {
        for (component, kubeconfig) in client_kubeconfigs(m) {
            let Some(file) = m.plan.files.iter().find(|f| f.path == kubeconfig) else {
                continue;
            };
            for host in kubeconfig_servers(&file.content) {
                let Some(target) = masters.iter().find(|t| {
                    t.profile.host.address.to_string() == host
                        || (is_loopback(&host) && std::ptr::eq(*t, m))
                }) else {
                    continue;
                };
                let (mine, theirs) = (m.minor, target.minor);
                let problem = if mine > theirs {
                    Some("newer than")
                } else if theirs.0 > mine.0 + 1 {
                    Some("more than one minor older than")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    out.push(
                        Finding::new(
                            Severity::Error,
                            &m.profile.name,
                            format!(
                                "{mine} would be {problem} the kube-apiserver {theirs} of {} it talks to ({kubeconfig})",
                                target.profile.name
                            ),
                        )
                        .component(&component)
                        .fix(format!("upgrade the apiserver of {} first", target.profile.name))
                        .source(SKEW),
                    );
                }
            }
        }
    }
}

/// The kubeconfig each client component talks to the apiserver with.
fn client_kubeconfigs(m: &Target<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(k) = m.flag("kube-controller-manager", "kubeconfig") {
        out.push(("kube-controller-manager".to_owned(), k.to_owned()));
    }
    let scheduler = m
        .flag("kube-scheduler", "config")
        .and_then(|c| m.plan.files.iter().find(|f| f.path == c))
        .and_then(|f| yaml::parse(&f.content).ok())
        .and_then(|d| {
            yaml::get(&d.root, "clientConnection")
                .and_then(|c| yaml::str_at(c, "kubeconfig"))
                .map(str::to_owned)
        })
        .or_else(|| m.flag("kube-scheduler", "kubeconfig").map(str::to_owned));
    if let Some(k) = scheduler {
        out.push(("kube-scheduler".to_owned(), k));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("localhost"));
        assert!(!is_loopback("0.0.0.0") && !is_loopback("10.10.10.22"));
        assert_eq!(
            strsim::levenshtein("proxy-clinet.pem", "proxy-client.pem"),
            2
        );
        assert_eq!(
            url_host("https://10.10.10.22:6443"),
            Some("10.10.10.22".into())
        );
        assert_eq!(url_host("https://[::1]:6443/x"), Some("::1".into()));
        assert_eq!(url_host("https://api.example"), Some("api.example".into()));
    }
}
