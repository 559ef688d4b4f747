//! `cargo xtask dev-secrets DIR`: a complete, valid set of THROWAWAY secrets for a profile set,
//! for tests and throwaway machines only: `install.sh --secrets DIR`, a VM, a CI run.
//!
//! What each declared secret is follows from the plans (`front::plan_set`), never from its file
//! name: the flags and kubeconfigs that name its path say whether it is the cluster CA, the
//! front-proxy CA, a serving or client certificate (with which CN and SANs), its key, the
//! service-account key pair or the token file. The apiserver's serving certificate carries every
//! master's host name and address, `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
//! `kubernetes.default.svc.cluster.local`, the service network's first address, 127.0.0.1 and
//! localhost. Every declared secret is written, optional ones too, with its declared mode, and
//! nothing else but `README.txt`, which says THROWAWAY, NOT FOR PRODUCTION (and so does stderr).
//!
//! The material comes from the `openssl` command (RSA 2048 keys, SHA-256 signatures), random by
//! nature: two runs never give the same bytes, and nothing here is meant to. It is generated in
//! a private temporary directory inside DIR and moved into place once complete; no key or token
//! is ever printed. DIR must be new, empty, or one this command wrote before (its README.txt):
//! anything else is refused, untouched.

use anyhow::{Context, Result, bail, ensure};
use kubemint::front::check::flag_value;
use kubemint::front::{self, Master, Request, Selection};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use yaml_rust2::{Yaml, YamlLoader};

#[derive(clap::Args, Debug)]
pub struct DevSecretsArgs {
    /// Where to write them: a new or empty directory, or one dev-secrets wrote before
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The profile set (default profiles/), e.g. profiles/upgrade
    #[arg(long = "profiles", value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Print what was written as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// The line of README.txt by which dev-secrets knows a directory it wrote.
const MARKER: &str = "kubemint-dev-secrets: THROWAWAY";
/// The line of README.txt listing the files it wrote, which a later run may replace.
const FILES: &str = "kubemint-dev-secrets-files:";
const README: &str = "README.txt";
const WARNING: &str = "THROWAWAY secrets, NOT FOR PRODUCTION";
/// The staging directory's prefix, inside DIR.
const STAGING: &str = ".dev-secrets-";

/// A certificate signed by one of the two CAs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cert {
    cn: String,
    o: Option<String>,
    /// Signed by the front-proxy CA (else the cluster CA).
    front_proxy: bool,
    /// A serving certificate too (serverAuth, with `sans`); every one is a client certificate.
    server: bool,
    sans: Vec<String>,
    /// The file name of its private key.
    key: Option<String>,
}

/// What one secret file is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum What {
    Ca,
    CaKey,
    FrontProxyCa,
    Cert(Cert),
    /// The private key of the certificate file named.
    Key(String),
    SaKey,
    SaPub,
    Tokens,
}

impl What {
    fn describe(&self) -> String {
        match self {
            What::Ca => "cluster CA certificate (CN kubernetes)".into(),
            What::CaKey => "cluster CA private key".into(),
            What::FrontProxyCa => {
                "front-proxy CA certificate (CN front-proxy-ca; its key is not kept)".into()
            }
            What::Cert(c) => {
                let o =
                    c.o.as_deref()
                        .map(|o| format!(", O {o}"))
                        .unwrap_or_default();
                let by = if c.front_proxy {
                    "front-proxy CA"
                } else {
                    "cluster CA"
                };
                let role = if c.server {
                    format!("serving and client certificate, SANs {}", c.sans.join(" "))
                } else {
                    "client certificate".into()
                };
                format!("{role} (CN {}{o}), signed by the {by}", c.cn)
            }
            What::Key(cert) => format!("private key of {cert}"),
            What::SaKey => "service-account signing key (RSA)".into(),
            What::SaPub => {
                "service-account verification key, the public half of the signing key".into()
            }
            What::Tokens => {
                "static token file: one random bootstrap token for kubelet-bootstrap".into()
            }
        }
    }
}

/// One file written.
#[derive(Debug, Serialize)]
struct Written {
    name: String,
    mode: String,
    what: String,
}

#[derive(Debug, Serialize)]
struct Report {
    dir: String,
    throwaway: bool,
    warning: String,
    profiles: Vec<String>,
    files: Vec<Written>,
}

pub fn run(root: &Path, profiles_dir: &Path, dir: &Path, json: bool) -> Result<ExitCode> {
    let planned = front::plan_set(&Request {
        root: root.to_owned(),
        profiles_dir: profiles_dir.to_owned(),
        selection: Selection::All,
        release: None,
        sample: false,
        epoch: None,
    })?;
    let declared = declared(&planned.masters)?;
    let what = identify(&planned.masters, &declared)?;
    let previous = prepare(dir)?;
    eprintln!(
        "warning: {WARNING}: writing {}; random keys stored unencrypted, for tests and throwaway \
         machines only, never for a real master (see its {README})",
        dir.display()
    );
    let staging = tempfile::Builder::new()
        .prefix(STAGING)
        .tempdir_in(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    generate(staging.path(), &what)?;

    let profiles: Vec<String> = planned
        .masters
        .iter()
        .map(|m| m.profile.name.clone())
        .collect();
    let files: Vec<Written> = declared
        .iter()
        .map(|(name, mode)| Written {
            name: name.clone(),
            mode: format!("{mode:04o}"),
            what: what[name].describe(),
        })
        .collect();
    let shown = profiles_dir
        .strip_prefix(root)
        .unwrap_or(profiles_dir)
        .display()
        .to_string();
    std::fs::write(
        staging.path().join(README),
        readme(&shown, &profiles, &files),
    )?;
    for (name, mode) in &declared {
        std::fs::set_permissions(
            staging.path().join(name),
            std::fs::Permissions::from_mode(*mode),
        )
        .with_context(|| format!("{name}: was not generated"))?;
    }
    // The old set out, the new one in: README.txt first, so that a run cut short still leaves a
    // directory the next run recognises.
    for name in previous.iter().chain(std::iter::once(&README.to_owned())) {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e)
                    .with_context(|| format!("cannot remove {}", dir.join(name).display()));
            }
            _ => {}
        }
    }
    for name in std::iter::once(README).chain(declared.keys().map(String::as_str)) {
        std::fs::rename(staging.path().join(name), dir.join(name))
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    drop(staging);
    let on_disk: BTreeSet<String> = entries(dir)?.into_iter().filter(|n| n != README).collect();
    let wanted: BTreeSet<String> = declared.keys().cloned().collect();
    ensure!(
        on_disk == wanted,
        "{} holds {on_disk:?}, not the declared secrets {wanted:?}",
        dir.display()
    );

    let report = Report {
        dir: dir.display().to_string(),
        throwaway: true,
        warning: format!("{WARNING}: never deliver them to a real master"),
        profiles,
        files,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} ({WARNING}) for {}:",
            report.dir,
            report.profiles.join(", ")
        );
        let width = report.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &report.files {
            println!("  {} {:width$}  {}", f.mode, f.name, f.what);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every declared secret of the set by file name, with its mode; the masters must agree.
fn declared(masters: &[Master]) -> Result<BTreeMap<String, u32>> {
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    for m in masters {
        for s in &m.plan.secrets {
            let name = file_name(&s.path).to_owned();
            let mode = u32::from_str_radix(&s.mode, 8)
                .with_context(|| format!("{}: mode {:?}", s.path, s.mode))?;
            if let Some(other) = out.insert(name.clone(), mode) {
                ensure!(
                    other == mode,
                    "{name}: the masters declare it with modes {other:04o} and {mode:04o}: one directory cannot serve both"
                );
            }
        }
    }
    Ok(out)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// What each declared secret is, from the flags and kubeconfigs that name it.
fn identify(
    masters: &[Master],
    declared: &BTreeMap<String, u32>,
) -> Result<BTreeMap<String, What>> {
    let sans = serving_sans(masters);
    // (file, what) as each flag and kubeconfig names them; recorded after.
    let mut found: Vec<(String, What)> = Vec::new();
    for m in masters {
        let secret = |path: Option<&str>| -> Option<String> {
            let path = path?;
            m.plan
                .secrets
                .iter()
                .any(|s| s.path == path)
                .then(|| file_name(path).to_owned())
        };
        let api = |f: &str| flag_value(&m.profile, "kube-apiserver", f);
        let kcm = |f: &str| flag_value(&m.profile, "kube-controller-manager", f);
        let mut add = |name: Option<String>, what: What| {
            if let Some(name) = name {
                found.push((name, what));
            }
        };
        let kubeconfigs = kubeconfigs(m);
        for p in [
            api("client-ca-file"),
            api("etcd-cafile"),
            api("kubelet-certificate-authority"),
            kcm("root-ca-file"),
            kcm("client-ca-file"),
            kcm("cluster-signing-cert-file"),
        ]
        .into_iter()
        .chain(kubeconfigs.iter().map(|k| k.ca.as_deref()))
        {
            add(secret(p), What::Ca);
        }
        add(secret(kcm("cluster-signing-key-file")), What::CaKey);
        let cluster_ca = secret(api("client-ca-file"));
        let mut front_proxy = false;
        for p in [
            api("requestheader-client-ca-file"),
            kcm("requestheader-client-ca-file"),
        ] {
            if let Some(name) = secret(p)
                && Some(&name) != cluster_ca.as_ref()
            {
                front_proxy = true;
                add(Some(name), What::FrontProxyCa);
            }
        }
        add(secret(api("service-account-key-file")), What::SaPub);
        add(secret(kcm("service-account-private-key-file")), What::SaKey);
        add(secret(api("service-account-signing-key-file")), What::SaKey);
        add(secret(api("token-auth-file")), What::Tokens);

        // Certificates with their keys.
        let client = |cn: &str| Cert {
            cn: cn.to_owned(),
            o: None,
            front_proxy: false,
            server: false,
            sans: Vec::new(),
            key: None,
        };
        let allowed = api("requestheader-allowed-names")
            .and_then(|v| v.split(',').map(str::trim).find(|n| !n.is_empty()))
            .unwrap_or("front-proxy-client");
        let mut pairs = vec![
            // The serving certificate: CN kubernetes, which the guide's kubelet-apis addon
            // binds (it is also the apiserver's client certificate to kubelets).
            (
                api("tls-cert-file"),
                api("tls-private-key-file"),
                Cert {
                    server: true,
                    sans: sans.clone(),
                    ..client("kubernetes")
                },
            ),
            (
                api("kubelet-client-certificate"),
                api("kubelet-client-key"),
                client("kubernetes"),
            ),
            (
                api("proxy-client-cert-file"),
                api("proxy-client-key-file"),
                Cert {
                    front_proxy,
                    ..client(allowed)
                },
            ),
            (
                api("etcd-certfile"),
                api("etcd-keyfile"),
                Cert {
                    server: true,
                    sans: etcd_sans(m),
                    ..client("kube-apiserver-etcd-client")
                },
            ),
        ];
        for k in &kubeconfigs {
            pairs.push((
                k.cert.as_deref(),
                k.key.as_deref(),
                Cert {
                    o: k.admin.then(|| "system:masters".to_owned()),
                    ..client(&k.user)
                },
            ));
        }
        for (cert, key, c) in pairs {
            let (cert, key) = (secret(cert), secret(key));
            if let (Some(cert), Some(key)) = (&cert, &key) {
                add(Some(key.clone()), What::Key(cert.clone()));
            }
            add(cert, What::Cert(Cert { key, ..c }));
        }
    }
    let mut out: BTreeMap<String, What> = BTreeMap::new();
    for (name, what) in found {
        assign(&mut out, Some(name), what)?;
    }
    let unknown: Vec<&String> = declared.keys().filter(|n| !out.contains_key(*n)).collect();
    ensure!(
        unknown.is_empty(),
        "dev-secrets cannot tell what to put in {}: no flag or kubeconfig of the set names {}; \
         teach xtask/src/devsecrets.rs what it is",
        unknown
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if unknown.len() == 1 { "it" } else { "them" }
    );
    out.retain(|n, _| declared.contains_key(n));
    Ok(out)
}

/// Records what `name` is; a serving certificate that is also a client certificate stays the
/// serving one. Two other meanings for one file are an error.
fn assign(out: &mut BTreeMap<String, What>, name: Option<String>, what: What) -> Result<()> {
    let Some(name) = name else { return Ok(()) };
    match (out.get(&name), &what) {
        (None, _) => {
            out.insert(name, what);
        }
        (Some(old), new) if old == new => {}
        (Some(What::Cert(old)), What::Cert(new))
            if old.server && !new.server && old.cn == new.cn => {}
        (Some(What::Cert(old)), What::Cert(new))
            if new.server && !old.server && old.cn == new.cn =>
        {
            out.insert(name, what);
        }
        (Some(old), new) => bail!(
            "{name} is named as two different things: {} and {}",
            old.describe(),
            new.describe()
        ),
    }
    Ok(())
}

/// The apiserver's serving certificate's names: the in-cluster ones, every master's host name,
/// address and advertise address, the service network's first address, loopback.
fn serving_sans(masters: &[Master]) -> Vec<String> {
    let mut sans = Vec::new();
    let mut add = |s: String| {
        if !sans.contains(&s) {
            sans.push(s);
        }
    };
    for name in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        add(format!("DNS:{name}"));
    }
    for m in masters {
        add(format!("DNS:{}", m.profile.host.name));
        add(format!("IP:{}", m.profile.host.address));
        if let Some(a) = flag_value(&m.profile, "kube-apiserver", "advertise-address")
            .and_then(|a| a.parse::<IpAddr>().ok())
        {
            add(format!("IP:{a}"));
        }
    }
    for m in masters {
        add(format!(
            "IP:{}",
            first_address(m.profile.cluster.service_cidr.network())
        ));
    }
    add("IP:127.0.0.1".into());
    add("DNS:localhost".into());
    sans
}

/// The etcd client certificate's names, so that a throwaway etcd can serve with it too: the
/// hosts of `--etcd-servers` and loopback.
fn etcd_sans(m: &Master) -> Vec<String> {
    let mut sans = Vec::new();
    for url in &m.profile.cluster.etcd_servers {
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => format!("IP:{ip}"),
            Err(_) => format!("DNS:{host}"),
        };
        if !host.is_empty() && !sans.contains(&san) {
            sans.push(san);
        }
    }
    for s in ["IP:127.0.0.1", "DNS:localhost"] {
        if !sans.iter().any(|x| x == s) {
            sans.push(s.to_owned());
        }
    }
    sans
}

/// The first address of a network: what the `kubernetes` service gets.
fn first_address(network: IpAddr) -> IpAddr {
    match network {
        IpAddr::V4(a) => IpAddr::from(u32::from(a).wrapping_add(1).to_be_bytes()),
        IpAddr::V6(a) => IpAddr::from(u128::from(a).wrapping_add(1).to_be_bytes()),
    }
}

/// A user of a kubeconfig the plan renders.
struct KubeconfigUser {
    user: String,
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    /// Used by kubectl in one of the image's units (the addons, cluster-scoped: cluster-admin).
    admin: bool,
}

fn kubeconfigs(m: &Master) -> Vec<KubeconfigUser> {
    let admin_kubeconfigs: Vec<&str> = m
        .plan
        .files
        .iter()
        .filter(|f| f.path.ends_with(".service"))
        .flat_map(|f| f.content.lines())
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .filter(|l| l.contains("/kubectl "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|a| a.strip_prefix("--kubeconfig="))
        .collect();
    let mut out = Vec::new();
    for f in &m.plan.files {
        let Ok(docs) = YamlLoader::load_from_str(&f.content) else {
            continue;
        };
        let Some(doc) = docs.first() else { continue };
        if doc["kind"].as_str() != Some("Config") {
            continue;
        }
        let ca = doc["clusters"]
            .as_vec()
            .and_then(|c| c.first())
            .and_then(|c| c["cluster"]["certificate-authority"].as_str())
            .map(str::to_owned);
        for u in doc["users"].as_vec().map(Vec::as_slice).unwrap_or_default() {
            let s = |y: &Yaml| y.as_str().map(str::to_owned);
            out.push(KubeconfigUser {
                user: s(&u["name"]).unwrap_or_default(),
                ca: ca.clone(),
                cert: s(&u["user"]["client-certificate"]),
                key: s(&u["user"]["client-key"]),
                admin: admin_kubeconfigs.contains(&f.path.as_str()),
            });
        }
    }
    out
}

/// Checks DIR: new (then made, 0700), empty, or written by dev-secrets before (its README.txt);
/// returns the files that earlier run wrote, which this one replaces.
fn prepare(dir: &Path) -> Result<Vec<String>> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        Ok(meta) if !meta.is_dir() => bail!(
            "{} is not a directory (a symlink or a file): choose a new or empty directory",
            dir.display()
        ),
        Ok(_) => {}
    }
    let present = entries(dir)?;
    if present.is_empty() {
        return Ok(Vec::new());
    }
    let readme = std::fs::read_to_string(dir.join(README)).unwrap_or_default();
    if !readme.lines().any(|l| l == MARKER) {
        bail!(
            "{} is not empty and dev-secrets did not write it (no {README} of its own): \
             refusing to write there; choose a new or empty directory",
            dir.display()
        );
    }
    let ours: Vec<String> = readme
        .lines()
        .find_map(|l| l.strip_prefix(FILES))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // A staging directory left by a run that was killed goes too.
    for n in present.iter().filter(|n| n.starts_with(STAGING)) {
        std::fs::remove_dir_all(dir.join(n))
            .with_context(|| format!("cannot remove {}", dir.join(n).display()))?;
    }
    let foreign: Vec<&String> = present
        .iter()
        .filter(|n| *n != README && !ours.contains(n) && !n.starts_with(STAGING))
        .collect();
    ensure!(
        foreign.is_empty(),
        "{} holds files dev-secrets did not write ({}): refusing to write there",
        dir.display(),
        foreign
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ours)
}

fn entries(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        names.push(e?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Makes every file of `what` in `dir` (private keys first, then certificates signed by their CA).
fn generate(dir: &Path, what: &BTreeMap<String, What>) -> Result<()> {
    let all = |w: What| -> Vec<String> {
        what.iter()
            .filter(|(_, x)| **x == w)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let find = |w: What| all(w).into_iter().next();
    // The two CAs (each under every name that means it); a CA key nobody declared stays in the
    // staging directory and goes with it.
    let ca = find(What::Ca).unwrap_or_else(|| ".ca.pem".into());
    let ca_key = find(What::CaKey).unwrap_or_else(|| ".ca-key.pem".into());
    make_ca(dir, &ca, &ca_key, "kubernetes")?;
    let fp = find(What::FrontProxyCa);
    if let Some(fp) = &fp {
        make_ca(dir, fp, ".front-proxy-ca-key.pem", "front-proxy-ca")?;
    }
    for (first, w) in [(Some(&ca), What::Ca), (fp.as_ref(), What::FrontProxyCa)] {
        for other in all(w).iter().skip(1) {
            if let Some(first) = first {
                std::fs::copy(dir.join(first), dir.join(other))?;
            }
        }
    }
    let sa_keys_first = find(What::SaKey);
    for (name, w) in what {
        match w {
            What::Cert(c) => {
                let (signer, signer_key) = match (&fp, c.front_proxy) {
                    (Some(fp), true) => (fp.as_str(), ".front-proxy-ca-key.pem"),
                    _ => (ca.as_str(), ca_key.as_str()),
                };
                let key = c.key.clone().unwrap_or_else(|| format!(".{name}.key"));
                make_cert(dir, name, &key, c, signer, signer_key)?;
            }
            What::SaKey if Some(name) == sa_keys_first.as_ref() => {
                openssl(
                    dir,
                    &[
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                        "-out",
                        name,
                    ],
                )?;
            }
            _ => {}
        }
    }
    let sa_keys = all(What::SaKey);
    for other in sa_keys.iter().skip(1) {
        std::fs::copy(dir.join(&sa_keys[0]), dir.join(other))?;
    }
    if let Some(public) = find(What::SaPub) {
        let private = match sa_keys.first() {
            Some(k) => k.clone(),
            None => {
                let k = ".sa.key".to_owned();
                openssl(
                    dir,
                    &[
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                        "-out",
                        &k,
                    ],
                )?;
                k
            }
        };
        openssl(dir, &["pkey", "-in", &private, "-pubout", "-out", &public])?;
    }
    if let Some(tokens) = find(What::Tokens) {
        // A bootstrap token's shape, [a-z0-9]{6}.[a-z0-9]{16}, in the guide's token.csv line.
        let id = openssl_out(dir, &["rand", "-hex", "3"])?;
        let secret = openssl_out(dir, &["rand", "-hex", "8"])?;
        std::fs::write(
            dir.join(&tokens),
            format!("{id}.{secret},kubelet-bootstrap,10001,\"system:bootstrappers\"\n"),
        )?;
    }
    Ok(())
}

fn make_ca(dir: &Path, cert: &str, key: &str, cn: &str) -> Result<()> {
    let config = format!(
        "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ext\n\
         [dn]\nCN = {cn}\n\
         [ext]\nbasicConstraints = critical, CA:TRUE\n\
         keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n"
    );
    let cnf = format!(".{cert}.cnf");
    std::fs::write(dir.join(&cnf), config)?;
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            key,
        ],
    )?;
    openssl(
        dir,
        &[
            "req", "-x509", "-new", "-sha256", "-config", &cnf, "-key", key, "-days", "3650",
            "-out", cert,
        ],
    )
}

fn make_cert(dir: &Path, cert: &str, key: &str, c: &Cert, ca: &str, ca_key: &str) -> Result<()> {
    for v in std::iter::once(&c.cn).chain(&c.o).chain(&c.sans) {
        ensure!(
            v.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ":._-@ ".contains(ch)),
            "{cert}: {v:?} cannot go into a certificate here (only letters, digits and :._-@ and spaces)"
        );
    }
    let mut config = String::from("[req]\nprompt = no\ndistinguished_name = dn\n[dn]\n");
    if let Some(o) = &c.o {
        writeln!(config, "O = {o}")?;
    }
    writeln!(config, "CN = {}", c.cn)?;
    config.push_str(
        "[ext]\nbasicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    );
    if c.server {
        config.push_str("extendedKeyUsage = serverAuth, clientAuth\n");
        writeln!(config, "subjectAltName = {}", c.sans.join(", "))?;
    } else {
        config.push_str("extendedKeyUsage = clientAuth\n");
    }
    let cnf = format!(".{cert}.cnf");
    let csr = format!(".{cert}.csr");
    std::fs::write(dir.join(&cnf), config)?;
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            key,
        ],
    )?;
    openssl(
        dir,
        &[
            "req", "-new", "-sha256", "-config", &cnf, "-key", key, "-out", &csr,
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha256",
            "-in",
            &csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &cnf,
            "-extensions",
            "ext",
            "-out",
            cert,
        ],
    )
}

/// Runs `openssl ARGS` in `dir`; its output is never shown (it may be key material), only its
/// error messages.
fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    openssl_out(dir, args).map(drop)
}

fn openssl_out(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("cannot run openssl: dev-secrets uses the openssl command (Debian: apt-get install openssl)")?;
    ensure!(
        out.status.success(),
        "openssl {} failed: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn readme(profiles_dir: &str, profiles: &[String], files: &[Written]) -> String {
    let mut t = String::new();
    let banner = "THROWAWAY SECRETS -- NOT FOR PRODUCTION";
    let _ = writeln!(t, "{banner}\n{}\n", "=".repeat(banner.len()));
    let _ = writeln!(
        t,
        "`cargo xtask dev-secrets` (kubemint) wrote these files for the profile set {profiles_dir}\n\
         (masters: {}).\n\n\
         Every key and token here was made from random material by the openssl command on the\n\
         machine that ran it, and is stored unencrypted: treat it as public. They are for tests\n\
         and throwaway machines only (install.sh --secrets DIR, a VM, CI). NEVER deliver them to\n\
         a master that matters: make a real cluster's secrets with your own PKI and deliver them\n\
         the same way.\n",
        profiles.join(", ")
    );
    let width = files.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in files {
        let _ = writeln!(t, "  {} {:width$}  {}", f.mode, f.name, f.what);
    }
    let _ = writeln!(
        t,
        "\nThe two lines below let dev-secrets rewrite this directory; it refuses any other.\n{MARKER}\n{FILES} {}",
        files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_address_of_a_network() {
        assert_eq!(
            first_address("10.254.0.0".parse().unwrap()).to_string(),
            "10.254.0.1"
        );
        assert_eq!(
            first_address("fd00::".parse().unwrap()).to_string(),
            "fd00::1"
        );
    }

    #[test]
    fn a_serving_certificate_stays_one() {
        let mut out = BTreeMap::new();
        let cert = |server| {
            What::Cert(Cert {
                cn: "kubernetes".into(),
                o: None,
                front_proxy: false,
                server,
                sans: Vec::new(),
                key: Some("k.pem".into()),
            })
        };
        assign(&mut out, Some("c.pem".into()), cert(false)).unwrap();
        assign(&mut out, Some("c.pem".into()), cert(true)).unwrap();
        assign(&mut out, Some("c.pem".into()), cert(false)).unwrap();
        assert_eq!(out["c.pem"], cert(true));
        assert!(assign(&mut out, Some("c.pem".into()), What::Ca).is_err());
        assign(&mut out, None, What::Ca).unwrap();
    }

    #[test]
    fn the_readme_marks_the_directory_and_lists_its_files() {
        let files = [Written {
            name: "ca.pem".into(),
            mode: "0644".into(),
            what: "x".into(),
        }];
        let t = readme("profiles", &["master-1".into()], &files);
        assert!(t.starts_with("THROWAWAY SECRETS -- NOT FOR PRODUCTION\n"));
        assert!(t.lines().any(|l| l == MARKER));
        assert!(t.lines().any(|l| l == format!("{FILES} ca.pem")));
    }
}
