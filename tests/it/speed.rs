//! Speed without changing a byte: a release's binaries are compressed once and shared, any
//! number of threads writes the same outputs, a master's outputs do not depend on the masters
//! built with it, and a build with nothing changed writes nothing. No test here is timed.

use crate::support::{Project, manifest, manifest_files, sh_ok, text};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Every file below `dir`: relative path → bytes (empty for directories).
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.file_type().is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, bytes)
        })
        .collect()
}

fn assert_same(a: &Path, b: &Path, what: &str) {
    let (x, y) = (contents(a), contents(b));
    assert_eq!(
        x.keys().collect::<Vec<_>>(),
        y.keys().collect::<Vec<_>>(),
        "{what}: different files"
    );
    for (name, bytes) in &x {
        assert!(bytes == &y[name], "{what}: {name} differs");
    }
}

fn build(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["build-image", "--sample"];
    all.extend_from_slice(args);
    text(&p.ok(&all).stdout)
}

#[test]
fn one_thread_and_four_write_the_same_bytes() {
    let p = Project::new();
    let out = |name: &str| p.path().join(name).display().to_string();
    build(&p, &["--all", "--threads", "1", "--out", &out("one")]);
    build(&p, &["--all", "--threads", "4", "--out", &out("four")]);
    for m in ["master-1", "master-2", "master-3"] {
        assert_same(
            &p.path().join("one/sample").join(m),
            &p.path().join("four/sample").join(m),
            &format!("{m}, 1 vs 4 threads"),
        );
    }
}

#[test]
fn a_master_built_alone_is_the_master_built_with_the_others() {
    let p = Project::new();
    let out = |name: &str| p.path().join(name).display().to_string();
    build(&p, &["master-1", "--out", &out("alone")]);
    build(
        &p,
        &[
            "master-1",
            "master-2",
            "master-3",
            "--out",
            &out("together"),
        ],
    );
    assert_same(
        &p.path().join("alone/sample/master-1"),
        &p.path().join("together/sample/master-1"),
        "master-1 alone vs with master-2 and master-3",
    );
}

/// The payload, as GNU tar extracts it and as Python's tarfile lists it, is the manifest's
/// `files`.
#[test]
fn the_payload_reads_back_as_the_manifest_with_gnu_tar_and_python() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let want = manifest_files(&manifest(&dir));
    let payload = dir.join("master-1.tar.gz");

    let x = tempfile::tempdir().unwrap();
    sh_ok(&format!(
        "tar -xpzf '{}' -C '{}'",
        payload.display(),
        x.path().display()
    ));
    let extracted = crate::support::as_manifest_files(&crate::support::snapshot(x.path()));
    assert_eq!(extracted, want, "GNU tar");

    let script = r#"
import hashlib, json, sys, tarfile
rows = {}
with tarfile.open(sys.argv[1], "r:gz") as t:
    for m in t:
        path = "/" + m.name.rstrip("/")
        if m.isdir():
            rows[path] = ["dir", "%04o" % m.mode, None, None]
        elif m.issym():
            rows[path] = ["symlink", "-", None, m.linkname]
        else:
            data = t.extractfile(m).read()
            rows[path] = ["file", "%04o" % m.mode, m.size, hashlib.sha256(data).hexdigest()]
print(json.dumps(rows))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&payload)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: BTreeMap<String, (String, String, Option<u64>, Option<String>)> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, want, "Python tarfile");
}

/// What a rebuild could touch: every entry of the output root (the root too) with its inode,
/// change time and modification time in nanoseconds.
fn stamps(root: &Path) -> BTreeMap<String, (u64, i64, i64, i64, i64)> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            (
                rel,
                (
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                ),
            )
        })
        .collect()
}

/// The profiles a build's summary says it built, and those it says are up to date.
fn statuses(stdout: &str) -> (Vec<String>, Vec<String>) {
    let (mut built, mut current) = (Vec::new(), Vec::new());
    for line in stdout.lines().filter(|l| l.contains(" -> ")) {
        let profile = line.split_whitespace().next().unwrap().to_owned();
        if line.ends_with(": up to date") {
            current.push(profile);
        } else {
            built.push(profile);
        }
    }
    (built, current)
}

fn inode(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("manifest.json")).unwrap().ino()
}

#[test]
fn a_rebuild_with_nothing_changed_writes_nothing_and_says_so() {
    let p = Project::new();
    let all = ["master-1", "master-2", "master-3"];
    let (built, _) = statuses(&build(&p, &["--all"]));
    assert_eq!(built, all);
    let root = p.path().join("target/images/sample");
    let before = stamps(&root);

    let out = build(&p, &["--all"]);
    let (built, current) = statuses(&out);
    assert!(built.is_empty(), "rebuilt {built:?}:\n{out}");
    assert_eq!(current, all);
    assert_eq!(stamps(&root), before, "a no-change rebuild wrote something");

    // --json says so per profile, its other fields unchanged.
    let json = text(&p.ok(&["build-image", "--sample", "--all", "--json"]).stdout);
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    for (b, m) in summary.as_array().unwrap().iter().zip(all) {
        assert_eq!(b["profile"], m);
        assert_eq!(b["status"], "up-to-date");
        assert_eq!(b["manifest"]["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(b["outputs"][0]["kind"], "payload");
    }
    assert_eq!(stamps(&root), before, "a --json rebuild wrote something");

    // --force rebuilds, to the same bytes.
    let kept = contents(&root.join("master-1"));
    let (built, current) = statuses(&build(&p, &["--all", "--force"]));
    assert_eq!(built, all);
    assert!(current.is_empty());
    assert_ne!(
        inode(&root.join("master-1")),
        before["master-1/manifest.json"].0
    );
    assert!(
        contents(&root.join("master-1")) == kept,
        "--force changed bytes"
    );
}

#[test]
fn a_changed_input_rebuilds_exactly_the_profiles_it_affects() {
    let p = Project::new();
    let root = p.path().join("target/images/sample");
    build(&p, &["--all"]);
    let ino = |m: &str| inode(&root.join(m));
    let first: Vec<u64> = ["master-1", "master-2", "master-3"].map(ino).to_vec();

    // A value of master-3's profile: only master-3.
    let path = p.path().join("profiles/master-3.toml");
    let profile = std::fs::read_to_string(&path).unwrap();
    let edited = profile.replace("address = \"10.10.10.24\"", "address = \"10.10.10.34\"");
    assert_ne!(edited, profile);
    std::fs::write(&path, edited).unwrap();
    let (built, current) = statuses(&build(&p, &["--all"]));
    assert_eq!(built, ["master-3"]);
    assert_eq!(current, ["master-1", "master-2"]);
    assert_eq!(ino("master-1"), first[0]);
    assert_ne!(ino("master-3"), first[2]);

    // A damaged output is rebuilt, even with the same key.
    let payload = root.join("master-2/master-2.tar.gz");
    let mut bytes = std::fs::read(&payload).unwrap();
    bytes.push(0);
    std::fs::write(&payload, bytes).unwrap();
    let (built, _) = statuses(&build(&p, &["--all"]));
    assert_eq!(built, ["master-2"]);
    sh_ok(&format!(
        "cd '{}' && sha256sum -c --quiet SHA256SUMS",
        root.join("master-2").display()
    ));

    // The epoch: every profile.
    let (built, current) = statuses(&build(&p, &["--all", "--epoch", "1600000000"]));
    assert_eq!(built, ["master-1", "master-2", "master-3"]);
    assert!(current.is_empty());
    assert_eq!(manifest(&root.join("master-1"))["epoch"], 1_600_000_000);

    // The layers' compression: every profile; the thread count: none.
    let (built, _) = statuses(&build(
        &p,
        &[
            "--all",
            "--epoch",
            "1600000000",
            "--layer-compression",
            "none",
        ],
    ));
    assert_eq!(built.len(), 3);
    let (built, _) = statuses(&build(
        &p,
        &[
            "--all",
            "--epoch",
            "1600000000",
            "--layer-compression",
            "none",
            "--threads",
            "1",
        ],
    ));
    assert!(built.is_empty(), "the thread count rebuilt {built:?}");

    // A template every profile renders: every profile.
    let template = p
        .path()
        .join("images/control-plane/templates/component.service.j2");
    let t = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&template, format!("{t}\n")).unwrap();
    let (built, _) = statuses(&build(
        &p,
        &[
            "--all",
            "--epoch",
            "1600000000",
            "--layer-compression",
            "none",
        ],
    ));
    assert_eq!(built.len(), 3);
}

/// Every file of the kept compressed binaries in `store` (`derived/chunks-*/`): path → (inode,
/// mtime in ns, bytes).
fn kept(store: &Path) -> BTreeMap<String, (u64, i64, Vec<u8>)> {
    let derived = store.join("derived");
    let mut files = BTreeMap::new();
    for dir in std::fs::read_dir(&derived).unwrap() {
        let dir = dir.unwrap();
        if !dir.file_name().to_string_lossy().starts_with("chunks-") {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap();
            let m = f.metadata().unwrap();
            let rel = f
                .path()
                .strip_prefix(&derived)
                .unwrap()
                .display()
                .to_string();
            let stamp = m.mtime() * 1_000_000_000 + m.mtime_nsec();
            files.insert(rel, (m.ino(), stamp, std::fs::read(f.path()).unwrap()));
        }
    }
    files
}

#[test]
fn the_compressed_binaries_are_kept_and_reused_across_output_roots() {
    let p = Project::new();
    let store = p.path().join("store");
    let (s, out) = (store.display().to_string(), |n: &str| {
        p.path().join(n).display().to_string()
    });
    // No cache yet: compressed, and kept.
    build(&p, &["master-1", "--store", &s, "--out", &out("a")]);
    let first = kept(&store);
    assert!(
        first.keys().any(|k| k.ends_with(".deflate"))
            && first.keys().any(|k| k.ends_with(".chunks")),
        "nothing kept: {:?}",
        first.keys()
    );
    // Another output root, the same release: every kept file taken as it is (same inode,
    // mtime and bytes: not written again), and the same outputs as without the cache.
    build(
        &p,
        &["master-1", "master-2", "--store", &s, "--out", &out("b")],
    );
    assert_eq!(kept(&store), first, "the kept files were rewritten");
    assert_same(
        &p.path().join("a/sample/master-1"),
        &p.path().join("b/sample/master-1"),
        "master-1 without and with the kept compression",
    );
}

#[test]
fn a_damaged_kept_compression_is_detected_and_replaced_never_used() {
    let p = Project::new();
    let store = p.path().join("store");
    let (s, out) = (store.display().to_string(), |n: &str| {
        p.path().join(n).display().to_string()
    });
    build(&p, &["master-1", "--store", &s, "--out", &out("a")]);
    let first = kept(&store);
    let derived = store.join("derived");
    let deflates: Vec<&String> = first.keys().filter(|k| k.ends_with(".deflate")).collect();
    let indexes: Vec<&String> = first.keys().filter(|k| k.ends_with(".chunks")).collect();
    // One bit of a deflate file (same length: only its digest tells), one index's recorded
    // chunk, one deflate file gone.
    let mut bytes = first[deflates[0]].2.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(derived.join(deflates[0]), &bytes).unwrap();
    let index = String::from_utf8(first[indexes[0]].2.clone()).unwrap();
    let damaged = index.replacen("\"chunks\":[[", "\"chunks\":[[1,2,3,4],[", 1);
    assert_ne!(damaged, index);
    std::fs::write(derived.join(indexes[0]), damaged).unwrap();
    if let Some(gone) = deflates.get(1) {
        std::fs::remove_file(derived.join(gone)).unwrap();
    }

    let again = p
        .xtask(&[
            "build-image",
            "--sample",
            "master-1",
            "--store",
            &s,
            "--out",
            &out("b"),
        ])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("not intact"),
        "the damage went unreported:\n{}",
        text(&again.stderr)
    );
    // The same outputs as the build that made the cache, and every damaged entry rewritten
    // to what it was.
    assert_same(
        &p.path().join("a/sample/master-1"),
        &p.path().join("b/sample/master-1"),
        "master-1 from a damaged cache",
    );
    let now = kept(&store);
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    for (name, (_, _, bytes)) in &first {
        assert!(&now[name].2 == bytes, "{name} was not rewritten as it was");
    }
}
