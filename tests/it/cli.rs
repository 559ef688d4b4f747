//! The command line as users and scripts meet it: --help everywhere, --json summaries, --all,
//! pin and --release, and a failed build leaving the previous output untouched.

use crate::support::{Project, snapshot, text};

#[test]
fn every_command_has_help() {
    let p = Project::new();
    for cmd in [
        &[][..],
        &["build-image"],
        &["fetch"],
        &["pin"],
        &["plan"],
        &["upgrade-plan"],
        &["bench"],
        &["report"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = p.ok(&args);
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn build_all_with_json_summary() {
    let p = Project::new();
    let out = p.ok(&["build-image", "--all", "--sample", "--json"]);
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let built = built.as_array().unwrap();
    assert_eq!(
        built
            .iter()
            .map(|b| b["profile"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["master-1", "master-2", "master-3"]
    );
    for b in built {
        assert_eq!(b["sample"], true);
        let kinds: Vec<_> = b["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "payload",
                "installer",
                "oci-layout",
                "oci-archive",
                "sysext",
                "confext",
                "disk",
                "sbom-spdx",
                "sbom-cyclonedx",
                "provenance",
                "report"
            ]
        );
        let dir = std::path::PathBuf::from(b["dir"].as_str().unwrap());
        let manifest = crate::support::manifest(&dir);
        assert_eq!(manifest["profile"], b["profile"]);
        assert_eq!(manifest["sample"], true);
        assert_eq!(manifest["outputs"], b["outputs"]);
        assert_eq!(manifest["release"]["name"], "v1.14.2");
        assert_eq!(manifest["generator"]["name"], "kubemint");
        assert!(
            manifest["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["path"] == "profiles/cluster.toml")
        );
    }
    // Masters share the binary, not the rendered files.
    let m = |i: usize| {
        crate::support::manifest(std::path::Path::new(built[i]["dir"].as_str().unwrap()))
    };
    let file = |m: &serde_json::Value, path: &str| {
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap()["sha256"]
            .clone()
    };
    let bin = "/usr/lib/kubernetes/bin/kube-apiserver";
    let unit = "/usr/lib/systemd/system/kube-apiserver.service";
    assert_eq!(file(&m(0), bin), file(&m(1), bin));
    assert_ne!(file(&m(0), unit), file(&m(1), unit));
}

#[test]
fn human_summary_names_sizes_digests_and_sample() {
    let p = Project::new();
    let out = text(&p.ok(&["build-image", "master-1", "--sample"]).stdout);
    assert!(out.contains("SAMPLE release v1.14.2"), "{out}");
    assert!(
        out.contains("payload") && out.contains("installer") && out.contains("sha256:"),
        "{out}"
    );
}

#[test]
fn failed_build_leaves_previous_output_untouched() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let before = snapshot(&dir);
    let cluster = p.path().join("profiles/cluster.toml");
    let broken = std::fs::read_to_string(&cluster)
        .unwrap()
        .replace("/etc/k8s/kubernetes", "/var/k8s");
    std::fs::write(&cluster, broken).unwrap();
    p.fails(&["build-image", "master-1", "--sample"]);
    assert_eq!(snapshot(&dir), before);
    // A build that fails late (in the image's templates) leaves it untouched too.
    p.write(
        "profiles/cluster.toml",
        &std::fs::read_to_string(crate::support::repo().join("profiles/cluster.toml")).unwrap(),
    );
    let tmpl = p
        .path()
        .join("images/control-plane/templates/tmpfiles.conf.j2");
    std::fs::write(&tmpl, "{{ paths.nope }}\n").unwrap();
    let err = p.fails(&["build-image", "master-1", "--sample"]);
    assert!(err.contains("tmpfiles.conf.j2"), "{err}");
    assert_eq!(snapshot(&dir), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn pin_then_build_against_another_release() {
    let p = Project::new();
    let tarball = p.path().join("custom.tar.gz");
    let mut f = std::fs::File::create(&tarball).unwrap();
    kubemint::sample::write_release(&mut f, "v1.14.2-custom", kubemint::sample::Scale::Tiny)
        .unwrap();
    let out = p.ok(&[
        "pin",
        "v1.14.2-custom",
        "--file",
        tarball.to_str().unwrap(),
        "--json",
    ]);
    let pinned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pinned["change"], "added");
    let lock = std::fs::read_to_string(p.path().join("vendor/releases.toml")).unwrap();
    assert!(lock.contains("name = \"v1.14.2-custom\""), "{lock}");
    assert!(
        lock.contains("name = \"v1.14.2\""),
        "the other releases are kept"
    );
    p.ok(&["build-image", "master-2", "--release", "v1.14.2-custom"]);
    let m = crate::support::manifest(&p.path().join("target/images/master-2"));
    assert_eq!(m["release"]["name"], "v1.14.2-custom");
    assert_eq!(m["release"]["sha512"], pinned["sha512"]);
    assert_eq!(m["sample"], false);
    // Re-pinning other bytes under the same name needs --replace.
    let other = p.path().join("other.tar.gz");
    std::fs::write(&other, b"not the same").unwrap();
    let err = p.fails(&["pin", "v1.14.2-custom", "--file", other.to_str().unwrap()]);
    assert!(err.contains("pass --replace"), "{err}");
    // Pinning the seed release from a local copy with the wrong bytes is refused the same way.
    let err = p.fails(&["pin", "v1.14.2", "--file", other.to_str().unwrap()]);
    assert!(err.contains("is pinned to sha512 f7d9687e"), "{err}");
}

#[test]
fn plan_prints_what_the_tree_holds() {
    let p = Project::new();
    let out = p.ok(&["plan", "master-3"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["profile"], "master-3");
    assert_eq!(
        plan["binaries"][0]["member"],
        "kubernetes/server/bin/kube-apiserver"
    );
    assert!(plan["files"].as_array().unwrap().iter().any(|f| {
        f["content"]
            .as_str()
            .unwrap()
            .contains("--advertise-address=10.10.10.24")
    }));
}

#[test]
fn the_test_command_names_every_missing_tool_once_and_runs_nothing() {
    let p = Project::new();
    let empty = tempfile::tempdir().unwrap();
    let out = p
        .xtask(&["test", "--no-install"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("the test suite needs tools this machine lacks"),
        "{err}"
    );
    for tool in [
        "shellcheck (Debian package shellcheck)",
        "skopeo (Debian package skopeo)",
        "umoci",
    ] {
        assert!(err.contains(tool), "{tool} not in:\n{err}");
    }
    assert!(
        err.contains("sudo apt-get install -y --no-install-recommends"),
        "{err}"
    );
    assert!(err.contains("nothing was run"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn pin_keeps_the_lock_mode_and_unpin_removes_an_entry() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    let lock = p.path().join("vendor/releases.toml");
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o640)).unwrap();
    let file = p.path().join("custom.tar.gz");
    let mut f = std::fs::File::create(&file).unwrap();
    kubemint::sample::write_release(&mut f, "v1.14.2-custom", kubemint::sample::Scale::Tiny)
        .unwrap();
    p.ok(&["pin", "custom-a", "--file", file.to_str().unwrap()]);
    p.ok(&["pin", "custom-b", "--file", file.to_str().unwrap()]);
    let mode = std::fs::metadata(&lock).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640, "pin changed the lock's mode");
    let leftovers: Vec<_> = std::fs::read_dir(p.path().join("vendor"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let store = p.path().join("vendor/store/sha512");
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1);
    // Two entries share the file: unpinning one keeps it, unpinning the other removes it.
    let out = text(&p.ok(&["unpin", "custom-a"]).stdout);
    assert!(
        out.contains("custom-a: removed from vendor/releases.toml") && out.contains("kept"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1);
    let out = text(&p.ok(&["unpin", "custom-b", "--json"]).stdout);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(json["removed"].is_string(), "{json}");
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
    let text_lock = std::fs::read_to_string(&lock).unwrap();
    assert!(!text_lock.contains("custom-") && text_lock.contains("v1.14.2"));
    assert_eq!(
        std::fs::metadata(&lock).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    let err = p.fails(&["unpin", "nope"]);
    assert!(
        err.contains("release \"nope\" is not in") && err.contains("v1.14.2"),
        "{err}"
    );
}

#[test]
fn an_error_and_its_cause_are_printed_once() {
    let p = Project::new();
    let file = p.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = p.run(&[
        "build-image",
        "master-1",
        "--sample",
        "--out",
        file.join("below").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
    assert!(
        !err.contains("error: warning:") && !err.contains("error: note:"),
        "{err}"
    );
}
