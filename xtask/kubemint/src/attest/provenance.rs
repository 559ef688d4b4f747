//! The provenance (`provenance.intoto.json`): an in-toto Statement v1 whose predicate is SLSA
//! provenance v1. `buildType` is kubemint's build-image; `externalParameters` what the user
//! chose (profile set, profile, release, epoch, options); `resolvedDependencies` every input
//! with its digests (manifest.json's `inputs`) and the generator; the builder's in-process
//! compressors under `internalParameters` (no external tool makes any output byte); the
//! subjects every output it can name without naming itself (see [`super`] for the order). No
//! start or finish time: the same build, the same bytes.

use super::{Subject, URI, download_url, to_bytes};
use serde_json::{Value, json};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// kubemint's build type: what `externalParameters` and `internalParameters` mean.
pub fn build_type() -> String {
    format!("{URI}/build-image/v1")
}

/// The document's bytes; `subjects` are (name, sha256) pairs, names relative to the output
/// directory.
pub fn document(subject: &Subject<'_>, subjects: &[(String, String)]) -> Vec<u8> {
    let plan = subject.plan;
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|(name, sha256)| json!({ "name": name, "digest": { "sha256": sha256 } }))
        .collect();
    let mut deps: Vec<Value> = subject
        .inputs
        .iter()
        .map(|i| {
            let mut digest = serde_json::Map::new();
            if let Some(d) = &i.sha256 {
                digest.insert("sha256".into(), json!(d));
            }
            if let Some(d) = &i.sha512 {
                digest.insert("sha512".into(), json!(d));
            }
            let mut dep = json!({
                "name": i.path,
                "digest": digest,
                "annotations": { "kind": i.kind },
            });
            if i.kind == "release" {
                dep["annotations"]["release"] = json!(subject.release.name);
                if let Some(url) = download_url(subject) {
                    dep["uri"] = json!(url);
                }
            }
            dep
        })
        .collect();
    let mut generator = json!({
        "name": crate::GENERATOR,
        "uri": format!("pkg:generic/{}@{}", crate::GENERATOR, crate::VERSION),
        "annotations": {
            "kind": "generator",
            "version": crate::VERSION,
            "revision": crate::REVISION,
        },
    });
    // The generator's source revision, as in-toto names a git commit digest.
    if crate::REVISION != "unknown" {
        generator["digest"] = json!({ "gitCommit": crate::REVISION });
    }
    deps.push(generator);
    let mut external = json!({
        "profileSet": subject.set,
        "profile": plan.profile,
        "image": plan.image,
        "release": plan.release.name,
        "epoch": plan.epoch.seconds(),
        "options": {
            "sample": plan.sample,
            "layerCompression": subject.layers,
        },
    });
    if let Some(base) = &plan.base {
        external["base"] = json!(base);
    }
    let doc = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type(),
                "externalParameters": external,
                "internalParameters": {
                    "payloadCompressor": crate::pack::deflate::tar::COMPRESSOR,
                    "chunkCompressor": crate::pack::deflate::COMPRESSOR,
                    "squashfs": crate::pack::squashfs::SQUASHFS,
                    "externalTools": [],
                    "note": "every output byte is made in-process; the number of threads is not a parameter (it changes no byte)",
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": format!("{URI}/builder/{}", crate::GENERATOR),
                    "version": { crate::GENERATOR: crate::VERSION, "revision": crate::REVISION },
                },
            },
        },
    });
    to_bytes(&doc)
}
