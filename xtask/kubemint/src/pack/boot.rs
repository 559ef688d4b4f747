//! The bootable disk of a master (`boot/kubemint-<profile>.raw`): a GPT image that boots
//! under UEFI with no other file, made in-process from the pinned base operating system and the
//! master's very own sysext and confext (byte for byte the files build-image writes beside it).
//!
//! | # | type | label | holds |
//! |---|---|---|---|
//! | 1 | ESP | `esp` | FAT32: systemd-boot, the base's unified kernel image, and the master's sysext and confext (`kubemint/extensions/`, `kubemint/confexts/`) as factory versions |
//! | 2 | usr-x86-64, read-only | `kubemint-usr_<base version>` | squashfs of the base's `/usr` (its `/etc` inside, in `/usr/share/factory/etc`) |
//! | 3 | usr-x86-64, read-only | `_empty` | nothing: room for the next `/usr` (A/B), which systemd-sysupdate fills |
//!
//! The state (a root partition with `/etc` and `/var`) is made by systemd-repart in the initrd at
//! first boot, in the space after partition 3: write the image to a larger disk, or grow it.
//! At boot the base copies the factory extensions into `/var/lib/extensions` and
//! `/var/lib/confexts`, systemd merges them, and the sysext's own activation creates the user,
//! places the secrets delivered as systemd credentials and starts the units.
//!
//! The squashfs of a base's `/usr` is the same for every master on that base: it is made once
//! and kept in the store's `derived/` directory, keyed by the base's sha512 and the writer.

use crate::inputs::base::{self, Release};
use crate::pack::disk::{self, Content, Ddi, Part, SparseFile};
use crate::pack::esp::{Data, Fat};
use crate::pack::squashfs;
use crate::tree::{Content as TreeContent, Tree};
use crate::util::epoch::Epoch;
use crate::util::hash::{self, Sha512Reader};
use crate::util::progress::Progress;
use sha2::Digest;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

/// The EFI System Partition's type.
pub const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const MIB: u64 = 1 << 20;
/// The label systemd-sysupdate looks for when it fills a partition.
pub const EMPTY: &str = "_empty";

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{tarball}: sha512 mismatch: expected {expected}, actual {actual}; the base is corrupt or not the pinned one: make or pin it again"
    )]
    Digest {
        tarball: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{tarball}: not a kubemint base: {what}")]
    NotABase { tarball: PathBuf, what: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BootError + '_ {
    move |source| BootError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What every bootable disk of a build takes from the base.
#[derive(Clone, Debug)]
pub struct BaseParts {
    pub name: String,
    pub sha512: String,
    pub release: Release,
    /// The squashfs of the base's `/usr`.
    pub usr: Content,
    /// The base's unified kernel image and systemd-boot, hashed once per build.
    pub uki: Content,
    pub systemd_boot: Content,
}

/// How the base's `/usr` squashfs is written: part of its cache key.
fn usr_writer() -> String {
    hash::sha256_hex(format!("{} epoch 1", squashfs::SQUASHFS).as_bytes())[..16].to_owned()
}

/// Reads the base tarball once (its sha512 checked in the same pass), takes what a bootable
/// disk needs into `work`, and makes the squashfs of its `/usr`, or takes it from `cache` when
/// it is there (and puts it there when it was not).
pub fn prepare_base(
    name: &str,
    tarball: &Path,
    sha512: &str,
    work: &Path,
    cache: (Option<PathBuf>, PathBuf),
    progress: &Progress,
) -> Result<BaseParts, BootError> {
    std::fs::create_dir_all(work).map_err(io_err(work))?;
    let (cached, cache_path) = cache;
    let spool = work.join("usr");
    std::fs::create_dir_all(&spool).map_err(io_err(&spool))?;
    let need_usr = cached.is_none();
    let file = File::open(tarball).map_err(io_err(tarball))?;
    let total = file.metadata().ok().map(|m| m.len());
    let bar = progress.bar(&format!("base {name}"), total);
    let mut hashing = Sha512Reader::new(BufReader::with_capacity(1 << 20, bar.wrap_read(file)));
    let not_a_base = |what: String| BootError::NotABase {
        tarball: tarball.to_owned(),
        what,
    };
    let mut tree = Tree::new();
    let mut kept: std::collections::BTreeMap<String, PathBuf> = Default::default();
    let mut spooled: std::collections::BTreeMap<String, PathBuf> = Default::default();
    let mut n = 0u64;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(io_err(tarball))? {
            let mut entry = entry.map_err(io_err(tarball))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let rel = raw
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned();
            if rel != "usr" && !rel.starts_with("usr/") {
                continue;
            }
            if rel.split('/').any(|c| c == "..") {
                return Err(not_a_base(format!("member {raw:?} has a '..' component")));
            }
            let path = format!("/{rel}");
            let h = entry.header();
            let mode = h.mode().map_err(io_err(tarball))? & 0o7777;
            let (uid, gid) = (
                h.uid().map_err(io_err(tarball))? as u32,
                h.gid().map_err(io_err(tarball))? as u32,
            );
            let kind = h.entry_type();
            let wanted =
                [base::BASE_RELEASE, base::UKI, base::SYSTEMD_BOOT].contains(&rel.as_str());
            let added = if kind.is_dir() {
                tree.add_dir(&path, mode)
            } else if kind.is_symlink() {
                let target = entry
                    .link_name()
                    .map_err(io_err(tarball))?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                tree.add_symlink(&path, &target)
            } else if kind.is_hard_link() {
                if !need_usr {
                    continue;
                }
                let target = entry
                    .link_name()
                    .map_err(io_err(tarball))?
                    .map(|t| t.to_string_lossy().trim_start_matches("./").to_owned())
                    .unwrap_or_default();
                let Some(spool_of) = spooled.get(&format!("/{target}")).cloned() else {
                    return Err(not_a_base(format!(
                        "{raw}: a hard link to {target}, not before it"
                    )));
                };
                spooled.insert(path.clone(), spool_of.clone());
                tree.add_file(&path, mode, TreeContent::Spooled(spool_of))
            } else if kind.is_file() {
                if !need_usr && !wanted {
                    continue;
                }
                n += 1;
                let to = spool.join(format!("{n}"));
                let mut out = File::create(&to).map_err(io_err(&to))?;
                io::copy(&mut entry, &mut out).map_err(io_err(&to))?;
                if wanted {
                    kept.insert(rel.clone(), to.clone());
                }
                spooled.insert(path.clone(), to.clone());
                if !need_usr {
                    continue;
                }
                tree.add_file(&path, mode, TreeContent::Spooled(to))
            } else {
                return Err(not_a_base(format!("member {raw:?} is a {kind:?}")));
            };
            added.map_err(|e| not_a_base(e.to_string()))?;
            if need_usr && (uid, gid) != (0, 0) {
                tree.set_owner(&path, uid, gid);
            }
        }
    }
    let (actual, _) = hashing.finish().map_err(io_err(tarball))?;
    bar.finish();
    if actual != sha512 {
        return Err(BootError::Digest {
            tarball: tarball.to_owned(),
            expected: sha512.to_owned(),
            actual,
        });
    }
    let get = |what: &str| {
        kept.get(what)
            .cloned()
            .ok_or_else(|| not_a_base(format!("it has no /{what}")))
    };
    let release_file = get(base::BASE_RELEASE)?;
    let text = std::fs::read_to_string(&release_file).map_err(io_err(&release_file))?;
    let release = Release::parse(&text)
        .ok_or_else(|| not_a_base(format!("/{} lacks its fields", base::BASE_RELEASE)))?;
    let usr = match cached {
        Some(p) => p,
        None => {
            progress.step(&format!(
                "writing the /usr of base {name} (once: it is kept in the store)"
            ));
            let parent = cache_path.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            let tmp = tempfile::Builder::new()
                .prefix(".usr.")
                .tempfile_in(parent)
                .map_err(io_err(parent))?;
            let epoch = Epoch::new(1).expect("1 is in range");
            squashfs::squashfs_file(&tree, "/usr", epoch, tmp.path())
                .map_err(io_err(tmp.path()))?;
            tmp.persist(&cache_path)
                .map_err(|e| io_err(&cache_path)(e.error))?;
            cache_path
        }
    };
    let content = |path: PathBuf| -> Result<Content, BootError> {
        let (sha256, size) = hash::sha256_file(&path).map_err(io_err(&path))?;
        Ok(Content { path, size, sha256 })
    };
    Ok(BaseParts {
        name: name.to_owned(),
        sha512: sha512.to_owned(),
        release,
        usr: content(usr)?,
        uki: content(get(base::UKI)?)?,
        systemd_boot: content(get(base::SYSTEMD_BOOT)?)?,
    })
}

/// The name the derived `/usr` squashfs of base `sha512` is kept under in the store.
pub fn usr_cache_name(sha512: &str) -> String {
    format!("usr-{}-{}.squashfs", &sha512[..32], usr_writer())
}

/// Writes the bootable disk of `profile` to `path`: the ESP with `sysext` and `confext`, the
/// base's `/usr`, an empty `/usr` slot. Returns its layout and (sha256, size).
pub fn write_bootable(
    base: &BaseParts,
    profile: &str,
    sysext: &Content,
    confext: &Content,
    path: &Path,
    shown: &str,
) -> Result<(Ddi, String, u64), BootError> {
    let name = format!("kubemint-{profile}.raw");
    let uki_name = format!("kubemint_{}.efi", base.release.version);
    let mut fat = Fat::new(volume_id(&sysext.sha256), "ESP");
    // Each file of the ESP, recorded in the manifest with its size and digest.
    let file = |c: &Content| {
        let data = Data::File {
            path: c.path.clone(),
            size: c.size,
        };
        (data, c.size, c.sha256.clone())
    };
    let loader = b"timeout 0\n";
    let entries = [
        ("EFI/BOOT/BOOTX64.EFI".to_owned(), file(&base.systemd_boot)),
        (format!("EFI/Linux/{uki_name}"), file(&base.uki)),
        (
            "loader/loader.conf".to_owned(),
            (
                Data::Bytes(loader.to_vec()),
                loader.len() as u64,
                hash::sha256_hex(loader),
            ),
        ),
        (format!("kubemint/extensions/{name}"), file(sysext)),
        (format!("kubemint/confexts/{name}"), file(confext)),
    ];
    let mut files = Vec::new();
    for (at, (data, size, sha256)) in entries {
        files.push(disk::PartFile {
            path: at.clone(),
            size,
            sha256,
        });
        fat.file(&at, data);
    }
    // Room for a second kernel image and a second version of each extension.
    let esp_bytes = round_mib((2 * fat.content_size()).max(200 * MIB) + 32 * MIB);
    let dir = path.parent().unwrap_or(Path::new("."));
    let esp_file = tempfile::Builder::new()
        .prefix(".esp.")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    {
        let mut f = esp_file.reopen().map_err(io_err(esp_file.path()))?;
        fat.write(&mut f, esp_bytes, 2048)
            .map_err(io_err(esp_file.path()))?;
        f.set_len(esp_bytes).map_err(io_err(esp_file.path()))?;
    }
    let (esp_sha256, _) = hash::sha256_file(esp_file.path()).map_err(io_err(esp_file.path()))?;
    let usr_slot = round_mib((base.usr.size + base.usr.size / 4).max(512 * MIB));
    let parts = [
        Part {
            type_uuid: ESP,
            label: "esp".to_owned(),
            sectors: esp_bytes / 512,
            read_only: false,
            content: Some(Content {
                path: esp_file.path().to_owned(),
                size: esp_bytes,
                sha256: esp_sha256.clone(),
            }),
        },
        Part {
            type_uuid: disk::USR_X86_64,
            label: base.release.usr_label.clone(),
            sectors: usr_slot / 512,
            read_only: true,
            content: Some(base.usr.clone()),
        },
        Part {
            type_uuid: disk::USR_X86_64,
            label: EMPTY.to_owned(),
            sectors: usr_slot / 512,
            read_only: true,
            content: None,
        },
    ];
    // GUIDs from everything the disk holds.
    let seed: [u8; 16] = sha2::Sha256::new()
        .chain_update(esp_sha256.as_bytes())
        .chain_update(base.usr.sha256.as_bytes())
        .finalize()[..16]
        .try_into()
        .expect("16 bytes");
    let file = File::create(path).map_err(io_err(path))?;
    let mut out = SparseFile {
        file,
        hash: sha2::Sha256::new(),
        size: 0,
    };
    let mut ddi = disk::write_gpt(&mut out, &seed, &parts, shown).map_err(io_err(path))?;
    ddi.partitions[0].files = files;
    out.file.set_len(out.size).map_err(io_err(path))?;
    out.file.sync_all().map_err(io_err(path))?;
    let sha256 = hex::encode(out.hash.finalize());
    Ok((ddi, sha256, out.size))
}

fn round_mib(n: u64) -> u64 {
    n.div_ceil(MIB) * MIB
}

/// The FAT volume id, from the content.
fn volume_id(seed: &str) -> u32 {
    u32::from_str_radix(&seed[..8], 16).unwrap_or(0x4b4d_0001)
}
