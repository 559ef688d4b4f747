//! squashfs images of a tree, written in-process: the system extension (`/usr`, `/opt`) and the
//! configuration extension (`/etc`), and the file system of the disk image. Every inode's mode,
//! owner and mtime come from the tree and the epoch (the root's too); the bytes depend on
//! nothing else (and Cargo.lock, which pins the compressor), never on the number of threads or
//! on whether a [`ChunkCache`] supplied precompressed blocks.
//!
//! The image (squashfs 4.0, little-endian), in file order:
//!
//! - the superblock (96 bytes): mkfs time = the epoch, gzip, 128 KiB blocks, flags
//!   `NO_FRAGMENTS`, and `NO_XATTRS` unless some entry has extended attributes, no
//!   compressor options block;
//! - data blocks, file by file in the tree's order, each file cut into 128 KiB blocks from its
//!   first byte: a block is one [`Chunk`](crate::pack::deflate::Chunk) framed as a zlib stream,
//!   or the bytes themselves when that is not smaller (mksquashfs's rule), so the blocks of a
//!   binary are the very chunks its tar.gz carries and [`ChunkCache`] holds. No fragments: a
//!   file's tail is a (short) block of its own, which keeps every file's blocks independent
//!   of the others (and a binary's blocks the same in every image); small files compress a
//!   little worse than they would packed together;
//! - the inode table, the directory table: 8 KiB metadata blocks (see [`meta`]), inodes in
//!   post-order (each directory after its children, the root last), numbered in that order;
//!   basic inodes where they suffice, extended ones for files of 4 GiB or more, for
//!   directories with an index (listings over 8 KiB) or over 64 KiB, and for every entry with
//!   extended attributes (they carry the attribute list's index);
//! - the fragment table position (empty), no export table, the id table (every uid and gid,
//!   sorted), the extended attribute tables when some entry has attributes (see [`xattr`]),
//!   then zeros to a multiple of 4 KiB. An image without attributes is exactly what it was
//!   before the writer knew of them.

pub mod inode;
pub mod meta;
pub mod xattr;

use crate::pack::deflate::cache::{ChunkCache, Job, Source};
use crate::pack::deflate::{CHUNK, Chunk, DeflateError, Deflater, Threads, pipeline};
use crate::tree::Tree;
use crate::util::epoch::Epoch;
use inode::{Common, DirEntry, DirInode, Node, NodeKind};
use meta::{Meta, MetaRef};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use xattr::Xattrs;

/// How the squashfs images are written, recorded in manifest.json like the payload's compressor.
pub const SQUASHFS: &str = "squashfs 4.0 (kubemint's writer: gzip, 128 KiB blocks each a zlib-framed level-6 deflate chunk from flate2/zlib-rs or stored, no fragments, no compressor options block, extended attributes (inline values) only where the tree has them, no export table)";

/// The data block size: a deflate chunk.
pub const BLOCK_SIZE: u32 = CHUNK as u32;
const BLOCK_LOG: u16 = 17;
const MAGIC: u32 = 0x7371_7368;
const GZIP: u16 = 1;
const NO_FRAGMENTS: u16 = 1 << 4;
const NO_XATTRS: u16 = 1 << 9;
/// Bit 24 of a data block's size: stored uncompressed.
const STORED_BLOCK: u32 = 1 << 24;
/// An absent table.
const NO_TABLE: u64 = u64::MAX;
const SUPERBLOCK_LEN: usize = 96;
/// Images are padded to a multiple of this, as mksquashfs pads them for block devices.
const PAD: u64 = 4096;

const _: () = assert!(1 << BLOCK_LOG == BLOCK_SIZE);

#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    #[error("{path}: the name is {len} bytes; squashfs names are at most 256")]
    NameTooLong { path: String, len: usize },
    #[error("{path}: its parent directory is not in the tree")]
    NoParent { path: String },
    #[error("{path}: the image's root must be a directory")]
    NotADir { path: String },
    #[error("{count} distinct owner ids; squashfs holds at most 65536")]
    TooManyIds { count: usize },
    #[error("the {what} is too large for squashfs")]
    TooBig { what: &'static str },
    #[error(
        "{path}: extended attribute {name:?} is not one squashfs stores (user., trusted. or security., a name under 64 KiB, a value under 4 GiB)"
    )]
    Xattr { path: String, name: String },
    #[error(transparent)]
    Deflate(#[from] DeflateError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<SquashfsError> for io::Error {
    fn from(e: SquashfsError) -> io::Error {
        match e {
            SquashfsError::Io(e) => e,
            SquashfsError::Deflate(e) => e.into(),
            e => io::Error::new(io::ErrorKind::InvalidInput, e),
        }
    }
}

/// How to compress: threads, and compressed files to reuse.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    pub threads: Threads,
    pub cache: Option<&'a ChunkCache>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            threads: Threads::ONE,
            cache: None,
        }
    }
}

/// Writes `tree` (whose paths all lie below `strip`, or anywhere when `strip` is `/`) as a
/// squashfs image with paths relative to `strip`: every inode's mode, owner and mtime from the
/// tree and the epoch, entries in the tree's order. Returns the image's size. One thread, no
/// cache: the same bytes as [`write_squashfs_with`] with any options.
pub fn write_squashfs<W: Write + Seek>(
    tree: &Tree,
    strip: &str,
    epoch: Epoch,
    out: W,
) -> io::Result<u64> {
    Ok(write_squashfs_with(
        tree,
        strip,
        epoch,
        out,
        &Options::default(),
    )?)
}

/// Writes `tree`'s part below `strip` as squashfs into `path`, returning (size, sha256).
pub fn squashfs_file(
    tree: &Tree,
    strip: &str,
    epoch: Epoch,
    path: &Path,
) -> io::Result<(u64, String)> {
    Ok(squashfs_file_with(
        tree,
        strip,
        epoch,
        path,
        &Options::default(),
    )?)
}

/// [`squashfs_file`] on `options.threads` threads, with the blocks of every file whose
/// content `options.cache` holds taken from there.
pub fn squashfs_file_with(
    tree: &Tree,
    strip: &str,
    epoch: Epoch,
    path: &Path,
    options: &Options,
) -> Result<(u64, String), SquashfsError> {
    let (file, size, sha256) = squashfs_file_unsynced(tree, strip, epoch, path, options)?;
    file.sync_all()?;
    Ok((size, sha256))
}

/// [`squashfs_file_with`], leaving it to the caller to make the file durable (`sync_all` on the
/// file returned) before anything depends on it.
pub fn squashfs_file_unsynced(
    tree: &Tree,
    strip: &str,
    epoch: Epoch,
    path: &Path,
    options: &Options,
) -> Result<(File, u64, String), SquashfsError> {
    let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write_squashfs_with(tree, strip, epoch, &mut file, options)?;
    file.flush()?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    let (sha256, size) = crate::util::hash::sha256_file(path)?;
    Ok((file, size, sha256))
}

/// [`write_squashfs`] on `options.threads` threads, with the blocks of every file whose content
/// `options.cache` holds taken from there (each checked against the file's bytes). Offsets in
/// the image count from `out`'s position when called.
pub fn write_squashfs_with<W: Write + Seek>(
    tree: &Tree,
    strip: &str,
    epoch: Epoch,
    mut out: W,
    options: &Options,
) -> Result<u64, SquashfsError> {
    let nodes = inode::hierarchy(tree, strip)?;
    let ids = Ids::of(&nodes)?;
    let base = out.stream_position()?;
    let mut w = Counting {
        inner: &mut out,
        pos: 0,
    };
    w.write_all(&[0; SUPERBLOCK_LEN])?;
    let files = write_data(&nodes, &mut w, options)?;

    let mut tables = Tables {
        inodes: Meta::new(),
        dirs: Meta::new(),
        xattrs: Xattrs::default(),
        mtime: epoch.as_u32(),
    };
    let root = tables.dir(&nodes, 0, &files, &ids)?;
    let (inode_table, _) = tables.inodes.finish();
    let (dir_table, _) = tables.dirs.finish();
    let inode_table_start = w.pos;
    w.write_all(&inode_table)?;
    let directory_table_start = w.pos;
    w.write_all(&dir_table)?;
    // No fragments: the (empty) fragment table is where it would start, as mksquashfs puts it.
    let fragment_table_start = w.pos;
    let mut id_meta = Meta::new();
    for id in ids.0.keys() {
        id_meta.write(&id.to_le_bytes());
    }
    let (id_blocks, starts) = id_meta.finish();
    let id_blocks_start = w.pos;
    w.write_all(&id_blocks)?;
    let id_table_start = w.pos;
    for s in starts {
        w.write_all(&(id_blocks_start + s).to_le_bytes())?;
    }
    let xattr_id_table_start = match tables.xattrs.finish(w.pos) {
        Some((bytes, header)) => {
            w.write_all(&bytes)?;
            Some(header)
        }
        None => None,
    };
    let bytes_used = w.pos;
    let padded = bytes_used.div_ceil(PAD) * PAD;
    w.write_all(&vec![0; (padded - bytes_used) as usize])?;

    let superblock = Superblock {
        inode_count: nodes.len() as u32,
        mkfs_time: epoch.as_u32(),
        id_count: ids.0.len() as u16,
        root_inode: root.inode_ref(),
        bytes_used,
        id_table_start,
        xattr_id_table_start,
        inode_table_start,
        directory_table_start,
        fragment_table_start,
    };
    out.seek(SeekFrom::Start(base))?;
    out.write_all(&superblock.to_bytes())?;
    out.seek(SeekFrom::Start(base + padded))?;
    Ok(padded)
}

struct Counting<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where a file's blocks are and their sizes as inodes store them.
#[derive(Clone, Debug, Default)]
struct FileData {
    start: u64,
    blocks: Vec<u32>,
}

/// Writes every file's data blocks, in node order, compressing on the threads (or copying
/// cached chunks); returns each file's blocks by node.
fn write_data<W: Write>(
    nodes: &[Node],
    out: &mut Counting<W>,
    options: &Options,
) -> Result<Vec<FileData>, SquashfsError> {
    let mut files = vec![FileData::default(); nodes.len()];
    {
        let work = |d: &mut Deflater, (node, job): (usize, Job)| (node, job.resolve(d));
        type Resolved = (usize, Result<(Vec<u8>, Chunk), DeflateError>);
        let mut sink = |(node, r): Resolved| -> Result<(), SquashfsError> {
            let (data, chunk) = r?;
            let f = &mut files[node];
            if f.blocks.is_empty() {
                f.start = out.pos;
            }
            let size = if chunk.store_uncompressed() {
                out.write_all(&data)?;
                data.len() as u32 | STORED_BLOCK
            } else {
                chunk.write_zlib(out)?;
                chunk.zlib_len() as u32
            };
            f.blocks.push(size);
            Ok(())
        };
        pipeline::run(options.threads, &work, &mut sink, |feed| {
            for (i, n) in nodes.iter().enumerate() {
                let NodeKind::File {
                    content,
                    size,
                    sha256,
                } = &n.kind
                else {
                    continue;
                };
                let mut source = Source::open(n.path, content, *size, sha256, options.cache)?;
                while let Some(job) = source.next_job()? {
                    feed.push((i, job))?;
                }
            }
            Ok(())
        })?;
    }
    Ok(files)
}

/// uid/gid → index in the id table, ids sorted.
struct Ids(BTreeMap<u32, u16>);

impl Ids {
    fn of(nodes: &[Node]) -> Result<Ids, SquashfsError> {
        let mut ids: BTreeMap<u32, u16> = nodes
            .iter()
            .flat_map(|n| [n.uid, n.gid])
            .map(|id| (id, 0))
            .collect();
        if ids.len() > usize::from(u16::MAX) + 1 {
            return Err(SquashfsError::TooManyIds { count: ids.len() });
        }
        for (i, v) in ids.values_mut().enumerate() {
            *v = i as u16;
        }
        Ok(Ids(ids))
    }
}

struct Tables<'t> {
    inodes: Meta,
    dirs: Meta,
    xattrs: Xattrs<'t>,
    mtime: u32,
}

impl<'t> Tables<'t> {
    fn common(&self, n: &Node, ids: &Ids) -> Common {
        Common {
            mode: n.mode,
            uid_index: ids.0[&n.uid],
            gid_index: ids.0[&n.gid],
            mtime: self.mtime,
            inode_number: n.inode_number,
        }
    }

    /// Writes the inodes below directory `i`, its listing, then its inode; returns where that
    /// is.
    fn dir(
        &mut self,
        nodes: &[Node<'t>],
        i: usize,
        files: &[FileData],
        ids: &Ids,
    ) -> Result<MetaRef, SquashfsError> {
        let mut entries = Vec::with_capacity(nodes[i].children.len());
        let mut subdirs = 0;
        for &c in &nodes[i].children {
            let n = &nodes[c];
            let at = match &n.kind {
                NodeKind::Dir => {
                    subdirs += 1;
                    self.dir(nodes, c, files, ids)?
                }
                NodeKind::File { size, .. } => {
                    let xattr = self.xattrs.index(n.path, n.xattrs)?;
                    let at = self.inodes.pos();
                    let f = &files[c];
                    let bytes =
                        inode::file_inode(&self.common(n, ids), f.start, *size, &f.blocks, xattr);
                    self.inodes.write(&bytes);
                    at
                }
                NodeKind::Symlink { target } => {
                    let xattr = self.xattrs.index(n.path, n.xattrs)?;
                    let at = self.inodes.pos();
                    self.inodes
                        .write(&inode::symlink_inode(&self.common(n, ids), target, xattr));
                    at
                }
            };
            entries.push(DirEntry {
                name: n.name,
                inode: at,
                inode_number: n.inode_number,
                basic_type: n.kind.basic_type(),
            });
        }
        let listing_at = self.dirs.pos();
        let (listing, index) = inode::listing(&entries, self.dirs.uncompressed_pos())?;
        self.dirs.write(&listing);
        let index: Vec<_> = index
            .into_iter()
            .map(|e| {
                let block = self.dirs.block_start(e.table_pos);
                u32::try_from(block)
                    .map(|b| (e, b))
                    .map_err(|_| SquashfsError::TooBig {
                        what: "directory table",
                    })
            })
            .collect::<Result<_, _>>()?;
        let n = &nodes[i];
        // The root's parent is one past the last inode, as mksquashfs writes it.
        let parent_inode = if i == 0 {
            nodes.len() as u32 + 1
        } else {
            nodes[n.parent].inode_number
        };
        let xattr = self.xattrs.index(n.path, n.xattrs)?;
        let bytes = inode::dir_inode(&DirInode {
            common: self.common(n, ids),
            nlink: subdirs + 2,
            listing: listing_at,
            listing_len: listing.len(),
            parent_inode,
            index: &index,
            xattr,
        })?;
        let at = self.inodes.pos();
        self.inodes.write(&bytes);
        Ok(at)
    }
}

struct Superblock {
    inode_count: u32,
    mkfs_time: u32,
    id_count: u16,
    root_inode: u64,
    bytes_used: u64,
    id_table_start: u64,
    /// The xattr id table's header, when some inode has extended attributes.
    xattr_id_table_start: Option<u64>,
    inode_table_start: u64,
    directory_table_start: u64,
    fragment_table_start: u64,
}

impl Superblock {
    fn to_bytes(&self) -> Vec<u8> {
        let mut le = inode::Le::default();
        le.u32(MAGIC)
            .u32(self.inode_count)
            .u32(self.mkfs_time)
            .u32(BLOCK_SIZE)
            .u32(0) // fragments
            .u16(GZIP)
            .u16(BLOCK_LOG)
            .u16(match self.xattr_id_table_start {
                Some(_) => NO_FRAGMENTS,
                None => NO_FRAGMENTS | NO_XATTRS,
            })
            .u16(self.id_count)
            .u16(4)
            .u16(0)
            .u64(self.root_inode)
            .u64(self.bytes_used)
            .u64(self.id_table_start)
            .u64(self.xattr_id_table_start.unwrap_or(NO_TABLE))
            .u64(self.inode_table_start)
            .u64(self.directory_table_start)
            .u64(self.fragment_table_start)
            .u64(NO_TABLE); // export (lookup) table
        debug_assert_eq!(le.0.len(), SUPERBLOCK_LEN);
        le.0
    }
}

#[cfg(test)]
mod tests;
