//! Deflate in fixed, independent chunks, so that one compression serves every output and any
//! number of threads gives the same bytes.
//!
//! A byte stream is cut into [`CHUNK`]-sized pieces (128 KiB, the squashfs block size), counted
//! from the start of the stream (for a file: from its first byte). Each piece is compressed on
//! its own as *raw* deflate at level 6 by flate2's zlib-rs backend, from a freshly reset
//! compressor (no dictionary carried over) and ended with a full flush: the output is
//! byte-aligned, has no final block, and is a pure function of the piece's bytes. So:
//!
//! - pieces can be compressed on any thread, in any order, and put back in order ([`Threads`]:
//!   the output is the same for 1 or N threads);
//! - concatenated pieces are a valid deflate stream once a final empty block
//!   ([`FINAL_BLOCK`]) is appended: [`gzip::GzipWriter`] frames any sequence of them, computed
//!   on the fly or taken from a [`cache::ChunkCache`], as one gzip member;
//! - one piece, between a zlib header ([`ZLIB_HEADER`]) and [`FINAL_BLOCK`] + adler32, is a
//!   complete zlib stream: a squashfs data block ([`Chunk::write_zlib`]).
//!
//! Each [`Chunk`] keeps its uncompressed length, CRC-32 (gzip's check, combined across chunks
//! with [`Crc::then`]) and Adler-32 (zlib's check), so framing never needs the data again.

pub mod cache;
pub mod gzip;
pub(crate) mod pipeline;
pub mod tar;

use flate2::{Compress, Compression, FlushCompress, Status};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Uncompressed bytes per chunk: the squashfs block size, so that a file's chunks are its
/// squashfs data blocks.
pub const CHUNK: usize = 128 * 1024;

/// The deflate level every chunk is compressed at (flate2, zlib-rs backend).
pub const LEVEL: u32 = 6;

/// A final, empty, fixed-Huffman block (BFINAL=1, BTYPE=01, end-of-block code): what turns a
/// run of full-flushed chunks into a complete deflate stream.
pub const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// The zlib header zlib writes at level 6: deflate, 32 KiB window, default level, no
/// dictionary (0x789c is a multiple of 31, as FCHECK requires).
pub const ZLIB_HEADER: [u8; 2] = [0x78, 0x9c];

/// Bytes a zlib stream adds around a chunk's raw deflate: header, final block, adler32.
pub const ZLIB_OVERHEAD: usize = ZLIB_HEADER.len() + FINAL_BLOCK.len() + 4;

/// What the compressor is, for manifests: any change here changes compressed bytes.
pub const COMPRESSOR: &str =
    "deflate level 6 (flate2, zlib-rs backend) in independent 128 KiB chunks, each full-flushed";

/// How many threads compress. The bytes written never depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Threads(NonZeroUsize);

impl Threads {
    pub const ONE: Threads = Threads(NonZeroUsize::MIN);

    /// `n` threads; 0 means 1.
    pub fn new(n: usize) -> Threads {
        Threads(NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN))
    }

    pub fn get(self) -> usize {
        self.0.get()
    }
}

/// The uncompressed side of a chunk: what gzip and zlib framing need without the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Uncompressed bytes (at most [`CHUNK`]).
    pub len: u32,
    /// Bytes of full-flushed raw deflate.
    pub compressed_len: u32,
    pub crc32: u32,
    pub adler32: u32,
}

/// One chunk compressed: its raw deflate (full-flushed, no final block) and [`ChunkInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub info: ChunkInfo,
    pub deflate: Vec<u8>,
}

impl Chunk {
    /// The size of this chunk as a zlib stream.
    pub fn zlib_len(&self) -> usize {
        self.deflate.len() + ZLIB_OVERHEAD
    }

    /// Writes this chunk as one complete zlib stream: header, deflate, final block, adler32
    /// (big-endian), as zlib's `uncompress()` and the kernel's squashfs reader take it.
    pub fn write_zlib(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&ZLIB_HEADER)?;
        out.write_all(&self.deflate)?;
        out.write_all(&FINAL_BLOCK)?;
        out.write_all(&self.info.adler32.to_be_bytes())
    }

    /// This chunk as a zlib stream, in memory.
    pub fn to_zlib(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.zlib_len());
        self.write_zlib(&mut v)
            .expect("writing to memory cannot fail");
        v
    }

    /// Whether a block of this chunk's data is better stored than compressed, by squashfs's
    /// rule (mksquashfs's `mangle`): stored when the zlib stream is not smaller than the data.
    pub fn store_uncompressed(&self) -> bool {
        self.zlib_len() >= self.info.len as usize
    }
}

/// A level-6 raw deflate compressor, reset before every chunk. One per thread.
pub struct Deflater {
    compress: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new()
    }
}

impl Deflater {
    pub fn new() -> Deflater {
        Deflater {
            compress: Compress::new(Compression::new(LEVEL), false),
        }
    }

    /// Compresses `data` (at most [`CHUNK`] bytes) as an independent, full-flushed chunk. The
    /// result depends on `data` alone, never on what this compressor did before.
    pub fn chunk(&mut self, data: &[u8]) -> Chunk {
        assert!(data.len() <= CHUNK, "a chunk is at most {CHUNK} bytes");
        self.compress.reset();
        // Room for stored blocks at worst (5 bytes per 16 KiB) and the flush marker; the
        // capacity is a function of the length only, and the loop covers any shortfall.
        let mut out = Vec::with_capacity(data.len() + data.len() / 256 + 64);
        let mut consumed = 0;
        loop {
            let before = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Full)
                .expect("deflate of an in-memory buffer cannot fail");
            consumed += (self.compress.total_in() - before) as usize;
            let done = consumed == data.len() && out.len() < out.capacity();
            match status {
                Status::Ok | Status::BufError if !done => out.reserve(out.capacity().max(64)),
                _ => break,
            }
        }
        debug_assert_eq!(consumed, data.len());
        Chunk {
            info: ChunkInfo {
                len: data.len() as u32,
                compressed_len: out.len() as u32,
                crc32: crc32fast::hash(data),
                adler32: adler32(data),
            },
            deflate: out,
        }
    }
}

/// Adler-32 (RFC 1950) of `data`.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // The most bytes before `b` can overflow a u32 (zlib's NMAX).
    const NMAX: usize = 5552;
    let (mut a, mut b) = (1u32, 0u32);
    for block in data.chunks(NMAX) {
        for &x in block {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// CRC-32 and length of a run of bytes, combinable without the bytes (zlib's
/// `crc32_combine`, as crc32fast implements it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crc {
    pub crc32: u32,
    pub len: u64,
}

impl Crc {
    pub fn of(bytes: &[u8]) -> Crc {
        Crc {
            crc32: crc32fast::hash(bytes),
            len: bytes.len() as u64,
        }
    }

    /// The CRC of `self`'s bytes followed by `next`'s.
    pub fn then(self, next: Crc) -> Crc {
        let mut h = crc32fast::Hasher::new_with_initial_len(self.crc32, self.len);
        h.combine(&crc32fast::Hasher::new_with_initial_len(
            next.crc32, next.len,
        ));
        Crc {
            crc32: h.finalize(),
            len: self.len + next.len,
        }
    }
}

impl From<ChunkInfo> for Crc {
    fn from(i: ChunkInfo) -> Crc {
        Crc {
            crc32: i.crc32,
            len: u64::from(i.len),
        }
    }
}

/// What can go wrong compressing: reading a source, a source that is not what the tree or a
/// cache says, or writing the output.
#[derive(Debug, thiserror::Error)]
pub enum DeflateError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{what}: {actual} bytes where {expected} were expected; did it change after it was hashed?"
    )]
    Size {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{what}: chunk {index} has crc32 {actual:08x}, its cached compression was made from crc32 {cached:08x}; the cache is stale"
    )]
    Stale {
        what: String,
        index: usize,
        cached: u32,
        actual: u32,
    },
    #[error("{}: a kept compression that is not intact ({why})", path.display())]
    Kept { path: PathBuf, why: String },
    #[error("{what}: sha256 {actual}, the tree says {expected}")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{what}: the cache has {cached} chunks of {cached_len} bytes, the content is {len} bytes"
    )]
    CacheShape {
        what: String,
        cached: usize,
        cached_len: u64,
        len: u64,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<DeflateError> for io::Error {
    fn from(e: DeflateError) -> io::Error {
        match e {
            DeflateError::Io(e) => e,
            DeflateError::Read { source, path } => {
                io::Error::new(source.kind(), format!("{}: {source}", path.display()))
            }
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Compresses everything `input` yields, in chunks, on `threads` threads, handing each chunk
/// (with its uncompressed bytes) to `sink` in order. At most a few chunks per thread are in
/// memory at once, whatever the input's size.
pub fn compress_stream<R: Read>(
    mut input: R,
    threads: Threads,
    mut sink: impl FnMut(&[u8], Chunk) -> Result<(), DeflateError>,
) -> Result<Crc, DeflateError> {
    let work = |d: &mut Deflater, data: Vec<u8>| {
        let chunk = d.chunk(&data);
        (data, chunk)
    };
    let mut total = Crc::default();
    let mut each = |(data, chunk): (Vec<u8>, Chunk)| {
        total = total.then(chunk.info.into());
        sink(&data, chunk)
    };
    pipeline::run(threads, &work, &mut each, |feed| {
        loop {
            let mut buf = vec![0; CHUNK];
            let n = read_full(&mut input, &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            feed.push(buf)?;
        }
    })?;
    Ok(total)
}

/// Compresses `data` in chunks on `threads` threads.
pub fn compress_bytes(data: &[u8], threads: Threads) -> Vec<Chunk> {
    let mut chunks = Vec::with_capacity(data.len().div_ceil(CHUNK));
    let work = |d: &mut Deflater, piece: &[u8]| d.chunk(piece);
    let mut sink = |c: Chunk| -> Result<(), DeflateError> {
        chunks.push(c);
        Ok(())
    };
    pipeline::run(threads, &work, &mut sink, |feed| {
        data.chunks(CHUNK).try_for_each(|piece| feed.push(piece))
    })
    .expect("compressing memory cannot fail");
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::sample::Synthetic;
    use flate2::{Decompress, FlushDecompress};

    pub(crate) fn synthetic(seed: &str, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        Synthetic::new(seed, len as u64)
            .read_to_end(&mut v)
            .unwrap();
        v
    }

    fn inflate_raw(deflate: &[u8], expect: usize) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(expect + 1);
        d.decompress_vec(deflate, &mut out, FlushDecompress::Finish)
            .unwrap();
        out
    }

    #[test]
    fn adler32_matches_the_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Long enough to need the modulo between blocks: zlib's own result, via flate2.
        let data = synthetic("adler", 300_000);
        let mut c = Compress::new(Compression::new(6), true);
        let mut z = Vec::with_capacity(400_000);
        c.compress_vec(&data, &mut z, FlushCompress::Finish)
            .unwrap();
        let tail = u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap());
        assert_eq!(adler32(&data), tail);
        assert_eq!(adler32(&[0xff; 100_000]), {
            let mut c = Compress::new(Compression::new(6), true);
            let mut z = Vec::with_capacity(10_000);
            c.compress_vec(&[0xff; 100_000], &mut z, FlushCompress::Finish)
                .unwrap();
            u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap())
        });
    }

    #[test]
    fn crc_combines_like_one_pass() {
        let data = synthetic("crc", 1_000_000);
        let whole = Crc::of(&data);
        let combined = data
            .chunks(77_777)
            .map(Crc::of)
            .fold(Crc::default(), Crc::then);
        assert_eq!(combined, whole);
        assert_eq!(Crc::default().then(whole), whole);
        assert_eq!(whole.then(Crc::default()), whole);
    }

    #[test]
    fn a_chunk_is_byte_aligned_independent_and_inflates_back() {
        let data = synthetic("chunk", CHUNK);
        let mut d = Deflater::new();
        let a = d.chunk(&data);
        // Ends with the full flush's empty stored block, so it is byte-aligned.
        assert_eq!(&a.deflate[a.deflate.len() - 4..], &[0, 0, 0xff, 0xff]);
        assert_eq!(a.info.len as usize, CHUNK);
        assert_eq!(a.info.compressed_len as usize, a.deflate.len());
        assert_eq!(a.info.crc32, crc32fast::hash(&data));
        // Whatever the compressor did before, the same data gives the same chunk.
        d.chunk(&synthetic("other", 5000));
        assert_eq!(d.chunk(&data), a);
        assert_eq!(Deflater::new().chunk(&data), a);
        // With the final block it is a complete raw deflate stream.
        let mut whole = a.deflate.clone();
        whole.extend_from_slice(&FINAL_BLOCK);
        assert_eq!(inflate_raw(&whole, CHUNK), data);
        // And framed, a zlib stream with a valid adler32.
        let z = a.to_zlib();
        assert_eq!(z.len(), a.zlib_len());
        let mut dz = Decompress::new(true);
        let mut out = Vec::with_capacity(CHUNK + 1);
        let status = dz
            .decompress_vec(&z, &mut out, FlushDecompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        assert_eq!(out, data);
    }

    #[test]
    fn incompressible_and_tiny_chunks() {
        let mut d = Deflater::new();
        let mut noise = vec![0u8; CHUNK];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let c = d.chunk(&noise);
        assert!(c.store_uncompressed());
        let mut whole = c.deflate.clone();
        whole.extend_from_slice(&FINAL_BLOCK);
        assert_eq!(inflate_raw(&whole, CHUNK), noise);
        let one = d.chunk(b"x");
        assert!(one.store_uncompressed());
        assert_eq!(one.to_zlib().len(), one.zlib_len());
        let zeros = d.chunk(&[0; CHUNK]);
        assert!(!zeros.store_uncompressed());
    }

    #[test]
    fn any_number_of_threads_gives_the_same_chunks() {
        let data = synthetic("threads", 3 * CHUNK + 1234);
        let one = compress_bytes(&data, Threads::ONE);
        assert_eq!(one.len(), 4);
        assert_eq!(one[3].info.len, 1234);
        for n in [2, 3, 4, 8] {
            assert_eq!(compress_bytes(&data, Threads::new(n)), one, "{n} threads");
        }
        let mut streamed = Vec::new();
        let crc = compress_stream(&data[..], Threads::new(4), |raw, c| {
            assert_eq!(raw.len(), c.info.len as usize);
            streamed.push(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(streamed, one);
        assert_eq!(crc, Crc::of(&data));
        assert!(compress_bytes(&[], Threads::new(4)).is_empty());
    }
}
