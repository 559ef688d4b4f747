//! The EFI system partition of a bootable disk: a FAT32 file system written in-process,
//! deterministically. Directories and files are laid out contiguously in the order given, every
//! timestamp 1980-01-01 00:00 (FAT's first day), long names as VFAT LFN entries, a fixed volume
//! id; files are copied from disk, never held whole in memory. Write-once: nothing is read back.
//!
//! (The `fatfs` crate writes LFN entries for `.` and `..`, points `..` at cluster 2 and dates
//! with month 0, which `fsck.vfat` refuses; mkfs.vfat and mtools are tools of the host.)

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

const SECTOR: u64 = 512;
const RESERVED: u32 = 32;
const DATE_1980_01_01: u16 = (1 << 5) | 1;

/// What a file of the partition holds.
#[derive(Clone, Debug)]
pub enum Data {
    Bytes(Vec<u8>),
    File { path: PathBuf, size: u64 },
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::File { size, .. } => *size,
        }
    }
}

enum Node {
    /// Children by name, and their order.
    Dir(BTreeMap<String, Node>, Vec<String>),
    File(Data),
}

/// A FAT32 file system being described, then written.
pub struct Fat {
    root: Node,
    volume_id: u32,
    label: [u8; 11],
}

impl Fat {
    pub fn new(volume_id: u32, label: &str) -> Fat {
        let mut l = [b' '; 11];
        let n = label.len().min(11);
        l[..n].copy_from_slice(&label.as_bytes()[..n]);
        Fat {
            root: Node::Dir(BTreeMap::new(), Vec::new()),
            volume_id,
            label: l,
        }
    }

    /// Adds a file at `path` (`/`-separated, relative), its directories made as needed.
    pub fn file(&mut self, path: &str, data: Data) {
        let parts: Vec<&str> = path.split('/').collect();
        let mut cur = &mut self.root;
        for (i, p) in parts.iter().enumerate() {
            let Node::Dir(children, order) = cur else {
                unreachable!("a file's parent is a directory")
            };
            if !children.contains_key(*p) {
                order.push((*p).to_owned());
                let node = if i + 1 == parts.len() {
                    Node::File(data.clone())
                } else {
                    Node::Dir(BTreeMap::new(), Vec::new())
                };
                children.insert((*p).to_owned(), node);
            }
            cur = children.get_mut(*p).expect("inserted");
        }
    }

    /// The bytes every file takes, for sizing the partition.
    pub fn content_size(&self) -> u64 {
        fn walk(n: &Node) -> u64 {
            match n {
                Node::File(d) => d.len(),
                Node::Dir(c, _) => c.values().map(walk).sum::<u64>() + 4096,
            }
        }
        walk(&self.root)
    }

    /// Writes the file system, `size` bytes, to `out` at its current position (regions of
    /// zeros are skipped: `out` must read back zeros there, as a new or truncated file does).
    /// `hidden_sectors` is the partition's first sector on its disk.
    pub fn write<W: Write + Seek>(
        self,
        out: &mut W,
        size: u64,
        hidden_sectors: u32,
    ) -> io::Result<()> {
        let start = out.stream_position()?;
        let total = u32::try_from(size / SECTOR).map_err(io::Error::other)?;
        let spc: u32 = if size <= 256 << 20 { 1 } else { 8 };
        // The smallest FAT that covers every cluster the data area can hold.
        let mut fatsz = 1u32;
        let clusters = loop {
            let clusters = (total - RESERVED - 2 * fatsz) / spc;
            let need = ((clusters + 2) * 4).div_ceil(SECTOR as u32);
            if need <= fatsz {
                break clusters;
            }
            fatsz = need;
        };
        if clusters < 65525 {
            return Err(io::Error::other(format!(
                "an ESP of {size} bytes is too small for FAT32 ({clusters} clusters)"
            )));
        }
        let csize = u64::from(spc) * SECTOR;
        let data_start = u64::from(RESERVED + 2 * fatsz) * SECTOR;
        let mut fat: Vec<u32> = vec![0; clusters as usize + 2];
        fat[0] = 0x0FFF_FFF8;
        fat[1] = 0x0FFF_FFFF;
        let mut layout = Layout {
            fat: &mut fat,
            next: 2,
            limit: clusters + 2,
            csize,
            writes: Vec::new(),
        };
        let Node::Dir(children, order) = &self.root else {
            unreachable!("the root is a directory")
        };
        let root_cluster = layout.alloc(entries_of(order, true) * 32)?;
        layout.dir(&self.root, root_cluster, 0, true, &self.label)?;
        let _ = children;
        let (next, writes) = (layout.next, layout.writes);
        let at = |c: u32| start + data_start + u64::from(c - 2) * csize;
        for (cluster, what) in writes {
            out.seek(SeekFrom::Start(at(cluster)))?;
            match what {
                Write_::Bytes(b) => out.write_all(&b)?,
                Write_::Data(Data::Bytes(b)) => out.write_all(&b)?,
                Write_::Data(Data::File { path, size }) => {
                    let copied = io::copy(&mut File::open(&path)?.take(size), out)?;
                    if copied != size {
                        return Err(io::Error::other(format!(
                            "{}: changed while being copied",
                            path.display()
                        )));
                    }
                }
            }
        }
        // Boot sector and FSInfo, their backups at sectors 6 and 7.
        let mut bs = [0u8; SECTOR as usize];
        bs[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
        bs[3..11].copy_from_slice(b"KUBEMINT");
        bs[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
        bs[13] = spc as u8;
        bs[14..16].copy_from_slice(&(RESERVED as u16).to_le_bytes());
        bs[16] = 2;
        bs[21] = 0xF8;
        bs[24..26].copy_from_slice(&32u16.to_le_bytes());
        bs[26..28].copy_from_slice(&64u16.to_le_bytes());
        bs[28..32].copy_from_slice(&hidden_sectors.to_le_bytes());
        bs[32..36].copy_from_slice(&total.to_le_bytes());
        bs[36..40].copy_from_slice(&fatsz.to_le_bytes());
        bs[44..48].copy_from_slice(&root_cluster.to_le_bytes());
        bs[48..50].copy_from_slice(&1u16.to_le_bytes());
        bs[50..52].copy_from_slice(&6u16.to_le_bytes());
        bs[64] = 0x80;
        bs[66] = 0x29;
        bs[67..71].copy_from_slice(&self.volume_id.to_le_bytes());
        bs[71..82].copy_from_slice(&self.label);
        bs[82..90].copy_from_slice(b"FAT32   ");
        bs[510] = 0x55;
        bs[511] = 0xAA;
        let mut fsinfo = [0u8; SECTOR as usize];
        fsinfo[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
        fsinfo[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
        fsinfo[488..492].copy_from_slice(&(clusters + 2 - next).to_le_bytes());
        fsinfo[492..496].copy_from_slice(&next.to_le_bytes());
        fsinfo[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
        let mut third = [0u8; SECTOR as usize];
        third[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
        for base in [0u64, 6] {
            out.seek(SeekFrom::Start(start + base * SECTOR))?;
            out.write_all(&bs)?;
            out.write_all(&fsinfo)?;
            out.write_all(&third)?;
        }
        let table: Vec<u8> = fat.iter().flat_map(|v| v.to_le_bytes()).collect();
        for copy in 0..2u64 {
            out.seek(SeekFrom::Start(
                start + (u64::from(RESERVED) + copy * u64::from(fatsz)) * SECTOR,
            ))?;
            out.write_all(&table)?;
        }
        out.seek(SeekFrom::Start(start + size))?;
        Ok(())
    }
}

/// What goes where: a directory's entries, or a file's data.
enum Write_ {
    Bytes(Vec<u8>),
    Data(Data),
}

struct Layout<'a> {
    fat: &'a mut Vec<u32>,
    next: u32,
    limit: u32,
    csize: u64,
    writes: Vec<(u32, Write_)>,
}

impl Layout<'_> {
    /// Clusters for `bytes`, chained in the FAT; the first, or 0 for nothing.
    fn alloc(&mut self, bytes: u64) -> io::Result<u32> {
        if bytes == 0 {
            return Ok(0);
        }
        let n = u32::try_from(bytes.div_ceil(self.csize)).map_err(io::Error::other)?;
        let first = self.next;
        if first + n > self.limit {
            return Err(io::Error::other("the ESP is full"));
        }
        for c in first..first + n {
            self.fat[c as usize] = if c + 1 < first + n {
                c + 1
            } else {
                0x0FFF_FFFF
            };
        }
        self.next += n;
        Ok(first)
    }

    /// Lays out a directory at `me` and, depth first, everything in it.
    fn dir(
        &mut self,
        node: &Node,
        me: u32,
        parent: u32,
        is_root: bool,
        label: &[u8; 11],
    ) -> io::Result<()> {
        let Node::Dir(children, order) = node else {
            unreachable!("laid out as a directory")
        };
        let mut ents: Vec<[u8; 32]> = Vec::new();
        if is_root {
            ents.push(sfn_entry(label, 0x08, 0, 0));
        } else {
            ents.push(sfn_entry(b".          ", 0x10, me, 0));
            ents.push(sfn_entry(b"..         ", 0x10, parent, 0));
        }
        let mut used: Vec<[u8; 11]> = Vec::new();
        let mut placed: Vec<(u32, &Node)> = Vec::new();
        for name in order {
            let child = &children[name];
            let (first, size, attr) = match child {
                Node::File(d) => {
                    let size = u32::try_from(d.len()).map_err(|_| {
                        io::Error::other(format!("{name}: FAT32 files are at most 4 GiB"))
                    })?;
                    (self.alloc(d.len())?, size, 0x20)
                }
                Node::Dir(_, o) => (self.alloc(entries_of(o, false) * 32)?, 0, 0x10),
            };
            let short = short_name(name, &used);
            used.push(short);
            if needs_lfn(name) {
                ents.extend(lfn_entries(name, &short));
            }
            ents.push(sfn_entry(&short, attr, first, size));
            placed.push((first, child));
        }
        self.writes
            .push((me, Write_::Bytes(ents.into_iter().flatten().collect())));
        for (first, child) in placed {
            match child {
                Node::File(d) => {
                    if first != 0 {
                        self.writes.push((first, Write_::Data(d.clone())));
                    }
                }
                Node::Dir(..) => {
                    self.dir(child, first, if is_root { 0 } else { me }, false, label)?
                }
            }
        }
        Ok(())
    }
}

/// Directory entries a directory needs (with room for the end marker).
fn entries_of(order: &[String], is_root: bool) -> u64 {
    let mut n = if is_root { 1 } else { 2 };
    for name in order {
        n += 1 + if needs_lfn(name) {
            name.encode_utf16().count().div_ceil(13)
        } else {
            0
        };
    }
    n as u64 + 1
}

fn needs_lfn(name: &str) -> bool {
    let (base, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let ok = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
    };
    !(ok(base, 8) && (ext.is_empty() || ok(ext, 3)))
}

fn short_name(name: &str, used: &[[u8; 11]]) -> [u8; 11] {
    let mut s = [b' '; 11];
    let clean = |x: &str| -> Vec<u8> {
        x.bytes()
            .filter(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) if !b.is_empty() => (b, e),
        _ => (name, ""),
    };
    let (b, e) = (clean(base), clean(ext));
    let e = &e[..e.len().min(3)];
    s[8..8 + e.len()].copy_from_slice(e);
    if !needs_lfn(name) {
        s[..b.len()].copy_from_slice(&b);
        return s;
    }
    for n in 1..1000 {
        let tail = format!("~{n}");
        let keep = b.len().min(8 - tail.len());
        let mut t = s;
        t[..8].copy_from_slice(b"        ");
        t[..keep].copy_from_slice(&b[..keep]);
        t[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
        if !used.contains(&t) {
            return t;
        }
    }
    unreachable!("fewer than 1000 names in one directory")
}

fn sfn_entry(name: &[u8; 11], attr: u8, cluster: u32, size: u32) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[0..11].copy_from_slice(name);
    e[11] = attr;
    e[16..18].copy_from_slice(&DATE_1980_01_01.to_le_bytes()); // created
    e[18..20].copy_from_slice(&DATE_1980_01_01.to_le_bytes()); // accessed
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[24..26].copy_from_slice(&DATE_1980_01_01.to_le_bytes()); // modified
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let sum = short
        .iter()
        .fold(0u8, |s, &c| s.rotate_right(1).wrapping_add(c));
    let mut units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(13);
    if !units.len().is_multiple_of(13) {
        units.push(0);
    }
    units.resize(n * 13, 0xFFFF);
    let mut out = Vec::new();
    for i in (0..n).rev() {
        let mut e = [0u8; 32];
        e[0] = (i as u8 + 1) | if i + 1 == n { 0x40 } else { 0 };
        e[11] = 0x0F;
        e[13] = sum;
        let u = &units[i * 13..i * 13 + 13];
        let put = |e: &mut [u8; 32], off: usize, us: &[u16]| {
            for (j, c) in us.iter().enumerate() {
                e[off + 2 * j..off + 2 * j + 2].copy_from_slice(&c.to_le_bytes());
            }
        };
        put(&mut e, 1, &u[0..5]);
        put(&mut e, 14, &u[5..11]);
        put(&mut e, 28, &u[11..13]);
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(!needs_lfn("EFI"));
        assert!(!needs_lfn("BOOTX64.EFI"));
        assert!(needs_lfn("loader.conf"));
        assert_eq!(&short_name("loader.conf", &[]), b"LOADER~1CON");
        assert_eq!(&short_name("EFI", &[]), b"EFI        ");
        let a = short_name("kubemint-master-1.raw", &[]);
        let b = short_name("kubemint-master-2.raw", &[a]);
        assert_ne!(a, b);
    }

    #[test]
    fn same_content_same_bytes() {
        let make = || {
            let mut fat = Fat::new(0x4b4d_0001, "ESP");
            fat.file("EFI/BOOT/BOOTX64.EFI", Data::Bytes(vec![1; 5000]));
            fat.file("loader/loader.conf", Data::Bytes(b"timeout 0\n".to_vec()));
            let mut out = std::io::Cursor::new(Vec::new());
            fat.write(&mut out, 64 << 20, 2048).unwrap();
            let mut bytes = out.into_inner();
            bytes.resize(64 << 20, 0);
            bytes
        };
        let a = make();
        assert_eq!(a.len(), 64 << 20);
        assert_eq!(&a[82..90], b"FAT32   ");
        assert_eq!(a, make());
    }
}
