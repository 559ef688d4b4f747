//! Same inputs, same bytes: two builds under different conditions give identical outputs, and
//! the sample payload's digest is pinned.

use crate::support::{Project, sh, text, xtask_bin};
use std::path::Path;

/// The sample build of master-1's payload. Changes only on purpose: a template, the profile,
/// the tar or gzip writer (say which in the commit).
const GOLDEN: &str = include_str!("../golden/master-1-sample.sha256");

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

fn files(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
                mode,
            )
        })
        .collect();
    v.sort();
    v
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
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        [
            "SHA256SUMS",
            "manifest.json",
            "master-1-install.sh",
            "master-1.tar.gz"
        ]
    );
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

#[test]
fn payload_matches_golden_digest() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let digest = kubemint::hash::sha256_file(&dir.join("master-1.tar.gz"))
        .unwrap()
        .0;
    let golden = GOLDEN.split_whitespace().next().unwrap();
    assert_eq!(
        digest, golden,
        "the sample payload of master-1 changed; if on purpose, update tests/golden and say why"
    );
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
    assert_eq!(text(&out.stdout).lines().count(), 3);
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
