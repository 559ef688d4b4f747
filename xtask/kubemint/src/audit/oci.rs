//! Reading an OCI image layout in-process: `index.json` → the image manifest (by its
//! `org.opencontainers.image.ref.name`, or the only one) → config and layers, every blob's
//! digest checked against its name, every layer's tar (gzip or not) read into the union of
//! entries the image holds, each layer's diff_id checked against the config.

use super::rules::Kind;
use super::view::{Actual, MemView};
use super::{AuditError, Finding, io_err};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// What was read out of a layout.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub manifest_digest: String,
    pub config_digest: String,
    /// (digest, media type) of each layer, in order.
    pub layers: Vec<(String, String)>,
    pub diff_ids: Vec<String>,
    /// The union of the layers' entries.
    pub view: MemView,
    /// Blobs whose bytes do not match their digests, unreadable layers, diff_id mismatches.
    pub findings: Vec<Finding>,
}

fn json(path: &Path) -> Result<serde_json::Value, AuditError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| AuditError::Unreadable {
        path: path.to_owned(),
        why: format!("not JSON: {e}"),
    })
}

/// `blobs/sha256/<hex>` of a digest.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// Checks that a blob's bytes hash to its digest; a finding if not.
pub(crate) fn check_blob(
    dir: &Path,
    digest: &str,
    what: &str,
) -> Result<Option<Finding>, AuditError> {
    let rel = blob_path(digest);
    let path = dir.join(&rel);
    if !path.is_file() {
        return Ok(Some(Finding::new(
            Kind::Missing,
            rel,
            format!("{what} blob missing"),
        )));
    }
    let (sha, _) = crate::util::hash::sha256_file(&path).map_err(io_err(&path))?;
    let actual = format!("sha256:{sha}");
    Ok((actual != digest).then(|| {
        Finding::new(
            Kind::Changed,
            rel,
            format!("{what} blob's content hashes to {actual}, not the digest it is named by"),
        )
        .values(digest, actual)
    }))
}

/// Reads the layout at `dir`; `tag` picks a manifest of the index by its ref name.
pub fn read_layout(dir: &Path, tag: Option<&str>) -> Result<Layout, AuditError> {
    let index = json(&dir.join("index.json"))?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen = match tag {
        Some(t) => manifests
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(t)),
        None => manifests.first(),
    };
    let Some(chosen) = chosen else {
        return Err(AuditError::Unreadable {
            path: dir.join("index.json"),
            why: match tag {
                Some(t) => format!("no manifest tagged {t:?}"),
                None => "no manifest".into(),
            },
        });
    };
    let mut out = Layout {
        manifest_digest: chosen["digest"].as_str().unwrap_or_default().to_owned(),
        ..Layout::default()
    };
    if let Some(f) = check_blob(dir, &out.manifest_digest, "image manifest")? {
        out.findings.push(f);
        return Ok(out);
    }
    let manifest = json(&dir.join(blob_path(&out.manifest_digest)))?;
    out.config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(f) = check_blob(dir, &out.config_digest, "config")? {
        out.findings.push(f);
    } else {
        let config = json(&dir.join(blob_path(&out.config_digest)))?;
        out.diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
    }
    for (i, layer) in manifest["layers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let digest = layer["digest"].as_str().unwrap_or_default().to_owned();
        let media = layer["mediaType"].as_str().unwrap_or_default().to_owned();
        out.layers.push((digest.clone(), media.clone()));
        let what = format!("layer {}", i + 1);
        let bad_blob = check_blob(dir, &digest, &what)?;
        let missing = bad_blob.as_ref().is_some_and(|f| f.kind == Kind::Missing);
        out.findings.extend(bad_blob);
        if missing {
            continue;
        }
        let path = dir.join(blob_path(&digest));
        let file = std::fs::File::open(&path).map_err(io_err(&path))?;
        let gzip = media.contains("gzip");
        let read = if gzip {
            read_tar(flate2::read::GzDecoder::new(file), &mut out.view)
        } else {
            read_tar(file, &mut out.view)
        };
        match read {
            Ok(diff_id) => {
                if let Some(want) = out.diff_ids.get(i)
                    && *want != diff_id
                {
                    out.findings.push(
                        Finding::new(
                            Kind::Changed,
                            blob_path(&digest),
                            format!("{what}'s uncompressed tar is not the config's diff_id"),
                        )
                        .values(want.clone(), diff_id),
                    );
                }
            }
            Err(e) => out.findings.push(Finding::new(
                Kind::Changed,
                blob_path(&digest),
                format!("{what} cannot be read whole: {e}"),
            )),
        }
    }
    Ok(out)
}

/// Reads a tar stream into `view` (later layers over earlier ones); returns the tar's sha256
/// (`sha256:<hex>`).
fn read_tar<R: Read>(r: R, view: &mut MemView) -> std::io::Result<String> {
    let mut hashing = crate::util::hash::HashingReader::<_, Sha256>::new(r);
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let h = entry.header().clone();
            let raw = entry.path()?.to_string_lossy().into_owned();
            let rel = raw.trim_start_matches("./").trim_end_matches('/');
            if rel.is_empty() {
                continue;
            }
            let path = format!("/{rel}");
            let kind = match h.entry_type() {
                tar::EntryType::Directory => "dir",
                tar::EntryType::Regular | tar::EntryType::Continuous => "file",
                tar::EntryType::Symlink => "symlink",
                _ => "other",
            };
            let mut sha256 = None;
            if kind == "file" {
                let mut hash = Sha256::new();
                std::io::copy(&mut entry, &mut HashSink(&mut hash))?;
                sha256 = Some(Ok(hex::encode(hash.finalize())));
            }
            let target = entry.link_name()?.map(|t| t.to_string_lossy().into_owned());
            view.entries.insert(
                path,
                Actual {
                    kind,
                    mode: h.mode()? & 0o7777,
                    uid: h.uid()? as u32,
                    gid: h.gid()? as u32,
                    size: h.size()?,
                    target: if kind == "symlink" { target } else { None },
                    sha256,
                    mtime: h.mtime().ok().map(|m| m as i64),
                },
            );
        }
    }
    // The rest of the stream (tar's end blocks and padding) counts too.
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    let (sha, _) = hashing.finish()?;
    Ok(format!("sha256:{sha}"))
}

struct HashSink<'a>(&'a mut Sha256);

impl std::io::Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
