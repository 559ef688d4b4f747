//! `cargo xtask test`: the test suite, as README gives it and `.ci/run` calls it. The tests
//! judge outputs with the tools users have (shellcheck, systemd, skopeo, umoci, podman,
//! squashfs-tools, …), so the suite first makes sure every one is there: run as root on Debian
//! it installs what is missing; otherwise it stops before running anything, with one message
//! naming every missing tool and the command that installs them.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Never install anything; only say what is missing
    #[arg(long)]
    no_install: bool,
    /// Only check (and install) the tools; run no test
    #[arg(long)]
    tools_only: bool,
    /// Passed to `cargo test` (e.g. a test name filter)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CARGO_TEST_ARGS"
    )]
    args: Vec<String>,
}

/// A command the tests run, the Debian package that ships it, and what it judges.
struct Tool {
    command: &'static str,
    package: &'static str,
    why: &'static str,
}

/// Every tool the suite needs beyond a Debian base system and the Rust toolchain.
const TOOLS: &[Tool] = &[
    Tool {
        command: "shellcheck",
        package: "shellcheck",
        why: "the installer must pass it",
    },
    Tool {
        command: "systemd-analyze",
        package: "systemd",
        why: "verifies every unit",
    },
    Tool {
        command: "systemd-sysusers",
        package: "systemd",
        why: "creates the service user when installing on /",
    },
    Tool {
        command: "systemd-dissect",
        package: "systemd-container",
        why: "judges the sysext, confext and disk images",
    },
    Tool {
        command: "unshare",
        package: "util-linux",
        why: "installs on an overlay of / in a private mount namespace",
    },
    Tool {
        command: "skopeo",
        package: "skopeo",
        why: "judges the OCI layout and copies it to a registry",
    },
    Tool {
        command: "umoci",
        package: "umoci",
        why: "unpacks the OCI image",
    },
    Tool {
        command: "podman",
        package: "podman",
        why: "loads the OCI archive",
    },
    Tool {
        command: "docker-registry",
        package: "docker-registry",
        why: "a registry on loopback to push to",
    },
    Tool {
        command: "unsquashfs",
        package: "squashfs-tools",
        why: "reads the squashfs images",
    },
    Tool {
        command: "mksquashfs",
        package: "squashfs-tools",
        why: "the benchmark's shell baseline (its tests)",
    },
    Tool {
        command: "getfattr",
        package: "attr",
        why: "reads the extended attributes unsquashfs extracts",
    },
    Tool {
        command: "sfdisk",
        package: "fdisk",
        why: "reads the GPT disk images",
    },
    Tool {
        command: "sgdisk",
        package: "gdisk",
        why: "verifies the GPT disk images",
    },
    Tool {
        command: "strace",
        package: "strace",
        why: "kills builds at each rename (the safety tests)",
    },
    Tool {
        command: "openssl",
        package: "openssl",
        why: "makes keys and certificates (the secrets scan, dev-secrets) and serves the stand-ins' TLS",
    },
    Tool {
        command: "systemd-notify",
        package: "systemd",
        why: "the apiserver stand-in tells systemd it is ready",
    },
    Tool {
        command: "setpriv",
        package: "util-linux",
        why: "runs the stand-ins as an unprivileged user",
    },
    Tool {
        command: "qemu-system-x86_64",
        package: "qemu-system-x86",
        why: "boots the bootable disks (the boot tests, `cargo xtask vm`)",
    },
    Tool {
        command: "/usr/share/OVMF/OVMF_CODE_4M.fd",
        package: "ovmf",
        why: "the UEFI firmware the bootable disks boot with",
    },
    Tool {
        command: "mcopy",
        package: "mtools",
        why: "reads the bootable disk's ESP (FAT32) without mounting it",
    },
    Tool {
        command: "mmdebstrap",
        package: "mmdebstrap",
        why: "makes the base the bootable disks are built from (`cargo xtask base`)",
    },
    Tool {
        command: "gpg",
        package: "gpg",
        why: "signs SHA256SUMS and the provenance (`build-image --sign-key`)",
    },
    Tool {
        command: "gpgv",
        package: "gpgv",
        why: "verifies those signatures",
    },
    Tool {
        command: "curl",
        package: "curl",
        why: "pushes the attached SBOMs and provenance to a registry on loopback",
    },
    Tool {
        command: "kubectl",
        package: "kubernetes-client",
        why: "reads the generated kubeconfigs",
    },
    Tool {
        command: "chromium",
        package: "chromium",
        why: "parses and renders the audit report headless, and screenshots it",
    },
];

/// Where a command is looked for: `PATH`, then the sbin directories a user's PATH often lacks.
fn find(command: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if command.starts_with('/') {
        // A file a package ships, not a command.
        return Path::new(command).is_file().then(|| command.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(command))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn missing() -> Vec<&'static Tool> {
    TOOLS.iter().filter(|t| find(t.command).is_none()).collect()
}

fn packages(tools: &[&Tool]) -> Vec<&'static str> {
    let mut p: Vec<&str> = tools.iter().map(|t| t.package).collect();
    p.sort_unstable();
    p.dedup();
    p
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `apt-get -o OPT… ARGS…`, non-interactive; an error unless it succeeds.
fn apt_get(opts: &[String], args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("apt-get");
    for o in opts {
        cmd.args(["-o", o]);
    }
    let status = cmd
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    anyhow::ensure!(
        status.success(),
        "apt-get {} failed ({status})",
        args.join(" ")
    );
    Ok(())
}

/// Installs `tools`' packages with apt-get (as root, on Debian).
fn install(tools: &[&Tool]) -> Result<()> {
    let packages = packages(tools);
    eprintln!("cargo xtask test: installing {}", packages.join(" "));
    let apt = |args: &[&str]| apt_get(&[], args);
    apt(&["update", "-q"])?;
    let bookworm = std::fs::read_to_string("/etc/os-release")
        .is_ok_and(|r| r.lines().any(|l| l == "VERSION_CODENAME=bookworm"));
    let (backported, plain): (Vec<&str>, Vec<&str>) = packages
        .into_iter()
        .partition(|p| bookworm && *p == "qemu-system-x86");
    if !plain.is_empty() {
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(plain);
        apt(&args)?;
    }
    if !backported.is_empty() {
        qemu_from_backports()?;
    }
    Ok(())
}

/// On bookworm, QEMU from bookworm-backports: bookworm's 7.2 conflicts with the backported
/// qemu-utils these machines have, and is older than the UEFI boot needs. A private sources
/// list, so that nothing in the machine's apt configuration changes.
fn qemu_from_backports() -> Result<()> {
    let sources =
        std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    let mirror = sources
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|u| u.split_whitespace().next())
        .unwrap_or("http://deb.debian.org/debian")
        .to_owned();
    let dir = tempfile::tempdir().context("cannot make a directory for apt")?;
    let d = dir.path();
    std::fs::create_dir_all(d.join("lists/partial"))?;
    std::fs::create_dir_all(d.join("archives/partial"))?;
    let list: String = ["bookworm", "bookworm-updates", "bookworm-backports"]
        .iter()
        .map(|s| {
            format!(
                "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {s} main\n"
            )
        })
        .collect();
    std::fs::write(d.join("sources.list"), list)?;
    let opts = [
        format!("Dir::Etc::sourcelist={}", d.join("sources.list").display()),
        "Dir::Etc::sourceparts=-".to_owned(),
        format!("Dir::State::lists={}", d.join("lists").display()),
        format!("Dir::Cache::archives={}", d.join("archives").display()),
    ];
    let apt = |args: &[&str]| apt_get(&opts, args);
    eprintln!("cargo xtask test: installing qemu-system-x86 from bookworm-backports");
    apt(&["update", "-q"])?;
    apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "qemu-system-x86/bookworm-backports",
        "qemu-system-common/bookworm-backports",
        "qemu-system-data/bookworm-backports",
        "seabios/bookworm-backports",
        "libbrlapi0.8/bookworm-backports",
    ])
}

/// The Python validators of the attestations (tests/it/attest.rs), pinned, in a virtual
/// environment of the suite's own under `target/`.
const PYTHON_PACKAGES: &[&str] = &[
    "spdx-tools==0.8.5",
    "cyclonedx-python-lib[json-validation]==11.12.0",
    "in-toto-attestation==0.9.3",
    "jsonschema==4.26.0",
];
/// How the suite tells the attestation tests which Python has them.
const PYTHON_ENV: &str = "KUBEMINT_TEST_PYTHON";

/// The virtual environment with [`PYTHON_PACKAGES`], made (`python3 -m venv`, then pip from
/// PyPI) when it is missing or holds other versions; used as it is when present, so a machine
/// that has it needs no network. Returns its python.
fn ensure_python(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target").join("test-python");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("kubemint-packages.txt");
    let wanted = PYTHON_PACKAGES.join("\n") + "\n";
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) && python.is_file() {
        return Ok(python);
    }
    eprintln!(
        "cargo xtask test: installing the attestation validators into {}",
        venv.display()
    );
    let venv_ok = || -> Result<bool> {
        Ok(Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .context("cannot run python3")?
            .success())
    };
    if !venv_ok()? {
        anyhow::ensure!(
            is_root() && find("apt-get").is_some(),
            "`python3 -m venv` failed: install python3-venv"
        );
        apt_get(
            &[],
            &[
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "python3-venv",
            ],
        )?;
        anyhow::ensure!(venv_ok()?, "`python3 -m venv {}` failed", venv.display());
    }
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .args(PYTHON_PACKAGES)
        .status()
        .context("cannot run pip")?;
    anyhow::ensure!(
        status.success(),
        "pip could not install {} (PyPI must be reachable once)",
        PYTHON_PACKAGES.join(" ")
    );
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// The base the project's profiles name; the boot tests build bootable disks from it.
const BASE: &str = "debian-trixie";
/// How the suite tells the boot tests where the base tarball is.
const BASE_ENV: &str = "KUBEMINT_TEST_BASE";

/// The base tarball in the store, made first (mmdebstrap from the Debian mirror, about 2
/// minutes, once per machine) when the store has none. The boot tests pin it in their own
/// temporary projects: a base is reproducible only within one mirror state, so the checkout's
/// lock does not pin one for everybody.
fn ensure_base(root: &Path) -> Result<PathBuf> {
    let find = || {
        let stores = crate::stores(root, None);
        let index = crate::base::index(&stores.bases, BASE);
        let sha512 = std::fs::read_to_string(index).ok()?;
        stores.bases.find(sha512.trim())
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    eprintln!("cargo xtask test: no {BASE} base in the store; making it (once per machine)");
    let exe = std::env::current_exe().context("cannot find the xtask binary")?;
    let status = Command::new(exe)
        .arg("-C")
        .arg(root)
        .args(["base", BASE, "--no-pin"])
        .status()
        .context("cannot run `xtask base`")?;
    anyhow::ensure!(
        status.success(),
        "`cargo xtask base {BASE} --no-pin` failed ({status}); the boot tests need it"
    );
    find().with_context(|| format!("`cargo xtask base {BASE}` left no base in the store"))
}

pub fn run(root: &Path, args: &TestArgs) -> Result<ExitCode> {
    let mut lacking = missing();
    if !lacking.is_empty() && !args.no_install && is_root() && find("apt-get").is_some() {
        install(&lacking)?;
        lacking = missing();
    }
    if !lacking.is_empty() {
        let mut msg = String::from("error: the test suite needs tools this machine lacks:\n");
        for t in &lacking {
            msg.push_str(&format!(
                "  {} (Debian package {}): {}\n",
                t.command, t.package, t.why
            ));
        }
        msg.push_str(&format!(
            "install them with:\n  sudo apt-get install -y --no-install-recommends {}\n\
             or let the suite do it (it runs as root anyway):\n  sudo -E env \"PATH=$PATH\" cargo xtask test\n\
             nothing was run.",
            packages(&lacking).join(" ")
        ));
        eprintln!("{msg}");
        return Ok(ExitCode::from(2));
    }
    if !is_root() {
        eprintln!(
            "error: the tests run as root: they check that files are owned by root, unpack images \
             with umoci, attach loop devices and chroot into an overlay of /.\n  \
             sudo -E env \"PATH=$PATH\" cargo xtask test\nnothing was run."
        );
        return Ok(ExitCode::from(2));
    }
    if args.tools_only {
        ensure_python(root)?;
        eprintln!("cargo xtask test: every tool the suite needs is installed");
        return Ok(ExitCode::SUCCESS);
    }
    let base = ensure_base(root)?;
    let python = ensure_python(root)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .env(BASE_ENV, &base)
        .env(PYTHON_ENV, &python)
        .args(["test", "--workspace", "--locked"])
        .args(&args.args)
        .current_dir(root)
        .status()
        .context("cannot run cargo test")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_names_its_package_once() {
        let mut commands: Vec<&str> = TOOLS.iter().map(|t| t.command).collect();
        commands.sort_unstable();
        commands.dedup();
        assert_eq!(commands.len(), TOOLS.len());
        assert!(
            TOOLS
                .iter()
                .all(|t| !t.package.is_empty() && !t.why.is_empty())
        );
        assert_eq!(packages(&[&TOOLS[1], &TOOLS[2]]), ["systemd"]);
    }
}
