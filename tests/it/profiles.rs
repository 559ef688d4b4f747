//! Broken profiles: each problem names its file and key, all of them at once, and nothing is
//! built.

use crate::support::Project;

fn edit(p: &Project, file: &str, from: &str, to: &str) {
    let path = p.path().join("profiles").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} not in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn unknown_key_is_an_error_naming_file_and_key_beside_the_other_problems() {
    let p = Project::new();
    edit(
        &p,
        "master-2.toml",
        "[host]\n",
        "[host]\nadress = \"10.10.10.23\"\n",
    );
    edit(
        &p,
        "master-2.toml",
        "address = \"10.10.10.23\"",
        "address = \"10.10.10.323\"",
    );
    edit(
        &p,
        "cluster.toml",
        "epoch = 1558001600\n",
        "epoch = 1558001600\nbogus = true\n",
    );
    let err = p.fails(&["build-image", "master-2", "--sample"]);
    assert!(
        err.contains(
            "profiles/master-2.toml: host.adress: unknown key (known here: name, address)"
        ),
        "{err}"
    );
    assert!(
        err.contains("profiles/cluster.toml: bogus: unknown key"),
        "{err}"
    );
    assert!(
        err.contains("profiles/master-2.toml: host.address: \"10.10.10.323\" is not an IP address"),
        "{err}"
    );
}

#[test]
fn every_typed_value_problem_is_reported_at_once() {
    let p = Project::new();
    edit(
        &p,
        "cluster.toml",
        "service_cidr = \"10.254.0.0/22\"",
        "service_cidr = \"10.254.0.0/40\"",
    );
    edit(
        &p,
        "cluster.toml",
        "node_port_range = \"8400-9400\"",
        "node_port_range = \"9400-8400\"",
    );
    edit(
        &p,
        "cluster.toml",
        "install_dir = \"/data/apps/k8s/kubernetes\"",
        "install_dir = \"data/apps\"",
    );
    edit(
        &p,
        "master-1.toml",
        "address = \"10.10.10.22\"",
        "address = \"10.10.10.322\"",
    );
    edit(
        &p,
        "cluster.toml",
        "event-ttl = \"168h\"",
        "event-ttl = \"7 days\"",
    );
    let err = p.fails(&["build-image", "master-1", "--sample"]);
    for want in [
        "profiles/cluster.toml: cluster.service_cidr: \"10.254.0.0/40\" is not a CIDR",
        "profiles/cluster.toml: cluster.node_port_range: \"9400-8400\" is not a port range",
        "profiles/cluster.toml: paths.install_dir: \"data/apps\" is not an absolute path",
        "profiles/master-1.toml: host.address: \"10.10.10.322\" is not an IP address",
        "profiles/cluster.toml: components.kube-apiserver.flags.event-ttl: \"7 days\" is not a duration",
        "profile master-1 has 5 problems",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
    assert!(!p.path().join("target/images/sample/master-1").exists());
}

#[test]
fn missing_key_names_the_profile_file() {
    let p = Project::new();
    edit(&p, "master-3.toml", "address = \"10.10.10.24\"\n", "");
    let err = p.fails(&["build-image", "master-3", "--sample"]);
    assert!(
        err.contains("profiles/master-3.toml: host.address: missing"),
        "{err}"
    );
}

#[test]
fn newline_in_a_flag_value_is_an_error() {
    let p = Project::new();
    edit(
        &p,
        "cluster.toml",
        "requestheader-allowed-names = \"aggregator\"",
        "requestheader-allowed-names = \"aggregator\\n--insecure-port=8080\"",
    );
    let err = p.fails(&["build-image", "master-1", "--sample"]);
    assert!(
        err.contains("profiles/cluster.toml: components.kube-apiserver.flags.requestheader-allowed-names: value \"aggregator\\n--insecure-port=8080\" contains '\\n'"),
        "{err}"
    );
}

#[test]
fn misspelt_template_variable_is_an_error() {
    // The guide's `$KUBE_NAM`: a strict template engine refuses instead of rendering "".
    let p = Project::new();
    edit(
        &p,
        "cluster.toml",
        "audit-policy-file = \"{{ paths.conf_dir }}/audit-policy.yaml\"",
        "audit-policy-file = \"{{ paths.conf_dri }}/audit-policy.yaml\"",
    );
    let err = p.fails(&["build-image", "master-1", "--sample"]);
    assert!(
        err.contains("profiles/cluster.toml: components.kube-apiserver.flags.audit-policy-file"),
        "{err}"
    );
    assert!(err.contains("undefined"), "{err}");
}

#[test]
fn problems_of_several_profiles_are_reported_together() {
    let p = Project::new();
    edit(
        &p,
        "master-1.toml",
        "address = \"10.10.10.22\"",
        "address = \"x\"",
    );
    edit(
        &p,
        "master-2.toml",
        "name = \"master-2\"",
        "name = \"Master 2\"",
    );
    let err = p.fails(&["build-image", "--all", "--sample"]);
    assert!(
        err.contains("profiles/master-1.toml: host.address"),
        "{err}"
    );
    assert!(err.contains("profiles/master-2.toml: host.name"), "{err}");
}
