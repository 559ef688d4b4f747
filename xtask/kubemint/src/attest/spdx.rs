//! The SPDX 2.3 JSON SBOM (`sbom.spdx.json`): the master's image as a package containing every
//! regular file of the tree (SHA1, as SPDX requires, and SHA256), the release tarball as a
//! package with its SHA512 and download location, and the relationships between them. The
//! namespace is derived from the document's content; `created` is the epoch.

use super::{FileDigest, Subject, URI, download_url, to_bytes};
use serde_json::{Value, json};
use sha1::Digest;
use std::collections::BTreeSet;

const IMAGE: &str = "SPDXRef-Package-image";
const RELEASE: &str = "SPDXRef-Package-release";

/// An SPDX identifier for a tree path: `SPDXRef-File-usr-bin-kube-apiserver`, made unique
/// within the document by a counter when two paths spell the same.
fn file_id(path: &str, taken: &mut BTreeSet<String>) -> String {
    let clean: String = path
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut id = format!("SPDXRef-File-{clean}");
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("SPDXRef-File-{clean}-{n}");
        n += 1;
    }
    taken.insert(id.clone());
    id
}

/// The document's bytes.
pub fn document(subject: &Subject<'_>, files: &[FileDigest]) -> Vec<u8> {
    let plan = subject.plan;
    let release = subject.release;
    let noassert = "NOASSERTION";
    let mut taken = BTreeSet::new();
    let ids: Vec<String> = files.iter().map(|f| file_id(&f.path, &mut taken)).collect();
    let file_objs: Vec<Value> = files
        .iter()
        .zip(&ids)
        .map(|(f, id)| {
            json!({
                "SPDXID": id,
                "fileName": format!(".{}", f.path),
                "checksums": [
                    { "algorithm": "SHA1", "checksumValue": f.sha1 },
                    { "algorithm": "SHA256", "checksumValue": f.sha256 },
                ],
                "fileTypes": [if f.from_release { "BINARY" } else { "TEXT" }],
                "licenseConcluded": noassert,
                "copyrightText": noassert,
            })
        })
        .collect();
    // SPDX 2.3 §7.9: SHA1 of the sorted files' SHA1s, concatenated.
    let mut sha1s: Vec<&str> = files.iter().map(|f| f.sha1.as_str()).collect();
    sha1s.sort_unstable();
    let verification = hex::encode(sha1::Sha1::digest(sha1s.concat().as_bytes()));
    let name = format!("kubemint-{}", plan.profile);
    let mut release_pkg = json!({
        "SPDXID": RELEASE,
        "name": "kubernetes-server",
        "versionInfo": release.name,
        "packageFileName": release.file,
        "downloadLocation": download_url(subject).unwrap_or(noassert),
        "filesAnalyzed": false,
        "checksums": [{ "algorithm": "SHA512", "checksumValue": release.sha512 }],
        "licenseConcluded": noassert,
        "licenseDeclared": noassert,
        "copyrightText": noassert,
        "supplier": if plan.sample { noassert } else { "Organization: Kubernetes" },
        "primaryPackagePurpose": "ARCHIVE",
    });
    if plan.sample {
        release_pkg["comment"] =
            json!("SAMPLE: the stand-in release kubemint generates; not a real Kubernetes release");
    }
    let mut relationships = vec![
        json!({ "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": IMAGE }),
        json!({ "spdxElementId": IMAGE, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": RELEASE }),
    ];
    for (f, id) in files.iter().zip(&ids) {
        relationships.push(json!({ "spdxElementId": IMAGE, "relationshipType": "CONTAINS", "relatedSpdxElement": id }));
        if f.from_release {
            relationships.push(json!({ "spdxElementId": id, "relationshipType": "GENERATED_FROM", "relatedSpdxElement": RELEASE }));
        }
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": "",
        "creationInfo": {
            "created": plan.epoch.rfc3339(),
            "creators": [format!("Tool: {}-{}", crate::GENERATOR, crate::VERSION)],
        },
        "packages": [
            {
                "SPDXID": IMAGE,
                "name": name,
                "versionInfo": plan.release.name,
                "downloadLocation": noassert,
                "filesAnalyzed": true,
                "packageVerificationCode": { "packageVerificationCodeValue": verification },
                "licenseConcluded": noassert,
                "licenseDeclared": noassert,
                "licenseInfoFromFiles": [noassert],
                "copyrightText": noassert,
                "supplier": "Organization: kubemint",
                "primaryPackagePurpose": "OPERATING-SYSTEM",
                "comment": format!("the files of master {} built from image {} on Kubernetes {}", plan.profile, plan.image, plan.release.name),
            },
            release_pkg,
        ],
        "files": file_objs,
        "relationships": relationships,
    });
    // The namespace: the digest of the document without it.
    let digest = crate::util::hash::sha256_hex(&to_bytes(&doc));
    doc["documentNamespace"] = json!(format!("{URI}/spdx/{}/{digest}", plan.profile));
    to_bytes(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_valid_spdx_ids_and_unique() {
        let mut taken = BTreeSet::new();
        let a = file_id("/usr/lib/kubemint/a_b", &mut taken);
        let b = file_id("/usr/lib/kubemint/a-b", &mut taken);
        let c = file_id("/usr/lib/kubemint/a+b", &mut taken);
        assert_eq!(a, "SPDXRef-File-usr-lib-kubemint-a-b");
        assert_eq!(b, "SPDXRef-File-usr-lib-kubemint-a-b-2");
        assert_eq!(c, "SPDXRef-File-usr-lib-kubemint-a-b-3");
        for id in [&a, &b, &c] {
            let rest = id.strip_prefix("SPDXRef-").unwrap();
            assert!(
                rest.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
            );
        }
    }
}
