//! `cargo xtask`: parses the command line, reads the environment (`SOURCE_DATE_EPOCH`, the
//! current directory, whether stderr is a terminal) and hands plain values to the kubemint
//! library, printing what it returns. Every error is printed once, here.

mod audit;
mod base;
mod bench_options;
mod devsecrets;
mod devtest;
mod push;
mod skopeo;
mod vm;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use kubemint::build::{self, summary};
use kubemint::front::check::Severity;
use kubemint::front::{self, EpochOverride, Planned, Request, Selection};
use kubemint::inputs::{fetch, pin};
use kubemint::pack::deflate::Threads;
use kubemint::pack::oci::LayerCompression;
use kubemint::upgrade;
use kubemint::util::progress::Progress;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Where fetched, pinned and made inputs are kept and looked for first (default:
    /// $KUBEMINT_STORE; releases go to vendor/store, bases to ~/.cache/kubemint/store; all three
    /// are searched)
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build each profile's image: payload, installer, OCI image, sysext/confext/disk images, manifest.json
    BuildImage(BuildImage),
    /// Check profiles against the release they target: flags, config versions, known pitfalls
    Check(CheckArgs),
    /// Print the resolved plan of profiles (what each tree will hold), as JSON or text
    Plan(PlanArgs),
    /// The upgrade path to a release, one minor at a time: each hop's findings, edits and cluster steps
    UpgradePlan(UpgradePlanArgs),
    /// Download pinned releases into vendor/store, verifying sha512 while streaming
    Fetch(FetchArgs),
    /// Record a local tarball in the lock (vendor/releases.toml) and copy it into the store
    Pin(PinArgs),
    /// Remove a release from the lock, and its store file when no other entry uses it
    Unpin(UnpinArgs),
    /// Make a base operating system (images/bases/NAME) with mmdebstrap, store and pin it
    Base(base::BaseArgs),
    /// Boot a master's bootable disk in QEMU, deliver its secrets, report its control plane's health
    Vm(vm::VmArgs),
    /// One HTML page showing built masters side by side (flags, secrets, layers, partitions, files)
    Report(ReportArgs),
    /// Time a full-size build against a shell baseline (builds and runs the kubemint-bench binary)
    Bench(bench_options::BenchOptions),
    /// Run the test suite: installs what it needs when run as root, else names what is missing
    Test(devtest::TestArgs),
    /// Write THROWAWAY secrets (CAs, certificates, keys, tokens) for a profile set: tests only
    DevSecrets(devsecrets::DevSecretsArgs),
    /// Verify a root, OCI image, extension or disk image, or output directory against what a profile builds
    Verify(audit::VerifyArgs),
    /// How two masters differ (profiles, output directories or manifests): meaning, files, shared parts
    Diff(audit::DiffArgs),
    /// Build profiles twice under different conditions and compare every output, naming the first differing field
    RebuildCheck(audit::RebuildArgs),
    /// Push a build's OCI image and its attached SBOMs and provenance (skopeo), digests unchanged
    Push(push::PushArgs),
}

/// Which profiles a command works on, and the plans' settings: the front end's request.
#[derive(Args, Debug)]
struct Selected {
    /// Profiles by name (<profiles directory>/<NAME>.toml); a name given twice counts once
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
    /// Use this release (a lock entry's name) instead of each profile's
    #[arg(long, value_name = "NAME")]
    release: Option<String>,
}

impl Selected {
    fn request(
        self,
        root: &Path,
        cwd: &Path,
        sample: bool,
        epoch: Option<EpochOverride>,
    ) -> Request {
        Request {
            root: root.to_owned(),
            profiles_dir: profiles_dir(root, cwd, self.profiles_dir),
            selection: if self.all {
                Selection::All
            } else {
                Selection::Names(self.profiles)
            },
            release: self.release,
            sample,
            epoch,
        }
    }
}

/// The profiles directory `--profiles` names (default `<project>/profiles`).
fn profiles_dir(root: &Path, cwd: &Path, given: Option<PathBuf>) -> PathBuf {
    match given {
        Some(d) if d.is_absolute() => d,
        // A relative --profiles is the project's (profiles/upgrade), or else the caller's.
        Some(d) if root.join(&d).is_dir() => root.join(d),
        Some(d) => cwd.join(d),
        None => root.join("profiles"),
    }
}

#[derive(Args, Debug)]
struct BuildImage {
    #[command(flatten)]
    selected: Selected,
    /// Build from a generated stand-in release (tiny fake binaries): offline, not a real master
    #[arg(long)]
    sample: bool,
    /// Output root (default target/images, or target/images/sample with --sample)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Timestamp of every file, in seconds since 1970 (default: SOURCE_DATE_EPOCH, else the profile's epoch)
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    epoch: Option<i128>,
    /// How OCI layers are stored: gzip (default), or none (digest = diff_id, ~3x larger)
    #[arg(long, value_enum, default_value_t, value_name = "HOW")]
    layer_compression: Compression,
    /// Also show the checks' notes (facts you cannot act on at this release)
    #[arg(short, long)]
    verbose: bool,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Threads that compress (default: every core); the outputs are the same for any number
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Rebuild profiles whose outputs are up to date too
    #[arg(long)]
    force: bool,
    /// Sign SHA256SUMS and the provenance with this armored OpenPGP secret key (no passphrase):
    /// detached signatures `<file>.gpg`, as systemd-sysupdate verifies them
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// TEST ONLY (rebuild-check's own test): every timestamp one second after the epoch the
    /// build would use, as a builder that leaked the clock would
    #[arg(long, hide = true)]
    plant_nondeterminism: bool,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
enum Compression {
    #[default]
    Gzip,
    None,
}

impl From<Compression> for LayerCompression {
    fn from(c: Compression) -> LayerCompression {
        match c {
            Compression::Gzip => LayerCompression::Gzip,
            Compression::None => LayerCompression::None,
        }
    }
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    selected: Selected,
    /// Print the findings as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct PlanArgs {
    #[command(flatten)]
    selected: Selected,
    /// Plan for the generated stand-in release, as `build-image --sample` builds it
    #[arg(long)]
    sample: bool,
    /// Print reviewable text (every rendered file whole) instead of JSON
    #[arg(long)]
    text: bool,
}

#[derive(Args, Debug)]
struct UpgradePlanArgs {
    /// The profile set to upgrade (default profiles/), e.g. profiles/upgrade
    #[arg(long = "profiles", value_name = "DIR")]
    profiles_dir: Option<PathBuf>,
    /// The release to reach, e.g. v1.33.5
    #[arg(long, value_name = "RELEASE")]
    to: String,
    /// Print the plan as JSON on stdout
    #[arg(long)]
    json: bool,
    /// Write the next hop's profile set, every mechanical edit applied, into DIR (new or empty;
    /// a relative DIR is the project's, e.g. profiles/hop-1)
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
    /// With --write: the set of hop N instead of the next (1 is the next)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "write")]
    hop: usize,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Output directories (e.g. target/images/sample/master-1), or output roots standing for
    /// every output directory in them; the masters are shown in this order
    #[arg(value_name = "OUTDIR", required = true)]
    dirs: Vec<PathBuf>,
    /// Include a verify result (`cargo xtask verify --json`'s output, or any JSON document)
    #[arg(long, value_name = "FILE")]
    verify_json: Option<PathBuf>,
    /// Write the page to FILE (default: standard output)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print what was written as JSON on stdout (with -o)
    #[arg(long, requires = "output")]
    json: bool,
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
struct UnpinArgs {
    /// Release name to remove, e.g. my-patched-1.14
    release: String,
    /// Print the result as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct PinArgs {
    /// Release name to record, e.g. v1.14.2 or my-patched-1.14; or a base's name (a definition
    /// in images/bases/, e.g. debian-trixie) to pin a base made elsewhere by `cargo xtask base`
    release: String,
    /// The local kubernetes-server tarball (or base tarball)
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
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            if INTERRUPTED.load(Ordering::Relaxed) {
                // 128 + SIGINT, as a shell reports an interrupted command.
                std::process::ExitCode::from(130)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// An error and its causes, each printed once: a cause whose text the message already holds
/// (the library's errors carry their causes) is not repeated.
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// Set on the first SIGINT or SIGTERM: the work stops at its next read or write, cleans up what
/// it wrote, and exits. A second signal exits at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn interrupted(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) }
    }
}

fn on_interrupt() -> &'static AtomicBool {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe;
        // the sigaction struct is fully initialised (zeroed, then the handler set).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = interrupted as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    &INTERRUPTED
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
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
    let progress = progress.cancelled_by(on_interrupt());
    let stores = stores(&root, cli.store.as_deref().map(|s| cwd.join(s)));
    match cli.command {
        Command::BuildImage(args) => {
            let epoch = match args.epoch {
                Some(e) => Some(EpochOverride {
                    seconds: e,
                    origin: "--epoch".into(),
                }),
                None => source_date_epoch()?,
            };
            let out = args.out.map(|o| cwd.join(o));
            let req = args.selected.request(&root, &cwd, args.sample, epoch);
            let mut planned = front::plan_set(&req)?;
            if args.plant_nondeterminism
                && let Some(first) = planned.masters.first()
            {
                let seconds = i128::from(first.plan.epoch.seconds()) + 1;
                planned = front::plan_set(&Request {
                    epoch: Some(EpochOverride {
                        seconds,
                        origin: "--plant-nondeterminism".into(),
                    }),
                    ..req.clone()
                })?;
            }
            let threshold = if args.verbose {
                Severity::Note
            } else {
                Severity::Warning
            };
            print_findings(&planned, threshold);
            let opts = build::Options {
                root: root.clone(),
                out_root: build::out_root(&root, &req.profiles_dir, args.sample, out.as_deref())?,
                sample: args.sample,
                store: stores.releases.clone(),
                layer_compression: args.layer_compression.into(),
                threads: Threads::new(match args.threads {
                    Some(n) => usize::from(n),
                    None => std::thread::available_parallelism().map_or(1, |n| n.get()),
                }),
                force: args.force,
                sign_key: args.sign_key.map(|k| cwd.join(k)),
            };
            let built = build::build(&planned, &opts, &progress)?;
            // Each note once, with the profiles it concerns.
            let mut notes: Vec<(&str, Vec<&str>)> = Vec::new();
            for b in &built {
                for note in &b.notes {
                    match notes.iter_mut().find(|(n, _)| n == note) {
                        Some((_, profiles)) => profiles.push(&b.profile),
                        None => notes.push((note, vec![&b.profile])),
                    }
                }
            }
            for (note, profiles) in notes {
                eprintln!("note: {}: {note}", profiles.join(", "));
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&built)?);
            } else {
                print!("{}", summary::table(&built, &cwd));
            }
        }
        Command::Check(args) => {
            let req = args.selected.request(&root, &cwd, false, None);
            let report = front::plan_set(&req)?.report;
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
            let req = args.selected.request(&root, &cwd, args.sample, None);
            let planned = front::plan_set(&req)?;
            // A plan holds every rendered file whole: never printed with key material in it.
            let material: Vec<_> = planned
                .report
                .findings
                .iter()
                .filter(|f| kubemint::front::secrets::is_material(f))
                .collect();
            if !material.is_empty() {
                for f in &material {
                    eprintln!("{f}");
                }
                bail!("not printing the plans: they would show the key or token material above");
            }
            let plans: Vec<_> = planned.masters.iter().map(|m| &m.plan).collect();
            if args.text {
                for (i, plan) in plans.iter().enumerate() {
                    if i > 0 {
                        println!();
                    }
                    print!("{}", plan.to_text());
                }
            } else if let [one] = plans.as_slice() {
                // One profile: its plan; several: a list of plans.
                println!("{}", serde_json::to_string_pretty(one)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            }
        }
        Command::UpgradePlan(args) => {
            let profiles_dir = Selected {
                profiles: Vec::new(),
                all: true,
                profiles_dir: args.profiles_dir,
                release: None,
            }
            .request(&root, &cwd, false, None)
            .profiles_dir;
            let plan = upgrade::plan(&upgrade::Request {
                root: root.clone(),
                profiles_dir,
                to: args.to,
            })?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.render());
            }
            if let Some(dir) = args.write {
                // Beside the project's other profile sets, whatever the current directory.
                let dir = root.join(dir);
                let index = args.hop.saturating_sub(1);
                let written = upgrade::write(&plan, index, &dir)?;
                eprintln!(
                    "wrote the profile set of {} into {} ({} files); check it with `cargo xtask check --profiles {} --all`",
                    plan.hops[index].to,
                    dir.display(),
                    written.len(),
                    dir.display()
                );
            }
        }
        Command::Fetch(args) => {
            let fetched = fetch::fetch(&root, &stores.releases, &args.releases, &progress)?;
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
        Command::Pin(args) if root.join("images/bases").join(&args.release).is_dir() => {
            // A base definition's name: the tarball is a base made elsewhere.
            anyhow::ensure!(
                args.urls.is_empty(),
                "{} is a base: a base is made by `cargo xtask base` and shared as a file; it has no URL to fetch it from",
                args.release
            );
            let made = base::run(
                &root,
                &stores.bases,
                &base::BaseArgs {
                    name: args.release,
                    mirror: None,
                    no_pin: false,
                    file: Some(cwd.join(args.file)),
                    json: args.json,
                },
            )?;
            print_base(&made, args.json)?;
        }
        Command::Pin(args) => {
            let pinned = pin::pin(
                &pin::Options {
                    root: root.clone(),
                    store: stores.releases.clone(),
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
        Command::Unpin(args) => {
            let unpinned = pin::unpin(&root, &stores.releases, &args.release)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&unpinned)?);
            } else {
                let store = match &unpinned.removed {
                    Some(p) => format!("removed {}", p.display()),
                    None => "its store file is kept (another entry, or none stored)".to_owned(),
                };
                println!(
                    "{}: removed from vendor/releases.toml (sha512 {}); {store}",
                    unpinned.release, unpinned.sha512
                );
            }
        }
        Command::Base(args) => {
            let made = base::run(&root, &stores.bases, &args)?;
            print_base(&made, args.json)?;
        }
        Command::Vm(args) => {
            let selected = Selected {
                profiles: vec![args.profile.clone()],
                all: false,
                profiles_dir: args.profiles_dir.clone(),
                release: None,
            };
            let req = selected.request(&root, &cwd, args.sample, None);
            let planned = front::plan_set(&req)?;
            let out = args.out.as_ref().map(|o| cwd.join(o));
            let out_root = build::out_root(&root, &req.profiles_dir, args.sample, out.as_deref())?;
            let disk = out_root
                .join(&args.profile)
                .join("boot")
                .join(format!("kubemint-{}.raw", args.profile));
            let (report, kept) = vm::run(&root, &planned, &disk, &args)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", vm::render(&args.profile, &report));
            }
            if let Some(dir) = kept {
                eprintln!("kept the VM's directory: {}", dir.display());
            }
            if report.crashed {
                eprintln!(
                    "vm {}: the power was cut in the middle of the update, as asked; boot the same --machine again to see what comes up",
                    args.profile
                );
                return Ok(std::process::ExitCode::SUCCESS);
            }
            if !report.healthy {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::Report(args) => report(&cwd, &args)?,
        Command::Bench(opts) => return bench(&root, &opts),
        Command::Test(args) => return devtest::run(&root, &args),
        Command::Verify(args) => {
            return audit::verify(
                args,
                &root,
                &cwd,
                source_date_epoch()?,
                stores.releases.clone(),
                &progress,
            );
        }
        Command::Diff(args) => {
            return audit::diff(
                args,
                &root,
                &cwd,
                source_date_epoch()?,
                stores.releases.clone(),
                &progress,
            );
        }
        Command::RebuildCheck(args) => {
            // The store the other commands write to (`--store`, KUBEMINT_STORE, vendor/store).
            let store_dir = stores.releases.write.clone();
            return audit::rebuild_check(args, &root, &cwd, &store_dir, &progress);
        }
        Command::Push(args) => {
            let pushed = push::run(&args, &cwd)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&pushed)?);
            } else {
                print!("{}", push::render(&pushed));
            }
        }
        Command::DevSecrets(args) => {
            let profiles = profiles_dir(&root, &cwd, args.profiles_dir.clone());
            return devsecrets::run(&root, &profiles, &cwd.join(&args.dir), args.json);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `cargo xtask report`: the page of the masters in `args.dirs`, on stdout or into `-o FILE`
/// (written beside it, then renamed: never half a page).
fn report(cwd: &Path, args: &ReportArgs) -> Result<()> {
    use kubemint::report;
    let dirs: Vec<PathBuf> = args.dirs.iter().map(|d| cwd.join(d)).collect();
    let masters = report::read_paths(&dirs)?;
    let verify = args
        .verify_json
        .as_ref()
        .map(|f| report::read_verify(&cwd.join(f)))
        .transpose()?;
    let page = report::render(&masters, verify.as_ref());
    let Some(output) = &args.output else {
        print!("{page}");
        return Ok(());
    };
    let path = cwd.join(output);
    let name = path
        .file_name()
        .with_context(|| format!("-o {}: name a file", output.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, &page).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}", path.display())
    })?;
    let profiles: Vec<&str> = masters
        .iter()
        .map(|m| m.manifest.profile.as_str())
        .collect();
    let sha256 = kubemint::util::hash::sha256_hex(page.as_bytes());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "path": path,
                "profiles": profiles,
                "size": page.len(),
                "sha256": sha256,
                "verify": verify.is_some(),
            }))?
        );
    } else {
        eprintln!(
            "wrote {} ({}; {} bytes, sha256 {sha256})",
            path.display(),
            profiles.join(", "),
            page.len()
        );
    }
    Ok(())
}

/// The checks' findings at `threshold` or worse, on stderr; errors always.
fn print_findings(planned: &Planned, threshold: Severity) {
    for f in planned.report.at_least(threshold) {
        eprintln!("{f}");
    }
}

/// `cargo xtask bench`: builds and runs the kubemint-bench binary of this checkout with cargo
/// (optimized, like `cargo xtask`), handing it the project and this very xtask binary to time.
fn bench(root: &Path, opts: &bench_options::BenchOptions) -> Result<std::process::ExitCode> {
    let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let status = std::process::Command::new(&cargo)
        .args(["run", "--quiet", "--release", "--manifest-path"])
        .arg(&manifest)
        .args(["--bin", "kubemint-bench", "--"])
        .arg("-C")
        .arg(root)
        .arg("--xtask")
        .arg(&xtask)
        .args(opts.to_args())
        .status()
        .with_context(|| format!("cannot run {}", Path::new(&cargo).display()))?;
    Ok(exit_code(status))
}

fn print_base(made: &base::Made, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(made)?);
    } else {
        println!(
            "{}: sha512 {} ({} bytes) -> {}; in vendor/releases.toml: {}",
            made.name,
            made.sha512,
            made.size,
            made.store.display(),
            made.pinned
        );
    }
    Ok(())
}

fn exit_code(status: std::process::ExitStatus) -> std::process::ExitCode {
    match status.code() {
        Some(0) => std::process::ExitCode::SUCCESS,
        Some(c) => std::process::ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => std::process::ExitCode::FAILURE,
    }
}

/// The stores: releases are written to the checkout's vendor/store, bases to the user's cache
/// (shared by every checkout and CI run of the machine), both to --store or $KUBEMINT_STORE
/// when given; every one of them is searched.
struct Stores {
    releases: kubemint::inputs::store::Store,
    bases: kubemint::inputs::store::Store,
}

fn stores(root: &Path, given: Option<PathBuf>) -> Stores {
    use kubemint::inputs::store::Store;
    let given = given.or_else(|| std::env::var_os("KUBEMINT_STORE").map(PathBuf::from));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"))
        .join("kubemint")
        .join("store");
    let project = root.join("vendor").join("store");
    let releases = Store::new(
        given.clone().unwrap_or_else(|| project.clone()),
        [project, cache.clone()],
    );
    let bases = releases.writing_to(given.unwrap_or(cache));
    Stores { releases, bases }
}

/// SOURCE_DATE_EPOCH, the reproducible-builds convention, if set.
fn source_date_epoch() -> Result<Option<EpochOverride>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(Some(EpochOverride {
            seconds: v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
            origin: "SOURCE_DATE_EPOCH".into(),
        })),
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
