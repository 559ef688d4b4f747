//! The output root a build writes into (`target/images`, or `--out DIR`), and how outputs are
//! put in place: nothing partial, nothing unsafe, nothing lost.
//!
//! - kubemint writes only into a directory that is empty or its own (it holds only kubemint
//!   outputs, output roots of profile sets, or kubemint's leftovers), never into `/`; and it
//!   replaces only an output directory it made (one whose `manifest.json` kubemint wrote, for
//!   that profile). Anything else at those paths is an error naming it.
//! - A build holds a lock on the output root (`flock` on the directory itself) for its whole
//!   run; another build into the same root says it is waiting and waits.
//! - Everything a build writes first goes into its session, `OUT/.kubemint-session.<pid>/`:
//!   the spool, the staging directories. Every output of the build is staged before any is put
//!   in place; then each is swapped in with one `renameat2(RENAME_EXCHANGE)` (or `NOREPLACE`
//!   for a new one), so at every instant `OUT/<profile>` holds a complete old or a complete new
//!   output. The swaps are written to a journal (`OUT/.kubemint-swap.json`) first: if a build is
//!   killed among them, the next build into the root completes them, so a multi-profile build
//!   ends with all of its outputs in place or, when it failed before the swaps, none.
//! - Besides the output directories, the root holds one file of kubemint's: the set's
//!   `report.html` (recognised by how it begins, [`crate::report::MARK`]), put in place whole
//!   by [`OutputRoot::put_file`].
//! - The session is removed when the build ends, whatever the end; the next build removes what
//!   a killed one left behind (sessions, and the names earlier kubemint versions used:
//!   `.<profile>.staging.*`, `.old.*`). A finished build leaves nothing but its outputs.

use crate::util::hash;
use crate::util::progress::Progress;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "--out /: kubemint never writes into the root directory; pass a directory of its own, e.g. --out ./images"
    )]
    Slash,
    #[error(
        "{path} is not empty and not kubemint's (it holds {found}); kubemint writes only into an empty directory or one it made: pass another --out"
    )]
    NotOurs { path: PathBuf, found: String },
    #[error(
        "{path} exists and is not an output kubemint made for {profile} ({why}); it is left alone: move it away or pass another --out"
    )]
    NotAnOutput {
        path: PathBuf,
        profile: String,
        why: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: the journal of an interrupted build cannot be read: {message}")]
    Journal { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A build's session directory in an output root: this prefix, then its pid.
const SESSION: &str = ".kubemint-session.";
/// The journal of the swaps in progress.
const JOURNAL: &str = ".kubemint-swap.json";

/// An output root, locked for this build, with this build's session directory in it once it is
/// made (removed when this is dropped).
#[derive(Debug)]
pub struct OutputRoot {
    path: PathBuf,
    session: PathBuf,
    /// The root directory, flock'ed until the build ends (closing it releases the lock).
    _lock: File,
}

impl Drop for OutputRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.session);
    }
}

/// One staged output, ready to be swapped in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Staged {
    pub profile: String,
    /// The staged directory, inside the session.
    pub dir: PathBuf,
    /// sha256 of its manifest.json: how a later build recognises it.
    pub manifest_sha256: String,
}

impl OutputRoot {
    /// Opens (creating it if need be) and locks the output root `path`, finishes what a killed
    /// build left half-done, removes what killed builds left behind, and makes this build's
    /// session directory.
    ///
    /// `profiles` are the outputs this build will write: each must be absent or an output
    /// kubemint made for that profile ([`OutputRoot::target`]); anything else in the root must
    /// be kubemint's too.
    pub fn open(
        path: &Path,
        profiles: &[&str],
        progress: &Progress,
    ) -> Result<OutputRoot, OutputError> {
        if path.parent().is_none() {
            return Err(OutputError::Slash);
        }
        fs::create_dir_all(path).map_err(io_err(path))?;
        for p in profiles {
            target(path, p)?;
        }
        if let Some(found) = foreign_entry(path)? {
            return Err(OutputError::NotOurs {
                path: path.to_owned(),
                found,
            });
        }
        let lock = File::open(path).map_err(io_err(path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                progress.notice(&format!(
                    "waiting for another kubemint build into {} to finish",
                    path.display()
                ));
                lock.lock().map_err(io_err(path))?;
            }
            Err(TryLockError::Error(e)) => return Err(io_err(path)(e)),
        }
        let root = OutputRoot {
            path: path.to_owned(),
            session: path.join(format!("{SESSION}{}", std::process::id())),
            _lock: lock,
        };
        root.recover()?;
        root.clean()?;
        Ok(root)
    }

    /// Makes this build's session directory, once there is something to write: a build with
    /// every output up to date never makes one, and so writes nothing into the root.
    pub fn make_session(&self) -> Result<&Path, OutputError> {
        fs::create_dir_all(&self.session).map_err(io_err(&self.session))?;
        Ok(&self.session)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This build's scratch directory (same file system as the outputs), once
    /// [`OutputRoot::make_session`] made it.
    pub fn session(&self) -> &Path {
        &self.session
    }

    /// Where `profile`'s output goes, if kubemint may put it there: nothing is there yet, or an
    /// output kubemint made for that profile.
    pub fn target(&self, profile: &str) -> Result<PathBuf, OutputError> {
        target(&self.path, profile)
    }

    /// Puts every staged output in place, each with one atomic rename, journalled so that a
    /// build killed among them is completed by the next.
    pub fn swap_in(&self, staged: &[Staged]) -> Result<(), OutputError> {
        let journal = self.path.join(JOURNAL);
        let text = serde_json::to_vec(staged).expect("a journal serializes");
        write_synced(&journal, &text)?;
        for s in staged {
            swap(&self.path, s)?;
        }
        sync_dir(&self.path)?;
        fs::remove_file(&journal).map_err(io_err(&journal))?;
        Ok(())
    }

    /// Puts `bytes` at `<root>/<name>` (mode 0644): written and synced in the session, then
    /// renamed over what was there, so the file is always whole. Only for a file the root's
    /// rules know as kubemint's (the set's `report.html`).
    pub fn put_file(&self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let session = self.make_session()?;
        let staged = session.join(name);
        let mut f = File::create(&staged).map_err(io_err(&staged))?;
        f.write_all(bytes)
            .and_then(|()| f.set_permissions(fs::Permissions::from_mode(0o644)))
            .and_then(|()| f.sync_all())
            .map_err(io_err(&staged))?;
        let target = self.path.join(name);
        fs::rename(&staged, &target).map_err(io_err(&target))?;
        sync_dir(&self.path)
    }

    /// Completes the swaps a killed build journalled.
    fn recover(&self) -> Result<(), OutputError> {
        let journal = self.path.join(JOURNAL);
        let text = match fs::read(&journal) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&journal)(e)),
            Ok(t) => t,
        };
        let staged: Vec<Staged> =
            serde_json::from_slice(&text).map_err(|e| OutputError::Journal {
                path: journal.clone(),
                message: e.to_string(),
            })?;
        for s in &staged {
            let target = self.path.join(&s.profile);
            let in_place = manifest_sha256(&target).as_deref() == Some(&s.manifest_sha256);
            let ready = manifest_sha256(&s.dir).as_deref() == Some(&s.manifest_sha256);
            if !in_place && ready {
                swap(&self.path, s)?;
            }
        }
        sync_dir(&self.path)?;
        fs::remove_file(&journal).map_err(io_err(&journal))
    }

    /// Removes the sessions of earlier builds (this process holds the lock: they are dead),
    /// and what earlier kubemint versions left in the root.
    fn clean(&self) -> Result<(), OutputError> {
        for entry in fs::read_dir(&self.path).map_err(io_err(&self.path))? {
            let entry = entry.map_err(io_err(&self.path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_legacy_leftover(&name) {
                let p = entry.path();
                fs::remove_dir_all(&p).map_err(io_err(&p))?;
            }
        }
        Ok(())
    }
}

/// `root/profile`, if kubemint may put `profile`'s output there.
fn target(root: &Path, profile: &str) -> Result<PathBuf, OutputError> {
    let path = root.join(profile);
    let meta = match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
        Err(e) => return Err(io_err(&path)(e)),
        Ok(m) => m,
    };
    let refuse = |why: &str| OutputError::NotAnOutput {
        path: path.clone(),
        profile: profile.to_owned(),
        why: why.to_owned(),
    };
    if !meta.is_dir() {
        return Err(refuse(if meta.file_type().is_symlink() {
            "a symlink"
        } else {
            "not a directory"
        }));
    }
    match made_by_kubemint(&path.join("manifest.json")) {
        Some(p) if p == profile => Ok(path),
        Some(p) => Err(refuse(&format!("its manifest.json is {p}'s"))),
        None => Err(refuse("no manifest.json written by kubemint")),
    }
}

/// Swaps one staged output in: an exchange with the old output (which then sits in the
/// session, deleted with it), or a rename that never replaces anything for a new one.
fn swap(root: &Path, s: &Staged) -> Result<(), OutputError> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let target = root.join(&s.profile);
    let flags = if target.exists() {
        RenameFlags::EXCHANGE
    } else {
        RenameFlags::NOREPLACE
    };
    renameat_with(CWD, &s.dir, CWD, &target, flags).map_err(|e| OutputError::Io {
        path: target.clone(),
        source: e.into(),
    })
}

/// The profile a `manifest.json` was written for, if kubemint wrote it.
fn made_by_kubemint(manifest: &Path) -> Option<String> {
    let bytes = fs::read(manifest).ok()?;
    let m: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    (m["generator"]["name"] == crate::GENERATOR)
        .then(|| m["profile"].as_str().map(str::to_owned))
        .flatten()
}

fn manifest_sha256(dir: &Path) -> Option<String> {
    fs::read(dir.join("manifest.json"))
        .ok()
        .map(|b| hash::sha256_hex(&b))
}

/// Names of what a killed build (of this version or an earlier one) leaves in an output root.
fn is_legacy_leftover(name: &str) -> bool {
    name.starts_with(SESSION)
        || name.starts_with(".old.")
        || (name.starts_with('.') && name.contains(".staging."))
}

/// The first entry of `dir` that is neither a kubemint output, nor an output root of its
/// own (`sample/`, a profile set's), nor a kubemint leftover: what makes it someone else's.
fn foreign_entry(dir: &Path) -> Result<Option<String>, OutputError> {
    let mut names: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| {
            e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .map_err(io_err(dir))
        })
        .collect::<Result<_, _>>()?;
    names.sort();
    for (name, path) in names {
        let ours = is_legacy_leftover(&name)
            || name == JOURNAL
            || (name == crate::report::FILE && crate::report::is_ours(&path))
            || made_by_kubemint(&path.join("manifest.json")).is_some()
            || is_output_root(&path);
        if !ours {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// A directory holding only kubemint's outputs (an output root of its own, like `sample/` or a
/// profile set's `upgrade/` below the default one).
fn is_output_root(dir: &Path) -> bool {
    dir.is_dir()
        && matches!(foreign_entry(dir), Ok(None))
        && fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(dir: &Path, profile: &str, marker: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("manifest.json"),
            format!(
                r#"{{"generator":{{"name":"kubemint"}},"profile":"{profile}","x":"{marker}"}}"#
            ),
        )
        .unwrap();
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        let p = Progress::hidden();
        assert!(matches!(
            OutputRoot::open(Path::new("/"), &[], &p),
            Err(OutputError::Slash)
        ));
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("notes.txt"), "mine").unwrap();
        let err = OutputRoot::open(d.path(), &[], &p).unwrap_err().to_string();
        assert!(err.contains("holds notes.txt"), "{err}");
        let d = tempfile::tempdir().unwrap();
        let root = OutputRoot::open(d.path(), &[], &p).unwrap();
        fs::create_dir(d.path().join("master-1")).unwrap();
        let err = root.target("master-1").unwrap_err().to_string();
        assert!(
            err.contains("no manifest.json written by kubemint"),
            "{err}"
        );
        fs::write(d.path().join("master-2"), "a file").unwrap();
        assert!(
            root.target("master-2")
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
        output(&d.path().join("master-3"), "master-9", "");
        assert!(
            root.target("master-3")
                .unwrap_err()
                .to_string()
                .contains("master-9's")
        );
        assert_eq!(root.target("master-4").unwrap(), d.path().join("master-4"));
    }

    #[test]
    fn swaps_and_completes_a_killed_swap() {
        let p = Progress::hidden();
        let d = tempfile::tempdir().unwrap();
        output(&d.path().join("master-1"), "master-1", "old");
        // What a killed build left: its session with two staged outputs, the journal, and the
        // first swap done (master-1's old output now sits in the session).
        let session = d.path().join(format!("{SESSION}999999999"));
        let staged: Vec<Staged> = ["master-1", "master-2"]
            .iter()
            .map(|name| {
                let dir = session.join(format!("stage-{name}"));
                output(&dir, name, "new");
                Staged {
                    profile: (*name).into(),
                    manifest_sha256: manifest_sha256(&dir).unwrap(),
                    dir,
                }
            })
            .collect();
        let journal = d.path().join(JOURNAL);
        write_synced(&journal, &serde_json::to_vec(&staged).unwrap()).unwrap();
        swap(d.path(), &staged[0]).unwrap();
        // An earlier kubemint version's leftover too.
        fs::create_dir(d.path().join(".master-1.staging.abc")).unwrap();
        // The next build completes the second swap and removes the rest.
        let again = OutputRoot::open(d.path(), &[], &p).unwrap();
        for s in &staged {
            assert_eq!(
                manifest_sha256(&d.path().join(&s.profile)),
                Some(s.manifest_sha256.clone())
            );
        }
        assert!(!journal.exists() && !session.exists());
        assert!(!d.path().join(".master-1.staging.abc").exists());
        drop(again);
        // A finished build leaves nothing but its outputs.
        let mut names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["master-1", "master-2"]);
    }

    #[test]
    fn a_second_build_waits_for_the_first() {
        let d = tempfile::tempdir().unwrap();
        let first = OutputRoot::open(d.path(), &[], &Progress::hidden()).unwrap();
        let path = d.path().to_owned();
        let second = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            drop(OutputRoot::open(&path, &[], &Progress::hidden()).unwrap());
            started.elapsed()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
        assert!(second.join().unwrap() >= std::time::Duration::from_millis(250));
    }
}
