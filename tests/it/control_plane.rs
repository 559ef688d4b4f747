//! A complete master: three components and the addons unit accepted by systemd-analyze, the
//! secrets boundary (declared, checked before start, placed by the installer, refused in an
//! image), and kubeconfigs that kubectl reads.

use crate::support::{self, Project, manifest, require_tool, sh, sh_ok as ok, text};
use std::path::Path;

const UNITS: [&str; 4] = [
    "kube-apiserver.service",
    "kube-controller-manager.service",
    "kube-scheduler.service",
    "kubemint-addons.service",
];

/// Installs `profile`'s sample build into a temp root beside systemd's own units, with an
/// empty secrets directory.
fn installed_root(p: &Project, profile: &str) -> tempfile::TempDir {
    let dir = p.path().join("target/images/sample").join(profile);
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display();
    ok(&format!(
        "sh '{}/{profile}-install.sh' --root '{r}'",
        dir.display()
    ));
    ok(&format!(
        "mkdir -p '{r}/etc/k8s/ssl' && cp -an /usr/lib/systemd/system/. '{r}/usr/lib/systemd/system/'"
    ));
    root
}

#[test]
fn every_unit_of_every_master_passes_systemd_analyze_verify() {
    require_tool("systemd-analyze");
    let p = Project::new();
    p.ok(&["build-image", "--all", "--sample"]);
    for profile in ["master-1", "master-2", "master-3"] {
        let root = installed_root(&p, profile);
        let out = sh(&format!(
            "systemd-analyze verify --root='{}' {}",
            root.path().display(),
            UNITS.join(" ")
        ));
        assert!(out.status.success(), "{profile}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            "",
            "{profile}: systemd-analyze printed warnings"
        );
        let m = manifest(&p.path().join("target/images/sample").join(profile));
        for unit in UNITS {
            let path = format!("/usr/lib/systemd/system/{unit}");
            assert!(
                m["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["path"] == path.as_str()),
                "{profile}: {unit}"
            );
        }
    }
}

#[test]
fn components_run_as_the_guide_says_with_insecure_ports_closed() {
    let p = Project::new();
    let dir = p.build_sample("master-2");
    let unit = |name: &str| {
        ok(&format!(
            "tar -xzOf '{}/master-2.tar.gz' usr/lib/systemd/system/{name}.service",
            dir.display()
        ))
    };
    for (name, kind) in [
        ("kube-apiserver", "notify"),
        ("kube-controller-manager", "simple"),
        ("kube-scheduler", "simple"),
    ] {
        let u = unit(name);
        assert!(u.contains(&format!("Type={kind}\n")), "{name}:\n{u}");
        assert!(
            u.contains(&format!(
                "ExecStartPre=+/usr/lib/kubemint/check-secrets {name}\n"
            )),
            "{name}:\n{u}"
        );
        assert!(
            u.contains(&format!("ExecStart=/usr/lib/kubernetes/bin/{name} \\\n")),
            "{name}:\n{u}"
        );
    }
    let kcm = unit("kube-controller-manager");
    for flag in [
        "--port=0",
        "--address=127.0.0.1",
        "--leader-elect=true",
        "--use-service-account-credentials=true",
        "--service-account-private-key-file=/etc/k8s/ssl/sa.key",
        "--cluster-signing-key-file=/etc/k8s/ssl/ca-key.pem",
        "--kubeconfig=/etc/k8s/kubernetes/kube-controller-manager.kubeconfig",
        "--service-cluster-ip-range=10.254.0.0/22",
    ] {
        assert!(kcm.contains(flag), "{flag} missing:\n{kcm}");
    }
    // The scheduler's insecure listener is its configuration file's (--port is ignored next
    // to --config): closed there.
    let ks = unit("kube-scheduler");
    assert!(
        ks.contains("--config=/etc/k8s/kubernetes/kube-scheduler.yaml") && !ks.contains("--port"),
        "{ks}"
    );
    let config = ok(&format!(
        "tar -xzOf '{}/master-2.tar.gz' etc/k8s/kubernetes/kube-scheduler.yaml",
        dir.display()
    ));
    assert!(
        config.contains("apiVersion: kubescheduler.config.k8s.io/v1alpha1\n"),
        "{config}"
    );
    assert!(
        config.contains("kubeconfig: /etc/k8s/kubernetes/kube-scheduler.kubeconfig"),
        "{config}"
    );
    assert!(
        config.contains("healthzBindAddress: 127.0.0.1:0\nmetricsBindAddress: 127.0.0.1:0\n"),
        "{config}"
    );
    // The upgrade set, on v1.33.5, gets the scheduler config version that release accepts.
    let newer_out = p.path().join("newer");
    p.ok(&[
        "build-image",
        "--profiles",
        "profiles/upgrade",
        "master-2",
        "--sample",
        "--out",
        newer_out.to_str().unwrap(),
    ]);
    let newer = ok(&format!(
        "tar -xzOf '{}/newer/sample/upgrade/master-2/master-2.tar.gz' etc/k8s/kubernetes/kube-scheduler.yaml",
        p.path().display()
    ));
    assert!(
        newer.contains("apiVersion: kubescheduler.config.k8s.io/v1\n")
            && !newer.contains("healthzBindAddress"),
        "{newer}"
    );
}

#[test]
fn kubeconfigs_parse_and_point_at_the_apiserver_and_files() {
    require_tool("kubectl");
    let p = Project::new();
    let dir = p.build_sample("master-3");
    let work = tempfile::tempdir().unwrap();
    ok(&format!(
        "tar -xzf '{}/master-3.tar.gz' -C '{}'",
        dir.display(),
        work.path().display()
    ));
    for (file, user, cert) in [
        (
            "kube-controller-manager.kubeconfig",
            "system:kube-controller-manager",
            "kube-controller-manager",
        ),
        (
            "kube-scheduler.kubeconfig",
            "system:kube-scheduler",
            "kube-scheduler",
        ),
        ("admin.kubeconfig", "admin", "admin"),
    ] {
        let path = work.path().join("etc/k8s/kubernetes").join(file);
        let view = ok(&format!(
            "kubectl config view --kubeconfig '{}' -o json",
            path.display()
        ));
        let v: serde_json::Value = serde_json::from_str(&view).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"], "https://10.10.10.24:6443",
            "{file}"
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority"], "/etc/k8s/ssl/ca.pem",
            "{file}"
        );
        assert_eq!(v["users"][0]["name"], user, "{file}");
        assert_eq!(
            v["users"][0]["user"]["client-certificate"],
            format!("/etc/k8s/ssl/{cert}.pem"),
            "{file}"
        );
        assert_eq!(
            v["users"][0]["user"]["client-key"],
            format!("/etc/k8s/ssl/{cert}-key.pem"),
            "{file}"
        );
        assert_eq!(v["current-context"], format!("{user}@kubernetes"), "{file}");
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(!raw.contains("-data:"), "{file} embeds data");
    }
}

#[test]
fn manifest_lists_the_secrets_apart_from_files() {
    let p = Project::new();
    let m = manifest(&p.build_sample("master-1"));
    let secrets = m["secrets"].as_array().unwrap();
    let key = secrets
        .iter()
        .find(|s| s["path"] == "/etc/k8s/ssl/kubernetes-key.pem")
        .unwrap();
    assert_eq!(key["owner"], "k8s");
    assert_eq!(key["group"], "k8s");
    assert_eq!(key["mode"], "0600");
    assert_eq!(key["used_by"], serde_json::json!(["kube-apiserver"]));
    assert!(key["purpose"].as_str().unwrap().contains("kubernetes.pem"));
    let files: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for s in secrets {
        assert!(
            !files.contains(&s["path"].as_str().unwrap()),
            "{} is in the tree",
            s["path"]
        );
    }
    assert!(secrets.iter().any(|s| {
        s["path"] == "/etc/k8s/ssl/proxy-client.pem"
            && s["purpose"]
                .as_str()
                .unwrap()
                .contains("--requestheader-allowed-names")
    }));
}

fn check_secrets(root: &Path, args: &str) -> std::process::Output {
    let r = root.display();
    sh(&format!(
        "sh '{r}/usr/lib/kubemint/check-secrets' --root '{r}' {args}"
    ))
}

#[test]
fn secrets_check_names_every_missing_or_wrong_file() {
    let p = Project::new();
    p.build_sample("master-1");
    let root = installed_root(&p, "master-1");
    let m = manifest(&p.path().join("target/images/sample/master-1"));
    let out = check_secrets(root.path(), "--all");
    assert!(!out.status.success());
    let report = text(&out.stderr);
    for s in m["secrets"].as_array().unwrap() {
        // An optional secret (the admin key) is absent on most masters, and that is fine.
        let named = report.contains(&format!("missing {} ", s["path"].as_str().unwrap()));
        assert_eq!(named, s["optional"] == false, "{}:\n{report}", s["path"]);
    }
    // One component asks only for its own.
    let out = check_secrets(root.path(), "kube-scheduler");
    let lines: Vec<String> = text(&out.stderr).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("kube-scheduler: missing /etc/k8s/ssl/")),
        "{lines:?}"
    );
    // Wrong owner and mode are named too.
    let ssl = root.path().join("etc/k8s/ssl");
    std::fs::write(ssl.join("kube-scheduler.pem"), "cert").unwrap();
    std::fs::write(ssl.join("kube-scheduler-key.pem"), "key").unwrap();
    ok(&format!(
        "chmod 0644 '{0}/kube-scheduler-key.pem' && chown 0:0 '{0}/kube-scheduler-key.pem' '{0}/kube-scheduler.pem' && chmod 0640 '{0}/kube-scheduler.pem'",
        ssl.display()
    ));
    let out = check_secrets(root.path(), "kube-scheduler");
    let report = text(&out.stderr);
    assert!(!out.status.success());
    assert!(report.contains("kube-scheduler: /etc/k8s/ssl/kube-scheduler-key.pem is owned by root:root, expected k8s:k8s"), "{report}");
    assert!(
        report.contains(
            "kube-scheduler: /etc/k8s/ssl/kube-scheduler-key.pem has mode 0644, expected 0600"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "kube-scheduler: /etc/k8s/ssl/kube-scheduler.pem has mode 0640, expected 0644"
        ),
        "{report}"
    );
    assert!(
        !report.contains("missing /etc/k8s/ssl/kube-scheduler"),
        "{report}"
    );
}

/// On a live root (an overlay of this machine's), the installer creates the user, places every
/// secret from --secrets DIR with its owner and mode, never prints them, and the check passes.
#[test]
fn installer_places_secrets_and_the_check_passes() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = manifest(&dir);
    let secrets = tempfile::tempdir().unwrap();
    // Every required secret; the optional admin key goes to another master.
    for s in m["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["optional"] == false)
    {
        let name = s["path"].as_str().unwrap().rsplit('/').next().unwrap();
        std::fs::write(
            secrets.path().join(name),
            format!("KUBEMINT-TEST-SECRET {name}\n"),
        )
        .unwrap();
    }
    let installer = dir.join("master-1-install.sh");
    let out = support::in_overlay_root(
        &[
            (installer.as_path(), "install.sh"),
            (secrets.path(), "secrets"),
        ],
        "sh /run/kubemint-test/install.sh --no-start --secrets /run/kubemint-test/secrets
         stat -c '%U:%G %a %n' /etc/k8s/ssl /etc/k8s/ssl/* | sort
         /usr/lib/kubemint/check-secrets --all",
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(
        !stdout.contains("KUBEMINT-TEST-SECRET")
            && !text(&out.stderr).contains("KUBEMINT-TEST-SECRET")
    );
    assert!(stdout.contains("root:k8s 750 /etc/k8s/ssl\n"), "{stdout}");
    assert!(
        stdout.contains(
            "optional secret admin-key.pem not in /run/kubemint-test/secrets: not placed"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("/etc/k8s/ssl/admin"), "{stdout}");
    for s in m["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["optional"] == false)
    {
        let line = format!(
            "{}:{} {} {}",
            s["owner"].as_str().unwrap(),
            s["group"].as_str().unwrap(),
            s["mode"].as_str().unwrap().trim_start_matches('0'),
            s["path"].as_str().unwrap()
        );
        assert!(stdout.contains(&line), "{line} not in:\n{stdout}");
    }
    assert!(stdout.contains("secrets in place for: --all"), "{stdout}");
}

#[test]
fn installer_refuses_an_incomplete_secrets_directory() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("ca.pem"), "x").unwrap();
    let root = tempfile::tempdir().unwrap();
    let out = sh(&format!(
        "sh '{}/master-1-install.sh' --root '{}' --secrets '{}'",
        dir.display(),
        root.path().display(),
        secrets.path().display()
    ));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("lacks:")
            && err.contains("ca-key.pem")
            && err.contains("nothing was installed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        0,
        "something was installed"
    );
    // --only-secrets leaves the tree alone (an image brought it) and needs --secrets.
    let out = sh(&format!(
        "sh '{}/master-1-install.sh' --root '{}' --only-secrets",
        dir.display(),
        root.path().display()
    ));
    assert!(
        !out.status.success() && text(&out.stderr).contains("--only-secrets needs --secrets DIR")
    );
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        0,
        "--only-secrets touched the tree"
    );
}

#[test]
fn key_or_token_material_in_an_image_definition_fails_the_build() {
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";
    let cases = [
        ("templates/front-proxy.pem.j2", key, "a PEM private key"),
        (
            "files/token.csv",
            "0123456789abcdef0123456789abcdef,kubelet-bootstrap,10001\n",
            "a static token file",
        ),
        (
            "templates/join.yaml.j2",
            "discovery: abcdef.0123456789abcdef\n",
            "a bootstrap token",
        ),
        (
            "templates/admin.kubeconfig.j2",
            "users:\n  - name: admin\n    user:\n      client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFCi0tLS0tRU5EIFJTQSBQUklWQVRFIEtFWS0tLS0tCg==\n",
            "a base64-encoded PEM private key",
        ),
        (
            "templates/sa.yaml.j2",
            "token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ\n",
            "an embedded token",
        ),
    ];
    for (rel, body, what) in cases {
        let p = Project::new();
        let path = p.path().join("images/control-plane").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, body).unwrap();
        let err = p.fails(&["build-image", "master-1", "--sample"]);
        assert!(
            err.contains(&format!("images/control-plane/{rel}: looks like {what}")),
            "{err}"
        );
        assert!(err.contains("[[secret]]"), "{err}");
        assert!(!p.path().join("target/images/sample/master-1").exists());
    }
    // Rendered into a file of the tree from a profile value, it is caught there too.
    let p = Project::new();
    let cluster = p.path().join("profiles/cluster.toml");
    let text = std::fs::read_to_string(&cluster).unwrap();
    std::fs::write(
        &cluster,
        format!("{text}token = \"abcdef.0123456789abcdef\"\n"),
    )
    .unwrap();
    let err = p.fails(&["build-image", "master-1", "--sample"]);
    assert!(
        err.contains("/usr/lib/systemd/system/kube-scheduler.service (in the tree of master-1): looks like a bootstrap token"),
        "{err}"
    );
}
