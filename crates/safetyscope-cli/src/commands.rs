//! The commands that are not analyses: generate, ingest, validate, sql,
//! dashboard, run and schema.

use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use safetyscope_core::generate::{GenerateOptions, generate_to_dir};
use safetyscope_core::{Dataset, OnTableError, TableKind};

use crate::reporter::Reporter;
use crate::{CliError, Command, LogFormat, emit, open};

/// Run a command.
pub async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Ingest {
            data,
            out,
            timezone,
            rows_per_file,
            lock_wait,
            log_format,
            cluster: Some(cluster),
            task_rows,
        } => {
            let mut cmd = cluster_command()?;
            cmd.arg("ingest")
                .arg(&data)
                .arg("--out")
                .arg(&out)
                .arg("--cluster")
                .arg(&cluster)
                .arg("--rows-per-file")
                .arg(rows_per_file.to_string())
                .arg("--lock-wait")
                .arg(lock_wait.to_string())
                .arg("--task-rows")
                .arg(task_rows.to_string());
            if let Some(tz) = &timezone {
                cmd.arg("--timezone").arg(tz);
            }
            run_cluster(cmd, log_format)?;
        }
        Command::Ingest {
            data,
            out,
            timezone,
            rows_per_file,
            lock_wait,
            log_format,
            cluster: None,
            task_rows: _,
        } => {
            // The store replaces `out` whole: it must not hold the data.
            safetyscope_core::confine::check_output(&out, std::slice::from_ref(&data))?;
            safetyscope_core::confine::check_output(&data, std::slice::from_ref(&out))?;
            let reporter = Reporter::new(log_format);
            let options = safetyscope_core::store::IngestOptions {
                rows_per_file,
                lock_wait: std::time::Duration::from_secs(lock_wait),
                ..Default::default()
            };
            let m = safetyscope_core::store::ingest(
                &data,
                timezone.as_deref(),
                &out,
                &options,
                &|p| reporter.progress(&p),
            )?;
            let (lines, files, bytes) = m.summary();
            for line in &lines {
                reporter.event("ingest", line);
            }
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
                print!("{}", safetyscope_core::api::enabled_text(report));
            }
            let mut problems = Vec::new();
            for (t, e) in ds.unusable_tables() {
                problems.push(format!("table `{t}` is unusable: {e}"));
            }
            // By default, what the dataset declares: each of its tables that
            // has rows must keep some (an empty source is an empty table).
            let require = if require.is_empty() {
                let declared: Vec<String> = ds
                    .report()
                    .tables
                    .values()
                    .filter(|t| t.rows_read > 0)
                    .map(|t| t.table.clone())
                    .collect();
                if ds.report().tables.is_empty() {
                    problems.push("the dataset declares no table".to_string());
                }
                declared
            } else {
                require
            };
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
                let code = ds.unusable_error().map_or(1, |e| e.exit_code());
                return Err(CliError::Unusable(problems.join("\n"), code));
            }
        }
        Command::Sql {
            data,
            query,
            out,
            format,
            timezone,
            allow_write,
        } => {
            let ds = open(&data, timezone.as_deref())?;
            crate::check_outputs(&data, &ds, out.as_deref())?;
            let df = ds.sql_with(&query, allow_write).await?;
            let schema: SchemaRef = df.schema().inner().clone();
            let batches = df.collect().await?;
            emit(&batches, &schema, out.as_deref(), format)?;
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
            crate::check_outputs(
                &data,
                &ds,
                out.iter().chain(&single_file).map(PathBuf::as_path),
            )?;
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
            let mut cmd = cluster_command()?;
            cmd.arg("run").arg(&job).arg("--cluster").arg(&cluster);
            if !period.is_empty() {
                cmd.arg("--period").arg(period.join(","));
            }
            if safetyscope_core::confine::allow_outside() {
                cmd.arg("--allow-outside");
            }
            run_cluster(cmd, log_format)?;
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
            let out = base
                .join(&parsed.out)
                .join(safetyscope_core::job::SUMMARY_FILE);
            reporter.event(
                "done",
                &format!(
                    "{} outputs, summary {}",
                    summary.outputs.len(),
                    out.display()
                ),
            );
        }
        Command::Options { markdown } => {
            if markdown {
                print!("{}", safetyscope_core::api::markdown());
            } else {
                let text = serde_json::to_string_pretty(&safetyscope_core::api::registry_json())
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                println!("{text}");
            }
        }
        Command::MapInit { file, table, out } => match out {
            Some(o) => {
                safetyscope_core::io::draft::write_draft_mapping(&file, table.as_deref(), &o)?;
                eprintln!("wrote {}", o.display());
            }
            None => print!(
                "{}",
                safetyscope_core::io::draft::draft_mapping(&file, table.as_deref(), None)?
            ),
        },
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

/// The `safetyscope-cluster` binary beside this one, as a command.
fn cluster_command() -> Result<std::process::Command, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Usage(format!("cannot locate this binary: {e}")))?
        .with_file_name("safetyscope-cluster");
    if !exe.is_file() {
        return Err(CliError::Usage(format!(
            "--cluster needs {}: build it with `make build-cluster` (cargo build -p safetyscope-cluster)",
            exe.display()
        )));
    }
    Ok(std::process::Command::new(&exe))
}

/// Run a `safetyscope-cluster` command to its end; its failure as this
/// binary's (it printed why).
fn run_cluster(mut cmd: std::process::Command, log_format: LogFormat) -> Result<(), CliError> {
    cmd.arg("--log-format").arg(match log_format {
        LogFormat::Plain => "plain",
        LogFormat::Json => "json",
    });
    let status = cmd
        .status()
        .map_err(|e| CliError::Usage(format!("cannot start {:?}: {e}", cmd.get_program())))?;
    if !status.success() {
        return Err(CliError::Cluster(status.code().unwrap_or(1)));
    }
    Ok(())
}
