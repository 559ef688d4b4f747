//! The disk images, judged by unsquashfs, sfdisk, sgdisk and systemd-dissect: the sysext holds
//! exactly the /usr and /opt part of manifest.json, the confext the /etc part, the GPT image is
//! valid with content-derived GUIDs, and systemd takes both sysext forms.

use crate::support::{
    Project, as_manifest_files, manifest, manifest_files, require_tool, sh_ok as ok, snapshot,
};
use std::collections::BTreeMap;
use std::path::Path;

/// Path → (type, mode, owner/group, size of a file, link target).
type Listing = BTreeMap<String, (char, String, String, Option<u64>, Option<String>)>;

/// (type, mode, owner, size for files, link target) by path, from `unsquashfs -lls`.
fn listing(image: &Path) -> Listing {
    let out = ok(&format!("unsquashfs -lls '{}'", image.display()));
    out.lines()
        .filter(|l| l.contains(" squashfs-root/"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let kind = f[0].chars().next().unwrap();
            let perms = &f[0][1..];
            let mode = perms
                .as_bytes()
                .chunks(3)
                .map(|c| {
                    c.iter()
                        .zip([4, 2, 1])
                        .filter(|(b, _)| **b != b'-')
                        .map(|(_, v)| v)
                        .sum::<u32>()
                })
                .fold(0, |m, d| m * 8 + d);
            let path = f[5].trim_start_matches("squashfs-root").to_owned();
            let target = (kind == 'l').then(|| f[7].to_owned());
            let size = (kind == '-').then(|| f[2].parse().unwrap());
            (
                path,
                (kind, format!("{mode:04o}"), f[1].to_owned(), size, target),
            )
        })
        .collect()
}

fn part_of(m: &serde_json::Value, roots: &[&str]) -> Listing {
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            roots
                .iter()
                .any(|r| f["path"].as_str().unwrap().starts_with(r))
        })
        .map(|f| {
            let kind = match f["type"].as_str().unwrap() {
                "dir" => 'd',
                "file" => '-',
                _ => 'l',
            };
            let mode = if kind == 'l' {
                "0777".to_owned()
            } else {
                f["mode"].as_str().unwrap().to_owned()
            };
            let owner = format!(
                "{}/{}",
                if f["uid"] == 0 { "root" } else { "?" },
                if f["gid"] == 0 { "root" } else { "?" }
            );
            (
                f["path"].as_str().unwrap().to_owned(),
                (
                    kind,
                    mode,
                    owner,
                    f["size"].as_u64(),
                    f["target"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}

#[test]
fn sysext_and_confext_hold_exactly_their_part_of_the_manifest() {
    require_tool("unsquashfs");
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = manifest(&dir);
    let sysext = dir.join(crate::support::output_rel(&dir, "sysext"));
    let confext = dir.join(crate::support::output_rel(&dir, "confext"));
    assert_eq!(listing(&sysext), part_of(&m, &["/usr", "/opt"]));
    assert_eq!(listing(&confext), part_of(&m, &["/etc"]));
    // Extracted, every file hashes as manifest.json says.
    let all = manifest_files(&m);
    for (image, roots) in [(&sysext, ["/usr", "/opt"]), (&confext, ["/etc", "/etc"])] {
        let out = tempfile::tempdir().unwrap();
        let x = out.path().join("x");
        ok(&format!(
            "unsquashfs -no-xattrs -d '{}' '{}'",
            x.display(),
            image.display()
        ));
        let want: BTreeMap<_, _> = all
            .iter()
            .filter(|(p, _)| roots.iter().any(|r| p.starts_with(r)))
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect();
        assert_eq!(
            as_manifest_files(&snapshot(&x)),
            want,
            "{}",
            image.display()
        );
    }
    // Each carries the extension-release file its name requires.
    let names: Vec<String> = listing(&sysext)
        .into_keys()
        .chain(listing(&confext).into_keys())
        .collect();
    assert!(
        names.contains(
            &"/usr/lib/extension-release.d/extension-release.kubemint-master-1".to_owned()
        )
    );
    assert!(
        names.contains(&"/etc/extension-release.d/extension-release.kubemint-master-1".to_owned())
    );
    let release = ok(&format!(
        "unsquashfs -cat '{}' etc/extension-release.d/extension-release.kubemint-master-1",
        confext.display()
    ));
    assert!(
        release.contains("ID=_any\n") && release.contains("CONFEXT_ID=kubemint-master-1\n"),
        "{release}"
    );
}

#[test]
fn systemd_dissect_takes_both_sysext_forms() {
    require_tool("systemd-dissect");
    let p = Project::new();
    let dir = p.build_sample("master-2");
    // The sysext is versioned (kubemint-master-2_<version>.raw); a host merges it under the
    // name of its extension-release file, through the link systemd-sysupdate (or kubemint's
    // rollout) keeps in /var/lib/extensions.
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("kubemint-master-2.raw");
    std::os::unix::fs::symlink(dir.join(crate::support::output_rel(&dir, "sysext")), &link)
        .unwrap();
    for image in [link, dir.join("disk/kubemint-master-2.raw")] {
        let out = ok(&format!("systemd-dissect '{}'", image.display()));
        let image = image.display();
        assert!(out.contains("✓ extension for system"), "{image}:\n{out}");
        assert!(
            out.contains("SYSEXT_ID=kubemint-master-2"),
            "{image}:\n{out}"
        );
    }
    let disk = ok(&format!(
        "systemd-dissect '{}'",
        dir.join("disk/kubemint-master-2.raw").display()
    ));
    assert!(
        disk.contains("root-x86-64") && disk.contains(" root "),
        "{disk}"
    );
}

#[test]
fn the_disk_partition_is_the_sysext_byte_for_byte_and_dd_reproduces_its_digest() {
    let p = Project::new();
    let dir = p.build_sample("master-1");
    let m = manifest(&dir);
    let part = &m["disk"]["partitions"][0];
    let sysext = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "sysext")
        .unwrap();
    assert_eq!(part["sha256"], sysext["sha256"]);
    assert_eq!(part["size"], sysext["size"]);
    assert_eq!(part["offset"], 1 << 20);
    let disk = std::fs::read(dir.join("disk/kubemint-master-1.raw")).unwrap();
    let bytes = std::fs::read(dir.join(crate::support::output_rel(&dir, "sysext"))).unwrap();
    assert_eq!(&disk[1 << 20..(1 << 20) + bytes.len()], bytes.as_slice());
    // The recorded command, run in the output directory, prints the recorded digest.
    let cmd = part["reproduce"].as_str().unwrap();
    assert!(
        cmd.starts_with("dd if=disk/kubemint-master-1.raw "),
        "{cmd}"
    );
    let out = ok(&format!("cd '{}' && {cmd}", dir.display()));
    assert_eq!(
        out.split_whitespace().next().unwrap(),
        part["sha256"].as_str().unwrap()
    );
}

#[test]
fn gpt_image_is_valid_with_content_derived_guids() {
    require_tool("sfdisk");
    require_tool("sgdisk");
    let (a, b) = (Project::new(), Project::new());
    a.ok(&["build-image", "master-1", "master-2", "--sample"]);
    b.ok(&["build-image", "master-1", "--sample"]);
    let dump = |p: &Project, profile: &str| {
        let image = p.path().join(format!(
            "target/images/sample/{profile}/disk/kubemint-{profile}.raw"
        ));
        let out = ok(&format!("sgdisk -v '{}'", image.display()));
        assert!(out.contains("No problems found"), "{out}");
        ok(&format!("sfdisk --dump '{}'", image.display()))
            .replace(&image.display().to_string(), "IMAGE")
    };
    let m1 = dump(&a, "master-1");
    assert!(
        m1.contains("type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"),
        "{m1}"
    );
    assert!(
        m1.contains("sector-size: 512") && m1.contains("start=        2048"),
        "{m1}"
    );
    assert_eq!(dump(&b, "master-1"), m1, "two builds gave different GUIDs");
    let m2 = dump(&a, "master-2");
    let guids = |d: &str| {
        d.lines()
            .filter(|l| l.starts_with("label-id") || l.contains("uuid="))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(guids(&m1).len(), 2);
    assert!(
        guids(&m1).iter().zip(guids(&m2)).all(|(x, y)| *x != y),
        "master-1 and master-2 share a GUID"
    );
    let m = manifest(&a.path().join("target/images/sample/master-1"));
    assert!(
        m1.to_lowercase()
            .contains(m["disk"]["disk_guid"].as_str().unwrap()),
        "{m1}"
    );
    assert!(
        m1.to_lowercase()
            .contains(m["disk"]["partitions"][0]["uuid"].as_str().unwrap()),
        "{m1}"
    );
}

#[test]
fn unsquashfs_reads_the_superblock_of_every_image_without_an_error() {
    require_tool("unsquashfs");
    let p = Project::new();
    p.ok(&["build-image", "--all", "--sample"]);
    p.ok(&[
        "build-image",
        "--all",
        "--sample",
        "--profiles",
        "profiles/upgrade",
    ]);
    let out = p.path().join("target/images/sample");
    let mut seen = 0;
    for entry in walkdir::WalkDir::new(&out).sort_by_file_name() {
        let entry = entry.unwrap();
        let path = entry.path();
        let kind = path.parent().unwrap().file_name().unwrap();
        if !(kind == "extensions" || kind == "confexts")
            || path.extension().is_none_or(|e| e != "raw")
        {
            continue;
        }
        let out = crate::support::sh(&format!("unsquashfs -s '{}'", path.display()));
        let (stdout, stderr) = (
            crate::support::text(&out.stdout),
            crate::support::text(&out.stderr),
        );
        assert!(out.status.success(), "{}: {stderr}", path.display());
        assert!(
            !stdout.to_lowercase().contains("error") && !stderr.to_lowercase().contains("error"),
            "{}:\n{stdout}{stderr}",
            path.display()
        );
        assert!(stdout.contains("Compression gzip"), "{stdout}");
        seen += 1;
    }
    assert_eq!(seen, 12, "3 masters x 2 sets x (sysext, confext)");
}
