//! `cargo xtask push`: a build's OCI image and the artefacts attached to it (SBOMs,
//! provenance) to a registry or another layout, by skopeo, digests unchanged.
//!
//! skopeo copies one image (or one index) at a time and knows nothing of referrers, so the
//! push is two copies: the image by its tag (`--preserve-digests`: skopeo refuses rather than
//! rewrite it), then the image index a registry without the referrers API keeps under the
//! spec's fallback tag `sha256-<image hex>`, with `--all`, which pushes every artefact
//! manifest and blob by digest (a registry with the referrers API lists them by their
//! `subject` from then on) and the index under that tag. The index is staged in a temporary
//! layout whose blobs are links to the output's own. Then both are read back and checked:
//! the image's manifest bytes hash to the digest manifest.json records, and the fallback
//! tag lists every artefact.

use anyhow::{Context, Result, bail};
use clap::Args;
use kubemint::attest::attach;
use kubemint::audit::Expected;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct PushArgs {
    /// A build's output directory (the one holding manifest.json and oci/)
    #[arg(value_name = "OUTPUT")]
    pub output: PathBuf,
    /// Where to: docker://HOST/REPOSITORY, or oci:DIR (a layout, made if missing); no tag
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// The image's tag (default: the build's version, as manifest.json records it)
    #[arg(long)]
    pub tag: Option<String>,
    /// Plain HTTP or an unverified certificate (a test registry; skopeo's --dest-tls-verify=false)
    #[arg(long)]
    pub no_tls_verify: bool,
    /// Print what was pushed as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// What a push did: the `--json` form.
#[derive(Debug, Serialize)]
pub struct Pushed {
    /// The image, as pushed: `DEST:TAG`.
    pub image: String,
    /// Its manifest digest (the build's, unchanged).
    pub digest: String,
    /// The fallback tag's reference: `DEST:sha256-<hex>`.
    pub referrers: String,
    pub artefacts: Vec<Artefact>,
}

#[derive(Debug, Serialize)]
pub struct Artefact {
    #[serde(rename = "artifactType")]
    pub artifact_type: String,
    pub digest: String,
    pub title: String,
}

/// `DEST` without a tag, checked: a transport skopeo knows and kubemint can tag.
fn destination(dest: &str) -> Result<String> {
    let dest = dest.trim_end_matches('/');
    let Some((transport, rest)) = dest.split_once(':') else {
        bail!("{dest}: not a destination: give docker://HOST/REPOSITORY or oci:DIR");
    };
    match transport {
        "docker" => {
            let repo = rest.strip_prefix("//").unwrap_or(rest);
            if !repo.contains('/') || crate::skopeo::repository(dest) != dest {
                bail!(
                    "{dest}: give the repository without a tag or digest (docker://HOST/REPOSITORY); the tag is --tag, the build's version by default"
                );
            }
        }
        "oci" => {
            if rest.is_empty() || rest.contains(':') {
                bail!(
                    "{dest}: give the layout's directory without a tag (oci:DIR); the tag is --tag"
                );
            }
        }
        other => bail!("{dest}: transport {other}: push takes docker:// or oci:"),
    }
    Ok(dest.to_owned())
}

/// The staged layout: the fallback index as its one tagged entry, every blob of `layout` linked.
fn stage(layout: &Path, tag: &str, index: &[u8], into: &Path) -> Result<()> {
    let blobs = into.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("cannot make {}", blobs.display()))?;
    let from = layout.join("blobs/sha256");
    let mut names: Vec<_> = std::fs::read_dir(&from)
        .with_context(|| format!("cannot read {}", from.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", from.display()))?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        std::os::unix::fs::symlink(e.path(), blobs.join(e.file_name()))
            .with_context(|| format!("cannot link {}", e.path().display()))?;
    }
    let hex = kubemint::util::hash::sha256_hex(index);
    std::fs::write(blobs.join(&hex), index).context("cannot stage the referrers index")?;
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": kubemint::pack::oci::INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": kubemint::pack::oci::INDEX_MEDIA_TYPE,
            "digest": format!("sha256:{hex}"),
            "size": index.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(into.join("index.json"), serde_json::to_vec(&top)?)?;
    std::fs::write(
        into.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(())
}

pub fn run(args: &PushArgs, cwd: &Path) -> Result<Pushed> {
    let dir = cwd.join(&args.output);
    let exp = Expected::from_dir(&dir)
        .with_context(|| format!("{}: not a build's output directory", dir.display()))?;
    let m = &exp.manifest;
    let layout = dir.join("oci");
    let digest = m.oci["manifest_digest"]
        .as_str()
        .with_context(|| {
            format!(
                "{}: no oci.manifest_digest",
                dir.join("manifest.json").display()
            )
        })?
        .to_owned();
    let dest = destination(&args.dest)?;
    let tag = match &args.tag {
        Some(t) => t.clone(),
        None => m.rest["version"]
            .as_str()
            .with_context(|| "manifest.json has no version: give --tag")?
            .to_owned(),
    };
    if tag.is_empty()
        || tag.len() > 128
        || !tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!("--tag {tag:?}: a tag is 1 to 128 of [A-Za-z0-9._-]");
    }
    let referrers = attach::referrers(&layout, &digest)
        .with_context(|| format!("{}: cannot read its attached artefacts", layout.display()))?;
    if referrers.is_empty() {
        bail!(
            "{}: nothing is attached to the image {digest}: build it again with this kubemint",
            layout.display()
        );
    }
    let fallback = attach::fallback_tag(&digest);
    let index = attach::referrers_index(&referrers);
    let staged = tempfile::tempdir().context("cannot make a temporary directory")?;
    stage(&layout, &fallback, &index, staged.path())?;

    let skopeo = crate::skopeo::run;
    let tls = args.no_tls_verify.then_some("--dest-tls-verify=false");
    let read_tls = args.no_tls_verify.then_some("--tls-verify=false");
    let image = format!("{dest}:{tag}");
    let list = format!("{dest}:{fallback}");
    let src_image = format!("oci:{}:{}", layout.display(), m.profile);
    let src_list = format!("oci:{}:{fallback}", staged.path().display());
    eprintln!("push: {} -> {image}", m.profile);
    let mut copy: Vec<&str> = vec!["copy", "--quiet", "--preserve-digests"];
    copy.extend(tls);
    skopeo(&[copy.as_slice(), &[src_image.as_str(), image.as_str()]].concat())?;
    eprintln!("push: {} attached artefact(s) -> {list}", referrers.len());
    let mut copy: Vec<&str> = vec!["copy", "--quiet", "--all"];
    copy.extend(tls);
    skopeo(&[copy.as_slice(), &[src_list.as_str(), list.as_str()]].concat())?;

    // Read back: the image is the build's, byte for byte; the fallback tag lists every artefact.
    let mut inspect: Vec<&str> = vec!["inspect", "--raw"];
    inspect.extend(read_tls);
    let raw = skopeo(&[inspect.as_slice(), &[image.as_str()]].concat())?;
    let got = format!("sha256:{}", kubemint::util::hash::sha256_hex(&raw));
    if got != digest {
        bail!("{image}: its manifest is {got} after the push, not the build's {digest}");
    }
    let raw = skopeo(&[inspect.as_slice(), &[list.as_str()]].concat())?;
    let listed: serde_json::Value =
        serde_json::from_slice(&raw).with_context(|| format!("{list}: not an image index"))?;
    let listed: Vec<&str> = listed["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["digest"].as_str())
        .collect();
    let artefacts: Vec<Artefact> = referrers
        .iter()
        .map(|d| Artefact {
            artifact_type: d["artifactType"].as_str().unwrap_or_default().to_owned(),
            digest: d["digest"].as_str().unwrap_or_default().to_owned(),
            title: d["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    for a in &artefacts {
        if !listed.contains(&a.digest.as_str()) {
            bail!(
                "{list}: does not list the artefact {} ({})",
                a.digest,
                a.title
            );
        }
    }
    Ok(Pushed {
        image,
        digest,
        referrers: list,
        artefacts,
    })
}

/// The summary a person reads.
pub fn render(p: &Pushed) -> String {
    let mut s = format!("pushed {}\n  image     {}\n", p.image, p.digest);
    for a in &p.artefacts {
        s.push_str(&format!("  {:<9} {}  {}\n", "attached", a.digest, a.title));
    }
    s.push_str(&format!(
        "  found by the image's digest: the registry's referrers API, or {}\n",
        p.referrers
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_is_a_repository_or_layout_without_a_tag() {
        assert_eq!(
            destination("docker://127.0.0.1:5000/kubemint/master-1").unwrap(),
            "docker://127.0.0.1:5000/kubemint/master-1"
        );
        assert!(destination("oci:/tmp/layout").is_ok());
        for bad in [
            "docker://127.0.0.1:5000/kubemint/master-1:v1",
            "docker://host/repo@sha256:00",
            "docker://repo",
            "oci:/tmp/layout:tag",
            "dir:/tmp/x",
            "nothing",
        ] {
            assert!(destination(bad).is_err(), "{bad}");
        }
    }
}
