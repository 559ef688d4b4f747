//! Safety against hostile roots, hostile inputs and unlucky kills: the installer never writes
//! outside its root nor through a symlink the image does not declare, refuses a cut or altered
//! copy of itself, and its `--verify` sees everything the image owns; a build never replaces
//! what it did not make, replaces all of its outputs or none, and cleans up after killed builds.

use crate::support::{Project, manifest, sh, sh_ok, snapshot, text};
use std::path::{Path, PathBuf};

fn installer(p: &Project) -> PathBuf {
    p.build_sample("master-1").join("master-1-install.sh")
}

fn install(installer: &Path, args: &str) -> std::process::Output {
    sh(&format!("sh '{}' {args}", installer.display()))
}

fn count(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir).min_depth(1).into_iter().count()
}

#[test]
fn the_installer_never_follows_a_symlink_out_of_its_root() {
    let p = Project::new();
    let installer = installer(&p);
    // /etc a link to another directory; a relative link at usr/lib; each refused, nothing
    // written there or anywhere.
    for (link, target) in [("etc", None), ("usr/lib", Some("../../elsewhere"))] {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let at = root.path().join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        match target {
            None => std::os::unix::fs::symlink(outside.path(), &at).unwrap(),
            Some(t) => {
                std::fs::create_dir_all(root.path().join("elsewhere")).unwrap();
                std::os::unix::fs::symlink(t, &at).unwrap();
            }
        }
        let before = count(root.path());
        let out = install(&installer, &format!("--root '{}'", root.path().display()));
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{link}: {err}");
        assert!(
            err.contains(&format!("symlink: /{link}: a symlink"))
                && err.contains("nothing was written"),
            "{link}: {err}"
        );
        assert_eq!(count(outside.path()), 0, "{link}: wrote outside the root");
        assert_eq!(count(root.path()), before, "{link}: wrote into the root");
    }
    // A leaf where the image has a file is a symlink to a directory: never moved into it.
    let root = tempfile::tempdir().unwrap();
    let unit = root
        .path()
        .join("usr/lib/systemd/system/kube-apiserver.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), &unit).unwrap();
    let out = install(&installer, &format!("--root '{}'", root.path().display()));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("symlink: /usr/lib/systemd/system/kube-apiserver.service: a symlink where the image has a file"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(outside.path()), 0);
    // A directory where the image has a file: refused, named.
    std::fs::remove_file(&unit).unwrap();
    std::fs::create_dir(&unit).unwrap();
    let out = install(&installer, &format!("--root '{}'", root.path().display()));
    assert!(
        text(&out.stderr).contains("type: /usr/lib/systemd/system/kube-apiserver.service: a directory where the image has a file"),
        "{}",
        text(&out.stderr)
    );
}

/// A secrets directory with every required secret.
fn secrets_dir(dir: &Path) -> tempfile::TempDir {
    let secrets = tempfile::tempdir().unwrap();
    for s in manifest(dir)["secrets"].as_array().unwrap() {
        if s["optional"] == true {
            continue;
        }
        let name = s["path"].as_str().unwrap().rsplit('/').next().unwrap();
        std::fs::write(
            secrets.path().join(name),
            format!("KUBEMINT-TEST-SECRET {name}\n"),
        )
        .unwrap();
        sh_ok(&format!(
            "chmod 0600 '{}'",
            secrets.path().join(name).display()
        ));
    }
    secrets
}

/// A root that has the service user, as a booted image root does.
fn root_with_user() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nk8s:x:990:990::/data:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(root.path().join("etc/group"), "root:x:0:\nk8s:x:990:\n").unwrap();
    root
}

#[test]
fn secrets_go_only_where_they_belong_and_are_never_shown() {
    let p = Project::new();
    let installer = installer(&p);
    let dir = installer.parent().unwrap().to_owned();
    let secrets = secrets_dir(&dir);
    // The secrets directory behind a link: refused, nothing placed outside.
    let root = root_with_user();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/k8s")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("etc/k8s/ssl")).unwrap();
    let args = format!(
        "--root '{}' --only-secrets --secrets '{}'",
        root.path().display(),
        secrets.path().display()
    );
    let out = install(&installer, &args);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("symlink: /etc/k8s/ssl: a symlink"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(outside.path()), 0);
    // A directory where a secret goes: refused, not "placed" inside it.
    std::fs::remove_file(root.path().join("etc/k8s/ssl")).unwrap();
    std::fs::create_dir_all(root.path().join("etc/k8s/ssl/ca.pem")).unwrap();
    let out = install(&installer, &args);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("type: /etc/k8s/ssl/ca.pem: not a regular file, where a secret goes"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&root.path().join("etc/k8s/ssl/ca.pem")), 0);
    std::fs::remove_dir(root.path().join("etc/k8s/ssl/ca.pem")).unwrap();
    // A secret source that is a symlink or empty: refused, named; extra files are ignored,
    // said so; wider modes get a note. Contents never appear.
    let target = tempfile::NamedTempFile::new().unwrap();
    std::fs::remove_file(secrets.path().join("sa.key")).unwrap();
    std::os::unix::fs::symlink(target.path(), secrets.path().join("sa.key")).unwrap();
    std::fs::write(secrets.path().join("token.csv"), "").unwrap();
    let out = install(&installer, &args);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("sa.key: a symlink"), "{err}");
    assert!(err.contains("token.csv: empty"), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert_eq!(count(&root.path().join("etc/k8s/ssl")), 0);
    std::fs::remove_file(secrets.path().join("sa.key")).unwrap();
    std::fs::write(
        secrets.path().join("sa.key"),
        "KUBEMINT-TEST-SECRET sa.key\n",
    )
    .unwrap();
    std::fs::write(
        secrets.path().join("token.csv"),
        "KUBEMINT-TEST-SECRET token\n",
    )
    .unwrap();
    std::fs::write(
        secrets.path().join("notes.txt"),
        "KUBEMINT-TEST-SECRET notes\n",
    )
    .unwrap();
    sh_ok(&format!("chmod 0644 '{}/sa.key'", secrets.path().display()));
    let out = install(&installer, &args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("ignored: --secrets notes.txt: not a secret of master-1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: --secrets sa.key has mode 0644, wider than its declared 0600"),
        "{stdout}"
    );
    assert!(!stdout.contains("KUBEMINT-TEST-SECRET") && !stderr.contains("KUBEMINT-TEST-SECRET"));
    assert!(!root.path().join("etc/k8s/ssl/notes.txt").exists());
}

#[test]
fn a_cut_or_altered_installer_does_nothing_and_says_so() {
    let p = Project::new();
    let installer = installer(&p);
    let bytes = std::fs::read(&installer).unwrap();
    let header_len: usize = {
        let t = String::from_utf8_lossy(&bytes[..8192]).into_owned();
        let line = t.lines().find(|l| l.starts_with("HEADER_SIZE=")).unwrap();
        line["HEADER_SIZE=".len()..].parse().unwrap()
    };
    let work = tempfile::tempdir().unwrap();
    let cut = work.path().join("cut.sh");
    let mut points: Vec<usize> = (97..header_len).step_by(97).collect();
    // And pseudo-random points of the payload.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..25 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        points.push(header_len + (x as usize) % (bytes.len() - header_len));
    }
    for at in points {
        std::fs::write(&cut, &bytes[..at]).unwrap();
        let root = tempfile::tempdir().unwrap();
        let out = install(&cut, &format!("--root '{}'", root.path().display()));
        assert!(
            !out.status.success(),
            "cut at {at} of {} exited 0",
            bytes.len()
        );
        assert_eq!(count(root.path()), 0, "cut at {at} wrote something");
        if at > header_len {
            assert!(
                text(&out.stderr).contains("truncated or was changed"),
                "{}",
                text(&out.stderr)
            );
        }
    }
    // One byte of the script changed (not the payload): refused before anything.
    let mut altered = bytes.clone();
    let pos = String::from_utf8_lossy(&bytes)
        .find("SERVICE_USER='k8s'")
        .unwrap()
        + 15;
    altered[pos] = b'9';
    std::fs::write(&cut, &altered).unwrap();
    let root = tempfile::tempdir().unwrap();
    let out = install(&cut, &format!("--root '{}'", root.path().display()));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("script is corrupt or was tampered with"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(root.path()), 0);
}

#[test]
fn verify_sees_everything_the_image_owns() {
    let p = Project::new();
    let installer = installer(&p);
    let root = root_with_user();
    let r = root.path().display().to_string();
    assert!(
        install(&installer, &format!("--root '{r}'"))
            .status
            .success()
    );
    // tmpfiles.d's paths as a booted root has them.
    for d in [
        "data/apps/k8s/kubernetes",
        "data/apps/k8s/kubernetes/logs/kube-apiserver",
        "data/apps/k8s/kubernetes/logs/kube-controller-manager",
        "data/apps/k8s/kubernetes/logs/kube-scheduler",
        "etc/k8s/ssl",
    ] {
        std::fs::create_dir_all(root.path().join(d)).unwrap();
    }
    sh_ok(&format!(
        "cd '{r}' && chown -R 990:990 data/apps/k8s/kubernetes && chmod 0755 data/apps/k8s/kubernetes data/apps/k8s/kubernetes/logs data/apps/k8s/kubernetes/logs/* && chown 0:990 etc/k8s/ssl && chmod 0750 etc/k8s/ssl && ln -s /usr/lib/kubernetes/bin data/apps/k8s/kubernetes/sbin"
    ));
    let verify = || install(&installer, &format!("--root '{r}' --verify"));
    let out = verify();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Drift of every kind.
    std::fs::write(
        root.path().join("etc/k8s/kubernetes/addons/evil.yaml"),
        "kind: ClusterRoleBinding\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("usr/lib/kubernetes/bin/evil"),
        "#!/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.path().join("usr/lib/kubemint/extra"), "x").unwrap();
    let dropin = root
        .path()
        .join("etc/systemd/system/kube-apiserver.service.d");
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(
        dropin.join("x.conf"),
        "[Service]\nExecStart=\nExecStart=/bin/evil\n",
    )
    .unwrap();
    std::fs::create_dir_all(
        root.path()
            .join("run/systemd/system/kube-scheduler.service.d"),
    )
    .unwrap();
    std::fs::write(
        root.path()
            .join("run/systemd/system/kube-scheduler.service.d/y.conf"),
        "",
    )
    .unwrap();
    sh_ok(&format!(
        "chown 0:0 '{r}/data/apps/k8s/kubernetes/logs/kube-apiserver'"
    ));
    std::fs::remove_file(
        root.path()
            .join("usr/lib/systemd/system/multi-user.target.wants/kube-scheduler.service"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/dev/null",
        root.path()
            .join("etc/systemd/system/kube-controller-manager.service"),
    )
    .unwrap();
    std::fs::write(root.path().join("etc/k8s/ssl/ca.pem"), "x").unwrap();
    let out = verify();
    assert!(!out.status.success());
    let report = text(&out.stdout);
    for want in [
        "unexpected: /etc/k8s/kubernetes/addons/evil.yaml: not in the image",
        "unexpected: /usr/lib/kubernetes/bin/evil: not in the image",
        "unexpected: /usr/lib/kubemint/extra: not in the image",
        "drop-in: /etc/systemd/system/kube-apiserver.service.d/x.conf: changes kube-apiserver.service",
        "drop-in: /run/systemd/system/kube-scheduler.service.d/y.conf: changes kube-scheduler.service",
        "tmpfiles: /data/apps/k8s/kubernetes/logs/kube-apiserver: owner 0:0, expected 990:990 (k8s:k8s)",
        "disabled: kube-scheduler.service: not enabled",
        "missing: /usr/lib/systemd/system/multi-user.target.wants/kube-scheduler.service",
        "disabled: kube-controller-manager.service: masked",
        "secret: /etc/k8s/ssl/ca.pem: owner 0:0, expected 0:990 (root:k8s)",
    ] {
        assert!(report.contains(want), "{want:?} not in:\n{report}");
    }
    assert!(
        !report.contains("evil\n") || !report.contains("ExecStart"),
        "contents shown"
    );
    // Every line names its kind.
    for line in report.lines() {
        let kind = line.split(':').next().unwrap();
        assert!(
            [
                "missing",
                "changed",
                "mode",
                "owner",
                "type",
                "target",
                "unexpected",
                "drop-in",
                "override",
                "user",
                "tmpfiles",
                "disabled",
                "secret"
            ]
            .contains(&kind),
            "{line}"
        );
    }
    // The addons unit applies exactly the image's addon files, by name.
    let addons = std::fs::read_to_string(
        root.path()
            .join("usr/lib/systemd/system/kubemint-addons.service"),
    )
    .unwrap();
    let apply = addons
        .lines()
        .find(|l| l.starts_with("ExecStart=") && l.contains("kubectl"))
        .unwrap();
    assert!(
        apply.ends_with(" apply -f /etc/k8s/kubernetes/addons/kube-apiserver-kubelet-apis.yaml"),
        "{apply}"
    );
    assert!(
        !apply.contains("addons/ ") && !apply.ends_with("addons/"),
        "{apply}"
    );
}

#[test]
fn build_image_replaces_only_what_it_made() {
    let p = Project::new();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().display().to_string();
    let sample = out.path().join("sample");
    // A user's directory, and a plain file, where master-1's output would go.
    std::fs::create_dir_all(sample.join("master-1")).unwrap();
    std::fs::write(sample.join("master-1/notes.txt"), "mine").unwrap();
    let err = p.fails(&["build-image", "master-1", "--sample", "--out", &o]);
    assert!(
        err.contains("master-1 exists and is not an output kubemint made for master-1"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(sample.join("master-1/notes.txt")).unwrap(),
        "mine"
    );
    std::fs::remove_dir_all(sample.join("master-1")).unwrap();
    std::fs::write(sample.join("master-1"), "mine").unwrap();
    let err = p.fails(&["build-image", "master-1", "--sample", "--out", &o]);
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(
        std::fs::read_to_string(sample.join("master-1")).unwrap(),
        "mine"
    );
    // A directory that is not empty and not kubemint's.
    std::fs::remove_file(sample.join("master-1")).unwrap();
    std::fs::write(sample.join("notes.txt"), "mine").unwrap();
    let err = p.fails(&["build-image", "master-1", "--sample", "--out", &o]);
    assert!(
        err.contains("is not empty and not kubemint's (it holds notes.txt)"),
        "{err}"
    );
    // Never into /, not even for a profile named etc.
    p.write(
        "profiles/etc.toml",
        "inherit = \"cluster.toml\"\n[host]\nname = \"etc\"\naddress = \"10.10.10.25\"\n",
    );
    for args in [
        &["build-image", "etc", "--out", "/"][..],
        &["build-image", "etc", "--sample", "--out", "/"],
    ] {
        let err = p.fails(args);
        assert!(
            err.contains("--out /: kubemint never writes into the root directory"),
            "{err}"
        );
    }
    assert!(!Path::new("/sample").exists() && Path::new("/etc/passwd").exists());
}

#[test]
fn a_multi_profile_build_replaces_all_or_none_and_leaves_nothing_behind() {
    let p = Project::new();
    p.ok(&["build-image", "master-1", "master-2", "--sample"]);
    let root = p.path().join("target/images/sample");
    let before = (
        snapshot(&root.join("master-1")),
        snapshot(&root.join("master-2")),
    );
    // master-1 changes; master-2 fails (its image renders a template wrongly only for it).
    p.write(
        "profiles/master-1.toml",
        &std::fs::read_to_string(p.path().join("profiles/master-1.toml"))
            .unwrap()
            .replace("10.10.10.22", "10.10.10.21"),
    );
    let tmpl = p
        .path()
        .join("images/control-plane/templates/extension-release.j2");
    let text0 = std::fs::read_to_string(&tmpl).unwrap();
    std::fs::write(
        &tmpl,
        format!("{{% if profile == 'master-2' %}}{{{{ nope }}}}{{% endif %}}{text0}"),
    )
    .unwrap();
    p.fails(&["build-image", "master-1", "master-2", "--sample"]);
    assert_eq!(
        (
            snapshot(&root.join("master-1")),
            snapshot(&root.join("master-2"))
        ),
        before
    );
    // The same when master-2's place holds something kubemint did not make.
    std::fs::write(&tmpl, &text0).unwrap();
    std::fs::rename(root.join("master-2"), p.path().join("saved")).unwrap();
    std::fs::create_dir(root.join("master-2")).unwrap();
    p.fails(&["build-image", "master-1", "master-2", "--sample"]);
    assert_eq!(snapshot(&root.join("master-1")), before.0);
    std::fs::remove_dir(root.join("master-2")).unwrap();
    std::fs::rename(p.path().join("saved"), root.join("master-2")).unwrap();
    let names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["master-1", "master-2", "report.html"], "leftovers");
}

#[test]
fn concurrent_builds_into_one_root_wait_for_each_other() {
    let p = Project::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            p.xtask(&["build-image", "master-1", "--sample"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut waited = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        waited += usize::from(err.contains("waiting for another kubemint build into"));
    }
    assert!(waited >= 1, "no build said it waited");
    let dir = p.path().join("target/images/sample/master-1");
    sh_ok(&format!(
        "cd '{}' && sha256sum --quiet -c SHA256SUMS",
        dir.display()
    ));
}

/// Kills a build at its Nth rename, for every N: the profile's path always holds a complete
/// output (the old one, or the new one), and the next build finishes the job and cleans up.
#[test]
fn a_build_killed_at_any_rename_loses_nothing() {
    crate::support::require_tool("strace");
    let p = Project::new();
    p.ok(&["build-image", "master-1", "master-2", "--sample"]);
    let root = p.path().join("target/images/sample");
    let complete = |dir: &Path| {
        sh(&format!(
            "cd '{}' && sha256sum --quiet -c SHA256SUMS",
            dir.display()
        ))
        .status
        .success()
    };
    // A change, so that each build has new outputs to put in place.
    let cluster = p.path().join("profiles/cluster.toml");
    let original = std::fs::read_to_string(&cluster).unwrap();
    let mut n = 1;
    loop {
        std::fs::write(
            &cluster,
            original.replace("v = 2\n", &format!("v = {}\n", 2 + n % 3)),
        )
        .unwrap();
        let out = std::process::Command::new("strace")
            .args([
                "-f",
                "-o",
                "/dev/null",
                "-e",
                &format!("inject=rename,renameat,renameat2:signal=KILL:when={n}"),
            ])
            .arg(crate::support::xtask_bin())
            .arg("-C")
            .arg(p.path())
            .args(["build-image", "master-1", "master-2", "--sample"])
            .output()
            .unwrap();
        for m in ["master-1", "master-2"] {
            assert!(
                complete(&root.join(m)),
                "kill at rename {n}: {m} incomplete"
            );
        }
        if out.status.success() {
            break; // fewer than n renames: every kill point was tried
        }
        n += 1;
        assert!(n < 200, "too many renames");
    }
    assert!(n > 2, "the kill never hit the swaps");
    p.ok(&["build-image", "master-1", "master-2", "--sample"]);
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["master-1", "master-2", "report.html"],
        "leftovers after the next build"
    );
}

/// Key material of every encoding, made with openssl: (name, PEM text).
fn keys() -> Vec<(&'static str, String)> {
    crate::support::require_tool("openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    sh_ok(&format!(
        "cd '{d}' && openssl genrsa -traditional -out pkcs1.pem 2048 2>/dev/null && \
         openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out pkcs8.pem 2>/dev/null && \
         openssl ecparam -name prime256v1 -genkey -noout -out sec1.pem 2>/dev/null && \
         openssl genpkey -algorithm ed25519 -out ed25519.pem 2>/dev/null && \
         openssl req -x509 -key pkcs8.pem -subj /CN=kubemint-test -days 1 -out cert.pem 2>/dev/null"
    ));
    ["pkcs1", "pkcs8", "sec1", "ed25519", "cert"]
        .into_iter()
        .map(|n| {
            (
                n,
                std::fs::read_to_string(dir.path().join(format!("{n}.pem"))).unwrap(),
            )
        })
        .collect()
}

/// The base64 body of a PEM text: its lines between BEGIN and END.
fn body(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn key_material_is_refused_by_name_and_never_shown() {
    for (name, pem) in keys() {
        let lines = body(&pem);
        let joined = lines.concat();
        let shown = |out: &std::process::Output| {
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            // No 16 characters in a row of the material appear anywhere.
            joined
                .as_bytes()
                .windows(16)
                .any(|w| all.contains(std::str::from_utf8(w).unwrap()))
                || all.contains("PRIVATE KEY-----\n")
        };
        // In a profile value, on one line: named by file, key and kind.
        let p = Project::new();
        let cluster = p.path().join("profiles/cluster.toml");
        let original = std::fs::read_to_string(&cluster).unwrap();
        std::fs::write(
            &cluster,
            original.replacen(
                "v = 2\n",
                &format!("v = 2\noidc-ca-data = \"{joined}\"\n"),
                1,
            ),
        )
        .unwrap();
        for args in [
            &["build-image", "master-1", "--sample"][..],
            &["check", "master-1"],
            &["plan", "master-1"],
        ] {
            let out = p.run(args);
            assert!(!out.status.success(), "{name}: {args:?} succeeded");
            assert!(!shown(&out), "{name}: {args:?} showed the material");
        }
        let out = p.run(&["check", "master-1"]);
        let report = text(&out.stdout);
        assert!(
            report.contains(
                "profiles/cluster.toml: components.kube-apiserver.flags.oidc-ca-data: looks like"
            ),
            "{name}:\n{report}"
        );
        assert!(!p.path().join("target").exists());
        // A whole PEM block pasted into a value: refused, never echoed.
        let pasted = pem.trim_end().replace('\n', "\\n");
        std::fs::write(
            &cluster,
            original.replacen(
                "v = 2\n",
                &format!("v = 2\noidc-ca-data = \"{pasted}\"\n"),
                1,
            ),
        )
        .unwrap();
        let out = p.run(&["build-image", "master-1", "--sample"]);
        assert!(!out.status.success());
        assert!(
            !shown(&out),
            "{name}: pasted PEM shown:\n{}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("oidc-ca-data"),
            "{}",
            text(&out.stderr)
        );
        // In a template, wrapped over lines: named by template and line.
        std::fs::write(&cluster, &original).unwrap();
        let tmpl = p
            .path()
            .join("images/control-plane/templates/kubelet-api-admin.yaml.j2");
        let mut t = std::fs::read_to_string(&tmpl).unwrap();
        t.push_str(&format!("# data:\n#   {}\n", lines.join("\n#   ")));
        std::fs::write(&tmpl, t).unwrap();
        let out = p.run(&["build-image", "master-1", "--sample"]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("images/control-plane/templates/kubelet-api-admin.yaml.j2: looks like"),
            "{name}: {err}"
        );
        assert!(err.contains("(line "), "{err}");
        assert!(!shown(&out), "{name}: template material shown");
    }
}
