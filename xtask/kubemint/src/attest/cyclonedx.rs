//! The CycloneDX 1.6 JSON SBOM (`sbom.cdx.json`): the master's image as the BOM's subject, every
//! regular file of the tree as a `file` component with its SHA-256 (and SHA-1), the release
//! tarball as a component with its SHA-512 and distribution URL. The serial number is a
//! name-based UUID of the document's content; the timestamp is the epoch.

use super::{FileDigest, Subject, URI, download_url, to_bytes, uuid_v5};
use serde_json::{Value, json};

/// The document's bytes.
pub fn document(subject: &Subject<'_>, files: &[FileDigest]) -> Vec<u8> {
    let plan = subject.plan;
    let release = subject.release;
    let mut release_component = json!({
        "type": "application",
        "bom-ref": "release",
        "name": "kubernetes-server",
        "version": release.name,
        "description": format!("{} (the release tarball the binaries are copied from)", release.file),
        "hashes": [{ "alg": "SHA-512", "content": release.sha512 }],
    });
    if let Some(url) = download_url(subject) {
        release_component["externalReferences"] = json!([{ "type": "distribution", "url": url }]);
        release_component["supplier"] = json!({ "name": "Kubernetes" });
    }
    if plan.sample {
        release_component["description"] = json!(format!(
            "{} (SAMPLE: the stand-in release kubemint generates; not a real Kubernetes release)",
            release.file
        ));
    }
    let mut components = vec![release_component];
    components.extend(files.iter().map(|f| -> Value {
        json!({
            "type": "file",
            "bom-ref": format!("file:{}", f.path),
            "name": f.path,
            "properties": [{ "name": "kubemint:origin", "value": if f.from_release { "release" } else { "profile" } }],
            "hashes": [
                { "alg": "SHA-1", "content": f.sha1 },
                { "alg": "SHA-256", "content": f.sha256 },
            ],
        })
    }));
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "",
        "version": 1,
        "metadata": {
            "timestamp": plan.epoch.rfc3339(),
            "tools": { "components": [{ "type": "application", "name": crate::GENERATOR, "version": crate::VERSION }] },
            "component": {
                "type": "operating-system",
                "bom-ref": "image",
                "name": format!("kubemint-{}", plan.profile),
                "version": plan.release.name,
                "description": format!("the files of master {} built from image {} on Kubernetes {}", plan.profile, plan.image, plan.release.name),
            },
        },
        "components": components,
        "dependencies": [
            { "ref": "image", "dependsOn": ["release"] },
            { "ref": "release", "dependsOn": [] },
        ],
    });
    let digest = crate::util::hash::sha256_hex(&to_bytes(&doc));
    doc["serialNumber"] = json!(format!(
        "urn:uuid:{}",
        uuid_v5(&format!("{URI}/cyclonedx/{}/{digest}", plan.profile))
    ));
    to_bytes(&doc)
}
