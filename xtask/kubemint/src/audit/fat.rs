//! A FAT32 reader for the bootable disk's ESP (what `pack::esp` writes, and what mkfs.vfat
//! makes): the boot sector's geometry, the FAT, directories with VFAT long names, and a file's
//! bytes along its cluster chain. Read-only; enough to take the sysext and confext the ESP
//! carries back out and verify them.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// One file or directory of the file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// `/`-separated, relative: `kubemint/extensions/kubemint-master-1.raw`.
    pub path: String,
    pub dir: bool,
    pub cluster: u32,
    pub size: u64,
}

/// A FAT32 file system at `offset` of a file.
pub struct Fat {
    file: File,
    offset: u64,
    cluster_size: u64,
    data_start: u64,
    fat: Vec<u32>,
    root: u32,
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

impl Fat {
    pub fn open(path: &Path, offset: u64) -> io::Result<Fat> {
        let file = File::open(path)?;
        let mut b = [0u8; 512];
        file.read_exact_at(&mut b, offset)?;
        let bps = u64::from(u16::from_le_bytes([b[11], b[12]]));
        let spc = u64::from(b[13]);
        let reserved = u64::from(u16::from_le_bytes([b[14], b[15]]));
        let fats = u64::from(b[16]);
        let fatsz = u64::from(u32::from_le_bytes(b[36..40].try_into().expect("4")));
        let root = u32::from_le_bytes(b[44..48].try_into().expect("4"));
        if &b[82..87] != b"FAT32" || bps == 0 || spc == 0 || b[510..512] != [0x55, 0xaa] {
            return Err(bad("not a FAT32 file system"));
        }
        let mut raw = vec![0u8; (fatsz * bps) as usize];
        file.read_exact_at(&mut raw, offset + reserved * bps)?;
        let fat = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4")) & 0x0FFF_FFFF)
            .collect();
        Ok(Fat {
            file,
            offset,
            cluster_size: spc * bps,
            data_start: (reserved + fats * fatsz) * bps,
            fat,
            root,
        })
    }

    fn chain(&self, first: u32) -> io::Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut c = first;
        while (2..0x0FFF_FFF8).contains(&c) {
            if out.len() > self.fat.len() {
                return Err(bad(format!("cluster chain from {first} loops")));
            }
            out.push(c);
            c = *self
                .fat
                .get(c as usize)
                .ok_or_else(|| bad(format!("cluster {c} beyond the FAT")))?;
        }
        Ok(out)
    }

    fn cluster_at(&self, c: u32) -> u64 {
        self.offset + self.data_start + u64::from(c - 2) * self.cluster_size
    }

    fn read_chain(&self, first: u32) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for c in self.chain(first)? {
            let mut buf = vec![0u8; self.cluster_size as usize];
            self.file.read_exact_at(&mut buf, self.cluster_at(c))?;
            out.extend(buf);
        }
        Ok(out)
    }

    /// Every file and directory, depth first, in directory order.
    pub fn walk(&self) -> io::Result<Vec<Node>> {
        let mut out = Vec::new();
        self.walk_dir(self.root, "", &mut out, 0)?;
        Ok(out)
    }

    fn walk_dir(
        &self,
        cluster: u32,
        prefix: &str,
        out: &mut Vec<Node>,
        depth: u32,
    ) -> io::Result<()> {
        if depth > 32 {
            return Err(bad("directories nested too deep"));
        }
        let bytes = self.read_chain(cluster)?;
        let mut long: Vec<(u8, Vec<u16>)> = Vec::new();
        for e in bytes.chunks_exact(32) {
            match e[0] {
                0x00 => break,
                0xE5 => {
                    long.clear();
                    continue;
                }
                _ => {}
            }
            let attr = e[11];
            if attr == 0x0F {
                let mut part: Vec<u16> = Vec::new();
                for r in [1..11, 14..26, 28..32] {
                    part.extend(
                        e[r].chunks_exact(2)
                            .map(|c| u16::from_le_bytes([c[0], c[1]])),
                    );
                }
                long.push((e[0] & 0x1F, part));
                continue;
            }
            if attr & 0x08 != 0 {
                long.clear();
                continue;
            }
            let name = if long.is_empty() {
                let base = String::from_utf8_lossy(&e[0..8]).trim_end().to_owned();
                let ext = String::from_utf8_lossy(&e[8..11]).trim_end().to_owned();
                if ext.is_empty() {
                    base
                } else {
                    format!("{base}.{ext}")
                }
            } else {
                long.sort_by_key(|(n, _)| *n);
                let units: Vec<u16> = long
                    .iter()
                    .flat_map(|(_, p)| p.iter().copied())
                    .take_while(|&u| u != 0 && u != 0xFFFF)
                    .collect();
                String::from_utf16_lossy(&units)
            };
            long.clear();
            if name == "." || name == ".." {
                continue;
            }
            let cl = (u32::from(u16::from_le_bytes([e[20], e[21]])) << 16)
                | u32::from(u16::from_le_bytes([e[26], e[27]]));
            let size = u64::from(u32::from_le_bytes(e[28..32].try_into().expect("4")));
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let dir = attr & 0x10 != 0;
            out.push(Node {
                path: path.clone(),
                dir,
                cluster: cl,
                size,
            });
            if dir && cl >= 2 {
                self.walk_dir(cl, &path, out, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Where a file's bytes start in the underlying file, when its clusters are contiguous
    /// (as `pack::esp` lays every file out): its bytes can then be read in place.
    pub fn contiguous(&self, node: &Node) -> io::Result<Option<u64>> {
        let chain = self.chain(node.cluster)?;
        let ok = chain.windows(2).all(|w| w[1] == w[0] + 1)
            && chain.len() as u64 * self.cluster_size >= node.size;
        Ok((ok && !chain.is_empty()).then(|| self.cluster_at(chain[0])))
    }

    /// Writes a file's bytes to `out`.
    pub fn copy(&self, node: &Node, out: &mut impl Write) -> io::Result<()> {
        let mut left = node.size;
        let mut buf = vec![0u8; self.cluster_size as usize];
        for c in self.chain(node.cluster)? {
            if left == 0 {
                break;
            }
            let n = left.min(self.cluster_size) as usize;
            self.file.read_exact_at(&mut buf[..n], self.cluster_at(c))?;
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        if left > 0 {
            return Err(bad(format!(
                "{}: its cluster chain ends {left} bytes short",
                node.path
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::esp::{Data, Fat as Writer};

    #[test]
    fn reads_back_what_the_esp_writer_wrote() {
        let mut w = Writer::new(7, "ESP");
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        w.file(
            "kubemint/extensions/kubemint-a-long-name.raw",
            Data::Bytes(big.clone()),
        );
        w.file("loader/loader.conf", Data::Bytes(b"timeout 0\n".to_vec()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("esp");
        let mut f = File::create(&path).unwrap();
        let size = 40 << 20;
        w.write(&mut f, size, 2048).unwrap();
        f.set_len(size).unwrap();
        let fat = Fat::open(&path, 0).unwrap();
        let nodes = fat.walk().unwrap();
        let file = nodes
            .iter()
            .find(|n| n.path == "kubemint/extensions/kubemint-a-long-name.raw")
            .unwrap_or_else(|| panic!("{nodes:?}"));
        let mut out = Vec::new();
        fat.copy(file, &mut out).unwrap();
        assert_eq!(out, big);
        assert!(
            nodes
                .iter()
                .any(|n| n.path == "loader/loader.conf" && n.size == 10)
        );
    }
}
