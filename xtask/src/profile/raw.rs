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
