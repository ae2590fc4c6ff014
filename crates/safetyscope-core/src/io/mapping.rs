//! Mapping files: how a user's files become canonical tables without
//! pre-processing. See `docs/mapping.md` for the full reference.
//!
//! ```toml
//! timezone = "Asia/Shanghai"
//!
//! [tables.incidents]
//! path = "accidents.csv"          # file, glob or directory (Hive partitions too)
//! encoding = "latin-1"
//! null_values = ["?", "NO VALUE FOUND"]
//!
//! [tables.incidents.columns]
//! id = { row_number = true }
//! occurred_at = { column = "DATE", formats = ["excel"], time_column = "TIME", time_format = "hhmm", time_unknown = ["9999"] }
//! site = "MINE_ID"                # a plain string renames a column
//! severity = { column = "DEGREE", map = { "FATALITY" = "fatal" } }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::io::plan::{GridSpec, Plan, PolygonSpec};
use crate::model::schema::TableKind;
use crate::model::time::{TimeOfDayFormat, TsFormat};
use crate::util::error::{Error, Result};

/// A constant value in a mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConstValue {
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Text.
    Text(String),
}

impl ConstValue {
    /// The value as text, as it would appear in a file.
    pub fn as_text(&self) -> String {
        match self {
            ConstValue::Bool(b) => b.to_string(),
            ConstValue::Int(i) => i.to_string(),
            ConstValue::Float(f) => f.to_string(),
            ConstValue::Text(s) => s.clone(),
        }
    }
}

/// How one canonical column is produced from the source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Source column to read.
    pub column: Option<String>,
    /// Several source columns: the first non-null value (after null sentinels) wins.
    pub columns: Option<Vec<String>>,
    /// A SQL expression over the source columns, evaluated by DataFusion
    /// on every batch (`CASE WHEN CAST("Persons Killed" AS INT) > 0 THEN
    /// 'fatal' … END`). CSV columns are text: cast them to compare numbers.
    pub expr: Option<String>,
    /// A constant for every row.
    pub constant: Option<ConstValue>,
    /// The 1-based record number within its source file (for files without ids).
    #[serde(default)]
    pub row_number: bool,
    /// Values meaning null in this column (in addition to the table's).
    #[serde(default)]
    pub null_values: Vec<String>,
    /// Value map: source value → canonical value (e.g. a code → severity).
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// Canonical value for source values missing from `map` (without it, they
    /// are passed through and must be valid themselves). Without a `map`, on
    /// a coded column: the value of every source value its vocabulary does
    /// not know.
    pub default: Option<String>,
    /// Value used where the source is null (after `null_values`).
    pub fill_null: Option<String>,
    /// Timestamp formats tried in order: chrono patterns, `rfc3339`, `excel`,
    /// `unix`, `unix_ms`.
    #[serde(default)]
    pub formats: Vec<String>,
    /// A separate time-of-day column combined with this (date) column.
    pub time_column: Option<String>,
    /// Format of `time_column`: `hhmm` (integer) or `hh:mm`.
    pub time_format: Option<String>,
    /// Values of `time_column` meaning "time of day unknown" (e.g. `9999`): the
    /// row is kept at local midnight with `time_known = false`.
    #[serde(default)]
    pub time_unknown: Vec<String>,
    /// Timestamps given as a date without a time of day (a date-only
    /// pattern, a Parquet date, an Excel serial without a fraction):
    /// `time_unknown` (the default) keeps them at local midnight with
    /// `time_known = false`; `midnight` reads them as events at 00:00.
    pub date_only: Option<DateOnly>,
    /// Boolean columns: true when the source value is present (non-null).
    #[serde(default)]
    pub present: bool,
    /// A value is only valid where another source column has one of the
    /// listed values (e.g. a closing time only with status `Closed`); other
    /// rows with a value are rejected as inconsistent.
    pub valid_if: Option<Condition>,
}

/// How a timestamp without a time of day is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOnly {
    /// Kept at local midnight with `time_known = false`: counted by day,
    /// left out of the time-of-day analyses.
    #[default]
    TimeUnknown,
    /// An event at 00:00 local time.
    Midnight,
}

/// A condition on a source column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The source column.
    pub column: String,
    /// Allowed values (exact match after trimming).
    #[serde(rename = "in")]
    pub values: Vec<String>,
}

impl ColumnSpec {
    /// A plain rename.
    pub fn rename(column: impl Into<String>) -> Self {
        ColumnSpec {
            column: Some(column.into()),
            ..Default::default()
        }
    }

    /// Parsed timestamp formats (empty = defaults).
    pub fn ts_formats(&self) -> Vec<TsFormat> {
        self.formats.iter().map(|f| TsFormat::parse(f)).collect()
    }

    /// Parsed time-of-day format.
    pub fn tod_format(&self) -> Result<Option<TimeOfDayFormat>> {
        match (&self.time_column, &self.time_format) {
            (None, None) => Ok(None),
            (Some(_), None) => Ok(Some(TimeOfDayFormat::Hhmm)),
            (_, Some(f)) => TimeOfDayFormat::parse(f).map(Some),
        }
    }

    fn check(&self, loc: &str) -> Result<()> {
        let sources = usize::from(self.column.is_some())
            + usize::from(self.columns.is_some())
            + usize::from(self.expr.is_some())
            + usize::from(self.constant.is_some())
            + usize::from(self.row_number);
        if sources > 1 {
            return Err(Error::mapping(
                Some(loc.to_string()),
                "give only one of `column`, `columns`, `expr`, `constant`, `row_number`",
            ));
        }
        if self.expr.as_ref().is_some_and(|e| e.trim().is_empty()) {
            return Err(Error::mapping(Some(loc.to_string()), "`expr` is empty"));
        }
        if self.columns.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::mapping(Some(loc.to_string()), "`columns` is empty"));
        }
        if self.time_column.is_none()
            && (!self.time_unknown.is_empty() || self.time_format.is_some())
        {
            return Err(Error::mapping(
                Some(loc.to_string()),
                "`time_unknown` / `time_format` need a `time_column`",
            ));
        }
        self.tod_format()
            .map_err(|e| Error::mapping(Some(loc.to_string()), e.to_string()))?;
        for f in &self.formats {
            if let TsFormat::Pattern(p) = TsFormat::parse(f) {
                use chrono::format::{Item, StrftimeItems};
                if StrftimeItems::new(&p).any(|i| matches!(i, Item::Error)) {
                    return Err(Error::mapping(
                        Some(loc.to_string()),
                        format!(
                            "`{p}` is not a valid date format: use chrono's `%` specifiers \
                             (`%Y-%m-%d %H:%M`, `%d/%m/%Y`) or rfc3339, excel, unix, unix_ms"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How one canonical table is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    /// File, directory or glob, relative to the mapping file. Not needed
    /// when the table is given in memory.
    pub path: Option<String>,
    /// `csv`, `parquet`, `ndjson` or `arrow` (default: from the extension).
    pub format: Option<String>,
    /// Text encoding of CSV / NDJSON files (`utf-8` default, `latin-1`, `gbk`, …).
    pub encoding: Option<String>,
    /// CSV field delimiter (default `,`).
    pub delimiter: Option<String>,
    /// CSV files have a header line (default true).
    pub has_header: Option<bool>,
    /// Values meaning null in every column of this table (`""` is always null).
    #[serde(default)]
    pub null_values: Vec<String>,
    /// The plausible years of every timestamp, `[first, last]` (default
    /// `[1900, 2100]`); an instant outside them is rejected as `out_of_range`.
    pub years: Option<[i32; 2]>,
    /// The mapping's site plans (`[[grid]]`, `[[polygons]]`), loaded and
    /// handed to every table whose rows they bin.
    #[serde(skip)]
    pub plans: Vec<std::sync::Arc<Plan>>,
    /// Canonical column → how to produce it. Canonical columns not listed are
    /// read from a source column of the same name when there is one.
    #[serde(default, deserialize_with = "de_columns")]
    pub columns: BTreeMap<String, ColumnSpec>,
}

fn de_columns<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, ColumnSpec>, D::Error> {
    let raw: BTreeMap<String, toml::Value> = BTreeMap::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let spec = match v {
            toml::Value::String(s) => ColumnSpec::rename(s),
            // A table of options: an unknown key is named with the allowed
            // ones (`unknown field `format`, expected one of …`).
            other => other.try_into().map_err(|e: toml::de::Error| {
                serde::de::Error::custom(format!("column `{k}`: {}", e.message()))
            })?,
        };
        out.insert(k, spec);
    }
    Ok(out)
}

/// A whole mapping file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The dataset timezone (IANA name); naive timestamps are read in it.
    pub timezone: Option<String>,
    /// Canonical table name → how to read it.
    #[serde(default)]
    pub tables: BTreeMap<String, TableMapping>,
    /// Regular grids that bin coordinates into cells and generate the site
    /// plan (`[[grid]]`, see `io::plan`).
    #[serde(default)]
    pub grid: Vec<GridSpec>,
    /// Polygon layers whose polygons are the cells (`[[polygons]]`).
    #[serde(default)]
    pub polygons: Vec<PolygonSpec>,
    /// The shift roster of the sites: exposure by hour of the week for the
    /// time-of-day analyses and the shifts events are attributed to.
    #[serde(default)]
    pub roster: Option<crate::model::roster::Roster>,
    /// Directory relative paths are resolved against (the mapping file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Mapping {
    /// Parse a mapping from TOML text; `base_dir` resolves relative paths.
    pub fn from_toml(text: &str, base_dir: impl Into<PathBuf>, label: &str) -> Result<Mapping> {
        let mut m: Mapping = toml::from_str(text).map_err(|e| {
            let loc = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("{label} line {line}")
                }
                None => label.to_string(),
            };
            Error::mapping(Some(loc), e.message().to_string())
        })?;
        m.base_dir = base_dir.into();
        m.check(label)?;
        Ok(m)
    }

    /// Read a mapping file.
    #[cfg(feature = "native")]
    pub fn from_file(path: &std::path::Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // `mapping.toml` in the current directory has an empty parent.
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(
                || std::path::PathBuf::from("."),
                std::path::Path::to_path_buf,
            );
        Mapping::from_toml(&text, base, &path.display().to_string())
    }

    /// Check table and column names against the canonical model.
    pub fn check(&self, label: &str) -> Result<()> {
        if let Some(tz) = &self.timezone {
            crate::model::time::parse_tz(tz)
                .map_err(|e| Error::mapping(Some(label.to_string()), e.to_string()))?;
        }
        crate::io::plan::grids(&self.grid, label)?;
        if !(self.grid.is_empty() && self.polygons.is_empty()) && self.tables.contains_key("cells")
        {
            return Err(Error::mapping(
                Some(format!("{label} [tables.cells]")),
                "the site plan comes from `[[grid]]` / `[[polygons]]`: give either a `cells` table or those",
            ));
        }
        for (name, t) in &self.tables {
            let kind = TableKind::from_name(name).ok_or_else(|| {
                Error::mapping(
                    Some(format!("{label} [tables.{name}]")),
                    format!(
                        "unknown table `{name}`; canonical tables are {}",
                        TableKind::ALL.map(TableKind::name).join(", ")
                    ),
                )
            })?;
            let def = kind.def();
            for (col, spec) in &t.columns {
                let loc = format!("{label} [tables.{name}.columns] {col}");
                if def.column(col).is_none() {
                    return Err(Error::mapping(
                        Some(loc),
                        format!(
                            "`{col}` is not a column of `{name}`; its columns are {}",
                            def.columns
                                .iter()
                                .map(|c| c.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                spec.check(&loc)?;
            }
            if let Some(f) = &t.format {
                crate::io::format::Format::parse(f).map_err(|e| {
                    Error::mapping(Some(format!("{label} [tables.{name}]")), e.to_string())
                })?;
            }
            if let Some([a, b]) = t.years
                && !(a <= b && (1..=9999).contains(&a) && (1..=9999).contains(&b))
            {
                return Err(Error::mapping(
                    Some(format!("{label} [tables.{name}]")),
                    format!(
                        "`years = [{a}, {b}]` must be two years from 1 to 9999, the first not after the second"
                    ),
                ));
            }
            if t.delimiter.as_ref().is_some_and(|d| d.len() != 1) {
                return Err(Error::mapping(
                    Some(format!("{label} [tables.{name}]")),
                    "`delimiter` must be one ASCII character",
                ));
            }
            if let Some(enc) = t
                .encoding
                .as_ref()
                .filter(|e| crate::io::format::resolve_encoding(e).is_none())
            {
                return Err(Error::mapping(
                    Some(format!("{label} [tables.{name}]")),
                    format!("unknown encoding `{enc}`"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_date_pattern_is_a_mapping_error() {
        let e = Mapping::from_toml(
            "[tables.incidents]\npath = \"x.csv\"\n[tables.incidents.columns]\n\
             occurred_at = { column = \"DATE\", formats = [\"%d/%m/%Y\", \"%d/%m/%Y %!\"] }\n",
            ".",
            "m.toml",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("`%d/%m/%Y %!` is not a valid date format") && msg.contains("occurred_at"),
            "{msg}"
        );
    }

    #[test]
    fn parses_shorthand_and_full_specs() {
        let m = Mapping::from_toml(
            r#"
timezone = "UTC"
[tables.incidents]
path = "a.csv"
[tables.incidents.columns]
site = "MINE"
id = { row_number = true }
occurred_at = { column = "D", formats = ["excel"], time_column = "T", time_unknown = ["9999"] }
"#,
            ".",
            "m.toml",
        )
        .unwrap();
        let t = &m.tables["incidents"];
        assert_eq!(t.columns["site"], ColumnSpec::rename("MINE"));
        assert!(t.columns["id"].row_number);
        assert_eq!(t.columns["occurred_at"].time_unknown, vec!["9999"]);
    }

    #[test]
    fn errors_name_the_place() {
        let e = Mapping::from_toml("[tables.incidents.columns]\nbogus = \"X\"\n", ".", "m.toml")
            .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Mapping::from_toml("[tables.accidents]\npath='x'\n", ".", "m.toml").unwrap_err();
        assert!(e.to_string().contains("unknown table `accidents`"), "{e}");
        let e = Mapping::from_toml(
            "[tables.incidents.columns]\nid = { colum = \"X\" }\n",
            ".",
            "m.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("id"), "{e}");
    }
}
