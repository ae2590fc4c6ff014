//! `safetyscope-cluster`: safetyscope's batch jobs on Apache DataFusion
//! Ballista, the DataFusion project's distributed engine.
//!
//! One binary, three roles:
//!
//! - `safetyscope-cluster scheduler [--bind-host H --bind-port P …]` — a
//!   Ballista scheduler (all of Ballista's scheduler options);
//! - `safetyscope-cluster executor [--scheduler-host H --scheduler-port P
//!   --bind-port P --bind-grpc-port P …]` — a Ballista executor (all of
//!   Ballista's executor options);
//! - `safetyscope-cluster run JOB.toml --cluster df://HOST:PORT` — the same
//!   job file as `safetyscope run`: the executors validate the dataset into
//!   the job's store, then every analysis's queries run on the cluster,
//!   which reads the store's Parquet files (every process must see the
//!   sources and the store at the same paths: a shared file system, or one
//!   machine; sources may also be objects on S3);
//! - `safetyscope-cluster ingest DATA --out STORE --cluster df://HOST:PORT`
//!   — `safetyscope ingest` with the executors doing the work.
//!
//! The scheduler and executors are Ballista's, with safetyscope's aggregate
//! functions registered in their sessions and the extension codecs of its
//! plan nodes (the ingest, [`codec`]) in theirs and the runner's, so that
//! the plans that name them run on the executors; a stock Ballista cluster
//! cannot run those plans.
//!
//! Exit codes: as `safetyscope` (0 done; 1 bad data; 2 bad job or options;
//! 3 an output could not be written; 4 a query failed, including a cluster
//! that cannot be reached or loses the executors of a running job).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

mod codec;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use clap::{Parser, Subcommand, ValueEnum};
use datafusion::prelude::SessionContext;

#[derive(Parser)]
#[command(
    name = "safetyscope-cluster",
    version,
    about = "safetyscope jobs on Apache DataFusion Ballista: scheduler, executor, job runner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Ballista scheduler.
    Scheduler(Box<ballista_scheduler::config::Config>),
    /// Run a Ballista executor.
    Executor(Box<ballista_executor::config::Config>),
    /// Run a job file with its queries on a cluster.
    Run {
        /// The job file (TOML), as for `safetyscope run`.
        job: PathBuf,
        /// The scheduler: `df://HOST:PORT`.
        #[arg(long)]
        cluster: String,
        /// Rewrite only these periods of the results partitioned by `period`.
        #[arg(long, value_delimiter = ',')]
        period: Vec<String>,
        /// Log lines as plain text or JSON objects (on stderr).
        #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
        log_format: LogFormat,
        /// Give up (exit code 4) when the job has not finished after this
        /// many seconds: a cluster that stalls fails the job instead of
        /// holding the nightly schedule.
        #[arg(long, default_value_t = 3600)]
        timeout_seconds: u64,
        /// Let the job's paths lead outside its directory (as for
        /// `safetyscope --allow-outside run`; docs/security.md).
        #[arg(long)]
        allow_outside: bool,
    },
    /// Validate a dataset into a store with the cluster's executors (as
    /// `safetyscope ingest`).
    Ingest {
        /// Dataset directory or mapping file (.toml).
        data: PathBuf,
        /// The store directory (replaced as a whole when complete).
        #[arg(long)]
        out: PathBuf,
        /// The scheduler: `df://HOST:PORT`.
        #[arg(long)]
        cluster: String,
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
        /// Rows per executor task: a Parquet source with more rows is split
        /// at its row groups into tasks of about this many rows.
        #[arg(long, default_value_t = 1 << 20)]
        task_rows: u64,
        /// Log lines as plain text or JSON objects (on stderr).
        #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
        log_format: LogFormat,
        /// Give up (exit code 4) when the ingest has not finished after
        /// this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_seconds: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ballista's planners recurse deeply: the same stack as its binaries.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Scheduler(config) => role(rt.block_on(scheduler(*config))),
        Command::Executor(config) => role(rt.block_on(executor(*config))),
        Command::Run {
            job,
            cluster,
            period,
            log_format,
            timeout_seconds,
            allow_outside,
        } => {
            safetyscope_core::confine::set_allow_outside(allow_outside);
            finish(
                &rt,
                &cluster,
                timeout_seconds,
                "job",
                run(&job, &cluster, &period, log_format),
            )
        }
        Command::Ingest {
            data,
            out,
            cluster,
            timezone,
            rows_per_file,
            lock_wait,
            task_rows,
            log_format,
            timeout_seconds,
        } => {
            let options = safetyscope_core::store::IngestOptions {
                rows_per_file,
                task_rows,
                lock_wait: std::time::Duration::from_secs(lock_wait),
                ..Default::default()
            };
            finish(
                &rt,
                &cluster,
                timeout_seconds,
                "ingest",
                ingest(
                    &data,
                    &out,
                    &cluster,
                    timezone.as_deref(),
                    &options,
                    log_format,
                ),
            )
        }
    }
}

/// Run `work` on `cluster` within `timeout_seconds`; its exit code.
fn finish(
    rt: &tokio::runtime::Runtime,
    cluster: &str,
    timeout_seconds: u64,
    what: &str,
    work: impl std::future::Future<Output = safetyscope_core::Result<()>>,
) -> ExitCode {
    let limit = std::time::Duration::from_secs(timeout_seconds);
    let result = rt.block_on(async {
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(safetyscope_core::Error::Query(
                datafusion::error::DataFusionError::Execution(format!(
                    "the {what} did not finish on {cluster} within {timeout_seconds} s (see the scheduler's log); no output of an unfinished analysis was written"
                )),
            ))
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = e.to_string();
            match unreachable_executor(&message, cluster) {
                Some(at) => eprintln!(
                    "error: Executor lost: the results of a query could not be fetched from the executor at {at}, which no longer answers; no output of an unfinished analysis was written ({message})"
                ),
                None => eprintln!("error: {message}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// The address of an executor that stopped answering while the client
/// fetched query results from it, read from the message Ballista's client
/// gives (`GrpcConnectionError("Error connecting to Ballista scheduler or
/// executor at http://HOST:PORT: …")`); `None` for other errors and for the
/// scheduler's own address (`cluster`, `df://HOST:PORT`).
fn unreachable_executor<'a>(message: &'a str, cluster: &str) -> Option<&'a str> {
    const AT: &str = "executor at ";
    if !message.contains("GrpcConnectionError") {
        return None;
    }
    let rest = &message[message.find(AT)? + AT.len()..];
    let at = &rest[..rest.find(": ").unwrap_or(rest.len())];
    let host_port = |url: &str| {
        url.split_once("://")
            .map_or(url, |(_, r)| r)
            .trim_end_matches('/')
            .to_string()
    };
    (host_port(at) != host_port(cluster)).then_some(at)
}

fn role(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn init_logs(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

async fn scheduler(opt: ballista_scheduler::config::Config) -> Result<(), String> {
    init_logs(&opt.log_level_setting);
    let addr = format!("{}:{}", opt.bind_host, opt.bind_port)
        .parse()
        .map_err(|e: std::net::AddrParseError| e.to_string())?;
    let config: ballista_scheduler::config::SchedulerConfig =
        opt.try_into().map_err(|e| format!("{e}"))?;
    // Plans name safetyscope's aggregate functions: the scheduler's
    // sessions know them.
    let mut config = config.with_override_session_builder(Arc::new(|c| {
        use datafusion::execution::FunctionRegistry;
        let mut state = ballista_core::utils::default_session_builder(c)?;
        for f in safetyscope_core::udafs() {
            state.register_udaf(f)?;
        }
        Ok(state)
    }));
    config.override_logical_codec = Some(Arc::new(codec::LogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(codec::PhysicalCodec::default()));
    let cluster = ballista_scheduler::cluster::BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    ballista_scheduler::scheduler_process::start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(|e| e.to_string())
}

async fn executor(opt: ballista_executor::config::Config) -> Result<(), String> {
    let mut config: ballista_executor::executor_process::ExecutorProcessConfig =
        opt.try_into().map_err(|e| format!("{e}"))?;
    // The tasks' plans name safetyscope's aggregate functions.
    let mut registry = ballista_core::registry::BallistaFunctionRegistry::default();
    for f in safetyscope_core::udafs() {
        registry.aggregate_functions.insert(f.name().to_string(), f);
    }
    config.override_function_registry = Some(Arc::new(registry));
    // The tasks' plans hold safetyscope's plan nodes.
    config.override_logical_codec = Some(Arc::new(codec::LogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(codec::PhysicalCodec::default()));
    init_logs(&config.special_mod_log_level);
    ballista_executor::executor_process::start_executor_process(Arc::new(config))
        .await
        .map_err(|e| e.to_string())
}

/// A session on the cluster at `cluster` (`df://HOST:PORT`) whose plans
/// may hold safetyscope's plan nodes.
async fn connect(cluster: &str) -> safetyscope_core::Result<SessionContext> {
    if !cluster.starts_with("df://") {
        return Err(safetyscope_core::Error::option(
            "cluster",
            format!("`{cluster}` is not a scheduler address (df://HOST:PORT)"),
        ));
    }
    let config = datafusion::prelude::SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(codec::LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(codec::PhysicalCodec::default()));
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    Ok(SessionContext::remote_with_state(cluster, state).await?)
}

fn logger(log_format: LogFormat) -> impl Fn(&str, &str) {
    let start = Instant::now();
    move |stage: &str, message: &str| match log_format {
        LogFormat::Plain => eprintln!(
            "[{:>7.2}s] {stage}: {message}",
            start.elapsed().as_secs_f64()
        ),
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({"t": start.elapsed().as_secs_f64(), "stage": stage, "message": message})
        ),
    }
}

async fn ingest(
    data: &Path,
    out: &Path,
    cluster: &str,
    timezone: Option<&str>,
    options: &safetyscope_core::store::IngestOptions,
    log_format: LogFormat,
) -> safetyscope_core::Result<()> {
    // The store replaces `out` whole: it must not hold the data.
    safetyscope_core::confine::check_output(out, &[data.to_path_buf()])?;
    safetyscope_core::confine::check_output(data, &[out.to_path_buf()])?;
    let log = logger(log_format);
    log("cluster", &format!("connecting to {cluster}"));
    let ctx = connect(cluster).await?;
    let m = safetyscope_core::ingest_plan::ingest_in(data, timezone, out, options, &ctx, &|p| {
        if p.done {
            log("ingest", &format!("{}: {} rows read", p.table, p.rows_read));
        }
    })
    .await?;
    let (lines, files, bytes) = m.summary();
    for line in &lines {
        log("ingest", line);
    }
    log(
        "done",
        &format!(
            "wrote {} ({files} files, {:.1} MB) on {cluster}",
            out.display(),
            bytes as f64 / 1e6
        ),
    );
    Ok(())
}

async fn run(
    job: &Path,
    cluster: &str,
    period: &[String],
    log_format: LogFormat,
) -> safetyscope_core::Result<()> {
    use safetyscope_core::job::{Event, Job, run_in};
    let text = std::fs::read_to_string(job).map_err(|e| safetyscope_core::Error::io(job, e))?;
    let parsed = Job::parse(&text, &job.display().to_string())?;
    let base = job.parent().map(Path::to_path_buf).unwrap_or_default();
    let log = logger(log_format);
    log("cluster", &format!("connecting to {cluster}"));
    let ctx = connect(cluster).await?;
    let summary = run_in(
        &parsed,
        &base,
        period,
        &mut |e: Event| log(&e.stage, &e.message),
        &|p| {
            if p.done {
                log("ingest", &format!("{}: {} rows read", p.table, p.rows_read));
            }
        },
        Some(ctx),
    )
    .await?;
    let out = base
        .join(&parsed.out)
        .join(safetyscope_core::job::SUMMARY_FILE);
    log(
        "done",
        &format!(
            "{} outputs on {cluster}, summary {}",
            summary.outputs.len(),
            out.display()
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unreachable_executor;

    #[test]
    fn a_lost_executor_is_named() {
        let m = "query error: Execution error: GrpcConnectionError(\"Error connecting to Ballista scheduler or executor at http://127.0.0.1:44217: tonic::transport::Error(Transport, ConnectError(\\\"tcp connect error\\\"))\")";
        assert_eq!(
            unreachable_executor(m, "df://127.0.0.1:50050"),
            Some("http://127.0.0.1:44217")
        );
        // The scheduler itself, and other errors, are left as they are.
        assert_eq!(unreachable_executor(m, "df://127.0.0.1:44217"), None);
        assert_eq!(
            unreachable_executor("query error: Execution error: out of memory", "df://h:1"),
            None
        );
    }
}
