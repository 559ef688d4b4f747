//! `pin` and `unpin`: record a local tarball in the lock and copy it into the store, reading it
//! once (sha512 and every check a build makes of a release: a tarball a build would refuse is
//! refused here); remove an entry, and its store file when no other entry uses it. For
//! air-gapped mirrors, and for building against any other tarball with `--release`.

use crate::inputs::extract::{self, ExtractError};
use crate::inputs::lock::{self, Lock, LockError, Release};
use crate::util::progress::Progress;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Options {
    pub root: PathBuf,
    /// Where the tarball is copied to (its `write` root).
    pub store: crate::inputs::store::Store,
    pub release: String,
    pub file: PathBuf,
    /// URLs to record for `fetch`; kept from the existing entry when empty.
    pub urls: Vec<String>,
    /// Allow changing the digest of a release already pinned.
    pub replace: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Pinned {
    pub release: String,
    pub sha512: String,
    pub size: u64,
    pub store: PathBuf,
    /// `added`, `replaced` or `unchanged` (same digest as the lock already had).
    pub change: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "release {release:?} is pinned to sha512 {pinned}, but {file} has sha512 {actual}; pass --replace to re-pin it"
    )]
    Conflict {
        release: String,
        pinned: String,
        file: PathBuf,
        actual: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}\nnot pinned: a build would refuse this tarball too")]
    Refused(#[from] ExtractError),
    #[error("release {release:?} is not in {path} (pinned: {known}); nothing to unpin")]
    NotPinned {
        release: String,
        path: PathBuf,
        known: String,
    },
}

pub fn pin(opts: &Options, progress: &Progress) -> Result<Pinned, PinError> {
    crate::front::profile::check_release_name(&opts.release).map_err(PinError::Invalid)?;
    for url in &opts.urls {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(PinError::Invalid(format!(
                "--url {url:?} is not an http(s) URL"
            )));
        }
    }
    let vendor = opts.root.join("vendor");
    let mut lock = match Lock::load(&vendor) {
        Err(LockError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Lock::default()
        }
        other => other?,
    };
    let wanted = members_images_take(&opts.root.join("images"));
    let (sha512, size, temp, refused) = import(&opts.store, &opts.file, &wanted, progress)?;
    let existing = lock
        .releases
        .iter()
        .find(|r| r.name == opts.release)
        .cloned();
    let change = match &existing {
        Some(r) if r.sha512 == sha512 => "unchanged",
        Some(r) if !opts.replace => {
            return Err(PinError::Conflict {
                release: opts.release.clone(),
                pinned: r.sha512.clone(),
                file: opts.file.clone(),
                actual: sha512,
            });
        }
        Some(_) => "replaced",
        None => "added",
    };
    if let Some(problem) = refused {
        return Err(PinError::Refused(problem));
    }
    let file_name = opts
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let release = Release {
        name: opts.release.clone(),
        file: existing
            .as_ref()
            .map(|r| r.file.clone())
            .or(file_name)
            .unwrap_or_else(|| "kubernetes-server-linux-amd64.tar.gz".into()),
        sha512: sha512.clone(),
        size: Some(size),
        urls: if opts.urls.is_empty() {
            existing
                .as_ref()
                .map(|r| r.urls.clone())
                .unwrap_or_default()
        } else {
            opts.urls.clone()
        },
        source: match (&existing, change) {
            (Some(r), "unchanged") => r.source.clone(),
            _ => Some(format!(
                "pinned from a local file with `cargo xtask pin` ({} bytes)",
                size
            )),
        },
    };
    let store = opts.store.path_for(&sha512);
    temp.persist(&store).map_err(|e| PinError::Io {
        path: store.clone(),
        source: e.error,
    })?;
    lock.upsert(release);
    lock.save(&vendor)?;
    Ok(Pinned {
        release: opts.release.clone(),
        sha512,
        size,
        store,
        change,
    })
}

/// Copies `file` into a temp file in the store while reading it as a build reads a release
/// (one pass: sha512, gunzip, untar, hostile-member checks); returns its digest, size, the temp
/// file (which the caller renames into place, or drops) and what a build would refuse it for.
pub fn import(
    store: &crate::inputs::store::Store,
    file: &Path,
    wanted: &std::collections::BTreeSet<String>,
    progress: &Progress,
) -> Result<(String, u64, tempfile::NamedTempFile, Option<ExtractError>), PinError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PinError::Io { path, source }
    };
    let store_dir = store.write.join("sha512");
    std::fs::create_dir_all(&store_dir).map_err(io_err(&store_dir))?;
    let input = File::open(file).map_err(io_err(file))?;
    let total = input.metadata().ok().map(|m| m.len());
    let bar = progress.bar("checking", total);
    let temp = tempfile::Builder::new()
        .prefix(".pin.")
        .tempfile_in(&store_dir)
        .map_err(io_err(&store_dir))?;
    let mut copy = BufWriter::with_capacity(1 << 20, temp.as_file());
    let tee = Tee {
        inner: BufReader::with_capacity(1 << 20, bar.wrap_read(input)),
        copy: &mut copy,
    };
    let (sha512, size, refused) = extract::scan(file, tee, wanted)?;
    copy.flush().map_err(io_err(temp.path()))?;
    drop(copy);
    temp.as_file().sync_all().map_err(io_err(temp.path()))?;
    Ok((sha512, size, temp, refused))
}

/// The release members the image definitions in `images_dir` take (each image's components
/// and tools): a tarball without them as regular files is one no build could use.
pub fn members_images_take(images_dir: &Path) -> std::collections::BTreeSet<String> {
    let mut wanted = std::collections::BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(images_dir) else {
        return wanted;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(image) = crate::front::image::Image::load(images_dir, &name) {
            wanted.extend(image.components.iter().map(|c| c.member.clone()));
            wanted.extend(image.tools.iter().map(|t| t.member.clone()));
        }
    }
    wanted
}

/// A reader that writes a copy of everything read through it.
struct Tee<'a, R, W> {
    inner: R,
    copy: &'a mut W,
}

impl<R: io::Read, W: Write> io::Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// What `unpin` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Unpinned {
    pub release: String,
    pub sha512: String,
    /// The store file removed, when no other entry used it.
    pub removed: Option<PathBuf>,
}

/// Removes `release` from the lock, and its store file when no other entry has its digest.
pub fn unpin(
    root: &Path,
    store: &crate::inputs::store::Store,
    release: &str,
) -> Result<Unpinned, PinError> {
    let vendor = root.join("vendor");
    let mut lock = Lock::load(&vendor)?;
    let Some(at) = lock.releases.iter().position(|r| r.name == release) else {
        return Err(PinError::NotPinned {
            release: release.to_owned(),
            path: vendor.join(lock::LOCK_FILE),
            known: lock
                .releases
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let entry = lock.releases.remove(at);
    lock.save(&vendor)?;
    let shared = lock.releases.iter().any(|r| r.sha512 == entry.sha512);
    let found = if shared {
        None
    } else {
        store.find(&entry.sha512)
    };
    let removed = if let Some(store) = found {
        std::fs::remove_file(&store).map_err(|source| PinError::Io {
            path: store.clone(),
            source,
        })?;
        Some(store)
    } else {
        None
    };
    Ok(Unpinned {
        release: entry.name,
        sha512: entry.sha512,
        removed,
    })
}
