//! Audits: `verify` passes on a clean root, OCI layout, sysext, confext and output directory
//! and names every kind of drift, inside images too; `diff` explains two masters in Kubernetes
//! terms, then files, then what they share; `rebuild-check` proves a rebuild and names the
//! field when one differs; a signed output directory verifies against its unsigned reference,
//! and `--trusted-key` checks its signatures.

use crate::support::{self, Project, sh, text};
use std::path::Path;

fn install(dir: &Path, root: &Path) {
    let out = sh(&format!(
        "sh '{}' --root '{}'",
        dir.join("master-1-install.sh").display(),
        root.display()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// verify's --json findings.
fn findings(out: &std::process::Output) -> Vec<serde_json::Value> {
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    reports
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap().clone())
        .collect()
}

/// Flips the lowest bit of the byte at `at` of `file`, in place.
fn flip_byte(file: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x01;
    f.write_all_at(&b, at).unwrap();
}

fn has(findings: &[serde_json::Value], kind: &str, path: &str) -> bool {
    findings
        .iter()
        .any(|f| f["kind"] == kind && f["path"] == path)
}

#[test]
fn verify_passes_on_a_clean_root_oci_layout_extensions_and_output_directory() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let root = tempfile::tempdir().unwrap();
    install(&dir, root.path());
    let manifest = dir.join("manifest.json");
    let m = manifest.to_str().unwrap();
    let m1 = support::manifest(&dir);
    let of = |kind: &str| {
        let row = m1["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} output"));
        dir.join(row["path"].as_str().unwrap())
            .to_string_lossy()
            .into_owned()
    };
    // Against the profile itself: a reference build in a temporary directory.
    let out = p.ok(&[
        "verify",
        "master-1",
        "--sample",
        "--root",
        root.path().to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout).contains("no findings"),
        "{}",
        text(&out.stdout)
    );
    let out = p.ok(&[
        "verify",
        "master-1",
        "--sample",
        "--output",
        dir.to_str().unwrap(),
    ]);
    assert!(text(&out.stdout).contains("no findings"));
    // Against a given manifest.
    let layout = format!("oci:{}", dir.join("oci").display());
    let tagged = format!("{layout}:master-1");
    for target in [
        ["--image", layout.as_str()],
        ["--image", tagged.as_str()],
        ["--disk", &of("sysext")],
        ["--disk", &of("confext")],
        ["--disk", &of("disk")],
    ] {
        let out = p.run(&["verify", "--manifest", m, target[0], target[1]]);
        assert!(
            out.status.success(),
            "{target:?}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("no findings"));
    }
}

#[test]
fn verify_names_each_kind_of_drift_on_a_root() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = support::manifest(&dir);
    let root = tempfile::tempdir().unwrap();
    install(&dir, root.path());
    let r = root.path();
    let at = |path: &str| r.join(path.trim_start_matches('/'));
    let files = m["files"].as_array().unwrap();
    let first = |kind: &str, under: &str| -> String {
        files
            .iter()
            .find(|f| f["type"] == kind && f["path"].as_str().unwrap().starts_with(under))
            .unwrap_or_else(|| panic!("no {kind} under {under}"))["path"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let unit = "/usr/lib/systemd/system/kube-apiserver.service";
    std::fs::write(at(unit), "[Service]\nExecStart=/bin/evil\n").unwrap();
    let policy = "/etc/k8s/kubernetes/audit-policy.yaml";
    sh(&format!("chmod 0600 '{}'", at(policy).display()));
    let link = first("symlink", "/usr");
    std::fs::remove_file(at(&link)).unwrap();
    std::os::unix::fs::symlink("/elsewhere", at(&link)).unwrap();
    let gone = first("file", "/usr/lib/kubemint");
    std::fs::remove_file(at(&gone)).unwrap();
    let typed = first("file", "/etc");
    std::fs::remove_file(at(&typed)).unwrap();
    std::fs::create_dir(at(&typed)).unwrap();
    let owned = m["owns"][0].as_str().unwrap().to_owned();
    std::fs::write(at(&format!("{owned}/stray")), "x").unwrap();
    std::fs::create_dir_all(at("/etc/systemd/system/kube-apiserver.service.d")).unwrap();
    std::fs::write(
        at("/etc/systemd/system/kube-apiserver.service.d/evil.conf"),
        "[Service]\n",
    )
    .unwrap();
    std::fs::write(
        at("/etc/systemd/system/kube-scheduler.service"),
        "[Service]\n",
    )
    .unwrap();
    let secret = m["secrets"][0]["path"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(at(&secret).parent().unwrap()).unwrap();
    std::fs::write(at(&secret), "not shown").unwrap();
    sh(&format!("chmod 0666 '{}'", at(&secret).display()));
    let owner_changed = first("file", "/usr/lib/systemd");
    // A unit no longer enabled (its wants link gone) and an installer switch cut short.
    let wants = files
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .find(|p| p.starts_with("/usr/lib/systemd/system/") && p.contains(".wants/"))
        .expect("a wants link")
        .to_owned();
    let disabled_unit = wants.rsplit('/').next().unwrap().to_owned();
    std::fs::remove_file(at(&wants)).unwrap();
    std::fs::create_dir_all(at("/var/lib/kubemint")).unwrap();
    std::fs::write(at("/var/lib/kubemint/switch"), "").unwrap();
    if support::is_root() {
        sh(&format!("chown 1:1 '{}'", at(&owner_changed).display()));
    }

    let out = p.run(&[
        "verify",
        "--manifest",
        dir.join("manifest.json").to_str().unwrap(),
        "--root",
        r.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    let shown = serde_json::to_string_pretty(&f).unwrap();
    for (kind, path) in [
        ("changed", unit),
        ("mode", policy),
        ("target", link.as_str()),
        ("missing", gone.as_str()),
        ("type", typed.as_str()),
        ("unexpected", &format!("{owned}/stray")),
        (
            "drop-in",
            "/etc/systemd/system/kube-apiserver.service.d/evil.conf",
        ),
        ("override", "/etc/systemd/system/kube-scheduler.service"),
        ("secret", secret.as_str()),
        ("disabled", disabled_unit.as_str()),
        ("interrupted", "/var/lib/kubemint/switch"),
    ] {
        assert!(has(&f, kind, path), "no {kind} {path} in:\n{shown}");
    }
    if support::is_root() {
        assert!(
            has(&f, "owner", &owner_changed),
            "no owner finding:\n{shown}"
        );
    }
    // Never a secret's content.
    assert!(!text(&out.stdout).contains("not shown"));
    // The text form: one line per finding, KIND PATH: detail, and a summary.
    let out = p.run(&[
        "verify",
        "--manifest",
        dir.join("manifest.json").to_str().unwrap(),
        "--root",
        r.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out.stdout);
    assert!(
        t.contains(&format!("mode {policy}: mode 0600, expected 0644")),
        "{t}"
    );
    assert!(t.contains("differs from master-1"), "{t}");
    // A usage error is 2: no target, or a target that is not there.
    assert_eq!(p.run(&["verify", "master-1"]).status.code(), Some(2));
    assert_eq!(
        p.run(&[
            "verify",
            "master-1",
            "--sample",
            "--root",
            "/nonexistent/root"
        ])
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn verify_checks_the_service_user_and_tmpfiles_paths_once_the_root_has_booted() {
    support::require_tool("systemd-sysusers");
    support::require_tool("systemd-tmpfiles");
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let root = tempfile::tempdir().unwrap();
    install(&dir, root.path());
    let r = root.path();
    let manifest = dir.join("manifest.json");
    let verify = |json: bool| {
        let mut args = vec![
            "verify",
            "--manifest",
            manifest.to_str().unwrap(),
            "--root",
            r.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        p.run(&args)
    };
    // Not booted yet: the user and the tmpfiles.d paths come at the first boot (a note).
    let out = verify(false);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("made at its first boot"), "{said}");
    // What the first boot does, by systemd's own tools, from the image's own declarations.
    support::sh_ok(&format!(
        "systemd-sysusers --root='{r}' && systemd-tmpfiles --root='{r}' --create",
        r = r.display()
    ));
    let out = verify(false);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Drift in what the first boot made.
    let conf = std::fs::read_to_string(r.join("usr/lib/tmpfiles.d/kubemint.conf")).unwrap();
    let dirs: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.strip_prefix("d "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let (chmodded, removed) = (dirs[0], dirs[dirs.len() - 1]);
    let at = |path: &str| r.join(path.trim_start_matches('/'));
    sh(&format!("chmod 0777 '{}'", at(chmodded).display()));
    std::fs::remove_dir_all(at(removed)).unwrap();
    let user = std::fs::read_to_string(r.join("usr/lib/sysusers.d/kubemint.conf"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("u ")
                .map(|x| x.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap();
    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    let without: String = group
        .lines()
        .filter(|l| !l.starts_with(&format!("{user}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(r.join("etc/group"), without).unwrap();
    let out = verify(true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    let shown = serde_json::to_string_pretty(&f).unwrap();
    assert!(has(&f, "tmpfiles", chmodded), "{shown}");
    assert!(has(&f, "tmpfiles", removed), "{shown}");
    assert!(has(&f, "user", &format!("group {user}")), "{shown}");
    // The same root, judged by the installer's own --verify: the same kinds on the same paths.
    let out = sh(&format!(
        "sh '{}' --root '{}' --verify",
        dir.join("master-1-install.sh").display(),
        r.display()
    ));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains(&format!("tmpfiles: {chmodded}:")), "{said}");
    assert!(said.contains(&format!("tmpfiles: {removed}:")), "{said}");
    assert!(
        said.contains(&format!("user: group {user}: missing")),
        "{said}"
    );
}

#[test]
fn verify_names_a_flipped_byte_in_an_oci_layer_and_a_changed_file_in_a_squashfs() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = support::manifest(&dir);
    let manifest = dir.join("manifest.json");
    let work = tempfile::tempdir().unwrap();

    // The OCI layout, a byte of its profile layer flipped.
    let layout = work.path().join("oci");
    support::copy_dir(&dir.join("oci"), &layout);
    let layer = m["oci"]["layers"][1]["digest"].as_str().unwrap();
    let blob = layout.join("blobs/sha256").join(&layer["sha256:".len()..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x40;
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &bytes).unwrap();
    let out = p.run(&[
        "verify",
        "--manifest",
        manifest.to_str().unwrap(),
        "--image",
        &format!("oci:{}", layout.display()),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    let blob_path = format!("blobs/sha256/{}", &layer["sha256:".len()..]);
    assert!(
        has(&f, "changed", &blob_path),
        "{}",
        serde_json::to_string_pretty(&f).unwrap()
    );
    // The attached provenance, a byte of its blob flipped: named by its title.
    let sha = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "provenance")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = layout.join("blobs/sha256").join(&sha);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 0x20;
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &bytes).unwrap();
    let out = p.run(&[
        "verify",
        "--manifest",
        manifest.to_str().unwrap(),
        "--image",
        &format!("oci:{}", layout.display()),
        "--json",
    ]);
    let f = findings(&out);
    assert!(
        has(&f, "changed", "provenance.intoto.json"),
        "{}",
        serde_json::to_string_pretty(&f).unwrap()
    );

    // The sysext, a byte of a file's data block changed.
    let sysext_row = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "sysext")
        .unwrap();
    let sysext = work.path().join("sysext.raw");
    std::fs::copy(dir.join(sysext_row["path"].as_str().unwrap()), &sysext).unwrap();
    let img = kubemint::audit::squashfs::read(&sysext, 0).unwrap();
    let (path, entry) = img
        .entries
        .iter()
        .find(|(p, e)| e.kind == "file" && p.starts_with("/usr/lib/systemd/system/") && e.size > 64)
        .unwrap();
    let block = entry.blocks[0];
    let mut bytes = std::fs::read(&sysext).unwrap();
    let at = (block.offset + u64::from(block.stored) / 2) as usize;
    bytes[at] ^= 0x01;
    std::fs::write(&sysext, &bytes).unwrap();
    let out = p.run(&[
        "verify",
        "--manifest",
        manifest.to_str().unwrap(),
        "--disk",
        sysext.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    assert!(
        has(&f, "changed", path),
        "no changed {path}: {}",
        serde_json::to_string_pretty(&f).unwrap()
    );

    // The whole output directory: the same change is caught by its digest first.
    let copy = work.path().join("master-1");
    support::copy_dir(&dir, &copy);
    std::fs::copy(&sysext, copy.join(sysext_row["path"].as_str().unwrap())).unwrap();
    let out = p.run(&[
        "verify",
        "--manifest",
        manifest.to_str().unwrap(),
        "--output",
        copy.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    assert!(has(&f, "changed", sysext_row["path"].as_str().unwrap()));
    assert!(has(&f, "changed", path));
}

fn diff_json(p: &Project, a: &str, b: &str) -> (Option<i32>, serde_json::Value) {
    let out = p.run(&["diff", a, b, "--sample", "--json"]);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out.status.code(), v)
}

#[test]
fn diff_explains_two_masters_and_the_upgrade_and_nothing_against_itself() {
    let p = Project::new();
    let (code, d) = diff_json(&p, "master-1", "master-2");
    assert_eq!(code, Some(1));
    let shown = serde_json::to_string_pretty(&d).unwrap();
    let meaning = d["meaning"].as_array().unwrap();
    assert!(
        meaning
            .iter()
            .any(|c| c["what"] == "kube-apiserver --advertise-address"
                && c["a"] == "10.10.10.22"
                && c["b"] == "10.10.10.23"),
        "{shown}"
    );
    assert!(
        d["files"].as_array().unwrap().iter().any(|f| f["path"]
            == "/usr/lib/systemd/system/kube-apiserver.service"
            && f["change"] == "changed"),
        "{shown}"
    );
    assert!(
        d["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["what"] == "oci layer release" && x["on"] == "shared"),
        "{shown}"
    );
    assert!(!meaning.iter().any(|c| c["what"] == "release"), "{shown}");

    let (code, d) = diff_json(&p, "profiles/master-1", "profiles/upgrade/master-1");
    assert_eq!(code, Some(1));
    let shown = serde_json::to_string_pretty(&d).unwrap();
    let meaning = d["meaning"].as_array().unwrap();
    assert!(
        meaning
            .iter()
            .any(|c| c["what"] == "release" && c["a"] == "v1.14.2" && c["b"] == "v1.33.5"),
        "{shown}"
    );
    assert!(
        meaning
            .iter()
            .any(|c| c["what"].as_str().unwrap().starts_with("kube-apiserver --")),
        "{shown}"
    );

    // A build against itself, and against its own manifest: nothing.
    let dir = p.build_sample("master-1");
    let out = p.run(&[
        "diff",
        dir.to_str().unwrap(),
        dir.join("manifest.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no differences"),
        "{}",
        text(&out.stdout)
    );
    let out = p.run(&["diff", "master-1", dir.to_str().unwrap(), "--sample"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn rebuild_check_passes_and_names_a_planted_difference() {
    // The repository's profiles and images, in a throwaway project: nothing is written into
    // the checkout (its store included).
    let p = Project::new();
    let out = p.run(&["rebuild-check", "master-1", "--sample"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("identical"));

    let out = p.run(&[
        "rebuild-check",
        "master-1",
        "--sample",
        "--plant-nondeterminism",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    // The payload's tar member and its mtime, the two values side by side.
    assert!(
        t.lines()
            .any(|l| l.contains("master-1.tar.gz: gzip: tar member ")
                && l.contains(": mtime 1558001600 vs 1558001601")),
        "{t}"
    );
    assert!(t.contains("squashfs"), "{t}");
    assert!(t.contains("NOT reproducible"), "{t}");
}

#[test]
fn verify_reads_the_bootable_disk_s_esp_and_names_a_changed_extension_in_it() {
    let (p, dir) = crate::boot::built("out");
    let manifest = dir.join("manifest.json");
    let disk = dir.join(
        support::manifest(&dir)["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "bootable")
            .expect("a bootable disk")["path"]
            .as_str()
            .unwrap(),
    );
    let out = p.run(&[
        "verify",
        "--manifest",
        manifest.to_str().unwrap(),
        "--disk",
        disk.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("no findings"));

    // A byte of the confext inside the ESP changed: found by its digest, named inside.
    let img = kubemint::audit::gpt::read(&disk).unwrap().unwrap();
    let esp = img
        .partitions
        .iter()
        .find(|x| x.type_guid == kubemint::audit::gpt::ESP)
        .unwrap();
    let fat = kubemint::audit::fat::Fat::open(&disk, esp.offset()).unwrap();
    let node = fat
        .walk()
        .unwrap()
        .into_iter()
        .find(|n| n.path.starts_with("kubemint/confexts/"))
        .unwrap();
    let at = fat.contiguous(&node).unwrap().unwrap();
    let sq = kubemint::audit::squashfs::read(&disk, at).unwrap();
    let (path, entry) = sq
        .entries
        .iter()
        .find(|(_, e)| e.kind == "file" && e.size > 64)
        .unwrap();
    let byte = at + entry.blocks[0].offset + u64::from(entry.blocks[0].stored) / 2;
    flip_byte(&disk, byte);
    let verify_disk = || {
        p.run(&[
            "verify",
            "--manifest",
            manifest.to_str().unwrap(),
            "--disk",
            disk.to_str().unwrap(),
            "--json",
        ])
    };
    let out = verify_disk();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    let shown = serde_json::to_string_pretty(&f).unwrap();
    assert!(has(&f, "changed", &node.path), "{shown}");
    assert!(has(&f, "changed", path), "{shown}");

    // The base's parts: a byte of the /usr partition and of the kernel image flipped, each
    // named (the partition by its label, the kernel by its path in the ESP). The manifest
    // records each file of the ESP with its digest, and the /usr partition's.
    let m = support::manifest(&dir);
    let esp_files = m["boot"]["partitions"][0]["files"].as_array().unwrap();
    let recorded: Vec<&str> = esp_files
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(recorded.contains(&"EFI/BOOT/BOOTX64.EFI"), "{recorded:?}");
    let uki = recorded
        .iter()
        .find(|p| p.starts_with("EFI/Linux/"))
        .expect("the kernel image is recorded")
        .to_string();
    let usr = img
        .partitions
        .iter()
        .find(|x| x.type_guid == kubemint::audit::gpt::USR_X86_64 && x.label != "_empty")
        .unwrap();
    let kernel = fat
        .walk()
        .unwrap()
        .into_iter()
        .find(|n| n.path == uki)
        .unwrap();
    let kernel_at = fat.contiguous(&kernel).unwrap().unwrap();
    for byte in [usr.offset() + 4096 * 3 + 17, kernel_at + kernel.size / 2] {
        flip_byte(&disk, byte);
    }
    let out = verify_disk();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    let shown = serde_json::to_string_pretty(&f).unwrap();
    assert!(has(&f, "changed", &usr.label), "{shown}");
    assert!(has(&f, "changed", &uki), "{shown}");
}

#[test]
fn verify_takes_a_registry_image_through_skopeo() {
    support::require_tool("skopeo");
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let work = tempfile::tempdir().unwrap();
    let registry = crate::oci::Registry::start(work.path());
    let image = format!("docker://{}/kubemint/master-1:v1.14.2", registry.addr);
    let out = sh(&format!(
        "skopeo copy --dest-tls-verify=false 'oci:{}:master-1' {image}",
        dir.join("oci").display()
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = p.run(&[
        "verify",
        "--manifest",
        dir.join("manifest.json").to_str().unwrap(),
        "--image",
        &image,
        "--no-tls-verify",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("no findings"));
    // skopeo copied the image alone: its SBOMs and provenance are not there, a note.
    assert!(
        text(&out.stdout).contains("no SBOM or provenance attached"),
        "{}",
        text(&out.stdout)
    );
    // Pushed with them: each found by the image's digest and compared with the build's.
    let repo = format!("docker://{}/kubemint/master-2", registry.addr);
    p.ok(&[
        "push",
        dir.to_str().unwrap(),
        &repo,
        "--tag",
        "v1",
        "--no-tls-verify",
    ]);
    let verify = |manifest: &Path| {
        p.run(&[
            "verify",
            "--manifest",
            manifest.to_str().unwrap(),
            "--image",
            &format!("{repo}:v1"),
            "--no-tls-verify",
            "--json",
        ])
    };
    let out = verify(&dir.join("manifest.json"));
    assert!(out.status.success(), "{}", text(&out.stdout));
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let notes = serde_json::to_string(&reports[0]["notes"]).unwrap();
    assert!(!notes.contains("no SBOM"), "{notes}");
    // Against a manifest whose SBOM differs: the attached one is named as changed.
    let mut m = support::manifest(&dir);
    for o in m["outputs"].as_array_mut().unwrap() {
        if o["kind"] == "sbom-spdx" {
            o["sha256"] = serde_json::json!("0".repeat(64));
        }
    }
    let other = work.path().join("manifest.json");
    std::fs::write(&other, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = verify(&other);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    assert!(
        has(&f, "changed", "sbom.spdx.json"),
        "{}",
        serde_json::to_string_pretty(&f).unwrap()
    );
}

#[test]
fn verify_takes_a_signed_output_and_checks_its_signatures_with_the_trusted_key() {
    let p = Project::new();
    let keys = tempfile::tempdir().unwrap();
    let (secret, public) = crate::attest::test_key(keys.path());
    let elsewhere = keys.path().join("other");
    std::fs::create_dir(&elsewhere).unwrap();
    let (_, other) = crate::attest::test_key(&elsewhere);
    p.ok(&[
        "build-image",
        "master-1",
        "--sample",
        "--sign-key",
        secret.to_str().unwrap(),
    ]);
    let dir = p.path().join("target/images/sample/master-1");
    let d = dir.to_str().unwrap();
    // Against the (unsigned) reference build: clean, the signatures noted but not checked.
    let out = p.ok(&["verify", "master-1", "--sample", "--output", d]);
    let said = text(&out.stdout);
    assert!(said.contains("no findings"), "{said}");
    assert!(said.contains("not checked: give --trusted-key"), "{said}");
    // With the signer's key: every signature checked, clean.
    let pubkey = public.to_str().unwrap();
    let out = p.ok(&[
        "verify",
        "master-1",
        "--sample",
        "--output",
        d,
        "--trusted-key",
        pubkey,
        "--json",
    ]);
    assert!(findings(&out).is_empty(), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("not checked"));
    // Another key: every signature is a finding.
    let m = dir.join("manifest.json");
    let manifest = m.to_str().unwrap();
    let out = p.run(&[
        "verify",
        "--manifest",
        manifest,
        "--output",
        d,
        "--trusted-key",
        other.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let f = findings(&out);
    for sig in [
        "SHA256SUMS.gpg",
        "provenance.intoto.json.gpg",
        "extensions/SHA256SUMS.gpg",
        "confexts/SHA256SUMS.gpg",
    ] {
        assert!(has(&f, "signature", sig), "{sig}: {f:#?}");
    }
    // A changed byte in SHA256SUMS or the provenance: its signature does not verify.
    for (file, sig) in [
        ("SHA256SUMS", "SHA256SUMS.gpg"),
        ("provenance.intoto.json", "provenance.intoto.json.gpg"),
    ] {
        let path = dir.join(file);
        let original = std::fs::read(&path).unwrap();
        let mut bytes = original.clone();
        bytes[10] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let out = p.run(&[
            "verify",
            "--manifest",
            manifest,
            "--output",
            d,
            "--trusted-key",
            pubkey,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let f = findings(&out);
        assert!(has(&f, "signature", sig), "{file}: {f:#?}");
        assert_eq!(
            f.iter().filter(|f| f["kind"] == "signature").count(),
            1,
            "{file}: only its own signature fails: {f:#?}"
        );
        std::fs::write(&path, &original).unwrap();
    }
    // A signature removed: missing, and with the key a `signature` finding.
    std::fs::remove_file(dir.join("SHA256SUMS.gpg")).unwrap();
    let out = p.run(&[
        "verify",
        "--manifest",
        manifest,
        "--output",
        d,
        "--trusted-key",
        pubkey,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(has(&findings(&out), "signature", "SHA256SUMS.gpg"));
    // An unsigned output, when a trusted key asks for signatures: a finding.
    let plain = p.path().join("plain");
    p.ok(&[
        "build-image",
        "master-1",
        "--sample",
        "--out",
        plain.to_str().unwrap(),
    ]);
    let plain = plain.join("sample/master-1");
    let out = p.run(&[
        "verify",
        "--manifest",
        plain.join("manifest.json").to_str().unwrap(),
        "--output",
        plain.to_str().unwrap(),
        "--trusted-key",
        pubkey,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(has(&findings(&out), "signature", "SHA256SUMS.gpg"));
}
