//! The secrets boundary: no private key or token ever goes into an image. Rendered files and
//! everything in an image definition are scanned in the front end, before anything is built;
//! what is found is a finding naming the place and the kind of material (never the material
//! itself) with the way out: declare it as a `[[secret]]` and deliver it apart.

use crate::front::check::{Finding, Severity};
use crate::front::plan::Plan;
use std::path::{Path, PathBuf};

/// An image definition directory that cannot be read through.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot read: {source}")]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

const WAY_OUT: &str = "declare the file as a [[secret]] in image.toml and deliver it with `<profile>-install.sh --secrets DIR`";

fn found(profile: &str, place: &str, what: &str) -> Finding {
    Finding::new(
        Severity::Error,
        profile,
        format!("{place}: looks like {what}; keys and tokens never go into an image"),
    )
    .fix(WAY_OUT)
}

/// What `bytes` (or a file named `name`) look like, if they look like key or token material.
pub fn classify(name: &str, bytes: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
        return Some("a PEM private key");
    }
    if has_base64_private_key(&text) {
        return Some("a base64-encoded PEM private key (e.g. client-key-data)");
    }
    if let Some(key) = text.lines().find_map(credential_key) {
        return Some(match key {
            "client-key-data" => "an embedded client key (client-key-data)",
            "password" => "an embedded password",
            _ => "an embedded token",
        });
    }
    if has_jwt(&text) {
        return Some("a JSON Web Token (eyJ….….…)");
    }
    if has_bootstrap_token(&text) {
        return Some("a bootstrap token (xxxxxx.xxxxxxxxxxxxxxxx)");
    }
    if text.lines().any(is_token_line) {
        return Some("a static token file (token,user,uid[,groups])");
    }
    let name = name.rsplit('/').next().unwrap_or(name);
    if name.ends_with(".key") || name.ends_with("-key.pem") || name == "token.csv" {
        return Some("a key or token file, by its name");
    }
    None
}

/// A `key: value` line (YAML, kubeconfig) whose key names a credential and whose value is set.
fn credential_key(line: &str) -> Option<&'static str> {
    let line = line.trim_start().trim_start_matches("- ");
    let (key, value) = line.split_once(':')?;
    let value = value.trim().trim_matches(['"', '\'']);
    let key = ["client-key-data", "token", "password"]
        .into_iter()
        .find(|k| key.trim() == *k)?;
    (!value.is_empty() && value != "null" && value != "~").then_some(key)
}

/// `eyJ…` (base64url JSON) in three dot-separated base64url segments: a JWT.
fn has_jwt(text: &str) -> bool {
    let b64url = |s: &str| {
        s.len() >= 10
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    };
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .any(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3 && parts[0].starts_with("eyJ") && parts.iter().all(|p| b64url(p))
        })
}

/// Base64 of "-----BEGIN" that decodes to a private key.
fn has_base64_private_key(text: &str) -> bool {
    text.match_indices("LS0tLS1CRUdJTi").any(|(i, _)| {
        let run: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "+/=".contains(*c))
            .collect();
        decode_base64(&run)
            .is_some_and(|bytes| String::from_utf8_lossy(&bytes).contains("PRIVATE KEY"))
    })
}

/// Standard base64 (RFC 4648), padding optional; `None` on a character outside the alphabet.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(s).ok()
}

/// `[a-z0-9]{6}\.[a-z0-9]{16}` standing alone: the bootstrap token format.
fn has_bootstrap_token(text: &str) -> bool {
    let b = text.as_bytes();
    let tok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (0..b.len().saturating_sub(22)).any(|i| {
        b[i + 6] == b'.'
            && b[i..i + 6].iter().all(|c| tok(*c))
            && b[i + 7..i + 23].iter().all(|c| tok(*c))
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && b.get(i + 23).is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

/// A line of a `--token-auth-file`: a long opaque token, then user and uid, comma-separated.
fn is_token_line(line: &str) -> bool {
    let fields: Vec<&str> = line.trim().split(',').collect();
    fields.len() >= 3
        && fields[0].len() >= 16
        && fields[0].bytes().all(|c| c.is_ascii_alphanumeric())
        && !fields[1].trim().is_empty()
        && !fields[2].trim().is_empty()
}

/// Every rendered file of a plan, and no declared secret among them. Binaries streamed out of
/// the verified release are upstream's and are not scanned.
pub fn scan_plan(plan: &Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &plan.secrets {
        let carried = plan.files.iter().any(|f| f.path == s.path)
            || plan.binaries.iter().any(|b| b.path == s.path)
            || plan.links.iter().any(|l| l.path == s.path);
        if carried {
            out.push(
                Finding::new(
                    Severity::Error,
                    &plan.profile,
                    format!(
                        "{}: declared as a secret and also a file of the image; a secret is delivered apart, never carried",
                        s.path
                    ),
                )
                .fix("remove the file from the image, or the [[secret]] from image.toml"),
            );
        }
    }
    for f in &plan.files {
        if let Some(what) = classify(&f.path, f.content.as_bytes()) {
            let place = format!("{} (in the tree of {})", f.path, plan.profile);
            out.push(found(&plan.profile, &place, what));
        }
    }
    out
}

/// Every file of an image definition directory, whether a template uses it or not. `shown` is
/// how the directory is named in findings (project-relative); `profile` the first profile of
/// the selection built from it.
pub fn scan_image_dir(dir: &Path, shown: &str, profile: &str) -> Result<Vec<Finding>, ReadError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| ReadError {
            path: dir.to_owned(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).map_err(|source| ReadError {
            path: entry.path().to_owned(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy();
        if let Some(what) = classify(&name, &bytes) {
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            let place = format!("{shown}/{}", rel.display());
            out.push(found(profile, &place, what));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_tokens() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            classify("x.yaml", key.as_bytes()),
            Some("a PEM private key")
        );
        let ec = "-----BEGIN EC PRIVATE KEY-----\n";
        assert!(classify("x", ec.as_bytes()).is_some());
        assert!(classify("kubeadm.yaml", b"token: abcdef.0123456789abcdef\n").is_some());
        assert!(
            classify(
                "t",
                b"0123456789abcdef0123,kubelet-bootstrap,10001,\"system:bootstrappers\"\n"
            )
            .is_some()
        );
        assert!(classify("sa.key", b"").is_some());
        let b64 = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFCi0tLS0tRU5EIFJTQSBQUklWQVRFIEtFWS0tLS0tCg==";
        assert_eq!(
            classify("x", format!("    client-key-data: {b64}\n").as_bytes()),
            Some("a base64-encoded PEM private key (e.g. client-key-data)")
        );
        assert_eq!(
            classify("x", b"    client-key-data: QUJD\n"),
            Some("an embedded client key (client-key-data)")
        );
        assert_eq!(
            classify("x", b"  - name: a\n    token: s3cr3t\n"),
            Some("an embedded token")
        );
        assert_eq!(
            classify("x", b"password: \"hunter2\"\n"),
            Some("an embedded password")
        );
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert_eq!(
            classify("x", format!("bearer {jwt}\n").as_bytes()),
            Some("a JSON Web Token (eyJ….….…)")
        );
        assert_eq!(decode_base64("SGVsbG8="), Some(b"Hello".to_vec()));
        assert!(classify("etcd-key.pem", b"").is_some());
    }

    #[test]
    fn leaves_ordinary_files_alone() {
        for (name, text) in [
            (
                "kubeconfig",
                "client-key: /etc/k8s/ssl/admin-key.pem\nclient-certificate: /etc/k8s/ssl/admin.pem\n",
            ),
            (
                "audit-policy.yaml",
                "- group: admissionregistration.k8s.io\n- group: scheduling.k8s.io\n",
            ),
            (
                "unit",
                "--tls-private-key-file=/etc/k8s/ssl/kubernetes-key.pem \\\n--etcd-servers=https://10.10.10.22:2379,https://10.10.10.23:2379\n",
            ),
            ("cert.pem", "-----BEGIN CERTIFICATE-----\n"),
            (
                "kubeconfig",
                "    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n    token:\n",
            ),
            (
                "policy",
                "# token: see the docs\nomitStages:\n  - RequestReceived\n",
            ),
        ] {
            assert_eq!(classify(name, text.as_bytes()), None, "{name}");
        }
    }
}
