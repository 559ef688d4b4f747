//! The content-addressed store: verified copies of inputs, each named by its sha512
//! (`<root>/sha512/<hex>`), and what is derived from them and costly to make again
//! (`<root>/derived/`, e.g. the squashfs of a base's `/usr`). Several roots are searched: the
//! one given (`--store`, `KUBEMINT_STORE`), the checkout's `vendor/store`, the user's cache
//! directory, so that several checkouts and CI runs on one machine share what one of them made.
//! A file found is trusted only while its digest holds: every reader checks it.

use std::path::{Path, PathBuf};

/// Where inputs are looked for, and where new ones go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// Where `fetch`, `pin` and `base` put what they make.
    pub write: PathBuf,
    /// Every root searched, in order (`write` first).
    pub roots: Vec<PathBuf>,
}

impl Store {
    /// A store writing into `write` and searching it, then each of `also` (each once).
    pub fn new(write: PathBuf, also: impl IntoIterator<Item = PathBuf>) -> Store {
        let mut roots = vec![write.clone()];
        for r in also {
            if !roots.contains(&r) {
                roots.push(r);
            }
        }
        Store { write, roots }
    }

    /// The checkout's own store only: `vendor/store`.
    pub fn project(vendor: &Path) -> Store {
        Store::new(vendor.join("store"), [])
    }

    /// The same roots, writing into `write` (which is searched first).
    pub fn writing_to(&self, write: PathBuf) -> Store {
        Store::new(write, self.roots.clone())
    }

    /// The file with this sha512, in the first root that has it.
    pub fn find(&self, sha512: &str) -> Option<PathBuf> {
        self.roots
            .iter()
            .map(|r| r.join("sha512").join(sha512))
            .find(|p| p.is_file())
    }

    /// Where a new file with this sha512 goes.
    pub fn path_for(&self, sha512: &str) -> PathBuf {
        self.write.join("sha512").join(sha512)
    }

    /// Where derived files (caches keyed by the digests they derive from) go and are found.
    pub fn derived(&self, name: &str) -> Option<PathBuf> {
        self.roots
            .iter()
            .map(|r| r.join("derived").join(name))
            .find(|p| p.is_file())
    }

    pub fn derived_path_for(&self, name: &str) -> PathBuf {
        self.write.join("derived").join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_every_root_writes_one() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let s = Store::new(a.path().into(), [b.path().into(), a.path().into()]);
        assert_eq!(s.roots.len(), 2);
        std::fs::create_dir_all(b.path().join("sha512")).unwrap();
        std::fs::write(b.path().join("sha512/abc"), "x").unwrap();
        assert_eq!(s.find("abc"), Some(b.path().join("sha512/abc")));
        assert_eq!(s.find("abd"), None);
        assert_eq!(s.path_for("abd"), a.path().join("sha512/abd"));
    }
}
