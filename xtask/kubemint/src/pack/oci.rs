//! The OCI image of a master: an image layout (`oci/`) and the same layout as one tar
//! (`<profile>.oci.tar`). Two layers: the release layer (the binaries, which depend only on the
//! pinned release, so every master on that release shares the blob) and the profile layer
//! (everything rendered). All JSON is canonical; every timestamp is the epoch.

use crate::front::plan::Plan;
use crate::inputs::lock::Release;
use crate::pack::deflate::Threads;
use crate::pack::deflate::cache::ChunkCache;
use crate::pack::{installer, payload};
use crate::tree::Tree;
use crate::util::canonical;
use crate::util::epoch::Epoch;
use crate::util::hash::{self, sha256_hex};
use crate::util::progress::Progress;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// How layers are stored. gzip is what every registry and runtime takes; `none` makes each
/// layer's digest equal its diff_id and independent of any compressor, at about 3x the size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    #[default]
    Gzip,
    None,
}

impl LayerCompression {
    /// Every choice, as the command line spells them.
    pub const ALL: [LayerCompression; 2] = [LayerCompression::Gzip, LayerCompression::None];

    /// `gzip` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "gzip",
            LayerCompression::None => "none",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// One layer as the image manifest and config name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// `release` or `profile`.
    pub role: String,
    pub media_type: String,
    /// `sha256:<hex>` of the blob.
    pub digest: String,
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    pub created_by: String,
}

/// What identifies the image: manifest.json records it under `oci`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Image {
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub diff_ids: Vec<String>,
    pub layers: Vec<Layer>,
}

/// Layer blobs already written in this build, by the identity of their content, so the
/// release layer is compressed once however many masters share it.
#[derive(Debug)]
pub struct LayerCache {
    dir: PathBuf,
    layers: BTreeMap<String, (PathBuf, Layer)>,
}

impl LayerCache {
    /// A cache keeping its blobs in `dir` (on the same file system as the outputs).
    pub fn new(dir: PathBuf) -> LayerCache {
        LayerCache {
            dir,
            layers: BTreeMap::new(),
        }
    }
}

/// Writes the image layout of `plan`'s `tree` into `dir` (which must not exist). gzip layers
/// are compressed on `threads` threads in chunks, the binaries' taken from `chunks` when it
/// holds them: the same bytes either way.
#[allow(clippy::too_many_arguments)]
pub fn write_layout(
    plan: &Plan,
    release: &Release,
    tree: &Tree,
    compression: LayerCompression,
    dir: &Path,
    cache: &mut LayerCache,
    chunks: Option<&ChunkCache>,
    threads: Threads,
    progress: &Progress,
) -> io::Result<Image> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs)?;
    let is_binary = |p: &str| plan.binaries.iter().any(|b| b.path == p);
    let release_tree = tree.subset(|p, _| is_binary(p));
    let profile_tree = tree.subset(|p, _| !is_binary(p));
    let binaries: Vec<&str> = plan
        .binaries
        .iter()
        .map(|b| b.member.rsplit('/').next().unwrap_or(""))
        .collect();
    let layers = [
        (
            "release",
            release_tree,
            format!(
                "kubemint: {} from {} {} (sha512 {})",
                binaries.join(", "),
                release.file,
                release.name,
                release.sha512
            ),
        ),
        (
            "profile",
            profile_tree,
            format!(
                "kubemint: files of profile {} rendered from images/{}",
                plan.profile, plan.image
            ),
        ),
    ];
    let mut written = Vec::new();
    for (role, subtree, created_by) in layers {
        let key = format!(
            "{compression:?} {} {}\n{}",
            plan.epoch,
            created_by,
            installer::manifest_lines(&subtree)
        );
        let key = sha256_hex(key.as_bytes());
        let layer = match cache.layers.get(&key) {
            Some((path, layer)) => {
                link_or_copy(path, &blobs.join(&layer.digest["sha256:".len()..]))?;
                layer.clone()
            }
            None => {
                let (path, layer) = write_layer(
                    &subtree,
                    plan.epoch,
                    compression,
                    role,
                    created_by,
                    &cache.dir,
                    (chunks, threads),
                    progress,
                )?;
                link_or_copy(&path, &blobs.join(&layer.digest["sha256:".len()..]))?;
                cache.layers.insert(key, (path, layer.clone()));
                layer
            }
        };
        written.push(layer);
    }

    let created = plan.epoch.rfc3339();
    let mut labels = BTreeMap::from([
        ("org.opencontainers.image.created", created.clone()),
        (
            "org.opencontainers.image.title",
            format!("{} control plane", plan.profile),
        ),
        (
            "org.opencontainers.image.description",
            format!(
                "Kubernetes {} control plane of {} from image {}{}",
                plan.release.name,
                plan.profile,
                plan.image,
                if plan.sample {
                    " (SAMPLE release: stand-in binaries, not a real master)"
                } else {
                    ""
                }
            ),
        ),
        (
            "org.opencontainers.image.version",
            plan.release.name.clone(),
        ),
        ("org.opencontainers.image.vendor", "kubemint".to_owned()),
        ("io.kubemint.profile", plan.profile.clone()),
        ("io.kubemint.release.sha512", release.sha512.clone()),
        (
            "io.kubemint.generator",
            format!("{} {}", crate::GENERATOR, crate::VERSION),
        ),
    ]);
    if plan.sample {
        labels.insert("io.kubemint.sample", "true".to_owned());
    }
    let diff_ids: Vec<String> = written.iter().map(|l| l.diff_id.clone()).collect();
    let config = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": written.iter().map(|l| json!({ "created": created, "created_by": l.created_by })).collect::<Vec<_>>(),
    });
    let config = blob(
        &blobs,
        &canonical::to_vec(&config).map_err(io::Error::other)?,
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config.0, "size": config.1 },
        "layers": written.iter().map(|l| json!({ "mediaType": l.media_type, "digest": l.digest, "size": l.size })).collect::<Vec<_>>(),
        "annotations": labels,
    });
    let manifest = blob(
        &blobs,
        &canonical::to_vec(&manifest).map_err(io::Error::other)?,
    )?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest.0,
            "size": manifest.1,
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": { "org.opencontainers.image.ref.name": plan.profile },
        }],
    });
    fs::write(
        dir.join("index.json"),
        canonical::to_vec(&index).map_err(io::Error::other)?,
    )?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(Image {
        manifest_digest: manifest.0,
        manifest_size: manifest.1,
        config_digest: config.0,
        diff_ids,
        layers: written,
    })
}

/// Writes a JSON blob under its digest; returns (`sha256:<hex>`, size).
fn blob(blobs: &Path, bytes: &[u8]) -> io::Result<(String, u64)> {
    let hex = sha256_hex(bytes);
    fs::write(blobs.join(&hex), bytes)?;
    Ok((format!("sha256:{hex}"), bytes.len() as u64))
}

/// Puts a cached layer (written and synced once per build) into a layout: a hard link where the
/// file system allows one, so every master of a build shares the release layer's blocks instead
/// of writing (and syncing) the same bytes once more each; a copy otherwise. Blobs are
/// content-addressed and never written in place, so sharing the inode changes nothing a reader
/// sees.
fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(_) => fs::copy(from, to).map(|_| ()),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_layer(
    tree: &Tree,
    epoch: Epoch,
    compression: LayerCompression,
    role: &str,
    created_by: String,
    dir: &Path,
    (chunks, threads): (Option<&ChunkCache>, Threads),
    progress: &Progress,
) -> io::Result<(PathBuf, Layer)> {
    let temp = tempfile::Builder::new()
        .prefix(".layer.")
        .tempfile_in(dir)?;
    let bar = progress.bar(&format!("{role} layer"), Some(tree.content_size()));
    let out = BufWriter::with_capacity(1 << 20, temp.reopen()?);
    let (out, w) = match compression {
        LayerCompression::Gzip => {
            crate::pack::deflate::tar::write_tar_gz(tree, epoch, out, chunks, threads, &bar)?
        }
        LayerCompression::None => payload::write_tar_hashed(tree, epoch, out, &bar)?,
    };
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    bar.finish();
    let path = dir.join(format!("{}.layer", w.sha256));
    temp.persist(&path).map_err(|e| e.error)?;
    let layer = Layer {
        role: role.to_owned(),
        media_type: compression.media_type().to_owned(),
        digest: format!("sha256:{}", w.sha256),
        size: w.size,
        diff_id: format!("sha256:{}", w.tar_sha256),
        created_by,
    };
    Ok((path, layer))
}

/// The files of a layout directory, relative and in byte order.
pub fn layout_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).map_err(io::Error::other)?;
            files.push(rel.to_string_lossy().into_owned());
        }
    }
    files.sort();
    Ok(files)
}

/// Writes the layout in `dir` as an OCI archive (a plain tar of the layout: directories 0755,
/// files 0644, owned by root, mtime the epoch, in byte order).
pub fn write_archive<W: Write>(dir: &Path, epoch: Epoch, out: W) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    let mut dirs_done: Vec<String> = Vec::new();
    for rel in layout_files(dir)? {
        let mut parent = String::new();
        for part in rel
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            parent = if parent.is_empty() {
                (*part).to_owned()
            } else {
                format!("{parent}/{part}")
            };
            if !dirs_done.contains(&parent) {
                let mut h = payload::header(tar::EntryType::Directory, 0o755, 0, 0, 0, epoch)?;
                tar.append_data(&mut h, format!("{parent}/"), io::empty())?;
                dirs_done.push(parent.clone());
            }
        }
        let file = File::open(dir.join(&rel))?;
        let size = file.metadata()?.len();
        let mut h = payload::header(tar::EntryType::Regular, 0o644, 0, 0, size, epoch)?;
        tar.append_data(&mut h, &rel, io::BufReader::with_capacity(1 << 20, file))?;
    }
    tar.into_inner()
}

/// The sha256 of every file of a layout. A blob is named by its digest, checked when it was
/// written, so only `index.json` and `oci-layout` are read again.
pub fn layout_sums(dir: &Path) -> io::Result<Vec<(String, String)>> {
    layout_files(dir)?
        .into_iter()
        .map(|rel| {
            let sha256 = match rel.strip_prefix("blobs/sha256/") {
                Some(digest) => digest.to_owned(),
                None => hash::sha256_file(&dir.join(&rel))?.0,
            };
            Ok((rel, sha256))
        })
        .collect()
}

/// Total size of a layout's files and the sha256 of its index.json (which names every blob by
/// digest): the `oci-layout` output row.
pub fn layout_identity(dir: &Path) -> io::Result<(u64, String)> {
    let mut size = 0;
    for rel in layout_files(dir)? {
        size += fs::metadata(dir.join(rel))?.len();
    }
    let (sha256, _) = hash::sha256_file(&dir.join("index.json"))?;
    Ok((size, sha256))
}
