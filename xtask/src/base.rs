//! `cargo xtask base NAME`: makes the base operating system `images/bases/NAME/` defines with
//! mmdebstrap from a Debian mirror (as root), reproducibly within one mirror state
//! (SOURCE_DATE_EPOCH, no host hostname or resolv.conf, a reproducible initrd, a unified kernel
//! image made by the base's own ukify), puts the tarball in the store under its sha512 and pins
//! it in the lock as a `[[base]]` entry. A binary-side command: it runs mmdebstrap and chroots.

use anyhow::{Context, Result, bail, ensure};
use kubemint::inputs::base::{self, Base};
use kubemint::inputs::lock::{self, Lock};
use kubemint::inputs::store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct BaseArgs {
    /// The base to make: a definition in images/bases/ (e.g. debian-trixie)
    pub name: String,
    /// The Debian mirror (default: the one this machine's apt uses)
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Make it into the store without recording it in vendor/releases.toml
    #[arg(long)]
    pub no_pin: bool,
    /// Do not make it: store and pin this base tarball, made by `cargo xtask base` elsewhere
    /// (no root, no mirror needed)
    #[arg(long, value_name = "PATH", conflicts_with = "mirror")]
    pub file: Option<PathBuf>,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// What `base` made.
#[derive(serde::Serialize)]
pub struct Made {
    pub name: String,
    pub sha512: String,
    pub size: u64,
    pub store: PathBuf,
    pub recipe: String,
    /// `added`, `replaced (was <sha512>)`, `unchanged`, or `not pinned`.
    pub pinned: String,
}

/// The name index the store keeps of bases made on this machine: `<store>/bases/<name>` holds
/// the sha512 of the newest, so that a checkout that has not pinned it (the tests, CI) can
/// find it.
pub fn index(store: &Store, name: &str) -> PathBuf {
    store.write.join("bases").join(name)
}

/// The Debian mirror this machine's apt uses.
fn host_mirror() -> Option<String> {
    let sources = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok();
    if let Some(url) = sources.as_deref().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("URIs:"))
            .and_then(|u| u.split_whitespace().next())
    }) {
        return Some(url.to_owned());
    }
    let list = std::fs::read_to_string("/etc/apt/sources.list").ok()?;
    list.lines()
        .filter(|l| l.starts_with("deb "))
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http")))
        .map(str::to_owned)
}

/// A shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn run(root: &Path, store: &Store, args: &BaseArgs) -> Result<Made> {
    let base = Base::load(&root.join("images"), &args.name)?;
    let write_dir = store.write.join("sha512");
    std::fs::create_dir_all(&write_dir).with_context(|| write_dir.display().to_string())?;
    if let Some(file) = &args.file {
        return adopt(root, store, args, base, file, &write_dir);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "making a base needs root (mmdebstrap --mode=root, chroot): run `sudo -E env \"PATH=$PATH\" cargo xtask base {}`",
        args.name
    );
    let Some(mirror) = args.mirror.clone().or_else(host_mirror) else {
        bail!("no Debian mirror: pass --mirror URL (this machine's apt names none)");
    };
    let def = &base.definition;
    let version = def.version;
    let usr_label = base::usr_label(version);
    let cmdline = base.cmdline();
    let files = base.dir.join("files");
    let dracut: String = def.dracut.iter().map(|l| format!("{l}\n")).collect();
    let release = format!(
        "KUBEMINT_BASE_NAME={}\nKUBEMINT_BASE_VERSION={version}\nUSR_PARTLABEL={usr_label}\nUKI=/{}\nCMDLINE={}\n",
        args.name,
        base::UKI,
        quote(&cmdline)
    );
    let work = tempfile::Builder::new()
        .prefix(".base.")
        .tempdir_in(&write_dir)
        .context("cannot make a work directory in the store")?;
    let tarball = work.path().join("base.tar");
    let conf = work.path().join("dracut.conf");
    std::fs::write(&conf, dracut)?;
    let release_file = work.path().join("base-release");
    std::fs::write(&release_file, release)?;
    let hooks = [
        // Before the kernel is installed, so its initrd is made by this configuration.
        (
            "--essential-hook",
            format!(
                "mkdir -p \"$1/etc/dracut.conf.d\" && cp {} \"$1/etc/dracut.conf.d/10-kubemint.conf\"",
                quote(&conf.display().to_string())
            ),
        ),
        // No host name or resolver of the building machine in the image, mode 0644 whatever
        // the umask.
        (
            "--customize-hook",
            r#": > "$1/etc/hostname"; chmod 0644 "$1/etc/hostname"; rm -f "$1/etc/resolv.conf"; : > "$1/etc/resolv.conf"; chmod 0644 "$1/etc/resolv.conf""#.to_owned(),
        ),
        // The definition's files, as they are in the checkout (modes and links kept).
        (
            "--customize-hook",
            format!("cp -a {}/. \"$1/\"", quote(&files.display().to_string())),
        ),
        (
            "--customize-hook",
            format!(
                "printf 'IMAGE_ID=kubemint-base\\nIMAGE_VERSION=%s\\n' {version} >> \"$1/usr/lib/os-release\" && cp {} \"$1/{}\"",
                quote(&release_file.display().to_string()),
                base::BASE_RELEASE
            ),
        ),
        // The initrd, then the unified kernel image, by the base's own dracut and ukify.
        (
            "--customize-hook",
            format!(
                "K=$(ls \"$1/boot\" | sed -n 's/^vmlinuz-//p') && chroot \"$1\" dracut --force --kver \"$K\" \"/boot/initrd.img-$K\" && chroot \"$1\" env SOURCE_DATE_EPOCH=1 ukify build --linux \"/boot/vmlinuz-$K\" --initrd \"/boot/initrd.img-$K\" --uname \"$K\" --os-release @/usr/lib/os-release --cmdline {} --output /{}",
                quote(&cmdline),
                base::UKI
            ),
        ),
        // The base's /etc, kept in /usr: the state partition's /etc at first boot. No
        // machine-id (each machine makes its own), no trace of mmdebstrap.
        (
            "--customize-hook",
            r#"rm -rf "$1/usr/share/factory/etc" && mkdir -p "$1/usr/share/factory" && cp -a "$1/etc" "$1/usr/share/factory/etc" && : > "$1/usr/share/factory/etc/machine-id" && rm -f "$1/usr/share/factory/etc/apt/apt.conf.d/00mmdebstrap""#.to_owned(),
        ),
    ];
    eprintln!(
        "cargo xtask base {}: mmdebstrap {} from {mirror} (about 2 minutes)",
        args.name, def.suite
    );
    let mut cmd = Command::new("mmdebstrap");
    cmd.args([
        "--variant=minbase",
        "--mode=root",
        "--format=tar",
        "--quiet",
    ])
    .arg(format!("--include={}", def.packages.join(",")));
    for (flag, hook) in &hooks {
        cmd.arg(format!("{flag}={hook}"));
    }
    cmd.arg(&def.suite)
        .arg(&tarball)
        .arg(&mirror)
        .env("SOURCE_DATE_EPOCH", "1")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("TZ");
    let status = cmd
        .status()
        .context("cannot run mmdebstrap: install it (apt-get install mmdebstrap)")?;
    ensure!(status.success(), "mmdebstrap failed ({status})");

    let (sha512, size) = kubemint::hash::sha512_file(&tarball)?;
    let stored = store.path_for(&sha512);
    std::fs::rename(&tarball, &stored).with_context(|| stored.display().to_string())?;
    let source = format!(
        "made by `cargo xtask base {}` from {mirror} ({} {})",
        args.name, def.suite, def.description
    );
    record(root, store, args, base, sha512, size, stored, source)
}

/// `--file`: a base made elsewhere, checked to be one (its `base-release` names this base),
/// copied into the store under its sha512 and pinned.
fn adopt(
    root: &Path,
    store: &Store,
    args: &BaseArgs,
    base: Base,
    file: &Path,
    write_dir: &Path,
) -> Result<Made> {
    let (sha512, size) =
        kubemint::hash::sha512_file(file).with_context(|| file.display().to_string())?;
    let mut archive =
        tar::Archive::new(std::fs::File::open(file).with_context(|| file.display().to_string())?);
    let wanted = base::BASE_RELEASE.trim_start_matches('/');
    let mut named = None;
    for entry in archive
        .entries()
        .with_context(|| format!("{}: not a tar archive", file.display()))?
    {
        let mut entry = entry.with_context(|| format!("{}: not a tar archive", file.display()))?;
        let path = entry.path()?.into_owned();
        if path.to_string_lossy().trim_start_matches("./") == wanted {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text)?;
            named = text
                .lines()
                .find_map(|l| l.strip_prefix("KUBEMINT_BASE_NAME="))
                .map(str::to_owned);
            break;
        }
    }
    match named {
        Some(n) if n == args.name => {}
        Some(n) => bail!(
            "{}: this is base {n:?}, not {:?} ({wanted} says so)",
            file.display(),
            args.name
        ),
        None => bail!(
            "{}: not a base made by `cargo xtask base` (no {wanted} naming it)",
            file.display()
        ),
    }
    let stored = store.path_for(&sha512);
    if !stored.exists() {
        let tmp = tempfile::NamedTempFile::new_in(write_dir)?;
        std::fs::copy(file, tmp.path()).with_context(|| file.display().to_string())?;
        tmp.persist(&stored)
            .with_context(|| stored.display().to_string())?;
    }
    let source = format!(
        "pinned from {} by `cargo xtask base {} --file`",
        file.display(),
        args.name
    );
    record(root, store, args, base, sha512, size, stored, source)
}

/// Writes the store's name index and, unless `--no-pin`, the lock's `[[base]]` entry.
#[allow(clippy::too_many_arguments)]
fn record(
    root: &Path,
    store: &Store,
    args: &BaseArgs,
    base: Base,
    sha512: String,
    size: u64,
    stored: PathBuf,
    source: String,
) -> Result<Made> {
    let idx = index(store, &args.name);
    std::fs::create_dir_all(idx.parent().unwrap())?;
    std::fs::write(&idx, format!("{sha512}\n"))?;
    let pinned = if args.no_pin {
        "not pinned".to_owned()
    } else {
        let vendor = root.join("vendor");
        let mut lock = Lock::load(&vendor)?;
        let before = lock.base(&args.name).map(|b| b.sha512.clone());
        lock.upsert_base(lock::Base {
            name: args.name.clone(),
            file: format!("{}.tar", args.name),
            sha512: sha512.clone(),
            size: Some(size),
            recipe: Some(base.recipe.clone()),
            source: Some(source),
        });
        lock.save(&vendor)?;
        match before {
            None => "added".to_owned(),
            Some(b) if b == sha512 => "unchanged".to_owned(),
            Some(b) => format!("replaced (was {b})"),
        }
    };
    Ok(Made {
        name: args.name.clone(),
        sha512,
        size,
        store: stored,
        recipe: base.recipe,
        pinned,
    })
}
