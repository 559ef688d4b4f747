//! Extraction: one streaming pass over a release tarball that verifies its sha512, checks every
//! member for hostile shapes, and spools only the wanted members to disk, hashing them on the
//! way. Nothing is written outside the spool directory.

use crate::util::hash::{HashingWriter, Sha512Reader, Sha512ReaderThreaded};
use crate::util::progress::Progress;
use flate2::read::GzDecoder;
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use tar::EntryType;

/// A wanted member, spooled: its bytes are in `spool`, of `size` bytes with `sha256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub member: String,
    pub spool: PathBuf,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{tarball}: cannot read: {source}")]
    Read { tarball: PathBuf, source: io::Error },
    #[error(
        "{tarball}: sha512 mismatch: expected {expected}, actual {actual}; the file is corrupt or not the pinned release: delete it and fetch or pin it again"
    )]
    Digest {
        tarball: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{tarball}: corrupt or truncated archive: {detail}")]
    Corrupt { tarball: PathBuf, detail: String },
    #[error("{tarball}: member {member:?} has an absolute path")]
    Absolute { tarball: PathBuf, member: String },
    #[error("{tarball}: member {member:?} has a '..' component")]
    ParentDir { tarball: PathBuf, member: String },
    #[error("{tarball}: member {member:?} is a link to {target:?}, which leaves the archive")]
    LinkEscapes {
        tarball: PathBuf,
        member: String,
        target: String,
    },
    #[error("{tarball}: member {member:?} is a {kind}; a release holds none")]
    Special {
        tarball: PathBuf,
        member: String,
        kind: &'static str,
    },
    #[error("{tarball}: member {member:?} appears twice")]
    Duplicate { tarball: PathBuf, member: String },
    #[error("{tarball}: member {member:?} is a {kind}, expected a regular file")]
    NotRegular {
        tarball: PathBuf,
        member: String,
        kind: &'static str,
    },
    #[error("{tarball}: missing member{} {}", if members.len() == 1 { "" } else { "s" }, members.join(", "))]
    Missing {
        tarball: PathBuf,
        members: Vec<String>,
    },
    #[error("{spool}: cannot write spooled member: {source}")]
    Spool { spool: PathBuf, source: io::Error },
    #[error("{tarball}: interrupted while reading it")]
    Interrupted { tarball: PathBuf },
}

/// Reads `tarball` once: verifies it against `sha512`, rejects hostile members, and copies each
/// member named in `wanted` into `spool_dir`. A digest mismatch is reported in preference to
/// any other problem, since it means the bytes are not the pinned release at all.
pub fn extract(
    tarball: &Path,
    sha512: &str,
    wanted: &BTreeSet<String>,
    spool_dir: &Path,
    progress: &Progress,
) -> Result<BTreeMap<String, Extracted>, ExtractError> {
    let file = File::open(tarball).map_err(|source| ExtractError::Read {
        tarball: tarball.to_owned(),
        source,
    })?;
    let total = file.metadata().ok().map(|m| m.len());
    let bar = progress.bar("extracting", total);
    // sha512 on a core of its own, gunzip and untar on another.
    let mut hashing = Sha512ReaderThreaded::new(bar.wrap_read(file));
    let result = walk(tarball, &mut hashing, wanted, Some(spool_dir));
    // Hash whatever the decoder left unread (trailing bytes, or everything after an error).
    let (actual, _) = hashing.finish().map_err(|source| ExtractError::Read {
        tarball: tarball.to_owned(),
        source,
    })?;
    if actual != sha512 {
        return Err(ExtractError::Digest {
            tarball: tarball.to_owned(),
            expected: sha512.to_owned(),
            actual,
        });
    }
    result
}

/// Reads `input` (a tarball's bytes, `tarball` in messages) once, as a build reads a release:
/// gunzip, untar, every hostile-member check, the `wanted` members present as regular files,
/// nothing spooled. Returns the sha512 and size of all of its bytes (read to the end whatever
/// happens), and the problem a build would refuse it for, if any. What `pin` runs.
pub fn scan<R: Read>(
    tarball: &Path,
    input: R,
    wanted: &BTreeSet<String>,
) -> Result<(String, u64, Option<ExtractError>), ExtractError> {
    let mut hashing = Sha512Reader::new(input);
    let result = walk(tarball, &mut hashing, wanted, None);
    let (sha512, size) = hashing.finish().map_err(|source| ExtractError::Read {
        tarball: tarball.to_owned(),
        source,
    })?;
    Ok((sha512, size, result.err()))
}

fn walk<R: Read>(
    tarball: &Path,
    input: R,
    wanted: &BTreeSet<String>,
    spool_dir: Option<&Path>,
) -> Result<BTreeMap<String, Extracted>, ExtractError> {
    let corrupt = |e: io::Error| {
        if crate::util::progress::is_cancelled(&e) {
            ExtractError::Interrupted {
                tarball: tarball.to_owned(),
            }
        } else {
            ExtractError::Corrupt {
                tarball: tarball.to_owned(),
                detail: e.to_string(),
            }
        }
    };
    let mut gz = GzDecoder::new(BufReader::with_capacity(1 << 20, input));
    let mut seen = HashSet::new();
    let mut found = BTreeMap::new();
    {
        let mut archive = tar::Archive::new(&mut gz);
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let member = check_member(tarball, &entry)?;
            if !seen.insert(member.clone()) {
                return Err(ExtractError::Duplicate {
                    tarball: tarball.to_owned(),
                    member,
                });
            }
            if !wanted.contains(&member) {
                continue;
            }
            let kind = entry.header().entry_type();
            if kind != EntryType::Regular && kind != EntryType::Continuous {
                return Err(ExtractError::NotRegular {
                    tarball: tarball.to_owned(),
                    member,
                    kind: kind_name(kind),
                });
            }
            let Some(spool_dir) = spool_dir else {
                // Only checked: read through, so the digest and the gzip trailer are too.
                let size = io::copy(&mut entry, &mut io::sink()).map_err(corrupt)?;
                found.insert(
                    member.clone(),
                    Extracted {
                        member,
                        spool: PathBuf::new(),
                        size,
                        sha256: String::new(),
                    },
                );
                continue;
            };
            let spool = spool_dir.join(member.replace('/', "__"));
            let spool_err = |source| ExtractError::Spool {
                spool: spool.clone(),
                source,
            };
            let out = File::create(&spool).map_err(spool_err)?;
            let mut writer =
                HashingWriter::<_, Sha256>::new(BufWriter::with_capacity(1 << 20, out));
            io::copy(&mut entry, &mut writer).map_err(|e| {
                if e.kind() == io::ErrorKind::Other
                    || e.kind() == io::ErrorKind::UnexpectedEof
                    || e.kind() == io::ErrorKind::InvalidInput
                {
                    corrupt(e)
                } else {
                    spool_err(e)
                }
            })?;
            let (out, sha256, size) = writer.finish();
            out.into_inner().map_err(|e| spool_err(e.into_error()))?;
            found.insert(
                member.clone(),
                Extracted {
                    member,
                    spool,
                    size,
                    sha256,
                },
            );
        }
    }
    // Read the gzip stream to its end, so its CRC and length are checked.
    io::copy(&mut gz, &mut io::sink()).map_err(corrupt)?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|m| !found.contains_key(*m))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(ExtractError::Missing {
            tarball: tarball.to_owned(),
            members: missing,
        });
    }
    Ok(found)
}

/// The member's normalized name (no `./`, no trailing `/`), after rejecting hostile shapes.
fn check_member<R: Read>(tarball: &Path, entry: &tar::Entry<R>) -> Result<String, ExtractError> {
    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let t = tarball.to_owned();
    if raw.starts_with('/') {
        return Err(ExtractError::Absolute {
            tarball: t,
            member: raw,
        });
    }
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(ExtractError::ParentDir {
            tarball: t,
            member: raw,
        });
    }
    let member = parts.join("/");
    let kind = entry.header().entry_type();
    match kind {
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            return Err(ExtractError::Special {
                tarball: t,
                member,
                kind: kind_name(kind),
            });
        }
        EntryType::Symlink | EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            // A symlink resolves from its own directory, a hard link from the archive root.
            let base = if kind == EntryType::Symlink {
                parts.len().saturating_sub(1)
            } else {
                0
            };
            if escapes(base, &target) {
                return Err(ExtractError::LinkEscapes {
                    tarball: t,
                    member,
                    target,
                });
            }
        }
        _ => {}
    }
    Ok(member)
}

/// Whether `target`, resolved from a directory `depth` levels below the root, leaves the tree.
fn escapes(depth: usize, target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return true;
    }
    let mut depth = depth as isize;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Regular | EntryType::Continuous => "regular file",
        EntryType::Directory => "directory",
        EntryType::Symlink => "symlink",
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        _ => "special entry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_escape_rules() {
        assert!(!escapes(2, "../x"));
        assert!(escapes(0, "../x"));
        assert!(escapes(1, "../../x"));
        assert!(escapes(3, "/etc/passwd"));
        assert!(!escapes(1, "a/../b"));
        assert!(escapes(1, "a/../../../b"));
    }
}
