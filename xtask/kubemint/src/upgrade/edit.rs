//! A profile set's files as documents that keep their comments, order and formatting
//! (toml_edit), and the edits `upgrade-plan` makes to them. Every change leaves a comment
//! saying what was done and why; nothing a person wrote is lost (the comments above a removed
//! flag move to the key that follows it).

use crate::front::check::Edit;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Key, Table};

/// How wide comments are wrapped, as the seed files are.
const WIDTH: usize = 96;

/// `text` as comment lines (`# …\n`), wrapped at [`WIDTH`].
pub fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The value of a flag as written in TOML: integers and booleans stay what they are.
fn value_item(value: &str) -> Item {
    if let Ok(i) = value.trim().parse::<i64>() {
        return toml_edit::value(i);
    }
    match value.trim() {
        "true" => toml_edit::value(true),
        "false" => toml_edit::value(false),
        _ => toml_edit::value(value),
    }
}

/// A flag's value as text (`"a,b"`, `0`, `true`).
fn value_text(item: &Item) -> Option<String> {
    let v = item.as_value()?;
    if let Some(s) = v.as_str() {
        return Some(s.to_owned());
    }
    if let Some(i) = v.as_integer() {
        return Some(i.to_string());
    }
    v.as_bool().map(|b| b.to_string())
}

/// `prefix` without the comments of earlier hops that carry `marker` (a comment and its
/// continuation lines): notes that a later hop's say again.
fn drop_notes(prefix: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut dropping = false;
    for line in prefix.split_inclusive('\n') {
        if line.starts_with("# upgrade-plan ") {
            dropping = line.contains(marker);
        } else if !line.starts_with("#   ") {
            dropping = false;
        }
        if !dropping {
            out.push_str(line);
        }
    }
    out
}

fn prefix_of(table: &Table, key: &str) -> String {
    table
        .key(key)
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_owned()
}

fn set_prefix(table: &mut Table, key: &str, prefix: String) {
    if let Some(mut k) = table.key_mut(key) {
        k.leaf_decor_mut().set_prefix(prefix);
    }
}

/// The files of one profile set, parsed.
pub struct SetDocs {
    docs: BTreeMap<PathBuf, DocumentMut>,
}

impl SetDocs {
    /// Parses every text; an error names the file.
    pub fn parse(texts: &BTreeMap<PathBuf, String>) -> Result<SetDocs, (PathBuf, String)> {
        let mut docs = BTreeMap::new();
        for (path, text) in texts {
            let doc = text
                .parse::<DocumentMut>()
                .map_err(|e| (path.clone(), e.to_string().trim_end().to_owned()))?;
            docs.insert(path.clone(), doc);
        }
        Ok(SetDocs { docs })
    }

    /// The texts, as they would be written.
    pub fn texts(&self) -> BTreeMap<PathBuf, String> {
        self.docs
            .iter()
            .map(|(p, d)| (p.clone(), d.to_string()))
            .collect()
    }

    fn flags<'d>(doc: &'d mut DocumentMut, component: &str) -> Option<&'d mut Table> {
        doc.as_table_mut()
            .get_mut("components")?
            .as_table_mut()?
            .get_mut(component)?
            .as_table_mut()?
            .get_mut("flags")?
            .as_table_mut()
    }

    /// The file new flags of `component` go to: the one whose flags table for it is longest
    /// (the shared cluster file), else the base file.
    fn home_of(&mut self, component: &str) -> Option<PathBuf> {
        let mut best: Option<(usize, PathBuf)> = None;
        for (path, doc) in &mut self.docs {
            if let Some(t) = Self::flags(doc, component)
                && best.as_ref().is_none_or(|(n, _)| t.len() > *n)
            {
                best = Some((t.len(), path.clone()));
            }
        }
        best.map(|(_, p)| p)
    }

    /// The file every profile of the set starts from: the first that names the release.
    pub fn base(&self) -> Option<PathBuf> {
        self.docs
            .iter()
            .find(|(_, d)| d.as_table().contains_key("release"))
            .or_else(|| self.docs.iter().next())
            .map(|(p, _)| p.clone())
    }

    /// Sets the top-level `release` in every file that names one; returns them with the release
    /// each named before.
    pub fn set_release(&mut self, release: &str, note: &str) -> Vec<(PathBuf, String)> {
        let mut changed = Vec::new();
        for (path, doc) in &mut self.docs {
            let table = doc.as_table_mut();
            let Some(old) = table.get("release").and_then(value_text) else {
                continue;
            };
            if old == release {
                continue;
            }
            let prefix = drop_notes(&prefix_of(table, "release"), ": was v");
            table.insert("release", toml_edit::value(release));
            set_prefix(table, "release", format!("{prefix}{}", comment(note)));
            changed.push((path.clone(), old));
        }
        changed
    }

    /// Applies `edit`, leaving `note` as a comment where it changed something; returns the
    /// files it changed.
    pub fn apply(&mut self, edit: &Edit, note: &str) -> Vec<PathBuf> {
        let mut changed = Vec::new();
        match edit {
            Edit::RemoveFlag { component, flag } => {
                for (path, doc) in &mut self.docs {
                    if let Some(t) = Self::flags(doc, component)
                        && remove_key(t, flag, note)
                    {
                        changed.push(path.clone());
                    }
                }
            }
            Edit::SetFlag {
                component,
                flag,
                value,
                copy_of,
                ..
            } => {
                // The value as written where it is copied from: a template stays a template.
                let written = copy_of.as_deref().and_then(|c| {
                    let (c, f) = c.split_once(':')?;
                    self.docs
                        .values_mut()
                        .find_map(|d| Self::flags(d, c)?.get(f).cloned())
                });
                let item = || {
                    let mut item = written.clone().unwrap_or_else(|| value_item(value));
                    if let Some(v) = item.as_value_mut() {
                        v.decor_mut().clear();
                    }
                    item
                };
                for (path, doc) in &mut self.docs {
                    if let Some(t) = Self::flags(doc, component)
                        && t.contains_key(flag)
                    {
                        let prefix = prefix_of(t, flag);
                        t.insert(flag, item());
                        set_prefix(t, flag, format!("{prefix}{}", comment(note)));
                        changed.push(path.clone());
                    }
                }
                if changed.is_empty()
                    && let Some(home) = self.home_of(component)
                    && let Some(t) = self
                        .docs
                        .get_mut(&home)
                        .and_then(|d| Self::flags(d, component))
                {
                    t.insert(flag, item());
                    set_prefix(t, flag, comment(note));
                    changed.push(home);
                }
            }
            Edit::RenameFlag {
                component,
                from,
                to,
            } => {
                for (path, doc) in &mut self.docs {
                    if let Some(t) = Self::flags(doc, component)
                        && t.contains_key(from)
                    {
                        rename_key(t, from, to, note);
                        changed.push(path.clone());
                    }
                }
            }
            Edit::RemoveItem {
                component,
                flag,
                item,
            } => {
                for (path, doc) in &mut self.docs {
                    let Some(t) = Self::flags(doc, component) else {
                        continue;
                    };
                    let Some(list) = t.get(flag).and_then(value_text) else {
                        continue;
                    };
                    let kept: Vec<&str> = list
                        .split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty() && e != item)
                        .collect();
                    if kept.len() == list.split(',').filter(|e| !e.trim().is_empty()).count() {
                        continue;
                    }
                    if kept.is_empty() {
                        remove_key(t, flag, note);
                    } else {
                        let prefix = prefix_of(t, flag);
                        t.insert(flag, toml_edit::value(kept.join(",")));
                        set_prefix(t, flag, format!("{prefix}{}", comment(note)));
                    }
                    changed.push(path.clone());
                }
            }
        }
        changed
    }

    /// Leaves `note` above `--flag` of `component` where it is written, else above the
    /// component's flags, else at the top of the base file; returns the file.
    pub fn annotate(
        &mut self,
        component: Option<&str>,
        flag: Option<&str>,
        note: &str,
    ) -> Option<PathBuf> {
        let text = comment(note);
        if let (Some(c), Some(f)) = (component, flag) {
            for (path, doc) in &mut self.docs {
                if let Some(t) = Self::flags(doc, c)
                    && t.contains_key(f)
                {
                    let prefix = prefix_of(t, f);
                    if !prefix.contains(&text) {
                        set_prefix(t, f, format!("{prefix}{text}"));
                    }
                    return Some(path.clone());
                }
            }
        }
        if let Some(c) = component
            && let Some(home) = self.home_of(c)
            && let Some(t) = self.docs.get_mut(&home).and_then(|d| Self::flags(d, c))
        {
            let prefix = t
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_owned();
            if !prefix.contains(&text) {
                t.decor_mut().set_prefix(format!("{prefix}{text}"));
            }
            return Some(home);
        }
        self.annotate_top(note, "\u{0}")
    }

    /// Leaves `note` at the end of the base file's leading comments, in place of an earlier
    /// hop's note with the same `marker`.
    pub fn annotate_top(&mut self, note: &str, marker: &str) -> Option<PathBuf> {
        let base = self.base()?;
        let doc = self.docs.get_mut(&base)?;
        let text = comment(note);
        let table = doc.as_table_mut();
        let first = table.iter().next().map(|(k, _)| k.to_owned())?;
        let prefix = drop_notes(&prefix_of(table, &first), marker);
        if !prefix.contains(&text) {
            set_prefix(table, &first, format!("{prefix}{text}"));
        }
        Some(base)
    }

    /// The file names, for messages.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.docs.keys().map(PathBuf::as_path)
    }
}

/// Removes `key`, moving the comments above it, and `note`, to the key that follows (or, when
/// it was the last, to the key before it).
fn remove_key(table: &mut Table, key: &str, note: &str) -> bool {
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    let Some(i) = keys.iter().position(|k| k == key) else {
        return false;
    };
    let carried = format!("{}{}", prefix_of(table, key), comment(note));
    table.remove(key);
    match keys.get(i + 1) {
        Some(next) => {
            let prefix = prefix_of(table, next);
            set_prefix(table, next, format!("{carried}{prefix}"));
        }
        None => {
            // Comments after the last key would belong to the next table's header: keep them
            // with this table, above the key before.
            match keys[..i].last() {
                Some(prev) => {
                    let prefix = prefix_of(table, prev);
                    set_prefix(table, prev, format!("{prefix}{carried}"));
                }
                None => {
                    let prefix = table
                        .decor()
                        .prefix()
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .to_owned();
                    table.decor_mut().set_prefix(format!("{prefix}{carried}"));
                }
            }
        }
    }
    true
}

/// Renames `from` to `to` in place, keeping its value and position.
fn rename_key(table: &mut Table, from: &str, to: &str, note: &str) {
    let entries: Vec<(Key, Item)> = table
        .iter()
        .filter_map(|(k, v)| Some((table.key(k)?.clone(), v.clone())))
        .collect();
    table.clear();
    for (key, item) in entries {
        if key.get() == from {
            let prefix = key
                .leaf_decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_owned();
            let mut renamed = Key::new(to);
            renamed
                .leaf_decor_mut()
                .set_prefix(format!("{prefix}{}", comment(note)));
            table.insert_formatted(&renamed, item);
        } else {
            table.insert_formatted(&key, item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = "# the cluster\nimage = \"control-plane\"\nrelease = \"v1.14.2\"\n\n[components.kube-apiserver.flags]\n# about a\na = 1\n# about b\nb = \"x\"\nplugins = \"NodeRestriction,PodPreset\"\n# about last\nlast = true\n\n# next\n[components.kube-controller-manager.flags]\nexperimental-cluster-signing-duration = \"8760h\"\nkubeconfig = \"/k\"\n";

    fn docs() -> SetDocs {
        let mut texts = BTreeMap::new();
        texts.insert(PathBuf::from("/s/cluster.toml"), SET.to_owned());
        texts.insert(
            PathBuf::from("/s/master-1.toml"),
            "inherit = \"cluster.toml\"\n[host]\nname = \"master-1\"\n".to_owned(),
        );
        SetDocs::parse(&texts).unwrap()
    }

    fn text(d: &SetDocs) -> String {
        d.texts()[Path::new("/s/cluster.toml")].clone()
    }

    #[test]
    fn edits_keep_comments_and_order() {
        let mut d = docs();
        assert_eq!(d.base(), Some(PathBuf::from("/s/cluster.toml")));
        let changed = d.set_release("v1.15.12", "upgrade-plan v1.15.12: was v1.14.2");
        assert_eq!(
            changed,
            [(PathBuf::from("/s/cluster.toml"), "v1.14.2".to_owned())]
        );
        let api = |f: &str| Edit::RemoveFlag {
            component: "kube-apiserver".into(),
            flag: f.into(),
        };
        assert_eq!(
            d.apply(&api("b"), "removed --b"),
            [PathBuf::from("/s/cluster.toml")]
        );
        assert!(d.apply(&api("nope"), "x").is_empty());
        d.apply(
            &Edit::RemoveItem {
                component: "kube-apiserver".into(),
                flag: "plugins".into(),
                item: "PodPreset".into(),
            },
            "dropped PodPreset",
        );
        d.apply(
            &Edit::SetFlag {
                component: "kube-apiserver".into(),
                flag: "added".into(),
                value: "https://x".into(),
                decide: true,
                copy_of: None,
            },
            "added --added",
        );
        d.apply(
            &Edit::SetFlag {
                component: "kube-apiserver".into(),
                flag: "a".into(),
                value: "0".into(),
                decide: false,
                copy_of: None,
            },
            "set --a=0",
        );
        d.apply(
            &Edit::RenameFlag {
                component: "kube-controller-manager".into(),
                from: "experimental-cluster-signing-duration".into(),
                to: "cluster-signing-duration".into(),
            },
            "renamed",
        );
        d.apply(
            &Edit::SetFlag {
                component: "kube-apiserver".into(),
                flag: "copied".into(),
                value: "/rendered".into(),
                decide: false,
                copy_of: Some("kube-controller-manager:kubeconfig".into()),
            },
            "copied",
        );
        d.annotate(Some("kube-apiserver"), Some("last"), "DECIDE: look at last");
        assert_eq!(
            text(&d),
            "# the cluster\nimage = \"control-plane\"\n# upgrade-plan v1.15.12: was v1.14.2\nrelease = \"v1.15.12\"\n\n[components.kube-apiserver.flags]\n# about a\n# set --a=0\na = 0\n# about b\n# removed --b\n# dropped PodPreset\nplugins = \"NodeRestriction\"\n# about last\n# DECIDE: look at last\nlast = true\n# added --added\nadded = \"https://x\"\n# copied\ncopied = \"/k\"\n\n# next\n[components.kube-controller-manager.flags]\n# renamed\ncluster-signing-duration = \"8760h\"\nkubeconfig = \"/k\"\n"
        );
        // The result is still a profile file toml reads.
        toml::from_str::<toml::Table>(&text(&d)).unwrap();
        // Removing the last flag keeps its note with the table.
        let mut d = docs();
        d.apply(&api("last"), "removed --last");
        assert!(
            text(&d).contains("# about last\n# removed --last\nplugins"),
            "{}",
            text(&d)
        );
    }

    #[test]
    fn a_later_hop_replaces_the_notes_it_says_again() {
        let mut d = docs();
        d.set_release("v1.15.12", "upgrade-plan v1.15.12: was v1.14.2");
        d.annotate_top("upgrade-plan v1.15.12: the hop from v1.14.2 of a long path that wraps onto a second line of the comment, to see it go", "the hop from");
        d.set_release("v1.16.15", "upgrade-plan v1.16.15: was v1.15.12");
        d.annotate_top(
            "upgrade-plan v1.16.15: the hop from v1.15.12",
            "the hop from",
        );
        let t = text(&d);
        assert!(
            t.starts_with("# the cluster\n# upgrade-plan v1.16.15: the hop from v1.15.12\nimage"),
            "{t}"
        );
        assert!(
            t.contains("# upgrade-plan v1.16.15: was v1.15.12\nrelease = \"v1.16.15\""),
            "{t}"
        );
        assert!(!t.contains("v1.14.2"), "{t}");
    }

    #[test]
    fn comments_wrap() {
        let long = "word ".repeat(40);
        let c = comment(&long);
        assert!(
            c.lines().all(|l| l.len() <= WIDTH && l.starts_with('#')),
            "{c}"
        );
        assert!(c.lines().count() > 1);
    }
}
