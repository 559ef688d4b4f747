//! skopeo, the one tool kubemint moves images between registries and layouts with: running
//! it (its stderr in the error when it fails), and the repository part of a reference.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// Runs `skopeo ARGS…`; its stdout, or an error with what it said.
pub fn run(args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .context("cannot run skopeo (install it: apt-get install skopeo)")?;
    if !out.status.success() {
        bail!(
            "skopeo {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// A `docker://` reference without its tag or digest (`docker://host:5000/repo:v1` →
/// `docker://host:5000/repo`); any other reference as it is.
pub fn repository(reference: &str) -> &str {
    let Some(rest) = reference.strip_prefix("docker://") else {
        return reference;
    };
    let start = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[start..].find(['@', ':']) {
        Some(i) => &reference[..reference.len() - rest.len() + start + i],
        None => reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_of_a_reference_drops_its_tag_or_digest_not_its_port() {
        for (given, repo) in [
            (
                "docker://127.0.0.1:5000/kubemint/master-1:v1",
                "docker://127.0.0.1:5000/kubemint/master-1",
            ),
            ("docker://host/repo@sha256:00", "docker://host/repo"),
            ("docker://host:5000/repo", "docker://host:5000/repo"),
            ("docker://repo:v1", "docker://repo"),
            ("oci:/tmp/layout", "oci:/tmp/layout"),
        ] {
            assert_eq!(repository(given), repo, "{given}");
        }
    }
}
