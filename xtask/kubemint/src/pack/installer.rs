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

/// Renders the script header for a payload with `payload_sha256`.
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
    let render = |offset: &str| {
        template.render(minijinja::context! {
            profile => plan.profile,
            image => plan.image,
            release => plan.release.name,
            sample => plan.sample,
            version => crate::VERSION,
            archive_sha256 => payload_sha256,
            archive_offset => offset,
            archive_size => payload_size,
            terminator => terminator(payload_sha256),
            user => plan.user,
            sysusers => in_dir("/usr/lib/sysusers.d/"),
            tmpfiles => in_dir("/usr/lib/tmpfiles.d/"),
            units => plan.units,
            secrets => minijinja::Value::from_serialize(&plan.secrets),
            manifest => manifest_lines(tree),
        })
    };
    let probe = render(&"0".repeat(OFFSET_WIDTH))?;
    let text = render(&format!(
        "{:0width$}",
        probe.len() + 1,
        width = OFFSET_WIDTH
    ))?;
    debug_assert_eq!(text.len(), probe.len());
    Ok(text)
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
