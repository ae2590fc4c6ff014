//! `safetyscope`: the command line of safetyscope, for analysts and for the
//! batch jobs of a big-data platform.
//!
//! The analysis subcommands and their flags come from the core's registry
//! of analyses (`safetyscope_core::api`); the other commands are here.
//!
//! Exit codes: 0 success; 1 bad data (a required table unusable, rejected
//! input); 2 bad usage or configuration (options, mapping file); 3 an output
//! could not be written; 4 a query failed.

/// jemalloc returns memory the query engine's threads free (glibc's malloc
/// kept it: the nightly job's peak at 100 M events, 828 → 520 MB).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod analyses;
mod commands;
mod reporter;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use safetyscope_core::output::write_batches;
use safetyscope_core::{Dataset, OnTableError};

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
    /// Let paths in mapping and job files lead outside the file's own
    /// directory (absolute paths, `..`, links out, other buckets). Off by
    /// default: a mapping or job file handed to this process can then read
    /// and write only beside itself (docs/security.md).
    #[arg(long, global = true)]
    allow_outside: bool,
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
        /// Seconds to wait for other processes reading or writing the
        /// store before failing with exit code 3.
        #[arg(long, default_value_t = 60)]
        lock_wait: u64,
        /// Progress and log lines as plain text or JSON objects (on stderr).
        #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
        log_format: LogFormat,
        /// Validate and write the store with a Ballista cluster's executors
        /// (`df://HOST:PORT`), through the `safetyscope-cluster` binary beside
        /// this one; every process must see the sources and the store at
        /// the same paths (docs/cluster.md).
        #[arg(long)]
        cluster: Option<String>,
        /// With --cluster: rows per executor task; a Parquet source with
        /// more rows is split at its row groups into tasks of about this
        /// many rows.
        #[arg(long, default_value_t = 1 << 20)]
        task_rows: u64,
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
        /// Tables that must be present with accepted rows (default: every
        /// table the dataset declares whose sources have rows; a dataset
        /// declaring none fails).
        #[arg(long, value_delimiter = ',')]
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
        /// Also run DDL, DML and COPY (`CREATE EXTERNAL TABLE`, `COPY … TO
        /// 'file'`): without it only queries run, as a shared platform needs.
        #[arg(long)]
        allow_write: bool,
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
    /// Print the registry of analyses: every analysis with its options,
    /// kinds, defaults and docs (JSON, or the Markdown of docs/cli.md).
    Options {
        /// As the Markdown of docs/cli.md.
        #[arg(long)]
        markdown: bool,
    },
    /// Write a commented draft mapping for a file: the table, the source
    /// column of each canonical column, date formats (checked to read the
    /// sample one way only), coordinates and value maps, guessed from the
    /// header and a sample. Lines to check are marked EDIT.
    MapInit {
        /// The data file (CSV, Parquet, NDJSON, Arrow IPC).
        file: PathBuf,
        /// The canonical table the file holds (default: guessed).
        #[arg(long)]
        table: Option<String>,
        /// Write the draft here (a new file) instead of printing it; the
        /// data file is named relative to it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the canonical data model.
    Schema {
        /// As the Markdown of docs/data-model.md.
        #[arg(long)]
        markdown: bool,
    },
}

/// Log lines as plain text or JSON objects.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

/// A result printed on stdout.
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
    /// Validation found problems; the code is that of the first unusable
    /// table's failure (3 for a missing file), else 1.
    #[error("{0}")]
    Unusable(String, u8),
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
            CliError::Unusable(_, code) => *code,
            CliError::Cluster(code) => u8::try_from(*code).unwrap_or(1),
            CliError::Core(e) => e.exit_code(),
        }
    }
}

fn main() -> ExitCode {
    let mut command = Cli::command();
    for a in safetyscope_core::api::ANALYSES {
        command = command.subcommand(analyses::command(a));
    }
    let matches = command.get_matches();
    let memory_limit = matches.get_one::<usize>("memory_limit").copied();
    safetyscope_core::confine::set_allow_outside(matches.get_flag("allow_outside"));
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
    let run = std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            safetyscope_core::dataset::set_memory_limit(memory_limit)?;
            if let Some((name, sub)) = matches.subcommand()
                && let Ok(a) = safetyscope_core::api::analysis(name)
            {
                return analyses::run(a, sub).await;
            }
            let cli =
                Cli::from_arg_matches(&matches).map_err(|e| CliError::Usage(e.to_string()))?;
            commands::run(cli.command).await
        })
    });
    // A panic is a bug, whatever the input: exit 4 with a request to report
    // it (the panic message is printed above by the default hook).
    let Ok(result) = std::panic::catch_unwind(run) else {
        eprintln!(
            "error: internal error (a bug, not your input's fault): please report it with the command line and the message above"
        );
        return ExitCode::from(4);
    };
    match result {
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

/// Refuse outputs that would replace or join the dataset's own files.
fn check_outputs<'a>(
    data: &Path,
    ds: &Dataset,
    outs: impl IntoIterator<Item = &'a Path>,
) -> Result<(), CliError> {
    let mut inputs = vec![data.to_path_buf()];
    inputs.extend(ds.input_paths());
    for out in outs {
        safetyscope_core::confine::check_output(out, &inputs)?;
    }
    Ok(())
}

/// Write a chart (SVG or PNG by extension).
fn write_chart(path: &Path, svg: &str) -> Result<(), CliError> {
    safetyscope_core::output::write_chart(path, svg)?;
    eprintln!("wrote {}", path.display());
    Ok(())
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
