//! The options of `cargo xtask bench`, shared by the xtask binary (which shows them in `--help`
//! and passes them on) and the kubemint-bench binary (which runs the benchmark).

use std::path::PathBuf;

#[derive(Clone, Debug, clap::Args)]
pub struct BenchOptions {
    /// Fraction of the real member sizes (1.0 = the v1.14.0 sizes)
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Runs of each command; the report gives the median
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the temporary project goes (default: the system temp dir; needs ~4.5 GB at scale 1)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the temporary project, the logs and the last run's outputs
    #[arg(long)]
    pub keep: bool,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

impl BenchOptions {
    /// The options as command-line arguments, for the kubemint-bench binary.
    #[allow(dead_code)] // used by the xtask binary only
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--scale".into(),
            self.scale.to_string().into(),
            "--runs".into(),
            self.runs.to_string().into(),
        ];
        if let Some(d) = &self.dir {
            args.push("--dir".into());
            args.push(d.into());
        }
        if self.keep {
            args.push("--keep".into());
        }
        if self.json {
            args.push("--json".into());
        }
        args
    }
}
