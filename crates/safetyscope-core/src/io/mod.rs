//! Reading and writing: file formats, sources (files, globs, object
//! stores), mapping files, ingest with validation, and result outputs.
//! Imports `util` and `model`.

#[cfg(feature = "native")]
pub mod confine;
pub(crate) mod convert;
pub mod dedup;
pub mod format;
pub mod grid;
pub mod ingest;
pub mod inputs;
pub mod loader;
pub mod mapping;
pub mod output;
#[cfg(feature = "native")]
pub mod remote;
pub mod source;
