//! The state of one table's load: its definition, mapping, timezone and the
//! problems found so far (the rejected rows by reason).

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use chrono_tz::Tz;

use crate::io::dedup::*;
use crate::io::mapping::TableMapping;
use crate::model::report::{Reason, TableReport};
use crate::model::schema::{TableDef, TableKind};

/// Per-row first problem of a batch.
pub(crate) struct Problems {
    pub(crate) first: Vec<Option<(Reason, String, String)>>,
    /// Rows whose event time held a date without a time of day (empty
    /// when none did).
    pub(crate) date_only: Vec<bool>,
}

impl Problems {
    pub(crate) fn new(n: usize) -> Self {
        Problems {
            first: vec![None; n],
            date_only: Vec::new(),
        }
    }
    pub(crate) fn set(
        &mut self,
        row: usize,
        reason: Reason,
        column: &str,
        value: impl FnOnce() -> String,
    ) {
        if self.first[row].is_none() {
            self.first[row] = Some((reason, column.to_string(), example(value())));
        }
    }
    pub(crate) fn ok(&self, row: usize) -> bool {
        self.first[row].is_none()
    }
}

/// Where a canonical column's raw values come from in one batch.
pub(crate) enum Raw {
    Array(ArrayRef, String),
    Coalesce(Vec<(ArrayRef, String)>),
    Constant(String),
    RowNumber,
    Missing,
}

/// Turns raw batches of one table into canonical batches, accumulating the
/// validation report.
pub struct TableLoader {
    pub(crate) kind: TableKind,
    pub(crate) def: &'static TableDef,
    pub(crate) tz: Tz,
    pub(crate) tz_name: String,
    pub(crate) mapping: TableMapping,
    pub(crate) schema: SchemaRef,
    pub(crate) nullable_schema: SchemaRef,
    pub(crate) extents: SiteExtents,
    /// The instants a timestamp may hold (µs since 1970, UTC): the mapping's
    /// `years`, with a day's margin either side for time zones.
    pub(crate) plausible: (i64, i64),
    /// Those years, for messages.
    pub(crate) years: [i32; 2],
    /// The mapping's plans: each site's coordinates binned into its cells.
    pub(crate) plans: Vec<std::sync::Arc<crate::io::plan::Plan>>,
    /// The ids seen: fingerprints confirmed on the id text.
    pub(crate) seen_ids: crate::io::dedup::SeenIds,
    /// When set, the fingerprints go to disk instead and duplicates are
    /// found after the load ([`IdSpill::candidates`]) and confirmed on the
    /// ids themselves.
    pub(crate) spill: Option<IdSpill>,
    /// When set, rows with an id seen before are accepted too and the
    /// source row of every accepted row is listed here, for a grouped plan
    /// over the ids to find the duplicates after the load.
    pub(crate) accepted_rows: Option<Vec<u64>>,
    /// The mapping's `expr` columns, planned per source schema.
    #[cfg(feature = "native")]
    pub(crate) exprs: std::sync::Mutex<PlannedExprs>,
    /// The report so far.
    pub report: TableReport,
    pub(crate) checked_columns: bool,
}

/// Planned `expr` columns: canonical column → (source schema, physical
/// expression, the source columns it reads).
#[cfg(feature = "native")]
pub(crate) type PlannedExprs = HashMap<
    String,
    (
        SchemaRef,
        std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        String,
    ),
>;

/// Empty or only whitespace (without trimming values that start with a
/// visible character).
pub(crate) fn is_blank(v: &str) -> bool {
    v.chars().next().is_none_or(char::is_whitespace) && v.trim().is_empty()
}

pub(crate) fn fmt_ts(tz: &Tz, micros: i64) -> String {
    crate::model::time::micros_to_local(tz, micros)
        .map_or_else(|| micros.to_string(), |t| t.to_string())
}

/// Bounding boxes of sites, from the site plan, for the "outside the site" check.
pub type SiteExtents = HashMap<String, (f64, f64, f64, f64)>;

/// Compute site extents from canonical `cells` batches.
pub fn site_extents(cells: &[RecordBatch]) -> SiteExtents {
    let mut out: SiteExtents = HashMap::new();
    for b in cells {
        let get_f = |n: &str| {
            b.column_by_name(n)
                .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned())
        };
        let (Some(site), Some(x0), Some(y0), Some(x1), Some(y1)) = (
            b.column_by_name("site")
                .and_then(|a| a.as_any().downcast_ref::<StringArray>().cloned()),
            get_f("x_min"),
            get_f("y_min"),
            get_f("x_max"),
            get_f("y_max"),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            if x0.is_null(i) || y0.is_null(i) || x1.is_null(i) || y1.is_null(i) {
                continue;
            }
            let e = out.entry(site.value(i).to_string()).or_insert((
                f64::MAX,
                f64::MAX,
                f64::MIN,
                f64::MIN,
            ));
            e.0 = e.0.min(x0.value(i));
            e.1 = e.1.min(y0.value(i));
            e.2 = e.2.max(x1.value(i));
            e.3 = e.3.max(y1.value(i));
        }
    }
    out
}

/// A rejected value as the report shows it: up to 200 characters, then
/// its length.
fn example(v: String) -> String {
    const SHOWN: usize = 200;
    match v.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}… ({} bytes)", &v[..cut], v.len()),
        None => v,
    }
}
