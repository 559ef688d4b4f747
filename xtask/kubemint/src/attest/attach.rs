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

/// The spec's fallback tag for the referrers of the manifest `digest` (`sha256:<hex>`):
/// `sha256-<hex>`, which a registry without the referrers API serves in its place.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The referrers of `subject` in the layout `layout`: every manifest its index.json lists
/// whose `subject` is that digest, as the index lists it (media type, artefact type, digest,
/// size, annotations), in index order, each once. An image index listed there (the fallback
/// tag's, as `cargo xtask push` or `skopeo copy --all` leaves it in a layout) is looked into
/// one level down. A listed blob that is missing is an error: the layout is not whole.
pub fn referrers(layout: &Path, subject: &str) -> io::Result<Vec<Value>> {
    let read = |digest: &Value| -> io::Result<Option<Value>> {
        let Some(hex) = digest.as_str().and_then(|s| s.strip_prefix("sha256:")) else {
            return Ok(None);
        };
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let path = layout.join("blobs").join("sha256").join(hex);
        let bytes = fs::read(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Some(serde_json::from_slice(&bytes)?))
    };
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let mut listed = Vec::new();
    for d in index["manifests"].as_array().into_iter().flatten() {
        if d["mediaType"] == INDEX_MEDIA_TYPE {
            if let Some(nested) = read(&d["digest"])? {
                listed.extend(
                    nested["manifests"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        } else {
            listed.push(d.clone());
        }
    }
    let mut found: Vec<Value> = Vec::new();
    for d in listed {
        if d["mediaType"] != MANIFEST_MEDIA_TYPE || found.iter().any(|f| f["digest"] == d["digest"])
        {
            continue;
        }
        if read(&d["digest"])?.is_some_and(|m| m["subject"]["digest"] == subject) {
            found.push(d);
        }
    }
    Ok(found)
}

/// The image index a registry without the referrers API keeps under the fallback tag: the
/// referrers' descriptors, canonical JSON (so the same referrers give the same bytes).
pub fn referrers_index(referrers: &[Value]) -> Vec<u8> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": referrers,
    });
    canonical::to_vec(&index).expect("an index serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referrers_of_an_image_are_its_attached_artefacts_in_index_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path();
        fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        let image_bytes = br#"{"schemaVersion":2}"#;
        let image_digest = blob(layout, image_bytes).unwrap();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [{ "mediaType": MANIFEST_MEDIA_TYPE, "digest": image_digest, "size": image_bytes.len() }],
        });
        fs::write(
            layout.join("index.json"),
            canonical::to_vec(&index).unwrap(),
        )
        .unwrap();
        let image = Image {
            manifest_digest: image_digest.clone(),
            manifest_size: image_bytes.len() as u64,
            config_digest: String::new(),
            diff_ids: Vec::new(),
            layers: Vec::new(),
        };
        let docs = [
            Document {
                artifact_type: SPDX_TYPE,
                title: "sbom.spdx.json",
                bytes: b"{\"spdx\":1}",
            },
            Document {
                artifact_type: IN_TOTO_TYPE,
                title: "provenance.intoto.json",
                bytes: b"{\"in-toto\":1}",
            },
        ];
        let attached = attach(layout, &image, &docs, Epoch::new(1).unwrap()).unwrap();
        let found = referrers(layout, &image_digest).unwrap();
        let digests: Vec<&str> = found
            .iter()
            .map(|d| d["digest"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = attached.iter().map(|a| a.digest.as_str()).collect();
        assert_eq!(digests, want);
        assert_eq!(found[1]["artifactType"], IN_TOTO_TYPE);
        // Nothing refers to an artefact; the image is not its own referrer.
        assert!(referrers(layout, &attached[0].digest).unwrap().is_empty());
        // The fallback tag and its index: the same referrers, the same bytes.
        assert_eq!(
            fallback_tag(&image_digest),
            format!("sha256-{}", &image_digest[7..])
        );
        let bytes = referrers_index(&found);
        assert_eq!(
            bytes,
            referrers_index(&referrers(layout, &image_digest).unwrap())
        );
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["mediaType"], INDEX_MEDIA_TYPE);
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        // A layout holding them only through the fallback tag's index (as push leaves an
        // oci: destination): found one level down, the same list.
        let nested = blob(layout, &bytes).unwrap();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [
                { "mediaType": MANIFEST_MEDIA_TYPE, "digest": image_digest, "size": image_bytes.len() },
                { "mediaType": INDEX_MEDIA_TYPE, "digest": nested, "size": bytes.len() },
            ],
        });
        fs::write(
            layout.join("index.json"),
            canonical::to_vec(&index).unwrap(),
        )
        .unwrap();
        assert_eq!(referrers(layout, &image_digest).unwrap(), found);
    }
}
