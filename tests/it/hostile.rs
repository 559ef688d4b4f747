//! Hostile or broken inputs: every class the extractor rejects, a wrong digest and a missing
//! input. Each gets a clear error naming the file, and nothing is written outside the output.

use crate::support::{Project, text};
use flate2::{Compression, write::GzEncoder};
use std::io::Write;
use tar::{EntryType, Header};

/// One raw tar member: name bytes written as given (no validation), type, optional link target.
struct Member<'a> {
    name: &'a str,
    kind: EntryType,
    link: &'a str,
    data: &'a [u8],
}

fn member<'a>(name: &'a str, kind: EntryType, link: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind,
        link,
        data,
    }
}

const APISERVER: &str = "kubernetes/server/bin/kube-apiserver";

/// The other members the control-plane image takes from a release; every fixture has them.
const OTHERS: [&str; 3] = [
    "kubernetes/server/bin/kube-controller-manager",
    "kubernetes/server/bin/kube-scheduler",
    "kubernetes/server/bin/kubectl",
];

/// A tar.gz of `members`, then the [`OTHERS`].
fn tarball(members: &[Member]) -> Vec<u8> {
    let mut tar = Vec::new();
    let others = OTHERS.map(|name| member(name, EntryType::Regular, "", b"#!/bin/sh\n"));
    for m in members.iter().chain(&others) {
        let mut h = Header::new_gnu();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..m.name.len()].copy_from_slice(m.name.as_bytes());
        gnu.linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
        h.set_entry_type(m.kind);
        h.set_mode(0o755);
        h.set_size(m.data.len() as u64);
        h.set_mtime(0);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(m.data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// `pin` refuses `bytes` as release `evil`, as a build would; put into the store by hand and
/// locked, a build against it refuses it too, for the same reason. Returns the build's error.
fn build_with(bytes: &[u8]) -> (Project, String) {
    let p = Project::new();
    let file = p.path().join("evil.tar.gz");
    std::fs::write(&file, bytes).unwrap();
    let pin_err = p.fails(&["pin", "evil", "--file", file.to_str().unwrap()]);
    assert!(
        pin_err.contains("not pinned: a build would refuse this tarball too"),
        "{pin_err}"
    );
    assert!(!p.path().join("vendor/store/sha512").exists_and_has_files());
    let sha512 = kubemint::hash::sha512_hex(bytes);
    let store = p.path().join("vendor/store/sha512");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join(&sha512), bytes).unwrap();
    let lock = p.path().join("vendor/releases.toml");
    let mut text0 = std::fs::read_to_string(&lock).unwrap();
    text0.push_str(&format!(
        "\n[[release]]\nname = \"evil\"\nfile = \"kubernetes-server-linux-amd64.tar.gz\"\nsha512 = \"{sha512}\"\n"
    ));
    std::fs::write(&lock, text0).unwrap();
    let err = p.fails(&["build-image", "master-1", "--release", "evil"]);
    assert!(
        !p.path().join("target/images/master-1").exists(),
        "an output appeared despite: {err}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(p.path().join("target/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    // The same problem, after the file's name.
    let what = |e: &str, name: &str| {
        e.lines()
            .find_map(|l| l.split_once(&format!("{name}: ")).map(|x| x.1.to_owned()))
    };
    assert_eq!(
        what(&pin_err, "evil.tar.gz"),
        what(&err, &sha512),
        "{pin_err}\n{err}"
    );
    (p, err)
}

trait HasFiles {
    fn exists_and_has_files(&self) -> bool;
}

impl HasFiles for std::path::Path {
    fn exists_and_has_files(&self) -> bool {
        std::fs::read_dir(self).is_ok_and(|mut d| d.next().is_some())
    }
}

fn good() -> Member<'static> {
    member(
        APISERVER,
        EntryType::Regular,
        "",
        b"#!/bin/sh\necho kube-apiserver\n",
    )
}

#[test]
fn each_hostile_member_is_rejected_by_name() {
    let cases: Vec<(Vec<Member>, &str)> = vec![
        (
            vec![
                good(),
                member("/tmp/kubemint-evil-absolute", EntryType::Regular, "", b"x"),
            ],
            "member \"/tmp/kubemint-evil-absolute\" has an absolute path",
        ),
        (
            vec![
                good(),
                member(
                    "kubernetes/../../kubemint-evil",
                    EntryType::Regular,
                    "",
                    b"x",
                ),
            ],
            "member \"kubernetes/../../kubemint-evil\" has a '..' component",
        ),
        (
            vec![
                good(),
                member(
                    "kubernetes/server/bin/up",
                    EntryType::Symlink,
                    "../../../../etc/passwd",
                    b"",
                ),
            ],
            "member \"kubernetes/server/bin/up\" is a link to \"../../../../etc/passwd\", which leaves the archive",
        ),
        (
            vec![
                good(),
                member("kubernetes/abs", EntryType::Symlink, "/etc/shadow", b""),
            ],
            "is a link to \"/etc/shadow\", which leaves the archive",
        ),
        (
            vec![
                good(),
                member("kubernetes/hard", EntryType::Link, "../outside", b""),
            ],
            "member \"kubernetes/hard\" is a link to \"../outside\"",
        ),
        (
            vec![good(), member("kubernetes/null", EntryType::Char, "", b"")],
            "member \"kubernetes/null\" is a character device",
        ),
        (
            vec![good(), member("kubernetes/blk", EntryType::Block, "", b"")],
            "is a block device",
        ),
        (
            vec![good(), member("kubernetes/fifo", EntryType::Fifo, "", b"")],
            "is a fifo",
        ),
        (
            vec![good(), good()],
            "member \"kubernetes/server/bin/kube-apiserver\" appears twice",
        ),
        (
            vec![member(
                APISERVER,
                EntryType::Symlink,
                "kube-apiserver.real",
                b"",
            )],
            "is a symlink, expected a regular file",
        ),
        (
            vec![member(
                "kubernetes/server/bin/kube-proxy",
                EntryType::Regular,
                "",
                b"x",
            )],
            "missing member kubernetes/server/bin/kube-apiserver",
        ),
    ];
    for (members, want) in cases {
        let (p, err) = build_with(&tarball(&members));
        assert!(err.contains(want), "expected {want:?} in:\n{err}");
        assert!(
            err.contains(&p.path().join("vendor/store/sha512").display().to_string()),
            "the error does not name the tarball: {err}"
        );
        assert!(!std::path::Path::new("/tmp/kubemint-evil-absolute").exists());
        assert!(!p.path().parent().unwrap().join("kubemint-evil").exists());
    }
}

#[test]
fn truncated_and_corrupt_gzip_are_rejected() {
    let payload: Vec<u8> = (0..200_000u32)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes())
        .collect();
    let whole = tarball(&[member(APISERVER, EntryType::Regular, "", &payload)]);
    let (_, err) = build_with(&whole[..whole.len() / 2]);
    assert!(err.contains("corrupt or truncated archive"), "{err}");
    let mut corrupt = whole.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0xa5);
    let (_, err) = build_with(&corrupt);
    assert!(err.contains("corrupt or truncated archive"), "{err}");
    // A good archive with a wrong trailer (CRC) is caught too: the stream is read to its end.
    let mut bad_crc = whole;
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    let (_, err) = build_with(&bad_crc);
    assert!(err.contains("corrupt or truncated archive"), "{err}");
}

#[test]
fn wrong_digest_names_expected_and_actual() {
    let p = Project::new();
    let file = p.path().join("good.tar.gz");
    std::fs::write(&file, tarball(&[good()])).unwrap();
    p.ok(&["pin", "mine", "--file", file.to_str().unwrap()]);
    let store = p.path().join("vendor/store/sha512");
    let stored = std::fs::read_dir(&store)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let expected = stored.file_name().unwrap().to_string_lossy().into_owned();
    let other = tarball(&[
        good(),
        member("kubernetes/extra", EntryType::Regular, "", b"y"),
    ]);
    std::fs::write(&stored, &other).unwrap();
    let err = p.fails(&["build-image", "master-1", "--release", "mine"]);
    let actual = kubemint::hash::sha512_hex(&other);
    assert!(
        err.contains(&format!(
            "sha512 mismatch: expected {expected}, actual {actual}"
        )),
        "{err}"
    );
    assert!(!p.path().join("target/images/master-1").exists());
}

#[test]
fn missing_input_says_how_to_get_it() {
    let p = Project::new();
    let err = p.fails(&["build-image", "master-1"]);
    for want in [
        "kubernetes-server-linux-amd64.tar.gz",
        "f7d9687eb49ea71f0d8b1ccfac33ed05cd341d7cfacb0711fce4a722801769deb05f72f19ade10b6dc29409f0c9136653c489653ca1f20b698c1310f8a43600f",
        "cargo xtask fetch v1.14.2",
        "cargo xtask pin v1.14.2 --file",
        "--sample",
    ] {
        assert!(err.contains(want), "{want} not in:\n{err}");
    }
    assert!(text(&p.run(&["build-image", "master-1"]).stdout).is_empty());
}
