//! Reading the YAML files a plan renders (audit policy, scheduler configuration, kubeconfigs)
//! as the components read them: the first document, a mapping at the top.
//!
//! yaml-rust2 parses YAML 1.2; the components' Go decoders (sigs.k8s.io/yaml) read YAML 1.1,
//! which differs only for unquoted scalars like `yes`/`no`/`on`/`off` (booleans there, strings
//! here). The files checked here hold names, paths and enumerations, where that never matters.

use yaml_rust2::{Yaml, YamlLoader};

/// A parsed document and whether more documents followed it (the components read only the
/// first).
#[derive(Debug)]
pub struct Doc {
    pub root: Yaml,
    pub more: bool,
}

/// Parses `text`; an empty file or a syntax error is an error message.
pub fn parse(text: &str) -> Result<Doc, String> {
    let mut docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    if docs.is_empty() {
        return Err("empty: no YAML document".into());
    }
    let more = docs.len() > 1;
    Ok(Doc {
        root: docs.swap_remove(0),
        more,
    })
}

/// `map[key]` for a mapping with string keys.
pub fn get<'a>(map: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    match map {
        Yaml::Hash(h) => h.get(&Yaml::String(key.to_owned())),
        _ => None,
    }
}

/// The string keys of a mapping, in order (non-string keys as `None`).
pub fn keys(map: &Yaml) -> Vec<Option<&str>> {
    match map {
        Yaml::Hash(h) => h.keys().map(|k| k.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// What a value is, for messages.
pub fn type_name(v: &Yaml) -> &'static str {
    match v {
        Yaml::Real(_) => "a number",
        Yaml::Integer(_) => "an integer",
        Yaml::String(_) => "a string",
        Yaml::Boolean(_) => "a boolean",
        Yaml::Array(_) => "a list",
        Yaml::Hash(_) => "a mapping",
        Yaml::Alias(_) => "an alias",
        Yaml::Null => "null",
        Yaml::BadValue => "an invalid value",
    }
}

/// A string at `key`, if it is one.
pub fn str_at<'a>(map: &'a Yaml, key: &str) -> Option<&'a str> {
    get(map, key).and_then(Yaml::as_str)
}

/// The items of a list at `key` (empty if absent or null).
pub fn list_at<'a>(map: &'a Yaml, key: &str) -> &'a [Yaml] {
    match get(map, key) {
        Some(Yaml::Array(a)) => a,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_document_and_errors() {
        let d = parse("a: 1\n---\nb: 2\n").unwrap();
        assert!(d.more);
        assert_eq!(get(&d.root, "a"), Some(&Yaml::Integer(1)));
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("a: [1\n").unwrap_err().starts_with("not valid YAML"));
        assert!(parse("a: 1\na: 2\n").is_err(), "duplicate keys");
        let d = parse("k: v\nl: [x, y]\n").unwrap();
        assert_eq!(str_at(&d.root, "k"), Some("v"));
        assert_eq!(list_at(&d.root, "l").len(), 2);
        assert_eq!(keys(&d.root), [Some("k"), Some("l")]);
        assert_eq!(type_name(&d.root), "a mapping");
    }
}
