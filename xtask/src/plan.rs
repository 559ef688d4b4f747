//! The resolved plan: pure data saying exactly what one master's tree holds (release members,
//! rendered files with their bytes, links) and where. Computed without I/O from a profile, an
//! image definition and a lock entry, so it can be printed, diffed and tested.

use crate::image::{self, Image, ServiceType};
use crate::lock::Release;
use crate::profile::Profile;
use crate::render;
use crate::systemd;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub profile: String,
    pub image: String,
    pub release: Release,
    /// Built from the generated stand-in release, not a real one.
    pub sample: bool,
    pub epoch: u64,
    /// The service user the units run as and sysusers.d declares.
    pub user: String,
    pub binaries: Vec<Binary>,
    pub files: Vec<File>,
    pub links: Vec<Link>,
    /// Units the installer enables, by name.
    pub units: Vec<String>,
}

/// A member streamed out of the release into the tree.
#[derive(Clone, Debug, Serialize)]
pub struct Binary {
    pub member: String,
    pub path: String,
    pub mode: u32,
}

/// A rendered file.
#[derive(Clone, Debug, Serialize)]
pub struct File {
    pub path: String,
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

/// Resolves what `profile` built from `image` on `release` contains.
pub fn plan(
    profile: &Profile,
    image: &Image,
    release: &Release,
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

    let mut binaries = Vec::new();
    let mut components = Vec::new();
    for c in &image.components {
        let flags = &profile
            .components
            .get(&c.name)
            .ok_or_else(|| PlanError::MissingComponent {
                profile: profile.name.clone(),
                component: c.name.clone(),
                image: image.name.clone(),
            })?
            .flags;
        let binary = format!("{}/{}", profile.paths.bin_dir, c.name);
        binaries.push(Binary {
            member: c.member.clone(),
            path: binary.clone(),
            mode: 0o755,
        });
        components.push(minijinja::context! {
            name => c.name,
            description => c.description,
            documentation => c.documentation,
            type => match c.service_type { ServiceType::Notify => "notify", ServiceType::Simple => "simple" },
            binary => binary,
            exec_start => systemd::exec_start(&binary, flags),
            unit => format!("{}.service", c.name),
            unit_template => c.unit,
        });
    }
    let context = minijinja::context! { image => image.name, components => components, ..base };
    let render_tpl = |template: &str, ctx: &minijinja::Value| {
        env.get_template(template)
            .and_then(|t| t.render(ctx))
            .map_err(|e| PlanError::Render {
                image: image.name.clone(),
                template: template.to_owned(),
                message: format!("{e:#}"),
            })
    };
    let render_value = |what: &str, source: &str| {
        render::render_str(source, &context)
            .map_err(|e| value_err(what.to_owned())(format!("{e:#}")))
    };

    let mut files = Vec::new();
    let mut units = Vec::new();
    for component in &components {
        let ctx = minijinja::context! { component => component, ..context.clone() };
        let template = component
            .get_attr("unit_template")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let unit = component
            .get_attr("unit")
            .map(|v| v.to_string())
            .unwrap_or_default();
        files.push(File {
            path: format!("/usr/lib/systemd/system/{unit}"),
            mode: 0o644,
            content: render_tpl(&template, &ctx)?,
            template,
        });
        units.push(unit);
    }
    for (i, f) in image.files.iter().enumerate() {
        files.push(File {
            path: render_value(&format!("file[{i}].path"), &f.path)?,
            mode: image::parse_mode(&f.mode).map_err(value_err(format!("file[{i}].mode")))?,
            content: render_tpl(&f.template, &context)?,
            template: f.template.clone(),
        });
    }
    let links = image
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            Ok(Link {
                path: render_value(&format!("link[{i}].path"), &l.path)?,
                target: render_value(&format!("link[{i}].target"), &l.target)?,
            })
        })
        .collect::<Result<_, PlanError>>()?;
    Ok(Plan {
        profile: profile.name.clone(),
        image: image.name.clone(),
        release: release.clone(),
        sample,
        epoch: profile.epoch,
        user: profile.user.name.clone(),
        binaries,
        files,
        links,
        units,
    })
}

/// Loads what a plan needs from the project (profile, lock, image) and resolves it: the plan
/// `cargo xtask plan` prints. Reads no input tarball.
pub fn resolve(
    root: &std::path::Path,
    profile: &str,
    release: Option<&str>,
) -> anyhow::Result<Plan> {
    let profile = crate::profile::load(&root.join("profiles"), profile)?;
    let vendor = root.join("vendor");
    let lock = crate::lock::Lock::load(&vendor)?;
    let release = lock.get(release.unwrap_or(&profile.release), &vendor)?;
    let image = Image::load(&root.join("images"), &profile.image)?;
    Ok(plan(&profile, &image, release, false)?)
}
