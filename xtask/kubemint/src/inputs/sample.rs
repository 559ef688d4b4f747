//! A stand-in release, generated deterministically: the upstream `kubernetes-server` layout with
//! small scripts (`--sample`, and every test fixture) that behave like the control-plane
//! components as systemd and a health probe see them, or print their name (see [`standin`]), or
//! with members of the real v1.14.0 sizes and Go-binary-like content (the benchmark).
//!
//! [`standin`]: super::standin

use crate::util::hash::{HashingWriter, Sha512Reader};
use flate2::{Compression, GzBuilder};
use sha2::Sha512;
use std::io::{self, Read, Write};

/// The executables of a v1.14 `server/bin`, with their v1.14.0 sizes in bytes. Sizes marked
/// in `kubernetes-facts.md` are exact; the others are estimates of the same order.
pub const BINARIES: &[(&str, u64)] = &[
    ("apiextensions-apiserver", 41_000_000),
    ("cloud-controller-manager", 100_000_000),
    ("hyperkube", 211_089_600),
    ("kube-apiserver", 167_464_288),
    ("kube-controller-manager", 115_497_504),
    ("kube-proxy", 36_000_000),
    ("kube-scheduler", 39_254_208),
    ("kubeadm", 39_000_000),
    ("kubectl", 43_103_040),
    ("kubelet", 127_000_000),
    ("mounter", 1_600_000),
];

/// Binaries that upstream also ships as `docker save` images (`<name>.tar` + `.docker_tag`).
pub const IMAGES: &[&str] = &[
    "cloud-controller-manager",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
];

/// How big the stand-in members are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// A few hundred bytes each: fast, for `--sample` and tests.
    Tiny,
    /// The given fraction of the real sizes (1.0 = full size), for the benchmark.
    Real(f64),
}

/// Writes the stand-in `kubernetes-server-linux-amd64.tar.gz` of `release` to `out` and returns
/// its (sha512, size). The same arguments always give the same bytes.
pub fn write_release<W: Write>(out: W, release: &str, scale: Scale) -> io::Result<(String, u64)> {
    let hashing = HashingWriter::<_, Sha512>::new(out);
    // Level 1 keeps generating a full-size release quick; the bytes are pinned all the same.
    let level = if scale == Scale::Tiny {
        Compression::default()
    } else {
        Compression::fast()
    };
    let gz = GzBuilder::new()
        .operating_system(255)
        .mtime(0)
        .write(hashing, level);
    let mut tar = tar::Builder::new(gz);
    let dir = |tar: &mut tar::Builder<_>, path: &str| -> io::Result<()> {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, path, io::empty())
    };
    let file = |tar: &mut tar::Builder<_>,
                path: &str,
                mode: u32,
                size: u64,
                data: &mut dyn Read|
     -> io::Result<()> {
        let mut h = header(tar::EntryType::Regular, mode, size);
        tar.append_data(&mut h, path, data)
    };
    dir(&mut tar, "kubernetes/")?;
    dir(&mut tar, "kubernetes/addons/")?;
    let license = format!("Stand-in LICENSES of the kubemint sample release {release}.\n");
    file(
        &mut tar,
        "kubernetes/LICENSES",
        0o644,
        license.len() as u64,
        &mut license.as_bytes(),
    )?;
    let src = b"not a source tarball: kubemint sample release\n";
    file(
        &mut tar,
        "kubernetes/kubernetes-src.tar.gz",
        0o644,
        src.len() as u64,
        &mut &src[..],
    )?;
    dir(&mut tar, "kubernetes/server/")?;
    dir(&mut tar, "kubernetes/server/bin/")?;
    for (name, real_size) in BINARIES {
        let path = format!("kubernetes/server/bin/{name}");
        match scale {
            Scale::Tiny => {
                let body = super::standin::executable(name, release).map_err(io::Error::other)?;
                file(
                    &mut tar,
                    &path,
                    0o755,
                    body.len() as u64,
                    &mut body.as_bytes(),
                )?;
            }
            Scale::Real(f) => {
                let size = (*real_size as f64 * f) as u64;
                file(
                    &mut tar,
                    &path,
                    0o755,
                    size,
                    &mut Synthetic::new(name, size),
                )?;
            }
        }
        if IMAGES.contains(name) {
            let image_path = format!("{path}.tar");
            match scale {
                Scale::Tiny => {
                    let body = format!("stand-in docker image of {name} {release}\n");
                    file(
                        &mut tar,
                        &image_path,
                        0o644,
                        body.len() as u64,
                        &mut body.as_bytes(),
                    )?;
                }
                Scale::Real(f) => {
                    let size = ((*real_size + 44_000_000) as f64 * f) as u64;
                    file(
                        &mut tar,
                        &image_path,
                        0o644,
                        size,
                        &mut Synthetic::new(&image_path, size),
                    )?;
                }
            }
            let tag = format!("{release}\n");
            file(
                &mut tar,
                &format!("{path}.docker_tag"),
                0o644,
                tag.len() as u64,
                &mut tag.as_bytes(),
            )?;
        }
    }
    let gz = tar.into_inner()?;
    let hashing = gz.finish()?;
    let (mut out, sha512, size) = hashing.finish();
    out.flush()?;
    Ok((sha512, size))
}

/// The body of a stand-in executable that only prints its name and version, and that it is a
/// sample: every binary of the release but those [`super::standin`] makes behave.
pub fn tiny_executable(name: &str, release: &str) -> String {
    format!(
        "#!/bin/sh\n# kubemint sample release: a stand-in, not a real Kubernetes binary\necho '{name} {release} (kubemint sample)'\n"
    )
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// sha512 and size of the stand-in release, without keeping it.
pub fn digest(release: &str, scale: Scale) -> io::Result<(String, u64)> {
    write_release(io::sink(), release, scale)
}

/// Deterministic bytes that compress about as well as a Go binary (gzip -6 to roughly 40%):
/// runs of pseudo-random bytes between runs of repeated symbol-like text.
pub struct Synthetic {
    state: u64,
    remaining: u64,
    chunk: Vec<u8>,
    pos: usize,
}

impl Synthetic {
    pub fn new(seed: &str, size: u64) -> Synthetic {
        let state = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Synthetic {
            state: state | 1,
            remaining: size,
            chunk: Vec::new(),
            pos: 0,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn refill(&mut self) {
        const WORDS: &[&str] = &[
            "k8s.io/apiserver/pkg/",
            "runtime.",
            "github.com/",
            "(*Config).",
            "Complete",
            "Handler",
            "func1",
            "sync.(*Mutex).Lock",
            "encoding/json.",
            "k8s.io/api/core/v1.",
            "Unmarshal",
            "golang.org/x/net/http2.",
            "type..eq.",
            "go.itab.*",
            "reflect.",
            "Validate",
        ];
        self.chunk.clear();
        self.pos = 0;
        let r = self.next();
        if r % 100 < 38 {
            for _ in 0..512 {
                let v = self.next();
                self.chunk.extend_from_slice(&v.to_le_bytes());
            }
        } else {
            while self.chunk.len() < 4096 {
                let v = self.next();
                self.chunk
                    .extend_from_slice(WORDS[(v % WORDS.len() as u64) as usize].as_bytes());
                self.chunk.push((v >> 40) as u8 & 0x1f);
            }
        }
    }
}

impl Read for Synthetic {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        if self.pos == self.chunk.len() {
            self.refill();
        }
        let n = buf
            .len()
            .min(self.chunk.len() - self.pos)
            .min(self.remaining as usize);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// sha512 and size of an existing stream, for callers that hold a sample in memory.
pub fn sha512_of(bytes: &[u8]) -> (String, u64) {
    Sha512Reader::new(bytes)
        .finish()
        .expect("reading memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        let mut a = Vec::new();
        let (sha, size) = write_release(&mut a, "v1.14.2", Scale::Tiny).unwrap();
        assert_eq!(size, a.len() as u64);
        assert_eq!(sha512_of(&a).0, sha);
        assert_eq!(digest("v1.14.2", Scale::Tiny).unwrap(), (sha.clone(), size));
        assert_ne!(digest("v1.33.5", Scale::Tiny).unwrap().0, sha);
    }

    #[test]
    fn synthetic_compresses_like_a_binary() {
        let mut data = Vec::new();
        Synthetic::new("kube-apiserver", 4 << 20)
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(data.len(), 4 << 20);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&data).unwrap();
        let ratio = gz.finish().unwrap().len() as f64 / data.len() as f64;
        assert!((0.3..0.55).contains(&ratio), "ratio {ratio}");
    }
}
