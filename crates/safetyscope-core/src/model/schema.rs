//! The canonical data model: ten tables, their columns, types and allowed
//! values. `docs/data-model.md` is generated from these definitions
//! ([`data_model_markdown`]) and a test keeps the two equal.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::model::vocab::{
    ACCIDENT_TYPES, ACTIVITY_KINDS, HAZARD_LEVELS, SEVERITIES, TARGET_DIRECTIONS, Vocabulary,
};

/// The canonical tables.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// Incidents and near misses.
    Incidents,
    /// Hazard reports and their rectification.
    Hazards,
    /// Camera-detected violations.
    Violations,
    /// IoT sensor readings.
    Readings,
    /// Warning and alarm thresholds per metric.
    Thresholds,
    /// Personnel positions.
    Positions,
    /// The site plan: grid cells.
    Cells,
    /// Hours worked and headcount.
    Exposure,
    /// Inspections, training, drills, suggestions, equipment checks.
    Activities,
    /// Annual and quarterly targets.
    Targets,
}

impl TableKind {
    /// All tables, in load order (the site plan first: coordinates of the
    /// other tables are checked against it).
    pub const ALL: [TableKind; 10] = [
        TableKind::Cells,
        TableKind::Incidents,
        TableKind::Hazards,
        TableKind::Violations,
        TableKind::Readings,
        TableKind::Thresholds,
        TableKind::Positions,
        TableKind::Exposure,
        TableKind::Activities,
        TableKind::Targets,
    ];

    /// The table name used in SQL and file names.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Parse a table name.
    pub fn from_name(name: &str) -> Option<TableKind> {
        TableKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The definition of this table.
    pub fn def(self) -> &'static TableDef {
        match self {
            TableKind::Incidents => &INCIDENTS,
            TableKind::Hazards => &HAZARDS,
            TableKind::Violations => &VIOLATIONS,
            TableKind::Readings => &READINGS,
            TableKind::Thresholds => &THRESHOLDS,
            TableKind::Positions => &POSITIONS,
            TableKind::Cells => &CELLS,
            TableKind::Exposure => &EXPOSURE,
            TableKind::Activities => &ACTIVITIES,
            TableKind::Targets => &TARGETS,
        }
    }
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Logical column types of the canonical model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// UTF-8 text.
    Text,
    /// 64-bit float.
    Float,
    /// 32-bit integer.
    Int,
    /// Boolean.
    Bool,
    /// Instant in time, microseconds, carrying the dataset's timezone.
    Timestamp,
}

impl ColType {
    /// The Arrow type for this column type under a dataset timezone.
    pub fn arrow_type(self, tz: &str) -> DataType {
        match self {
            ColType::Text => DataType::Utf8,
            ColType::Float => DataType::Float64,
            ColType::Int => DataType::Int32,
            ColType::Bool => DataType::Boolean,
            ColType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into())),
        }
    }

    fn doc_name(self) -> &'static str {
        match self {
            ColType::Text => "text (Utf8)",
            ColType::Float => "float (Float64)",
            ColType::Int => "integer (Int32)",
            ColType::Bool => "boolean",
            ColType::Timestamp => "timestamp (µs, dataset timezone)",
        }
    }
}

/// Values a column may take.
#[derive(Debug, Clone, Copy)]
pub enum Allowed {
    /// Anything of the type.
    Any,
    /// One code of a vocabulary (aliases accepted on input).
    Vocab(&'static Vocabulary),
    /// A number ≥ 0.
    NonNegative,
    /// A number in [lo, hi].
    Range(f64, f64),
    /// One of the listed numbers.
    OneOf(&'static [f64]),
}

/// The longest text value (bytes) a column holds: ids, codes and names.
/// A longer value is out of range (a 10 MB `site` once exhausted the
/// string offsets of a KPI table).
pub const TEXT_MAX_BYTES: usize = 1024;

/// The longest polygon a cell's `geometry` may hold (WKT bytes).
pub const GEOMETRY_MAX_BYTES: usize = 1 << 20;

impl ColumnDef {
    /// The longest text value the column accepts.
    pub fn max_bytes(&self) -> usize {
        if self.name == "geometry" {
            GEOMETRY_MAX_BYTES
        } else {
            TEXT_MAX_BYTES
        }
    }
}

/// The largest grid row or column of a site plan (a plan of up to
/// 10,000 × 10,000 cells); beyond it a position is out of range.
pub const GRID_MAX: f64 = 9_999.0;

/// One column of a canonical table.
#[derive(Debug, Clone, Copy)]
pub struct ColumnDef {
    /// Column name.
    pub name: &'static str,
    /// Logical type.
    pub ty: ColType,
    /// Rows without a value are rejected.
    pub required: bool,
    /// What the column means.
    pub doc: &'static str,
    /// Values it may take.
    pub allowed: Allowed,
}

/// One canonical table.
#[derive(Debug)]
pub struct TableDef {
    /// Table name.
    pub name: &'static str,
    /// What a row is.
    pub doc: &'static str,
    /// Columns in canonical order.
    pub columns: &'static [ColumnDef],
    /// Column whose values must be unique, if any.
    pub id_column: Option<&'static str>,
    /// (start, end) columns where the end may not precede the start.
    pub intervals: &'static [(&'static str, &'static str)],
    /// The timestamp used for time windows and time-of-day analyses.
    pub time_column: Option<&'static str>,
}

impl TableDef {
    /// Find a column by name.
    pub fn column(&self, name: &str) -> Option<&'static ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Arrow schema of the table under a dataset timezone.
    pub fn arrow_schema(&self, tz: &str) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c.name, c.ty.arrow_type(tz), !c.required))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

const fn col(name: &'static str, ty: ColType, required: bool, doc: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        required,
        doc,
        allowed: Allowed::Any,
    }
}

const fn colv(
    name: &'static str,
    ty: ColType,
    required: bool,
    doc: &'static str,
    allowed: Allowed,
) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        required,
        doc,
        allowed,
    }
}

use ColType::{Bool, Float, Int, Text, Timestamp as Ts};

/// Name of the derived flag column marking rows whose time of day is unknown.
pub const TIME_KNOWN: &str = "time_known";

const SITE: ColumnDef = col("site", Text, true, "Unit / site identifier");
const ZONE: ColumnDef = col(
    "zone",
    Text,
    false,
    "Zone within the site (workshop, warehouse, …)",
);
const CELL: ColumnDef = col(
    "cell",
    Text,
    false,
    "Grid cell identifier of the site plan (`cells.cell`)",
);
const X: ColumnDef = col("x", Float, false, "X coordinate on the site plan (metres)");
const Y: ColumnDef = col("y", Float, false, "Y coordinate on the site plan (metres)");

static INCIDENTS: TableDef = TableDef {
    name: "incidents",
    doc: "One row per incident or near miss (事故 / 未遂事件).",
    columns: &[
        col("id", Text, true, "Unique incident identifier"),
        col(
            "occurred_at",
            Ts,
            true,
            "When it happened (start of the window when only a window is known)",
        ),
        col(
            "occurred_until",
            Ts,
            false,
            "End of the window for events known only within a window",
        ),
        col(
            TIME_KNOWN,
            Bool,
            false,
            "False when the date is known but the time of day is not (default true); such rows are left out of time-of-day analyses and reported as 'time unknown'",
        ),
        SITE,
        ZONE,
        CELL,
        X,
        Y,
        colv(
            "category",
            Text,
            true,
            "Accident type, GB 6441 (Chinese names, English names and the standard's numbers accepted)",
            Allowed::Vocab(&ACCIDENT_TYPES),
        ),
        colv(
            "severity",
            Text,
            true,
            "Injury severity",
            Allowed::Vocab(&SEVERITIES),
        ),
        colv(
            "lost_days",
            Int,
            false,
            "Lost workdays (fatality counts 6000 by GB 6441)",
            Allowed::NonNegative,
        ),
        col(
            "recordable",
            Bool,
            false,
            "OSHA recordable; default: severity is minor, serious or fatal",
        ),
        col(
            "contractor",
            Bool,
            false,
            "Injured person works for a contractor (default false)",
        ),
        col("person_id", Text, false, "Injured person"),
    ],
    id_column: Some("id"),
    intervals: &[("occurred_at", "occurred_until")],
    time_column: Some("occurred_at"),
};

static HAZARDS: TableDef = TableDef {
    name: "hazards",
    doc: "One row per hazard report (隐患) and its rectification.",
    columns: &[
        col("id", Text, true, "Unique hazard identifier"),
        col("reported_at", Ts, true, "When the hazard was reported"),
        col(
            TIME_KNOWN,
            Bool,
            false,
            "False when only the date of the report is known (default true)",
        ),
        SITE,
        ZONE,
        CELL,
        X,
        Y,
        col(
            "category",
            Text,
            false,
            "Hazard category (free text, e.g. electrical, housekeeping)",
        ),
        colv(
            "level",
            Text,
            true,
            "Hazard level",
            Allowed::Vocab(&HAZARD_LEVELS),
        ),
        col("reporter", Text, false, "Who reported it"),
        col("owner", Text, false, "Person responsible for rectification"),
        col("due_at", Ts, false, "Rectification deadline"),
        col(
            "closed_at",
            Ts,
            false,
            "When rectification was completed (null while open)",
        ),
        col(
            "verified_at",
            Ts,
            false,
            "When the rectification was verified",
        ),
        col(
            "source",
            Text,
            false,
            "How it was found: patrol, photo, inspection, …",
        ),
    ],
    id_column: Some("id"),
    intervals: &[
        ("reported_at", "due_at"),
        ("reported_at", "closed_at"),
        ("closed_at", "verified_at"),
    ],
    time_column: Some("reported_at"),
};

static VIOLATIONS: TableDef = TableDef {
    name: "violations",
    doc: "One row per violation detected by an AI camera or an inspector (违章).",
    columns: &[
        col("id", Text, true, "Unique detection identifier"),
        col("detected_at", Ts, true, "When it was detected"),
        SITE,
        ZONE,
        CELL,
        X,
        Y,
        col(
            "kind",
            Text,
            true,
            "Violation kind: no_helmet, no_harness, smoking, intrusion, no_vest, phone (Chinese names accepted), or another label kept as given",
        ),
        col("person_id", Text, false, "Person, when identified"),
        col("camera_id", Text, false, "Camera that detected it"),
        colv(
            "confidence",
            Float,
            false,
            "Detection confidence",
            Allowed::Range(0.0, 1.0),
        ),
    ],
    id_column: Some("id"),
    intervals: &[],
    time_column: Some("detected_at"),
};

static READINGS: TableDef = TableDef {
    name: "readings",
    doc: "One row per sensor reading.",
    columns: &[
        col("sensor_id", Text, true, "Sensor identifier"),
        col("ts", Ts, true, "Time of the reading"),
        SITE,
        ZONE,
        CELL,
        col(
            "metric",
            Text,
            true,
            "What is measured (matches `thresholds.metric`)",
        ),
        col("value", Float, true, "Measured value"),
    ],
    id_column: None,
    intervals: &[],
    time_column: Some("ts"),
};

static THRESHOLDS: TableDef = TableDef {
    name: "thresholds",
    doc: "Warning and alarm thresholds per metric.",
    columns: &[
        col("metric", Text, true, "Metric name"),
        col("warn", Float, false, "Warning threshold"),
        col("alarm", Float, true, "Alarm threshold"),
        col("unit", Text, false, "Unit of the metric"),
    ],
    id_column: Some("metric"),
    intervals: &[],
    time_column: None,
};

static POSITIONS: TableDef = TableDef {
    name: "positions",
    doc: "One row per position fix of a person (personnel positioning).",
    columns: &[
        col("person_id", Text, true, "Person"),
        col("ts", Ts, true, "Time of the fix"),
        SITE,
        col("x", Float, true, "X coordinate on the site plan (metres)"),
        col("y", Float, true, "Y coordinate on the site plan (metres)"),
    ],
    id_column: None,
    intervals: &[],
    time_column: Some("ts"),
};

const LEC_L: &[f64] = &[10.0, 6.0, 3.0, 1.0, 0.5, 0.2, 0.1];
const LEC_E: &[f64] = &[10.0, 6.0, 3.0, 2.0, 1.0, 0.5];
const LEC_C: &[f64] = &[100.0, 40.0, 15.0, 7.0, 3.0, 1.0];

static CELLS: TableDef = TableDef {
    name: "cells",
    doc: "The site plan: one row per cell (a grid position or a polygon), with its owner and optional static risk assessment.",
    columns: &[
        col(
            "cell",
            Text,
            true,
            "Cell identifier, unique within the dataset",
        ),
        col("zone", Text, true, "Zone the cell belongs to"),
        SITE,
        colv(
            "row",
            Int,
            false,
            "Grid row (0 = top); a cell has a row and a column, or a geometry",
            Allowed::Range(0.0, GRID_MAX),
        ),
        colv(
            "col",
            Int,
            false,
            "Grid column (0 = left)",
            Allowed::Range(0.0, GRID_MAX),
        ),
        col("x_min", Float, false, "Bounding box: minimum x (metres)"),
        col("y_min", Float, false, "Bounding box: minimum y (metres)"),
        col("x_max", Float, false, "Bounding box: maximum x (metres)"),
        col("y_max", Float, false, "Bounding box: maximum y (metres)"),
        col(
            "geometry",
            Text,
            false,
            "The cell's polygon as WKT (POLYGON or MULTIPOLYGON), for plans of polygons instead of a grid; neighbours share a vertex (queen) or an edge (rook)",
        ),
        col(
            "owner",
            Text,
            false,
            "Named person responsible for the cell",
        ),
        colv(
            "lec_l",
            Float,
            false,
            "LEC likelihood L",
            Allowed::OneOf(LEC_L),
        ),
        colv(
            "lec_e",
            Float,
            false,
            "LEC exposure frequency E",
            Allowed::OneOf(LEC_E),
        ),
        colv(
            "lec_c",
            Float,
            false,
            "LEC consequence C",
            Allowed::OneOf(LEC_C),
        ),
        colv(
            "ls_l",
            Int,
            false,
            "Risk matrix likelihood L (1–5)",
            Allowed::Range(1.0, 5.0),
        ),
        colv(
            "ls_s",
            Int,
            false,
            "Risk matrix severity S (1–5)",
            Allowed::Range(1.0, 5.0),
        ),
        col(
            "restricted",
            Bool,
            false,
            "Fenced red zone (electronic fence); default false",
        ),
    ],
    id_column: Some("cell"),
    intervals: &[("x_min", "x_max"), ("y_min", "y_max")],
    time_column: None,
};

static EXPOSURE: TableDef = TableDef {
    name: "exposure",
    doc: "Hours worked and headcount per site (and optionally zone) and period: the denominator of every rate.",
    columns: &[
        SITE,
        ZONE,
        col("period_start", Ts, true, "Start of the period (inclusive)"),
        col("period_end", Ts, true, "End of the period (exclusive)"),
        colv(
            "hours_worked",
            Float,
            true,
            "Hours worked in the period",
            Allowed::NonNegative,
        ),
        colv(
            "headcount",
            Int,
            false,
            "Average headcount in the period",
            Allowed::NonNegative,
        ),
    ],
    id_column: None,
    intervals: &[("period_start", "period_end")],
    time_column: Some("period_start"),
};

static ACTIVITIES: TableDef = TableDef {
    name: "activities",
    doc: "Safety activities: leader inspections, training, drills, suggestions, emergency-equipment checks.",
    columns: &[
        colv(
            "kind",
            Text,
            true,
            "Activity kind",
            Allowed::Vocab(&ACTIVITY_KINDS),
        ),
        col("at", Ts, true, "When it took place"),
        SITE,
        col("person_id", Text, false, "Who did or attended it"),
        col(
            "value",
            Float,
            false,
            "Kind-specific value: drill response minutes, training hours, 1/0 equipment ready",
        ),
    ],
    id_column: None,
    intervals: &[],
    time_column: Some("at"),
};

static TARGETS: TableDef = TableDef {
    name: "targets",
    doc: "The annual plan: one row per KPI, scope and period.",
    columns: &[
        col(
            "kpi",
            Text,
            true,
            "KPI code, e.g. trir, fatalities, rectification_rate",
        ),
        col("scope", Text, true, "`group`, a site, or `site/zone`"),
        col(
            "period",
            Text,
            true,
            "Period: `2025`, `2025-Q1` or `2025-03`",
        ),
        col("target", Float, true, "Target value"),
        colv(
            "direction",
            Text,
            true,
            "Whether the actual must stay at most or at least the target",
            Allowed::Vocab(&TARGET_DIRECTIONS),
        ),
        col(
            "baseline",
            Text,
            false,
            "Baseline: absolute value or relative, e.g. `-20% vs 2024`",
        ),
    ],
    id_column: None,
    intervals: &[],
    time_column: None,
};

/// Markdown documentation of the whole data model (the content of
/// `docs/data-model.md`).
pub fn data_model_markdown() -> String {
    let mut s = String::from(
        "# Data model\n\n\
         Canonical tables of safetyscope. Generated from `crates/safetyscope-core/src/model/schema.rs`\n\
         (`safetyscope schema --markdown`); a test keeps this file equal to the code.\n\n\
         Every dataset declares one timezone (default `Asia/Shanghai`). Timestamps are stored as\n\
         instants in microseconds carrying that timezone; naive input timestamps are read in it, and\n\
         all time-of-day logic uses local time in it.\n\n\
         A *required* column must have a value in every accepted row: rows without one are\n\
         rejected and counted in the validation report, never dropped silently.\n\n\
         Plausibility bounds, checked for every table: an instant outside 1900-01-01 – 2100-12-31\n\
         and a text value longer than 1,024 bytes are `out_of_range`.\n",
    );
    for kind in TableKind::ALL {
        let def = kind.def();
        s.push_str(&format!("\n## `{}`\n\n{}\n\n", def.name, def.doc));
        if let Some(id) = def.id_column {
            s.push_str(&format!("Unique key: `{id}`.\n"));
        }
        for (a, b) in def.intervals {
            s.push_str(&format!("`{b}` may not precede `{a}`.\n"));
        }
        s.push_str(
            "\n| column | type | required | meaning | allowed values |\n|---|---|---|---|---|\n",
        );
        for c in def.columns {
            let allowed = match c.allowed {
                Allowed::Any => String::new(),
                Allowed::Vocab(v) => v
                    .terms
                    .iter()
                    .map(|t| format!("`{}` {}", t.code, t.zh))
                    .collect::<Vec<_>>()
                    .join(", "),
                Allowed::NonNegative => "≥ 0".into(),
                Allowed::Range(lo, hi) => format!("{lo} – {hi}"),
                Allowed::OneOf(v) => v.iter().map(f64::to_string).collect::<Vec<_>>().join(", "),
            };
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                c.name,
                c.ty.doc_name(),
                if c.required { "yes" } else { "no" },
                c.doc,
                allowed
            ));
        }
    }
    s
}
