//! Declarative batch jobs: one TOML file names the dataset, the as-of date,
//! the analyses with their options and the outputs. A run loads the dataset
//! once, computes every analysis, writes every output atomically (same
//! inputs → byte-identical files) and returns a summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, OnTableError};
use crate::error::{Error, Result};
use crate::output::{OutputFormat, encode, write_atomic, write_chart};

/// A job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The dataset: a directory or a mapping file, relative to the job file.
    pub data: PathBuf,
    /// The dataset timezone (overrides the mapping).
    #[serde(default)]
    pub timezone: Option<String>,
    /// "Now" for targets and alerts (local date; default: each analysis's own).
    #[serde(default)]
    pub as_of: Option<String>,
    /// Output directory, relative to the job file.
    pub out: PathBuf,
    /// The analyses, in order.
    #[serde(rename = "analysis")]
    pub analyses: Vec<JobAnalysis>,
}

/// One analysis of a job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobAnalysis {
    /// Output base name (unique in the job): `<out>/<name>.<format>`.
    pub name: String,
    /// `heatmap`, `risk`, `hotspots`, `emerging`, `density`, `patterns`
    /// (with `view`), `peaks`, `trends`, `kpis`, `targets`, `alerts` (with
    /// `list`).
    pub kind: String,
    /// The analysis's options: the fields of its options struct.
    #[serde(default)]
    pub options: toml::Table,
    /// Result formats: `parquet`, `csv`, `json`, `ndjson` (default parquet).
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    /// Chart formats: `svg`, `png` (none by default).
    #[serde(default)]
    pub charts: Vec<String>,
}

fn default_formats() -> Vec<String> {
    vec!["parquet".into()]
}

/// One file a run wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// The path.
    pub path: PathBuf,
    /// Result rows (0 for charts).
    pub rows: usize,
    /// Bytes written.
    pub bytes: usize,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The dataset read.
    pub data: PathBuf,
    /// Rows read / accepted / rejected per table.
    pub tables: Vec<(String, u64, u64, u64)>,
    /// Files written, in order.
    pub outputs: Vec<Written>,
    /// Seconds per stage (`load`, then one per analysis).
    pub stages: Vec<(String, f64)>,
}

/// A progress event of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The stage (`load`, an analysis name).
    pub stage: String,
    /// What happened.
    pub message: String,
}

impl Job {
    /// Parse a job file's text; errors name the file and line.
    pub fn parse(text: &str, label: &str) -> Result<Job> {
        let job: Job = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            Error::option(
                "job",
                format!(
                    "{label}{}: {}",
                    line.map(|l| format!(" line {l}")).unwrap_or_default(),
                    e.message()
                ),
            )
        })?;
        let mut names = std::collections::BTreeSet::new();
        for a in &job.analyses {
            if !names.insert(a.name.as_str()) {
                return Err(Error::option(
                    "job",
                    format!("{label}: analysis name `{}` is used twice", a.name),
                ));
            }
            if a.name.is_empty() || a.name.contains(['/', '\\']) || a.name.starts_with('.') {
                return Err(Error::option(
                    "job",
                    format!("{label}: `{}` is not a file base name", a.name),
                ));
            }
            for f in &a.formats {
                OutputFormat::from_path(Path::new(&format!("x.{f}"))).map_err(|_| {
                    Error::option(
                        "job",
                        format!("{label}: analysis `{}`: unknown format `{f}`", a.name),
                    )
                })?;
            }
            for c in &a.charts {
                if c != "svg" && c != "png" {
                    return Err(Error::option(
                        "job",
                        format!(
                            "{label}: analysis `{}`: charts are svg or png, not `{c}`",
                            a.name
                        ),
                    ));
                }
            }
        }
        Ok(job)
    }
}

fn options<T: serde::de::DeserializeOwned>(
    a: &JobAnalysis,
    extra: &[(&str, Option<&str>)],
) -> Result<T> {
    let mut t = a.options.clone();
    for (k, v) in extra {
        if let Some(v) = v
            && !t.contains_key(*k)
        {
            t.insert((*k).to_string(), toml::Value::String((*v).to_string()));
        }
    }
    toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| {
            Error::option(
                format!("analysis `{}` options", a.name),
                e.message().to_string(),
            )
        })
}

/// Remove a key (e.g. `view`, `list`) from the options, as text.
fn take(a: &mut JobAnalysis, key: &str, default: &str) -> Result<String> {
    match a.options.remove(key) {
        None => Ok(default.to_string()),
        Some(toml::Value::String(s)) => Ok(s),
        Some(other) => Err(Error::option(
            format!("analysis `{}` options", a.name),
            format!("`{key}` must be text, got {other}"),
        )),
    }
}

/// Compute one analysis: its result and chart.
async fn compute(
    ds: &Dataset,
    a: &JobAnalysis,
    as_of: Option<&str>,
) -> Result<(RecordBatch, Option<String>)> {
    use crate::patterns::{PatternView, run_view};
    let mut a = a.clone();
    Ok(match a.kind.as_str() {
        "heatmap" => {
            let o: crate::heatmap::HeatmapOptions = options(&a, &[])?;
            let df = crate::heatmap::event_heatmap(ds, &o).await?;
            let schema = df.schema().inner().clone();
            let batches = df.collect().await?;
            let svg = crate::heatmap::heatmap_chart(&batches, &o)?;
            (arrow::compute::concat_batches(&schema, &batches)?, svg)
        }
        "risk" => {
            let o: crate::risk::RiskOptions = options(&a, &[])?;
            let b = crate::risk::risk_batch(ds, &o).await?;
            let svg = crate::risk::risk_chart(&b, &o)?;
            (b, svg)
        }
        "hotspots" => {
            let o: crate::hotspots::HotspotOptions = options(&a, &[])?;
            let b = crate::hotspots::hotspots_batch(ds, &o).await?;
            let svg =
                crate::hotspots::hotspots_svg(&b, o.site.as_deref(), "Hot spots (Getis-Ord Gi*)")?;
            (b, Some(svg))
        }
        "emerging" => {
            let o: crate::emerging::EmergingOptions = options(&a, &[])?;
            let b = crate::emerging::emerging_batch(ds, &o).await?;
            let svg = crate::emerging::emerging_svg(&b, o.site.as_deref(), "Emerging hot spots")?;
            (b, Some(svg))
        }
        "density" => {
            let o: crate::density::DensityOptions = options(&a, &[])?;
            let b = crate::density::density_batch(ds, &o).await?;
            let svg = crate::density::density_svg(&b, "Kernel density")?;
            (b, Some(svg))
        }
        "patterns" | "peaks" | "trends" => {
            let default = if a.kind == "patterns" {
                "profile".to_string()
            } else {
                a.kind.clone()
            };
            let view = PatternView::parse(&take(&mut a, "view", &default)?)?;
            run_view(ds, view, &options(&a, &[])?).await?
        }
        "kpis" => {
            let o: crate::kpis::KpiOptions = options(&a, &[("as_of", as_of)])?;
            (crate::kpis::kpis(ds, &o).await?, None)
        }
        "targets" => {
            let o: crate::kpis::TargetOptions = options(&a, &[("as_of", as_of)])?;
            let b = crate::kpis::track_targets(ds, &o).await?;
            let svg = crate::kpis::targets_svg(&b, "Targets")?;
            (b, Some(svg))
        }
        "alerts" => {
            let view = crate::alerts::AlertView::parse(&take(&mut a, "list", "all")?)?;
            let o: crate::alerts::AlertOptions = options(&a, &[("as_of", as_of)])?;
            crate::alerts::run_view(ds, view, &o).await?
        }
        other => {
            return Err(Error::option(
                format!("analysis `{}`", a.name),
                format!(
                    "unknown kind `{other}` (heatmap, risk, hotspots, emerging, density, patterns, peaks, trends, kpis, targets, alerts)"
                ),
            ));
        }
    })
}

/// Run a job whose relative paths are resolved against `base`; `log`
/// receives progress events.
pub async fn run(job: &Job, base: &Path, log: &mut dyn FnMut(Event)) -> Result<Summary> {
    let data = base.join(&job.data);
    let out = base.join(&job.out);
    let mut summary = Summary {
        data: data.clone(),
        tables: vec![],
        outputs: vec![],
        stages: vec![],
    };
    let t = Instant::now();
    log(Event {
        stage: "load".into(),
        message: format!("reading {}", data.display()),
    });
    let ds = Dataset::open(&data, job.timezone.as_deref(), OnTableError::Fail)?;
    for (name, r) in &ds.report().tables {
        summary.tables.push((
            name.clone(),
            r.rows_read,
            r.rows_accepted,
            r.rows_read - r.rows_accepted,
        ));
        log(Event {
            stage: "load".into(),
            message: format!(
                "{name}: {} read, {} accepted, {} rejected",
                r.rows_read,
                r.rows_accepted,
                r.rows_read - r.rows_accepted
            ),
        });
    }
    summary
        .stages
        .push(("load".into(), t.elapsed().as_secs_f64()));
    for a in &job.analyses {
        let t = Instant::now();
        let (batch, svg) = compute(&ds, a, job.as_of.as_deref()).await?;
        for f in &a.formats {
            let path = out.join(format!("{}.{f}", a.name));
            let bytes = encode(
                std::slice::from_ref(&batch),
                &batch.schema(),
                OutputFormat::from_path(&path)?,
            )?;
            write_atomic(&path, &bytes)?;
            summary.outputs.push(Written {
                path,
                rows: batch.num_rows(),
                bytes: bytes.len(),
            });
        }
        for c in &a.charts {
            let Some(svg) = &svg else {
                return Err(Error::option(
                    format!("analysis `{}`", a.name),
                    "this result has no chart (grid charts need cell rows)",
                ));
            };
            let path = out.join(format!("{}.{c}", a.name));
            write_chart(&path, svg)?;
            let bytes = std::fs::metadata(&path)
                .map(|m| m.len() as usize)
                .unwrap_or(0);
            summary.outputs.push(Written {
                path,
                rows: 0,
                bytes,
            });
        }
        let secs = t.elapsed().as_secs_f64();
        log(Event {
            stage: a.name.clone(),
            message: format!("{} rows, {:.2} s", batch.num_rows(), secs),
        });
        summary.stages.push((a.name.clone(), secs));
    }
    Ok(summary)
}
