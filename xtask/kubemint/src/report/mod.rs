//! The audit report: one static HTML page (no script, no network, CSS inline) showing masters
//! side by side, made only from their manifest.json files (and, when given, a verify result).
//!
//! - `<out root>/<profile>/report.html` is one master's page. `build-image` renders it from the
//!   master's [`Manifest`](crate::manifest::Manifest) before the manifest's `report` row is added
//!   (a page cannot list its own digest), then lists it in `outputs` as kind `report`, so it is
//!   in SHA256SUMS and in the build key's record like every output.
//! - `<out root>/report.html` is the set's page: every output directory of the root, in name
//!   order, side by side. It is made from the manifests as they are on disk after the swap, so
//!   no manifest can list it (each would have to name the digest of a page made from itself);
//!   the page names each manifest's sha256 instead. `build-image` rewrites it only when its
//!   bytes would change, also when every profile was up to date (so a build killed between its
//!   swaps and the page, or a deleted page, is made whole by the next build).
//! - `cargo xtask report OUTDIR…` renders the same page from output directories (or output
//!   roots), with `--verify-json` a verify result: same manifests, same bytes as the build's.
//!
//! Rendering is a pure function of its inputs: no clock, no environment, every value escaped.

mod html;

use crate::manifest::Output;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The name of both pages.
pub const FILE: &str = "report.html";

/// How a page kubemint wrote begins: how an output root tells its own `report.html` from a
/// user's file of that name.
pub const MARK: &str = "<!DOCTYPE html>\n<!-- kubemint audit report";

pub use html::render;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a kubemint output directory (no manifest.json written by kubemint); pass a directory `build-image` wrote, e.g. target/images/sample/master-1, or an output root holding some"
    )]
    NotAnOutput { path: PathBuf },
    #[error("{path}: cannot read this manifest.json: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("{path}: not a JSON document: {message}")]
    Verify { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One master as the report shows it: its manifest, and that manifest's sha256 when the page
/// is made from a written manifest.json.
#[derive(Clone, Debug)]
pub struct Master {
    pub manifest: View,
    pub manifest_sha256: Option<String>,
}

/// What the report reads of a manifest.json. Fields a newer kubemint adds are ignored and
/// fields an older one lacked are empty, so any kubemint's outputs can be shown side by side.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct View {
    pub profile: String,
    pub image: String,
    pub sample: bool,
    /// The build's version (`IMAGE_VERSION`), when the generator records one.
    pub version: Option<String>,
    pub release: ReleaseView,
    pub epoch: u64,
    pub generator: GeneratorView,
    pub files: Vec<FileView>,
    pub outputs: Vec<Output>,
    pub oci: OciView,
    pub secrets: Vec<SecretView>,
    pub components: Vec<crate::front::plan::ComponentFlags>,
    pub disk: Option<DdiView>,
    pub boot: Option<DdiView>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseView {
    pub name: String,
    pub file: String,
    pub sha512: String,
    pub size: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct GeneratorView {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FileView {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub target: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OciView {
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<LayerView>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LayerView {
    pub role: String,
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SecretView {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: String,
    pub used_by: Vec<String>,
    pub purpose: String,
    pub optional: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DdiView {
    pub disk_guid: String,
    pub partitions: Vec<PartitionView>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PartitionView {
    pub label: String,
    pub type_guid: String,
    pub uuid: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
}

impl View {
    /// The view of a manifest being written (a build's, before its `report` row exists).
    pub fn of(manifest: &crate::manifest::Manifest) -> View {
        let value = serde_json::to_value(manifest).expect("a manifest serializes");
        serde_json::from_value(value).expect("a manifest reads back as a view")
    }
}

/// The master whose output directory is `dir` (its manifest.json, which kubemint must have
/// written).
pub fn read_output(dir: &Path) -> Result<Master, ReportError> {
    let path = dir.join("manifest.json");
    let bytes = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::NotAnOutput {
                path: dir.to_owned(),
            });
        }
        r => r.map_err(io_err(&path))?,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ReportError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
    if value["generator"]["name"] != crate::GENERATOR {
        return Err(ReportError::NotAnOutput {
            path: dir.to_owned(),
        });
    }
    let manifest: View = serde_json::from_value(value).map_err(|e| ReportError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(Master {
        manifest,
        manifest_sha256: Some(crate::util::hash::sha256_hex(&bytes)),
    })
}

/// Every output directory directly in `root`, in name order (what the set's page shows).
pub fn read_root(root: &Path) -> Result<Vec<Master>, ReportError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(io_err(root))?
        .map(|e| e.map(|e| e.path()).map_err(io_err(root)))
        .collect::<Result<_, _>>()?;
    dirs.sort();
    let mut masters = Vec::new();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| n.starts_with('.')) || !dir.is_dir() {
            continue;
        }
        match read_output(&dir) {
            // Only the directory holding that profile's output: what the root's rules replace.
            Ok(m) if name.as_deref() == Some(m.manifest.profile.as_str()) => masters.push(m),
            Ok(_) | Err(ReportError::NotAnOutput { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(masters)
}

/// The masters of `paths`, in the order given: each an output directory, or an output root
/// standing for every output directory in it.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Master>, ReportError> {
    let mut masters = Vec::new();
    for p in paths {
        if p.join("manifest.json").exists() {
            masters.push(read_output(p)?);
            continue;
        }
        let found = if p.is_dir() {
            read_root(p)?
        } else {
            Vec::new()
        };
        if found.is_empty() {
            return Err(ReportError::NotAnOutput { path: p.clone() });
        }
        masters.extend(found);
    }
    Ok(masters)
}

/// A verify result (`cargo xtask verify --json`'s output, or any JSON document) from `path`.
pub fn read_verify(path: &Path) -> Result<serde_json::Value, ReportError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Verify {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Whether `path` is a page kubemint wrote (it begins with [`MARK`]).
pub fn is_ours(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; MARK.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == MARK.as_bytes())
}

/// The output row of a master's page.
pub fn output_row(bytes: &[u8]) -> Output {
    Output {
        kind: "report".into(),
        path: FILE.into(),
        size: bytes.len() as u64,
        sha256: crate::util::hash::sha256_hex(bytes),
    }
}
