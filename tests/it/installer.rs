//! The self-extracting installer: lays down exactly manifest.json's files, changes nothing when
//! run twice, refuses a tampered payload, verifies an installed root, and passes sh -n and
//! shellcheck.

use crate::support::{
    self, Project, as_manifest_files, manifest, manifest_files, require_tool, sh, snapshot, text,
};
use std::path::Path;

fn install(installer: &Path, args: &str) -> std::process::Output {
    sh(&format!("sh '{}' {args}", installer.display()))
}

#[test]
fn installs_exactly_the_manifest_and_is_idempotent() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let installer = dir.join("master-1-install.sh");
    let root = tempfile::tempdir().unwrap();
    let out = install(&installer, &format!("--root '{}'", root.path().display()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = support::installed(root.path());
    assert_eq!(as_manifest_files(&first), manifest_files(&manifest(&dir)));
    let whole = snapshot(root.path());
    if support::is_root() {
        assert!(
            first.values().all(|e| (e.2, e.3) == (0, 0)),
            "owners are not root"
        );
    }
    let epoch = manifest(&dir)["epoch"].as_i64().unwrap();
    assert!(
        first
            .values()
            .filter(|e| e.0 == "file")
            .all(|e| e.6 == epoch),
        "file mtimes are not the epoch"
    );

    let out = install(&installer, &format!("--root '{}'", root.path().display()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        snapshot(root.path()),
        whole,
        "a second run changed the root"
    );

    let out = install(
        &installer,
        &format!("--root '{}' --verify", root.path().display()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("matches master-1"));
}

#[test]
fn verify_reports_drift() {
    let p = Project::new();
    let installer = p.build_sample("master-1").join("master-1-install.sh");
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display();
    assert!(
        install(&installer, &format!("--root '{r}'"))
            .status
            .success()
    );
    let unit = root
        .path()
        .join("usr/lib/systemd/system/kube-apiserver.service");
    std::fs::write(&unit, "[Service]\nExecStart=/bin/evil\n").unwrap();
    std::fs::remove_file(root.path().join("usr/local/bin/kube-apiserver")).unwrap();
    sh(&format!(
        "chmod 0600 '{r}/etc/k8s/kubernetes/audit-policy.yaml'"
    ));
    let out = install(&installer, &format!("--root '{r}' --verify"));
    assert!(!out.status.success());
    let report = text(&out.stdout);
    for want in [
        "/usr/lib/systemd/system/kube-apiserver.service: size",
        "/usr/lib/systemd/system/kube-apiserver.service: sha256",
        "/usr/local/bin/kube-apiserver: missing or not a symlink",
        "/etc/k8s/kubernetes/audit-policy.yaml: mode 0600, expected 0644",
    ] {
        assert!(report.contains(want), "{want} not in:\n{report}");
    }
    assert!(text(&out.stderr).contains("has drifted"));
}

#[test]
fn tampered_installer_is_refused_and_writes_nothing() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let mut bytes = std::fs::read(dir.join("master-1-install.sh")).unwrap();
    let payload = std::fs::read(dir.join("master-1.tar.gz")).unwrap();
    let at = bytes
        .windows(payload.len())
        .position(|w| w == payload)
        .expect("payload embedded verbatim");
    bytes[at + payload.len() / 2] ^= 0x55;
    let tampered = dir.parent().unwrap().join("tampered-install.sh");
    std::fs::write(&tampered, &bytes).unwrap();
    let root = tempfile::tempdir().unwrap();
    for args in [
        format!("--root '{}'", root.path().display()),
        "--list".to_owned(),
    ] {
        let out = install(&tampered, &args);
        assert!(
            !out.status.success(),
            "tampered installer accepted with {args}"
        );
        assert!(
            text(&out.stderr).contains("corrupt or was tampered with"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        0,
        "something was written"
    );
}

#[test]
fn list_prints_every_entry() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let out = install(&dir.join("master-1-install.sh"), "--list");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let files = manifest(&dir)["files"].as_array().unwrap().len();
    assert_eq!(listed.lines().count(), files);
    assert!(listed.contains(
        "l 0777 0:0 /usr/local/bin/kube-apiserver -> /usr/lib/kubernetes/bin/kube-apiserver"
    ));
    assert!(text(&out.stderr).contains("SAMPLE build"));
    let help = install(&dir.join("master-1-install.sh"), "--help");
    assert!(help.status.success() && text(&help.stdout).contains("--verify"));
}

#[test]
fn passes_sh_n_and_shellcheck() {
    let p = Project::new();
    let installer = p.build_sample("master-1").join("master-1-install.sh");
    let out = sh(&format!("sh -n '{}'", installer.display()));
    assert!(out.status.success(), "sh -n: {}", text(&out.stderr));
    require_tool("shellcheck");
    let out = sh(&format!("shellcheck -s sh '{}'", installer.display()));
    assert!(out.status.success(), "shellcheck:\n{}", text(&out.stdout));
}

/// Installing into `/` creates the service user and the tmpfiles.d directories. Run inside a
/// private mount namespace whose `/` is an overlay of the host's, so the host stays untouched.
#[test]
fn install_on_slash_creates_user_and_directories() {
    let p = Project::new();
    let installer = p.build_sample("master-1").join("master-1-install.sh");
    let out = support::in_overlay_root(
        &[(installer.as_path(), "install.sh")],
        "sh /run/kubemint-test/install.sh --no-start
         sh /run/kubemint-test/install.sh --no-start
         sh /run/kubemint-test/install.sh --verify
         getent passwd k8s
         stat -c '%U %a %n' /data/apps/k8s/kubernetes /data/apps/k8s/kubernetes/logs/kube-apiserver
         readlink /data/apps/k8s/kubernetes/sbin",
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("k8s:x:"), "{stdout}");
    assert!(
        stdout.contains("k8s 755 /data/apps/k8s/kubernetes\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("k8s 755 /data/apps/k8s/kubernetes/logs/kube-apiserver"),
        "{stdout}"
    );
    assert!(stdout.contains("/usr/lib/kubernetes/bin\n"), "{stdout}");
    assert!(stdout.contains("not starting (--no-start)"), "{stdout}");
    assert!(
        sh("getent passwd k8s").stdout.is_empty(),
        "the host got a k8s user"
    );
}
