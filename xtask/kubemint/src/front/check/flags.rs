//! The flag table (`flags.toml`, embedded) and the rules it drives: for each flag a component
//! is given, whether the target release knows it (added, removed), warns about it (deprecated),
//! accepts its value (value rules), and which flags the release cannot start without.

use super::{Finding, Minor, Severity, Stage};
use crate::front::profile::Flag;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The table's text, as shipped in the binary.
pub const TABLE: &str = include_str!("flags.toml");

/// The components the table describes.
pub const COMPONENTS: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    flag: Vec<RawRow>,
    #[serde(default)]
    insecure: Vec<Insecure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    components: Vec<String>,
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    added: Option<Minor>,
    deprecated: Option<Minor>,
    removed: Option<Minor>,
    instead: Option<String>,
    deprecated_fix: Option<String>,
    deprecated_level: Option<Level>,
    note: Option<String>,
    required_from: Option<Minor>,
    required_level: Option<Level>,
    hint: Option<String>,
    #[serde(default)]
    unverified: bool,
    source: String,
    #[serde(default)]
    rule: Vec<Rule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Error,
    Warning,
    Note,
}

/// One flag's history: a row of the table, for one or more flags with the same history.
#[derive(Clone, Debug)]
pub struct Row {
    pub components: Vec<String>,
    pub names: Vec<String>,
    pub added: Option<Minor>,
    pub deprecated: Option<Minor>,
    pub removed: Option<Minor>,
    /// What replaces it: a flag (`--secure-port`) or a few words.
    pub instead: Option<String>,
    /// The fix while it is only deprecated, when removing it would be wrong.
    pub deprecated_fix: Option<String>,
    /// How a deprecation is reported: a warning, or a note when the user cannot act on it at
    /// that release (the flag is the only way to get what it does, as `--insecure-port=0` is
    /// the only way to close port 8080 on v1.14).
    pub deprecated_severity: Severity,
    pub note: Option<String>,
    /// From this release on, startup fails without it.
    pub required_from: Option<Minor>,
    /// Missing a required flag is an error, or only a warning when it degrades.
    pub required_is_error: bool,
    /// For a required flag: what to set it to.
    pub hint: Option<String>,
    /// A hypothesis: its findings are warnings, never errors.
    pub unverified: bool,
    pub source: String,
    pub rules: Vec<Rule>,
}

/// A rule about a flag's value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Rule {
    /// From `from` on, any value but 0 is rejected.
    OnlyZero {
        from: Minor,
        message: String,
        source: Option<String>,
    },
    /// From `from` on, only these values are accepted.
    OneOf {
        values: Vec<String>,
        from: Minor,
        message: Option<String>,
        source: Option<String>,
    },
    /// An item of a comma-separated list (an admission plugin) that was removed.
    ItemRemoved {
        item: String,
        removed: Minor,
        instead: Option<String>,
        source: Option<String>,
    },
    /// `key=value,…`: an entry without `=` is ignored before `fatal_from`, fatal from it.
    KeyValueList {
        fatal_from: Minor,
        message: String,
        source: Option<String>,
    },
    /// Cannot be given together with `--with`.
    Conflicts {
        with: String,
        message: String,
        source: Option<String>,
    },
    /// Has no effect when `--flag` is given.
    IgnoredWith {
        flag: String,
        message: String,
        source: Option<String>,
    },
    /// Accepted but without effect from `from` on.
    NoEffect { from: Minor, source: Option<String> },
}

/// A flag pair that serves an unauthenticated port, with its defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Insecure {
    pub component: String,
    /// The port flag, e.g. `insecure-port`.
    pub port: String,
    /// The address flag, e.g. `insecure-bind-address`.
    pub address: String,
    pub default_port: u16,
    pub default_address: String,
    /// Before this release the port is open when no flag closes it.
    pub open_by_default_until: Minor,
    pub source: String,
}

/// The table, indexed by (component, flag).
#[derive(Clone, Debug)]
pub struct Table {
    pub rows: Vec<Row>,
    pub insecure: Vec<Insecure>,
    index: BTreeMap<(String, String), usize>,
}

impl Table {
    /// Parses and validates a table: every row has a source, known components, at least one
    /// name, versions in order; no flag is described twice.
    pub fn parse(text: &str) -> Result<Table, String> {
        let raw: RawTable = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        let mut rows = Vec::new();
        let mut index = BTreeMap::new();
        for (i, r) in raw.flag.into_iter().enumerate() {
            let mut names = r.names;
            names.extend(r.name);
            let at = format!("flag[{i}] ({})", names.join(", "));
            if names.is_empty() {
                problems.push(format!("{at}: no name: set name or names"));
            }
            if r.source.trim().is_empty() {
                problems.push(format!("{at}: no source"));
            }
            if r.components.is_empty() {
                problems.push(format!("{at}: no component"));
            }
            for c in &r.components {
                if !COMPONENTS.contains(&c.as_str()) {
                    problems.push(format!("{at}: unknown component {c:?}"));
                }
                for n in &names {
                    if index.insert((c.clone(), n.clone()), rows.len()).is_some() {
                        problems.push(format!("{at}: {c} --{n} is described twice"));
                    }
                }
            }
            let order = [
                ("added", r.added, "deprecated", r.deprecated),
                ("added", r.added, "removed", r.removed),
                ("deprecated", r.deprecated, "removed", r.removed),
                ("required_from", r.required_from, "removed", r.removed),
            ];
            for (a, va, b, vb) in order {
                if let (Some(va), Some(vb)) = (va, vb)
                    && va >= vb
                {
                    problems.push(format!("{at}: {a} {va} is not before {b} {vb}"));
                }
            }
            if r.deprecated_level.is_some() && r.deprecated.is_none() {
                problems.push(format!("{at}: deprecated_level without deprecated"));
            }
            if r.deprecated_level == Some(Level::Note) && r.deprecated_fix.is_none() {
                problems.push(format!(
                    "{at}: a deprecation shown as a note needs deprecated_fix saying why it stays"
                ));
            }
            if r.required_level.is_some() && r.required_from.is_none() {
                problems.push(format!("{at}: required_level without required_from"));
            }
            rows.push(Row {
                components: r.components,
                names,
                added: r.added,
                deprecated: r.deprecated,
                removed: r.removed,
                instead: r.instead,
                deprecated_fix: r.deprecated_fix,
                deprecated_severity: match r.deprecated_level {
                    Some(Level::Note) => Severity::Note,
                    Some(Level::Error) => Severity::Error,
                    Some(Level::Warning) | None => Severity::Warning,
                },
                note: r.note,
                required_from: r.required_from,
                required_is_error: r.required_level != Some(Level::Warning),
                hint: r.hint,
                unverified: r.unverified,
                source: r.source,
                rules: r.rule,
            });
        }
        for (i, ins) in raw.insecure.iter().enumerate() {
            if !COMPONENTS.contains(&ins.component.as_str()) {
                problems.push(format!(
                    "insecure[{i}]: unknown component {:?}",
                    ins.component
                ));
            }
            if ins.source.trim().is_empty() {
                problems.push(format!("insecure[{i}]: no source"));
            }
        }
        if problems.is_empty() {
            Ok(Table {
                rows,
                insecure: raw.insecure,
                index,
            })
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The row describing `--name` of `component`.
    pub fn row(&self, component: &str, name: &str) -> Option<&Row> {
        self.index
            .get(&(component.to_owned(), name.to_owned()))
            .map(|&i| &self.rows[i])
    }

    /// The flag of `component` the table knows whose name is nearest `name`, if it is at most two
    /// edits away: what a misspelt flag probably meant.
    pub fn nearest(&self, component: &str, name: &str) -> Option<&str> {
        self.index
            .keys()
            .filter(|(c, _)| c == component)
            .map(|(_, n)| (strsim::levenshtein(n, name), n.as_str()))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, n)| n)
    }

    /// How many (component, flag) pairs the table describes.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The flags of `component` that release `minor` accepts, sorted: every flag of a row for
    /// the component that is neither not yet added nor removed at `minor` (deprecated ones are
    /// accepted). Without a minor (a release name that is no 1.x version), every flag of the
    /// component's rows.
    pub fn known(&self, component: &str, minor: Option<Minor>) -> Vec<&str> {
        self.index
            .iter()
            .filter(|((c, _), _)| c == component)
            .filter(|(_, i)| {
                let row = &self.rows[**i];
                minor.is_none_or(|m| {
                    !matches!(
                        Stage::of(row.added, row.deprecated, row.removed, m),
                        Stage::NotYet { .. } | Stage::Removed { .. }
                    )
                })
            })
            .map(|((_, n), _)| n.as_str())
            .collect()
    }
}

/// Flags whose value is a file the component reads at start (certificates, keys, kubeconfigs,
/// configuration files); `--log-file` is written, not read. The cross-checks look for these files
/// among the image's and the declared secrets, and the sample release's stand-ins open them.
pub fn reads_file(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "config",
        "kubelet-certificate-authority",
        "kubelet-client-certificate",
        "kubelet-client-key",
        "authorization-config",
        "authentication-config",
        "encryption-provider-config",
    ];
    name != "log-file"
        && (EXACT.contains(&name)
            || name.ends_with("kubeconfig")
            || ["-file", "-cafile", "-certfile", "-keyfile"]
                .iter()
                .any(|s| name.ends_with(s)))
}

/// The embedded table. It is validated by the tests; a broken one is a bug of this binary.
pub fn table() -> &'static Table {
    static TABLE_CELL: OnceLock<Table> = OnceLock::new();
    TABLE_CELL.get_or_init(|| match Table::parse(TABLE) {
        Ok(t) => t,
        Err(e) => panic!("xtask/kubemint/src/front/check/flags.toml is invalid:\n{e}"),
    })
}

/// What replaces a flag, as an edit: "replace --a with --b", or "remove --a (…)".
/// The edit that resolves a removed or deprecated flag; `flags` are the component's, so a
/// replacement already set is not suggested again.
fn replace_or_remove(name: &str, instead: Option<&str>, flags: &[Flag]) -> String {
    match instead {
        Some(i) if i.starts_with("--") && flags.iter().any(|f| f.name == i[2..]) => {
            format!("remove --{name} ({i} is already set)")
        }
        Some(i) if i.starts_with("--") => format!("replace --{name} with {i}"),
        Some(i) => format!("remove --{name}: {i}"),
        None => format!("remove --{name}"),
    }
}

/// Checks `flags` of `component` against the release `minor`, appending findings.
pub fn check(
    table: &Table,
    profile: &str,
    component: &str,
    flags: &[Flag],
    minor: Minor,
    out: &mut Vec<Finding>,
) {
    if !COMPONENTS.contains(&component) {
        return;
    }
    for flag in flags {
        let name = flag.name.as_str();
        let base = |severity: Severity, message: String| {
            Finding::new(severity, profile, message)
                .component(component)
                .flag(name)
        };
        let Some(row) = table.row(component, name) else {
            // A misspelling of a known flag is an error: the component would refuse to start.
            if let Some(meant) = table.nearest(component, name) {
                out.push(
                    base(
                        Severity::Error,
                        format!("not a flag of {component}: did you mean --{meant}?"),
                    )
                    .fix(format!("rename --{name} to --{meant}")),
                );
                continue;
            }
            out.push(
                base(
                    Severity::Warning,
                    format!("not in kubemint's flag table: whether {minor} accepts it is not checked"),
                )
                .fix(
                    "check it in the release's reference, then add a row to xtask/kubemint/src/front/check/flags.toml",
                ),
            );
            continue;
        };
        // A hypothesis never refuses a build.
        let sev = |s: Severity| if row.unverified { Severity::Warning } else { s };
        let unverified = if row.unverified { " (unverified)" } else { "" };
        let note = row
            .note
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        match Stage::of(row.added, row.deprecated, row.removed, minor) {
            Stage::NotYet { added } => {
                out.push(
                    base(
                        sev(Severity::Error),
                        format!("added in {added}, unknown to {minor}{unverified}"),
                    )
                    .fix(format!("remove --{name}, or target {added} or later"))
                    .source(&row.source),
                );
                continue;
            }
            Stage::Removed {
                removed,
                deprecated,
            } => {
                let since = deprecated
                    .map(|d| format!(" (deprecated since {d})"))
                    .unwrap_or_default();
                out.push(
                    base(
                        sev(Severity::Error),
                        format!("removed in {removed}{since}{note}{unverified}"),
                    )
                    .fix(replace_or_remove(name, row.instead.as_deref(), flags))
                    .source(&row.source),
                );
                continue;
            }
            Stage::Deprecated {
                deprecated,
                removed,
            } => {
                let until = removed
                    .map(|r| format!(", removed in {r}"))
                    .unwrap_or_default();
                out.push(
                    base(
                        row.deprecated_severity,
                        format!("deprecated since {deprecated}{until}{note}{unverified}"),
                    )
                    .fix(
                        row.deprecated_fix.clone().unwrap_or_else(|| {
                            replace_or_remove(name, row.instead.as_deref(), flags)
                        }),
                    )
                    .source(&row.source),
                );
            }
            Stage::Current => {}
        }
        for rule in &row.rules {
            if let Some(f) = check_rule(rule, &flag.value, flags, minor) {
                let (severity, message, fix, source) = f;
                out.push(
                    base(sev(severity), format!("{message}{unverified}"))
                        .fix(fix)
                        .source(source.unwrap_or(&row.source)),
                );
            }
        }
    }
    // Flags the release cannot start without.
    for row in &table.rows {
        let Some(from) = row.required_from else {
            continue;
        };
        if minor < from || !row.components.iter().any(|c| c == component) {
            continue;
        }
        for name in &row.names {
            if flags.iter().any(|f| &f.name == name) {
                continue;
            }
            let severity = if row.required_is_error && !row.unverified {
                Severity::Error
            } else {
                Severity::Warning
            };
            let what = if row.required_is_error {
                "startup fails without it"
            } else {
                "expected"
            };
            let note = row
                .note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            let hint = row
                .hint
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            out.push(
                Finding::new(
                    severity,
                    profile,
                    format!("missing: required from {from}, {what}{note}"),
                )
                .component(component)
                .flag(name)
                .fix(format!("add --{name}{hint}"))
                .source(&row.source),
            );
        }
    }
}

type RuleHit<'a> = (Severity, String, String, Option<&'a str>);

/// One value rule applied to `value`; `flags` are the component's other flags.
fn check_rule<'a>(
    rule: &'a Rule,
    value: &str,
    flags: &[Flag],
    minor: Minor,
) -> Option<RuleHit<'a>> {
    let has = |n: &str| flags.iter().any(|f| f.name == n);
    match rule {
        Rule::OnlyZero {
            from,
            message,
            source,
        } => (minor >= *from && value.trim() != "0").then(|| {
            (
                Severity::Error,
                format!("{value:?}: {message}"),
                "set it to 0, or remove it".to_owned(),
                source.as_deref(),
            )
        }),
        Rule::OneOf {
            values,
            from,
            message,
            source,
        } => (minor >= *from && !values.iter().any(|v| v == value)).then(|| {
            let why = message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            (
                Severity::Error,
                format!(
                    "{value:?} is not accepted from {from}, only {}{why}",
                    values.join(", ")
                ),
                format!("set it to {}", values[0]),
                source.as_deref(),
            )
        }),
        Rule::ItemRemoved {
            item,
            removed,
            instead,
            source,
        } => {
            let present = value.split(',').any(|v| v.trim() == item);
            (present && minor >= *removed).then(|| {
                let with = instead
                    .as_deref()
                    .map(|i| format!(" (use {i})"))
                    .unwrap_or_default();
                (
                    Severity::Error,
                    format!("{item} was removed in {removed}"),
                    format!("remove {item} from the list{with}"),
                    source.as_deref(),
                )
            })
        }
        Rule::KeyValueList {
            fatal_from,
            message,
            source,
        } => {
            let bare: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty() && !e.contains('='))
                .collect();
            if bare.is_empty() {
                return None;
            }
            let list = bare.join(", ");
            let fix = format!(
                "give each entry a value: {}",
                bare.iter()
                    .map(|e| format!("{e}=true"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            Some(if minor >= *fatal_from {
                (
                    Severity::Error,
                    format!(
                        "{list} without a value is fatal from {fatal_from} (\"invalid value {}=\"): {message}",
                        bare[0]
                    ),
                    fix,
                    source.as_deref(),
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "{list} without a value is silently ignored by {minor} and fatal from {fatal_from}: {message}"
                    ),
                    fix,
                    source.as_deref(),
                )
            })
        }
        Rule::Conflicts {
            with,
            message,
            source,
        } => has(with).then(|| {
            (
                Severity::Error,
                message.clone(),
                format!("remove --{with}, or this flag"),
                source.as_deref(),
            )
        }),
        Rule::IgnoredWith {
            flag,
            message,
            source,
        } => has(flag).then(|| {
            (
                Severity::Warning,
                message.clone(),
                "remove it".to_owned(),
                source.as_deref(),
            )
        }),
        Rule::NoEffect { from, source } => (minor >= *from).then(|| {
            (
                Severity::Warning,
                format!("has no effect from {from}"),
                "remove it".to_owned(),
                source.as_deref(),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> Vec<Flag> {
        pairs
            .iter()
            .map(|(n, v)| Flag {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect()
    }

    /// The findings about the flags given (required flags missing are left out).
    fn run(table: &Table, component: &str, pairs: &[(&str, &str)], minor: u32) -> Vec<Finding> {
        let mut out = all(table, component, pairs, minor);
        out.retain(|f| pairs.iter().any(|(n, _)| f.flag.as_deref() == Some(*n)));
        out
    }

    fn all(table: &Table, component: &str, pairs: &[(&str, &str)], minor: u32) -> Vec<Finding> {
        let mut out = Vec::new();
        check(table, "m", component, &flags(pairs), Minor(minor), &mut out);
        out
    }

    fn lines(findings: &[Finding]) -> Vec<String> {
        findings.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn embedded_table_is_valid_and_every_row_has_a_source() {
        let t = Table::parse(TABLE).unwrap();
        assert!(t.rows.iter().all(|r| !r.source.trim().is_empty()));
        assert!(t.len() > 100, "{} flags", t.len());
        for c in COMPONENTS {
            assert!(t.row(c, "v").is_some(), "{c} -v");
            assert!(t.insecure.iter().any(|i| i.component == *c), "{c} insecure");
        }
    }

    #[test]
    fn broken_tables_are_refused() {
        let bad = r#"
[[flag]]
components = ["kube-apiserver", "kubelet"]
name = "x"
deprecated = "1.24"
removed = "1.20"
source = ""
[[flag]]
components = ["kube-apiserver"]
names = ["x"]
source = "s"
"#;
        let err = Table::parse(bad).unwrap_err();
        for want in [
            "no source",
            "unknown component \"kubelet\"",
            "deprecated v1.24 is not before removed v1.20",
            "kube-apiserver --x is described twice",
        ] {
            assert!(err.contains(want), "{want} in {err}");
        }
        assert!(Table::parse("[[flag]]\ncomponents = []\nsource = \"s\"\nwat = 1\n").is_err());
    }

    #[test]
    fn lifecycle() {
        let t = table();
        let f = run(t, "kube-apiserver", &[("kubelet-https", "true")], 14);
        assert!(f.is_empty(), "{:?}", lines(&f));
        let f = run(t, "kube-apiserver", &[("kubelet-https", "true")], 19);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        let f = run(t, "kube-apiserver", &[("kubelet-https", "true")], 22);
        assert_eq!(
            lines(&f),
            [
                "error: m: kube-apiserver: --kubelet-https: removed in v1.22 (deprecated since v1.19): kubelet connections are always https; fix: remove --kubelet-https"
            ]
        );
        let f = run(t, "kube-apiserver", &[("audit-log-compress", "true")], 14);
        assert_eq!(
            lines(&f),
            [
                "error: m: kube-apiserver: --audit-log-compress: added in v1.20, unknown to v1.14; fix: remove --audit-log-compress, or target v1.20 or later"
            ]
        );
        let f = run(t, "kube-controller-manager", &[("log-dir", "/x")], 26);
        assert_eq!(
            f[0].fix.as_deref(),
            Some("remove --log-dir: the components log to stderr, which journald keeps")
        );
        let f = run(
            t,
            "kube-controller-manager",
            &[("experimental-cluster-signing-duration", "8760h")],
            25,
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some("replace --experimental-cluster-signing-duration with --cluster-signing-duration")
        );
    }

    #[test]
    fn unknown_flags_are_warnings_and_misspellings_errors() {
        let f = run(
            table(),
            "kube-apiserver",
            &[("feature-gates", "A=true")],
            14,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            f[0].message.contains("not in kubemint's flag table"),
            "{}",
            f[0]
        );
        let f = run(table(), "kube-apiserver", &[("kubelet-htps", "true")], 14);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(
            f[0].message.contains("did you mean --kubelet-https?"),
            "{}",
            f[0]
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some("rename --kubelet-htps to --kubelet-https")
        );
    }

    #[test]
    fn a_replacement_already_set_is_not_suggested_again() {
        let f = run(
            table(),
            "kube-apiserver",
            &[("insecure-port", "0"), ("secure-port", "6443")],
            33,
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some("remove --insecure-port (--secure-port is already set)")
        );
    }

    #[test]
    fn unverified_rows_only_warn() {
        let f = run(
            table(),
            "kube-controller-manager",
            &[("cluster-signing-duration", "8760h")],
            14,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].message.ends_with("(unverified)"), "{}", f[0]);
    }

    #[test]
    fn required_flags() {
        let sa = [
            (
                "service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
            ),
            ("service-account-key-file", "/k/sa.pub"),
            ("service-account-signing-key-file", "/k/sa.key"),
        ];
        assert!(all(table(), "kube-apiserver", &sa, 33).is_empty());
        assert!(all(table(), "kube-apiserver", &[], 19).is_empty());
        let f = all(table(), "kube-apiserver", &sa[1..2], 20);
        let missing: Vec<_> = f.iter().map(|f| f.flag.clone().unwrap()).collect();
        assert_eq!(
            missing,
            ["service-account-issuer", "service-account-signing-key-file"]
        );
        assert!(f.iter().all(|f| f.severity == Severity::Error));
        // A degrading omission is a warning.
        let f = all(table(), "kube-controller-manager", &[], 22);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.severity == Severity::Warning));
    }

    #[test]
    fn value_rules() {
        let t = table();
        let sev = |f: &[Finding]| f.iter().map(|f| f.severity).collect::<Vec<_>>();
        // --insecure-port: any value before 1.20, only 0 in 1.20-1.23, gone in 1.24. Its
        // deprecation is a note: on those releases it is the only way to close port 8080.
        assert!(
            sev(&run(t, "kube-apiserver", &[("insecure-port", "8080")], 19))
                .contains(&Severity::Note)
        );
        assert!(
            !sev(&run(t, "kube-apiserver", &[("insecure-port", "8080")], 19))
                .contains(&Severity::Error)
        );
        assert!(
            !sev(&run(t, "kube-apiserver", &[("insecure-port", "0")], 23))
                .contains(&Severity::Error)
        );
        let f = run(t, "kube-apiserver", &[("insecure-port", "8080")], 20);
        assert!(
            f.iter()
                .any(|f| f.severity == Severity::Error && f.message.contains("only zero")),
            "{:?}",
            lines(&f)
        );
        let f = run(t, "kube-apiserver", &[("insecure-port", "0")], 24);
        assert_eq!(f.len(), 1, "{:?}", lines(&f));
        assert!(f[0].message.starts_with("removed in v1.24"));
        // --runtime-config=api/all: ignored before 1.17, fatal from it.
        let f = run(t, "kube-apiserver", &[("runtime-config", "api/all")], 14);
        assert_eq!(sev(&f), [Severity::Warning]);
        let f = run(t, "kube-apiserver", &[("runtime-config", "api/all")], 17);
        assert_eq!(sev(&f), [Severity::Error]);
        assert_eq!(
            f[0].fix.as_deref(),
            Some("give each entry a value: api/all=true")
        );
        assert!(
            run(
                t,
                "kube-apiserver",
                &[("runtime-config", "api/all=true")],
                33
            )
            .is_empty()
        );
        // Removed admission plugins.
        let psp = [(
            "enable-admission-plugins",
            "NodeRestriction,PodSecurityPolicy",
        )];
        assert!(run(t, "kube-apiserver", &psp, 24).is_empty());
        let f = run(t, "kube-apiserver", &psp, 25);
        assert_eq!(
            lines(&f),
            [
                "error: m: kube-apiserver: --enable-admission-plugins: PodSecurityPolicy was removed in v1.25; fix: remove PodSecurityPolicy from the list (use PodSecurity)"
            ]
        );
        // --storage-backend: only etcd3.
        assert_eq!(
            sev(&run(
                t,
                "kube-apiserver",
                &[("storage-backend", "etcd2")],
                14
            )),
            [Severity::Error]
        );
        assert!(run(t, "kube-apiserver", &[("storage-backend", "etcd3")], 14).is_empty());
        // --authorization-config with --authorization-mode.
        let both = [
            ("authorization-config", "/etc/authz.yaml"),
            ("authorization-mode", "Node,RBAC"),
        ];
        let f = run(t, "kube-apiserver", &both, 29);
        assert_eq!(sev(&f), [Severity::Error]);
        assert!(f[0].message.contains("cannot be combined"));
        assert!(run(t, "kube-apiserver", &both[..1], 29).is_empty());
        assert_eq!(
            sev(&run(t, "kube-apiserver", &both[..1], 28)),
            [Severity::Error]
        );
        // kube-scheduler: --kubeconfig next to --config, --port without effect.
        let f = run(
            t,
            "kube-scheduler",
            &[("config", "/c"), ("kubeconfig", "/k")],
            14,
        );
        assert_eq!(sev(&f), [Severity::Warning]);
        assert!(run(t, "kube-scheduler", &[("kubeconfig", "/k")], 14).is_empty());
        assert_eq!(
            sev(&run(t, "kube-scheduler", &[("port", "0")], 23)),
            [Severity::Warning]
        );
        // kube-controller-manager --port: only 0 from 1.22.
        assert_eq!(
            sev(&run(t, "kube-controller-manager", &[("port", "10252")], 22)),
            [Severity::Error]
        );
        assert!(run(t, "kube-controller-manager", &[("port", "0")], 22).is_empty());
    }

    #[test]
    fn which_flags_name_a_file_read() {
        for f in [
            "tls-cert-file",
            "etcd-cafile",
            "kubeconfig",
            "authentication-kubeconfig",
            "config",
            "kubelet-client-key",
        ] {
            assert!(reads_file(f), "{f}");
        }
        for f in [
            "log-file",
            "runtime-config",
            "audit-log-path",
            "log-dir",
            "cert-dir",
        ] {
            assert!(!reads_file(f), "{f}");
        }
    }

    #[test]
    fn known_flags_follow_the_release() {
        let t = table();
        let at = |c: &str, m: u32| t.known(c, Some(Minor(m)));
        let v14 = at("kube-apiserver", 14);
        assert!(v14.is_sorted(), "{v14:?}");
        // Deprecated is still known; removed and not yet added are not.
        for f in [
            "insecure-port",
            "kubelet-https",
            "log-dir",
            "secure-port",
            "v",
        ] {
            assert!(v14.contains(&f), "{f}");
        }
        for f in ["audit-log-compress", "authorization-config", "no-such-flag"] {
            assert!(!v14.contains(&f), "{f}");
        }
        let v33 = at("kube-apiserver", 33);
        assert!(!v33.contains(&"insecure-port") && !v33.contains(&"log-dir"));
        assert!(v33.contains(&"authorization-config"));
        // Each component its own flags; without a minor, all of them.
        assert!(at("kube-scheduler", 14).contains(&"config"));
        assert!(!at("kube-controller-manager", 14).contains(&"config"));
        let any = t.known("kube-apiserver", None);
        assert!(any.contains(&"insecure-port") && any.contains(&"authorization-config"));
        assert!(t.known("kubectl", Some(Minor(14))).is_empty());
    }
}
