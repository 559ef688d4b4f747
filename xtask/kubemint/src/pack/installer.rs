//! The installer: a POSIX sh script with the payload appended. It checks the payload's sha256
//! and every file against its embedded manifest before writing, installs into `--root`, and can
//! `--list` its contents or `--verify` an installed root. The script is rendered from
//! `installer.sh`; the payload's offset is a fixed-width number so the header's length is known.

use crate::front::plan::Plan;
use crate::front::render;
use crate::tree::{Kind, Tree};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

const TEMPLATE: &str = include_str!("installer.sh");
const OFFSET_WIDTH: usize = 10;

/// The embedded manifest: one line per entry, `type mode uid gid size sha256 path [target]`,
/// `-` for what does not apply. Tree paths have no whitespace, so the fields split on spaces.
pub fn manifest_lines(tree: &Tree) -> String {
    let mut out = String::new();
    for (path, e) in tree.iter() {
        let (t, size, sha, target) = match &e.kind {
            Kind::Dir => ("d", "-".to_owned(), "-", ""),
            Kind::File { size, sha256, .. } => ("f", size.to_string(), sha256.as_str(), ""),
            Kind::Symlink { target } => ("l", "-".to_owned(), "-", target.as_str()),
        };
        let _ = write!(
            out,
            "{t} {:04o} {} {} {size} {sha} {path}",
            e.mode, e.uid, e.gid
        );
        if !target.is_empty() {
            let _ = write!(out, " {target}");
        }
        out.push('\n');
    }
    out
}

/// Renders the script header for a payload of `payload_size` bytes with `payload_sha256`.
///
/// The header's numbers are fixed-width, so its length is known before they are; the whole
/// file's length, the header's length and offset of the payload are then rendered in. Line 3
/// holds the sha256 of the header without that line, which the script checks first.
pub fn header(
    plan: &Plan,
    tree: &Tree,
    payload_sha256: &str,
    payload_size: u64,
) -> Result<String, minijinja::Error> {
    let env = render::environment([("installer.sh", TEMPLATE)])?;
    let template = env.get_template("installer.sh")?;
    let in_dir = |dir: &str| -> Vec<&str> {
        tree.iter()
            .filter(|(p, e)| matches!(e.kind, Kind::File { .. }) && p.starts_with(dir))
            .map(|(p, _)| p)
            .collect()
    };
    let units_dir = crate::audit::rules::SHIPPED_UNITS_DIR;
    let shipped = crate::audit::rules::shipped_units(
        tree.iter()
            .map(|(p, e)| (p, matches!(e.kind, Kind::File { .. }))),
    );
    let mut unit_wants = Vec::new();
    for unit in &plan.units {
        let path = format!("{units_dir}{unit}");
        let Some(file) = plan.files.iter().find(|f| f.path == path) else {
            continue;
        };
        for target in crate::front::plan::wanted_by(&file.content) {
            unit_wants.push(format!("{unit}:{target}"));
        }
    }
    let tmpfiles_paths: Vec<String> = plan
        .files
        .iter()
        .filter(|f| f.path.starts_with("/usr/lib/tmpfiles.d/"))
        .flat_map(|f| tmpfiles_lines(&f.content))
        .collect();
    let texts: std::collections::BTreeMap<&str, &str> = plan
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str()))
        .collect();
    let reads = unit_reads(&plan.units, &texts, tree, &tmpfiles_paths);
    let terminator = terminator(payload_sha256);
    let render = |digest: &str, header_size: u64| {
        let number = |n: u64| format!("{n:0width$}", width = OFFSET_WIDTH);
        let total = header_size + payload_size + terminator.len() as u64 + 2;
        template.render(minijinja::context! {
            header_sha256 => digest,
            profile => plan.profile,
            image => plan.image,
            release => plan.release.name,
            image_version => plan.version,
            sample => plan.sample,
            version => crate::VERSION,
            archive_sha256 => payload_sha256,
            header_size => number(header_size),
            archive_offset => number(header_size + 1),
            archive_size => payload_size,
            total_size => number(total),
            terminator => terminator,
            user => plan.user,
            sysusers => in_dir("/usr/lib/sysusers.d/"),
            tmpfiles => in_dir("/usr/lib/tmpfiles.d/"),
            tmpfiles_paths => tmpfiles_paths,
            units => plan.units,
            unit_wants => unit_wants,
            shipped_units => shipped,
            unit_dirs => crate::audit::rules::UNIT_DIRS,
            owns => plan.owns,
            secrets => minijinja::Value::from_serialize(&plan.secrets),
            manifest => manifest_lines(tree),
            unit_reads => reads,
        })
    };
    let placeholder = "0".repeat(64);
    let probe = render(&placeholder, 0)?;
    let text = render(&placeholder, probe.len() as u64)?;
    debug_assert_eq!(text.len(), probe.len());
    let digest = crate::util::hash::sha256_hex(without_line_3(&text).as_bytes());
    let text = text.replacen(
        &format!("HEADER_SHA256='{placeholder}'"),
        &format!("HEADER_SHA256='{digest}'"),
        1,
    );
    debug_assert_eq!(
        text.lines().nth(2),
        Some(format!("HEADER_SHA256='{digest}'").as_str())
    );
    Ok(text)
}

/// What each unit reads, as `unit path` lines: the rule by which a switch between two
/// generations restarts a unit when one of these paths changed.
///
/// A unit reads its unit file, its drop-ins in the tree, and every tree path that a file it reads
/// names, transitively: a rendered file (unit, environment file, kubeconfig, check-secrets)
/// names a path by its own name or by one through a link (a symlink in the tree, or a tmpfiles.d
/// `L` line such as `.../sbin -> /usr/lib/kubernetes/bin`), and a symlink read brings its
/// target. Names are matched as substrings, so the rule errs towards restarting. Binaries are
/// never scanned (they name nothing the image controls).
fn unit_reads(
    units: &[String],
    texts: &std::collections::BTreeMap<&str, &str>,
    tree: &Tree,
    tmpfiles_paths: &[String],
) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let units_dir = "/usr/lib/systemd/system/";
    let mut aliases: Vec<(String, String)> = tmpfiles_paths
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            match f.as_slice() {
                ["L", path, _, _, _, target] => Some(((*path).to_owned(), (*target).to_owned())),
                _ => None,
            }
        })
        .collect();
    let mut links = BTreeMap::new();
    for (path, e) in tree.iter() {
        if let Kind::Symlink { target } = &e.kind {
            aliases.push((path.to_owned(), target.clone()));
            links.insert(path, target.as_str());
        }
    }
    let names = |p: &str| -> Vec<String> {
        let mut out = vec![p.to_owned()];
        for (alias, target) in &aliases {
            if p == target {
                out.push(alias.clone());
            } else if let Some(rest) = p.strip_prefix(target.as_str())
                && rest.starts_with('/')
            {
                out.push(format!("{alias}{rest}"));
            }
        }
        out
    };
    let candidates: Vec<(&str, Vec<String>)> = tree
        .iter()
        .filter(|(_, e)| !matches!(e.kind, Kind::Dir))
        .map(|(p, _)| (p, names(p)))
        .collect();
    let mut out = Vec::new();
    for unit in units {
        let file = format!("{units_dir}{unit}");
        let dropins = format!("{units_dir}{unit}.d/");
        let mut reads: BTreeSet<&str> = candidates
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| *p == file || p.starts_with(&dropins))
            .collect();
        let mut todo: Vec<&str> = reads.iter().copied().collect();
        while let Some(path) = todo.pop() {
            let mut found = Vec::new();
            if let Some(text) = texts.get(path) {
                for (p, names) in &candidates {
                    if names.iter().any(|n| text.contains(n.as_str())) {
                        found.push(*p);
                    }
                }
            }
            if let Some(target) = links.get(path)
                && let Some((p, _)) = candidates.iter().find(|(p, _)| p == target)
            {
                found.push(*p);
            }
            for p in found {
                if reads.insert(p) {
                    todo.push(p);
                }
            }
        }
        out.extend(reads.into_iter().map(|p| format!("{unit} {p}")));
    }
    out
}

/// The header as the script hashes it: `sed '3d'`.
fn without_line_3(text: &str) -> String {
    text.split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect()
}

/// The `d` and `L` lines of a tmpfiles.d file as the installer checks them:
/// `type path mode user group target`, `-` where a field does not apply.
pub(crate) fn tmpfiles_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["d", path, mode, user, group, ..] => {
                    Some(format!("d {path} {mode} {user} {group} -"))
                }
                ["L", path, _, _, _, _, target, ..] => Some(format!("L {path} - - - {target}")),
                _ => None,
            }
        })
        .collect()
}

/// The line that ends the payload's here-document. It names the payload's own sha256, so the
/// payload cannot contain it.
fn terminator(payload_sha256: &str) -> String {
    format!("KUBEMINT_PAYLOAD_{payload_sha256}")
}

/// Writes the installer: the header, the payload file's bytes, then the here-document's end.
pub fn write<W: Write>(
    plan: &Plan,
    tree: &Tree,
    payload: &Path,
    payload_sha256: &str,
    mut out: W,
) -> io::Result<W> {
    let mut file = File::open(payload)?;
    let size = file.metadata()?.len();
    let header = header(plan, tree, payload_sha256, size).map_err(io::Error::other)?;
    out.write_all(header.as_bytes())?;
    let copied = io::copy(&mut file, &mut out)?;
    if copied != size {
        return Err(io::Error::other(format!(
            "{}: changed while being copied",
            payload.display()
        )));
    }
    write!(out, "\n{}\n", terminator(payload_sha256))?;
    out.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Content;

    #[test]
    fn units_and_tmpfiles_as_the_script_reads_them() {
        assert_eq!(
            tmpfiles_lines(
                "# x\nd /data/k 0755 k8s k8s -\nL /data/k/sbin - - - - /usr/lib/k/bin\n"
            ),
            [
                "d /data/k 0755 k8s k8s -",
                "L /data/k/sbin - - - /usr/lib/k/bin"
            ]
        );
        assert_eq!(without_line_3("a\nb\nc\nd\n"), "a\nb\nd\n");
    }

    #[test]
    fn a_unit_reads_what_its_files_name_through_links_transitively() {
        let mut tree = Tree::new();
        let unit = "[Service]\nExecStart=/data/k/sbin/apiserver --config=/etc/k/a.yaml\n";
        let files = [
            ("/usr/lib/systemd/system/a.service", unit),
            ("/etc/k/a.yaml", "kubeconfig: /etc/k/a.kubeconfig\n"),
            ("/etc/k/a.kubeconfig", "server: https://127.0.0.1\n"),
            ("/etc/k/b.yaml", "nobody names me\n"),
            (
                "/usr/lib/systemd/system/a.service.d/10-x.conf",
                "[Service]\n",
            ),
            ("/usr/lib/k/bin/apiserver", "#!/bin/sh\n"),
            ("/usr/lib/k/bin/scheduler", "#!/bin/sh\n"),
        ];
        for (path, text) in files {
            tree.add_file(path, 0o644, Content::Inline(text.as_bytes().to_vec()))
                .unwrap();
        }
        tree.add_symlink("/usr/local/bin/apiserver", "/usr/lib/k/bin/apiserver")
            .unwrap();
        let texts = files.iter().copied().collect();
        let tmpfiles = ["L /data/k/sbin - - - /usr/lib/k/bin".to_owned()];
        assert_eq!(
            unit_reads(&["a.service".to_owned()], &texts, &tree, &tmpfiles),
            [
                "a.service /etc/k/a.kubeconfig",
                "a.service /etc/k/a.yaml",
                "a.service /usr/lib/k/bin/apiserver",
                "a.service /usr/lib/systemd/system/a.service",
                "a.service /usr/lib/systemd/system/a.service.d/10-x.conf",
            ]
        );
    }

    #[test]
    fn manifest_line_format() {
        let mut tree = Tree::new();
        tree.add_file("/etc/a", 0o644, Content::Inline(b"abc".to_vec()))
            .unwrap();
        tree.add_symlink("/usr/bin/x", "/opt/x").unwrap();
        let lines = manifest_lines(&tree);
        assert_eq!(
            lines,
            "d 0755 0 0 - - /etc\n\
             f 0644 0 0 3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad /etc/a\n\
             d 0755 0 0 - - /usr\nd 0755 0 0 - - /usr/bin\nl 0777 0 0 - - /usr/bin/x /opt/x\n"
        );
    }
}
