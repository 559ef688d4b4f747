//! No-change rebuilds. Every output directory records, in [`FILE`], the key of what it was
//! built from: the sha256 of the plan, the release's sha512, the digests of the profile and
//! image files, the base, the generator's version, the compression settings and the epoch
//! (never the number of threads: it changes no byte). A build whose key matches an intact
//! output writes nothing for that profile and says it is up to date.
//!
//! "Intact" is checked cheaply: every file the output had is there with its size, and
//! manifest.json (small) still has the digest recorded; no output is hashed again.

use crate::build::Built;
use crate::front::plan::Plan;
use crate::manifest::{Input, Output};
use crate::pack::oci::LayerCompression;
use crate::util::hash::sha256_hex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fs;
use std::io;
use std::path::Path;

/// The file in each output directory that records its key. Not an output: it is in neither
/// the manifest nor SHA256SUMS.
pub const FILE: &str = "build-key.json";

/// Bumped when what goes into a key changes.
const FORMAT: u32 = 2;

/// The build key of `plan` made from `inputs` (release, profile, image, templates and base,
/// as manifest.json lists them), with `note` (why a part is missing, e.g. no base) and the
/// OCI layers stored as `layers`, signed (or not) with the key file whose sha256 is `signing`.
pub fn key(
    plan: &Plan,
    inputs: &[Input],
    note: Option<&str>,
    layers: LayerCompression,
    signing: Option<&str>,
) -> String {
    let doc = json!({
        "format": FORMAT,
        "generator": {
            "name": crate::GENERATOR,
            "version": crate::VERSION,
            "revision": crate::REVISION,
        },
        "compression": {
            "payload": crate::pack::deflate::tar::COMPRESSOR,
            "chunks": crate::pack::deflate::COMPRESSOR,
            "squashfs": crate::pack::squashfs::SQUASHFS,
            "layers": layers.name(),
        },
        "epoch": plan.epoch,
        "plan": plan,
        "inputs": inputs,
        "note": note,
        "signing": signing,
    });
    // Struct fields in declaration order, maps (BTreeMap) sorted, json!'s objects in a fixed
    // order: the same document, the same bytes.
    sha256_hex(&serde_json::to_vec(&doc).expect("a key document serializes"))
}

/// One file of an output directory, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sized {
    pub path: String,
    pub size: u64,
}

/// What [`FILE`] holds: the key, how to tell the output is intact, and what the summary shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub manifest_sha256: String,
    /// Every regular file of the output directory but [`FILE`], in byte order of their paths.
    pub files: Vec<Sized>,
    pub outputs: Vec<Output>,
    pub manifest: Output,
    /// Entries in the tree.
    pub entries: usize,
    pub notes: Vec<String>,
}

impl Record {
    /// The record of the output staged in `dir`, as `built` describes it.
    pub fn of(dir: &Path, key: String, built: &Built) -> io::Result<Record> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(io::Error::other)?;
            if !entry.file_type().is_file() || entry.path() == dir.join(FILE) {
                continue;
            }
            let rel = entry.path().strip_prefix(dir).map_err(io::Error::other)?;
            files.push(Sized {
                path: rel.to_string_lossy().into_owned(),
                size: entry.metadata().map_err(io::Error::other)?.len(),
            });
        }
        Ok(Record {
            key,
            manifest_sha256: built.manifest.sha256.clone(),
            files,
            outputs: built.outputs.clone(),
            manifest: built.manifest.clone(),
            entries: built.files,
            notes: built.notes.clone(),
        })
    }

    /// Writes this record into `dir`, mode 0644.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(FILE);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let mut f = fs::File::create(&path)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
    }

    /// The record of the output in `dir` if its key is `key` and it is intact: every recorded
    /// file there with its size, manifest.json with its recorded digest. Anything else (no
    /// record, an unreadable one, another key, a file missing or resized) is `None`: rebuild.
    pub fn up_to_date(dir: &Path, key: &str) -> Option<Record> {
        let bytes = fs::read(dir.join(FILE)).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        if record.key != key {
            return None;
        }
        for f in &record.files {
            let meta = fs::symlink_metadata(dir.join(&f.path)).ok()?;
            if !meta.is_file() || meta.len() != f.size {
                return None;
            }
        }
        let manifest = fs::read(dir.join("manifest.json")).ok()?;
        (sha256_hex(&manifest) == record.manifest_sha256).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_only_while_its_output_is_intact() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        fs::create_dir(dir.join("sub")).unwrap();
        fs::write(dir.join("manifest.json"), "{}\n").unwrap();
        fs::write(dir.join("sub/a.raw"), "abc").unwrap();
        let manifest = Output {
            kind: "manifest".into(),
            path: "manifest.json".into(),
            size: 3,
            sha256: sha256_hex(b"{}\n"),
        };
        let built = Built {
            profile: "m".into(),
            release: "r".into(),
            sample: true,
            dir: dir.to_owned(),
            files: 7,
            outputs: Vec::new(),
            manifest,
            notes: Vec::new(),
            status: crate::build::Status::Built,
        };
        let r = Record::of(dir, "k1".into(), &built).unwrap();
        assert_eq!(
            r.files,
            [
                Sized {
                    path: "manifest.json".into(),
                    size: 3
                },
                Sized {
                    path: "sub/a.raw".into(),
                    size: 3
                }
            ]
        );
        r.write(dir).unwrap();
        assert!(Record::up_to_date(dir, "k1").is_some());
        assert!(Record::up_to_date(dir, "k2").is_none(), "another key");
        fs::write(dir.join("sub/a.raw"), "abcd").unwrap();
        assert!(Record::up_to_date(dir, "k1").is_none(), "a resized file");
        fs::write(dir.join("sub/a.raw"), "abc").unwrap();
        fs::write(dir.join("manifest.json"), "[]\n").unwrap();
        assert!(Record::up_to_date(dir, "k1").is_none(), "another manifest");
        fs::write(dir.join("manifest.json"), "{}\n").unwrap();
        fs::remove_file(dir.join("sub/a.raw")).unwrap();
        assert!(Record::up_to_date(dir, "k1").is_none(), "a missing file");
    }
}
