//! Declarative batch jobs: one TOML file names the dataset, the as-of date,
//! the analyses with their options and the outputs. A run loads the dataset
//! once, computes every analysis, writes every output atomically (same
//! inputs → byte-identical files) and returns a summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::{Array, RecordBatch};
use serde::{Deserialize, Serialize};

use crate::io::inputs::OnTableError;
use crate::io::output::{OutputFormat, encode, write_atomic, write_batches, write_chart};
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

/// A job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The dataset: a directory or a mapping file, relative to the job file.
    pub data: PathBuf,
    /// A store directory, relative to the job file: when set, the run first
    /// ingests `data` into it (validated once, streamed batch by batch) and
    /// the analyses read the store's files, so memory stays bounded. When
    /// `data` is itself a store, it is read directly.
    #[serde(default)]
    pub store: Option<PathBuf>,
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
    /// Write the Parquet result as a directory partitioned by these result
    /// columns (`<out>/<name>/scope=U01/period=2025-11/part-0.parquet`,
    /// Hive style) instead of one file; `period` partitions are what
    /// `--period` rewrites.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Chart formats: `svg`, `png` (none by default); `html` for an
    /// analysis that writes a document (`report`).
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
            if a.name == "run-summary" {
                return Err(Error::option(
                    "job",
                    format!(
                        "{label}: `run-summary` is the name of the run summary; name the analysis otherwise"
                    ),
                ));
            }
            for (what, list) in [("formats", &a.formats), ("charts", &a.charts)] {
                let mut seen = std::collections::BTreeSet::new();
                if let Some(dup) = list.iter().find(|f| !seen.insert(f.as_str())) {
                    return Err(Error::option(
                        "job",
                        format!(
                            "{label}: analysis `{}`: `{dup}` is listed twice in `{what}`",
                            a.name
                        ),
                    ));
                }
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
            if !a.partition_by.is_empty() && a.formats.iter().any(|f| f != "parquet") {
                return Err(Error::option(
                    "job",
                    format!(
                        "{label}: analysis `{}`: a partitioned result is written as parquet only",
                        a.name
                    ),
                ));
            }
            for c in &a.charts {
                if c != "svg" && c != "png" && c != "html" {
                    return Err(Error::option(
                        "job",
                        format!(
                            "{label}: analysis `{}`: charts are svg, png or html, not `{c}`",
                            a.name
                        ),
                    ));
                }
            }
        }
        Ok(job)
    }
}

/// Compute one analysis of kind `kind` (as in a job file) with its options:
/// the result and its chart, if it has one.
pub async fn compute_analysis(
    ds: &Dataset,
    kind: &str,
    options: &toml::Table,
    as_of: Option<&str>,
) -> Result<(RecordBatch, Option<String>)> {
    let a = JobAnalysis {
        name: kind.to_string(),
        kind: kind.to_string(),
        options: options.clone(),
        formats: vec![],
        partition_by: vec![],
        charts: vec![],
    };
    compute(ds, &a, as_of).await
}

/// Compute one analysis through the registry: its result and chart (or
/// document). The
/// job's `as_of` fills the `as_of` option of the analyses that have one.
async fn compute(
    ds: &Dataset,
    a: &JobAnalysis,
    as_of: Option<&str>,
) -> Result<(RecordBatch, Option<String>)> {
    let name = &a.name;
    let def = crate::api::analysis(&a.kind).map_err(|_| {
        Error::option(
            format!("analysis `{name}`"),
            format!(
                "unknown kind `{}` ({})",
                a.kind,
                crate::api::ANALYSES
                    .iter()
                    .map(|a| a.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let out = def
        .run(ds, options_of(a, as_of)?)
        .await
        .map_err(|e| in_analysis(name, e))?;
    let batch = arrow::compute::concat_batches(&out.schema, &out.batches)?;
    // An analysis draws a chart or writes a document, not both.
    Ok((batch, out.document.or(out.chart)))
}

/// The options of a job's analysis as the registry takes them; the job's
/// `as_of` fills the `as_of` of the analyses that have one.
fn options_of(
    a: &JobAnalysis,
    as_of: Option<&str>,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let Ok(serde_json::Value::Object(mut options)) = serde_json::to_value(&a.options) else {
        return Err(Error::option(
            format!("analysis `{}` options", a.name),
            "not a table of options",
        ));
    };
    if let (Some(v), Ok(def)) = (as_of, crate::api::analysis(&a.kind))
        && !options.contains_key("as_of")
        && def.options().iter().any(|o| o.name == "as_of")
    {
        options.insert("as_of".into(), serde_json::Value::String(v.to_string()));
    }
    Ok(options)
}

/// An option error named after the job's analysis.
fn in_analysis(name: &str, e: Error) -> Error {
    match e {
        Error::InvalidOption { message, .. } => {
            Error::option(format!("analysis `{name}` options"), message)
        }
        e => e,
    }
}

/// Run a job whose relative paths are resolved against `base`; `log`
/// receives its events, `progress` the progress of an ingest into the
/// job's store.
pub async fn run(
    job: &Job,
    base: &Path,
    log: &mut dyn FnMut(Event),
    progress: &(dyn Fn(crate::session::store::Progress) + Sync),
) -> Result<Summary> {
    run_periods(job, base, &[], log, progress).await
}

/// [`run`], rewriting of every result partitioned by `period` only the
/// partitions of periods that overlap one of `periods` (`2025`, `2025-Q4`,
/// `2025-11`, `2025-11-03`); the other partitions are left as they are.
/// Results not partitioned by period are written in full.
pub async fn run_periods(
    job: &Job,
    base: &Path,
    periods: &[String],
    log: &mut dyn FnMut(Event),
    progress: &(dyn Fn(crate::session::store::Progress) + Sync),
) -> Result<Summary> {
    run_in(job, base, periods, log, progress, None).await
}

/// [`run_periods`] with the analyses' queries in the caller's session, such
/// as a distributed engine's: the job's dataset must then be a store (its
/// `data`, or `data` ingested into its `store` first by the session's
/// tasks, [`crate::session::ingest_plan::ingest_in`]), since such a
/// session reads files only.
pub async fn run_in(
    job: &Job,
    base: &Path,
    periods: &[String],
    log: &mut dyn FnMut(Event),
    progress: &(dyn Fn(crate::session::store::Progress) + Sync),
    session: Option<datafusion::prelude::SessionContext>,
) -> Result<Summary> {
    let periods = periods
        .iter()
        .map(|p| {
            PeriodRange::parse(p).ok_or_else(|| {
                Error::option(
                    "period",
                    format!("`{p}` is not a period (2025, 2025-Q4, 2025-11 or 2025-11-03)"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    use crate::io::confine::{check_location, check_output};
    check_location(base, &job.data.to_string_lossy(), "job `data`")?;
    if let Some(s) = &job.store {
        check_location(base, &s.to_string_lossy(), "job `store`")?;
    }
    check_location(base, &job.out.to_string_lossy(), "job `out`")?;
    let data = crate::io::remote::join_location(base, &job.data.to_string_lossy());
    let out = base.join(&job.out);
    let mut inputs = vec![data.clone()];
    if let Some(store) = job.store.as_ref().map(|s| base.join(s)) {
        // The store is replaced whole at each run: it must not hold the data.
        check_output(&store, std::slice::from_ref(&data))?;
        check_output(&data, std::slice::from_ref(&store))?;
        inputs.push(store);
    }
    check_output(&out, &inputs)?;
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
    let store = match &job.store {
        Some(store) => {
            let store = base.join(store);
            let options = crate::session::store::IngestOptions::default();
            let tz = job.timezone.as_deref();
            let by = match &session {
                // On a distributed engine, its executors validate the
                // sources and write the store's files.
                Some(ctx) => {
                    crate::session::ingest_plan::ingest_in(
                        &data, tz, &store, &options, ctx, progress,
                    )
                    .await?;
                    " by the session's tasks"
                }
                None => {
                    crate::session::store::ingest(&data, tz, &store, &options, progress)?;
                    ""
                }
            };
            log(Event {
                stage: "load".into(),
                message: format!("validated into the store {}{by}", store.display()),
            });
            Some(store)
        }
        None if crate::session::store::is_store(&data) => Some(data.clone()),
        None => None,
    };
    let ds = match (store, session) {
        (Some(store), Some(ctx)) => {
            crate::session::store::open_in(&store, job.timezone.as_deref(), ctx)?
        }
        (Some(store), None) => Dataset::open(&store, job.timezone.as_deref(), OnTableError::Fail)?,
        (None, None) => Dataset::open(&data, job.timezone.as_deref(), OnTableError::Fail)?,
        (None, Some(_)) => {
            return Err(Error::option(
                "job",
                "a cluster reads files: set `store` in the job (or give a store as `data`)",
            ));
        }
    };
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
    // Every output is written into a staging directory inside `out` first;
    // only when all of them are complete are they moved into place, and
    // the run summary last. A failure leaves the previous outputs and
    // summary as they were.
    let created = !out.exists();
    let stage = crate::io::output::temp_sibling(&out.join("run"), "tmp")?;
    std::fs::create_dir(&stage).map_err(|e| Error::io(&stage, e))?;
    let mut moves = vec![];
    let staged = stage_outputs(
        &ds,
        job,
        &out,
        &stage,
        &periods,
        log,
        &mut summary,
        &mut moves,
    )
    .await;
    if staged.is_err() && created {
        // Nothing was there before this run: nothing is left.
        let _ = std::fs::remove_dir_all(&out);
    }
    let published = staged.and_then(|()| publish(moves));
    let _ = std::fs::remove_dir_all(&stage);
    published?;
    let body =
        serde_json::to_vec_pretty(&summary).map_err(|e| Error::option("summary", e.to_string()))?;
    write_atomic(&out.join(SUMMARY_FILE), &body)?;
    Ok(summary)
}

/// The run summary's file name in a job's `out` directory.
pub const SUMMARY_FILE: &str = "run-summary.json";

/// A staged output and where it goes.
enum Move {
    /// A file renamed over its target.
    File(PathBuf, PathBuf),
    /// A directory replacing its target whole.
    Dir(PathBuf, PathBuf),
    /// Partition files of some periods, each replacing its partition's
    /// files; then the partitions of those periods the result no longer has
    /// are removed from `dir`.
    Partitions {
        files: Vec<(PathBuf, PathBuf)>,
        dir: PathBuf,
        column: String,
        periods: Vec<PeriodRange>,
    },
}

/// Compute every analysis of the job into `stage`, recording the moves
/// that publish them into `out`.
#[allow(clippy::too_many_arguments)]
async fn stage_outputs(
    ds: &Dataset,
    job: &Job,
    out: &Path,
    stage: &Path,
    periods: &[PeriodRange],
    log: &mut dyn FnMut(Event),
    summary: &mut Summary,
    moves: &mut Vec<Move>,
) -> Result<()> {
    for a in &job.analyses {
        let t = Instant::now();
        if let Some(rows) =
            stream_points(ds, a, job.as_of.as_deref(), out, stage, summary, moves).await?
        {
            let secs = t.elapsed().as_secs_f64();
            log(Event {
                stage: a.name.clone(),
                message: format!("{rows} rows, {secs:.2} s"),
            });
            summary.stages.push((a.name.clone(), secs));
            continue;
        }
        let (batch, svg) = compute(ds, a, job.as_of.as_deref()).await?;
        if !a.partition_by.is_empty() {
            let (written, m) = write_partitioned(
                &batch,
                &a.partition_by,
                &stage.join(&a.name),
                &out.join(&a.name),
                periods,
            )?;
            summary.outputs.extend(written);
            moves.push(m);
        }
        for f in a.formats.iter().filter(|_| a.partition_by.is_empty()) {
            let name = format!("{}.{f}", a.name);
            let bytes = write_batches(
                &stage.join(&name),
                std::slice::from_ref(&batch),
                &batch.schema(),
            )?;
            moves.push(Move::File(stage.join(&name), out.join(&name)));
            summary.outputs.push(Written {
                path: out.join(&name),
                rows: batch.num_rows(),
                bytes: bytes as usize,
            });
        }
        for c in &a.charts {
            let Some(svg) = &svg else {
                return Err(Error::option(
                    format!("analysis `{}`", a.name),
                    "this result has no chart (grid charts need cell rows)",
                ));
            };
            let name = format!("{}.{c}", a.name);
            let staged = stage.join(&name);
            write_chart(&staged, svg)?;
            let bytes = std::fs::metadata(&staged)
                .map(|m| m.len() as usize)
                .map_err(|e| Error::io(&staged, e))?;
            moves.push(Move::File(staged, out.join(&name)));
            summary.outputs.push(Written {
                path: out.join(&name),
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
    Ok(())
}

/// Move staged outputs into place (renames within one file system).
fn publish(moves: Vec<Move>) -> Result<()> {
    for m in moves {
        match m {
            Move::File(from, to) => std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?,
            Move::Dir(from, to) => {
                if to.exists() {
                    let old = crate::io::output::temp_sibling(&to, "old")?;
                    std::fs::rename(&to, &old).map_err(|e| Error::io(&to, e))?;
                    std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
                    std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
                } else {
                    std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
                }
            }
            Move::Partitions {
                files,
                dir,
                column,
                periods,
            } => publish_partitions(files, &dir, &column, &periods)?,
        }
    }
    Ok(())
}

/// Each staged partition file replaces its partition's files; partitions of
/// the rewritten periods that the new result no longer has go too.
fn publish_partitions(
    files: Vec<(PathBuf, PathBuf)>,
    dir: &Path,
    column: &str,
    periods: &[PeriodRange],
) -> Result<()> {
    let mut kept = std::collections::BTreeSet::new();
    for (from, path) in files {
        if let Some(d) = path.parent() {
            if d.exists() {
                for e in std::fs::read_dir(d).map_err(|e| Error::io(d, e))? {
                    let p = e.map_err(|e| Error::io(d, e))?.path();
                    if p.is_file() && p != path {
                        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                    }
                }
            } else {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            }
        }
        std::fs::rename(&from, &path).map_err(|e| Error::io(&path, e))?;
        kept.insert(path);
    }
    for file in files_under(dir)? {
        let rel = file.strip_prefix(dir).unwrap_or(&file);
        let label = rel
            .components()
            .find_map(|c| c.as_os_str().to_str().and_then(|c| c.strip_prefix(column)));
        let stale = label
            .and_then(PeriodRange::parse)
            .is_some_and(|p| periods.iter().any(|q| p.overlaps(q)));
        if stale && !kept.contains(&file) {
            std::fs::remove_file(&file).map_err(|e| Error::io(&file, e))?;
            // Empty partition directories up to `dir`.
            let mut d = file.parent();
            while let Some(x) = d.filter(|x| *x != dir) {
                if std::fs::remove_dir(x).is_err() {
                    break;
                }
                d = x.parent();
            }
        }
    }
    Ok(())
}

/// A result written as it is computed (the points ledger, when it is
/// neither partitioned nor charted): its files in the summary, its rows.
async fn stream_points(
    ds: &Dataset,
    a: &JobAnalysis,
    as_of: Option<&str>,
    out: &Path,
    stage: &Path,
    summary: &mut Summary,
    moves: &mut Vec<Move>,
) -> Result<Option<usize>> {
    if !a.partition_by.is_empty() || !a.charts.is_empty() {
        return Ok(None);
    }
    let options = options_of(a, as_of)?;
    let names: Vec<String> = a
        .formats
        .iter()
        .map(|f| format!("{}.{f}", a.name))
        .collect();
    let paths: Vec<PathBuf> = names.iter().map(|n| stage.join(n)).collect();
    let Some((rows, sizes)) = crate::api::write_streamed(ds, &a.kind, &options, &paths)
        .await
        .map_err(|e| in_analysis(&a.name, e))?
    else {
        return Ok(None);
    };
    for ((staged, name), bytes) in paths.into_iter().zip(&names).zip(sizes) {
        moves.push(Move::File(staged, out.join(name)));
        summary.outputs.push(Written {
            path: out.join(name),
            rows,
            bytes: bytes as usize,
        });
    }
    Ok(Some(rows))
}

/// The days a period label covers, as `[first, last]` (proleptic days).
#[derive(Debug, Clone, Copy, PartialEq)]
struct PeriodRange(i32, i32);

impl PeriodRange {
    /// `2025`, `2025-Q4`, `2025-11` or `2025-11-03`.
    fn parse(label: &str) -> Option<PeriodRange> {
        use chrono::{Datelike, NaiveDate};
        let t = label.trim();
        let day = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d);
        let last_of = |y: i32, m: u32| {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            day(ny, nm, 1).and_then(|d| d.pred_opt())
        };
        let (a, b) = if let Ok(y) = t.parse::<i32>() {
            (day(y, 1, 1)?, day(y, 12, 31)?)
        } else if let Some((y, q)) = t.split_once("-Q") {
            let (y, q): (i32, u32) = (y.parse().ok()?, q.parse().ok()?);
            if !(1..=4).contains(&q) {
                return None;
            }
            (day(y, q * 3 - 2, 1)?, last_of(y, q * 3)?)
        } else if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            (d, d)
        } else {
            let (y, m) = t.split_once('-')?;
            let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
            (day(y, m, 1)?, last_of(y, m)?)
        };
        Some(PeriodRange(a.num_days_from_ce(), b.num_days_from_ce()))
    }

    fn overlaps(&self, o: &PeriodRange) -> bool {
        self.0 <= o.1 && o.0 <= self.1
    }
}

/// Every file under `dir` (recursively; none when it does not exist).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !d.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let p = e.map_err(|e| Error::io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A partition directory name: `column=value`, the value percent-encoded
/// where it could not be a path component; nulls as Hive writes them.
fn partition_component(column: &str, value: Option<&str>) -> String {
    let v = match value {
        None => "__HIVE_DEFAULT_PARTITION__".to_string(),
        Some(v) => {
            let mut out = String::new();
            for ch in v.chars() {
                if ch.is_alphanumeric() || matches!(ch, '-' | '_' | '.' | ' ') {
                    out.push(ch);
                } else {
                    let mut buf = [0u8; 4];
                    for b in ch.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
            }
            if out.is_empty() || out.starts_with('.') {
                out = format!("%2E{}", out.get(1..).unwrap_or_default());
            }
            out
        }
    };
    format!("{column}={v}")
}

/// Write `batch` as Parquet files under `dir`, one per distinct value of
/// the `by` columns (which stay in the files). Without `periods` the whole
/// directory is replaced; with them, only the partitions whose `period`
/// overlaps one of them are written, each replacing its directory, and the
/// rest of `dir` is left alone.
fn write_partitioned(
    batch: &RecordBatch,
    by: &[String],
    stage: &Path,
    dir: &Path,
    periods: &[PeriodRange],
) -> Result<(Vec<Written>, Move)> {
    use std::collections::BTreeMap;
    let mut keys: Vec<arrow::array::StringArray> = Vec::new();
    for c in by {
        let a = batch.column_by_name(c).ok_or_else(|| {
            Error::option(
                "partition_by",
                format!(
                    "the result has no column `{c}`; its columns are: {}",
                    crate::io::dedup::column_list(batch)
                ),
            )
        })?;
        let text = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)?;
        keys.push(
            text.as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .expect("utf8")
                .clone(),
        );
    }
    let period_col = by.iter().position(|c| c == "period");
    let scoped = !periods.is_empty() && period_col.is_some();
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<u32>> = BTreeMap::new();
    for r in 0..batch.num_rows() {
        let key: Vec<Option<String>> = keys
            .iter()
            .map(|k| (!k.is_null(r)).then(|| k.value(r).to_string()))
            .collect();
        if scoped {
            let label = key[period_col.expect("scoped")].as_deref().unwrap_or("");
            let hit =
                PeriodRange::parse(label).is_some_and(|p| periods.iter().any(|q| p.overlaps(q)));
            if !hit {
                continue;
            }
        }
        groups.entry(key).or_default().push(r as u32);
    }
    let mut written = Vec::new();
    let mut staged = Vec::new();
    for (key, rows) in &groups {
        let rel: PathBuf = by
            .iter()
            .zip(key)
            .map(|(c, v)| partition_component(c, v.as_deref()))
            .collect();
        let idx = arrow::array::UInt32Array::from(rows.clone());
        // Partitions carry no evaluation instant: a partition kept from an
        // earlier run must be byte for byte what a full run writes.
        let plain = std::sync::Arc::new(arrow::datatypes::Schema::new(
            batch.schema().fields().clone(),
        ));
        let taken = arrow::compute::take_record_batch(batch, &idx)?;
        let part = RecordBatch::try_new(plain.clone(), taken.columns().to_vec())?;
        let bytes = encode(std::slice::from_ref(&part), &plain, OutputFormat::Parquet)?;
        let file = rel.join("part-0.parquet");
        write_atomic(&stage.join(&file), &bytes)?;
        staged.push((stage.join(&file), dir.join(&file)));
        written.push(Written {
            path: dir.join(&file),
            rows: part.num_rows(),
            bytes: bytes.len(),
        });
    }
    std::fs::create_dir_all(stage).map_err(|e| Error::io(stage, e))?;
    let m = if scoped {
        Move::Partitions {
            files: staged,
            dir: dir.to_path_buf(),
            column: format!("{}=", by[period_col.expect("scoped")]),
            periods: periods.to_vec(),
        }
    } else {
        Move::Dir(stage.to_path_buf(), dir.to_path_buf())
    };
    Ok((written, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_labels_and_overlap() {
        let p = |s: &str| PeriodRange::parse(s).unwrap();
        assert!(p("2025").overlaps(&p("2025-11")));
        assert!(p("2025-Q4").overlaps(&p("2025-11")));
        assert!(!p("2025-Q3").overlaps(&p("2025-11")));
        assert!(p("2025-11-30").overlaps(&p("2025-11")));
        assert!(!p("2025-12-01").overlaps(&p("2025-11")));
        assert_eq!(p("2024-02").1 - p("2024-02").0, 28);
        assert!(PeriodRange::parse("2025-Q5").is_none());
        assert!(PeriodRange::parse("last month").is_none());
    }

    #[test]
    fn partition_names_are_safe_path_components() {
        assert_eq!(
            partition_component("scope", Some("U01/仓库")),
            "scope=U01%2F仓库"
        );
        assert_eq!(
            partition_component("period", Some("2025-Q4")),
            "period=2025-Q4"
        );
        assert_eq!(
            partition_component("zone", None),
            "zone=__HIVE_DEFAULT_PARTITION__"
        );
        assert_eq!(partition_component("x", Some("..")), "x=%2E.");
    }
}
