//! Optional GPG signatures: with `build-image --sign-key KEY` (an armored OpenPGP secret key,
//! without a passphrase) the build writes detached binary signatures `<file>.gpg` of
//! `provenance.intoto.json` and of every `SHA256SUMS` (the top-level one and those in
//! `extensions/` and `confexts/`). GPG, because `SHA256SUMS.gpg` beside `SHA256SUMS` is what
//! systemd-sysupdate verifies on an update server, and `gpgv` checks it anywhere.
//!
//! GPG runs with a home of its own (a scratch directory, removed after), imports the key, and
//! signs at a faked system time: the epoch, or the key's creation time when the key is newer
//! (a signature older than its key does not verify). RSA and Ed25519 signatures are then the
//! same bytes on every build; (EC)DSA ones are not (they draw a random nonce). Key material is
//! never printed: gpg's output is read, and only its error lines are shown, on failure.
//!
//! [`verify`] is the check `verify --trusted-key` runs: `gpgv` against a keyring made from an
//! armored (public or secret) key file.

use crate::util::epoch::Epoch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{tool} could not be run ({source}); install it (Debian: apt-get install gpg gpgv)")]
    Missing {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("{key}: gpg could not import the key: {stderr}")]
    Import { key: PathBuf, stderr: String },
    #[error(
        "{key}: no secret key to sign with (give an armored secret key, e.g. `gpg --armor --export-secret-keys ID > key.asc`)"
    )]
    NoSecretKey { key: PathBuf },
    #[error(
        "{file}: gpg could not sign it (a key with a passphrase cannot sign unattended): {stderr}"
    )]
    Sign { file: PathBuf, stderr: String },
    #[error("{file}: the signature {signature} does not verify with {key}: {stderr}")]
    Bad {
        file: PathBuf,
        signature: PathBuf,
        key: PathBuf,
        stderr: String,
    },
}

fn run(cmd: &mut Command, tool: &'static str) -> Result<Output, SignError> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|source| SignError::Missing { tool, source })
}

/// gpg's error lines, without anything that looks like key material (gpg prints none, but
/// nothing it says about a key is passed on beyond its `gpg:` lines).
fn errors(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("gpg:") || l.starts_with("gpgv:"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Makes `dir` readable by its owner only, as gpg wants its home.
fn private(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// gpg-agent's sockets live in its home and a Unix socket's path has at most 107 bytes: a home
/// with a longer path than this is made in `/tmp` instead (kept only while it is used).
const LONGEST_HOME: usize = 80;

/// `wanted`, or a short directory in `/tmp` when `wanted`'s path is too long for gpg-agent's
/// sockets; the second value keeps the latter alive.
fn short_home(wanted: &Path) -> Result<(PathBuf, Option<tempfile::TempDir>), SignError> {
    if wanted.as_os_str().len() <= LONGEST_HOME {
        return Ok((wanted.to_owned(), None));
    }
    let tmp = tempfile::Builder::new()
        .prefix("kubemint-gpg.")
        .tempdir_in("/tmp")
        .map_err(|source| SignError::Io {
            path: PathBuf::from("/tmp"),
            source,
        })?;
    Ok((tmp.path().join("home"), Some(tmp)))
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.arg("--homedir")
        .arg(home)
        .args([
            "--batch",
            "--no-tty",
            "--no-options",
            "--no-auto-key-locate",
        ])
        .env_remove("GNUPGHOME");
    c
}

/// A key imported into a home of its own, ready to sign; the agent it started is stopped and
/// the home removed when dropped.
pub struct Signer {
    home: PathBuf,
    /// Holds the short home in `/tmp`, when `home` is there.
    _short: Option<tempfile::TempDir>,
    key: PathBuf,
    /// When signatures say they were made.
    time: u64,
}

impl Signer {
    /// Imports the armored secret key `key` into `home` (a directory that must not exist,
    /// removed when the signer is dropped; one in `/tmp` instead when its path is too long for
    /// gpg-agent's sockets).
    pub fn new(key: &Path, home: &Path, epoch: Epoch) -> Result<Signer, SignError> {
        let (home, short) = short_home(home)?;
        let home = home.as_path();
        std::fs::create_dir(home).map_err(|source| SignError::Io {
            path: home.to_owned(),
            source,
        })?;
        private(home, 0o700).map_err(|source| SignError::Io {
            path: home.to_owned(),
            source,
        })?;
        let mut signer = Signer {
            home: home.to_owned(),
            _short: short,
            key: key.to_owned(),
            time: epoch.seconds(),
        };
        let out = run(gpg(home).arg("--import").arg(key), "gpg")?;
        if !out.status.success() {
            return Err(SignError::Import {
                key: key.to_owned(),
                stderr: errors(&out),
            });
        }
        let out = run(
            gpg(home).args(["--with-colons", "--list-secret-keys"]),
            "gpg",
        )?;
        let listing = String::from_utf8_lossy(&out.stdout);
        let created: Vec<u64> = listing
            .lines()
            .filter(|l| l.starts_with("sec:") || l.starts_with("ssb:"))
            .filter_map(|l| l.split(':').nth(5)?.parse().ok())
            .collect();
        let Some(newest) = created.iter().max() else {
            return Err(SignError::NoSecretKey {
                key: key.to_owned(),
            });
        };
        signer.time = signer.time.max(*newest);
        Ok(signer)
    }

    /// Writes `<file>.gpg`, a detached binary signature of `file`; returns its path.
    pub fn sign(&self, file: &Path) -> Result<PathBuf, SignError> {
        let mut sig = file.as_os_str().to_owned();
        sig.push(".gpg");
        let sig = PathBuf::from(sig);
        let out = run(
            gpg(&self.home)
                .arg(format!("--faked-system-time={}!", self.time))
                .args(["--yes", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(["--digest-algo", "SHA256", "--detach-sign", "--output"])
                .arg(&sig)
                .arg(file),
            "gpg",
        )?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&sig);
            return Err(SignError::Sign {
                file: file.to_owned(),
                stderr: errors(&out),
            });
        }
        Ok(sig)
    }

    /// The key file this signer was made from.
    pub fn key(&self) -> &Path {
        &self.key
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Checks that `signature` is a good signature of `file` by the key in `trusted_key` (an
/// armored or binary OpenPGP key file, public or secret), with `gpgv`. `scratch` is a directory
/// that must not exist (removed after; one in `/tmp` instead when its path is too long for
/// gpg-agent's sockets). For `verify --trusted-key`.
pub fn verify(
    file: &Path,
    signature: &Path,
    trusted_key: &Path,
    scratch: &Path,
) -> Result<(), SignError> {
    let (scratch, _short) = short_home(scratch)?;
    let scratch = scratch.as_path();
    std::fs::create_dir(scratch).map_err(|source| SignError::Io {
        path: scratch.to_owned(),
        source,
    })?;
    let result = (|| {
        private(scratch, 0o700).map_err(|source| SignError::Io {
            path: scratch.to_owned(),
            source,
        })?;
        let home = scratch.join("home");
        std::fs::create_dir(&home).map_err(|source| SignError::Io {
            path: home.clone(),
            source,
        })?;
        private(&home, 0o700).map_err(|source| SignError::Io {
            path: home.clone(),
            source,
        })?;
        let out = run(gpg(&home).arg("--import").arg(trusted_key), "gpg")?;
        if !out.status.success() {
            return Err(SignError::Import {
                key: trusted_key.to_owned(),
                stderr: errors(&out),
            });
        }
        let keyring = scratch.join("trusted.gpg");
        let out = run(
            gpg(&home).arg("--output").arg(&keyring).arg("--export"),
            "gpg",
        )?;
        if !out.status.success() {
            return Err(SignError::Import {
                key: trusted_key.to_owned(),
                stderr: errors(&out),
            });
        }
        let out = run(
            Command::new("gpgv")
                .arg("--homedir")
                .arg(&home)
                .arg("--keyring")
                .arg(&keyring)
                .arg(signature)
                .arg(file),
            "gpgv",
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(SignError::Bad {
                file: file.to_owned(),
                signature: signature.to_owned(),
                key: trusted_key.to_owned(),
                stderr: errors(&out),
            })
        }
    })();
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(scratch.join("home"))
        .args(["--kill", "all"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(scratch);
    result
}
