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
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file compressed in chunks, its deflate in a file of its own, held open: what was checked
/// is what is read, whatever happens to the path afterwards.
#[derive(Clone, Debug)]
pub struct Chunked {
    deflate: PathBuf,
    file: Arc<File>,
    chunks: Vec<ChunkInfo>,
    crc: Crc,
    sha256: String,
    /// sha256 of the deflate file, lowercase hex.
    deflate_sha256: String,
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
        let mut deflate_hash = Sha256::new();
        let crc = compress_stream(&mut hashing, threads, |_, c| {
            out.write_all(&c.deflate)?;
            deflate_hash.update(&c.deflate);
            chunks.push(c.info);
            Ok(())
        })?;
        out.flush()?;
        drop(out);
        let (sha256, _) = hashing.finish()?;
        let file = File::open(deflate).map_err(read_err)?;
        Ok(Chunked {
            deflate: deflate.to_owned(),
            file: Arc::new(file),
            chunks,
            crc,
            sha256,
            deflate_sha256: hex::encode(deflate_hash.finalize()),
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

    /// Reads the chunks back in order (several readers at once may read one file).
    pub fn reader(&self) -> Result<ChunkReader<'_>, DeflateError> {
        Ok(ChunkReader {
            chunked: self,
            offset: 0,
            next: 0,
        })
    }
}

/// The chunks of a [`Chunked`], read from its file one at a time.
pub struct ChunkReader<'a> {
    chunked: &'a Chunked,
    offset: u64,
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
        self.chunked
            .file
            .read_exact_at(&mut deflate, self.offset)
            .map_err(|source| DeflateError::Read {
                path: self.chunked.deflate.clone(),
                source,
            })?;
        self.offset += u64::from(info.compressed_len);
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
    ) -> Result<Added, DeflateError> {
        self.add_spooled_kept(tree, dir, None, threads)
    }

    /// [`ChunkCache::add_spooled`], first looking for each file in `kept` (a directory that
    /// outlives the build: see [`kept_name`]) and taking its entry there when it is intact
    /// (its index's own digest, the content's digest and size, the deflate file's size and
    /// sha256 all as recorded); a file not there, or whose entry is not intact, is compressed
    /// and its entry (re)written there, atomically (a temporary file renamed). An entry that
    /// cannot be written leaves the build as it would be without `kept`: the cache only saves
    /// time, and no byte of any output depends on it.
    pub fn add_spooled_kept(
        &mut self,
        tree: &Tree,
        dir: &Path,
        kept: Option<&Path>,
        threads: Threads,
    ) -> Result<Added, DeflateError> {
        let kept = kept.filter(|k| std::fs::create_dir_all(k).is_ok());
        let mut added = Added::default();
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
            if let Some(k) = kept {
                match Chunked::load(k, sha256, *size) {
                    Ok(Some(chunked)) => {
                        added.reused += 1;
                        self.insert(chunked);
                        continue;
                    }
                    Ok(None) => {}
                    Err(_) => added.rewritten += 1,
                }
            }
            let file = File::open(spool).map_err(|source| DeflateError::Read {
                path: spool.clone(),
                source,
            })?;
            let input = BufReader::with_capacity(1 << 20, file);
            // Into a temporary file beside the kept entry when there is a place for one,
            // else into the build's own directory.
            let temp = kept.and_then(|k| {
                tempfile::Builder::new()
                    .prefix(&format!(".{sha256}."))
                    .tempfile_in(k)
                    .ok()
            });
            let target = match &temp {
                Some(t) => t.path().to_owned(),
                None => dir.join(format!("{sha256}.deflate")),
            };
            let mut chunked = Chunked::compress(input, &target, threads)?;
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
            added.compressed += 1;
            if let (Some(k), Some(t)) = (kept, temp) {
                // The open file stays what was written, whatever becomes of the names.
                if chunked.keep(k, t).is_ok() {
                    added.kept += 1;
                }
            }
            self.insert(chunked);
        }
        Ok(added)
    }
}

/// What [`ChunkCache::add_spooled_kept`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// Files compressed by this call.
    pub compressed: usize,
    /// Files whose kept entry was intact and taken as it was.
    pub reused: usize,
    /// Files whose kept entry was there but damaged (so compressed again).
    pub rewritten: usize,
    /// Files compressed and kept for later builds.
    pub kept: usize,
}

/// The version of the kept entries' format: part of [`kept_name`].
const KEPT_FORMAT: u32 = 1;

/// The directory name (in a store's `derived/`) of the kept compressed binaries of the release
/// whose tarball's sha512 is `release_sha512`: it names the release, the compressor (any
/// change of which changes compressed bytes) and the generator's version, so that an entry is
/// only ever taken by a build that would have made the same bytes.
pub fn kept_name(release_sha512: &str) -> String {
    let key = format!(
        "kubemint kept chunks {KEPT_FORMAT}\nrelease sha512 {release_sha512}\ncompressor {}\nchunk {}\ngenerator {} {}\n",
        super::COMPRESSOR,
        CHUNK,
        crate::GENERATOR,
        crate::VERSION
    );
    format!("chunks-{}", crate::util::hash::sha256_hex(key.as_bytes()))
}

/// A kept entry's index, `<sha256>.chunks`: the line of the sha256 of the rest, then this as
/// JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct Index {
    format: u32,
    sha256: String,
    len: u64,
    crc32: u32,
    deflate_len: u64,
    deflate_sha256: String,
    /// `[len, compressed_len, crc32, adler32]` of each chunk.
    chunks: Vec<[u32; 4]>,
}

impl Chunked {
    /// The intact entry for content `sha256` of `len` bytes in `dir`, `None` when there is none,
    /// an error when there is one that is not intact.
    fn load(dir: &Path, sha256: &str, len: u64) -> Result<Option<Chunked>, DeflateError> {
        let index_path = dir.join(format!("{sha256}.chunks"));
        let deflate = dir.join(format!("{sha256}.deflate"));
        let damaged = |why: &str| DeflateError::Kept {
            path: index_path.clone(),
            why: why.to_owned(),
        };
        let text = match std::fs::read(&index_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(damaged(&e.to_string())),
        };
        let split = text.iter().position(|&b| b == b'\n');
        let (digest, body) = match split {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => return Err(damaged("no digest line")),
        };
        if digest != crate::util::hash::sha256_hex(body).as_bytes() {
            return Err(damaged("its digest does not match"));
        }
        let index: Index = serde_json::from_slice(body).map_err(|e| damaged(&e.to_string()))?;
        if index.format != KEPT_FORMAT || index.sha256 != sha256 {
            return Err(damaged("another format or content"));
        }
        let chunks: Vec<ChunkInfo> = index
            .chunks
            .iter()
            .map(|&[len, compressed_len, crc32, adler32]| ChunkInfo {
                len,
                compressed_len,
                crc32,
                adler32,
            })
            .collect();
        let file = File::open(&deflate).map_err(|e| damaged(&e.to_string()))?;
        let mut hashing = HashingReader::<_, Sha256>::new(BufReader::with_capacity(1 << 20, &file));
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| damaged(&e.to_string()))?;
        let (deflate_sha256, deflate_len) =
            hashing.finish().map_err(|e| damaged(&e.to_string()))?;
        let compressed: u64 = chunks.iter().map(|c| u64::from(c.compressed_len)).sum();
        if deflate_sha256 != index.deflate_sha256
            || deflate_len != index.deflate_len
            || deflate_len != compressed
        {
            return Err(damaged("its deflate file is not the one recorded"));
        }
        let chunked = Chunked {
            deflate,
            file: Arc::new(file),
            chunks,
            crc: Crc {
                crc32: index.crc32,
                len: index.len,
            },
            sha256: index.sha256,
            deflate_sha256,
        };
        chunked
            .check_shape(sha256, len)
            .map_err(|e| damaged(&e.to_string()))?;
        Ok(Some(chunked))
    }

    /// Names the deflate file `temp` (these chunks') `<sha256>.deflate` in `dir` and writes the
    /// index beside it, each by renaming a complete temporary file; the index last.
    fn keep(&mut self, dir: &Path, temp: tempfile::NamedTempFile) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        // Readable by every user of a shared store (a temporary file is made 0600).
        let readable = || std::fs::Permissions::from_mode(0o644);
        temp.as_file().set_permissions(readable())?;
        let deflate = dir.join(format!("{}.deflate", self.sha256));
        temp.persist(&deflate).map_err(|e| e.error)?;
        self.deflate = deflate;
        let index = Index {
            format: KEPT_FORMAT,
            sha256: self.sha256.clone(),
            len: self.crc.len,
            crc32: self.crc.crc32,
            deflate_len: self.compressed_len(),
            deflate_sha256: self.deflate_sha256.clone(),
            chunks: self
                .chunks
                .iter()
                .map(|c| [c.len, c.compressed_len, c.crc32, c.adler32])
                .collect(),
        };
        let body = serde_json::to_vec(&index).map_err(std::io::Error::other)?;
        let mut text = crate::util::hash::sha256_hex(&body).into_bytes();
        text.push(b'\n');
        text.extend_from_slice(&body);
        let mut t = tempfile::Builder::new()
            .prefix(&format!(".{}.", self.sha256))
            .tempfile_in(dir)?;
        t.write_all(&text)?;
        t.as_file().set_permissions(readable())?;
        t.persist(dir.join(format!("{}.chunks", self.sha256)))
            .map_err(|e| e.error)?;
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
    fn kept_entries_are_taken_only_while_intact() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("bin");
        let data = synthetic("kept", 2 * CHUNK + 77);
        std::fs::write(&spool, &data).unwrap();
        let mut tree = Tree::new();
        tree.add_file("/usr/bin/a", 0o755, Content::Spooled(spool.clone()))
            .unwrap();
        let (scratch, kept) = (dir.path().join("scratch"), dir.path().join("kept"));
        std::fs::create_dir(&scratch).unwrap();
        let sha = sha256_hex(&data);
        let chunks_of = |c: &ChunkCache| {
            let mut r = c.get(&sha).unwrap().reader().unwrap();
            std::iter::from_fn(|| r.next_chunk().unwrap()).collect::<Vec<_>>()
        };

        let mut first = ChunkCache::new();
        let added = first
            .add_spooled_kept(&tree, &scratch, Some(&kept), Threads::new(2))
            .unwrap();
        assert_eq!((added.compressed, added.kept, added.reused), (1, 1, 0));
        assert_eq!(chunks_of(&first), compress_bytes(&data, Threads::ONE));
        assert!(kept.join(format!("{sha}.chunks")).is_file());

        let mut second = ChunkCache::new();
        let added = second
            .add_spooled_kept(&tree, &scratch, Some(&kept), Threads::ONE)
            .unwrap();
        assert_eq!((added.compressed, added.reused), (0, 1));
        assert_eq!(chunks_of(&second), chunks_of(&first));

        // A flipped bit: not taken, compressed again, the entry rewritten.
        let path = kept.join(format!("{sha}.deflate"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(Chunked::load(&kept, &sha, data.len() as u64).is_err());
        let mut third = ChunkCache::new();
        let added = third
            .add_spooled_kept(&tree, &scratch, Some(&kept), Threads::ONE)
            .unwrap();
        assert_eq!((added.rewritten, added.compressed, added.reused), (1, 1, 0));
        assert_eq!(chunks_of(&third), compress_bytes(&data, Threads::ONE));
        assert!(
            Chunked::load(&kept, &sha, data.len() as u64)
                .unwrap()
                .is_some()
        );
        // Another length than the tree says: not this content's entry.
        assert!(Chunked::load(&kept, &sha, data.len() as u64 + 1).is_err());
        // None kept: nothing to take.
        assert!(
            Chunked::load(&scratch, &sha, data.len() as u64)
                .unwrap()
                .is_none()
        );
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
