//! Test support: throwaway kubemint projects holding the real profiles, images and lock, the
//! xtask binary run as users run it, and tree snapshots to compare.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The checkout these tests belong to.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn xtask_bin() -> &'static str {
    env!("CARGO_BIN_EXE_xtask")
}

/// A temporary project: copies of `profiles/`, `images/` and `vendor/releases.toml`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["profiles", "images"] {
            copy_dir(&repo().join(sub), &dir.path().join(sub));
        }
        std::fs::create_dir(dir.path().join("vendor")).unwrap();
        std::fs::copy(
            repo().join("vendor/releases.toml"),
            dir.path().join("vendor/releases.toml"),
        )
        .unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `xtask -C <project> ARGS…` with a clean environment (no SOURCE_DATE_EPOCH, no
    /// KUBEMINT_STORE).
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(xtask_bin());
        cmd.arg("-C")
            .arg(self.path())
            .args(args)
            .env_remove("SOURCE_DATE_EPOCH")
            // The project's own store, whatever the caller's shell says (a test that wants
            // another passes --store).
            .env_remove("KUBEMINT_STORE");
        cmd
    }

    /// Runs xtask and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.xtask(args).output().unwrap()
    }

    /// Runs xtask and panics with its stderr unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "xtask {args:?} failed:\n{}",
            text(&out.stderr)
        );
        out
    }

    /// Runs xtask and returns its stderr, panicking if it succeeds.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "xtask {args:?} should fail; stdout:\n{}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// Builds master-1 from the sample release into `<project>/target/images/sample/master-1`.
    pub fn build_sample(&self, profile: &str) -> PathBuf {
        self.ok(&["build-image", profile, "--sample"]);
        self.path().join("target/images/sample").join(profile)
    }

    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path().join(rel), text).unwrap();
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).sort_by_file_name() {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else if entry.file_type().is_symlink() {
            let to = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(to, &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What a file tree holds: path → (type, mode, uid, gid, size, sha256 or link target, mtime).
pub type Snapshot = BTreeMap<String, (String, String, u32, u32, Option<u64>, Option<String>, i64)>;

pub fn snapshot(root: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let path = format!("/{}", entry.path().strip_prefix(root).unwrap().display());
        let mode = format!("{:04o}", meta.permissions().mode() & 0o7777);
        let (kind, size, digest) = if meta.file_type().is_symlink() {
            (
                "symlink",
                None,
                Some(
                    std::fs::read_link(entry.path())
                        .unwrap()
                        .display()
                        .to_string(),
                ),
            )
        } else if meta.is_dir() {
            ("dir", None, None)
        } else {
            let bytes = std::fs::read(entry.path()).unwrap();
            (
                "file",
                Some(meta.len()),
                Some(kubemint::hash::sha256_hex(&bytes)),
            )
        };
        out.insert(
            path,
            (
                kind.to_owned(),
                mode,
                meta.uid(),
                meta.gid(),
                size,
                digest,
                meta.mtime(),
            ),
        );
    }
    out
}

/// What an installer put live into `root`: its snapshot without the installer's own state
/// (`/var/lib/kubemint`: generations, state, history) and the `/var`, `/var/lib` made for it.
pub fn installed(root: &Path) -> Snapshot {
    snapshot(root)
        .into_iter()
        .filter(|(p, _)| {
            p != "/var"
                && p != "/var/lib"
                && p != "/var/lib/kubemint"
                && !p.starts_with("/var/lib/kubemint/")
        })
        .collect()
}

/// manifest.json of a build directory.
pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The path (relative to the output directory) of the output of `kind` its manifest lists:
/// the extension images carry the build's version in their names.
pub fn output_rel(dir: &Path, kind: &str) -> String {
    let m = manifest(dir);
    m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("{} lists no {kind} output", dir.display()))["path"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `files` of a manifest as a snapshot without mtimes (symlink modes are not compared).
pub fn manifest_files(
    manifest: &serde_json::Value,
) -> BTreeMap<String, (String, String, Option<u64>, Option<String>)> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let kind = f["type"].as_str().unwrap().to_owned();
            let mode = if kind == "symlink" {
                "-".into()
            } else {
                f["mode"].as_str().unwrap().to_owned()
            };
            let digest = f["sha256"]
                .as_str()
                .or(f["target"].as_str())
                .map(str::to_owned);
            (
                f["path"].as_str().unwrap().to_owned(),
                (kind, mode, f["size"].as_u64(), digest),
            )
        })
        .collect()
}

/// A snapshot in the shape of [`manifest_files`].
pub fn as_manifest_files(
    s: &Snapshot,
) -> BTreeMap<String, (String, String, Option<u64>, Option<String>)> {
    s.iter()
        .map(|(p, (kind, mode, _, _, size, digest, _))| {
            let mode = if kind == "symlink" {
                "-".into()
            } else {
                mode.clone()
            };
            (p.clone(), (kind.clone(), mode, *size, digest.clone()))
        })
        .collect()
}

/// Requires a validator the CI installs; a missing one fails the test with the way to get it.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run .ci/run, or apt-get install the package it names")
        })
}

/// Runs a shell command line that must succeed, returning its stdout.
pub fn sh_ok(script: &str) -> String {
    let out = sh(script);
    assert!(
        out.status.success(),
        "{script}\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a shell command line, returning its output.
pub fn sh(script: &str) -> Output {
    Command::new("sh").arg("-c").arg(script).output().unwrap()
}

/// Whether this process runs as root (some checks need it: owners, chroot).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Runs `script` (sh, `set -e`) chrooted into a copy-on-write overlay of this machine's `/`, in
/// a private mount namespace, so that installing "on /" touches nothing real. `files` are
/// copied into the overlay's `/run/kubemint-test/` first. Needs root, as CI runs.
pub fn in_overlay_root(files: &[(&Path, &str)], script: &str) -> Output {
    assert!(
        is_root(),
        "this test needs root (it chroots into an overlay of /): run it as CI does, as root"
    );
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display();
    let inner = work.path().join("inner.sh");
    std::fs::write(&inner, format!("set -e\n{script}\n")).unwrap();
    let mut copies = format!(
        "cp '{}' '{w}/merged/run/kubemint-test/inner.sh'\n",
        inner.display()
    );
    for (from, name) in files {
        copies.push_str(&format!(
            "cp -a '{}' '{w}/merged/run/kubemint-test/{name}'\n",
            from.display()
        ));
    }
    let outer = format!(
        "set -e
         mkdir -p '{w}/upper' '{w}/work' '{w}/merged'
         mount -t overlay overlay -o lowerdir=/,upperdir='{w}/upper',workdir='{w}/work' '{w}/merged'
         mount --rbind /dev '{w}/merged/dev'
         mount -t proc proc '{w}/merged/proc'
         mkdir -p '{w}/merged/run/kubemint-test'
         {copies}
         chroot '{w}/merged' sh /run/kubemint-test/inner.sh"
    );
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &outer])
        .output()
        .unwrap()
}
