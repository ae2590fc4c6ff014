//! Reading and writing: file formats, sources (files, globs, object
//! stores), mapping files, ingest with validation, and result outputs.
//! Imports `util` and `model`.

#[cfg(feature = "native")]
pub mod confine;
pub(crate) mod convert;
pub mod dedup;
#[cfg(feature = "native")]
pub mod draft;
pub mod format;
pub mod ingest;
pub mod inputs;
pub mod loader;
pub mod mapping;
pub mod output;
pub mod plan;
pub mod plan_files;
#[cfg(feature = "native")]
pub mod remote;
pub mod source;
