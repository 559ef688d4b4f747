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
    let terminator = terminator(payload_sha256);
    let render = |digest: &str, header_size: u64| {
        let number = |n: u64| format!("{n:0width$}", width = OFFSET_WIDTH);
        let total = header_size + payload_size + terminator.len() as u64 + 2;
        template.render(minijinja::context! {
            header_sha256 => digest,
            profile => plan.profile,
            image => plan.image,
            release => plan.release.name,
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
fn tmpfiles_lines(text: &str) -> Vec<String> {
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
