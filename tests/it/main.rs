//! kubemint's integration tests: one binary, one module per topic. They run the xtask binary
//! the way users do, on throwaway projects built from the repository's profiles and images,
//! and judge outputs with the tools users have (sha256sum, sh, shellcheck, systemd-analyze).

mod attest;
mod audit;
mod boot;
mod check;
mod cli;
mod control_plane;
mod devsecrets;
mod disk;
mod expect;
mod fetch;
mod front;
mod hostile;
mod installer;
mod oci;
mod profiles;
mod report;
mod reproducible;
mod rollout;
mod rollout_installer;
mod safety;
mod snapshots;
mod speed;
mod standins;
mod support;
mod unit;
mod upgrade;
mod xattr;
