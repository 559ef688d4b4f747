//! Shared helpers for kubemint's integration tests (`tests/it/`): a throwaway project with the
//! real profiles and images, and small tarball builders for hostile fixtures.
