//! Snapshots and golden files: text the tests compare with a file under `tests/`, reviewed like
//! code. `UPDATE_SNAPSHOTS=1 cargo xtask test` rewrites every file that differs instead of
//! failing; the diff then shows in `git diff` and goes into a commit that says why.

use std::path::{Path, PathBuf};

/// `tests/<rel>` in this checkout.
pub fn path(rel: &str) -> PathBuf {
    crate::support::repo().join("tests").join(rel)
}

/// Whether this run rewrites snapshots instead of comparing them.
pub fn updating() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Panics unless `tests/<rel>` holds exactly `actual`; with `UPDATE_SNAPSHOTS=1`, writes it.
pub fn file(rel: &str, actual: &str) {
    if let Err(e) = check_or_update(&path(rel), actual, updating()) {
        panic!("{e}");
    }
}

/// The comparison itself, with the mode passed in (so that tests of it need no environment).
pub fn check_or_update(path: &Path, actual: &str, update: bool) -> Result<(), String> {
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return Ok(());
    }
    if update {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        eprintln!("updated {}", path.display());
        return Ok(());
    }
    Err(format!(
        "{} differs from what the code produces now:\n{}\n\
         If the change is on purpose, run the tests with UPDATE_SNAPSHOTS=1, review `git diff` \
         and commit it saying why.",
        path.display(),
        diff(&expected, actual)
    ))
}

/// The lines that differ, `-` expected and `+` actual, with a line of context (a short
/// unified-style diff, enough to see what moved).
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let (mut start, mut end_a, mut end_b) = (0, a.len(), b.len());
    while start < end_a && start < end_b && a[start] == b[start] {
        start += 1;
    }
    while end_a > start && end_b > start && a[end_a - 1] == b[end_b - 1] {
        end_a -= 1;
        end_b -= 1;
    }
    let mut out = format!("@@ line {} @@\n", start + 1);
    if start > 0 {
        out.push_str(&format!(" {}\n", a[start - 1]));
    }
    for l in &a[start..end_a] {
        out.push_str(&format!("-{l}\n"));
    }
    for l in &b[start..end_b] {
        out.push_str(&format!("+{l}\n"));
    }
    out
}

#[test]
fn a_changed_snapshot_fails_and_the_update_mode_rewrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plans/x.txt");
    // Missing: fails, names the file and the way to update.
    let err = check_or_update(&file, "a\nb\n", false).unwrap_err();
    assert!(
        err.contains("x.txt differs") && err.contains("UPDATE_SNAPSHOTS=1"),
        "{err}"
    );
    check_or_update(&file, "a\nb\n", true).unwrap();
    check_or_update(&file, "a\nb\n", false).unwrap();
    // Changed: the diff shows the line.
    let err = check_or_update(&file, "a\nc\n", false).unwrap_err();
    assert!(err.contains("@@ line 2 @@\n a\n-b\n+c\n"), "{err}");
    check_or_update(&file, "a\nc\n", true).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nc\n");
}
