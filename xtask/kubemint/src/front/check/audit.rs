//! The audit policy (`--audit-policy-file`), validated as kube-apiserver loads it: decoded
//! (k8s.io/apiserver pkg/audit/policy/reader.go: an apiVersion the release reads, kind Policy,
//! fields of the right type, at least one rule), then validated
//! (pkg/apis/audit/validation/validation.go: levels, stages, groups, resource names, non-resource
//! URLs). Fields the decoder does not know are dropped by the apiserver without a word; here
//! they are warnings, since a misspelt key silently widens what a rule matches.

use super::api_versions::check_api_version;
use super::yaml::{self, type_name};
use super::{Minor, Severity};
use yaml_rust2::Yaml;

/// Levels a rule may log at.
pub const LEVELS: &[&str] = &["None", "Metadata", "Request", "RequestResponse"];
/// Stages a policy or rule may omit.
pub const STAGES: &[&str] = &[
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];
/// `omitManagedFields` (policy and rule) is read from this release on.
pub const OMIT_MANAGED_FIELDS_FROM: Minor = Minor(23);

const SOURCE: &str = "facts: audit policy; k8s.io/apiserver pkg/audit/policy/reader.go and pkg/apis/audit/validation/validation.go";

/// One problem of a policy: where (a field path like `rules[3].nonResourceURLs[0]`), what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub path: String,
    pub message: String,
    pub fix: Option<String>,
    pub source: String,
}

struct Issues {
    list: Vec<Issue>,
}

impl Issues {
    fn push(&mut self, severity: Severity, path: &str, message: String, fix: Option<String>) {
        self.list.push(Issue {
            severity,
            path: path.to_owned(),
            message,
            fix,
            source: SOURCE.to_owned(),
        });
    }

    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, path, message.into(), None);
    }

    fn warning(&mut self, path: &str, message: impl Into<String>, fix: &str) {
        self.push(
            Severity::Warning,
            path,
            message.into(),
            Some(fix.to_owned()),
        );
    }
}

fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Validates an audit policy as kube-apiserver `minor` would load it. Errors are what the
/// apiserver refuses to start with; warnings are what it accepts but ignores or deprecates.
pub fn validate(text: &str, minor: Minor) -> Vec<Issue> {
    let mut out = Issues { list: Vec::new() };
    let doc = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            out.error("", e);
            return out.list;
        }
    };
    if doc.more {
        out.warning(
            "",
            "holds more than one YAML document: the apiserver reads only the first",
            "keep one document",
        );
    }
    let root = &doc.root;
    if !matches!(root, Yaml::Hash(_)) {
        out.error(
            "",
            format!(
                "is {}: a policy is a mapping with apiVersion, kind and rules",
                type_name(root)
            ),
        );
        return out.list;
    }
    match yaml::get(root, "apiVersion") {
        Some(Yaml::String(v)) => {
            if let Some((severity, message, fix, source)) = check_api_version("Policy", v, minor) {
                out.list.push(Issue {
                    severity,
                    path: "apiVersion".into(),
                    message,
                    fix: Some(fix),
                    source,
                });
            }
        }
        Some(other) => out.error(
            "apiVersion",
            format!("must be a string, found {}", type_name(other)),
        ),
        None => out.push(
            Severity::Error,
            "apiVersion",
            "missing: the apiserver needs the group version to decode the policy".into(),
            Some("set apiVersion: audit.k8s.io/v1".into()),
        ),
    }
    match yaml::get(root, "kind") {
        Some(Yaml::String(k)) if k == "Policy" => {}
        Some(other) => out.push(
            Severity::Error,
            "kind",
            format!("must be Policy, found {}", describe(other)),
            Some("set kind: Policy".into()),
        ),
        None => out.push(
            Severity::Error,
            "kind",
            "missing".into(),
            Some("set kind: Policy".into()),
        ),
    }
    unknown_keys(
        root,
        "",
        &[
            "apiVersion",
            "kind",
            "metadata",
            "rules",
            "omitStages",
            "omitManagedFields",
        ],
        minor,
        &mut out,
    );
    stages(root, "", &mut out);
    managed_fields(root, "", &mut out);
    match yaml::get(root, "rules") {
        None | Some(Yaml::Null) => out.push(
            Severity::Error,
            "rules",
            "missing: the apiserver refuses a policy with 0 rules".into(),
            Some("add at least one rule, e.g. - level: Metadata".into()),
        ),
        Some(Yaml::Array(rules)) if rules.is_empty() => out.push(
            Severity::Error,
            "rules",
            "empty: the apiserver refuses a policy with 0 rules".into(),
            Some("add at least one rule, e.g. - level: Metadata".into()),
        ),
        Some(Yaml::Array(rules)) => {
            for (i, rule) in rules.iter().enumerate() {
                validate_rule(rule, &format!("rules[{i}]"), minor, &mut out);
            }
        }
        Some(other) => out.error(
            "rules",
            format!("must be a list of rules, found {}", type_name(other)),
        ),
    }
    out.list
}

fn describe(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => format!("{s:?}"),
        other => type_name(other).to_owned(),
    }
}

/// Keys the decoder does not know: dropped by the apiserver, so warned about here.
fn unknown_keys(map: &Yaml, path: &str, known: &[&str], minor: Minor, out: &mut Issues) {
    for key in yaml::keys(map) {
        match key {
            Some("omitManagedFields") if minor < OMIT_MANAGED_FIELDS_FROM => out.warning(
                &child(path, "omitManagedFields"),
                format!("read from {OMIT_MANAGED_FIELDS_FROM}: {minor} ignores it"),
                "remove it, or target v1.23 or later",
            ),
            Some(k) if known.contains(&k) => {}
            Some(k) => out.warning(
                &child(path, k),
                format!(
                    "unknown field: the apiserver ignores it (known: {})",
                    known.join(", ")
                ),
                "remove it or correct its spelling",
            ),
            None => out.error(path, "has a key that is not a string"),
        }
    }
}

fn stages(map: &Yaml, path: &str, out: &mut Issues) {
    let at = child(path, "omitStages");
    let Some(items) = strings(map, "omitStages", &at, out) else {
        return;
    };
    for (i, s) in items.iter().enumerate() {
        if !STAGES.contains(s) {
            out.push(
                Severity::Error,
                &format!("{at}[{i}]"),
                format!(
                    "{s:?} is not a stage: allowed stages are {}",
                    STAGES.join(",")
                ),
                None,
            );
        }
    }
}

fn managed_fields(map: &Yaml, path: &str, out: &mut Issues) {
    match yaml::get(map, "omitManagedFields") {
        None | Some(Yaml::Boolean(_)) | Some(Yaml::Null) => {}
        Some(other) => out.error(
            &child(path, "omitManagedFields"),
            format!("must be true or false, found {}", type_name(other)),
        ),
    }
}

/// A list of strings at `key` (absent or null: empty), or `None` after reporting a type error,
/// which the apiserver's decoder refuses.
fn strings<'a>(map: &'a Yaml, key: &str, at: &str, out: &mut Issues) -> Option<Vec<&'a str>> {
    match yaml::get(map, key) {
        None | Some(Yaml::Null) => Some(Vec::new()),
        Some(Yaml::Array(items)) => {
            let mut strs = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Yaml::String(s) => strs.push(s.as_str()),
                    other => {
                        out.error(
                            &format!("{at}[{i}]"),
                            format!("must be a string, found {}", type_name(other)),
                        );
                        return None;
                    }
                }
            }
            Some(strs)
        }
        Some(other) => {
            out.error(
                at,
                format!("must be a list of strings, found {}", type_name(other)),
            );
            None
        }
    }
}

fn validate_rule(rule: &Yaml, path: &str, minor: Minor, out: &mut Issues) {
    if !matches!(rule, Yaml::Hash(_)) {
        out.error(
            path,
            format!("must be a mapping, found {}", type_name(rule)),
        );
        return;
    }
    unknown_keys(
        rule,
        path,
        &[
            "level",
            "users",
            "userGroups",
            "verbs",
            "resources",
            "namespaces",
            "nonResourceURLs",
            "omitStages",
            "omitManagedFields",
        ],
        minor,
        out,
    );
    let level_at = child(path, "level");
    match yaml::get(rule, "level") {
        None | Some(Yaml::Null) => out.push(
            Severity::Error,
            &level_at,
            format!("required: one of {}", LEVELS.join(", ")),
            Some("add level: Metadata (or another level)".into()),
        ),
        Some(Yaml::String(l)) if l.is_empty() => out.push(
            Severity::Error,
            &level_at,
            format!("required: one of {}", LEVELS.join(", ")),
            None,
        ),
        Some(Yaml::String(l)) if LEVELS.contains(&l.as_str()) => {}
        Some(Yaml::String(l)) => out.push(
            Severity::Error,
            &level_at,
            format!("{l:?} is not supported: one of {}", LEVELS.join(", ")),
            None,
        ),
        Some(other) => out.error(
            &level_at,
            format!("must be a string, found {}", type_name(other)),
        ),
    }
    for key in ["users", "userGroups", "verbs"] {
        strings(rule, key, &child(path, key), out);
    }
    let namespaces =
        strings(rule, "namespaces", &child(path, "namespaces"), out).unwrap_or_default();
    stages(rule, path, out);
    managed_fields(rule, path, out);

    let urls_at = child(path, "nonResourceURLs");
    let urls = strings(rule, "nonResourceURLs", &urls_at, out).unwrap_or_default();
    for (i, url) in urls.iter().enumerate() {
        if *url == "*" {
            continue;
        }
        if !url.starts_with('/') {
            out.error(
                &format!("{urls_at}[{i}]"),
                format!("{url:?}: non-resource URL rules must begin with a '/' character"),
            );
        }
        if !url.is_empty() && url[..url.len() - 1].contains('*') {
            out.error(
                &format!("{urls_at}[{i}]"),
                format!("{url:?}: non-resource URL wildcards '*' must be the final character of the rule"),
            );
        }
    }

    let res_at = child(path, "resources");
    let resources: &[Yaml] = match yaml::get(rule, "resources") {
        None | Some(Yaml::Null) => &[],
        Some(Yaml::Array(items)) => items,
        Some(other) => {
            out.error(
                &res_at,
                format!(
                    "must be a list of group resources, found {}",
                    type_name(other)
                ),
            );
            &[]
        }
    };
    for (i, gr) in resources.iter().enumerate() {
        let at = format!("{res_at}[{i}]");
        if !matches!(gr, Yaml::Hash(_)) {
            out.error(
                &at,
                format!(
                    "must be a mapping with group, resources, resourceNames, found {}",
                    type_name(gr)
                ),
            );
            continue;
        }
        unknown_keys(
            gr,
            &at,
            &["group", "resources", "resourceNames"],
            minor,
            out,
        );
        match yaml::get(gr, "group") {
            None | Some(Yaml::Null) => {}
            // The empty group is the core API group.
            Some(Yaml::String(g)) if g.is_empty() => {}
            Some(Yaml::String(g)) => {
                if let Err(m) = dns_subdomain(g) {
                    out.error(&child(&at, "group"), format!("{g:?}: {m}"));
                }
            }
            Some(other) => out.error(
                &child(&at, "group"),
                format!("must be a string, found {}", type_name(other)),
            ),
        }
        let names_of = strings(gr, "resources", &child(&at, "resources"), out).unwrap_or_default();
        let names =
            strings(gr, "resourceNames", &child(&at, "resourceNames"), out).unwrap_or_default();
        if !names.is_empty() && names_of.is_empty() {
            out.error(
                &child(&at, "resourceNames"),
                "using resourceNames requires at least one resource",
            );
        }
    }
    if !urls.is_empty() && (!resources.is_empty() || !namespaces.is_empty()) {
        out.error(
            &urls_at,
            "rules cannot apply to both regular resources and non-resource URLs: split the rule",
        );
    }
}

/// A group name: a lowercase RFC 1123 DNS subdomain (e.g. `rbac.authorization.k8s.io`).
fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("a group must be a lowercase RFC 1123 subdomain, e.g. rbac.authorization.k8s.io (no version)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str) -> String {
        format!("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}")
    }

    fn errors(text: &str, minor: u32) -> Vec<String> {
        validate(text, Minor(minor))
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect()
    }

    #[test]
    fn a_sound_policy_passes() {
        let p = policy(
            "  - level: None\n    nonResourceURLs: ['/healthz*', /version, '*']\n\
             \x20 - level: Metadata\n    omitStages: [RequestReceived]\n    resources:\n      - group: \"\"\n        resources: [secrets]\n        resourceNames: [a]\n      - group: rbac.authorization.k8s.io\n",
        );
        assert_eq!(validate(&p, Minor(14)), []);
        assert_eq!(validate(&p, Minor(33)), []);
    }

    #[test]
    fn each_invalid_rule_shape_is_rejected() {
        for (rule, want) in [
            ("  - users: [a]\n", "rules[0].level: required"),
            (
                "  - level: Everything\n",
                "rules[0].level: \"Everything\" is not supported",
            ),
            (
                "  - level: None\n    omitStages: [Done]\n",
                "rules[0].omitStages[0]: \"Done\" is not a stage",
            ),
            (
                "  - level: None\n    nonResourceURLs: [healthz]\n",
                "rules[0].nonResourceURLs[0]: \"healthz\": non-resource URL rules must begin with a '/'",
            ),
            (
                "  - level: None\n    nonResourceURLs: ['/a*b']\n",
                "rules[0].nonResourceURLs[0]: \"/a*b\": non-resource URL wildcards '*' must be the final character",
            ),
            (
                "  - level: None\n    nonResourceURLs: [/x]\n    resources: [{group: \"\"}]\n",
                "rules[0].nonResourceURLs: rules cannot apply to both",
            ),
            (
                "  - level: None\n    nonResourceURLs: [/x]\n    namespaces: [kube-system]\n",
                "rules[0].nonResourceURLs: rules cannot apply to both",
            ),
            (
                "  - level: None\n    resources: [{group: \"\", resourceNames: [a]}]\n",
                "rules[0].resources[0].resourceNames: using resourceNames requires at least one resource",
            ),
            (
                "  - level: None\n    resources: [{group: rbac.authorization.k8s.io/v1}]\n",
                "rules[0].resources[0].group: \"rbac.authorization.k8s.io/v1\": a group must be",
            ),
            (
                "  - level: None\n    resources: [{group: Apps}]\n",
                "rules[0].resources[0].group: \"Apps\"",
            ),
            (
                "  - level: None\n    verbs: get\n",
                "rules[0].verbs: must be a list of strings, found a string",
            ),
            (
                "  - level: None\n    users: [1]\n",
                "rules[0].users[0]: must be a string, found an integer",
            ),
            (
                "  - level: None\n    omitManagedFields: yes please\n",
                "rules[0].omitManagedFields: must be true or false",
            ),
            ("  - None\n", "rules[0]: must be a mapping"),
        ] {
            let errs = errors(&policy(rule), 33);
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "{want:?} not in {errs:?} for\n{rule}"
            );
        }
    }

    #[test]
    fn policy_level_problems() {
        assert_eq!(
            errors("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", 14),
            ["rules: empty: the apiserver refuses a policy with 0 rules"]
        );
        assert_eq!(
            errors("apiVersion: audit.k8s.io/v1\nkind: Policy\n", 14),
            ["rules: missing: the apiserver refuses a policy with 0 rules"]
        );
        assert_eq!(
            errors("kind: Policy\nrules: [{level: None}]\n", 14),
            ["apiVersion: missing: the apiserver needs the group version to decode the policy"]
        );
        assert_eq!(
            errors(
                "apiVersion: audit.k8s.io/v1\nkind: AuditPolicy\nrules: [{level: None}]\n",
                14
            ),
            ["kind: must be Policy, found \"AuditPolicy\""]
        );
        assert_eq!(
            errors(
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Later]\nrules: [{level: None}]\n",
                14
            ),
            [
                "omitStages[0]: \"Later\" is not a stage: allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"
            ]
        );
        assert_eq!(
            errors("- a\n", 14),
            [": is a list: a policy is a mapping with apiVersion, kind and rules"]
        );
        assert!(errors("rules: [\n", 14)[0].starts_with(": not valid YAML"));
    }

    #[test]
    fn versions_by_release() {
        let v1beta1 = "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]\n";
        // Read without a word until v1.21, which warns (kubernetes#98858).
        assert!(validate(v1beta1, Minor(14)).is_empty());
        let at21 = validate(v1beta1, Minor(21));
        assert_eq!(at21.len(), 1);
        assert_eq!(at21[0].severity, Severity::Warning);
        assert_eq!(
            errors(v1beta1, 24),
            ["apiVersion: apiVersion audit.k8s.io/v1beta1 was removed in v1.24"]
        );
    }

    #[test]
    fn ignored_fields_are_warnings() {
        let p = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n  - level: None\n    user: [a]\n";
        let at14: Vec<_> = validate(p, Minor(14))
            .into_iter()
            .map(|i| (i.severity, i.path))
            .collect();
        assert_eq!(
            at14,
            [
                (Severity::Warning, "omitManagedFields".to_owned()),
                (Severity::Warning, "rules[0].user".to_owned())
            ]
        );
        let at23: Vec<_> = validate(p, Minor(23)).into_iter().map(|i| i.path).collect();
        assert_eq!(at23, ["rules[0].user"]);
    }
}
