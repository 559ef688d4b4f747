//! A tree as tar.gz, compressed in chunks so that a binary's compression is reused: the payload
//! and the OCI release layer carry the same binaries, and with a [`ChunkCache`] they are
//! deflated once per release, whatever the number of masters and outputs.
//!
//! The tar bytes are exactly [`payload::write_tar`]'s (the headers come from the same
//! `tar::Builder` calls, with [`payload::header`], long names as GNU `././@LongLink` entries).
//! How they are cut into chunks depends only on the tree:
//!
//! - the content of every *spooled* file (a binary) is cut into [`CHUNK`]s counted from its
//!   first byte, as its squashfs data blocks are, and the cache holds exactly those chunks;
//! - every other byte (headers, padding, rendered files, the end-of-archive blocks) runs
//!   together between two binaries and is cut into [`CHUNK`]s counted from the run's start.
//!
//! Each chunk is compressed on its own, so the output is the same for any number of threads
//! and with or without a cache.

use super::cache::{ChunkCache, Job, Source};
use super::gzip::GzipWriter;
use super::pipeline::{self, Feeder};
use super::{CHUNK, Chunk, DeflateError, Deflater, Threads};
use crate::pack::payload::{self, Written};
use crate::tree::{Content, Kind, Tree};
use crate::util::epoch::Epoch;
use crate::util::hash::Sha256Writer;
use crate::util::progress::Bar;
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::sync::Arc;

/// What manifests record for a tar.gz written here.
pub const COMPRESSOR: &str = "gzip (one member: deflate level 6, flate2 zlib-rs backend, in independent 128 KiB chunks, each full-flushed; mtime 0, no name, OS 255)";

/// Writes `tree` as tar.gz to `out` on `threads` threads, taking the chunks of every file whose
/// content `cache` holds from there, and returns both digests. `bar` advances with the
/// uncompressed bytes.
pub fn write_tar_gz<W: Write>(
    tree: &Tree,
    epoch: Epoch,
    out: W,
    cache: Option<&ChunkCache>,
    threads: Threads,
    bar: &Bar,
) -> Result<(W, Written), DeflateError> {
    let mut gz = GzipWriter::new(Sha256Writer::new(out))?;
    let work = |d: &mut Deflater, job: Job| job.resolve(d).map(|(_, c)| c);
    let mut sink = |r: Result<Chunk, DeflateError>| Ok(gz.push(&r?)?);
    let (tar_sha256, tar_size) = pipeline::run(threads, &work, &mut sink, |feed| {
        produce(tree, epoch, cache, bar, feed)
    })?;
    let (compressed, member) = gz.finish()?;
    debug_assert_eq!(member.uncompressed.len, tar_size);
    let (mut out, sha256, size) = compressed.finish();
    out.flush()?;
    Ok((
        out,
        Written {
            sha256,
            size,
            tar_sha256,
            tar_size,
        },
    ))
}

type Feed<'f> = Feeder<'f, Job, Result<Chunk, DeflateError>, DeflateError>;

/// The bytes between two binaries, pushed as chunks whenever a chunk's worth is there.
struct Run {
    bytes: Vec<u8>,
    what: Arc<str>,
    index: usize,
    hash: Sha256,
    len: u64,
}

impl Run {
    fn add(
        &mut self,
        mut bytes: &[u8],
        feed: &mut Feed<'_>,
        bar: &Bar,
    ) -> Result<(), DeflateError> {
        self.hash.update(bytes);
        self.len += bytes.len() as u64;
        bar.inc(bytes.len() as u64);
        while !bytes.is_empty() {
            let take = (CHUNK - self.bytes.len()).min(bytes.len());
            self.bytes.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.bytes.len() == CHUNK {
                self.push(feed)?;
            }
        }
        Ok(())
    }

    /// Ends the run: its last, short chunk goes out, and the next run starts afresh.
    fn end(&mut self, feed: &mut Feed<'_>) -> Result<(), DeflateError> {
        if !self.bytes.is_empty() {
            self.push(feed)?;
        }
        Ok(())
    }

    fn push(&mut self, feed: &mut Feed<'_>) -> Result<(), DeflateError> {
        let data = std::mem::replace(&mut self.bytes, Vec::with_capacity(CHUNK));
        self.index += 1;
        feed.push(Job {
            data,
            cached: None,
            what: self.what.clone(),
            index: self.index - 1,
        })
    }
}

/// Walks the tree in order, pushing its tar stream as chunk jobs; returns the tar's sha256
/// and size.
fn produce(
    tree: &Tree,
    epoch: Epoch,
    cache: Option<&ChunkCache>,
    bar: &Bar,
    feed: &mut Feed<'_>,
) -> Result<(String, u64), DeflateError> {
    let mut run = Run {
        bytes: Vec::with_capacity(CHUNK),
        what: Arc::from("tar headers and rendered files"),
        index: 0,
        hash: Sha256::new(),
        len: 0,
    };
    // Headers come from the very calls payload::write_tar makes, into memory.
    let mut headers = ::tar::Builder::new(Vec::new());
    for (path, entry) in tree.iter() {
        let name = &path[1..];
        let (mode, uid, gid) = (entry.mode, entry.uid, entry.gid);
        match &entry.kind {
            Kind::Dir => {
                let mut h = payload::header(::tar::EntryType::Directory, mode, uid, gid, 0, epoch)?;
                headers.append_data(&mut h, format!("{name}/"), io::empty())?;
            }
            Kind::Symlink { target } => {
                let mut h = payload::header(::tar::EntryType::Symlink, mode, uid, gid, 0, epoch)?;
                headers.append_link(&mut h, name, target)?;
            }
            Kind::File {
                content: Content::Inline(bytes),
                size,
                ..
            } => {
                let mut h =
                    payload::header(::tar::EntryType::Regular, mode, uid, gid, *size, epoch)?;
                // Header, content and padding, all of it inline.
                headers.append_data(&mut h, name, bytes.as_slice())?;
            }
            Kind::File {
                content: content @ Content::Spooled(_),
                size,
                sha256,
            } => {
                let mut h =
                    payload::header(::tar::EntryType::Regular, mode, uid, gid, *size, epoch)?;
                headers.append_data(&mut h, name, io::empty())?;
                run.add(&std::mem::take(headers.get_mut()), feed, bar)?;
                run.end(feed)?;
                let mut source = Source::open(path, content, *size, sha256, cache)?;
                while let Some(job) = source.next_job()? {
                    run.hash.update(&job.data);
                    run.len += job.data.len() as u64;
                    bar.inc(job.data.len() as u64);
                    feed.push(job)?;
                }
                let padding = (512 - size % 512) % 512;
                run.add(&[0; 512][..padding as usize], feed, bar)?;
                continue;
            }
        }
        run.add(&std::mem::take(headers.get_mut()), feed, bar)?;
    }
    // The two zero blocks that end an archive.
    let end = headers.into_inner()?;
    run.add(&end, feed, bar)?;
    run.end(feed)?;
    Ok((hex::encode(run.hash.finalize()), run.len))
}

#[cfg(test)]
mod tests {
    use super::super::tests::synthetic;
    use super::*;
    use crate::util::progress::Progress;
    use std::io::Read;
    use std::path::Path;
    use std::process::Command;

    fn epoch() -> Epoch {
        Epoch::new(1_558_000_000).unwrap()
    }

    /// A tree with binaries (spooled, of sizes around chunk and tar block boundaries),
    /// rendered files, links and paths over 100 bytes.
    fn sample_tree(dir: &Path) -> Tree {
        let mut t = Tree::new();
        for (name, len) in [
            ("kube-apiserver", 3 * CHUNK + 700),
            ("kubectl", CHUNK),
            ("tiny", 150),
            ("empty", 0),
            ("aligned", 1024),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, synthetic(name, len)).unwrap();
            t.add_file(
                &format!("/usr/lib/kubernetes/bin/{name}"),
                0o755,
                Content::Spooled(p),
            )
            .unwrap();
        }
        t.add_file(
            "/etc/k8s/kubernetes/audit-policy.yaml",
            0o644,
            Content::Inline(b"apiVersion: audit.k8s.io/v1\nkind: Policy\n".repeat(40)),
        )
        .unwrap();
        t.add_file(
            "/etc/k8s/big.yaml",
            0o600,
            Content::Inline(synthetic("big", 2 * CHUNK + 3)),
        )
        .unwrap();
        let long = format!("/usr/share/{}/file", "x".repeat(120));
        t.add_file(&long, 0o644, Content::Inline(b"hello".to_vec()))
            .unwrap();
        t.add_symlink(
            "/usr/local/bin/kube-apiserver",
            "/usr/lib/kubernetes/bin/kube-apiserver",
        )
        .unwrap();
        t.add_symlink("/usr/local/bin/long", &format!("/opt/{}", "y".repeat(150)))
            .unwrap();
        t.add_dir("/opt/k8s", 0o750).unwrap();
        t
    }

    fn chunked(tree: &Tree, cache: Option<&ChunkCache>, threads: usize) -> (Vec<u8>, Written) {
        let bar = Progress::hidden().bar("", None);
        write_tar_gz(
            tree,
            epoch(),
            Vec::new(),
            cache,
            Threads::new(threads),
            &bar,
        )
        .unwrap()
    }

    #[test]
    fn the_tar_inside_is_payload_write_tar_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sample_tree(dir.path());
        let (gz, w) = chunked(&tree, None, 1);
        assert_eq!(w.size, gz.len() as u64);
        assert_eq!(w.sha256, crate::util::hash::sha256_hex(&gz));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        let want = payload::write_tar(&tree, epoch(), Vec::new()).unwrap();
        assert!(tar == want, "the tar streams differ");
        assert_eq!(w.tar_size, want.len() as u64);
        assert_eq!(w.tar_sha256, crate::util::hash::sha256_hex(&want));
        // The diff_id is the payload's, whichever compressor.
        let bar = Progress::hidden().bar("", None);
        let (_, classic) = payload::write_tar_hashed(&tree, epoch(), Vec::new(), &bar).unwrap();
        assert_eq!(
            (classic.tar_sha256, classic.tar_size),
            (w.tar_sha256, w.tar_size)
        );
    }

    #[test]
    fn threads_and_the_cache_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sample_tree(dir.path());
        let (one, w) = chunked(&tree, None, 1);
        let (four, _) = chunked(&tree, None, 4);
        assert!(four == one, "1 and 4 threads differ");
        let cache_dir = dir.path().join("cache");
        std::fs::create_dir(&cache_dir).unwrap();
        let mut cache = ChunkCache::new();
        cache
            .add_spooled(&tree, &cache_dir, Threads::new(2))
            .unwrap();
        assert_eq!(cache.len(), 5, "empty files too, one entry per content");
        for n in [1, 4] {
            let (cached, wc) = chunked(&tree, Some(&cache), n);
            assert!(cached == one, "cached, {n} threads");
            assert_eq!(wc, w);
        }
    }

    #[test]
    fn gzip_python_tarfile_and_gnu_tar_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sample_tree(dir.path());
        let (gz, _) = chunked(&tree, None, 2);
        let file = dir.path().join("t.tar.gz");
        std::fs::write(&file, &gz).unwrap();
        let t = Command::new("gzip").arg("-t").arg(&file).output().unwrap();
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        let py = Command::new("python3")
            .args([
                "-c",
                "import tarfile,sys\n\
                 for m in tarfile.open(sys.argv[1], 'r:gz'):\n    print(m.name, oct(m.mode), m.uid, m.gid, m.mtime, m.size, m.linkname)",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        let listing = String::from_utf8(py.stdout).unwrap();
        assert!(listing.contains(&format!(
            "usr/share/{}/file 0o644 0 0 1558000000 5 ",
            "x".repeat(120)
        )));
        assert!(listing.contains(&format!(
            "usr/local/bin/long 0o777 0 0 1558000000 0 /opt/{}",
            "y".repeat(150)
        )));
        assert!(listing.contains(&format!(
            "usr/lib/kubernetes/bin/kube-apiserver 0o755 0 0 1558000000 {} ",
            3 * CHUNK + 700
        )));
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let tar = Command::new("tar")
            .arg("-xzf")
            .arg(&file)
            .arg("-C")
            .arg(&x)
            .output()
            .unwrap();
        assert!(
            tar.status.success(),
            "{}",
            String::from_utf8_lossy(&tar.stderr)
        );
        assert_eq!(
            std::fs::read(x.join("usr/lib/kubernetes/bin/kube-apiserver")).unwrap(),
            synthetic("kube-apiserver", 3 * CHUNK + 700)
        );
    }
}
