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

/// The `source` of every finding of this scan: how [`is_material`] knows them.
pub const SOURCE: &str = "kubemint's secrets boundary: no key, certificate or token in an image";

/// Whether a finding is key or token material found by this scan (a command that would print
/// the plan's contents must not).
pub fn is_material(f: &Finding) -> bool {
    f.source.as_deref() == Some(SOURCE)
}

const WAY_OUT: &str = "declare the file as a [[secret]] in image.toml and deliver it with `<profile>-install.sh --secrets DIR`";

/// Key or token material found in a text: what it looks like, and the line (from 1) it
/// starts on. Never the material itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub what: &'static str,
    pub line: usize,
}

/// What `bytes` (or a file named `name`) look like, if they look like key or token material.
pub fn classify(name: &str, bytes: &[u8]) -> Option<&'static str> {
    find(name, &String::from_utf8_lossy(bytes)).map(|f| f.what)
}

/// The first key or token material in `text` (a file named `name`): PEM blocks; keys and
/// certificates as bare base64 DER (PKCS#1, PKCS#8, SEC1, Ed25519, X.509), on one line or
/// wrapped over several; base64 of a PEM key; credentials in YAML; JSON Web Tokens; bootstrap
/// tokens; static token files; key files by name.
pub fn find(name: &str, text: &str) -> Option<Found> {
    let lines: Vec<&str> = text.lines().collect();
    let at = |what, i: usize| Some(Found { what, line: i + 1 });
    if let Some(f) = pem(&lines) {
        return Some(f);
    }
    if let Some(f) = der(&lines) {
        return Some(f);
    }
    for (i, line) in lines.iter().enumerate() {
        if let Some(what) = base64_pem(line) {
            return at(what, i);
        }
        if let Some(key) = credential_key(line) {
            return at(
                match key {
                    "client-key-data" => "an embedded client key (client-key-data)",
                    "password" => "an embedded password",
                    _ => "an embedded token",
                },
                i,
            );
        }
        if has_jwt(line) {
            return at("a JSON Web Token (eyJ….….…)", i);
        }
        if has_bootstrap_token(line) {
            return at("a bootstrap token (xxxxxx.xxxxxxxxxxxxxxxx)", i);
        }
        if is_token_line(line) {
            return at("a static token file (token,user,uid[,groups])", i);
        }
    }
    let name = name.rsplit('/').next().unwrap_or(name);
    if name.ends_with(".key") || name.ends_with("-key.pem") || name == "token.csv" {
        return at("a key or token file, by its name", 0);
    }
    None
}

/// A PEM block: `-----BEGIN X-----` … `-----END X-----`; a private key's BEGIN line alone is
/// enough (the rest may have been cut).
fn pem(lines: &[&str]) -> Option<Found> {
    for (i, line) in lines.iter().enumerate() {
        let Some(start) = line.find("-----BEGIN ") else {
            continue;
        };
        let rest = &line[start + "-----BEGIN ".len()..];
        let Some(label) = rest.find("-----").map(|e| &rest[..e]) else {
            continue;
        };
        let what = if label.contains("PRIVATE KEY") {
            "a PEM private key"
        } else if label.contains("CERTIFICATE") {
            "a PEM certificate"
        } else {
            "a PEM block"
        };
        let end = format!("-----END {label}-----");
        if what == "a PEM private key" || lines[i..].iter().any(|l| l.contains(&end)) {
            return Some(Found { what, line: i + 1 });
        }
    }
    None
}

fn is_base64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='
}

/// Keys and certificates as bare base64 DER: a run of base64 on one line (within other text,
/// such as a YAML or TOML value), or whole lines of base64 wrapped as PEM bodies are.
fn der(lines: &[&str]) -> Option<Found> {
    // Each word that could begin a DER SEQUENCE (0x30: base64 "M"), with the whole lines of
    // base64 that follow it appended.
    for (i, line) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            if !is_base64(bytes[start]) || (start > 0 && is_base64(bytes[start - 1])) {
                start += 1;
                continue;
            }
            let end = (start..bytes.len())
                .find(|&k| !is_base64(bytes[k]))
                .unwrap_or(bytes.len());
            let word = &line[start..end];
            if word.starts_with('M') && word.len() >= 40 {
                let mut run = word.to_owned();
                if end == bytes.len() {
                    for next in &lines[i + 1..] {
                        // A wrapped line: maybe indented, quoted, or behind a comment sign.
                        let t = next
                            .trim()
                            .trim_start_matches(['#', ';'])
                            .trim()
                            .trim_matches(['"', '\'', ',']);
                        if t.is_empty() || !t.bytes().all(is_base64) {
                            break;
                        }
                        run.push_str(t);
                    }
                }
                if let Some(what) = decode_base64(&run).as_deref().and_then(der_kind) {
                    return Some(Found { what, line: i + 1 });
                }
            }
            start = end;
        }
    }
    None
}

/// One DER element: (tag, contents, the rest after it).
fn der_element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x));
        (len, &b[n..])
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// What a DER structure is, if it is a private key or a certificate.
fn der_kind(der: &[u8]) -> Option<&'static str> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTETS: u8 = 0x04;
    const BITS: u8 = 0x03;
    let (tag, body, rest) = der_element(der)?;
    if tag != SEQUENCE || !rest.iter().all(|&b| b == 0) {
        return None;
    }
    let mut items = Vec::new();
    let mut b = body;
    while !b.is_empty() {
        let (t, c, r) = der_element(b)?;
        items.push((t, c));
        b = r;
    }
    let tags: Vec<u8> = items.iter().map(|(t, _)| *t).collect();
    match tags.as_slice() {
        // RSAPrivateKey: version 0, then n, e, d, p, q, dp, dq, qinv.
        [INTEGER, rest @ ..] if rest.len() >= 8 && rest.iter().all(|t| *t == INTEGER) => {
            Some("an RSA private key as base64 DER (PKCS#1)")
        }
        // PrivateKeyInfo: version, AlgorithmIdentifier, the key as an OCTET STRING.
        [INTEGER, SEQUENCE, OCTETS, ..] => {
            const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
            if items[1].1.starts_with(ED25519) {
                Some("an Ed25519 private key as base64 DER (PKCS#8)")
            } else {
                Some("a private key as base64 DER (PKCS#8)")
            }
        }
        // EncryptedPrivateKeyInfo.
        [SEQUENCE, OCTETS] => Some("an encrypted private key as base64 DER (PKCS#8)"),
        // ECPrivateKey: version 1, the key, optional parameters and public key.
        [INTEGER, OCTETS, ..] if items[0].1 == [1] => {
            Some("an EC private key as base64 DER (SEC1)")
        }
        // Certificate: tbsCertificate, signatureAlgorithm, signature.
        [SEQUENCE, SEQUENCE, BITS] => Some("a certificate as base64 DER (X.509)"),
        _ => None,
    }
}

/// Base64 of a PEM block (a kubeconfig's `client-key-data`): a private key, or a whole
/// certificate.
fn base64_pem(line: &str) -> Option<&'static str> {
    line.match_indices("LS0tLS1CRUdJTi").find_map(|(i, _)| {
        let run: String = line[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "+/=".contains(*c))
            .collect();
        let text = String::from_utf8_lossy(&decode_base64(&run)?).into_owned();
        if text.contains("PRIVATE KEY") {
            Some("a base64-encoded PEM private key (e.g. client-key-data)")
        } else if text.contains("-----END ") {
            Some("a base64-encoded PEM block (e.g. certificate-authority-data)")
        } else {
            None
        }
    })
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
        if let Some(found) = find(&f.path, &f.content) {
            let place = format!("{} (in the tree of {})", f.path, plan.profile);
            out.push(found_at(
                &plan.profile,
                &place,
                found.what,
                &format!("line {} of what {} renders", found.line, f.template),
            ));
        }
    }
    out
}

fn found_at(profile: &str, place: &str, what: &str, at: &str) -> Finding {
    Finding::new(
        Severity::Error,
        profile,
        format!("{place}: looks like {what} ({at}); keys and tokens never go into an image"),
    )
    .fix(WAY_OUT)
    .source(SOURCE)
}

/// Every string of a profile's files (`sources`, shown relative to `root`), each named by its
/// file, key and line. Material in a profile is refused even where no template uses it.
pub fn scan_profile(profile: &str, files: &[(String, String)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (shown, text) in files {
        for (key, line, value) in crate::front::profile::strings(text) {
            if let Some(found) = find("", &value) {
                let place = format!("{shown}: {key}");
                out.push(found_at(
                    profile,
                    &place,
                    found.what,
                    &format!("line {line}"),
                ));
            }
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
        if let Some(found) = find(&name, &String::from_utf8_lossy(&bytes)) {
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            let place = format!("{shown}/{}", rel.display());
            out.push(found_at(
                profile,
                &place,
                found.what,
                &format!("line {}", found.line),
            ));
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

    /// DER of `tag` with `content`.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn finds_bare_der_keys_and_certificates_on_one_line_or_wrapped() {
        let int = |v: &[u8]| tlv(0x02, v);
        // An Ed25519 PrivateKeyInfo's shape (not a real key).
        let ed = tlv(
            0x30,
            &[
                int(&[0]),
                tlv(0x30, &[0x06, 0x03, 0x2b, 0x65, 0x70]),
                tlv(0x04, &tlv(0x04, &[7; 32])),
            ]
            .concat(),
        );
        let ed = b64(&ed);
        assert!(ed.starts_with("MC4CAQAwBQYDK2Vw"), "{ed}");
        let f = find("x", &format!("key: {ed}\n")).unwrap();
        assert_eq!(
            (f.what, f.line),
            ("an Ed25519 private key as base64 DER (PKCS#8)", 1)
        );
        // An RSAPrivateKey's shape, long enough to wrap.
        let rsa: Vec<u8> = [int(&[0])]
            .into_iter()
            .chain((0..8).map(|i| int(&[0x11 + i; 40])))
            .flatten()
            .collect();
        let rsa = b64(&tlv(0x30, &rsa));
        let wrapped: Vec<&str> = rsa
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let text = format!("a: 1\ndata: |\n  {}\n", wrapped.join("\n  "));
        let f = find("x", &text).unwrap();
        assert_eq!(
            (f.what, f.line),
            ("an RSA private key as base64 DER (PKCS#1)", 3)
        );
        assert_eq!(find("x", &format!("\"{rsa}\"")).unwrap().what, f.what);
        // An EC private key, and a certificate's shape.
        let sec1 = b64(&tlv(0x30, &[int(&[1]), tlv(0x04, &[9; 32])].concat()));
        assert_eq!(
            classify("x", sec1.as_bytes()),
            Some("an EC private key as base64 DER (SEC1)")
        );
        let cert = b64(&tlv(
            0x30,
            &[
                tlv(0x30, &[0; 60]),
                tlv(0x30, &[0; 10]),
                tlv(0x03, &[0; 65]),
            ]
            .concat(),
        ));
        assert_eq!(
            classify("x", cert.as_bytes()),
            Some("a certificate as base64 DER (X.509)")
        );
        // Base64 that is not DER of those, and a public key, are left alone.
        assert_eq!(
            find(
                "x",
                "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MA=="
            ),
            None
        );
        let spki = b64(&tlv(
            0x30,
            &[
                tlv(0x30, &[0x06, 0x03, 0x2b, 0x65, 0x70]),
                tlv(0x03, &[0; 33]),
            ]
            .concat(),
        ));
        assert_eq!(find("x", &spki), None);
        // PEM blocks of any label, with their END; a private key's BEGIN alone.
        let pem = "x\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(
            find("x", pem),
            Some(Found {
                what: "a PEM certificate",
                line: 2
            })
        );
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
