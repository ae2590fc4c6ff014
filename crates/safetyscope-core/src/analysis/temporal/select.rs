//! The events a pattern analysis reads, binned to quarter-hours in the
//! plan, the shift roster, and the local clock that places quarter-hours
//! in local weekdays and hours.

use std::collections::HashMap;

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use chrono_tz::Tz;
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, cast, col, lit, when};

use crate::analysis::temporal::options::*;
use crate::model::options::EventKind;
use crate::model::options::RiskWeights;
use crate::model::roster::default_shifts;
use crate::model::schema::TableKind;
use crate::model::time::{micros_to_local, parse_tz};
use crate::session::dataset::Dataset;
use crate::session::window::parse_local;
use crate::util::columns::col_as;
use crate::util::columns::str_col;
use crate::util::error::{Error, Result};

/// The roster in force: the options' shifts and weekday factors, else the
/// dataset's declared roster, else [`default_shifts`]; and whether one was
/// given (by the options or the dataset) rather than defaulted.
pub(crate) fn roster_of(
    ds: &Dataset,
    o: &PatternOptions,
) -> Result<(Vec<ShiftDef>, Vec<f64>, bool)> {
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

/// Values of the `by` dimensions of one group.
pub(crate) type GroupKey = Vec<Option<String>>;
/// A value of the Pareto dimension with its events and weighted events.
pub(crate) type ParetoItem = (Option<String>, f64, f64);
/// Group, shift (none = outside every shift) and hour of shift (none = time unknown).
pub(crate) type ShiftCell = (usize, Option<usize>, Option<usize>);

/// Text columns of one table as the pattern dimensions.
pub(crate) struct TableCols {
    pub(crate) time: &'static str,
    pub(crate) until: Option<&'static str>,
    pub(crate) time_known: bool,
    pub(crate) category: &'static str,
    pub(crate) severity: Option<&'static str>,
}

pub(crate) fn table_cols(kind: EventKind) -> TableCols {
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

pub(crate) fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Incidents => "incidents",
        EventKind::Hazards => "hazards",
        EventKind::Violations => "violations",
    }
}

pub(crate) fn table_of(kind: EventKind) -> TableKind {
    match kind {
        EventKind::Incidents => TableKind::Incidents,
        EventKind::Hazards => TableKind::Hazards,
        EventKind::Violations => TableKind::Violations,
    }
}

pub(crate) fn weight_expr(kind: EventKind, w: &RiskWeights) -> Result<Expr> {
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

pub(crate) fn in_list(column: &str, values: &[String]) -> Expr {
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
pub(crate) struct ScalarNull;

impl ScalarNull {
    pub(crate) fn utf8() -> datafusion::common::ScalarValue {
        datafusion::common::ScalarValue::Utf8(None)
    }
    pub(crate) fn int64() -> datafusion::common::ScalarValue {
        datafusion::common::ScalarValue::Int64(None)
    }
}

/// Events binned to quarter-hours: per group, per quarter-hour instant,
/// the events (fractional under aoristic weighting) and their weight.
pub(crate) struct Binned {
    /// Group keys in order, one value per `by` dimension.
    pub(crate) groups: Vec<Vec<Option<String>>>,
    /// `(group, quarter index, time known, events, weighted)`.
    pub(crate) rows: Vec<(usize, i64, bool, f64, f64)>,
}

pub(crate) fn floor_div(e: Expr, q: i64) -> Expr {
    // Floor division also for instants before 1970.
    let r = ((e.clone() % lit(q)) + lit(q)) % lit(q);
    (e - r) / lit(q)
}

/// How finely [`binned`] keeps the instants of point events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Binning {
    /// Every quarter-hour instant (views that need local dates).
    Quarters,
    /// One row per local hour of the week (0–167) per group, aggregated in
    /// the plan, carrying the first quarter-hour as its instant and a
    /// zero-count row at the last one (the window's bounds): for views
    /// that only need the hour of the week.
    WeekHours,
}

pub(crate) async fn binned(ds: &Dataset, o: &PatternOptions) -> Result<Binned> {
    binned_as(ds, o, Binning::Quarters).await
}

pub(crate) async fn binned_as(
    ds: &Dataset,
    o: &PatternOptions,
    binning: Binning,
) -> Result<Binned> {
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
            let longest = (o.max_aoristic_hours * 3_600_000_000.0) as i64;
            for i in 0..b.num_rows() {
                let g = group_of(b, i, &mut out)?;
                let (s, e) = (t.value(i), u.value(i));
                if e - s > longest {
                    // Too vague to spread: one event of unknown time of day.
                    out.rows
                        .push((g, s.div_euclid(QUARTER), false, 1.0, w.value(i)));
                    continue;
                }
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
pub(crate) struct Local {
    pub(crate) date: NaiveDate,
    pub(crate) weekday: usize,
    pub(crate) hour: usize,
    pub(crate) minute_of_day: u32,
}

pub(crate) struct Clock {
    pub(crate) tz: Tz,
    pub(crate) cache: HashMap<i64, Local>,
    /// Every quarter-hour of the analysis window from `base` on, converted
    /// once (see [`Clock::prepare`]).
    pub(crate) dense: Vec<Local>,
    pub(crate) base: i64,
}

impl Clock {
    pub(crate) fn new(ds: &Dataset) -> Result<Clock> {
        Ok(Clock {
            tz: parse_tz(ds.timezone())?,
            cache: HashMap::new(),
            dense: vec![],
            base: 0,
        })
    }

    pub(crate) fn convert(tz: &Tz, q: i64) -> Local {
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
    pub(crate) fn prepare(&mut self, (q0, q1): (i64, i64)) {
        const MAX: i64 = 4 * 24 * 366 * 20;
        if q1 <= q0 || q1 - q0 > MAX {
            return;
        }
        let tz = self.tz;
        self.base = q0;
        self.dense = (q0..q1).map(|q| Clock::convert(&tz, q)).collect();
    }

    pub(crate) fn local(&mut self, q: i64) -> Local {
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
    pub(crate) fn day_start(&self, date: NaiveDate) -> i64 {
        crate::model::time::local_day_start(&self.tz, date)
    }
}

/// The analysis window in quarter-hours `[q0, q1)`: the options' bounds,
/// else whole local days around the events.
pub(crate) fn window(
    ds: &Dataset,
    o: &PatternOptions,
    b: &Binned,
    clock: &mut Clock,
) -> Result<(i64, i64)> {
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
