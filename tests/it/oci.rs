//! The OCI image, judged by skopeo, umoci, podman and a registry on loopback: accepted, equal to
//! manifest.json and to what the installer lays down, reproducible, and sharing the release
//! layer between masters.

use crate::support::{
    Project, as_manifest_files, manifest, manifest_files, require_tool, sh, sh_ok as ok, snapshot,
    text,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn oci(m: &serde_json::Value) -> &serde_json::Value {
    &m["oci"]
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("oci/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn skopeo_accepts_the_layout_and_refuses_a_corrupt_blob() {
    require_tool("skopeo");
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = manifest(&dir);
    let inspect = ok(&format!(
        "skopeo inspect 'oci:{}/oci:master-1'",
        dir.display()
    ));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], oci(&m)["manifest_digest"]);
    assert_eq!(inspect["Created"], "2019-05-16T10:13:20Z");
    assert_eq!(
        inspect["Labels"]["org.opencontainers.image.version"],
        "v1.14.2"
    );
    let copy = tempfile::tempdir().unwrap();
    // skopeo copy re-hashes every blob.
    ok(&format!(
        "skopeo copy 'oci:{}/oci:master-1' 'oci:{}/copy:master-1'",
        dir.display(),
        copy.path().display()
    ));
    let raw = ok(&format!(
        "skopeo inspect --raw 'oci:{}/copy:master-1'",
        copy.path().display()
    ));
    assert_eq!(
        format!("sha256:{}", kubemint::hash::sha256_hex(raw.as_bytes())),
        oci(&m)["manifest_digest"].as_str().unwrap()
    );

    for (what, digest) in [
        ("config", oci(&m)["config_digest"].as_str().unwrap()),
        ("layer", oci(&m)["layers"][1]["digest"].as_str().unwrap()),
    ] {
        let broken = tempfile::tempdir().unwrap();
        ok(&format!(
            "cp -r '{}/oci' '{}/oci'",
            dir.display(),
            broken.path().display()
        ));
        let path = blob(broken.path(), digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        let out = sh(&format!(
            "skopeo copy 'oci:{0}/oci:master-1' 'oci:{0}/again:master-1'",
            broken.path().display()
        ));
        assert!(
            !out.status.success(),
            "skopeo copied a layout with a corrupt {what}"
        );
        assert!(
            text(&out.stderr).contains("did not match")
                || text(&out.stderr).contains("does not match"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn umoci_unpack_equals_manifest_and_installer() {
    require_tool("umoci");
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display();
    ok(&format!(
        "umoci unpack --image '{}/oci:master-1' '{w}/bundle'",
        dir.display()
    ));
    let unpacked = snapshot(&work.path().join("bundle/rootfs"));
    assert_eq!(
        as_manifest_files(&unpacked),
        manifest_files(&manifest(&dir))
    );
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    ok(&format!(
        "sh '{}/master-1-install.sh' --root '{}'",
        dir.display(),
        root.display()
    ));
    let installed = crate::support::installed(&root);
    let owners = |s: &crate::support::Snapshot| {
        s.iter()
            .map(|(p, e)| (p.clone(), e.2, e.3))
            .collect::<Vec<_>>()
    };
    assert_eq!(as_manifest_files(&unpacked), as_manifest_files(&installed));
    assert_eq!(owners(&unpacked), owners(&installed));
}

#[test]
fn podman_loads_the_archive_with_the_same_config_digest() {
    require_tool("podman");
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let store = tempfile::tempdir().unwrap();
    let s = store.path().display();
    let podman = format!(
        "podman --root '{s}/root' --runroot '{s}/run' --storage-driver vfs --events-backend none"
    );
    ok(&format!(
        "{podman} load -i '{}/master-1.oci.tar'",
        dir.display()
    ));
    let id = ok(&format!(
        "{podman} images --no-trunc --format '{{{{.ID}}}}'"
    ));
    assert_eq!(
        id.trim(),
        oci(&manifest(&dir))["config_digest"].as_str().unwrap()
    );
}

#[test]
fn masters_share_the_release_layer_and_builds_repeat() {
    let p = Project::new();
    p.ok(&["build-image", "--all", "--sample"]);
    let m = |name: &str| manifest(&p.path().join("target/images/sample").join(name));
    let (m1, m2) = (m("master-1"), m("master-2"));
    assert_eq!(oci(&m1)["layers"][0]["role"], "release");
    assert_eq!(
        oci(&m1)["layers"][0]["digest"],
        oci(&m2)["layers"][0]["digest"]
    );
    assert_ne!(
        oci(&m1)["layers"][1]["digest"],
        oci(&m2)["layers"][1]["digest"]
    );
    assert_eq!(oci(&m1)["diff_ids"].as_array().unwrap().len(), 2);
    let again = Project::new();
    again.ok(&["build-image", "master-1", "--sample"]);
    assert_eq!(
        oci(&m("master-1"))["manifest_digest"],
        oci(&manifest(
            &again.path().join("target/images/sample/master-1")
        ))["manifest_digest"]
    );
}

#[test]
fn uncompressed_layers_have_digest_equal_to_diff_id() {
    let p = Project::new();
    p.ok(&[
        "build-image",
        "master-1",
        "--sample",
        "--layer-compression",
        "none",
    ]);
    let m = manifest(&p.path().join("target/images/sample/master-1"));
    for layer in oci(&m)["layers"].as_array().unwrap() {
        assert_eq!(layer["digest"], layer["diff_id"]);
        assert_eq!(
            layer["media_type"],
            "application/vnd.oci.image.layer.v1.tar"
        );
    }
}

/// The registry from Debian's docker-registry, on a free loopback port, storing under `dir`.
pub(crate) struct Registry {
    child: Child,
    pub(crate) addr: String,
}

impl Registry {
    pub(crate) fn start(dir: &Path) -> Registry {
        let bin = require_tool("docker-registry");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // From here on, Drop stops the registry whatever happens.
        let registry = Registry { child, addr };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.addr).is_ok() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on {}", registry.addr);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_to_a_loopback_registry_and_pull_back_unchanged() {
    require_tool("skopeo");
    let p = Project::new();
    p.ok(&["build-image", "master-1", "master-2", "--sample"]);
    let out = p.path().join("target/images/sample");
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start(work.path());
    let r = &registry.addr;
    for profile in ["master-1", "master-2"] {
        ok(&format!(
            "skopeo copy --dest-tls-verify=false 'oci:{}/{profile}/oci:{profile}' docker://{r}/kubemint/{profile}:v1.14.2",
            out.display()
        ));
    }
    for profile in ["master-1", "master-2"] {
        let m = manifest(&out.join(profile));
        let inspect = ok(&format!(
            "skopeo inspect --tls-verify=false docker://{r}/kubemint/{profile}:v1.14.2"
        ));
        let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        assert_eq!(
            inspect["Digest"],
            oci(&m)["manifest_digest"],
            "{profile}: the registry changed the manifest"
        );
        let back = work.path().join(format!("back-{profile}"));
        ok(&format!(
            "skopeo copy --src-tls-verify=false docker://{r}/kubemint/{profile}:v1.14.2 'oci:{}:{profile}'",
            back.display()
        ));
        for layer in oci(&m)["layers"].as_array().unwrap() {
            let digest = layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:");
            let ours =
                std::fs::read(out.join(profile).join("oci/blobs/sha256").join(digest)).unwrap();
            assert_eq!(
                std::fs::read(back.join("blobs/sha256").join(digest)).unwrap(),
                ours,
                "{profile}: layer {digest}"
            );
        }
    }
    // The registry stores each blob once: one release layer for both masters.
    let blobs = work.path().join("storage/docker/registry/v2/blobs/sha256");
    let stored: Vec<String> = std::fs::read_dir(&blobs)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let release = oci(&manifest(&out.join("master-1")))["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    assert_eq!(stored.iter().filter(|d| **d == release).count(), 1);
    // Two manifests, two configs, two profile layers, one release layer.
    assert_eq!(stored.len(), 7, "{stored:?}");
}
