//! The analysis subcommands, made from the core's registry: one subcommand
//! per analysis, one flag per option with the registry's doc and default.
//! Flags that were given override `--config`; flags that were not given
//! change nothing.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use safetyscope_core::api::{Analysis, OptionKind, OptionSpec, option_value};
use serde_json::{Map, Value};

use crate::{CliError, Print, emit, open, write_chart};

/// The subcommand of an analysis.
pub fn command(a: &'static Analysis) -> Command {
    let mut c = Command::new(a.name)
        .about(a.summary)
        .long_about(format!("{}\n\n{}", a.summary, a.about))
        .arg(
            Arg::new("data")
                .help("Dataset directory, store or mapping file (.toml)")
                .value_parser(clap::value_parser!(PathBuf))
                .required(true),
        )
        .arg(flag("timezone", "Dataset timezone (overrides the mapping)"))
        .arg(
            flag(
                "config",
                "Options file (TOML, the options below); flags given override it",
            )
            .value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(
            flag(
                "out",
                "Result file (.parquet, .csv, .json, .ndjson; .html for the report's document)",
            )
            .value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(
            flag("format", "Output format on stdout when no --out is given")
                .value_parser(["table", "csv", "json"])
                .default_value("table"),
        );
    if a.chart.is_some() {
        c = c
            .arg(
                flag("svg", "SVG chart (of one site for grid charts)")
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .arg(
                flag("png", "The same chart as a PNG image")
                    .value_parser(clap::value_parser!(PathBuf)),
            );
    }
    if a.name == "kpis" {
        c = c.arg(
            Arg::new("catalogue")
                .long("catalogue")
                .action(ArgAction::SetTrue)
                .help("Print the KPI catalogue (Markdown) instead"),
        );
        c = c.mut_arg("data", |d| {
            d.required(false).required_unless_present("catalogue")
        });
    }
    for p in a.params {
        let mut arg = flag(p.name, p.doc).help(format!(
            "{} ({}) [default: {}]",
            p.doc,
            p.choices.join(", "),
            p.default
        ));
        if p.choices == ["true", "false"] {
            arg = arg
                .num_args(0..=1)
                .default_missing_value("true")
                .require_equals(false);
        }
        c = c.arg(arg);
    }
    let specs = a.options();
    for s in &specs {
        c = c.arg(option_arg(s));
        if s.kind == OptionKind::Bool && s.default == Value::Bool(true) {
            c = c.arg(
                Arg::new(format!("no-{}", s.name))
                    .long(format!("no-{}", s.name.replace('_', "-")))
                    .action(ArgAction::SetTrue)
                    .help(format!("Set {} to false", s.name)),
            );
        }
    }
    for (alias, option, value) in a.aliases {
        let Some(s) = specs.iter().find(|s| s.name == *option) else {
            continue;
        };
        let arg = Arg::new(format!("alias-{alias}")).long(*alias);
        c = c.arg(match value {
            Some(v) => arg
                .action(ArgAction::SetTrue)
                .help(format!("Same as {option} = {v}")),
            None => arg
                .action(ArgAction::Append)
                .value_name(value_name(&s.kind))
                .help(format!("Same as --{}", option.replace('_', "-"))),
        });
    }
    c
}

fn flag(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name.replace('_', "-"))
        .action(ArgAction::Set)
        .help(help)
}

fn value_name(kind: &OptionKind) -> &'static str {
    match kind {
        OptionKind::Bool => "true|false",
        OptionKind::Integer => "N",
        OptionKind::Number => "X",
        OptionKind::Text => "TEXT",
        OptionKind::Choice(_) => "CHOICE",
        OptionKind::List(_) => "A,B,…",
        OptionKind::Map => "NAME=X",
        OptionKind::Json => "JSON",
    }
}

fn option_arg(s: &OptionSpec) -> Arg {
    let mut help = s.doc.clone();
    if let OptionKind::Choice(values) = &s.kind {
        help.push_str(&format!(" ({})", values.join(", ")));
    }
    if let OptionKind::List(inner) = &s.kind
        && let OptionKind::Choice(values) = inner.as_ref()
    {
        help.push_str(&format!(" ({})", values.join(", ")));
    }
    if !s.default.is_null() {
        help.push_str(&format!(" [default: {}]", display(&s.default)));
    }
    let arg = Arg::new(s.name.clone())
        .long(s.name.replace('_', "-"))
        .value_name(value_name(&s.kind))
        .help(help);
    match s.kind {
        OptionKind::Bool => arg
            .action(ArgAction::Set)
            .num_args(0..=1)
            .default_missing_value("true"),
        OptionKind::List(_) | OptionKind::Map => arg.action(ArgAction::Append),
        _ => arg.action(ArgAction::Set),
    }
}

/// A default value as the help shows it.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(display).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn given(m: &ArgMatches, id: &str) -> bool {
    m.value_source(id) == Some(ValueSource::CommandLine)
}

fn texts(m: &ArgMatches, id: &str) -> Vec<String> {
    m.get_many::<String>(id)
        .map(|v| v.cloned().collect())
        .unwrap_or_default()
}

/// The options object of a subcommand's matches: `--config`, then the
/// flags that were given.
fn options(a: &Analysis, m: &ArgMatches) -> Result<Map<String, Value>, CliError> {
    let mut o = match m.get_one::<PathBuf>("config") {
        Some(p) => read_config(p)?,
        None => Map::new(),
    };
    for p in a.params {
        if given(m, p.name)
            && let Some(v) = m.get_one::<String>(p.name)
        {
            o.insert(p.name.to_string(), Value::String(v.clone()));
        }
    }
    let specs = a.options();
    for s in &specs {
        if given(m, &s.name) {
            let text = texts(m, &s.name).join(",");
            let v = if a.name == "targets" && s.name == "targets" {
                // The targets file's path; `run` reads it.
                Value::String(text)
            } else {
                option_value(s, &text)?
            };
            o.insert(s.name.clone(), v);
        }
        let no = format!("no-{}", s.name);
        if m.try_get_one::<bool>(&no).ok().flatten() == Some(&true) {
            o.insert(s.name.clone(), Value::Bool(false));
        }
    }
    for (alias, option, value) in a.aliases {
        let id = format!("alias-{alias}");
        let Some(s) = specs.iter().find(|s| s.name == *option) else {
            continue;
        };
        match value {
            Some(v) if m.get_flag(&id) => {
                let v: Value = serde_json::from_str(v)
                    .map_err(|e| CliError::Usage(format!("--{alias}: {e}")))?;
                o.insert(option.to_string(), v);
            }
            None if given(m, &id) => {
                let text = texts(m, &id).join(",");
                o.insert(option.to_string(), option_value(s, &text)?);
            }
            _ => {}
        }
    }
    Ok(o)
}

/// Options from a TOML file, as an object; errors name the file.
fn read_config(p: &Path) -> Result<Map<String, Value>, CliError> {
    let text = std::fs::read_to_string(p).map_err(|e| safetyscope_core::Error::io(p, e))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: {}", p.display(), e.message())))?;
    match serde_json::to_value(table) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(CliError::Usage(format!(
            "{}: not a table of options",
            p.display()
        ))),
    }
}

/// Run an analysis subcommand.
pub async fn run(a: &'static Analysis, m: &ArgMatches) -> Result<(), CliError> {
    if a.name == "kpis" && m.get_flag("catalogue") {
        print!("{}", safetyscope_core::kpis::catalogue_markdown());
        return Ok(());
    }
    let mut o = options(a, m)?;
    if a.name == "targets"
        && let Some(Value::String(path)) = o.get("targets").cloned()
    {
        // A path on the command line: the targets file (CSV or TOML).
        let p = Path::new(&path);
        let text = std::fs::read_to_string(p).map_err(|e| safetyscope_core::Error::io(p, e))?;
        let parsed = safetyscope_core::kpis::parse_targets(&text, &path)?;
        o.insert(
            "targets".into(),
            serde_json::to_value(parsed).map_err(|e| CliError::Usage(e.to_string()))?,
        );
    }
    let data = m.get_one::<PathBuf>("data").expect("required");
    let ds = open(data, m.get_one::<String>("timezone").map(String::as_str))?;
    let out = m.get_one::<PathBuf>("out");
    let charts: Vec<&PathBuf> = ["svg", "png"]
        .into_iter()
        .filter_map(|k| m.try_get_one::<PathBuf>(k).ok().flatten())
        .collect();
    crate::check_outputs(
        data,
        &ds,
        out.into_iter()
            .chain(charts.iter().copied())
            .map(PathBuf::as_path),
    )?;
    // A document (the report) as .html.
    if let Some(path) = out.filter(|p| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
    }) {
        let result = a.run(&ds, o).await?;
        let doc = result.document.ok_or_else(|| {
            CliError::Usage(format!(
                "`{}` writes no document: write its result as .parquet, .csv, .json or .ndjson",
                a.name
            ))
        })?;
        safetyscope_core::output::write_chart(path, &doc)?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    // A result too large to hold (the points ledger) is written as it is
    // computed.
    if let (Some(path), true) = (out, charts.is_empty())
        && let Some((rows, _)) =
            safetyscope_core::api::write_streamed(&ds, a.name, &o, std::slice::from_ref(path))
                .await?
    {
        eprintln!("wrote {} ({rows} rows)", path.display());
        return Ok(());
    }
    let result = a.run(&ds, o).await?;
    if !charts.is_empty() {
        let drawn = result.chart.as_ref().ok_or_else(|| {
            CliError::Usage("this result has no chart (a grid chart needs --by cell)".into())
        })?;
        for path in charts {
            write_chart(path, drawn)?;
        }
    }
    let format = match m.get_one::<String>("format").map(String::as_str) {
        Some("csv") => Print::Csv,
        Some("json") => Print::Json,
        _ => Print::Table,
    };
    emit(
        &result.batches,
        &result.schema,
        out.map(PathBuf::as_path),
        format,
    )
}
