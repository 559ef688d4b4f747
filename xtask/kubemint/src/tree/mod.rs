//! The one file tree every artefact is packed from: a sorted, in-memory set of directories,
//! files and symlinks with explicit mode and owner. Nothing here comes from a host's metadata.
//!
//! The tree holds only `/usr`, `/opt` and `/etc`, what an image-based host can carry; anything
//! a master needs elsewhere is declared by tmpfiles.d / sysusers.d entries inside it.

use crate::front::plan::Plan;
use crate::front::profile::values::AbsPath;
use crate::inputs::extract::Extracted;
use crate::util::hash;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The top-level directories a tree may hold.
pub const ROOTS: [&str; 3] = ["/etc", "/opt", "/usr"];

/// Where a file's bytes are: in memory (rendered files) or in a spool file on disk (binaries
/// streamed out of a release, never held whole in memory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Inline(Vec<u8>),
    Spooled(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        content: Content,
        size: u64,
        sha256: String,
    },
    Symlink {
        target: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Extended attributes by full name (`user.…`), sorted; empty for nearly every entry.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    /// `file`, `dir` or `symlink`, as manifest.json spells it.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Dir => "dir",
            Kind::File { .. } => "file",
            Kind::Symlink { .. } => "symlink",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("{path}: not a valid tree path: {why}")]
    BadPath { path: String, why: String },
    #[error("{path}: outside /usr, /opt and /etc; declare it in tmpfiles.d instead")]
    Outside { path: String },
    #[error("{path}: added twice")]
    Duplicate { path: String },
    #[error("{path}: needed as a directory but is a {found}")]
    NotADir { path: String, found: &'static str },
    #[error("{path}: mode {mode:o} is not a permission mode (0000-7777)")]
    BadMode { path: String, mode: u32 },
    #[error("{path}: no such entry to give the extended attribute {name}")]
    NoEntry { path: String, name: String },
    #[error("{path}: extended attribute {name:?}: {why}")]
    BadXattr {
        path: String,
        name: String,
        why: &'static str,
    },
}

/// The only namespace of extended attributes a tree carries.
pub const XATTR_PREFIX: &str = "user.";
/// Linux's longest attribute name and largest value (XATTR_NAME_MAX, XATTR_SIZE_MAX).
pub const XATTR_NAME_MAX: usize = 255;
pub const XATTR_SIZE_MAX: usize = 65_536;

/// A sorted file tree. Keys are absolute paths; byte order puts every directory before its
/// children.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

/// Owner of every entry kubemint writes: root. Service users own only what tmpfiles.d makes.
pub const ROOT_UID: u32 = 0;

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Adds a regular file with known content; parents are created as 0755 root directories.
    pub fn add_file(&mut self, path: &str, mode: u32, content: Content) -> Result<(), TreeError> {
        let (size, sha256) = match &content {
            Content::Inline(bytes) => (bytes.len() as u64, hash::sha256_hex(bytes)),
            Content::Spooled(p) => {
                let (sha, size) = hash::sha256_file(p).map_err(|e| TreeError::BadPath {
                    path: path.to_owned(),
                    why: format!("cannot read spooled content {}: {e}", p.display()),
                })?;
                (size, sha)
            }
        };
        self.add_file_hashed(path, mode, content, size, sha256)
    }

    /// Adds a regular file whose size and sha256 the caller already computed while streaming it.
    pub fn add_file_hashed(
        &mut self,
        path: &str,
        mode: u32,
        content: Content,
        size: u64,
        sha256: String,
    ) -> Result<(), TreeError> {
        self.insert(
            path,
            mode,
            Kind::File {
                content,
                size,
                sha256,
            },
        )
    }

    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), TreeError> {
        if target.is_empty() || target.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TreeError::BadPath {
                path: path.to_owned(),
                why: format!("symlink target {target:?} is empty or has whitespace"),
            });
        }
        self.insert(
            path,
            0o777,
            Kind::Symlink {
                target: target.to_owned(),
            },
        )
    }

    /// Gives an entry (added before) another owner: a base operating system's files are not
    /// all root's.
    pub fn set_owner(&mut self, path: &str, uid: u32, gid: u32) {
        if let Some(e) = self.entries.get_mut(path) {
            e.uid = uid;
            e.gid = gid;
        }
    }

    /// Gives an entry (added before) the extended attribute `name` (in the `user.` namespace),
    /// replacing any value it had: e.g. `user.extension-release.strict` = `0` on an
    /// extension-release file, which lets systemd take the image under any file name.
    pub fn set_xattr(&mut self, path: &str, name: &str, value: &[u8]) -> Result<(), TreeError> {
        let bad = |why| TreeError::BadXattr {
            path: path.to_owned(),
            name: name.to_owned(),
            why,
        };
        if !name.starts_with(XATTR_PREFIX) || name.len() == XATTR_PREFIX.len() {
            return Err(bad("only names in the user. namespace are supported"));
        }
        if name.len() > XATTR_NAME_MAX || name.contains('\0') {
            return Err(bad("names are at most 255 bytes, without NUL"));
        }
        if value.len() > XATTR_SIZE_MAX {
            return Err(bad("values are at most 64 KiB"));
        }
        let e = self
            .entries
            .get_mut(path)
            .ok_or_else(|| TreeError::NoEntry {
                path: path.to_owned(),
                name: name.to_owned(),
            })?;
        e.xattrs.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), TreeError> {
        check_path(path)?;
        match self.entries.get(path) {
            Some(e) if e.kind == Kind::Dir => {
                self.entries.get_mut(path).expect("present").mode = mode;
                Ok(())
            }
            Some(e) => Err(TreeError::NotADir {
                path: path.to_owned(),
                found: e.type_name(),
            }),
            None => self.insert(path, mode, Kind::Dir),
        }
    }

    fn insert(&mut self, path: &str, mode: u32, kind: Kind) -> Result<(), TreeError> {
        check_path(path)?;
        if mode > 0o7777 {
            return Err(TreeError::BadMode {
                path: path.to_owned(),
                mode,
            });
        }
        if self.entries.contains_key(path) {
            return Err(TreeError::Duplicate {
                path: path.to_owned(),
            });
        }
        self.ensure_parents(path)?;
        self.entries.insert(
            path.to_owned(),
            Entry {
                kind,
                mode,
                uid: ROOT_UID,
                gid: ROOT_UID,
                xattrs: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn ensure_parents(&mut self, path: &str) -> Result<(), TreeError> {
        let mut end = 0;
        while let Some(i) = path[end + 1..].find('/') {
            end += 1 + i;
            let parent = &path[..end];
            match self.entries.get(parent) {
                None => {
                    self.entries.insert(
                        parent.to_owned(),
                        Entry {
                            kind: Kind::Dir,
                            mode: 0o755,
                            uid: ROOT_UID,
                            gid: ROOT_UID,
                            xattrs: BTreeMap::new(),
                        },
                    );
                }
                Some(e) if e.kind == Kind::Dir => {}
                Some(e) => {
                    return Err(TreeError::NotADir {
                        path: parent.to_owned(),
                        found: e.type_name(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The entries `keep` selects, with the directories above them (as they are here).
    pub fn subset(&self, keep: impl Fn(&str, &Entry) -> bool) -> Tree {
        let mut out = Tree::new();
        for (path, entry) in self.iter().filter(|(p, e)| keep(p, e)) {
            let mut end = 0;
            while let Some(i) = path[end + 1..].find('/') {
                end += 1 + i;
                let parent = &path[..end];
                if let Some(dir) = self.entries.get(parent) {
                    out.entries
                        .entry(parent.to_owned())
                        .or_insert_with(|| dir.clone());
                }
            }
            out.entries.insert(path.to_owned(), entry.clone());
        }
        out
    }

    /// Entries in byte order of their paths.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes of file content.
    pub fn content_size(&self) -> u64 {
        self.iter()
            .map(|(_, e)| match e.kind {
                Kind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }
}

/// The tree a plan describes, binaries taken from their spooled copies.
pub fn from_plan(plan: &Plan, members: &BTreeMap<String, Extracted>) -> Result<Tree, TreeError> {
    let mut tree = Tree::new();
    for b in &plan.binaries {
        let m = &members[&b.member];
        tree.add_file_hashed(
            &b.path,
            b.mode,
            Content::Spooled(m.spool.clone()),
            m.size,
            m.sha256.clone(),
        )?;
    }
    for f in &plan.files {
        tree.add_file(
            &f.path,
            f.mode,
            Content::Inline(f.content.clone().into_bytes()),
        )?;
    }
    for l in &plan.links {
        tree.add_symlink(&l.path, &l.target)?;
    }
    Ok(tree)
}

fn check_path(path: &str) -> Result<(), TreeError> {
    let p = AbsPath::parse(path).map_err(|why| TreeError::BadPath {
        path: path.to_owned(),
        why,
    })?;
    if !ROOTS.iter().any(|r| p.is_within(r)) {
        return Err(TreeError::Outside {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_sorted_before_children() {
        let mut t = Tree::new();
        t.add_file("/etc/k8s/a-b", 0o644, Content::Inline(b"x".to_vec()))
            .unwrap();
        t.add_symlink(
            "/usr/local/bin/kube-apiserver",
            "/opt/k8s/bin/kube-apiserver",
        )
        .unwrap();
        t.add_file("/etc/k8s/a/c", 0o644, Content::Inline(vec![]))
            .unwrap();
        let paths: Vec<_> = t.iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "/etc",
                "/etc/k8s",
                "/etc/k8s/a",
                "/etc/k8s/a-b",
                "/etc/k8s/a/c",
                "/usr",
                "/usr/local",
                "/usr/local/bin",
                "/usr/local/bin/kube-apiserver"
            ]
        );
        assert_eq!(t.content_size(), 1);
    }

    #[test]
    fn subset_keeps_parents() {
        let mut t = Tree::new();
        t.add_dir("/opt/k8s", 0o750).unwrap();
        t.add_file("/opt/k8s/bin/x", 0o755, Content::Inline(vec![1]))
            .unwrap();
        t.add_file("/etc/y", 0o644, Content::Inline(vec![2]))
            .unwrap();
        let s = t.subset(|p, _| p == "/opt/k8s/bin/x");
        let paths: Vec<_> = s.iter().map(|(p, e)| (p, e.mode)).collect();
        assert_eq!(
            paths,
            [
                ("/opt", 0o755),
                ("/opt/k8s", 0o750),
                ("/opt/k8s/bin", 0o755),
                ("/opt/k8s/bin/x", 0o755)
            ]
        );
    }

    #[test]
    fn xattrs_sorted_on_existing_entries_in_the_user_namespace_and_kept_by_subset() {
        let mut t = Tree::new();
        t.add_file("/usr/lib/x", 0o644, Content::Inline(vec![1]))
            .unwrap();
        t.set_xattr("/usr/lib/x", "user.z", b"1").unwrap();
        t.set_xattr("/usr/lib/x", "user.a", b"2").unwrap();
        t.set_xattr("/usr/lib/x", "user.z", b"3").unwrap();
        let names: Vec<_> = t.get("/usr/lib/x").unwrap().xattrs.iter().collect();
        assert_eq!(
            names,
            [
                (&"user.a".to_owned(), &b"2".to_vec()),
                (&"user.z".to_owned(), &b"3".to_vec())
            ]
        );
        assert!(t.get("/usr/lib").unwrap().xattrs.is_empty());
        let s = t.subset(|p, _| p == "/usr/lib/x");
        assert_eq!(s.get("/usr/lib/x"), t.get("/usr/lib/x"));
        let err = |name: &str, value: &[u8]| t.clone().set_xattr("/usr/lib/x", name, value);
        for name in ["trusted.x", "user.", "security.selinux", "user.a\0b"] {
            assert!(
                matches!(err(name, b""), Err(TreeError::BadXattr { .. })),
                "{name}"
            );
        }
        assert!(matches!(
            err(&format!("user.{}", "n".repeat(251)), b""),
            Err(TreeError::BadXattr { .. })
        ));
        assert!(matches!(
            err("user.big", &vec![0; XATTR_SIZE_MAX + 1]),
            Err(TreeError::BadXattr { .. })
        ));
        assert!(matches!(
            t.set_xattr("/usr/lib/y", "user.a", b""),
            Err(TreeError::NoEntry { .. })
        ));
    }

    #[test]
    fn rejects_bad_paths() {
        let mut t = Tree::new();
        let c = || Content::Inline(vec![]);
        assert!(matches!(
            t.add_file("/data/apps/x", 0o644, c()),
            Err(TreeError::Outside { .. })
        ));
        assert!(matches!(
            t.add_file("/etc/../x", 0o644, c()),
            Err(TreeError::BadPath { .. })
        ));
        assert!(matches!(
            t.add_file("etc/x", 0o644, c()),
            Err(TreeError::BadPath { .. })
        ));
        assert!(matches!(
            t.add_file("/etcetera", 0o644, c()),
            Err(TreeError::Outside { .. })
        ));
        t.add_file("/etc/x", 0o644, c()).unwrap();
        assert!(matches!(
            t.add_file("/etc/x", 0o644, c()),
            Err(TreeError::Duplicate { .. })
        ));
        assert!(matches!(
            t.add_file("/etc/x/y", 0o644, c()),
            Err(TreeError::NotADir { .. })
        ));
        assert!(matches!(
            t.add_file("/etc/y", 0o10644, c()),
            Err(TreeError::BadMode { .. })
        ));
    }
}
