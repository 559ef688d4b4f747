//! One minor at a time: `check --release` names the minors a jump skips, a set whose masters
//! run two minors is a rolling upgrade (one apart, and only with leader locks they share), the
//! lock pins the latest patch of every minor on the way, and `upgrade-plan` lists the hops and
//! writes each hop's profile set.

use crate::support::{Project, repo, text};
use serde_json::Value;

fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let path = p.path().join(rel);
    let s = std::fs::read_to_string(&path).unwrap();
    assert!(s.contains(from), "{from:?} not in {rel}");
    std::fs::write(&path, s.replacen(from, to, 1)).unwrap();
}

fn check(p: &Project, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = p.run(&all);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out.status.success(), report)
}

fn messages(report: &Value, severity: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            format!(
                "{} {}: {}",
                f["profile"].as_str().unwrap(),
                f["component"].as_str().unwrap_or("-"),
                f["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_jump_of_several_minors_is_an_error_naming_the_path() {
    let p = Project::new();
    let (ok, report) = check(&p, &["--all", "--release", "v1.33.5"]);
    assert!(!ok);
    let skipped: Vec<_> = messages(&report, "error")
        .into_iter()
        .filter(|e| e.contains("skips"))
        .collect();
    assert_eq!(
        skipped,
        ["master-1", "master-2", "master-3"].map(|m| format!(
            "{m} -: v1.14 → v1.33 skips 18 minors; Kubernetes supports one at a time: v1.15, v1.16, …, v1.33"
        ))
    );
    // Every finding names its source; this one the skew policy.
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains("skips"))
        .unwrap();
    assert!(
        f["source"]
            .as_str()
            .unwrap()
            .contains("version skew policy")
    );
    // One minor ahead is the hop Kubernetes supports: nothing to report but the notes.
    let (ok, report) = check(&p, &["--all", "--release", "v1.15.12"]);
    assert!(ok, "{report}");
    assert_eq!(report["warnings"], 0, "{report}");
    assert!(!report.to_string().contains("skips"));
}

#[test]
fn masters_one_minor_apart_are_a_rolling_upgrade_two_are_not() {
    let p = Project::new();
    edit(
        &p,
        "profiles/master-1.toml",
        "inherit = \"cluster.toml\"\n",
        "inherit = \"cluster.toml\"\nrelease = \"v1.15.12\"\n",
    );
    let (ok, report) = check(&p, &["--all"]);
    assert!(ok, "{report}");
    assert_eq!(report["warnings"], 0, "{report}");
    assert!(
        messages(&report, "note").contains(
            &"master-1 -: a rolling upgrade from v1.14 to v1.15 in progress (master-1 on v1.15; master-2, master-3 on v1.14): Kubernetes allows it one minor apart".to_owned()
        ),
        "{report}"
    );
    edit(
        &p,
        "profiles/master-1.toml",
        "release = \"v1.15.12\"",
        "release = \"v1.16.15\"",
    );
    let (ok, report) = check(&p, &["--all"]);
    assert!(!ok);
    let errors = messages(&report, "error");
    for m in ["master-2", "master-3"] {
        assert!(
            errors.contains(&format!(
                "{m} kube-apiserver: v1.14 is more than one minor older than kube-apiserver v1.16 on master-1: HA apiservers stay within one minor"
            )),
            "{errors:?}"
        );
    }
    assert!(
        report.to_string().contains("version skew policy"),
        "{report}"
    );
}

#[test]
fn controller_managers_that_do_not_see_each_others_lock_are_an_error() {
    let p = Project::new();
    // master-1 pins a Lease lock; its peers on v1.14 hold theirs in Endpoints.
    edit(
        &p,
        "profiles/master-1.toml",
        "[host]\n",
        "[components.kube-controller-manager.flags]\nleader-elect-resource-lock = \"leases\"\n\n[host]\n",
    );
    let (ok, report) = check(&p, &["--all"]);
    assert!(!ok);
    let errors = messages(&report, "error");
    assert_eq!(
        errors,
        [
            "master-2 kube-controller-manager: kube-controller-manager holds its leader-election lock in Endpoints (endpoints, the release's default) here and in Lease (leases) on master-1: neither sees the other's leader, so both act as leader"
        ],
        "{report}"
    );
    // The migration lock sees both: endpointsleases on v1.17 beside endpoints on v1.16.
    let p = Project::new();
    edit(
        &p,
        "profiles/cluster.toml",
        "release = \"v1.14.2\"",
        "release = \"v1.16.15\"",
    );
    edit(
        &p,
        "profiles/master-1.toml",
        "inherit = \"cluster.toml\"\n",
        "inherit = \"cluster.toml\"\nrelease = \"v1.17.17\"\n",
    );
    let (ok, report) = check(&p, &["--all"]);
    assert!(ok, "{report}");
}

#[test]
fn the_lock_pins_the_latest_patch_of_every_minor_with_its_source() {
    let lock = kubemint::lock::Lock::load(&repo().join("vendor")).unwrap();
    for minor in 14..=33 {
        let of_minor: Vec<_> = lock
            .releases
            .iter()
            .filter(|r| r.name.starts_with(&format!("v1.{minor}.")))
            .collect();
        assert!(!of_minor.is_empty(), "no release of v1.{minor}");
        for r in of_minor {
            let source = r.source.as_deref().unwrap_or_default();
            assert!(
                source.starts_with(&format!("CHANGELOG/CHANGELOG-1.{minor}.md")),
                "{}: {source}",
                r.name
            );
            assert_eq!(r.file, "kubernetes-server-linux-amd64.tar.gz");
            assert!(
                r.urls.iter().any(|u| u
                    == &format!(
                        "https://dl.k8s.io/{}/kubernetes-server-linux-amd64.tar.gz",
                        r.name
                    )),
                "{}",
                r.name
            );
        }
    }
    // The guide's release and the upgrade set's stay.
    for name in ["v1.14.2", "v1.33.5"] {
        assert!(lock.releases.iter().any(|r| r.name == name), "{name}");
    }
    // The digests read from a fork's copy of the CHANGELOG say so.
    for name in ["v1.29.15", "v1.30.14", "v1.31.14"] {
        let r = lock.releases.iter().find(|r| r.name == name).unwrap();
        assert!(
            r.source
                .as_deref()
                .unwrap()
                .contains("aks-lts/kubernetes fork copy"),
            "{name}"
        );
    }
}

#[test]
fn upgrade_plan_lists_19_hops_with_findings_edits_and_cluster_steps() {
    let p = Project::new();
    let out = p.ok(&["upgrade-plan", "--to", "v1.33.5", "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["from"], "v1.14.2");
    assert_eq!(plan["to"], "v1.33.5");
    let hops = plan["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 19);
    let releases: Vec<&str> = hops
        .iter()
        .map(|h| h["release"].as_str().unwrap())
        .collect();
    assert_eq!(
        releases,
        [
            "v1.15.12", "v1.16.15", "v1.17.17", "v1.18.20", "v1.19.16", "v1.20.15", "v1.21.14",
            "v1.22.17", "v1.23.17", "v1.24.17", "v1.25.16", "v1.26.15", "v1.27.16", "v1.28.15",
            "v1.29.15", "v1.30.14", "v1.31.14", "v1.32.8", "v1.33.5",
        ]
    );
    for (i, h) in hops.iter().enumerate() {
        let from = if i == 0 { "v1.14.2" } else { releases[i - 1] };
        assert_eq!(h["from"], from);
        assert_eq!(h["to"], releases[i]);
        // Every hop: at least the masters one at a time; every step names its source.
        let steps = h["cluster_steps"].as_array().unwrap();
        assert!(!steps.is_empty());
        assert!(
            steps
                .iter()
                .all(|s| s["source"].as_str().is_some_and(|s| !s.is_empty()))
        );
        // The edits leave nothing but notes for a person on this set.
        assert_eq!(h["remaining"].as_array().unwrap().len(), 0, "{h}");
        assert!(
            h["edits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "release")
        );
    }
    let hop = |to: &str| hops.iter().find(|h| h["to"] == to).unwrap();
    let edits = |to: &str| {
        hop(to)["edits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["change"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // v1.20: the service-account flags it cannot start without, found and added.
    let f = hop("v1.20.15")["findings"].to_string();
    assert!(
        f.contains("--service-account-issuer") || f.contains("service-account-issuer"),
        "{f}"
    );
    assert!(
        edits("v1.20.15").contains(
            &"kube-apiserver: set --service-account-issuer=https://kubernetes.default.svc.cluster.local (a default: confirm it)".to_owned()
        ),
        "{:?}",
        edits("v1.20.15")
    );
    assert!(edits("v1.24.17").contains(&"kube-apiserver: remove --insecure-port".to_owned()));
    // The leader lock's two moves are cluster steps of their hops.
    let steps = |to: &str| hop(to)["cluster_steps"].to_string();
    assert!(steps("v1.17.17").contains("endpointsleases"));
    assert!(steps("v1.20.15").contains("Lease only"));
    assert!(steps("v1.22.17").contains("etcd"));
    // The human form names every hop.
    let human = text(&p.ok(&["upgrade-plan", "--to", "v1.33.5"]).stdout);
    assert!(
        human.starts_with("upgrade plan for profiles: v1.14.2 → v1.33.5, 19 hops"),
        "{human}"
    );
    assert!(
        human.contains("\nhop 19/19: v1.32.8 → v1.33.5\n"),
        "{human}"
    );
}

#[test]
fn the_first_hop_is_written_checked_and_built() {
    let p = Project::new();
    let out = p.ok(&[
        "upgrade-plan",
        "--to",
        "v1.33.5",
        "--write",
        "profiles/hop-1",
    ]);
    assert!(text(&out.stderr).contains("wrote the profile set of v1.15.12"));
    let cluster = std::fs::read_to_string(p.path().join("profiles/hop-1/cluster.toml")).unwrap();
    assert!(cluster.contains("\nrelease = \"v1.15.12\"\n"), "{cluster}");
    // Comments are kept, and the edit says what it did.
    assert!(cluster.contains("# Dropped: the guide's --runtime-config=api/all."));
    assert!(cluster.contains("# upgrade-plan v1.15.12: was v1.14.2\n"));
    let (ok, report) = check(&p, &["--profiles", "profiles/hop-1", "--all"]);
    assert!(ok, "{report}");
    assert_eq!(report["checked"][0]["release"], "v1.15.12");
    assert_eq!(report["warnings"], 0, "{report}");
    p.ok(&[
        "build-image",
        "--profiles",
        "profiles/hop-1",
        "--all",
        "--sample",
    ]);
    let m = crate::support::manifest(&p.path().join("target/images/sample/hop-1/master-1"));
    assert_eq!(m["release"]["name"], "v1.15.12");
    // A directory that holds something is never written over.
    let err = p.fails(&[
        "upgrade-plan",
        "--to",
        "v1.33.5",
        "--write",
        "profiles/hop-1",
    ]);
    assert!(err.contains("exists and is not empty"), "{err}");
}

#[test]
fn the_last_hop_arrives_at_the_upgrade_set() {
    let p = Project::new();
    p.ok(&[
        "upgrade-plan",
        "--to",
        "v1.33.5",
        "--write",
        "profiles/hop-19",
        "--hop",
        "19",
    ]);
    let flags = |set: &str| {
        let out = p.ok(&["plan", "--profiles", set, "master-1"]);
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        let unit = |c: &str| {
            let content = plan["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["path"] == format!("/usr/lib/systemd/system/{c}.service"))
                .unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut lines: Vec<String> = content
                .lines()
                .map(|l| l.trim().trim_end_matches('\\').trim().to_owned())
                .filter(|l| l.starts_with("--"))
                .collect();
            lines.sort();
            lines
        };
        (
            plan["release"]["name"].clone(),
            unit("kube-apiserver"),
            unit("kube-controller-manager"),
            unit("kube-scheduler"),
        )
    };
    assert_eq!(flags("profiles/hop-19"), flags("profiles/upgrade"));
    let (ok, report) = check(&p, &["--profiles", "profiles/hop-19", "--all"]);
    assert!(ok, "{report}");
    // Refusals: not a release, and no downgrade.
    let err = p.fails(&["upgrade-plan", "--to", "latest"]);
    assert!(err.contains("is not a Kubernetes 1.x release"), "{err}");
    let err = p.fails(&[
        "upgrade-plan",
        "--profiles",
        "profiles/upgrade",
        "--to",
        "v1.14.10",
    ]);
    assert!(err.contains("not downgrades"), "{err}");
}
