//! Audits: `verify` (a root, an OCI image, an extension or disk image, an output directory
//! against what a profile builds), `diff` (how two masters differ, in Kubernetes terms first)
//! and `rebuild` (the comparison half of `rebuild-check`: two builds' outputs, entry by entry
//! and field by field).
//!
//! What a master should be is a manifest.json ([`Expected`]): written by a build of the
//! profile (the command line builds into a temporary directory) or given. The rules are
//! [`rules`], shared with the installer's `--verify`. Images are read in-process: squashfs by
//! [`squashfs`], GPT by [`gpt`], OCI layouts and their tar layers by [`oci`]. A signed output
//! directory is compared modulo its signatures, which `--trusted-key` checks ([`signed`]).
//! Nothing here reads the environment or the clock.

pub mod diff;
pub mod fat;
pub mod gpt;
pub mod oci;
pub mod rebuild;
pub mod rules;
pub mod signed;
pub mod squashfs;
pub mod verify;
pub mod view;

use crate::manifest::{FileRow, Output};
use rules::Kind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// One difference between what a master should be and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// The entry's path in the tree (`/usr/lib/…`), or the artefact's in its output directory
    /// (`oci/blobs/sha256/…`).
    pub path: String,
    /// Inside which artefact, when not a root: `extensions/kubemint-master-1.raw`, `oci`, …
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    pub detail: String,
}

impl Finding {
    pub fn new(kind: Kind, path: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            kind,
            path: path.into(),
            place: None,
            expected: None,
            actual: None,
            detail: detail.into(),
        }
    }

    pub fn values(mut self, expected: impl Into<String>, actual: impl Into<String>) -> Finding {
        self.expected = Some(expected.into());
        self.actual = Some(actual.into());
        self
    }

    pub fn within(mut self, place: &str) -> Finding {
        if self.place.is_none() {
            self.place = Some(place.to_owned());
        }
        self
    }
}

/// `KIND PATH (in PLACE): detail`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.path)?;
        if let Some(p) = &self.place {
            write!(f, " (in {p})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// A declared secret as manifest.json lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRow {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub used_by: Vec<String>,
    #[serde(default)]
    pub purpose: String,
}

/// The release a manifest names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRow {
    pub name: String,
    pub sha512: String,
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub size: u64,
}

/// What a master should be: the parts of a manifest.json the audits read. Unknown fields are
/// allowed (a manifest gains fields without a schema bump; see `manifest::SCHEMA_VERSION`).
#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub profile: String,
    pub image: String,
    #[serde(default)]
    pub sample: bool,
    pub release: ReleaseRow,
    pub epoch: u64,
    pub files: Vec<FileRow>,
    pub owns: Vec<String>,
    pub outputs: Vec<Output>,
    #[serde(default)]
    pub secrets: Vec<SecretRow>,
    /// The OCI image's identity (manifest, config, layers), read as JSON.
    #[serde(default)]
    pub oci: serde_json::Value,
    #[serde(default)]
    pub disk: serde_json::Value,
    #[serde(default)]
    pub boot: serde_json::Value,
    /// Everything else, kept for `diff`.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a kubemint manifest.json: {source}")]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error(transparent)]
    Squashfs(#[from] squashfs::ReadError),
    /// gpg or gpgv could not be run, or the trusted key could not be read (a signature that
    /// does not verify is a finding, not this).
    #[error(transparent)]
    Sign(#[from] crate::attest::sign::SignError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A manifest.json, with the bytes it was read from.
#[derive(Clone, Debug)]
pub struct Expected {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
    /// The output directory it came from, when it came from one (its SHA256SUMS is compared).
    pub dir: Option<PathBuf>,
}

impl Expected {
    /// Reads `path` (a manifest.json).
    pub fn load(path: &Path) -> Result<Expected, AuditError> {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let manifest = serde_json::from_slice(&bytes).map_err(|source| AuditError::Manifest {
            path: path.to_owned(),
            source,
        })?;
        Ok(Expected {
            manifest,
            bytes,
            dir: None,
        })
    }

    /// Reads an output directory's manifest.json.
    pub fn from_dir(dir: &Path) -> Result<Expected, AuditError> {
        let mut e = Expected::load(&dir.join("manifest.json"))?;
        e.dir = Some(dir.to_owned());
        Ok(e)
    }

    /// The output rows of a kind (`sysext`, `confext`, `disk`, …).
    pub fn outputs<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Output> + 'a {
        self.manifest.outputs.iter().filter(move |o| o.kind == kind)
    }
}

/// The findings of one verification and what was checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub profile: String,
    pub release: String,
    /// What was verified, as given.
    pub target: String,
    /// No findings.
    pub clean: bool,
    /// How many manifest entries and artefacts were compared.
    pub checked: usize,
    pub findings: Vec<Finding>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Sets `clean` from the findings: call once they are all in.
    pub fn finish(mut self) -> Report {
        self.clean = self.is_clean();
        self
    }

    /// One line per finding, then the summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&f.to_string());
            out.push('\n');
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        if self.is_clean() {
            out.push_str(&format!(
                "{} matches {} ({}): {} entries checked, no findings\n",
                self.target, self.profile, self.release, self.checked
            ));
        } else {
            out.push_str(&format!(
                "{} differs from {} ({}): {} finding{} in {} entries checked\n",
                self.target,
                self.profile,
                self.release,
                self.findings.len(),
                if self.findings.len() == 1 { "" } else { "s" },
                self.checked
            ));
        }
        out
    }
}
