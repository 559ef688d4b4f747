//! The system extension as a GPT Discoverable Disk Image, written in-process: protective MBR,
//! both GPT headers, CRC32s, 1 MiB alignment, GUIDs derived from the content the way
//! systemd-repart derives them from a seed.
//!
//! The partition holds exactly the sysext's bytes, so one digest covers both forms. Its type is
//! `root-x86-64`: a `usr` partition's file system is `/usr` itself, while the sysext's holds
//! `usr/` (and `opt/`) below its root; systemd-dissect and systemd-sysext take either type for
//! an extension.

use crate::util::hash;
use serde::Serialize;
use sha2::Sha256;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The Discoverable Partitions Specification's type of a `/usr` partition on x86-64.
pub const USR_X86_64: &str = "8484680c-9521-48c6-9c11-b0720656f69e";
/// The Discoverable Partitions Specification's type of a root partition on x86-64.
pub const ROOT_X86_64: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
const SECTOR: u64 = 512;
/// Partitions start, and the disk ends, on 1 MiB boundaries.
const ALIGN: u64 = 2048;
/// GPT partition attribute 60: read-only.
const READ_ONLY: u64 = 1 << 60;

/// The GUIDs of a disk image, as `sfdisk --dump` prints them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ddi {
    pub disk_guid: String,
    pub sector_size: u64,
    pub partitions: Vec<Partition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub label: String,
    pub type_guid: String,
    pub uuid: String,
    pub first_lba: u64,
    pub last_lba: u64,
    /// Where the file system starts in the image, in bytes.
    pub offset: u64,
    /// How many bytes of the partition the file system fills: what `sha256` covers.
    pub size: u64,
    /// sha256 of those `size` bytes from `offset` on.
    pub sha256: String,
    /// The command that reproduces `sha256` from the image, run in the output directory.
    pub reproduce: String,
    /// The files a FAT partition holds (the bootable disk's ESP: boot loader, kernel image,
    /// the master's extensions), each with its size and sha256, so that verify can check them
    /// one by one on a disk whose ESP has since gained files of its own (a random seed, boot
    /// counters). Empty, and not written, for every other partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PartFile>,
}

/// A file inside a partition's file system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Writes a GPT disk image holding `fs` (a file system image, byte for byte) in one read-only
/// `root-x86-64` partition. Disk and partition GUIDs derive from the file system's sha256 as
/// systemd-repart derives them from a seed: the first 16 bytes of HMAC-SHA256(seed, partition
/// type UUID) (resp. "disk-uuid"), made a version 4 UUID. `shown` is the image's path as the
/// `reproduce` command names it.
///
/// `fs_size` and `fs_sha256` are the file system's, as
/// [`squashfs_file`](crate::pack::squashfs::squashfs_file) returned them.
pub fn write_ddi<W: Write>(
    fs: &Path,
    fs_size: u64,
    fs_sha256: &str,
    shown: &str,
    out: W,
) -> io::Result<(W, Ddi)> {
    let seed: [u8; 16] = hex::decode(&fs_sha256[..32])
        .map_err(io::Error::other)?
        .try_into()
        .expect("16 bytes");
    let parts = [Part {
        type_uuid: ROOT_X86_64,
        label: "root-x86-64".to_owned(),
        sectors: fs_size.div_ceil(SECTOR).div_ceil(ALIGN) * ALIGN,
        read_only: true,
        content: Some(Content {
            path: fs.to_owned(),
            size: fs_size,
            sha256: fs_sha256.to_owned(),
        }),
    }];
    // The caller hashes what it writes (if it wants to): hashing here too would read every
    // byte of the image twice.
    let mut out = out;
    let ddi = write_gpt(&mut Sink(&mut out), &seed, &parts, shown)?;
    out.flush()?;
    Ok((out, ddi))
}

/// A partition to write: its type, label, size in sectors (a multiple of 1 MiB), and the file
/// system image it holds from its start, if any (the rest is zeros).
#[derive(Clone, Debug)]
pub struct Part {
    pub type_uuid: &'static str,
    pub label: String,
    pub sectors: u64,
    pub read_only: bool,
    pub content: Option<Content>,
}

/// A file system image, and what is known of it.
#[derive(Clone, Debug)]
pub struct Content {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Where a disk image is written: anything that takes bytes, and may skip runs of zeros
/// (a file: sparse) if it says so.
pub trait DiskOut {
    fn bytes(&mut self, b: &[u8]) -> io::Result<()>;
    fn zeros(&mut self, n: u64) -> io::Result<()>;
    fn copy(&mut self, from: &mut dyn Read) -> io::Result<u64>;
}

/// Writes everything, zeros included.
pub struct Sink<'a, W>(pub &'a mut W);

impl<W: Write> DiskOut for Sink<'_, W> {
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.0.write_all(b)
    }
    fn zeros(&mut self, n: u64) -> io::Result<()> {
        zeros(self.0, n)
    }
    fn copy(&mut self, from: &mut dyn Read) -> io::Result<u64> {
        io::copy(from, self.0)
    }
}

/// Writes to a file, seeking over runs of zeros (a sparse file), hashing every byte.
pub struct SparseFile {
    pub file: File,
    pub hash: Sha256,
    pub size: u64,
}

impl DiskOut for SparseFile {
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.file.write_all(b)?;
        sha2::Digest::update(&mut self.hash, b);
        self.size += b.len() as u64;
        Ok(())
    }
    fn zeros(&mut self, n: u64) -> io::Result<()> {
        use std::io::Seek;
        self.file.seek(io::SeekFrom::Current(
            i64::try_from(n).map_err(io::Error::other)?,
        ))?;
        let block = [0u8; 1 << 16];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len() as u64) as usize;
            sha2::Digest::update(&mut self.hash, &block[..k]);
            left -= k as u64;
        }
        self.size += n;
        Ok(())
    }
    fn copy(&mut self, from: &mut dyn Read) -> io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            self.bytes(&buf[..n])?;
            total += n as u64;
        }
    }
}

/// Writes a GPT disk image of `parts`, laid out from 1 MiB on, each on a 1 MiB boundary, the
/// disk ending 1 MiB after the last. GUIDs derive from `seed` as systemd-repart derives them:
/// a partition's from its type UUID (with a little-endian counter appended for the second and
/// later of a type), the disk's from "disk-uuid". `shown` names the image in `reproduce`.
pub fn write_gpt(
    out: &mut dyn DiskOut,
    seed: &[u8; 16],
    parts: &[Part],
    shown: &str,
) -> io::Result<Ddi> {
    let disk_uuid = derive_uuid(seed, b"disk-uuid");
    let mut entries = vec![0u8; 128 * 128];
    let mut rows = Vec::new();
    let mut next = ALIGN;
    for (i, p) in parts.iter().enumerate() {
        let type_uuid = parse_uuid(p.type_uuid);
        let nth = parts[..i]
            .iter()
            .filter(|o| o.type_uuid == p.type_uuid)
            .count() as u64;
        let mut message = type_uuid.to_vec();
        if nth > 0 {
            message.extend_from_slice(&nth.to_le_bytes());
        }
        let part_uuid = derive_uuid(seed, &message);
        let (first, last) = (next, next + p.sectors - 1);
        next = last + 1;
        let e = &mut entries[i * 128..(i + 1) * 128];
        e[0..16].copy_from_slice(&guid_bytes(&type_uuid));
        e[16..32].copy_from_slice(&guid_bytes(&part_uuid));
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
        let attrs = if p.read_only { READ_ONLY } else { 0 };
        e[48..56].copy_from_slice(&attrs.to_le_bytes());
        for (j, unit) in p.label.encode_utf16().take(36).enumerate() {
            e[56 + 2 * j..58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
        }
        let (size, sha256) = match &p.content {
            Some(c) => (c.size, c.sha256.clone()),
            None => (0, hash::sha256_hex(b"")),
        };
        rows.push(Partition {
            label: p.label.clone(),
            type_guid: p.type_uuid.to_lowercase(),
            uuid: uuid_string(&part_uuid),
            first_lba: first,
            last_lba: last,
            offset: first * SECTOR,
            size,
            sha256,
            reproduce: format!(
                "dd if={shown} bs=1M iflag=skip_bytes,count_bytes skip={} count={size} status=none | sha256sum",
                first * SECTOR
            ),
            files: Vec::new(),
        });
    }
    let last = next - 1;
    let total = (last + 1 + 33).div_ceil(ALIGN) * ALIGN + ALIGN;
    let entries_crc = crc32fast::hash(&entries);
    let header = |current: u64, backup: u64, entries_lba: u64| {
        let mut h = vec![0u8; SECTOR as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&backup.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(total - 34).to_le_bytes());
        h[56..72].copy_from_slice(&guid_bytes(&disk_uuid));
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    let mut mbr = vec![0u8; SECTOR as usize];
    mbr[446..462].copy_from_slice(&protective_mbr_entry(total));
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    out.bytes(&mbr)?;
    out.bytes(&header(1, total - 1, 2))?;
    out.bytes(&entries)?;
    let mut at = 34;
    for (p, row) in parts.iter().zip(&rows) {
        out.zeros((row.first_lba - at) * SECTOR)?;
        let mut written = 0;
        if let Some(c) = &p.content {
            written = out.copy(&mut File::open(&c.path)?)?;
            if written != c.size {
                return Err(io::Error::other(format!(
                    "{}: changed while being copied",
                    c.path.display()
                )));
            }
        }
        out.zeros(p.sectors * SECTOR - written)?;
        at = row.last_lba + 1;
    }
    out.zeros((total - 33 - at) * SECTOR)?;
    out.bytes(&entries)?;
    out.bytes(&header(total - 1, 1, total - 33))?;
    Ok(Ddi {
        disk_guid: uuid_string(&disk_uuid),
        sector_size: SECTOR,
        partitions: rows,
    })
}

fn zeros<W: Write>(w: &mut W, n: u64) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(n), w).map(|_| ())
}

fn protective_mbr_entry(total: u64) -> [u8; 16] {
    let mut e = [0u8; 16];
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    e[4] = 0xee;
    e[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    e[12..16].copy_from_slice(&u32::try_from(total - 1).unwrap_or(u32::MAX).to_le_bytes());
    e
}

/// HMAC-SHA256 (RFC 2104), by the RustCrypto `hmac` crate.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// systemd-repart's derivation: HMAC-SHA256(seed, message), first 16 bytes, as a v4 UUID.
fn derive_uuid(seed: &[u8; 16], message: &[u8]) -> [u8; 16] {
    let mut id: [u8; 16] = hmac_sha256(seed, message)[..16]
        .try_into()
        .expect("16 bytes");
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

/// A UUID string as 16 bytes in string order.
fn parse_uuid(s: &str) -> [u8; 16] {
    hex::decode(s.replace('-', ""))
        .expect("a valid UUID constant")
        .try_into()
        .expect("16 bytes")
}

fn uuid_string(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// GPT stores the first three fields of a GUID little-endian.
fn guid_bytes(b: &[u8; 16]) -> [u8; 16] {
    let mut g = *b;
    g[0..4].reverse();
    g[4..6].reverse();
    g[6..8].reverse();
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn guid_layout() {
        let u = parse_uuid(USR_X86_64);
        assert_eq!(uuid_string(&u), USR_X86_64);
        assert_eq!(
            hex::encode(guid_bytes(&u)),
            "0c6884842195c6489c11b0720656f69e"
        );
        let v = derive_uuid(&[7; 16], &u);
        assert_eq!(v[6] >> 4, 4);
        assert_eq!(v[8] >> 6, 2);
    }
}
