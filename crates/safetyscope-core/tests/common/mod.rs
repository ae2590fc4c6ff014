//! Helpers shared by the integration tests.
#![allow(dead_code)]

use arrow::array::{RecordBatch, StringArray};
use safetyscope_core::Dataset;
use safetyscope_core::generate::{GenerateOptions, GroundTruth, generate_parquet_bytes};

/// Generate a sample in memory and load it.
pub fn load(o: &GenerateOptions) -> (Dataset, GroundTruth) {
    let (files, truth) = generate_parquet_bytes(o).unwrap();
    let files = files
        .into_iter()
        .map(|(k, v)| (k, format!("{k}.parquet"), bytes::Bytes::from(v)))
        .collect();
    (
        Dataset::from_bytes(Some(&o.timezone), files, None).unwrap(),
        truth,
    )
}

/// Run a future to completion.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A text column of a result.
pub fn text(b: &RecordBatch, name: &str) -> StringArray {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .clone()
}
