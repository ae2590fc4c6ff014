//! Validation reports: what was read, accepted and rejected, and why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a row was rejected. A row with several problems is counted once,
/// under the first problem found (columns in canonical order, then the
/// cross-column checks in the order listed here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A required column has no value.
    MissingRequired,
    /// A value could not be parsed as the column's type.
    Unparseable,
    /// A value is not in the column's vocabulary.
    UnknownEnum,
    /// A number outside the allowed range.
    OutOfRange,
    /// An end (closing, until, period end) before its start.
    EndBeforeStart,
    /// x / y outside the bounding box of the site plan.
    OutsideSite,
    /// An id seen before in the same table (the first occurrence is kept).
    DuplicateId,
    /// A value contradicted by another column (a mapping's `valid_if`).
    Inconsistent,
    /// A date that two of the listed formats read as different days or
    /// instants (`09/20/09` under both `%m/%d/%Y` and `%m/%d/%y`).
    Ambiguous,
}

impl Reason {
    /// Human label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::MissingRequired => "missing required value",
            Reason::Unparseable => "unparseable value",
            Reason::UnknownEnum => "unknown enum value",
            Reason::OutOfRange => "value out of range",
            Reason::EndBeforeStart => "end before start",
            Reason::OutsideSite => "coordinate outside the site",
            Reason::DuplicateId => "duplicate id",
            Reason::Inconsistent => "inconsistent with another column",
            Reason::Ambiguous => "ambiguous under the listed formats",
        }
    }
}

/// One example of a rejected row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Source file (or `memory`).
    pub source: String,
    /// 1-based record number within the source (header excluded).
    pub row: u64,
    /// Canonical column (and source column when different).
    pub column: String,
    /// The offending value as text.
    pub value: String,
}

/// Count and first examples of one rejection reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// Rows rejected for this reason.
    pub count: u64,
    /// The first few examples.
    pub examples: Vec<Example>,
}

/// Maximum number of examples kept per reason.
pub const MAX_EXAMPLES: usize = 5;

/// The report of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableReport {
    /// Canonical table name.
    pub table: String,
    /// Source files read (or `memory`).
    pub sources: Vec<String>,
    /// Rows read from the sources.
    pub rows_read: u64,
    /// Rows accepted into the canonical table.
    pub rows_accepted: u64,
    /// Rows rejected, by reason.
    pub rejected: BTreeMap<Reason, ReasonCount>,
    /// Accepted rows whose time of day is unknown (kept; excluded from
    /// time-of-day analyses).
    pub time_unknown: u64,
    /// Accepted rows whose event time was a date without a time of day
    /// (counted in `time_unknown` unless the mapping reads them as midnight).
    #[serde(default)]
    pub date_only: u64,
    /// Optional canonical columns the source did not provide (all null).
    pub missing_optional_columns: Vec<String>,
    /// Why the table could not be loaded at all (wrong columns, unreadable
    /// file); `None` when it loaded.
    pub error: Option<String>,
    /// The kind of that failure (`not_found`, `io`, `schema`, `data`, ...;
    /// see `ErrorKind::name`), which sets the exit code.
    #[serde(default)]
    pub error_kind: Option<String>,
}

impl TableReport {
    /// Total rejected rows.
    pub fn rows_rejected(&self) -> u64 {
        self.rejected
            .values()
            .fold(0u64, |n, r| n.saturating_add(r.count))
    }

    /// Count of one reason.
    pub fn count(&self, reason: Reason) -> u64 {
        self.rejected.get(&reason).map_or(0, |r| r.count)
    }

    pub(crate) fn reject(&mut self, reason: Reason, ex: impl FnOnce() -> Example) {
        let e = self.rejected.entry(reason).or_default();
        e.count += 1;
        if e.examples.len() < MAX_EXAMPLES {
            e.examples.push(ex());
        }
    }

    /// Merge another report of the same table (counts add, examples fill up).
    pub fn merge(&mut self, other: TableReport) {
        self.sources.extend(other.sources);
        self.rows_read += other.rows_read;
        self.rows_accepted += other.rows_accepted;
        self.time_unknown += other.time_unknown;
        self.date_only += other.date_only;
        for (r, c) in other.rejected {
            let e = self.rejected.entry(r).or_default();
            e.count += c.count;
            for ex in c.examples {
                if e.examples.len() < MAX_EXAMPLES {
                    e.examples.push(ex);
                }
            }
        }
    }
}

/// The report of a whole dataset: one entry per loaded table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// Dataset timezone.
    pub timezone: String,
    /// Reports by table name.
    pub tables: BTreeMap<String, TableReport>,
}

impl ValidationReport {
    /// Total rows rejected in all tables.
    pub fn rows_rejected(&self) -> u64 {
        self.tables
            .values()
            .fold(0u64, |n, t| n.saturating_add(t.rows_rejected()))
    }

    /// Plain-text rendering for terminals.
    pub fn to_text(&self) -> String {
        let mut s = format!("validation report (timezone {})\n", self.timezone);
        for t in self.tables.values() {
            s.push_str(&format!(
                "\n{}: {} read, {} accepted, {} rejected{}\n",
                t.table,
                t.rows_read,
                t.rows_accepted,
                t.rows_rejected(),
                match (t.time_unknown, t.date_only) {
                    (0, 0) => String::new(),
                    (u, 0) => format!(", {u} with time of day unknown"),
                    (u, d) =>
                        format!(", {u} with time of day unknown ({d} dated without a time of day)"),
                }
            ));
            if let Some(e) = &t.error {
                s.push_str(&format!("  UNUSABLE: {e}\n"));
            }
            for src in &t.sources {
                s.push_str(&format!("  source: {src}\n"));
            }
            for (r, c) in &t.rejected {
                s.push_str(&format!("  {:>8}  {}\n", c.count, r.label()));
                for ex in &c.examples {
                    s.push_str(&format!(
                        "            {} row {}: {} = {:?}\n",
                        ex.source, ex.row, ex.column, ex.value
                    ));
                }
            }
            if !t.missing_optional_columns.is_empty() {
                s.push_str(&format!(
                    "  not provided (null): {}\n",
                    t.missing_optional_columns.join(", ")
                ));
            }
        }
        s
    }
}
