//! `kubemint-bench`, run by `cargo xtask bench`: builds masters from a synthetic full-size
//! release — one master cold, three masters cold, the three again with nothing changed, the
//! three into a new output root with the store the cold build filled — and
//! compares time and peak memory with a shell baseline doing the same work (GNU tar, gzip -n,
//! sha256sum, mksquashfs, sfdisk) and with the machine's floor (inflate and sha512 the release,
//! deflate its binaries once on every core), all measured in the same run. A binary of its own,
//! outside the library: it times child processes and reads their resource usage.

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use kubemint::build::summary::human;
use kubemint::front::plan::Plan;
use kubemint::front::{self, Request, Selection};
use kubemint::inputs::pin;
use kubemint::inputs::sample::{self, Scale};
use kubemint::pack::disk::ROOT_X86_64;
use kubemint::util::progress::Progress;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::IsTerminal;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The lock entry the synthetic release is pinned under, in the temporary project.
const RELEASE: &str = "bench-synthetic";
const PROFILE: &str = "master-1";
/// The masters of the three-master scenarios.
const PROFILES: [&str; 3] = ["master-1", "master-2", "master-3"];
/// The baseline's stand-in for the installer script kubemint renders (a few KiB of text).
const HEADER: &str = "#!/bin/sh\n# kubemint bench: stand-in for the installer script\nexit 1\n";
/// The baseline's tools that a base system may lack, and where they come from.
const EXTRA_TOOLS: [&str; 2] = ["mksquashfs", "sfdisk"];
const INSTALL_HINT: &str = "install squashfs-tools and fdisk to run the baseline";
/// Where Debian and others keep sfdisk, often not in a user's PATH: the baseline searches them too.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Each output compared in the report: its name there, its path in kubemint's output directory
/// (`{p}` for the profile) and in the baseline's.
const OUTPUTS: [(&str, &str, &str); 7] = [
    ("payload", "{p}.tar.gz", "payload.tar.gz"),
    ("installer", "{p}-install.sh", "installer"),
    ("OCI layout", "oci", "oci"),
    ("OCI archive", "{p}.oci.tar", "oci.tar"),
    ("sysext", "extensions", "sysext.raw"),
    ("confext", "confexts", "confext.raw"),
    ("disk image", "disk/kubemint-{p}.raw", "disk.raw"),
];

#[path = "../../bench_options.rs"]
mod bench_options;
use bench_options::BenchOptions;

/// Times a full-size build against a shell baseline (tar, gzip -n, sha256sum, mksquashfs, sfdisk).
#[derive(Clone, Debug, Parser)]
#[command(name = "kubemint-bench")]
pub struct Options {
    /// The kubemint checkout whose profiles/ and images/ are built
    #[arg(short = 'C', long, value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// The xtask binary to time (`cargo xtask bench` passes its own)
    #[arg(long, value_name = "PATH")]
    pub xtask: PathBuf,
    #[command(flatten)]
    pub bench: BenchOptions,
}

/// One command's measurements over every run.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Wall time of each run, in seconds.
    pub wall: Vec<f64>,
    /// The largest `ru_maxrss` over the runs, in bytes.
    pub peak_rss: u64,
    /// Size of the payload tar.gz it wrote.
    pub payload_size: u64,
}

impl Measured {
    pub fn min(&self) -> f64 {
        self.wall.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn median(&self) -> f64 {
        let mut w = self.wall.clone();
        w.sort_by(f64::total_cmp);
        let n = w.len();
        (w[(n - 1) / 2] + w[n / 2]) / 2.0
    }
}

/// What is timed: kubemint's command, and the baseline doing the same outputs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `one master, cold`, …
    pub name: String,
    pub kubemint: Measured,
    pub baseline: Measured,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub scale: f64,
    /// The synthetic release tarball's size.
    pub release_size: u64,
    /// Hardware and tool versions, one line each.
    pub notes: Vec<String>,
    pub baseline_script: String,
    /// One master cold, three masters cold, three masters with nothing changed, three masters
    /// into a new output root with the binaries' compression kept in the store.
    pub scenarios: Vec<Scenario>,
    /// The floor: inflate and sha512 the release, deflate its binaries once on every core.
    pub floor: Measured,
    /// Size of each output in the last run: (name, kubemint's, the baseline's).
    pub outputs: Vec<(String, u64, u64)>,
    pub kept: Option<PathBuf>,
}

/// The scenarios' names, in the report's order.
const ONE: &str = "one master, cold";
const THREE: &str = "three masters, cold";
const AGAIN: &str = "three, no change";
const KEPT: &str = "three, new root, kept";

impl Report {
    fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// The largest peak RSS of any kubemint command.
    fn peak_rss(&self) -> u64 {
        let rss = self.scenarios.iter().map(|s| s.kubemint.peak_rss);
        rss.max().unwrap_or(0)
    }

    /// The issue's goals: (what, measured, goal, met).
    pub fn goals(&self) -> Vec<(String, String, String, bool)> {
        let mut goals = Vec::new();
        let (Some(one), Some(three), Some(again)) = (
            self.scenario(ONE),
            self.scenario(THREE),
            self.scenario(AGAIN),
        ) else {
            return goals;
        };
        let one_k = one.kubemint.median();
        let mut ratio = |what: &str, value: f64, goal: f64| {
            let text = format!("{value:.2}x");
            goals.push((what.to_owned(), text, format!("<= {goal}x"), value <= goal));
        };
        ratio("one master / baseline", one_k / one.baseline.median(), 0.25);
        ratio("one master / floor", one_k / self.floor.median(), 1.5);
        ratio(
            "three masters / one master",
            three.kubemint.median() / one_k,
            1.15,
        );
        let noop = again.kubemint.median();
        goals.push((
            "no-change rebuild of three".into(),
            format!("{noop:.3} s"),
            "<= 0.5 s".into(),
            noop <= 0.5,
        ));
        let rss = self.peak_rss();
        goals.push((
            "peak RSS".into(),
            human(rss),
            "<= 256 MiB".into(),
            rss <= 256 << 20,
        ));
        goals
    }

    /// The report as JSON: every figure in seconds and bytes, ratios as numbers.
    pub fn to_json(&self) -> serde_json::Value {
        let measured = |m: &Measured| {
            serde_json::json!({
                "wall_s": m.wall,
                "min_s": m.min(),
                "median_s": m.median(),
                "peak_rss_bytes": m.peak_rss,
            })
        };
        let floor = self.floor.median();
        let scenarios: Vec<serde_json::Value> = self
            .scenarios
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "kubemint": measured(&s.kubemint),
                    "baseline": measured(&s.baseline),
                    "ratio_to_baseline": s.kubemint.median() / s.baseline.median(),
                    "ratio_to_floor": s.kubemint.median() / floor,
                })
            })
            .collect();
        let goals: Vec<serde_json::Value> = self
            .goals()
            .into_iter()
            .map(|(what, value, goal, met)| {
                serde_json::json!({ "what": what, "measured": value, "goal": goal, "met": met })
            })
            .collect();
        let outputs: Vec<serde_json::Value> = self
            .outputs
            .iter()
            .map(|(name, ours, theirs)| {
                serde_json::json!({ "output": name, "kubemint_bytes": ours, "baseline_bytes": theirs })
            })
            .collect();
        serde_json::json!({
            "scale": self.scale,
            "release_bytes": self.release_size,
            "runs": self.floor.wall.len(),
            "notes": self.notes,
            "floor": {
                "what": "inflate and sha512 the release tarball in one pass, then deflate its binaries once on every core",
                "wall_s": self.floor.wall,
                "median_s": floor,
            },
            "scenarios": scenarios,
            "peak_rss_bytes": self.peak_rss(),
            "goals": goals,
            "outputs": outputs,
        })
    }
}

/// A temporary project with the synthetic release pinned in it, and the baseline's inputs.
pub struct Setup {
    pub project: PathBuf,
    /// The pinned tarball in the store: the file both commands read.
    pub tarball: PathBuf,
    pub release_size: u64,
    pub plan: Plan,
    /// The profile's rendered files and links, which the baseline copies into its tree.
    pub skeleton: PathBuf,
    pub header: PathBuf,
    /// Every master of [`PROFILES`]: its plan and skeleton (the first is `plan`, `skeleton`).
    pub masters: Vec<(Plan, PathBuf)>,
    /// The binaries' members in the tarball, for the floor.
    pub members: BTreeSet<String>,
}

fn main() -> std::process::ExitCode {
    let opts = Options::parse();
    let progress = if std::io::stderr().is_terminal() {
        Progress::stderr()
    } else {
        Progress::hidden()
    };
    match run(&opts.project, &opts.xtask, &opts.bench, &progress) {
        Ok(report) if opts.bench.json => {
            let text = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
            println!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", format_report(&report));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn run(root: &Path, xtask: &Path, opts: &BenchOptions, progress: &Progress) -> Result<Report> {
    let valid = opts.scale.is_finite() && opts.scale > 0.0;
    ensure!(valid, "--scale must be positive");
    ensure!(opts.runs >= 1, "--runs must be at least 1");
    check_tools()?;
    let base = match &opts.dir {
        Some(d) => std::path::absolute(d).with_context(|| show(d))?,
        None => std::env::temp_dir(),
    };
    fs::create_dir_all(&base).with_context(|| show(&base))?;
    let work = tempfile::Builder::new()
        .prefix("kubemint-bench.")
        .tempdir_in(&base);
    let work = work.with_context(|| show(&base))?;
    let setup = prepare(root, work.path(), opts.scale, progress)?;
    let mut scenarios: Vec<Scenario> = [ONE, THREE, AGAIN, KEPT]
        .iter()
        .map(|name| Scenario {
            name: (*name).to_owned(),
            kubemint: Measured::default(),
            baseline: Measured::default(),
        })
        .collect();
    let mut floor = Measured::default();
    let mut outputs = Vec::new();
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Each run times, in turn: kubemint on one master and the baseline on it, kubemint on three
    // and the baseline on three, kubemint on the three again (nothing changed), kubemint on the
    // three into a new output root (the store's kept compression), the floor; so
    // drift (clock, page cache) hits all alike.
    for i in 0..opts.runs {
        let step = |what: &str| progress.step(&format!("run {}/{}: {what}", i + 1, opts.runs));
        // Each cold build gets a store of its own (the release is still found in the project's):
        // the compressed binaries it keeps there are not another cold build's to reuse.
        let build = |profiles: &[&str], out: &Path, store: &Path| {
            let mut cmd = Command::new(xtask);
            cmd.arg("-C").arg(&setup.project).arg("--store").arg(store);
            cmd.arg("build-image");
            cmd.args(profiles)
                .args(["--release", RELEASE, "--out"])
                .arg(out);
            // The baseline uses the profiles' epoch; so must kubemint.
            cmd.env_remove("SOURCE_DATE_EPOCH");
            cmd
        };
        let payload = |out: &Path| out.join(PROFILE).join(format!("{PROFILE}.tar.gz"));
        let log = |name: &str| work.path().join(format!("{name}-{i}.log"));

        step("kubemint, one master");
        let one = work.path().join(format!("kubemint-one-{i}"));
        let (store1, store3) = (
            work.path().join(format!("store-one-{i}")),
            work.path().join(format!("store-three-{i}")),
        );
        let m = &mut scenarios[0].kubemint;
        measure(
            m,
            &mut build(&[PROFILE], &one, &store1),
            &payload(&one),
            &log("kubemint-one"),
        )?;
        step("shell baseline, one master");
        let dir = work.path().join(format!("baseline-one-{i}"));
        fs::create_dir(&dir).with_context(|| show(&dir))?;
        let (m, bpayload) = (&mut scenarios[0].baseline, dir.join("payload.tar.gz"));
        measure(
            m,
            &mut baseline_command(&setup, &dir),
            &bpayload,
            &log("baseline-one"),
        )?;
        if i + 1 == opts.runs {
            outputs = output_sizes(&one.join(PROFILE), &dir)?;
        }

        step("kubemint, three masters");
        let three = work.path().join(format!("kubemint-three-{i}"));
        let m = &mut scenarios[1].kubemint;
        measure(
            m,
            &mut build(&PROFILES, &three, &store3),
            &payload(&three),
            &log("kubemint-three"),
        )?;
        step("shell baseline, three masters");
        let dir3 = work.path().join(format!("baseline-three-{i}"));
        fs::create_dir(&dir3).with_context(|| show(&dir3))?;
        let bpayload = dir3.join(PROFILE).join("payload.tar.gz");
        let mut cmd = baseline_all_command(&setup, &dir3);
        measure(
            &mut scenarios[1].baseline,
            &mut cmd,
            &bpayload,
            &log("baseline-three"),
        )?;
        // The baseline has no way to skip work: its no-change rebuild is a cold one.
        scenarios[2].baseline = scenarios[1].baseline.clone();

        step("kubemint, three masters again, nothing changed");
        let m = &mut scenarios[2].kubemint;
        let again = log("kubemint-again");
        let mut cmd = build(&PROFILES, &three, &store3);
        measure(m, &mut cmd, &payload(&three), &again)?;
        let said = fs::read_to_string(&again).with_context(|| show(&again))?;
        let current = said.lines().filter(|l| l.ends_with(": up to date")).count();
        ensure!(
            current == PROFILES.len(),
            "the no-change rebuild built something ({}):\n{said}",
            again.display()
        );

        // Another output root (another checkout, a CI job) with the store the cold build of
        // three filled: the binaries' compression is taken from there. The baseline cannot.
        step("kubemint, three masters into a new output root, compression kept");
        let kept = work.path().join(format!("kubemint-kept-{i}"));
        let m = &mut scenarios[3].kubemint;
        let mut cmd = build(&PROFILES, &kept, &store3);
        measure(m, &mut cmd, &payload(&kept), &log("kubemint-kept"))?;
        scenarios[3].baseline = scenarios[1].baseline.clone();

        step("the floor: inflate and sha512 the release, deflate its binaries");
        floor.wall.push(measure_floor(&setup, nproc)?);

        if !(opts.keep && i + 1 == opts.runs) {
            for d in [&one, &dir, &three, &dir3, &kept, &store1, &store3] {
                fs::remove_dir_all(d).with_context(|| show(d))?;
            }
        }
    }
    let mut notes = vec![format!("hardware: {nproc} CPUs (nproc), {}", cpu_model())];
    notes.extend(tool_versions());
    Ok(Report {
        scale: opts.scale,
        release_size: setup.release_size,
        notes,
        baseline_script: baseline_script(&setup.plan),
        scenarios,
        floor,
        outputs,
        kept: opts.keep.then(|| work.keep()),
    })
}

/// The floor, in seconds: one pass that inflates the release tarball and computes its sha512
/// while reading the binaries' members into memory, then every binary deflated once in
/// kubemint's chunks on `threads` threads. What no build of these outputs can avoid.
pub fn measure_floor(setup: &Setup, threads: usize) -> Result<f64> {
    use kubemint::pack::deflate::{self, Threads};
    use sha2::Digest;
    use std::io::Read;
    struct Hashing<R> {
        inner: R,
        hash: sha2::Sha512,
    }
    impl<R: Read> Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hash.update(&buf[..n]);
            Ok(n)
        }
    }
    let start = Instant::now();
    let file = File::open(&setup.tarball).with_context(|| show(&setup.tarball))?;
    let mut hashing = Hashing {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hash: sha2::Sha512::new(),
    };
    let mut binaries = Vec::new();
    {
        let gz = flate2::read::GzDecoder::new(&mut hashing);
        let mut archive = tar::Archive::new(gz);
        for entry in archive.entries().with_context(|| show(&setup.tarball))? {
            let mut entry = entry.with_context(|| show(&setup.tarball))?;
            let name = entry.path()?.to_string_lossy().into_owned();
            if setup.members.contains(&name) {
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut bytes)?;
                binaries.push(bytes);
            } else {
                std::io::copy(&mut entry, &mut std::io::sink())?;
            }
        }
        // The rest of the stream (the gzip trailer), hashed too.
        let mut rest = archive.into_inner();
        std::io::copy(&mut rest, &mut std::io::sink())?;
    }
    std::io::copy(&mut hashing.inner, &mut std::io::sink())?;
    let _sha512 = hashing.hash.finalize();
    for b in &binaries {
        std::hint::black_box(deflate::compress_bytes(b, Threads::new(threads)));
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Creates the project in `work` (the real `profiles/` and `images/`, an empty `vendor/`), pins
/// a synthetic release at `scale` in it, and writes the baseline's skeleton tree and header.
pub fn prepare(root: &Path, work: &Path, scale: f64, progress: &Progress) -> Result<Setup> {
    let project = work.join("project");
    fs::create_dir_all(project.join("vendor")).with_context(|| show(&project))?;
    let mut cp = Command::new("cp");
    cp.arg("-R")
        .args([root.join("profiles"), root.join("images")]);
    let copied = cp.arg(&project).status().is_ok_and(|s| s.success());
    ensure!(
        copied,
        "cannot copy profiles/ and images/ from {}",
        root.display()
    );
    progress.step(&format!(
        "generating a synthetic release at {scale} x the v1.14.0 sizes"
    ));
    let generated = work.join("kubernetes-server-linux-amd64.tar.gz");
    let file = File::create(&generated).with_context(|| show(&generated))?;
    let out = std::io::BufWriter::with_capacity(1 << 20, file);
    sample::write_release(out, RELEASE, Scale::Real(scale)).with_context(|| show(&generated))?;
    progress.step(&format!("pinning it as {RELEASE}"));
    let opts = pin::Options {
        root: project.clone(),
        store: kubemint::inputs::store::Store::project(&project.join("vendor")),
        release: RELEASE.into(),
        file: generated.clone(),
        urls: vec![],
        replace: true,
    };
    let pinned = pin::pin(&opts, progress).context("cannot pin the synthetic release")?;
    fs::remove_file(&generated).with_context(|| show(&generated))?;
    let planned = front::plan_set(&Request {
        root: project.clone(),
        profiles_dir: project.join("profiles"),
        selection: Selection::Names(PROFILES.iter().map(|p| (*p).to_owned()).collect()),
        release: Some(RELEASE.to_owned()),
        sample: false,
        epoch: None,
    })?;
    let mut masters = Vec::new();
    for m in planned.masters {
        let plan = m.plan;
        let skeleton = work.join(format!("skeleton-{}", plan.profile));
        let under = |p: &str| skeleton.join(p.trim_start_matches('/'));
        fs::create_dir(&skeleton).with_context(|| show(&skeleton))?;
        for f in &plan.files {
            write_file(&under(&f.path), f.content.as_bytes(), f.mode)?;
        }
        for l in &plan.links {
            let path = under(&l.path);
            fs::create_dir_all(path.parent().unwrap_or(&skeleton)).with_context(|| show(&path))?;
            std::os::unix::fs::symlink(&l.target, &path).with_context(|| show(&path))?;
        }
        masters.push((plan, skeleton));
    }
    let (plan, skeleton) = masters.first().cloned().context("no plan")?;
    ensure!(
        plan.profile == PROFILE,
        "the first plan is {}",
        plan.profile
    );
    let members = masters
        .iter()
        .flat_map(|(p, _)| p.binaries.iter().map(|b| b.member.clone()))
        .collect();
    let header = work.join("installer-header.sh");
    write_file(&header, HEADER.as_bytes(), 0o755)?;
    let (tarball, release_size) = (pinned.store, pinned.size);
    Ok(Setup {
        project,
        tarball,
        release_size,
        plan,
        skeleton,
        header,
        masters,
        members,
    })
}

/// The baseline's script; `__NAME__` marks what [`baseline_script`] fills in from the plan.
const SCRIPT: &str = r#"set -eu
sha512sum "$1" > release.sha512
mkdir x
tar -xzf "$1" -C x__MEMBERS__
sha256sum__EXTRACTED__ > members.sha256
cp -a "$2" tree
__MOVES__# targz NAME TAR-ARGS...: NAME.tar.gz, the uncompressed tar's sha256 in NAME.tar.sha256
targz() {
  name=$1
  shift
  mkfifo "$name.fifo"
  sha256sum < "$name.fifo" > "$name.tar.sha256" &
  hasher=$!
  { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@__EPOCH__ -cf - "$@" \
    || touch "$name.failed"; } | { tee "$name.fifo" || touch "$name.failed"; } \
    | gzip -n -6 > "$name.tar.gz"
  wait "$hasher"
  test ! -e "$name.failed"
}
# desc MEDIA-TYPE FILE: copies FILE into the OCI layout under its digest, prints its descriptor
desc() {
  sum=$(sha256sum < "$2") && size=$(stat -c %s "$2") && hex=${sum%% *} &&
    cp "$2" "oci/blobs/sha256/$hex" &&
    printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$1" "$hex" "$size"
}
# squash SOURCE... IMAGE [OPTION...]: a squashfs image as kubemint writes it
squash() {
  mksquashfs "$@" -comp gzip -Xcompression-level 6 -noappend -all-root -root-mode 755 \
    -mkfs-time __EPOCH__ -all-time __EPOCH__ -no-xattrs -quiet -no-progress
}
# Three groups side by side, like kubemint's three packers; each marks that it finished.
(
  targz payload -C tree .
  cat "$3" payload.tar.gz > installer
  sha256sum payload.tar.gz installer > payload.sums
  sync payload.tar.gz installer
  touch payload.done
) &
(
  targz release --no-recursion -C tree__RELEASE__
  targz profile --anchored --no-wildcards__EXCLUDES__ -C tree .
  mkdir -p oci/blobs/sha256
  layer=application/vnd.oci.image.layer.v1.tar+gzip
  release=$(desc $layer release.tar.gz)
  profile=$(desc $layer profile.tar.gz)
  read -r release_diff _ < release.tar.sha256
  read -r profile_diff _ < profile.tar.sha256
  printf '{"architecture":"amd64","os":"linux","created":"%s","rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' \
    __CREATED__ "$release_diff" "$profile_diff" > config.json
  config=$(desc application/vnd.oci.image.config.v1+json config.json)
  printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s,%s]}' \
    application/vnd.oci.image.manifest.v1+json "$config" "$release" "$profile" > manifest.json
  manifest=$(desc application/vnd.oci.image.manifest.v1+json manifest.json)
  printf '{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}' \
    application/vnd.oci.image.index.v1+json "$manifest" > oci/index.json
  printf '{"imageLayoutVersion":"1.0.0"}' > oci/oci-layout
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@__EPOCH__ -cf oci.tar -C oci .
  sha256sum oci.tar > oci.sums
  sync release.tar.gz profile.tar.gz oci.tar
  touch oci.done
) &
(
  squash__SYSEXT__ sysext.raw -keep-as-directory
  squash tree/etc confext.raw -keep-as-directory
  size=$(stat -c %s sysext.raw)
  mib=$(( (size + 1048575) / 1048576 ))
  truncate -s $((mib + 3))M disk.raw
  printf 'label: gpt\nstart=2048, size=%s, type=%s, name="root-x86-64", attrs="GUID:60"\n' \
    $((mib * 2048)) __ROOT_TYPE__ | sfdisk --quiet --no-reread --no-tell-kernel disk.raw
  dd if=sysext.raw of=disk.raw bs=1M seek=1 conv=notrunc status=none
  sha256sum sysext.raw confext.raw disk.raw > disk.sums
  sync sysext.raw confext.raw disk.raw
  touch disk.done
) &
wait
for group in payload oci disk; do
  test -e "$group.done" || { echo "the $group group failed" >&2; exit 1; }
done
cat payload.sums oci.sums disk.sums > SHA256SUMS
sha256sum oci/oci-layout oci/index.json oci/blobs/sha256/* >> SHA256SUMS
sync SHA256SUMS
"#;

/// The baseline: kubemint's work done with standard tools, run as `sh -c SCRIPT sh TARBALL
/// SKELETON HEADER` in an empty directory. Like kubemint it hashes the release (sha512) and the
/// extracted members, builds the tree, then runs three groups at once: the payload and the
/// installer; the two OCI layers (the binaries, the rest), the layout and its archive; the
/// sysext (/usr, /opt), the confext (/etc) and the GPT disk image around the sysext. It
/// hashes every output (sha256; for a layer its uncompressed tar too, the diff_id) and fsyncs
/// what kubemint fsyncs. `sh` has no pipefail: hence the `.failed` files; a group that stops
/// early leaves no `.done` file.
pub fn baseline_script(plan: &Plan) -> String {
    let (mut members, mut extracted, mut moves) = (String::new(), String::new(), String::new());
    // The release layer: the binaries and the directories above them, in byte order.
    let mut release = BTreeSet::new();
    let mut excludes = String::new();
    for b in &plan.binaries {
        let (from, to) = (quote(&format!("x/{}", b.member)), format!("tree{}", b.path));
        let dir = quote(to.rsplit_once('/').map_or(".", |(d, _)| d));
        let (to, mode) = (quote(&to), b.mode);
        let _ = write!(members, " {}", quote(&b.member));
        let _ = write!(extracted, " {from}");
        let _ = writeln!(moves, "mkdir -p {dir}\nmv {from} {to}\nchmod {mode:o} {to}");
        let path = b.path.trim_start_matches('/');
        release.extend(path.match_indices('/').map(|(i, _)| &path[..i]));
        release.insert(path);
        let _ = write!(excludes, " --exclude={}", quote(&format!(".{}", b.path)));
    }
    let release: String = release.iter().map(|p| format!(" {}", quote(p))).collect();
    // The sysext holds /usr and /opt: whichever the tree has.
    let paths = plan.binaries.iter().map(|b| &b.path);
    let paths = paths.chain(plan.files.iter().map(|f| &f.path));
    let paths: Vec<&String> = paths.chain(plan.links.iter().map(|l| &l.path)).collect();
    let sysext: String = ["/usr", "/opt"]
        .iter()
        .filter(|root| paths.iter().any(|p| p.starts_with(&format!("{root}/"))))
        .map(|root| format!(" tree{root}"))
        .collect();
    let epoch = plan.epoch.to_string();
    let replacements = [
        ("__MEMBERS__", members),
        ("__EXTRACTED__", extracted),
        ("__MOVES__", moves),
        ("__RELEASE__", release),
        ("__EXCLUDES__", excludes),
        ("__SYSEXT__", sysext),
        ("__CREATED__", plan.epoch.rfc3339()),
        ("__ROOT_TYPE__", ROOT_X86_64.to_owned()),
        ("__EPOCH__", epoch),
    ];
    let mut script = SCRIPT.to_owned();
    for (from, to) in replacements {
        script = script.replace(from, &to);
    }
    script
}

fn baseline_command(setup: &Setup, dir: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(baseline_script(&setup.plan)).arg("sh");
    cmd.args([&setup.tarball, &setup.skeleton, &setup.header])
        .env("PATH", baseline_path())
        .current_dir(dir);
    cmd
}

/// The baseline for every master of [`PROFILES`], one after the other, each in a directory of
/// its own below `dir`.
fn baseline_all_command(setup: &Setup, dir: &Path) -> Command {
    let mut script = String::from("set -eu\n");
    for (plan, skeleton) in &setup.masters {
        let p = quote(&plan.profile);
        let _ = writeln!(
            script,
            "mkdir {p}\n(cd {p} && sh -c {} sh \"$1\" {} \"$2\")",
            quote(&baseline_script(plan)),
            quote(&skeleton.display().to_string())
        );
    }
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh");
    cmd.args([&setup.tarball, &setup.header])
        .env("PATH", baseline_path())
        .current_dir(dir);
    cmd
}

/// `PATH`, with the sbin directories appended that it lacks.
fn baseline_path() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for d in SBIN {
        if !dirs.iter().any(|p| p == Path::new(d)) {
            dirs.push(d.into());
        }
    }
    std::env::join_paths(dirs).unwrap_or(path)
}

/// The tools of [`EXTRA_TOOLS`] that no directory of `path` holds as an executable file.
fn missing_tools(path: &OsStr) -> Vec<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    let found = |tool: &str| {
        std::env::split_paths(path).any(|d| {
            let meta = fs::metadata(d.join(tool));
            meta.is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    };
    EXTRA_TOOLS.into_iter().filter(|t| !found(t)).collect()
}

/// Fails, before any work, if the baseline could not run.
fn check_tools() -> Result<()> {
    let missing = missing_tools(&baseline_path());
    ensure!(
        missing.is_empty(),
        "the shell baseline needs {}, found neither in PATH nor in {}: {INSTALL_HINT}",
        missing.join(" and "),
        SBIN.join(", ")
    );
    Ok(())
}

/// The size of each of [`OUTPUTS`] in kubemint's output directory and in the baseline's.
fn output_sizes(kubemint: &Path, baseline: &Path) -> Result<Vec<(String, u64, u64)>> {
    let size = |path: &Path| -> Result<u64> {
        let mut total = 0;
        for entry in walkdir::WalkDir::new(path) {
            let meta = entry
                .and_then(|e| e.metadata())
                .with_context(|| show(path))?;
            total += if meta.is_file() { meta.len() } else { 0 };
        }
        Ok(total)
    };
    let mut rows = Vec::new();
    for (name, ours, theirs) in OUTPUTS {
        let ours = kubemint.join(ours.replace("{p}", PROFILE));
        rows.push((name.to_owned(), size(&ours)?, size(&baseline.join(theirs))?));
    }
    Ok(rows)
}

/// Runs `cmd` to completion, its output going to `log`, and adds its wall time, peak RSS and
/// the size of the `payload` it wrote to `m`.
///
/// Peak RSS is the `ru_maxrss` that `wait4` returns for the child. On Linux that is the largest
/// over the child and every descendant it waited for: the kernel folds a reaped child's peak
/// into its parent's (`cmaxrss`), and `wait4` reports both. The baseline's `sh` (and each group's
/// subshell) waits for every tool it runs, so this covers them all, exactly (no polling, no
/// race) — the same number GNU `/usr/bin/time` prints. It is the largest single process, not a
/// sum over processes running at once: the baseline's three groups and their pipelines together
/// hold more than reported, while kubemint's figure covers all its threads.
fn measure(m: &mut Measured, cmd: &mut Command, payload: &Path, log: &Path) -> Result<()> {
    let out = File::create(log).with_context(|| show(log))?;
    let name = Path::new(cmd.get_program()).display().to_string();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    let (mut status, pid) = (0, child.id() as libc::pid_t);
    // SAFETY: `rusage` is plain data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child and unreaped (std reaps only in `wait`, which is never called);
    // `status` and `usage` are valid for writes.
    while unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("cannot wait for {name}"));
        }
    }
    let wall = start.elapsed();
    let status = std::process::ExitStatus::from_raw(status);
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail = text.lines().rev().take(20).collect::<Vec<_>>();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        bail!("{name} failed ({status}); {}:\n{tail}", log.display());
    }
    m.wall.push(wall.as_secs_f64());
    m.peak_rss = m.peak_rss.max(u64::try_from(usage.ru_maxrss)? * 1024);
    m.payload_size = fs::metadata(payload).with_context(|| show(payload))?.len();
    Ok(())
}

/// The plain-text report.
pub fn format_report(r: &Report) -> String {
    let floor = r.floor.median();
    let mut s = format!(
        "kubemint bench: build-image from a synthetic release (v1.14.0 member sizes x {}, {}), \
         {} run(s) each, medians\n",
        r.scale,
        human(r.release_size),
        r.floor.wall.len()
    );
    for note in &r.notes {
        let _ = writeln!(s, "{note}");
    }
    s.push('\n');
    let mut row = |cells: [&str; 6]| {
        let [a, b, c, d, e, f] = cells;
        let _ = writeln!(s, "{a:<20} {b:>10} {c:>10} {d:>11} {e:>9} {f:>10}");
    };
    row([
        "scenario",
        "kubemint",
        "baseline",
        "/baseline",
        "/floor",
        "peak RSS",
    ]);
    let secs = |t: f64| format!("{t:.2} s");
    for sc in &r.scenarios {
        let (k, b) = (sc.kubemint.median(), sc.baseline.median());
        row([
            &sc.name,
            &secs(k),
            &secs(b),
            &format!("{:.3}x", k / b),
            &format!("{:.2}x", k / floor),
            &human(sc.kubemint.peak_rss),
        ]);
    }
    row(["floor", &secs(floor), "", "", "1.00x", ""]);
    let _ = writeln!(s, "\n{:<28} {:>10} {:>11}  met", "goal", "measured", "goal");
    for (what, value, goal, met) in r.goals() {
        let met = if met { "yes" } else { "NO" };
        let _ = writeln!(s, "{what:<28} {value:>10} {goal:>11}  {met}");
    }
    if !r.outputs.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<18} {:>10} {:>10}",
            "output (last run)", "kubemint", "baseline"
        );
        for (name, ours, theirs) in &r.outputs {
            let _ = writeln!(s, "{name:<18} {:>10} {:>10}", human(*ours), human(*theirs));
        }
    }
    s.push_str(&format!(
        "\nkubemint: xtask -C PROJECT build-image {PROFILE} (or {}) --release {RELEASE} --out DIR; \
         the no-change rebuild runs the three-master command again into the same DIR\n\
         floor: one pass that inflates the pinned tarball and computes its sha512, reading the \
         binaries' members into memory, then each binary deflated once in kubemint's 128 KiB \
         chunks on every core\n\
         baseline: sh -c SCRIPT sh TARBALL SKELETON HEADER in an empty directory, once per \
         master, one master after the other (it cannot skip work: its no-change rebuild is a \
         cold one); TARBALL is the pinned release (the file kubemint reads), SKELETON the \
         profile's rendered files and links, HEADER a stand-in for the installer script; \
         mksquashfs runs with its defaults: a thread per CPU and read-ahead caches of up to a \
         quarter of RAM (-mem); SCRIPT for {PROFILE}:\n",
        PROFILES.join(" ")
    ));
    for line in r.baseline_script.lines() {
        let _ = writeln!(s, "    {line}");
    }
    s.push_str(
        "scenarios alternate kubemint, baseline; the tarball is in the page cache for all. Peak \
         RSS is ru_maxrss from wait4: the largest process among the command and those it waited \
         for, not a sum over concurrent processes.\n",
    );
    if let Some(k) = &r.kept {
        let _ = writeln!(s, "kept: {}", k.display());
    }
    s
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// A word for `sh`: as is if plainly safe, else single-quoted.
fn quote(s: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"/._+-".contains(&b);
    if !s.is_empty() && s.bytes().all(plain) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path.parent().unwrap_or(path)).with_context(|| show(path))?;
    fs::write(path, bytes).with_context(|| show(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).with_context(|| show(path))
}

fn cpu_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| Some(l.strip_prefix("model name")?.split_once(':')?.1));
    model.map_or_else(|| "unknown CPU".into(), |m| m.trim().to_owned())
}

/// The versions of the baseline's tools: the first line of each `--version`.
fn tool_versions() -> Vec<String> {
    let script = "for t in tar gzip sha256sum sfdisk; do \"$t\" --version 2>&1 | head -n 1; done
        mksquashfs -version 2>&1 | head -n 1";
    let mut sh = Command::new("sh");
    let out = sh
        .args(["-c", script])
        .env("PATH", baseline_path())
        .output();
    let text = out.map_or_else(
        |e| e.to_string(),
        |o| String::from_utf8_lossy(&o.stdout).into(),
    );
    text.lines().map(|l| format!("tool: {l}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report() {
        let m = |wall: Vec<f64>, rss: u64| Measured {
            wall,
            peak_rss: rss << 20,
            payload_size: 60 << 20,
        };
        let k = m(vec![3.0, 1.0, 2.0], 20);
        assert_eq!((k.min(), k.median()), (1.0, 2.0));
        assert_eq!(m(vec![4.0, 2.0, 5.0, 3.0], 1).median(), 3.5);
        let scenario = |name: &str, k: f64, b: f64, rss: u64| Scenario {
            name: name.into(),
            kubemint: m(vec![k], rss),
            baseline: m(vec![b], 10),
        };
        let r = Report {
            scale: 1.0,
            release_size: 1 << 30,
            notes: vec!["hardware: 2 CPUs".into()],
            baseline_script: "set -eu\ntrue\n".into(),
            scenarios: vec![
                scenario(ONE, 2.0, 10.0, 20),
                scenario(THREE, 2.2, 30.0, 300),
                scenario(AGAIN, 0.1, 30.0, 5),
            ],
            floor: m(vec![1.6], 0),
            outputs: vec![("disk image".into(), 3 << 20, 4 << 20)],
            kept: None,
        };
        let text = format_report(&r);
        assert!(
            text.contains("x 1, 1.0 GiB), 1 run(s) each, medians\nhardware: 2 CPUs\n"),
            "{text}"
        );
        let cells = |name: &str| {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name:<20} ")))
                .unwrap();
            line[20..].split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(cells(ONE), "2.00 s 10.00 s 0.200x 1.25x 20.0 MiB", "{text}");
        assert_eq!(cells("floor"), "1.60 s 1.00x");
        let goals: Vec<(String, bool)> = r.goals().into_iter().map(|g| (g.1, g.3)).collect();
        assert_eq!(
            goals,
            [
                ("0.20x".into(), true),
                ("1.25x".into(), true),
                ("1.10x".into(), true),
                ("0.100 s".into(), true),
                ("300.0 MiB".into(), false),
            ]
        );
        assert!(
            text.contains("peak RSS                      300.0 MiB  <= 256 MiB  NO"),
            "{text}"
        );
        assert!(
            text.contains("SCRIPT for master-1:\n    set -eu\n    true\n"),
            "{text}"
        );
        assert!(
            text.contains("\noutput (last run)    kubemint   baseline\ndisk image            3.0 MiB    4.0 MiB\n"),
            "{text}"
        );
        let json = r.to_json();
        assert_eq!(json["scenarios"][0]["ratio_to_baseline"], 0.2);
        assert_eq!(json["scenarios"][2]["name"], AGAIN);
        assert_eq!(json["peak_rss_bytes"], 300 << 20);
        assert_eq!(json["goals"][4]["met"], false);
        assert_eq!(quote("a/b-1.x"), "a/b-1.x");
        assert_eq!(quote("a b'c"), r"'a b'\''c'");
    }

    #[test]
    fn measures_what_sh_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let (out, log) = (dir.path().join("out"), dir.path().join("log"));
        let mut m = Measured::default();
        let mut sh = |script: &str| {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", script]).current_dir(dir.path());
            measure(&mut m, &mut cmd, &out, &log)
        };
        let err = sh("echo oops >&2; exit 3").unwrap_err().to_string();
        assert!(
            err.contains("sh failed (exit status: 3)") && err.contains("oops"),
            "{err}"
        );
        // A grandchild holds 64 MiB; sh waits for it, so wait4 on sh reports its peak.
        sh("head -c 67108864 /dev/zero | sort -S 1G > out; true").unwrap();
        assert!(
            m.peak_rss > 64 << 20 && m.payload_size == (64 << 20) + 1,
            "{m:?}"
        );
    }

    /// A tar's entries, as absolute paths without a trailing `/`, and their sizes.
    fn tar_entries(tar: impl std::io::Read) -> std::collections::BTreeMap<String, u64> {
        let mut archive = tar::Archive::new(tar);
        (archive.entries().unwrap())
            .map(|e| e.unwrap())
            .map(|e| {
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let path = path.trim_start_matches("./").trim_end_matches('/');
                (format!("/{path}"), e.size())
            })
            .collect()
    }

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut gz = flate2::read::GzDecoder::new(File::open(path).unwrap());
        std::io::Read::read_to_end(&mut gz, &mut bytes).unwrap();
        bytes
    }

    /// The paths in a squashfs image, as `unsquashfs -l` lists them below its root.
    fn squashfs_paths(image: &Path) -> BTreeSet<String> {
        let mut unsquashfs = Command::new("unsquashfs");
        let out = unsquashfs.arg("-l").arg(image).env("PATH", baseline_path());
        let out = out.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let paths = text.lines().filter_map(|l| l.strip_prefix("squashfs-root"));
        paths.map(str::to_owned).collect()
    }

    #[test]
    fn tools() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(missing_tools(empty.path().as_os_str()), EXTRA_TOOLS);
        assert!(INSTALL_HINT.contains("install squashfs-tools and fdisk to run the baseline"));
        let path = baseline_path();
        let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        assert!(
            SBIN.iter().all(|d| dirs.contains(&PathBuf::from(d))),
            "{dirs:?}"
        );
    }

    /// The baseline on a tiny synthetic release: its payload holds what kubemint's does, and it
    /// writes every other output, each in the shape kubemint gives it.
    #[test]
    fn baseline_builds_the_tree() {
        check_tools().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let work = tempfile::tempdir().unwrap();
        let setup = prepare(root, work.path(), 0.0005, &Progress::hidden()).unwrap();
        let dir = work.path().join("run");
        fs::create_dir(&dir).unwrap();
        let mut m = Measured::default();
        let payload = dir.join("payload.tar.gz");
        let (mut cmd, log) = (baseline_command(&setup, &dir), work.path().join("log"));
        measure(&mut m, &mut cmd, &payload, &log).unwrap();
        let installer = fs::metadata(dir.join("installer")).unwrap().len();
        assert_eq!(installer, HEADER.len() as u64 + m.payload_size);
        let entries = tar_entries(flate2::read::GzDecoder::new(File::open(&payload).unwrap()));
        let real = sample::BINARIES
            .iter()
            .find(|b| b.0 == "kube-apiserver")
            .unwrap()
            .1;
        let size = (real as f64 * 0.0005) as u64;
        let plan = &setup.plan;
        assert_eq!(entries.get(&plan.binaries[0].path), Some(&size));
        for f in &plan.files {
            assert_eq!(
                entries.get(&f.path),
                Some(&(f.content.len() as u64)),
                "{}",
                f.path
            );
        }
        for l in &plan.links {
            assert!(entries.contains_key(&l.path), "{entries:?}");
        }

        // Every output is there, and SHA256SUMS covers them and the layout's files.
        for (name, _, path) in OUTPUTS {
            assert!(dir.join(path).exists(), "{name}: no {path}");
        }
        let sums = fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
        let listed: Vec<&str> = sums
            .lines()
            .filter_map(|l| l.split_once("  "))
            .map(|x| x.1)
            .collect();
        assert_eq!(listed.len(), 6 + 2 + 4, "{sums}");
        let mut check = Command::new("sha256sum");
        let check = check
            .args(["--quiet", "-c", "SHA256SUMS"])
            .current_dir(&dir);
        assert!(check.status().unwrap().success());

        // The OCI layout: index -> manifest -> config and two layers, each blob under its digest;
        // the release layer holds the binaries, the profile layer the rest.
        let read_json = |path: PathBuf| -> serde_json::Value {
            serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
        };
        let blob = |digest: &serde_json::Value| {
            let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
            let path = dir.join("oci/blobs/sha256").join(hex);
            let bytes = fs::read(&path).unwrap();
            assert_eq!(kubemint::util::hash::sha256_hex(&bytes), hex);
            path
        };
        let index = read_json(dir.join("oci/index.json"));
        let manifest = read_json(blob(&index["manifests"][0]["digest"]));
        let config = read_json(blob(&manifest["config"]["digest"]));
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{manifest}");
        let layers: Vec<PathBuf> = layers.iter().map(|l| blob(&l["digest"])).collect();
        for (layer, diff_id) in layers
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            let hex = kubemint::util::hash::sha256_hex(&gunzip(layer));
            assert_eq!(diff_id.as_str().unwrap(), format!("sha256:{hex}"));
        }
        let release = tar_entries(gunzip(&layers[0]).as_slice());
        let profile = tar_entries(gunzip(&layers[1]).as_slice());
        for b in &plan.binaries {
            assert!(
                release.contains_key(&b.path) && !profile.contains_key(&b.path),
                "{}",
                b.path
            );
        }
        let files = plan.files.iter().map(|f| &f.path);
        for path in files.chain(plan.links.iter().map(|l| &l.path)) {
            assert!(
                profile.contains_key(path) && !release.contains_key(path),
                "{path}"
            );
        }
        let archived = tar_entries(File::open(dir.join("oci.tar")).unwrap());
        assert!(archived.contains_key("/index.json") && archived.contains_key("/oci-layout"));
        assert_eq!(
            archived
                .keys()
                .filter(|p| p.starts_with("/blobs/sha256/"))
                .count(),
            4
        );

        // The squashfs images: /usr (+ /opt) and /etc at their roots.
        let sysext = squashfs_paths(&dir.join("sysext.raw"));
        let confext = squashfs_paths(&dir.join("confext.raw"));
        let paths = plan.binaries.iter().map(|b| &b.path);
        let paths = paths.chain(plan.files.iter().map(|f| &f.path));
        for path in paths.chain(plan.links.iter().map(|l| &l.path)) {
            let in_usr = path.starts_with("/usr/");
            assert_eq!(
                sysext.contains(path),
                in_usr || path.starts_with("/opt/"),
                "{path}"
            );
            assert_eq!(confext.contains(path), path.starts_with("/etc/"), "{path}");
        }
        // The disk: a GPT with one read-only root partition at 1 MiB, the sysext in it.
        let disk = fs::read(dir.join("disk.raw")).unwrap();
        let fs_image = fs::read(dir.join("sysext.raw")).unwrap();
        assert_eq!(&disk[512..520], b"EFI PART");
        assert_eq!(disk.len() % (1 << 20), 0);
        assert_eq!(
            &disk[1 << 20..(1 << 20) + fs_image.len()],
            fs_image.as_slice()
        );
        let mut dump = Command::new("sfdisk");
        let dump = dump.arg("--dump").arg(dir.join("disk.raw"));
        let dump = dump.env("PATH", baseline_path()).output().unwrap();
        let dump = String::from_utf8(dump.stdout).unwrap().to_lowercase();
        assert!(
            dump.contains("start=        2048, size=")
                && dump.contains(&format!("type={ROOT_X86_64}"))
                && dump.contains("name=\"root-x86-64\", attrs=\"guid:60\""),
            "{dump}"
        );
    }
}
