//! `cargo xtask verify`, `diff` and `rebuild-check`: the command lines, the reference builds
//! they make in temporary directories, skopeo for `docker://` references, and rebuild-check's
//! two child builds under different conditions. What they compare is the kubemint library's
//! `audit` stage.

use anyhow::{Context, Result, bail};
use clap::Args;
use kubemint::audit::{self, Expected, Report};
use kubemint::build;
use kubemint::front::{self, EpochOverride};
use kubemint::pack::deflate::Threads;
use kubemint::util::progress::Progress;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status of an audit that ran and found differences.
pub const FOUND: u8 = 1;
/// Exit status of a usage error (clap's too).
pub const USAGE: u8 = 2;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["root", "image", "disk", "output"])))]
pub struct VerifyArgs {
    /// Profiles to verify against (built from the profile set with the sample or pinned release
    /// into a temporary directory); not needed with --manifest
    #[arg(value_name = "PROFILE", required_unless_present = "manifest")]
    pub profiles: Vec<String>,
    /// The profiles directory (default profiles/), e.g. profiles/upgrade
    #[arg(long = "profiles", value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Use this release (a lock entry's name) instead of each profile's
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
    /// Compare against a build from the generated stand-in release (as `build-image --sample`)
    #[arg(long)]
    pub sample: bool,
    /// Compare against this manifest.json instead of building the profiles
    #[arg(long, value_name = "FILE", conflicts_with_all = ["profiles", "sample", "release"])]
    pub manifest: Option<PathBuf>,
    /// An installed root file system (what the installer's --verify checks, from outside)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// An OCI image: oci:PATH[:TAG] (a layout) or docker://REF (copied with skopeo: the only
    /// network use)
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// With a docker:// --image: do not verify the registry's TLS certificate (a loopback or
    /// test registry; skopeo's --src-tls-verify=false)
    #[arg(long, requires = "image")]
    pub no_tls_verify: bool,
    /// A sysext or confext squashfs, the disk image (disk/…) or the bootable disk (boot/…)
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,
    /// A build's output directory (<out root>/<profile>), or an output root holding one per profile
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// With --output: check the output's GPG signatures (`build-image --sign-key`) with this
    /// key (the signer's armored or binary public key; a secret key file works too); a missing
    /// or bad signature, or none at all, is a `signature` finding. Without it, signatures are
    /// noted, not checked
    #[arg(long, value_name = "FILE", requires = "output")]
    pub trusted_key: Option<PathBuf>,
    /// Print the reports as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// The manifests to compare against, and the temporary directory they were built in.
pub struct Reference {
    pub expected: Vec<Expected>,
    pub planned: Option<front::Planned>,
    pub _dir: Option<tempfile::TempDir>,
}

/// Builds `profiles` into a temporary output root and reads each one's manifest.
#[allow(clippy::too_many_arguments)]
pub fn reference_build(
    root: &Path,
    profiles_dir: PathBuf,
    profiles: Vec<String>,
    release: Option<String>,
    sample: bool,
    epoch: Option<EpochOverride>,
    store: kubemint::inputs::store::Store,
    progress: &Progress,
) -> Result<Reference> {
    let req = front::Request {
        root: root.to_owned(),
        profiles_dir,
        selection: front::Selection::Names(profiles),
        release,
        sample,
        epoch,
    };
    let planned = front::plan_set(&req)?;
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    progress.step("building the reference to compare against");
    let opts = build::Options {
        root: root.to_owned(),
        out_root: dir.path().join("out"),
        sample,
        store,
        layer_compression: kubemint::pack::oci::LayerCompression::Gzip,
        threads: Threads::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
        force: true,
        sign_key: None,
    };
    let built = build::build(&planned, &opts, progress)?;
    let expected = built
        .iter()
        .map(|b| Expected::from_dir(&b.dir))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reference {
        expected,
        planned: Some(planned),
        _dir: Some(dir),
    })
}

pub fn verify(
    args: VerifyArgs,
    root: &Path,
    cwd: &Path,
    epoch: Option<EpochOverride>,
    store: kubemint::inputs::store::Store,
    progress: &Progress,
) -> Result<ExitCode> {
    // A target that is not there is a usage error (2), before any reference is built.
    let usage = |what: String| -> Result<ExitCode> {
        eprintln!("error: {what}");
        Ok(ExitCode::from(USAGE))
    };
    for (flag, path, dir) in [
        ("--root", &args.root, true),
        ("--output", &args.output, true),
        ("--disk", &args.disk, false),
        ("--manifest", &args.manifest, false),
        ("--trusted-key", &args.trusted_key, false),
    ] {
        if let Some(p) = path {
            let p = cwd.join(p);
            if (dir && !p.is_dir()) || (!dir && !p.is_file()) {
                return usage(format!(
                    "{flag} {}: no such {}",
                    p.display(),
                    if dir { "directory" } else { "file" }
                ));
            }
        }
    }
    if let Some(image) = &args.image
        && !image.starts_with("docker://")
        && let Err(e) = oci_ref(image, cwd)
    {
        return usage(format!("{e:#}"));
    }
    let reference = match &args.manifest {
        Some(m) => Reference {
            expected: vec![Expected::load(&cwd.join(m))?],
            planned: None,
            _dir: None,
        },
        None => reference_build(
            root,
            crate::profiles_dir(root, cwd, args.profiles_dir.clone()),
            args.profiles.clone(),
            args.release.clone(),
            args.sample,
            epoch,
            store,
            progress,
        )?,
    };
    let trusted_key = args.trusted_key.as_ref().map(|k| cwd.join(k));
    // gpgv's keyrings, for --trusted-key (removed after).
    let scratch = tempfile::tempdir().context("cannot make a temporary directory")?;
    let signatures = audit::verify::Signatures {
        trusted_key: trusted_key.as_deref(),
        scratch: scratch.path(),
    };
    let mut reports: Vec<Report> = Vec::new();
    let mut _copied = None;
    for exp in &reference.expected {
        let report = if let Some(dir) = &args.root {
            audit::verify::root(exp, &cwd.join(dir))
        } else if let Some(disk) = &args.disk {
            audit::verify::disk(exp, &cwd.join(disk), &disk.display().to_string())?
        } else if let Some(out) = &args.output {
            let out = cwd.join(out);
            let dir = if out.join("manifest.json").is_file() {
                out
            } else {
                out.join(&exp.manifest.profile)
            };
            audit::verify::output_dir(exp, &dir, signatures)?
        } else if let Some(image) = &args.image {
            let (layout, tag) = match image.strip_prefix("docker://") {
                Some(_) => {
                    if _copied.is_none() {
                        _copied = Some(skopeo_copy(image, args.no_tls_verify)?);
                    }
                    let d: &tempfile::TempDir = _copied.as_ref().expect("just copied");
                    (d.path().join("layout"), Some("verify".to_owned()))
                }
                None => oci_ref(image, cwd)?,
            };
            audit::verify::oci_layout(exp, &layout, tag.as_deref(), image)?
        } else {
            unreachable!("clap requires a target")
        };
        reports.push(report.finish());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            print!("{}", r.render());
        }
    }
    Ok(if reports.iter().all(Report::is_clean) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FOUND)
    })
}

/// `oci:PATH[:TAG]`: the layout directory and the tag, if any.
fn oci_ref(image: &str, cwd: &Path) -> Result<(PathBuf, Option<String>)> {
    let Some(rest) = image.strip_prefix("oci:") else {
        bail!("--image {image}: give oci:PATH[:TAG] (an OCI layout) or docker://REF");
    };
    let whole = cwd.join(rest);
    if whole.join("index.json").is_file() {
        return Ok((whole, None));
    }
    if let Some((path, tag)) = rest.rsplit_once(':') {
        let dir = cwd.join(path);
        if dir.join("index.json").is_file() {
            return Ok((dir, Some(tag.to_owned())));
        }
    }
    bail!("--image {image}: no OCI layout (index.json) there")
}

/// Copies a registry image into a temporary layout with skopeo, tagged `verify`, and with it
/// what is attached to it under the spec's fallback tag `sha256-<hex>` (where `cargo xtask
/// push` puts it; none there is no error: verify notes it), tagged `referrers`. (A
/// registry's referrers API is not something skopeo reads.)
fn skopeo_copy(image: &str, no_tls_verify: bool) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    let layout = dir.path().join("layout");
    let tls = ["--src-tls-verify=false"];
    let tls: &[&str] = if no_tls_verify { &tls } else { &[] };
    let dest = format!("oci:{}:verify", layout.display());
    crate::skopeo::run(&[&["copy", "--quiet"], tls, &[image, &dest]].concat())?;
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("index.json")).context("skopeo left no index.json")?,
    )?;
    if let Some(digest) = index["manifests"][0]["digest"].as_str() {
        let tag = kubemint::attest::attach::fallback_tag(digest);
        let src = format!("{}:{tag}", crate::skopeo::repository(image));
        let dest = format!("oci:{}:referrers", layout.display());
        let _ = crate::skopeo::run(&[&["copy", "--quiet", "--all"], tls, &[&src, &dest]].concat());
    }
    Ok(dir)
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// One side: a profile (NAME in --profiles, or a path such as profiles/upgrade/master-1), an
    /// output directory (holding manifest.json) or a manifest.json
    #[arg(value_name = "A")]
    pub a: String,
    /// The other side, the same kinds
    #[arg(value_name = "B")]
    pub b: String,
    /// The profiles directory plain names are looked up in (default profiles/)
    #[arg(long = "profiles", value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Build profile sides from the generated stand-in release (as `build-image --sample`)
    #[arg(long)]
    pub sample: bool,
    /// Build profile sides with this release (a lock entry's name) instead of each profile's
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
    /// Print the comparison as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// What a side of `diff` names.
enum SideSpec {
    Profile { dir: PathBuf, name: String },
    Output(PathBuf),
    Manifest(PathBuf),
}

fn side_spec(s: &str, root: &Path, cwd: &Path, profiles: &Path) -> Result<SideSpec> {
    for base in [cwd, root] {
        let p = base.join(s);
        if p.is_dir() && p.join("manifest.json").is_file() {
            return Ok(SideSpec::Output(p));
        }
        if p.is_file() && s.ends_with(".json") {
            return Ok(SideSpec::Manifest(p));
        }
    }
    let stem = s.strip_suffix(".toml").unwrap_or(s);
    if !stem.contains('/') {
        if profiles.join(format!("{stem}.toml")).is_file() {
            return Ok(SideSpec::Profile {
                dir: profiles.to_owned(),
                name: stem.to_owned(),
            });
        }
    } else {
        for base in [cwd, root] {
            let p = base.join(stem);
            if let (Some(dir), Some(name)) = (p.parent(), p.file_name())
                && p.with_extension("toml").is_file()
            {
                return Ok(SideSpec::Profile {
                    dir: dir.to_owned(),
                    name: name.to_string_lossy().into_owned(),
                });
            }
        }
    }
    bail!(
        "{s}: not a profile (in {}), an output directory (with manifest.json) or a manifest.json",
        profiles.display()
    )
}

/// A side, loaded: its manifest, and its plan when one can be had (with a note when not, or
/// when it is recomputed from profiles that changed since the build).
struct Loaded {
    label: String,
    expected: Expected,
    plan: Option<kubemint::front::plan::Plan>,
    notes: Vec<String>,
    _reference: Option<std::rc::Rc<Reference>>,
}

/// The plan of an output's profile, recomputed from the project's profiles; notes when they
/// are not what the build read.
fn replan(
    root: &Path,
    label: &str,
    m: &audit::Manifest,
) -> (Option<kubemint::front::plan::Plan>, Vec<String>) {
    let inputs = m
        .rest
        .get("inputs")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let profile_inputs: Vec<(String, String)> = inputs
        .iter()
        .filter(|i| i["kind"] == "profile")
        .filter_map(|i| {
            Some((
                i["path"].as_str()?.to_owned(),
                i["sha256"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let own = profile_inputs.iter().find(|(p, _)| {
        Path::new(p)
            .file_stem()
            .is_some_and(|s| s == m.profile.as_str())
    });
    let Some((own, _)) = own else {
        return (
            None,
            vec![format!(
                "{label}: its manifest names no profile file of {}; meaning not compared",
                m.profile
            )],
        );
    };
    let mut notes = Vec::new();
    let changed: Vec<&str> = profile_inputs
        .iter()
        .filter(|(p, sha)| {
            kubemint::hash::sha256_file(&root.join(p))
                .map(|(s, _)| s != *sha)
                .unwrap_or(true)
        })
        .map(|(p, _)| p.as_str())
        .collect();
    if !changed.is_empty() {
        notes.push(format!(
            "{label}: its plan is recomputed from the project's profiles, which differ from those the build read: {}",
            changed.join(", ")
        ));
    }
    let dir = root
        .join(own)
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| root.join("profiles"));
    let req = front::Request {
        root: root.to_owned(),
        profiles_dir: dir,
        selection: front::Selection::Names(vec![m.profile.clone()]),
        release: Some(m.release.name.clone()),
        sample: m.sample,
        epoch: Some(EpochOverride {
            seconds: i128::from(m.epoch),
            origin: "the manifest's epoch".into(),
        }),
    };
    match front::plan_set(&req) {
        Ok(mut p) if !p.masters.is_empty() => (Some(p.masters.remove(0).plan), notes),
        Ok(_) => (None, notes),
        Err(e) => {
            notes.push(format!(
                "{label}: cannot re-plan {}: {e}; meaning not compared",
                m.profile
            ));
            (None, notes)
        }
    }
}

pub fn diff(
    args: DiffArgs,
    root: &Path,
    cwd: &Path,
    epoch: Option<EpochOverride>,
    store: kubemint::inputs::store::Store,
    progress: &Progress,
) -> Result<ExitCode> {
    let profiles = crate::profiles_dir(root, cwd, args.profiles_dir.clone());
    let specs = [
        (args.a.clone(), side_spec(&args.a, root, cwd, &profiles)?),
        (args.b.clone(), side_spec(&args.b, root, cwd, &profiles)?),
    ];
    // Profile sides: one reference build per profile set, every named profile of it at once.
    let mut builds: std::collections::BTreeMap<PathBuf, std::rc::Rc<Reference>> =
        Default::default();
    let mut sets: std::collections::BTreeMap<PathBuf, Vec<String>> = Default::default();
    for (_, spec) in &specs {
        if let SideSpec::Profile { dir, name } = spec {
            let names = sets.entry(dir.clone()).or_default();
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    for (dir, names) in sets {
        let r = reference_build(
            root,
            dir.clone(),
            names,
            args.release.clone(),
            args.sample,
            epoch.clone(),
            store.clone(),
            progress,
        )?;
        builds.insert(dir, std::rc::Rc::new(r));
    }
    let mut loaded = Vec::new();
    for (label, spec) in specs {
        loaded.push(match spec {
            SideSpec::Profile { dir, name } => {
                let r = builds[&dir].clone();
                let expected = r
                    .expected
                    .iter()
                    .find(|e| e.manifest.profile == name)
                    .cloned()
                    .context("the reference build lacks a profile it was asked for")?;
                let plan = r
                    .planned
                    .as_ref()
                    .and_then(|p| p.masters.iter().find(|m| m.plan.profile == name))
                    .map(|m| m.plan.clone());
                Loaded {
                    label,
                    expected,
                    plan,
                    notes: Vec::new(),
                    _reference: Some(r),
                }
            }
            SideSpec::Output(dir) => {
                let expected = Expected::from_dir(&dir)?;
                let (plan, notes) = replan(root, &label, &expected.manifest);
                Loaded {
                    label,
                    expected,
                    plan,
                    notes,
                    _reference: None,
                }
            }
            SideSpec::Manifest(file) => {
                let expected = Expected::load(&file)?;
                let (plan, notes) = replan(root, &label, &expected.manifest);
                Loaded {
                    label,
                    expected,
                    plan,
                    notes,
                    _reference: None,
                }
            }
        });
    }
    fn side(l: &Loaded) -> audit::diff::Side<'_> {
        audit::diff::Side {
            label: l.label.clone(),
            manifest: &l.expected.manifest,
            plan: l.plan.as_ref(),
        }
    }
    let mut d = audit::diff::diff(&side(&loaded[0]), &side(&loaded[1]));
    for l in &loaded {
        d.notes.extend(l.notes.iter().cloned());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", d.render());
    }
    Ok(if d.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FOUND)
    })
}

#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// Profiles to build twice
    #[arg(value_name = "PROFILE", required = true)]
    pub profiles: Vec<String>,
    /// The profiles directory (default profiles/), e.g. profiles/upgrade
    #[arg(long = "profiles", value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Build from the generated stand-in release (as `build-image --sample`)
    #[arg(long)]
    pub sample: bool,
    /// Use this release (a lock entry's name) instead of each profile's
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
    /// Print the comparison as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// TEST ONLY: make the second build differ on purpose (its epoch one second later), to
    /// prove the check names the file and field
    #[arg(long, hide = true)]
    pub plant_nondeterminism: bool,
}

/// One of rebuild-check's two builds: where, and under which conditions.
struct Condition {
    name: &'static str,
    /// The project copy's path below the temporary directory (a different depth and name).
    project: &'static str,
    reverse: bool,
    tz: &'static str,
    locale: &'static str,
    umask: libc::mode_t,
    threads: usize,
    /// The child's working directory: the project, or the temporary directory's root.
    in_project: bool,
    extra_env: &'static [(&'static str, &'static str)],
}

const CONDITIONS: [Condition; 2] = [
    Condition {
        name: "a",
        project: "a/project",
        reverse: false,
        tz: "UTC",
        locale: "C",
        umask: 0o022,
        threads: 1,
        in_project: true,
        extra_env: &[],
    },
    Condition {
        name: "b",
        project: "b/elsewhere/kubemint copy",
        reverse: true,
        tz: "Pacific/Chatham",
        locale: "tr_TR.UTF-8",
        umask: 0o077,
        threads: 0,
        in_project: false,
        extra_env: &[
            ("KUBEMINT_REBUILD_NOISE", "1"),
            ("LANGUAGE", "tr"),
            ("COLUMNS", "37"),
        ],
    },
];

/// Copies the project's inputs (profiles/, images/, vendor/releases.toml) into `to`, creating
/// entries in byte order or its reverse (so directories list in another order).
fn copy_project(root: &Path, to: &Path, reverse: bool) -> Result<()> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for sub in ["profiles", "images"] {
        for e in walkdir::WalkDir::new(root.join(sub)).sort_by_file_name() {
            let e = e?;
            let rel = e.path().strip_prefix(root)?.to_owned();
            if e.file_type().is_dir() {
                dirs.push(rel);
            } else {
                files.push((rel, e.file_type().is_symlink()));
            }
        }
    }
    dirs.push(PathBuf::from("vendor"));
    files.push((PathBuf::from("vendor/releases.toml"), false));
    if reverse {
        dirs.reverse();
        files.reverse();
    }
    for d in &dirs {
        std::fs::create_dir_all(to.join(d))
            .with_context(|| format!("cannot create {}", to.join(d).display()))?;
    }
    for (f, link) in &files {
        let (from, dest) = (root.join(f), to.join(f));
        if *link {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &dest)?;
        } else {
            std::fs::copy(&from, &dest)
                .with_context(|| format!("cannot copy {}", from.display()))?;
        }
    }
    Ok(())
}

pub fn rebuild_check(
    args: RebuildArgs,
    root: &Path,
    cwd: &Path,
    store_dir: &Path,
    progress: &Progress,
) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the xtask binary")?;
    let profiles = crate::profiles_dir(root, cwd, args.profiles_dir.clone());
    let set = profiles
        .strip_prefix(root)
        .with_context(|| format!("--profiles {}: rebuild-check copies the project, so the profile set must be inside it", profiles.display()))?
        .to_owned();
    let tmp = tempfile::tempdir().context("cannot make a temporary directory")?;
    let mut outs = Vec::new();
    for c in &CONDITIONS {
        let project = tmp.path().join(c.project);
        copy_project(root, &project, c.reverse)?;
        let out = tmp.path().join(c.name).join("out");
        let threads = if c.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
        } else {
            c.threads
        };
        progress.step(&format!(
            "build {}: TZ={} LC_ALL={} umask {:03o}, {threads} thread(s), {} order, in {}",
            c.name,
            c.tz,
            c.locale,
            c.umask,
            if c.reverse { "reverse" } else { "byte" },
            project.display()
        ));
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("-C")
            .arg(&project)
            .arg("--store")
            .arg(store_dir)
            .arg("build-image")
            .args(&args.profiles)
            .arg("--profiles")
            .arg(project.join(&set))
            .arg("--out")
            .arg(&out)
            .arg("--threads")
            .arg(threads.to_string())
            .arg("--force")
            .arg("--json");
        if args.sample {
            cmd.arg("--sample");
        }
        if let Some(r) = &args.release {
            cmd.arg("--release").arg(r);
        }
        if args.plant_nondeterminism && c.name == "b" {
            cmd.arg("--plant-nondeterminism");
        }
        cmd.current_dir(if c.in_project {
            project.clone()
        } else {
            tmp.path().to_owned()
        })
        .env("TZ", c.tz)
        .env("LC_ALL", c.locale)
        .env("LANG", c.locale)
        .env_remove("KUBEMINT_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        for (k, v) in c.extra_env {
            cmd.env(k, v);
        }
        let umask = c.umask;
        // SAFETY: umask is async-signal-safe and touches only the child's own process state.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            });
        }
        let output = cmd
            .output()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        if !output.status.success() {
            bail!(
                "build {} failed ({}):\n{}",
                c.name,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let built: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("build {}: its --json summary is unreadable", c.name))?;
        outs.push(built);
    }
    #[derive(serde::Serialize)]
    struct ProfileResult {
        profile: String,
        a: PathBuf,
        b: PathBuf,
        comparison: audit::rebuild::Comparison,
    }
    let mut results = Vec::new();
    for (a, b) in outs[0].iter().zip(&outs[1]) {
        let dir = |v: &serde_json::Value| PathBuf::from(v["dir"].as_str().unwrap_or_default());
        let (da, db) = (dir(a), dir(b));
        let comparison = audit::rebuild::compare(&da, &db)?;
        results.push(ProfileResult {
            profile: a["profile"].as_str().unwrap_or_default().to_owned(),
            a: da,
            b: db,
            comparison,
        });
    }
    let same = results.iter().all(|r| r.comparison.differences.is_empty());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            let c = &r.comparison;
            if c.differences.is_empty() {
                println!(
                    "{}: the two builds are identical ({} files compared)",
                    r.profile, c.files
                );
            } else {
                for d in &c.differences {
                    println!("{}: {d}", r.profile);
                }
                if c.more > 0 {
                    println!("{}: … and {} more difference(s)", r.profile, c.more);
                }
                println!(
                    "{}: NOT reproducible: {} difference(s) in {} files compared",
                    r.profile,
                    c.differences.len() + c.more,
                    c.files
                );
            }
        }
        println!(
            "conditions: build a TZ=UTC LC_ALL=C umask 022, 1 thread, byte order, run in its project; build b TZ=Pacific/Chatham LC_ALL=tr_TR.UTF-8 umask 077, N threads, reverse order, another directory and depth, extra environment"
        );
    }
    Ok(if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FOUND)
    })
}
