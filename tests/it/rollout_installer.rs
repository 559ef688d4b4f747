//! Rollouts on installed masters (issue 13): the installer keeps generations, restarts only the
//! units whose files changed, rolls back by itself when the gate fails, goes back on demand, and
//! an install killed at any step leaves a complete version, which its own --verify accepts.

use crate::support::{self, Project, sh, snapshot, text};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Builds of master-1 from the sample release: v1 as the repository has it; v2 with the
/// scheduler's verbosity changed (only the scheduler reads what changes); v3 with the
/// apiserver's changed too. Each installer is copied out, as the next build replaces it.
fn builds(p: &Project, n: usize) -> Vec<PathBuf> {
    let cluster = p.path().join("profiles/cluster.toml");
    let original = std::fs::read_to_string(&cluster).unwrap();
    let saved = p.path().join("installers");
    std::fs::create_dir_all(&saved).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        // The third `v = 2` is the scheduler's, the first the apiserver's.
        let mut text = original.clone();
        if i >= 1 {
            text = replace_nth(&text, "v = 2\n", 2, "v = 3\n");
        }
        if i >= 2 {
            text = replace_nth(&text, "v = 2\n", 0, "v = 4\n");
        }
        std::fs::write(&cluster, text).unwrap();
        let dir = p.build_sample("master-1");
        let to = saved.join(format!("v{}-install.sh", i + 1));
        std::fs::copy(dir.join("master-1-install.sh"), &to).unwrap();
        // The version the installer reports is the build's.
        assert_eq!(
            identity(&to).1,
            support::manifest(&dir)["version"].as_str().unwrap()
        );
        out.push(to);
    }
    std::fs::write(&cluster, original).unwrap();
    out
}

fn replace_nth(text: &str, pat: &str, n: usize, with: &str) -> String {
    let at = text
        .match_indices(pat)
        .nth(n)
        .unwrap_or_else(|| panic!("no occurrence {n} of {pat:?}"))
        .0;
    format!("{}{with}{}", &text[..at], &text[at + pat.len()..])
}

fn run(installer: &Path, root: &Path, args: &str) -> Output {
    sh(&format!(
        "sh '{}' --root '{}' {args}",
        installer.display(),
        root.display()
    ))
}

fn ok(installer: &Path, root: &Path, args: &str) -> String {
    let out = run(installer, root, args);
    assert!(
        out.status.success(),
        "{} {args} failed:\nstdout:\n{}\nstderr:\n{}",
        installer.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn status(installer: &Path, root: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(installer, root, "--status --json")).unwrap()
}

/// The digest (generation id) and version of each installer's build.
fn identity(installer: &Path) -> (String, String) {
    let empty = tempfile::tempdir().unwrap();
    let s = status(installer, empty.path());
    (
        s["this"]["digest"].as_str().unwrap().to_owned(),
        s["this"]["version"].as_str().unwrap().to_owned(),
    )
}

fn active(installer: &Path, root: &Path) -> Option<String> {
    status(installer, root)["active"]["digest"]
        .as_str()
        .map(str::to_owned)
}

fn history(root: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(root.join("var/lib/kubemint/rollouts.json")).unwrap();
    serde_json::from_str::<Vec<serde_json::Value>>(&text)
        .unwrap_or_else(|e| panic!("rollouts.json is not a JSON array ({e}):\n{text}"))
}

fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no line with {prefix:?} in:\n{stdout}"))
}

fn generations(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("var/lib/kubemint/generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn generations_restart_what_changed_roll_back_and_report() {
    let p = Project::new();
    let v = builds(&p, 3);
    let ids: Vec<(String, String)> = v.iter().map(|i| identity(i)).collect();
    assert!(
        ids[0].0 != ids[1].0 && ids[1].0 != ids[2].0,
        "builds share a digest"
    );
    let root = tempfile::tempdir().unwrap();
    let r = root.path();

    // v1: the first generation; every unit would (re)start.
    let out = ok(&v[0], r, "");
    assert!(
        line(&out, "units to restart: ").contains("kube-apiserver.service"),
        "{out}"
    );
    let s = status(&v[0], r);
    assert_eq!(s["active"]["digest"], ids[0].0.as_str());
    assert_eq!(s["active"]["version"], ids[0].1.as_str());
    assert!(s["previous"].is_null());
    ok(&v[0], r, "--verify");

    // v2: only the scheduler's files changed, so only it restarts.
    let out = ok(&v[1], r, "");
    assert_eq!(
        line(&out, "units to restart: "),
        "kube-scheduler.service",
        "{out}"
    );
    let unchanged = line(&out, "units unchanged, not restarted: ");
    assert!(
        unchanged.contains("kube-apiserver.service")
            && unchanged.contains("kube-controller-manager.service"),
        "{out}"
    );
    let s = status(&v[1], r);
    assert_eq!(s["active"]["digest"], ids[1].0.as_str());
    assert_eq!(s["previous"]["digest"], ids[0].0.as_str());
    assert_eq!(s["previous"]["version"], ids[0].1.as_str());
    ok(&v[1], r, "--verify");
    assert_eq!(generations(r), {
        let mut g = vec![ids[0].0.clone(), ids[1].0.clone()];
        g.sort();
        g
    });

    // v2 again: a no-op that restarts nothing and changes nothing.
    let before = snapshot(r);
    let out = ok(&v[1], r, "");
    assert!(
        out.contains("already the active generation") && out.contains("no unit restarted"),
        "{out}"
    );
    assert!(!out.contains("units to restart"), "{out}");
    assert_eq!(snapshot(r), before, "a reinstall changed the root");

    // v3 fails its gate: v2 again, v3 recorded bad with the gate's reason.
    let gate =
        "--gate-command 'echo probing; echo \"reason: kube-apiserver /readyz: 503\"; exit 1'";
    let out = run(&v[2], r, gate);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(
        line(&stdout, "units to restart: ").starts_with("kube-apiserver.service"),
        "{stdout}"
    );
    assert!(
        stderr.contains("failed its gate (kube-apiserver /readyz: 503): rolled back to"),
        "{stderr}"
    );
    assert_eq!(active(&v[1], r).as_deref(), Some(ids[1].0.as_str()));
    assert_eq!(status(&v[1], r)["previous"]["digest"], ids[0].0.as_str());
    ok(&v[1], r, "--verify");
    let h = history(r);
    let n = h.len();
    assert_eq!(h[n - 2]["version"], ids[2].1.as_str());
    assert_eq!(h[n - 2]["result"], "bad");
    assert_eq!(h[n - 2]["reason"], "kube-apiserver /readyz: 503");
    assert_eq!(h[n - 1]["version"], ids[1].1.as_str());
    assert_eq!(h[n - 1]["result"], "rolled-back");
    for rec in &h {
        for key in ["version", "time", "result", "reason", "digest"] {
            assert!(rec[key].is_string(), "{key} missing in {rec}");
        }
    }
    assert!(
        !generations(r).contains(&ids[2].0),
        "the bad generation was kept"
    );
    // It is not installed again without --force.
    let out = run(&v[2], r, "");
    assert!(
        !out.status.success() && text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );

    // --rollback: back to v1 on demand; the scheduler restarts.
    let out = ok(&v[1], r, "--rollback");
    assert_eq!(
        line(&out, "units to restart: "),
        "kube-scheduler.service",
        "{out}"
    );
    let s = status(&v[0], r);
    assert_eq!(s["active"]["digest"], ids[0].0.as_str());
    assert_eq!(s["previous"]["digest"], ids[1].0.as_str());
    ok(&v[0], r, "--verify");
    let h = history(r);
    assert_eq!(h.last().unwrap()["result"], "rollback");
    assert_eq!(h.last().unwrap()["version"], ids[0].1.as_str());
    assert_eq!(
        h.iter()
            .map(|r| r["result"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["installed", "installed", "bad", "rolled-back", "rollback"]
    );

    // --status in words.
    let out = ok(&v[0], r, "--status");
    assert!(
        out.contains(&format!("active: {} (digest {})", ids[0].1, ids[0].0))
            && out.contains(&format!("previous: {} (digest {})", ids[1].1, ids[1].0)),
        "{out}"
    );

    // A gate that passes is recorded "good".
    ok(&v[1], r, "--gate-command 'echo reason: all healthy'");
    let h = history(r);
    assert_eq!(h.last().unwrap()["result"], "good");
    assert_eq!(h.last().unwrap()["reason"], "gate passed: all healthy");
}

/// Kills the installer (kill -9 of its whole process group) just before its Nth `mv`, the
/// rename that each step changing what is live or recorded ends with, for every N of a v1 → v2
/// install, of a --rollback and of an install whose gate fails: afterwards the root has a complete version, v1 or v2, that its
/// own installer's --verify accepts, once any run (here --recover) has completed the journalled
/// switch; without a journal, even before.
#[test]
fn an_install_killed_at_any_step_leaves_a_complete_version() {
    let p = Project::new();
    let v = builds(&p, 2);
    let ids: Vec<(String, String)> = v.iter().map(|i| identity(i)).collect();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // An `mv` first in PATH that counts its calls and, at the chosen one, kills its process
    // group: the installer and everything it runs, as a power cut would stop them.
    let bin = tempfile::tempdir().unwrap();
    let real_mv = support::sh_ok("command -v mv").trim().to_owned();
    let counter = bin.path().join("count");
    std::fs::write(
        bin.path().join("mv"),
        format!(
            "#!/bin/sh\nn=$(($(cat '{c}') + 1))\necho $n >'{c}'\n\
             if [ \"$n\" = \"$KUBEMINT_TEST_KILL_AT\" ]; then kill -9 0; fi\nexec {real_mv} \"$@\"\n",
            c = counter.display()
        ),
    )
    .unwrap();
    support::sh_ok(&format!("chmod 0755 '{}/mv'", bin.path().display()));
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    ok(&v[0], r, "");
    let installer_of = |id: &str| {
        if id == ids[0].0 { &v[0] } else { &v[1] }
    };
    let check = |what: &str, n: usize| {
        let journal = r.join("var/lib/kubemint/switch").exists();
        if !journal {
            let a = active(&v[1], r).unwrap();
            let out = run(installer_of(&a), r, "--verify");
            assert!(
                out.status.success(),
                "{what}, killed at mv {n}: not complete before recovery:\n{}",
                text(&out.stdout)
            );
        }
        ok(&v[1], r, "--recover");
        let a = active(&v[1], r).unwrap();
        assert!(a == ids[0].0 || a == ids[1].0, "{what} {n}: active {a}");
        let out = run(installer_of(&a), r, "--verify");
        assert!(
            out.status.success(),
            "{what}, killed at mv {n}: the active version is not complete:\n{}",
            text(&out.stdout)
        );
    };
    let failing = ["--force", "--gate-command", "echo 'reason: test'; exit 1"];
    for (what, args) in [
        ("install", &[][..]),
        ("rollback", &["--rollback"][..]),
        ("automatic rollback", &failing[..]),
    ] {
        let mut n = 1;
        loop {
            // Start from v1 active (and, for the rollback, from v2 with v1 before it).
            if active(&v[1], r).as_deref() != Some(ids[0].0.as_str()) {
                ok(&v[0], r, "");
            }
            if what == "rollback" {
                ok(&v[1], r, "");
            }
            std::fs::write(&counter, "0").unwrap();
            let out = std::process::Command::new("sh")
                .arg(&v[1])
                .arg("--root")
                .arg(r)
                .args(args)
                .env("PATH", &path)
                .env("KUBEMINT_TEST_KILL_AT", n.to_string())
                .process_group(0)
                .output()
                .unwrap();
            check(what, n);
            if std::os::unix::process::ExitStatusExt::signal(&out.status) != Some(9) {
                // Fewer than n renames: every kill point was tried, and the run ended as it
                // should.
                if what == "automatic rollback" {
                    assert!(
                        text(&out.stderr).contains("failed its gate (test): rolled back"),
                        "{}",
                        text(&out.stderr)
                    );
                    assert_eq!(active(&v[1], r).as_deref(), Some(ids[0].0.as_str()));
                } else {
                    assert!(out.status.success(), "{what}: {}", text(&out.stderr));
                }
                break;
            }
            n += 1;
            assert!(n < 100, "too many renames");
        }
        assert!(n > 4, "{what}: the kill never hit the switch");
    }
    // Nothing half-made stays behind once a run completed.
    let leftovers: Vec<String> = generations(r)
        .into_iter()
        .filter(|g| g.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// On a live root (an overlay of this machine's, no systemd running in it): v1 then v2 on /,
/// each verified, and the status and history kept in /var/lib/kubemint.
#[test]
fn on_a_live_root_v1_then_v2() {
    let p = Project::new();
    let v = builds(&p, 2);
    let out = support::in_overlay_root(
        &[(v[0].as_path(), "v1.sh"), (v[1].as_path(), "v2.sh")],
        "sh /run/kubemint-test/v1.sh --no-start
         sh /run/kubemint-test/v1.sh --verify
         sh /run/kubemint-test/v2.sh --no-start
         sh /run/kubemint-test/v2.sh --verify
         sh /run/kubemint-test/v2.sh --status
         cat /var/lib/kubemint/rollouts.json",
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("units to restart: kube-scheduler.service\n"),
        "{stdout}"
    );
    assert!(stdout.contains("not starting (--no-start)"), "{stdout}");
    assert!(
        stdout.contains("this installer: ") && stdout.contains(", active\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\"result\":\"installed\""), "{stdout}");
}
