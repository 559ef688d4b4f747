//! Attestations of one master's build, written after the packers and before manifest.json:
//! two SBOMs of the tree (SPDX 2.3 and CycloneDX 1.6, [`spdx`], [`cyclonedx`]), an in-toto
//! provenance statement with a SLSA v1 predicate ([`provenance`]), the same three attached to
//! the OCI layout as OCI 1.1 artefacts whose subject is the image manifest ([`attach`]), and
//! optional GPG signatures ([`sign`]).
//!
//! Every document is canonical JSON made only from the plan, the tree, the inputs and the
//! outputs: no clock (every time is the epoch), no random identifier (namespaces and serial
//! numbers are digests of the document's own content).
//!
//! Order, so nothing has to name its own digest: packers → SBOMs (the tree and the release) →
//! provenance (its subjects: every output written so far, the OCI archive included (it is the
//! image alone), the SBOMs, and the OCI image by its manifest digest, never the layout's
//! index.json, which lists the attestations) → artefacts attached to the layout → signature
//! of the provenance → manifest.json (lists all of these) → SHA256SUMS (covers all, manifest.json
//! included) → signature of SHA256SUMS.

pub mod attach;
pub mod cyclonedx;
pub mod provenance;
pub mod sign;
pub mod spdx;

use crate::front::plan::Plan;
use crate::inputs::lock::Release;
use crate::manifest::Input;
use crate::tree::{Content, Kind, Tree};
use sha1::Digest;
use std::collections::BTreeMap;
use std::io::{self, Read};

/// The (non-resolving, reserved `.invalid`) authority of kubemint's URIs: build type, builder,
/// SPDX namespaces. They name things; nothing is fetched from them.
pub const URI: &str = "https://kubemint.invalid";

/// File names of the documents, beside the outputs.
pub const SPDX_FILE: &str = "sbom.spdx.json";
pub const CYCLONEDX_FILE: &str = "sbom.cdx.json";
pub const PROVENANCE_FILE: &str = "provenance.intoto.json";

/// What the attestations describe.
pub struct Subject<'a> {
    pub plan: &'a Plan,
    /// The release as the lock (or the sample) gives it: name, file, sha512, download urls.
    pub release: &'a Release,
    /// The profile set, project-relative (`profiles`, `profiles/upgrade`).
    pub set: &'a str,
    pub tree: &'a Tree,
    /// What the build read, as manifest.json lists it.
    pub inputs: &'a [Input],
    /// How OCI layers are stored (`gzip` or `none`).
    pub layers: &'a str,
    pub image: &'a crate::pack::oci::Image,
}

/// One regular file of the tree with the digests the SBOMs give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// Absolute path in the tree: `/usr/bin/kube-apiserver`.
    pub path: String,
    pub size: u64,
    pub sha1: String,
    pub sha256: String,
    /// Copied from the release tarball (a binary) rather than rendered.
    pub from_release: bool,
}

/// SHA-1s already computed in this build, by the file's sha256: the release's binaries are
/// read once however many masters carry them.
pub type Sha1Cache = BTreeMap<String, String>;

/// Every regular file of the tree, in tree order, with its SHA-1 (read from its content) and
/// SHA-256 (known already).
pub fn file_digests(
    plan: &Plan,
    tree: &Tree,
    cache: &mut Sha1Cache,
) -> io::Result<Vec<FileDigest>> {
    let mut rows = Vec::new();
    for (path, e) in tree.iter() {
        let Kind::File {
            content,
            size,
            sha256,
        } = &e.kind
        else {
            continue;
        };
        let sha1 = match cache.get(sha256) {
            Some(s) => s.clone(),
            None => {
                let s = match content {
                    Content::Inline(bytes) => hex::encode(sha1::Sha1::digest(bytes)),
                    Content::Spooled(p) => {
                        let mut f = io::BufReader::with_capacity(1 << 20, std::fs::File::open(p)?);
                        let mut h = sha1::Sha1::new();
                        let mut buf = vec![0; 1 << 20];
                        loop {
                            let n = f.read(&mut buf)?;
                            if n == 0 {
                                break;
                            }
                            h.update(&buf[..n]);
                        }
                        hex::encode(h.finalize())
                    }
                };
                cache.insert(sha256.clone(), s.clone());
                s
            }
        };
        rows.push(FileDigest {
            path: path.to_owned(),
            size: *size,
            sha1,
            sha256: sha256.clone(),
            from_release: plan.binaries.iter().any(|b| b.path == path),
        });
    }
    Ok(rows)
}

/// The release's download location, or None for the sample (and a release pinned without one).
pub fn download_url<'a>(subject: &Subject<'a>) -> Option<&'a str> {
    if subject.plan.sample {
        None
    } else {
        subject.release.urls.first().map(String::as_str)
    }
}

/// A name-based (version 5, SHA-1) UUID of `name` in the URL namespace (RFC 9562).
pub fn uuid_v5(name: &str) -> String {
    const URL_NAMESPACE: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut h = sha1::Sha1::new();
    h.update(URL_NAMESPACE);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Canonical JSON bytes with a final newline, as manifest.json is written.
pub fn to_bytes(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = crate::util::canonical::to_vec(value).expect("a JSON value serializes");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_is_the_standard_name_based_uuid() {
        // What Python's uuid.uuid5(uuid.NAMESPACE_URL, "https://kubemint.invalid") gives.
        assert_eq!(
            uuid_v5("https://kubemint.invalid"),
            "17420e9f-b60c-50e6-9b12-d4a784b7b365"
        );
    }
}
