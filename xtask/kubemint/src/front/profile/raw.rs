//! The profile TOML exactly as written: every key optional, no meaning yet. Unknown keys are
//! rejected by the loader, which deserializes through `serde_ignored` so that it sees every
//! unknown key at once (serde's `deny_unknown_fields` stops at the first); the keys a table may
//! hold come from these structs, never from a list kept beside them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct RawProfile {
    /// Another profile file (relative to this one) whose keys this one starts from.
    pub inherit: Option<String>,
    pub image: Option<String>,
    pub release: Option<String>,
    /// The base operating system of the bootable disk (a definition in `images/bases/`).
    pub base: Option<String>,
    pub epoch: Option<i64>,
    pub host: Option<RawHost>,
    pub cluster: Option<RawCluster>,
    pub user: Option<RawUser>,
    pub paths: Option<RawPaths>,
    pub components: Option<BTreeMap<String, RawComponent>>,
    pub rollout: Option<RawRollout>,
}

/// How a master takes a new version: where its updates come from, how long the health gate
/// waits.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RawRollout {
    /// Seconds the health gate waits for every component to answer after a change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_deadline: Option<i64>,
    /// Where systemd-sysupdate finds new versions: an https:// or http:// URL, or a directory
    /// on the master.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_source: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RawHost {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RawCluster {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd_servers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RawUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
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
pub struct RawComponent {
    /// Flag name (without `--`) to value, in file order (toml's `preserve_order`).
    pub flags: Option<toml::Table>,
}

/// A key's dotted path (`host.adress`) from where serde_ignored saw it (which marks each
/// `Option` it passed through with a `?`).
pub fn key_path(path: &serde_ignored::Path<'_>) -> String {
    let text = path.to_string();
    text.split('.')
        .filter(|s| *s != "?")
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys the table at dotted `path` may hold, in the order the structs declare them: asked of
/// serde itself. Empty for a table that holds any key (a component's flags).
pub fn known_keys(path: &str) -> &'static [&'static str] {
    match path.split('.').collect::<Vec<_>>().as_slice() {
        [""] => fields::<RawProfile>(),
        ["host"] => fields::<RawHost>(),
        ["cluster"] => fields::<RawCluster>(),
        ["user"] => fields::<RawUser>(),
        ["paths"] => fields::<RawPaths>(),
        ["components", _] => fields::<RawComponent>(),
        ["rollout"] => fields::<RawRollout>(),
        _ => &[],
    }
}

/// The field names serde's derive gives `T`: a deserializer that only records what
/// `deserialize_struct` is asked for.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Recorded(&'static [&'static str]);
    impl std::fmt::Display for Recorded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Recorded {}
    impl serde::de::Error for Recorded {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Recorded(&[])
        }
    }
    struct Recorder;
    impl<'de> serde::Deserializer<'de> for Recorder {
        type Error = Recorded;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Recorded> {
            Err(Recorded(&[]))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Recorded> {
            Err(Recorded(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    match T::deserialize(Recorder) {
        Err(Recorded(fields)) => fields,
        Ok(_) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_come_from_the_structs() {
        assert_eq!(
            known_keys(""),
            [
                "inherit",
                "image",
                "release",
                "base",
                "epoch",
                "host",
                "cluster",
                "user",
                "paths",
                "components",
                "rollout"
            ]
        );
        assert_eq!(known_keys("host"), ["name", "address"]);
        assert_eq!(known_keys("components.kube-apiserver"), ["flags"]);
        assert!(known_keys("components.kube-apiserver.flags").is_empty());
    }

    #[test]
    fn unknown_keys_are_all_seen() {
        let table: toml::Table = toml::from_str(
            "bogus = 1\n[host]\nadress = \"x\"\n[components.a]\nflag = {}\n[components.a.flags]\nanything = 1\n",
        )
        .unwrap();
        let mut unknown = Vec::new();
        let raw: RawProfile =
            serde_ignored::deserialize(toml::Value::Table(table), |p| unknown.push(key_path(&p)))
                .unwrap();
        unknown.sort();
        assert_eq!(unknown, ["bogus", "components.a.flag", "host.adress"]);
        assert!(
            raw.components.unwrap()["a"]
                .flags
                .as_ref()
                .unwrap()
                .contains_key("anything")
        );
    }
}
