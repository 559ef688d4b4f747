//! `bench`: builds a master from a synthetic full-size release and compares time and peak memory
//! with a shell baseline doing the same work (GNU tar, gzip -n, sha256sum), measured in the same run.

use crate::progress::Progress;
use std::path::Path;

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Fraction of the real member sizes (1.0 = the v1.14.0 sizes)
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Runs of each command; the report gives the median
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

pub fn run(
    _root: &Path,
    _xtask: &Path,
    _opts: &Options,
    _progress: &Progress,
) -> anyhow::Result<String> {
    anyhow::bail!("not yet")
}
