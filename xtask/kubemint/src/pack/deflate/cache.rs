//! Files compressed once and reused: a [`Chunked`] is a file's chunks, their raw deflate back to
//! back in a file on disk and their [`ChunkInfo`]s in memory (about 16 bytes per 128 KiB), so a
//! release's binaries cost little memory however big they are. A [`ChunkCache`] holds them by
//! the sha256 of their content, which every tree entry carries: a packer that meets a file whose
//! digest is cached copies its chunks instead of compressing it. Since a chunk depends only on
//! its bytes, an output is the same with or without the cache; the cache only saves time.
//!
//! Readers check every cached chunk against the bytes it claims to cover (CRC-32, at memory
//! speed), so a stale cache is an error, never a wrong output.

use super::{CHUNK, Chunk, ChunkInfo, Crc, DeflateError, Threads, compress_stream};
use crate::tree::{Content, Kind, Tree};
use crate::util::hash::HashingReader;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A file compressed in chunks, its deflate in a file of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunked {
    deflate: PathBuf,
    chunks: Vec<ChunkInfo>,
    crc: Crc,
    sha256: String,
}

impl Chunked {
    /// Compresses `input` on `threads` threads into a new file `deflate`, and returns the
    /// chunks with the sha256, CRC-32 and length of what was read.
    pub fn compress(
        input: impl Read,
        deflate: &Path,
        threads: Threads,
    ) -> Result<Chunked, DeflateError> {
        let read_err = |source| DeflateError::Read {
            path: deflate.to_owned(),
            source,
        };
        let mut out = BufWriter::with_capacity(1 << 20, File::create(deflate).map_err(read_err)?);
        let mut hashing = HashingReader::<_, Sha256>::new(input);
        let mut chunks = Vec::new();
        let crc = compress_stream(&mut hashing, threads, |_, c| {
            out.write_all(&c.deflate)?;
            chunks.push(c.info);
            Ok(())
        })?;
        out.flush()?;
        let (sha256, _) = hashing.finish()?;
        Ok(Chunked {
            deflate: deflate.to_owned(),
            chunks,
            crc,
            sha256,
        })
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }

    /// CRC-32 and length of the content.
    pub fn crc(&self) -> Crc {
        self.crc
    }

    pub fn len(&self) -> u64 {
        self.crc.len
    }

    pub fn is_empty(&self) -> bool {
        self.crc.len == 0
    }

    /// sha256 of the content, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The file holding the chunks' deflate.
    pub fn path(&self) -> &Path {
        &self.deflate
    }

    /// Bytes of deflate, all chunks together.
    pub fn compressed_len(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| u64::from(c.compressed_len))
            .sum()
    }

    /// Checks that these chunks cut content of `len` bytes as [`CHUNK`]s counted from its
    /// first byte would.
    pub fn check_shape(&self, what: &str, len: u64) -> Result<(), DeflateError> {
        let shaped = len == self.crc.len
            && self.chunks.len() as u64 == len.div_ceil(CHUNK as u64)
            && self.chunks.iter().enumerate().all(|(i, c)| {
                u64::from(c.len) == (len - i as u64 * CHUNK as u64).min(CHUNK as u64)
            });
        if shaped {
            Ok(())
        } else {
            Err(DeflateError::CacheShape {
                what: what.to_owned(),
                cached: self.chunks.len(),
                cached_len: self.crc.len,
                len,
            })
        }
    }

    /// Reads the chunks back in order.
    pub fn reader(&self) -> Result<ChunkReader<'_>, DeflateError> {
        let file = File::open(&self.deflate).map_err(|source| DeflateError::Read {
            path: self.deflate.clone(),
            source,
        })?;
        Ok(ChunkReader {
            chunked: self,
            file: BufReader::with_capacity(1 << 20, file),
            next: 0,
        })
    }
}

/// The chunks of a [`Chunked`], read from its file one at a time.
pub struct ChunkReader<'a> {
    chunked: &'a Chunked,
    file: BufReader<File>,
    next: usize,
}

impl ChunkReader<'_> {
    /// The next chunk, or `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, DeflateError> {
        let Some(&info) = self.chunked.chunks.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let mut deflate = vec![0; info.compressed_len as usize];
        self.file
            .read_exact(&mut deflate)
            .map_err(|source| DeflateError::Read {
                path: self.chunked.deflate.clone(),
                source,
            })?;
        Ok(Some(Chunk { info, deflate }))
    }
}

/// Compressed files by the sha256 of their content.
#[derive(Clone, Debug, Default)]
pub struct ChunkCache {
    files: BTreeMap<String, Chunked>,
}

impl ChunkCache {
    pub fn new() -> ChunkCache {
        ChunkCache::default()
    }

    /// Adds `chunked` under its content's sha256 (replacing an entry for the same content).
    pub fn insert(&mut self, chunked: Chunked) {
        self.files.insert(chunked.sha256.clone(), chunked);
    }

    /// The chunks of the content whose sha256 is `sha256`, if cached.
    pub fn get(&self, sha256: &str) -> Option<&Chunked> {
        self.files.get(sha256)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Chunked> {
        self.files.values()
    }

    /// Compresses every spooled file of `tree` (the binaries) whose content is not cached yet
    /// into `dir` (as `<sha256>.deflate`), one file after the other, each on `threads` threads.
    /// A file whose bytes do not hash to what the tree says is an error.
    pub fn add_spooled(
        &mut self,
        tree: &Tree,
        dir: &Path,
        threads: Threads,
    ) -> Result<(), DeflateError> {
        for (path, entry) in tree.iter() {
            let Kind::File {
                content: Content::Spooled(spool),
                size,
                sha256,
            } = &entry.kind
            else {
                continue;
            };
            if self.files.contains_key(sha256) {
                continue;
            }
            let file = File::open(spool).map_err(|source| DeflateError::Read {
                path: spool.clone(),
                source,
            })?;
            let input = BufReader::with_capacity(1 << 20, file);
            let chunked =
                Chunked::compress(input, &dir.join(format!("{sha256}.deflate")), threads)?;
            if chunked.len() != *size {
                return Err(DeflateError::Size {
                    what: path.to_owned(),
                    expected: *size,
                    actual: chunked.len(),
                });
            }
            if chunked.sha256 != *sha256 {
                return Err(DeflateError::Digest {
                    what: path.to_owned(),
                    expected: sha256.clone(),
                    actual: chunked.sha256,
                });
            }
            self.insert(chunked);
        }
        Ok(())
    }
}

/// The next chunk of a file's content, as a job for the compressing threads: the bytes, and
/// the cached chunk that claims to cover them, if any.
pub(crate) struct Job {
    pub data: Vec<u8>,
    pub cached: Option<Chunk>,
    /// The file (or `""` for bytes of no file), for errors.
    pub what: std::sync::Arc<str>,
    pub index: usize,
}

impl Job {
    /// The chunk of this job's bytes: the cached one once its CRC-32 matches, or a new one.
    pub fn resolve(self, d: &mut super::Deflater) -> Result<(Vec<u8>, Chunk), DeflateError> {
        match self.cached {
            None => {
                let c = d.chunk(&self.data);
                Ok((self.data, c))
            }
            Some(c) => {
                let actual = crc32fast::hash(&self.data);
                if actual != c.info.crc32 || c.info.len as usize != self.data.len() {
                    return Err(DeflateError::Stale {
                        what: self.what.to_string(),
                        index: self.index,
                        cached: c.info.crc32,
                        actual,
                    });
                }
                Ok((self.data, c))
            }
        }
    }
}

/// Reads a file's content chunk by chunk, with the cached chunks for it when `cache` has them:
/// the producer side of every packer that reuses compressed files.
pub(crate) struct Source<'a> {
    what: std::sync::Arc<str>,
    input: Box<dyn Read + 'a>,
    cached: Option<ChunkReader<'a>>,
    size: u64,
    read: u64,
    index: usize,
}

impl<'a> Source<'a> {
    /// The content of the file `path` of a tree, of `size` bytes whose sha256 is `sha256`.
    pub fn open(
        path: &str,
        content: &'a Content,
        size: u64,
        sha256: &str,
        cache: Option<&'a ChunkCache>,
    ) -> Result<Source<'a>, DeflateError> {
        let input: Box<dyn Read + 'a> = match content {
            Content::Inline(bytes) => Box::new(bytes.as_slice()),
            Content::Spooled(p) => {
                let f = File::open(p).map_err(|source| DeflateError::Read {
                    path: p.clone(),
                    source,
                })?;
                Box::new(BufReader::with_capacity(CHUNK, f))
            }
        };
        let cached = match cache.and_then(|c| c.get(sha256)) {
            Some(c) => {
                c.check_shape(path, size)?;
                Some(c.reader()?)
            }
            None => None,
        };
        Ok(Source {
            what: path.into(),
            input,
            cached,
            size,
            read: 0,
            index: 0,
        })
    }

    /// The next chunk's job, `None` at the end; a content longer or shorter than `size` is an
    /// error.
    pub fn next_job(&mut self) -> Result<Option<Job>, DeflateError> {
        let want = (self.size - self.read).min(CHUNK as u64) as usize;
        if want == 0 {
            let mut probe = [0u8; 1];
            if super::read_full(&mut self.input, &mut probe)? != 0 {
                return Err(DeflateError::Size {
                    what: self.what.to_string(),
                    expected: self.size,
                    actual: self.size + 1,
                });
            }
            return Ok(None);
        }
        let mut data = vec![0; want];
        let n = super::read_full(&mut self.input, &mut data)?;
        if n < want {
            return Err(DeflateError::Size {
                what: self.what.to_string(),
                expected: self.size,
                actual: self.read + n as u64,
            });
        }
        self.read += n as u64;
        let cached = match &mut self.cached {
            Some(r) => r.next_chunk()?,
            None => None,
        };
        let job = Job {
            data,
            cached,
            what: self.what.clone(),
            index: self.index,
        };
        self.index += 1;
        Ok(Some(job))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::synthetic;
    use super::super::{Deflater, compress_bytes};
    use super::*;
    use crate::util::hash::sha256_hex;

    #[test]
    fn a_cached_file_reads_back_the_chunks_a_fresh_compression_makes() {
        let dir = tempfile::tempdir().unwrap();
        let data = synthetic("cached", 3 * CHUNK + 999);
        for n in [1, 4] {
            let c = Chunked::compress(&data[..], &dir.path().join(format!("{n}")), Threads::new(n))
                .unwrap();
            assert_eq!(c.len(), data.len() as u64);
            assert_eq!(c.sha256(), sha256_hex(&data));
            assert_eq!(c.crc(), Crc::of(&data));
            c.check_shape("x", data.len() as u64).unwrap();
            assert!(c.check_shape("x", data.len() as u64 + 1).is_err());
            let mut r = c.reader().unwrap();
            let mut got = Vec::new();
            while let Some(chunk) = r.next_chunk().unwrap() {
                got.push(chunk);
            }
            assert_eq!(got, compress_bytes(&data, Threads::ONE));
            assert_eq!(
                c.compressed_len(),
                got.iter().map(|c| c.deflate.len() as u64).sum::<u64>()
            );
        }
    }

    #[test]
    fn the_cache_holds_the_spooled_files_of_a_tree_by_digest_and_catches_stale_content() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("bin");
        let data = synthetic("bin", CHUNK + 5);
        std::fs::write(&spool, &data).unwrap();
        let mut tree = Tree::new();
        tree.add_file("/usr/bin/a", 0o755, Content::Spooled(spool.clone()))
            .unwrap();
        tree.add_file("/usr/bin/b", 0o755, Content::Spooled(spool.clone()))
            .unwrap();
        tree.add_file("/etc/c", 0o644, Content::Inline(b"c".to_vec()))
            .unwrap();
        let mut cache = ChunkCache::new();
        let out = dir.path().join("cache");
        std::fs::create_dir(&out).unwrap();
        cache.add_spooled(&tree, &out, Threads::new(2)).unwrap();
        // Two paths, one content: compressed once.
        assert_eq!(cache.len(), 1);
        let sha = sha256_hex(&data);
        let c = cache.get(&sha).unwrap();
        assert_eq!(c.path(), out.join(format!("{sha}.deflate")));
        // Reading through a Source checks each chunk against the bytes.
        let content = Content::Spooled(spool.clone());
        let mut d = Deflater::new();
        let mut src = Source::open(
            "/usr/bin/a",
            &content,
            data.len() as u64,
            &sha,
            Some(&cache),
        )
        .unwrap();
        let mut n = 0;
        while let Some(job) = src.next_job().unwrap() {
            assert!(job.cached.is_some());
            job.resolve(&mut d).unwrap();
            n += 1;
        }
        assert_eq!(n, 2);
        // The spool changed after it was compressed: same length, other bytes.
        let mut changed = data.clone();
        changed[CHUNK + 1] ^= 1;
        std::fs::write(&spool, &changed).unwrap();
        let mut src = Source::open(
            "/usr/bin/a",
            &content,
            data.len() as u64,
            &sha,
            Some(&cache),
        )
        .unwrap();
        src.next_job().unwrap().unwrap().resolve(&mut d).unwrap();
        let err = src
            .next_job()
            .unwrap()
            .unwrap()
            .resolve(&mut d)
            .unwrap_err();
        assert!(matches!(err, DeflateError::Stale { index: 1, .. }), "{err}");
        // Longer or shorter than the tree says.
        std::fs::write(&spool, &data[..10]).unwrap();
        let mut src = Source::open("/usr/bin/a", &content, data.len() as u64, &sha, None).unwrap();
        assert!(matches!(
            src.next_job(),
            Err(DeflateError::Size { actual: 10, .. })
        ));
        std::fs::write(&spool, [&data[..], b"!"].concat()).unwrap();
        let mut src = Source::open("/usr/bin/a", &content, data.len() as u64, &sha, None).unwrap();
        while src.next_job().is_ok_and(|j| j.is_some()) {}
        let mut src = Source::open("/usr/bin/a", &content, data.len() as u64, &sha, None).unwrap();
        let end = std::iter::from_fn(|| Some(src.next_job()))
            .find(|r| !matches!(r, Ok(Some(_))))
            .unwrap();
        assert!(matches!(end, Err(DeflateError::Size { .. })));
        // A spool whose digest is not the tree's is refused when caching.
        let mut other = ChunkCache::new();
        let err = other.add_spooled(&tree, &out, Threads::ONE).unwrap_err();
        assert!(
            matches!(err, DeflateError::Size { .. } | DeflateError::Digest { .. }),
            "{err}"
        );
    }
}
