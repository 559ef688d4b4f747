//! What is there: a root file system on disk ([`RootView`]), or the entries read out of an
//! image ([`MemView`]: a squashfs, the union of an OCI image's layers), behind one [`View`]
//! the rules run over. A file's content is hashed only when a rule asks (a secret never is).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// One entry as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actual {
    /// `dir`, `file`, `symlink` or `other`.
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub target: Option<String>,
    /// Images: the content's sha256, or why it could not be read; roots hash on demand.
    pub sha256: Option<Result<String, String>>,
    /// Images: the entry's mtime (for the rebuild check); roots: not kept.
    pub mtime: Option<i64>,
}

pub trait View {
    /// The entry at `path` (absolute), never following a symlink at its end.
    fn get(&self, path: &str) -> Option<Actual>;
    /// Every path below the directory `dir`, sorted.
    fn below(&self, dir: &str) -> Vec<String>;
    /// The sha256 of the file at `path`, or why it cannot be read.
    fn sha256(&self, path: &str) -> Result<String, String>;
    /// Every path in the view when it is an image (`None` for a root, which holds far more
    /// than any image).
    fn all(&self) -> Option<Vec<String>>;
    /// The numeric id of a user or group name, as the view's `/etc/passwd` and `/etc/group`
    /// say (`None` when they do not).
    fn id_of(&self, database: &str, name: &str) -> Option<u32>;
    /// The text of the file at `path` (`None` when it is not a readable UTF-8 regular file).
    fn read(&self, path: &str) -> Option<String>;
}

/// A directory holding a root file system.
pub struct RootView {
    pub root: PathBuf,
}

impl RootView {
    fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

impl View for RootView {
    fn get(&self, path: &str) -> Option<Actual> {
        let p = self.host(path);
        let m = p.symlink_metadata().ok()?;
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        Some(Actual {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.len(),
            target: if ft.is_symlink() {
                std::fs::read_link(&p)
                    .ok()
                    .map(|t| t.to_string_lossy().into_owned())
            } else {
                None
            },
            sha256: None,
            mtime: None,
        })
    }

    fn below(&self, dir: &str) -> Vec<String> {
        let base = self.host(dir);
        if base.symlink_metadata().map(|m| !m.is_dir()).unwrap_or(true) {
            return Vec::new();
        }
        let mut out: Vec<String> = walkdir::WalkDir::new(&base)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let rel = e.path().strip_prefix(&self.root).ok()?;
                Some(format!("/{}", rel.to_string_lossy()))
            })
            .collect();
        out.sort();
        out
    }

    fn sha256(&self, path: &str) -> Result<String, String> {
        crate::util::hash::sha256_file(&self.host(path))
            .map(|(sha, _)| sha)
            .map_err(|e| e.to_string())
    }

    fn all(&self) -> Option<Vec<String>> {
        None
    }

    fn read(&self, path: &str) -> Option<String> {
        let p = self.host(path);
        if !p.symlink_metadata().ok()?.is_file() {
            return None;
        }
        std::fs::read_to_string(p).ok()
    }

    fn id_of(&self, database: &str, name: &str) -> Option<u32> {
        let p = self.host(&format!("/etc/{database}"));
        if p.symlink_metadata().ok()?.file_type().is_symlink() {
            return None;
        }
        let text = std::fs::read_to_string(p).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
    }
}

/// Entries read out of an image.
#[derive(Clone, Debug, Default)]
pub struct MemView {
    pub entries: BTreeMap<String, Actual>,
}

impl View for MemView {
    fn get(&self, path: &str) -> Option<Actual> {
        self.entries.get(path).cloned()
    }

    fn below(&self, dir: &str) -> Vec<String> {
        let prefix = if dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn sha256(&self, path: &str) -> Result<String, String> {
        match self.entries.get(path).and_then(|e| e.sha256.clone()) {
            Some(r) => r,
            None => Err("not a file".into()),
        }
    }

    fn all(&self) -> Option<Vec<String>> {
        Some(self.entries.keys().cloned().collect())
    }

    fn id_of(&self, _: &str, _: &str) -> Option<u32> {
        None
    }

    /// Image entries keep digests, not contents.
    fn read(&self, _: &str) -> Option<String> {
        None
    }
}

impl MemView {
    /// The entries of a squashfs image.
    pub fn from_squashfs(img: &crate::audit::squashfs::Image) -> MemView {
        MemView {
            entries: img
                .entries
                .iter()
                .map(|(p, e)| {
                    (
                        p.clone(),
                        Actual {
                            kind: e.kind,
                            mode: e.mode,
                            uid: e.uid,
                            gid: e.gid,
                            size: e.size,
                            target: e.target.clone(),
                            sha256: e.sha256.clone(),
                            mtime: Some(i64::from(e.mtime)),
                        },
                    )
                })
                .collect(),
        }
    }
}
