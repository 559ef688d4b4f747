//! `verify`: a root, an OCI layout, a sysext, confext or disk image, or a whole output
//! directory, against a manifest.json ([`Expected`]), by the shared [`rules`](super::rules).
//!
//! Inside an image the rules are the installer's plus one: an image holds exactly its
//! manifest's entries (in the part it carries: `/usr` and `/opt` for a sysext, `/etc` for a
//! confext, all of it for the OCI image), so anything else in it is `unexpected`, owned
//! directory or not; and a secret found in an image is a finding whatever its mode.

use super::rules::{self, Kind};
use super::view::{MemView, RootView, View};
use super::{AuditError, Expected, Finding, Manifest, Report, gpt, io_err, oci, squashfs};
use crate::manifest::FileRow;
use std::collections::BTreeSet;
use std::path::Path;

/// Which part of the tree an artefact carries.
fn in_scope(scope: &[&str], path: &str) -> bool {
    scope.is_empty()
        || scope
            .iter()
            .any(|r| path == *r || path.strip_prefix(r).is_some_and(|x| x.starts_with('/')))
}

fn parse_mode(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches('0'), 8).unwrap_or(0)
}

/// The rules for one manifest row (the script's `check_entry`).
pub fn check_row(m: &Manifest, row: &FileRow, view: &dyn View) -> Vec<Finding> {
    let path = row.path.as_str();
    let mut out = Vec::new();
    let actual = view.get(path);
    let want = match row.kind.as_str() {
        "dir" => "a directory",
        "symlink" => "a symlink",
        _ => "a regular file",
    };
    let Some(a) = actual else {
        return vec![Finding::new(
            Kind::Missing,
            path,
            format!("missing, expected {want}"),
        )];
    };
    match row.kind.as_str() {
        "dir" | "file" => {
            let expected_kind = row.kind.as_str();
            if a.kind == "symlink" {
                return vec![
                    Finding::new(Kind::Missing, path, format!("a symlink, expected {want}"))
                        .values(expected_kind, "symlink"),
                ];
            }
            if a.kind != expected_kind {
                return vec![
                    Finding::new(Kind::Type, path, format!("a {}, expected {want}", a.kind))
                        .values(expected_kind, a.kind),
                ];
            }
            if row.kind == "dir" && rules::owned(&m.owns, path).is_none() {
                return out;
            }
        }
        _ => {
            if a.kind != "symlink" {
                return vec![
                    Finding::new(
                        Kind::Type,
                        path,
                        format!("a {}, expected a symlink", a.kind),
                    )
                    .values("symlink", a.kind),
                ];
            }
            let target = row.target.clone().unwrap_or_default();
            let got = a.target.clone().unwrap_or_default();
            if got != target {
                out.push(
                    Finding::new(
                        Kind::Target,
                        path,
                        format!("links to {got}, expected {target}"),
                    )
                    .values(target, got),
                );
            }
            return out;
        }
    }
    let mode = parse_mode(&row.mode);
    if a.mode != mode {
        out.push(
            Finding::new(
                Kind::Mode,
                path,
                format!("mode {:04o}, expected {}", a.mode, row.mode),
            )
            .values(row.mode.clone(), format!("{:04o}", a.mode)),
        );
    }
    if (a.uid, a.gid) != (row.uid, row.gid) {
        out.push(
            Finding::new(
                Kind::Owner,
                path,
                format!(
                    "owner {}:{}, expected {}:{}",
                    a.uid, a.gid, row.uid, row.gid
                ),
            )
            .values(
                format!("{}:{}", row.uid, row.gid),
                format!("{}:{}", a.uid, a.gid),
            ),
        );
    }
    if row.kind == "file" {
        let size = row.size.unwrap_or(0);
        if a.size != size {
            out.push(
                Finding::new(
                    Kind::Changed,
                    path,
                    format!("size {}, expected {size}", a.size),
                )
                .values(size.to_string(), a.size.to_string()),
            );
        }
        let sha = row.sha256.clone().unwrap_or_default();
        match view.sha256(path) {
            Ok(got) if got == sha => {}
            Ok(got) => out.push(
                Finding::new(Kind::Changed, path, format!("sha256 {got}, expected {sha}"))
                    .values(sha, got),
            ),
            Err(why) => out.push(Finding::new(
                Kind::Changed,
                path,
                format!("content unreadable: {why}"),
            )),
        }
    }
    out
}

/// Every rule over `view`: the rows in `scope` (empty: all), the owned directories, the
/// units' drop-ins and overrides, the secrets; with `image`, also anything the manifest lacks
/// anywhere, and any secret at all. Returns the findings and how many rows were checked.
pub fn check_view(
    m: &Manifest,
    view: &dyn View,
    scope: &[&str],
    image: bool,
) -> (Vec<Finding>, usize) {
    let mut out = Vec::new();
    let mut checked = 0;
    let known: BTreeSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    for row in m.files.iter().filter(|r| in_scope(scope, &r.path)) {
        checked += 1;
        out.extend(check_row(m, row, view));
    }
    // Unexpected entries.
    let mut reported = BTreeSet::new();
    for o in m.owns.iter().filter(|o| in_scope(scope, o)) {
        if view.get(o).is_none_or(|a| a.kind != "dir") {
            continue;
        }
        for p in view.below(o) {
            if !known.contains(p.as_str()) && reported.insert(p.clone()) {
                out.push(Finding::new(
                    Kind::Unexpected,
                    &p,
                    format!("not in the image, in a directory it owns ({o})"),
                ));
            }
        }
    }
    let secrets: BTreeSet<&str> = m.secrets.iter().map(|s| s.path.as_str()).collect();
    if image && let Some(all) = view.all() {
        for p in all {
            if p != "/"
                && !known.contains(p.as_str())
                && !secrets.contains(p.as_str())
                && reported.insert(p.clone())
            {
                out.push(Finding::new(
                    Kind::Unexpected,
                    &p,
                    "not in the image's manifest",
                ));
            }
        }
    }
    // Drop-ins and overrides of the units the image ships.
    let shipped = rules::shipped_units(m.files.iter().map(|f| (f.path.as_str(), f.kind == "file")));
    for u in &shipped {
        for d in rules::UNIT_DIRS {
            for p in view.below(&format!("{d}/{u}.d")) {
                out.push(Finding::new(Kind::DropIn, &p, format!("changes {u}")));
            }
            let unit = format!("{d}/{u}");
            if d != rules::UNIT_DIRS[3]
                && let Some(a) = view.get(&unit)
                && a.target.as_deref() != Some("/dev/null")
            {
                out.push(Finding::new(
                    Kind::Override,
                    &unit,
                    format!("replaces the image's {u}"),
                ));
            }
        }
    }
    // Secrets: owner, mode and type; never the content.
    for s in &m.secrets {
        let Some(a) = view.get(&s.path) else {
            continue;
        };
        if image {
            out.push(Finding::new(
                Kind::Secret,
                &s.path,
                "present in an image: secrets are delivered apart, never built in",
            ));
            continue;
        }
        if a.kind != "file" {
            out.push(Finding::new(
                Kind::Secret,
                &s.path,
                format!("a {}, expected a regular file", a.kind),
            ));
            continue;
        }
        if let (Some(uid), Some(gid)) = (
            view.id_of("passwd", &s.owner),
            view.id_of("group", &s.group),
        ) && (a.uid, a.gid) != (uid, gid)
        {
            out.push(
                Finding::new(
                    Kind::Secret,
                    &s.path,
                    format!(
                        "owner {}:{}, expected {uid}:{gid} ({}:{})",
                        a.uid, a.gid, s.owner, s.group
                    ),
                )
                .values(format!("{uid}:{gid}"), format!("{}:{}", a.uid, a.gid)),
            );
        }
        if a.mode != parse_mode(&s.mode) {
            out.push(
                Finding::new(
                    Kind::Secret,
                    &s.path,
                    format!("mode {:04o}, expected {}", a.mode, s.mode),
                )
                .values(s.mode.clone(), format!("{:04o}", a.mode)),
            );
        }
    }
    // A root: an installer switch cut short, the units' enablement (the image's own .wants
    // links) and masking.
    if !image && view.get(INSTALLER_JOURNAL).is_some() {
        out.push(Finding::new(
            Kind::Interrupted,
            INSTALLER_JOURNAL,
            "an install or rollback was cut short: run the installer with --recover".to_owned(),
        ));
    }
    if !image {
        for row in m.files.iter().filter(|r| r.kind == "symlink") {
            let Some(rest) = row.path.strip_prefix(rules::SHIPPED_UNITS_DIR) else {
                continue;
            };
            let Some((target, unit)) = rest.split_once(".wants/") else {
                continue;
            };
            if view.get(&row.path).is_none_or(|a| a.kind != "symlink") {
                out.push(Finding::new(
                    Kind::Disabled,
                    unit,
                    format!("not enabled (no {})", row.path),
                ));
            }
            let _ = target;
            for d in &rules::UNIT_DIRS[..2] {
                let p = format!("{d}/{unit}");
                if view.get(&p).and_then(|a| a.target).as_deref() == Some("/dev/null") {
                    out.push(Finding::new(
                        Kind::Disabled,
                        unit,
                        format!("masked ({p} -> /dev/null)"),
                    ));
                }
            }
        }
    }
    (out, checked)
}

/// The installer's switch journal: there only while a switch between generations is under way.
const INSTALLER_JOURNAL: &str = "/var/lib/kubemint/switch";

fn report(m: &Manifest, target: &str) -> Report {
    Report {
        profile: m.profile.clone(),
        release: m.release.name.clone(),
        target: target.to_owned(),
        ..Report::default()
    }
}

/// An installed root (the installer's `--verify`, from outside).
pub fn root(exp: &Expected, dir: &Path) -> Report {
    let m = &exp.manifest;
    let mut r = report(m, &dir.display().to_string());
    let view = RootView {
        root: dir.to_owned(),
    };
    let (findings, checked) = check_view(m, &view, &[], false);
    r.findings = findings;
    r.checked = checked;
    if view.id_of("passwd", "root").is_none() {
        r.notes.push(format!(
            "{} has no /etc/passwd yet: secrets' owners are not checked (their names have no numbers until it boots)",
            dir.display()
        ));
    }
    let (findings, checked, notes) = system_state(m, &view, dir == Path::new("/"));
    r.findings.extend(findings);
    r.checked += checked;
    r.notes.extend(notes);
    r
}

/// The image's own sysusers.d and tmpfiles.d files as `view` holds them, each only when it is
/// the build's (same size and sha256; one that differs is already a `changed` finding and
/// says nothing about what the build declared).
fn declared(m: &Manifest, view: &dyn View, dir: &str) -> Vec<String> {
    m.files
        .iter()
        .filter(|f| f.kind == "file" && f.path.starts_with(dir))
        .filter(|f| {
            view.get(&f.path)
                .is_some_and(|a| a.kind == "file" && Some(a.size) == f.size)
                && view.sha256(&f.path).ok() == f.sha256
        })
        .filter_map(|f| view.read(&f.path))
        .collect()
}

/// The service user and the tmpfiles.d paths of an installed root, as the installer's
/// `system_state` checks them: the users the image's sysusers.d declares (`user`), then each
/// `d` and `L` line of its tmpfiles.d (`tmpfiles`). In a root that has not booted yet (no such
/// user in its `/etc/passwd`, and not the running system `live`), both come at its first boot:
/// a note, not a finding. Returns (findings, entries checked, notes).
pub fn system_state(
    m: &Manifest,
    view: &dyn View,
    live: bool,
) -> (Vec<Finding>, usize, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut checked = 0;
    let users: Vec<String> = declared(m, view, "/usr/lib/sysusers.d/")
        .iter()
        .flat_map(|t| sysusers_users(t))
        .collect();
    let mut booted = true;
    for u in &users {
        checked += 1;
        if view.id_of("passwd", u).is_none() {
            if live {
                out.push(Finding::new(Kind::User, u, "missing from /etc/passwd"));
            } else {
                notes.push(format!(
                    "no user {u} yet: it and the tmpfiles.d paths are made at its first boot, not checked"
                ));
                booted = false;
            }
        } else if view.id_of("group", u).is_none() {
            out.push(Finding::new(
                Kind::User,
                format!("group {u}"),
                "missing from /etc/group",
            ));
        }
    }
    if !booted {
        return (out, checked, notes);
    }
    let lines: Vec<String> = declared(m, view, "/usr/lib/tmpfiles.d/")
        .iter()
        .flat_map(|t| crate::pack::installer::tmpfiles_lines(t))
        .collect();
    for line in &lines {
        checked += 1;
        let f: Vec<&str> = line.split_whitespace().collect();
        match *f.as_slice() {
            ["d", path, mode, user, group, ..] => {
                let Some(a) = view.get(path).filter(|a| a.kind == "dir") else {
                    out.push(Finding::new(
                        Kind::Tmpfiles,
                        path,
                        "missing or not a directory",
                    ));
                    continue;
                };
                if a.mode != parse_mode(mode) {
                    out.push(
                        Finding::new(
                            Kind::Tmpfiles,
                            path,
                            format!("mode {:04o}, expected {mode}", a.mode),
                        )
                        .values(mode, format!("{:04o}", a.mode)),
                    );
                }
                if let (Some(uid), Some(gid)) =
                    (view.id_of("passwd", user), view.id_of("group", group))
                    && (a.uid, a.gid) != (uid, gid)
                {
                    out.push(
                        Finding::new(
                            Kind::Tmpfiles,
                            path,
                            format!(
                                "owner {}:{}, expected {uid}:{gid} ({user}:{group})",
                                a.uid, a.gid
                            ),
                        )
                        .values(format!("{uid}:{gid}"), format!("{}:{}", a.uid, a.gid)),
                    );
                }
            }
            ["L", path, _, _, _, target] => {
                let got = view.get(path).and_then(|a| a.target);
                if got.as_deref() != Some(target) {
                    out.push(
                        Finding::new(Kind::Tmpfiles, path, format!("not a symlink to {target}"))
                            .values(target, got.unwrap_or_default()),
                    );
                }
            }
            _ => {}
        }
    }
    (out, checked, notes)
}

/// The users a sysusers.d file declares (`u NAME …` lines).
fn sysusers_users(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter_map(
            |l| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["u", name, ..] => Some((*name).to_owned()),
                _ => None,
            },
        )
        .collect()
}

/// The part of the tree a squashfs image carries: a confext `/etc`, a sysext `/usr` and `/opt`.
fn squashfs_scope(view: &MemView) -> &'static [&'static str] {
    if view.entries.contains_key("/etc") {
        &["/etc"]
    } else {
        &["/usr", "/opt"]
    }
}

/// A squashfs image at `offset` of `path` (a sysext or confext file, or a partition).
pub fn squashfs_at(
    m: &Manifest,
    path: &Path,
    offset: u64,
    place: &str,
) -> Result<(Vec<Finding>, usize), AuditError> {
    let img = match squashfs::read(path, offset) {
        Ok(img) => img,
        Err(e @ squashfs::ReadError::Format { .. }) => {
            return Ok((
                vec![Finding::new(
                    Kind::Changed,
                    place,
                    format!("unreadable: {e}"),
                )],
                1,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let view = MemView::from_squashfs(&img);
    let (findings, checked) = check_view(m, &view, squashfs_scope(&view), true);
    Ok((
        findings.into_iter().map(|f| f.within(place)).collect(),
        checked,
    ))
}

/// A sysext, confext, DDI or bootable disk.
pub fn disk(exp: &Expected, path: &Path, shown: &str) -> Result<Report, AuditError> {
    let m = &exp.manifest;
    let mut r = report(m, shown);
    let (findings, checked, notes) = disk_findings(m, path, shown)?;
    r.findings = findings;
    r.checked = checked;
    r.notes = notes;
    Ok(r)
}

/// A partition of the bootable disk as manifest.json's `boot` records it.
#[derive(Debug, Default, serde::Deserialize)]
struct BootPart {
    label: String,
    type_guid: String,
    size: u64,
    sha256: String,
    #[serde(default)]
    files: Vec<BootFile>,
}

#[derive(Debug, serde::Deserialize)]
struct BootFile {
    path: String,
    size: u64,
    sha256: String,
}

/// The bootable disk's partitions the manifest records (none when the build had no base).
fn boot_parts(m: &Manifest) -> Vec<BootPart> {
    m.boot
        .get("partitions")
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_default()
}

fn disk_findings(
    m: &Manifest,
    path: &Path,
    shown: &str,
) -> Result<(Vec<Finding>, usize, Vec<String>), AuditError> {
    let mut notes = Vec::new();
    let Some(table) = gpt::read(path).map_err(io_err(path))? else {
        let (f, c) = squashfs_at(m, path, 0, shown)?;
        return Ok((f, c, notes));
    };
    let mut findings = Vec::new();
    let mut checked = 0;
    // An ESP makes it the bootable disk: its base partitions are checked against the
    // manifest's `boot`, and a root partition is the state systemd-repart made at first boot.
    let bootable = table.partitions.iter().any(|p| p.type_guid == gpt::ESP);
    let boot = boot_parts(m);
    if bootable && boot.is_empty() {
        notes.push(format!(
            "{shown}: the manifest records no bootable disk (built without a base): the base's partitions, boot loader and kernel are not checked"
        ));
    }
    for p in &table.partitions {
        let place = format!("{shown} partition {} ({})", p.index, p.label);
        let recorded = boot
            .iter()
            .find(|b| b.label == p.label && b.type_guid == p.type_guid);
        match p.type_guid.as_str() {
            gpt::ROOT_X86_64 if bootable => notes.push(format!(
                "{place}: the master's state (/etc, /var), made at its first boot: not part of the build, not checked"
            )),
            gpt::ROOT_X86_64 => {
                let (f, c) = squashfs_at(m, path, p.offset(), &place)?;
                findings.extend(f);
                checked += c;
            }
            gpt::USR_X86_64 if p.label == crate::pack::boot::EMPTY => {}
            gpt::USR_X86_64 => match recorded {
                Some(b) => {
                    checked += 1;
                    let sha = range_sha256(path, p.offset(), b.size)?;
                    if sha != b.sha256 {
                        findings.push(
                            Finding::new(
                                Kind::Changed,
                                &p.label,
                                format!(
                                    "the base's /usr: sha256 of its {} bytes {sha}, built {}",
                                    b.size, b.sha256
                                ),
                            )
                            .values(b.sha256.clone(), sha)
                            .within(&place),
                        );
                    }
                }
                None if boot.is_empty() => {}
                None => notes.push(format!(
                    "{place}: a /usr this build did not make (an update's): not checked"
                )),
            },
            gpt::ESP => {
                let files = recorded.map(|b| b.files.as_slice()).unwrap_or_default();
                let (f, c, n) = esp_findings(m, files, path, p.offset(), &place)?;
                findings.extend(f);
                checked += c;
                notes.extend(n);
            }
            other => notes.push(format!("{place}: type {other} not checked")),
        }
    }
    Ok((findings, checked, notes))
}

/// The ESP of a bootable disk: each file the build put there (`files`, from the manifest:
/// the boot loader, the kernel image, loader.conf, the extensions) with its size and sha256;
/// the sysext and confext it carries (`kubemint/extensions/`, `kubemint/confexts/`), each the
/// very bytes of an output the manifest lists, also verified inside. Files the ESP gained
/// since (a random seed, an update's versions) are not the build's and not checked.
fn esp_findings(
    m: &Manifest,
    files: &[BootFile],
    path: &Path,
    offset: u64,
    place: &str,
) -> Result<(Vec<Finding>, usize, Vec<String>), AuditError> {
    let unreadable = |e: std::io::Error| AuditError::Unreadable {
        path: path.to_owned(),
        why: format!("{place}: {e}"),
    };
    let fat = super::fat::Fat::open(path, offset).map_err(unreadable)?;
    let nodes = fat.walk().map_err(unreadable)?;
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut checked = 0;
    for want in files {
        checked += 1;
        let Some(n) = nodes.iter().find(|n| !n.dir && n.path == want.path) else {
            findings.push(Finding::new(Kind::Missing, &want.path, "not in the ESP").within(place));
            continue;
        };
        let Some(at) = fat.contiguous(n).map_err(unreadable)? else {
            notes.push(format!(
                "{place} {}: its clusters are not contiguous: not read",
                n.path
            ));
            continue;
        };
        let sha = if n.size == want.size {
            range_sha256(path, at, n.size)?
        } else {
            String::new()
        };
        if sha != want.sha256 {
            let got = if sha.is_empty() {
                format!("{} bytes", n.size)
            } else {
                format!("sha256 {sha}")
            };
            findings.push(
                Finding::new(
                    Kind::Changed,
                    &n.path,
                    format!("{got}, built {} ({} bytes)", want.sha256, want.size),
                )
                .values(want.sha256.clone(), sha)
                .within(place),
            );
        }
    }
    for (kind, dir) in [
        ("sysext", "kubemint/extensions/"),
        ("confext", "kubemint/confexts/"),
    ] {
        let rows: Vec<&crate::manifest::Output> =
            m.outputs.iter().filter(|o| o.kind == kind).collect();
        let found: Vec<&super::fat::Node> = nodes
            .iter()
            .filter(|n| !n.dir && n.path.starts_with(dir) && n.path.ends_with(".raw"))
            .collect();
        if found.is_empty() {
            findings.push(
                Finding::new(Kind::Missing, dir, format!("no {kind} in the ESP")).within(place),
            );
        }
        for n in found {
            checked += 1;
            let inner = format!("{place} {}", n.path);
            let Some(at) = fat.contiguous(n).map_err(unreadable)? else {
                notes.push(format!(
                    "{inner}: its clusters are not contiguous: not read"
                ));
                continue;
            };
            let sha = range_sha256(path, at, n.size)?;
            let recorded = files.iter().any(|f| f.path == n.path);
            if !recorded && !rows.iter().any(|o| o.sha256 == sha && o.size == n.size) {
                let want = rows.first().map(|o| o.sha256.clone()).unwrap_or_default();
                findings.push(
                    Finding::new(
                        Kind::Changed,
                        &n.path,
                        format!("sha256 {sha}, not the build's {kind} ({want})"),
                    )
                    .values(want, sha)
                    .within(place),
                );
            }
            let (f, c) = squashfs_at(m, path, at, &inner)?;
            findings.extend(f);
            checked += c;
        }
    }
    Ok((findings, checked, notes))
}

/// The sha256 of `len` bytes of `path` from `offset`.
fn range_sha256(path: &Path, offset: u64, len: u64) -> Result<String, AuditError> {
    use sha2::Digest;
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset + done)
            .map_err(io_err(path))?;
        hash.update(&buf[..n]);
        done += n as u64;
    }
    Ok(hex::encode(hash.finalize()))
}

/// An OCI image layout (`tag` picks a manifest of its index), with the SBOMs and provenance
/// attached to the build's image in it.
pub fn oci_layout(
    exp: &Expected,
    dir: &Path,
    tag: Option<&str>,
    shown: &str,
) -> Result<Report, AuditError> {
    let m = &exp.manifest;
    let mut r = report(m, shown);
    let (findings, checked) = oci_findings(m, dir, tag, shown)?;
    r.findings = findings;
    r.checked = checked;
    let subject = m.oci["manifest_digest"].as_str().unwrap_or_default();
    let descriptors = crate::attest::attach::referrers(dir, subject).map_err(io_err(dir))?;
    let (f, c, n) = attached(m, dir, &descriptors, shown)?;
    r.findings.extend(f);
    r.checked += c;
    r.notes.extend(n);
    Ok(r)
}

/// The SBOMs and provenance attached to the image (OCI 1.1 artefacts whose `subject` is the
/// build's image manifest): each document must be the very bytes of the output of its kind
/// that the manifest lists. `descriptors` are the artefact manifests' descriptors (the
/// layout's index.json entries, or a registry's fallback-tag index), their blobs in `layout`.
/// None attached is a note (a plain `skopeo copy` carries the image only); one that differs,
/// or is about another image, is `changed`. Returns (findings, checked, notes).
pub fn attached(
    m: &Manifest,
    layout: &Path,
    descriptors: &[serde_json::Value],
    place: &str,
) -> Result<(Vec<Finding>, usize, Vec<String>), AuditError> {
    use crate::attest::attach::{CYCLONEDX_TYPE, IN_TOTO_TYPE, SPDX_TYPE};
    let (mut out, mut notes, mut checked) = (Vec::new(), Vec::new(), 0);
    if descriptors.is_empty() {
        notes.push(format!(
            "{place}: no SBOM or provenance attached to the image: not checked (cargo xtask push carries them)"
        ));
        return Ok((out, checked, notes));
    }
    let subject = m.oci["manifest_digest"].as_str().unwrap_or_default();
    for d in descriptors {
        let digest = d["digest"].as_str().unwrap_or_default();
        let blob = |digest: &str| {
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| layout.join("blobs").join("sha256").join(hex))
        };
        let Some(am) = blob(digest)
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            out.push(
                Finding::new(
                    Kind::Missing,
                    digest,
                    "an attached artefact's manifest is not there",
                )
                .within(place),
            );
            continue;
        };
        checked += 1;
        let title = am["layers"][0]["annotations"]["org.opencontainers.image.title"]
            .as_str()
            .unwrap_or(digest)
            .to_owned();
        let kind = match am["artifactType"].as_str() {
            Some(SPDX_TYPE) => "sbom-spdx",
            Some(CYCLONEDX_TYPE) => "sbom-cyclonedx",
            Some(IN_TOTO_TYPE) => "provenance",
            other => {
                notes.push(format!(
                    "{place}: {title}: an artefact of type {} kubemint does not attach: not checked",
                    other.unwrap_or("(none)")
                ));
                continue;
            }
        };
        if am["subject"]["digest"] != subject {
            out.push(
                Finding::new(
                    Kind::Changed,
                    &title,
                    format!(
                        "attached to {}, not to the build's image {subject}",
                        am["subject"]["digest"].as_str().unwrap_or("nothing")
                    ),
                )
                .within(place),
            );
            continue;
        }
        let got = am["layers"][0]["digest"].as_str().unwrap_or_default();
        let want = m
            .outputs
            .iter()
            .find(|o| o.kind == kind)
            .map(|o| format!("sha256:{}", o.sha256))
            .unwrap_or_default();
        if got != want {
            out.push(
                Finding::new(
                    Kind::Changed,
                    &title,
                    format!("the attached {kind} is {got}, the build's {want}"),
                )
                .values(want, got.to_owned())
                .within(place),
            );
            continue;
        }
        // The document itself, as the layout holds it (named by its title, not its blob).
        if let Some(mut f) = oci::check_blob(layout, got, &title)? {
            f.path = title;
            out.push(f.within(place));
        }
    }
    Ok((out, checked, notes))
}

fn oci_findings(
    m: &Manifest,
    dir: &Path,
    tag: Option<&str>,
    place: &str,
) -> Result<(Vec<Finding>, usize), AuditError> {
    let read = oci::read_layout(dir, tag)?;
    let mut findings = read.findings.clone();
    let want = |k: &str| m.oci[k].as_str().unwrap_or_default().to_owned();
    if !m.oci.is_null() {
        for (field, got) in [
            ("manifest_digest", &read.manifest_digest),
            ("config_digest", &read.config_digest),
        ] {
            let w = want(field);
            if !got.is_empty() && *got != w {
                findings.push(
                    Finding::new(
                        Kind::Changed,
                        "index.json",
                        format!("{field} {got}, expected {w}"),
                    )
                    .values(w, got.clone()),
                );
            }
        }
    }
    let (f, checked) = check_view(m, &read.view, &[], true);
    findings.extend(f);
    Ok((
        findings.into_iter().map(|f| f.within(place)).collect(),
        checked,
    ))
}

/// How `verify --output` treats signatures.
#[derive(Clone, Copy, Debug)]
pub struct Signatures<'a> {
    /// Check every signature with this key (`--trusted-key`: an armored or binary OpenPGP key,
    /// public or secret); without one, signatures present are a note.
    pub trusted_key: Option<&'a Path>,
    /// A directory (it must exist) for gpgv's keyrings: each check makes one below it and
    /// removes it after.
    pub scratch: &'a Path,
}

/// A build's output directory: every output row's file with its size and sha256, SHA256SUMS,
/// manifest.json itself, each image inside, and its signatures ([`super::signed`]).
///
/// A signed output (`build-image --sign-key`) is compared with an unsigned reference without
/// the key: manifest.json modulo its `signature` rows and its `report` row's digests, the
/// page re-rendered from this manifest.json, SHA256SUMS modulo the lines of the signatures,
/// manifest.json and the page (each line still checked against its file). The signatures'
/// own rows are checked against their files; with a trusted key, each signature is verified.
pub fn output_dir(
    exp: &Expected,
    dir: &Path,
    signatures: Signatures<'_>,
) -> Result<Report, AuditError> {
    use super::signed;
    let m = &exp.manifest;
    let mut r = report(m, &dir.display().to_string());
    let mut findings = Vec::new();
    let mut checked = 0;
    // manifest.json itself: the same bytes, or the same modulo the signatures.
    let here = dir.join("manifest.json");
    checked += 1;
    let mut own: Option<serde_json::Value> = None;
    match std::fs::read(&here) {
        Err(_) => findings.push(Finding::new(Kind::Missing, "manifest.json", "missing")),
        Ok(bytes) => {
            own = serde_json::from_slice(&bytes).ok();
            if bytes != exp.bytes {
                let want: serde_json::Value =
                    serde_json::from_slice(&exp.bytes).unwrap_or_default();
                let drift = match &own {
                    Some(got) => signed::manifest_drift(&want, got),
                    None => vec!["(not JSON)".to_owned()],
                };
                if !drift.is_empty() {
                    let (w, g) = (
                        crate::util::hash::sha256_hex(&exp.bytes),
                        crate::util::hash::sha256_hex(&bytes),
                    );
                    findings.push(
                        Finding::new(
                            Kind::Changed,
                            "manifest.json",
                            format!("sha256 {g}, expected {w} (differs in {})", drift.join(", ")),
                        )
                        .values(w, g),
                    );
                }
            }
        }
    }
    let own_rows = own.as_ref().map(signed::output_rows).unwrap_or_default();
    // Every output row.
    let mut present = BTreeSet::new();
    let mut absent = BTreeSet::new();
    for o in &m.outputs {
        checked += 1;
        let path = dir.join(&o.path);
        present.insert(o.path.clone());
        if !path.exists() {
            absent.insert(o.path.clone());
            findings.push(Finding::new(
                Kind::Missing,
                &o.path,
                format!("the {} is missing", o.kind),
            ));
            continue;
        }
        // A signature's bytes depend on the key: checked against this output's own row below.
        if o.kind == "signature" {
            continue;
        }
        let (size, sha) = if o.kind == "oci-layout" {
            crate::pack::oci::layout_identity(&path).map_err(io_err(&path))?
        } else {
            let (sha, size) = crate::util::hash::sha256_file(&path).map_err(io_err(&path))?;
            (size, sha)
        };
        // The page shows every output row, signatures too: a signed output's page is the one
        // its own manifest.json renders (which is the reference's, modulo the signatures).
        if (size, &sha) != (o.size, &o.sha256)
            && !(o.kind == "report"
                && own
                    .as_ref()
                    .is_some_and(|v| signed::page_of(v).is_some_and(|p| p.sha256 == sha)))
        {
            findings.push(
                Finding::new(
                    Kind::Changed,
                    &o.path,
                    format!(
                        "{}: size {size} sha256 {sha}, expected size {} sha256 {}",
                        o.kind, o.size, o.sha256
                    ),
                )
                .values(o.sha256.clone(), sha),
            );
        }
        // Inside each image.
        match o.kind.as_str() {
            "oci-layout" => {
                let (f, c) = oci_findings(m, &path, None, &o.path)?;
                findings.extend(f);
                checked += c;
            }
            "sysext" | "confext" | "disk" | "bootable" => {
                let (f, c, notes) = disk_findings(m, &path, &o.path)?;
                findings.extend(f);
                checked += c;
                r.notes.extend(notes);
            }
            _ => {}
        }
    }
    // This output's own signature and page rows: their files are what its manifest.json says.
    for o in own_rows
        .iter()
        .filter(|o| matches!(o.kind.as_str(), "signature" | "report"))
    {
        checked += 1;
        let path = dir.join(&o.path);
        present.insert(o.path.clone());
        if !path.exists() {
            if absent.insert(o.path.clone()) {
                findings.push(Finding::new(
                    Kind::Missing,
                    &o.path,
                    format!("the {} is missing (manifest.json lists it)", o.kind),
                ));
            }
            continue;
        }
        let (sha, size) = crate::util::hash::sha256_file(&path).map_err(io_err(&path))?;
        if (size, &sha) != (o.size, &o.sha256) {
            findings.push(
                Finding::new(
                    Kind::Changed,
                    &o.path,
                    format!(
                        "{}: size {size} sha256 {sha}, but manifest.json lists size {} sha256 {}",
                        o.kind, o.size, o.sha256
                    ),
                )
                .values(o.sha256.clone(), sha),
            );
        }
    }
    // SHA256SUMS: every line holds, and (given a reference build) it is the same file, modulo
    // the signatures.
    let sums = dir.join("SHA256SUMS");
    checked += 1;
    match std::fs::read_to_string(&sums) {
        Err(_) => findings.push(Finding::new(Kind::Missing, "SHA256SUMS", "missing")),
        Ok(text) => {
            for (i, line) in text.lines().enumerate() {
                let Some((sha, rel)) = line.split_once("  ") else {
                    findings.push(Finding::new(
                        Kind::Changed,
                        "SHA256SUMS",
                        format!("line {}: not `SHA256  PATH`", i + 1),
                    ));
                    continue;
                };
                let p = dir.join(rel);
                match crate::util::hash::sha256_file(&p) {
                    Ok((got, _)) if got == sha => {}
                    Ok((got, _)) => findings.push(
                        Finding::new(
                            Kind::Changed,
                            rel,
                            format!("SHA256SUMS line {} says {sha}, the file is {got}", i + 1),
                        )
                        .values(sha, got),
                    ),
                    Err(_) => findings.push(Finding::new(
                        Kind::Missing,
                        rel,
                        format!("named by SHA256SUMS line {}, not there", i + 1),
                    )),
                }
            }
            if let Some(reference) = &exp.dir
                && let Ok(want) = std::fs::read_to_string(reference.join("SHA256SUMS"))
                && want != text
            {
                let signatures: BTreeSet<String> = m
                    .outputs
                    .iter()
                    .chain(&own_rows)
                    .filter(|o| o.kind == "signature")
                    .map(|o| o.path.clone())
                    .collect();
                let drift = signed::sums_drift(&want, &text, &signatures);
                if !drift.is_empty() {
                    findings.push(Finding::new(
                        Kind::Changed,
                        "SHA256SUMS",
                        format!("differs from the reference build's: {}", drift.join("; ")),
                    ));
                }
            }
        }
    }
    // Signatures: verified with the trusted key, else a note.
    let is_signed = signed::is_signed(dir, &own_rows);
    let (f, c, notes) = signed::check(dir, &own_rows, signatures.trusted_key, signatures.scratch)?;
    findings.extend(f);
    checked += c;
    r.notes.extend(notes);
    // Anything else in the directory.
    let mut known: BTreeSet<String> = ["manifest.json", "SHA256SUMS", "build-key.json"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if is_signed {
        known.insert(signed::SUMS_SIGNATURE.to_owned());
    }
    known.extend(present.iter().cloned());
    // What SHA256SUMS lists (the reference build's when there is one, else this one's): the
    // files beside the images (an update server's SHA256SUMS) are outputs too.
    let listed = exp
        .dir
        .as_ref()
        .map(|d| d.join("SHA256SUMS"))
        .unwrap_or_else(|| sums.clone());
    if let Ok(text) = std::fs::read_to_string(&listed) {
        known.extend(
            text.lines()
                .filter_map(|l| l.split_once("  ").map(|(_, p)| p.to_owned())),
        );
    }
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let inside = known.iter().any(|k| {
            rel == *k
                || rel
                    .strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with('/'))
                || k.strip_prefix(rel.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        });
        if !inside {
            findings.push(Finding::new(
                Kind::Unexpected,
                &rel,
                "not an output of the build",
            ));
        }
    }
    r.findings = findings;
    r.checked = checked;
    Ok(r)
}
