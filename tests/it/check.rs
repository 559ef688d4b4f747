//! `cargo xtask check` and the same checks in `build-image`: the seed set passes at v1.14.2 and
//! fails at v1.33.5 with exactly the edits an upgrade needs, the upgrade set passes there, and
//! each cross-check has a failing and a passing case.

use crate::support::{Project, text};
use serde_json::Value;

/// Edits a file of the throwaway project, which must contain `from`.
fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let path = p.path().join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from:?} not in {rel}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// Adds a flag to a component's table in `profiles/cluster.toml`.
fn add_flag(p: &Project, component: &str, line: &str) {
    let header = format!("[components.{component}.flags]\n");
    edit(
        p,
        "profiles/cluster.toml",
        &header,
        &format!("{header}{line}\n"),
    );
}

/// Runs `check ARGS --json`: whether it succeeded, and the report.
fn check(p: &Project, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = p.run(&all);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check {args:?}: no JSON report ({e}):\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    assert_eq!(
        out.status.success(),
        report["errors"] == 0,
        "exit status and error count disagree"
    );
    (out.status.success(), report)
}

/// The findings of one severity, as `profile component --flag: message` lines.
fn lines(report: &Value, severity: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            format!(
                "{} {} --{}: {}",
                f["profile"].as_str().unwrap(),
                f["component"].as_str().unwrap_or("-"),
                f["flag"].as_str().unwrap_or("-"),
                f["message"].as_str().unwrap()
            )
        })
        .collect()
}

fn errors(report: &Value) -> Vec<String> {
    lines(report, "error")
}

/// Asserts `check` fails with an error line starting with `want` (and passes otherwise).
fn fails_with(p: &Project, args: &[&str], want: &str) -> Value {
    let (ok, report) = check(p, args);
    let errs = errors(&report);
    assert!(!ok, "check {args:?} should fail");
    assert!(
        errs.iter().any(|e| e.starts_with(want)),
        "{want:?} not in:\n{}",
        errs.join("\n")
    );
    report
}

fn passes(p: &Project, args: &[&str]) -> Value {
    let (ok, report) = check(p, args);
    assert!(ok, "check {args:?} failed:\n{}", errors(&report).join("\n"));
    report
}

/// What the seed set must change to run on v1.33.5, per master: the flags v1.33 no longer
/// has, and the two it cannot start without.
fn seed_errors_at_1_33(extra: &[&str]) -> Vec<String> {
    let mut want = Vec::new();
    for m in ["master-1", "master-2", "master-3"] {
        for (c, flag, message) in [
            (
                "kube-apiserver",
                "insecure-bind-address",
                "removed in v1.24 (deprecated since v1.10)",
            ),
            (
                "kube-apiserver",
                "insecure-port",
                "removed in v1.24 (deprecated since v1.10)",
            ),
            (
                "kube-apiserver",
                "kubelet-https",
                "removed in v1.22 (deprecated since v1.19): kubelet connections are always https",
            ),
            (
                "kube-apiserver",
                "alsologtostderr",
                "removed in v1.26 (deprecated since v1.23)",
            ),
            (
                "kube-apiserver",
                "logtostderr",
                "removed in v1.26 (deprecated since v1.23)",
            ),
            (
                "kube-apiserver",
                "log-dir",
                "removed in v1.26 (deprecated since v1.23)",
            ),
            (
                "kube-apiserver",
                "service-account-issuer",
                "missing: required from v1.20, startup fails without it",
            ),
            (
                "kube-apiserver",
                "service-account-signing-key-file",
                "missing: required from v1.20, startup fails without it",
            ),
            (
                "kube-controller-manager",
                "port",
                "removed in v1.24 (deprecated since v1.10)",
            ),
            (
                "kube-controller-manager",
                "address",
                "removed in v1.24 (deprecated since v1.10)",
            ),
        ] {
            want.push(format!("{m} {c} --{flag}: {message}"));
        }
        // v1.14 to v1.33 at once: the minors it skips.
        want.push(format!(
            "{m} - ---: v1.14 → v1.33 skips 18 minors; Kubernetes supports one at a time: v1.15, v1.16, …, v1.33"
        ));
        want.extend(extra.iter().map(|e| format!("{m} {e}")));
    }
    want.sort();
    want
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn seed_set_passes_at_its_release() {
    let p = Project::new();
    let report = passes(&p, &["--all"]);
    assert_eq!(report["errors"], 0);
    let checked: Vec<_> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["profile"].as_str().unwrap(),
                c["release"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        checked,
        ["master-1 v1.14.2", "master-2 v1.14.2", "master-3 v1.14.2"]
    );
    // Every finding names its profile and component, and says how to fix it.
    for f in report["findings"].as_array().unwrap() {
        assert!(f["component"].is_string(), "{f}");
        assert!(f["fix"].is_string(), "{f}");
    }
    // The seed set warns about nothing: what is left are notes, facts nobody can act on at
    // v1.14 (the insecure ports of the apiserver and the controller manager are closed only by
    // deprecated flags; the scheduler's by its configuration file).
    assert_eq!(report["warnings"], 0, "{report}");
    assert_eq!(report["notes"], 12, "{report}");
    // The human form: one line per finding, then the summary.
    let out = p.ok(&["check", "master-1"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with("checked master-1 against v1.14.2: 0 errors, 0 warnings, 4 notes\n"),
        "{stdout}"
    );
    assert!(
        stdout.lines().all(
            |l| l.starts_with("note: master-1: kube-apiserver: --insecure-")
                || l.starts_with(
                    "note: master-1: kube-controller-manager: --port: deprecated since v1.10"
                )
                || l.starts_with(
                    "note: master-1: kube-controller-manager: --address: deprecated since v1.10"
                )
                || l.starts_with("checked ")
        ),
        "{stdout}"
    );
}

#[test]
fn seed_set_at_1_33_lists_exactly_the_edits_an_upgrade_needs() {
    let p = Project::new();
    let (ok, report) = check(&p, &["--all", "--release", "v1.33.5"]);
    assert!(!ok);
    assert_eq!(sorted(errors(&report)), seed_errors_at_1_33(&[]));
    // Each says how to fix it.
    let human = text(&p.run(&["check", "master-1", "--release", "v1.33.5"]).stdout);
    for want in [
        "error: master-1: kube-apiserver: --kubelet-https: removed in v1.22 (deprecated since v1.19): kubelet connections are always https; fix: remove --kubelet-https\n",
        "error: master-1: kube-apiserver: --insecure-port: removed in v1.24 (deprecated since v1.10); fix: remove --insecure-port (--secure-port is already set)\n",
        "error: master-1: kube-apiserver: --service-account-issuer: missing: required from v1.20, startup fails without it; fix: add --service-account-issuer (the issuer URL of service-account tokens, e.g. https://kubernetes.default.svc.cluster.local)\n",
        "error: master-1: kube-apiserver: --log-dir: removed in v1.26 (deprecated since v1.23); fix: remove --log-dir: the components log to stderr, which journald keeps\n",
        "warning: master-1: kube-apiserver: --apiserver-count: deprecated since v1.24",
        "error: master-1: v1.14 → v1.33 skips 18 minors; Kubernetes supports one at a time: v1.15, v1.16, …, v1.33; fix: upgrade one minor at a time: `cargo xtask upgrade-plan --to v1.33.5` lists the hops",
        "checked master-1 against v1.33.5: 11 errors, ",
    ] {
        assert!(human.contains(want), "{want:?} not in:\n{human}");
    }
    let err = p.fails(&["check", "master-1", "--release", "v1.33.5"]);
    assert!(err.contains("11 error(s)"), "{err}");
}

#[test]
fn a_v1beta1_audit_policy_is_one_more_error_at_1_33_and_a_warning_from_1_21() {
    let p = Project::new();
    edit(
        &p,
        "images/control-plane/templates/audit-policy.yaml.j2",
        "apiVersion: audit.k8s.io/v1\n",
        "apiVersion: audit.k8s.io/v1beta1\n",
    );
    let (_, report) = check(&p, &["--all", "--release", "v1.33.5"]);
    assert_eq!(
        sorted(errors(&report)),
        seed_errors_at_1_33(&[
            "kube-apiserver --audit-policy-file: /etc/k8s/kubernetes/audit-policy.yaml: apiVersion: apiVersion audit.k8s.io/v1beta1 was removed in v1.24"
        ])
    );
    // v1.14 reads it without a word, and so does check; v1.21 warns (kubernetes#98858).
    let report = passes(&p, &["master-1"]);
    assert_eq!(report["warnings"], 0, "{report}");
    let (_, report) = check(&p, &["master-1", "--release", "v1.21.14"]);
    assert!(
        lines(&report, "warning").contains(
            &"master-1 kube-apiserver --audit-policy-file: /etc/k8s/kubernetes/audit-policy.yaml: apiVersion: apiVersion audit.k8s.io/v1beta1 is deprecated since v1.21, removed in v1.24".to_owned()
        ),
        "{report}"
    );
}

#[test]
fn upgrade_set_passes_at_1_33_and_builds() {
    let p = Project::new();
    let report = passes(&p, &["--profiles", "profiles/upgrade", "--all"]);
    assert_eq!(report["checked"][0]["release"], "v1.33.5");
    assert_eq!(report["checked"].as_array().unwrap().len(), 3);
    // Back on v1.14.2, the flags it dropped would leave v1.14's controller manager port open
    // (the scheduler's is closed by the file the image renders for v1.14).
    let (ok, report) = check(
        &p,
        &[
            "--profiles",
            "profiles/upgrade",
            "master-1",
            "--release",
            "v1.14.2",
        ],
    );
    assert!(!ok);
    assert_eq!(
        errors(&report),
        [
            "master-1 kube-controller-manager --port: without --port=0, v1.14 serves unauthenticated, unauthorized access on 0.0.0.0:10252, beyond loopback",
        ]
    );
    p.ok(&[
        "build-image",
        "--profiles",
        "profiles/upgrade",
        "--all",
        "--sample",
    ]);
    // In a directory of its own: the seed set's outputs are never replaced by it.
    for m in ["master-1", "master-2", "master-3"] {
        let manifest =
            crate::support::manifest(&p.path().join("target/images/sample/upgrade").join(m));
        assert_eq!(manifest["release"]["name"], "v1.33.5");
    }
}

#[test]
fn build_image_refuses_before_looking_for_any_input() {
    let p = Project::new();
    // No store, no --sample: the check speaks before the missing tarball could.
    let err = p.fails(&["build-image", "master-2", "--release", "v1.33.5"]);
    assert!(
        err.contains("error: master-2: kube-apiserver: --kubelet-https: removed in v1.22"),
        "{err}"
    );
    assert!(err.contains("refusing to build"), "{err}");
    assert!(!err.contains("cargo xtask fetch"), "{err}");
    let err = p.fails(&[
        "build-image",
        "master-2",
        "--release",
        "v1.33.5",
        "--sample",
    ]);
    assert!(err.contains("refusing to build"), "{err}");
    assert!(!p.path().join("target/images/sample/master-2").exists());
}

#[test]
fn flags_the_table_does_not_know_are_warnings() {
    let p = Project::new();
    add_flag(&p, "kube-apiserver", "goaway-chance = \"0.001\"");
    let report = passes(&p, &["master-1"]);
    assert!(
        lines(&report, "warning").iter().any(|w| w
            .starts_with("master-1 kube-apiserver --goaway-chance: not in kubemint's flag table")),
        "{report}"
    );
}

#[test]
fn removed_admission_plugins_and_runtime_config_syntax() {
    let p = Project::new();
    edit(
        &p,
        "profiles/upgrade/cluster.toml",
        "enable-admission-plugins = \"NodeRestriction\"",
        "enable-admission-plugins = \"NodeRestriction,PodSecurityPolicy\"\nruntime-config = \"api/all\"",
    );
    let report = fails_with(
        &p,
        &["--profiles", "profiles/upgrade", "master-1"],
        "master-1 kube-apiserver --enable-admission-plugins: PodSecurityPolicy was removed in v1.25",
    );
    assert!(
        errors(&report).contains(&"master-1 kube-apiserver --runtime-config: api/all without a value is fatal from v1.17 (\"invalid value api/all=\"): every entry needs a value; without one it did nothing before, and api/all=true would turn on every alpha API".to_owned()),
        "{report}"
    );
    // The guide's own `api/all` on its own release: accepted, silently ignored.
    add_flag(&p, "kube-apiserver", "runtime-config = \"api/all\"");
    let report = passes(&p, &["master-1"]);
    assert!(
        lines(&report, "warning")
            .iter()
            .any(|w| w.contains("api/all without a value is silently ignored by v1.14")),
        "{report}"
    );
}

/// The profile's old "fix" of the guide's line: every alpha API of the release turned on.
#[test]
fn runtime_config_api_all_true_names_the_alpha_apis_it_turns_on() {
    let p = Project::new();
    // Both sets do what the guide's line did: nothing.
    for set in ["profiles", "profiles/upgrade"] {
        let text = std::fs::read_to_string(p.path().join(set).join("cluster.toml")).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("runtime-config")),
            "{set}"
        );
    }
    add_flag(&p, "kube-apiserver", "runtime-config = \"api/all=true\"");
    let report = passes(&p, &["master-1"]);
    let warnings = lines(&report, "warning");
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "master-1 kube-apiserver --runtime-config: api/all=true turns on every alpha API version"
        ) && w.contains("batch/v2alpha1")
            && w.contains("settings.k8s.io/v1alpha1")
            && w.contains("auditregistration.k8s.io/v1alpha1")),
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// Cross-checks: each fails on the guide's mistake and passes on the seed profiles (which pass
// every test above).

#[test]
fn empty_requestheader_allowed_names_next_to_a_proxy_client_cert() {
    let p = Project::new();
    passes(&p, &["master-1"]);
    edit(
        &p,
        "profiles/cluster.toml",
        "requestheader-allowed-names = \"aggregator\"",
        "requestheader-allowed-names = \"\"",
    );
    let report = fails_with(
        &p,
        &["master-1"],
        "master-1 kube-apiserver --requestheader-allowed-names: empty while --proxy-client-cert-file is set (/etc/k8s/ssl/proxy-client.pem)",
    );
    assert_eq!(report["errors"], 1, "{report}");
}

#[test]
fn one_ca_for_client_and_front_proxy_authentication() {
    let p = Project::new();
    let same = "master-1 kube-apiserver --requestheader-client-ca-file: the same CA as --client-ca-file (/etc/k8s/ssl/ca.pem)";
    // The seed set gives the front proxy a CA of its own, declared as a secret like the others.
    let report = passes(&p, &["master-1"]);
    assert!(
        !lines(&report, "warning")
            .iter()
            .any(|w| w.starts_with(same)),
        "{report}"
    );
    // The guide's one CA for both is a warning.
    edit(
        &p,
        "profiles/cluster.toml",
        "requestheader-client-ca-file = \"{{ paths.cert_dir }}/front-proxy-ca.pem\"\nrequestheader-extra",
        "requestheader-client-ca-file = \"{{ paths.cert_dir }}/ca.pem\"\nrequestheader-extra",
    );
    let report = passes(&p, &["master-1"]);
    assert!(
        lines(&report, "warning")
            .iter()
            .any(|w| w.starts_with(same)),
        "{report}"
    );
}

#[test]
fn a_file_neither_the_image_nor_its_secrets_provide() {
    let p = Project::new();
    // The guide copies proxy-clinet.pem while the flag reads proxy-client.pem.
    edit(
        &p,
        "profiles/cluster.toml",
        "proxy-client-cert-file = \"{{ paths.cert_dir }}/proxy-client.pem\"",
        "proxy-client-cert-file = \"{{ paths.cert_dir }}/proxy-clinet.pem\"",
    );
    fails_with(
        &p,
        &["master-1"],
        "master-1 kube-apiserver --proxy-client-cert-file: /etc/k8s/ssl/proxy-clinet.pem is neither a file of image control-plane nor a declared secret: kube-apiserver cannot start",
    );
    let out = p.run(&["check", "master-1"]);
    assert!(
        text(&out.stdout).contains("fix: did you mean /etc/k8s/ssl/proxy-client.pem?"),
        "{}",
        text(&out.stdout)
    );
    // A file a kubeconfig names is checked the same way.
    let p = Project::new();
    edit(
        &p,
        "images/control-plane/templates/kubeconfig.j2",
        "client-key: {{ paths.cert_dir }}/{{ vars.cert }}-key.pem",
        "client-key: {{ paths.cert_dir }}/{{ vars.cert }}.key",
    );
    fails_with(
        &p,
        &["master-1"],
        "master-1 kube-controller-manager --kubeconfig: /etc/k8s/kubernetes/kube-controller-manager.kubeconfig: users[0].user.client-key: /etc/k8s/ssl/kube-controller-manager.key is neither a file of image control-plane nor a declared secret",
    );
}

#[test]
fn an_insecure_port_beyond_loopback() {
    // The guide: --insecure-port=8080 on the LAN address.
    let p = Project::new();
    edit(
        &p,
        "profiles/cluster.toml",
        "insecure-port = 0",
        "insecure-port = 8080",
    );
    edit(
        &p,
        "profiles/cluster.toml",
        "insecure-bind-address = \"127.0.0.1\"",
        "insecure-bind-address = \"{{ host.address }}\"",
    );
    fails_with(
        &p,
        &["master-1"],
        "master-1 kube-apiserver --insecure-port: serves unauthenticated, unauthorized access on 10.10.10.22:8080, beyond loopback",
    );
    // On loopback it is a warning.
    edit(
        &p,
        "profiles/cluster.toml",
        "insecure-bind-address = \"{{ host.address }}\"",
        "insecure-bind-address = \"127.0.0.1\"",
    );
    let report = passes(&p, &["master-1"]);
    assert!(
        lines(&report, "warning")
            .iter()
            .any(|w| w.contains("on 127.0.0.1:8080 (loopback")),
        "{report}"
    );
    // v1.14's controller manager serves 0.0.0.0:10252 unless --port=0 closes it.
    let p = Project::new();
    edit(
        &p,
        "profiles/cluster.toml",
        "[components.kube-controller-manager.flags]\n# v1.14 serves unauthenticated on 0.0.0.0:10252 unless told otherwise: closed, and loopback.\nport = 0\naddress = \"127.0.0.1\"\n",
        "[components.kube-controller-manager.flags]\n",
    );
    fails_with(
        &p,
        &["master-1"],
        "master-1 kube-controller-manager --port: without --port=0, v1.14 serves unauthenticated, unauthorized access on 0.0.0.0:10252, beyond loopback",
    );
}

#[test]
fn addresses_outside_the_declared_networks() {
    let p = Project::new();
    edit(
        &p,
        "profiles/cluster.toml",
        "advertise-address = \"{{ host.address }}\"",
        "advertise-address = \"10.10.10.99\"",
    );
    edit(
        &p,
        "profiles/cluster.toml",
        "service-cluster-ip-range = \"{{ cluster.service_cidr }}\"\nservice-node-port-range",
        "service-cluster-ip-range = \"10.96.0.0/12\"\nservice-node-port-range",
    );
    edit(
        &p,
        "profiles/cluster.toml",
        "bind-address = \"127.0.0.1\"\nsecure-port = 10259",
        "bind-address = \"10.10.10.50\"\nsecure-port = 10259",
    );
    let (ok, report) = check(&p, &["master-1"]);
    assert!(!ok);
    assert_eq!(
        sorted(errors(&report)),
        [
            "master-1 kube-apiserver --advertise-address: 10.10.10.99 is not this master's address 10.10.10.22: clients would be sent elsewhere",
            "master-1 kube-apiserver --service-cluster-ip-range: 10.96.0.0/12 is not the declared service network 10.254.0.0/22",
            "master-1 kube-scheduler --bind-address: 10.10.10.50 is not an address of this master (10.10.10.22, loopback or unspecified): it cannot bind",
        ]
    );
    // A master inside its own service network.
    let p = Project::new();
    edit(
        &p,
        "profiles/master-2.toml",
        "address = \"10.10.10.23\"",
        "address = \"10.254.0.1\"",
    );
    fails_with(
        &p,
        &["master-2"],
        "master-2 - ---: host.address 10.254.0.1 lies inside the service network 10.254.0.0/22",
    );
}

#[test]
fn apiserver_count_against_the_masters_of_the_set() {
    let p = Project::new();
    passes(&p, &["master-1"]);
    // A fourth master joins the set; the count still says 3.
    p.write(
        "profiles/master-4.toml",
        "inherit = \"cluster.toml\"\n[host]\nname = \"master-4\"\naddress = \"10.10.10.25\"\n",
    );
    fails_with(
        &p,
        &["master-1"],
        "master-1 kube-apiserver --apiserver-count: 3, but ",
    );
    let out = p.run(&["check", "master-1"]);
    assert!(
        text(&out.stdout)
            .contains("holds 4 masters running kube-apiserver; fix: set --apiserver-count=4"),
        "{}",
        text(&out.stdout)
    );
    edit(
        &p,
        "profiles/cluster.toml",
        "apiserver-count = 3",
        "apiserver-count = 4",
    );
    passes(&p, &["--all"]);
}

#[test]
fn apiservers_more_than_one_minor_apart() {
    let p = Project::new();
    // master-3 one minor behind: an upgrade in progress, allowed.
    edit(
        &p,
        "profiles/master-3.toml",
        "inherit = \"cluster.toml\"\n",
        "inherit = \"cluster.toml\"\nrelease = \"v1.13.5\"\n",
    );
    passes(&p, &["--all"]);
    // Two minors behind: not.
    edit(
        &p,
        "profiles/master-3.toml",
        "release = \"v1.13.5\"",
        "release = \"v1.12.10\"",
    );
    let (ok, report) = check(&p, &["--all"]);
    assert!(!ok);
    assert_eq!(
        errors(&report),
        [
            "master-3 kube-apiserver ---: v1.12 is more than one minor older than kube-apiserver v1.14 on master-1: HA apiservers stay within one minor"
        ]
    );
}

#[test]
fn a_controller_manager_newer_than_the_apiserver_it_talks_to() {
    // Every master's components share its release and talk to its own apiserver, so this can
    // happen only when a kubeconfig names another master: make every kubeconfig name master-1.
    let p = Project::new();
    edit(
        &p,
        "images/control-plane/templates/kubeconfig.j2",
        "server: {{ apiserver_url }}",
        "server: https://10.10.10.22:6443",
    );
    passes(&p, &["--all"]);
    edit(
        &p,
        "profiles/master-1.toml",
        "inherit = \"cluster.toml\"\n",
        "inherit = \"cluster.toml\"\nrelease = \"v1.13.5\"\n",
    );
    let (ok, report) = check(&p, &["--all"]);
    assert!(!ok);
    assert_eq!(
        sorted(errors(&report)),
        [
            "master-2 kube-controller-manager ---: v1.14 would be newer than the kube-apiserver v1.13 of master-1 it talks to (/etc/k8s/kubernetes/kube-controller-manager.kubeconfig)",
            "master-2 kube-scheduler ---: v1.14 would be newer than the kube-apiserver v1.13 of master-1 it talks to (/etc/k8s/kubernetes/kube-scheduler.kubeconfig)",
            "master-3 kube-controller-manager ---: v1.14 would be newer than the kube-apiserver v1.13 of master-1 it talks to (/etc/k8s/kubernetes/kube-controller-manager.kubeconfig)",
            "master-3 kube-scheduler ---: v1.14 would be newer than the kube-apiserver v1.13 of master-1 it talks to (/etc/k8s/kubernetes/kube-scheduler.kubeconfig)",
        ]
    );
}

#[test]
fn the_audit_policy_is_validated_as_the_apiserver_loads_it() {
    let p = Project::new();
    edit(
        &p,
        "images/control-plane/templates/audit-policy.yaml.j2",
        "  - level: None\n    nonResourceURLs:\n      - '/healthz*'\n",
        "  - level: Nothing\n    namespaces: [kube-system]\n    nonResourceURLs:\n      - 'healthz*'\n",
    );
    let (ok, report) = check(&p, &["master-1"]);
    assert!(!ok);
    let audit =
        "master-1 kube-apiserver --audit-policy-file: /etc/k8s/kubernetes/audit-policy.yaml";
    assert_eq!(
        errors(&report),
        [
            format!(
                "{audit}: rules[5].level: \"Nothing\" is not supported: one of None, Metadata, Request, RequestResponse"
            ),
            format!(
                "{audit}: rules[5].nonResourceURLs[0]: \"healthz*\": non-resource URL rules must begin with a '/' character"
            ),
            format!(
                "{audit}: rules[5].nonResourceURLs: rules cannot apply to both regular resources and non-resource URLs: split the rule"
            ),
        ]
    );
}

#[test]
fn build_image_shows_warnings_and_refuses_a_misspelt_flag() {
    let p = Project::new();
    // The seed set: no warning; the notes only with --verbose.
    for set in [&["--all"][..], &["--all", "--profiles", "profiles/upgrade"]] {
        let mut args = vec!["build-image", "--sample"];
        args.extend(set);
        let stderr = text(&p.ok(&args).stderr);
        assert!(!stderr.contains("warning"), "{args:?}:\n{stderr}");
        // The one note a build shows: how to get the base of the bootable disks, once.
        let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("note:")).collect();
        assert!(
            notes.len() <= 1
                && notes
                    .iter()
                    .all(|n| n.contains("cargo xtask base debian-trixie")),
            "{args:?}:\n{stderr}"
        );
    }
    let out = p.ok(&["build-image", "master-1", "--sample", "--verbose"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("note: master-1: kube-apiserver: --insecure-port: deprecated"),
        "{stderr}"
    );
    // A warning shows without --verbose, once, never as "error: warning:".
    edit(
        &p,
        "profiles/cluster.toml",
        "v = 2\n",
        "v = 2\nenable-swagger-ui = true\n",
    );
    let stderr = text(&p.ok(&["build-image", "master-1", "--sample"]).stderr);
    assert_eq!(
        stderr
            .matches("warning: master-1: kube-apiserver: --enable-swagger-ui: deprecated")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
    edit(
        &p,
        "profiles/cluster.toml",
        "kubelet-https = true",
        "kubelet-htps = true",
    );
    let err = p.fails(&["build-image", "master-1", "--sample"]);
    assert!(
        err.contains("--kubelet-htps: not a flag of kube-apiserver: did you mean --kubelet-https?"),
        "{err}"
    );
    assert!(err.contains("refusing to build"), "{err}");
}

#[test]
fn a_requestheader_ca_needs_allowed_names_on_every_component() {
    let p = Project::new();
    passes(&p, &["--all"]);
    // The controller manager's, the second of the set's two.
    let path = p.path().join("profiles/cluster.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .match_indices("requestheader-allowed-names = \"aggregator\"\n")
        .nth(1)
        .unwrap()
        .0;
    let mut edited = text.clone();
    edited.replace_range(
        at..at + "requestheader-allowed-names = \"aggregator\"\n".len(),
        "",
    );
    std::fs::write(&path, edited).unwrap();
    let report = fails_with(
        &p,
        &["master-1"],
        "master-1 kube-controller-manager --requestheader-allowed-names: empty while --requestheader-client-ca-file is set (/etc/k8s/ssl/front-proxy-ca.pem): every client certificate that CA signed is trusted as a front proxy",
    );
    assert_eq!(report["errors"], 1, "{report}");
}

/// "Closed" means closed: the v1.14 scheduler's listener is its configuration file's, which
/// the image renders with port 0, and the check reads the file, not --port.
#[test]
fn the_v1_14_scheduler_opens_no_unauthenticated_port() {
    let p = Project::new();
    let out = p.ok(&["plan", "master-1"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/k8s/kubernetes/kube-scheduler.yaml")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        config.contains("\nhealthzBindAddress: 127.0.0.1:0\nmetricsBindAddress: 127.0.0.1:0\n"),
        "{config}"
    );
    let unit = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/lib/systemd/system/kube-scheduler.service")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !unit.contains("--port") && !unit.contains("--address"),
        "{unit}"
    );
    let report = passes(&p, &["master-1"]);
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["component"] == "kube-scheduler"),
        "{report}"
    );
    // The file without its addresses: v1.14's default, 0.0.0.0:10251, whatever --port says.
    edit(
        &p,
        "images/control-plane/templates/kube-scheduler.yaml.j2",
        "healthzBindAddress: 127.0.0.1:0\nmetricsBindAddress: 127.0.0.1:0\n",
        "",
    );
    add_flag(&p, "kube-scheduler", "port = 0");
    let report = fails_with(
        &p,
        &["master-1"],
        "master-1 kube-scheduler --config: /etc/k8s/kubernetes/kube-scheduler.yaml: healthzBindAddress and metricsBindAddress: 0.0.0.0:10251 serves unauthenticated, unauthorized access beyond loopback",
    );
    assert!(
        lines(&report, "warning").iter().any(
            |w| w.starts_with("master-1 kube-scheduler --port: ignored when --config is given")
        ),
        "{report}"
    );
}
