//! A commented draft mapping from a file (`safetyscope map-init`,
//! `safetyscope.draft_mapping`): the header and a sample of the values
//! decide the table, the source column of each canonical column, the date
//! formats (checked to read the sample one way only), coordinates and the
//! values of the coded columns. Every guess the user must check is marked
//! `EDIT`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;

use crate::model::schema::{Allowed, ColType, ColumnDef, TableDef, TableKind};
use crate::model::time::{Parsed, TsFormat, parse_timestamp_checked, parse_tz};
use crate::util::error::{Error, Result};

/// Rows read to guess from.
pub const SAMPLE_ROWS: usize = 5_000;

/// Timestamp formats tried on a sample, most specific first.
const CANDIDATE_FORMATS: &[&str] = &[
    "rfc3339",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%Y年%m月%d日",
    "%Y%m%d",
];

/// Source column names (lower case, letters and digits only) that usually
/// hold a canonical column, best first.
fn synonyms(column: &str) -> &'static [&'static str] {
    match column {
        "id" => &[
            "id",
            "uniquekey",
            "key",
            "idnum",
            "recordid",
            "eventid",
            "documentno",
            "number",
            "no",
        ],
        "occurred_at" => &[
            "occurredat",
            "datetime",
            "timestamp",
            "accidentdt",
            "accidentdate",
            "incidentdate",
            "crashdate",
            "eventdate",
            "date",
            "createddate",
            "time",
        ],
        "reported_at" => &[
            "reportedat",
            "createddate",
            "created",
            "reportdate",
            "datetime",
            "date",
        ],
        "due_at" => &["dueat", "duedate", "due", "deadline"],
        "closed_at" => &[
            "closedat",
            "closeddate",
            "closed",
            "resolvedat",
            "resolutiondate",
        ],
        "detected_at" => &["detectedat", "datetime", "timestamp", "date", "time"],
        "ts" => &["ts", "timestamp", "datetime", "date"],
        "site" => &[
            "site", "siteid", "mineid", "mine", "plant", "facility", "unit", "company", "city",
        ],
        "zone" => &[
            "zone",
            "area",
            "borough",
            "location",
            "neighborhood",
            "neighbourhood",
            "district",
            "subunit",
            "department",
            "workshop",
        ],
        "x" => &["x", "longitude", "long", "lon", "lng"],
        "y" => &["y", "latitude", "lat"],
        "category" => &[
            "category",
            "accidenttype",
            "complainttype",
            "type",
            "classification",
            "accidentclassification",
            "problem",
        ],
        "severity" => &[
            "severity",
            "degreeinjury",
            "degreeofinjury",
            "injuryseverity",
            "degree",
            "injury",
        ],
        "lost_days" => &["lostdays", "dayslost", "daysaway", "nodayslost"],
        "kind" => &["kind", "violation", "problem", "type"],
        "level" => &["level", "hazardlevel", "grade"],
        "owner" => &["owner", "agency", "responsible", "department"],
        "source" => &["source", "channel", "opendatachanneltype"],
        "person_id" => &["personid", "employeeid", "workerid", "person", "employee"],
        "sensor_id" => &["sensorid", "sensor", "device", "deviceid"],
        "metric" => &["metric", "pollutant", "parameter", "gas"],
        "value" => &["value", "reading", "measurement", "concentration"],
        _ => &[],
    }
}

/// Values public files use for "no value".
const SENTINELS: &[&str] = &[
    "?",
    "-",
    "--",
    "n/a",
    "na",
    "null",
    "none",
    "no value found",
    "unknown",
    "#n/a",
];

fn is_sentinel(v: &str) -> bool {
    SENTINELS.contains(&v.trim().to_ascii_lowercase().as_str())
}

/// A separate time-of-day column: `hhmm` integers (with `9999`-style
/// unknowns) or `hh:mm`.
fn time_of_day(s: &Sample, taken: &BTreeSet<usize>) -> Option<(usize, &'static str, Vec<String>)> {
    s.columns.iter().enumerate().find_map(|(i, name)| {
        let n = norm(name);
        if taken.contains(&i) || !(n.ends_with("time") || n == "hour" || n == "tod") || n.contains("shift") {
            return None;
        }
        let values: Vec<&str> = s.non_null(i).collect();
        if values.is_empty() {
            return None;
        }
        let colon = values.iter().all(|v| {
            let mut it = v.split(':');
            matches!((it.next().map(str::parse::<u32>), it.next().map(str::parse::<u32>)), (Some(Ok(h)), Some(Ok(m))) if h <= 24 && m < 60)
        });
        if colon {
            return Some((i, "hh:mm", vec![]));
        }
        let mut unknown = BTreeSet::new();
        let hhmm = values.iter().all(|v| match v.parse::<u32>() {
            Ok(x) if x <= 2400 && x % 100 < 60 => true,
            Ok(x) if x >= 9000 => {
                unknown.insert(v.to_string());
                true
            }
            _ => false,
        });
        hhmm.then(|| (i, "hhmm", unknown.into_iter().collect()))
    })
}

fn norm(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The file's columns and a sample of each as text.
struct Sample {
    columns: Vec<String>,
    types: Vec<DataType>,
    values: Vec<Vec<Option<String>>>,
    rows: usize,
}

impl Sample {
    fn non_null(&self, i: usize) -> impl Iterator<Item = &str> {
        self.values[i].iter().flatten().map(String::as_str)
    }
}

/// A value map: guessed `(value, code)` pairs, and the rarer values left.
type ValueMap = (Vec<(String, String)>, Vec<String>);

/// The first [`SAMPLE_ROWS`] rows of the file, as text; the file is read no
/// further. `rows` is the file's row count where its metadata says it
/// (Parquet), else the rows read.
fn read_sample(path: &std::path::Path) -> Result<Sample> {
    let sources = crate::io::source::discover(path, None)?;
    let mut columns: Vec<String> = Vec::new();
    let mut types = Vec::new();
    let mut values: Vec<Vec<Option<String>>> = Vec::new();
    let mut rows = 0usize;
    'read: for src in &sources {
        for b in crate::io::source::read_source(src, &Default::default())? {
            let b: RecordBatch = b?;
            if columns.is_empty() {
                let schema = b.schema();
                columns = schema.fields().iter().map(|f| f.name().clone()).collect();
                types = schema
                    .fields()
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect();
                values = vec![Vec::new(); columns.len()];
            }
            let take = (SAMPLE_ROWS - rows).min(b.num_rows());
            for (i, name) in columns.iter().enumerate() {
                let Some(a) = b.column_by_name(name) else {
                    values[i].extend(std::iter::repeat_n(None, take));
                    continue;
                };
                let text = arrow::compute::cast(&a.slice(0, take), &DataType::Utf8)?;
                let text = text.as_any().downcast_ref::<StringArray>().expect("utf8");
                values[i].extend(text.iter().map(|v| {
                    v.map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                }));
            }
            rows += take;
            if rows >= SAMPLE_ROWS {
                break 'read;
            }
        }
    }
    if columns.is_empty() {
        return Err(Error::data(
            path.display().to_string(),
            "the file has no columns",
        ));
    }
    let known: Option<u64> = sources
        .iter()
        .map(crate::io::source::source_rows)
        .sum::<Option<u64>>();
    Ok(Sample {
        columns,
        types,
        values,
        rows: known.map_or(rows, |n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// Min and max of the numbers in columns `x` and `y` over the whole file
/// (for a grid's extent), and how many rows hold both. Only those two
/// columns are read.
fn coordinate_bounds(path: &std::path::Path, x: &str, y: &str) -> Result<([f64; 4], usize)> {
    let mut e = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut n = 0usize;
    for src in &crate::io::source::discover(path, None)? {
        for b in crate::io::source::read_source(src, &Default::default())? {
            let b: RecordBatch = b?;
            let num = |name: &str| -> Result<Option<arrow::array::Float64Array>> {
                let Some(a) = b.column_by_name(name) else {
                    return Ok(None);
                };
                // Text that is not a number becomes null.
                let a = arrow::compute::kernels::cast::cast_with_options(
                    a,
                    &DataType::Float64,
                    &arrow::compute::CastOptions {
                        safe: true,
                        ..Default::default()
                    },
                )?;
                Ok(a.as_any()
                    .downcast_ref::<arrow::array::Float64Array>()
                    .cloned())
            };
            let (Some(xs), Some(ys)) = (num(x)?, num(y)?) else {
                continue;
            };
            for (vx, vy) in xs.iter().zip(ys.iter()) {
                if let (Some(vx), Some(vy)) = (vx, vy)
                    && vx.is_finite()
                    && vy.is_finite()
                {
                    e = [e[0].min(vx), e[1].min(vy), e[2].max(vx), e[3].max(vy)];
                    n += 1;
                }
            }
        }
    }
    Ok((e, n))
}

/// What the draft decided for one timestamp column.
struct TimeGuess {
    formats: Vec<String>,
    date_only: bool,
    parsed: usize,
    of: usize,
    ambiguous_with: Option<String>,
}

fn guess_formats(s: &Sample, i: usize) -> Option<TimeGuess> {
    if matches!(
        s.types[i],
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    ) {
        return Some(TimeGuess {
            formats: vec![],
            date_only: matches!(s.types[i], DataType::Date32 | DataType::Date64),
            parsed: s.non_null(i).count(),
            of: s.non_null(i).count(),
            ambiguous_with: None,
        });
    }
    let tz = parse_tz("UTC").ok()?;
    let values: Vec<&str> = s.non_null(i).filter(|v| !is_sentinel(v)).collect();
    if values.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &str, bool)> = None;
    let mut all: Vec<&str> = Vec::new();
    for f in CANDIDATE_FORMATS {
        let fmt = [TsFormat::parse(f)];
        let mut n = 0;
        let mut date_only = true;
        for v in &values {
            if let Parsed::Value((_, d)) = parse_timestamp_checked(v, &fmt, &tz, false) {
                n += 1;
                date_only &= d;
            }
        }
        if n == values.len() {
            all.push(f);
        }
        if n > 0 && best.is_none_or(|(m, _, _)| n > m) {
            best = Some((n, f, date_only));
        }
    }
    // Excel serial days: every value a number of a plausible day.
    let excel = values.iter().all(|v| {
        v.parse::<f64>()
            .is_ok_and(|x| (18_264.0..73_051.0).contains(&x))
    });
    if excel && best.is_none_or(|(m, _, _)| m < values.len()) {
        let whole = values
            .iter()
            .all(|v| v.parse::<f64>().is_ok_and(|x| x.fract() == 0.0));
        best = Some((values.len(), "excel", whole));
    }
    let (n, f, date_only) = best?;
    // Below half the sample this is not a timestamp column.
    if n * 2 < values.len() {
        return None;
    }
    // Another format that reads every value too, but differently: the
    // sample cannot tell (days ≤ 12 under month-first and day-first).
    let ambiguous_with = all
        .iter()
        .filter(|g| **g != f)
        .find(|g| {
            let pair = [TsFormat::parse(f), TsFormat::parse(g)];
            values.iter().any(|v| {
                matches!(
                    parse_timestamp_checked(v, &pair, &tz, true),
                    Parsed::Ambiguous(_)
                )
            })
        })
        .map(|g| (*g).to_string());
    Some(TimeGuess {
        formats: vec![f.to_string()],
        date_only,
        parsed: n,
        of: values.len(),
        ambiguous_with,
    })
}

/// The best source column for a canonical column, not yet taken.
fn match_column(s: &Sample, c: &ColumnDef, taken: &BTreeSet<usize>) -> Option<usize> {
    let names: Vec<String> = s.columns.iter().map(|n| norm(n)).collect();
    let exact = norm(c.name);
    if let Some(i) = names
        .iter()
        .position(|n| *n == exact)
        .filter(|i| !taken.contains(i))
    {
        return Some(i);
    }
    for syn in synonyms(c.name) {
        if let Some(i) = names
            .iter()
            .position(|n| n == syn)
            .filter(|i| !taken.contains(i))
        {
            return Some(i);
        }
    }
    // `Crash ID`, `Report Number`, `Incident Key`.
    if c.name == "id"
        && let Some(i) = names.iter().enumerate().position(|(i, n)| {
            !taken.contains(&i)
                && ["id", "key", "number", "no"].iter().any(|e| n.ends_with(e))
                && !n.ends_with("personid")
        })
    {
        return Some(i);
    }
    for syn in synonyms(c.name).iter().filter(|s| s.len() >= 7) {
        if let Some(i) = names
            .iter()
            .enumerate()
            .position(|(i, n)| n.contains(syn) && !taken.contains(&i))
        {
            return Some(i);
        }
    }
    None
}

/// What a required column without a source column becomes: a record
/// number for `id`, a constant site, sensor and level, and for a wide
/// sensor file (one column per metric) the first numeric column as the
/// metric's value. `None` when nothing sensible fills it.
fn fallback(s: &Sample, def: &TableDef, c: &ColumnDef, taken: &BTreeSet<usize>) -> Option<String> {
    let numeric = || {
        (0..s.columns.len()).find(|i| {
            !taken.contains(i)
                && !matches!(
                    s.types[*i],
                    DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
                )
                && s.non_null(*i).count() > 0
                && s.non_null(*i).all(|v| v.parse::<f64>().is_ok())
                && !norm(&s.columns[*i]).contains("time")
        })
    };
    match (def.name, c.name) {
        (_, "id") => Some("id = { row_number = true }  # EDIT: no id column found; the record number identifies a row".into()),
        (_, "site") => Some(String::new()),
        (_, "time_known") => Some(String::new()),
        ("hazards", "level") => Some("level = { constant = \"general\" }  # EDIT: no level column found; every hazard general".into()),
        ("readings", "sensor_id") => Some("sensor_id = { constant = \"S1\" }  # EDIT: no sensor column found; one sensor".into()),
        ("readings", "metric") => numeric().map(|i| {
            format!(
                "metric = {{ constant = {} }}  # EDIT: one column per metric; this mapping reads one, copy the table for others",
                toml_str(&s.columns[i].to_ascii_lowercase())
            )
        }),
        ("readings", "value") => numeric().map(|i| format!("value = {}", toml_str(&s.columns[i]))),
        _ => None,
    }
}

/// Which canonical table a file most likely holds.
fn guess_table(s: &Sample) -> TableKind {
    let candidates = [
        TableKind::Incidents,
        TableKind::Hazards,
        TableKind::Violations,
        TableKind::Readings,
        TableKind::Positions,
    ];
    // Matched columns count, required ones twice; a required column
    // without a match costs more, unless the draft can fill it (a record
    // number for `id`, a constant `site`).
    let score = |k: TableKind| {
        let def = k.def();
        let mut taken = BTreeSet::new();
        let mut score = 0.0_f64;
        for c in def.columns {
            match match_column(s, c, &taken) {
                Some(i) => {
                    taken.insert(i);
                    let exact = norm(c.name) == norm(&s.columns[i]);
                    score += if c.required { 2.0 } else { 1.0 } * if exact { 1.5 } else { 1.0 };
                }
                None if c.required => {
                    score -= match (fallback(s, def, c, &taken), c.name) {
                        (None, _) => 4.0,
                        (Some(_), "level") => 1.5,
                        (Some(_), "sensor_id" | "metric" | "value") => 0.25,
                        (Some(_), _) => 0.5,
                    }
                }
                None => {}
            }
        }
        score
    };
    candidates
        .into_iter()
        .max_by(|a, b| score(*a).total_cmp(&score(*b)))
        .unwrap_or(TableKind::Incidents)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A value map guess for a coded column: spellings the vocabulary does not
/// know are listed with a best guess for the user to check.
fn value_map(s: &Sample, i: usize, c: &ColumnDef) -> Option<ValueMap> {
    let Allowed::Vocab(v) = c.allowed else {
        return None;
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for x in s.non_null(i).filter(|x| !is_sentinel(x)) {
        *counts.entry(x).or_default() += 1;
    }
    let mut unknown: Vec<(&str, usize)> = counts
        .into_iter()
        .filter(|(x, _)| v.resolve(x).is_none())
        .collect();
    unknown.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let guess = |x: &str| -> String {
        let l = x.to_ascii_lowercase();
        match c.name {
            "severity" => {
                if l.contains("fatal") || l.contains("death") || l.contains("kill") {
                    "fatal"
                } else if l.contains("accident only")
                    || l.contains("no injur")
                    || l.contains("near")
                {
                    "near_miss"
                } else if l.contains("first aid") || l.contains("1st aid") {
                    "first_aid"
                } else if l.contains("perm") || l.contains("serious") || l.contains("major") {
                    "serious"
                } else {
                    "minor"
                }
            }
            "level" => {
                if l.contains("major") || l.contains("high") || l.contains("重大") {
                    "major"
                } else {
                    "general"
                }
            }
            _ => v.terms.last().map_or("other", |t| t.code),
        }
        .to_string()
    };
    let shown: Vec<(String, String)> = unknown
        .iter()
        .take(25)
        .map(|(x, _)| ((*x).to_string(), guess(x)))
        .collect();
    let rest: Vec<String> = unknown
        .iter()
        .skip(25)
        .map(|(x, _)| (*x).to_string())
        .collect();
    Some((shown, rest))
}

/// Write a commented draft mapping for the file at `path` as table `table`
/// (guessed when `None`), to be saved in `mapping_dir` (the file is named
/// from there; from the current directory when `None`).
pub fn draft_mapping(
    path: &std::path::Path,
    table: Option<&str>,
    mapping_dir: Option<&std::path::Path>,
) -> Result<String> {
    let table = table
        .map(|t| {
            TableKind::from_name(t).ok_or_else(|| {
                Error::option(
                    "table",
                    format!(
                        "unknown table `{t}`; canonical tables are {}",
                        TableKind::ALL.map(TableKind::name).join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    let relative =
        match mapping_dir.map(|d| (std::fs::canonicalize(path), std::fs::canonicalize(d))) {
            Some((Ok(f), Ok(d))) => f
                .strip_prefix(&d)
                .map_or_else(|_| f.display().to_string(), |p| p.display().to_string()),
            _ => path.display().to_string(),
        };
    let relative = relative.as_str();
    let s = read_sample(path)?;
    let kind = table.unwrap_or_else(|| guess_table(&s));
    let def: &TableDef = kind.def();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# A draft mapping of {relative} as `{}`, written by `safetyscope map-init`\n\
         # from its header and {} sample rows of {}. Check every line marked EDIT,\n\
         # then run `safetyscope validate` on this file (docs/mapping.md).",
        def.name,
        s.values.first().map_or(0, Vec::len),
        s.rows
    );
    let tz_known = s
        .types
        .iter()
        .any(|t| matches!(t, DataType::Timestamp(_, Some(_))));
    let _ = writeln!(
        out,
        "timezone = \"Asia/Shanghai\"  # EDIT: the site's IANA timezone{}\n",
        if tz_known {
            " (the file's instants are absolute; local hours are read in this zone)"
        } else {
            " (the file's times are local times in it)"
        }
    );
    let mut taken = BTreeSet::new();
    let mut lines: Vec<String> = Vec::new();
    let mut coords: Option<(usize, usize)> = None;
    let (mut xi, mut yi, mut site_col) = (None, None, None);
    for c in def.columns {
        if c.name == crate::model::schema::TIME_KNOWN {
            continue;
        }
        let found = match_column(&s, c, &taken);
        let Some(i) = found else {
            if c.required {
                lines.push(match c.name {
                    n if n != "site" && fallback(&s, def, c, &taken).is_some() => {
                        fallback(&s, def, c, &taken).unwrap_or_default()
                    }
                    "site" => format!(
                        "site = {{ constant = {} }}  # EDIT: no site column found; one site for every row",
                        toml_str(&path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "site".into()))
                    ),
                    n => match c.allowed {
                        Allowed::Vocab(v) => format!(
                            "{n} = {{ constant = {} }}  # EDIT: no column found; map one (codes: {})",
                            toml_str(v.terms.first().map_or("", |t| t.code)),
                            v.terms.iter().map(|t| t.code).collect::<Vec<_>>().join(", ")
                        ),
                        _ => format!("# {n} = \"?\"  # EDIT: required, no column found; the table will not load without it"),
                    },
                });
            }
            continue;
        };
        taken.insert(i);
        let src = &s.columns[i];
        // An id that repeats in the sample is no id (Excel turns long
        // numbers into 2.20E+11).
        if Some(c.name) == def.id_column {
            let mut seen = BTreeSet::new();
            if let Some(dup) = s.non_null(i).find(|v| !seen.insert(*v)) {
                lines.push(format!(
                    "id = {{ row_number = true }}  # EDIT: `{src}` repeats in the sample ({dup}); the record number identifies a row"
                ));
                continue;
            }
        }
        let mut opts: Vec<String> = vec![format!("column = {}", toml_str(src))];
        let mut notes: Vec<String> = Vec::new();
        let missing = s.values[i]
            .iter()
            .filter(|v| v.as_deref().is_none_or(is_sentinel))
            .count();
        if c.required && missing > 0 {
            if c.name == "category" {
                opts.push("fill_null = \"other\"".into());
                notes.push(format!(
                    "{missing} sample rows have no value: read as `other`"
                ));
            } else {
                notes.push(format!(
                    "EDIT: {missing} of {} sample rows have no value and will be rejected (missing_required)",
                    s.values[i].len()
                ));
            }
        }
        if c.ty == ColType::Timestamp {
            match guess_formats(&s, i) {
                Some(mut g) => {
                    // A date column beside a time-of-day column: combined.
                    if g.date_only
                        && def.time_column == Some(c.name)
                        && let Some((t, fmt, unknown)) = time_of_day(&s, &taken)
                    {
                        taken.insert(t);
                        opts.push(format!("time_column = {}", toml_str(&s.columns[t])));
                        opts.push(format!("time_format = {}", toml_str(fmt)));
                        if !unknown.is_empty() {
                            opts.push(format!(
                                "time_unknown = [{}]",
                                unknown
                                    .iter()
                                    .map(|u| toml_str(u))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        g.date_only = false;
                    }
                    if !g.formats.is_empty() {
                        opts.push(format!(
                            "formats = [{}]",
                            g.formats
                                .iter()
                                .map(|f| toml_str(f))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    if g.parsed < g.of {
                        notes.push(format!(
                            "{} of {} sample values parse; the rest will be rejected",
                            g.parsed, g.of
                        ));
                    }
                    if let Some(other) = g.ambiguous_with {
                        notes.push(format!(
                            "EDIT: `{other}` reads the sample too, differently (day and month?); keep the right one"
                        ));
                    }
                    if g.date_only && def.time_column == Some(c.name) {
                        notes.push(
                            "dates without a time of day: the rows count by day, as time unknown"
                                .into(),
                        );
                    }
                }
                None => notes.push("EDIT: no date format reads these values; add `formats`".into()),
            }
        }
        if let Some((mut map, rest)) = value_map(&s, i, c) {
            let fallback = match c.name {
                "category" => "other",
                "severity" => "near_miss",
                _ => "",
            };
            // Values read as the fallback go through `default`.
            let folded = !fallback.is_empty() && map.iter().any(|(_, v)| v == fallback);
            if folded {
                map.retain(|(_, v)| v != fallback);
            }
            if !map.is_empty() {
                let pairs: Vec<String> = map
                    .iter()
                    .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
                    .collect();
                opts.push(format!("map = {{ {} }}", pairs.join(", ")));
                notes
                    .push("EDIT: guessed codes for the values the vocabulary does not know".into());
            }
            if (folded || !rest.is_empty()) && !fallback.is_empty() {
                opts.push(format!("default = {}", toml_str(fallback)));
                notes.push(format!(
                    "EDIT: other values read as `{fallback}`; map them to codes ({})",
                    match c.allowed {
                        Allowed::Vocab(v) => v
                            .terms
                            .iter()
                            .map(|t| t.code)
                            .collect::<Vec<_>>()
                            .join(", "),
                        _ => String::new(),
                    }
                ));
            }
        }
        if c.name == "x" {
            xi = Some(i);
        }
        if c.name == "site" {
            site_col = Some(i);
        }
        if c.name == "y" {
            yi = Some(i);
        }
        let line = if opts.len() == 1 {
            format!("{} = {}", c.name, toml_str(src))
        } else {
            format!("{} = {{ {} }}", c.name, opts.join(", "))
        };
        lines.push(if notes.is_empty() {
            line
        } else {
            format!("{line}  # {}", notes.join("; "))
        });
    }
    if let (Some(x), Some(y)) = (xi, yi) {
        coords = Some((x, y));
    }
    // Longitude / latitude: a grid over the file's extent generates the plan.
    if let Some((x, y)) = coords {
        let ([x0, y0, x1, y1], n) = coordinate_bounds(path, &s.columns[x], &s.columns[y])?;
        let lonlat = n > 0
            && x0 >= -180.0
            && x1 <= 180.0
            && y0 >= -90.0
            && y1 <= 90.0
            && (x1 - x0) < 10.0
            && (y1 - y0) < 10.0;
        if lonlat && def.columns.iter().any(|c| c.name == "cell") {
            let site = lines
                .iter()
                .find_map(|l| l.strip_prefix("site = { constant = "))
                .and_then(|r| r.split(" }").next())
                .map(str::to_string)
                .or_else(|| {
                    let i = site_col?;
                    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                    for v in s.non_null(i) {
                        *counts.entry(v).or_default() += 1;
                    }
                    counts
                        .into_iter()
                        .max_by_key(|(_, n)| *n)
                        .map(|(v, _)| toml_str(v))
                })
                .unwrap_or_else(|| "\"SITE\"".to_string());
            let floor = |v: f64| (v * 100.0).floor() / 100.0;
            let ceil = |v: f64| (v * 100.0).ceil() / 100.0;
            let extent = [floor(x0), floor(y0), ceil(x1), ceil(y1)];
            // 500 m cells, or larger ones (in steps of 500 m) so that the
            // grid stays within a quarter of the cells a grid may have.
            let r = crate::io::plan::EARTH_RADIUS_M;
            let w = r
                * (extent[2] - extent[0]).to_radians()
                * ((extent[1] + extent[3]) / 2.0).to_radians().cos();
            let h = r * (extent[3] - extent[1]).to_radians();
            let limit = (crate::io::plan::MAX_GRID_CELLS / 4) as f64;
            let size = ((w * h / limit).sqrt() / 500.0).ceil().max(1.0) * 500.0;
            let _ = writeln!(
                out,
                "# Longitude / latitude: a {size} m grid over the file's extent makes the\n\
                 # site plan (docs/mapping.md, \"Coordinates to cells\").\n\
                 [[grid]]\nsite = {site}  # EDIT: the site value of these rows\n\
                 coordinates = \"lonlat\"\nextent = [{}, {}, {}, {}]\ncell_size = {size}\n",
                extent[0], extent[1], extent[2], extent[3]
            );
        }
    }
    let _ = writeln!(out, "[tables.{}]\npath = {}", def.name, toml_str(relative));
    let mut sentinels: BTreeSet<&str> = BTreeSet::new();
    for i in 0..s.columns.len() {
        sentinels.extend(s.non_null(i).filter(|v| is_sentinel(v)));
    }
    if !sentinels.is_empty() {
        let list: Vec<String> = sentinels.iter().map(|v| toml_str(v)).collect();
        let _ = writeln!(
            out,
            "null_values = [{}]  # seen in the sample",
            list.join(", ")
        );
    }
    let _ = writeln!(out, "\n[tables.{}.columns]", def.name);
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let unused: Vec<&str> = s
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| !taken.contains(i))
        .map(|(_, c)| c.as_str())
        .collect();
    if !unused.is_empty() {
        let _ = writeln!(out, "# Not used: {}", unused.join(", "));
    }
    Ok(out)
}

/// Write the draft of [`draft_mapping`] to `out`, a new file: never over an
/// existing one (an option error), and written whole or not at all.
pub fn write_draft_mapping(
    path: &std::path::Path,
    table: Option<&str>,
    out: &std::path::Path,
) -> Result<()> {
    if out.exists() {
        return Err(Error::option(
            "out",
            format!(
                "{} exists; remove it or write the draft elsewhere",
                out.display()
            ),
        ));
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let text = draft_mapping(path, table, Some(dir))?;
    crate::io::output::write_atomic(out, text.as_bytes())
}
