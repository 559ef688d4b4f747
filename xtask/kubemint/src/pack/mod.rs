//! Packers: turn the one tree into artefacts. [`payload`] writes the reproducible tar.gz,
//! [`oci`] the OCI image layout and archive, [`squashfs`] the sysext and confext, [`disk`] the GPT disk image,
//! [`installer`] wraps it in a self-extracting POSIX sh installer.

pub mod boot;
pub mod deflate;
pub mod disk;
pub mod esp;
pub mod installer;
pub mod oci;
pub mod payload;
pub mod squashfs;
