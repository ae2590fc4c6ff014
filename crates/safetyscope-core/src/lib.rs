//! # safetyscope-core
//!
//! The engine of safetyscope, a workplace-safety (安全生产) analytics library
//! on Apache DataFusion: the canonical data model, ingest with column
//! mapping and validation, the sample-data generator and the analyses.
//!
//! Every analysis is an options struct (serde, documented defaults) plus a
//! DataFusion plan over the canonical tables registered in a [`Dataset`],
//! returning a lazy `DataFrame`. The CLI, the Python module and the WASM
//! dashboard call the same functions.
//!
//! ```no_run
//! # async fn demo() -> safetyscope_core::Result<()> {
//! use safetyscope_core::{Dataset, OnTableError, heatmap};
//! let ds = Dataset::open(std::path::Path::new("sample"), None, OnTableError::Fail)?;
//! let df = heatmap::event_heatmap(&ds, &heatmap::HeatmapOptions::default()).await?;
//! let batches = df.collect().await?;
//! # Ok(()) }
//! ```

pub mod alerts;
#[cfg(feature = "native")]
pub mod bundle;
mod charts;
pub mod dataset;
pub mod density;
pub mod emerging;
pub mod error;
mod fasthash;
pub mod generate;
pub mod heatmap;
pub mod hotspots;
pub mod ingest;
#[cfg(feature = "native")]
pub mod job;
pub mod kpis;
pub mod mapping;
mod measure;
pub mod output;
pub mod patterns;
#[cfg(feature = "native")]
pub mod remote;
pub mod report;
pub mod risk;
pub mod rng;
mod scan;
pub mod schema;
pub mod stats;
#[cfg(feature = "native")]
pub mod store;
pub mod timeparse;
pub mod vocab;

pub use dataset::{Dataset, OnTableError, TableInput};
pub use error::{Error, ErrorKind, Result};
pub use mapping::Mapping;
pub use report::{Reason, TableReport, ValidationReport};
pub use schema::TableKind;

/// Re-exports of the engine crates at the versions safetyscope is built on.
pub mod deps {
    pub use arrow;
    pub use datafusion;
    pub use parquet;
}
