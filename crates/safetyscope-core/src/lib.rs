//! # safetyscope-core
//!
//! The engine of safetyscope, a workplace-safety (安全生产) analytics library
//! on Apache DataFusion: the canonical data model, ingest with column
//! mapping and validation, the sample-data generator and the analyses.
//!
//! Every analysis is an options struct (serde, documented defaults) plus a
//! DataFusion plan over the canonical tables registered in a [`Dataset`].
//! The registry of analyses ([`api`]) declares each once; the CLI, the
//! Python module, the WASM dashboard and job files are made from it.
//!
//! The modules form layers, lowest first: [`util`], [`model`], [`io`],
//! [`session`], `charts`, [`analysis`], [`api`], then [`generate`], `bundle`
//! and `job`. A module imports only from its own layer and those below
//! (`scripts/check-layers.py` checks it in `make test`; docs/architecture.md).
//!
//! ```no_run
//! # async fn demo() -> safetyscope_core::Result<()> {
//! use safetyscope_core::{Dataset, OnTableError, heatmap};
//! let ds = Dataset::open(std::path::Path::new("sample"), None, OnTableError::Fail)?;
//! let df = heatmap::event_heatmap(&ds, &heatmap::HeatmapOptions::default()).await?;
//! let batches = df.collect().await?;
//! # Ok(()) }
//! ```

// The layers (see the crate docs for their order).
pub mod analysis;
pub mod api;
#[cfg(feature = "native")]
pub mod bundle;
mod charts;
pub mod generate;
pub mod io;
#[cfg(feature = "native")]
pub mod job;
pub mod model;
pub mod session;
pub mod util;

// The public paths of the analyses and the data model, one module per
// concern, as the bindings and users name them.

/// Follow-up lists (see [`analysis::followup`]).
pub mod alerts {
    pub use crate::analysis::followup::alerts::*;
    pub use crate::analysis::followup::episodes::{alarm_episodes, fence_intrusions};
    pub use crate::analysis::followup::options::{AlertOptions, Ladder, PointsRules, Step};
}
/// The dataset (see [`session::dataset`]).
pub mod dataset {
    pub use crate::io::inputs::{OnTableError, TableInput};
    pub use crate::session::context::{new_context, set_memory_limit};
    pub use crate::session::dataset::*;
}
pub use analysis::forecast;
pub use analysis::spatial::{density, emerging, hotspots};
/// Event heat maps (see [`analysis::spatial::heatmap`]).
pub mod heatmap {
    pub use crate::analysis::spatial::heatmap::*;
    pub use crate::model::options::EventKind;
}
/// Safety KPIs and targets (see [`analysis::kpis`]).
pub mod kpis {
    pub use crate::analysis::kpis::catalogue::*;
    pub use crate::analysis::kpis::compute::*;
    pub use crate::analysis::kpis::scope::{Measure, Period, Scope};
    pub use crate::analysis::kpis::targets::*;
    pub use crate::util::stats::quantile;
}
/// Time-of-day patterns (see [`analysis::temporal::patterns`]).
pub mod patterns {
    pub use crate::analysis::temporal::patterns::*;
    pub use crate::model::roster::{Roster, Shift, default_shifts};
}
/// The risk four-colour map (see [`analysis::spatial::risk`]).
pub mod risk {
    pub use crate::analysis::spatial::risk::*;
    pub use crate::model::options::{RiskWeights, RollUp};
}
/// Ingest (see [`io::ingest`] and [`io::source`]).
pub mod ingest {
    pub use crate::io::format::{Format, resolve_encoding};
    pub use crate::io::ingest::*;
    #[cfg(feature = "native")]
    pub use crate::io::source::discover;
    pub use crate::io::source::{ReadOptions, Source, SourceData, read_source, source_rows};
}
#[cfg(feature = "native")]
pub use io::confine;
#[cfg(feature = "native")]
pub use io::remote;
pub use io::{mapping, output};
pub use model::{report, schema, time as timeparse, vocab};
#[cfg(feature = "native")]
pub use session::ingest_plan;
#[cfg(feature = "native")]
pub use session::store;
pub use util::{error, rng, stats};

pub use io::inputs::{OnTableError, TableInput};
pub use io::mapping::Mapping;
pub use model::report::{Reason, TableReport, ValidationReport};
pub use model::schema::TableKind;
pub use session::dataset::Dataset;
pub use util::error::{Error, ErrorKind, Result};

/// safetyscope's aggregate functions: the episodes (`fence_episodes`,
/// `alarm_episodes`), the KPI meter (`kpi_meter`), the kernel density
/// raster (`kde_raster`) and the Knox test (`knox_test`). Every session that
/// runs safetyscope's plans must know them: a Ballista scheduler's and
/// executors' included. A local session registers the episodes (so `sql`
/// can call them); the KPI plans carry the meter themselves.
pub fn udafs() -> Vec<std::sync::Arc<datafusion::logical_expr::AggregateUDF>> {
    let mut all = session::episodes::udafs();
    all.push(analysis::kpis::meter::udaf());
    all.push(analysis::spatial::density::udaf());
    all.push(analysis::temporal::knox::udaf());
    all
}

/// Re-exports of the engine crates at the versions safetyscope is built on.
pub mod deps {
    pub use arrow;
    pub use datafusion;
    pub use parquet;
}
