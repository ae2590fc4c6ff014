//! `safetyscope`: the command line of safetyscope, for analysts and for the
//! batch jobs of a big-data platform.
//!
//! Exit codes: 0 success; 1 bad data (a required table unusable, rejected
//! input); 2 bad usage or configuration (options, mapping file); 3 an output
//! could not be written; 4 a query failed.

/// jemalloc returns memory the query engine's threads free (glibc's malloc
/// kept it: the nightly job's peak at 100 M events, 828 → 520 MB).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use safetyscope_core::generate::{GenerateOptions, generate_to_dir};
use safetyscope_core::heatmap::{EventKind, HeatmapOptions, event_heatmap, heatmap_chart};
use safetyscope_core::output::{write_atomic, write_batches};
use safetyscope_core::{Dataset, OnTableError, TableKind};

#[derive(Parser, Debug)]
#[command(
    name = "safetyscope",
    version,
    about = "Workplace-safety analytics: risk heat maps, time-of-day patterns, target tracking"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Memory the query engine may hold for sorts, joins and aggregations
    /// before spilling to disk (`512M`, `4G`; default: no limit).
    #[arg(long, global = true, value_parser = parse_size)]
    memory_limit: Option<usize>,
}

/// A size in bytes: a number with an optional K, M, G or T suffix (powers
/// of 1024; `B`, `iB` and `B` after the letter are accepted).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_end_matches("ib").trim_end_matches('b');
    let (num, unit) = match body.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&body[..i], c),
        _ => (body, ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        't' => 40,
        _ => return Err(format!("`{t}`: unknown unit (use K, M, G or T)")),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a size such as 512M or 4G"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("`{t}`: the size must be positive"));
    }
    Ok((n * (1u64 << shift) as f64) as usize)
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate the deterministic sample dataset (Parquet per table).
    Generate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Volume multiplier (1 ≈ 19,000 incidents; rows grow linearly).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Year covered.
        #[arg(long, default_value_t = 2025)]
        year: i32,
        /// Number of units (sites).
        #[arg(long, default_value_t = 12)]
        sites: usize,
        /// Do not plant hot cells.
        #[arg(long)]
        no_hot_cells: bool,
        /// Do not plant high-risk hours.
        #[arg(long)]
        no_peak_hours: bool,
        /// Generate only these tables (the site plan always; others empty).
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<String>>,
    },
    /// Validate a dataset once and write it as a store: canonical Parquet
    /// files plus the validation report. Analyses and jobs given the store
    /// read its files as they query, so memory stays bounded.
    Ingest {
        /// Dataset directory or mapping file (.toml).
        data: PathBuf,
        /// The store directory (replaced as a whole when complete).
        #[arg(long)]
        out: PathBuf,
        /// Dataset timezone (overrides the mapping).
        #[arg(long)]
        timezone: Option<String>,
        /// Rows per Parquet file.
        #[arg(long, default_value_t = 4 * 1024 * 1024)]
        rows_per_file: u64,
        /// Progress and log lines as plain text or JSON objects (on stderr).
        #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
        log_format: LogFormat,
    },
    /// Load a dataset and print its validation report.
    Validate {
        /// Dataset directory or mapping file (.toml).
        data: PathBuf,
        /// Dataset timezone (overrides the mapping).
        #[arg(long)]
        timezone: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Tables that must be usable (default: incidents).
        #[arg(long, value_delimiter = ',', default_value = "incidents")]
        require: Vec<String>,
    },
    /// Run SQL over the canonical tables.
    Sql {
        /// Dataset directory or mapping file (.toml).
        data: PathBuf,
        /// The query.
        query: String,
        /// Write to a file (.parquet, .csv, .json, .ndjson) instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = Print::Table)]
        format: Print,
        /// Dataset timezone.
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Events per cell of the site plan, with an SVG grid.
    Heatmap {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        events: Events,
        #[command(flatten)]
        output: Output,
        /// One row per cell, or counts summed per zone or site (the chart needs cells).
        #[arg(long, value_enum, default_value_t = By::Cell)]
        by: By,
    },
    /// Getis-Ord Gi* hot and cold spots over the cells of the site plan.
    Hotspots {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        events: Events,
        #[command(flatten)]
        output: Output,
        /// Neighbours: rook, queen or distance.
        #[arg(long, value_enum, default_value_t = Weights::Queen)]
        weights: Weights,
        /// Distance band in metres (with --weights distance).
        #[arg(long)]
        distance: Option<f64>,
        /// Row-standardised instead of binary weights.
        #[arg(long)]
        row_standardize: bool,
        /// Significance level.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// Classify by raw p-values instead of FDR-adjusted q-values.
        #[arg(long)]
        no_fdr: bool,
        /// Conditional permutations for a pseudo p-value.
        #[arg(long, default_value_t = 0)]
        permutations: u32,
        /// Seed of the permutations.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// The risk four-colour map: a level per cell (or zone, site) from the
    /// static LEC/LS assessment and the evidence of a window.
    Risk {
        #[command(flatten)]
        input: Input,
        /// The window (default: the 90 days before the day after the latest event).
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        output: Output,
        /// Rows per cell, zone or site.
        #[arg(long, value_enum, default_value_t = By::Cell)]
        by: By,
        /// Half-life in days of the exponential decay of event weights.
        #[arg(long)]
        half_life_days: Option<f64>,
        /// Do not normalise by hours worked.
        #[arg(long)]
        no_exposure: bool,
        /// Prior strength of the empirical-Bayes smoothing, in hours.
        #[arg(long)]
        prior_hours: Option<f64>,
        /// How the final level is chosen: max, static or dynamic.
        #[arg(long, value_enum, default_value_t = Rule::Max)]
        rule: Rule,
        /// Options file (TOML) with weights and band tables; flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// A kernel density surface of point data over one site's plan.
    Density {
        #[command(flatten)]
        input: Input,
        /// Points: incidents, hazards, violations or positions.
        #[arg(long, default_value = "incidents")]
        source: String,
        /// The window and the site (default: the first in the plan).
        #[command(flatten)]
        window: Window,
        /// Kernel: gaussian or epanechnikov.
        #[arg(long, default_value = "gaussian")]
        kernel: String,
        /// Bandwidth in metres (default: Scott's rule).
        #[arg(long)]
        bandwidth: Option<f64>,
        /// Rule-of-thumb bandwidth: scott or silverman.
        #[arg(long, default_value = "scott")]
        bandwidth_rule: String,
        /// Raster cell size in metres.
        #[arg(long, default_value_t = 1.0)]
        resolution: f64,
        /// Weight each point by this numeric column.
        #[arg(long)]
        weight: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Emerging hot spots: Gi* per week or month and the Mann-Kendall trend
    /// of each cell's z-scores, as new / consecutive / intensifying /
    /// persistent / diminishing / sporadic / oscillating / historical.
    Emerging {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        events: Events,
        #[command(flatten)]
        output: Output,
        /// Slice length: week or month.
        #[arg(long, default_value = "month")]
        slice: String,
        /// Neighbours: rook or queen.
        #[arg(long, value_enum, default_value_t = Weights::Queen)]
        weights: Weights,
        /// Significance of a hot slice (q) and of the trend.
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
    },
    /// Time-of-day patterns: the hour × weekday profile (default), shift
    /// profiles, events by shift, Pareto, cross-tab or accident pyramid.
    Patterns {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        output: Output,
        /// What to compute.
        #[arg(long, value_enum, default_value_t = View::Profile)]
        view: View,
    },
    /// Peaks: every hour × weekday (or hour) cell against the rest of the
    /// week by the exact Poisson rate test with exposure, FDR-adjusted; the
    /// ranked high-risk periods (or every tested cell with --cells).
    Peaks {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        output: Output,
        /// Test hour × weekday cells or hours of the day.
        #[arg(long, value_enum, default_value_t = Grid::HourWeekday)]
        grid: Grid,
        /// False discovery rate.
        #[arg(long)]
        alpha: Option<f64>,
        /// Write every tested cell instead of the merged periods.
        #[arg(long)]
        cells: bool,
    },
    /// Monthly trend with rolling means, year-over-year change and seasonality.
    Trends {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        output: Output,
    },
    /// Near-repeat space-time clustering: the Knox test on events with x/y.
    Knox {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        select: Select,
        /// Pairs at most this many metres apart are close in space.
        #[arg(long, default_value_t = 5.0)]
        distance: f64,
        /// Pairs at most this many days apart are close in time.
        #[arg(long, default_value_t = 3.0)]
        days: f64,
        /// Permutations for the pseudo p-value (0 = none).
        #[arg(long, default_value_t = 199)]
        permutations: u32,
        /// Seed of the permutations.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Result file (.parquet, .csv, .json, .ndjson).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output format on stdout when no --out is given.
        #[arg(long, value_enum, default_value_t = Print::Table)]
        format: Print,
    },
    /// Safety KPIs per scope and period (TRIR, LTIFR, rectification, training, …).
    Kpis {
        /// Dataset directory or mapping file (.toml); not needed with --catalogue.
        data: Option<PathBuf>,
        /// Dataset timezone (overrides the mapping).
        #[arg(long)]
        timezone: Option<String>,
        /// Period kinds: month, quarter, year.
        #[arg(long, value_delimiter = ',', default_value = "month,quarter,year")]
        periods: Vec<String>,
        /// Scope kinds: group, site, zone.
        #[arg(long, value_delimiter = ',', default_value = "group,site")]
        scopes: Vec<String>,
        /// Only this site.
        #[arg(long)]
        site: Option<String>,
        /// Only these KPIs.
        #[arg(long, value_delimiter = ',')]
        kpi: Vec<String>,
        /// Count only what happened before this local date.
        #[arg(long)]
        as_of: Option<String>,
        /// Print the KPI catalogue (Markdown) instead.
        #[arg(long)]
        catalogue: bool,
        /// Result file (.parquet, .csv, .json, .ndjson).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Output format on stdout when no --out is given.
        #[arg(long, value_enum, default_value_t = Print::Table)]
        format: Print,
    },
    /// The annual targets against the KPIs as of a date: actual, expected,
    /// projection, probability, status.
    Targets {
        #[command(flatten)]
        input: Input,
        /// Targets file (CSV or TOML; default: the dataset's targets table).
        #[arg(long)]
        targets: Option<PathBuf>,
        /// Evaluate as of this local date (default: the day after the latest event).
        #[arg(long)]
        as_of: Option<String>,
        /// Expected to date: pro-rata or seasonal.
        #[arg(long, default_value = "pro_rata")]
        expectation: String,
        #[command(flatten)]
        output: Output,
    },
    /// What to chase as of a date: overdue hazards, repeat violators, fence
    /// intrusions, sensor alarm episodes, low safety points.
    Alerts {
        #[command(flatten)]
        input: Input,
        /// Which list: all, overdue, repeats, intrusions, episodes, points.
        #[arg(long, default_value = "all")]
        list: String,
        /// "Now" (local date or time; default: the day after the latest record).
        #[arg(long)]
        as_of: Option<String>,
        /// Start of the history searched (default: 30 days before --as-of).
        #[arg(long)]
        from: Option<String>,
        /// Only this site.
        #[arg(long)]
        site: Option<String>,
        /// Alarm threshold of a metric, `METRIC=VALUE` (repeatable).
        #[arg(long = "threshold")]
        thresholds: Vec<String>,
        /// People allowed in restricted cells (comma-separated).
        #[arg(long, value_delimiter = ',')]
        authorised: Vec<String>,
        /// Options file (TOML, the fields of the alert options); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// Write the static dashboard for a dataset: a ready-to-host site
    /// directory, or one self-contained HTML file that opens from file://.
    Dashboard {
        /// Dataset directory or mapping file (.toml).
        #[arg(long)]
        data: PathBuf,
        /// Dataset timezone (overrides the mapping).
        #[arg(long)]
        timezone: Option<String>,
        /// Site directory to write (replaced as a whole).
        #[arg(long)]
        out: Option<PathBuf>,
        /// One self-contained HTML file (WASM and data inline).
        #[arg(long)]
        single_file: Option<PathBuf>,
        /// The WASM bindings (wasm-bindgen --target web output); default
        /// $SAFETYSCOPE_WEB_PKG.
        #[arg(long)]
        pkg: Option<PathBuf>,
    },
    /// Run a job file: the dataset, the analyses with their options and
    /// the outputs, written atomically; a run summary as JSON beside them.
    Run {
        /// The job file (TOML).
        job: PathBuf,
        /// Rewrite only these periods of the results partitioned by
        /// `period` (`2025-11`, `2025-Q4`, `2025`, `2025-11-03`; repeat or
        /// separate by commas); other results are written in full.
        #[arg(long, value_delimiter = ',')]
        period: Vec<String>,
        /// Run the analyses' queries on a Ballista cluster (`df://HOST:PORT`),
        /// through the `safetyscope-cluster` binary beside this one; the job
        /// must have a `store` (or a store as `data`).
        #[arg(long)]
        cluster: Option<String>,
        /// Log lines as plain text or JSON objects (on stderr).
        #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
        log_format: LogFormat,
    },
    /// Print the canonical data model.
    Schema {
        /// As the Markdown of docs/data-model.md.
        #[arg(long)]
        markdown: bool,
    },
}

/// The dataset an analysis reads.
#[derive(Args, Debug)]
struct Input {
    /// Dataset directory or mapping file (.toml).
    data: PathBuf,
    /// Dataset timezone (overrides the mapping).
    #[arg(long)]
    timezone: Option<String>,
}

/// A time window and a site.
#[derive(Args, Debug)]
struct Window {
    /// Window start (local time, inclusive).
    #[arg(long)]
    from: Option<String>,
    /// Window end (local time, exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Only this site (charts show the first site otherwise).
    #[arg(long)]
    site: Option<String>,
}

/// Which events an analysis counts.
#[derive(Args, Debug)]
struct Events {
    /// Event kinds counted (incidents, hazards, violations).
    #[arg(long, value_delimiter = ',', default_value = "incidents")]
    kinds: Vec<String>,
    #[command(flatten)]
    window: Window,
}

impl Events {
    fn kinds(&self) -> Result<Vec<EventKind>, CliError> {
        Ok(self
            .kinds
            .iter()
            .map(|k| EventKind::parse(k))
            .collect::<Result<Vec<_>, _>>()?)
    }
}

/// Which events a pattern analysis reads and how it groups them.
#[derive(Args, Debug)]
struct Select {
    /// Event kinds counted (incidents, hazards, violations).
    #[arg(long, value_delimiter = ',')]
    kinds: Option<Vec<String>>,
    #[command(flatten)]
    window: Window,
    /// Only this zone.
    #[arg(long)]
    zone: Option<String>,
    /// Only these categories (accident types, hazard categories, violation kinds).
    #[arg(long, value_delimiter = ',')]
    category: Vec<String>,
    /// Only these severities (incidents) or hazard levels.
    #[arg(long, value_delimiter = ',')]
    severity: Vec<String>,
    /// Group by: site, zone, cell, category, severity, kind (comma-separated).
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// Place events by their start time or spread them over their window (aoristic).
    #[arg(long)]
    time: Option<String>,
    /// Exposure by hour of the week: auto, records, shifts, positions, uniform.
    #[arg(long)]
    exposure: Option<String>,
    /// A shift `NAME=HH:MM-HH:MM` with an optional relative headcount
    /// `*0.5`; repeat for the roster (default day 08–20, night 20–08).
    #[arg(long = "shift")]
    shifts: Vec<String>,
    /// Relative exposure per weekday, Monday first (seven numbers).
    #[arg(long, value_delimiter = ',')]
    weekday_factors: Option<Vec<f64>>,
    /// Pareto / cross-tab rows: the dimension ranked.
    #[arg(long)]
    dim: Option<String>,
    /// Cross-tab columns.
    #[arg(long)]
    columns: Option<String>,
    /// Options file (TOML, the fields of the pattern options); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Select {
    fn options(self) -> Result<safetyscope_core::patterns::PatternOptions, CliError> {
        use safetyscope_core::patterns::{Dim, PatternOptions, Shift};
        let mut o: PatternOptions = read_config(self.config.as_deref())?;
        if let Some(k) = &self.kinds {
            o.kinds = k
                .iter()
                .map(|k| EventKind::parse(k))
                .collect::<Result<_, _>>()?;
        }
        o.from = self.window.from.or(o.from);
        o.to = self.window.to.or(o.to);
        o.site = self.window.site.or(o.site);
        o.zone = self.zone.or(o.zone);
        if !self.category.is_empty() {
            o.categories = self.category;
        }
        if !self.severity.is_empty() {
            o.severities = self.severity;
        }
        if !self.by.is_empty() {
            o.by = self
                .by
                .iter()
                .map(|d| Dim::parse(d))
                .collect::<Result<_, _>>()?;
        }
        fn enum_of<T: serde::de::DeserializeOwned>(flag: &str, v: &str) -> Result<T, CliError> {
            serde_json::from_value(serde_json::Value::String(v.replace('-', "_")))
                .map_err(|_| CliError::Usage(format!("--{flag}: `{v}` is not a valid value")))
        }
        if let Some(t) = &self.time {
            o.time = enum_of("time", t)?;
        }
        if let Some(e) = &self.exposure {
            o.exposure = enum_of("exposure", e)?;
        }
        if let Some(d) = &self.dim {
            o.dim = Dim::parse(d)?;
        }
        if let Some(c) = &self.columns {
            o.columns = Dim::parse(c)?;
        }
        if !self.shifts.is_empty() {
            o.shifts = self
                .shifts
                .iter()
                .map(|s| {
                    let bad = || {
                        CliError::Usage(format!(
                            "--shift: `{s}` is not NAME=HH:MM-HH:MM[*HEADCOUNT]"
                        ))
                    };
                    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
                    let (times, heads) = match rest.split_once('*') {
                        Some((t, h)) => (t, h.trim().parse::<f64>().map_err(|_| bad())?),
                        None => (rest, 1.0),
                    };
                    let (start, end) = times.split_once('-').ok_or_else(bad)?;
                    Ok(Shift {
                        name: name.trim().to_string(),
                        start: start.trim().to_string(),
                        end: end.trim().to_string(),
                        headcount: heads,
                    })
                })
                .collect::<Result<_, CliError>>()?;
        }
        if self.weekday_factors.is_some() {
            o.weekday_factors = self.weekday_factors;
        }
        Ok(o)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum View {
    Profile,
    Shifts,
    ShiftEvents,
    Pareto,
    Crosstab,
    Pyramid,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Grid {
    HourWeekday,
    Hour,
}

/// Where an analysis writes its result and chart.
#[derive(Args, Debug)]
struct Output {
    /// Result file (.parquet, .csv, .json, .ndjson).
    #[arg(long)]
    out: Option<PathBuf>,
    /// SVG chart (of one site for grid charts).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// The same chart as a PNG image.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Output format on stdout when no --out is given.
    #[arg(long, value_enum, default_value_t = Print::Table)]
    format: Print,
}

impl Output {
    /// Write the chart (if asked) and the result.
    fn write(
        &self,
        batches: &[RecordBatch],
        schema: &SchemaRef,
        chart: impl FnOnce() -> Result<Option<String>, safetyscope_core::Error>,
    ) -> Result<(), CliError> {
        if self.svg.is_some() || self.png.is_some() {
            let drawn = chart()?.ok_or_else(|| {
                CliError::Usage("this result has no chart (a grid chart needs --by cell)".into())
            })?;
            for path in [&self.svg, &self.png].into_iter().flatten() {
                safetyscope_core::output::write_chart(path, &drawn)?;
                eprintln!("wrote {}", path.display());
            }
        }
        emit(batches, schema, self.out.as_deref(), self.format)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum By {
    Cell,
    Zone,
    Site,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Rule {
    Max,
    Static,
    Dynamic,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Weights {
    Rook,
    Queen,
    Distance,
}

impl From<By> for safetyscope_core::risk::RollUp {
    fn from(b: By) -> Self {
        match b {
            By::Cell => Self::Cell,
            By::Zone => Self::Zone,
            By::Site => Self::Site,
        }
    }
}

impl From<Weights> for safetyscope_core::hotspots::WeightsKind {
    fn from(w: Weights) -> Self {
        match w {
            Weights::Rook => Self::Rook,
            Weights::Queen => Self::Queen,
            Weights::Distance => Self::Distance,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Print {
    Table,
    Csv,
    Json,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Core(#[from] safetyscope_core::Error),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unusable(String),
    /// The cluster runner failed with this exit code (it printed why).
    #[error("the job failed on the cluster (exit code {0})")]
    Cluster(i32),
}

impl From<datafusion::error::DataFusionError> for CliError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        CliError::Core(e.into())
    }
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Unusable(_) => 1,
            CliError::Cluster(code) => u8::try_from(*code).unwrap_or(1),
            CliError::Core(e) => e.exit_code(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn open(data: &Path, timezone: Option<&str>) -> Result<Dataset, CliError> {
    let ds = Dataset::open(data, timezone, OnTableError::Fail)?;
    let rejected = ds.report().rows_rejected();
    if rejected > 0 {
        eprintln!(
            "note: {rejected} input rows rejected; run `safetyscope validate {}` for the reasons",
            data.display()
        );
    }
    Ok(ds)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    safetyscope_core::dataset::set_memory_limit(cli.memory_limit)?;
    match cli.command {
        Command::Ingest {
            data,
            out,
            timezone,
            rows_per_file,
            log_format,
        } => {
            let reporter = Reporter::new(log_format);
            let options = safetyscope_core::store::IngestOptions {
                rows_per_file,
                ..Default::default()
            };
            let m = safetyscope_core::store::ingest(
                &data,
                timezone.as_deref(),
                &out,
                &options,
                &|p| reporter.progress(&p),
            )?;
            for (name, t) in &m.report.tables {
                reporter.event(
                    "ingest",
                    &format!(
                        "{name}: {} read, {} accepted, {} rejected",
                        t.rows_read,
                        t.rows_accepted,
                        t.rows_read - t.rows_accepted
                    ),
                );
            }
            let files: usize = m.tables.values().map(|t| t.files.len()).sum();
            let bytes: u64 = m
                .tables
                .values()
                .flat_map(|t| &t.files)
                .map(|f| f.bytes)
                .sum();
            reporter.event(
                "done",
                &format!(
                    "wrote {} ({files} files, {:.1} MB)",
                    out.display(),
                    bytes as f64 / 1e6
                ),
            );
        }
        Command::Generate {
            out,
            scale,
            seed,
            year,
            sites,
            no_hot_cells,
            no_peak_hours,
            only,
        } => {
            let start = Instant::now();
            let only = only
                .map(|v| {
                    v.iter()
                        .map(|t| {
                            TableKind::from_name(t).ok_or_else(|| {
                                CliError::Usage(format!("--only: unknown table `{t}`"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let o = GenerateOptions {
                scale,
                seed,
                year,
                sites,
                plant_hot_cells: !no_hot_cells,
                plant_hours: !no_peak_hours,
                only,
                ..Default::default()
            };
            let truth = generate_to_dir(&out, &o)?;
            for (t, n) in &truth.rows {
                println!("{t:>12}  {n:>10} rows");
            }
            println!(
                "wrote {} in {:.1}s",
                out.display(),
                start.elapsed().as_secs_f64()
            );
        }
        Command::Validate {
            data,
            timezone,
            json,
            require,
        } => {
            let ds = Dataset::open(&data, timezone.as_deref(), OnTableError::Report)?;
            let report = ds.report();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(report)
                        .map_err(|e| CliError::Usage(e.to_string()))?
                );
            } else {
                print!("{}", report.to_text());
            }
            let mut problems = Vec::new();
            for (t, e) in ds.unusable_tables() {
                problems.push(format!("table `{t}` is unusable: {e}"));
            }
            for name in &require {
                let kind = TableKind::from_name(name)
                    .ok_or_else(|| CliError::Usage(format!("--require: unknown table `{name}`")))?;
                if !ds.has_table(kind) {
                    problems.push(format!("required table `{name}` is not in the dataset"));
                } else if ds.row_count(kind) == 0
                    && !ds.unusable_tables().iter().any(|(t, _)| t == name)
                {
                    problems.push(format!("required table `{name}` has no accepted rows"));
                }
            }
            if !problems.is_empty() {
                return Err(CliError::Unusable(problems.join("\n")));
            }
        }
        Command::Sql {
            data,
            query,
            out,
            format,
            timezone,
        } => {
            let ds = open(&data, timezone.as_deref())?;
            let df = ds.sql(&query).await?;
            let schema: SchemaRef = df.schema().inner().clone();
            let batches = df.collect().await?;
            emit(&batches, &schema, out.as_deref(), format)?;
        }
        Command::Heatmap {
            input,
            events,
            output,
            by,
        } => {
            let ds = open(&input.data, input.timezone.as_deref())?;
            let o = HeatmapOptions {
                kinds: events.kinds()?,
                from: events.window.from,
                to: events.window.to,
                site: events.window.site,
                by: by.into(),
            };
            let df = event_heatmap(&ds, &o).await?;
            let schema: SchemaRef = df.schema().inner().clone();
            let batches = df.collect().await?;
            output.write(&batches, &schema, || heatmap_chart(&batches, &o))?;
        }
        Command::Hotspots {
            input,
            events,
            output,
            weights,
            distance,
            row_standardize,
            alpha,
            no_fdr,
            permutations,
            seed,
        } => {
            use safetyscope_core::hotspots::{
                HotspotOptions, Transform, hotspot_schema, hotspots_batch, hotspots_svg,
            };
            let ds = open(&input.data, input.timezone.as_deref())?;
            let o = HotspotOptions {
                kinds: events.kinds()?,
                from: events.window.from,
                to: events.window.to,
                site: events.window.site,
                weights: weights.into(),
                distance,
                transform: if row_standardize {
                    Transform::Row
                } else {
                    Transform::Binary
                },
                alpha,
                fdr: !no_fdr,
                permutations,
                seed,
            };
            let batch = hotspots_batch(&ds, &o).await?;
            output.write(std::slice::from_ref(&batch), &hotspot_schema(), || {
                hotspots_svg(&batch, o.site.as_deref(), "Hot spots (Getis-Ord Gi*)").map(Some)
            })?;
        }
        Command::Risk {
            input,
            window: Window { from, to, site },
            output,
            by,
            half_life_days,
            no_exposure,
            prior_hours,
            rule,
            config,
        } => {
            use safetyscope_core::risk::{
                LevelRule, RiskOptions, risk_batch, risk_chart, risk_schema,
            };
            let mut o: RiskOptions = read_config(config.as_deref())?;
            o.from = from.or(o.from);
            o.to = to.or(o.to);
            o.site = site.or(o.site);
            o.by = by.into();
            o.half_life_days = half_life_days.or(o.half_life_days);
            o.per_exposure = o.per_exposure && !no_exposure;
            o.prior_hours = prior_hours.or(o.prior_hours);
            o.rule = match rule {
                Rule::Max => LevelRule::Max,
                Rule::Static => LevelRule::Static,
                Rule::Dynamic => LevelRule::Dynamic,
            };
            let ds = open(&input.data, input.timezone.as_deref())?;
            let batch = risk_batch(&ds, &o).await?;
            output.write(std::slice::from_ref(&batch), &risk_schema(), || {
                risk_chart(&batch, &o)
            })?;
        }
        Command::Density {
            input,
            source,
            window: Window { from, to, site },
            kernel,
            bandwidth,
            bandwidth_rule,
            resolution,
            weight,
            output,
        } => {
            use safetyscope_core::density::{
                DensityOptions, density_batch, density_schema, density_svg,
            };
            let json = serde_json::json!({
                "source": source, "site": site, "from": from, "to": to, "kernel": kernel,
                "bandwidth": bandwidth, "bandwidth_rule": bandwidth_rule, "resolution": resolution, "weight": weight,
            });
            let o: DensityOptions = serde_json::from_value(json)
                .map_err(|e| CliError::Usage(format!("density options: {e}")))?;
            let ds = open(&input.data, input.timezone.as_deref())?;
            let batch = density_batch(&ds, &o).await?;
            output.write(std::slice::from_ref(&batch), &density_schema(), || {
                density_svg(&batch, "Kernel density").map(Some)
            })?;
        }
        Command::Emerging {
            input,
            events,
            output,
            slice,
            weights,
            alpha,
        } => {
            use safetyscope_core::emerging::{EmergingOptions, emerging_batch, emerging_schema};
            let slice = serde_json::from_value(serde_json::Value::String(slice.clone()))
                .map_err(|_| CliError::Usage(format!("--slice: `{slice}` is not week or month")))?;
            let o = EmergingOptions {
                kinds: events.kinds()?,
                site: events.window.site,
                from: events.window.from,
                to: events.window.to,
                slice,
                weights: weights.into(),
                alpha,
            };
            let ds = open(&input.data, input.timezone.as_deref())?;
            let batch = emerging_batch(&ds, &o).await?;
            output.write(std::slice::from_ref(&batch), &emerging_schema(), || {
                safetyscope_core::emerging::emerging_svg(
                    &batch,
                    o.site.as_deref(),
                    "Emerging hot spots",
                )
                .map(Some)
            })?;
        }
        Command::Patterns {
            input,
            select,
            output,
            view,
        } => {
            use safetyscope_core::patterns::PatternView as V;
            let view = match view {
                View::Profile => V::Profile,
                View::Shifts => V::Shifts,
                View::ShiftEvents => V::ShiftEvents,
                View::Pareto => V::Pareto,
                View::Crosstab => V::Crosstab,
                View::Pyramid => V::Pyramid,
            };
            pattern_view(&input, select.options()?, view, &output).await?;
        }
        Command::Peaks {
            input,
            select,
            output,
            grid,
            alpha,
            cells,
        } => {
            use safetyscope_core::patterns as pt;
            let mut o = select.options()?;
            o.grid = match grid {
                Grid::HourWeekday => pt::PeakGrid::HourWeekday,
                Grid::Hour => pt::PeakGrid::Hour,
            };
            if let Some(a) = alpha {
                o.alpha = a;
            }
            let view = if cells {
                pt::PatternView::PeakCells
            } else {
                pt::PatternView::Peaks
            };
            pattern_view(&input, o, view, &output).await?;
        }
        Command::Trends {
            input,
            select,
            output,
        } => {
            let view = safetyscope_core::patterns::PatternView::Trends;
            pattern_view(&input, select.options()?, view, &output).await?;
        }
        Command::Knox {
            input,
            select,
            distance,
            days,
            permutations,
            seed,
            out,
            format,
        } => {
            use safetyscope_core::patterns as pt;
            let o = pt::KnoxOptions {
                events: select.options()?,
                distance,
                days,
                permutations,
                seed,
            };
            let ds = open(&input.data, input.timezone.as_deref())?;
            let r = pt::knox(&ds, &o).await?;
            let batch = pt::knox_batch(&r)?;
            emit(
                std::slice::from_ref(&batch),
                &batch.schema(),
                out.as_deref(),
                format,
            )?;
        }
        Command::Kpis {
            data,
            timezone,
            periods,
            scopes,
            site,
            kpi,
            as_of,
            catalogue,
            out,
            format,
        } => {
            use safetyscope_core::kpis::{KpiOptions, catalogue_markdown, kpis};
            if catalogue {
                print!("{}", catalogue_markdown());
                return Ok(());
            }
            let data = data
                .ok_or_else(|| CliError::Usage("kpis: give a dataset (or --catalogue)".into()))?;
            let ds = open(&data, timezone.as_deref())?;
            let o = KpiOptions {
                periods,
                scopes,
                site,
                kpis: kpi,
                as_of,
            };
            let batch = kpis(&ds, &o).await?;
            emit(
                std::slice::from_ref(&batch),
                &batch.schema(),
                out.as_deref(),
                format,
            )?;
        }
        Command::Targets {
            input,
            targets,
            as_of,
            expectation,
            output,
        } => {
            use safetyscope_core::kpis::{
                TargetOptions, parse_targets, targets_svg, track_targets,
            };
            let targets = match &targets {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .map_err(|e| safetyscope_core::Error::io(p, e))?;
                    Some(parse_targets(&text, &p.display().to_string())?)
                }
                None => None,
            };
            let o = TargetOptions {
                as_of,
                targets,
                expectation: expectation.replace('-', "_"),
                ..Default::default()
            };
            let ds = open(&input.data, input.timezone.as_deref())?;
            let batch = track_targets(&ds, &o).await?;
            output.write(std::slice::from_ref(&batch), &batch.schema(), || {
                targets_svg(&batch, "Targets").map(Some)
            })?;
        }
        Command::Alerts {
            input,
            list,
            as_of,
            from,
            site,
            thresholds,
            authorised,
            config,
            output,
        } => {
            use safetyscope_core::alerts::{AlertOptions, AlertView, run_view};
            let mut o: AlertOptions = read_config(config.as_deref())?;
            o.as_of = as_of.or(o.as_of);
            o.from = from.or(o.from);
            o.site = site.or(o.site);
            if !authorised.is_empty() {
                o.authorised = authorised;
            }
            for t in &thresholds {
                let (m, v) = t
                    .split_once('=')
                    .and_then(|(m, v)| v.trim().parse::<f64>().ok().map(|v| (m.trim(), v)))
                    .ok_or_else(|| {
                        CliError::Usage(format!("--threshold: `{t}` is not METRIC=VALUE"))
                    })?;
                o.thresholds.insert(m.to_string(), v);
            }
            let view = AlertView::parse(&list)?;
            let ds = open(&input.data, input.timezone.as_deref())?;
            if let (AlertView::Points, Some(path), None, None) =
                (view, &output.out, &output.svg, &output.png)
            {
                // A row per person and month: written as it is computed.
                let (rows, _) = safetyscope_core::alerts::write_points_ledger(
                    &ds,
                    &o,
                    std::slice::from_ref(path),
                )
                .await?;
                eprintln!("wrote {} ({rows} rows)", path.display());
                return Ok(());
            }
            let (batch, svg) = run_view(&ds, view, &o).await?;
            output.write(std::slice::from_ref(&batch), &batch.schema(), || Ok(svg))?;
        }
        Command::Dashboard {
            data,
            timezone,
            out,
            single_file,
            pkg,
        } => {
            let pkg = pkg
                .or_else(|| std::env::var_os("SAFETYSCOPE_WEB_PKG").map(PathBuf::from))
                .ok_or_else(|| {
                    CliError::Usage(
                        "dashboard: give --pkg DIR (the WASM bindings, scripts/build-wasm.sh) or set SAFETYSCOPE_WEB_PKG".into(),
                    )
                })?;
            if out.is_none() && single_file.is_none() {
                return Err(CliError::Usage(
                    "dashboard: give --out SITE_DIR and/or --single-file report.html".into(),
                ));
            }
            let ds = open(&data, timezone.as_deref())?;
            if let Some(dir) = &out {
                safetyscope_core::bundle::write_site(&ds, &pkg, dir).await?;
                eprintln!("wrote {}", dir.display());
            }
            if let Some(file) = &single_file {
                safetyscope_core::bundle::write_single_file(&ds, &pkg, file).await?;
                eprintln!("wrote {}", file.display());
            }
        }
        Command::Run {
            job,
            period,
            cluster: Some(cluster),
            log_format,
        } => {
            let exe = std::env::current_exe()
                .map_err(|e| CliError::Usage(format!("cannot locate this binary: {e}")))?
                .with_file_name("safetyscope-cluster");
            if !exe.is_file() {
                return Err(CliError::Usage(format!(
                    "--cluster needs {}: build it with `make build-cluster` (cargo build -p safetyscope-cluster)",
                    exe.display()
                )));
            }
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("run").arg(&job).arg("--cluster").arg(&cluster);
            if !period.is_empty() {
                cmd.arg("--period").arg(period.join(","));
            }
            cmd.arg("--log-format").arg(match log_format {
                LogFormat::Plain => "plain",
                LogFormat::Json => "json",
            });
            let status = cmd
                .status()
                .map_err(|e| CliError::Usage(format!("cannot start {}: {e}", exe.display())))?;
            if !status.success() {
                return Err(CliError::Cluster(status.code().unwrap_or(1)));
            }
        }
        Command::Run {
            job,
            period,
            cluster: None,
            log_format,
        } => {
            use safetyscope_core::job::{Event, Job, run_periods};
            let text =
                std::fs::read_to_string(&job).map_err(|e| safetyscope_core::Error::io(&job, e))?;
            let parsed = Job::parse(&text, &job.display().to_string())?;
            let base = job.parent().map(Path::to_path_buf).unwrap_or_default();
            let reporter = Reporter::new(log_format);
            let mut log = |e: Event| reporter.event(&e.stage, &e.message);
            let summary = run_periods(&parsed, &base, &period, &mut log, &|p| {
                reporter.progress(&p)
            })
            .await?;
            let out = base.join(&parsed.out).join("run-summary.json");
            let body =
                serde_json::to_vec_pretty(&summary).map_err(|e| CliError::Usage(e.to_string()))?;
            write_atomic(&out, &body)?;
            reporter.event(
                "done",
                &format!(
                    "{} outputs, summary {}",
                    summary.outputs.len(),
                    out.display()
                ),
            );
        }
        Command::Schema { markdown } => {
            if markdown {
                print!("{}", safetyscope_core::schema::data_model_markdown());
            } else {
                for k in TableKind::ALL {
                    println!(
                        "{}",
                        k.def()
                            .arrow_schema(safetyscope_core::timeparse::DEFAULT_TIMEZONE)
                    );
                }
            }
        }
    }
    Ok(())
}

/// Options from a TOML file (the fields of the options struct), or the
/// defaults; errors name the file.
fn read_config<T: serde::de::DeserializeOwned + Default>(
    path: Option<&Path>,
) -> Result<T, CliError> {
    let Some(p) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(p).map_err(|e| safetyscope_core::Error::io(p, e))?;
    toml::from_str(&text).map_err(|e| CliError::Usage(format!("{}: {}", p.display(), e.message())))
}

async fn pattern_view(
    input: &Input,
    o: safetyscope_core::patterns::PatternOptions,
    view: safetyscope_core::patterns::PatternView,
    output: &Output,
) -> Result<(), CliError> {
    let ds = open(&input.data, input.timezone.as_deref())?;
    let (batch, svg) = safetyscope_core::patterns::run_view(&ds, view, &o).await?;
    output.write(std::slice::from_ref(&batch), &batch.schema(), || Ok(svg))
}

fn emit(
    batches: &[RecordBatch],
    schema: &SchemaRef,
    out: Option<&Path>,
    format: Print,
) -> Result<(), CliError> {
    if let Some(out) = out {
        write_batches(out, batches, schema)?;
        eprintln!(
            "wrote {} ({} rows)",
            out.display(),
            batches.iter().map(RecordBatch::num_rows).sum::<usize>()
        );
        return Ok(());
    }
    use safetyscope_core::output::{OutputFormat, encode};
    use std::io::Write;
    let text = match format {
        Print::Table => datafusion::arrow::util::pretty::pretty_format_batches(batches)
            .map_err(safetyscope_core::Error::from)?
            .to_string()
            .into_bytes(),
        Print::Csv => encode(batches, schema, OutputFormat::Csv)?,
        Print::Json => encode(batches, schema, OutputFormat::Json)?,
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&text);
    let _ = stdout.write_all(b"\n");
    Ok(())
}

/// Log lines and progress on stderr: plain lines with a live progress line
/// on a terminal, plain lines with a progress line every few seconds
/// otherwise, or one JSON object per line.
struct Reporter {
    format: LogFormat,
    live: bool,
    start: Instant,
    state: std::sync::Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// Per table: rows read, rows to read, done.
    tables: std::collections::BTreeMap<&'static str, (u64, Option<u64>, bool)>,
    /// Seconds since start when progress was last shown.
    shown: f64,
    /// A live line is on screen.
    line: bool,
}

impl Reporter {
    fn new(format: LogFormat) -> Reporter {
        use std::io::IsTerminal;
        Reporter {
            format,
            live: matches!(format, LogFormat::Plain) && std::io::stderr().is_terminal(),
            start: Instant::now(),
            state: std::sync::Mutex::new(ProgressState::default()),
        }
    }

    fn line(&self, stage: &str, message: &str, state: &mut ProgressState) {
        let t = self.start.elapsed().as_secs_f64();
        if state.line {
            eprint!("\r\x1b[2K");
            state.line = false;
        }
        match self.format {
            LogFormat::Plain => eprintln!("[{t:>7.2}s] {stage}: {message}"),
            LogFormat::Json => eprintln!(
                "{}",
                serde_json::json!({"t": t, "stage": stage, "message": message})
            ),
        }
    }

    /// A log line.
    fn event(&self, stage: &str, message: &str) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.line(stage, message, &mut state);
    }

    /// Progress of an ingest: a live line on a terminal (redrawn at most ten
    /// times a second), otherwise a line per finished table and a summary
    /// line every five seconds.
    fn progress(&self, p: &safetyscope_core::store::Progress) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .tables
            .insert(p.table, (p.rows_read, p.rows_total, p.done));
        let t = self.start.elapsed().as_secs_f64();
        if p.done {
            let message = format!("{}: {} rows read", p.table, p.rows_read);
            self.line("ingest", &message, &mut state);
        }
        let every = if self.live { 0.1 } else { 5.0 };
        if t - state.shown < every {
            return;
        }
        state.shown = t;
        let parts: Vec<String> = state
            .tables
            .iter()
            .filter(|(_, (_, _, done))| !done)
            .map(|(name, (read, total, _))| match total {
                Some(n) if *n > 0 && *read > 0 => {
                    let share = *read as f64 / *n as f64;
                    let eta = t * (1.0 - share) / share;
                    format!("{name} {read}/{n} ({:.0} %, ETA {eta:.0} s)", share * 100.0)
                }
                _ => format!("{name} {read}"),
            })
            .collect();
        if parts.is_empty() {
            return;
        }
        let message = format!("reading {}", parts.join(" · "));
        if self.live {
            eprint!("\r\x1b[2K[{t:>7.2}s] ingest: {message}");
            state.line = true;
        } else {
            self.line("ingest", &message, &mut state);
        }
    }
}
