//! The extension images' extension-release files carry `user.extension-release.strict` = `0`,
//! so systemd takes an image whatever its file is named (a versioned name, a copy renamed by
//! hand): the sysext copied to `kubemint-master-2_anything.raw` is still a system extension,
//! and the attribute is on the release file of both the sysext and the confext.

use crate::support::{Project, manifest, require_tool, sh_ok as ok};
use std::path::PathBuf;

/// The output of `kind` that manifest.json lists, as a path.
fn output(dir: &std::path::Path, kind: &str) -> PathBuf {
    let m = manifest(dir);
    let rows = m["outputs"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {rows:?}"));
    dir.join(row["path"].as_str().unwrap())
}

#[test]
fn extension_images_are_taken_under_any_name() {
    require_tool("systemd-dissect");
    require_tool("getfattr");
    let p = Project::new();
    let dir = p.build_sample("master-2");
    let sysext = output(&dir, "sysext");
    let any = p.path().join("kubemint-master-2_anything.raw");
    std::fs::copy(&sysext, &any).unwrap();
    let out = ok(&format!("systemd-dissect '{}'", any.display()));
    assert!(out.contains("✓ extension for system"), "{out}");
    assert!(out.contains("SYSEXT_ID=kubemint-master-2"), "{out}");

    for (kind, release) in [
        (
            "sysext",
            "usr/lib/extension-release.d/extension-release.kubemint-master-2",
        ),
        (
            "confext",
            "etc/extension-release.d/extension-release.kubemint-master-2",
        ),
    ] {
        let x = p.path().join(format!("x-{kind}"));
        ok(&format!(
            "unsquashfs -q -d '{}' '{}' {release}",
            x.display(),
            output(&dir, kind).display()
        ));
        let value = ok(&format!(
            "getfattr -n user.extension-release.strict --only-values '{}'",
            x.join(release).display()
        ));
        assert_eq!(value, "0", "{kind}");
        // Nothing else is tagged.
        let all = ok(&format!(
            "getfattr -R -d -m - --absolute-names '{}'",
            x.display()
        ));
        assert_eq!(all.matches("# file: ").count(), 1, "{kind}:\n{all}");
    }
}
