//! The profile TOML exactly as written: every key optional, unknown keys rejected, no meaning yet.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// Another profile file (relative to this one) whose keys this one starts from.
    pub inherit: Option<String>,
    pub image: Option<String>,
    pub release: Option<String>,
    pub epoch: Option<i64>,
    pub host: Option<RawHost>,
    pub cluster: Option<RawCluster>,
    pub user: Option<RawUser>,
    pub paths: Option<RawPaths>,
    pub components: Option<BTreeMap<String, RawComponent>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_servers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    /// Flag name (without `--`) to value, in file order (toml's `preserve_order`).
    pub flags: Option<toml::Table>,
}

/// The keys each table of a profile may hold (`*` stands for any component name). Kept next to
/// the structs above; a test checks that every key listed here deserializes.
const KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "inherit",
            "image",
            "release",
            "epoch",
            "host",
            "cluster",
            "user",
            "paths",
            "components",
        ],
    ),
    ("host", &["name", "address"]),
    (
        "cluster",
        &["service_cidr", "node_port_range", "etcd_servers"],
    ),
    ("user", &["name"]),
    (
        "paths",
        &["bin_dir", "install_dir", "log_dir", "conf_dir", "cert_dir"],
    ),
    ("components.*", &["flags"]),
];

/// Removes from `table` (found at dotted `prefix`) every key a profile cannot hold, calling
/// `report` with each one's dotted path and the keys allowed there. Flag tables hold any key.
pub fn remove_unknown(
    table: &mut toml::Table,
    prefix: &str,
    report: &mut dyn FnMut(&str, &[&str]),
) {
    let pattern = match prefix.split_once('.') {
        Some(("components", rest)) if !rest.contains('.') => "components.*".to_owned(),
        Some(("components", _)) => return,
        _ => prefix.to_owned(),
    };
    let Some((_, allowed)) = KEYS.iter().find(|(p, _)| *p == pattern) else {
        if prefix == "components" {
            for (name, value) in table.iter_mut() {
                if let toml::Value::Table(t) = value {
                    remove_unknown(t, &format!("components.{name}"), report);
                }
            }
        }
        return;
    };
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if !allowed.contains(&key.as_str()) {
            report(&path, allowed);
            table.remove(&key);
        } else if let Some(toml::Value::Table(t)) = table.get_mut(&key) {
            remove_unknown(t, &path, report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_key_deserializes() {
        let text = r#"
inherit = "a.toml"
image = "x"
release = "v1.14.2"
epoch = 1
[host]
name = "m"
address = "10.0.0.1"
[cluster]
service_cidr = "10.0.0.0/24"
node_port_range = "1-2"
etcd_servers = []
[user]
name = "k8s"
[paths]
bin_dir = "/usr/bin"
install_dir = "/d"
log_dir = "/l"
conf_dir = "/etc/k"
cert_dir = "/etc/s"
[components.kube-apiserver.flags]
v = 2
"#;
        let mut table: toml::Table = toml::from_str(text).unwrap();
        let mut unknown = Vec::new();
        remove_unknown(&mut table, "", &mut |k, _| unknown.push(k.to_owned()));
        assert!(unknown.is_empty(), "{unknown:?}");
        let listed: usize = KEYS.iter().map(|(_, keys)| keys.len()).sum();
        assert_eq!(listed, 9 + 2 + 3 + 1 + 5 + 1);
        toml::Value::Table(table).try_into::<RawProfile>().unwrap();
    }

    #[test]
    fn unknown_keys_are_reported_and_dropped() {
        let mut table: toml::Table = toml::from_str("bogus = 1\n[host]\nadress = \"x\"\n[components.a]\nflag = {}\n[components.a.flags]\nanything = 1\n").unwrap();
        let mut unknown = Vec::new();
        remove_unknown(&mut table, "", &mut |k, _| unknown.push(k.to_owned()));
        assert_eq!(unknown.len(), 3, "{unknown:?}");
        assert_eq!(unknown[0], "bogus");
        assert!(unknown.iter().any(|k| k == "host.adress"));
        assert!(unknown.iter().any(|k| k == "components.a.flag"));
        assert!(table["components"]["a"]["flags"].get("anything").is_some());
    }
}
