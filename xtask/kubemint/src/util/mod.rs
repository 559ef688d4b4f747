//! What several stages share: digests, canonical JSON, the epoch and progress bars.

pub mod canonical;
pub mod epoch;
pub mod hash;
pub mod progress;
