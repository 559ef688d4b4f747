//! Same inputs, same bytes: two builds under different conditions give identical outputs, and
//! the sample payload's digest is pinned.

use crate::support::{Project, sh, text, xtask_bin};
use std::path::Path;

fn build_under(project: &Project, cwd: &Path, tz: &str, lang: &str, umask: &str, out: &str) {
    let script = format!(
        "umask {umask} && cd '{}' && exec \"$0\" \"$@\"",
        cwd.display()
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(xtask_bin())
        .args([
            "-C",
            project.path().to_str().unwrap(),
            "build-image",
            "master-1",
            "--sample",
            "--out",
            out,
        ])
        .env("TZ", tz)
        .env("LC_ALL", lang)
        .env("LANG", lang)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Every file below `dir` (relative path, bytes, mode), in path order.
fn files(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            let bytes = if e.file_type().is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                bytes,
                mode,
            )
        })
        .collect()
}

#[test]
fn two_builds_under_different_conditions_are_byte_identical() {
    let (a, b) = (Project::new(), Project::new());
    let elsewhere = tempfile::tempdir().unwrap();
    build_under(&a, a.path(), "UTC", "C", "022", "out");
    build_under(
        &b,
        elsewhere.path(),
        "Asia/Shanghai",
        "zh_CN.UTF-8",
        "077",
        "o2",
    );
    let (fa, fb) = (
        files(&a.path().join("out/sample/master-1")),
        files(&elsewhere.path().join("o2/sample/master-1")),
    );
    let names: Vec<&str> = fa
        .iter()
        .map(|f| f.0.as_str())
        .filter(|n| !n.starts_with("oci/"))
        .collect();
    let version = crate::support::manifest(&a.path().join("out/sample/master-1"))["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let confext = format!("confexts/kubemint-master-1_{version}.raw");
    let sysext = format!("extensions/kubemint-master-1_{version}.raw");
    let want = [
        "SHA256SUMS",
        "build-key.json",
        "confexts",
        "confexts/SHA256SUMS",
        confext.as_str(),
        "disk",
        "disk/kubemint-master-1.raw",
        "extensions",
        "extensions/SHA256SUMS",
        sysext.as_str(),
        "manifest.json",
        "master-1-install.sh",
        "master-1.oci.tar",
        "master-1.tar.gz",
        "oci",
        "provenance.intoto.json",
        "report.html",
        "sbom.cdx.json",
        "sbom.spdx.json",
    ];
    assert_eq!(names, want);
    assert_eq!(fa.len(), fb.len(), "the two builds wrote different files");
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.0, y.0);
        assert!(x.1 == y.1, "{} differs between the two builds", x.0);
        assert_eq!(x.2, y.2, "{} has a different mode", x.0);
    }
    // The checkout's location appears in no output.
    for (name, bytes, _) in &fa {
        let hay = String::from_utf8_lossy(bytes);
        assert!(
            !hay.contains(a.path().to_str().unwrap()),
            "{name} names the project directory"
        );
    }
}

/// The digests of the sample build of master-1 are pinned in `tests/golden/`: they change only
/// on purpose (a template, a profile, the tar, gzip, squashfs, GPT or JSON writer), each change
/// in a commit that says why. `UPDATE_SNAPSHOTS=1` rewrites the file.
#[test]
fn payload_matches_golden_digest() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let manifest = crate::support::manifest(&dir);
    let sha = |rel: &str| kubemint::hash::sha256_file(&dir.join(rel)).unwrap().0;
    let text = format!(
        "{}  master-1.tar.gz (payload of the sample build of master-1, release v1.14.2)\n\
         {}  image manifest (OCI, gzip layers, same build)\n\
         {}  {} (system extension, squashfs, same build)\n\
         {}  {} (configuration extension, squashfs, same build)\n\
         {}  disk/kubemint-master-1.raw (the system extension as a GPT disk image, same build)\n",
        sha("master-1.tar.gz"),
        manifest["oci"]["manifest_digest"].as_str().unwrap(),
        sha(&crate::support::output_rel(&dir, "sysext")),
        crate::support::output_rel(&dir, "sysext"),
        sha(&crate::support::output_rel(&dir, "confext")),
        crate::support::output_rel(&dir, "confext"),
        sha("disk/kubemint-master-1.raw"),
    );
    crate::expect::file("golden/master-1-sample.sha256", &text);
}

#[test]
fn sha256sums_checks_with_coreutils() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let out = sh(&format!(
        "cd '{}' && sha256sum -c SHA256SUMS",
        dir.display()
    ));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let checked = text(&out.stdout);
    for name in [
        "manifest.json",
        "master-1-install.sh",
        "master-1.oci.tar",
        "master-1.tar.gz",
        "oci/index.json",
        "oci/oci-layout",
    ] {
        assert!(
            checked.contains(&format!("{name}: OK")),
            "{name} not checked:\n{checked}"
        );
    }
    assert_eq!(
        checked
            .lines()
            .filter(|l| l.starts_with("oci/blobs/sha256/"))
            .count(),
        // The image (config, manifest, two layers), then three attested documents, their
        // three artefact manifests and the empty config they share.
        4 + 7
    );
}

#[test]
fn payload_tar_headers_are_fixed() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let epoch = crate::support::manifest(&dir)["epoch"].as_u64().unwrap();
    let gz = std::fs::read(dir.join("master-1.tar.gz")).unwrap();
    // gzip header: magic, deflate, no flags (no name), mtime 0, OS 255.
    assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff][..]);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
    let mut last = String::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let path = e.path().unwrap().display().to_string();
        assert!(path > last, "{path} is not in byte order after {last}");
        last = path.clone();
        assert_eq!(h.mtime().unwrap(), epoch, "{path}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{path}");
        assert_eq!(h.username().unwrap(), Some("root"));
        assert!(
            ["etc", "opt", "usr"].iter().any(|r| path.starts_with(r)),
            "{path} is outside /etc, /opt, /usr"
        );
    }
}
