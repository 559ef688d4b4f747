//! The lock of upstream inputs (`vendor/releases.toml`): each release's file name, URLs, size
//! when known and sha512; each base operating system's root file system tarball and sha512;
//! and where a verified copy lives in the content-addressed store.

use crate::front::profile::check_release_name;
use crate::util::hash;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The lock's file name inside `vendor/`.
pub const LOCK_FILE: &str = "releases.toml";

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// As profiles and `--release` name it, e.g. `v1.14.2`.
    pub name: String,
    /// The upstream file name, e.g. `kubernetes-server-linux-amd64.tar.gz`.
    pub file: String,
    /// Lowercase hex sha512 of the file: the identity of the input.
    pub sha512: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// Where `fetch` may download it from, tried in order.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Where the digest was published, for whoever re-checks it.
    pub source: Option<String>,
}

/// A base operating system: the root file system tarball a bootable master's disk is made
/// from, pinned by sha512 like a release (`cargo xtask base NAME` makes and pins one).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// As profile sets name it (`base = "debian-trixie"`): a definition in `images/bases/`.
    pub name: String,
    pub file: String,
    pub sha512: String,
    pub size: Option<u64>,
    /// sha256 of the base definition it was made from (`images/bases/<name>/`), when made here.
    pub recipe: Option<String>,
    /// How it was made or where it came from.
    pub source: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    #[serde(default, rename = "release")]
    pub releases: Vec<Release>,
    #[serde(default, rename = "base")]
    pub bases: Vec<Base>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: cannot read the lock: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "release {name:?} is not in {path} (pinned: {known}); add it with `cargo xtask pin {name} --file PATH [--url URL]`"
    )]
    UnknownRelease {
        name: String,
        path: PathBuf,
        known: String,
    },
    #[error("{path}: cannot write the lock: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Lock {
    /// Reads and validates `vendor/releases.toml`.
    pub fn load(vendor: &Path) -> Result<Lock, LockError> {
        let path = vendor.join(LOCK_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| LockError::Read {
            path: path.clone(),
            source,
        })?;
        let invalid = |message: String| LockError::Invalid {
            path: path.clone(),
            message,
        };
        let lock: Lock =
            toml::from_str(&text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        let mut problems = Vec::new();
        for (i, r) in lock.releases.iter().enumerate() {
            let key = format!("release[{i}] ({})", r.name);
            if let Err(m) = check_release_name(&r.name) {
                problems.push(format!("{key}.name: {m}"));
            }
            if !hash::is_hex(&r.sha512, 128) {
                problems.push(format!("{key}.sha512: not 128 lowercase hex digits"));
            }
            if r.file.is_empty() || r.file.contains('/') || r.file.starts_with('.') {
                problems.push(format!(
                    "{key}.file: {:?} must be a plain file name",
                    r.file
                ));
            }
            for (j, url) in r.urls.iter().enumerate() {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    problems.push(format!("{key}.urls[{j}]: {url:?} is not an http(s) URL"));
                }
            }
            if lock.releases[..i].iter().any(|o| o.name == r.name) {
                problems.push(format!("{key}: release {:?} is listed twice", r.name));
            }
        }
        for (i, b) in lock.bases.iter().enumerate() {
            let key = format!("base[{i}] ({})", b.name);
            if crate::front::profile::values::check_hostname(&b.name).is_err() {
                problems.push(format!("{key}.name: not a base name like debian-trixie"));
            }
            if !hash::is_hex(&b.sha512, 128) {
                problems.push(format!("{key}.sha512: not 128 lowercase hex digits"));
            }
            if lock.bases[..i].iter().any(|o| o.name == b.name) {
                problems.push(format!("{key}: base {:?} is listed twice", b.name));
            }
        }
        if problems.is_empty() {
            Ok(lock)
        } else {
            Err(invalid(problems.join("; ")))
        }
    }

    pub fn get(&self, name: &str, vendor: &Path) -> Result<&Release, LockError> {
        self.releases
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| LockError::UnknownRelease {
                name: name.to_owned(),
                path: vendor.join(LOCK_FILE),
                known: self
                    .releases
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The base named `name`, if pinned.
    pub fn base(&self, name: &str) -> Option<&Base> {
        self.bases.iter().find(|b| b.name == name)
    }

    /// Adds `base`, or replaces the entry of the same name.
    pub fn upsert_base(&mut self, base: Base) {
        match self.bases.iter_mut().find(|b| b.name == base.name) {
            Some(slot) => *slot = base,
            None => self.bases.push(base),
        }
    }

    /// Adds `release`, or replaces the entry of the same name.
    pub fn upsert(&mut self, release: Release) {
        match self.releases.iter_mut().find(|r| r.name == release.name) {
            Some(slot) => *slot = release,
            None => self.releases.push(release),
        }
    }

    /// The lock as kubemint writes it: a fixed header, then one block per release.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = String::from(
            "# kubemint's lock of upstream inputs: one [[release]] per pinned kubernetes-server tarball.\n\
             # `cargo xtask fetch` downloads a release from its urls and keeps it only if the sha512\n\
             # matches; `cargo xtask pin` records a local tarball. Builds read nothing else.\n",
        );
        for r in &self.releases {
            let _ = write!(
                out,
                "\n[[release]]\nname = {}\nfile = {}\nsha512 = {}\n",
                q(&r.name),
                q(&r.file),
                q(&r.sha512)
            );
            if let Some(size) = r.size {
                let _ = writeln!(out, "size = {size}");
            }
            if !r.urls.is_empty() {
                out.push_str("urls = [\n");
                for url in &r.urls {
                    let _ = writeln!(out, "  {},", q(url));
                }
                out.push_str("]\n");
            }
            if let Some(source) = &r.source {
                let _ = writeln!(out, "source = {}", q(source));
            }
        }
        for b in &self.bases {
            let _ = write!(
                out,
                "\n[[base]]\nname = {}\nfile = {}\nsha512 = {}\n",
                q(&b.name),
                q(&b.file),
                q(&b.sha512)
            );
            if let Some(size) = b.size {
                let _ = writeln!(out, "size = {size}");
            }
            if let Some(recipe) = &b.recipe {
                let _ = writeln!(out, "recipe = {}", q(recipe));
            }
            if let Some(source) = &b.source {
                let _ = writeln!(out, "source = {}", q(source));
            }
        }
        out
    }

    /// Writes the lock atomically: a temp file beside it with the lock's mode (0644 for a new
    /// one), fsynced, renamed over it, and the directory fsynced.
    pub fn save(&self, vendor: &Path) -> Result<(), LockError> {
        use std::os::unix::fs::PermissionsExt;
        let path = vendor.join(LOCK_FILE);
        let write = || -> std::io::Result<()> {
            let mode = match std::fs::metadata(&path) {
                Ok(m) => m.permissions().mode() & 0o7777,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0o644,
                Err(e) => return Err(e),
            };
            let mut tmp = tempfile::Builder::new()
                .prefix(".releases.toml.")
                .tempfile_in(vendor)?;
            std::io::Write::write_all(&mut tmp, self.to_toml().as_bytes())?;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            std::fs::File::open(vendor)?.sync_all()
        };
        write().map_err(|source| LockError::Write {
            path: path.clone(),
            source,
        })
    }
}

/// The content-addressed store: `vendor/store/sha512/`, ignored by git.
pub fn store_dir(vendor: &Path) -> PathBuf {
    vendor.join("store").join("sha512")
}

/// Where the store keeps the file with this sha512: `vendor/store/sha512/<hex>`.
pub fn store_path(vendor: &Path, sha512: &str) -> PathBuf {
    store_dir(vendor).join(sha512)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(name: &str) -> Release {
        Release {
            name: name.into(),
            file: "kubernetes-server-linux-amd64.tar.gz".into(),
            sha512: "ab".repeat(64),
            size: Some(3),
            urls: vec!["https://dl.k8s.io/v1.14.2/kubernetes-server-linux-amd64.tar.gz".into()],
            source: Some("CHANGELOG/CHANGELOG-1.14.md".into()),
        }
    }

    #[test]
    fn round_trip_and_upsert() {
        let dir = tempfile::tempdir().unwrap();
        let mut lock = Lock::default();
        lock.upsert(release("v1.14.2"));
        lock.upsert(release("v1.33.5"));
        let mut changed = release("v1.14.2");
        changed.size = None;
        lock.upsert(changed);
        lock.upsert_base(Base {
            name: "debian-trixie".into(),
            file: "debian-trixie.tar".into(),
            sha512: "cd".repeat(64),
            size: Some(7),
            recipe: Some("ef".repeat(32)),
            source: Some("made by cargo xtask base".into()),
        });
        lock.save(dir.path()).unwrap();
        let back = Lock::load(dir.path()).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.releases[0].size, None);
        let err = back.get("v9", dir.path()).unwrap_err().to_string();
        assert!(err.contains("pinned: v1.14.2, v1.33.5"), "{err}");
    }

    #[test]
    fn rejects_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = release("v1.14.2");
        bad.sha512 = "xyz".into();
        bad.urls = vec!["ftp://x".into()];
        let lock = Lock {
            releases: vec![bad, release("v1.14.2")],
            bases: Vec::new(),
        };
        std::fs::write(dir.path().join(LOCK_FILE), lock.to_toml()).unwrap();
        let err = Lock::load(dir.path()).unwrap_err().to_string();
        for want in ["sha512: not 128", "urls[0]", "listed twice"] {
            assert!(err.contains(want), "{want} in {err}");
        }
    }
}
