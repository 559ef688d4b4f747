//! The tree as squashfs sees it (directories with children sorted by name, inode numbers), and
//! the on-disk encoding of inodes and directory listings (squashfs 4.0, little-endian).

use super::SquashfsError;
use super::meta::{METADATA_SIZE, MetaRef};
use crate::tree::{Content, Entry, Kind, Tree};
use std::collections::BTreeMap;

/// The longest name squashfs stores (its size field holds length - 1 in a byte's range).
pub const NAME_MAX: usize = 256;

/// Entries one directory header may introduce.
const HEADER_MAX: usize = 256;

/// Basic and extended inode types.
pub const DIR: u16 = 1;
pub const FILE: u16 = 2;
pub const SYMLINK: u16 = 3;
pub const LDIR: u16 = 8;
pub const LFILE: u16 = 9;
pub const LSYMLINK: u16 = 10;

/// No fragment, no xattr.
pub const INVALID_U32: u32 = u32::MAX;

pub enum NodeKind<'t> {
    Dir,
    File {
        content: &'t Content,
        size: u64,
        sha256: &'t str,
    },
    Symlink {
        target: &'t str,
    },
}

impl NodeKind<'_> {
    /// The basic type, as directory entries give it.
    pub fn basic_type(&self) -> u16 {
        match self {
            NodeKind::Dir => DIR,
            NodeKind::File { .. } => FILE,
            NodeKind::Symlink { .. } => SYMLINK,
        }
    }
}

pub struct Node<'t> {
    /// The tree's path, for errors.
    pub path: &'t str,
    /// The name in its directory (empty for the root).
    pub name: &'t str,
    pub kind: NodeKind<'t>,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    /// Children of a directory, sorted by name (bytes), as squashfs requires.
    pub children: Vec<usize>,
    pub parent: usize,
    /// 1 to the number of inodes, in the order the inodes are written: each directory after
    /// its children, the root last.
    pub inode_number: u32,
    /// Extended attributes by full name, sorted (mostly none).
    pub xattrs: &'t BTreeMap<String, Vec<u8>>,
}

/// No extended attributes, for a root the tree does not hold.
static NO_XATTRS: BTreeMap<String, Vec<u8>> = BTreeMap::new();

/// The part of `tree` below `strip` (all of it for `/`) as nodes, the root first, then in the
/// tree's order. The root is `strip`'s entry if the tree has it, else a 0755 root directory.
pub fn hierarchy<'t>(tree: &'t Tree, strip: &'t str) -> Result<Vec<Node<'t>>, SquashfsError> {
    let root = if strip == "/" { None } else { tree.get(strip) };
    if let Some(e) = root
        && e.kind != Kind::Dir
    {
        return Err(SquashfsError::NotADir {
            path: strip.to_owned(),
        });
    }
    let mut nodes = vec![Node {
        path: strip,
        name: "",
        kind: NodeKind::Dir,
        mode: root.map_or(0o755, |e| e.mode as u16),
        uid: root.map_or(0, |e| e.uid),
        gid: root.map_or(0, |e| e.gid),
        children: Vec::new(),
        parent: 0,
        inode_number: 0,
        xattrs: root.map_or(&NO_XATTRS, |e| &e.xattrs),
    }];
    let mut dirs: BTreeMap<&str, usize> = BTreeMap::from([("", 0)]);
    for (path, entry) in tree.iter() {
        let rel = match strip {
            "/" => &path[1..],
            _ => match path.strip_prefix(strip).and_then(|p| p.strip_prefix('/')) {
                Some(rel) => rel,
                None => continue,
            },
        };
        let (parent_rel, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if name.len() > NAME_MAX {
            return Err(SquashfsError::NameTooLong {
                path: path.to_owned(),
                len: name.len(),
            });
        }
        let parent = *dirs
            .get(parent_rel)
            .ok_or_else(|| SquashfsError::NoParent {
                path: path.to_owned(),
            })?;
        let i = nodes.len();
        nodes.push(node(path, name, entry, parent));
        nodes[parent].children.push(i);
        if entry.kind == Kind::Dir {
            dirs.insert(rel, i);
        }
    }
    let names: Vec<&str> = nodes.iter().map(|n| n.name).collect();
    for n in &mut nodes {
        n.children
            .sort_by(|a, b| names[*a].as_bytes().cmp(names[*b].as_bytes()));
    }
    let mut next = 1;
    number(&mut nodes, 0, &mut next);
    Ok(nodes)
}

fn node<'t>(path: &'t str, name: &'t str, e: &'t Entry, parent: usize) -> Node<'t> {
    let kind = match &e.kind {
        Kind::Dir => NodeKind::Dir,
        Kind::File {
            content,
            size,
            sha256,
        } => NodeKind::File {
            content,
            size: *size,
            sha256,
        },
        Kind::Symlink { target } => NodeKind::Symlink { target },
    };
    Node {
        path,
        name,
        kind,
        mode: e.mode as u16,
        uid: e.uid,
        gid: e.gid,
        children: Vec::new(),
        parent,
        inode_number: 0,
        xattrs: &e.xattrs,
    }
}

/// Numbers inodes in the order they are written: children in name order, each directory
/// after everything below it.
fn number(nodes: &mut [Node], i: usize, next: &mut u32) {
    for k in 0..nodes[i].children.len() {
        let c = nodes[i].children[k];
        if nodes[c].kind.basic_type() == DIR {
            number(nodes, c, next);
        } else {
            nodes[c].inode_number = *next;
            *next += 1;
        }
    }
    nodes[i].inode_number = *next;
    *next += 1;
}

/// Little-endian fields, appended.
#[derive(Default)]
pub struct Le(pub Vec<u8>);

impl Le {
    pub fn u16(&mut self, v: u16) -> &mut Le {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Le {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Le {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Le {
        self.0.extend_from_slice(v);
        self
    }
}

/// What every inode starts with.
pub struct Common {
    pub mode: u16,
    pub uid_index: u16,
    pub gid_index: u16,
    pub mtime: u32,
    pub inode_number: u32,
}

impl Common {
    fn put(&self, le: &mut Le, inode_type: u16) {
        le.u16(inode_type)
            .u16(self.mode & 0o7777)
            .u16(self.uid_index)
            .u16(self.gid_index)
            .u32(self.mtime)
            .u32(self.inode_number);
    }
}

/// A regular file's inode: basic while its size and first block fit 32 bits and it has no
/// extended attributes (`xattr` is [`INVALID_U32`]), else extended, carrying the index of its
/// attribute list.
pub fn file_inode(c: &Common, blocks_start: u64, size: u64, blocks: &[u32], xattr: u32) -> Vec<u8> {
    let mut le = Le::default();
    match (u32::try_from(blocks_start), u32::try_from(size)) {
        (Ok(start), Ok(size)) if xattr == INVALID_U32 => {
            c.put(&mut le, FILE);
            le.u32(start).u32(INVALID_U32).u32(0).u32(size);
        }
        _ => {
            c.put(&mut le, LFILE);
            le.u64(blocks_start)
                .u64(size)
                .u64(0) // sparse bytes
                .u32(1) // nlink
                .u32(INVALID_U32) // no fragment
                .u32(0)
                .u32(xattr);
        }
    }
    for b in blocks {
        le.u32(*b);
    }
    le.0
}

/// A symlink's inode: basic, or extended (the attribute list's index after the target) when
/// it has extended attributes.
pub fn symlink_inode(c: &Common, target: &str, xattr: u32) -> Vec<u8> {
    let mut le = Le::default();
    let extended = xattr != INVALID_U32;
    c.put(&mut le, if extended { LSYMLINK } else { SYMLINK });
    le.u32(1).u32(target.len() as u32).bytes(target.as_bytes());
    if extended {
        le.u32(xattr);
    }
    le.0
}

/// One entry of a directory listing.
pub struct DirEntry<'t> {
    pub name: &'t str,
    pub inode: MetaRef,
    pub inode_number: u32,
    pub basic_type: u16,
}

/// A directory index entry: where a header starts (offset in the listing, uncompressed
/// position in the directory table), and the first name after it.
pub struct IndexEntry<'t> {
    pub listing_offset: u32,
    pub table_pos: u64,
    pub name: &'t str,
}

/// A directory's listing as squashfs stores it: runs of entries behind headers. A new header
/// starts every 256 entries, where the entries' inodes move to another metadata block, where
/// an inode number is too far from the header's for a 16-bit delta, and where the listing has
/// grown by more than a metadata block since the last indexed header: those last headers are
/// indexed (as mksquashfs does), so that lookups in a large directory can skip ahead.
/// `table_pos` is where the listing starts in the directory table's uncompressed stream.
pub fn listing<'t>(
    entries: &[DirEntry<'t>],
    table_pos: u64,
) -> Result<(Vec<u8>, Vec<IndexEntry<'t>>), SquashfsError> {
    let mut le = Le::default();
    let mut index = Vec::new();
    let mut indexed_at = 0usize;
    // (offset of the count field, entries so far, block, base inode number)
    let mut header: Option<(usize, usize, u64, u32)> = None;
    for e in entries {
        let size = 8 + e.name.len();
        let fits = header.is_some_and(|(_, count, block, base)| {
            count < HEADER_MAX
                && block == e.inode.block
                && i16::try_from(i64::from(e.inode_number) - i64::from(base)).is_ok()
        });
        let grown = header.is_some() && le.0.len() + size - indexed_at > METADATA_SIZE;
        if !fits || grown {
            if grown {
                indexed_at = le.0.len();
                index.push(IndexEntry {
                    listing_offset: indexed_at as u32,
                    table_pos: table_pos + indexed_at as u64,
                    name: e.name,
                });
            }
            let block = u32::try_from(e.inode.block).map_err(|_| SquashfsError::TooBig {
                what: "inode table",
            })?;
            header = Some((le.0.len(), 0, e.inode.block, e.inode_number));
            le.u32(0).u32(block).u32(e.inode_number);
        }
        let (at, count, _, base) = header.as_mut().expect("a header is open");
        *count += 1;
        let delta = (i64::from(e.inode_number) - i64::from(*base)) as i16;
        le.0[*at..*at + 4].copy_from_slice(&(*count as u32 - 1).to_le_bytes());
        le.u16(e.inode.offset)
            .u16(delta as u16)
            .u16(e.basic_type)
            .u16((e.name.len() - 1) as u16)
            .bytes(e.name.as_bytes());
    }
    Ok((le.0, index))
}

/// Where a directory's listing is and how it links up.
pub struct DirInode<'a, 't> {
    pub common: Common,
    /// Subdirectories + 2.
    pub nlink: u32,
    /// The listing's position in the directory table.
    pub listing: MetaRef,
    pub listing_len: usize,
    pub parent_inode: u32,
    /// Index entries with the table offset of each one's block.
    pub index: &'a [(IndexEntry<'t>, u32)],
    /// The index of its extended attribute list, or [`INVALID_U32`].
    pub xattr: u32,
}

/// A directory's inode: basic when it has no index, no extended attributes and its listing
/// fits 16 bits, else extended.
pub fn dir_inode(d: &DirInode) -> Result<Vec<u8>, SquashfsError> {
    let mut le = Le::default();
    // The stored size counts 3 bytes more than the listing: the "." and ".." readers invent.
    let size = d.listing_len + 3;
    let start = u32::try_from(d.listing.block).map_err(|_| SquashfsError::TooBig {
        what: "directory table",
    })?;
    match u16::try_from(size) {
        Ok(size) if d.index.is_empty() && d.xattr == INVALID_U32 => {
            d.common.put(&mut le, DIR);
            le.u32(start)
                .u32(d.nlink)
                .u16(size)
                .u16(d.listing.offset)
                .u32(d.parent_inode);
        }
        _ => {
            let size = u32::try_from(size).map_err(|_| SquashfsError::TooBig {
                what: "directory listing",
            })?;
            let count = u16::try_from(d.index.len()).map_err(|_| SquashfsError::TooBig {
                what: "directory index",
            })?;
            d.common.put(&mut le, LDIR);
            le.u32(d.nlink)
                .u32(size)
                .u32(start)
                .u32(d.parent_inode)
                .u16(count)
                .u16(d.listing.offset)
                .u32(d.xattr);
            for (entry, block) in d.index {
                le.u32(entry.listing_offset)
                    .u32(*block)
                    .u32((entry.name.len() - 1) as u32)
                    .bytes(entry.name.as_bytes());
            }
        }
    }
    Ok(le.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Tree {
        let mut t = Tree::new();
        let c = |s: &str| Content::Inline(s.as_bytes().to_vec());
        t.add_file("/usr/a/x-y", 0o644, c("1")).unwrap();
        t.add_file("/usr/a/x/z", 0o600, c("2")).unwrap();
        t.add_symlink("/usr/a/l", "/usr/a/x/z").unwrap();
        t.add_file("/etc/e", 0o644, c("3")).unwrap();
        t.add_dir("/usr/empty", 0o700).unwrap();
        t
    }

    #[test]
    fn children_sorted_by_name_and_numbered_after_their_contents() {
        let t = tree();
        let nodes = hierarchy(&t, "/").unwrap();
        let name = |i: usize| nodes[i].name;
        let kids = |i: usize| {
            nodes[i]
                .children
                .iter()
                .map(|&c| name(c))
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(0), ["etc", "usr"]);
        let usr = nodes[0].children[1];
        assert_eq!(kids(usr), ["a", "empty"]);
        let a = nodes[usr].children[0];
        assert_eq!(kids(a), ["l", "x", "x-y"]);
        // Post-order: etc/e, etc, a/l, a/x/z, a/x, a/x-y, a, empty, usr, root.
        let order: Vec<&str> = {
            let mut v: Vec<_> = nodes.iter().collect();
            v.sort_by_key(|n| n.inode_number);
            v.iter().map(|n| n.path).collect()
        };
        assert_eq!(
            order,
            [
                "/etc/e",
                "/etc",
                "/usr/a/l",
                "/usr/a/x/z",
                "/usr/a/x",
                "/usr/a/x-y",
                "/usr/a",
                "/usr/empty",
                "/usr",
                "/"
            ]
        );
        // Below /usr, with /usr's own mode for the root.
        let nodes = hierarchy(&t, "/usr").unwrap();
        assert_eq!(nodes.len(), 7);
        assert_eq!(nodes[0].mode, 0o755);
        assert_eq!(nodes[0].inode_number, 7);
        assert!(matches!(
            hierarchy(&t, "/usr/a/x-y"),
            Err(SquashfsError::NotADir { .. })
        ));
    }

    #[test]
    fn names_over_256_bytes_are_refused() {
        let mut t = Tree::new();
        t.add_file(
            &format!("/usr/{}", "n".repeat(256)),
            0o644,
            Content::Inline(vec![]),
        )
        .unwrap();
        hierarchy(&t, "/").unwrap();
        t.add_file(
            &format!("/usr/{}", "n".repeat(257)),
            0o644,
            Content::Inline(vec![]),
        )
        .unwrap();
        assert!(matches!(
            hierarchy(&t, "/"),
            Err(SquashfsError::NameTooLong { len: 257, .. })
        ));
    }

    fn entry(name: &str, block: u64, number: u32) -> DirEntry<'_> {
        DirEntry {
            name,
            inode: MetaRef {
                block,
                offset: (number % 100) as u16,
            },
            inode_number: number,
            basic_type: FILE,
        }
    }

    /// (count, block, base, names) of each header.
    fn headers(listing: &[u8]) -> Vec<(u32, u32, u32, Vec<String>)> {
        let mut out = Vec::new();
        let mut i = 0;
        let u32_at = |i: usize| u32::from_le_bytes(listing[i..i + 4].try_into().unwrap());
        let u16_at = |i: usize| u16::from_le_bytes(listing[i..i + 2].try_into().unwrap());
        while i < listing.len() {
            let (count, block, base) = (u32_at(i) + 1, u32_at(i + 4), u32_at(i + 8));
            i += 12;
            let mut names = Vec::new();
            for _ in 0..count {
                let len = usize::from(u16_at(i + 6)) + 1;
                names.push(String::from_utf8(listing[i + 8..i + 8 + len].to_vec()).unwrap());
                i += 8 + len;
            }
            out.push((count, block, base, names));
        }
        out
    }

    #[test]
    fn headers_split_on_block_count_and_distance_and_large_listings_are_indexed() {
        let names: Vec<String> = (0..700).map(|i| format!("file-{i:04}")).collect();
        let entries: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let block = if i < 10 { 0 } else { 9000 };
                let number = if i == 20 { 40_000 } else { i as u32 + 1 };
                entry(n, block, number)
            })
            .collect();
        let (bytes, index) = listing(&entries, 100).unwrap();
        let hs = headers(&bytes);
        // 0..10 in block 0; 10..20; 20 alone (too far); 21.. in runs of at most 256, and
        // a new header each time the listing grew by 8 KiB since the last index point.
        assert_eq!((hs[0].0, hs[0].1, hs[0].2), (10, 0, 1));
        assert_eq!((hs[1].0, hs[1].1, hs[1].2), (10, 9000, 11));
        assert_eq!((hs[2].0, hs[2].2), (1, 40_000));
        assert!(hs.iter().all(|h| h.0 <= 256));
        let all: Vec<String> = hs.iter().flat_map(|h| h.3.clone()).collect();
        assert_eq!(all, names);
        assert!(!index.is_empty());
        for ix in &index {
            let at = ix.listing_offset as usize;
            // Each index entry points at a header whose first name it carries.
            let first = &headers(&bytes[at..])[0].3[0];
            assert_eq!(first, ix.name);
            assert_eq!(ix.table_pos, 100 + at as u64);
        }
        let gaps: Vec<u32> = std::iter::once(0)
            .chain(index.iter().map(|i| i.listing_offset))
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        assert!(
            gaps.iter().all(|g| *g as usize <= METADATA_SIZE),
            "{gaps:?}"
        );
        // A small directory has no index.
        let (_, index) = listing(&entries[..5], 0).unwrap();
        assert!(index.is_empty());
    }

    #[test]
    fn inode_layouts() {
        let c = Common {
            mode: 0o100_755,
            uid_index: 1,
            gid_index: 2,
            mtime: 7,
            inode_number: 9,
        };
        let f = file_inode(&c, 96, 5, &[13], INVALID_U32);
        assert_eq!(f.len(), 32 + 4);
        assert_eq!(&f[..4], &[2, 0, 0xed, 0x01]);
        let big = file_inode(&c, 96, 5 << 32, &[1, 2], INVALID_U32);
        assert_eq!(big.len(), 56 + 8);
        assert_eq!(big[0], LFILE as u8);
        assert_eq!(&big[52..56], &INVALID_U32.to_le_bytes());
        // Extended attributes make any file's inode extended, the list's index before the
        // block sizes.
        let tagged = file_inode(&c, 96, 5, &[13], 3);
        assert_eq!((tagged.len(), tagged[0]), (56 + 4, LFILE as u8));
        assert_eq!(&tagged[52..56], &3u32.to_le_bytes());
        assert_eq!(&tagged[56..], &13u32.to_le_bytes());
        let s = symlink_inode(&c, "/x", INVALID_U32);
        assert_eq!(s.len(), 24 + 2);
        let s = symlink_inode(&c, "/x", 4);
        assert_eq!((s.len(), s[0]), (24 + 2 + 4, LSYMLINK as u8));
        assert_eq!(&s[26..], &4u32.to_le_bytes());
        let d = |len, index, xattr| DirInode {
            common: Common {
                mode: 0o755,
                uid_index: 0,
                gid_index: 0,
                mtime: 7,
                inode_number: 1,
            },
            nlink: 2,
            listing: MetaRef {
                block: 10,
                offset: 20,
            },
            listing_len: len,
            parent_inode: 3,
            index,
            xattr,
        };
        assert_eq!(dir_inode(&d(100, &[], INVALID_U32)).unwrap().len(), 32);
        let long = dir_inode(&d(70_000, &[], INVALID_U32)).unwrap();
        assert_eq!((long.len(), long[0]), (40, LDIR as u8));
        let tagged = dir_inode(&d(100, &[], 5)).unwrap();
        assert_eq!((tagged.len(), tagged[0]), (40, LDIR as u8));
        assert_eq!(&tagged[36..40], &5u32.to_le_bytes());
        let ix = [(
            IndexEntry {
                listing_offset: 8000,
                table_pos: 0,
                name: "abc",
            },
            77,
        )];
        assert_eq!(
            dir_inode(&d(9000, &ix, INVALID_U32)).unwrap().len(),
            40 + 12 + 3
        );
    }
}
