//! The cluster-level steps of a hop (`steps.toml`, embedded): what no image can do by itself,
//! each with its source.

use crate::front::check::Minor;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The table's text, as shipped in the binary.
pub const TABLE: &str = include_str!("steps.toml");

/// When in a hop a step is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    Before,
    During,
    After,
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            When::Before => "before",
            When::During => "during",
            When::After => "after",
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    minor: Option<Minor>,
    #[serde(default)]
    every: bool,
    when: When,
    step: String,
    source: String,
    #[serde(default)]
    unverified: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Etcd {
    minor: Minor,
    version: String,
    source: String,
    #[serde(default)]
    unverified: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    step: Vec<RawStep>,
    #[serde(default)]
    etcd: Vec<Etcd>,
}

/// One step of a hop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterStep {
    pub when: When,
    pub step: String,
    pub source: String,
    /// A hypothesis, to check before relying on it.
    pub unverified: bool,
}

/// The parsed table.
#[derive(Debug)]
pub struct Steps {
    steps: Vec<RawStep>,
    etcd: Vec<Etcd>,
}

impl Steps {
    /// Parses and validates: every step has a source and either a minor or `every`; etcd rows
    /// in order.
    pub fn parse(text: &str) -> Result<Steps, String> {
        let raw: RawTable = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        for (i, s) in raw.step.iter().enumerate() {
            if s.source.trim().is_empty() {
                problems.push(format!("step[{i}]: no source"));
            }
            if s.every == s.minor.is_some() {
                problems.push(format!("step[{i}]: set either minor or every = true"));
            }
        }
        for (i, e) in raw.etcd.iter().enumerate() {
            if e.source.trim().is_empty() {
                problems.push(format!("etcd[{i}]: no source"));
            }
            if i > 0 && raw.etcd[i - 1].minor >= e.minor {
                problems.push(format!("etcd[{i}]: not after the row before"));
            }
        }
        if problems.is_empty() {
            Ok(Steps {
                steps: raw.step,
                etcd: raw.etcd,
            })
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The etcd kubeadm pairs with `minor`: the nearest row at or before it.
    fn etcd_at(&self, minor: Minor) -> Option<&Etcd> {
        self.etcd.iter().rev().find(|e| e.minor <= minor)
    }

    /// The steps of the hop from `from` to `to` (one minor), ordered before, during, after.
    pub fn of_hop(&self, from: Minor, to: Minor) -> Vec<ClusterStep> {
        let mut out: Vec<ClusterStep> = self
            .steps
            .iter()
            .filter(|s| s.every || s.minor == Some(to))
            .map(|s| ClusterStep {
                when: s.when,
                step: s.step.clone(),
                source: s.source.clone(),
                unverified: s.unverified,
            })
            .collect();
        if let (Some(old), Some(new)) = (self.etcd_at(from), self.etcd_at(to)) {
            let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
            if minor(&old.version) != minor(&new.version) {
                out.push(ClusterStep {
                    when: When::Before,
                    step: format!(
                        "etcd (cluster.etcd_servers, outside these images): kubeadm pairs {to} with etcd {} where {from} had {}; bring etcd to {} or newer first, one etcd minor at a time",
                        new.version,
                        old.version,
                        minor(&new.version)
                    ),
                    source: new.source.clone(),
                    unverified: new.unverified || old.unverified,
                });
            }
        }
        out.sort_by_key(|s| s.when);
        out
    }
}

/// The embedded table. It is validated by the tests; a broken one is a bug of this binary.
pub fn table() -> &'static Steps {
    static CELL: OnceLock<Steps> = OnceLock::new();
    CELL.get_or_init(|| match Steps::parse(TABLE) {
        Ok(t) => t,
        Err(e) => panic!("xtask/kubemint/src/upgrade/steps.toml is invalid:\n{e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_is_valid_and_names_its_sources() {
        let t = Steps::parse(TABLE).unwrap();
        assert!(t.steps.iter().all(|s| !s.source.trim().is_empty()));
        assert!(
            Steps::parse("[[step]]\nwhen = \"before\"\nstep = \"x\"\nsource = \"\"\n").is_err()
        );
    }

    #[test]
    fn hops_get_their_steps() {
        let t = table();
        let steps = |a: u32| t.of_hop(Minor(a), Minor(a + 1));
        // Every hop: masters one at a time, kubelets after.
        for a in 14..33 {
            assert!(steps(a).iter().any(|s| s.when == When::During), "v1.{a}");
        }
        // The lock moves to endpointsleases at v1.17 and to leases at v1.20.
        assert!(steps(16).iter().any(|s| s.step.contains("endpointsleases")));
        assert!(
            steps(19)
                .iter()
                .any(|s| s.when == When::Before && s.step.contains("Lease only"))
        );
        // etcd moves a minor at v1.17 and v1.22.
        let etcd = |a: u32| steps(a).iter().any(|s| s.step.starts_with("etcd"));
        assert!(etcd(16) && etcd(21));
        assert!(!etcd(14) && !etcd(17));
        let first = steps(16);
        let order: Vec<When> = first.iter().map(|s| s.when).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
    }
}
