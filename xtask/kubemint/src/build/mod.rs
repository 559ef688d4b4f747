//! `build-image`: runs the stages after the front end for each planned master — verified
//! inputs → tree → packers (payload and installer, OCI image, disk images) → attestations
//! (SBOMs, provenance, OCI artefacts, signatures: [`crate::attest`]) → manifest.json and
//! SHA256SUMS — staging every output of the build, then swapping them all into place
//! ([`outputs`]), so a failed build leaves every previous output untouched.

pub mod key;
pub mod outputs;
pub mod summary;

use crate::attest::{self, attach, sign};
use crate::front::plan::Plan;
use crate::front::profile::Source;
use crate::front::{Planned, relative};
use crate::inputs::extract::{self, ExtractError};
use crate::inputs::lock::Release;
use crate::inputs::{self, InputError, Located};
use crate::manifest::{Input, Manifest, Output};
use crate::pack::boot::{self, BaseParts};
use crate::pack::deflate::cache::ChunkCache;
use crate::pack::deflate::{self, Threads};
use crate::pack::oci::{self, LayerCache, LayerCompression};
use crate::pack::{disk, installer, squashfs};
use crate::report;
use crate::tree::{self, Tree, TreeError};
use crate::util::progress::Progress;
use outputs::{OutputRoot, Staged};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How to build planned masters. Every value a build depends on is here or in the plans;
/// nothing is read from the environment.
#[derive(Clone, Debug)]
pub struct Options {
    /// The project: `vendor/` lives here, and inputs are recorded relative to it.
    pub root: PathBuf,
    /// Where output directories go: see [`out_root`].
    pub out_root: PathBuf,
    /// Build from the generated stand-in release instead of the pinned tarball.
    pub sample: bool,
    /// Where pinned inputs (releases, bases) are found.
    pub store: crate::inputs::store::Store,
    /// How OCI layers are stored.
    pub layer_compression: LayerCompression,
    /// How many threads compress. No byte of any output depends on it.
    pub threads: Threads,
    /// Rebuild profiles whose outputs are up to date too.
    pub force: bool,
    /// Sign SHA256SUMS and the provenance with this armored OpenPGP secret key ([`attest::sign`]).
    pub sign_key: Option<PathBuf>,
}

/// Whether a profile's output was built by this build or already up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Built and swapped in by this build.
    Built,
    /// Its output was built from the same inputs and is intact: nothing was written.
    UpToDate,
}

/// One profile's finished build.
#[derive(Clone, Debug, Serialize)]
pub struct Built {
    pub profile: String,
    pub release: String,
    pub sample: bool,
    pub dir: PathBuf,
    pub files: usize,
    pub outputs: Vec<Output>,
    /// manifest.json itself (not listed in its own outputs).
    pub manifest: Output,
    /// What the user should know of this build (e.g. why it has no bootable disk).
    pub notes: Vec<String>,
    /// `built`, or `up-to-date` when nothing needed building.
    pub status: Status,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "refusing to build: the checks found {0} error{s} (shown above; see them again with `cargo xtask check`)",
        s = if *.0 == 1 { "" } else { "s" }
    )]
    Refused(usize),
    #[error("interrupted: no output was replaced, and what the build had written is removed")]
    Interrupted,
    #[error(transparent)]
    Output(#[from] outputs::OutputError),
    #[error(transparent)]
    Boot(#[from] crate::pack::boot::BootError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    #[error("{profile}: {source}")]
    Tree { profile: String, source: TreeError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| {
        if crate::util::progress::is_cancelled(&source) {
            BuildError::Interrupted
        } else {
            BuildError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
}

/// The output root: `target/images` (or `--out`), then `sample/` for a sample build, then the
/// profile set's directory name when it is not `profiles/` (so `profiles/upgrade` builds land
/// in `…/upgrade/` and never replace the seed set's).
pub fn out_root(
    root: &Path,
    profiles_dir: &Path,
    sample: bool,
    out: Option<&Path>,
) -> Result<PathBuf, outputs::OutputError> {
    if out.is_some_and(|o| o.parent().is_none()) {
        return Err(outputs::OutputError::Slash);
    }
    let mut base = out
        .map(Path::to_owned)
        .unwrap_or_else(|| root.join("target").join("images"));
    if sample {
        base = base.join("sample");
    }
    if profiles_dir != root.join("profiles")
        && let Some(set) = profiles_dir.file_name()
    {
        base = base.join(set);
    }
    Ok(base)
}

/// Builds every planned master, each into `<out root>/<profile>/`. Refuses plans the checks
/// found errors in.
pub fn build(
    planned: &Planned,
    opts: &Options,
    progress: &Progress,
) -> Result<Vec<Built>, BuildError> {
    let errors = planned.report.errors();
    if errors > 0 {
        return Err(BuildError::Refused(errors));
    }
    // The output root, locked; every output path checked before any work is done.
    let profiles: Vec<&str> = planned
        .masters
        .iter()
        .map(|m| m.plan.profile.as_str())
        .collect();
    let root = OutputRoot::open(&opts.out_root, &profiles, progress)?;

    // What each release and base is, by digest, without reading either: enough to know which
    // outputs are up to date before anything is read or written.
    let source = if opts.sample {
        inputs::Source::Sample {
            scratch: root.session().to_owned(),
        }
    } else {
        inputs::Source::Store {
            vendor: opts.root.join("vendor"),
            store: opts.store.clone(),
        }
    };
    let releases = source.identify(planned.releases())?;
    // The signing key, by the digest of its file: part of every build key, never printed.
    let signing = match &opts.sign_key {
        Some(k) => Some(crate::util::hash::sha256_file(k).map_err(io_err(k))?.0),
        None => None,
    };
    let set = relative(&opts.root, Path::new(&planned.set.dir));
    let vendor = opts.root.join("vendor");
    let mut bases: BTreeMap<String, Result<(String, PathBuf), String>> = BTreeMap::new();
    for name in planned.masters.iter().filter_map(|m| m.plan.base.clone()) {
        if bases.contains_key(&name) {
            continue;
        }
        let pinned = crate::inputs::lock::Lock::load(&vendor)
            .ok()
            .and_then(|l| l.base(&name).cloned());
        let found = pinned
            .as_ref()
            .and_then(|b| opts.store.find(&b.sha512).map(|p| (b.sha512.clone(), p)));
        let found = found.ok_or_else(|| match pinned {
            None => format!(
                "no bootable disk: base {name} is not pinned; make it with `cargo xtask base {name}` (or pin one made elsewhere: `cargo xtask pin {name} --file PATH`)"
            ),
            Some(b) => format!(
                "no bootable disk: base {name} (sha512 {}) is not in the store; make it with `cargo xtask base {name}` (or pin one: `cargo xtask pin {name} --file PATH`)",
                b.sha512
            ),
        });
        bases.insert(name, found);
    }

    // Each master's inputs and key; those whose output is intact and has the same key are
    // done already.
    let mut built: Vec<Option<Built>> = Vec::new();
    let mut todo = Vec::new();
    for (i, m) in planned.masters.iter().enumerate() {
        let plan = &m.plan;
        let release = &releases[&plan.release.name];
        let base = plan.base.as_ref().and_then(|b| bases.get(b));
        let inputs = inputs_of(m, planned, release, base, &opts.root);
        let note = base.and_then(|b| b.as_ref().err()).map(String::as_str);
        let key = key::key(
            plan,
            &inputs,
            note,
            opts.layer_compression,
            signing.as_deref(),
        );
        let dir = root.path().join(&plan.profile);
        match key::Record::up_to_date(&dir, &key).filter(|_| !opts.force) {
            Some(record) => built.push(Some(Built {
                profile: plan.profile.clone(),
                release: plan.release.name.clone(),
                sample: plan.sample,
                dir,
                files: record.entries,
                outputs: record.outputs,
                manifest: record.manifest,
                notes: record.notes,
                status: Status::UpToDate,
            })),
            None => {
                built.push(None);
                todo.push((i, inputs, key));
            }
        }
    }
    if todo.is_empty() {
        set_report(&root, progress);
        return Ok(built.into_iter().flatten().collect());
    }
    let session = root.make_session()?;

    // The inputs: each release the plans to build name, located (or generated) once.
    let located = source.locate(
        todo.iter()
            .map(|(i, _, _)| planned.masters[*i].plan.release.name.as_str()),
    )?;

    // One pass over each release tarball, for the members every plan on it needs.
    let mut spooled = BTreeMap::new();
    for Located { release, tarball } in &located {
        let name = &release.name;
        let wanted: BTreeSet<String> = todo
            .iter()
            .map(|(i, _, _)| &planned.masters[*i])
            .filter(|m| &m.plan.release.name == name)
            .flat_map(|m| m.plan.binaries.iter().map(|b| b.member.clone()))
            .collect();
        let spool = session.join(format!("spool-{name}"));
        std::fs::create_dir(&spool).map_err(io_err(&spool))?;
        progress.step(&format!("reading {} ({name})", tarball.display()));
        let members = extract::extract(tarball, &release.sha512, &wanted, &spool, progress)?;
        let size = std::fs::metadata(tarball).map_err(io_err(tarball))?.len();
        spooled.insert(name.clone(), (release, members, size));
    }

    // The base of the bootable disks, once per base the masters to build name, when the store
    // has it; without it every other output is built, and the note says how to get it.
    let mut parts: BTreeMap<String, BaseParts> = BTreeMap::new();
    for (i, _, _) in &todo {
        let Some(name) = &planned.masters[*i].plan.base else {
            continue;
        };
        let Some(Ok((sha512, tarball))) = bases.get(name) else {
            continue;
        };
        if parts.contains_key(name) {
            continue;
        }
        progress.step(&format!("reading base {name} ({})", tarball.display()));
        // Kept beside the base's tarball, in the store that holds it.
        let cache = boot::usr_cache_name(sha512);
        let beside = tarball
            .parent()
            .and_then(Path::parent)
            .map(|root| root.join("derived").join(&cache))
            .unwrap_or_else(|| opts.store.derived_path_for(&cache));
        let prepared = boot::prepare_base(
            name,
            tarball,
            sha512,
            &session.join(format!("base-{name}")),
            (opts.store.derived(&cache), beside),
            progress,
        )?;
        parts.insert(name.clone(), prepared);
    }

    let layers = session.join("layers");
    std::fs::create_dir(&layers).map_err(io_err(&layers))?;
    let mut cache = LayerCache::new(layers);
    // Each release's binaries, compressed once for every master and output that carries them.
    let mut chunks: BTreeMap<String, ChunkCache> = BTreeMap::new();
    let mut staged = Vec::new();
    let mut sha1s = attest::Sha1Cache::new();
    // Output files are made durable on a thread of their own while the next ones are written;
    // every one is synced before the swap below.
    let syncer = Syncer::start();
    for (i, inputs, key) in todo {
        let m = &planned.masters[i];
        let plan = &m.plan;
        let (release, members, release_size) = &spooled[&plan.release.name];
        let tree = tree::from_plan(plan, members).map_err(|source| BuildError::Tree {
            profile: plan.profile.clone(),
            source,
        })?;
        let compressed = session.join(format!("chunks-{}", plan.release.name));
        if !chunks.contains_key(&plan.release.name) {
            std::fs::create_dir(&compressed).map_err(io_err(&compressed))?;
            progress.step(&format!(
                "compressing the binaries of {}",
                plan.release.name
            ));
        }
        // Kept in the store across builds and output roots, by release, compressor and
        // generator version; every entry taken is checked first.
        let kept = opts
            .store
            .derived_path_for(&deflate::cache::kept_name(&release.sha512));
        let added = chunks
            .entry(plan.release.name.clone())
            .or_default()
            .add_spooled_kept(&tree, &compressed, Some(&kept), opts.threads)
            .map_err(|e| io_err(&compressed)(e.into()))?;
        if added.reused > 0 {
            progress.step(&format!(
                "reused the compressed binaries of {} ({} file{} kept in {})",
                plan.release.name,
                added.reused,
                if added.reused == 1 { "" } else { "s" },
                kept.display()
            ));
        }
        if added.rewritten > 0 {
            progress.notice(&format!(
                "{}: {} kept compressed file{} not intact, compressed again and replaced",
                kept.display(),
                added.rewritten,
                if added.rewritten == 1 {
                    " was"
                } else {
                    "s were"
                }
            ));
        }
        progress.step(&format!("packing {}", plan.profile));
        let stage = session.join(format!("stage-{}", plan.profile));
        std::fs::create_dir(&stage).map_err(io_err(&stage))?;
        let base = plan.base.as_ref().and_then(|b| parts.get(b));
        let mut packing = Packing {
            compression: opts.layer_compression,
            cache: &mut cache,
            chunks: Some(&chunks[&plan.release.name]),
            threads: opts.threads,
            syncer: &syncer,
            sha1s: &mut sha1s,
            set: &set,
            sign_key: opts.sign_key.as_deref(),
        };
        let (mut b, manifest_sha256) = write_outputs(
            plan,
            release,
            &tree,
            *release_size,
            inputs,
            &stage,
            &mut packing,
            base,
            progress,
        )?;
        if let Some(Err(note)) = plan.base.as_ref().and_then(|b| bases.get(b)) {
            b.notes.push(note.clone());
        }
        key::Record::of(&stage, key, &b)
            .and_then(|r| r.write(&stage))
            .map_err(io_err(&stage))?;
        progress.check().map_err(io_err(&stage))?;
        staged.push(Staged {
            profile: plan.profile.clone(),
            dir: stage,
            manifest_sha256,
        });
        b.dir = root.path().join(&plan.profile);
        built[i] = Some(b);
    }
    // Every output is ready and durable: now, and only now, they replace the previous ones.
    syncer.finish()?;
    root.swap_in(&staged)?;
    set_report(&root, progress);
    Ok(built.into_iter().flatten().collect())
}

/// The set's page, `<out root>/report.html`: every output directory of the root side by side,
/// from their manifest.json as they now are; written (staged, then renamed over the old one)
/// only when its bytes change. The outputs are in place already: a page that cannot be made
/// is a warning (and the old page, now stale, is removed), not a failed build.
fn set_report(root: &OutputRoot, progress: &Progress) {
    let path = root.path().join(report::FILE);
    let made = report::read_root(root.path())
        .map_err(|e| e.to_string())
        .and_then(|masters| {
            if masters.is_empty() {
                return Ok(());
            }
            let page = report::render(&masters, None);
            if std::fs::read(&path).is_ok_and(|old| old == page.as_bytes()) {
                return Ok(());
            }
            progress.step(&format!("writing {}", path.display()));
            root.put_file(report::FILE, page.as_bytes())
                .map_err(|e| e.to_string())
        });
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        progress.notice(&format!(
            "warning: the outputs are in place, but not the set's report.html: {e}; make it with `cargo xtask report {} -o {}`",
            root.path().display(),
            path.display()
        ));
    }
}

/// What `m`'s build reads, as manifest.json lists it: the release, the profile's files, the
/// image definition and templates, and the base when the store has it.
fn inputs_of(
    m: &crate::front::Master,
    planned: &Planned,
    release: &Release,
    base: Option<&Result<(String, PathBuf), String>>,
    root: &Path,
) -> Vec<Input> {
    let mut inputs = vec![Input {
        kind: "release".into(),
        path: release.file.clone(),
        sha256: None,
        sha512: Some(release.sha512.clone()),
    }];
    let rel = |s: &Source, kind: &str| Input {
        kind: kind.into(),
        path: relative(root, &s.path),
        sha256: Some(s.sha256.clone()),
        sha512: None,
    };
    inputs.extend(m.profile.sources.iter().map(|s| rel(s, "profile")));
    let image = &planned.images[&m.plan.image];
    inputs.extend(
        image
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| rel(s, if i == 0 { "image" } else { "template" })),
    );
    if let (Some(name), Some(Ok((sha512, _)))) = (&m.plan.base, base) {
        inputs.push(Input {
            kind: "base".into(),
            path: format!("{name}.tar"),
            sha256: None,
            sha512: Some(sha512.clone()),
        });
    }
    inputs
}

/// What packers share across the profiles of one build.
struct Packing<'a> {
    compression: LayerCompression,
    cache: &'a mut LayerCache,
    /// The release's binaries, compressed.
    chunks: Option<&'a ChunkCache>,
    threads: Threads,
    syncer: &'a Syncer,
    /// SHA-1s of the files already read for an SBOM.
    sha1s: &'a mut attest::Sha1Cache,
    /// The profile set, project-relative.
    set: &'a str,
    sign_key: Option<&'a Path>,
}

/// Syncs finished files on a thread of its own, so that the disk writes one output while the
/// cores make the next; [`Syncer::finish`] waits for every file sent and reports the first
/// error. Nothing is swapped in before it returns, so the outputs are as durable as when each
/// was synced where it was written.
struct Syncer {
    tx: Option<std::sync::mpsc::Sender<(PathBuf, File)>>,
    thread: Option<std::thread::JoinHandle<Result<(), BuildError>>>,
}

impl Syncer {
    fn start() -> Syncer {
        let (tx, rx) = std::sync::mpsc::channel::<(PathBuf, File)>();
        let thread = std::thread::spawn(move || {
            let mut first = Ok(());
            for (path, file) in rx {
                if first.is_ok() {
                    first = file.sync_all().map_err(io_err(&path));
                }
            }
            first
        });
        Syncer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Syncs `file` (at `path`) before [`Syncer::finish`] returns.
    fn sync(&self, path: &Path, file: File) -> Result<(), BuildError> {
        match self.tx.as_ref().map(|tx| tx.send((path.to_owned(), file))) {
            Some(Ok(())) => Ok(()),
            Some(Err(std::sync::mpsc::SendError((_, file)))) => {
                file.sync_all().map_err(io_err(path))
            }
            None => Ok(()),
        }
    }

    /// Waits until every file sent is synced.
    fn finish(mut self) -> Result<(), BuildError> {
        self.tx = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes payload, installer, OCI layout and archive, disk images, SBOMs, provenance (and
/// signatures), manifest.json and SHA256SUMS into `dir` (a staging directory), in the order
/// [`crate::attest`] gives; returns what was built and the sha256 of its manifest.json.
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    plan: &Plan,
    release: &Release,
    tree: &Tree,
    release_size: u64,
    inputs: Vec<Input>,
    dir: &Path,
    packing: &mut Packing<'_>,
    base: Option<&BaseParts>,
    progress: &Progress,
) -> Result<(Built, String), BuildError> {
    // The three packers read the same tree and write different files: run them side by side.
    let how = squashfs::Options {
        threads: packing.threads,
        cache: packing.chunks,
    };
    let syncer = packing.syncer;
    let (installer, oci, disk) = std::thread::scope(|s| {
        let installer =
            s.spawn(|| write_payload_and_installer(plan, tree, dir, &how, syncer, progress));
        let oci = s.spawn(|| write_oci(plan, release, tree, dir, packing, progress));
        let disk = write_disk_images(plan, tree, dir, base, &how, syncer, progress);
        let installer = installer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let oci = oci.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (installer, oci, disk)
    });
    let mut outputs = installer?;
    let (archive_row, image) = oci?;
    let (disk_outputs, ddi, boot) = disk?;
    let layout = dir.join("oci");

    // The attestations (see crate::attest for why in this order): SBOMs of the tree, then the
    // provenance of every output so far, then the three attached to the OCI layout, and only
    // then the layout's row and the archive, which carry them.
    progress.step(&format!(
        "writing the SBOMs and provenance of {}",
        plan.profile
    ));
    let files = attest::file_digests(plan, tree, packing.sha1s).map_err(io_err(dir))?;
    let layers = packing.compression.name();
    let subject = attest::Subject {
        plan,
        release,
        set: packing.set,
        tree,
        inputs: &inputs,
        layers,
        image: &image,
    };
    let spdx = attest::spdx::document(&subject, &files);
    let cdx = attest::cyclonedx::document(&subject, &files);
    let spdx_row = write_small(dir, "sbom-spdx", attest::SPDX_FILE, &spdx, syncer)?;
    let cdx_row = write_small(dir, "sbom-cyclonedx", attest::CYCLONEDX_FILE, &cdx, syncer)?;
    let mut subjects: Vec<(String, String)> = outputs
        .iter()
        .chain([&archive_row])
        .chain(&disk_outputs)
        .chain([&spdx_row, &cdx_row])
        .map(|o| (o.path.clone(), o.sha256.clone()))
        .collect();
    // The update server's SHA256SUMS beside each extension image.
    subjects.extend(disk_outputs.iter().filter_map(update_sums_row));
    let manifest_hex = image.manifest_digest["sha256:".len()..].to_owned();
    subjects.push((format!("oci/blobs/sha256/{manifest_hex}"), manifest_hex));
    subjects.sort();
    let prov = attest::provenance::document(&subject, &subjects);
    let prov_row = write_small(dir, "provenance", attest::PROVENANCE_FILE, &prov, syncer)?;
    attach::attach(
        &layout,
        &image,
        &[
            attach::Document {
                artifact_type: attach::SPDX_TYPE,
                title: attest::SPDX_FILE,
                bytes: &spdx,
            },
            attach::Document {
                artifact_type: attach::CYCLONEDX_TYPE,
                title: attest::CYCLONEDX_FILE,
                bytes: &cdx,
            },
            attach::Document {
                artifact_type: attach::IN_TOTO_TYPE,
                title: attest::PROVENANCE_FILE,
                bytes: &prov,
            },
        ],
        plan.epoch,
    )
    .map_err(io_err(&layout))?;
    outputs.extend([layout_row(dir)?, archive_row]);
    outputs.extend(disk_outputs);
    outputs.extend([spdx_row, cdx_row, prov_row]);

    // Signatures made before manifest.json are listed in it; SHA256SUMS.gpg cannot be.
    let signer = match packing.sign_key {
        Some(key) => {
            let home = dir.with_file_name(format!("gnupg-{}", plan.profile));
            Some(sign::Signer::new(key, &home, plan.epoch)?)
        }
        None => None,
    };
    if let Some(signer) = &signer {
        progress.step(&format!("signing the provenance of {}", plan.profile));
        let mut signed = vec![attest::PROVENANCE_FILE.to_owned()];
        signed.extend(outputs.iter().filter_map(update_sums).map(|(path, _)| path));
        for rel in signed {
            let sig = signer.sign(&dir.join(&rel))?;
            let (sha256, size) = crate::util::hash::sha256_file(&sig).map_err(io_err(&sig))?;
            outputs.push(Output {
                kind: "signature".into(),
                path: format!("{rel}.gpg"),
                size,
                sha256,
            });
        }
    }

    let read = crate::manifest::Release {
        name: release.name.clone(),
        file: release.file.clone(),
        sha512: release.sha512.clone(),
        size: release_size,
    };
    let mut manifest = Manifest::new(plan, read, inputs, tree, outputs.clone(), image, ddi);
    manifest.boot = boot;
    // This master's page, from the manifest as it is before its own row: then its row.
    let page = report::render(
        &[report::Master {
            manifest: report::View::of(&manifest),
            manifest_sha256: None,
        }],
        None,
    );
    let page_row = write_small(dir, "report", report::FILE, page.as_bytes(), syncer)?;
    manifest.outputs.push(page_row.clone());
    outputs.push(page_row);
    let bytes = manifest.to_bytes();
    let manifest_row = write_small(dir, "manifest", "manifest.json", &bytes, syncer)?;

    // Every output file, the layout's included, for `sha256sum -c SHA256SUMS`.
    let mut sums: Vec<(String, String)> = Vec::new();
    for o in outputs.iter().chain(std::iter::once(&manifest_row)) {
        sums.extend(update_sums_row(o));
        if o.kind == "oci-layout" {
            for (rel, sha256) in oci::layout_sums(&layout).map_err(io_err(&layout))? {
                sums.push((format!("{}/{rel}", o.path), sha256));
            }
        } else {
            sums.push((o.path.clone(), o.sha256.clone()));
        }
    }
    sums.sort();
    let text: String = sums
        .iter()
        .map(|(path, sha256)| format!("{sha256}  {path}\n"))
        .collect();
    write_small(dir, "sums", "SHA256SUMS", text.as_bytes(), syncer)?;
    if let Some(signer) = &signer {
        let sig = signer.sign(&dir.join("SHA256SUMS"))?;
        let file = File::open(&sig).map_err(io_err(&sig))?;
        syncer.sync(&sig, file)?;
    }
    drop(signer);
    fix_modes(dir)?;

    let manifest_sha256 = manifest_row.sha256.clone();
    Ok((
        Built {
            profile: plan.profile.clone(),
            release: plan.release.name.clone(),
            sample: plan.sample,
            dir: dir.to_owned(),
            files: tree.len(),
            outputs,
            manifest: manifest_row,
            notes: Vec::new(),
            status: Status::Built,
        },
        manifest_sha256,
    ))
}

/// `<profile>.tar.gz` and the installer that carries it.
fn write_payload_and_installer(
    plan: &Plan,
    tree: &Tree,
    dir: &Path,
    how: &squashfs::Options<'_>,
    syncer: &Syncer,
    progress: &Progress,
) -> Result<Vec<Output>, BuildError> {
    let payload_name = format!("{}.tar.gz", plan.profile);
    let payload_path = dir.join(&payload_name);
    let bar = progress.bar(&payload_name, Some(tree.content_size()));
    let file = BufWriter::with_capacity(1 << 20, create(&payload_path)?);
    let (file, written) =
        deflate::tar::write_tar_gz(tree, plan.epoch, file, how.cache, how.threads, &bar)
            .map_err(|e| io_err(&payload_path)(e.into()))?;
    finish_file(file, &payload_path, syncer)?;
    bar.finish();
    let payload = Output {
        kind: "payload".into(),
        path: payload_name,
        size: written.size,
        sha256: written.sha256,
    };

    let installer_name = format!("{}-install.sh", plan.profile);
    let installer_path = dir.join(&installer_name);
    let out = crate::util::hash::Sha256Writer::new(BufWriter::new(create(&installer_path)?));
    let out = installer::write(plan, tree, &payload_path, &payload.sha256, out)
        .map_err(io_err(&installer_path))?;
    let (file, sha256, size) = out.finish();
    finish_file(file, &installer_path, syncer)?;
    Ok(vec![
        payload,
        Output {
            kind: "installer".into(),
            path: installer_name,
            size,
            sha256,
        },
    ])
}

/// The OCI image layout `oci/` and the same as `<profile>.oci.tar`: the image alone (the
/// attestations are attached to the layout after; the archive stays the image alone, as
/// `podman load` (containers/image 5.23) refuses an archive listing more than one manifest).
fn write_oci(
    plan: &Plan,
    release: &Release,
    tree: &Tree,
    dir: &Path,
    packing: &mut Packing<'_>,
    progress: &Progress,
) -> Result<(Output, oci::Image), BuildError> {
    progress.step(&format!("writing the OCI image of {}", plan.profile));
    let layout = dir.join("oci");
    let image = oci::write_layout(
        plan,
        release,
        tree,
        packing.compression,
        &layout,
        packing.cache,
        packing.chunks,
        packing.threads,
        progress,
    )
    .map_err(io_err(&layout))?;
    let archive_name = format!("{}.oci.tar", plan.profile);
    let archive_path = dir.join(&archive_name);
    let out = crate::util::hash::Sha256Writer::new(BufWriter::with_capacity(
        1 << 20,
        create(&archive_path)?,
    ));
    let out = oci::write_archive(&layout, plan.epoch, out).map_err(io_err(&archive_path))?;
    let (file, sha256, size) = out.finish();
    finish_file(file, &archive_path, packing.syncer)?;
    Ok((
        Output {
            kind: "oci-archive".into(),
            path: archive_name,
            size,
            sha256,
        },
        image,
    ))
}

/// The layout's row, once the attestations are attached to it.
fn layout_row(dir: &Path) -> Result<Output, BuildError> {
    let layout = dir.join("oci");
    let (size, sha256) = oci::layout_identity(&layout).map_err(io_err(&layout))?;
    Ok(Output {
        kind: "oci-layout".into(),
        path: "oci".into(),
        size,
        sha256,
    })
}

/// The extended attribute that, set to `0` on an image's only extension-release file, lets
/// systemd-sysext/confext/dissect take the image whatever its file is named.
pub const EXTENSION_RELEASE_STRICT: &str = "user.extension-release.strict";

/// The system extension (`/usr`, `/opt`), the configuration extension (`/etc`) and the system
/// extension again, byte for byte, as a GPT disk image, in `extensions/`, `confexts/` and
/// `disk/` (the directories systemd reads them from are /var/lib/extensions and
/// /var/lib/confexts): the extensions named with the version, their extension-release files
/// tagged [`EXTENSION_RELEASE_STRICT`] = `0` so that systemd takes them under that name or any
/// other, the disk image `kubemint-<profile>.raw`.
#[allow(clippy::type_complexity)]
fn write_disk_images(
    plan: &Plan,
    tree: &Tree,
    dir: &Path,
    base: Option<&BaseParts>,
    how: &squashfs::Options<'_>,
    syncer: &Syncer,
    progress: &Progress,
) -> Result<(Vec<Output>, disk::Ddi, Option<disk::Ddi>), BuildError> {
    progress.step(&format!("writing the disk images of {}", plan.profile));
    let name = format!("kubemint-{}.raw", plan.profile);
    // The extension images carry the version in their names, as systemd-sysupdate's
    // `MatchPattern=kubemint-<profile>_@v.raw` reads it; each directory has the SHA256SUMS an
    // update server serves beside them.
    let versioned = format!("kubemint-{}_{}.raw", plan.profile, plan.version);
    let within = |p: &str, root: &str| p == root || p.starts_with(&format!("{root}/"));
    let mut outputs = Vec::new();
    for (kind, sub, keep, release_dir) in [
        (
            "sysext",
            "extensions",
            ["/usr", "/opt"],
            "/usr/lib/extension-release.d",
        ),
        (
            "confext",
            "confexts",
            ["/etc", "/etc"],
            "/etc/extension-release.d",
        ),
    ] {
        let mut part = tree.subset(|p, _| keep.iter().any(|r| within(p, r)));
        // Tagged so that systemd takes the image under any file name, not only the one its
        // extension-release file is named after (os-release(5): `user.extension-release.strict`
        // set to 0 on the only extension-release file).
        let release = format!("{release_dir}/extension-release.kubemint-{}", plan.profile);
        if part.get(&release).is_some() {
            part.set_xattr(&release, EXTENSION_RELEASE_STRICT, b"0")
                .map_err(|source| BuildError::Tree {
                    profile: plan.profile.clone(),
                    source,
                })?;
        }
        let folder = dir.join(sub);
        std::fs::create_dir(&folder).map_err(io_err(&folder))?;
        let path = folder.join(&versioned);
        let (file, size, sha256) =
            squashfs::squashfs_file_unsynced(&part, "/", plan.epoch, &path, how)
                .map_err(|e| io_err(&path)(e.into()))?;
        syncer.sync(&path, file)?;
        let image = Output {
            kind: kind.into(),
            path: format!("{sub}/{versioned}"),
            size,
            sha256,
        };
        if let Some((sums, text)) = update_sums(&image) {
            write_small(dir, "sums", &sums, text.as_bytes(), syncer)?;
        }
        outputs.push(image);
    }
    // The disk image's partition holds the sysext's very bytes.
    let sysext = &outputs[0];
    let folder = dir.join("disk");
    std::fs::create_dir(&folder).map_err(io_err(&folder))?;
    let path = folder.join(&name);
    let out =
        crate::util::hash::Sha256Writer::new(BufWriter::with_capacity(1 << 20, create(&path)?));
    let (out, ddi) = disk::write_ddi(
        &dir.join(&sysext.path),
        sysext.size,
        &sysext.sha256,
        &format!("disk/{name}"),
        out,
    )
    .map_err(io_err(&path))?;
    let (file, sha256, size) = out.finish();
    finish_file(file, &path, syncer)?;
    outputs.push(Output {
        kind: "disk".into(),
        path: format!("disk/{name}"),
        size,
        sha256,
    });
    // The bootable disk: the base, and these very sysext and confext files.
    let mut boot_ddi = None;
    if let Some(base) = base {
        progress.step(&format!("writing the bootable disk of {}", plan.profile));
        let content = |o: &Output| crate::pack::disk::Content {
            path: dir.join(&o.path),
            size: o.size,
            sha256: o.sha256.clone(),
        };
        let (sysext, confext) = (content(&outputs[0]), content(&outputs[1]));
        let folder = dir.join("boot");
        std::fs::create_dir(&folder).map_err(io_err(&folder))?;
        let path = folder.join(&name);
        let shown = format!("boot/{name}");
        let (ddi, sha256, size) =
            boot::write_bootable(base, &plan.profile, &sysext, &confext, &path, &shown)?;
        outputs.push(Output {
            kind: "bootable".into(),
            path: shown,
            size,
            sha256,
        });
        boot_ddi = Some(ddi);
    }
    Ok((outputs, ddi, boot_ddi))
}

/// The SHA256SUMS an update server serves beside an extension image (`extensions/SHA256SUMS`
/// for `extensions/kubemint-<profile>_<version>.raw`): its path and its text, one line. Derived
/// from the image's row, so nobody reads the file back for its digest.
fn update_sums(image: &Output) -> Option<(String, String)> {
    if !matches!(image.kind.as_str(), "sysext" | "confext") {
        return None;
    }
    let (sub, name) = image.path.rsplit_once('/')?;
    Some((
        format!("{sub}/SHA256SUMS"),
        format!("{}  {name}\n", image.sha256),
    ))
}

/// [`update_sums`] as a (path, sha256) pair, for SHA256SUMS and the provenance's subjects.
fn update_sums_row(image: &Output) -> Option<(String, String)> {
    update_sums(image).map(|(path, text)| (path, crate::util::hash::sha256_hex(text.as_bytes())))
}

fn create(path: &Path) -> Result<File, BuildError> {
    File::create(path).map_err(io_err(path))
}

fn finish_file(w: BufWriter<File>, path: &Path, syncer: &Syncer) -> Result<(), BuildError> {
    let file = w.into_inner().map_err(|e| BuildError::Io {
        path: path.to_owned(),
        source: e.into_error(),
    })?;
    syncer.sync(path, file)
}

fn write_small(
    dir: &Path,
    kind: &str,
    name: &str,
    bytes: &[u8],
    syncer: &Syncer,
) -> Result<Output, BuildError> {
    let path = dir.join(name);
    let mut f = create(&path)?;
    f.write_all(bytes).map_err(io_err(&path))?;
    syncer.sync(&path, f)?;
    Ok(Output {
        kind: kind.to_owned(),
        path: name.to_owned(),
        size: bytes.len() as u64,
        sha256: crate::util::hash::sha256_hex(bytes),
    })
}

/// Output files get fixed modes, whatever the umask: directories and installers 0755, the
/// rest 0644.
fn fix_modes(dir: &Path) -> Result<(), BuildError> {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(|e| BuildError::Io {
            path: dir.to_owned(),
            source: e.into(),
        })?;
        let executable = entry.file_type().is_dir()
            || entry.file_name().to_string_lossy().ends_with("-install.sh");
        set_mode(entry.path(), if executable { 0o755 } else { 0o644 })?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))
}
