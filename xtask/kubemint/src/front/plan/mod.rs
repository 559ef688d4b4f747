//! The resolved plan: pure data saying exactly what one master's tree holds (release members,
//! rendered files with their bytes, links) and where. Computed without I/O from a profile, an
//! image definition and the release's name and version, so it can be printed, diffed and
//! snapshot-tested; which tarball that release is, and its digest, is the inputs stage's
//! business.

mod systemd;
mod text;

use crate::front::image::{self, Image, ServiceType};
use crate::front::profile::Profile;
use crate::front::profile::values::{self, AbsPath};
use crate::front::render;
use crate::util::epoch::Epoch;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub profile: String,
    pub image: String,
    pub release: ReleaseRef,
    /// The base operating system of the bootable disk, if any.
    pub base: Option<String>,
    /// Built from the generated stand-in release, not a real one.
    pub sample: bool,
    pub epoch: Epoch,
    /// This build's version, `IMAGE_VERSION` in the extension-release files and in the
    /// versioned image names: see [`version_of`].
    pub version: String,
    /// The service user the units run as and sysusers.d declares.
    pub user: String,
    pub binaries: Vec<Binary>,
    pub files: Vec<File>,
    pub links: Vec<Link>,
    /// Directories the image owns whole: a file in them that the plan does not have is drift.
    pub owns: Vec<String>,
    /// Units the installer enables, by name.
    pub units: Vec<String>,
    /// What the master needs delivered apart: never in the tree.
    pub secrets: Vec<Secret>,
    /// Each component's flags as its unit's `ExecStart=` passes them, in the image's order:
    /// manifest.json lists them under `components`, so that reports and diffs of built outputs
    /// speak of flags, not of unit files' digests. (Left out of [`version_of`]'s digest: the
    /// rendered units hold the same flags.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentFlags>,
}

/// One component's command line, as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ComponentFlags {
    pub name: String,
    /// The unit that runs it, e.g. `kube-apiserver.service`.
    pub unit: String,
    /// In the order written, values rendered (without the leading `--`).
    pub flags: Vec<crate::front::profile::Flag>,
}

/// The release a plan is built on: its name (a lock entry, or the sample's) and the Kubernetes
/// version it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseRef {
    pub name: String,
    pub version: Version,
}

/// A Kubernetes version, `1.14.2` (the patch is absent when the release's name does not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
}

impl Version {
    /// The version of a release named like `v1.14.2`, `1.33.5` or `v1.14.2-custom`.
    pub fn of_release(name: &str) -> Option<Version> {
        let mut parts = name.trim_start_matches('v').split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().and_then(|p| p.parse().ok());
        Some(Version {
            major,
            minor,
            patch,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A declared secret, resolved: manifest.json lists these under `secrets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub path: String,
    pub owner: String,
    pub group: String,
    /// Octal, four digits.
    pub mode: String,
    pub used_by: Vec<String>,
    pub purpose: String,
    /// Delivered only to some masters; its absence is not a problem.
    pub optional: bool,
}

/// A member streamed out of the release into the tree.
#[derive(Clone, Debug, Serialize)]
pub struct Binary {
    pub member: String,
    pub path: String,
    #[serde(serialize_with = "octal")]
    pub mode: u32,
}

/// Modes print as manifest.json prints them: "0755".
fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

/// A rendered file.
#[derive(Clone, Debug, Serialize)]
pub struct File {
    pub path: String,
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    pub template: String,
    pub content: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub path: String,
    pub target: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{profile}: component {component:?} has flags but image {image:?} does not define it (defined: {defined})"
    )]
    UnknownComponent {
        profile: String,
        component: String,
        image: String,
        defined: String,
    },
    #[error(
        "{profile}: image {image:?} needs flags for component {component:?}: add [components.{component}.flags]"
    )]
    MissingComponent {
        profile: String,
        component: String,
        image: String,
    },
    #[error("images/{image}/templates/{template}: {message}")]
    Render {
        image: String,
        template: String,
        message: String,
    },
    #[error("images/{image}/image.toml: {what}: {message}")]
    Value {
        image: String,
        what: String,
        message: String,
    },
}

/// Resolves what `profile` built from `image` on the release named `release` contains.
pub fn plan(
    profile: &Profile,
    image: &Image,
    release: &str,
    sample: bool,
) -> Result<Plan, PlanError> {
    for component in profile.components.keys() {
        if !image.components.iter().any(|c| &c.name == component) {
            return Err(PlanError::UnknownComponent {
                profile: profile.name.clone(),
                component: component.clone(),
                image: image.name.clone(),
                defined: image
                    .components
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let env = render::environment(
        image
            .templates
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str())),
    )
    .map_err(|e| PlanError::Render {
        image: image.name.clone(),
        template: e.name().unwrap_or("?").to_owned(),
        message: format!("{e:#}"),
    })?;
    let value_err = |what: String| {
        let image = image.name.clone();
        move |message: String| PlanError::Value {
            image: image.clone(),
            what: what.clone(),
            message,
        }
    };
    let base = profile.context();
    let version = Version::of_release(release)
        .or_else(|| Version::of_release(&profile.release))
        .ok_or_else(|| {
            value_err("release".to_owned())(format!(
                "cannot tell the Kubernetes version of release {release:?} or of the profile's {:?}",
                profile.release
            ))
        })?;
    let flags: BTreeMap<&str, BTreeMap<&str, &str>> = profile
        .components
        .iter()
        .map(|(c, comp)| {
            let map = comp
                .flags
                .iter()
                .map(|f| (f.name.as_str(), f.value.as_str()))
                .collect();
            (c.as_str(), map)
        })
        .collect();
    let port = flags
        .get("kube-apiserver")
        .and_then(|f| f.get("secure-port"))
        .copied()
        .unwrap_or("6443");
    let apiserver_url = match profile.host.address {
        std::net::IpAddr::V4(a) => format!("https://{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("https://[{a}]:{port}"),
    };

    let mut binaries = Vec::new();
    let mut components = Vec::new();
    let mut command_lines = Vec::new();
    for c in &image.components {
        let component_flags = &profile
            .components
            .get(&c.name)
            .ok_or_else(|| PlanError::MissingComponent {
                profile: profile.name.clone(),
                component: c.name.clone(),
                image: image.name.clone(),
            })?
            .flags;
        let binary = format!("{}/{}", profile.paths.bin_dir, c.name);
        command_lines.push(ComponentFlags {
            name: c.name.clone(),
            unit: format!("{}.service", c.name),
            flags: component_flags.clone(),
        });
        binaries.push(Binary {
            member: c.member.clone(),
            path: binary.clone(),
            mode: 0o755,
        });
        let ctx = minijinja::context! {
            name => c.name,
            description => c.description,
            documentation => c.documentation,
            type => match c.service_type { ServiceType::Notify => "notify", ServiceType::Simple => "simple" },
            binary => binary,
            exec_start => systemd::exec_start(&binary, component_flags),
            unit => format!("{}.service", c.name),
        };
        components.push((c, ctx));
    }
    for t in &image.tools {
        let path = format!("{}/{}", profile.paths.bin_dir, t.name);
        binaries.push(Binary {
            member: t.member.clone(),
            path,
            mode: 0o755,
        });
    }
    let mut context = minijinja::context! {
        image => image.name,
        // Rendered as a placeholder, replaced once the plan's digest is known (`version_of`).
        version => VERSION_PLACEHOLDER,
        components => components.iter().map(|(_, ctx)| ctx.clone()).collect::<Vec<_>>(),
        flags => flags,
        apiserver_url => apiserver_url,
        kubernetes => minijinja::context! {
            version => format!("{}.{}", version.major, version.minor),
            minor => version.minor,
            scheduler_config_api => scheduler_config_api(version.minor),
        },
        ..base
    };
    let render_tpl = |template: &str, ctx: &minijinja::Value| {
        env.get_template(template)
            .and_then(|t| t.render(ctx))
            .map_err(|e| PlanError::Render {
                image: image.name.clone(),
                template: template.to_owned(),
                message: format!("{e:#}"),
            })
    };
    let render_value = |what: &str, source: &str, ctx: &minijinja::Value| {
        render::render_str(source, ctx).map_err(|e| value_err(what.to_owned())(format!("{e:#}")))
    };

    let mut secrets = Vec::new();
    for (i, s) in image.secrets.iter().enumerate() {
        let field = |name: &str, v: &str| render_value(&format!("secret[{i}].{name}"), v, &context);
        let path = field("path", &s.path)?;
        AbsPath::parse(&path).map_err(value_err(format!("secret[{i}].path")))?;
        let (owner, group) = (field("owner", &s.owner)?, field("group", &s.group)?);
        for (what, name) in [("owner", &owner), ("group", &group)] {
            values::check_user_name(name).map_err(value_err(format!("secret[{i}].{what}")))?;
        }
        let mode = image::parse_mode(&s.mode).map_err(value_err(format!("secret[{i}].mode")))?;
        // The installer takes secrets from one directory by file name.
        let name = |p: &str| p.rsplit('/').next().unwrap_or_default().to_owned();
        if let Some(other) = secrets
            .iter()
            .find(|o: &&Secret| name(&o.path) == name(&path))
        {
            return Err(value_err(format!("secret[{i}].path"))(format!(
                "{path} and {} share a file name; secrets are delivered from one directory by name",
                other.path
            )));
        }
        secrets.push(Secret {
            path,
            owner,
            group,
            mode: format!("{mode:04o}"),
            used_by: s.used_by.clone(),
            purpose: s.purpose.clone(),
            optional: s.optional,
        });
    }
    context =
        minijinja::context! { secrets => minijinja::Value::from_serialize(&secrets), ..context };

    // Every file's path first: a template may list other files (the addons unit applies the
    // addon files by name).
    let mut paths = Vec::new();
    for (i, f) in image.files.iter().enumerate() {
        let ctx = minijinja::context! { vars => minijinja::Value::from_serialize(&f.vars), ..context.clone() };
        paths.push((
            render_value(&format!("file[{i}].path"), &f.path, &ctx)?,
            ctx,
        ));
    }
    let addons: Vec<String> = image
        .files
        .iter()
        .zip(&paths)
        .filter(|(f, _)| f.addon)
        .map(|(_, (p, _))| p.clone())
        .collect();
    context = minijinja::context! { addons => &addons, ..context };

    let mut files = Vec::new();
    let mut units = Vec::new();
    for (c, component) in &components {
        let ctx = minijinja::context! { component => component, ..context.clone() };
        let unit = format!("{}.service", c.name);
        files.push(File {
            path: format!("/usr/lib/systemd/system/{unit}"),
            mode: 0o644,
            content: render_tpl(&c.unit, &ctx)?,
            template: c.unit.clone(),
        });
        units.push(unit);
    }
    for (i, (f, (path, ctx))) in image.files.iter().zip(paths).enumerate() {
        let ctx = minijinja::context! { addons => &addons, ..ctx };
        if f.enable {
            let unit = path.rsplit('/').next().unwrap_or_default().to_owned();
            units.push(unit);
        }
        files.push(File {
            path,
            mode: image::parse_mode(&f.mode).map_err(value_err(format!("file[{i}].mode")))?,
            content: render_tpl(&f.template, &ctx)?,
            template: f.template.clone(),
        });
    }
    let owns = image
        .owns
        .iter()
        .enumerate()
        .map(|(i, o)| render_value(&format!("owns[{i}]"), o, &context))
        .collect::<Result<Vec<_>, _>>()?;
    let mut links = image
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            Ok(Link {
                path: render_value(&format!("link[{i}].path"), &l.path, &context)?,
                target: render_value(&format!("link[{i}].target"), &l.target, &context)?,
            })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    // The units are enabled by the image itself, as `systemctl enable` would in /etc, but in
    // /usr: so an unpacked OCI image, a merged system extension and an installed root all start
    // them, with no step run on the master.
    for unit in &units {
        let path = format!("{UNITS_DIR}/{unit}");
        let Some(file) = files.iter().find(|f| f.path == path) else {
            continue;
        };
        for target in wanted_by(&file.content) {
            links.push(Link {
                path: format!("{UNITS_DIR}/{target}.wants/{unit}"),
                target: format!("../{unit}"),
            });
        }
        for target in install_list(&file.content, "RequiredBy=") {
            links.push(Link {
                path: format!("{UNITS_DIR}/{target}.requires/{unit}"),
                target: format!("../{unit}"),
            });
        }
    }
    let mut plan = Plan {
        profile: profile.name.clone(),
        image: image.name.clone(),
        release: ReleaseRef {
            name: release.to_owned(),
            version,
        },
        base: profile.base.clone(),
        sample,
        epoch: profile.epoch,
        version: String::new(),
        user: profile.user.name.clone(),
        binaries,
        files,
        links,
        owns,
        units,
        secrets,
        components: command_lines,
    };
    plan.version = version_of(&plan);
    for f in &mut plan.files {
        if f.content.contains(VERSION_PLACEHOLDER) {
            f.content = f.content.replace(VERSION_PLACEHOLDER, &plan.version);
        }
    }
    Ok(plan)
}

/// What templates see as `version` until the plan's version is known.
const VERSION_PLACEHOLDER: &str = "@KUBEMINT_VERSION@";

/// A build's version: `<release>-<epoch>-<digest>`, e.g. `1.14.2-1558001600-0123456789ab`.
///
/// - The release (without its `v`) and the epoch come first, so that versions order the way
///   rollouts go: systemd-sysupdate installs the newest version by `strverscmp`, and a profile
///   change rolled out with a later epoch (`SOURCE_DATE_EPOCH` = the commit's time, as
///   reproducible builds set it) is newer; a later release is newer whatever the epoch.
/// - The digest (12 hex of sha256) is over the whole plan with the version itself left out
///   (every rendered file, binary, link, secret, the sample flag) and the generator's version:
///   two builds that would put different bytes on a master never share a version, and the
///   same inputs always give the same version, so it names content, like the manifest, without
///   depending on the manifest (whose extension-release files carry the version).
///
/// Only `.`, `-` and digits and hex letters appear: valid for systemd-sysupdate's `@v` and
/// for `IMAGE_VERSION`.
pub fn version_of(plan: &Plan) -> String {
    use sha2::{Digest, Sha256};
    let mut unversioned = plan.clone();
    unversioned.version = String::new();
    // The flags as data repeat what the rendered units hold: they add nothing to the content
    // (and, empty, are not serialized: the digest is the one of a plan without them).
    unversioned.components = Vec::new();
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&unversioned).expect("a plan serializes"));
    let digest = hex::encode(h.finalize());
    let release: String = plan
        .release
        .name
        .trim_start_matches('v')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("{release}-{}-{}", plan.epoch, &digest[..12])
}

/// Where the image's units are.
pub const UNITS_DIR: &str = "/usr/lib/systemd/system";

/// The targets a unit's `[Install]` section names in `WantedBy=`.
pub fn wanted_by(unit: &str) -> Vec<String> {
    install_list(unit, "WantedBy=")
}

/// The units an `[Install]` key (`WantedBy=`, `RequiredBy=`) of a unit file names.
fn install_list(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .flat_map(|v| v.split_whitespace().map(str::to_owned))
        .collect()
}

/// The newest `kubescheduler.config.k8s.io` version a Kubernetes 1.`minor` accepts:
/// v1alpha1 1.12–1.18, v1beta1 1.19–1.22, v1beta2 1.22–1.27, v1beta3 1.23–1.28, v1 1.25+.
pub fn scheduler_config_api(minor: u32) -> &'static str {
    match minor {
        0..=18 => "v1alpha1",
        19..=21 => "v1beta1",
        22 => "v1beta2",
        23 | 24 => "v1beta3",
        _ => "v1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = Version::of_release("v1.14.2").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 14, Some(2)));
        assert_eq!(v.to_string(), "1.14.2");
        assert_eq!(Version::of_release("1.33.5").unwrap().minor, 33);
        assert_eq!(Version::of_release("v1.14.2-custom").unwrap().minor, 14);
        assert_eq!(Version::of_release("v1.33").unwrap().to_string(), "1.33");
        assert_eq!(Version::of_release("bench-synthetic"), None);
        assert_eq!(scheduler_config_api(14), "v1alpha1");
        assert_eq!(scheduler_config_api(20), "v1beta1");
        assert_eq!(scheduler_config_api(33), "v1");
    }
}
