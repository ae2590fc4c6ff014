//! The lowest layer: errors, hashing, random numbers, statistics and typed
//! access to Arrow columns. Imports nothing else of the crate.

pub mod columns;
pub mod error;
pub mod fasthash;
pub mod rng;
pub mod stats;
