//! The bootable disk: built twice it is the same bytes; sfdisk and systemd-dissect read the
//! layout it promises, its ESP carrying the very sysext and confext written beside it; and a
//! real systemd boots it in QEMU (TCG when KVM does not work): first without its secrets (each
//! component fails once, is not restarted, and the missing files are named), then the same
//! machine is rebooted with throwaway secrets delivered as credentials (every component healthy).
//!
//! The disks are built from the base in the machine's store (`cargo xtask test` makes it when
//! missing and passes its path in `KUBEMINT_TEST_BASE`); each test pins it in its own temporary
//! project, as `cargo xtask base NAME --file PATH` does for a user.

use crate::support::{Project, sh_ok, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

const BASE: &str = "debian-trixie";

/// The base tarball: where `cargo xtask test` says, else the default store's newest.
fn base_tarball() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBEMINT_TEST_BASE") {
        return p.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    let store = std::env::var_os("KUBEMINT_STORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("kubemint/store"));
    let sha512 = std::fs::read_to_string(store.join("bases").join(BASE)).unwrap_or_else(|_| {
        panic!(
            "no {BASE} base in {}: run the suite with `cargo xtask test`, which makes it \
             (or `cargo xtask base {BASE} --no-pin` first)",
            store.display()
        )
    });
    store.join("sha512").join(sha512.trim())
}

/// The store that holds the base (`<store>/sha512/<digest>`): pinned from there, found there.
pub(crate) fn base_store() -> String {
    let base = base_tarball();
    let store = base.parent().and_then(Path::parent).unwrap().to_owned();
    store.to_str().unwrap().to_owned()
}

/// A project whose lock pins the base, and master-1 built from the sample release into `out`.
pub(crate) fn built(out: &str) -> (Project, PathBuf) {
    let p = Project::new();
    let base = base_tarball();
    let store = base_store();
    let store = store.as_str();
    p.ok(&[
        "--store",
        store,
        "base",
        BASE,
        "--file",
        base.to_str().unwrap(),
        "--json",
    ]);
    let root = p.path().join(out);
    p.ok(&[
        "--store",
        store,
        "build-image",
        "master-1",
        "--sample",
        "--out",
        root.to_str().unwrap(),
    ]);
    let dir = root.join("sample/master-1");
    (p, dir)
}

fn disk(dir: &Path) -> PathBuf {
    dir.join("boot/kubemint-master-1.raw")
}

pub(crate) fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", text(bytes)))
}

#[test]
fn the_bootable_disk_is_reproducible_and_has_the_layout_it_promises() {
    let (_a, one) = built("one");
    let (_b, two) = built("elsewhere/two");
    let digest = |d: &Path| sh_ok(&format!("sha256sum < '{}'", disk(d).display()));
    assert_eq!(
        digest(&one),
        digest(&two),
        "two builds of the bootable disk differ"
    );
    let recorded = crate::support::manifest(&one);
    let outputs = recorded["outputs"].to_string();
    assert!(
        outputs.contains("boot/kubemint-master-1.raw"),
        "manifest.json does not list the bootable disk: {outputs}"
    );

    // The partition table: an ESP, then usr A (the base's /usr) and an empty usr B for the next
    // image, with the GPT types systemd's autodetection knows.
    let table = json(sh_ok(&format!("sfdisk --json '{}'", disk(&one).display())).as_bytes());
    let parts = table["partitiontable"]["partitions"].as_array().unwrap();
    let field = |i: usize, k: &str| parts[i][k].as_str().unwrap_or_default().to_owned();
    assert_eq!(parts.len(), 3, "{table}");
    assert_eq!(field(0, "type"), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(field(0, "name"), "esp");
    for i in [1, 2] {
        assert_eq!(field(i, "type"), "8484680C-9521-48C6-9C11-B0720656F69E");
    }
    assert!(field(1, "name").starts_with("kubemint-usr_"), "{table}");
    assert_eq!(field(2, "name"), "_empty");

    let verify = sh_ok(&format!("sgdisk --verify '{}'", disk(&one).display()));
    assert!(verify.contains("No problems found"), "{verify}");

    // The ESP carries the master's sysext and confext, byte for byte the files beside the disk
    // (read with mtools: no FAT driver or loop device needed).
    let esp = format!(
        "{}@@{}",
        disk(&one).display(),
        parts[0]["start"].as_u64().unwrap() * 512
    );
    let listing = sh_ok(&format!("mdir -i '{esp}' -/ -b ::"));
    let copied = tempfile::tempdir().unwrap();
    for (inside, beside) in [
        (
            "kubemint/extensions/kubemint-master-1.raw",
            crate::support::output_rel(&one, "sysext"),
        ),
        (
            "kubemint/confexts/kubemint-master-1.raw",
            crate::support::output_rel(&one, "confext"),
        ),
    ] {
        let out = copied.path().join("copy.raw");
        sh_ok(&format!(
            "mcopy -n -i '{esp}' '::/{inside}' '{}'",
            out.display()
        ));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(one.join(&beside)).unwrap(),
            "the ESP's {inside} is not {beside}: {listing}"
        );
    }
    assert!(
        listing.to_lowercase().contains("efi/boot/bootx64.efi"),
        "no UEFI fallback loader on the ESP: {listing}"
    );

    // systemd-dissect: a UEFI-bootable image whose /usr is the base's squashfs, read-only.
    let dissect = json(
        sh_ok(&format!(
            "systemd-dissect --json=short '{}'",
            disk(&one).display()
        ))
        .as_bytes(),
    );
    assert_eq!(dissect["useBootableUefi"], true, "{dissect}");
    let mounts = dissect["mounts"].as_array().unwrap();
    let usr = mounts
        .iter()
        .find(|m| m["designator"] == "usr")
        .unwrap_or_else(|| panic!("no usr partition: {dissect}"));
    assert_eq!(usr["fstype"], "squashfs");
    assert_eq!(usr["rw"], "ro");
    assert!(
        mounts
            .iter()
            .any(|m| m["designator"] == "esp" && m["fstype"] == "vfat"),
        "{dissect}"
    );
    assert!(
        dissect["osRelease"]
            .to_string()
            .contains("IMAGE_ID=kubemint-base"),
        "{dissect}"
    );
}

/// One VM at a time: two TCG guests on two cores each boot at half speed, and the suite's
/// tests run on two threads.
static ONE_VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `cargo xtask vm` on the project's build; its JSON report.
pub(crate) fn boot(
    p: &Project,
    out: &Path,
    machine: &Path,
    secrets: Option<&Path>,
    extra: &[&str],
) -> Value {
    let mut args = vec![
        "vm",
        "master-1",
        "--sample",
        "--out",
        out.to_str().unwrap(),
        "--machine",
        machine.to_str().unwrap(),
        "--json",
        "--timeout",
        "900",
    ];
    args.extend(extra);
    let dir;
    if let Some(s) = secrets {
        dir = s.to_str().unwrap().to_owned();
        args.extend(["--secrets", &dir]);
    }
    // Under TCG, as the suite's budget is measured: KVM on these machines is nested, when it
    // runs at all.
    let run = {
        let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
        p.xtask(&args).env("KUBEMINT_VM_TCG", "1").output().unwrap()
    };
    if serde_json::from_slice::<Value>(&run.stdout).is_err() {
        panic!(
            "xtask {args:?} gave no report (exit {}):\n{}",
            run.status,
            text(&run.stderr)
        );
    }
    let report = json(&run.stdout);
    eprintln!(
        "vm master-1 ({}): {}",
        if secrets.is_some() {
            "with secrets"
        } else {
            "without secrets"
        },
        text(&run.stderr).lines().last().unwrap_or_default()
    );
    assert_eq!(
        run.status.success(),
        report["healthy"] == true || report["crashed"] == true,
        "the exit status must say whether the master is healthy: {report}"
    );
    report
}

#[test]
fn a_master_boots_from_its_disk_and_runs_once_its_secrets_arrive() {
    let (p, _) = built("vm");
    let out = p.path().join("vm");
    // One machine, booted twice: the second boot is a reboot of the first, state and all.
    let machine = p.path().join("machine.raw");
    let units = [
        "kube-apiserver.service",
        "kube-controller-manager.service",
        "kube-scheduler.service",
    ];

    // No secrets: the extension and the configuration extension are merged and the user made,
    // and each component stops at its secrets check, once (exit 78 is not restarted), naming
    // what is missing.
    let r = boot(&p, &out, &machine, None, &[]);
    assert_eq!(r["healthy"], false, "{r}");
    assert_eq!(
        r["extensions"],
        serde_json::json!(["kubemint-master-1"]),
        "{r}"
    );
    assert_eq!(
        r["confexts"],
        serde_json::json!(["kubemint-master-1"]),
        "{r}"
    );
    assert_eq!(
        r["extension_versions"]["kubemint-master-1"], "v1.14.2",
        "{r}"
    );
    assert_eq!(r["confext_versions"]["kubemint-master-1"], "v1.14.2", "{r}");
    assert!(r["user"].as_str().unwrap().contains("(k8s)"), "{r}");
    for u in units {
        assert_eq!(r["units"][u], "failed", "{u}: {r}");
        assert_eq!(r["restarts"][u], 0, "{u} was restarted: {r}");
        assert!(
            r["failed"].as_array().unwrap().iter().any(|f| f == u),
            "systemctl --failed does not list {u}: {r}"
        );
    }
    let missing = r["missing_secrets"].to_string();
    for file in [
        "/etc/k8s/ssl/ca.pem",
        "/etc/k8s/ssl/kubernetes-key.pem",
        "sa.key",
    ] {
        assert!(missing.contains(file), "{file} not named missing: {r}");
    }

    // Throwaway secrets delivered as credentials, and a reboot: placed with their owners and
    // modes, every component active and answering its health endpoint, with no step run by hand.
    let secrets = p.path().join("secrets");
    p.ok(&["dev-secrets", secrets.to_str().unwrap()]);
    let r = boot(&p, &out, &machine, Some(&secrets), &[]);
    assert_eq!(r["healthy"], true, "{r}");
    for u in units {
        assert_eq!(r["units"][u], "active", "{u}: {r}");
        assert_eq!(r["restarts"][u], 0, "{u}: {r}");
    }
    for (component, ok) in r["health"].as_object().unwrap() {
        assert_eq!(ok, true, "{component} is not healthy: {r}");
    }
    assert_eq!(r["missing_secrets"], serde_json::json!([]), "{r}");
    assert_eq!(r["failed"], serde_json::json!([]), "{r}");
}

#[test]
fn the_extension_route_comes_up_by_itself_without_the_base_seeding_it() {
    // README's route for any systemd 254+ host: the standalone sysext and confext dropped into
    // /var/lib/extensions and /var/lib/confexts (and /etc kept writable), nothing else. The
    // base's seeding is switched off; the activation the sysext carries does the rest.
    let (p, _) = built("vm");
    let out = p.path().join("vm");
    let secrets = p.path().join("secrets");
    p.ok(&["dev-secrets", secrets.to_str().unwrap()]);
    let machine = p.path().join("machine.raw");
    let r = boot(&p, &out, &machine, Some(&secrets), &["--no-seed"]);
    assert_eq!(r["healthy"], true, "{r}");
    assert_eq!(
        r["extensions"],
        serde_json::json!(["kubemint-master-1"]),
        "{r}"
    );
    assert_eq!(
        r["confexts"],
        serde_json::json!(["kubemint-master-1"]),
        "{r}"
    );
    assert_eq!(r["failed"], serde_json::json!([]), "{r}");
}

#[test]
fn pin_takes_a_base_made_elsewhere_and_refuses_what_is_not_one() {
    let p = Project::new();
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tar_of = |name: &str, release: &str| {
        let src = dir.path().join(format!("{name}-tree"));
        std::fs::create_dir_all(src.join("usr/lib/kubemint-base")).unwrap();
        std::fs::write(src.join("usr/lib/kubemint-base/base-release"), release).unwrap();
        let tar = dir.path().join(format!("{name}.tar"));
        sh_ok(&format!(
            "tar -C '{}' -cf '{}' ./usr",
            src.display(),
            tar.display()
        ));
        tar
    };
    // Not a base: no base-release naming it; another base's tarball.
    let plain = tar_of("plain", "");
    let err = p.fails(&[
        "--store",
        store_arg,
        "pin",
        BASE,
        "--file",
        plain.to_str().unwrap(),
    ]);
    assert!(
        err.contains("not a base made by `cargo xtask base`"),
        "{err}"
    );
    let other = tar_of("other", "KUBEMINT_BASE_NAME=debian-forky\n");
    let err = p.fails(&[
        "--store",
        store_arg,
        "pin",
        BASE,
        "--file",
        other.to_str().unwrap(),
    ]);
    assert!(err.contains("debian-forky"), "{err}");
    let lock = std::fs::read_to_string(p.path().join("vendor/releases.toml")).unwrap();
    assert!(
        !lock.contains("[[base]]"),
        "a refused base was pinned:\n{lock}"
    );

    // A base: stored under its sha512 and pinned as a [[base]] entry.
    let good = tar_of(
        "good",
        "KUBEMINT_BASE_NAME=debian-trixie\nKUBEMINT_BASE_VERSION=1\n",
    );
    let out = p.ok(&[
        "--store",
        store_arg,
        "pin",
        BASE,
        "--file",
        good.to_str().unwrap(),
        "--json",
    ]);
    let made = json(&out.stdout);
    let sha512 = made["sha512"].as_str().unwrap();
    assert_eq!(made["pinned"], "added", "{made}");
    assert!(store.path().join("sha512").join(sha512).is_file());
    let lock = std::fs::read_to_string(p.path().join("vendor/releases.toml")).unwrap();
    assert!(lock.contains("[[base]]") && lock.contains(sha512), "{lock}");
    let err = p.fails(&[
        "--store",
        store_arg,
        "pin",
        BASE,
        "--file",
        good.to_str().unwrap(),
        "--url",
        "https://example.org/b.tar",
    ]);
    assert!(err.contains("is a base"), "{err}");
}
