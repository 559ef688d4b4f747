//! `cargo xtask dev-secrets DIR`: every declared secret of the set, with its mode, valid (chains,
//! names, key pairs) and accepted by the installer; loudly THROWAWAY; never into a directory it
//! did not make; never a key on the terminal. And the sample apiserver, installed with them,
//! serves a certificate that verifies.

use crate::standins::{Server, answers, free_port, get};
use crate::support::{Project, is_root, require_tool, sh, text};
use kubemint::front::{self, Request, Selection};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Every declared secret of the set: (file name, mode).
fn declared(p: &Project, set: &str) -> BTreeSet<(String, String)> {
    let planned = front::plan_set(&Request {
        root: p.path().to_owned(),
        profiles_dir: p.path().join(set),
        selection: Selection::All,
        release: None,
        sample: false,
        epoch: None,
    })
    .unwrap();
    planned
        .masters
        .iter()
        .flat_map(|m| &m.plan.secrets)
        .map(|s| {
            (
                s.path.rsplit('/').next().unwrap().to_owned(),
                s.mode.clone(),
            )
        })
        .collect()
}

fn openssl(dir: &Path, args: &str) -> String {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Runs dev-secrets into `dir`: its stdout and stderr, which must never show key material.
fn dev_secrets(p: &Project, dir: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["dev-secrets", dir.to_str().unwrap()];
    args.extend(extra);
    let out = p.ok(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for shown in [&stdout, &stderr] {
        assert!(!shown.contains("-----BEGIN"), "{shown}");
    }
    (stdout, stderr)
}

#[test]
fn a_complete_valid_throwaway_set_with_the_declared_modes() {
    require_tool("openssl");
    let p = Project::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("secrets");
    let (stdout, stderr) = dev_secrets(&p, &dir, &[]);
    assert!(
        stderr.contains("THROWAWAY") && stderr.contains("NOT FOR PRODUCTION"),
        "{stderr}"
    );
    assert!(stdout.contains("THROWAWAY"), "{stdout}");
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(
        readme.starts_with("THROWAWAY SECRETS -- NOT FOR PRODUCTION\n"),
        "{readme}"
    );
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
        0o700
    );

    // Exactly the declared secrets, optional ones included, each with its declared mode.
    let declared = declared(&p, "profiles");
    let mut names: BTreeSet<String> = declared.iter().map(|(n, _)| n.clone()).collect();
    assert!(names.contains("admin-key.pem") && names.contains("front-proxy-ca.pem"));
    names.insert("README.txt".into());
    assert_eq!(files(&dir), names);
    for (name, mode) in &declared {
        let meta = std::fs::metadata(dir.join(name)).unwrap();
        assert!(meta.len() > 0, "{name} is empty");
        assert_eq!(
            format!("{:04o}", meta.permissions().mode() & 0o7777),
            *mode,
            "{name}"
        );
    }

    // The serving certificate: signed by the CA, CN kubernetes, every name a client may use.
    assert!(openssl(&dir, "verify -CAfile ca.pem kubernetes.pem").contains("kubernetes.pem: OK"));
    let serving = openssl(
        &dir,
        "x509 -in kubernetes.pem -noout -subject -ext subjectAltName,extendedKeyUsage",
    );
    assert!(serving.contains("subject=CN = kubernetes"), "{serving}");
    for san in [
        "DNS:kubernetes,",
        "DNS:kubernetes.default,",
        "DNS:kubernetes.default.svc,",
        "DNS:kubernetes.default.svc.cluster.local,",
        "DNS:master-1,",
        "DNS:master-2,",
        "DNS:master-3,",
        "IP Address:10.10.10.22,",
        "IP Address:10.10.10.23,",
        "IP Address:10.10.10.24,",
        "IP Address:10.254.0.1,",
        "IP Address:127.0.0.1,",
        "DNS:localhost",
    ] {
        assert!(serving.contains(san), "{san} not in\n{serving}");
    }
    assert!(
        serving.contains("TLS Web Server Authentication"),
        "{serving}"
    );
    // The front proxy's client: by the front-proxy CA only, CN the allowed name.
    assert!(
        openssl(&dir, "verify -CAfile front-proxy-ca.pem proxy-client.pem")
            .contains("proxy-client.pem: OK")
    );
    let out = sh(&format!(
        "cd '{}' && openssl verify -CAfile ca.pem proxy-client.pem",
        dir.display()
    ));
    assert!(
        !out.status.success(),
        "the cluster CA must not vouch for the proxy"
    );
    let subject = |cert: &str| openssl(&dir, &format!("x509 -in {cert} -noout -subject"));
    assert_eq!(subject("proxy-client.pem"), "subject=CN = aggregator\n");
    // The clients the kubeconfigs name, and etcd's.
    assert_eq!(
        subject("kube-controller-manager.pem"),
        "subject=CN = system:kube-controller-manager\n"
    );
    assert_eq!(
        subject("kube-scheduler.pem"),
        "subject=CN = system:kube-scheduler\n"
    );
    assert_eq!(
        subject("admin.pem"),
        "subject=O = system:masters, CN = admin\n"
    );
    for cert in [
        "kube-controller-manager.pem",
        "kube-scheduler.pem",
        "admin.pem",
        "etcd.pem",
    ] {
        assert!(
            openssl(&dir, &format!("verify -CAfile ca.pem {cert}")).contains(": OK"),
            "{cert}"
        );
    }
    // Each key is its certificate's; the service-account pair is a pair; the CA is a CA.
    for (cert, key) in [
        ("ca.pem", "ca-key.pem"),
        ("kubernetes.pem", "kubernetes-key.pem"),
        ("proxy-client.pem", "proxy-client-key.pem"),
        ("etcd.pem", "etcd-key.pem"),
        ("admin.pem", "admin-key.pem"),
        ("kube-scheduler.pem", "kube-scheduler-key.pem"),
        (
            "kube-controller-manager.pem",
            "kube-controller-manager-key.pem",
        ),
    ] {
        assert_eq!(
            openssl(&dir, &format!("x509 -in {cert} -noout -pubkey")),
            openssl(&dir, &format!("pkey -in {key} -pubout")),
            "{key} is not the key of {cert}"
        );
    }
    assert_eq!(
        openssl(&dir, "pkey -in sa.key -pubout"),
        std::fs::read_to_string(dir.join("sa.pub")).unwrap()
    );
    assert!(openssl(&dir, "x509 -in ca.pem -noout -ext basicConstraints").contains("CA:TRUE"));
    // One bootstrap-style token line.
    let tokens = std::fs::read_to_string(dir.join("token.csv")).unwrap();
    let (token, rest) = tokens.split_once(',').unwrap();
    let (id, secret) = token.split_once('.').unwrap();
    assert!(id.len() == 6 && secret.len() == 16, "{}", tokens.len());
    assert!(
        token
            .chars()
            .all(|c| c == '.' || c.is_ascii_digit() || c.is_ascii_lowercase())
    );
    assert_eq!(rest, "kubelet-bootstrap,10001,\"system:bootstrappers\"\n");

    // Run again: its own directory is rewritten with new material.
    let before = std::fs::read(dir.join("ca-key.pem")).unwrap();
    dev_secrets(&p, &dir, &["--json"]);
    assert_ne!(std::fs::read(dir.join("ca-key.pem")).unwrap(), before);
    assert_eq!(files(&dir), names);
}

#[test]
fn never_into_a_directory_it_did_not_make() {
    let p = Project::new();
    let work = tempfile::tempdir().unwrap();
    // A user's directory: refused, untouched.
    let theirs = work.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("ca.pem"), "mine").unwrap();
    let err = p.fails(&["dev-secrets", theirs.to_str().unwrap()]);
    assert!(
        err.contains("is not empty and dev-secrets did not write it"),
        "{err}"
    );
    assert_eq!(files(&theirs), BTreeSet::from(["ca.pem".to_owned()]));
    assert_eq!(
        std::fs::read_to_string(theirs.join("ca.pem")).unwrap(),
        "mine"
    );
    // Its own directory with a file someone added: refused, named.
    let ours = work.path().join("ours");
    let out = p.ok(&["dev-secrets", ours.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["throwaway"], true);
    assert!(json["files"].as_array().unwrap().len() >= 17);
    std::fs::write(ours.join("notes.txt"), "x").unwrap();
    let err = p.fails(&["dev-secrets", ours.to_str().unwrap()]);
    assert!(err.contains("did not write (notes.txt)"), "{err}");
    // A file where the directory should be.
    let file = work.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = p.fails(&["dev-secrets", file.to_str().unwrap()]);
    assert!(err.contains("is not a directory"), "{err}");
}

#[test]
fn the_upgrade_set_gets_its_own_complete_set() {
    let p = Project::new();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("upgrade");
    dev_secrets(&p, &dir, &["--profiles", "profiles/upgrade"]);
    let mut names: BTreeSet<String> = declared(&p, "profiles/upgrade")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.insert("README.txt".into());
    assert_eq!(files(&dir), names);
    assert!(openssl(&dir, "verify -CAfile ca.pem kubernetes.pem").contains("OK"));
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
fn the_installer_takes_them_and_the_sample_apiserver_serves_with_them() {
    require_tool("openssl");
    let p = Project::new();
    let build = p.build_sample("master-1");
    let work = tempfile::tempdir().unwrap();
    let secrets = work.path().join("secrets");
    dev_secrets(&p, &secrets, &[]);
    let root = root_with_user();
    let r = root.path();
    let out = sh(&format!(
        "sh '{}/master-1-install.sh' --root '{}' --secrets '{}'",
        build.display(),
        r.display(),
        secrets.display()
    ));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains("-----BEGIN") && !stderr.contains("-----BEGIN"));
    for (name, mode) in declared(&p, "profiles") {
        let placed = r.join("etc/k8s/ssl").join(&name);
        let meta = std::fs::metadata(&placed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            format!("{:04o}", meta.permissions().mode() & 0o7777),
            mode,
            "{name}"
        );
        assert_eq!(
            std::fs::read(&placed).unwrap(),
            std::fs::read(secrets.join(&name)).unwrap()
        );
    }
    assert!(!r.join("etc/k8s/ssl/README.txt").exists());

    // The installed apiserver stand-in, run with its unit's flags moved into the root: it reads
    // every delivered file and serves kubernetes.pem, which verifies against ca.pem.
    if !is_root() {
        return;
    }
    let planned = front::plan_set(&Request {
        root: p.path().to_owned(),
        profiles_dir: p.path().join("profiles"),
        selection: Selection::Names(vec!["master-1".into()]),
        release: None,
        sample: true,
        epoch: None,
    })
    .unwrap();
    let m = &planned.masters[0];
    let port = free_port();
    let moved = |v: &str| {
        v.replace("/etc/k8s/", &format!("{}/etc/k8s/", r.display()))
            .replace("/data/apps/", &format!("{}/data/apps/", r.display()))
    };
    let mut flags: Vec<String> = m.profile.components["kube-apiserver"]
        .flags
        .iter()
        .filter(|f| f.name != "secure-port" && f.name != "bind-address")
        .map(|f| moved(&format!("--{}={}", f.name, f.value)))
        .collect();
    flags.push(format!("--secure-port={port}"));
    flags.push("--bind-address=127.0.0.1".into());
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let err = work.path().join("kube-apiserver.err");
    let mut server = Server {
        child: Command::new(r.join("usr/lib/kubernetes/bin/kube-apiserver"))
            .args(&flags)
            .env("TMPDIR", &tmp)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    };
    let ca = secrets.join("ca.pem");
    answers(
        &mut server,
        || std::fs::read_to_string(&err).unwrap_or_default(),
        port,
        "/healthz",
        Some(&ca),
    );
    assert_eq!(get(port, "/readyz", Some(&ca)).as_deref(), Some("ok"));
    assert!(server.stop().success());
}
