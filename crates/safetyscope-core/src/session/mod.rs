//! A dataset in a DataFusion session: the session and its memory pool, the
//! dataset's tables, stores of canonical files, windows and the scans the
//! analyses count over, and the aggregate functions of safetyscope's own
//! operators. Imports `util`, `model` and `io`.

pub mod context;
pub mod dataset;
pub mod episodes;
#[cfg(feature = "native")]
pub mod ingest_plan;
pub(crate) mod points;
pub(crate) mod scan;
#[cfg(feature = "native")]
pub mod store;
pub mod window;
