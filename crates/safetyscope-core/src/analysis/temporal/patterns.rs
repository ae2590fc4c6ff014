//! Incident patterns by time of day and location: hour × weekday profiles,
//! shifts, monthly trends, Pareto, cross-tabs, the accident pyramid, and
//! the tests that tell a real peak from noise (exact Poisson rate tests with
//! exposure, Benjamini–Hochberg) and near-repeat clustering (Knox).
//!
//! All time-of-day logic is in the dataset's local time. DataFusion scans,
//! filters and aggregates the events to quarter-hour instants (every UTC
//! offset in use is a multiple of 15 minutes, so a quarter-hour never
//! straddles a local hour); the quarter-hours are then placed in local
//! weekday and hour with the timezone rules, so daylight-saving days are
//! neither shifted nor doubled.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use chrono_tz::Tz;
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, sum};
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use serde::{Deserialize, Serialize};

use crate::model::options::EventKind;
use crate::model::options::RiskWeights;
use crate::model::roster::Shift;
use crate::model::roster::default_shifts;
use crate::model::schema::TableKind;
use crate::model::time::{local_to_micros, micros_to_local, parse_tz};
use crate::session::dataset::Dataset;
use crate::session::window::parse_local;
use crate::util::columns::col_as;
use crate::util::columns::str_col;
use crate::util::error::{Error, Result};

/// Microseconds in a quarter of an hour.
const QUARTER: i64 = 900_000_000;
/// Microseconds in an hour.
const HOUR: i64 = 3_600_000_000;
/// Weekday names, Monday first.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
/// Weekday names in Chinese, Monday first.
pub const WEEKDAYS_ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

/// A dimension events can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeakGrid {
    /// 168 hour × weekday cells, each against the rest of the week.
    HourWeekday,
    /// 24 hours of the day (all weekdays pooled), each against the rest of the day.
    Hour,
}

/// Options shared by the pattern analyses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    fn validate(&self) -> Result<()> {
        if self.kinds.is_empty() {
            return Err(Error::option("kinds", "select at least one event kind"));
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

/// The roster in force: the options' shifts and weekday factors, else the
/// dataset's declared roster, else [`default_shifts`]; and whether one was
/// given (by the options or the dataset) rather than defaulted.
fn roster_of(ds: &Dataset, o: &PatternOptions) -> Result<(Vec<ShiftDef>, Vec<f64>, bool)> {
    let declared = ds.roster();
    let (shifts, given) = if !o.shifts.is_empty() {
        (o.shifts.clone(), true)
    } else if let Some(r) = declared {
        (r.shifts.clone(), true)
    } else {
        (default_shifts(), false)
    };
    let factors = o
        .weekday_factors
        .clone()
        .or_else(|| declared.and_then(|r| r.weekday_factors.clone()));
    let given = given || factors.is_some();
    let factors = factors.unwrap_or_else(|| vec![1.0; 7]);
    if factors.len() != 7 || factors.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(Error::option(
            "weekday_factors",
            "seven non-negative numbers, Monday first",
        ));
    }
    Ok((parse_shifts(&shifts)?, factors, given))
}

/// A shift with parsed times: start and length in minutes.
#[derive(Debug, Clone)]
struct ShiftDef {
    name: String,
    start_min: u32,
    len_min: u32,
    headcount: f64,
}

impl ShiftDef {
    /// Minutes since the shift started for a local minute of the day, if on duty.
    fn minutes_in(&self, minute_of_day: u32) -> Option<u32> {
        let since = (minute_of_day + 1440 - self.start_min) % 1440;
        (since < self.len_min).then_some(since)
    }
}

fn parse_hhmm(option: &str, v: &str) -> Result<u32> {
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

fn parse_shifts(shifts: &[Shift]) -> Result<Vec<ShiftDef>> {
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

/// Values of the `by` dimensions of one group.
type GroupKey = Vec<Option<String>>;
/// A value of the Pareto dimension with its events and weighted events.
type ParetoItem = (Option<String>, f64, f64);
/// Group, shift (none = outside every shift) and hour of shift (none = time unknown).
type ShiftCell = (usize, Option<usize>, Option<usize>);

/// Text columns of one table as the pattern dimensions.
struct TableCols {
    time: &'static str,
    until: Option<&'static str>,
    time_known: bool,
    category: &'static str,
    severity: Option<&'static str>,
}

fn table_cols(kind: EventKind) -> TableCols {
    match kind {
        EventKind::Incidents => TableCols {
            time: "occurred_at",
            until: Some("occurred_until"),
            time_known: true,
            category: "category",
            severity: Some("severity"),
        },
        EventKind::Hazards => TableCols {
            time: "reported_at",
            until: None,
            time_known: true,
            category: "category",
            severity: Some("level"),
        },
        EventKind::Violations => TableCols {
            time: "detected_at",
            until: None,
            time_known: false,
            category: "kind",
            severity: None,
        },
    }
}

fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Incidents => "incidents",
        EventKind::Hazards => "hazards",
        EventKind::Violations => "violations",
    }
}

fn table_of(kind: EventKind) -> TableKind {
    match kind {
        EventKind::Incidents => TableKind::Incidents,
        EventKind::Hazards => TableKind::Hazards,
        EventKind::Violations => TableKind::Violations,
    }
}

fn weight_expr(kind: EventKind, w: &RiskWeights) -> Result<Expr> {
    Ok(match kind {
        EventKind::Incidents => when(col("severity").eq(lit("near_miss")), lit(w.near_miss))
            .when(col("severity").eq(lit("first_aid")), lit(w.first_aid))
            .when(col("severity").eq(lit("minor")), lit(w.minor))
            .when(col("severity").eq(lit("serious")), lit(w.serious))
            .when(col("severity").eq(lit("fatal")), lit(w.fatal))
            .otherwise(lit(0.0))?,
        EventKind::Hazards => when(col("level").eq(lit("major")), lit(w.open_hazard_major))
            .otherwise(lit(w.open_hazard_general))?,
        EventKind::Violations => lit(w.violation),
    })
}

fn in_list(column: &str, values: &[String]) -> Expr {
    col(column).in_list(values.iter().map(|v| lit(v.clone())).collect(), false)
}

/// The selected events of all chosen tables in one frame with the columns
/// `site, zone, cell, category, severity, kind, t, until, known, weight,
/// x, y` (`t`/`until` as microseconds).
pub(crate) async fn events_frame(ds: &Dataset, o: &PatternOptions) -> Result<DataFrame> {
    let mut union: Option<DataFrame> = None;
    for &kind in &o.kinds {
        let c = table_cols(kind);
        let mut df = crate::session::window::filtered(
            ds,
            table_of(kind),
            o.from.as_deref(),
            o.to.as_deref(),
            o.site.as_deref(),
        )
        .await?;
        if let Some(z) = &o.zone {
            df = df.filter(col("zone").eq(lit(z.clone())))?;
        }
        if let Some(c) = &o.cell {
            df = df.filter(col("cell").eq(lit(c.clone())))?;
        }
        if !o.categories.is_empty() {
            df = df.filter(in_list(c.category, &o.categories))?;
        }
        if !o.severities.is_empty() {
            df = match c.severity {
                Some(s) => df.filter(in_list(s, &o.severities))?,
                None => df.filter(lit(false))?,
            };
        }
        let micros = |name: &str| cast(col(name), DataType::Int64);
        let text = |e: Expr| cast(e, DataType::Utf8);
        df = df.select(vec![
            col("site"),
            col("zone"),
            col("cell"),
            text(col(c.category)).alias("category"),
            c.severity
                .map_or(lit(ScalarNull::utf8()), col)
                .alias("severity"),
            lit(kind_name(kind)).alias("kind"),
            micros(c.time).alias("t"),
            c.until
                .map_or(lit(ScalarNull::int64()), micros)
                .alias("until"),
            if c.time_known {
                coalesce(vec![col("time_known"), lit(true)])
            } else {
                lit(true)
            }
            .alias("known"),
            weight_expr(kind, &o.weights)?.alias("weight"),
            col("x"),
            col("y"),
        ])?;
        union = Some(match union {
            None => df,
            Some(u) => u.union(df)?,
        });
    }
    union.ok_or_else(|| Error::option("kinds", "select at least one event kind"))
}

/// Typed null literals.
struct ScalarNull;

impl ScalarNull {
    fn utf8() -> datafusion::common::ScalarValue {
        datafusion::common::ScalarValue::Utf8(None)
    }
    fn int64() -> datafusion::common::ScalarValue {
        datafusion::common::ScalarValue::Int64(None)
    }
}

/// Events binned to quarter-hours: per group, per quarter-hour instant,
/// the events (fractional under aoristic weighting) and their weight.
struct Binned {
    /// Group keys in order, one value per `by` dimension.
    groups: Vec<Vec<Option<String>>>,
    /// `(group, quarter index, time known, events, weighted)`.
    rows: Vec<(usize, i64, bool, f64, f64)>,
}

fn floor_div(e: Expr, q: i64) -> Expr {
    // Floor division also for instants before 1970.
    let r = ((e.clone() % lit(q)) + lit(q)) % lit(q);
    (e - r) / lit(q)
}

/// How finely [`binned`] keeps the instants of point events.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Binning {
    /// Every quarter-hour instant (views that need local dates).
    Quarters,
    /// One row per local hour of the week (0–167) per group, aggregated in
    /// the plan, carrying the first quarter-hour as its instant and a
    /// zero-count row at the last one (the window's bounds): for views
    /// that only need the hour of the week.
    WeekHours,
}

async fn binned(ds: &Dataset, o: &PatternOptions) -> Result<Binned> {
    binned_as(ds, o, Binning::Quarters).await
}

async fn binned_as(ds: &Dataset, o: &PatternOptions, binning: Binning) -> Result<Binned> {
    use datafusion::functions_aggregate::expr_fn::{max, min};
    let ev = events_frame(ds, o).await?;
    let dims: Vec<Expr> = o.by.iter().map(|d| col(d.name())).collect();
    let aoristic = o.time == TimeBasis::Aoristic;
    let spread_rows = if aoristic {
        col("until").is_not_null().and(col("until").gt(col("t")))
    } else {
        lit(false)
    };
    let point = ev.clone().filter(!spread_rows.clone())?;
    let mut keys = dims.clone();
    let mut aggs = vec![count(lit(1i64)).alias("n"), sum(col("weight")).alias("w")];
    let week_hours = binning == Binning::WeekHours;
    if week_hours {
        // The span of the chosen tables' times (from file statistics where
        // the files have them): the offsets are exact inside it.
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &kind in &o.kinds {
            if let Some((a, b)) = ds.time_span(table_of(kind), table_cols(kind).time).await? {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        let bound = |name: &str| match name {
            "lo" if lo <= hi => lo,
            "hi" if lo <= hi => hi,
            _ => 0,
        };
        let tz = parse_tz(ds.timezone())?;
        let local = crate::model::time::local_micros_expr(&tz, col("t"), bound("lo"), bound("hi"))?;
        const DAY_US: i64 = 86_400_000_000;
        let day = floor_div(local.clone(), DAY_US);
        // 1970-01-01 was a Thursday: Monday = 0.
        let weekday = ((day.clone() % lit(7i64)) + lit(10i64)) % lit(7i64);
        let hour = (local - day * lit(DAY_US)) / lit(3_600_000_000i64);
        keys.push((weekday * lit(24i64) + hour).alias("slot"));
        aggs.push(min(col("t")).alias("t_first"));
        aggs.push(max(col("t")).alias("t_last"));
    } else {
        keys.push(floor_div(col("t"), QUARTER).alias("q"));
    }
    keys.push(col("known"));
    let agg = point.aggregate(keys, aggs)?.collect().await?;
    let mut index: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    let mut out = Binned {
        groups: vec![],
        rows: vec![],
    };
    let mut group_of = |b: &RecordBatch, i: usize, out: &mut Binned| -> Result<usize> {
        let mut key = Vec::with_capacity(o.by.len());
        for d in &o.by {
            let c = str_col(b, d.name())?;
            key.push((!c.is_null(i)).then(|| c.value(i).to_string()));
        }
        Ok(*index.entry(key.clone()).or_insert_with(|| {
            out.groups.push(key);
            out.groups.len() - 1
        }))
    };
    for b in &agg {
        let known = col_as::<BooleanArray>(b, "known")?;
        let n = col_as::<Int64Array>(b, "n")?;
        let w = col_as::<Float64Array>(b, "w")?;
        if week_hours {
            // The first instant carries the events, the last one (no events)
            // the extent of the window.
            let first = col_as::<Int64Array>(b, "t_first")?;
            let last = col_as::<Int64Array>(b, "t_last")?;
            for i in 0..b.num_rows() {
                let g = group_of(b, i, &mut out)?;
                let k = known.value(i);
                let q = first.value(i).div_euclid(QUARTER);
                out.rows.push((g, q, k, n.value(i) as f64, w.value(i)));
                out.rows
                    .push((g, last.value(i).div_euclid(QUARTER), k, 0.0, 0.0));
            }
            continue;
        }
        let q = col_as::<Int64Array>(b, "q")?;
        for i in 0..b.num_rows() {
            let g = group_of(b, i, &mut out)?;
            out.rows
                .push((g, q.value(i), known.value(i), n.value(i) as f64, w.value(i)));
        }
    }
    if aoristic {
        let mut cols = dims;
        cols.extend([col("t"), col("until"), col("known"), col("weight")]);
        let spread = ev.filter(spread_rows)?.select(cols)?.collect().await?;
        for b in &spread {
            let t = col_as::<Int64Array>(b, "t")?;
            let u = col_as::<Int64Array>(b, "until")?;
            let known = col_as::<BooleanArray>(b, "known")?;
            let w = col_as::<Float64Array>(b, "weight")?;
            for i in 0..b.num_rows() {
                let g = group_of(b, i, &mut out)?;
                let (s, e) = (t.value(i), u.value(i));
                let len = (e - s) as f64;
                let mut a = s;
                while a < e {
                    let q = a.div_euclid(QUARTER);
                    let next = ((q + 1) * QUARTER).min(e);
                    let f = (next - a) as f64 / len;
                    out.rows.push((g, q, known.value(i), f, f * w.value(i)));
                    a = next;
                }
            }
        }
    }
    // A fixed order of the rows, so sums of fractional weights are the same
    // on every run whatever order the partitions arrived in.
    let keys = out.groups.clone();
    out.rows.sort_by(|a, b| {
        keys[a.0]
            .cmp(&keys[b.0])
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.total_cmp(&b.3))
            .then(a.4.total_cmp(&b.4))
    });
    Ok(out)
}

/// Local calendar position of a quarter-hour.
#[derive(Debug, Clone, Copy)]
struct Local {
    date: NaiveDate,
    weekday: usize,
    hour: usize,
    minute_of_day: u32,
}

struct Clock {
    tz: Tz,
    cache: HashMap<i64, Local>,
    /// Every quarter-hour of the analysis window from `base` on, converted
    /// once (see [`Clock::prepare`]).
    dense: Vec<Local>,
    base: i64,
}

impl Clock {
    fn new(ds: &Dataset) -> Result<Clock> {
        Ok(Clock {
            tz: parse_tz(ds.timezone())?,
            cache: HashMap::new(),
            dense: vec![],
            base: 0,
        })
    }

    fn convert(tz: &Tz, q: i64) -> Local {
        let t = micros_to_local(tz, q * QUARTER).unwrap_or(NaiveDateTime::MIN);
        Local {
            date: t.date(),
            weekday: t.weekday().num_days_from_monday() as usize,
            hour: t.hour() as usize,
            minute_of_day: t.hour() * 60 + t.minute(),
        }
    }

    /// Convert every quarter-hour of `[q0, q1)` once (windows up to 20
    /// years), so the loops over the window's quarter-hours (calendar and
    /// exposure hours) index them instead of looking each one up.
    fn prepare(&mut self, (q0, q1): (i64, i64)) {
        const MAX: i64 = 4 * 24 * 366 * 20;
        if q1 <= q0 || q1 - q0 > MAX {
            return;
        }
        let tz = self.tz;
        self.base = q0;
        self.dense = (q0..q1).map(|q| Clock::convert(&tz, q)).collect();
    }

    fn local(&mut self, q: i64) -> Local {
        if let Some(l) = usize::try_from(q - self.base)
            .ok()
            .and_then(|i| self.dense.get(i))
        {
            return *l;
        }
        let tz = self.tz;
        *self
            .cache
            .entry(q)
            .or_insert_with(|| Clock::convert(&tz, q))
    }

    /// The instant of local midnight starting `date` (the first instant of
    /// the day when midnight is skipped).
    fn day_start(&self, date: NaiveDate) -> i64 {
        crate::model::time::local_day_start(&self.tz, date)
    }
}

/// The analysis window in quarter-hours `[q0, q1)`: the options' bounds,
/// else whole local days around the events.
fn window(ds: &Dataset, o: &PatternOptions, b: &Binned, clock: &mut Clock) -> Result<(i64, i64)> {
    let lo = match &o.from {
        Some(f) => Some(parse_local(ds, "from", f)?.div_euclid(QUARTER)),
        None => b.rows.iter().map(|r| r.1).min().map(|q| {
            let d = clock.local(q).date;
            clock.day_start(d).div_euclid(QUARTER)
        }),
    };
    let hi = match &o.to {
        Some(t) => Some(parse_local(ds, "to", t)?.div_euclid(QUARTER)),
        None => b.rows.iter().map(|r| r.1).max().map(|q| {
            let next = clock.local(q).date.succ_opt().unwrap_or(NaiveDate::MAX);
            clock.day_start(next).div_euclid(QUARTER)
        }),
    };
    match (lo, hi) {
        (Some(a), Some(b)) if b > a => Ok((a, b)),
        (Some(_), Some(_)) => Err(Error::option("to", "the window is empty (to ≤ from)")),
        _ => Ok((0, 0)),
    }
}

/// Exposure per hour of the week (168, Monday 00:00 first) of one scope.
#[derive(Debug, Clone)]
struct Exposure {
    /// Relative exposure per hour of the week.
    shape: Vec<f64>,
    /// Hours worked per hour of the week, when hours are known.
    hours: Option<Vec<f64>>,
    /// The source used.
    basis: &'static str,
}

/// Scope of exposure: the site and zone of a group, where `by` has them.
type Scope = (Option<String>, Option<String>);

fn scope_of(o: &PatternOptions, key: &[Option<String>]) -> Scope {
    let get = |d: Dim| {
        o.by.iter()
            .position(|x| *x == d)
            .and_then(|i| key[i].clone())
    };
    (get(Dim::Site), get(Dim::Zone))
}

/// Calendar hours of the window per hour of the week, weighted by `f(local)`.
fn calendar(clock: &mut Clock, q0: i64, q1: i64, f: &dyn Fn(&Local) -> f64) -> Vec<f64> {
    let mut v = vec![0.0; 168];
    for q in q0..q1 {
        let l = clock.local(q);
        v[l.weekday * 24 + l.hour] += 0.25 * f(&l);
    }
    v
}

async fn exposures(
    ds: &Dataset,
    o: &PatternOptions,
    b: &Binned,
    clock: &mut Clock,
    (q0, q1): (i64, i64),
) -> Result<BTreeMap<Scope, Exposure>> {
    let scopes: BTreeSet<Scope> = b.groups.iter().map(|k| scope_of(o, k)).collect();
    let (shifts, wf, roster_given) = roster_of(ds, o)?;
    clock.prepare((q0, q1));
    let uniform = calendar(clock, q0, q1, &|_| 1.0);
    // Hours worked per scope and hour of the week from the exposure records.
    let records = if ds.has_table(TableKind::Exposure) && q1 > q0 {
        record_hours(ds, o, clock, (q0, q1)).await?
    } else {
        BTreeMap::new()
    };
    let source = match o.exposure {
        ExposureSource::Auto if roster_given => ExposureSource::Shifts,
        ExposureSource::Auto => {
            if !records.is_empty() {
                ExposureSource::Records
            } else if ds.row_count(TableKind::Positions) > 0 {
                ExposureSource::Positions
            } else {
                ExposureSource::Uniform
            }
        }
        s => s,
    };
    let positions = if source == ExposureSource::Positions && q1 > q0 {
        position_hours(ds, o, clock, (q0, q1)).await?
    } else {
        BTreeMap::new()
    };
    let roster = if source == ExposureSource::Shifts {
        calendar(clock, q0, q1, &|l| {
            let on: f64 = shifts
                .iter()
                .filter(|s| s.minutes_in(l.minute_of_day).is_some())
                .map(|s| s.headcount)
                .sum();
            on * wf[l.weekday]
        })
    } else {
        vec![]
    };
    let mut out = BTreeMap::new();
    for scope in scopes {
        let rec = records.get(&scope);
        let total = rec.map(|v| v.iter().sum::<f64>());
        let (shape, basis) = match source {
            ExposureSource::Records => match rec {
                Some(v) => (v.clone(), "records"),
                None => (uniform.clone(), "uniform"),
            },
            ExposureSource::Shifts => (roster.clone(), "shifts"),
            ExposureSource::Positions => match positions.get(&(scope.0.clone(), None)) {
                Some(v) if v.iter().sum::<f64>() > 0.0 => (v.clone(), "positions"),
                _ => (uniform.clone(), "uniform"),
            },
            _ => (uniform.clone(), "uniform"),
        };
        let sum: f64 = shape.iter().sum();
        let hours = match (total, basis) {
            (Some(t), _) if sum > 0.0 => Some(shape.iter().map(|s| t * s / sum).collect()),
            (None, "positions") => Some(shape.clone()),
            _ => None,
        };
        out.insert(
            scope,
            Exposure {
                shape,
                hours,
                basis,
            },
        );
    }
    Ok(out)
}

/// One exposure record inside the window: its scope, its quarter-hours
/// `[a, z)` (not clipped) and the hours worked per quarter-hour.
struct ExposureRecord {
    scope: Scope,
    a: i64,
    z: i64,
    per_q: f64,
}

/// The exposure records overlapping `[q0, q1)`, keyed by the site and zone
/// of `by` (records without a zone are left out of zone scopes).
async fn exposure_records(
    ds: &Dataset,
    o: &PatternOptions,
    (q0, q1): (i64, i64),
) -> Result<Vec<ExposureRecord>> {
    let mut df = ds.table(TableKind::Exposure).await?;
    if let Some(s) = &o.site {
        df = df.filter(col("site").eq(lit(s.clone())))?;
    }
    if let Some(z) = &o.zone {
        df = df.filter(col("zone").eq(lit(z.clone())))?;
    }
    let batches = df
        .select(vec![
            col("site"),
            col("zone"),
            cast(col("period_start"), DataType::Int64).alias("s"),
            cast(col("period_end"), DataType::Int64).alias("e"),
            col("hours_worked"),
        ])?
        .collect()
        .await?;
    let (by_site, by_zone) = (o.by.contains(&Dim::Site), o.by.contains(&Dim::Zone));
    let mut out = vec![];
    for b in &batches {
        let site = str_col(b, "site")?;
        let zone = str_col(b, "zone")?;
        let s = col_as::<Int64Array>(b, "s")?;
        let e = col_as::<Int64Array>(b, "e")?;
        let h = col_as::<Float64Array>(b, "hours_worked")?;
        for i in 0..b.num_rows() {
            if by_zone && zone.is_null(i) {
                continue;
            }
            let (a, z) = (
                s.value(i).div_euclid(QUARTER),
                e.value(i).div_euclid(QUARTER),
            );
            if z <= a || z <= q0 || a >= q1 {
                continue;
            }
            out.push(ExposureRecord {
                scope: (
                    by_site.then(|| site.value(i).to_string()),
                    by_zone.then(|| zone.value(i).to_string()),
                ),
                a,
                z,
                per_q: h.value(i) / (z - a) as f64,
            });
        }
    }
    Ok(out)
}

/// Exposure records spread over their quarter-hours within the window, per scope.
async fn record_hours(
    ds: &Dataset,
    o: &PatternOptions,
    clock: &mut Clock,
    (q0, q1): (i64, i64),
) -> Result<BTreeMap<Scope, Vec<f64>>> {
    let mut out: BTreeMap<Scope, Vec<f64>> = BTreeMap::new();
    for r in exposure_records(ds, o, (q0, q1)).await? {
        let v = out.entry(r.scope).or_insert_with(|| vec![0.0; 168]);
        for q in r.a.max(q0)..r.z.min(q1) {
            let l = clock.local(q);
            v[l.weekday * 24 + l.hour] += r.per_q;
        }
    }
    Ok(out)
}

/// Person-hours observed in the positions table per site (or all sites).
async fn position_hours(
    ds: &Dataset,
    o: &PatternOptions,
    clock: &mut Clock,
    (q0, q1): (i64, i64),
) -> Result<BTreeMap<Scope, Vec<f64>>> {
    let mut df = ds.table(TableKind::Positions).await?;
    if let Some(s) = &o.site {
        df = df.filter(col("site").eq(lit(s.clone())))?;
    }
    let q = floor_div(cast(col("ts"), DataType::Int64), QUARTER);
    let by_site = o.by.contains(&Dim::Site);
    let batches = df
        .filter(q.clone().gt_eq(lit(q0)).and(q.clone().lt(lit(q1))))?
        .aggregate(
            vec![col("site"), q.alias("q")],
            vec![count_distinct(col("person_id")).alias("people")],
        )?
        .collect()
        .await?;
    let mut out: BTreeMap<Scope, Vec<f64>> = BTreeMap::new();
    for b in &batches {
        let site = str_col(b, "site")?;
        let q = col_as::<Int64Array>(b, "q")?;
        let n = col_as::<Int64Array>(b, "people")?;
        for i in 0..b.num_rows() {
            let key = (by_site.then(|| site.value(i).to_string()), None);
            let l = clock.local(q.value(i));
            out.entry(key).or_insert_with(|| vec![0.0; 168])[l.weekday * 24 + l.hour] +=
                0.25 * n.value(i) as f64;
        }
    }
    Ok(out)
}

/// Group keys sorted with their original index, nulls last.
fn sorted_groups(b: &Binned) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..b.groups.len()).collect();
    idx.sort_by(|&x, &y| {
        let (a, c) = (&b.groups[x], &b.groups[y]);
        a.iter()
            .zip(c)
            .map(|(p, q)| match (p, q) {
                (Some(p), Some(q)) => p.cmp(q),
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    idx
}

/// Builds a result batch column by column.
#[derive(Default)]
struct Columns {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Columns {
    fn text(&mut self, name: &str, v: Vec<Option<String>>) {
        self.fields.push(Field::new(name, DataType::Utf8, true));
        self.arrays.push(Arc::new(StringArray::from(v)));
    }
    fn int(&mut self, name: &str, v: Vec<Option<i32>>) {
        self.fields.push(Field::new(name, DataType::Int32, true));
        self.arrays.push(Arc::new(Int32Array::from(v)));
    }
    fn float(&mut self, name: &str, v: Vec<Option<f64>>) {
        self.fields.push(Field::new(name, DataType::Float64, true));
        self.arrays.push(Arc::new(Float64Array::from(v)));
    }
    fn int64(&mut self, name: &str, v: Vec<Option<i64>>) {
        self.fields.push(Field::new(name, DataType::Int64, true));
        self.arrays.push(Arc::new(Int64Array::from(v)));
    }
    fn boolean(&mut self, name: &str, v: Vec<Option<bool>>) {
        self.fields.push(Field::new(name, DataType::Boolean, true));
        self.arrays.push(Arc::new(BooleanArray::from(v)));
    }
    fn dims(&mut self, o: &PatternOptions, keys: &[&Vec<Option<String>>]) {
        for (k, d) in o.by.iter().enumerate() {
            self.text(d.name(), keys.iter().map(|key| key[k].clone()).collect());
        }
    }
    fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(self.fields)),
            self.arrays,
        )?)
    }
}

/// Per group: events and weighted events per hour of the week, plus events
/// whose time of day is unknown per weekday.
struct Grids {
    events: Vec<[f64; 168]>,
    weighted: Vec<[f64; 168]>,
    unknown: Vec<[f64; 7]>,
    unknown_w: Vec<[f64; 7]>,
}

fn grids(b: &Binned, clock: &mut Clock) -> Grids {
    let n = b.groups.len();
    let mut g = Grids {
        events: vec![[0.0; 168]; n],
        weighted: vec![[0.0; 168]; n],
        unknown: vec![[0.0; 7]; n],
        unknown_w: vec![[0.0; 7]; n],
    };
    for &(gi, q, known, e, w) in &b.rows {
        let l = clock.local(q);
        if known {
            g.events[gi][l.weekday * 24 + l.hour] += e;
            g.weighted[gi][l.weekday * 24 + l.hour] += w;
        } else {
            g.unknown[gi][l.weekday] += e;
            g.unknown_w[gi][l.weekday] += w;
        }
    }
    g
}

/// The hour × weekday profile: one row per group, weekday (0 = Monday) and
/// hour (0–23), dense and ordered, with explicit zeros; events whose time
/// of day is unknown get rows with a null `hour` (one per weekday) when
/// there are any.
///
/// Columns: the `by` dimensions, `weekday`, `day`, `hour`, `events`,
/// `weighted` (severity-weighted), `share` (of the group's events with a
/// known hour), `exposure_hours`, `rate_per_1000h`, `exposure_basis`
/// (`records`, `shifts`, `positions` or `uniform`).
pub async fn time_profile(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    let b = binned_as(ds, o, Binning::WeekHours).await?;
    let mut clock = Clock::new(ds)?;
    let win = window(ds, o, &b, &mut clock)?;
    let exp = exposures(ds, o, &b, &mut clock, win).await?;
    let g = grids(&b, &mut clock);
    let any_unknown = g.unknown.iter().any(|u| u.iter().any(|v| *v > 0.0));
    let mut keys = vec![];
    let (mut wd, mut day, mut hour) = (vec![], vec![], vec![]);
    let (mut ev, mut wt, mut share, mut hrs, mut rate, mut basis) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for gi in sorted_groups(&b) {
        let key = &b.groups[gi];
        let e = exp.get(&scope_of(o, key)).expect("exposure of every scope");
        let total: f64 = g.events[gi].iter().sum();
        for (d, name) in WEEKDAYS.iter().enumerate() {
            for h in 0..24 {
                let c = d * 24 + h;
                keys.push(key);
                wd.push(Some(d as i32));
                day.push(Some(name.to_string()));
                hour.push(Some(h as i32));
                ev.push(Some(g.events[gi][c]));
                wt.push(Some(g.weighted[gi][c]));
                share.push((total > 0.0).then(|| g.events[gi][c] / total));
                let x = e.hours.as_ref().map(|v| v[c]);
                hrs.push(x);
                rate.push(x.and_then(|x| (x > 0.0).then(|| g.events[gi][c] / x * 1000.0)));
                basis.push(Some(e.basis.to_string()));
            }
            if any_unknown {
                keys.push(key);
                wd.push(Some(d as i32));
                day.push(Some(name.to_string()));
                hour.push(None);
                ev.push(Some(g.unknown[gi][d]));
                wt.push(Some(g.unknown_w[gi][d]));
                share.push(None);
                hrs.push(None);
                rate.push(None);
                basis.push(Some(e.basis.to_string()));
            }
        }
    }
    let mut c = Columns::default();
    c.dims(o, &keys);
    c.int("weekday", wd);
    c.text("day", day);
    c.int("hour", hour);
    c.float("events", ev);
    c.float("weighted", wt);
    c.float("share", share);
    c.float("exposure_hours", hrs);
    c.float("rate_per_1000h", rate);
    c.text("exposure_basis", basis);
    c.finish()
}

/// One tested cell of a peak analysis.
struct Tested {
    group: usize,
    weekday: Option<usize>,
    hour: usize,
    events: f64,
    exposure: f64,
    total_events: f64,
    total_exposure: f64,
    test: Option<crate::util::stats::RateTest>,
}

/// Peak tests: every hour × weekday cell (or hour of the day, `grid =
/// "hour"`) of every group against the rest of the group's week (day) by
/// the exact conditional Poisson rate test with exposure, rate ratio with
/// its exact confidence interval, Benjamini–Hochberg across all tested
/// cells.
///
/// Returns `(cells, periods)`: every tested cell; and the ranked
/// "high-risk periods": adjacent significant hours (q ≤ alpha, ratio > 1)
/// of the same group and weekday merged, tested again as one block (`p`),
/// with `q` the largest member q-value.
pub async fn peaks(ds: &Dataset, o: &PatternOptions) -> Result<(RecordBatch, RecordBatch)> {
    o.validate()?;
    if o.time == TimeBasis::Aoristic {
        return Err(Error::option(
            "time",
            "peak tests count whole events; use time = \"start\" (aoristic weights are for profiles)",
        ));
    }
    let b = binned_as(ds, o, Binning::WeekHours).await?;
    let mut clock = Clock::new(ds)?;
    let win = window(ds, o, &b, &mut clock)?;
    let exp = exposures(ds, o, &b, &mut clock, win).await?;
    let g = grids(&b, &mut clock);
    let mut tests = vec![];
    let order = sorted_groups(&b);
    for &gi in &order {
        let e = &exp[&scope_of(o, &b.groups[gi])];
        let cells: Vec<(Option<usize>, usize, f64, f64)> = match o.grid {
            PeakGrid::HourWeekday => (0..168)
                .map(|c| (Some(c / 24), c % 24, g.events[gi][c], e.shape[c]))
                .collect(),
            PeakGrid::Hour => (0..24)
                .map(|h| {
                    let ev = (0..7).map(|d| g.events[gi][d * 24 + h]).sum();
                    let ex = (0..7).map(|d| e.shape[d * 24 + h]).sum();
                    (None, h, ev, ex)
                })
                .collect(),
        };
        let te: f64 = cells.iter().map(|c| c.2).sum();
        let tx: f64 = cells.iter().map(|c| c.3).sum();
        for (wd, h, ev, ex) in cells {
            let test = (ex > 0.0 && tx - ex > 0.0 && te > 0.0).then(|| {
                crate::util::stats::poisson_rate_test(
                    ev.round() as u64,
                    ex,
                    (te - ev).round() as u64,
                    tx - ex,
                    o.alpha,
                )
            });
            tests.push(Tested {
                group: gi,
                weekday: wd,
                hour: h,
                events: ev,
                exposure: ex,
                total_events: te,
                total_exposure: tx,
                test,
            });
        }
    }
    let q = crate::util::stats::benjamini_hochberg(
        &tests
            .iter()
            .map(|t| t.test.map(|x| x.p))
            .collect::<Vec<_>>(),
    );
    let significant = |i: usize| {
        q[i].is_some_and(|q| q <= o.alpha)
            && tests[i].test.and_then(|t| t.ratio).is_some_and(|r| r > 1.0)
    };
    // Cells.
    let mut c = Columns::default();
    c.dims(
        o,
        &tests.iter().map(|t| &b.groups[t.group]).collect::<Vec<_>>(),
    );
    c.int(
        "weekday",
        tests.iter().map(|t| t.weekday.map(|d| d as i32)).collect(),
    );
    c.text(
        "day",
        tests
            .iter()
            .map(|t| t.weekday.map(|d| WEEKDAYS[d].to_string()))
            .collect(),
    );
    c.int("hour", tests.iter().map(|t| Some(t.hour as i32)).collect());
    c.float("events", tests.iter().map(|t| Some(t.events)).collect());
    c.float(
        "expected",
        tests.iter().map(|t| t.test.map(|x| x.expected)).collect(),
    );
    c.float(
        "exposure_share",
        tests
            .iter()
            .map(|t| (t.total_exposure > 0.0).then(|| t.exposure / t.total_exposure))
            .collect(),
    );
    c.float(
        "rate_ratio",
        tests.iter().map(|t| t.test.and_then(|x| x.ratio)).collect(),
    );
    c.float(
        "ci_low",
        tests
            .iter()
            .map(|t| t.test.and_then(|x| x.ci_low))
            .collect(),
    );
    c.float(
        "ci_high",
        tests
            .iter()
            .map(|t| t.test.and_then(|x| x.ci_high))
            .collect(),
    );
    c.float("p", tests.iter().map(|t| t.test.map(|x| x.p)).collect());
    c.float("q", q.clone());
    c.boolean(
        "significant",
        (0..tests.len())
            .map(|i| Some(q[i].is_some_and(|v| v <= o.alpha)))
            .collect(),
    );
    c.text(
        "exposure_basis",
        tests
            .iter()
            .map(|t| Some(exp[&scope_of(o, &b.groups[t.group])].basis.to_string()))
            .collect(),
    );
    let cells = c.finish()?;
    // Periods: runs of significant high cells within a group and weekday.
    struct Period {
        group: usize,
        weekday: Option<usize>,
        from: usize,
        to: usize,
        events: f64,
        exposure: f64,
        total_events: f64,
        total_exposure: f64,
        q: f64,
    }
    let mut periods: Vec<Period> = vec![];
    for i in 0..tests.len() {
        if !significant(i) {
            continue;
        }
        let t = &tests[i];
        let qi = q[i].unwrap_or(1.0);
        match periods.last_mut() {
            Some(p)
                if p.group == t.group
                    && p.weekday == t.weekday
                    && p.to == t.hour
                    && i > 0
                    && significant(i - 1) =>
            {
                p.to = t.hour + 1;
                p.events += t.events;
                p.exposure += t.exposure;
                p.q = p.q.max(qi);
            }
            _ => periods.push(Period {
                group: t.group,
                weekday: t.weekday,
                from: t.hour,
                to: t.hour + 1,
                events: t.events,
                exposure: t.exposure,
                total_events: t.total_events,
                total_exposure: t.total_exposure,
                q: qi,
            }),
        }
    }
    let tested: Vec<crate::util::stats::RateTest> = periods
        .iter()
        .map(|p| {
            crate::util::stats::poisson_rate_test(
                p.events.round() as u64,
                p.exposure,
                (p.total_events - p.events).round() as u64,
                p.total_exposure - p.exposure,
                o.alpha,
            )
        })
        .collect();
    let mut rank: Vec<usize> = (0..periods.len()).collect();
    rank.sort_by(|&a, &b| {
        periods[a].q.total_cmp(&periods[b].q).then(
            tested[b]
                .ratio
                .unwrap_or(f64::INFINITY)
                .total_cmp(&tested[a].ratio.unwrap_or(f64::INFINITY)),
        )
    });
    let mut c = Columns::default();
    c.int("rank", (1..=rank.len()).map(|r| Some(r as i32)).collect());
    c.dims(
        o,
        &rank
            .iter()
            .map(|&i| &b.groups[periods[i].group])
            .collect::<Vec<_>>(),
    );
    c.int(
        "weekday",
        rank.iter()
            .map(|&i| periods[i].weekday.map(|d| d as i32))
            .collect(),
    );
    c.text(
        "day",
        rank.iter()
            .map(|&i| periods[i].weekday.map(|d| WEEKDAYS[d].to_string()))
            .collect(),
    );
    c.int(
        "hour_from",
        rank.iter().map(|&i| Some(periods[i].from as i32)).collect(),
    );
    c.int(
        "hour_to",
        rank.iter().map(|&i| Some(periods[i].to as i32)).collect(),
    );
    c.float(
        "events",
        rank.iter().map(|&i| Some(periods[i].events)).collect(),
    );
    c.float(
        "expected",
        rank.iter().map(|&i| Some(tested[i].expected)).collect(),
    );
    c.float(
        "rate_ratio",
        rank.iter().map(|&i| tested[i].ratio).collect(),
    );
    c.float("ci_low", rank.iter().map(|&i| tested[i].ci_low).collect());
    c.float("ci_high", rank.iter().map(|&i| tested[i].ci_high).collect());
    c.float("p", rank.iter().map(|&i| Some(tested[i].p)).collect());
    c.float("q", rank.iter().map(|&i| Some(periods[i].q)).collect());
    Ok((cells, c.finish()?))
}

/// Shift analysis: events attributed to the shift on duty when they
/// happened and to its shift day (the local date the shift began), profiled
/// by hour of shift (hours since the shift began, the fatigue pattern).
///
/// Columns: the `by` dimensions, `shift`, `hour_of_shift`, `events`,
/// `weighted`, `share` (of the group's attributed events). Events outside
/// every shift get `shift = null`; events with unknown time of day get
/// `shift = null, hour_of_shift = null` rows — counted, never dropped.
pub async fn shift_profile(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    let (shifts, _, _) = roster_of(ds, o)?;
    if shifts.is_empty() {
        return Err(Error::option("shifts", "define at least one shift"));
    }
    let b = binned(ds, o).await?;
    let mut clock = Clock::new(ds)?;
    // (group, shift or none, hour or none) → (events, weighted)
    let mut acc: BTreeMap<ShiftCell, (f64, f64)> = BTreeMap::new();
    for &(gi, q, known, e, w) in &b.rows {
        let key = if known {
            let l = clock.local(q);
            match shifts
                .iter()
                .enumerate()
                .find_map(|(si, s)| s.minutes_in(l.minute_of_day).map(|m| (si, m)))
            {
                Some((si, m)) => (gi, Some(si), Some((m / 60) as usize)),
                None => (gi, None, Some(l.hour)),
            }
        } else {
            (gi, None, None)
        };
        let a = acc.entry(key).or_default();
        a.0 += e;
        a.1 += w;
    }
    let mut keys = vec![];
    let (mut shift, mut hour, mut ev, mut wt, mut share) = (vec![], vec![], vec![], vec![], vec![]);
    for gi in sorted_groups(&b) {
        let attributed: f64 = acc
            .iter()
            .filter(|(k, _)| k.0 == gi && k.1.is_some())
            .map(|(_, v)| v.0)
            .sum();
        for (si, s) in shifts.iter().enumerate() {
            for h in 0..(s.len_min.div_ceil(60) as usize) {
                let v = acc
                    .get(&(gi, Some(si), Some(h)))
                    .copied()
                    .unwrap_or_default();
                keys.push(&b.groups[gi]);
                shift.push(Some(s.name.clone()));
                hour.push(Some(h as i32));
                ev.push(Some(v.0));
                wt.push(Some(v.1));
                share.push((attributed > 0.0).then(|| v.0 / attributed));
            }
        }
        for ((g2, s, h), v) in &acc {
            if *g2 == gi && s.is_none() {
                keys.push(&b.groups[gi]);
                shift.push(None);
                hour.push(h.map(|h| h as i32));
                ev.push(Some(v.0));
                wt.push(Some(v.1));
                share.push(None);
            }
        }
    }
    let mut c = Columns::default();
    c.dims(o, &keys);
    c.text("shift", shift);
    c.int("hour_of_shift", hour);
    c.float("events", ev);
    c.float("weighted", wt);
    c.float("share", share);
    c.finish()
}

/// Every selected event with its shift, shift day and hour of shift
/// (`shift` null outside every shift or when the time of day is unknown).
///
/// Columns: `kind`, `site`, `zone`, `cell`, `category`, `severity`,
/// `occurred_at` (local text), `shift`, `shift_day`, `hour_of_shift`.
pub async fn shift_events(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    let (shifts, _, _) = roster_of(ds, o)?;
    let tz = parse_tz(ds.timezone())?;
    let batches = events_frame(ds, o)
        .await?
        .sort(vec![col("t").sort(true, false)])?
        .collect()
        .await?;
    let mut c = Columns::default();
    let mut text: BTreeMap<&str, Vec<Option<String>>> = BTreeMap::new();
    let (mut at, mut shift, mut day, mut hour) = (vec![], vec![], vec![], vec![]);
    for b in &batches {
        for name in ["kind", "site", "zone", "cell", "category", "severity"] {
            let a = str_col(b, name)?;
            text.entry(name)
                .or_default()
                .extend((0..b.num_rows()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())));
        }
        let t = col_as::<Int64Array>(b, "t")?;
        let known = col_as::<BooleanArray>(b, "known")?;
        for i in 0..b.num_rows() {
            let local = micros_to_local(&tz, t.value(i));
            at.push(local.map(|l| l.format("%Y-%m-%d %H:%M:%S").to_string()));
            let found = local.filter(|_| known.value(i)).and_then(|l| {
                let m = l.hour() * 60 + l.minute();
                shifts.iter().find_map(|s| {
                    s.minutes_in(m).map(|since| {
                        let start_day = if m < s.start_min {
                            l.date().pred_opt().unwrap_or(l.date())
                        } else {
                            l.date()
                        };
                        let start = start_day.and_time(
                            NaiveTime::from_num_seconds_from_midnight_opt(s.start_min * 60, 0)
                                .unwrap_or(NaiveTime::MIN),
                        );
                        // Elapsed real time, so a daylight-saving night counts right.
                        let hours = local_to_micros(&tz, start)
                            .map(|s0| (t.value(i) - s0).div_euclid(HOUR))
                            .unwrap_or(i64::from(since / 60));
                        (s.name.clone(), start_day, hours)
                    })
                })
            });
            shift.push(found.as_ref().map(|f| f.0.clone()));
            day.push(found.as_ref().map(|f| f.1.to_string()));
            hour.push(found.map(|f| f.2 as i32));
        }
    }
    for name in ["kind", "site", "zone", "cell", "category", "severity"] {
        c.text(name, text.remove(name).unwrap_or_default());
    }
    c.text("occurred_at", at);
    c.text("shift", shift);
    c.text("shift_day", day);
    c.int("hour_of_shift", hour);
    c.finish()
}

/// Monthly trend: one row per group and local calendar month of the window
/// (dense, zeros included) with `events`, `weighted`, `rolling_3` and
/// `rolling_12` (means of the last 3 and 12 months, null until there are
/// that many), `yoy_change` and `yoy_pct` (against the same month a year
/// before), `seasonal_index` (the mean of this calendar month over the
/// years in the window divided by the mean month), `exposure_hours` and
/// `rate_per_million_h` where exposure records exist.
pub async fn trends(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    let b = binned(ds, o).await?;
    let mut clock = Clock::new(ds)?;
    let (q0, q1) = window(ds, o, &b, &mut clock)?;
    let month_of = |d: NaiveDate| d.year() * 12 + d.month0() as i32;
    let (m0, m1) = if q1 > q0 {
        (
            month_of(clock.local(q0).date),
            month_of(clock.local(q1 - 1).date),
        )
    } else {
        (0, -1)
    };
    let nm = (m1 - m0 + 1).max(0) as usize;
    let ng = b.groups.len();
    let mut ev = vec![vec![0.0; nm]; ng];
    let mut wt = vec![vec![0.0; nm]; ng];
    for &(gi, q, _, e, w) in &b.rows {
        let m = (month_of(clock.local(q).date) - m0) as usize;
        if m < nm {
            ev[gi][m] += e;
            wt[gi][m] += w;
        }
    }
    let hours = if ds.has_table(TableKind::Exposure) && nm > 0 {
        monthly_hours(ds, o, &mut clock, (q0, q1), m0, nm).await?
    } else {
        BTreeMap::new()
    };
    let mut keys = vec![];
    let mut cols: [Vec<Option<f64>>; 8] = Default::default();
    let mut month = vec![];
    let mut moy = vec![];
    for gi in sorted_groups(&b) {
        let e = &ev[gi];
        let h = hours.get(&scope_of(o, &b.groups[gi]));
        // Seasonality: mean per calendar month over the window.
        let mut by_moy = [(0.0, 0u32); 12];
        for (k, v) in e.iter().enumerate() {
            let mi = ((m0 + k as i32) % 12) as usize;
            by_moy[mi].0 += v;
            by_moy[mi].1 += 1;
        }
        let means: Vec<Option<f64>> = by_moy
            .iter()
            .map(|(s, n)| (*n > 0).then(|| s / f64::from(*n)))
            .collect();
        let present: Vec<f64> = means.iter().flatten().copied().collect();
        let grand = present.iter().sum::<f64>() / present.len().max(1) as f64;
        for k in 0..nm {
            let abs = m0 + k as i32;
            keys.push(&b.groups[gi]);
            month.push(Some(format!(
                "{}-{:02}",
                abs.div_euclid(12),
                abs.rem_euclid(12) + 1
            )));
            moy.push(Some(abs.rem_euclid(12) + 1));
            let roll =
                |w: usize| (k + 1 >= w).then(|| e[k + 1 - w..=k].iter().sum::<f64>() / w as f64);
            let prev = (k >= 12).then(|| e[k - 12]);
            let x = h.map(|h| h[k]);
            let vals = [
                Some(e[k]),
                Some(wt[gi][k]),
                roll(3),
                roll(12),
                prev.map(|p| e[k] - p),
                prev.and_then(|p| (p > 0.0).then(|| (e[k] - p) / p * 100.0)),
                means[abs.rem_euclid(12) as usize].and_then(|m| (grand > 0.0).then(|| m / grand)),
                x,
            ];
            for (c, v) in cols.iter_mut().zip(vals) {
                c.push(v);
            }
        }
    }
    let [events, weighted, r3, r12, yc, yp, si, hrs] = cols;
    let rate = events
        .iter()
        .zip(&hrs)
        .map(|(e, h)| match (e, h) {
            (Some(e), Some(h)) if *h > 0.0 => Some(e / h * 1e6),
            _ => None,
        })
        .collect();
    let mut c = Columns::default();
    c.dims(o, &keys);
    c.text("month", month);
    c.int("month_of_year", moy);
    c.float("events", events);
    c.float("weighted", weighted);
    c.float("rolling_3", r3);
    c.float("rolling_12", r12);
    c.float("yoy_change", yc);
    c.float("yoy_pct", yp);
    c.float("seasonal_index", si);
    c.float("exposure_hours", hrs);
    c.float("rate_per_million_h", rate);
    c.finish()
}

/// Hours worked per scope and month of the window (records spread evenly
/// over their periods).
async fn monthly_hours(
    ds: &Dataset,
    o: &PatternOptions,
    clock: &mut Clock,
    (q0, q1): (i64, i64),
    m0: i32,
    nm: usize,
) -> Result<BTreeMap<Scope, Vec<f64>>> {
    let mut out: BTreeMap<Scope, Vec<f64>> = BTreeMap::new();
    for r in exposure_records(ds, o, (q0, q1)).await? {
        let v = out.entry(r.scope).or_insert_with(|| vec![0.0; nm]);
        // Whole local days share a month: step by day where possible.
        let mut q = r.a.max(q0);
        let end = r.z.min(q1);
        while q < end {
            let l = clock.local(q);
            let next_day = clock
                .day_start(l.date.succ_opt().unwrap_or(NaiveDate::MAX))
                .div_euclid(QUARTER)
                .clamp(q + 1, end);
            let m = (l.date.year() * 12 + l.date.month0() as i32 - m0) as usize;
            if m < nm {
                v[m] += r.per_q * (next_day - q) as f64;
            }
            q = next_day;
        }
    }
    Ok(out)
}

/// Counts and weighted counts by the `by` dimensions plus `extra`, in DataFusion.
async fn counts(ds: &Dataset, o: &PatternOptions, extra: &[Dim]) -> Result<Vec<RecordBatch>> {
    let mut keys: Vec<Expr> = o.by.iter().map(|d| col(d.name())).collect();
    for d in extra {
        if !o.by.contains(d) {
            keys.push(col(d.name()));
        }
    }
    Ok(events_frame(ds, o)
        .await?
        .aggregate(
            keys,
            vec![
                count(lit(1i64)).alias("events"),
                sum(col("weight")).alias("weighted"),
            ],
        )?
        .collect()
        .await?)
}

fn key_of(b: &RecordBatch, dims: &[Dim], i: usize) -> Result<Vec<Option<String>>> {
    dims.iter()
        .map(|d| {
            let c = str_col(b, d.name())?;
            Ok((!c.is_null(i)).then(|| c.value(i).to_string()))
        })
        .collect()
}

/// Pareto of `dim` (default category) within each group of `by`: values
/// ordered by events (descending, then name), `share`, `cumulative_share`,
/// and `vital_few`: the smallest leading set whose cumulative share reaches
/// 80 %.
pub async fn pareto(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    if o.by.contains(&o.dim) {
        return Err(Error::option(
            "dim",
            format!("`{}` is also in `by`", o.dim.name()),
        ));
    }
    let batches = counts(ds, o, &[o.dim]).await?;
    let mut groups: BTreeMap<GroupKey, Vec<ParetoItem>> = BTreeMap::new();
    for b in &batches {
        let n = col_as::<Int64Array>(b, "events")?;
        let w = col_as::<Float64Array>(b, "weighted")?;
        for i in 0..b.num_rows() {
            let key = key_of(b, &o.by, i)?;
            let v = key_of(b, &[o.dim], i)?.remove(0);
            groups
                .entry(key)
                .or_default()
                .push((v, n.value(i) as f64, w.value(i)));
        }
    }
    let mut keys = vec![];
    let (mut val, mut ev, mut wt, mut share, mut cum, mut vital, mut rank) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (key, mut items) in groups {
        items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = items.iter().map(|i| i.1).sum();
        let mut running = 0.0;
        let mut reached = false;
        for (r, (v, n, w)) in items.into_iter().enumerate() {
            running += n;
            keys.push(key.clone());
            rank.push(Some(r as i32 + 1));
            val.push(v);
            ev.push(Some(n));
            wt.push(Some(w));
            share.push(Some(n / total));
            cum.push(Some(running / total));
            vital.push(Some(!reached));
            if running / total >= 0.8 - 1e-12 {
                reached = true;
            }
        }
    }
    let mut c = Columns::default();
    c.dims(o, &keys.iter().collect::<Vec<_>>());
    c.int("rank", rank);
    c.text(o.dim.name(), val);
    c.float("events", ev);
    c.float("weighted", wt);
    c.float("share", share);
    c.float("cumulative_share", cum);
    c.boolean("vital_few", vital);
    c.finish()
}

/// Cross-tab of `dim` (rows) × `columns`: one row per value of `dim`, one
/// column per value of `columns` (sorted; `(none)` for missing), and
/// `total`; a last row `total` sums the columns.
pub async fn crosstab(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    if o.dim == o.columns {
        return Err(Error::option("columns", "rows and columns must differ"));
    }
    let mut p = o.clone();
    p.by = vec![];
    let batches = counts(ds, &p, &[o.dim, o.columns]).await?;
    let mut cells: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut rows = BTreeSet::new();
    let mut cols = BTreeSet::new();
    for b in &batches {
        let n = col_as::<Int64Array>(b, "events")?;
        for i in 0..b.num_rows() {
            let k = key_of(b, &[o.dim, o.columns], i)?;
            let r = k[0].clone().unwrap_or_else(|| "(none)".into());
            let c = k[1].clone().unwrap_or_else(|| "(none)".into());
            rows.insert(r.clone());
            cols.insert(c.clone());
            *cells.entry((r, c)).or_default() += n.value(i) as f64;
        }
    }
    let mut c = Columns::default();
    let mut names: Vec<Option<String>> = rows.iter().cloned().map(Some).collect();
    names.push(Some("total".into()));
    c.text(o.dim.name(), names);
    let mut totals = vec![0.0; rows.len() + 1];
    for cn in &cols {
        let mut v: Vec<Option<f64>> = rows
            .iter()
            .map(|r| Some(cells.get(&(r.clone(), cn.clone())).copied().unwrap_or(0.0)))
            .collect();
        let s: f64 = v.iter().flatten().sum();
        v.push(Some(s));
        for (t, x) in totals.iter_mut().zip(&v) {
            *t += x.unwrap_or(0.0);
        }
        c.float(cn, v);
    }
    c.float("total", totals.into_iter().map(Some).collect());
    c.finish()
}

/// The observed accident pyramid per group (`by`, e.g. site) beside
/// Heinrich's 1 : 29 : 300 and Bird's 1 : 10 : 30 : 600.
///
/// Tiers: `major` (serious injuries and fatalities), `minor` (minor and
/// first-aid injuries), `property_damage` (not recorded in incidents: null),
/// `near_miss`. Columns: the `by` dimensions, `tier`, `events`,
/// `per_major` (events per major case, null without one), `heinrich`,
/// `bird`.
pub async fn pyramid(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    let mut p = o.clone();
    p.kinds = vec![EventKind::Incidents];
    p.validate()?;
    let batches = counts(ds, &p, &[Dim::Severity]).await?;
    let mut groups: BTreeMap<Vec<Option<String>>, [f64; 3]> = BTreeMap::new();
    for b in &batches {
        let n = col_as::<Int64Array>(b, "events")?;
        for i in 0..b.num_rows() {
            let key = key_of(b, &p.by, i)?;
            let sev = key_of(b, &[Dim::Severity], i)?.remove(0);
            let t = match sev.as_deref() {
                Some("serious" | "fatal") => 0,
                Some("minor" | "first_aid") => 1,
                _ => 2,
            };
            groups.entry(key).or_default()[t] += n.value(i) as f64;
        }
    }
    let tiers = [
        ("major", Some(1.0), Some(1.0)),
        ("minor", Some(29.0), Some(10.0)),
        ("property_damage", None, Some(30.0)),
        ("near_miss", Some(300.0), Some(600.0)),
    ];
    let mut keys = vec![];
    let (mut tier, mut ev, mut per, mut hein, mut bird) = (vec![], vec![], vec![], vec![], vec![]);
    for (key, v) in &groups {
        for (name, h, bd) in tiers {
            let n = match name {
                "major" => Some(v[0]),
                "minor" => Some(v[1]),
                "near_miss" => Some(v[2]),
                _ => None,
            };
            keys.push(key);
            tier.push(Some(name.to_string()));
            ev.push(n);
            per.push(n.and_then(|n| (v[0] > 0.0).then(|| n / v[0])));
            hein.push(h);
            bird.push(bd);
        }
    }
    let mut c = Columns::default();
    c.dims(&p, &keys);
    c.text("tier", tier);
    c.float("events", ev);
    c.float("per_major", per);
    c.float("heinrich", hein);
    c.float("bird", bird);
    c.finish()
}

/// Options of [`knox`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnoxOptions {
    /// Event selection (kinds, window, site, zone, categories, severities).
    pub events: PatternOptions,
    /// Space threshold in metres: pairs at most this far apart are close.
    pub distance: f64,
    /// Time threshold in days: pairs at most this far apart are close.
    pub days: f64,
    /// Permutations of the times over the places (0 = none).
    pub permutations: u32,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for KnoxOptions {
    fn default() -> Self {
        KnoxOptions {
            events: PatternOptions::default(),
            distance: 5.0,
            days: 3.0,
            permutations: 199,
            seed: 1,
        }
    }
}

/// Result of the Knox test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnoxResult {
    /// Events with coordinates used.
    pub n: u64,
    /// Events left out for lack of x/y.
    pub without_xy: u64,
    /// Pairs close in space.
    pub close_space: u64,
    /// Pairs close in time.
    pub close_time: u64,
    /// Pairs close in both (the statistic).
    pub statistic: u64,
    /// Expected statistic under no interaction: close_space × close_time / pairs.
    pub expected: f64,
    /// Poisson p-value, P(X > statistic).
    pub p_poisson: f64,
    /// Permutation p-value, (exceedances + 1) / (permutations + 1).
    pub p_permutation: Option<f64>,
}

/// Near-repeat space-time interaction: the Knox test on events with x/y
/// (times in days). The statistic counts pairs within `distance` metres
/// and `days` days (both inclusive), as PySAL `pointpats` does; the
/// permutation p-value shuffles times over places with `seed`.
pub async fn knox(ds: &Dataset, o: &KnoxOptions) -> Result<KnoxResult> {
    o.events.validate()?;
    if !(o.distance > 0.0 && o.days >= 0.0) {
        return Err(Error::option(
            "distance",
            "distance must be > 0 and days ≥ 0",
        ));
    }
    let batches = events_frame(ds, &o.events)
        .await?
        .select(vec![col("x"), col("y"), col("t")])?
        .collect()
        .await?;
    let mut pts: Vec<(f64, f64, f64)> = vec![];
    let mut without = 0u64;
    for b in &batches {
        let x = col_as::<Float64Array>(b, "x")?;
        let y = col_as::<Float64Array>(b, "y")?;
        let t = col_as::<Int64Array>(b, "t")?;
        for i in 0..b.num_rows() {
            if x.is_null(i) || y.is_null(i) {
                without += 1;
            } else {
                pts.push((x.value(i), y.value(i), t.value(i) as f64 / 86_400e6));
            }
        }
    }
    Ok(knox_points(
        &pts,
        o.distance,
        o.days,
        o.permutations,
        o.seed,
        without,
    ))
}

/// The Knox statistic and its inference on `(x, y, t)` points.
pub fn knox_points(
    pts: &[(f64, f64, f64)],
    distance: f64,
    days: f64,
    permutations: u32,
    seed: u64,
    without_xy: u64,
) -> KnoxResult {
    let n = pts.len();
    let d2 = distance * distance;
    // Spatial pairs through a grid of buckets `distance` wide.
    let mut buckets: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    let cell = |v: f64| (v / distance).floor() as i64;
    for (i, p) in pts.iter().enumerate() {
        buckets.entry((cell(p.0), cell(p.1))).or_default().push(i);
    }
    let mut space_pairs: Vec<(u32, u32)> = vec![];
    for (i, p) in pts.iter().enumerate() {
        let (cx, cy) = (cell(p.0), cell(p.1));
        for dx in -1..=1 {
            for dy in -1..=1 {
                if let Some(v) = buckets.get(&(cx + dx, cy + dy)) {
                    for &j in v {
                        if j > i {
                            let (ex, ey) = (p.0 - pts[j].0, p.1 - pts[j].1);
                            if ex * ex + ey * ey <= d2 {
                                space_pairs.push((i as u32, j as u32));
                            }
                        }
                    }
                }
            }
        }
    }
    // Temporal pairs by a sweep over sorted times.
    let mut times: Vec<f64> = pts.iter().map(|p| p.2).collect();
    times.sort_by(f64::total_cmp);
    let mut close_time = 0u64;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] > days {
            lo += 1;
        }
        close_time += (hi - lo) as u64;
    }
    let close = |t: &dyn Fn(usize) -> f64| {
        space_pairs
            .iter()
            .filter(|(i, j)| (t(*i as usize) - t(*j as usize)).abs() <= days)
            .count() as u64
    };
    let statistic = close(&|i| pts[i].2);
    let pairs = (n as f64) * (n as f64 - 1.0) / 2.0;
    let expected = if pairs > 0.0 {
        space_pairs.len() as f64 * close_time as f64 / pairs
    } else {
        0.0
    };
    let p_permutation = (permutations > 0 && n > 1).then(|| {
        let mut rng = crate::util::rng::Rng::new(seed, "knox");
        let mut perm: Vec<usize> = (0..n).collect();
        let mut exceed = 0u32;
        for _ in 0..permutations {
            for i in (1..n).rev() {
                let j = rng.below(i + 1);
                perm.swap(i, j);
            }
            if close(&|i| pts[perm[i]].2) >= statistic {
                exceed += 1;
            }
        }
        f64::from(exceed + 1) / f64::from(permutations + 1)
    });
    KnoxResult {
        n: n as u64,
        without_xy,
        close_space: space_pairs.len() as u64,
        close_time,
        statistic,
        expected,
        p_poisson: crate::util::stats::poisson_sf(statistic as f64, expected),
        p_permutation,
    }
}

/// The Knox result as a one-row batch.
pub fn knox_batch(r: &KnoxResult) -> Result<RecordBatch> {
    let mut c = Columns::default();
    let u = |v: u64| vec![Some(v as i64)];
    c.int64("n", u(r.n));
    c.int64("without_xy", u(r.without_xy));
    c.int64("close_space", u(r.close_space));
    c.int64("close_time", u(r.close_time));
    c.int64("statistic", u(r.statistic));
    c.float("expected", vec![Some(r.expected)]);
    c.float("p_poisson", vec![Some(r.p_poisson)]);
    c.float("p_permutation", vec![r.p_permutation]);
    c.finish()
}

/// The pattern analyses by name, for the CLI and the bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternView {
    /// [`time_profile`].
    Profile,
    /// [`shift_profile`].
    Shifts,
    /// [`shift_events`].
    ShiftEvents,
    /// [`trends`].
    Trends,
    /// [`pareto`].
    Pareto,
    /// [`crosstab`].
    Crosstab,
    /// [`pyramid`].
    Pyramid,
    /// The ranked high-risk periods of [`peaks`].
    Peaks,
    /// Every tested cell of [`peaks`].
    PeakCells,
}

impl PatternView {
    /// Parse a view name (`profile`, `shifts`, `shift_events`, `trends`,
    /// `pareto`, `crosstab`, `pyramid`, `peaks`, `peak_cells`).
    pub fn parse(s: &str) -> Result<PatternView> {
        serde_json::from_value(serde_json::Value::String(s.replace('-', "_"))).map_err(|_| {
            Error::option(
                "view",
                format!("unknown pattern view `{s}` (profile, shifts, shift_events, trends, pareto, crosstab, pyramid, peaks, peak_cells)"),
            )
        })
    }
}

/// [`peaks`] with its chart: the hour × weekday map with the significant
/// cells outlined (the hour chart for `grid = "hour"`). Returns `(cells,
/// periods, svg)`.
pub async fn peaks_charted(
    ds: &Dataset,
    o: &PatternOptions,
) -> Result<(RecordBatch, RecordBatch, String)> {
    let (cells, periods) = peaks(ds, o).await?;
    let svg = match o.grid {
        PeakGrid::HourWeekday => profile_svg(&cells, Some(&cells), o, "Hour × weekday peaks")?,
        PeakGrid::Hour => group_hour_svg(&cells, o, "Events by hour")?,
    };
    Ok((cells, periods, svg))
}

/// Compute a pattern view and its chart: the hour × weekday heat map of a
/// profile (group × hour when grouped by one dimension), peaks outlined on
/// the hour × weekday map, trend lines, the Pareto chart; no chart for the
/// other views.
pub async fn run_view(
    ds: &Dataset,
    view: PatternView,
    o: &PatternOptions,
) -> Result<(RecordBatch, Option<String>)> {
    Ok(match view {
        PatternView::Profile => {
            let b = time_profile(ds, o).await?;
            let svg = if o.by.len() == 1 && o.by[0] != Dim::Kind {
                group_hour_svg(&b, o, &format!("{} × hour", o.by[0].name()))?
            } else {
                profile_svg(&b, None, o, "Hour × weekday")?
            };
            (b, Some(svg))
        }
        PatternView::Peaks | PatternView::PeakCells => {
            let (cells, periods, svg) = peaks_charted(ds, o).await?;
            let b = if view == PatternView::Peaks {
                periods
            } else {
                cells
            };
            (b, Some(svg))
        }
        PatternView::Trends => {
            let b = trends(ds, o).await?;
            let svg = trends_svg(&b, o, "Monthly trend")?;
            (b, Some(svg))
        }
        PatternView::Pareto => {
            let b = pareto(ds, o).await?;
            let svg = pareto_chart(&b, o, "Pareto")?;
            (b, Some(svg))
        }
        PatternView::Shifts => (shift_profile(ds, o).await?, None),
        PatternView::ShiftEvents => (shift_events(ds, o).await?, None),
        PatternView::Crosstab => (crosstab(ds, o).await?, None),
        PatternView::Pyramid => (pyramid(ds, o).await?, None),
    })
}

// ---------------------------------------------------------------- charts

fn group_label(b: &RecordBatch, o: &PatternOptions, i: usize) -> Result<String> {
    let parts: Vec<String> = key_of(b, &o.by, i)?
        .into_iter()
        .map(|v| v.unwrap_or_else(|| "(none)".into()))
        .collect();
    Ok(parts.join(" / "))
}

/// The hour × weekday heat map of a profile (the first group), with the
/// significant cells of `peak_cells` outlined when given.
pub fn profile_svg(
    profile: &RecordBatch,
    peak_cells: Option<&RecordBatch>,
    o: &PatternOptions,
    title: &str,
) -> Result<String> {
    let wd = col_as::<Int32Array>(profile, "weekday")?;
    let hr = col_as::<Int32Array>(profile, "hour")?;
    let ev = col_as::<Float64Array>(profile, "events")?;
    let first = if profile.num_rows() > 0 {
        Some(group_label(profile, o, 0)?)
    } else {
        None
    };
    let mut values = vec![vec![Some(0.0); 24]; 7];
    for i in 0..profile.num_rows() {
        if Some(group_label(profile, o, i)?) != first || hr.is_null(i) {
            continue;
        }
        values[wd.value(i) as usize][hr.value(i) as usize] = Some(ev.value(i));
    }
    let mut outlined = vec![];
    if let Some(p) = peak_cells {
        let pw = col_as::<Int32Array>(p, "weekday")?;
        let ph = col_as::<Int32Array>(p, "hour")?;
        let sig = col_as::<BooleanArray>(p, "significant")?;
        let rr = col_as::<Float64Array>(p, "rate_ratio")?;
        for i in 0..p.num_rows() {
            if Some(group_label(p, o, i)?) == first
                && sig.value(i)
                && !pw.is_null(i)
                && !rr.is_null(i)
                && rr.value(i) > 1.0
            {
                outlined.push((pw.value(i) as usize, ph.value(i) as usize));
            }
        }
    }
    let title = match &first {
        Some(g) if !g.is_empty() => format!("{title} · {g}"),
        _ => title.to_string(),
    };
    Ok(safetyscope_render::matrix_svg(
        &safetyscope_render::MatrixChart {
            title,
            legend: "events".into(),
            rows: WEEKDAYS_ZH
                .iter()
                .zip(WEEKDAYS)
                .map(|(z, e)| format!("{z} {e}"))
                .collect(),
            cols: (0..24).map(|h| format!("{h}")).collect(),
            values,
            outlined,
            outline_label: "significant peak (FDR)".into(),
        },
    ))
}

/// A group × hour heat map (e.g. zone × hour) of a profile grouped by one
/// dimension: events summed over weekdays.
pub fn group_hour_svg(profile: &RecordBatch, o: &PatternOptions, title: &str) -> Result<String> {
    let hr = col_as::<Int32Array>(profile, "hour")?;
    let ev = col_as::<Float64Array>(profile, "events")?;
    let mut rows: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for i in 0..profile.num_rows() {
        if hr.is_null(i) {
            continue;
        }
        let v = rows
            .entry(group_label(profile, o, i)?)
            .or_insert_with(|| vec![Some(0.0); 24]);
        let h = hr.value(i) as usize;
        v[h] = Some(v[h].unwrap_or(0.0) + ev.value(i));
    }
    Ok(safetyscope_render::matrix_svg(
        &safetyscope_render::MatrixChart {
            title: title.into(),
            legend: "events".into(),
            rows: rows.keys().cloned().collect(),
            cols: (0..24).map(|h| format!("{h}")).collect(),
            values: rows.into_values().collect(),
            outlined: vec![],
            outline_label: String::new(),
        },
    ))
}

/// Monthly trend lines of the first group: events, 3- and 12-month means.
pub fn trends_svg(t: &RecordBatch, o: &PatternOptions, title: &str) -> Result<String> {
    let month = str_col(t, "month")?;
    let first = if t.num_rows() > 0 {
        Some(group_label(t, o, 0)?)
    } else {
        None
    };
    let mut labels = vec![];
    let mut s: [Vec<Option<f64>>; 3] = Default::default();
    let cols = [
        col_as::<Float64Array>(t, "events")?,
        col_as::<Float64Array>(t, "rolling_3")?,
        col_as::<Float64Array>(t, "rolling_12")?,
    ];
    for i in 0..t.num_rows() {
        if Some(group_label(t, o, i)?) != first {
            continue;
        }
        labels.push(month.value(i).to_string());
        for (v, c) in s.iter_mut().zip(cols) {
            v.push((!c.is_null(i)).then(|| c.value(i)));
        }
    }
    let [a, b, c] = s;
    let series = vec![
        safetyscope_render::Series {
            label: "events / month".into(),
            color: "#d95f0e".into(),
            values: a,
            dashed: false,
        },
        safetyscope_render::Series {
            label: "3-month mean".into(),
            color: "#08519c".into(),
            values: b,
            dashed: false,
        },
        safetyscope_render::Series {
            label: "12-month mean".into(),
            color: "#555555".into(),
            values: c,
            dashed: true,
        },
    ];
    let title = match &first {
        Some(g) if !g.is_empty() => format!("{title} · {g}"),
        _ => title.to_string(),
    };
    Ok(safetyscope_render::line_svg(&title, &labels, &series))
}

/// The Pareto chart of the first group.
pub fn pareto_chart(p: &RecordBatch, o: &PatternOptions, title: &str) -> Result<String> {
    let v = str_col(p, o.dim.name())?;
    let ev = col_as::<Float64Array>(p, "events")?;
    let first = if p.num_rows() > 0 {
        Some(group_label(p, o, 0)?)
    } else {
        None
    };
    let mut items = vec![];
    for i in 0..p.num_rows() {
        if Some(group_label(p, o, i)?) == first {
            let label = if v.is_null(i) {
                "(none)".to_string()
            } else {
                crate::model::vocab::ACCIDENT_TYPES
                    .term(v.value(i))
                    .map_or_else(|| v.value(i).to_string(), |t| t.zh.to_string())
            };
            items.push((label, ev.value(i)));
        }
    }
    Ok(safetyscope_render::pareto_svg(title, &items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_cross_midnight() {
        let s = parse_shifts(&default_shifts()).unwrap();
        assert_eq!(s[1].minutes_in(2 * 60 + 30), Some(6 * 60 + 30));
        assert_eq!(s[1].minutes_in(20 * 60), Some(0));
        assert_eq!(s[1].minutes_in(8 * 60), None);
        assert_eq!(s[0].minutes_in(8 * 60), Some(0));
        assert!(
            parse_shifts(&[Shift {
                name: "x".into(),
                start: "08:10".into(),
                end: "16:00".into(),
                headcount: 1.0
            }])
            .is_err()
        );
    }

    #[test]
    fn knox_counts_pairs_inclusively() {
        // Three points: (0,0,t0), (3,4,t2), (100,0,t1): one space pair at
        // exactly 5 m, 2 days apart.
        let pts = [(0.0, 0.0, 0.0), (3.0, 4.0, 2.0), (100.0, 0.0, 1.0)];
        let r = knox_points(&pts, 5.0, 2.0, 0, 1, 0);
        assert_eq!((r.close_space, r.close_time, r.statistic), (1, 3, 1));
        assert!((r.expected - 1.0).abs() < 1e-12);
    }
}
