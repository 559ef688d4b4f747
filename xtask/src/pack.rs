//! Packers: turn the one tree into artefacts. [`payload`] writes the reproducible tar.gz,
//! [`installer`] wraps it in a self-extracting POSIX sh installer.

pub mod installer;
pub mod payload;
