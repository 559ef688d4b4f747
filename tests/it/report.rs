//! The audit report: the set's `report.html` beside the output directories and each master's
//! own, byte-identical across builds, every value escaped (a profile value holding `<script>`
//! stays text), the address flag's difference marked; `cargo xtask report` makes the same page
//! from the output directories, with a verify result when given; headless Chromium parses and
//! renders it, and the screenshot is kept in `<target>/test-artifacts/report.png`.

use crate::support::{Project, require_tool, sh_ok, text};
use std::path::{Path, PathBuf};

/// A value no page may carry as markup: master-3's apiserver gets it as a flag value.
const HOSTILE: &str = "X-<script>alert(1)</script>";

fn hostile_project() -> Project {
    let p = Project::new();
    let master3 = std::fs::read_to_string(p.path().join("profiles/master-3.toml")).unwrap();
    p.write(
        "profiles/master-3.toml",
        &format!(
            "{master3}\n[components.kube-apiserver.flags]\nrequestheader-extra-headers-prefix = \"{HOSTILE}\"\n"
        ),
    );
    p
}

/// Builds the three masters from the sample release into `out` (absolute); the output root.
fn build(p: &Project, out: &Path) -> PathBuf {
    p.ok(&[
        "build-image",
        "master-1",
        "master-2",
        "master-3",
        "--sample",
        "--out",
        out.to_str().unwrap(),
    ]);
    out.join("sample")
}

/// The `<table id=ID>` element of `html`, whole.
fn table<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let end = html[start..].find("</table>").unwrap() + start;
    &html[start..end]
}

/// The `<tr>` rows of a table's body.
fn rows(table: &str) -> Vec<&str> {
    let body = &table[table.find("<tbody>").unwrap()..];
    body.split("<tr").skip(1).collect()
}

/// Where test artefacts are kept: `<target dir>/test-artifacts`, the target dir being the one
/// this test binary was built into (`CARGO_TARGET_DIR`, or the workspace's `target/`).
pub(crate) fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/it-<hash>
    let target = exe.ancestors().nth(3).unwrap().to_owned();
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_sets_page_shows_the_masters_side_by_side_and_renders() {
    let (a, b) = (hostile_project(), hostile_project());
    let (out_a, out_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (root_a, root_b) = (build(&a, out_a.path()), build(&b, out_b.path()));

    // Beside the output directories, byte-identical across two builds, each master's too.
    let page = std::fs::read_to_string(root_a.join("report.html")).unwrap();
    assert_eq!(
        page.as_bytes(),
        std::fs::read(root_b.join("report.html")).unwrap(),
        "the set's report.html differs between two builds"
    );
    for m in ["master-1", "master-2", "master-3"] {
        let (x, y) = (root_a.join(m), root_b.join(m));
        assert_eq!(
            std::fs::read(x.join("report.html")).unwrap(),
            std::fs::read(y.join("report.html")).unwrap(),
            "{m}/report.html differs between two builds"
        );
        // Listed in its manifest as kind `report`, and in SHA256SUMS.
        let manifest = crate::support::manifest(&x);
        let row = manifest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "report")
            .expect("a report row");
        assert_eq!(row["path"], "report.html");
        sh_ok(&format!(
            "cd '{}' && grep -q ' report.html$' SHA256SUMS && sha256sum --quiet -c SHA256SUMS",
            x.display()
        ));
    }

    // The hostile value is text, never markup; the address flag's difference is marked.
    assert!(
        !page.contains("<script"),
        "an unescaped <script in the page"
    );
    assert!(page.contains("X-&lt;script&gt;alert(1)&lt;/script&gt;"));
    let apiserver = table(&page, "flags-kube-apiserver");
    let address = rows(apiserver)
        .into_iter()
        .find(|r| r.contains("--advertise-address"))
        .expect("an advertise-address row");
    assert!(address.starts_with(" class=\"differs\""), "{address}");
    for ip in ["10.10.10.22", "10.10.10.23", "10.10.10.24"] {
        assert!(address.contains(ip), "{address}");
    }
    // The release and its digest; the release layer shared by all three.
    let manifest = crate::support::manifest(&root_a.join("master-1"));
    assert!(page.contains(manifest["release"]["sha512"].as_str().unwrap()));
    let layers = table(&page, "layers-table");
    assert!(layers.contains("release layer") && layers.contains("shared by all"));

    // `cargo xtask report` makes the same page from the output directories.
    let again = out_a.path().join("again.html");
    let dirs: Vec<String> = ["master-1", "master-2", "master-3"]
        .iter()
        .map(|m| root_a.join(m).display().to_string())
        .collect();
    let mut args = vec!["report"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["-o", again.to_str().unwrap()]);
    a.ok(&args);
    assert_eq!(
        std::fs::read(&again).unwrap(),
        page.as_bytes(),
        "`report` and build-image made different pages"
    );
    // With a verify result: shown, escaped.
    let verify = out_a.path().join("verify.json");
    std::fs::write(
        &verify,
        r#"{"clean":false,"findings":[{"kind":"changed","path":"/etc/<script>x</script>","detail":"sha256 differs"}]}"#,
    )
    .unwrap();
    let out = a.ok(&[
        "report",
        root_a.to_str().unwrap(),
        "--verify-json",
        verify.to_str().unwrap(),
    ]);
    let with_verify = text(&out.stdout);
    assert!(with_verify.contains("id=\"verify\"") && with_verify.contains("1 finding"));
    assert!(!with_verify.contains("<script"));
    assert!(with_verify.contains("/etc/&lt;script&gt;x&lt;/script&gt;"));
    // Not an output directory: said so.
    let err = a.fails(&["report", out_a.path().join("nope").to_str().unwrap()]);
    assert!(err.contains("not a kubemint output directory"), "{err}");

    render_in_chromium(&root_a.join("report.html"), &page);
}

/// Headless Chromium parses the page (its DOM has the tables the page has, and no script
/// element) and renders it; the screenshot is kept as a test artefact.
fn render_in_chromium(page_path: &Path, page: &str) {
    require_tool("chromium");
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page_path.display());
    let chromium = |extra: &[&str]| {
        let out = std::process::Command::new("timeout")
            .args([
                "120",
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium {extra:?} failed:\n{}",
            text(&out.stderr)
        );
        out
    };

    let dom = text(&chromium(&["--dump-dom"]).stdout);
    assert!(!dom.contains("<script"), "the parsed page holds a script");
    assert!(dom.contains("X-&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Parsed as written: the apiserver's flags table has a row per flag; the differing row
    // one cell per master, a shared one a single cell spanning the three.
    let written = rows(table(page, "flags-kube-apiserver"));
    let parsed = rows(table(&dom, "flags-kube-apiserver"));
    assert_eq!(parsed.len(), written.len());
    assert!(parsed.len() > 40, "{} flag rows", parsed.len());
    for row in &parsed {
        let cells = row.matches("<td").count();
        if row.starts_with(" class=\"differs\"") {
            assert_eq!(cells, 3, "{row}");
        } else {
            assert!(cells == 1 && row.contains("colspan=\"3\""), "{row}");
        }
    }
    let files = rows(table(&dom, "files-all"));
    let manifest = crate::support::manifest(&page_path.with_file_name("master-1"));
    assert!(files.len() >= manifest["files"].as_array().unwrap().len());

    let shot = profile.path().join("report.png");
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1400,2000",
        "--hide-scrollbars",
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (width, height) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((width, height), (1400, 2000));
    // A blank or error page compresses to a few KiB; this one has tables, colours and text.
    assert!(png.len() > 50_000, "a {}-byte screenshot", png.len());
    let kept = artifacts().join("report.png");
    std::fs::copy(&shot, &kept).unwrap();
    println!("screenshot of the report: {}", kept.display());
}

/// A file of the user's named report.html makes the root not kubemint's: the build refuses it
/// and leaves it alone.
#[test]
fn a_users_report_html_is_left_alone() {
    let p = Project::new();
    let out = tempfile::tempdir().unwrap();
    let root = out.path().join("sample");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("report.html"), "mine").unwrap();
    let err = p.fails(&[
        "build-image",
        "master-1",
        "--sample",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(err.contains("holds report.html"), "{err}");
    assert_eq!(std::fs::read(root.join("report.html")).unwrap(), b"mine");
}

/// The set's page follows the root: a build with every profile up to date makes a missing page
/// again, the same bytes, and adds a master built later as a column of its own.
#[test]
fn the_sets_page_is_made_whole_by_the_next_build() {
    let p = Project::new();
    let out = tempfile::tempdir().unwrap();
    let build = |profiles: &[&str]| {
        let mut args = vec!["build-image"];
        args.extend(profiles);
        args.extend(["--sample", "--out", out.path().to_str().unwrap()]);
        text(&p.ok(&args).stdout)
    };
    build(&["master-1"]);
    let page = out.path().join("sample/report.html");
    let first = std::fs::read(&page).unwrap();
    std::fs::remove_file(&page).unwrap();
    assert!(build(&["master-1"]).contains("up to date"));
    assert_eq!(std::fs::read(&page).unwrap(), first);
    build(&["master-2"]);
    let both = std::fs::read_to_string(&page).unwrap();
    assert!(both.contains("<title>kubemint audit: master-1 · master-2</title>"));
}
