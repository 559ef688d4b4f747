//! A plan as reviewable text: what `cargo xtask plan --text` prints and what the plan snapshots
//! in `tests/snapshots/plans/` hold. Every rendered file appears whole, so a change to a
//! template or a profile shows up in review as the lines it changes.

use super::Plan;
use std::fmt::Write as _;

impl Plan {
    /// The plan as text: a header, binaries, links, units, secrets, then each rendered file.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plan {}: image {}, release {} (Kubernetes {}){}{}, epoch {}, version {}, user {}",
            self.profile,
            self.image,
            self.release.name,
            self.release.version,
            self.base
                .as_deref()
                .map(|b| format!(", base {b}"))
                .unwrap_or_default(),
            if self.sample { ", SAMPLE" } else { "" },
            self.epoch,
            self.version,
            self.user
        );
        out.push_str("\nbinaries:\n");
        for b in &self.binaries {
            let _ = writeln!(out, "  {:04o} {} <- {}", b.mode, b.path, b.member);
        }
        out.push_str("\nlinks:\n");
        for l in &self.links {
            let _ = writeln!(out, "  {} -> {}", l.path, l.target);
        }
        out.push_str("\nunits enabled:\n");
        for u in &self.units {
            let _ = writeln!(out, "  {u}");
        }
        out.push_str("\nsecrets (delivered apart, never in the image):\n");
        for s in &self.secrets {
            let _ = writeln!(
                out,
                "  {} {}:{} {}{} used by {}",
                s.mode,
                s.owner,
                s.group,
                s.path,
                if s.optional { " (optional)" } else { "" },
                s.used_by.join(", ")
            );
        }
        out.push_str("\nfiles:\n");
        for f in &self.files {
            let _ = writeln!(
                out,
                "\n--- {} ({:04o}, from {})",
                f.path, f.mode, f.template
            );
            out.push_str(&f.content);
            if !f.content.ends_with('\n') {
                out.push_str("\n\\ no newline at end of file\n");
            }
        }
        out
    }
}
