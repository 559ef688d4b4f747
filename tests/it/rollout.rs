//! Rollouts on a booted master (issue 13), in QEMU under a real systemd: a master booted from
//! version 1 updates itself to version 2 (a profile change) through systemd-sysupdate and its
//! health gate, keeping version 1 as the fallback; version 3, whose apiserver never becomes
//! ready, is rolled back by the gate and marked bad, and a plain `systemd-sysupdate update`
//! does not install it again; an update whose power is cut in the middle boots into a
//! complete, healthy version. One machine, rebooted, state and all.

use crate::boot::{base_store, boot, built};
use crate::support::{Project, manifest};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn edit(p: &Project, file: &str, from: &str, to: &str) {
    let path = p.path().join("profiles").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// master-1 built from the project's profiles as they are now, at `epoch`, into `out`.
fn build(p: &Project, out: &str, epoch: &str) -> PathBuf {
    let root = p.path().join(out);
    p.ok(&[
        "--store",
        &base_store(),
        "build-image",
        "master-1",
        "--sample",
        "--epoch",
        epoch,
        "--out",
        root.to_str().unwrap(),
    ]);
    root.join("sample/master-1")
}

fn version(dir: &Path) -> String {
    manifest(dir)["version"].as_str().unwrap().to_owned()
}

/// The records of rollouts.json for `version` with `result`.
fn records<'a>(r: &'a Value, version: &str, result: &str) -> Vec<&'a Value> {
    r["rollouts"]
        .as_array()
        .unwrap_or_else(|| panic!("no rollouts.json in the report: {r}"))
        .iter()
        .filter(|x| x["version"] == version && x["result"] == result)
        .collect()
}

#[test]
fn a_booted_master_updates_rolls_back_a_bad_version_and_survives_a_power_cut() {
    let (p, v1_dir) = built("v1");
    let secrets = p.path().join("secrets");
    p.ok(&["dev-secrets", secrets.to_str().unwrap()]);
    let v1 = version(&v1_dir);

    // Version 2: a profile change (the gate's deadline), built later.
    edit(
        &p,
        "master-1.toml",
        "inherit = \"cluster.toml\"\n",
        "inherit = \"cluster.toml\"\n\n[rollout]\ngate_deadline = 100\n",
    );
    let v2_dir = build(&p, "v2", "1558001700");
    let v2 = version(&v2_dir);
    // Version 3: an apiserver given the wrong key for its serving certificate (the
    // service-account key): it cannot serve TLS, exits and keeps being restarted.
    let (good_key, bad_key) = (
        "tls-private-key-file = \"{{ paths.cert_dir }}/kubernetes-key.pem\"",
        "tls-private-key-file = \"{{ paths.cert_dir }}/sa.key\"",
    );
    edit(&p, "cluster.toml", good_key, bad_key);
    edit(
        &p,
        "master-1.toml",
        "gate_deadline = 100",
        "gate_deadline = 60",
    );
    let v3_dir = build(&p, "v3", "1558001800");
    let v3 = version(&v3_dir);
    // Version 4: version 2's profiles, built later still.
    edit(&p, "cluster.toml", bad_key, good_key);
    edit(
        &p,
        "master-1.toml",
        "gate_deadline = 60",
        "gate_deadline = 100",
    );
    let v4_dir = build(&p, "v4", "1558001900");
    let v4 = version(&v4_dir);
    let all = [&v1, &v2, &v3, &v4];
    for (i, a) in all.iter().enumerate() {
        assert!(
            all[i + 1..].iter().all(|b| a != b),
            "versions repeat: {all:?}"
        );
    }
    // The images an update server needs, named as sysupdate's MatchPattern reads them.
    for (dir, v) in [(&v2_dir, &v2), (&v3_dir, &v3)] {
        for sub in ["extensions", "confexts"] {
            let sums = std::fs::read_to_string(dir.join(sub).join("SHA256SUMS")).unwrap();
            assert!(
                sums.trim_end()
                    .ends_with(&format!("  kubemint-master-1_{v}.raw")),
                "{sub}/SHA256SUMS: {sums}"
            );
        }
    }

    let out = p.path().join("v1");
    let machine = p.path().join("machine.raw");
    let arg = |d: &Path| d.to_str().unwrap().to_owned();

    // 1. Booted on version 1, updated to version 2: the gate passes, version 1 is the fallback.
    let r = boot(
        &p,
        &out,
        &machine,
        Some(&secrets),
        &["--update-to", &arg(&v2_dir)],
    );
    assert_eq!(r["healthy"], true, "{r}");
    assert_eq!(r["version_before"], v1.as_str(), "{r}");
    assert_eq!(r["version_after"], v2.as_str(), "{r}");
    assert_eq!(r["rolled_back"], false, "{r}");
    assert!(r["update_seconds"].as_f64().is_some(), "{r}");
    let figures = format!(
        "update v1 -> v2 (TCG): healthy on v2 {} s after the update started\n",
        r["update_seconds"]
    );
    eprint!("{figures}");
    assert_eq!(r["rollout"]["good"], v2.as_str(), "{r}");
    assert_eq!(r["rollout"]["fallback"], v1.as_str(), "{r}");
    assert_eq!(records(&r, &v1, "good").len(), 1, "{r}");
    assert_eq!(records(&r, &v2, "good").len(), 1, "{r}");
    assert_eq!(r["second_update_version"], v2.as_str(), "{r}");

    // 2. Rebooted (version 2 comes up), updated to version 3: its apiserver never answers, the
    //    gate fails, version 2 is back and healthy within the deadline plus 30 s, version 3 is
    //    marked bad and a second systemd-sysupdate update leaves it alone.
    let r = boot(
        &p,
        &out,
        &machine,
        Some(&secrets),
        &["--update-to", &arg(&v3_dir)],
    );
    assert_eq!(r["healthy"], true, "{r}");
    assert_eq!(r["version_before"], v2.as_str(), "{r}");
    assert_eq!(r["version_after"], v2.as_str(), "{r}");
    assert_eq!(r["rolled_back"], true, "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("kube-apiserver"),
        "{r}"
    );
    let back = r["rollback_seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(
        back <= 60.0 + 30.0,
        "{back} s from the failed gate to healthy: {r}"
    );
    let figures = format!(
        "{figures}update v2 -> v3, rolled back (TCG): healthy on v2 again {back} s after the failed gate\n"
    );
    eprint!("{figures}");
    // Kept for README's figures, like the report's screenshot.
    std::fs::write(
        crate::report::artifacts().join("rollout-figures.txt"),
        &figures,
    )
    .unwrap();
    assert!(
        r["rollout"]["bad"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == v3.as_str()),
        "{r}"
    );
    assert_eq!(records(&r, &v3, "bad").len(), 1, "{r}");
    assert_eq!(records(&r, &v2, "rolled-back").len(), 1, "{r}");
    assert_eq!(r["second_update_version"], v2.as_str(), "{r}");

    // 3. Rebooted, updating to version 4, the power cut once its images are switched in.
    let r = boot(
        &p,
        &out,
        &machine,
        Some(&secrets),
        &["--update-to", &arg(&v4_dir), "--crash-during-update"],
    );
    assert_eq!(r["crashed"], true, "{r}");

    // 4. The next boot comes up healthy on a complete version: 4 if its gate passed at boot,
    //    else 2 again; system and configuration extension of the same version.
    let r = boot(&p, &out, &machine, Some(&secrets), &[]);
    assert_eq!(r["healthy"], true, "{r}");
    let now = r["version"].as_str().unwrap();
    assert!(
        now == v4 || now == v2,
        "{now} is neither {v4} nor {v2}: {r}"
    );
    assert_eq!(r["rollout"]["active"], now, "{r}");
    assert_eq!(r["rollout"]["good"], now, "{r}");
}
