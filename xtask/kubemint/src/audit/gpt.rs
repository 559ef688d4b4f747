//! A GPT reader: the primary header's fields and the partition entries, as `pack::disk` writes
//! them (512-byte sectors). Enough to find the file systems inside a disk image and to name
//! the field two disks differ in.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const SECTOR: u64 = 512;
pub const ROOT_X86_64: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
pub const USR_X86_64: &str = "8484680c-9521-48c6-9c11-b0720656f69e";
pub const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpt {
    /// The primary header's fields, in order: (name, value).
    pub header: Vec<(&'static str, String)>,
    pub partitions: Vec<Partition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub index: usize,
    pub type_guid: String,
    pub uuid: String,
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
    pub label: String,
}

impl Partition {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    pub fn len(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }

    pub fn is_empty(&self) -> bool {
        self.last_lba < self.first_lba
    }

    /// (name, value) of each field, for comparisons.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("type_guid", self.type_guid.clone()),
            ("uuid", self.uuid.clone()),
            ("first_lba", self.first_lba.to_string()),
            ("last_lba", self.last_lba.to_string()),
            ("attributes", format!("{:#x}", self.attributes)),
            ("label", self.label.clone()),
        ]
    }
}

/// A GUID as text (the first three fields little-endian on disk).
pub fn guid(b: &[u8]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the GPT of `path`; `Ok(None)` when it has none (no `EFI PART` at LBA 1).
pub fn read(path: &Path) -> std::io::Result<Option<Gpt>> {
    let file = File::open(path)?;
    let mut h = vec![0u8; 512];
    if file.read_exact_at(&mut h, SECTOR).is_err() || &h[0..8] != b"EFI PART" {
        return Ok(None);
    }
    let entries_lba = le64(&h, 72);
    let count = le32(&h, 80) as usize;
    let size = le32(&h, 84) as usize;
    if !(128..=4096).contains(&size) || count > 1024 {
        return Ok(None);
    }
    let header = vec![
        ("revision", format!("{:#x}", le32(&h, 8))),
        ("header_size", le32(&h, 12).to_string()),
        ("header_crc32", format!("{:#010x}", le32(&h, 16))),
        ("current_lba", le64(&h, 24).to_string()),
        ("backup_lba", le64(&h, 32).to_string()),
        ("first_usable_lba", le64(&h, 40).to_string()),
        ("last_usable_lba", le64(&h, 48).to_string()),
        ("disk_guid", guid(&h[56..72])),
        ("entries_lba", entries_lba.to_string()),
        ("entries", count.to_string()),
        ("entry_size", size.to_string()),
        ("entries_crc32", format!("{:#010x}", le32(&h, 88))),
    ];
    let mut table = vec![0u8; count * size];
    file.read_exact_at(&mut table, entries_lba * SECTOR)?;
    let mut partitions = Vec::new();
    for (i, e) in table.chunks_exact(size).enumerate() {
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        partitions.push(Partition {
            index: i + 1,
            type_guid: guid(&e[0..16]),
            uuid: guid(&e[16..32]),
            first_lba: le64(e, 32),
            last_lba: le64(e, 40),
            attributes: le64(e, 48),
            label: String::from_utf16_lossy(&name),
        });
    }
    Ok(Some(Gpt { header, partitions }))
}
