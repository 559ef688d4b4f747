//! Throughput of the compression core, printed, never asserted (timings depend on the machine).
//! Run it optimized, alone:
//!
//! ```sh
//! cargo test --release -p kubemint --lib pack::bench -- --ignored --nocapture
//! ```
//!
//! It spools 365 MB of synthetic binaries (the sizes of a v1.14 sysext's four binaries), writes
//! the sysext with 1 and 2 threads, builds the release's chunk cache, writes the sysext and the
//! tar.gz from it, then deflates 64 MiB in memory: flate2 as the payload does today, and
//! chunked on 1 and 2 threads. Peak RSS (VmHWM) is read after the file-based steps, before the
//! in-memory ones allocate their 64 MiB.

use crate::inputs::sample::{BINARIES, Synthetic};
use crate::pack::deflate::cache::ChunkCache;
use crate::pack::deflate::{Threads, compress_bytes};
use crate::pack::squashfs::{Options, squashfs_file_with};
use crate::tree::{Content, Tree};
use crate::util::epoch::Epoch;
use crate::util::progress::Progress;
use std::io::{BufWriter, Read, Write};
use std::time::Instant;

const MB: f64 = 1e6;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn report(what: &str, bytes: u64, seconds: f64, extra: &str) {
    println!(
        "{what:<58} {:>8.1} MB/s  ({:.2} s){extra}",
        bytes as f64 / MB / seconds,
        seconds
    );
}

#[test]
#[ignore = "a benchmark: run it optimized, alone, with --ignored --nocapture"]
fn speed_core() {
    let dir = tempfile::tempdir().unwrap();
    let epoch = Epoch::new(1_558_000_000).unwrap();
    let mut tree = Tree::new();
    let mut total = 0;
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    ] {
        let size = BINARIES.iter().find(|(n, _)| *n == name).unwrap().1;
        let path = dir.path().join(name);
        let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
        std::io::copy(&mut Synthetic::new(name, size), &mut out).unwrap();
        out.flush().unwrap();
        tree.add_file(
            &format!("/usr/lib/kubernetes/bin/{name}"),
            0o755,
            Content::Spooled(path),
        )
        .unwrap();
        total += size;
    }
    tree.add_file(
        "/usr/lib/extension-release.d/extension-release.kubemint-bench",
        0o644,
        Content::Inline(b"ID=_any\nSYSEXT_LEVEL=1\n".to_vec()),
    )
    .unwrap();
    println!(
        "synthetic sysext: {} bytes of binaries; {} threads available",
        total,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let image = dir.path().join("sysext.raw");
    let mut sizes = Vec::new();
    for threads in [1, 2] {
        let options = Options {
            threads: Threads::new(threads),
            cache: None,
        };
        let t = Instant::now();
        let (size, sha) = squashfs_file_with(&tree, "/", epoch, &image, &options).unwrap();
        report(
            &format!("squashfs writer, {threads} thread(s), no cache"),
            total,
            t.elapsed().as_secs_f64(),
            &format!(
                "  image {size} bytes, {:.1}%",
                100.0 * size as f64 / total as f64
            ),
        );
        sizes.push((size, sha));
    }
    assert_eq!(
        sizes[0], sizes[1],
        "1 and 2 threads must write the same image"
    );
    let cache_dir = dir.path().join("cache");
    std::fs::create_dir(&cache_dir).unwrap();
    let mut cache = ChunkCache::new();
    let t = Instant::now();
    cache
        .add_spooled(&tree, &cache_dir, Threads::new(2))
        .unwrap();
    report(
        "chunk cache of the release, 2 threads (once per release)",
        total,
        t.elapsed().as_secs_f64(),
        "",
    );
    let options = Options {
        threads: Threads::new(2),
        cache: Some(&cache),
    };
    let t = Instant::now();
    let cached = squashfs_file_with(&tree, "/", epoch, &image, &options).unwrap();
    report(
        "squashfs writer from the cache, 2 threads (per master)",
        total,
        t.elapsed().as_secs_f64(),
        "",
    );
    assert_eq!(cached, sizes[0], "the cache must not change the image");
    let bar = Progress::hidden().bar("", None);
    let t = Instant::now();
    let out = BufWriter::new(std::fs::File::create(dir.path().join("p.tar.gz")).unwrap());
    let (_, w) = crate::pack::deflate::tar::write_tar_gz(
        &tree,
        epoch,
        out,
        Some(&cache),
        Threads::new(2),
        &bar,
    )
    .unwrap();
    report(
        "tar.gz from the cache, 2 threads (per master and output)",
        total,
        t.elapsed().as_secs_f64(),
        &format!("  {} bytes", w.size),
    );
    println!(
        "peak RSS after the file-based steps: {:.1} MiB",
        peak_rss_mib()
    );
    if let Ok(version) = std::process::Command::new("mksquashfs")
        .arg("-version")
        .output()
    {
        let src = dir.path().join("src");
        let bin = src.join("usr/lib/kubernetes/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (path, _) in tree.iter() {
            if let Some(name) = path.strip_prefix("/usr/lib/kubernetes/bin/") {
                std::fs::rename(dir.path().join(name), bin.join(name)).unwrap();
            }
        }
        let t = Instant::now();
        let status = std::process::Command::new("mksquashfs")
            .arg(&src)
            .arg(dir.path().join("mk.raw"))
            .args([
                "-comp",
                "gzip",
                "-Xcompression-level",
                "6",
                "-noappend",
                "-quiet",
            ])
            .args(["-no-fragments", "-processors", "2", "-all-root"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        let size = std::fs::metadata(dir.path().join("mk.raw")).map_or(0, |m| m.len());
        report(
            &format!(
                "reference: {}, 2 processors",
                String::from_utf8_lossy(&version.stdout)
                    .lines()
                    .next()
                    .unwrap_or("mksquashfs")
            ),
            total,
            t.elapsed().as_secs_f64(),
            &format!("  image {size} bytes ({status})"),
        );
    }

    // 64 MiB in memory.
    let len = 64 << 20;
    let mut data = Vec::with_capacity(len);
    Synthetic::new("bench", len as u64)
        .read_to_end(&mut data)
        .unwrap();
    let t = Instant::now();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&data).unwrap();
    let classic = gz.finish().unwrap().len();
    report(
        "flate2/zlib-rs level 6, one stream, 1 thread (payload today)",
        len as u64,
        t.elapsed().as_secs_f64(),
        &format!("  {classic} bytes"),
    );
    let mut one = Vec::new();
    for threads in [1, 2] {
        let t = Instant::now();
        let chunks = compress_bytes(&data, Threads::new(threads));
        let compressed: usize = chunks.iter().map(|c| c.deflate.len()).sum();
        report(
            &format!("chunked level 6, {threads} thread(s)"),
            len as u64,
            t.elapsed().as_secs_f64(),
            &format!(
                "  {compressed} bytes (+{:.2}% vs one stream)",
                100.0 * (compressed as f64 / classic as f64 - 1.0)
            ),
        );
        if threads == 1 {
            one = chunks;
        } else {
            assert!(chunks == one, "1 and 2 threads must give the same chunks");
        }
    }
}
