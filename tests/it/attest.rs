//! SBOMs, provenance, their OCI artefacts and signatures (issue 14): each validated by the tool
//! the issue names (spdx-tools, cyclonedx-python-lib, in-toto-attestation and the SLSA v1
//! schema in tests/attest/), the same bytes on every build whatever the thread count, attached
//! to the layout without changing the image, carried to a registry and found again by the
//! image's digest, and signed so that a changed byte fails verification.

use crate::oci::Registry;
use crate::support::{Project, manifest, repo, sh_ok as ok, text};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const DOCS: [&str; 3] = ["sbom.spdx.json", "sbom.cdx.json", "provenance.intoto.json"];

/// The Python with the validators: `cargo xtask test` makes it and says where.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBEMINT_TEST_PYTHON") {
        return p.into();
    }
    let p = repo().join("target/test-python/bin/python");
    assert!(
        p.is_file(),
        "the attestation validators are not installed: run `cargo xtask test` once (it makes {})",
        p.display()
    );
    p
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256(path: &Path) -> String {
    ok(&format!("sha256sum '{}'", path.display()))[..64].to_owned()
}

#[test]
fn sboms_and_provenance_validate_and_are_the_same_bytes_every_build() {
    let p = Project::new();
    let a = p.path().join("a");
    let b = p.path().join("b");
    p.ok(&[
        "build-image",
        "master-1",
        "--sample",
        "--out",
        a.to_str().unwrap(),
    ]);
    p.ok(&[
        "build-image",
        "master-1",
        "--sample",
        "--threads",
        "1",
        "--out",
        b.to_str().unwrap(),
    ]);
    let (a, b) = (a.join("sample/master-1"), b.join("sample/master-1"));
    for doc in DOCS {
        assert_eq!(
            std::fs::read(a.join(doc)).unwrap(),
            std::fs::read(b.join(doc)).unwrap(),
            "{doc} differs between two builds"
        );
    }
    assert_eq!(
        std::fs::read(a.join("oci/index.json")).unwrap(),
        std::fs::read(b.join("oci/index.json")).unwrap()
    );

    // The validators the issue names.
    let out = std::process::Command::new(python())
        .arg(repo().join("tests/attest/validate.py"))
        .arg(&a)
        .arg(repo().join("tests/attest/slsa-provenance-v1.schema.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "validation failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // manifest.json lists them; SHA256SUMS covers them.
    let m = manifest(&a);
    let rows = m["outputs"].as_array().unwrap();
    for (kind, path) in [
        ("sbom-spdx", "sbom.spdx.json"),
        ("sbom-cyclonedx", "sbom.cdx.json"),
        ("provenance", "provenance.intoto.json"),
    ] {
        let row = rows.iter().find(|r| r["kind"] == kind).unwrap();
        assert_eq!(row["path"], path);
        assert_eq!(row["sha256"], sha256(&a.join(path)));
    }
    ok(&format!(
        "cd '{}' && sha256sum -c --quiet SHA256SUMS",
        a.display()
    ));
    let sums = std::fs::read_to_string(a.join("SHA256SUMS")).unwrap();
    for doc in DOCS.iter().chain(&["manifest.json"]) {
        assert!(
            sums.contains(&format!("  {doc}\n")),
            "{doc} not in SHA256SUMS"
        );
    }

    // SPDX: every regular file of the tree, SHA1 and SHA256; the release with its sha512.
    let spdx = read_json(&a.join("sbom.spdx.json"));
    let files: Vec<&Value> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["type"] == "file")
        .collect();
    let spdx_files = spdx["files"].as_array().unwrap();
    assert_eq!(spdx_files.len(), files.len());
    for (f, s) in files.iter().zip(spdx_files) {
        assert_eq!(s["fileName"], format!(".{}", f["path"].as_str().unwrap()));
        assert_eq!(
            s["checksums"][1],
            json!({ "algorithm": "SHA256", "checksumValue": f["sha256"] })
        );
        assert_eq!(s["checksums"][0]["algorithm"], "SHA1");
    }
    let release = &spdx["packages"][1];
    assert_eq!(
        release["checksums"][0]["checksumValue"],
        m["release"]["sha512"]
    );
    assert_eq!(release["downloadLocation"], "NOASSERTION");
    assert_eq!(spdx["creationInfo"]["created"], rfc3339(&m));

    // CycloneDX: file components with SHA-256; the release's SHA-512.
    let cdx = read_json(&a.join("sbom.cdx.json"));
    assert_eq!(cdx["metadata"]["timestamp"], rfc3339(&m));
    let comps = cdx["components"].as_array().unwrap();
    assert_eq!(
        comps[0]["hashes"][0],
        json!({ "alg": "SHA-512", "content": m["release"]["sha512"] })
    );
    assert_eq!(
        comps.iter().filter(|c| c["type"] == "file").count(),
        files.len()
    );

    // Provenance: every subject is a file here with that digest; the image manifest among them;
    // every input of manifest.json a resolved dependency.
    let prov = read_json(&a.join("provenance.intoto.json"));
    let subjects = prov["subject"].as_array().unwrap();
    for s in subjects {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["digest"]["sha256"], sha256(&a.join(name)), "{name}");
    }
    let image = m["oci"]["manifest_digest"].as_str().unwrap();
    let image_blob = format!("oci/blobs/sha256/{}", &image[7..]);
    assert!(subjects.iter().any(|s| s["name"] == image_blob));
    for kind in [
        "payload",
        "installer",
        "oci-archive",
        "sysext",
        "confext",
        "disk",
        "sbom-spdx",
        "sbom-cyclonedx",
    ] {
        let row = rows.iter().find(|r| r["kind"] == kind).unwrap();
        assert!(
            subjects.iter().any(|s| s["name"] == row["path"]),
            "{kind} not a subject"
        );
    }
    let deps = prov["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    for input in m["inputs"].as_array().unwrap() {
        assert!(
            deps.iter().any(|d| d["name"] == input["path"]),
            "{input} not a dependency"
        );
    }
    // The generator, by version and by the git commit it was built from (this checkout's).
    let generator = deps
        .iter()
        .find(|d| d["annotations"]["kind"] == "generator")
        .expect("the generator is a dependency");
    let head = crate::support::sh(&format!(
        "git -C '{}' rev-parse HEAD 2>/dev/null",
        repo().display()
    ));
    if head.status.success() {
        let head = text(&head.stdout).trim().to_owned();
        assert_eq!(
            generator["digest"]["gitCommit"],
            head.as_str(),
            "{generator}"
        );
    }
    assert!(
        prov["predicate"]["runDetails"].get("metadata").is_none(),
        "no start or finish time"
    );
}

fn rfc3339(m: &Value) -> String {
    let epoch = m["epoch"].as_u64().unwrap();
    ok(&format!("date -u -d @{epoch} +%Y-%m-%dT%H:%M:%SZ"))
        .trim()
        .to_owned()
}

/// The artefacts of a layout: index.json's entries after the image, each manifest read.
fn artefacts(dir: &Path) -> Vec<(Value, Value)> {
    let index = read_json(&dir.join("oci/index.json"));
    index["manifests"].as_array().unwrap()[1..]
        .iter()
        .map(|d| {
            let m = read_json(
                &dir.join("oci/blobs/sha256")
                    .join(&d["digest"].as_str().unwrap()[7..]),
            );
            (d.clone(), m)
        })
        .collect()
}

#[test]
fn attached_to_the_layout_without_changing_the_image() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = manifest(&dir);
    let index = read_json(&dir.join("oci/index.json"));
    let first = &index["manifests"][0];
    assert_eq!(first["digest"], m["oci"]["manifest_digest"]);
    assert_eq!(
        first["annotations"]["org.opencontainers.image.ref.name"],
        "master-1"
    );
    let found = artefacts(&dir);
    let types: Vec<&str> = found
        .iter()
        .map(|(d, _)| d["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.cyclonedx+json",
            "application/vnd.in-toto+json"
        ]
    );
    for ((d, am), doc) in found.iter().zip(DOCS) {
        assert!(
            d["annotations"]
                .get("org.opencontainers.image.ref.name")
                .is_none()
        );
        assert_eq!(am["subject"]["digest"], m["oci"]["manifest_digest"]);
        assert_eq!(am["subject"]["size"], m["oci"]["manifest_size"]);
        assert_eq!(am["artifactType"], d["artifactType"]);
        assert_eq!(
            am["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        let layer = &am["layers"][0];
        assert_eq!(
            layer["digest"],
            format!("sha256:{}", sha256(&dir.join(doc)))
        );
    }
    // The image, as skopeo and umoci see it by its name, is the one manifest.json records.
    let inspect: Value = serde_json::from_str(&ok(&format!(
        "skopeo inspect 'oci:{}/oci:master-1'",
        dir.display()
    )))
    .unwrap();
    assert_eq!(inspect["Digest"], m["oci"]["manifest_digest"]);
    // The archive is the image alone (podman load takes it).
    let listed = ok(&format!("tar -tf '{}/master-1.oci.tar'", dir.display()));
    for (d, _) in &found {
        assert!(!listed.contains(&d["digest"].as_str().unwrap()[7..]));
    }
}

/// `curl` with `args`, failing on an HTTP error; its stdout.
fn curl(args: &str) -> String {
    ok(&format!("curl -fsS {args}"))
}

#[test]
fn push_copies_the_image_and_its_artefacts_with_skopeo_and_back_found_by_the_image_digest() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = manifest(&dir);
    let image = m["oci"]["manifest_digest"].as_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start(work.path());
    let r = &registry.addr;
    let repo = "kubemint/master-1";
    // One command: skopeo copies the image, then its artefacts under the fallback tag.
    let out = p.ok(&[
        "push",
        dir.to_str().unwrap(),
        &format!("docker://{r}/{repo}"),
        "--tag",
        "v1.14.2",
        "--no-tls-verify",
        "--json",
    ]);
    let pushed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["digest"], image);
    assert_eq!(pushed["artefacts"].as_array().unwrap().len(), 3);
    // The image is unchanged.
    let inspect: Value = serde_json::from_str(&ok(&format!(
        "skopeo inspect --tls-verify=false docker://{r}/{repo}:v1.14.2"
    )))
    .unwrap();
    assert_eq!(inspect["Digest"], image);
    // Found from the image's digest alone: the referrers API where the registry has it, else
    // the spec's fallback tag; each with the very bytes written beside the outputs.
    let accept = "-H 'Accept: application/vnd.oci.image.index.v1+json'";
    let status = ok(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' http://{r}/v2/{repo}/referrers/{image}"
    ));
    let listing: Value = serde_json::from_str(&if status.trim() == "200" {
        curl(&format!("{accept} http://{r}/v2/{repo}/referrers/{image}"))
    } else {
        let fallback = format!("sha256-{}", &image[7..]);
        curl(&format!(
            "{accept} http://{r}/v2/{repo}/manifests/{fallback}"
        ))
    })
    .unwrap();
    let listed = listing["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (d, doc) in listed.iter().zip(DOCS) {
        let am: Value = serde_json::from_str(&curl(&format!(
            "-H 'Accept: application/vnd.oci.image.manifest.v1+json' http://{r}/v2/{repo}/manifests/{}",
            d["digest"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(am["subject"]["digest"], image);
        let blob = work.path().join(format!("{doc}.pulled"));
        curl(&format!(
            "-o '{}' http://{r}/v2/{repo}/blobs/{}",
            blob.display(),
            am["layers"][0]["digest"].as_str().unwrap()
        ));
        assert_eq!(
            std::fs::read(&blob).unwrap(),
            std::fs::read(dir.join(doc)).unwrap(),
            "{doc}"
        );
    }
    // And back, by skopeo alone: the image with its digest, the artefacts with theirs.
    let back = work.path().join("back");
    let referrers = pushed["referrers"].as_str().unwrap();
    let tag = referrers.rsplit(':').next().unwrap();
    ok(&format!(
        "skopeo copy --quiet --src-tls-verify=false docker://{r}/{repo}:v1.14.2 'oci:{b}:master-1' && \
         skopeo copy --quiet --all --src-tls-verify=false '{referrers}' 'oci:{b}:{tag}'",
        b = back.display()
    ));
    let inspect: Value = serde_json::from_str(&ok(&format!(
        "skopeo inspect 'oci:{}:master-1'",
        back.display()
    )))
    .unwrap();
    assert_eq!(inspect["Digest"], image);
    for (a, doc) in pushed["artefacts"].as_array().unwrap().iter().zip(DOCS) {
        let hex = &a["digest"].as_str().unwrap()[7..];
        let am = read_json(&back.join("blobs/sha256").join(hex));
        assert_eq!(am["subject"]["digest"], image);
        let layer = &am["layers"][0]["digest"].as_str().unwrap()[7..];
        assert_eq!(
            std::fs::read(back.join("blobs/sha256").join(layer)).unwrap(),
            std::fs::read(dir.join(doc)).unwrap(),
            "{doc}"
        );
    }
    // A tag in the destination is refused before anything is pushed.
    let said = p.fails(&[
        "push",
        dir.to_str().unwrap(),
        &format!("docker://{r}/{repo}:v2"),
        "--no-tls-verify",
    ]);
    assert!(said.contains("without a tag"), "{said}");
}

/// An Ed25519 signing key without a passphrase, made at a time before the sample's epoch:
/// (armored secret key, armored public key).
pub(crate) fn test_key(dir: &Path) -> (PathBuf, PathBuf) {
    let home = dir.join("gnupg");
    std::fs::create_dir(&home).unwrap();
    let (secret, public) = (dir.join("secret.asc"), dir.join("public.asc"));
    ok(&format!(
        "chmod 700 '{h}' && export GNUPGHOME='{h}' && \
         gpg -q --batch --faked-system-time 1546300800! --passphrase '' \
           --quick-gen-key 'kubemint test <test@kubemint.invalid>' ed25519 sign never 2>/dev/null && \
         gpg -q --batch --armor --export-secret-keys > '{s}' && gpg -q --batch --armor --export > '{p}'; \
         rc=$?; gpgconf --kill all; exit $rc",
        h = home.display(),
        s = secret.display(),
        p = public.display()
    ));
    (secret, public)
}

#[test]
fn a_signed_build_verifies_and_a_changed_byte_does_not() {
    use kubemint::attest::sign::verify;
    let p = Project::new();
    let keys = tempfile::tempdir().unwrap();
    let (secret, public) = test_key(keys.path());
    let a = p.path().join("a");
    let b = p.path().join("b");
    let mut outputs = Vec::new();
    for out in [&a, &b] {
        let o = p.ok(&[
            "build-image",
            "master-1",
            "--sample",
            "--sign-key",
            secret.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        outputs.push(format!("{}{}", text(&o.stdout), text(&o.stderr)));
    }
    let key_text = std::fs::read_to_string(&secret).unwrap();
    let key_line = key_text.lines().nth(3).unwrap();
    for o in &outputs {
        assert!(
            !o.contains("PRIVATE KEY") && !o.contains(key_line),
            "key material printed:\n{o}"
        );
    }
    let (a, b) = (a.join("sample/master-1"), b.join("sample/master-1"));
    let scratch = keys.path().join("scratch");
    for file in [
        "SHA256SUMS",
        "provenance.intoto.json",
        "extensions/SHA256SUMS",
        "confexts/SHA256SUMS",
    ] {
        let sig = a.join(format!("{file}.gpg"));
        verify(&a.join(file), &sig, &public, &scratch).unwrap_or_else(|e| panic!("{e}"));
        // gpgv accepts the secret key file too (its public part).
        verify(&a.join(file), &sig, &secret, &scratch).unwrap();
        // Ed25519 at a fixed time: the same signature every build.
        assert_eq!(
            std::fs::read(&sig).unwrap(),
            std::fs::read(b.join(format!("{file}.gpg"))).unwrap()
        );
        // A changed byte fails.
        let changed = keys.path().join(file.replace('/', "-"));
        let mut bytes = std::fs::read(a.join(file)).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&changed, bytes).unwrap();
        let err = verify(&changed, &sig, &public, &scratch).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
    }
    // The provenance's signature is an output manifest.json lists; SHA256SUMS covers it.
    let m = manifest(&a);
    let signed: Vec<&str> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "signature")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        signed,
        [
            "provenance.intoto.json.gpg",
            "extensions/SHA256SUMS.gpg",
            "confexts/SHA256SUMS.gpg"
        ]
    );
    ok(&format!(
        "cd '{}' && sha256sum -c --quiet SHA256SUMS",
        a.display()
    ));
    // gpgv itself, as systemd-sysupdate's verification does, with a keyring from the public key.
    let keyring = keys.path().join("keyring.gpg");
    ok(&format!(
        "gpg -q --batch --dearmor < '{}' > '{}' && gpgv --keyring '{}' '{d}/SHA256SUMS.gpg' '{d}/SHA256SUMS'",
        public.display(),
        keyring.display(),
        keyring.display(),
        d = a.display()
    ));
    // Unsigned and signed builds differ only by the signatures: an unsigned rebuild is not
    // "up to date" with a signed output.
    let again = p.ok(&[
        "build-image",
        "master-1",
        "--sample",
        "--out",
        p.path().join("a").to_str().unwrap(),
    ]);
    assert!(!text(&again.stdout).contains("up to date"));
    assert!(!a.join("SHA256SUMS.gpg").exists());
}
