//! One gzip member (RFC 1952) made of chunks: the header, the chunks' full-flushed raw deflate
//! back to back, a final empty block, then the CRC-32 (combined from the chunks' CRCs) and the
//! length of everything they cover. Chunks may be compressed on the fly or taken from a cache:
//! the member is the same either way, since a chunk depends only on its bytes.

use super::{Chunk, Crc, DeflateError, FINAL_BLOCK, Threads, compress_stream};
use std::io::{self, Read, Write};

/// The header flate2's `GzBuilder` writes with `mtime(0)`, `operating_system(255)` at level 6:
/// magic, deflate, no flags (so no name or comment), MTIME 0, XFL 0 (neither fastest nor best),
/// OS 255 (unknown).
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// What a finished member covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// CRC-32 and length of the uncompressed bytes.
    pub uncompressed: Crc,
    /// Bytes of the member, header and trailer included.
    pub size: u64,
}

/// Writes one gzip member to `out` from chunks pushed in order.
pub struct GzipWriter<W: Write> {
    out: W,
    crc: Crc,
    size: u64,
}

impl<W: Write> GzipWriter<W> {
    /// Writes the header.
    pub fn new(mut out: W) -> io::Result<GzipWriter<W>> {
        out.write_all(&HEADER)?;
        Ok(GzipWriter {
            out,
            crc: Crc::default(),
            size: HEADER.len() as u64,
        })
    }

    /// Appends one chunk (the next bytes of the uncompressed stream).
    pub fn push(&mut self, chunk: &Chunk) -> io::Result<()> {
        debug_assert_eq!(chunk.deflate.len(), chunk.info.compressed_len as usize);
        self.out.write_all(&chunk.deflate)?;
        self.size += chunk.deflate.len() as u64;
        self.crc = self.crc.then(chunk.info.into());
        Ok(())
    }

    /// The uncompressed bytes pushed so far.
    pub fn uncompressed(&self) -> Crc {
        self.crc
    }

    /// Writes the final block and the trailer (CRC-32, ISIZE: the length modulo 2^32).
    pub fn finish(mut self) -> io::Result<(W, Member)> {
        self.out.write_all(&FINAL_BLOCK)?;
        self.out.write_all(&self.crc.crc32.to_le_bytes())?;
        self.out.write_all(&(self.crc.len as u32).to_le_bytes())?;
        self.size += (FINAL_BLOCK.len() + 8) as u64;
        Ok((
            self.out,
            Member {
                uncompressed: self.crc,
                size: self.size,
            },
        ))
    }
}

/// Compresses `input` into one gzip member on `threads` threads; the same bytes for any number.
pub fn gzip_stream<R: Read, W: Write>(
    input: R,
    out: W,
    threads: Threads,
) -> Result<(W, Member), DeflateError> {
    let mut gz = GzipWriter::new(out)?;
    compress_stream(input, threads, |_, chunk| Ok(gz.push(&chunk)?))?;
    Ok(gz.finish()?)
}

#[cfg(test)]
mod tests {
    use super::super::tests::synthetic;
    use super::super::{CHUNK, compress_bytes};
    use super::*;
    use flate2::{Compression, GzBuilder};
    use std::process::{Command, Stdio};

    fn member(data: &[u8], threads: usize) -> Vec<u8> {
        gzip_stream(data, Vec::new(), Threads::new(threads))
            .unwrap()
            .0
    }

    /// `gzip -t` and `gunzip -c` (GNU gzip), and python3's gzip module, on `gz`.
    fn judged_by_tools(gz: &[u8], want: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.gz");
        std::fs::write(&file, gz).unwrap();
        let t = Command::new("gzip").arg("-tv").arg(&file).output().unwrap();
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        let out = Command::new("gunzip")
            .arg("-c")
            .arg(&file)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(out.stdout == want, "gunzip gives other bytes");
        let py = Command::new("python3")
            .args([
                "-c",
                "import gzip,hashlib,sys; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        assert_eq!(
            String::from_utf8(py.stdout).unwrap().trim(),
            crate::util::hash::sha256_hex(want)
        );
    }

    #[test]
    fn the_header_is_the_one_flate2_writes_at_level_6() {
        let flate2 = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), Compression::new(6))
            .finish()
            .unwrap();
        assert_eq!(flate2[..10], HEADER);
    }

    #[test]
    fn a_member_of_many_chunks_is_valid_gzip_for_every_tool() {
        let data = synthetic("member", 5 * CHUNK + 4321);
        let gz = member(&data, 1);
        judged_by_tools(&gz, &data);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
        // The empty stream, too.
        let empty = member(&[], 1);
        assert_eq!(empty.len(), 10 + 2 + 8);
        judged_by_tools(&empty, &[]);
    }

    #[test]
    fn one_and_four_threads_write_the_same_member() {
        let data = synthetic("threads", 40 * CHUNK + 17);
        let one = member(&data, 1);
        assert!(member(&data, 4) == one);
        assert!(member(&data, 2) == one);
    }

    #[test]
    fn chunks_computed_apart_make_the_same_member_as_one_stream() {
        // Chunks of two parts compressed separately (one of them "cached"), pushed in order,
        // give the member of the parts' concatenation cut at the same places.
        let a = synthetic("a", 2 * CHUNK + 100);
        let b = synthetic("b", CHUNK / 2);
        let mut gz = GzipWriter::new(Vec::new()).unwrap();
        for c in compress_bytes(&a, Threads::new(3))
            .iter()
            .chain(&compress_bytes(&b, Threads::ONE))
        {
            gz.push(c).unwrap();
        }
        let (bytes, m) = gz.finish().unwrap();
        assert_eq!(m.size, bytes.len() as u64);
        let whole = [a.as_slice(), b.as_slice()].concat();
        assert_eq!(m.uncompressed, Crc::of(&whole));
        judged_by_tools(&bytes, &whole);
    }
}
