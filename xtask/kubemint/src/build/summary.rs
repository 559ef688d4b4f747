//! What `build-image` prints: per profile, each output with its size and sha256.

use crate::build::{Built, Status};
use std::fmt::Write as _;
use std::path::Path;

/// Bytes as a short human size: `512 B`, `4.0 KiB`, `48.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The summary table; paths are shown relative to `cwd` when they lie below it.
pub fn table(built: &[Built], cwd: &Path) -> String {
    let mut out = String::new();
    for b in built {
        let dir = b.dir.strip_prefix(cwd).unwrap_or(&b.dir);
        let status = match b.status {
            Status::Built => "",
            Status::UpToDate => ": up to date",
        };
        if b.sample {
            let _ = writeln!(
                out,
                "{} (SAMPLE release {}: stand-in binaries, not a real master) -> {}/{status}",
                b.profile,
                b.release,
                dir.display()
            );
        } else {
            let _ = writeln!(
                out,
                "{} (release {}) -> {}/{status}",
                b.profile,
                b.release,
                dir.display()
            );
        }
        for o in b.outputs.iter().chain(std::iter::once(&b.manifest)) {
            let _ = writeln!(
                out,
                "  {:<14} {:<32} {:>10}  sha256:{}",
                o.kind,
                o.path,
                human(o.size),
                o.sha256
            );
        }
        let _ = writeln!(out, "  {} entries in the tree", b.files);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(4096), "4.0 KiB");
        assert_eq!(human(50_659_328), "48.3 MiB");
    }
}
