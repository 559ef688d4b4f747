//! Base operating systems: the definitions in `images/bases/<name>/` (`base.toml` and a `files/`
//! tree laid over the root), and what a disk build reads from a base's root file system
//! tarball. Making one (mmdebstrap, as root, from a mirror) is `cargo xtask base`; pinning and
//! finding it in the store work as for releases.

use crate::util::hash;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `images/bases/<name>/base.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub description: String,
    /// The Debian suite, e.g. `trixie`.
    pub suite: String,
    /// Names the usr partition (`kubemint-usr_<version>`) and the kernel image.
    pub version: u32,
    pub packages: Vec<String>,
    /// Lines of `/etc/dracut.conf.d/10-kubemint.conf`.
    pub dracut: Vec<String>,
    /// The kernel command line; `{usr_label}` is replaced by the usr partition's label.
    pub cmdline: String,
}

/// A base definition, loaded, with the digest of everything it consists of.
#[derive(Clone, Debug)]
pub struct Base {
    pub name: String,
    pub dir: PathBuf,
    pub definition: Definition,
    /// sha256 over `base.toml` and every file below `files/` (paths, modes, contents, link
    /// targets), in byte order: what the lock records as its `recipe`.
    pub recipe: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("{path}: cannot read the base definition: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The label of a base's usr partition, which its kernel command line names.
pub fn usr_label(version: u32) -> String {
    format!("kubemint-usr_{version}")
}

impl Base {
    /// Loads `images/bases/<name>/`.
    pub fn load(images: &Path, name: &str) -> Result<Base, BaseError> {
        let dir = images.join("bases").join(name);
        let path = dir.join("base.toml");
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| BaseError::Read {
                path: p.to_owned(),
                source,
            })
        };
        let text = read(&path)?;
        let definition: Definition =
            toml::from_str(&String::from_utf8_lossy(&text)).map_err(|e| BaseError::Invalid {
                path: path.clone(),
                message: e.to_string().trim_end().to_owned(),
            })?;
        let mut recipe = format!("base.toml {}\n", hash::sha256_hex(&text));
        let files = dir.join("files");
        if files.is_dir() {
            for entry in walkdir::WalkDir::new(&files)
                .min_depth(1)
                .sort_by_file_name()
            {
                let entry = entry.map_err(|e| BaseError::Read {
                    path: files.clone(),
                    source: e.into(),
                })?;
                let rel = entry.path().strip_prefix(&files).unwrap_or(entry.path());
                let meta = entry
                    .path()
                    .symlink_metadata()
                    .map_err(|source| BaseError::Read {
                        path: entry.path().to_owned(),
                        source,
                    })?;
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o7777;
                let what = if meta.file_type().is_symlink() {
                    let target =
                        std::fs::read_link(entry.path()).map_err(|source| BaseError::Read {
                            path: entry.path().to_owned(),
                            source,
                        })?;
                    format!("link {}", target.display())
                } else if meta.is_dir() {
                    "dir".to_owned()
                } else {
                    format!(
                        "file {:o} {}",
                        mode & 0o111,
                        hash::sha256_hex(&read(entry.path())?)
                    )
                };
                recipe.push_str(&format!("{} {what}\n", rel.display()));
            }
        }
        Ok(Base {
            name: name.to_owned(),
            dir,
            definition,
            recipe: hash::sha256_hex(recipe.as_bytes()),
        })
    }

    /// The kernel command line, the usr partition's label filled in.
    pub fn cmdline(&self) -> String {
        self.definition
            .cmdline
            .replace("{usr_label}", &usr_label(self.definition.version))
    }
}

/// What a base's tarball says of itself in `/usr/lib/kubemint-base/base-release`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub version: u32,
    pub usr_label: String,
}

impl Release {
    /// Parses `KEY=value` lines.
    pub fn parse(text: &str) -> Option<Release> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('"').to_owned())
        };
        Some(Release {
            version: get("KUBEMINT_BASE_VERSION")?.parse().ok()?,
            usr_label: get("USR_PARTLABEL")?,
        })
    }
}

/// Where in a base's tarball the pieces a bootable disk needs are.
pub const BASE_RELEASE: &str = "usr/lib/kubemint-base/base-release";
pub const UKI: &str = "usr/lib/kubemint-base/uki.efi";
pub const SYSTEMD_BOOT: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_base_loads_with_a_stable_recipe() {
        let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images");
        let a = Base::load(&images, "debian-trixie").unwrap();
        let b = Base::load(&images, "debian-trixie").unwrap();
        assert_eq!(a.recipe, b.recipe);
        assert_eq!(a.definition.suite, "trixie");
        assert!(a.cmdline().contains("mount.usr=PARTLABEL=kubemint-usr_1 "));
        assert_eq!(
            Release::parse("KUBEMINT_BASE_VERSION=1\nUSR_PARTLABEL=kubemint-usr_1\n"),
            Some(Release {
                version: 1,
                usr_label: "kubemint-usr_1".into()
            })
        );
    }
}
