//! The attestations attached to the OCI layout as OCI 1.1 artefacts: for each document, an
//! image manifest with an `artifactType`, the empty config, the document as its one layer and
//! the image manifest as its `subject`. Each is stored in the layout's blobs and listed in the
//! layout's index.json after the image, without a `ref.name`, so `oci:DIR:<profile>` still
//! names the image alone, and the image's manifest and config (and their digests) do not change.
//! Readers find them by subject: the layout's index.json entries whose manifest's subject is the
//! image, or a registry's referrers API (or the spec's fallback tag `sha256-<hex>`).

use crate::pack::oci::{INDEX_MEDIA_TYPE, Image, MANIFEST_MEDIA_TYPE};
use crate::util::canonical;
use crate::util::epoch::Epoch;
use crate::util::hash::sha256_hex;
use serde_json::{Value, json};
use std::fs;
use std::io;
use std::path::Path;

/// The empty JSON config of an artefact (`{}`), as the image spec defines it.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY: &[u8] = b"{}";

/// Artefact types: the media types of the documents.
pub const SPDX_TYPE: &str = "application/spdx+json";
pub const CYCLONEDX_TYPE: &str = "application/vnd.cyclonedx+json";
pub const IN_TOTO_TYPE: &str = "application/vnd.in-toto+json";

/// One document to attach: its artefact (and layer) media type, file name and bytes.
pub struct Document<'a> {
    pub artifact_type: &'a str,
    pub title: &'a str,
    pub bytes: &'a [u8],
}

/// One attached artefact, as the layout's index.json lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Attached {
    pub artifact_type: String,
    pub digest: String,
    pub size: u64,
}

fn blob(layout: &Path, bytes: &[u8]) -> io::Result<String> {
    let hex = sha256_hex(bytes);
    fs::write(layout.join("blobs").join("sha256").join(&hex), bytes)?;
    Ok(format!("sha256:{hex}"))
}

/// The artefact manifest of `doc` about `image`; its bytes.
pub fn artifact_manifest(image: &Image, doc: &Document<'_>, epoch: Epoch) -> Vec<u8> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": doc.artifact_type,
        "config": { "mediaType": EMPTY_MEDIA_TYPE, "digest": format!("sha256:{}", sha256_hex(EMPTY)), "size": EMPTY.len() },
        "layers": [{
            "mediaType": doc.artifact_type,
            "digest": format!("sha256:{}", sha256_hex(doc.bytes)),
            "size": doc.bytes.len(),
            "annotations": { "org.opencontainers.image.title": doc.title },
        }],
        "subject": { "mediaType": MANIFEST_MEDIA_TYPE, "digest": image.manifest_digest, "size": image.manifest_size },
        "annotations": { "org.opencontainers.image.created": epoch.rfc3339() },
    });
    canonical::to_vec(&manifest).expect("a manifest serializes")
}

/// Writes each document and its artefact manifest into the layout `layout` and lists the
/// manifests in its index.json, after the image.
pub fn attach(
    layout: &Path,
    image: &Image,
    docs: &[Document<'_>],
    epoch: Epoch,
) -> io::Result<Vec<Attached>> {
    blob(layout, EMPTY)?;
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path)?)?;
    if index["mediaType"] != INDEX_MEDIA_TYPE {
        return Err(io::Error::other("index.json is not an OCI image index"));
    }
    let mut attached = Vec::new();
    for doc in docs {
        blob(layout, doc.bytes)?;
        let bytes = artifact_manifest(image, doc, epoch);
        let digest = blob(layout, &bytes)?;
        let entry = json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": doc.artifact_type,
            "digest": digest,
            "size": bytes.len(),
            "annotations": { "org.opencontainers.image.title": doc.title },
        });
        index["manifests"]
            .as_array_mut()
            .ok_or_else(|| io::Error::other("index.json has no manifests"))?
            .push(entry);
        attached.push(Attached {
            artifact_type: doc.artifact_type.to_owned(),
            digest,
            size: bytes.len() as u64,
        });
    }
    fs::write(
        &index_path,
        canonical::to_vec(&index).map_err(io::Error::other)?,
    )?;
    Ok(attached)
}
