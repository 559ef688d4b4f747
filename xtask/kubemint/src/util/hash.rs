//! Digests: sha256 and sha512 as lowercase hex, and readers/writers that hash what passes through.

use sha2::{Digest, Sha256, Sha512};
use std::io::{self, Read, Write};

/// Lowercase hex sha256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex sha512 of a byte slice.
pub fn sha512_hex(bytes: &[u8]) -> String {
    hex::encode(Sha512::digest(bytes))
}

/// True when `s` is `len` lowercase hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A reader that hashes every byte read through it.
pub struct HashingReader<R, D> {
    inner: R,
    digest: D,
    count: u64,
}

impl<R: Read, D: Digest> HashingReader<R, D> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            digest: D::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads the rest of the input (so the digest covers all of it) and returns (hex, size).
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex::encode(self.digest.finalize()), self.count))
    }
}

impl<R: Read, D: Digest> Read for HashingReader<R, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes every byte written through it.
pub struct HashingWriter<W, D> {
    inner: W,
    digest: D,
    count: u64,
}

impl<W: Write, D: Digest> HashingWriter<W, D> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            digest: D::new(),
            count: 0,
        }
    }

    /// Returns the inner writer, the hex digest and the number of bytes written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.digest.finalize()), self.count)
    }
}

impl<W: Write, D: Digest> Write for HashingWriter<W, D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub type Sha256Reader<R> = HashingReader<R, Sha256>;
pub type Sha512Reader<R> = HashingReader<R, Sha512>;

/// A [`Sha512Reader`] that hashes on a thread of its own, so that whatever reads through it (a
/// gunzip) and the digest each have a core: the same digest and size, in less wall time.
pub struct Sha512ReaderThreaded<R> {
    inner: R,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<(String, u64)>>,
}

impl<R: Read> Sha512ReaderThreaded<R> {
    pub fn new(inner: R) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let thread = std::thread::spawn(move || {
            let mut digest = Sha512::new();
            let mut count = 0u64;
            for block in rx {
                digest.update(&block);
                count += block.len() as u64;
            }
            (hex::encode(digest.finalize()), count)
        });
        Sha512ReaderThreaded {
            inner,
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Reads the rest of the input (so the digest covers all of it) and returns (hex, size).
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        self.tx = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(done)) => Ok(done),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(io::Error::other("the hashing thread is gone")),
        }
    }
}

impl<R: Read> Read for Sha512ReaderThreaded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let sent = self.tx.as_ref().map(|tx| tx.send(buf[..n].to_vec()));
            if !matches!(sent, Some(Ok(()))) {
                return Err(io::Error::other("the hashing thread is gone"));
            }
        }
        Ok(n)
    }
}
pub type Sha256Writer<W> = HashingWriter<W, Sha256>;

/// sha256 and size of a file on disk, streamed.
pub fn sha256_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let file = std::fs::File::open(path)?;
    Sha256Reader::new(io::BufReader::with_capacity(1 << 20, file)).finish()
}

/// sha512 and size of a file on disk, streamed.
pub fn sha512_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let file = std::fs::File::open(path)?;
    Sha512Reader::new(io::BufReader::with_capacity(1 << 20, file)).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threaded_sha512_reader_hashes_what_the_plain_one_does() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut plain = Sha512Reader::new(&data[..]);
        let mut threaded = Sha512ReaderThreaded::new(&data[..]);
        let mut half = vec![0; 1_000_000];
        io::Read::read_exact(&mut plain, &mut half).unwrap();
        io::Read::read_exact(&mut threaded, &mut half).unwrap();
        assert_eq!(threaded.finish().unwrap(), plain.finish().unwrap());
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (hex, n) = Sha256Reader::new(&b"abc"[..]).finish().unwrap();
        assert_eq!((hex.as_str(), n), (sha256_hex(b"abc").as_str(), 3));
        assert!(is_hex(&sha512_hex(b""), 128));
        assert!(!is_hex("ABC", 3));
    }
}
