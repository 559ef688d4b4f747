//! Image definitions (`images/<name>/image.toml` and its `templates/`): which components a
//! control-plane image carries, which release members, which rendered files and links.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    description: String,
    /// Directories the image owns whole (templates over the profile).
    #[serde(default)]
    owns: Vec<String>,
    #[serde(default, rename = "component")]
    components: Vec<Component>,
    #[serde(default, rename = "file")]
    files: Vec<File>,
    #[serde(default, rename = "link")]
    links: Vec<Link>,
    #[serde(default, rename = "tool")]
    tools: Vec<Tool>,
    #[serde(default, rename = "secret")]
    secrets: Vec<Secret>,
}

/// A Kubernetes component: a binary out of the release, and a systemd unit that runs it with the
/// flags its profile gives.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    pub description: String,
    pub documentation: String,
    /// systemd `Type=`: `notify` for kube-apiserver (it calls sd_notify), `simple` otherwise.
    #[serde(rename = "type")]
    pub service_type: ServiceType,
    /// The binary's path inside the release tarball.
    pub member: String,
    /// The template its unit is rendered from.
    pub unit: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    Notify,
    Simple,
}

/// A file rendered from a template; `path` is itself a template (e.g. `{{ paths.conf_dir }}/…`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub template: String,
    pub path: String,
    /// Octal permission bits, e.g. "0644".
    pub mode: String,
    /// Extra values the template sees as `vars`, so one template can render several files.
    #[serde(default)]
    pub vars: toml::Table,
    /// The file is a systemd unit the installer enables.
    #[serde(default)]
    pub enable: bool,
    /// The file is a manifest the addons unit applies (each by name).
    #[serde(default)]
    pub addon: bool,
}

/// A release member installed as a plain executable, with no unit of its own (kubectl).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub member: String,
}

/// A file a master needs that never goes into an image: a key, a token, a certificate. The
/// image declares it (`path`, `owner` and `group` are templates); it is delivered apart and
/// checked before the components in `used_by` start.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: String,
    pub used_by: Vec<String>,
    pub purpose: String,
    /// Delivered only to some masters (the admin key): its absence is not a problem.
    #[serde(default)]
    pub optional: bool,
}

/// A symlink; `path` and `target` are templates.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub path: String,
    pub target: String,
}

/// A loaded image definition with the source of every template it uses.
#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    pub dir: PathBuf,
    pub description: String,
    /// Directories the image owns whole (templates over the profile).
    pub owns: Vec<String>,
    pub components: Vec<Component>,
    pub files: Vec<File>,
    pub links: Vec<Link>,
    pub tools: Vec<Tool>,
    pub secrets: Vec<Secret>,
    /// Template name → source.
    pub templates: BTreeMap<String, String>,
    /// image.toml and every template, with the sha256 of what was read.
    pub sources: Vec<crate::front::profile::Source>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Parses an octal mode string such as "0644".
pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && s.len() == 4)
        .ok_or_else(|| format!("mode {s:?} is not four octal digits, e.g. \"0644\""))
}

impl Image {
    /// Loads `images_dir/<name>/image.toml` and the templates it names.
    pub fn load(images_dir: &Path, name: &str) -> Result<Image, ImageError> {
        let dir = images_dir.join(name);
        let path = dir.join("image.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| ImageError::Read {
            path: path.clone(),
            source,
        })?;
        let invalid = |message: String| ImageError::Invalid {
            path: path.clone(),
            message,
        };
        let raw: RawImage =
            toml::from_str(&text).map_err(|e| invalid(e.to_string().trim_end().to_owned()))?;
        let mut problems = Vec::new();
        let mut names: Vec<&str> = raw.components.iter().map(|c| c.unit.as_str()).collect();
        names.extend(raw.files.iter().map(|f| f.template.as_str()));
        for (i, f) in raw.files.iter().enumerate() {
            if let Err(m) = parse_mode(&f.mode) {
                problems.push(format!("file[{i}].mode: {m}"));
            }
        }
        for (i, c) in raw.components.iter().enumerate() {
            if crate::front::profile::values::check_hostname(&c.name).is_err() {
                problems.push(format!(
                    "component[{i}].name: {:?} is not a component name",
                    c.name
                ));
            }
        }
        let users: Vec<&str> = raw
            .components
            .iter()
            .map(|c| c.name.as_str())
            .chain(
                raw.files
                    .iter()
                    .filter(|f| f.enable)
                    .filter_map(|f| f.path.rsplit('/').next()?.strip_suffix(".service")),
            )
            .collect();
        for (i, s) in raw.secrets.iter().enumerate() {
            if let Err(m) = parse_mode(&s.mode) {
                problems.push(format!("secret[{i}].mode: {m}"));
            }
            if s.used_by.is_empty() {
                problems.push(format!(
                    "secret[{i}].used_by: name the components that read {}",
                    s.path
                ));
            }
            for u in &s.used_by {
                if !users.contains(&u.as_str()) {
                    problems.push(format!("secret[{i}].used_by: {u:?} is neither a component nor an enabled unit of this image"));
                }
            }
            if s.purpose.contains('\n') || s.purpose.trim().is_empty() {
                problems.push(format!(
                    "secret[{i}].purpose: one line saying what {} is",
                    s.path
                ));
            }
        }
        let source = |path: &Path, text: &str| crate::front::profile::Source {
            path: path.to_owned(),
            sha256: crate::util::hash::sha256_hex(text.as_bytes()),
        };
        let mut sources = vec![source(&path, &text)];
        let mut templates = BTreeMap::new();
        for name in names {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                problems.push(format!(
                    "template {name:?} must be a file name in templates/"
                ));
                continue;
            }
            let tpath = dir.join("templates").join(name);
            match std::fs::read_to_string(&tpath) {
                Ok(text) => {
                    if !templates.contains_key(name) {
                        sources.push(source(&tpath, &text));
                    }
                    templates.insert(name.to_owned(), text);
                }
                Err(e) => problems.push(format!(
                    "template {name:?}: cannot read {}: {e}",
                    tpath.display()
                )),
            }
        }
        if !problems.is_empty() {
            return Err(invalid(problems.join("; ")));
        }
        Ok(Image {
            name: name.to_owned(),
            dir,
            description: raw.description,
            owns: raw.owns,
            components: raw.components,
            files: raw.files,
            links: raw.links,
            tools: raw.tools,
            secrets: raw.secrets,
            templates,
            sources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert!(parse_mode("644").is_err());
        assert!(parse_mode("0999").is_err());
    }

    #[test]
    fn missing_template_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x/templates")).unwrap();
        std::fs::write(
            dir.path().join("x/image.toml"),
            "description = \"x\"\n[[file]]\ntemplate = \"a.j2\"\npath = \"/etc/a\"\nmode = \"0644\"\n",
        )
        .unwrap();
        let err = Image::load(dir.path(), "x").unwrap_err().to_string();
        assert!(
            err.contains("image.toml") && err.contains("\"a.j2\""),
            "{err}"
        );
    }
}
