//! `pin`: records a local tarball in the lock and copies it into the store, hashing it once.
//! For air-gapped mirrors, and for building against any other tarball with `--release`.

use crate::inputs::lock::{self, Lock, LockError, Release};
use crate::util::hash::Sha512Reader;
use crate::util::progress::Progress;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Options {
    pub root: PathBuf,
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
    let (sha512, size, temp) = import(&vendor, &opts.file, progress)?;
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
    let store = lock::store_path(&vendor, &sha512);
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

/// Copies `file` into a temp file in the store while hashing it; the caller renames it into
/// place under its digest.
pub fn import(
    vendor: &Path,
    file: &Path,
    progress: &Progress,
) -> Result<(String, u64, tempfile::NamedTempFile), PinError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PinError::Io { path, source }
    };
    let store_dir = lock::store_dir(vendor);
    std::fs::create_dir_all(&store_dir).map_err(io_err(&store_dir))?;
    let input = File::open(file).map_err(io_err(file))?;
    let total = input.metadata().ok().map(|m| m.len());
    let bar = progress.bar("hashing", total);
    let mut reader = Sha512Reader::new(BufReader::with_capacity(1 << 20, bar.wrap_read(input)));
    let temp = tempfile::Builder::new()
        .prefix(".pin.")
        .tempfile_in(&store_dir)
        .map_err(io_err(&store_dir))?;
    let mut writer = BufWriter::with_capacity(1 << 20, temp.as_file());
    io::copy(&mut reader, &mut writer).map_err(io_err(file))?;
    writer.flush().map_err(io_err(temp.path()))?;
    drop(writer);
    temp.as_file().sync_all().map_err(io_err(temp.path()))?;
    let (sha512, size) = reader.finish().map_err(io_err(file))?;
    Ok((sha512, size, temp))
}
