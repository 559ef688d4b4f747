//! kubemint's generator as a library: every pipeline stage is a module that tests call directly.
//!
//! The pipeline, in the order data flows through it:
//! [`profile`] (TOML in, validated model out) → [`image`] (what an image holds) → [`plan`]
//! (pure data: what to extract, render and link) → [`inputs`] (hash-verified release tarballs)
//! → [`extract`] (members streamed out of the tarball) and [`render`] (templates) → [`tree`]
//! (one sorted in-memory file tree) → [`pack`] (payload tar.gz, installer, OCI image, sysext,
//! confext, disk image) → [`manifest`].
//! [`check`] vets every plan against its release before any input is read. [`build`] runs the
//! pipeline for `build-image`; [`fetch`], [`pin`], [`sample`] and [`bench`] back the other
//! commands.

pub mod bench;
pub mod build;
pub mod canonical;
pub mod check;
pub mod epoch;
pub mod extract;
pub mod fetch;
pub mod hash;
pub mod image;
pub mod inputs;
pub mod lock;
pub mod manifest;
pub mod pack;
pub mod pin;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod render;
pub mod sample;
pub mod secrets;
pub mod summary;
pub mod systemd;
pub mod tree;

/// The generator's name and version, as recorded in every manifest.
pub const GENERATOR: &str = "kubemint";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
