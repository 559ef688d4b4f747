//! `bench`: builds a master from a synthetic full-size release and compares time and peak memory
//! with a shell baseline doing the same work (GNU tar, gzip -n, sha256sum), measured in the same run.

use crate::plan::{self, Plan};
use crate::progress::Progress;
use crate::sample::{self, Scale};
use crate::{pin, summary::human};
use anyhow::{Context, Result, bail, ensure};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The lock entry the synthetic release is pinned under, in the temporary project.
const RELEASE: &str = "bench-synthetic";
const PROFILE: &str = "master-1";
/// The baseline's stand-in for the installer script kubemint renders (a few KiB of text).
const HEADER: &str = "#!/bin/sh\n# kubemint bench: stand-in for the installer script\nexit 1\n";

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Fraction of the real member sizes (1.0 = the v1.14.0 sizes)
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Runs of each command; the report gives the median
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the temporary project goes (default: the system temp dir; needs ~3 GB at scale 1)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the temporary project, the logs and the last run's outputs
    #[arg(long)]
    pub keep: bool,
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

#[derive(Clone, Debug)]
pub struct Report {
    pub scale: f64,
    /// The synthetic release tarball's size.
    pub release_size: u64,
    /// Hardware and tool versions, one line each.
    pub notes: Vec<String>,
    pub baseline_script: String,
    pub kubemint: Measured,
    pub baseline: Measured,
    pub kept: Option<PathBuf>,
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
}

pub fn run(root: &Path, xtask: &Path, opts: &Options, progress: &Progress) -> Result<String> {
    let valid = opts.scale.is_finite() && opts.scale > 0.0;
    ensure!(valid, "--scale must be positive");
    ensure!(opts.runs >= 1, "--runs must be at least 1");
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
    let (mut kubemint, mut baseline) = (Measured::default(), Measured::default());
    // Runs alternate kubemint, baseline, so that drift (clock, page cache) hits both alike.
    for i in 0..opts.runs {
        let step = |what: &str| progress.step(&format!("run {}/{}: {what}", i + 1, opts.runs));
        step("kubemint build-image");
        let out = work.path().join(format!("kubemint-{i}"));
        let mut cmd = Command::new(xtask);
        cmd.arg("-C").arg(&setup.project).arg("build-image");
        cmd.args([PROFILE, "--release", RELEASE, "--out"]).arg(&out);
        // The baseline uses the profile's epoch; so must kubemint.
        cmd.env_remove("SOURCE_DATE_EPOCH");
        let payload = out.join(PROFILE).join(format!("{PROFILE}.tar.gz"));
        let log = work.path().join(format!("kubemint-{i}.log"));
        measure(&mut kubemint, &mut cmd, &payload, &log)?;
        step("shell baseline");
        let dir = work.path().join(format!("baseline-{i}"));
        fs::create_dir(&dir).with_context(|| show(&dir))?;
        let payload = dir.join("payload.tar.gz");
        let log = work.path().join(format!("baseline-{i}.log"));
        let mut cmd = baseline_command(&setup, &dir);
        measure(&mut baseline, &mut cmd, &payload, &log)?;
        if !(opts.keep && i + 1 == opts.runs) {
            for d in [&out, &dir] {
                fs::remove_dir_all(d).with_context(|| show(d))?;
            }
        }
    }
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut notes = vec![format!("hardware: {nproc} CPUs (nproc), {}", cpu_model())];
    notes.extend(tool_versions());
    Ok(format_report(&Report {
        scale: opts.scale,
        release_size: setup.release_size,
        notes,
        baseline_script: baseline_script(&setup.plan),
        kubemint,
        baseline,
        kept: opts.keep.then(|| work.keep()),
    }))
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
        release: RELEASE.into(),
        file: generated.clone(),
        urls: vec![],
        replace: true,
    };
    let pinned = pin::pin(&opts, progress).context("cannot pin the synthetic release")?;
    fs::remove_file(&generated).with_context(|| show(&generated))?;
    let plan = plan::resolve(&project, PROFILE, Some(RELEASE))?;
    let skeleton = work.join("skeleton");
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
    })
}

/// The baseline: kubemint's work done with standard tools, run as `sh -c SCRIPT sh TARBALL
/// SKELETON HEADER` in an empty directory. Like kubemint it hashes the release (sha512), the
/// extracted members, the uncompressed tar (the payload's diff_id), the payload and the
/// installer (sha256), and fsyncs its outputs. `sh` has no pipefail: hence the `.failed` files.
pub fn baseline_script(plan: &Plan) -> String {
    let (mut members, mut extracted, mut moves) = (String::new(), String::new(), String::new());
    for b in &plan.binaries {
        let (from, to) = (quote(&format!("x/{}", b.member)), format!("tree{}", b.path));
        let dir = quote(to.rsplit_once('/').map_or(".", |(d, _)| d));
        let (to, mode) = (quote(&to), b.mode);
        let _ = write!(members, " {}", quote(&b.member));
        let _ = write!(extracted, " {from}");
        let _ = writeln!(moves, "mkdir -p {dir}\nmv {from} {to}\nchmod {mode:o} {to}");
    }
    let epoch = plan.epoch;
    format!(
        "set -eu
sha512sum \"$1\" > release.sha512
mkdir x
tar -xzf \"$1\" -C x{members}
sha256sum{extracted} > members.sha256
cp -a \"$2\" tree
{moves}mkfifo tar.fifo
sha256sum < tar.fifo > tar.sha256 &
hasher=$!
{{ tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@{epoch} -cf - -C tree . \
|| touch tar.failed; }} | {{ tee tar.fifo || touch tee.failed; }} | gzip -n -6 > payload.tar.gz
wait \"$hasher\"
test ! -e tar.failed && test ! -e tee.failed
cat \"$3\" payload.tar.gz > installer
sha256sum payload.tar.gz installer > SHA256SUMS
sync payload.tar.gz installer SHA256SUMS
"
    )
}

fn baseline_command(setup: &Setup, dir: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(baseline_script(&setup.plan)).arg("sh");
    cmd.args([&setup.tarball, &setup.skeleton, &setup.header])
        .current_dir(dir);
    cmd
}

/// Runs `cmd` to completion, its output going to `log`, and adds its wall time, peak RSS and
/// the size of the `payload` it wrote to `m`.
///
/// Peak RSS is the `ru_maxrss` that `wait4` returns for the child. On Linux that is the largest
/// over the child and every descendant it waited for: the kernel folds a reaped child's peak
/// into its parent's (`cmaxrss`), and `wait4` reports both. The baseline's `sh` waits for each
/// tool it runs, so this covers tar, gzip and sha256sum, exactly (no polling, no race) — the
/// same number GNU `/usr/bin/time` prints. It is the largest single process, not a sum over
/// processes running at once: the tar | tee | gzip pipeline holds a few MiB more than reported.
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
    let (k, b) = (&r.kubemint, &r.baseline);
    let mut s = format!(
        "kubemint bench: build-image {PROFILE} from a synthetic release (v1.14.0 member sizes \
         x {}, {}), {} run(s) each\n",
        r.scale,
        human(r.release_size),
        k.wall.len()
    );
    for note in &r.notes {
        let _ = writeln!(s, "{note}");
    }
    s.push('\n');
    let mut row = |cells: [&str; 6]| {
        let [a, b, c, d, e, f] = cells;
        let _ = writeln!(s, "{a:<18} {b:>4} {c:>10} {d:>12} {e:>10} {f:>10}");
    };
    row([
        "command",
        "runs",
        "wall min",
        "wall median",
        "peak RSS",
        "payload",
    ]);
    for (name, m) in [("kubemint", k), ("baseline", b)] {
        let (min, median) = (format!("{:.2} s", m.min()), format!("{:.2} s", m.median()));
        let runs = m.wall.len().to_string();
        let (rss, payload) = (human(m.peak_rss), human(m.payload_size));
        row([name, &runs, &min, &median, &rss, &payload]);
    }
    let ratio = |a: f64, b: f64| format!("{:.2}x", a / b);
    row([
        "kubemint/baseline",
        "",
        &ratio(k.min(), b.min()),
        &ratio(k.median(), b.median()),
        &ratio(k.peak_rss as f64, b.peak_rss as f64),
        &ratio(k.payload_size as f64, b.payload_size as f64),
    ]);
    s.push_str(&format!(
        "\nkubemint: xtask -C PROJECT build-image {PROFILE} --release {RELEASE} --out DIR\n\
         baseline: sh -c SCRIPT sh TARBALL SKELETON HEADER in an empty directory; TARBALL is the \
         pinned release (the file kubemint reads), SKELETON the profile's rendered files and \
         links, HEADER a stand-in for the installer script; SCRIPT:\n"
    ));
    for line in r.baseline_script.lines() {
        let _ = writeln!(s, "    {line}");
    }
    s.push_str(
        "runs alternate kubemint, baseline; the tarball is in the page cache for both. Peak RSS \
         is ru_maxrss from wait4: the largest process among the command and those it waited \
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
    let script = "for t in tar gzip sha256sum; do \"$t\" --version 2>&1 | head -n 1; done";
    let out = Command::new("sh").args(["-c", script]).output();
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
        let k = Measured {
            wall: vec![3.0, 1.0, 2.0],
            peak_rss: 20 << 20,
            payload_size: 60 << 20,
        };
        let b = Measured {
            wall: vec![4.0, 2.0, 5.0, 3.0],
            peak_rss: 10 << 20,
            payload_size: 50 << 20,
        };
        assert_eq!((k.min(), k.median(), b.median()), (1.0, 2.0, 3.5));
        let text = format_report(&Report {
            scale: 1.0,
            release_size: 1 << 30,
            notes: vec!["hardware: 2 CPUs".into()],
            baseline_script: "set -eu\ntrue\n".into(),
            kubemint: k,
            baseline: b,
            kept: None,
        });
        assert!(
            text.contains("x 1, 1.0 GiB), 3 run(s) each\nhardware: 2 CPUs\n"),
            "{text}"
        );
        let cells = |name: &str| {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name:<18} ")))
                .unwrap();
            line.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(cells("kubemint"), "3 1.00 s 2.00 s 20.0 MiB 60.0 MiB");
        assert_eq!(cells("kubemint/baseline"), "0.50x 0.57x 2.00x 1.20x");
        assert!(text.contains("SCRIPT:\n    set -eu\n    true\n"), "{text}");
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

    /// The baseline on a tiny synthetic release: its payload holds what kubemint's does.
    #[test]
    fn baseline_builds_the_tree() {
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
        let gz = flate2::read::GzDecoder::new(File::open(&payload).unwrap());
        let mut archive = tar::Archive::new(gz);
        let entries: std::collections::BTreeMap<String, u64> = (archive.entries().unwrap())
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.path().unwrap().to_string_lossy()[1..].to_owned(),
                    e.size(),
                )
            })
            .collect();
        let real = sample::BINARIES
            .iter()
            .find(|b| b.0 == "kube-apiserver")
            .unwrap()
            .1;
        let size = (real as f64 * 0.0005) as u64;
        assert_eq!(entries.get(&setup.plan.binaries[0].path), Some(&size));
        for f in &setup.plan.files {
            assert_eq!(
                entries.get(&f.path),
                Some(&(f.content.len() as u64)),
                "{}",
                f.path
            );
        }
        for l in &setup.plan.links {
            assert!(entries.contains_key(&l.path), "{entries:?}");
        }
    }
}
