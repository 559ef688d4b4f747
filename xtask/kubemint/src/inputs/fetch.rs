//! `fetch`: downloads a release from its lock URLs, verifying sha512 while streaming into a temp
//! file that is renamed into the store only when the digest matches. The only network access.

use crate::inputs::lock::{Lock, LockError, Release};
use crate::util::hash::Sha512Reader;
use crate::util::progress::Progress;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Fetched {
    pub release: String,
    pub store: PathBuf,
    pub size: u64,
    /// `downloaded` (with the URL it came from) or `present` (already in the store).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "release {release}: no URL in the lock to fetch it from; add one with `cargo xtask pin {release} --file PATH --url URL`"
    )]
    NoUrls { release: String },
    #[error("release {release}: every URL failed:{}", .attempts.iter().map(|a| format!("\n  {a}")).collect::<String>())]
    Failed {
        release: String,
        attempts: Vec<String>,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{} releases failed:\n{}", .0.len(), .0.join("\n"))]
    Several(Vec<String>),
}

/// Fetches each release in `names` (every release in the lock when empty).
pub fn fetch(
    root: &Path,
    store: &crate::inputs::store::Store,
    names: &[String],
    progress: &Progress,
) -> Result<Vec<Fetched>, FetchError> {
    let vendor = root.join("vendor");
    let lock = Lock::load(&vendor)?;
    let releases: Vec<Release> = if names.is_empty() {
        lock.releases.clone()
    } else {
        names
            .iter()
            .map(|n| lock.get(n, &vendor).cloned())
            .collect::<Result<_, _>>()?
    };
    // Every release is tried, and every failure reported, not only the first.
    let mut fetched = Vec::new();
    let mut failed = Vec::new();
    for r in &releases {
        match fetch_one_in(store, r, progress) {
            Ok(f) => fetched.push(f),
            Err(e) => failed.push(e),
        }
    }
    match failed.len() {
        0 => Ok(fetched),
        1 => Err(failed.remove(0)),
        _ => Err(FetchError::Several(
            failed.iter().map(|e| e.to_string()).collect(),
        )),
    }
}

/// Makes sure `release` is in the checkout's store (`vendor/store`), downloading it if needed.
pub fn fetch_one(
    vendor: &Path,
    release: &Release,
    progress: &Progress,
) -> Result<Fetched, FetchError> {
    fetch_one_in(
        &crate::inputs::store::Store::project(vendor),
        release,
        progress,
    )
}

/// Makes sure `release` is in `store`, downloading it into its `write` root if needed.
pub fn fetch_one_in(
    stores: &crate::inputs::store::Store,
    release: &Release,
    progress: &Progress,
) -> Result<Fetched, FetchError> {
    let store = stores
        .find(&release.sha512)
        .unwrap_or_else(|| stores.path_for(&release.sha512));
    if store.is_file() {
        // Re-check what is there: a store file is trusted only while its digest holds.
        let (actual, size) =
            crate::util::hash::sha512_file(&store).map_err(|source| FetchError::Io {
                path: store.clone(),
                source,
            })?;
        if actual == release.sha512 {
            return Ok(Fetched {
                release: release.name.clone(),
                store,
                size,
                status: "present".into(),
                url: None,
            });
        }
        std::fs::remove_file(&store).map_err(|source| FetchError::Io {
            path: store.clone(),
            source,
        })?;
    }
    if release.urls.is_empty() {
        return Err(FetchError::NoUrls {
            release: release.name.clone(),
        });
    }
    let store = stores.path_for(&release.sha512);
    let dir = stores.write.join("sha512");
    std::fs::create_dir_all(&dir).map_err(|source| FetchError::Io {
        path: dir.clone(),
        source,
    })?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .user_agent(format!("kubemint/{}", crate::VERSION))
        .build()
        .into();
    let mut attempts = Vec::new();
    for url in &release.urls {
        progress.step(&format!("fetching {} from {url}", release.name));
        match download(&agent, url, &dir, release, progress) {
            Ok((temp, size)) => {
                temp.persist(&store).map_err(|e| FetchError::Io {
                    path: store.clone(),
                    source: e.error,
                })?;
                return Ok(Fetched {
                    release: release.name.clone(),
                    store,
                    size,
                    status: "downloaded".into(),
                    url: Some(url.clone()),
                });
            }
            Err(why) => attempts.push(format!("{url}: {why}")),
        }
    }
    Err(FetchError::Failed {
        release: release.name.clone(),
        attempts,
    })
}

/// Streams `url` into a temp file in `dir`, hashing as it goes; the temp file is deleted unless
/// the digest (and the size, when the lock knows it) match.
fn download(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    release: &Release,
    progress: &Progress,
) -> Result<(tempfile::NamedTempFile, u64), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(expected), Some(length)) = (release.size, length)
        && expected != length
    {
        return Err(format!(
            "server announces {length} bytes, the lock says {expected}"
        ));
    }
    let temp = tempfile::Builder::new()
        .prefix(".fetch.")
        .tempfile_in(dir)
        .map_err(|e| e.to_string())?;
    let bar = progress.bar(&release.name, length.or(release.size));
    let body = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut reader = Sha512Reader::new(bar.wrap_read(body));
    let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
    io::copy(&mut reader, &mut out)
        .map_err(|e| format!("download interrupted after {} bytes: {e}", reader.count()))?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let (actual, size) = reader.finish().map_err(|e| e.to_string())?;
    if let Some(length) = length
        && size != length
    {
        return Err(format!("truncated: got {size} of {length} bytes"));
    }
    if actual != release.sha512 {
        return Err(format!(
            "sha512 mismatch: expected {}, actual {actual}",
            release.sha512
        ));
    }
    temp.as_file().sync_all().map_err(|e| e.to_string())?;
    Ok((temp, size))
}
