//! The options of the pattern analyses: the event selection, grouping,
//! time basis, exposure source and the peak grid.

use std::collections::BTreeSet;

use chrono::{NaiveTime, Timelike};
use serde::{Deserialize, Serialize};

use crate::model::options::EventKind;
use crate::model::options::RiskWeights;
use crate::model::roster::Shift;
use crate::util::error::{Error, Result};

/// Microseconds in a quarter of an hour.
pub(crate) const QUARTER: i64 = 900_000_000;
/// Microseconds in an hour.
pub(crate) const HOUR: i64 = 3_600_000_000;
/// Weekday names, Monday first.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
/// Weekday names in Chinese, Monday first.
pub const WEEKDAYS_ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

/// A dimension events can be grouped by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// Unit / site.
    Site,
    /// Zone within the site.
    Zone,
    /// Grid cell.
    Cell,
    /// Accident type (incidents), hazard category, violation kind.
    Category,
    /// Injury severity (incidents) or hazard level.
    Severity,
    /// Event table: incidents, hazards, violations.
    Kind,
}

impl Dim {
    /// Column name of the dimension in results.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Site => "site",
            Dim::Zone => "zone",
            Dim::Cell => "cell",
            Dim::Category => "category",
            Dim::Severity => "severity",
            Dim::Kind => "kind",
        }
    }

    /// Parse a dimension name.
    pub fn parse(s: &str) -> Result<Dim> {
        Ok(match s.trim() {
            "site" => Dim::Site,
            "zone" => Dim::Zone,
            "cell" => Dim::Cell,
            "category" => Dim::Category,
            "severity" | "level" => Dim::Severity,
            "kind" => Dim::Kind,
            other => {
                return Err(Error::option(
                    "by",
                    format!(
                        "unknown dimension `{other}` (site, zone, cell, category, severity, kind)"
                    ),
                ));
            }
        })
    }
}

/// Which time of an event places it in the hour grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    /// The start time (`occurred_at`).
    Start,
    /// Aoristic: an event known only within `[occurred_at, occurred_until)`
    /// is spread over the hours it overlaps, weight = overlap / window
    /// length (the weights of one event sum to 1).
    Aoristic,
}

/// Where exposure by hour of the week comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExposureSource {
    /// `shifts` when the options or the dataset give a roster, else
    /// exposure records when there are any in the window, else positions,
    /// else uniform.
    Auto,
    /// Exposure records, each spread evenly over the hours of its period.
    Records,
    /// The shift roster: headcount of the shifts on duty at each local hour.
    Shifts,
    /// Person-hours observed in the positions table.
    Positions,
    /// Every hour of the window counts the same (rates per calendar hour).
    Uniform,
}

/// The grid a peak test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeakGrid {
    /// 168 hour × weekday cells, each against the rest of the week.
    HourWeekday,
    /// 24 hours of the day (all weekdays pooled), each against the rest of the day.
    Hour,
}

/// Options shared by the pattern analyses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PatternOptions {
    /// Event tables counted (default: incidents).
    pub kinds: Vec<EventKind>,
    /// Window start, local time, inclusive.
    pub from: Option<String>,
    /// Window end, local time, exclusive.
    pub to: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Only this zone.
    pub zone: Option<String>,
    /// Only this grid cell.
    pub cell: Option<String>,
    /// Only these categories (accident types, hazard categories, violation kinds).
    pub categories: Vec<String>,
    /// Only these severities (incidents) or levels (hazards).
    pub severities: Vec<String>,
    /// Group rows by these dimensions (none = one group).
    pub by: Vec<Dim>,
    /// Start time or aoristic weighting.
    pub time: TimeBasis,
    /// Aoristic weighting: an event known only within a longer span than
    /// this (hours) says nothing about its time of day; it is counted as
    /// time-unknown instead of being spread over the span.
    pub max_aoristic_hours: f64,
    /// Exposure by hour of the week.
    pub exposure: ExposureSource,
    /// Shift roster (exposure `shifts` and the shift analyses); empty =
    /// the dataset's declared roster, else day 08–20 and night 20–08.
    pub shifts: Vec<Shift>,
    /// Relative exposure per weekday (Monday first) applied with the shift
    /// roster, e.g. `[1, 1, 1, 1, 1, 0.8, 0.6]` for lighter weekends.
    pub weekday_factors: Option<Vec<f64>>,
    /// Severity weights of `weighted`: the incident severity weights, the
    /// open-hazard weights by level and the violation weight of the risk map.
    pub weights: RiskWeights,
    /// Peak tests: the grid.
    pub grid: PeakGrid,
    /// Peak tests: false discovery rate / significance level.
    pub alpha: f64,
    /// Pareto and cross-tab: the dimension ranked (rows of the cross-tab).
    pub dim: Dim,
    /// Cross-tab: the dimension of the columns.
    pub columns: Dim,
}

impl Default for PatternOptions {
    fn default() -> Self {
        PatternOptions {
            kinds: vec![EventKind::Incidents],
            from: None,
            to: None,
            site: None,
            zone: None,
            cell: None,
            categories: vec![],
            severities: vec![],
            by: vec![],
            time: TimeBasis::Start,
            max_aoristic_hours: 72.0,
            exposure: ExposureSource::Auto,
            shifts: vec![],
            weekday_factors: None,
            weights: RiskWeights::default(),
            grid: PeakGrid::HourWeekday,
            alpha: 0.05,
            dim: Dim::Category,
            columns: Dim::Zone,
        }
    }
}

impl PatternOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.kinds.is_empty() {
            return Err(Error::option("kinds", "select at least one event kind"));
        }
        if !(self.max_aoristic_hours > 0.0 && self.max_aoristic_hours <= 24.0 * 366.0) {
            return Err(Error::option(
                "max_aoristic_hours",
                format!(
                    "must be more than 0 and at most a year (8784), got {}",
                    self.max_aoristic_hours
                ),
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::option(
                "alpha",
                format!("must be in (0, 1), got {}", self.alpha),
            ));
        }
        let mut seen = BTreeSet::new();
        for d in &self.by {
            if !seen.insert(*d) {
                return Err(Error::option(
                    "by",
                    format!("`{}` is given twice", d.name()),
                ));
            }
        }
        if let Some(f) = &self.weekday_factors
            && (f.len() != 7 || f.iter().any(|v| !(v.is_finite() && *v >= 0.0)))
        {
            return Err(Error::option(
                "weekday_factors",
                "seven non-negative numbers, Monday first",
            ));
        }
        parse_shifts(&self.shifts)?;
        Ok(())
    }
}

/// A shift with parsed times: start and length in minutes.
#[derive(Debug, Clone)]
pub(crate) struct ShiftDef {
    pub(crate) name: String,
    pub(crate) start_min: u32,
    pub(crate) len_min: u32,
    pub(crate) headcount: f64,
}

impl ShiftDef {
    /// Minutes since the shift started for a local minute of the day, if on duty.
    pub(crate) fn minutes_in(&self, minute_of_day: u32) -> Option<u32> {
        let since = (minute_of_day + 1440 - self.start_min) % 1440;
        (since < self.len_min).then_some(since)
    }
}

pub(crate) fn parse_hhmm(option: &str, v: &str) -> Result<u32> {
    let t = NaiveTime::parse_from_str(v.trim(), "%H:%M")
        .map_err(|_| Error::option(option, format!("`{v}` is not a time HH:MM")))?;
    let m = t.hour() * 60 + t.minute();
    if m % 15 != 0 {
        return Err(Error::option(
            option,
            format!("`{v}`: shift times must be multiples of 15 minutes"),
        ));
    }
    Ok(m)
}

pub(crate) fn parse_shifts(shifts: &[Shift]) -> Result<Vec<ShiftDef>> {
    shifts
        .iter()
        .map(|s| {
            let start = parse_hhmm("shifts", &s.start)?;
            let end = parse_hhmm("shifts", &s.end)?;
            let len = (end + 1440 - start) % 1440;
            let len = if len == 0 { 1440 } else { len };
            if !(s.headcount.is_finite() && s.headcount >= 0.0) {
                return Err(Error::option(
                    "shifts",
                    format!("shift `{}`: headcount must be ≥ 0", s.name),
                ));
            }
            Ok(ShiftDef {
                name: s.name.clone(),
                start_min: start,
                len_min: len,
                headcount: s.headcount,
            })
        })
        .collect()
}
