//! The front end: profile → plan → check, one step shared by every command that starts from
//! profiles (`build-image`, `check`, `plan`, …). Everything here is decided from `profiles/`
//! and `images/` alone: no lock, no store, no network, nothing written.
//!
//! [`plan_set`] takes a [`Request`] (a profile set, a selection, `--release`, `--sample`,
//! `--epoch`) and returns the validated plans of the selection ([`Planned`]) with every finding
//! of every check that needs only plans: flags and configuration files against the release,
//! cross-checks across files, secrets and masters, key material in rendered files and image
//! definitions, the layout of each tree. Names are deduplicated; every problem of every
//! selected profile is reported at once.

pub mod check;
pub mod image;
pub mod plan;
pub mod profile;
pub mod render;
pub mod secrets;

use crate::tree::{Content, Tree};
use crate::util::epoch::Epoch;
use check::{Finding, Report, Severity};
use image::{Image, ImageError};
use plan::{Plan, PlanError};
use profile::{Files, Profile, ProfileError};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Which profiles of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// By name (`<profiles dir>/<NAME>.toml`), in the order given; repeats are dropped.
    Names(Vec<String>),
    /// Every profile of the set (those no other profile inherits).
    All,
}

/// An epoch given on the command line or by the environment, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochOverride {
    pub seconds: i128,
    /// `--epoch` or `SOURCE_DATE_EPOCH`, for the message if it is out of range.
    pub origin: String,
}

/// What to plan. Every value the front end depends on is here.
#[derive(Clone, Debug)]
pub struct Request {
    /// The project: `images/` lives here, and paths in messages are relative to it.
    pub root: PathBuf,
    /// The profile set: `<root>/profiles`, or another such as `profiles/upgrade`.
    pub profiles_dir: PathBuf,
    pub selection: Selection,
    /// Plan against this release instead of each profile's `release`.
    pub release: Option<String>,
    /// Plans for the generated stand-in release.
    pub sample: bool,
    /// Overrides every profile's `epoch`.
    pub epoch: Option<EpochOverride>,
}

/// One selected master: its profile and its plan.
#[derive(Clone, Debug)]
pub struct Master {
    pub profile: Profile,
    pub plan: Plan,
}

/// The validated plans of a selection, and what the checks found.
#[derive(Clone, Debug)]
pub struct Planned {
    pub set: check::Set,
    pub masters: Vec<Master>,
    /// The image definitions the plans were made from, by name.
    pub images: BTreeMap<String, Image>,
    pub report: Report,
}

impl Planned {
    /// The releases the plans name, each once, sorted.
    pub fn releases(&self) -> BTreeSet<&str> {
        self.masters
            .iter()
            .map(|m| m.plan.release.name.as_str())
            .collect()
    }
}

/// Why a selection could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error(
        "no profile selected: name one or more (e.g. master-1), or pass --all with a profiles directory that has some (looked in {0})"
    )]
    NoProfiles(PathBuf),
    #[error("{origin}={seconds}: {message}")]
    Epoch {
        origin: String,
        seconds: i128,
        message: String,
    },
    #[error("{}", Problems(.0))]
    Invalid(Vec<Invalid>),
}

/// One reason a profile of the selection has no plan.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Read(#[from] secrets::ReadError),
}

struct Problems<'a>(&'a [Invalid]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The names a selection stands for in `dir`, in order, each once.
pub fn names(dir: &Path, selection: &Selection) -> Result<Vec<String>, ProfileError> {
    names_in(Files::disk(), dir, selection)
}

fn names_in(
    files: Files<'_>,
    dir: &Path,
    selection: &Selection,
) -> Result<Vec<String>, ProfileError> {
    let mut names = match selection {
        Selection::All => profile::list_in(files, dir)?,
        Selection::Names(n) => n.clone(),
    };
    let mut seen = BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    Ok(names)
}

/// Plans and checks the selection: the one front end.
pub fn plan_set(req: &Request) -> Result<Planned, FrontError> {
    plan_set_in(req, Files::disk())
}

/// [`plan_set`], reading the profile files through `files` (texts that stand in for some of
/// them: what `upgrade-plan` checks before anything is written).
pub fn plan_set_in(req: &Request, files: Files<'_>) -> Result<Planned, FrontError> {
    let epoch = req
        .epoch
        .as_ref()
        .map(|e| {
            Epoch::new(e.seconds).map_err(|message| FrontError::Epoch {
                origin: e.origin.clone(),
                seconds: e.seconds,
                message,
            })
        })
        .transpose()?;
    let names = names_in(files, &req.profiles_dir, &req.selection)
        .map_err(|e| FrontError::Invalid(vec![e.into()]))?;
    if names.is_empty() {
        return Err(FrontError::NoProfiles(req.profiles_dir.clone()));
    }

    // Every profile first, so that all of their problems are reported together.
    let mut invalid = Vec::new();
    let mut profiles = Vec::new();
    for name in &names {
        match profile::load_in(files, &req.profiles_dir, name) {
            Ok(mut p) => {
                if let Some(e) = epoch {
                    p.epoch = e;
                }
                profiles.push(p);
            }
            Err(e) => invalid.push(e.into()),
        }
    }
    let images_dir = req.root.join("images");
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    let mut report = Report::default();
    for p in &profiles {
        if images.contains_key(&p.image) {
            continue;
        }
        match Image::load(&images_dir, &p.image) {
            Ok(image) => {
                let shown = relative(&req.root, &image.dir);
                match secrets::scan_image_dir(&image.dir, &shown, &p.name) {
                    Ok(found) => report.findings.extend(found),
                    Err(e) => invalid.push(e.into()),
                }
                images.insert(p.image.clone(), image);
            }
            Err(e) => {
                if !invalid
                    .iter()
                    .any(|i| matches!(i, Invalid::Image(o) if o.to_string() == e.to_string()))
                {
                    invalid.push(e.into());
                }
            }
        }
    }
    let mut masters = Vec::new();
    for p in profiles {
        let Some(image) = images.get(&p.image) else {
            continue;
        };
        let release = req.release.clone().unwrap_or_else(|| p.release.clone());
        match plan::plan(&p, image, &release, req.sample) {
            Ok(plan) => masters.push(Master { profile: p, plan }),
            Err(e) => invalid.push(e.into()),
        }
    }
    if !invalid.is_empty() {
        return Err(FrontError::Invalid(invalid));
    }

    let set = profile_set(files, &req.profiles_dir, &names, &masters, &mut report);
    let checked = check::run(&set, masters.iter().map(|m| (&m.profile, &m.plan)));
    report.checked = checked.checked;
    report.findings.extend(checked.findings);
    let mut scanned = BTreeSet::new();
    for m in &masters {
        // Each profile file once, even when every master inherits it.
        let files: Vec<(String, String)> = m
            .profile
            .sources
            .iter()
            .filter(|src| scanned.insert(src.path.clone()))
            .filter_map(|src| {
                let text = std::fs::read_to_string(&src.path).ok()?;
                Some((relative(&req.root, &src.path), text))
            })
            .collect();
        report
            .findings
            .extend(secrets::scan_profile(&m.profile.name, &files));
        report.findings.extend(secrets::scan_plan(&m.plan));
        report.findings.extend(layout(&m.plan));
    }
    Ok(Planned {
        set,
        masters,
        images,
        report,
    })
}

/// The set the selection belongs to: how many of its masters run kube-apiserver. Profiles of
/// the set that were not selected are loaded for that; one that does not load is still
/// counted from its files, and is a warning, never silently left out.
fn profile_set(
    files: Files<'_>,
    dir: &Path,
    selected: &[String],
    masters: &[Master],
    report: &mut Report,
) -> check::Set {
    let runs_apiserver = |p: &Profile| p.components.contains_key("kube-apiserver");
    let mut apiservers = masters
        .iter()
        .filter(|m| runs_apiserver(&m.profile))
        .count();
    for name in profile::list_in(files, dir).unwrap_or_default() {
        if selected.contains(&name) {
            continue;
        }
        match profile::load_in(files, dir, &name) {
            Ok(p) => apiservers += usize::from(runs_apiserver(&p)),
            Err(e) => {
                apiservers += usize::from(profile::declares_component_in(
                    files,
                    dir,
                    &name,
                    "kube-apiserver",
                ));
                report.findings.push(
                    Finding::new(
                        Severity::Warning,
                        &name,
                        format!(
                            "another profile of {} does not load ({} problem{}): checks across the set see only what its files say",
                            dir.display(),
                            e.problems.len(),
                            if e.problems.len() == 1 { "" } else { "s" }
                        ),
                    )
                    .fix(format!("see them with `cargo xtask check {name}`")),
                );
            }
        }
    }
    check::Set {
        dir: dir.display().to_string(),
        apiservers,
    }
}

/// The tree a plan describes must be one kubemint can write: paths valid, inside `/usr`,
/// `/opt` and `/etc`, nothing twice, no file where a directory must be. Checked on the plan,
/// with the tree's own rules, before any input is read.
fn layout(plan: &Plan) -> Vec<Finding> {
    let mut tree = Tree::new();
    let mut out = Vec::new();
    let mut add = |r: Result<(), crate::tree::TreeError>| {
        if let Err(e) = r {
            out.push(
                Finding::new(Severity::Error, &plan.profile, e.to_string())
                    .fix("correct the path in the profile's paths or in images/<image>/image.toml"),
            );
        }
    };
    for b in &plan.binaries {
        add(tree.add_file_hashed(
            &b.path,
            b.mode,
            Content::Inline(Vec::new()),
            0,
            String::new(),
        ));
    }
    for f in &plan.files {
        add(tree.add_file_hashed(
            &f.path,
            f.mode,
            Content::Inline(Vec::new()),
            0,
            String::new(),
        ));
    }
    for l in &plan.links {
        add(tree.add_symlink(&l.path, &l.target));
    }
    for owned in &plan.owns {
        if tree.get(owned).is_none_or(|e| e.type_name() != "dir") {
            out.push(
                Finding::new(
                    Severity::Error,
                    &plan.profile,
                    format!("{owned}: the image says it owns this directory, but its tree has none there"),
                )
                .fix(format!("correct owns in images/{}/image.toml", plan.image)),
            );
        }
    }
    out
}

/// `path` relative to the project root, with `/` separators: never the checkout's location.
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
