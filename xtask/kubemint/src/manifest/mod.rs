//! manifest.json: what one master's image holds and what it was made from, as canonical JSON.
//! Auditors compare it with a live machine; the installer's `--verify` carries the same list.

use crate::front::plan::Plan;
use crate::tree::{Kind, Tree};
use crate::util::canonical;
use serde::Serialize;

/// Bumped when a field changes meaning or disappears; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub profile: String,
    pub image: String,
    /// True when built from the generated stand-in release: not a real master.
    pub sample: bool,
    pub release: Release,
    /// This build's version (`IMAGE_VERSION`, and the extension images' names): the release,
    /// the epoch and a digest of the plan (`front::plan::version_of`).
    pub version: String,
    /// Everything the build read: the release tarball, profile files, image definition, templates.
    pub inputs: Vec<Input>,
    pub epoch: crate::util::epoch::Epoch,
    pub generator: Generator,
    pub files: Vec<FileRow>,
    /// Directories the image owns whole: anything else found in them is drift.
    pub owns: Vec<String>,
    pub outputs: Vec<Output>,
    /// The OCI image's identity: manifest and config digests, layers and their diff_ids.
    pub oci: crate::pack::oci::Image,
    /// What the master needs delivered apart, never in the image: path, owner, group, mode,
    /// the components that read it, and what it is.
    pub secrets: Vec<crate::front::plan::Secret>,
    /// Each component's unit and flags, as the plan resolved them.
    pub components: Vec<crate::front::plan::ComponentFlags>,
    /// The GPT disk image's GUIDs and partitions (`disk/kubemint-<profile>.raw`).
    pub disk: crate::pack::disk::Ddi,
    /// The bootable disk's GUIDs and partitions (`boot/kubemint-<profile>.raw`), when the
    /// profile set names a base and it was in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<crate::pack::disk::Ddi>,
}

/// The release tarball a build read.
#[derive(Clone, Debug, Serialize)]
pub struct Release {
    pub name: String,
    pub file: String,
    pub sha512: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Input {
    /// `release`, `profile`, `image` or `template`.
    pub kind: String,
    /// Project-relative path, or the release's file name.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha512: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Generator {
    pub name: String,
    pub version: String,
    pub compressor: String,
    pub squashfs: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FileRow {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Octal permission bits, four digits: "0755".
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One artefact next to manifest.json. Kinds so far: `payload`, `installer`, `oci-layout`
/// (path `oci`, size of all its files, sha256 of its index.json), `oci-archive`, `sysext`,
/// `confext`, `disk`, `bootable`, `report` (`report.html`, this master's audit page, made
/// from this manifest less its own row: see `crate::report`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Output {
    pub kind: String,
    /// File name inside the output directory.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The `files` rows of a tree, in tree order.
pub fn file_rows(tree: &Tree) -> Vec<FileRow> {
    tree.iter()
        .map(|(path, e)| {
            let (size, sha256, target) = match &e.kind {
                Kind::Dir => (None, None, None),
                Kind::File { size, sha256, .. } => (Some(*size), Some(sha256.clone()), None),
                Kind::Symlink { target } => (None, None, Some(target.clone())),
            };
            FileRow {
                path: path.to_owned(),
                kind: e.type_name().to_owned(),
                mode: format!("{:04o}", e.mode),
                uid: e.uid,
                gid: e.gid,
                size,
                sha256,
                target,
            }
        })
        .collect()
}

impl Manifest {
    pub fn new(
        plan: &Plan,
        release: Release,
        inputs: Vec<Input>,
        tree: &Tree,
        outputs: Vec<Output>,
        oci: crate::pack::oci::Image,
        disk: crate::pack::disk::Ddi,
    ) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            profile: plan.profile.clone(),
            image: plan.image.clone(),
            sample: plan.sample,
            release,
            version: plan.version.clone(),
            inputs,
            epoch: plan.epoch,
            generator: Generator {
                name: crate::GENERATOR.to_owned(),
                version: crate::VERSION.to_owned(),
                compressor: crate::pack::deflate::tar::COMPRESSOR.to_owned(),
                squashfs: crate::pack::squashfs::SQUASHFS.to_owned(),
            },
            files: file_rows(tree),
            owns: plan.owns.clone(),
            outputs,
            oci,
            secrets: plan.secrets.clone(),
            components: plan.components.clone(),
            disk,
            boot: None,
        }
    }

    /// Canonical JSON bytes, with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = canonical::to_vec(self).expect("a manifest always serializes");
        bytes.push(b'\n');
        bytes
    }
}
