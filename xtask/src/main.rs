//! `cargo xtask`: parses the command line, reads the environment and the clock if ever, and
//! hands plain values to the library. Everything else lives in `kubemint::*`.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use kubemint::progress::Progress;
use kubemint::{build, fetch, pin, summary};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// kubemint: Kubernetes control-plane machines built as reproducible, hash-pinned images.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    propagate_version = true
)]
struct Cli {
    /// The kubemint checkout (default: found upwards from the current directory)
    #[arg(short = 'C', long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build each profile's image: payload, installer, OCI image, sysext/confext/disk images, manifest.json
    BuildImage(BuildImage),
    /// Check profiles against the release they target: flags, config versions, known pitfalls
    Check(CheckArgs),
    /// Print the resolved plan of a profile (what its tree will hold) as JSON
    Plan(PlanArgs),
    /// Download pinned releases into vendor/store, verifying sha512 while streaming
    Fetch(FetchArgs),
    /// Record a local tarball in the lock (vendor/releases.toml) and copy it into the store
    Pin(PinArgs),
    /// Time a full-size build against a shell baseline (tar, gzip -n, sha256sum)
    Bench(kubemint::bench::Options),
}

/// Which profiles a command works on.
#[derive(Args, Debug)]
struct Selection {
    /// Profiles by name (<profiles directory>/<NAME>.toml)
    #[arg(
        value_name = "PROFILE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    profiles: Vec<String>,
    /// Every profile in the profiles directory (those no other profile inherits)
    #[arg(long)]
    all: bool,
    /// The profiles directory (default profiles/), e.g. profiles/upgrade
    #[arg(long = "profiles", value_name = "DIR")]
    profiles_dir: Option<PathBuf>,
}

impl Selection {
    /// The profiles directory and the profile names, `--all` expanded.
    fn resolve(self, root: &Path) -> Result<(PathBuf, Vec<String>)> {
        let dir = root.join(
            self.profiles_dir
                .unwrap_or_else(|| PathBuf::from("profiles")),
        );
        let names = if self.all {
            kubemint::profile::list(&dir)?
        } else {
            self.profiles
        };
        Ok((dir, names))
    }
}

#[derive(Args, Debug)]
struct BuildImage {
    #[command(flatten)]
    selection: Selection,
    /// Build against this release from the lock instead of the profile's
    #[arg(long, value_name = "NAME")]
    release: Option<String>,
    /// Build from a generated stand-in release (tiny fake binaries): offline, not a real master
    #[arg(long)]
    sample: bool,
    /// Output root (default target/images, or target/images/sample with --sample)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Timestamp of every file, in seconds since 1970 (default: SOURCE_DATE_EPOCH, else the profile's epoch)
    #[arg(long, value_name = "SECONDS")]
    epoch: Option<u64>,
    /// How OCI layers are stored: gzip (default), or none (digest = diff_id, ~3x larger)
    #[arg(long, value_enum, default_value_t, value_name = "HOW")]
    layer_compression: kubemint::pack::oci::LayerCompression,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    selection: Selection,
    /// Check against this release instead of the profiles' own: what breaks if they move to it
    #[arg(long, value_name = "NAME")]
    release: Option<String>,
    /// Print the findings as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// The profile to resolve
    profile: String,
    /// Resolve against this release from the lock instead of the profile's
    #[arg(long, value_name = "NAME")]
    release: Option<String>,
}

#[derive(Args, Debug)]
struct FetchArgs {
    /// Releases to fetch (default: every release in the lock)
    #[arg(value_name = "RELEASE")]
    releases: Vec<String>,
    /// Print what was fetched as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct PinArgs {
    /// Release name to record, e.g. v1.14.2 or my-patched-1.14
    release: String,
    /// The local kubernetes-server tarball
    #[arg(long, value_name = "PATH")]
    file: PathBuf,
    /// A URL to fetch it from later (repeatable; default: keep the lock's)
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// Allow changing the digest of a release that is already pinned
    #[arg(long)]
    replace: bool,
    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let root = match &cli.project {
        Some(p) => cwd.join(p),
        None => find_project(&cwd)?,
    };
    let progress = if std::io::stderr().is_terminal() {
        Progress::stderr()
    } else {
        Progress::hidden()
    };
    match cli.command {
        Command::BuildImage(args) => {
            let (profiles_dir, profiles) = args.selection.resolve(&root)?;
            let epoch = match args.epoch {
                Some(e) => Some(e),
                None => source_date_epoch()?,
            };
            let opts = build::Options {
                root: root.clone(),
                profiles_dir,
                profiles,
                release: args.release,
                sample: args.sample,
                out: args.out.map(|o| cwd.join(o)),
                epoch,
                layer_compression: args.layer_compression,
            };
            let build::Outcome { built, checks } = build::build(&opts, &progress)?;
            for warning in checks
                .findings
                .iter()
                .filter(|f| f.severity == kubemint::check::Severity::Warning)
            {
                eprintln!("{warning}");
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&built)?);
            } else {
                print!("{}", summary::table(&built, &cwd));
            }
        }
        Command::Check(args) => {
            let (profiles_dir, profiles) = args.selection.resolve(&root)?;
            let opts = kubemint::check::Options {
                root: root.clone(),
                profiles_dir,
                profiles,
                release: args.release,
            };
            let report = kubemint::check::check(&opts)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            if report.errors() > 0 {
                bail!("{} error(s) found", report.errors());
            }
        }
        Command::Plan(args) => {
            let plan = kubemint::plan::resolve(&root, &args.profile, args.release.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&plan)?);
        }
        Command::Fetch(args) => {
            let fetched = fetch::fetch(&root, &args.releases, &progress)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&fetched)?);
            } else {
                for f in &fetched {
                    let how = f
                        .url
                        .as_deref()
                        .map(|u| format!(" from {u}"))
                        .unwrap_or_default();
                    println!(
                        "{}: {}{how} ({} bytes) -> {}",
                        f.release,
                        f.status,
                        f.size,
                        f.store.display()
                    );
                }
            }
        }
        Command::Pin(args) => {
            let pinned = pin::pin(
                &pin::Options {
                    root: root.clone(),
                    release: args.release,
                    file: cwd.join(args.file),
                    urls: args.urls,
                    replace: args.replace,
                },
                &progress,
            )?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&pinned)?);
            } else {
                println!(
                    "{}: {} in vendor/releases.toml, sha512 {} ({} bytes) -> {}",
                    pinned.release,
                    pinned.change,
                    pinned.sha512,
                    pinned.size,
                    pinned.store.display()
                );
            }
        }
        Command::Bench(opts) => {
            let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
            let report = kubemint::bench::run(&root, &xtask, &opts, &progress)?;
            print!("{report}");
        }
    }
    Ok(())
}

/// SOURCE_DATE_EPOCH, the reproducible-builds convention, if set.
fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(Some(v.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")
        })?)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => bail!("SOURCE_DATE_EPOCH: {e}"),
    }
}

/// The nearest directory upwards holding `profiles/` and `vendor/`, else the checkout this
/// binary was built from.
fn find_project(cwd: &Path) -> Result<PathBuf> {
    let is_project = |d: &Path| {
        d.join("profiles").is_dir() && d.join("vendor").is_dir() && d.join("images").is_dir()
    };
    if let Some(found) = cwd.ancestors().find(|d| is_project(d)) {
        return Ok(found.to_owned());
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("/"));
    if is_project(built_from) {
        return Ok(built_from.to_owned());
    }
    bail!(
        "no kubemint project here: run inside a checkout (with profiles/, images/ and vendor/) or pass -C DIR"
    )
}
