//! Profiles: one TOML file per master that inherits the cluster's shared settings, parsed raw
//! ([`raw`]) and resolved into a validated [`Profile`], with every problem reported at once,
//! each naming its file and key.

pub mod raw;
pub mod values;

use crate::front::render;
use crate::util::epoch::Epoch;
use raw::RawProfile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use values::{AbsPath, Cidr, PortRange};

/// One problem in a profile: which file, which key (and where it is written), what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
    /// Line and column (from 1) of the key in `file`, when the key is written there.
    pub at: Option<(usize, usize)>,
}

impl fmt::Display for Problem {
    /// `profiles/cluster.toml: cluster.service_cidr: "…" is not a CIDR … (line 14, column 1)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.at {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// Every problem found in one profile, in file and key order.
#[derive(Debug, thiserror::Error)]
pub struct ProfileError {
    pub profile: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "profile {} has {n} problem{}:",
            self.profile,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// A validated profile: everything one master's image is built from, nothing read from a host.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// The file stem, e.g. `master-1`.
    pub name: String,
    /// The profile's own file and the files it inherits, nearest first, with their sha256.
    pub sources: Vec<Source>,
    pub image: String,
    pub release: String,
    /// The base operating system of the bootable disk, if the set has one.
    pub base: Option<String>,
    /// Seconds since 1970 for every timestamp in every artefact.
    pub epoch: Epoch,
    pub host: Host,
    pub cluster: Cluster,
    pub user: User,
    pub paths: Paths,
    pub components: BTreeMap<String, Component>,
    pub rollout: Rollout,
}

/// How a master takes a new version (`[rollout]`).
#[derive(Clone, Debug, Serialize)]
pub struct Rollout {
    /// Seconds the health gate waits for every component after a change (default 120).
    pub gate_deadline: u64,
    /// Where systemd-sysupdate finds new versions: a URL (`url-file` transfers, SHA256SUMS
    /// required) or a directory on the master (`regular-file`); default
    /// [`DEFAULT_UPDATE_SOURCE`].
    pub update_source: String,
    /// systemd-sysupdate's source type for it: `url-file` or `regular-file`.
    pub source_type: String,
}

/// Where a master looks for new versions when its profile does not say: a directory on the
/// master with the layout of a build's output (`extensions/`, `confexts/`).
pub const DEFAULT_UPDATE_SOURCE: &str = "/var/lib/kubemint/updates";
/// The health gate's default deadline, in seconds.
pub const DEFAULT_GATE_DEADLINE: u64 = 120;

/// A file a build read, and the sha256 of what it read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    pub path: PathBuf,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Host {
    pub name: String,
    pub address: IpAddr,
}

#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    #[serde(serialize_with = "display")]
    pub service_cidr: Cidr,
    #[serde(serialize_with = "display")]
    pub node_port_range: PortRange,
    pub etcd_servers: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub name: String,
}

/// Where things live on a master. `bin_dir` must be in `/usr` (what a sysext's usr partition
/// carries) and `conf_dir` in `/etc`
/// (what an image carries); `install_dir` and `log_dir` are made at boot by tmpfiles.d.
#[derive(Clone, Debug, Serialize)]
pub struct Paths {
    pub bin_dir: AbsPath,
    pub install_dir: AbsPath,
    pub log_dir: AbsPath,
    pub conf_dir: AbsPath,
    pub cert_dir: AbsPath,
}

#[derive(Clone, Debug, Serialize)]
pub struct Component {
    /// Flags in the order written, values rendered and checked.
    pub flags: Vec<Flag>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Flag {
    /// Without the leading `--`.
    pub name: String,
    pub value: String,
}

fn display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Where profile files are read from: the disk, where some files may stand in other texts
/// (the edited sets `upgrade-plan` checks without writing them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Files<'a> {
    overlay: Option<&'a BTreeMap<PathBuf, String>>,
}

impl<'a> Files<'a> {
    /// The files as they are on disk.
    pub fn disk() -> Files<'static> {
        Files { overlay: None }
    }

    /// The files on disk, except those `overlay` holds a text for (by path).
    pub fn with(overlay: &'a BTreeMap<PathBuf, String>) -> Files<'a> {
        Files {
            overlay: Some(overlay),
        }
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        match self.overlay.and_then(|o| o.get(path)) {
            Some(text) => Ok(text.clone()),
            None => std::fs::read_to_string(path),
        }
    }
}

/// Profile names: the file stems of `dir/*.toml` that no other profile inherits, sorted.
pub fn list(dir: &Path) -> Result<Vec<String>, ProfileError> {
    list_in(Files::disk(), dir)
}

/// [`list`], reading through `files`.
pub fn list_in(files: Files<'_>, dir: &Path) -> Result<Vec<String>, ProfileError> {
    let err = |message: String| ProfileError {
        profile: "*".into(),
        problems: vec![problem(dir, "", message)],
    };
    let entries = std::fs::read_dir(dir).map_err(|e| err(format!("cannot list profiles: {e}")))?;
    let mut stems = Vec::new();
    let mut inherited = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| err(e.to_string()))?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            let text = files
                .read(&path)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            if let Ok(table) = toml::from_str::<toml::Table>(&text)
                && let Some(parent) = table.get("inherit").and_then(|v| v.as_str())
            {
                inherited.push(parent.trim_end_matches(".toml").to_owned());
            }
            stems.push(
                path.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    stems.retain(|s| !inherited.contains(s));
    stems.sort();
    Ok(stems)
}

/// Loads `dir/<name>.toml` and the chain it inherits, and resolves it.
pub fn load(dir: &Path, name: &str) -> Result<Profile, ProfileError> {
    load_in(Files::disk(), dir, name)
}

/// [`load`], reading through `files`.
pub fn load_in(files: Files<'_>, dir: &Path, name: &str) -> Result<Profile, ProfileError> {
    let fail = |problems| ProfileError {
        profile: name.to_owned(),
        problems,
    };
    let leaf = dir.join(format!("{name}.toml"));
    if values::check_hostname(name).is_err() {
        return Err(fail(vec![problem(
            &leaf,
            "",
            format!("{name:?} is not a profile name: use lowercase letters, digits and '-'"),
        )]));
    }
    let mut unknown = Vec::new();
    let layers = load_chain(files, &leaf, &mut unknown).map_err(fail)?;
    let mut merged = toml::Table::new();
    let mut origins = BTreeMap::new();
    for layer in layers.iter().rev() {
        merge(&mut merged, layer.table.clone(), layer, "", &mut origins);
    }
    merged.remove("inherit");
    // Unknown keys were reported per file, with their lines; here they are only skipped.
    let raw: RawProfile = serde_ignored::deserialize(toml::Value::Table(merged), |_| {})
        .map_err(|e: toml::de::Error| fail(vec![problem(&leaf, "", e.message().to_owned())]))?;
    let origins = Origins {
        leaf,
        map: origins,
        layers: &layers,
    };
    let sources = layers
        .iter()
        .map(|l| Source {
            path: l.path.clone(),
            sha256: l.sha256.clone(),
        })
        .collect();
    // Unknown keys are reported together with every other problem.
    match resolve(name, raw, &origins, sources) {
        Ok(profile) if unknown.is_empty() => Ok(profile),
        Ok(_) => Err(finish(name, unknown)),
        Err(e) => Err(finish(
            name,
            unknown.into_iter().chain(e.problems).collect(),
        )),
    }
}

/// Whether a profile's files (its chain, merged) give flags to `component`, read without
/// resolving the rest: how a profile set counts a master whose profile has problems.
pub fn declares_component(dir: &Path, name: &str, component: &str) -> bool {
    declares_component_in(Files::disk(), dir, name, component)
}

/// [`declares_component`], reading through `files`.
pub fn declares_component_in(files: Files<'_>, dir: &Path, name: &str, component: &str) -> bool {
    let Ok(layers) = load_chain(files, &dir.join(format!("{name}.toml")), &mut Vec::new()) else {
        return false;
    };
    layers.iter().any(|l| {
        l.table
            .get("components")
            .and_then(|c| c.get(component))
            .is_some()
    })
}

/// One file of a profile's inheritance chain, as read.
struct Layer {
    path: PathBuf,
    table: toml::Table,
    sha256: String,
    /// Where each dotted key is written: line and column, from 1.
    at: BTreeMap<String, (usize, usize)>,
}

/// Reads a profile file and every file it inherits, leaf first. Each file is checked on its
/// own against the raw schema, so an unknown key is reported with its file and line.
fn load_chain(
    files: Files<'_>,
    leaf: &Path,
    unknown: &mut Vec<Problem>,
) -> Result<Vec<Layer>, Vec<Problem>> {
    let mut chain: Vec<Layer> = Vec::new();
    let mut next = Some(leaf.to_owned());
    while let Some(file) = next.take() {
        if chain.iter().any(|l| l.path == file) {
            return Err(vec![problem(&file, "inherit", "inheritance cycle".into())]);
        }
        let text = files
            .read(&file)
            .map_err(|e| vec![problem(&file, "", format!("cannot read: {e}"))])?;
        let syntax = |e: toml::de::Error| {
            vec![problem(
                &file,
                "",
                e.to_string().trim_end().replace('\n', "\n    "),
            )]
        };
        let table: toml::Table = toml::from_str(&text).map_err(syntax)?;
        let at = key_positions(&text);
        // serde itself finds every key the raw schema does not have; the rest is still checked.
        let mut ignored = Vec::new();
        let raw: RawProfile =
            serde_ignored::deserialize(toml::Value::Table(table.clone()), |path| {
                ignored.push(raw::key_path(&path))
            })
            .map_err(|e: toml::de::Error| vec![problem(&file, "", e.message().to_owned())])?;
        for key in ignored {
            let parent = key.rsplit_once('.').map_or("", |(p, _)| p);
            let known = raw::known_keys(parent).join(", ");
            unknown.push(Problem {
                at: at.get(&key).copied(),
                ..problem(&file, &key, format!("unknown key (known here: {known})"))
            });
        }
        if let Some(parent) = &raw.inherit {
            if parent.contains('/') || !parent.ends_with(".toml") {
                return Err(vec![Problem {
                    at: at.get("inherit").copied(),
                    ..problem(
                        &file,
                        "inherit",
                        format!("{parent:?} must name a .toml file in the same directory"),
                    )
                }]);
            }
            next = Some(file.parent().unwrap_or(Path::new("")).join(parent));
        }
        let sha256 = crate::util::hash::sha256_hex(text.as_bytes());
        chain.push(Layer {
            path: file,
            table,
            sha256,
            at,
        });
    }
    Ok(chain)
}

/// Every string of a TOML document (values, and items of arrays) with its dotted key and line:
/// what the key-material scan reads.
pub fn strings(text: &str) -> Vec<(String, usize, String)> {
    fn walk(
        table: &toml::de::DeTable<'_>,
        prefix: &str,
        line: &dyn Fn(usize) -> usize,
        out: &mut Vec<(String, usize, String)>,
    ) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            match value.get_ref() {
                toml::de::DeValue::String(s) => {
                    out.push((path, line(value.span().start), s.to_string()));
                }
                toml::de::DeValue::Table(t) => walk(t, &path, line, out),
                toml::de::DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let toml::de::DeValue::String(s) = item.get_ref() {
                            out.push((
                                format!("{path}[{i}]"),
                                line(item.span().start),
                                s.to_string(),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut out = Vec::new();
    if let Ok(doc) = toml::de::DeTable::parse(text) {
        walk(doc.get_ref(), "", &line, &mut out);
    }
    out
}

/// Line and column of every dotted key of a TOML document (`cluster.etcd_servers[1]` for an
/// array item), from the parser's spans.
fn key_positions(text: &str) -> BTreeMap<String, (usize, usize)> {
    fn walk(
        table: &toml::de::DeTable<'_>,
        prefix: &str,
        at: &dyn Fn(usize) -> (usize, usize),
        out: &mut BTreeMap<String, (usize, usize)>,
    ) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            out.insert(path.clone(), at(key.span().start));
            match value.get_ref() {
                toml::de::DeValue::Table(t) => walk(t, &path, at, out),
                toml::de::DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        out.insert(format!("{path}[{i}]"), at(item.span().start));
                    }
                }
                _ => {}
            }
        }
    }
    let at = |offset: usize| {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    };
    let mut out = BTreeMap::new();
    if let Ok(doc) = toml::de::DeTable::parse(text) {
        walk(doc.get_ref(), "", &at, &mut out);
    }
    out
}

/// Deep-merges `over` (the table of `layer`) into `base`: tables merge key by key (a key keeps
/// its first position), anything else is replaced. Records which layer set each key.
fn merge<'l>(
    base: &mut toml::Table,
    over: toml::Table,
    layer: &'l Layer,
    prefix: &str,
    origins: &mut BTreeMap<String, &'l Layer>,
) {
    for (key, value) in over {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        origins.insert(path.clone(), layer);
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                merge(b, o, layer, &path, origins)
            }
            (_, value) => {
                origins.retain(|k, _| !k.starts_with(&format!("{path}.")));
                if let toml::Value::Table(t) = &value {
                    record(t, layer, &path, origins);
                }
                base.insert(key, value);
            }
        }
    }
}

fn record<'l>(
    table: &toml::Table,
    layer: &'l Layer,
    prefix: &str,
    origins: &mut BTreeMap<String, &'l Layer>,
) {
    for (key, value) in table {
        let path = format!("{prefix}.{key}");
        origins.insert(path.clone(), layer);
        if let toml::Value::Table(t) = value {
            record(t, layer, &path, origins);
        }
    }
}

/// Which file each dotted key came from, and where in it; a key set nowhere belongs to the
/// leaf file.
struct Origins<'l> {
    leaf: PathBuf,
    map: BTreeMap<String, &'l Layer>,
    layers: &'l [Layer],
}

impl Origins<'_> {
    /// The file that set `key` (or the nearest table above it), and the key's position there.
    fn locate(&self, key: &str) -> (&Path, Option<(usize, usize)>) {
        let mut k = key;
        loop {
            if let Some(layer) = self.map.get(k) {
                let at = layer.at.get(key).or_else(|| layer.at.get(k)).copied();
                return (&layer.path, at);
            }
            match k.rsplit_once(['.', '[']) {
                Some((parent, _)) => k = parent,
                None => {
                    let at = self.layers.first().and_then(|l| l.at.get(key)).copied();
                    return (&self.leaf, at);
                }
            }
        }
    }
}

fn problem(file: &Path, key: &str, message: String) -> Problem {
    Problem {
        file: file.to_owned(),
        key: key.to_owned(),
        message,
        at: None,
    }
}

/// Collects problems while resolving; each lookup names its key.
struct Resolver<'o> {
    origins: &'o Origins<'o>,
    problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn report(&mut self, key: &str, message: String) {
        let (file, at) = self.origins.locate(key);
        self.problems.push(Problem {
            at,
            ..problem(file, key, message)
        });
    }

    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            let leaf = self.origins.leaf.clone();
            self.problems.push(problem(
                &leaf,
                key,
                "missing: set it here or in a profile this one inherits".into(),
            ));
        }
        value
    }

    /// A required value parsed by `parse`; problems are recorded, `None` returned.
    fn typed<T>(
        &mut self,
        key: &str,
        value: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.required(key, value)?;
        // Key material is named, never echoed (the front end's scan reports it too).
        if let Some(found) = crate::front::secrets::find("", &value) {
            self.report(
                key,
                format!(
                    "looks like {}: a profile holds no keys or tokens",
                    found.what
                ),
            );
            return None;
        }
        parse(&value).map_err(|m| self.report(key, m)).ok()
    }
}

fn resolve(
    name: &str,
    raw: RawProfile,
    origins: &Origins<'_>,
    sources: Vec<Source>,
) -> Result<Profile, ProfileError> {
    let mut r = Resolver {
        origins,
        problems: Vec::new(),
    };
    // Flags render against the values as written, so their problems are reported together
    // with those of the values themselves.
    let context = minijinja::context! {
        profile => name,
        release => raw.release,
        host => minijinja::Value::from_serialize(&raw.host),
        cluster => minijinja::Value::from_serialize(&raw.cluster),
        user => minijinja::Value::from_serialize(&raw.user),
        paths => minijinja::Value::from_serialize(&raw.paths),
    };
    let raw_components = raw.components;
    let rollout = raw.rollout.unwrap_or_default();
    let host = raw.host.unwrap_or_default();
    let cluster = raw.cluster.unwrap_or_default();
    let user = raw.user.unwrap_or_default();
    let paths = raw.paths.unwrap_or_default();

    let image = r.typed("image", raw.image, |s| {
        values::check_hostname(s)
            .map(|_| s.to_owned())
            .map_err(|_| format!("{s:?} is not an image name"))
    });
    let release = r.typed("release", raw.release, |s| {
        check_release_name(s).map(|_| s.to_owned())
    });
    let base = match raw.base {
        None => None,
        Some(b) => r.typed("base", Some(b), |s| {
            values::check_hostname(s)
                .map(|_| s.to_owned())
                .map_err(|_| {
                    format!("{s:?} is not a base name like debian-trixie (images/bases/<name>)")
                })
        }),
    };
    let epoch = r
        .required("epoch", raw.epoch)
        .and_then(|e| Epoch::new(e.into()).map_err(|m| r.report("epoch", m)).ok());
    let host_name = r.typed("host.name", host.name, |s| {
        values::check_hostname(s).map(|_| s.to_owned())
    });
    let address = r.typed("host.address", host.address, |s| {
        s.parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an IP address"))
    });
    let service_cidr = r.typed("cluster.service_cidr", cluster.service_cidr, Cidr::parse);
    let node_port_range = r.typed(
        "cluster.node_port_range",
        cluster.node_port_range,
        PortRange::parse,
    );
    let etcd_servers = r
        .required("cluster.etcd_servers", cluster.etcd_servers)
        .inspect(|list| {
            if list.is_empty() {
                r.report(
                    "cluster.etcd_servers",
                    "empty: list at least one etcd endpoint".into(),
                );
            }
            for (i, url) in list.iter().enumerate() {
                if let Err(m) = values::check_endpoint(url) {
                    r.report(&format!("cluster.etcd_servers[{i}]"), m);
                }
            }
        });
    let user_name = r.typed("user.name", user.name, |s| {
        values::check_user_name(s).map(|_| s.to_owned())
    });
    let mut path = |key: &str, value: Option<String>, within: &[&str]| {
        let p = r.typed(key, value, AbsPath::parse)?;
        if !within.is_empty() && !within.iter().any(|d| p.is_within(d)) {
            r.report(
                key,
                format!(
                    "{p} is outside {}: an image carries only those",
                    within.join(" and ")
                ),
            );
            return None;
        }
        Some(p)
    };
    let bin_dir = path("paths.bin_dir", paths.bin_dir, &["/usr"]);
    let install_dir = path("paths.install_dir", paths.install_dir, &[]);
    let log_dir = path("paths.log_dir", paths.log_dir, &[]);
    let conf_dir = path("paths.conf_dir", paths.conf_dir, &["/etc"]);
    let cert_dir = path("paths.cert_dir", paths.cert_dir, &[]);

    let gate_deadline = match rollout.gate_deadline {
        None => DEFAULT_GATE_DEADLINE,
        Some(s) if (5..=3600).contains(&s) => s as u64,
        Some(s) => {
            r.report(
                "rollout.gate_deadline",
                format!("{s} is not a deadline: give seconds from 5 to 3600"),
            );
            DEFAULT_GATE_DEADLINE
        }
    };
    let update_source = match rollout.update_source {
        None => DEFAULT_UPDATE_SOURCE.to_owned(),
        Some(s) => {
            let url = s.starts_with("https://") || s.starts_with("http://");
            let ok = if url {
                !s.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '%')
            } else {
                AbsPath::parse(&s).is_ok()
            };
            if !ok {
                r.report(
                    "rollout.update_source",
                    format!(
                        "{s:?} is neither an http(s):// URL (without spaces or %) nor an absolute directory"
                    ),
                );
            }
            let trimmed = s.trim_end_matches('/');
            if trimmed.is_empty() {
                s
            } else {
                trimmed.to_owned()
            }
        }
    };
    let source_type =
        if update_source.starts_with("http://") || update_source.starts_with("https://") {
            "url-file"
        } else {
            "regular-file"
        }
        .to_owned();

    // A flag whose value is a template over a value already reported is not type-checked again.
    let values_ok = r.problems.is_empty();
    let mut components = BTreeMap::new();
    for (component, raw) in r.required("components", raw_components).unwrap_or_default() {
        let key = format!("components.{component}");
        if values::check_hostname(&component).is_err() {
            r.report(&key, format!("{component:?} is not a component name"));
        }
        let Some(table) = r.required(&format!("{key}.flags"), raw.flags) else {
            continue;
        };
        let flags = table
            .into_iter()
            .filter_map(|(flag, value)| {
                let key = format!("{key}.flags.{flag}");
                resolve_flag(&flag, value, &context, values_ok)
                    .map_err(|m| r.report(&key, m))
                    .ok()
            })
            .collect();
        components.insert(component, Component { flags });
    }
    let (
        Some(image),
        Some(release),
        Some(epoch),
        Some(host_name),
        Some(address),
        Some(service_cidr),
        Some(node_port_range),
        Some(etcd_servers),
        Some(user_name),
        Some(bin_dir),
        Some(install_dir),
        Some(log_dir),
        Some(conf_dir),
        Some(cert_dir),
    ) = (
        image,
        release,
        epoch,
        host_name,
        address,
        service_cidr,
        node_port_range,
        etcd_servers,
        user_name,
        bin_dir,
        install_dir,
        log_dir,
        conf_dir,
        cert_dir,
    )
    else {
        return Err(finish(name, r.problems));
    };
    if !r.problems.is_empty() {
        return Err(finish(name, r.problems));
    }
    Ok(Profile {
        name: name.to_owned(),
        sources,
        image,
        release,
        base,
        epoch,
        host: Host {
            name: host_name,
            address,
        },
        cluster: Cluster {
            service_cidr,
            node_port_range,
            etcd_servers,
        },
        user: User { name: user_name },
        paths: Paths {
            bin_dir,
            install_dir,
            log_dir,
            conf_dir,
            cert_dir,
        },
        components,
        rollout: Rollout {
            gate_deadline,
            update_source,
            source_type,
        },
    })
}

fn finish(name: &str, mut problems: Vec<Problem>) -> ProfileError {
    problems.sort_by(|a, b| (&a.file, &a.key).cmp(&(&b.file, &b.key)));
    ProfileError {
        profile: name.to_owned(),
        problems,
    }
}

/// A release name as the lock spells it: `v1.14.2`, `v1.33.5`, or a custom pinned name.
pub fn check_release_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    ok.then_some(())
        .ok_or_else(|| format!("{s:?} is not a release name, e.g. v1.14.2"))
}

impl Profile {
    /// What templates and flag values see: `profile`, `release`, `host`, `cluster`, `user`,
    /// `paths` (components are left out: a flag cannot refer to another flag).
    pub fn context(&self) -> minijinja::Value {
        minijinja::context! {
            profile => self.name,
            release => self.release,
            host => minijinja::Value::from_serialize(&self.host),
            cluster => minijinja::Value::from_serialize(&self.cluster),
            user => minijinja::Value::from_serialize(&self.user),
            paths => minijinja::Value::from_serialize(&self.paths),
            rollout => minijinja::Value::from_serialize(&self.rollout),
        }
    }
}

/// Renders one flag value (a template, number, boolean or list joined with commas) and checks
/// it; a templated value's type is checked only when the values it refers to are sound.
fn resolve_flag(
    name: &str,
    value: toml::Value,
    context: &minijinja::Value,
    values_ok: bool,
) -> Result<Flag, String> {
    let name_ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(format!(
            "{name:?} is not a flag name: write it without '--', e.g. bind-address"
        ));
    }
    let render = |s: &str| render::render_str(s, context).map_err(|e| e.to_string());
    let templated = match &value {
        toml::Value::String(s) => s.contains("{{"),
        toml::Value::Array(items) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| s.contains("{{"))),
        _ => false,
    };
    let value = match value {
        toml::Value::String(s) => render(&s)?,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => render(s),
                other => Err(format!(
                    "list items must be strings, found {}",
                    other.type_str()
                )),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        other => {
            return Err(format!(
                "must be a string, integer, boolean or list of strings, found {}",
                other.type_str()
            ));
        }
    };
    // Key material is reported by the front end's scan, naming the file and key; here it is
    // never echoed, and a value spanning lines (a pasted PEM block) cannot even be a flag.
    if let Some(found) = crate::front::secrets::find("", &value) {
        if value.chars().any(|c| c.is_control()) {
            return Err(format!(
                "looks like {}, over several lines: a flag value is one line, and keys and tokens never go into an image",
                found.what
            ));
        }
        return Ok(Flag {
            name: name.to_owned(),
            value,
        });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "value {value:?} contains {c:?}: a flag value is one line of printable text"
        ));
    }
    if values_ok || !templated {
        check_flag_value(name, &value)?;
    }
    Ok(Flag {
        name: name.to_owned(),
        value,
    })
}

/// Flags whose value is a Go duration. The full per-release flag table is `check`'s business;
/// these are the ones the seed profiles use.
const DURATION_FLAGS: &[&str] = &[
    "event-ttl",
    "kubelet-timeout",
    "request-timeout",
    "cluster-signing-duration",
    "leader-elect-lease-duration",
    "leader-elect-renew-deadline",
    "leader-elect-retry-period",
];

/// Type checks that follow from a flag's name.
fn check_flag_value(name: &str, value: &str) -> Result<(), String> {
    let file_like = ["-file", "-dir", "-path", "-cafile", "-certfile", "-keyfile"];
    if file_like.iter().any(|s| name.ends_with(s)) {
        AbsPath::parse(value)?;
    } else if name.ends_with("-address") || name == "address" {
        value
            .parse::<IpAddr>()
            .map_err(|_| format!("{value:?} is not an IP address"))?;
    } else if name == "service-cluster-ip-range" {
        value
            .split(',')
            .try_for_each(|c| Cidr::parse(c).map(|_| ()))?;
    } else if name == "service-node-port-range" {
        PortRange::parse(value)?;
    } else if name == "etcd-servers" {
        value.split(',').try_for_each(values::check_endpoint)?;
    } else if DURATION_FLAGS.contains(&name) {
        values::check_duration(value)?;
    } else if name.ends_with("-port") || name == "port" {
        value
            .parse::<u16>()
            .map_err(|_| format!("{value:?} is not a port number 0-65535"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const BASE: &str = r#"
image = "control-plane"
release = "v1.14.2"
epoch = 1
[cluster]
service_cidr = "10.254.0.0/22"
node_port_range = "8400-9400"
etcd_servers = ["https://10.10.10.22:2379"]
[user]
name = "k8s"
[paths]
bin_dir = "/usr/lib/k8s/bin"
install_dir = "/data/k8s"
log_dir = "/data/k8s/logs"
conf_dir = "/etc/k8s"
cert_dir = "/etc/k8s/ssl"
[components.kube-apiserver.flags]
advertise-address = "{{ host.address }}"
secure-port = 6443
etcd-servers = ["{{ cluster.etcd_servers[0] }}"]
"#;

    #[test]
    fn inherits_and_renders_flags_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "cluster.toml", BASE);
        write(
            dir.path(),
            "m1.toml",
            "inherit = \"cluster.toml\"\n[host]\nname = \"m1\"\naddress = \"10.10.10.22\"\n\
             [components.kube-apiserver.flags]\nsecure-port = 7443\nv = 2\n",
        );
        let p = load(dir.path(), "m1").unwrap();
        let flags: Vec<_> = p.components["kube-apiserver"]
            .flags
            .iter()
            .map(|f| format!("{}={}", f.name, f.value))
            .collect();
        assert_eq!(
            flags,
            [
                "advertise-address=10.10.10.22",
                "secure-port=7443",
                "etcd-servers=https://10.10.10.22:2379",
                "v=2"
            ]
        );
        assert_eq!(list(dir.path()).unwrap(), ["m1"]);
    }

    #[test]
    fn every_problem_at_once_with_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "cluster.toml",
            &BASE.replace("10.254.0.0/22", "10.254.0.0/33"),
        );
        write(
            dir.path(),
            "m1.toml",
            "inherit = \"cluster.toml\"\n[host]\naddress = \"10.10.10.300\"\n\
             [components.kube-apiserver.flags]\nevent-ttl = \"7d\"\nbad = \"{{ nope }}\"\nx = \"a\\nb\"\n",
        );
        let err = load(dir.path(), "m1").unwrap_err();
        let text = err.to_string();
        let c = dir.path().join("cluster.toml").display().to_string();
        let m = dir.path().join("m1.toml").display().to_string();
        for want in [
            format!("{c}: cluster.service_cidr: \"10.254.0.0/33\" is not a CIDR"),
            format!("{m}: host.address: \"10.10.10.300\" is not an IP address"),
            format!("{m}: host.name: missing"),
        ] {
            assert!(text.contains(&want), "{want}\nin\n{text}");
        }
        for want in [
            format!("{m}: components.kube-apiserver.flags.event-ttl: \"7d\" is not a duration"),
            format!("{m}: components.kube-apiserver.flags.bad: undefined value"),
            format!("{m}: components.kube-apiserver.flags.x: value \"a\\nb\" contains '\\n'"),
        ] {
            assert!(text.contains(&want), "{want}\nin\n{text}");
        }
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "cluster.toml",
            &format!("{BASE}\n[cluster2]\nx = 1\n"),
        );
        write(dir.path(), "m1.toml", "inherit = \"cluster.toml\"\n");
        let text = load(dir.path(), "m1").unwrap_err().to_string();
        assert!(text.contains("cluster.toml"), "{text}");
        assert!(
            text.contains("cluster.toml: cluster2: unknown key (known here: inherit,"),
            "{text}"
        );
    }

    #[test]
    fn inheritance_cycle() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "inherit = \"b.toml\"\n");
        write(dir.path(), "b.toml", "inherit = \"a.toml\"\n");
        assert!(
            load(dir.path(), "a")
                .unwrap_err()
                .to_string()
                .contains("inheritance cycle")
        );
    }
}
