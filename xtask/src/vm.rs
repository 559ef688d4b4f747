//! `cargo xtask vm PROFILE`: boots the bootable disk build-image wrote for a master in QEMU
//! (KVM when it works, TCG otherwise), delivers its secrets as systemd credentials, waits for
//! the control plane to come up, and reports what the guest says: seconds to healthy, the
//! merged extensions, the user, each unit's state, each component's health answer, the secrets
//! still missing. A binary-side command: it runs QEMU.
//!
//! The report comes from a unit the VM is given at boot as a credential
//! (`systemd.extra-unit.*`), not from the image: the disk boots as any master would. The unit
//! waits until every component is healthy or has failed, writes one JSON line to the second
//! serial port, and powers the machine off.

use anyhow::{Context, Result, bail, ensure};
use kubemint::front::{Planned, check};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct VmArgs {
    /// The profile whose bootable disk (boot/kubemint-PROFILE.raw) is booted
    pub profile: String,
    /// The profiles directory (default profiles/), e.g. profiles/upgrade
    #[arg(long = "profiles", value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Boot the sample build (target/images/sample)
    #[arg(long)]
    pub sample: bool,
    /// The output root build-image wrote to (default target/images)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Deliver every file of DIR as the credential kubemint.<file name> (see dev-secrets)
    #[arg(long, value_name = "DIR")]
    pub secrets: Option<PathBuf>,
    /// Give up after this many seconds
    #[arg(long, value_name = "S", default_value_t = 600)]
    pub timeout: u64,
    /// Guest memory in MiB
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    pub memory: u64,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Keep the VM's directory (its disk, console log, report) and say where
    #[arg(long)]
    pub keep: bool,
    /// Boot this disk file instead of a throwaway copy: made from the built disk when it does not
    /// exist, kept after; running again with it reboots the same machine (state, placed secrets)
    #[arg(long, value_name = "FILE")]
    pub machine: Option<PathBuf>,
    /// Without the base's help: its seeding from the ESP is switched off, and the standalone
    /// extensions/ and confexts/ images (attached as drives) are placed in /var/lib/extensions and
    /// /var/lib/confexts at boot, as README's route does on any systemd 254+ host
    #[arg(long)]
    pub no_seed: bool,
    /// Once the first boot is healthy, update the guest to the build in OUTDIR (an output root,
    /// or one profile's output directory): its versioned extension images are put in the
    /// master's update source, `/usr/lib/kubemint/rollout update VERSION` installs them with
    /// systemd-sysupdate, activates and gates them, and rolls back if the gate fails; the
    /// report says which version runs after, whether it rolled back and why
    #[arg(long, value_name = "OUTDIR")]
    pub update_to: Option<PathBuf>,
    /// With --update-to: cut the power as soon as the new version is installed and switched,
    /// before its gate decides (reboot the same --machine to see what comes up)
    #[arg(long, requires = "update_to")]
    pub crash_during_update: bool,
}

/// The build `--update-to` names: its version and extension images.
#[derive(Clone, Debug)]
pub struct Update {
    pub version: String,
    pub sysext: PathBuf,
    pub confext: PathBuf,
}

impl Update {
    /// Finds `profile`'s build in `out` (its output directory, or an output root holding it,
    /// directly or under `sample/`).
    pub fn find(out: &Path, profile: &str) -> Result<Update> {
        let dir = [
            out.to_owned(),
            out.join(profile),
            out.join("sample").join(profile),
        ]
        .into_iter()
        .find(|d| d.join("manifest.json").is_file())
        .with_context(|| {
            format!(
                "{} holds no build of {profile} (no manifest.json there, in {profile}/ or in sample/{profile}/)",
                out.display()
            )
        })?;
        let file = dir.join("manifest.json");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        ensure!(
            m["profile"] == profile,
            "{} is a build of {}, not of {profile}",
            file.display(),
            m["profile"]
        );
        let version = m["version"]
            .as_str()
            .filter(|v| !v.is_empty())
            .with_context(|| format!("{} has no version: rebuild it", file.display()))?
            .to_owned();
        Ok(Update {
            version,
            sysext: dir.join(output_of(&dir, "sysext")?),
            confext: dir.join(output_of(&dir, "confext")?),
        })
    }
}

/// What the guest reported, and what the host measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// Every component active and answering its health endpoint.
    pub healthy: bool,
    /// Seconds from power-on (the guest's uptime) to healthy, or to the report if never.
    pub boot_seconds: f64,
    /// Merged system extensions, by name.
    pub extensions: Vec<String>,
    /// Merged configuration extensions, by name.
    pub confexts: Vec<String>,
    /// Each merged system extension's version (`SYSEXT_VERSION_ID` of its extension-release
    /// file), by name.
    #[serde(default)]
    pub extension_versions: BTreeMap<String, String>,
    /// Each merged configuration extension's version, by name.
    #[serde(default)]
    pub confext_versions: BTreeMap<String, String>,
    /// `id` of the service user, or empty when it does not exist.
    pub user: String,
    /// Unit name → ActiveState.
    pub units: BTreeMap<String, String>,
    /// Unit name → NRestarts.
    pub restarts: BTreeMap<String, u64>,
    /// Component → whether its health endpoint answered `ok`.
    pub health: BTreeMap<String, bool>,
    /// What check-secrets says is missing or wrong, one line each.
    pub missing_secrets: Vec<String>,
    /// The units `systemctl --failed` lists.
    #[serde(default)]
    pub failed: Vec<String>,
    /// Seconds of wall time the host waited (not from the guest).
    #[serde(default)]
    pub wall_seconds: f64,
    /// The guest's console log.
    #[serde(default)]
    pub console: PathBuf,
    /// The version of the merged system extension (`IMAGE_VERSION`) when the report was made.
    pub version: String,
    /// The version running before `--update-to` updated the guest (without it: `version`).
    pub version_before: String,
    /// The version running after the update and its gate (without it: `version`).
    pub version_after: String,
    /// The update failed its gate and the version before it runs again.
    pub rolled_back: bool,
    /// Why the update was rolled back, or did not happen (empty when it went through).
    pub reason: String,
    /// Seconds from the start of the update to healthy on the new version (the gate passed).
    pub update_seconds: Option<f64>,
    /// Seconds from the failed gate to healthy on the version before it.
    pub rollback_seconds: Option<f64>,
    /// The active version after a plain `systemd-sysupdate update` run once the update was
    /// decided: a version marked bad is not installed again.
    pub second_update_version: Option<String>,
    /// What `/usr/lib/kubemint/rollout status --json` says: active, good, fallback, bad,
    /// pending and installed versions.
    pub rollout: serde_json::Value,
    /// The guest's `/var/lib/kubemint/rollouts.json`: every decision, with time and reason.
    pub rollouts: serde_json::Value,
    /// `--crash-during-update`: the power was cut in the middle of the update, as asked.
    pub crashed: bool,
}

/// A component the report probes: its unit, its health URL, and whether to present the
/// admin client certificate (the apiserver asks for one).
struct Probe {
    component: String,
    url: String,
    client_cert: bool,
}

fn probes(planned: &Planned, profile: &str) -> Vec<Probe> {
    let Some(m) = planned.masters.iter().find(|m| m.plan.profile == profile) else {
        return Vec::new();
    };
    let port = |component: &str, default: &str| {
        check::flag_value(&m.profile, component, "secure-port")
            .unwrap_or(default)
            .to_owned()
    };
    let mut out = Vec::new();
    for (component, default, path, cert) in [
        ("kube-apiserver", "6443", "readyz", true),
        ("kube-controller-manager", "10257", "healthz", false),
        ("kube-scheduler", "10259", "healthz", false),
    ] {
        if m.profile.components.contains_key(component) {
            out.push(Probe {
                component: component.to_owned(),
                url: format!("https://127.0.0.1:{}/{path}", port(component, default)),
                client_cert: cert,
            });
        }
    }
    out
}

/// The guest's reporting unit and its script, for `profile`'s plan; with `update`, the update
/// the guest makes once healthy (`crash`: the power cut in its middle).
fn reporter(
    planned: &Planned,
    profile: &str,
    wait: u64,
    update: Option<&Update>,
    crash: bool,
) -> Result<(String, String)> {
    let m = planned
        .masters
        .iter()
        .find(|m| m.plan.profile == profile)
        .context("the profile has no plan")?;
    let cert_dir = m.profile.paths.cert_dir.to_string();
    let units: Vec<&str> = m.plan.units.iter().map(String::as_str).collect();
    let probes = probes(planned, profile);
    let mut script = format!(
        r#"set -u
units='{units}'
deadline=$(( $(cut -d. -f1 /proc/uptime) + {wait} ))
ssl={cert_dir}
probe() {{ # component url cert
    if [ "$3" = yes ]; then
        curl -fsS --max-time 5 --cacert "$ssl/ca.pem" --cert "$ssl/admin.pem" --key "$ssl/admin-key.pem" "$2" 2>/dev/null
    else
        curl -fsSk --max-time 5 "$2" 2>/dev/null
    fi
}}
healthy() {{
"#,
        units = units.join(" "),
    );
    for p in &probes {
        script.push_str(&format!(
            "    [ \"$(probe {} {} {})\" = ok ] || return 1\n",
            p.component,
            p.url,
            if p.client_cert { "yes" } else { "no" }
        ));
    }
    script.push_str(
        r#"    return 0
}
settled() {
    for u in $units; do
        case $(systemctl show -P ActiveState "$u") in active|failed|inactive) ;; *) return 1 ;; esac
    done
    return 0
}
# Until every component answers; or until the units have stopped changing for 30 s without
# that (failed, or waiting for secrets that will not come); or the deadline.
calm=0
until healthy; do
    now=$(cut -d. -f1 /proc/uptime)
    [ "$now" -lt "$deadline" ] || break
    if settled; then calm=$((calm + 1)); else calm=0; fi
    [ "$calm" -lt 15 ] || break
    sleep 2
done
up=$(cut -d' ' -f1 /proc/uptime)
json() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
active() { sed -n 's/^IMAGE_VERSION=//p' /usr/lib/extension-release.d/extension-release.@NAME@ 2>/dev/null | head -n 1; }
version_before=$(active)
rolled=false reason= update_s=null rollback_s=null second=null
@UPDATE@
ok=false; healthy && ok=true
list() { first=1; printf '['; while read -r x; do [ -n "$x" ] || continue; [ $first = 1 ] || printf ','; first=0; printf '"%s"' "$(json "$x")"; done; printf ']'; }
{
printf '{"healthy":%s,"boot_seconds":%s' "$ok" "$up"
printf ',"extensions":'; systemd-sysext list --no-legend 2>/dev/null | awk '{print $1}' | list
printf ',"confexts":'; systemd-confext list --no-legend 2>/dev/null | awk '{print $1}' | list
version() { sed -n "s/^$1=//p" "$2" 2>/dev/null | head -n 1; }
versions() { # key dir
    first=1; printf '{'
    for f in "$2"/extension-release.*; do
        [ -f "$f" ] || continue
        [ $first = 1 ] || printf ','; first=0
        printf '"%s":"%s"' "$(json "${f##*/extension-release.}")" "$(json "$(version "$1" "$f")")"
    done; printf '}'
}
printf ',"extension_versions":'; versions SYSEXT_VERSION_ID /usr/lib/extension-release.d
printf ',"confext_versions":'; versions CONFEXT_VERSION_ID /etc/extension-release.d
printf ',"user":"%s"' "$(json "$(id USER 2>/dev/null)")"
printf ',"units":{'; first=1; for u in $units; do [ $first = 1 ] || printf ','; first=0; printf '"%s":"%s"' "$u" "$(systemctl show -P ActiveState "$u")"; done; printf '}'
printf ',"restarts":{'; first=1; for u in $units; do [ $first = 1 ] || printf ','; first=0; printf '"%s":%s' "$u" "$(systemctl show -P NRestarts "$u")"; done; printf '}'
printf ',"health":{'
"#,
    );
    script = script.replace("id USER", &format!("id {}", m.plan.user));
    let name = format!("kubemint-{profile}");
    let update_block = match update {
        None => String::new(),
        Some(_) => {
            let source = &m.profile.rollout.update_source;
            ensure!(
                m.profile.rollout.source_type == "regular-file",
                "--update-to needs a master whose update source is a directory; {profile}'s is {source}"
            );
            let block = if crash { UPDATE_CRASH } else { UPDATE_RUN };
            UPDATE_COMMON.replace("@SRC@", source).to_owned() + block
        }
    };
    let version = update.map(|u| u.version.as_str()).unwrap_or_default();
    script = script
        .replace("@UPDATE@", &update_block)
        .replace("@VERSION@", version)
        .replace("@NAME@", &name);
    for (i, p) in probes.iter().enumerate() {
        script.push_str(&format!(
            "h=false; [ \"$(probe {} {} {})\" = ok ] && h=true; printf '{}\"{}\":%s' \"$h\"\n",
            p.component,
            p.url,
            if p.client_cert { "yes" } else { "no" },
            if i > 0 { "," } else { "" },
            p.component
        ));
    }
    script.push_str(
        r#"printf '}'
printf ',"version":"%s","version_before":"%s","version_after":"%s"' "$(json "$(active)")" "$(json "$version_before")" "$(json "$(active)")"
printf ',"rolled_back":%s,"reason":"%s","update_seconds":%s,"rollback_seconds":%s,"second_update_version":%s' "$rolled" "$(json "$reason")" "$update_s" "$rollback_s" "$second"
st=$(/usr/lib/kubemint/rollout status --json 2>/dev/null); [ -n "$st" ] || st=null
printf ',"rollout":%s' "$st"
hist=$(cat /var/lib/kubemint/rollouts.json 2>/dev/null | tr -d '\n'); [ -n "$hist" ] || hist=null
printf ',"rollouts":%s' "$hist"
printf ',"missing_secrets":'; /usr/lib/kubemint/check-secrets --all 2>&1 >/dev/null | list
printf ',"failed":'; systemctl --failed --no-legend --plain 2>/dev/null | awk '{print $1}' | list
printf '}\n'
} > /dev/ttyS1
systemctl --no-block poweroff
"#,
    );
    let unit = "[Unit]\n\
        Description=kubemint vm: report the control plane's state, then power off\n\
        After=multi-user.target\n\
        ConditionPathExists=!/etc/initrd-release\n\
        [Service]\n\
        Type=oneshot\n\
        ExecStart=/bin/sh /run/credentials/kubemint-vm-report.service/kubemint-vm.report\n\
        ImportCredential=kubemint-vm.report\n"
        .to_owned();
    Ok((unit, script))
}

/// The update's first steps in the guest: its images put in the master's update source.
const UPDATE_COMMON: &str = r#"
if healthy; then
src='@SRC@'
mkdir -p "$src/extensions" "$src/confexts"
cp /dev/disk/by-id/virtio-kmupsys "$src/extensions/@NAME@_@VERSION@.raw"
cp /dev/disk/by-id/virtio-kmupconf "$src/confexts/@NAME@_@VERSION@.raw"
t0=$(cut -d' ' -f1 /proc/uptime)
"#;

/// `--crash-during-update`: the update started, and the power cut once both images are
/// switched to the new version, before its gate decides.
const UPDATE_CRASH: &str = r#"
/usr/lib/kubemint/rollout update '@VERSION@' >/dev/ttyS0 2>&1 &
i=0
until readlink /var/lib/extensions/@NAME@.raw 2>/dev/null | grep -qF '_@VERSION@.raw' &&
    readlink /var/lib/confexts/@NAME@.raw 2>/dev/null | grep -qF '_@VERSION@.raw'; do
    i=$((i + 1)); [ $i -lt 1500 ] || break; sleep 0.2
done
printf '{"crashed":true,"version_before":"%s","reason":"power cut after the switch to @VERSION@"}\n' "$version_before" >/dev/ttyS1
echo 1 >/proc/sys/kernel/sysrq
echo b >/proc/sysrq-trigger
sleep 120
else
reason="not healthy before the update"
fi
"#;

/// The update, timed from the rollout command's own lines (each stamped with the uptime).
const UPDATE_RUN: &str = r#"
log=/run/kubemint-vm-update.log
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(cut -d' ' -f1 /proc/uptime)" "$l"; done; }
{ /usr/lib/kubemint/rollout update '@VERSION@'; echo "rollout-exit $?"; } 2>&1 | stamp >"$log"
cat "$log" >/dev/ttyS0
at() { sed -n "s/^\([0-9.]*\) kubemint-rollout: $1.*/\1/p" "$log" | head -n 1; }
good_at=$(at '@VERSION@: good')
bad_at=$(at '@VERSION@: bad')
back_at=$(at '[^ ]*: rolled-back')
reason=$(sed -n 's/^[0-9.]* kubemint-rollout: @VERSION@: bad: //p' "$log" | tail -n 1)
if [ -z "$reason" ] && [ -z "$good_at" ]; then
    reason=$(grep -v ' rollout-exit ' "$log" | tail -n 1 | cut -d' ' -f2-)
fi
[ -n "$back_at" ] && rolled=true
sub() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.1f", b - a; else printf "null" }'; }
update_s=$(sub "$t0" "$good_at")
rollback_s=$(sub "$bad_at" "$back_at")
/usr/lib/systemd/systemd-sysupdate update >/dev/ttyS0 2>&1
second=$(readlink /var/lib/extensions/@NAME@.raw 2>/dev/null | sed 's/.*_//; s/[.]raw$//')
second=$(printf '"%s"' "$second")
i=0
until healthy; do i=$((i + 1)); [ $i -lt 30 ] || break; sleep 2; done
else
reason="not healthy before the update"
fi
"#;

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The OVMF firmware (code, and the variable store to copy).
fn firmware() -> Result<(PathBuf, PathBuf)> {
    for (code, vars) in [
        (
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
        ),
        (
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_VARS.fd",
        ),
    ] {
        if Path::new(code).is_file() && Path::new(vars).is_file() {
            return Ok((code.into(), vars.into()));
        }
    }
    bail!("no UEFI firmware (OVMF): install the Debian package ovmf")
}

/// Whether KVM can be used: /dev/kvm opens read-write.
fn kvm() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
        && std::env::var_os("KUBEMINT_VM_TCG").is_none()
}

/// Boots `disk` (copied, so it is left as built) with these credentials; returns the report.
pub fn boot(
    disk: &Path,
    work: &Path,
    credentials: &[(String, Vec<u8>)],
    drives: &[(String, PathBuf)],
    args: &VmArgs,
    planned: &Planned,
) -> Result<Report> {
    let (code, vars) = firmware()?;
    let copy = args
        .machine
        .clone()
        .unwrap_or_else(|| work.join("disk.raw"));
    if copy.exists() {
        eprintln!(
            "vm {}: rebooting the machine in {}",
            args.profile,
            copy.display()
        );
    } else {
        let status = Command::new("cp")
            .args(["--sparse=always"])
            .arg(disk)
            .arg(&copy)
            .status()
            .context("cannot copy the disk")?;
        ensure!(
            status.success(),
            "cannot copy {} to {}",
            disk.display(),
            copy.display()
        );
        // Room for the state partition systemd-repart makes at first boot (written whole by
        // mkfs: more costs boot time under TCG and host disk).
        let f = std::fs::OpenOptions::new().write(true).open(&copy)?;
        f.set_len(f.metadata()?.len() + (2 << 30))?;
        drop(f);
    }
    let guest_wait = args.timeout.saturating_sub(60).max(60);
    let update = match &args.update_to {
        Some(out) => Some(Update::find(out, &args.profile)?),
        None => None,
    };
    let (unit, script) = reporter(
        planned,
        &args.profile,
        guest_wait,
        update.as_ref(),
        args.crash_during_update,
    )?;
    let mut accel = if kvm() { "kvm" } else { "tcg" };
    loop {
        match run_qemu(
            accel,
            &code,
            &vars,
            &copy,
            work,
            credentials,
            drives,
            args,
            &unit,
            &script,
        )? {
            Some(report) => return Ok(report),
            None => {
                // /dev/kvm opened, but the guest never wrote a byte: nested virtualisation that
                // does not run (seen on cloud machines). Start again, emulated.
                eprintln!(
                    "vm {}: KVM started but the guest printed nothing in {} s; booting again with TCG (set KUBEMINT_VM_TCG=1 to skip KVM)",
                    args.profile,
                    KVM_SILENCE.as_secs()
                );
                accel = "tcg";
            }
        }
    }
}

/// How long a KVM guest may stay silent on its console before KVM is deemed not to work.
const KVM_SILENCE: Duration = Duration::from_secs(20);

/// One QEMU run: the report, or `None` when KVM was used and the guest never printed anything.
#[allow(clippy::too_many_arguments)]
fn run_qemu(
    accel: &str,
    code: &Path,
    vars: &Path,
    copy: &Path,
    work: &Path,
    credentials: &[(String, Vec<u8>)],
    drives: &[(String, PathBuf)],
    args: &VmArgs,
    unit: &str,
    script: &str,
) -> Result<Option<Report>> {
    let vars_copy = work.join("vars.fd");
    std::fs::copy(vars, &vars_copy)?;
    let console = work.join("console.log");
    let report_file = work.join("report.json");
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", &format!("q35,accel={accel}")])
        .args(["-m", &args.memory.to_string(), "-smp", "2"])
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            code.display()
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars_copy.display()
        ))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", copy.display()));
    for (serial, file) in drives {
        cmd.arg("-drive")
            .arg(format!(
                "if=none,id={serial},file={},format=raw,readonly=on",
                file.display()
            ))
            .arg("-device")
            .arg(format!("virtio-blk-pci,drive={serial},serial={serial}"));
    }
    // A watchdog the guest's kernel arms (q35's iTCO) must not reset a guest that TCG runs
    // slowly on a loaded host: the report says whether it came up, not the watchdog.
    cmd.args(["-action", "watchdog=none"]);
    cmd.args([
        "-display",
        "none",
        "-monitor",
        "none",
        "-nic",
        "none",
        "-no-reboot",
    ])
    .arg("-serial")
    .arg(format!("file:{}", console.display()))
    .arg("-serial")
    .arg(format!("file:{}", report_file.display()));
    let mut creds: Vec<(String, Vec<u8>)> = credentials.to_vec();
    creds.push((
        "systemd.extra-unit.kubemint-vm-report.service".into(),
        unit.as_bytes().to_vec(),
    ));
    creds.push((
        "systemd.unit-dropin.multi-user.target~kubemint-vm".into(),
        b"[Unit]\nWants=kubemint-vm-report.service\n".to_vec(),
    ));
    creds.push(("kubemint-vm.report".into(), script.as_bytes().to_vec()));
    for (name, value) in &creds {
        cmd.arg("-smbios").arg(format!(
            "type=11,value=io.systemd.credential.binary:{name}={}",
            base64(value)
        ));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .context("cannot run qemu-system-x86_64: install qemu-system-x86 (and ovmf)")?;
    let tty = std::io::stderr().is_terminal();
    let deadline = Duration::from_secs(args.timeout);
    let mut last_shown = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let elapsed = started.elapsed();
        if accel == "kvm"
            && elapsed > KVM_SILENCE
            && std::fs::metadata(&console).map_or(0, |m| m.len()) == 0
        {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        if elapsed > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the VM did not report within {} s (console: {}); pass a larger --timeout",
                args.timeout,
                console.display()
            );
        }
        let secs = elapsed.as_secs();
        if secs >= last_shown + if tty { 5 } else { 30 } {
            last_shown = secs;
            let line = std::fs::read_to_string(&console)
                .ok()
                .and_then(|c| {
                    c.lines()
                        .rev()
                        .map(|l| l.trim())
                        .find(|l| !l.is_empty() && l.is_ascii())
                        .map(|l| l.chars().take(90).collect::<String>())
                })
                .unwrap_or_default();
            eprintln!("vm {}: {secs} s ({accel}) {line}", args.profile);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let wall = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&report_file).unwrap_or_default();
    let Some(line) = text.lines().rev().find(|l| l.starts_with('{')) else {
        let mut qemu = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut qemu);
        }
        let qemu = qemu.trim();
        bail!(
            "the VM stopped ({status}) without a report after {wall:.0} s; see its console: {}{}",
            console.display(),
            if qemu.is_empty() {
                String::new()
            } else {
                format!("; qemu said: {qemu}")
            }
        );
    };
    let mut report: Report = serde_json::from_str(line)
        .with_context(|| format!("the VM's report is not JSON: {line}"))?;
    report.wall_seconds = wall;
    report.console = console;
    Ok(Some(report))
}

pub fn run(
    root: &Path,
    planned: &Planned,
    disk: &Path,
    args: &VmArgs,
) -> Result<(Report, Option<PathBuf>)> {
    ensure!(
        disk.is_file(),
        "{} does not exist: build it first (`cargo xtask build-image {}{}`; a bootable disk needs the base, see its note)",
        disk.display(),
        args.profile,
        if args.sample { " --sample" } else { "" }
    );
    let mut credentials = Vec::new();
    if let Some(dir) = &args.secrets {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| dir.display().to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "txt"))
            .collect();
        names.sort();
        for p in names {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            credentials.push((format!("kubemint.{name}"), std::fs::read(&p)?));
        }
    }
    let target = root.join("target");
    let parent = if target.exists() {
        target
    } else {
        std::env::temp_dir()
    };
    let work = tempfile::Builder::new()
        .prefix("kubemint-vm.")
        .tempdir_in(parent)
        .context("cannot make the VM's directory")?;
    let mut drives = Vec::new();
    if let Some(out) = &args.update_to {
        let u = Update::find(out, &args.profile)?;
        drives.push(("kmupsys".to_owned(), u.sysext));
        drives.push(("kmupconf".to_owned(), u.confext));
    }
    if args.no_seed {
        let dir = disk
            .parent()
            .and_then(Path::parent)
            .context("the disk is not in a build directory")?;
        let name = format!("kubemint-{}.raw", args.profile);
        for (serial, kind) in [("kmsysext", "sysext"), ("kmconfext", "confext")] {
            let file = dir.join(output_of(dir, kind)?);
            ensure!(file.is_file(), "{} does not exist", file.display());
            drives.push((serial.to_owned(), file));
        }
        credentials.extend(no_seed_credentials(&name));
    }
    let report = match boot(disk, work.path(), &credentials, &drives, args, planned) {
        Ok(report) => report,
        Err(e) => {
            // The console log the error points at must outlive it.
            let kept = work.keep();
            return Err(e.context(format!(
                "the VM's directory is kept for a post-mortem: {}",
                kept.display()
            )));
        }
    };
    let kept = args.keep.then(|| work.keep());
    Ok((report, kept))
}

/// The path, relative to the build's output directory `dir`, of its output of `kind`
/// (manifest.json's `outputs`): the extension images carry the build's version in their names.
fn output_of(dir: &Path, kind: &str) -> Result<String> {
    let file = dir.join("manifest.json");
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?,
    )
    .with_context(|| format!("{} is not JSON", file.display()))?;
    m["outputs"]
        .as_array()
        .and_then(|rows| rows.iter().find(|o| o["kind"] == kind))
        .and_then(|o| o["path"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("{} lists no {kind} output", file.display()))
}

/// `--no-seed`: the base's seeding switched off, and a unit that does what README tells the
/// owner of any systemd host to do, from the attached drives, before the merge.
fn no_seed_credentials(name: &str) -> Vec<(String, Vec<u8>)> {
    let dev = |serial: &str| format!("dev-disk-by\\x2did-virtio\\x2d{serial}.device");
    let unit = format!(
        "[Unit]\n\
         Description=kubemint vm: place the extensions as README says, without the base's seeding\n\
         DefaultDependencies=no\n\
         ConditionPathExists=!/etc/initrd-release\n\
         Requires={sys} {conf}\n\
         After=local-fs.target {sys} {conf}\n\
         Before=systemd-sysext.service systemd-confext.service sysinit.target\n\
         RequiresMountsFor=/var/lib\n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart=/bin/sh -c 'mkdir -p /var/lib/extensions /var/lib/confexts /var/lib/extensions.mutable && cp /dev/disk/by-id/virtio-kmsysext /var/lib/extensions/{name} && cp /dev/disk/by-id/virtio-kmconfext /var/lib/confexts/{name} && ln -sfn /etc /var/lib/extensions.mutable/etc'\n",
        sys = dev("kmsysext"),
        conf = dev("kmconfext"),
    );
    vec![
        (
            "systemd.extra-unit.kubemint-vm-place.service".into(),
            unit.into_bytes(),
        ),
        (
            "systemd.unit-dropin.sysinit.target~kubemint-vm-place".into(),
            b"[Unit]\nWants=kubemint-vm-place.service\n".to_vec(),
        ),
        (
            "systemd.unit-dropin.kubemint-extensions-seed.service~kubemint-vm-no-seed".into(),
            b"[Unit]\nConditionPathExists=/kubemint-vm-no-seed\n".to_vec(),
        ),
    ]
}

/// The report for people.
/// `a (v1), b`, or `none`.
fn named(names: &[String], versions: &BTreeMap<String, String>) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| match versions.get(n) {
            Some(v) if !v.is_empty() => format!("{n} ({v})"),
            _ => n.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(profile: &str, r: &Report) -> String {
    let mut out = format!(
        "{profile}: {} after {:.0} s of guest uptime ({:.0} s of wall time)\n",
        if r.healthy { "healthy" } else { "NOT healthy" },
        r.boot_seconds,
        r.wall_seconds
    );
    if !r.version_after.is_empty() {
        if r.version_before != r.version_after || r.rolled_back || !r.reason.is_empty() {
            out.push_str(&format!(
                "  update: {} -> {}{}{}\n",
                r.version_before,
                r.version_after,
                if r.rolled_back { " (rolled back)" } else { "" },
                if r.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.reason)
                }
            ));
        } else {
            out.push_str(&format!("  version: {}\n", r.version_after));
        }
        for (what, secs) in [
            ("update to healthy", r.update_seconds),
            (
                "failed gate to healthy on the version before",
                r.rollback_seconds,
            ),
        ] {
            if let Some(s) = secs {
                out.push_str(&format!("  {what}: {s:.1} s\n"));
            }
        }
    }
    out.push_str(&format!(
        "  extensions: {}; configuration extensions: {}\n",
        named(&r.extensions, &r.extension_versions),
        named(&r.confexts, &r.confext_versions)
    ));
    out.push_str(&format!(
        "  user: {}\n",
        if r.user.is_empty() {
            "missing"
        } else {
            &r.user
        }
    ));
    for (u, state) in &r.units {
        out.push_str(&format!(
            "  {u}: {state} ({} restarts)\n",
            r.restarts.get(u).copied().unwrap_or(0)
        ));
    }
    for (c, ok) in &r.health {
        out.push_str(&format!(
            "  {c}: {}\n",
            if *ok { "answers ok" } else { "does not answer" }
        ));
    }
    for m in &r.missing_secrets {
        out.push_str(&format!("  secret: {m}\n"));
    }
    out.push_str(&format!("  console: {}\n", r.console.display()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The update steps the guest runs are shell that parses, with every placeholder filled.
    #[test]
    fn update_steps_parse_as_sh() {
        for block in [UPDATE_RUN, UPDATE_CRASH] {
            let script = format!("{UPDATE_COMMON}{block}")
                .replace("@SRC@", "/var/lib/kubemint/updates")
                .replace("@VERSION@", "1.14.2-1-0123456789ab")
                .replace("@NAME@", "kubemint-master-1");
            assert!(!script.contains('@'), "{script}");
            assert!(!script.contains('\u{1}'), "{script}");
            let out = Command::new("sh")
                .args(["-n", "-c", &script])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
