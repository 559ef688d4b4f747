//! squashfs images of a tree, written in-process: the system extension (`/usr`, `/opt`) and the
//! configuration extension (`/etc`), and the file system of the disk image. Every inode's mode,
//! owner and mtime come from the tree and the epoch; the bytes depend on nothing else (and
//! Cargo.lock, which pins the writer and the compressor).

use crate::tree::{Content, Kind, Tree};
use crate::util::epoch::Epoch;
use backhand::compression::{CompressionOptions, Compressor, Gzip};
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// How the squashfs images are written, recorded in manifest.json like the payload's compressor.
pub const SQUASHFS: &str = "squashfs 4.0 (backhand, gzip level 6 via flate2/zlib-rs, no compressor options block, 128 KiB blocks, no xattrs)";

/// Writes `tree` (whose paths all lie below `strip`, or anywhere when `strip` is `/`) as a
/// squashfs image with paths relative to `strip`: every inode's mode, owner and mtime from the
/// tree and the epoch, entries in the tree's order. Returns the image's size.
pub fn write_squashfs<W: Write + Seek>(
    tree: &Tree,
    strip: &str,
    epoch: Epoch,
    out: W,
) -> io::Result<u64> {
    let mtime = epoch.as_u32();
    let mut fs = FilesystemWriter::default();
    fs.set_time(mtime);
    // Level 6 like the payload: backhand's default, 9, is several times slower for ~1% less.
    let gzip = Gzip {
        compression_level: 6,
        window_size: 15,
        strategies: 0,
    };
    let compressor =
        FilesystemCompressor::new(Compressor::Gzip, Some(CompressionOptions::Gzip(gzip)));
    fs.set_compressor(compressor.map_err(io::Error::other)?);
    // No compressor options block: it is optional, readers only show it, and backhand 0.25
    // writes gzip's 7 bytes long where the format has 8 (its window size is a u8, not a u16),
    // which `unsquashfs -s` reports as an error. Without it readers assume gzip's defaults,
    // which decompress whatever level wrote the data.
    fs.set_emit_compression_options(false);
    fs.set_root_mode(0o755);
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    for (path, entry) in tree.iter() {
        let rel = match strip {
            "/" => &path[1..],
            _ if path == strip => {
                fs.set_root_mode(entry.mode as u16);
                continue;
            }
            _ => match path.strip_prefix(strip).and_then(|p| p.strip_prefix('/')) {
                Some(rel) => rel,
                None => continue,
            },
        };
        let header = NodeHeader::new(entry.mode as u16, entry.uid, entry.gid, mtime);
        let pushed = match &entry.kind {
            Kind::Dir => fs.push_dir(rel, header),
            Kind::Symlink { target } => fs.push_symlink(target.as_str(), rel, header),
            Kind::File {
                content: Content::Inline(bytes),
                ..
            } => fs.push_file(io::Cursor::new(bytes.clone()), rel, header),
            Kind::File {
                content: Content::Spooled(p),
                ..
            } => fs.push_file_from_path(p.clone(), rel, header),
        };
        pushed.map_err(|e| io::Error::other(format!("{path}: {e}")))?;
    }
    let (_, size) = fs.write(out).map_err(io::Error::other)?;
    Ok(size)
}

/// Writes `tree`'s part below `strip` as squashfs into `path`, returning (size, sha256).
pub fn squashfs_file(
    tree: &Tree,
    strip: &str,
    epoch: Epoch,
    path: &Path,
) -> io::Result<(u64, String)> {
    let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write_squashfs(tree, strip, epoch, &mut file)?;
    file.flush()?;
    let mut file = file.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.sync_all()?;
    let (sha256, size) = crate::util::hash::sha256_file(path)?;
    Ok((size, sha256))
}
