//! wasm-bindgen exports of safetyscope for the static dashboard. Thin by
//! design: each export converts its arguments, calls `safetyscope-core` and
//! returns JSON text or bytes; errors become JavaScript `Error`s with the
//! core's message (table, column, row, value).

use std::sync::Arc;

use safetyscope_core::deps::arrow::array as arrow_batch;
use safetyscope_core::generate::{GenerateOptions, generate_parquet_bytes};
use safetyscope_core::output::{OutputFormat, encode};
use safetyscope_core::{Dataset, Mapping, TableKind};
use wasm_bindgen::prelude::*;

/// Run a DataFusion future to completion on a current-thread tokio runtime.
/// Plans over in-memory tables never wait on the outside world, so this
/// finishes synchronously; the runtime gives operators that spawn tasks
/// (unions, partition merges) a reactor to spawn them on.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds on wasm32")
        .block_on(fut)
}

fn batch_json(batch: &arrow_batch::RecordBatch) -> Result<Vec<u8>, JsError> {
    encode(
        std::slice::from_ref(batch),
        &batch.schema(),
        OutputFormat::Json,
    )
    .map_err(js)
}

fn rows_and_svg(rows: Vec<u8>, svg: String) -> Result<String, JsError> {
    let rows = String::from_utf8(rows).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(format!(
        "{{\"rows\":{rows},\"svg\":{}}}",
        serde_json::Value::String(svg)
    ))
}

fn js(e: safetyscope_core::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn parse<T: serde::de::DeserializeOwned + Default>(json: &str, what: &str) -> Result<T, JsError> {
    if json.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(json).map_err(|e| JsError::new(&format!("invalid {what}: {e}")))
}

/// Install a panic hook that reports panics on the console (once).
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_log(&format!("safetyscope panicked: {info}"));
    }));
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn web_log(s: &str);
}

/// The library version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Generated sample data: Parquet bytes per table plus the ground truth.
#[wasm_bindgen]
pub struct SampleFiles {
    files: Vec<(TableKind, Vec<u8>)>,
    truth: String,
}

#[wasm_bindgen]
impl SampleFiles {
    /// Table names, in the order of [`SampleFiles::bytes`].
    #[wasm_bindgen(js_name = tableNames)]
    pub fn table_names(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|(k, _)| k.name().to_string())
            .collect()
    }

    /// Parquet bytes of a table.
    pub fn bytes(&self, table: &str) -> Result<Vec<u8>, JsError> {
        self.files
            .iter()
            .find(|(k, _)| k.name() == table)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| JsError::new(&format!("no table `{table}`")))
    }

    /// Ground truth (JSON).
    #[wasm_bindgen(js_name = groundTruth)]
    pub fn ground_truth(&self) -> String {
        self.truth.clone()
    }
}

/// Generate the sample dataset in memory (options as JSON of `GenerateOptions`).
#[wasm_bindgen(js_name = generateSample)]
pub fn generate_sample(options: &str) -> Result<SampleFiles, JsError> {
    let o: GenerateOptions = parse(options, "generate options")?;
    let (files, truth) = generate_parquet_bytes(&o).map_err(js)?;
    Ok(SampleFiles {
        files,
        truth: serde_json::to_string(&truth).map_err(|e| JsError::new(&e.to_string()))?,
    })
}

/// A dataset loaded in the browser.
#[wasm_bindgen]
pub struct Session {
    ds: Arc<Dataset>,
}

#[wasm_bindgen]
impl Session {
    /// Load files: `tables[i]` is the canonical table of `names[i]` / `files[i]`
    /// (Parquet, CSV, NDJSON or Arrow IPC by extension); `mapping` is optional
    /// TOML text, `timezone` an optional IANA name.
    pub fn load(
        tables: Vec<String>,
        names: Vec<String>,
        files: Vec<js_sys::Uint8Array>,
        mapping: Option<String>,
        timezone: Option<String>,
    ) -> Result<Session, JsError> {
        if tables.len() != names.len() || names.len() != files.len() {
            return Err(JsError::new(
                "tables, names and files must have the same length",
            ));
        }
        let mapping = match mapping.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => {
                Some(Mapping::from_toml(text, "", "mapping").map_err(js)?)
            }
            _ => None,
        };
        let mut inputs = Vec::new();
        for ((t, n), f) in tables.iter().zip(names).zip(files) {
            let kind = TableKind::from_name(t)
                .ok_or_else(|| JsError::new(&format!("unknown table `{t}` (file {n})")))?;
            inputs.push((kind, n, bytes::Bytes::from(f.to_vec())));
        }
        // A dashboard session recomputes targets for many as-of dates.
        let ds = Dataset::from_bytes(timezone.as_deref(), inputs, mapping.as_ref())
            .map_err(js)?
            .keep_facts();
        Ok(Session { ds: Arc::new(ds) })
    }

    /// The validation report (JSON).
    pub fn validation(&self) -> String {
        serde_json::to_string(self.ds.report()).unwrap_or_else(|_| "{}".into())
    }

    /// The dataset timezone.
    pub fn timezone(&self) -> String {
        self.ds.timezone().to_string()
    }

    /// Run an analysis of the registry (`heatmap`, `risk`, `hotspots`,
    /// `density`, `emerging`, `patterns`, `peaks`, `trends`, `knox`, `kpis`,
    /// `targets`, `alerts`; see `registry()`) with its options as a JSON
    /// object; returns JSON `{ "rows": [...], "svg": "<svg…>" }` (an empty
    /// `svg` for results without a chart).
    pub fn run(&self, name: &str, options: &str) -> Result<String, JsError> {
        let options = match options.trim() {
            "" => serde_json::Map::new(),
            text => serde_json::from_str(text)
                .map_err(|e| JsError::new(&format!("invalid {name} options: {e}")))?,
        };
        let out = block_on(safetyscope_core::api::run(&self.ds, name, options)).map_err(js)?;
        let rows = encode(&out.batches, &out.schema, OutputFormat::Json).map_err(js)?;
        rows_and_svg(rows, out.chart.unwrap_or_default())
    }

    /// A named view of an analysis: `run` with the view parameter set.
    fn view(&self, name: &str, param: &str, value: &str, options: &str) -> Result<String, JsError> {
        let mut o: serde_json::Map<String, serde_json::Value> = match options.trim() {
            "" => serde_json::Map::new(),
            text => serde_json::from_str(text)
                .map_err(|e| JsError::new(&format!("invalid {name} options: {e}")))?,
        };
        o.insert(param.into(), value.into());
        self.run(name, &serde_json::Value::Object(o).to_string())
    }

    /// Events per cell: `run("heatmap", options)`.
    pub fn heatmap(&self, options: &str) -> Result<String, JsError> {
        self.run("heatmap", options)
    }

    /// The risk four-colour map: `run("risk", options)`.
    #[wasm_bindgen(js_name = riskMap)]
    pub fn risk_map(&self, options: &str) -> Result<String, JsError> {
        self.run("risk", options)
    }

    /// A kernel density raster: `run("density", options)`.
    pub fn density(&self, options: &str) -> Result<String, JsError> {
        self.run("density", options)
    }

    /// Emerging hot spots: `run("emerging", options)`.
    pub fn emerging(&self, options: &str) -> Result<String, JsError> {
        self.run("emerging", options)
    }

    /// A time-of-day pattern view (`profile`, `shifts`, `shift_events`,
    /// `trends`, `pareto`, `crosstab`, `pyramid`, `peaks`, `peak_cells`):
    /// `run("patterns", options)` with the view.
    pub fn patterns(&self, view: &str, options: &str) -> Result<String, JsError> {
        self.view("patterns", "view", view, options)
    }

    /// Peak tests in one pass: JSON `{ "cells": [...], "periods": [...],
    /// "svg": "<svg…>" }` (options as JSON of `PatternOptions`).
    pub fn peaks(&self, options: &str) -> Result<String, JsError> {
        use safetyscope_core::patterns::{PatternOptions, peaks_charted};
        let mut m: serde_json::Map<String, serde_json::Value> = match options.trim() {
            "" => serde_json::Map::new(),
            text => serde_json::from_str(text)
                .map_err(|e| JsError::new(&format!("invalid pattern options: {e}")))?,
        };
        let lang = safetyscope_core::api::chart_lang(&mut m).map_err(js)?;
        let o: PatternOptions = serde_json::from_value(serde_json::Value::Object(m))
            .map_err(|e| JsError::new(&format!("invalid pattern options: {e}")))?;
        let (cells, periods, svg) = block_on(peaks_charted(&self.ds, &o, lang)).map_err(js)?;
        let text = |b| String::from_utf8(batch_json(b)?).map_err(|e| JsError::new(&e.to_string()));
        Ok(format!(
            "{{\"cells\":{},\"periods\":{},\"svg\":{}}}",
            text(&cells)?,
            text(&periods)?,
            serde_json::Value::String(svg)
        ))
    }

    /// KPIs per scope and period: `run("kpis", options)`.
    pub fn kpis(&self, options: &str) -> Result<String, JsError> {
        self.run("kpis", options)
    }

    /// Targets as of a date: `run("targets", options)`.
    #[wasm_bindgen(js_name = trackTargets)]
    pub fn track_targets(&self, options: &str) -> Result<String, JsError> {
        self.run("targets", options)
    }

    /// A follow-up list (`all`, `overdue`, `repeats`, `intrusions`,
    /// `episodes`, `points`): `run("alerts", options)` with the list.
    pub fn alerts(&self, list: &str, options: &str) -> Result<String, JsError> {
        self.view("alerts", "list", list, options)
    }

    /// Getis-Ord Gi* hot spots: `run("hotspots", options)`.
    pub fn hotspots(&self, options: &str) -> Result<String, JsError> {
        self.run("hotspots", options)
    }
}

/// The registry of analyses (JSON): names, summaries, parameters and
/// options with their kinds, defaults and docs.
#[wasm_bindgen]
pub fn registry() -> String {
    safetyscope_core::api::registry_json().to_string()
}

/// The colours of the core's charts (JSON): risk levels, hot-spot classes,
/// target statuses and samples of the sequential ramp of counts.
#[wasm_bindgen]
pub fn palettes() -> String {
    safetyscope_core::api::palettes().to_string()
}
