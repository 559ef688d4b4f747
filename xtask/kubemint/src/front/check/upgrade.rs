//! Upgrades as Kubernetes supports them: one minor at a time.
//!
//! Per master: checked against a release more than one minor ahead of its own, it would skip
//! minors (an error naming the path). Across the set: masters on two minors one apart are a
//! rolling upgrade in progress (a note saying how it goes on); the controller managers and
//! schedulers of the set must hold their leader-election lock in an object they share, or
//! several act as leader at once (an error).

use super::{Finding, Minor, Severity, Target, flag_value, yaml};

/// Where the one-minor rule comes from.
pub const SKEW: &str = "version skew policy (kubernetes.io/releases/version-skew-policy: kube-apiserver instances within one minor of each other; kube-controller-manager and kube-scheduler never newer than the apiserver, at most one minor older); kubeadm upgrade: skipping minor versions when upgrading is unsupported";

/// Where the leader-election lock facts come from.
pub const LOCKS: &str = "kubernetes/kubernetes#84084 (v1.17: the controller manager and scheduler default to endpointsleases); #94603 (v1.20: leases); #106852 (v1.24: endpoints and configmaps locks removed); #117558 (v1.28: endpointsleases and configmapsleases removed)";

/// The minors an upgrade from `from` to `to` goes through, one at a time, `to` included.
pub fn path(from: Minor, to: Minor) -> Vec<Minor> {
    (from.0 + 1..=to.0).map(Minor).collect()
}

/// `v1.15, v1.16, …, v1.33`; short paths in full.
pub fn describe(path: &[Minor]) -> String {
    let all: Vec<String> = path.iter().map(Minor::to_string).collect();
    if all.len() <= 4 {
        all.join(", ")
    } else {
        format!("{}, {}, …, {}", all[0], all[1], all[all.len() - 1])
    }
}

/// A master checked against a release more than one minor ahead of the one its profile names.
pub fn check_master(m: &Target<'_>, out: &mut Vec<Finding>) {
    let Some(own) = Minor::of_release(&m.profile.release) else {
        return;
    };
    if m.minor.0 <= own.0 + 1 {
        return;
    }
    let hops = path(own, m.minor);
    let skipped = hops.len() - 1;
    out.push(
        Finding::new(
            Severity::Error,
            &m.profile.name,
            format!(
                "{own} → {} skips {skipped} minor{}; Kubernetes supports one at a time: {}",
                m.minor,
                if skipped == 1 { "" } else { "s" },
                describe(&hops)
            ),
        )
        .fix(format!(
            "upgrade one minor at a time: `cargo xtask upgrade-plan --to {}` lists the hops and writes each hop's profile set",
            m.plan.release.name
        ))
        .source(SKEW),
    );
}

/// A leader-election lock type (`--leader-elect-resource-lock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lock {
    Endpoints,
    ConfigMaps,
    EndpointsLeases,
    ConfigMapsLeases,
    Leases,
}

impl Lock {
    pub fn parse(s: &str) -> Option<Lock> {
        Some(match s.trim() {
            "endpoints" => Lock::Endpoints,
            "configmaps" => Lock::ConfigMaps,
            "endpointsleases" => Lock::EndpointsLeases,
            "configmapsleases" => Lock::ConfigMapsLeases,
            "leases" => Lock::Leases,
            _ => return None,
        })
    }

    /// The lock the controller manager and scheduler of `minor` use when none is set.
    pub fn default_at(minor: Minor) -> Lock {
        match minor.0 {
            0..=16 => Lock::Endpoints,
            17..=19 => Lock::EndpointsLeases,
            _ => Lock::Leases,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lock::Endpoints => "endpoints",
            Lock::ConfigMaps => "configmaps",
            Lock::EndpointsLeases => "endpointsleases",
            Lock::ConfigMapsLeases => "configmapsleases",
            Lock::Leases => "leases",
        }
    }

    /// The objects a leader of this lock writes and a candidate of it reads.
    pub fn objects(self) -> &'static [&'static str] {
        match self {
            Lock::Endpoints => &["Endpoints"],
            Lock::ConfigMaps => &["ConfigMap"],
            Lock::EndpointsLeases => &["Endpoints", "Lease"],
            Lock::ConfigMapsLeases => &["ConfigMap", "Lease"],
            Lock::Leases => &["Lease"],
        }
    }

    /// Whether candidates of the two locks see each other's leader.
    pub fn shares(self, other: Lock) -> bool {
        self.objects().iter().any(|o| other.objects().contains(o))
    }
}

/// The leader-election lock `component` of a master takes part with, and whether it is set
/// explicitly; `None` when the component does not run there or does not elect a leader.
pub fn lock_of(m: &Target<'_>, component: &str) -> Option<(Lock, bool)> {
    if !m.profile.components.contains_key(component) {
        return None;
    }
    if flag_value(m.profile, component, "leader-elect").is_some_and(|v| v.trim() == "false") {
        return None;
    }
    if component == "kube-scheduler"
        && let Some(path) = flag_value(m.profile, component, "config")
        && let Some(file) = m.plan.files.iter().find(|f| f.path == path)
        && let Ok(doc) = yaml::parse(&file.content)
        && let Some(le) = yaml::get(&doc.root, "leaderElection")
    {
        if matches!(
            yaml::get(le, "leaderElect"),
            Some(yaml_rust2::Yaml::Boolean(false))
        ) {
            return None;
        }
        if let Some(lock) = yaml::str_at(le, "resourceLock").and_then(Lock::parse) {
            return Some((lock, true));
        }
    }
    match flag_value(m.profile, component, "leader-elect-resource-lock").and_then(Lock::parse) {
        Some(lock) => Some((lock, true)),
        None => Some((Lock::default_at(m.minor), false)),
    }
}

/// Across the masters of the set: a rolling upgrade in progress, and leader-election locks
/// that do not see each other.
pub fn check_set(masters: &[Target<'_>], out: &mut Vec<Finding>) {
    rolling(masters, out);
    for component in ["kube-controller-manager", "kube-scheduler"] {
        locks(masters, component, out);
    }
}

/// Masters on two minors one apart: say how the upgrade goes on (more than one apart is an
/// error of the apiserver skew check).
fn rolling(masters: &[Target<'_>], out: &mut Vec<Finding>) {
    let (Some(old), Some(new)) = (
        masters.iter().map(|m| m.minor).min(),
        masters.iter().map(|m| m.minor).max(),
    ) else {
        return;
    };
    if new.0 != old.0 + 1 {
        return;
    }
    let on = |minor: Minor| {
        masters
            .iter()
            .filter(|m| m.minor == minor)
            .map(|m| m.profile.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(first) = masters.iter().find(|m| m.minor == new) else {
        return;
    };
    out.push(
        Finding::new(
            Severity::Note,
            &first.profile.name,
            format!(
                "a rolling upgrade from {old} to {new} in progress ({} on {new}; {} on {old}): Kubernetes allows it one minor apart",
                on(new),
                on(old)
            ),
        )
        .fix(format!(
            "go on one master at a time, each image whole (its apiserver, controller manager and scheduler together), until every master runs {new}"
        ))
        .source(SKEW),
    );
}

/// Two masters whose `component` holds its lock in objects the other never reads.
fn locks(masters: &[Target<'_>], component: &str, out: &mut Vec<Finding>) {
    let held: Vec<(&str, Lock, bool)> = masters
        .iter()
        .filter_map(|m| lock_of(m, component).map(|(l, e)| (m.profile.name.as_str(), l, e)))
        .collect();
    let mut reported = Vec::new();
    for (j, &(name, lock, explicit)) in held.iter().enumerate() {
        for &(other, other_lock, _) in &held[..j] {
            if lock.shares(other_lock) || reported.contains(&(other_lock, lock)) {
                continue;
            }
            reported.push((other_lock, lock));
            let how = |l: Lock, explicit: bool| {
                format!(
                    "{} ({}{})",
                    l.objects().join(" and "),
                    l.name(),
                    if explicit {
                        ""
                    } else {
                        ", the release's default"
                    }
                )
            };
            let other_explicit = held.iter().find(|h| h.0 == other).is_some_and(|h| h.2);
            out.push(
                Finding::new(
                    Severity::Error,
                    name,
                    format!(
                        "{component} holds its leader-election lock in {} here and in {} on {other}: neither sees the other's leader, so both act as leader",
                        how(lock, explicit),
                        how(other_lock, other_explicit),
                    ),
                )
                .component(component)
                .flag("leader-elect-resource-lock")
                .fix("move one minor at a time (v1.17 to v1.19 hold the lock in Endpoints and a Lease together), or set --leader-elect-resource-lock=endpointsleases on both")
                .source(LOCKS),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_locks() {
        assert_eq!(
            describe(&path(Minor(14), Minor(33))),
            "v1.15, v1.16, …, v1.33"
        );
        assert_eq!(path(Minor(14), Minor(33)).len(), 19);
        assert_eq!(describe(&path(Minor(14), Minor(16))), "v1.15, v1.16");
        assert_eq!(Lock::default_at(Minor(14)), Lock::Endpoints);
        assert_eq!(Lock::default_at(Minor(17)), Lock::EndpointsLeases);
        assert_eq!(Lock::default_at(Minor(19)), Lock::EndpointsLeases);
        assert_eq!(Lock::default_at(Minor(20)), Lock::Leases);
        // The migration path: each step shares an object with the next.
        assert!(Lock::Endpoints.shares(Lock::EndpointsLeases));
        assert!(Lock::EndpointsLeases.shares(Lock::Leases));
        assert!(!Lock::Endpoints.shares(Lock::Leases));
        assert!(!Lock::ConfigMaps.shares(Lock::Endpoints));
        assert_eq!(Lock::parse(" leases "), Some(Lock::Leases));
        assert_eq!(Lock::parse("lease"), None);
    }
}
