//! `rebuild-check`'s comparison: two output directories of the same profile, built under
//! different conditions, compared file by file; where two files differ, the difference is
//! named inside the file's format, down to the field:
//!
//! - gzip: its header fields, then the stream it holds; tar: member by member (name, type,
//!   mode, uid, gid, size, mtime, link, user and group names, content);
//! - the installer: its header line by line, then its payload as a gzip;
//! - squashfs: superblock fields, then inode by path (number, type, mode, owner, mtime, size,
//!   content, target, data blocks);
//! - GPT disks: header fields, partition fields, then each partition's file system;
//! - JSON: by JSON path (`manifests[0].digest`); an OCI layout from `index.json` down,
//!   blob by blob (the image manifest, the config, each layer's tar);
//! - anything else: the first byte that differs.
//!
//! The build itself (two child processes under different conditions) is the command line's:
//! this library never reads the environment.

use super::{AuditError, gpt, io_err, squashfs};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// At most this many differences are named per output file; the rest are counted.
pub const PER_OUTPUT: usize = 12;

/// One difference between the two builds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The output file, relative to the output directory.
    pub output: String,
    /// The entry inside it: a tar member, an OCI blob and JSON path, a squashfs path and
    /// inode, a GPT field; empty for the file as a whole.
    pub entry: String,
    /// The field: `mtime`, `mode`, `sha256`, `byte 4096`, …
    pub field: String,
    pub a: String,
    pub b: String,
}

/// `OUTPUT: ENTRY: FIELD A vs B`.
impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.output)?;
        if !self.entry.is_empty() {
            write!(f, "{}: ", self.entry)?;
        }
        write!(f, "{} {} vs {}", self.field, self.a, self.b)
    }
}

/// The comparison of two output directories.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Comparison {
    /// Files compared.
    pub files: usize,
    pub differences: Vec<Difference>,
    /// Differences found beyond [`PER_OUTPUT`] per file, not listed.
    pub more: usize,
}

struct Out<'a> {
    output: &'a str,
    diffs: Vec<Difference>,
    more: usize,
}

impl Out<'_> {
    fn push(&mut self, entry: &str, field: &str, a: impl fmt::Display, b: impl fmt::Display) {
        if self.diffs.len() >= PER_OUTPUT {
            self.more += 1;
            return;
        }
        let short = |s: String| {
            if s.chars().count() > 120 {
                format!("{}…", s.chars().take(120).collect::<String>())
            } else {
                s
            }
        };
        self.diffs.push(Difference {
            output: self.output.to_owned(),
            entry: entry.to_owned(),
            field: field.to_owned(),
            a: short(a.to_string()),
            b: short(b.to_string()),
        });
    }
}

fn files_of(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            e.path()
                .strip_prefix(dir)
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect()
}

/// Compares two output directories of one profile.
pub fn compare(a: &Path, b: &Path) -> Result<Comparison, AuditError> {
    let (fa, fb) = (files_of(a), files_of(b));
    let mut c = Comparison::default();
    let is_blob = |p: &str| p.starts_with("oci/blobs/");
    for rel in fa.union(&fb) {
        c.files += 1;
        let mut out = Out {
            output: rel,
            diffs: Vec::new(),
            more: 0,
        };
        match (fa.contains(rel), fb.contains(rel)) {
            (true, true) => {
                let (pa, pb) = (a.join(rel), b.join(rel));
                let (ba, bb) = (
                    std::fs::read(&pa).map_err(io_err(&pa))?,
                    std::fs::read(&pb).map_err(io_err(&pb))?,
                );
                if ba != bb {
                    if rel == "oci/index.json" {
                        compare_oci(a, b, &mut out)?;
                    } else {
                        compare_bytes(&pa, &pb, &ba, &bb, "", &mut out);
                    }
                }
            }
            // A blob only in one: its place in the layout is named by compare_oci.
            _ if is_blob(rel) => {}
            (true, false) => out.push("", "presence", "present", "absent"),
            _ => out.push("", "presence", "absent", "present"),
        }
        c.differences.extend(out.diffs);
        c.more += out.more;
    }
    Ok(c)
}

/// Two files' bytes, by what they are.
fn compare_bytes(pa: &Path, pb: &Path, ba: &[u8], bb: &[u8], entry: &str, out: &mut Out<'_>) {
    let name = pa
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if ba.len() >= 4 && &ba[..4] == b"hsqs" && bb.len() >= 4 && &bb[..4] == b"hsqs" {
        compare_squashfs(pa, pb, 0, 0, entry, out);
    } else if ba.len() > 520
        && &ba[512..520] == b"EFI PART"
        && bb.len() > 520
        && &bb[512..520] == b"EFI PART"
    {
        compare_gpt(pa, pb, out);
    } else if name.ends_with("-install.sh") {
        compare_installer(ba, bb, out);
    } else {
        compare_data(ba, bb, entry, out);
    }
}

/// Bytes in memory: gzip, tar, JSON or raw.
fn compare_data(ba: &[u8], bb: &[u8], entry: &str, out: &mut Out<'_>) {
    let at = |e: &str| {
        if entry.is_empty() {
            e.to_owned()
        } else {
            format!("{entry}: {e}")
        }
    };
    if ba.starts_with(&[0x1f, 0x8b]) && bb.starts_with(&[0x1f, 0x8b]) {
        let before = out.diffs.len() + out.more;
        for (field, range) in [
            ("gzip flags", 3..4),
            ("gzip mtime", 4..8),
            ("gzip xfl", 8..9),
            ("gzip os", 9..10),
        ] {
            if ba.get(range.clone()) != bb.get(range.clone()) {
                out.push(
                    &at("gzip header"),
                    field,
                    hex::encode(&ba[range.clone()]),
                    hex::encode(&bb[range]),
                );
            }
        }
        match (gunzip(ba), gunzip(bb)) {
            (Ok(ua), Ok(ub)) if ua != ub => compare_data(&ua, &ub, &at("gzip"), out),
            (Ok(_), Ok(_)) => {
                if out.diffs.len() + out.more == before {
                    out.push(
                        &at("gzip"),
                        "compressed bytes (same content)",
                        format!("{} bytes", ba.len()),
                        format!("{} bytes", bb.len()),
                    );
                }
            }
            (ra, rb) => out.push(
                &at("gzip"),
                "stream",
                ra.map_or_else(|e| e.to_string(), |_| "ok".into()),
                rb.map_or_else(|e| e.to_string(), |_| "ok".into()),
            ),
        }
    } else if is_tar(ba) && is_tar(bb) {
        compare_tar(ba, bb, entry, out);
    } else if let (Ok(ja), Ok(jb)) = (
        serde_json::from_slice::<serde_json::Value>(ba),
        serde_json::from_slice::<serde_json::Value>(bb),
    ) {
        compare_json(&ja, &jb, "", &at("json"), out);
        if ja == jb {
            first_byte(ba, bb, entry, out);
        }
    } else {
        first_byte(ba, bb, entry, out);
    }
}

fn first_byte(ba: &[u8], bb: &[u8], entry: &str, out: &mut Out<'_>) {
    match ba.iter().zip(bb).position(|(x, y)| x != y) {
        Some(i) => out.push(
            entry,
            &format!("byte {i}"),
            format!("{:#04x}", ba[i]),
            format!("{:#04x}", bb[i]),
        ),
        None => out.push(entry, "size", ba.len(), bb.len()),
    }
}

fn gunzip(b: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out)?;
    Ok(out)
}

fn is_tar(b: &[u8]) -> bool {
    b.len() >= 512 && &b[257..262] == b"ustar"
}

/// A tar member's fields.
/// A tar member: its name and (field, value) pairs.
type Member = (String, Vec<(&'static str, String)>);

fn members(b: &[u8]) -> std::io::Result<Vec<Member>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(b);
    for e in archive.entries()? {
        let mut e = e?;
        let h = e.header().clone();
        let name = e.path()?.to_string_lossy().into_owned();
        let mut content = Vec::new();
        e.read_to_end(&mut content)?;
        let fields = vec![
            ("type", format!("{:?}", h.entry_type())),
            ("mode", format!("{:04o}", h.mode().unwrap_or(0))),
            ("uid", h.uid().unwrap_or(0).to_string()),
            ("gid", h.gid().unwrap_or(0).to_string()),
            ("size", h.size().unwrap_or(0).to_string()),
            ("mtime", h.mtime().unwrap_or(0).to_string()),
            (
                "link",
                e.link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            (
                "uname",
                h.username().ok().flatten().unwrap_or_default().to_owned(),
            ),
            (
                "gname",
                h.groupname().ok().flatten().unwrap_or_default().to_owned(),
            ),
            ("sha256", crate::util::hash::sha256_hex(&content)),
            ("header", hex::encode(h.as_bytes())),
        ];
        out.push((name, fields));
    }
    Ok(out)
}

fn compare_tar(ba: &[u8], bb: &[u8], entry: &str, out: &mut Out<'_>) {
    let at = |e: &str| {
        if entry.is_empty() {
            e.to_owned()
        } else {
            format!("{entry}: {e}")
        }
    };
    let (ma, mb) = match (members(ba), members(bb)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return first_byte(ba, bb, entry, out),
    };
    let before = out.diffs.len() + out.more;
    for (i, pair) in ma.iter().zip(&mb).enumerate() {
        let ((na, fa), (nb, fb)) = pair;
        if na != nb {
            out.push(&at(&format!("tar member {i}")), "name", na, nb);
            continue;
        }
        for ((field, va), (_, vb)) in fa.iter().zip(fb) {
            if va != vb && *field != "header" {
                out.push(&at(&format!("tar member {na}")), field, va, vb);
            }
        }
        if fa
            .iter()
            .zip(fb)
            .all(|((f, va), (_, vb))| va == vb || *f == "header")
            && fa != fb
        {
            out.push(
                &at(&format!("tar member {na}")),
                "header bytes",
                &fa[10].1,
                &fb[10].1,
            );
        }
    }
    if ma.len() != mb.len() {
        out.push(&at("tar"), "members", ma.len(), mb.len());
    }
    if out.diffs.len() + out.more == before {
        first_byte(ba, bb, &at("tar"), out);
    }
}

fn compare_json(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: &str,
    entry: &str,
    out: &mut Out<'_>,
) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => compare_json(va, vb, &p, entry, out),
                    (va, vb) => out.push(entry, &p, show(va), show(vb)),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                compare_json(va, vb, &format!("{path}[{i}]"), entry, out);
            }
            if x.len() != y.len() {
                out.push(entry, &format!("{path} length"), x.len(), y.len());
            }
        }
        _ if a != b => out.push(entry, path, a, b),
        _ => {}
    }
}

fn show(v: Option<&serde_json::Value>) -> String {
    v.map_or_else(|| "(absent)".to_owned(), ToString::to_string)
}

/// An OCI layout, from index.json down.
fn compare_oci(a: &Path, b: &Path, out: &mut Out<'_>) -> Result<(), AuditError> {
    let read = |dir: &Path, rel: &str| -> Result<Vec<u8>, AuditError> {
        let p = dir.join(rel);
        std::fs::read(&p).map_err(io_err(&p))
    };
    let json =
        |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_default();
    let (ia, ib) = (read(a, "oci/index.json")?, read(b, "oci/index.json")?);
    let (ja, jb) = (json(&ia), json(&ib));
    compare_json(&ja, &jb, "", "index.json", out);
    let digest = |v: &serde_json::Value| {
        v["manifests"][0]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let blob = |dir: &Path, d: &str| read(dir, &format!("oci/{}", super::oci::blob_path(d)));
    let (da, db) = (digest(&ja), digest(&jb));
    if da == db || da.is_empty() || db.is_empty() {
        return Ok(());
    }
    let (ma, mb) = (json(&blob(a, &da)?), json(&blob(b, &db)?));
    compare_json(
        &ma,
        &mb,
        "",
        &format!("blob {da} vs {db} (image manifest)"),
        out,
    );
    let (ca, cb) = (
        ma["config"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        mb["config"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    if ca != cb {
        let (xa, xb) = (json(&blob(a, &ca)?), json(&blob(b, &cb)?));
        compare_json(&xa, &xb, "", &format!("blob {ca} vs {cb} (config)"), out);
    }
    let layers = |m: &serde_json::Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["digest"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for (i, (la, lb)) in layers(&ma).iter().zip(layers(&mb)).enumerate() {
        if *la != lb {
            let (ba, bb) = (blob(a, la)?, blob(b, &lb)?);
            compare_data(
                &ba,
                &bb,
                &format!("blob {la} vs {lb} (layer {})", i + 1),
                out,
            );
        }
    }
    Ok(())
}

/// The installer: header lines (up to the payload), then the payload.
fn compare_installer(ba: &[u8], bb: &[u8], out: &mut Out<'_>) {
    let split = |b: &[u8]| -> Option<(usize, usize)> {
        let text = String::from_utf8_lossy(&b[..b.len().min(1 << 20)]).into_owned();
        let num = |key: &str| -> Option<usize> {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
        };
        Some((num("ARCHIVE_OFFSET=")?, num("ARCHIVE_SIZE=")?))
    };
    let (Some((oa, sa)), Some((ob, sb))) = (split(ba), split(bb)) else {
        return first_byte(ba, bb, "", out);
    };
    let (ha, hb) = (&ba[..(oa - 1).min(ba.len())], &bb[..(ob - 1).min(bb.len())]);
    let before = out.diffs.len() + out.more;
    let (la, lb): (Vec<&[u8]>, Vec<&[u8]>) = (
        ha.split(|&c| c == b'\n').collect(),
        hb.split(|&c| c == b'\n').collect(),
    );
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        if x != y {
            out.push(
                "header",
                &format!("line {}", i + 1),
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y),
            );
        }
    }
    let pa = ba.get(oa - 1..oa - 1 + sa).unwrap_or_default();
    let pb = bb.get(ob - 1..ob - 1 + sb).unwrap_or_default();
    if pa != pb {
        compare_data(pa, pb, "payload", out);
    }
    if out.diffs.len() + out.more == before {
        first_byte(ba, bb, "", out);
    }
}

fn compare_squashfs(pa: &Path, pb: &Path, oa: u64, ob: u64, entry: &str, out: &mut Out<'_>) {
    let at = |e: &str| {
        if entry.is_empty() {
            e.to_owned()
        } else {
            format!("{entry}: {e}")
        }
    };
    let (ia, ib) = match (squashfs::read(pa, oa), squashfs::read(pb, ob)) {
        (Ok(a), Ok(b)) => (a, b),
        (ra, rb) => {
            out.push(
                &at("squashfs"),
                "readable",
                ra.map_or_else(|e| e.to_string(), |_| "yes".into()),
                rb.map_or_else(|e| e.to_string(), |_| "yes".into()),
            );
            return;
        }
    };
    let before = out.diffs.len() + out.more;
    for ((field, va), (_, vb)) in ia.superblock.fields().iter().zip(ib.superblock.fields()) {
        if *va != vb {
            out.push(&at("squashfs superblock"), field, va, vb);
        }
    }
    let paths: BTreeSet<&String> = ia.entries.keys().chain(ib.entries.keys()).collect();
    for p in paths {
        match (ia.entries.get(p), ib.entries.get(p)) {
            (Some(x), Some(y)) => {
                let e = at(&format!("squashfs {p} (inode {})", x.inode));
                let fields = |v: &squashfs::Entry| -> BTreeMap<&'static str, String> {
                    BTreeMap::from([
                        ("0 inode", v.inode.to_string()),
                        ("1 type", v.kind.to_owned()),
                        ("2 mode", format!("{:04o}", v.mode)),
                        ("3 uid", v.uid.to_string()),
                        ("4 gid", v.gid.to_string()),
                        ("5 mtime", v.mtime.to_string()),
                        ("6 size", v.size.to_string()),
                        ("7 sha256", format!("{:?}", v.sha256)),
                        ("8 target", v.target.clone().unwrap_or_default()),
                        (
                            "9 blocks",
                            v.blocks
                                .iter()
                                .map(|b| {
                                    format!(
                                        "{}+{}{}",
                                        b.offset,
                                        b.stored,
                                        if b.compressed { "z" } else { "" }
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                    ])
                };
                for ((k, va), (_, vb)) in fields(x).iter().zip(fields(y)) {
                    if *va != vb {
                        out.push(&e, &k[2..], va, vb);
                    }
                }
            }
            (x, _) => out.push(
                &at(&format!("squashfs {p}")),
                "presence",
                if x.is_some() { "present" } else { "absent" },
                if x.is_some() { "absent" } else { "present" },
            ),
        }
    }
    if out.diffs.len() + out.more == before {
        // Same entries, same metadata: the difference is in the layout of the bytes.
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        let (ba, bb) = (read(pa), read(pb));
        first_byte(
            ba.get(oa as usize..).unwrap_or_default(),
            bb.get(ob as usize..).unwrap_or_default(),
            &at("squashfs"),
            out,
        );
    }
}

fn compare_gpt(pa: &Path, pb: &Path, out: &mut Out<'_>) {
    let (Ok(Some(ga)), Ok(Some(gb))) = (gpt::read(pa), gpt::read(pb)) else {
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        return first_byte(&read(pa), &read(pb), "", out);
    };
    for ((field, va), (_, vb)) in ga.header.iter().zip(&gb.header) {
        if va != vb {
            out.push("gpt header", field, va, vb);
        }
    }
    for (x, y) in ga.partitions.iter().zip(&gb.partitions) {
        let e = format!("gpt partition {} ({})", x.index, x.label);
        for ((field, va), (_, vb)) in x.fields().iter().zip(y.fields()) {
            if *va != vb {
                out.push(&e, field, va, vb);
            }
        }
        // The file system inside, when it is a squashfs.
        let magic = |p: &Path, off: u64| {
            use std::os::unix::fs::FileExt;
            let mut m = [0u8; 4];
            std::fs::File::open(p)
                .and_then(|f| f.read_exact_at(&mut m, off))
                .map(|_| m)
                .unwrap_or_default()
        };
        if &magic(pa, x.offset()) == b"hsqs" && &magic(pb, y.offset()) == b"hsqs" {
            compare_squashfs(pa, pb, x.offset(), y.offset(), &e, out);
        }
    }
    if ga.partitions.len() != gb.partitions.len() {
        out.push(
            "gpt",
            "partitions",
            ga.partitions.len(),
            gb.partitions.len(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_are_named() {
        let a: serde_json::Value = serde_json::json!({"m": [{"d": "x"}], "k": 1});
        let b: serde_json::Value = serde_json::json!({"m": [{"d": "y"}], "k": 1});
        let mut out = Out {
            output: "index.json",
            diffs: Vec::new(),
            more: 0,
        };
        compare_json(&a, &b, "", "", &mut out);
        assert_eq!(
            out.diffs[0].to_string(),
            "index.json: m[0].d \"x\" vs \"y\""
        );
    }
}
