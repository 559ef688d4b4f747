//! A squashfs 4.0 reader, for what kubemint's writer (`pack::squashfs`) makes and what
//! mksquashfs makes without fragments: the superblock, the id table, every inode (directories,
//! files, symlinks; device nodes, FIFOs and sockets are listed as `other`) and every file's
//! data blocks, hashed as they are read. Extended attributes (the extension-release files'
//! `user.extension-release.strict`) are passed over. Nothing is held whole in memory but the
//! metadata: a file's bytes stream through sha256.
//!
//! Every problem names the place: the path, the inode number, the data block and its offset.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: u32 = 0x7371_7368;
const NO_TABLE: u64 = u64::MAX;
const STORED_BLOCK: u32 = 1 << 24;
const META_STORED: u16 = 0x8000;

/// The superblock's fields, as the rebuild check compares them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Superblock {
    pub inode_count: u32,
    pub mkfs_time: u32,
    pub block_size: u32,
    pub fragment_count: u32,
    pub compressor: u16,
    pub block_log: u16,
    pub flags: u16,
    pub id_count: u16,
    pub version: (u16, u16),
    pub root_inode: u64,
    pub bytes_used: u64,
    pub id_table: u64,
    pub xattr_table: u64,
    pub inode_table: u64,
    pub directory_table: u64,
    pub fragment_table: u64,
    pub export_table: u64,
}

impl Superblock {
    /// (field, value) pairs, in superblock order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("inode_count", self.inode_count.to_string()),
            ("mkfs_time", self.mkfs_time.to_string()),
            ("block_size", self.block_size.to_string()),
            ("fragment_count", self.fragment_count.to_string()),
            ("compressor", self.compressor.to_string()),
            ("block_log", self.block_log.to_string()),
            ("flags", format!("{:#06x}", self.flags)),
            ("id_count", self.id_count.to_string()),
            ("version", format!("{}.{}", self.version.0, self.version.1)),
            ("root_inode", self.root_inode.to_string()),
            ("bytes_used", self.bytes_used.to_string()),
            ("id_table", self.id_table.to_string()),
            ("inode_table", self.inode_table.to_string()),
            ("directory_table", self.directory_table.to_string()),
            ("fragment_table", self.fragment_table.to_string()),
            ("export_table", self.export_table.to_string()),
        ]
    }
}

/// One entry of the image, its path absolute ("/" for the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub inode: u32,
    /// `dir`, `file`, `symlink` or `other`.
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    pub size: u64,
    /// Files: the sha256 of the content, or why it could not be read.
    pub sha256: Option<Result<String, String>>,
    pub target: Option<String>,
    /// Files: each data block's offset in the image (from the file system's start), its
    /// stored size and whether it is compressed.
    pub blocks: Vec<Block>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub offset: u64,
    pub stored: u32,
    pub compressed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: not a squashfs 4.0 image: {why}")]
    Format { path: String, why: String },
}

/// A whole image: its superblock and entries by path.
#[derive(Clone, Debug)]
pub struct Image {
    pub superblock: Superblock,
    pub entries: BTreeMap<String, Entry>,
}

/// Reads the squashfs image at `offset` of `path` (0 for a bare image; a partition's start
/// for a disk).
pub fn read(path: &Path, offset: u64) -> Result<Image, ReadError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: shown.clone(),
        source,
    })?;
    Reader {
        file,
        base: offset,
        shown,
    }
    .image()
}

struct Reader {
    file: File,
    base: u64,
    shown: String,
}

/// A metadata table decompressed whole, and where each of its blocks starts in it.
struct Table {
    bytes: Vec<u8>,
    /// Block position (relative to the table's start) → offset in `bytes`.
    starts: BTreeMap<u64, usize>,
}

impl Table {
    fn at(&self, block: u64, offset: usize) -> Option<usize> {
        self.starts.get(&block).map(|s| s + offset)
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Reader {
    fn bad(&self, why: impl Into<String>) -> ReadError {
        ReadError::Format {
            path: self.shown.clone(),
            why: why.into(),
        }
    }

    fn read_at(&self, pos: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut buf = vec![0; len];
        self.file
            .read_exact_at(&mut buf, self.base + pos)
            .map_err(|source| ReadError::Io {
                path: format!("{} at byte {}", self.shown, self.base + pos),
                source,
            })?;
        Ok(buf)
    }

    /// One metadata block at `pos`: (its bytes, the position after it).
    fn meta_block(&self, pos: u64) -> Result<(Vec<u8>, u64), ReadError> {
        let head = self.read_at(pos, 2)?;
        let word = le16(&head, 0);
        let len = usize::from(word & !META_STORED);
        let raw = self.read_at(pos + 2, len)?;
        let bytes = if word & META_STORED != 0 {
            raw
        } else {
            inflate(&raw, 8192)
                .map_err(|e| self.bad(format!("metadata block at byte {pos}: {e}")))?
        };
        Ok((bytes, pos + 2 + len as u64))
    }

    fn table(&self, start: u64, end: u64) -> Result<Table, ReadError> {
        let mut t = Table {
            bytes: Vec::new(),
            starts: BTreeMap::new(),
        };
        let mut pos = start;
        while pos < end {
            let (bytes, next) = self.meta_block(pos)?;
            t.starts.insert(pos - start, t.bytes.len());
            t.bytes.extend(bytes);
            pos = next;
        }
        Ok(t)
    }

    fn image(&self) -> Result<Image, ReadError> {
        let b = self.read_at(0, 96)?;
        if le32(&b, 0) != MAGIC {
            return Err(self.bad("no squashfs magic at its start"));
        }
        let sb = Superblock {
            inode_count: le32(&b, 4),
            mkfs_time: le32(&b, 8),
            block_size: le32(&b, 12),
            fragment_count: le32(&b, 16),
            compressor: le16(&b, 20),
            block_log: le16(&b, 22),
            flags: le16(&b, 24),
            id_count: le16(&b, 26),
            version: (le16(&b, 28), le16(&b, 30)),
            root_inode: le64(&b, 32),
            bytes_used: le64(&b, 40),
            id_table: le64(&b, 48),
            xattr_table: le64(&b, 56),
            inode_table: le64(&b, 64),
            directory_table: le64(&b, 72),
            fragment_table: le64(&b, 80),
            export_table: le64(&b, 88),
        };
        if sb.version != (4, 0) {
            return Err(self.bad(format!("version {}.{}", sb.version.0, sb.version.1)));
        }
        if sb.compressor != 1 {
            return Err(self.bad(format!(
                "compressor {} (only gzip is read here)",
                sb.compressor
            )));
        }
        // The id table: its block list at id_table, the blocks before it.
        let id_blocks = usize::from(sb.id_count).div_ceil(2048);
        let list = self.read_at(sb.id_table, id_blocks * 8)?;
        let mut ids = Vec::new();
        let mut first_id_block = sb.id_table;
        for i in 0..id_blocks {
            let pos = le64(&list, i * 8);
            first_id_block = first_id_block.min(pos);
            let (bytes, _) = self.meta_block(pos)?;
            ids.extend(bytes.chunks_exact(4).map(|c| le32(c, 0)));
        }
        ids.truncate(usize::from(sb.id_count));
        // The directory table ends where the next table starts.
        let end = [
            sb.fragment_table,
            sb.export_table,
            sb.xattr_table,
            sb.id_table,
            first_id_block,
        ]
        .into_iter()
        .filter(|&p| p != NO_TABLE && p > sb.directory_table)
        .min()
        .unwrap_or(sb.bytes_used);
        let inodes = self.table(sb.inode_table, sb.directory_table)?;
        let dirs = self.table(sb.directory_table, end)?;
        let mut entries = BTreeMap::new();
        let root = (sb.root_inode >> 16, (sb.root_inode & 0xffff) as usize);
        let mut todo = vec![("/".to_owned(), root)];
        while let Some((path, (block, offset))) = todo.pop() {
            let at = inodes
                .at(block, offset)
                .ok_or_else(|| self.bad(format!("{path}: inode reference {block}:{offset}")))?;
            let (entry, listing) = self.inode(&inodes.bytes, at, &ids, &sb, &path)?;
            if let Some((start, offset, size)) = listing {
                for (name, r) in self.listing(&dirs, start, offset, size, &path)? {
                    let child = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    todo.push((child, r));
                }
            }
            entries.insert(path, entry);
        }
        Ok(Image {
            superblock: sb,
            entries,
        })
    }

    /// The inode at `at` of the inode table: the entry, and for a directory where its
    /// listing is (block, offset, size).
    #[allow(clippy::type_complexity)]
    fn inode(
        &self,
        t: &[u8],
        at: usize,
        ids: &[u32],
        sb: &Superblock,
        path: &str,
    ) -> Result<(Entry, Option<(u32, u16, u32)>), ReadError> {
        let need = |n: usize| {
            if at + n <= t.len() {
                Ok(())
            } else {
                Err(self.bad(format!("{path}: inode cut short")))
            }
        };
        need(16)?;
        let kind = le16(t, at);
        let id = |i: u16| {
            ids.get(usize::from(i))
                .copied()
                .ok_or_else(|| self.bad(format!("{path}: owner index {i} beyond the id table")))
        };
        let mut e = Entry {
            inode: le32(t, at + 12),
            kind: "other",
            mode: u32::from(le16(t, at + 2)) & 0o7777,
            uid: id(le16(t, at + 4))?,
            gid: id(le16(t, at + 6))?,
            mtime: le32(t, at + 8),
            size: 0,
            sha256: None,
            target: None,
            blocks: Vec::new(),
        };
        let b = at + 16;
        let mut listing = None;
        match kind {
            1 => {
                need(32)?;
                e.kind = "dir";
                listing = Some((le32(t, b), le16(t, b + 10), u32::from(le16(t, b + 8))));
            }
            8 => {
                need(40)?;
                e.kind = "dir";
                listing = Some((le32(t, b + 8), le16(t, b + 18), le32(t, b + 4)));
            }
            2 | 9 => {
                let (start, frag, size, list) = if kind == 2 {
                    need(32)?;
                    (
                        u64::from(le32(t, b)),
                        le32(t, b + 4),
                        u64::from(le32(t, b + 12)),
                        b + 16,
                    )
                } else {
                    need(56)?;
                    (le64(t, b), le32(t, b + 28), le64(t, b + 8), b + 40)
                };
                e.kind = "file";
                e.size = size;
                let bs = u64::from(sb.block_size);
                let count = if frag == u32::MAX {
                    size.div_ceil(bs)
                } else {
                    size / bs
                } as usize;
                need(list - at + count * 4)?;
                let mut pos = start;
                for i in 0..count {
                    let word = le32(t, list + i * 4);
                    let stored = word & !STORED_BLOCK;
                    e.blocks.push(Block {
                        offset: pos,
                        stored,
                        compressed: word & STORED_BLOCK == 0,
                    });
                    pos += u64::from(stored);
                }
                e.sha256 = Some(if frag != u32::MAX {
                    Err(format!(
                        "its tail is in fragment {frag}: fragments are not read here"
                    ))
                } else {
                    self.content(&e.blocks, size, bs)
                });
            }
            3 | 10 => {
                need(24)?;
                let len = le32(t, b + 4) as usize;
                need(24 + len)?;
                e.kind = "symlink";
                e.size = len as u64;
                e.target = Some(String::from_utf8_lossy(&t[b + 8..b + 8 + len]).into_owned());
            }
            _ => {}
        }
        Ok((e, listing))
    }

    /// The sha256 of a file's content, or which block could not be read.
    fn content(&self, blocks: &[Block], size: u64, block_size: u64) -> Result<String, String> {
        let mut hash = Sha256::new();
        let mut left = size;
        for (i, b) in blocks.iter().enumerate() {
            let want = left.min(block_size) as usize;
            let bytes = if b.stored == 0 {
                vec![0; want]
            } else {
                let raw = self
                    .read_at(b.offset, b.stored as usize)
                    .map_err(|e| format!("data block {i} at byte {}: {e}", b.offset))?;
                if b.compressed {
                    inflate(&raw, want).map_err(|e| {
                        format!("data block {i} at byte {} does not inflate: {e}", b.offset)
                    })?
                } else {
                    raw
                }
            };
            if bytes.len() != want {
                return Err(format!(
                    "data block {i} at byte {} holds {} bytes, expected {want}",
                    b.offset,
                    bytes.len()
                ));
            }
            hash.update(&bytes);
            left -= want as u64;
        }
        Ok(hex::encode(hash.finalize()))
    }

    /// A directory's children: (name, inode reference).
    #[allow(clippy::type_complexity)]
    fn listing(
        &self,
        t: &Table,
        block: u32,
        offset: u16,
        size: u32,
        path: &str,
    ) -> Result<Vec<(String, (u64, usize))>, ReadError> {
        let mut out = Vec::new();
        if size <= 3 {
            return Ok(out);
        }
        let start = t
            .at(u64::from(block), usize::from(offset))
            .ok_or_else(|| self.bad(format!("{path}: listing reference {block}:{offset}")))?;
        let end = start + size as usize - 3;
        if end > t.bytes.len() {
            return Err(self.bad(format!("{path}: listing beyond the directory table")));
        }
        let b = &t.bytes;
        let mut at = start;
        while at + 12 <= end {
            let count = le32(b, at) as usize + 1;
            let inode_block = u64::from(le32(b, at + 4));
            at += 12;
            for _ in 0..count {
                if at + 8 > end {
                    return Err(self.bad(format!("{path}: listing cut short")));
                }
                let off = usize::from(le16(b, at));
                let len = usize::from(le16(b, at + 6)) + 1;
                if at + 8 + len > end {
                    return Err(self.bad(format!("{path}: listing cut short")));
                }
                let name = String::from_utf8_lossy(&b[at + 8..at + 8 + len]).into_owned();
                if name.contains('/') || name == "." || name == ".." {
                    return Err(self.bad(format!("{path}: entry name {name:?}")));
                }
                out.push((name, (inode_block, off)));
                at += 8 + len;
            }
        }
        Ok(out)
    }
}

fn inflate(raw: &[u8], hint: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(hint);
    flate2::read::ZlibDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Content, Tree};
    use crate::util::epoch::Epoch;

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let mut tree = Tree::new();
        tree.add_file("/usr/a", 0o644, Content::Inline(b"hello".to_vec()))
            .unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        tree.add_file("/usr/lib/big", 0o755, Content::Inline(big.clone()))
            .unwrap();
        tree.add_symlink("/usr/bin/x", "/usr/a").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        let epoch = Epoch::new(1_700_000_000).unwrap();
        crate::pack::squashfs::squashfs_file(&tree, "/", epoch, &path).unwrap();
        let img = read(&path, 0).unwrap();
        let paths: Vec<&str> = img.entries.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/",
                "/usr",
                "/usr/a",
                "/usr/bin",
                "/usr/bin/x",
                "/usr/lib",
                "/usr/lib/big"
            ]
        );
        let big_e = &img.entries["/usr/lib/big"];
        assert_eq!(big_e.size, 300_000);
        assert_eq!(
            big_e.sha256.clone().unwrap().unwrap(),
            crate::util::hash::sha256_hex(&big)
        );
        assert_eq!(big_e.mode, 0o755);
        assert_eq!(big_e.blocks.len(), 3);
        assert_eq!(img.entries["/usr/bin/x"].target.as_deref(), Some("/usr/a"));
        assert_eq!(img.entries["/usr/a"].mtime, 1_700_000_000);
        assert_eq!(img.superblock.mkfs_time, 1_700_000_000);
    }
}
