//! squashfs metadata: a byte stream cut into 8 KiB blocks, each stored behind a 16-bit header
//! as a zlib stream (the same chunk compressor as the data) or, when that is not smaller, as
//! is (bit 15 set). Positions in it are (start of the block in the compressed table, offset in
//! the block's uncompressed bytes).

use crate::pack::deflate::Deflater;

/// Uncompressed bytes per metadata block.
pub const METADATA_SIZE: usize = 8192;

/// Bit 15 of a metadata block header: the block is stored uncompressed.
const STORED: u16 = 1 << 15;

/// Where something starts in a metadata table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaRef {
    /// Offset of its block's header from the table's start.
    pub block: u64,
    /// Offset in the block's uncompressed bytes.
    pub offset: u16,
}

impl MetaRef {
    /// As inode references are stored: block << 16 | offset.
    pub fn inode_ref(self) -> u64 {
        (self.block << 16) | u64::from(self.offset)
    }
}

/// A metadata table being written, in memory.
pub struct Meta {
    out: Vec<u8>,
    block: Vec<u8>,
    /// Where each written block starts in `out`.
    starts: Vec<u64>,
    deflater: Deflater,
}

impl Default for Meta {
    fn default() -> Self {
        Meta::new()
    }
}

impl Meta {
    pub fn new() -> Meta {
        Meta {
            out: Vec::new(),
            block: Vec::with_capacity(METADATA_SIZE),
            starts: Vec::new(),
            deflater: Deflater::new(),
        }
    }

    /// Where the next byte goes.
    pub fn pos(&self) -> MetaRef {
        MetaRef {
            block: self.out.len() as u64,
            offset: self.block.len() as u16,
        }
    }

    /// The next byte's position in the uncompressed stream.
    pub fn uncompressed_pos(&self) -> u64 {
        (self.starts.len() * METADATA_SIZE + self.block.len()) as u64
    }

    /// Where the block holding uncompressed position `pos` starts in the table, for any
    /// position written so far or the next one.
    pub fn block_start(&self, pos: u64) -> u64 {
        let k = (pos / METADATA_SIZE as u64) as usize;
        match k.cmp(&self.starts.len()) {
            std::cmp::Ordering::Less => self.starts[k],
            std::cmp::Ordering::Equal => self.out.len() as u64,
            std::cmp::Ordering::Greater => panic!("position {pos} is not written yet"),
        }
    }

    pub fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = (METADATA_SIZE - self.block.len()).min(bytes.len());
            self.block.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.block.len() == METADATA_SIZE {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        self.starts.push(self.out.len() as u64);
        let chunk = self.deflater.chunk(&self.block);
        if chunk.store_uncompressed() {
            self.out
                .extend_from_slice(&(self.block.len() as u16 | STORED).to_le_bytes());
            self.out.extend_from_slice(&self.block);
        } else {
            self.out
                .extend_from_slice(&(chunk.zlib_len() as u16).to_le_bytes());
            chunk
                .write_zlib(&mut self.out)
                .expect("writing to memory cannot fail");
        }
        self.block.clear();
    }

    /// The table's bytes, and where each of its blocks starts.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u64>) {
        if !self.block.is_empty() {
            self.flush();
        }
        (self.out, self.starts)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    /// Reads a metadata table back into its uncompressed stream.
    pub(crate) fn unpack(table: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < table.len() {
            let h = u16::from_le_bytes([table[i], table[i + 1]]);
            let len = usize::from(h & !STORED);
            let body = &table[i + 2..i + 2 + len];
            if h & STORED != 0 {
                out.extend_from_slice(body);
            } else {
                let mut d = Decompress::new(true);
                let mut block = Vec::with_capacity(METADATA_SIZE);
                d.decompress_vec(body, &mut block, FlushDecompress::Finish)
                    .unwrap();
                out.extend_from_slice(&block);
            }
            i += 2 + len;
        }
        out
    }

    #[test]
    fn blocks_of_8_kib_compressed_or_stored_and_positions_into_them() {
        let mut m = Meta::new();
        assert_eq!(
            m.pos(),
            MetaRef {
                block: 0,
                offset: 0
            }
        );
        let text: Vec<u8> = b"inode inode inode ".repeat(1000);
        m.write(&text[..5000]);
        assert_eq!(
            m.pos(),
            MetaRef {
                block: 0,
                offset: 5000
            }
        );
        m.write(&text[5000..]);
        // 18000 bytes: two full blocks written, 1616 bytes pending in the third.
        let p = m.pos();
        assert_eq!(p.offset as usize, 18_000 - 2 * METADATA_SIZE);
        assert_eq!(m.block_start(0), 0);
        assert_eq!(m.block_start(18_000), p.block);
        assert_eq!(m.uncompressed_pos(), 18_000);
        let mut noise = [0u8; 100];
        for (i, b) in noise.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151) ^ 0x5a;
        }
        let mut small = Meta::new();
        small.write(&noise);
        let (stored, starts) = small.finish();
        assert_eq!(starts, [0]);
        assert_eq!(
            u16::from_le_bytes([stored[0], stored[1]]),
            100 | STORED,
            "not worth compressing"
        );
        let (table, starts) = m.finish();
        assert_eq!(starts.len(), 3);
        assert_eq!(starts[2], p.block);
        assert!(table.len() < 18_000 / 10);
        assert_eq!(unpack(&table), text);
        assert_eq!(p.inode_ref(), (p.block << 16) | 1616);
    }
}
