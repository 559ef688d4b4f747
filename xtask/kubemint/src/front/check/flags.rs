//! The flag table (`flags.toml`, embedded) and the rules it drives: for each flag a component
//! is given, whether the target release knows it (added, removed), warns about it (deprecated),
//! accepts its value (value rules), and which flags the release cannot start without. The
//! same file holds the feature gates ([`Gate`]) and API group versions ([`ApiGroup`]) that
//! `--feature-gates` and `--runtime-config` are checked against.
//!
//! A finding whose fix needs no decision carries it as an [`Edit`]: what `upgrade-plan`
//! applies to a profile set.

use super::{Edit, Finding, Minor, Severity, Stage};
use crate::front::profile::{Component, Flag};
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
    #[serde(default)]
    gate: Vec<Gate>,
    #[serde(default)]
    group: Vec<ApiGroup>,
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
    replaced_by: Option<String>,
    deprecated_fix: Option<String>,
    deprecated_level: Option<Level>,
    note: Option<String>,
    required_from: Option<Minor>,
    required_level: Option<Level>,
    hint: Option<String>,
    suggest: Option<String>,
    suggest_from: Option<String>,
    #[serde(default)]
    suggest_decide: bool,
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
    /// The flag that takes over its value unchanged: removing this one is a rename.
    pub replaced_by: Option<String>,
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
    /// For a required flag: the value an edit adds.
    pub suggest: Option<String>,
    /// For a required flag: `component:flag` whose value an edit copies (before `suggest`).
    pub suggest_from: Option<String>,
    /// The suggested value is a default a person should confirm.
    pub suggest_decide: bool,
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
    /// Has no effect when `--flag` is given (before `until`, when set).
    IgnoredWith {
        flag: String,
        message: String,
        until: Option<Minor>,
        source: Option<String>,
    },
    /// Accepted but without effect from `from` on.
    NoEffect { from: Minor, source: Option<String> },
    /// One value of the flag, with a history of its own (a leader-election lock type).
    Value {
        value: String,
        added: Option<Minor>,
        deprecated: Option<Minor>,
        removed: Option<Minor>,
        /// The value to use instead, for the fix and the edit.
        instead: Option<String>,
        message: String,
        #[serde(default)]
        unverified: bool,
        source: Option<String>,
    },
    /// `Name=bool,…`, each gate checked against the table's [[gate]] rows.
    FeatureGates { source: Option<String> },
    /// `group/version=true,…` and `api/all=true`: the alpha and beta API versions they turn
    /// on, from the table's [[group]] rows.
    EnablesGroups { source: Option<String> },
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

/// A feature gate that is gone: from `removed` on, naming it in `--feature-gates` is fatal.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub name: String,
    pub removed: Minor,
    /// The value it was locked to before it went (a GA gate: true).
    pub locked: Option<bool>,
    #[serde(default)]
    pub unverified: bool,
    pub source: String,
}

/// Whether an API version is alpha or a beta that is off by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupLevel {
    Alpha,
    Beta,
}

/// An API group version the apiserver serves only when `--runtime-config` turns it on.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiGroup {
    /// `group/version`, e.g. `batch/v2alpha1`.
    pub name: String,
    pub level: GroupLevel,
    /// The first release that serves it.
    pub from: Minor,
    /// The first release that no longer knows it: naming it is fatal there.
    pub removed: Option<Minor>,
    #[serde(default)]
    pub unverified: bool,
    pub source: String,
}

impl ApiGroup {
    fn served_by(&self, minor: Minor) -> bool {
        self.from <= minor && self.removed.is_none_or(|r| minor < r)
    }
}

/// The table, indexed by (component, flag).
#[derive(Clone, Debug)]
pub struct Table {
    pub rows: Vec<Row>,
    pub insecure: Vec<Insecure>,
    pub gates: Vec<Gate>,
    pub groups: Vec<ApiGroup>,
    index: BTreeMap<(String, String), usize>,
}

impl Table {
    /// Parses and validates a table: every row has a source, known components, at least one
    /// name, versions in order; no flag, gate or group is described twice.
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
            if (r.suggest.is_some() || r.suggest_from.is_some()) && r.required_from.is_none() {
                problems.push(format!("{at}: suggest without required_from"));
            }
            if let Some(from) = &r.suggest_from
                && from.split_once(':').is_none()
            {
                problems.push(format!("{at}: suggest_from {from:?} is not component:flag"));
            }
            for rule in &r.rule {
                if let Rule::Value {
                    value,
                    added,
                    deprecated,
                    removed,
                    source,
                    ..
                } = rule
                {
                    if source.as_deref().is_none_or(|s| s.trim().is_empty()) {
                        problems.push(format!("{at}: value {value:?}: no source"));
                    }
                    for (a, va, b, vb) in [
                        ("added", *added, "deprecated", *deprecated),
                        ("added", *added, "removed", *removed),
                        ("deprecated", *deprecated, "removed", *removed),
                    ] {
                        if let (Some(va), Some(vb)) = (va, vb)
                            && va >= vb
                        {
                            problems.push(format!(
                                "{at}: value {value:?}: {a} {va} is not before {b} {vb}"
                            ));
                        }
                    }
                }
            }
            rows.push(Row {
                components: r.components,
                names,
                added: r.added,
                deprecated: r.deprecated,
                removed: r.removed,
                instead: r.instead,
                replaced_by: r.replaced_by,
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
                suggest: r.suggest,
                suggest_from: r.suggest_from,
                suggest_decide: r.suggest_decide,
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
        for (i, g) in raw.gate.iter().enumerate() {
            if g.source.trim().is_empty() {
                problems.push(format!("gate[{i}] ({}): no source", g.name));
            }
            if raw.gate[..i].iter().any(|o| o.name == g.name) {
                problems.push(format!("gate[{i}] ({}): listed twice", g.name));
            }
        }
        for (i, g) in raw.group.iter().enumerate() {
            if g.source.trim().is_empty() {
                problems.push(format!("group[{i}] ({}): no source", g.name));
            }
            if !g.name.contains('/') {
                problems.push(format!("group[{i}] ({}): not group/version", g.name));
            }
            if g.removed.is_some_and(|r| r <= g.from) {
                problems.push(format!(
                    "group[{i}] ({}): removed is not after from",
                    g.name
                ));
            }
            if raw.group[..i].iter().any(|o| o.name == g.name) {
                problems.push(format!("group[{i}] ({}): listed twice", g.name));
            }
        }
        if problems.is_empty() {
            Ok(Table {
                rows,
                insecure: raw.insecure,
                gates: raw.gate,
                groups: raw.group,
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

    /// The API versions `--runtime-config` can turn on that `minor` serves, of `level`.
    pub fn groups_at(&self, minor: Minor, level: GroupLevel) -> Vec<&ApiGroup> {
        self.groups
            .iter()
            .filter(|g| g.level == level && g.served_by(minor))
            .collect()
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

/// The edit for a flag that has to go: a rename when another flag takes its value unchanged
/// and is not set yet; a removal when nothing replaces it, or its replacement is set or is
/// no flag; none when a replacement flag needs a value a person must choose.
fn going_edit(component: &str, row: &Row, name: &str, flags: &[Flag]) -> Option<Edit> {
    let set = |f: &str| flags.iter().any(|x| x.name == f);
    if let Some(to) = &row.replaced_by
        && !set(to)
    {
        return Some(Edit::RenameFlag {
            component: component.to_owned(),
            from: name.to_owned(),
            to: to.clone(),
        });
    }
    match row.instead.as_deref() {
        Some(i) if i.starts_with("--") && !set(&i[2..]) && row.replaced_by.is_none() => None,
        _ => Some(Edit::RemoveFlag {
            component: component.to_owned(),
            flag: name.to_owned(),
        }),
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
    check_in(table, profile, component, flags, None, minor, out)
}

/// [`check`], with the other components of the profile at hand (`all`), for the values a
/// missing required flag can take from another one.
pub fn check_in(
    table: &Table,
    profile: &str,
    component: &str,
    flags: &[Flag],
    all: Option<&BTreeMap<String, Component>>,
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
                let mut f = base(
                    sev(Severity::Error),
                    format!("removed in {removed}{since}{note}{unverified}"),
                )
                .fix(match &row.replaced_by {
                    Some(to) if !flags.iter().any(|f| &f.name == to) => {
                        format!("rename --{name} to --{to} (same value)")
                    }
                    _ => replace_or_remove(name, row.instead.as_deref(), flags),
                })
                .source(&row.source);
                if let Some(e) = going_edit(component, row, name, flags) {
                    f = f.edit(e);
                }
                out.push(f);
                continue;
            }
            Stage::Deprecated {
                deprecated,
                removed,
            } => {
                let until = removed
                    .map(|r| format!(", removed in {r}"))
                    .unwrap_or_default();
                let mut f = base(
                    row.deprecated_severity,
                    format!("deprecated since {deprecated}{until}{note}{unverified}"),
                )
                .fix(
                    row.deprecated_fix
                        .clone()
                        .unwrap_or_else(|| match &row.replaced_by {
                            Some(to) if !flags.iter().any(|f| &f.name == to) => {
                                format!("rename --{name} to --{to} (same value)")
                            }
                            _ => replace_or_remove(name, row.instead.as_deref(), flags),
                        }),
                )
                .source(&row.source);
                // A deprecation shown as a note says why the flag stays; any other has a fix
                // that needs no decision when nothing new must be chosen.
                if row.deprecated_fix.is_none()
                    && row.deprecated_severity == Severity::Warning
                    && let Some(e) = going_edit(component, row, name, flags)
                {
                    f = f.edit(e);
                }
                out.push(f);
            }
            Stage::Current => {}
        }
        for rule in &row.rules {
            for hit in check_rule(table, rule, component, name, &flag.value, flags, minor) {
                let unverified = if row.unverified || hit.unverified {
                    " (unverified)"
                } else {
                    ""
                };
                let severity = if row.unverified || hit.unverified {
                    hit.severity.max(Severity::Warning)
                } else {
                    hit.severity
                };
                let mut f = base(severity, format!("{}{unverified}", hit.message))
                    .fix(hit.fix)
                    .source(hit.source.as_deref().unwrap_or(&row.source));
                if let Some(e) = hit.edit {
                    f = f.edit(e);
                }
                out.push(f);
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
            let mut f = Finding::new(
                severity,
                profile,
                format!("missing: required from {from}, {what}{note}"),
            )
            .component(component)
            .flag(name)
            .fix(format!("add --{name}{hint}"))
            .source(&row.source);
            let copied = row.suggest_from.as_deref().and_then(|from| {
                let (c, n) = from.split_once(':')?;
                let list = if c == component {
                    Some(flags)
                } else {
                    all.and_then(|a| a.get(c)).map(|c| c.flags.as_slice())
                };
                list?.iter().find(|f| f.name == n).map(|f| f.value.clone())
            });
            let copy_of = copied.as_ref().and(row.suggest_from.clone());
            if let Some(value) = copied.or_else(|| row.suggest.clone()) {
                f = f.edit(Edit::SetFlag {
                    component: component.to_owned(),
                    flag: name.clone(),
                    value,
                    decide: row.suggest_decide,
                    copy_of,
                });
            }
            out.push(f);
        }
    }
}

/// What one value rule found.
struct RuleHit {
    severity: Severity,
    message: String,
    fix: String,
    source: Option<String>,
    edit: Option<Edit>,
    /// The fact behind it is a hypothesis: never more than a warning.
    unverified: bool,
}

impl RuleHit {
    fn new(severity: Severity, message: String, fix: impl Into<String>) -> RuleHit {
        RuleHit {
            severity,
            message,
            fix: fix.into(),
            source: None,
            edit: None,
            unverified: false,
        }
    }

    fn source(mut self, source: Option<&str>) -> RuleHit {
        self.source = source.map(str::to_owned);
        self
    }

    fn edit(mut self, edit: Edit) -> RuleHit {
        self.edit = Some(edit);
        self
    }
}

/// The entries of a comma-separated list, trimmed, empty ones dropped.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// One value rule applied to `--name=value` of `component`; `flags` are the component's.
fn check_rule(
    table: &Table,
    rule: &Rule,
    component: &str,
    name: &str,
    value: &str,
    flags: &[Flag],
    minor: Minor,
) -> Vec<RuleHit> {
    let has = |n: &str| flags.iter().any(|f| f.name == n);
    let remove = || Edit::RemoveFlag {
        component: component.to_owned(),
        flag: name.to_owned(),
    };
    let remove_item = |item: &str| Edit::RemoveItem {
        component: component.to_owned(),
        flag: name.to_owned(),
        item: item.to_owned(),
    };
    let set = |v: &str| Edit::SetFlag {
        component: component.to_owned(),
        flag: name.to_owned(),
        value: v.to_owned(),
        decide: false,
        copy_of: None,
    };
    let mut hits = Vec::new();
    match rule {
        Rule::OnlyZero {
            from,
            message,
            source,
        } => {
            if minor >= *from && value.trim() != "0" {
                hits.push(
                    RuleHit::new(
                        Severity::Error,
                        format!("{value:?}: {message}"),
                        "set it to 0, or remove it",
                    )
                    .source(source.as_deref())
                    .edit(set("0")),
                );
            }
        }
        Rule::OneOf {
            values,
            from,
            message,
            source,
        } => {
            if minor >= *from && !values.iter().any(|v| v == value) {
                let why = message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                hits.push(
                    RuleHit::new(
                        Severity::Error,
                        format!(
                            "{value:?} is not accepted from {from}, only {}{why}",
                            values.join(", ")
                        ),
                        format!("set it to {}", values[0]),
                    )
                    .source(source.as_deref()),
                );
            }
        }
        Rule::ItemRemoved {
            item,
            removed,
            instead,
            source,
        } => {
            if items(value).any(|v| v == item) && minor >= *removed {
                let with = instead
                    .as_deref()
                    .map(|i| format!(" (use {i})"))
                    .unwrap_or_default();
                hits.push(
                    RuleHit::new(
                        Severity::Error,
                        format!("{item} was removed in {removed}"),
                        format!("remove {item} from the list{with}"),
                    )
                    .source(source.as_deref())
                    .edit(remove_item(item)),
                );
            }
        }
        Rule::KeyValueList {
            fatal_from,
            message,
            source,
        } => {
            for bare in items(value).filter(|e| !e.contains('=')) {
                let (severity, message) = if minor >= *fatal_from {
                    (
                        Severity::Error,
                        format!(
                            "{bare} without a value is fatal from {fatal_from} (\"invalid value {bare}=\"): {message}"
                        ),
                    )
                } else {
                    (
                        Severity::Warning,
                        format!(
                            "{bare} without a value is silently ignored by {minor} and fatal from {fatal_from}: {message}"
                        ),
                    )
                };
                hits.push(
                    RuleHit::new(
                        severity,
                        message,
                        format!(
                            "remove {bare} from the list: ignored before {fatal_from}, so removing it keeps what it did"
                        ),
                    )
                    .source(source.as_deref())
                    .edit(remove_item(bare)),
                );
            }
        }
        Rule::Conflicts {
            with,
            message,
            source,
        } => {
            if has(with) {
                hits.push(
                    RuleHit::new(
                        Severity::Error,
                        message.clone(),
                        format!("remove --{with}, or this flag"),
                    )
                    .source(source.as_deref()),
                );
            }
        }
        Rule::IgnoredWith {
            flag,
            message,
            until,
            source,
        } => {
            if has(flag) && until.is_none_or(|u| minor < u) {
                hits.push(
                    RuleHit::new(Severity::Warning, message.clone(), "remove it")
                        .source(source.as_deref())
                        .edit(remove()),
                );
            }
        }
        Rule::NoEffect { from, source } => {
            if minor >= *from {
                hits.push(
                    RuleHit::new(
                        Severity::Warning,
                        format!("has no effect from {from}"),
                        "remove it",
                    )
                    .source(source.as_deref())
                    .edit(remove()),
                );
            }
        }
        Rule::Value {
            value: v,
            added,
            deprecated,
            removed,
            instead,
            message,
            unverified,
            source,
        } => {
            if value.trim() == v {
                let fix_to = |what: &str| match instead {
                    Some(i) => format!("set it to {i}"),
                    None => what.to_owned(),
                };
                let hit = match Stage::of(*added, *deprecated, *removed, minor) {
                    Stage::NotYet { added } => Some(RuleHit::new(
                        Severity::Error,
                        format!("{v:?} is accepted from {added}, not by {minor}: {message}"),
                        fix_to("choose a value the release accepts"),
                    )),
                    Stage::Removed { removed, .. } => Some(RuleHit::new(
                        Severity::Error,
                        format!("{v:?} was removed in {removed}: {message}"),
                        fix_to("choose a value the release accepts"),
                    )),
                    Stage::Deprecated { .. } => Some(RuleHit::new(
                        Severity::Warning,
                        format!("{v:?}: {message}"),
                        fix_to("remove it"),
                    )),
                    Stage::Current => None,
                };
                if let Some(mut hit) = hit {
                    hit.unverified = *unverified;
                    hit.source = source.clone();
                    if let Some(i) = instead {
                        hit.edit = Some(set(i));
                    }
                    hits.push(hit);
                }
            }
        }
        Rule::FeatureGates { source } => {
            for entry in items(value) {
                let Some((gate, _)) = entry.split_once('=') else {
                    hits.push(
                        RuleHit::new(
                            Severity::Error,
                            format!(
                                "{entry} has no value: every gate is Name=true or Name=false, and {component} refuses to start otherwise"
                            ),
                            format!("write {entry}=true or {entry}=false"),
                        )
                        .source(source.as_deref()),
                    );
                    continue;
                };
                let gate = gate.trim();
                match table.gates.iter().find(|g| g.name == gate) {
                    Some(g) if minor >= g.removed => {
                        let locked = match g.locked {
                            Some(v) => format!(
                                " (it was locked to {v} before it went: removing it changes nothing)"
                            ),
                            None => String::new(),
                        };
                        let mut hit = RuleHit::new(
                            Severity::Error,
                            format!(
                                "feature gate {gate} was removed in {}: {minor} refuses to start (\"unrecognized feature gate: {gate}\")",
                                g.removed
                            ),
                            format!("remove {entry} from --{name}{locked}"),
                        )
                        .edit(remove_item(entry));
                        hit.unverified = g.unverified;
                        hit.source = Some(g.source.clone());
                        hits.push(hit);
                    }
                    Some(_) => {}
                    None => hits.push(
                        RuleHit::new(
                            Severity::Warning,
                            format!(
                                "feature gate {gate} is not in kubemint's gate table: whether {minor} knows it is not checked, and an unknown gate is fatal (\"unrecognized feature gate\")"
                            ),
                            "check it in the release's feature-gate reference, then add a [[gate]] row to xtask/kubemint/src/front/check/flags.toml",
                        )
                        .source(source.as_deref()),
                    ),
                }
            }
        }
        Rule::EnablesGroups { source } => {
            for entry in items(value) {
                let Some((key, on)) = entry.split_once('=') else {
                    continue; // the key-value-list rule reports it
                };
                let (key, on) = (key.trim(), on.trim().eq_ignore_ascii_case("true"));
                let levels: &[GroupLevel] = match key {
                    "api/all" => &[GroupLevel::Alpha, GroupLevel::Beta],
                    "api/alpha" => &[GroupLevel::Alpha],
                    "api/beta" => &[GroupLevel::Beta],
                    _ => &[],
                };
                if !levels.is_empty() {
                    if !on {
                        continue;
                    }
                    let groups: Vec<&ApiGroup> = levels
                        .iter()
                        .flat_map(|l| table.groups_at(minor, *l))
                        .collect();
                    let list = if groups.is_empty() {
                        format!("kubemint's table lists none for {minor}")
                    } else {
                        groups
                            .iter()
                            .map(|g| g.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let what = match key {
                        "api/alpha" => "every alpha API version",
                        "api/beta" => "every beta API version, even those off by default",
                        _ => {
                            "every alpha API version (and, from v1.24, every beta one that is off by default)"
                        }
                    };
                    let mut hit = RuleHit::new(
                        Severity::Warning,
                        format!("{key}=true turns on {what} {minor} serves: {list}"),
                        format!(
                            "remove {entry}; turn on only the group versions you need (group/version=true)"
                        ),
                    );
                    hit.unverified = groups.iter().any(|g| g.unverified);
                    hit.source = Some(
                        groups
                            .iter()
                            .find(|g| !g.unverified)
                            .or(groups.first())
                            .map(|g| g.source.clone())
                            .or_else(|| source.clone())
                            .unwrap_or_default(),
                    );
                    hits.push(hit);
                    continue;
                }
                let Some(g) = table.groups.iter().find(|g| g.name == key) else {
                    continue;
                };
                if let Some(r) = g.removed.filter(|r| minor >= *r) {
                    let mut hit = RuleHit::new(
                        Severity::Error,
                        format!(
                            "{key} was removed in {r}: {minor} refuses to start (\"unknown api groups\")"
                        ),
                        format!("remove {entry} from --{name}"),
                    )
                    .edit(remove_item(entry));
                    hit.unverified = g.unverified;
                    hit.source = Some(g.source.clone());
                    hits.push(hit);
                } else if on && g.served_by(minor) {
                    let level = match g.level {
                        GroupLevel::Alpha => "an alpha API",
                        GroupLevel::Beta => "a beta API that is off by default",
                    };
                    let mut hit = RuleHit::new(
                        Severity::Warning,
                        format!(
                            "turns on {key}, {level}: its objects may not survive the releases that change or drop it"
                        ),
                        format!("remove {entry} unless the cluster needs {key}"),
                    );
                    hit.unverified = g.unverified;
                    hit.source = Some(g.source.clone());
                    hits.push(hit);
                }
            }
        }
    }
    hits
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
            Some(
                "rename --experimental-cluster-signing-duration to --cluster-signing-duration (same value)"
            )
        );
        // What upgrade-plan applies: a rename, a removal.
        assert_eq!(
            f[0].edit,
            Some(Edit::RenameFlag {
                component: "kube-controller-manager".into(),
                from: "experimental-cluster-signing-duration".into(),
                to: "cluster-signing-duration".into(),
            })
        );
        let f = run(t, "kube-apiserver", &[("kubelet-https", "true")], 22);
        assert_eq!(
            f[0].edit,
            Some(Edit::RemoveFlag {
                component: "kube-apiserver".into(),
                flag: "kubelet-https".into(),
            })
        );
        // A deprecation the user cannot act on carries no edit.
        let f = run(t, "kube-apiserver", &[("insecure-port", "0")], 14);
        assert_eq!((f[0].severity, f[0].edit.clone()), (Severity::Note, None));
    }

    /// Each corrected row: the old value of the table fails these.
    #[test]
    fn corrected_rows() {
        let t = table();
        let sev = |f: &[Finding]| f.iter().map(|f| f.severity).collect::<Vec<_>>();
        // kube-controller-manager --port/--address: deprecated in v1.10 (a note: on v1.14
        // --port=0 is the only way to close 10252), no effect from v1.22, gone in v1.24.
        for flag in ["port", "address"] {
            let v = if flag == "port" { "0" } else { "127.0.0.1" };
            let f = run(t, "kube-controller-manager", &[(flag, v)], 14);
            assert_eq!(sev(&f), [Severity::Note], "{flag}: {:?}", lines(&f));
            assert!(
                f[0].message
                    .starts_with("deprecated since v1.10, removed in v1.24")
            );
            let f = run(t, "kube-controller-manager", &[(flag, v)], 22);
            assert!(
                f.iter()
                    .any(|f| f.message == "has no effect from v1.22" && f.edit.is_some()),
                "{:?}",
                lines(&f)
            );
        }
        // kube-scheduler --port/--address: deprecated in v1.13; ignored next to --config
        // before v1.23; a non-zero --port is fatal from v1.23.
        let f = run(t, "kube-scheduler", &[("port", "0")], 14);
        assert_eq!(sev(&f), [Severity::Note]);
        assert!(
            f[0].message
                .starts_with("deprecated since v1.13, removed in v1.24")
        );
        let f = run(t, "kube-scheduler", &[("config", "/c"), ("port", "0")], 14);
        assert!(
            f.iter().any(|f| f.severity == Severity::Warning
                && f.message.starts_with("ignored when --config is given")),
            "{:?}",
            lines(&f)
        );
        assert!(
            !run(t, "kube-scheduler", &[("config", "/c"), ("port", "0")], 23)
                .iter()
                .any(|f| f.message.starts_with("ignored when --config")),
        );
        let f = run(t, "kube-scheduler", &[("port", "10251")], 23);
        assert!(
            f.iter().any(|f| f.severity == Severity::Error
                && f.message.contains("only zero is allowed from v1.23")),
            "{:?}",
            lines(&f)
        );
        assert!(!sev(&run(t, "kube-scheduler", &[("port", "0")], 23)).contains(&Severity::Error));
        // --cluster-signing-duration: added in v1.19, verified (an error before it).
        let f = run(
            t,
            "kube-controller-manager",
            &[("cluster-signing-duration", "8760h")],
            14,
        );
        assert_eq!(sev(&f), [Severity::Error]);
        assert_eq!(
            f[0].message,
            "added in v1.19, unknown to v1.14",
            "{:?}",
            lines(&f)
        );
        assert!(
            run(
                t,
                "kube-controller-manager",
                &[("cluster-signing-duration", "8760h")],
                19
            )
            .is_empty()
        );
    }

    #[test]
    fn removed_admission_plugins() {
        let t = table();
        for (plugin, removed) in [
            ("PodPreset", 20),
            ("PodSecurityPolicy", 25),
            ("SecurityContextDeny", 30),
            ("PersistentVolumeLabel", 31),
        ] {
            for flag in ["enable-admission-plugins", "disable-admission-plugins"] {
                let list = format!("NodeRestriction,{plugin}");
                assert!(
                    run(t, "kube-apiserver", &[(flag, &list)], removed - 1).is_empty(),
                    "{plugin} before v1.{removed}"
                );
                let f = run(t, "kube-apiserver", &[(flag, &list)], removed);
                assert_eq!(f.len(), 1, "{plugin}: {:?}", lines(&f));
                assert_eq!(f[0].severity, Severity::Error);
                assert_eq!(
                    f[0].message,
                    format!("{plugin} was removed in v1.{removed}")
                );
                assert_eq!(
                    f[0].edit,
                    Some(Edit::RemoveItem {
                        component: "kube-apiserver".into(),
                        flag: flag.into(),
                        item: plugin.into(),
                    })
                );
            }
        }
    }

    #[test]
    fn feature_gates() {
        let t = table();
        // Every component has the flag; a gate kubemint does not know is a warning that
        // says why it matters.
        for c in COMPONENTS {
            let f = run(t, c, &[("feature-gates", "SomeGate=true")], 14);
            assert_eq!(f.len(), 1, "{c}: {:?}", lines(&f));
            assert_eq!(f[0].severity, Severity::Warning);
            assert!(
                f[0].message.contains("an unknown gate is fatal"),
                "{}",
                f[0]
            );
        }
        // A removed gate: named, with the edit that drops it.
        let f = run(
            t,
            "kube-apiserver",
            &[("feature-gates", "PodPriority=true")],
            18,
        );
        assert_eq!(f.len(), 1, "{:?}", lines(&f));
        assert!(
            f[0].message.starts_with(
                "feature gate PodPriority was removed in v1.18: v1.18 refuses to start"
            ),
            "{}",
            f[0]
        );
        assert_eq!(
            f[0].edit,
            Some(Edit::RemoveItem {
                component: "kube-apiserver".into(),
                flag: "feature-gates".into(),
                item: "PodPriority=true".into(),
            })
        );
        assert!(
            run(
                t,
                "kube-apiserver",
                &[("feature-gates", "PodPriority=true")],
                17
            )
            .is_empty()
        );
        let f = run(t, "kube-scheduler", &[("feature-gates", "Broken")], 14);
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn runtime_config_groups() {
        let t = table();
        let f = run(
            t,
            "kube-apiserver",
            &[("runtime-config", "api/all=true")],
            14,
        );
        assert_eq!(f.len(), 1, "{:?}", lines(&f));
        assert_eq!(f[0].severity, Severity::Warning);
        for g in [
            "batch/v2alpha1",
            "settings.k8s.io/v1alpha1",
            "auditregistration.k8s.io/v1alpha1",
        ] {
            assert!(f[0].message.contains(g), "{g} in {}", f[0]);
        }
        assert!(!f[0].message.contains("resource.k8s.io"), "{}", f[0]);
        let f = run(
            t,
            "kube-apiserver",
            &[("runtime-config", "api/all=true")],
            33,
        );
        for g in [
            "resource.k8s.io/v1alpha3",
            "storagemigration.k8s.io/v1alpha1",
        ] {
            assert!(f[0].message.contains(g), "{g} in {}", f[0]);
        }
        assert!(!f[0].message.contains("settings.k8s.io"), "{}", f[0]);
        // A group version the release no longer has is fatal.
        let f = run(
            t,
            "kube-apiserver",
            &[("runtime-config", "settings.k8s.io/v1alpha1=true")],
            20,
        );
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("was removed in v1.20"), "{}", f[0]);
        let f = run(
            t,
            "kube-apiserver",
            &[("runtime-config", "settings.k8s.io/v1alpha1=true")],
            14,
        );
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            f[0].message
                .starts_with("turns on settings.k8s.io/v1alpha1, an alpha API")
        );
        assert!(
            run(
                t,
                "kube-apiserver",
                &[("runtime-config", "api/all=false")],
                14
            )
            .is_empty()
        );
    }

    #[test]
    fn leader_election_locks() {
        let t = table();
        let lock = |v: &str, m: u32| {
            run(
                t,
                "kube-controller-manager",
                &[("leader-elect-resource-lock", v)],
                m,
            )
        };
        assert!(lock("endpoints", 16).is_empty());
        let f = lock("endpoints", 17);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(
            f[0].edit,
            Some(Edit::SetFlag {
                component: "kube-controller-manager".into(),
                flag: "leader-elect-resource-lock".into(),
                value: "endpointsleases".into(),
                decide: false,
                copy_of: None,
            })
        );
        assert_eq!(lock("endpoints", 24)[0].severity, Severity::Error);
        assert_eq!(lock("endpointsleases", 16)[0].severity, Severity::Error);
        assert!(lock("endpointsleases", 18).is_empty());
        assert_eq!(lock("endpointsleases", 20)[0].severity, Severity::Warning);
        assert_eq!(lock("endpointsleases", 28)[0].severity, Severity::Error);
        assert!(lock("leases", 33).is_empty());
    }

    #[test]
    fn unknown_flags_are_warnings_and_misspellings_errors() {
        let f = run(table(), "kube-apiserver", &[("goaway-chance", "0.001")], 14);
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
        let t = Table::parse(
            r#"
[[flag]]
components = ["kube-controller-manager"]
name = "cluster-signing-duration"
added = "1.19"
unverified = true
source = "a hypothesis"
"#,
        )
        .unwrap();
        let f = run(
            &t,
            "kube-controller-manager",
            &[("cluster-signing-duration", "8760h")],
            14,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].message.ends_with("(unverified)"), "{}", f[0]);
        // An unverified gate: a warning too.
        let f = run(
            table(),
            "kube-apiserver",
            &[("feature-gates", "TaintBasedEvictions=true")],
            20,
        );
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
        // The edits: kubeadm's issuer, to confirm; the key the controller manager signs with.
        let mut components = BTreeMap::new();
        components.insert(
            "kube-controller-manager".to_owned(),
            Component {
                flags: flags(&[("service-account-private-key-file", "/k/sa.key")]),
            },
        );
        let mut out = Vec::new();
        check_in(
            table(),
            "m",
            "kube-apiserver",
            &flags(&sa[1..2]),
            Some(&components),
            Minor(20),
            &mut out,
        );
        let edits: Vec<_> = out.iter().map(|f| f.edit.clone().unwrap()).collect();
        assert_eq!(
            edits,
            [
                Edit::SetFlag {
                    component: "kube-apiserver".into(),
                    flag: "service-account-issuer".into(),
                    value: "https://kubernetes.default.svc.cluster.local".into(),
                    decide: true,
                    copy_of: None,
                },
                Edit::SetFlag {
                    component: "kube-apiserver".into(),
                    flag: "service-account-signing-key-file".into(),
                    value: "/k/sa.key".into(),
                    decide: false,
                    copy_of: Some(
                        "kube-controller-manager:service-account-private-key-file".into()
                    ),
                },
            ]
        );
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
        // What the bare entry did was nothing: the fix drops it (api/all=true would turn on
        // every alpha API).
        assert_eq!(
            f[0].fix.as_deref(),
            Some(
                "remove api/all from the list: ignored before v1.17, so removing it keeps what it did"
            )
        );
        assert_eq!(
            f[0].edit,
            Some(Edit::RemoveItem {
                component: "kube-apiserver".into(),
                flag: "runtime-config".into(),
                item: "api/all".into(),
            })
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
            [Severity::Note, Severity::Warning]
        );
        // kube-controller-manager --port: only 0 from 1.22.
        assert!(
            sev(&run(t, "kube-controller-manager", &[("port", "10252")], 22))
                .contains(&Severity::Error)
        );
        assert!(
            !sev(&run(t, "kube-controller-manager", &[("port", "0")], 22))
                .contains(&Severity::Error)
        );
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
