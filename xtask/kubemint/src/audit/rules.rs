//! The verify rules, shared by `cargo xtask verify` and the installer's `--verify`: the kinds
//! of finding and what each means, the unit directories searched for drop-ins and overrides,
//! which units an image ships. The installer's script (`pack/installer.sh`) is rendered with
//! [`UNIT_DIRS`] and the units [`shipped_units`] names, and a unit test here keeps the kinds
//! the script prints equal to [`Kind::ALL`]: this file is the single source of the rule list.
//!
//! The rules, per manifest row (`check_entry` in the script, [`check_row`] here):
//! - a directory: present and a directory (`missing`, `type`); in a directory the image owns,
//!   also its mode and owner (`mode`, `owner`); a shared directory (`/etc`, `/usr/lib`) is
//!   checked only for its type;
//! - a file: present and a regular file (`missing`, `type`), mode, owner, size and sha256
//!   (`changed`);
//! - a symlink: present and a symlink (`missing`, `type`), its target (`target`);
//! - anything in a directory the image owns that the manifest lacks (`unexpected`);
//! - drop-ins of a unit the image ships in any unit directory (`drop-in`), and a same-named
//!   unit that replaces it outside `/usr/lib` unless it masks it (`override`);
//! - a delivered secret: a regular file with its declared owner and mode (`secret`), its
//!   content never read;
//! - on an installed root only: the service user (`user`), the tmpfiles.d paths
//!   (`tmpfiles`), the units' enablement and masking (`disabled`), and an installer switch
//!   cut short (`interrupted`: its journal is there).
//!
//! One kind is `cargo xtask verify`'s only ([`Kind::VERIFY_ONLY`]): `signature`, a signature
//! of a signed output directory that is missing or does not verify with `--trusted-key` (an
//! installed root carries no signatures).

use serde::Serialize;
use std::fmt;

/// The kinds of finding, as both verifiers print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An entry of the manifest is not there.
    Missing,
    /// There, but a file where a directory is meant (or any other type).
    Type,
    /// A symlink pointing elsewhere.
    Target,
    /// Permission bits differ.
    Mode,
    /// uid:gid differ.
    Owner,
    /// A file's content (size or sha256) differs, or an artefact's digest.
    Changed,
    /// Something the manifest lacks, in a directory the image owns (or in an image at all).
    Unexpected,
    /// A drop-in of a unit the image ships.
    DropIn,
    /// A same-named unit that replaces the image's.
    Override,
    /// A delivered secret with the wrong owner, mode or type (never its content).
    Secret,
    /// The service user or its group is missing (an installed root).
    User,
    /// A tmpfiles.d path is missing or differs (an installed root).
    Tmpfiles,
    /// A unit is not enabled, or masked (an installed root).
    Disabled,
    /// An installer switch was cut short: its journal `/var/lib/kubemint/switch` is there, the
    /// live files may mix two builds until `--recover` (an installed root).
    Interrupted,
    /// A signature of an output directory is missing or does not verify with the trusted key
    /// (`cargo xtask verify --output DIR --trusted-key KEY` only).
    Signature,
}

impl Kind {
    /// The kinds both verifiers print: the installer's script prints exactly these.
    pub const ALL: [Kind; 14] = [
        Kind::Missing,
        Kind::Type,
        Kind::Target,
        Kind::Mode,
        Kind::Owner,
        Kind::Changed,
        Kind::Unexpected,
        Kind::DropIn,
        Kind::Override,
        Kind::Secret,
        Kind::User,
        Kind::Tmpfiles,
        Kind::Disabled,
        Kind::Interrupted,
    ];

    /// The kinds only `cargo xtask verify` reports (about what an output directory carries
    /// beside the image: its signatures).
    pub const VERIFY_ONLY: [Kind; 1] = [Kind::Signature];

    /// Whether the installer's `--verify` reports this kind too (it is in [`Kind::ALL`]).
    pub fn shared(self) -> bool {
        match self {
            Kind::Missing
            | Kind::Type
            | Kind::Target
            | Kind::Mode
            | Kind::Owner
            | Kind::Changed
            | Kind::Unexpected
            | Kind::DropIn
            | Kind::Override
            | Kind::Secret
            | Kind::User
            | Kind::Tmpfiles
            | Kind::Disabled
            | Kind::Interrupted => true,
            Kind::Signature => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Type => "type",
            Kind::Target => "target",
            Kind::Mode => "mode",
            Kind::Owner => "owner",
            Kind::Changed => "changed",
            Kind::Unexpected => "unexpected",
            Kind::DropIn => "drop-in",
            Kind::Override => "override",
            Kind::Secret => "secret",
            Kind::User => "user",
            Kind::Tmpfiles => "tmpfiles",
            Kind::Disabled => "disabled",
            Kind::Interrupted => "interrupted",
            Kind::Signature => "signature",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where units live, searched for drop-ins (`UNIT.d/`) and same-named overrides, in
/// systemd's order of precedence. The last is where the image's own units are.
pub const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Where the image's units are.
pub const SHIPPED_UNITS_DIR: &str = "/usr/lib/systemd/system/";

/// The units an image ships: its regular files directly in [`SHIPPED_UNITS_DIR`], given as
/// (path, is a regular file) pairs.
pub fn shipped_units<'a>(entries: impl IntoIterator<Item = (&'a str, bool)>) -> Vec<&'a str> {
    entries
        .into_iter()
        .filter(|(_, file)| *file)
        .filter_map(|(p, _)| p.strip_prefix(SHIPPED_UNITS_DIR))
        .filter(|u| !u.is_empty() && !u.contains('/'))
        .collect()
}

/// Whether `path` lies in (or is) one of `owns`.
pub fn owned<'a>(owns: &'a [String], path: &str) -> Option<&'a str> {
    owns.iter()
        .find(|o| {
            path == o.as_str()
                || path
                    .strip_prefix(o.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The kinds the installer's script prints (`echo "KIND: …"`) are exactly these, minus
    /// its install-time `symlink` refusal, which is not a verify finding.
    #[test]
    fn the_installer_prints_the_same_kinds() {
        let script = include_str!("../pack/installer.sh");
        let mut printed = BTreeSet::new();
        for part in script.split("echo \"").skip(1) {
            if let Some((kind, _)) = part.split_once(": ")
                && !kind.is_empty()
                && kind.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            {
                printed.insert(kind.to_owned());
            }
        }
        printed.remove("symlink");
        let ours: BTreeSet<String> = Kind::ALL.iter().map(|k| k.name().to_owned()).collect();
        assert_eq!(printed, ours);
    }

    /// Every kind is in exactly one of the two lists (`shared`'s match names every kind, so a
    /// new kind must be placed).
    #[test]
    fn every_kind_is_shared_or_verify_only() {
        assert!(Kind::ALL.iter().all(|k| k.shared()));
        assert!(Kind::VERIFY_ONLY.iter().all(|k| !k.shared()));
        let names: BTreeSet<&str> = Kind::ALL
            .iter()
            .chain(&Kind::VERIFY_ONLY)
            .map(|k| k.name())
            .collect();
        assert_eq!(names.len(), Kind::ALL.len() + Kind::VERIFY_ONLY.len());
    }

    #[test]
    fn shipped_and_owned() {
        let rows = [
            ("/usr/lib/systemd/system/a.service", true),
            (
                "/usr/lib/systemd/system/multi-user.target.wants/a.service",
                false,
            ),
            ("/usr/lib/systemd/system/b.service.d/x.conf", true),
            ("/usr/lib/systemd/system", false),
        ];
        assert_eq!(shipped_units(rows), ["a.service"]);
        let owns = vec!["/etc/k8s".to_owned()];
        assert_eq!(owned(&owns, "/etc/k8s/x"), Some("/etc/k8s"));
        assert_eq!(owned(&owns, "/etc/k8s"), Some("/etc/k8s"));
        assert_eq!(owned(&owns, "/etc/k8sx"), None);
    }
}
