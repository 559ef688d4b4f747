//! Records the git revision kubemint's library is built from, as `KUBEMINT_REVISION`: the
//! provenance names the generator by its version and this revision. `unknown` when the
//! source is not a git checkout (a tarball) or git is missing. Runs again when HEAD moves.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

fn main() {
    let revision = git(&["rev-parse", "HEAD"])
        .filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KUBEMINT_REVISION={revision}");
    println!("cargo:rerun-if-changed=build.rs");
    // HEAD, and the ref it names, in the checkout's git directory (a worktree's own).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = PathBuf::from(dir);
        let mut watch = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(dir.join(&r));
            if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
                let common = PathBuf::from(common);
                let common = if common.is_absolute() {
                    common
                } else {
                    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join(common)
                };
                watch.push(common.join(&r));
                watch.push(common.join("packed-refs"));
            }
        }
        for p in watch.into_iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}
