//! The one front end: build-image, check and plan select profiles the same way (names once,
//! `--all`, `--profiles`), report every problem of the selection at once with file, line and
//! key, and refuse before any input is looked for or anything is written.

use crate::support::{Project, text};

fn edit(p: &Project, rel: &str, from: &str, to: &str) {
    let path = p.path().join(rel);
    let s = std::fs::read_to_string(&path).unwrap();
    assert!(s.contains(from), "{from:?} not in {rel}");
    std::fs::write(&path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_profile_named_twice_is_checked_and_built_once() {
    let p = Project::new();
    let once = text(&p.ok(&["check", "master-1"]).stdout);
    let twice = text(&p.ok(&["check", "master-1", "master-1"]).stdout);
    assert_eq!(once, twice);
    assert_eq!(
        twice.lines().filter(|l| l.starts_with("note: ")).count(),
        4,
        "{twice}"
    );
    let out = p.ok(&["build-image", "master-1", "master-1", "--sample", "--json"]);
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(built.as_array().unwrap().len(), 1);
}

#[test]
fn profiles_dir_works_for_every_command() {
    let p = Project::new();
    let out = p.ok(&["plan", "--profiles", "profiles/upgrade", "master-1"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["release"]["name"], "v1.33.5");
    assert_eq!(plan["release"]["version"], "1.33.5");
    // Several profiles: a list of plans; --text: every rendered file whole.
    let out = p.ok(&["plan", "--profiles", "profiles/upgrade", "--all"]);
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plans.as_array().unwrap().len(), 3);
    let txt = text(&p.ok(&["plan", "master-2", "--text"]).stdout);
    assert!(txt.starts_with("plan master-2: image control-plane, release v1.14.2"));
    assert!(txt.contains(
        "\n--- /usr/lib/systemd/system/kube-apiserver.service (0644, from component.service.j2)\n"
    ));
    let report = p.ok(&[
        "check",
        "--profiles",
        "profiles/upgrade",
        "master-3",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["checked"][0]["release"], "v1.33.5");
}

#[test]
fn a_profile_that_does_not_load_is_reported_by_check_never_skipped() {
    let p = Project::new();
    edit(
        &p,
        "profiles/master-3.toml",
        "address = \"10.10.10.24\"",
        "address = \"10.10.10.324\"",
    );
    let out = p.run(&["check", "--all"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "profiles/master-3.toml: host.address: \"10.10.10.324\" is not an IP address (line "
        ),
        "{err}"
    );
    // Checked alone, a sibling's problem does not fail master-1, but it is not hidden either.
    let out = p.ok(&["check", "master-1"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("warning: master-3: another profile of ")
            && stdout.contains("does not load"),
        "{stdout}"
    );
}

#[test]
fn profile_problems_name_file_key_line_and_column() {
    let p = Project::new();
    edit(
        &p,
        "profiles/cluster.toml",
        "[user]\nname = \"k8s\"\n",
        "[user]\nname = \"k8s\"\nshell = \"/bin/sh\"\n",
    );
    edit(
        &p,
        "profiles/master-2.toml",
        "name = \"master-2\"",
        "name = \"Master 2\"",
    );
    let err = p.fails(&["check", "master-2"]);
    let line_of = |file: &str, needle: &str| {
        let text = std::fs::read_to_string(p.path().join("profiles").join(file)).unwrap();
        text.lines().position(|l| l.starts_with(needle)).unwrap() + 1
    };
    let shell = line_of("cluster.toml", "shell = ");
    assert!(
        err.contains(&format!(
            "profiles/cluster.toml: user.shell: unknown key (known here: name) (line {shell}, column 1)"
        )),
        "{err}"
    );
    let name = line_of("master-2.toml", "name = ");
    assert!(
        err.contains("profiles/master-2.toml: host.name: \"Master 2\"")
            && err.contains(&format!("(line {name}, column 1)")),
        "{err}"
    );
}

#[test]
fn key_material_in_a_flag_value_is_refused_before_any_input_is_located() {
    let p = Project::new();
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    edit(
        &p,
        "profiles/cluster.toml",
        "v = 2\n",
        &format!("v = 2\noidc-client-id = \"{jwt}\"\n"),
    );
    for args in [
        &["build-image", "master-1"][..],
        &["build-image", "master-1", "--sample"],
    ] {
        let out = p.run(args);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("/usr/lib/systemd/system/kube-apiserver.service (in the tree of master-1): looks like a JSON Web Token"),
            "{err}"
        );
        assert!(err.contains("refusing to build"), "{err}");
        // Before the store was looked in, and without showing the material.
        assert!(!err.contains("cargo xtask fetch"), "{err}");
        assert!(
            !err.contains(jwt) && !text(&out.stdout).contains(jwt),
            "{err}"
        );
    }
    // Nothing was written: no output root, no session, no sample tarball.
    assert!(!p.path().join("target").exists());
    let report = p.run(&["check", "master-1", "--json"]);
    assert!(!report.status.success());
    assert!(!text(&report.stdout).contains(jwt));
}

#[test]
fn the_epoch_is_checked_once_whatever_gives_it() {
    let p = Project::new();
    let err = p.fails(&[
        "build-image",
        "master-1",
        "--sample",
        "--epoch",
        "4294967296",
    ]);
    assert!(
        err.contains("--epoch=4294967296: 4294967296 is out of range"),
        "{err}"
    );
    let out = p
        .xtask(&["build-image", "master-1", "--sample"])
        .env("SOURCE_DATE_EPOCH", "-5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("SOURCE_DATE_EPOCH=-5: -5 is out of range"));
    edit(
        &p,
        "profiles/cluster.toml",
        "epoch = 1558001600",
        "epoch = 99999999999",
    );
    let err = p.fails(&["build-image", "master-1", "--sample"]);
    assert!(
        err.contains("profiles/cluster.toml: epoch: 99999999999 is out of range"),
        "{err}"
    );
    assert!(!p.path().join("target").exists());
    // The largest epoch squashfs can keep builds.
    edit(
        &p,
        "profiles/cluster.toml",
        "epoch = 99999999999",
        "epoch = 4294967295",
    );
    p.ok(&["build-image", "master-1", "--sample"]);
}

#[test]
fn no_tracked_file_looks_like_a_build_output() {
    let repo = crate::support::repo();
    let files: Vec<String> = if repo.join(".git").exists() {
        let out = std::process::Command::new("git")
            .args(["ls-files", "-z"])
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(out.status.success());
        text(&out.stdout)
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        walkdir::WalkDir::new(&repo)
            .into_iter()
            .filter_entry(|e| {
                !["target", ".git", "store"].contains(&e.file_name().to_str().unwrap_or(""))
            })
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(&repo).unwrap().display().to_string())
            .collect()
    };
    let mut outputs = Vec::new();
    for f in &files {
        // Fixtures live under tests/ and are named as such.
        if f.starts_with("tests/fixtures/") {
            continue;
        }
        let name = f.rsplit('/').next().unwrap();
        let looks = name.ends_with(".raw")
            || name.ends_with(".oci.tar")
            || name.ends_with("-install.sh")
            || name == "SHA256SUMS"
            || (name == "report.html"
                && std::fs::read_to_string(repo.join(f))
                    .is_ok_and(|t| t.starts_with(kubemint::report::MARK)))
            || (name == "manifest.json"
                && std::fs::read_to_string(repo.join(f))
                    .is_ok_and(|t| t.contains("\"generator\":{") && t.contains("\"kubemint\"")));
        if looks {
            outputs.push(f.clone());
        }
    }
    assert!(
        outputs.is_empty(),
        "these tracked files look like kubemint outputs; remove them (git rm) unless they are fixtures under tests/fixtures/:\n{}",
        outputs.join("\n")
    );
}
