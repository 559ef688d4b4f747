//! The payload's tar: the tree as a reproducible tar stream. Every header is built here (GNU
//! format, one epoch, owner and mode from the tree, uname/gname `root` for uid/gid 0), entries in
//! byte order. The gzip around it is [`crate::pack::deflate::tar::write_tar_gz`]'s (chunked, the
//! binaries compressed once per release).

use crate::tree::{Content, Kind, Tree};
use crate::util::epoch::Epoch;
use crate::util::hash::HashingWriter;
use crate::util::progress::Bar;
use sha2::Sha256;
use std::fs::File;
use std::io::{self, BufReader, Write};

/// Digests of a written payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// sha256 and size of the compressed bytes (the file).
    pub sha256: String,
    pub size: u64,
    /// sha256 and size of the uncompressed tar (an OCI layer's diff_id).
    pub tar_sha256: String,
    pub tar_size: u64,
}

/// Writes `tree` as an uncompressed tar to `out`, returning its sha256 and size too (for an
/// uncompressed OCI layer, digest and diff_id at once).
pub fn write_tar_hashed<W: Write>(
    tree: &Tree,
    epoch: Epoch,
    out: W,
    bar: &Bar,
) -> io::Result<(W, Written)> {
    let hashing = HashingWriter::<_, Sha256>::new(bar.wrap_write(out));
    let (out, sha256, size) = write_tar(tree, epoch, hashing)?.finish();
    let written = Written {
        sha256: sha256.clone(),
        size,
        tar_sha256: sha256,
        tar_size: size,
    };
    Ok((out.into_inner(), written))
}

/// A tar header as every kubemint archive writes it: GNU format, the given type, mode and owner,
/// mtime the epoch, uname/gname `root` for id 0 and empty otherwise.
pub fn header(
    kind: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    epoch: Epoch,
) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_size(size);
    h.set_mtime(epoch.seconds());
    let owner = |id: u32| if id == 0 { "root" } else { "" };
    h.set_username(owner(uid))?;
    h.set_groupname(owner(gid))?;
    Ok(h)
}

/// Writes `tree` as an uncompressed tar to `out`.
pub fn write_tar<W: Write>(tree: &Tree, epoch: Epoch, out: W) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    for (path, entry) in tree.iter() {
        let name = &path[1..];
        let (mode, uid, gid) = (entry.mode, entry.uid, entry.gid);
        match &entry.kind {
            Kind::Dir => {
                let mut h = header(tar::EntryType::Directory, mode, uid, gid, 0, epoch)?;
                tar.append_data(&mut h, format!("{name}/"), io::empty())?;
            }
            Kind::File { content, size, .. } => {
                let mut h = header(tar::EntryType::Regular, mode, uid, gid, *size, epoch)?;
                match content {
                    Content::Inline(bytes) => tar.append_data(&mut h, name, bytes.as_slice())?,
                    Content::Spooled(p) => {
                        let f = File::open(p)?;
                        tar.append_data(&mut h, name, BufReader::with_capacity(1 << 20, f))?
                    }
                }
            }
            Kind::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, mode, uid, gid, 0, epoch)?;
                tar.append_link(&mut h, name, target)?;
            }
        }
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn long_paths_and_links_round_trip() {
        let mut tree = Tree::new();
        let long = format!("/usr/share/{}/file", "x".repeat(120));
        tree.add_file(&long, 0o644, Content::Inline(b"hello".to_vec()))
            .unwrap();
        tree.add_symlink("/usr/local/bin/k", &format!("/opt/{}", "y".repeat(120)))
            .unwrap();
        let bar = crate::util::progress::Progress::hidden().bar("", None);
        let epoch = Epoch::new(1_558_000_000).unwrap();
        let gz = |tree: &Tree| {
            crate::pack::deflate::tar::write_tar_gz(
                tree,
                epoch,
                Vec::new(),
                None,
                crate::pack::deflate::Threads::new(1),
                &bar,
            )
            .unwrap()
        };
        let (bytes, w) = gz(&tree);
        assert_eq!(w.size, bytes.len() as u64);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            assert_eq!(e.header().mtime().unwrap(), 1_558_000_000);
            if path.ends_with("/file") {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                assert_eq!(s, "hello");
            }
            if let Some(l) = e.link_name().unwrap() {
                assert!(l.to_string_lossy().starts_with("/opt/yyy"));
            }
            seen.push(path);
        }
        assert!(seen.contains(&long[1..].to_owned()), "{seen:?}");
        // Same tree, same bytes.
        assert_eq!(gz(&tree).0, bytes);
    }
}
