//! The page itself: masters as columns, a row per flag, secret, layer, partition, output and
//! file; a row whose values are not the same on every master is marked `differs` (highlighted,
//! and said in words for a reader without colours); a value every master shares spans their
//! columns once. Every value from a manifest or a verify result goes through [`esc`].

use super::{Master, View};
use std::fmt::Write as _;

/// HTML-escapes `s` for text and for double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
:root{--ink:#1d2330;--muted:#5b6475;--line:#d9dee8;--head:#f3f5f9;--diff:#fff1b8;--diffmark:#b7791f;\
--same:#eef7ee;--absent:#fbe9e9;--ok:#2f855a;--bad:#c53030;--accent:#2b6cb0}\
*{box-sizing:border-box}\
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:var(--ink);background:#fafbfd}\
header{background:linear-gradient(90deg,#1e3a5f,#2b6cb0);color:#fff;padding:20px 28px}\
header h1{margin:0 0 4px;font-size:24px}header p{margin:0;opacity:.9}\
.sample{display:inline-block;background:#c05621;color:#fff;border-radius:4px;padding:1px 8px;margin-left:8px;font-size:13px;vertical-align:middle}\
nav{padding:8px 28px;background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0}\
nav a{margin-right:16px;color:var(--accent);text-decoration:none}\
main{padding:8px 28px 40px}\
section{margin-top:26px}h2{font-size:19px;margin:0 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}\
h3{font-size:15px;margin:18px 0 6px}\
.cards{display:flex;flex-wrap:wrap;gap:12px}\
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:170px}\
.card b{display:block;font-size:22px}.card span{color:var(--muted)}\
.card.warn b{color:var(--diffmark)}.card.good b{color:var(--ok)}.card.bad b{color:var(--bad)}\
table{border-collapse:collapse;background:#fff;width:100%;margin:4px 0 8px}\
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}\
thead th{background:var(--head);position:sticky;top:34px}\
tbody th{font-weight:600;background:#fcfcfe;white-space:nowrap}\
td.same{background:var(--same)}\
tr.differs td,tr.differs th{background:var(--diff)}\
tr.differs th{border-left:4px solid var(--diffmark)}\
td.absent{background:var(--absent);color:var(--bad);font-style:italic}\
.badge{display:inline-block;font-size:11px;font-weight:700;text-transform:uppercase;border-radius:3px;padding:0 5px;margin-left:6px;vertical-align:1px}\
.badge.differs{background:var(--diffmark);color:#fff}.badge.shared{background:var(--ok);color:#fff}\
.badge.distinct{background:#805ad5;color:#fff}\
code{font:12px/1.35 ui-monospace,'DejaVu Sans Mono',Menlo,monospace;word-break:break-all}\
.muted{color:var(--muted)}.small{font-size:12px}\
details{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px 10px;margin:8px 0}\
summary{cursor:pointer;font-weight:600}\
.status{border-radius:8px;padding:10px 16px;font-weight:700;color:#fff;display:inline-block}\
.status.ok{background:var(--ok)}.status.bad{background:var(--bad)}\
pre{background:#fff;border:1px solid var(--line);padding:8px;overflow:auto}\
footer{color:var(--muted);padding:12px 28px;border-top:1px solid var(--line)}\
";

/// The page for `masters` (columns in this order), with `verify` (any JSON document, e.g.
/// `cargo xtask verify --json`'s) shown when given. The same inputs give the same bytes.
pub fn render(masters: &[Master], verify: Option<&serde_json::Value>) -> String {
    let views: Vec<&View> = masters.iter().map(|m| &m.manifest).collect();
    let names: Vec<String> = views.iter().map(|v| v.profile.clone()).collect();
    let mut out = String::new();
    let title = if names.is_empty() {
        "no masters".to_owned()
    } else {
        names.join(" · ")
    };
    let generator = views
        .first()
        .map(|v| format!("{} {}", v.generator.name, v.generator.version))
        .unwrap_or_default();
    let _ = write!(
        out,
        "{}: made from manifest.json files by {}; no script, no network -->\n\
         <html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"generator\" content=\"{}\">\
         <title>kubemint audit: {}</title><style>{STYLE}</style></head>\n<body>\n",
        super::MARK,
        esc(&generator).replace("--", "- -"),
        esc(&generator),
        esc(&title),
    );
    let sample = if views.iter().any(|v| v.sample) {
        "<span class=\"sample\">SAMPLE: stand-in release, not a real master</span>"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<header><h1>Audit report: {}{sample}</h1><p>{}{}</p></header>",
        esc(&title),
        if names.len() == 1 {
            "One master, from its build's manifest.json".to_owned()
        } else {
            format!(
                "{} masters side by side, from the manifest.json of each build",
                names.len()
            )
        },
        if verify.is_some() {
            ", with a verify result"
        } else {
            ""
        }
    );
    out.push_str(
        "<nav><a href=\"#glance\">At a glance</a><a href=\"#masters\">Masters</a><a href=\"#flags\">Flags</a>\
         <a href=\"#secrets\">Secrets</a><a href=\"#layers\">Layers</a><a href=\"#partitions\">Partitions</a>\
         <a href=\"#outputs\">Outputs</a><a href=\"#files\">Files</a>",
    );
    if verify.is_some() {
        out.push_str("<a href=\"#verify\">Verify</a>");
    }
    out.push_str("</nav>\n<main>\n");

    let flags = flag_tables(&views);
    let secrets = secret_rows(&views);
    let layers = layer_rows(&views);
    let partitions = partition_rows(&views);
    let outputs = output_rows(&views);
    let files = file_rows(&views);
    glance(
        &mut out,
        &views,
        &flags,
        &secrets,
        &layers,
        &partitions,
        &files,
        verify,
    );
    // What differs first: every flag whose values are not the same on every master.
    let differing_flags: Vec<Row> = flags
        .iter()
        .flat_map(|(component, _, rows)| {
            rows.iter().filter(|r| r.differs()).map(move |r| Row {
                label: format!("{} {}", esc(component), r.label),
                ..r.clone()
            })
        })
        .collect();
    if views.len() > 1 && !differing_flags.is_empty() {
        out.push_str("<h3>Flags that differ</h3>\n");
        table(&mut out, "flags-differ", "flag", &names, &differing_flags);
    }
    out.push_str("</section>\n");

    section(&mut out, "masters", "Masters");
    table(
        &mut out,
        "masters-table",
        "",
        &names,
        &overview_rows(masters),
    );
    out.push_str("</section>\n");

    section(&mut out, "flags", "Component flags");
    if flags.is_empty() {
        out.push_str("<p class=\"muted\">These manifests name no components' flags (made by a kubemint before 0.1's <code>components</code>).</p>\n");
    }
    for (component, unit, rows) in &flags {
        let _ = writeln!(
            out,
            "<h3>{} <span class=\"muted small\">{}</span></h3>",
            esc(component),
            esc(unit)
        );
        table(
            &mut out,
            &format!("flags-{}", slug(component)),
            "flag",
            &names,
            rows,
        );
    }
    out.push_str("</section>\n");

    section(&mut out, "secrets", "Secrets expected");
    out.push_str("<p class=\"muted\">Delivered apart, never in an image: where each goes, its owner and mode, and what it is. Never its content.</p>\n");
    table(&mut out, "secrets-table", "path", &names, &secrets);
    out.push_str("</section>\n");

    section(&mut out, "layers", "OCI image layers");
    table(&mut out, "layers-table", "layer", &names, &layers);
    out.push_str("</section>\n");

    section(&mut out, "partitions", "Disk partitions");
    table(
        &mut out,
        "partitions-table",
        "partition",
        &names,
        &partitions,
    );
    out.push_str("</section>\n");

    section(&mut out, "outputs", "Outputs");
    table(&mut out, "outputs-table", "kind", &names, &outputs);
    out.push_str("</section>\n");

    section(&mut out, "files", "Files");
    let differing: Vec<Row> = files.iter().filter(|r| r.differs()).cloned().collect();
    if views.len() > 1 {
        let _ = writeln!(
            out,
            "<details open><summary>Files that differ across masters ({})</summary>",
            differing.len()
        );
        table(&mut out, "files-differ", "path", &names, &differing);
        out.push_str("</details>\n");
    }
    let _ = writeln!(
        out,
        "<details><summary>Every file, with its sha256 ({})</summary>",
        files.len()
    );
    table(&mut out, "files-all", "path", &names, &files);
    out.push_str("</details>\n</section>\n");

    if let Some(v) = verify {
        section(&mut out, "verify", "Verify result");
        verify_section(&mut out, v);
        out.push_str("</section>\n");
    }
    let epochs: Vec<String> = dedup(views.iter().map(|v| epoch_text(v.epoch)).collect());
    let _ = writeln!(
        out,
        "</main>\n<footer>{} · epoch {} · every value from the manifests; this page has no timestamp of its own</footer>\n</body></html>",
        esc(&generator),
        esc(&epochs.join(", "))
    );
    out
}

/// One row of a comparison: a label cell, then one cell per master (`None`: the master does
/// not have it). Cells are HTML already escaped.
#[derive(Clone, Debug)]
struct Row {
    label: String,
    cells: Vec<Option<String>>,
    /// A badge after the label (`shared`, `distinct`), besides `differs`.
    badge: Option<(&'static str, String)>,
}

impl Row {
    fn differs(&self) -> bool {
        self.cells.windows(2).any(|w| w[0] != w[1])
    }
}

fn section(out: &mut String, id: &str, title: &str) {
    let _ = writeln!(out, "<section id=\"{id}\"><h2>{title}</h2>");
}

/// A comparison table: a value every master shares is one cell spanning their columns; a row
/// whose values differ is marked.
fn table(out: &mut String, id: &str, corner: &str, names: &[String], rows: &[Row]) {
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>\n");
        return;
    }
    let _ = write!(
        out,
        "<table id=\"{id}\"><thead><tr><th scope=\"col\">{corner}</th>"
    );
    for n in names {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(n));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        let differs = row.differs() && names.len() > 1;
        let badges = match (&row.badge, differs) {
            (Some((class, text)), _) => format!(" <span class=\"badge {class}\">{text}</span>"),
            (None, true) => " <span class=\"badge differs\">differs</span>".to_owned(),
            (None, false) => String::new(),
        };
        let _ = write!(
            out,
            "<tr{}><th scope=\"row\">{}{badges}</th>",
            if differs { " class=\"differs\"" } else { "" },
            row.label
        );
        match (&row.cells[..], differs) {
            ([Some(one), ..], false) if names.len() > 1 => {
                let _ = write!(
                    out,
                    "<td class=\"same\" colspan=\"{}\">{one}</td>",
                    names.len()
                );
            }
            _ => {
                for cell in &row.cells {
                    match cell {
                        Some(c) => {
                            let _ = write!(out, "<td>{c}</td>");
                        }
                        None => out.push_str("<td class=\"absent\">absent</td>"),
                    }
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

#[allow(clippy::too_many_arguments)]
fn glance(
    out: &mut String,
    views: &[&View],
    flags: &[(String, String, Vec<Row>)],
    secrets: &[Row],
    layers: &[Row],
    partitions: &[Row],
    files: &[Row],
    verify: Option<&serde_json::Value>,
) {
    section(out, "glance", "At a glance");
    out.push_str("<div class=\"cards\">\n");
    let many = views.len() > 1;
    let count = |rows: &[Row]| rows.iter().filter(|r| r.differs()).count();
    let all_flags: Vec<&Row> = flags.iter().flat_map(|(_, _, r)| r).collect();
    let flag_diffs = all_flags.iter().filter(|r| r.differs()).count();
    let releases = dedup(views.iter().map(|v| v.release.name.clone()).collect());
    let mut card = |class: &str, big: String, what: String| {
        let _ = writeln!(
            out,
            "<div class=\"card {class}\"><b>{}</b><span>{}</span></div>",
            esc(&big),
            esc(&what)
        );
    };
    card(
        "",
        releases.join(", "),
        format!(
            "release{} of {} master{}",
            if releases.len() == 1 { "" } else { "s" },
            views.len(),
            if views.len() == 1 { "" } else { "s" }
        ),
    );
    if many {
        let warn = |n: usize| if n > 0 { "warn" } else { "good" };
        card(
            warn(flag_diffs),
            format!("{flag_diffs} of {}", all_flags.len()),
            "flags differ".into(),
        );
        let d = count(files);
        card(
            warn(d),
            format!("{d} of {}", files.len()),
            "files differ".into(),
        );
        let d = count(secrets);
        card(
            warn(d),
            format!("{d} of {}", secrets.len()),
            "secrets differ".into(),
        );
        let shared = |rows: &[Row]| rows.iter().filter(|r| !r.differs()).count();
        card(
            "",
            format!("{} shared, {} distinct", shared(layers), count(layers)),
            "OCI layers".into(),
        );
        card(
            "",
            format!(
                "{} shared, {} distinct",
                shared(partitions),
                count(partitions)
            ),
            "disk partitions".into(),
        );
    } else {
        card("", all_flags.len().to_string(), "flags".into());
        card("", files.len().to_string(), "files".into());
        card("", secrets.len().to_string(), "secrets expected".into());
    }
    if let Some(v) = verify {
        let (clean, findings) = verify_status(v);
        match clean {
            Some(true) => card("good", "clean".into(), "verify".into()),
            Some(false) => card(
                "bad",
                format!(
                    "{} finding{}",
                    findings,
                    if findings == 1 { "" } else { "s" }
                ),
                "verify".into(),
            ),
            None => card("", "given".into(), "verify result".into()),
        }
    }
    out.push_str("</div>\n");
}

fn overview_rows(masters: &[Master]) -> Vec<Row> {
    let code = |s: &str| format!("<code>{}</code>", esc(s));
    let row = |label: &str, f: &dyn Fn(&Master) -> Option<String>| Row {
        label: esc(label),
        cells: masters.iter().map(f).collect(),
        badge: None,
    };
    let mut rows = vec![
        row("profile", &|m| Some(esc(&m.manifest.profile))),
        row("image", &|m| Some(esc(&m.manifest.image))),
        row("release", &|m| Some(esc(&m.manifest.release.name))),
        row("release file", &|m| Some(code(&m.manifest.release.file))),
        row("release sha512", &|m| {
            Some(code(&m.manifest.release.sha512))
        }),
        row("release size", &|m| Some(size(m.manifest.release.size))),
    ];
    if masters.iter().any(|m| m.manifest.version.is_some()) {
        rows.push(row("build version", &|m| {
            m.manifest.version.as_deref().map(code)
        }));
    }
    rows.extend([
        row("epoch", &|m| Some(esc(&epoch_text(m.manifest.epoch)))),
        row("sample", &|m| {
            Some(if m.manifest.sample { "yes" } else { "no" }.into())
        }),
        row("OCI manifest", &|m| {
            Some(code(&m.manifest.oci.manifest_digest))
        }),
        row("OCI config", &|m| Some(code(&m.manifest.oci.config_digest))),
        row("files", &|m| Some(m.manifest.files.len().to_string())),
    ]);
    if masters.iter().any(|m| m.manifest_sha256.is_some()) {
        rows.push(row("manifest.json sha256", &|m| {
            m.manifest_sha256.as_deref().map(code)
        }));
    }
    rows.push(row("generator", &|m| {
        Some(esc(&format!(
            "{} {}",
            m.manifest.generator.name, m.manifest.generator.version
        )))
    }));
    rows
}

/// Per component (in the first master's order, then any others), a row per flag.
fn flag_tables(views: &[&View]) -> Vec<(String, String, Vec<Row>)> {
    let mut components: Vec<(String, String)> = Vec::new();
    for v in views {
        for c in &v.components {
            if !components.iter().any(|(n, _)| n == &c.name) {
                components.push((c.name.clone(), c.unit.clone()));
            }
        }
    }
    components
        .into_iter()
        .map(|(name, unit)| {
            let of = |v: &View| v.components.iter().find(|c| c.name == name).cloned();
            let per: Vec<_> = views.iter().map(|v| of(v)).collect();
            let mut flag_names: Vec<String> = Vec::new();
            for c in per.iter().flatten() {
                for f in &c.flags {
                    if !flag_names.contains(&f.name) {
                        flag_names.push(f.name.clone());
                    }
                }
            }
            let rows = flag_names
                .iter()
                .map(|flag| Row {
                    label: format!("<code>--{}</code>", esc(flag)),
                    cells: per
                        .iter()
                        .map(|c| {
                            let values: Vec<&str> = c
                                .iter()
                                .flat_map(|c| &c.flags)
                                .filter(|f| &f.name == flag)
                                .map(|f| f.value.as_str())
                                .collect();
                            (!values.is_empty()).then(|| {
                                values
                                    .iter()
                                    .map(|v| format!("<code>{}</code>", esc(v)))
                                    .collect::<Vec<_>>()
                                    .join("<br>")
                            })
                        })
                        .collect(),
                    badge: None,
                })
                .collect();
            (name, unit, rows)
        })
        .collect()
}

fn secret_rows(views: &[&View]) -> Vec<Row> {
    let mut paths: Vec<(String, String)> = Vec::new();
    for v in views {
        for s in &v.secrets {
            if !paths.iter().any(|(p, _)| p == &s.path) {
                paths.push((s.path.clone(), s.purpose.clone()));
            }
        }
    }
    paths
        .into_iter()
        .map(|(path, purpose)| Row {
            label: format!(
                "<code>{}</code><div class=\"muted small\">{}</div>",
                esc(&path),
                esc(&purpose)
            ),
            cells: views
                .iter()
                .map(|v| {
                    v.secrets.iter().find(|s| s.path == path).map(|s| {
                        format!(
                            "<code>{}:{} {}</code>{}<div class=\"small\">used by {}</div>{}",
                            esc(&s.owner),
                            esc(&s.group),
                            esc(&s.mode),
                            if s.optional { " (optional)" } else { "" },
                            esc(&s.used_by.join(", ")),
                            if s.purpose == purpose {
                                String::new()
                            } else {
                                format!("<div class=\"muted small\">{}</div>", esc(&s.purpose))
                            }
                        )
                    })
                })
                .collect(),
            badge: None,
        })
        .collect()
}

/// Shared or distinct, by presence: a row per distinct digest, a ✓ for each master having it.
fn presence_row(label: String, have: Vec<bool>, names: &[String]) -> Row {
    let all = have.iter().all(|h| *h);
    let badge = if names.len() < 2 {
        None
    } else if all {
        Some(("shared", "shared by all".to_owned()))
    } else {
        let only: Vec<&str> = names
            .iter()
            .zip(&have)
            .filter(|(_, h)| **h)
            .map(|(n, _)| n.as_str())
            .collect();
        Some(("distinct", format!("only {}", esc(&only.join(", ")))))
    };
    Row {
        label,
        cells: have
            .into_iter()
            .map(|h| h.then(|| "✓ present".to_owned()))
            .collect(),
        badge,
    }
}

fn names_of(views: &[&View]) -> Vec<String> {
    views.iter().map(|v| v.profile.clone()).collect()
}

fn layer_rows(views: &[&View]) -> Vec<Row> {
    let mut seen: Vec<&super::LayerView> = Vec::new();
    for v in views {
        for l in &v.oci.layers {
            if !seen.iter().any(|s| s.digest == l.digest) {
                seen.push(l);
            }
        }
    }
    seen.into_iter()
        .map(|l| {
            let label = format!(
                "{} layer, {} <div><code>{}</code></div><div class=\"muted small\">diff_id <code>{}</code> · {}</div>",
                esc(&l.role),
                size(l.size),
                esc(&l.digest),
                esc(&l.diff_id),
                esc(&l.media_type)
            );
            let have = views
                .iter()
                .map(|v| v.oci.layers.iter().any(|x| x.digest == l.digest))
                .collect();
            presence_row(label, have, &names_of(views))
        })
        .collect()
}

fn partition_rows(views: &[&View]) -> Vec<Row> {
    let disks = |v: &View| -> Vec<(&'static str, super::PartitionView)> {
        let mut all = Vec::new();
        for (which, ddi) in [("disk", &v.disk), ("bootable disk", &v.boot)] {
            for p in ddi.iter().flat_map(|d| &d.partitions) {
                all.push((which, p.clone()));
            }
        }
        all
    };
    let mut seen: Vec<(&'static str, super::PartitionView)> = Vec::new();
    for v in views {
        for (which, p) in disks(v) {
            if !seen
                .iter()
                .any(|(w, s)| *w == which && s.sha256 == p.sha256 && s.label == p.label)
            {
                seen.push((which, p));
            }
        }
    }
    seen.into_iter()
        .map(|(which, p)| {
            let label = format!(
                "{}: {} ({}) <div><code>{}</code></div><div class=\"muted small\">type <code>{}</code> · uuid <code>{}</code> · at {}</div>",
                esc(which),
                esc(&p.label),
                size(p.size),
                esc(&p.sha256),
                esc(&p.type_guid),
                esc(&p.uuid),
                p.offset
            );
            let have = views
                .iter()
                .map(|v| {
                    disks(v)
                        .iter()
                        .any(|(w, x)| *w == which && x.sha256 == p.sha256 && x.label == p.label)
                })
                .collect();
            presence_row(label, have, &names_of(views))
        })
        .collect()
}

fn output_rows(views: &[&View]) -> Vec<Row> {
    let mut kinds: Vec<String> = Vec::new();
    for v in views {
        for o in &v.outputs {
            if !kinds.contains(&o.kind) {
                kinds.push(o.kind.clone());
            }
        }
    }
    kinds
        .into_iter()
        .map(|kind| Row {
            label: esc(&kind),
            cells: views
                .iter()
                .map(|v| {
                    v.outputs.iter().find(|o| o.kind == kind).map(|o| {
                        format!(
                            "<code>{}</code> <span class=\"muted small\">{}</span><div><code>{}</code></div>",
                            esc(&o.path),
                            size(o.size),
                            esc(&o.sha256)
                        )
                    })
                })
                .collect(),
            badge: None,
        })
        .collect()
}

fn file_rows(views: &[&View]) -> Vec<Row> {
    let mut paths: Vec<&str> = views
        .iter()
        .flat_map(|v| v.files.iter().map(|f| f.path.as_str()))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    let index: Vec<std::collections::BTreeMap<&str, &super::FileView>> = views
        .iter()
        .map(|v| v.files.iter().map(|f| (f.path.as_str(), f)).collect())
        .collect();
    paths
        .into_iter()
        .map(|path| Row {
            label: format!("<code>{}</code>", esc(path)),
            cells: index
                .iter()
                .map(|files| files.get(path).map(|f| file_cell(f)))
                .collect(),
            badge: None,
        })
        .collect()
}

fn file_cell(f: &super::FileView) -> String {
    let what = match (f.kind.as_str(), &f.sha256, &f.target) {
        ("file", Some(sha), _) => format!(
            "<code>{}</code> <span class=\"muted small\">{}</span>",
            esc(sha),
            f.size.map(size).unwrap_or_default()
        ),
        (_, _, Some(target)) => format!("→ <code>{}</code>", esc(target)),
        (kind, _, _) => esc(kind),
    };
    format!(
        "{what} <span class=\"muted small\">{} {}:{}</span>",
        esc(&f.mode),
        f.uid,
        f.gid
    )
}

/// Whether a verify result says clean, and how many findings it lists: `clean` or `ok` when
/// it has one, else no findings; `None` when it has neither.
fn verify_status(v: &serde_json::Value) -> (Option<bool>, usize) {
    // Several results (one per master): clean when each is, their findings added up.
    if let Some(results) = v
        .as_array()
        .filter(|a| !a.is_empty() && a.iter().all(|r| r.is_object()))
    {
        let each: Vec<_> = results.iter().map(verify_status).collect();
        let clean = each
            .iter()
            .map(|(c, _)| *c)
            .collect::<Option<Vec<bool>>>()
            .map(|c| c.iter().all(|c| *c));
        return (clean, each.iter().map(|(_, n)| n).sum());
    }
    let findings = v
        .get("findings")
        .and_then(|f| f.as_array())
        .map_or(0, Vec::len);
    let clean = v
        .get("clean")
        .or_else(|| v.get("ok"))
        .and_then(serde_json::Value::as_bool)
        .or_else(|| v.get("findings").map(|_| findings == 0));
    (clean, findings)
}

/// A verify result, whatever its shape: its status, its scalar fields, each list of objects as
/// a table, anything else as JSON text.
fn verify_section(out: &mut String, v: &serde_json::Value) {
    let (clean, findings) = verify_status(v);
    match clean {
        Some(true) => out.push_str("<p><span class=\"status ok\">clean</span></p>\n"),
        Some(false) => {
            let _ = writeln!(
                out,
                "<p><span class=\"status bad\">{findings} finding{}</span></p>",
                if findings == 1 { "" } else { "s" }
            );
        }
        None => {}
    }
    verify_value(out, v, "");
}

/// One result: an object's scalars as a table, its lists of objects as tables, its lists of
/// scalars as lists; several results one after the other, each under its `profile` or
/// `target`; anything else as JSON text.
fn verify_value(out: &mut String, v: &serde_json::Value, id: &str) {
    if let Some(results) = v
        .as_array()
        .filter(|a| !a.is_empty() && a.iter().all(|r| r.is_object()))
    {
        for (i, r) in results.iter().enumerate() {
            let name = ["profile", "target"]
                .iter()
                .find_map(|k| r.get(*k).and_then(|n| n.as_str()))
                .map(str::to_owned)
                .unwrap_or_else(|| format!("result {}", i + 1));
            let _ = writeln!(out, "<h3>{}</h3>", esc(&name));
            verify_value(out, r, &format!("{id}{}-", i + 1));
        }
        return;
    }
    let Some(object) = v.as_object() else {
        let _ = writeln!(out, "<pre>{}</pre>", esc(&pretty(v)));
        return;
    };
    let mut scalars = String::new();
    for (key, value) in object {
        match value {
            serde_json::Value::Array(items)
                if !items.is_empty() && items.iter().all(|i| i.is_object()) =>
            {
                object_table(out, key, items, id);
            }
            serde_json::Value::Array(items)
                if items.iter().all(|i| !i.is_object() && !i.is_array()) =>
            {
                let _ = write!(out, "<h3>{} ({})</h3><ul>", esc(key), items.len());
                for i in items {
                    let _ = write!(out, "<li>{}</li>", esc(&scalar_text(i)));
                }
                out.push_str("</ul>\n");
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                let _ = writeln!(
                    out,
                    "<h3>{}</h3><pre>{}</pre>",
                    esc(key),
                    esc(&pretty(value))
                );
            }
            scalar => {
                let _ = write!(
                    scalars,
                    "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                    esc(key),
                    esc(&scalar_text(scalar))
                );
            }
        }
    }
    if !scalars.is_empty() {
        let _ = writeln!(
            out,
            "<table id=\"verify-{id}fields\"><tbody>{scalars}</tbody></table>"
        );
    }
}

fn object_table(out: &mut String, key: &str, items: &[serde_json::Value], id: &str) {
    let mut columns: Vec<&str> = Vec::new();
    for i in items.iter().filter_map(|i| i.as_object()) {
        for k in i.keys() {
            if !columns.contains(&k.as_str()) {
                columns.push(k);
            }
        }
    }
    let _ = write!(
        out,
        "<h3>{} ({})</h3><table id=\"verify-{id}{}\"><thead><tr>",
        esc(key),
        items.len(),
        slug(key)
    );
    for c in &columns {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>\n");
    for i in items {
        out.push_str("<tr>");
        for c in &columns {
            let text = i.get(*c).map(scalar_text).unwrap_or_default();
            let _ = write!(out, "<td>{}</td>", esc(&text));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// `kube-apiserver` → `kube-apiserver`; anything but ASCII letters, digits and `-` becomes `_`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn epoch_text(epoch: u64) -> String {
    format!("{epoch} ({})", crate::util::epoch::rfc3339(epoch))
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        if new {
            seen.push(x.clone());
        }
        new
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::plan::ComponentFlags;
    use crate::front::profile::Flag;

    fn master(profile: &str, address: &str) -> Master {
        let mut v = View {
            profile: profile.into(),
            image: "control-plane".into(),
            epoch: 1_558_001_600,
            ..View::default()
        };
        v.release.name = "v1.14.2".into();
        v.generator.name = "kubemint".into();
        v.components = vec![ComponentFlags {
            name: "kube-apiserver".into(),
            unit: "kube-apiserver.service".into(),
            flags: vec![
                Flag {
                    name: "advertise-address".into(),
                    value: address.into(),
                },
                Flag {
                    name: "v".into(),
                    value: "2".into(),
                },
            ],
        }];
        v.secrets = vec![super::super::SecretView {
            path: "/etc/k8s/ssl/ca.pem".into(),
            owner: "root".into(),
            group: "k8s".into(),
            mode: "0640".into(),
            used_by: vec!["kube-apiserver".into()],
            purpose: "\"><img src=x onerror=alert(1)>".into(),
            optional: false,
        }];
        Master {
            manifest: v,
            manifest_sha256: None,
        }
    }

    #[test]
    fn escapes_every_value() {
        let a = master("master-1", "<script>alert(1)</script>");
        let b = master("<script>x</script>", "10.0.0.2");
        let verify = serde_json::json!({
            "clean": false,
            "findings": [{"kind": "changed", "path": "/etc/<script>"}],
        });
        let page = render(&[a, b], Some(&verify));
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&quot;&gt;&lt;img"));
        assert!(page.starts_with(super::super::MARK));
    }

    #[test]
    fn marks_what_differs_and_spans_what_is_shared() {
        let page = render(
            &[
                master("master-1", "10.0.0.1"),
                master("master-2", "10.0.0.2"),
            ],
            None,
        );
        let row = |flag: &str| {
            page.lines()
                .find(|l| l.contains(&format!("<code>--{flag}</code>")))
                .unwrap()
                .to_owned()
        };
        let address = row("advertise-address");
        assert!(address.starts_with("<tr class=\"differs\">"), "{address}");
        assert!(address.contains("10.0.0.1") && address.contains("10.0.0.2"));
        let v = row("v");
        assert!(
            v.starts_with("<tr><th") && v.contains("colspan=\"2\""),
            "{v}"
        );
        // The build version, when a manifest has one.
        assert!(!page.contains("build version"));
        let mut versioned = master("master-1", "10.0.0.1");
        versioned.manifest.version = Some("1.14.2-1558001600-0123456789ab".into());
        let one = render(&[versioned], None);
        assert!(one.contains("build version") && one.contains("1.14.2-1558001600-0123456789ab"));
        // Same inputs, same bytes.
        let again = render(
            &[
                master("master-1", "10.0.0.1"),
                master("master-2", "10.0.0.2"),
            ],
            None,
        );
        assert_eq!(page, again);
    }

    #[test]
    fn verify_status_reads_common_shapes() {
        assert_eq!(
            verify_status(&serde_json::json!({"findings": []})),
            (Some(true), 0)
        );
        assert_eq!(
            verify_status(&serde_json::json!({"ok": false, "findings": [{}]})),
            (Some(false), 1)
        );
        assert_eq!(verify_status(&serde_json::json!([1])), (None, 0));
        assert_eq!(
            verify_status(&serde_json::json!([{"findings": []}, {"findings": [{}, {}]}])),
            (Some(false), 2)
        );
        let mut out = String::new();
        verify_section(
            &mut out,
            &serde_json::json!([{"profile": "m<1>", "findings": [{"kind": "mode"}], "notes": ["n<"]}]),
        );
        assert!(
            out.contains("<h3>m&lt;1&gt;</h3>") && out.contains("<li>n&lt;</li>"),
            "{out}"
        );
        assert!(out.contains("id=\"verify-1-findings\""), "{out}");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(esc("a'b\"<&>"), "a&#39;b&quot;&lt;&amp;&gt;");
    }
}
