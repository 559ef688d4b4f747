//! The writer judged by squashfs-tools: `unsquashfs -s` reads the superblock without a
//! complaint, `unsquashfs -lls` lists exactly the tree, `unsquashfs -d` extracts every file
//! with its bytes, mode, owner and mtime (the root's included); systemd-dissect takes an
//! extension image. And the same bytes for 1 and 4 threads, with and without a cache.

use super::*;
use crate::inputs::sample::Synthetic;
use crate::tree::{Content, Kind};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

const EPOCH: u32 = 1_558_000_000;

fn epoch() -> Epoch {
    Epoch::new(i128::from(EPOCH)).unwrap()
}

fn synthetic(seed: &str, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    Synthetic::new(seed, len as u64)
        .read_to_end(&mut v)
        .unwrap();
    v
}

fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A sysext-like tree: spooled binaries around block boundaries, inline files (empty, tiny,
/// incompressible, exactly a block), symlinks, modes, a long name, a directory big enough for
/// an index, and the extension-release file.
fn sample(dir: &Path) -> Tree {
    let mut t = Tree::new();
    for (name, len) in [
        ("kube-apiserver", 5 * CHUNK + 333),
        ("kubectl", 2 * CHUNK),
        ("tiny", 90),
        ("empty", 0),
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
    let inline = |t: &mut Tree, path: &str, mode: u32, bytes: Vec<u8>| {
        t.add_file(path, mode, Content::Inline(bytes)).unwrap();
    };
    inline(
        &mut t,
        "/usr/lib/extension-release.d/extension-release.kubemint-test",
        0o644,
        b"ID=_any\nSYSEXT_ID=kubemint-test\nSYSEXT_LEVEL=1\n".to_vec(),
    );
    inline(&mut t, "/usr/lib/kubemint/empty.conf", 0o644, Vec::new());
    inline(&mut t, "/usr/lib/kubemint/noise", 0o600, noise(CHUNK + 10));
    inline(&mut t, "/usr/lib/kubemint/block", 0o640, vec![b'k'; CHUNK]);
    inline(
        &mut t,
        "/usr/lib/kubemint/setuid",
        0o4755,
        b"#!/bin/sh\n".to_vec(),
    );
    inline(
        &mut t,
        &format!("/usr/lib/kubemint/{}", "n".repeat(255)),
        0o644,
        b"long name\n".to_vec(),
    );
    for i in 0..700 {
        inline(
            &mut t,
            &format!("/usr/share/many/entry-with-a-longish-name-{i:05}"),
            0o644,
            format!("{i}\n").into_bytes(),
        );
    }
    t.add_symlink(
        "/usr/local/bin/kube-apiserver",
        "/usr/lib/kubernetes/bin/kube-apiserver",
    )
    .unwrap();
    t.add_symlink("/usr/local/bin/far", &format!("/opt/{}", "y".repeat(300)))
        .unwrap();
    t.add_dir("/usr/lib/kubemint/private", 0o700).unwrap();
    t.add_dir("/opt/k8s", 0o750).unwrap();
    t.add_file("/opt/k8s/x", 0o644, Content::Inline(b"x".to_vec()))
        .unwrap();
    t
}

fn image(tree: &Tree, strip: &str, options: &Options) -> Vec<u8> {
    let mut out = io::Cursor::new(Vec::new());
    let size = write_squashfs_with(tree, strip, epoch(), &mut out, options).unwrap();
    let bytes = out.into_inner();
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(size % 4096, 0);
    bytes
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.env("TZ", "UTC").env("LC_ALL", "C").output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?}:\n{stdout}{stderr}");
    assert!(
        !stderr.to_lowercase().contains("error") && !stdout.to_lowercase().contains("error"),
        "{cmd:?}:\n{stdout}{stderr}"
    );
    stdout
}

fn write_to(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn unsquashfs_reads_the_superblock_and_lists_exactly_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = sample(dir.path());
    let img = write_to(dir.path(), "a.raw", &image(&tree, "/", &Options::default()));
    let s = run(Command::new("unsquashfs").arg("-s").arg(&img));
    for want in [
        "Compression gzip",
        "Block size 131072",
        "Fragments are not stored",
        &format!("Number of inodes {}", tree.len() + 1),
        "Number of ids 1",
        "Filesystem is exportable via NFS", // only the "not" form may appear
    ] {
        if want.starts_with("Filesystem is exportable") {
            assert!(s.contains("Filesystem is not exportable via NFS"), "{s}");
        } else {
            assert!(s.contains(want), "{want:?} in\n{s}");
        }
    }
    assert!(
        s.contains("Creation or last append time Thu May 16 09:46:40 2019"),
        "{s}"
    );
    // Every entry, and nothing else: type, mode, owner, size, mtime, target.
    let lls = run(Command::new("unsquashfs")
        .args(["-lls", "-no-xattrs"])
        .arg(&img));
    let listed: Vec<(String, String)> = lls
        .lines()
        .filter(|l| l.contains(" squashfs-root"))
        .map(|l| {
            let path_at = l.find(" squashfs-root").unwrap() + 1;
            let path = l[path_at..]["squashfs-root".len()..].to_owned();
            let fields: Vec<&str> = l[..path_at].split_whitespace().collect();
            (path, fields.join(" "))
        })
        .collect();
    let mut want = vec![(
        String::new(),
        "drwxr-xr-x root/root 3 2019-05-16 09:46".to_owned(),
    )];
    for (path, e) in tree.iter() {
        let perms = |m: u32, t: char| {
            let mut s = String::from(t);
            for (i, c) in "rwxrwxrwx".chars().enumerate() {
                s.push(if m & (0o400 >> i) != 0 { c } else { '-' });
            }
            if m & 0o4000 != 0 {
                s.replace_range(3..4, "s");
            }
            s
        };
        let (kind, size, path) = match &e.kind {
            Kind::Dir => ('d', None, path.to_owned()),
            Kind::File { size, .. } => ('-', Some(*size), path.to_owned()),
            Kind::Symlink { target } => (
                'l',
                Some(target.len() as u64),
                format!("{path} -> {target}"),
            ),
        };
        let size = size.map_or(String::new(), |s| s.to_string());
        let line = format!("{} root/root {size} 2019-05-16 09:46", perms(e.mode, kind));
        want.push((path, line));
    }
    // Directory sizes are squashfs's own; compare those by type only.
    let strip_dir_size = |v: Vec<(String, String)>| -> Vec<(String, String)> {
        v.into_iter()
            .map(|(p, l)| {
                if l.starts_with('d') {
                    let f: Vec<&str> = l.split(' ').collect();
                    (p, format!("{} {} {} {}", f[0], f[1], f[3], f[4]))
                } else {
                    (p, l)
                }
            })
            .collect()
    };
    assert_eq!(strip_dir_size(listed), strip_dir_size(want));
}

#[test]
fn unsquashfs_extracts_every_byte_mode_owner_and_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let tree = sample(dir.path());
    for strip in ["/", "/usr"] {
        let img = write_to(
            dir.path(),
            "b.raw",
            &image(&tree, strip, &Options::default()),
        );
        let x = dir.path().join(format!("x{}", strip.replace('/', "_")));
        run(Command::new("unsquashfs")
            .args(["-no-xattrs", "-d"])
            .arg(&x)
            .arg(&img));
        let root = std::fs::symlink_metadata(&x).unwrap();
        assert_eq!(
            root.mtime(),
            i64::from(EPOCH),
            "the root's mtime is the epoch"
        );
        assert_eq!(root.mode() & 0o7777, 0o755);
        let mut seen = 0;
        for (path, e) in tree.iter() {
            let rel = match strip {
                "/" => &path[1..],
                s => match path.strip_prefix(s).and_then(|p| p.strip_prefix('/')) {
                    Some(r) => r,
                    None => continue,
                },
            };
            seen += 1;
            let p = x.join(rel);
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (0, 0), "{path}");
            assert_eq!(m.mtime(), i64::from(EPOCH), "{path}");
            match &e.kind {
                Kind::Dir => assert!(m.is_dir() && m.mode() & 0o7777 == e.mode, "{path}"),
                Kind::Symlink { target } => {
                    assert_eq!(std::fs::read_link(&p).unwrap().to_str().unwrap(), target)
                }
                Kind::File { content, .. } => {
                    assert_eq!(m.mode() & 0o7777, e.mode, "{path}");
                    let want = match content {
                        Content::Inline(b) => b.clone(),
                        Content::Spooled(s) => std::fs::read(s).unwrap(),
                    };
                    assert!(std::fs::read(&p).unwrap() == want, "{path}: other bytes");
                }
            }
        }
        assert!(seen > 700);
    }
}

#[test]
fn one_and_four_threads_with_or_without_a_cache_write_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let tree = sample(dir.path());
    let one = image(&tree, "/", &Options::default());
    let four = image(
        &tree,
        "/",
        &Options {
            threads: Threads::new(4),
            cache: None,
        },
    );
    assert!(one == four, "1 and 4 threads differ");
    let cache_dir = dir.path().join("cache");
    std::fs::create_dir(&cache_dir).unwrap();
    let mut cache = ChunkCache::new();
    cache
        .add_spooled(&tree, &cache_dir, Threads::new(2))
        .unwrap();
    assert_eq!(cache.len(), 4);
    for threads in [1, 4] {
        let cached = image(
            &tree,
            "/",
            &Options {
                threads: Threads::new(threads),
                cache: Some(&cache),
            },
        );
        assert!(cached == one, "with the cache, {threads} threads");
    }
    // The binary's blocks are its cached chunks, zlib-framed.
    let c = cache
        .iter()
        .find(|c| c.len() == (5 * CHUNK + 333) as u64)
        .unwrap();
    let mut r = c.reader().unwrap();
    let first = r.next_chunk().unwrap().unwrap().to_zlib();
    assert!(one.windows(first.len()).any(|w| w == first.as_slice()));
    // The same tree written again: the same bytes; another epoch: others.
    assert!(image(&tree, "/", &Options::default()) == one);
    let mut other = io::Cursor::new(Vec::new());
    write_squashfs(&tree, "/", Epoch::new(1).unwrap(), &mut other).unwrap();
    assert!(other.into_inner() != one);
}

#[test]
fn a_stale_cache_is_an_error_not_a_wrong_image() {
    let dir = tempfile::tempdir().unwrap();
    let tree = sample(dir.path());
    let cache_dir = dir.path().join("cache");
    std::fs::create_dir(&cache_dir).unwrap();
    let mut cache = ChunkCache::new();
    cache.add_spooled(&tree, &cache_dir, Threads::ONE).unwrap();
    let spool = dir.path().join("kubectl");
    let mut bytes = std::fs::read(&spool).unwrap();
    bytes[CHUNK + 7] ^= 0x40;
    std::fs::write(&spool, &bytes).unwrap();
    let err = write_squashfs_with(
        &tree,
        "/",
        epoch(),
        io::Cursor::new(Vec::new()),
        &Options {
            threads: Threads::new(2),
            cache: Some(&cache),
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SquashfsError::Deflate(DeflateError::Stale { index: 1, .. })
        ),
        "{err}"
    );
}

#[test]
fn empty_trees_and_lone_roots() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tree::new();
    t.add_dir("/etc", 0o711).unwrap();
    for strip in ["/", "/etc", "/opt"] {
        let img = write_to(dir.path(), "e.raw", &image(&t, strip, &Options::default()));
        run(Command::new("unsquashfs").arg("-s").arg(&img));
        let x = dir.path().join(format!("e{}", strip.replace('/', "_")));
        run(Command::new("unsquashfs").arg("-d").arg(&x).arg(&img));
        let m = std::fs::metadata(&x).unwrap();
        assert_eq!(m.mtime(), i64::from(EPOCH));
        assert_eq!(
            m.mode() & 0o7777,
            if strip == "/etc" { 0o711 } else { 0o755 }
        );
    }
}

#[test]
fn systemd_dissect_takes_it_as_a_system_extension() {
    let dir = tempfile::tempdir().unwrap();
    let tree = sample(dir.path());
    let img = write_to(
        dir.path(),
        "kubemint-test.raw",
        &image(&tree, "/", &Options::default()),
    );
    let out = run(Command::new("systemd-dissect").arg(&img));
    // LC_ALL=C: "+" where a UTF-8 locale shows "✓".
    assert!(out.contains("+ extension for system"), "{out}");
    assert!(out.contains("SYSEXT_ID=kubemint-test"), "{out}");
}

/// The sample with extended attributes: the extension-release file tagged as the build tags
/// it, a directory, a 3000-byte value (ext4 keeps 4 KiB per file), a distinct value on most
/// of 700 files (over a metadata block of lists, two blocks of xattr ids) and lists shared by
/// several.
fn tagged(dir: &Path) -> Tree {
    let mut t = sample(dir);
    let release = "/usr/lib/extension-release.d/extension-release.kubemint-test";
    t.set_xattr(release, "user.extension-release.strict", b"0")
        .unwrap();
    t.set_xattr("/usr/lib/kubemint/private", "user.dir", b"d")
        .unwrap();
    let big = "v".repeat(3000);
    t.set_xattr("/usr/lib/kubemint/noise", "user.big", big.as_bytes())
        .unwrap();
    t.set_xattr("/usr/lib/kubemint/noise", "user.a", b"first")
        .unwrap();
    for i in 0..700 {
        let p = format!("/usr/share/many/entry-with-a-longish-name-{i:05}");
        t.set_xattr(&p, "user.n", format!("{}", i % 600).as_bytes())
            .unwrap();
    }
    t
}

/// Every extended attribute below `root`, by path relative to it, as getfattr reads them.
fn getfattr(root: &Path) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let out = run(Command::new("getfattr")
        .args([
            "-R",
            "-h",
            "-d",
            "-m",
            "-",
            "-e",
            "text",
            "--absolute-names",
        ])
        .arg(root));
    let mut all: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut file = String::new();
    for line in out.lines() {
        if let Some(f) = line.strip_prefix("# file: ") {
            file = f.strip_prefix(root.to_str().unwrap()).unwrap().to_owned();
        } else if let Some((name, value)) = line.split_once('=') {
            let value = value.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
            all.entry(file.clone())
                .or_default()
                .insert(name.to_owned(), value.as_bytes().to_vec());
        }
    }
    all
}

fn flags_and_xattr_table(img: &[u8]) -> (u16, u64) {
    (
        u16::from_le_bytes(img[24..26].try_into().unwrap()),
        u64::from_le_bytes(img[56..64].try_into().unwrap()),
    )
}

#[test]
fn extended_attributes_are_extracted_as_the_tree_has_them_and_the_same_bytes_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let tree = tagged(dir.path());
    let bytes = image(&tree, "/", &Options::default());
    let (flags, table) = flags_and_xattr_table(&bytes);
    assert_eq!(flags & NO_XATTRS, 0);
    assert!(table < bytes.len() as u64);
    let plain = image(&sample(dir.path()), "/", &Options::default());
    assert_eq!(
        flags_and_xattr_table(&plain),
        (NO_FRAGMENTS | NO_XATTRS, NO_TABLE)
    );
    assert!(bytes == image(&tree, "/", &Options::default()));
    let four = Options {
        threads: Threads::new(4),
        cache: None,
    };
    assert!(bytes == image(&tree, "/", &four));

    let img = write_to(dir.path(), "t.raw", &bytes);
    run(Command::new("unsquashfs").arg("-s").arg(&img));
    run(Command::new("unsquashfs").arg("-lls").arg(&img));
    let x = dir.path().join("x");
    run(Command::new("unsquashfs").arg("-d").arg(&x).arg(&img));
    let want: BTreeMap<String, BTreeMap<String, Vec<u8>>> = tree
        .iter()
        .filter(|(_, e)| !e.xattrs.is_empty())
        .map(|(p, e)| (p.to_owned(), e.xattrs.clone()))
        .collect();
    assert_eq!(want.len(), 703);
    assert!(getfattr(&x) == want, "other extended attributes extracted");
    let strict = run(Command::new("getfattr")
        .args(["-n", "user.extension-release.strict", "--only-values"])
        .arg(x.join("usr/lib/extension-release.d/extension-release.kubemint-test")));
    assert_eq!(strict, "0");
    // Below /usr too (the list numbering starts afresh).
    let usr = write_to(
        dir.path(),
        "u.raw",
        &image(&tree, "/usr", &Options::default()),
    );
    let xu = dir.path().join("xu");
    run(Command::new("unsquashfs").arg("-d").arg(&xu).arg(&usr));
    assert_eq!(getfattr(&xu).len(), 703);
}

#[test]
fn systemd_dissect_takes_a_tagged_extension_under_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let untagged = write_to(
        dir.path(),
        "kubemint-test_1.2.3.raw",
        &image(&sample(dir.path()), "/", &Options::default()),
    );
    let out = run(Command::new("systemd-dissect").arg(&untagged));
    assert!(!out.contains("+ extension for system"), "{out}");
    let tagged = write_to(
        dir.path(),
        "kubemint-test_1.2.3-tagged.raw",
        &image(&tagged(dir.path()), "/", &Options::default()),
    );
    let out = run(Command::new("systemd-dissect").arg(&tagged));
    assert!(out.contains("+ extension for system"), "{out}");
}
