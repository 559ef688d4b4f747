//! kubemint's generator as a library: every pipeline stage is a folder whose modules tests call
//! directly. Data flows one way:
//!
//! 1. [`front`]: profiles and an image definition become validated plans (pure data), checked
//!    against the release they target, before anything is read or written.
//! 2. [`inputs`]: the pinned release tarball, located in the store (or a generated sample),
//!    verified and streamed out once.
//! 3. [`tree`]: one sorted in-memory file tree per master.
//! 4. [`pack`]: payload tar.gz, installer, OCI image, sysext, confext and disk image.
//! 5. [`manifest`]: the canonical description of the tree, its inputs and its outputs.
//!
//! [`report`] renders manifests as one static HTML page, masters side by side.
//!
//! [`build`] runs the stages for `build-image`; [`upgrade`] plans `upgrade-plan`'s hops, one
//! minor at a time, through the front end; [`util`] holds what several stages share (digests,
//! canonical JSON, the epoch, progress bars).

pub mod attest;
pub mod audit;
pub mod build;
pub mod front;
pub mod inputs;
pub mod manifest;
pub mod pack;
pub mod report;
pub mod tree;
pub mod upgrade;
pub mod util;

/// The generator's name and version, as recorded in every manifest.
pub const GENERATOR: &str = "kubemint";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision this library was built from (`build.rs`), or `unknown`.
pub const REVISION: &str = env!("KUBEMINT_REVISION");

// The library's paths from before the stages got folders, kept so that code written against
// them (`kubemint::hash`, `kubemint::sample`, …) keeps building.
pub use build::summary;
pub use front::{check, image, plan, profile, render, secrets};
pub use inputs::{extract, fetch, lock, pin, sample};
pub use util::{canonical, epoch, hash, progress};
