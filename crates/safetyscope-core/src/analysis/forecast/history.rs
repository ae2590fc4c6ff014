//! The history a forecast is fitted to: per cell of the site plan and per
//! period (local week or month), the count of the target events, the
//! leading indicators and the hours worked. The counts are DataFusion
//! aggregates per site, cell and period; only the small grid (cells ×
//! periods) reaches this process.

use std::collections::BTreeMap;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, cast, col, lit};

use crate::analysis::spatial::risk_evidence::{PlanCell, exposure_rows, plan, spread_hours};
use crate::model::options::Slice;
use crate::model::schema::TableKind;
use crate::model::time::{
    local_day_expr, local_to_micros, micros_to_local, next_slice, parse_tz, slice_key,
    slice_key_expr, slice_start,
};
use crate::session::dataset::Dataset;
use crate::util::columns::strings;
use crate::util::error::{Error, Result};

/// What a forecast predicts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Incidents with an injury (first aid, minor, serious, fatal).
    Injuries,
    /// Every incident, near misses included.
    Incidents,
}

/// Counts per cell and period.
pub(crate) type Grid = Vec<Vec<f64>>;

/// The history of a dataset by cell and period.
#[derive(Debug, Clone)]
pub(crate) struct History {
    /// The cells of the plan, in plan order.
    pub cells: Vec<PlanCell>,
    /// Period starts (µs) and, last, the end of the last period.
    pub bounds: Vec<i64>,
    /// Labels of the periods and, last, of the period after them
    /// (`2025-07`, `2025-W27`).
    pub labels: Vec<String>,
    /// The position of each period in its year (0 to 1), last the next
    /// period's.
    pub season: Vec<f64>,
    /// Periods per year.
    pub per_year: f64,
    /// Target events per cell and period.
    pub target: Grid,
    /// The indicators present in the data, with their counts.
    pub indicators: Vec<(&'static str, Grid)>,
    /// The first period of each indicator's table: the first in which the
    /// table holds a row of the history's cells (before it, the table was
    /// not yet kept, so a 0 there is no count).
    pub recorded_from: Vec<usize>,
    /// Hours worked per cell and period (`None` without an exposure table).
    pub hours: Option<Grid>,
}

impl History {
    /// Number of periods.
    pub fn periods(&self) -> usize {
        self.bounds.len() - 1
    }
}

/// Period label of a local date.
fn label(d: chrono::NaiveDate, slice: Slice) -> String {
    use chrono::Datelike;
    match slice {
        Slice::Month => format!("{}-{:02}", d.year(), d.month()),
        Slice::Week => {
            let w = d.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
    }
}

/// Position of a local date in its year, 0 to 1.
fn season_of(d: chrono::NaiveDate) -> f64 {
    use chrono::Datelike;
    let days = if d.leap_year() { 366.0 } else { 365.0 };
    f64::from(d.ordinal0()) / days
}

/// The key of the local period (see [`slice_key_expr`]) of the instants in
/// the timestamp column `time` of `kind`, exact for the column's span.
async fn key_of(ds: &Dataset, kind: TableKind, time: &str, slice: Slice) -> Result<Expr> {
    let tz = parse_tz(ds.timezone())?;
    let (lo, hi) = ds.time_span(kind, time).await?.unwrap_or((0, 0));
    let day = local_day_expr(&tz, cast(col(time), DataType::Int64), lo, hi)?;
    Ok(slice_key_expr(day, slice))
}

/// Counts per site, cell and period key, `(site, cell, key) → n`: one map
/// per expression of `counted` (an Int64 of 0 or 1 per row; `None` counts
/// every row), in one aggregate.
async fn per_period(
    df: DataFrame,
    key: Expr,
    counted: &[Option<Expr>],
) -> Result<Vec<BTreeMap<(String, String, i64), f64>>> {
    use datafusion::functions_aggregate::expr_fn::sum;
    let aggs = counted
        .iter()
        .enumerate()
        .map(|(j, e)| match e {
            Some(e) => sum(e.clone()).alias(format!("n{j}")),
            None => count(lit(1i64)).alias(format!("n{j}")),
        })
        .collect();
    let batches = df
        .filter(col("cell").is_not_null())?
        .aggregate(vec![col("site"), col("cell"), key.alias("start")], aggs)?
        .collect()
        .await?;
    let mut out = vec![BTreeMap::new(); counted.len()];
    for b in &batches {
        let (s, c) = (strings(b, "site")?, strings(b, "cell")?);
        let t = ints(b, "start")?;
        for (j, m) in out.iter_mut().enumerate() {
            let n = ints(b, &format!("n{j}"))?;
            for i in 0..b.num_rows() {
                if t.is_null(i) || n.is_null(i) || n.value(i) == 0 {
                    continue;
                }
                *m.entry((s.value(i).to_string(), c.value(i).to_string(), t.value(i)))
                    .or_default() += n.value(i) as f64;
            }
        }
    }
    Ok(out)
}

fn ints(b: &RecordBatch, name: &str) -> Result<Int64Array> {
    crate::util::columns::i64s(b, name)
}

/// The rows of an event table in [from, to) of one site (or all).
async fn rows(
    ds: &Dataset,
    kind: TableKind,
    time: &str,
    from: i64,
    to: i64,
    site: Option<&str>,
    keep: Option<Expr>,
) -> Result<DataFrame> {
    let t = cast(col(time), DataType::Int64);
    let mut f = t.clone().gt_eq(lit(from)).and(t.lt(lit(to)));
    if let Some(s) = site {
        f = f.and(col("site").eq(lit(s.to_string())));
    }
    if let Some(k) = keep {
        f = f.and(k);
    }
    Ok(ds.table(kind).await?.filter(f)?)
}

/// The first period in which any of the grids counts something (0 when
/// none does).
fn first_period(grids: &[&Grid]) -> usize {
    let periods = grids.first().and_then(|g| g.first()).map_or(0, Vec::len);
    (0..periods)
        .find(|&t| grids.iter().any(|g| g.iter().any(|row| row[t] > 0.0)))
        .unwrap_or(0)
}

/// Place per-period counts on the grid of cells × periods.
fn grid(
    counts: &BTreeMap<(String, String, i64), f64>,
    cells: &BTreeMap<(String, String), usize>,
    index: &BTreeMap<i64, usize>,
    n_cells: usize,
    n_periods: usize,
) -> Grid {
    let mut g = vec![vec![0.0; n_periods]; n_cells];
    for ((s, c, t), n) in counts {
        if let (Some(&ci), Some(&ti)) = (cells.get(&(s.clone(), c.clone())), index.get(t)) {
            g[ci][ti] += n;
        }
    }
    g
}

/// Build the history of `[from, to)` (whole periods only) for the cells of
/// one site or all.
pub(crate) async fn history(
    ds: &Dataset,
    target: Target,
    slice: Slice,
    from: Option<&str>,
    to: Option<&str>,
    site: Option<&str>,
) -> Result<History> {
    ds.require_site_plan("forecast")?;
    if !ds.has_table(TableKind::Incidents) {
        return Err(Error::data(
            "incidents",
            "a forecast needs the incidents table",
        ));
    }
    let tz = parse_tz(ds.timezone())?;
    let to = match to {
        Some(v) => crate::session::window::parse_local(ds, "to", v)?,
        None => crate::session::window::data_end(ds, "to").await?,
    };
    let from = match from {
        Some(v) => crate::session::window::parse_local(ds, "from", v)?,
        None => ds
            .time_span(TableKind::Incidents, "occurred_at")
            .await?
            .map_or(to, |(lo, _)| lo),
    };
    // Whole periods from the one holding `from` (or the next, when `from`
    // is not its start) to the last that ends by `to`.
    let local_from =
        micros_to_local(&tz, from).ok_or_else(|| Error::option("from", "out of range"))?;
    let mut d = slice_start(local_from.date(), slice);
    let start_of = |d: chrono::NaiveDate| local_to_micros(&tz, d.and_time(chrono::NaiveTime::MIN));
    if start_of(d).is_some_and(|s| s < from) {
        d = next_slice(d, slice);
    }
    let (mut bounds, mut labels, mut season, mut keys) = (vec![], vec![], vec![], vec![]);
    while let Some(s) = start_of(d) {
        let next = next_slice(d, slice);
        let Some(e) = start_of(next) else { break };
        if e > to {
            break;
        }
        bounds.push(s);
        keys.push(slice_key(d, slice));
        labels.push(label(d, slice));
        season.push(season_of(d));
        d = next;
    }
    if bounds.len() < 4 {
        return Err(Error::option(
            "from",
            format!(
                "the history holds {} whole {}s; a forecast needs at least 4",
                bounds.len(),
                match slice {
                    Slice::Week => "week",
                    Slice::Month => "month",
                }
            ),
        ));
    }
    let end = start_of(d).unwrap_or(to);
    bounds.push(end);
    labels.push(label(d, slice));
    season.push(season_of(d));
    let n_periods = bounds.len() - 1;
    let (lo, hi) = (bounds[0], end);
    let index: BTreeMap<i64, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();

    let cells = plan(ds, site)?;
    if cells.is_empty() {
        return Err(Error::option(
            "site",
            "no cell of the site plan is in this site",
        ));
    }
    let cell_index: BTreeMap<(String, String), usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.site.clone(), c.cell.clone()), i))
        .collect();
    let n_cells = cells.len();
    let on_grid = |counts: &BTreeMap<(String, String, i64), f64>| {
        grid(counts, &cell_index, &index, n_cells, n_periods)
    };

    // The target and the near misses in one aggregate of the incidents.
    let flag = |e: Expr| {
        datafusion::logical_expr::when(e, lit(1i64))
            .otherwise(lit(0i64))
            .map_err(Error::from)
    };
    let target_flag = match target {
        Target::Injuries => Some(flag(col("severity").not_eq(lit("near_miss")))?),
        Target::Incidents => None,
    };
    let near_flag = Some(flag(col("severity").eq(lit("near_miss")))?);
    let inc = rows(ds, TableKind::Incidents, "occurred_at", lo, hi, site, None).await?;
    let at = key_of(ds, TableKind::Incidents, "occurred_at", slice).await?;
    let mut counts = per_period(inc, at, &[target_flag, near_flag]).await?;
    let near = counts.pop().unwrap_or_default();
    let target_grid = on_grid(&counts.pop().unwrap_or_default());
    let near = on_grid(&near);
    let incidents_from = first_period(&[&target_grid, &near]);
    let mut indicators = vec![("near_misses", near)];
    let mut recorded_from = vec![incidents_from];
    if ds.has_table(TableKind::Hazards) {
        let h = rows(ds, TableKind::Hazards, "reported_at", lo, hi, site, None).await?;
        let key = key_of(ds, TableKind::Hazards, "reported_at", slice).await?;
        let n = on_grid(&per_period(h, key, &[None]).await?[0]);
        let from = first_period(&[&n]);
        indicators.push(("hazards", n));
        indicators.push((
            "overdue_hazards",
            overdue(ds, slice, &bounds, &keys, &cell_index, site).await?,
        ));
        recorded_from.extend([from, from]);
    }
    if ds.has_table(TableKind::Violations) {
        let v = rows(ds, TableKind::Violations, "detected_at", lo, hi, site, None).await?;
        let key = key_of(ds, TableKind::Violations, "detected_at", slice).await?;
        let n = on_grid(&per_period(v, key, &[None]).await?[0]);
        recorded_from.push(first_period(&[&n]));
        indicators.push(("violations", n));
    }

    let hours = if ds.row_count(TableKind::Exposure) > 0 {
        // Read once, spread per period.
        let exposure = exposure_rows(ds, lo, hi).await?;
        let mut g = vec![vec![0.0; n_periods]; n_cells];
        for t in 0..n_periods {
            let h = spread_hours(&exposure, &cells, bounds[t], bounds[t + 1]);
            for (ci, c) in cells.iter().enumerate() {
                g[ci][t] = h
                    .get(&(c.site.clone(), c.cell.clone()))
                    .copied()
                    .unwrap_or(0.0);
            }
        }
        Some(g)
    } else {
        None
    };
    Ok(History {
        cells,
        bounds,
        labels,
        season,
        per_year: match slice {
            Slice::Week => 52.1775,
            Slice::Month => 12.0,
        },
        target: target_grid,
        indicators,
        recorded_from,
        hours,
    })
}

/// Hazards open past their deadline at the end of each period, per cell:
/// a hazard due in period d and closed in period k (never: k = ∞) is
/// overdue at the ends of periods d … k − 1. Counted in the plan per
/// site, cell, d and k; the running sum over the periods is taken here.
async fn overdue(
    ds: &Dataset,
    slice: Slice,
    bounds: &[i64],
    keys: &[i64],
    cells: &BTreeMap<(String, String), usize>,
    site: Option<&str>,
) -> Result<Grid> {
    let n_periods = bounds.len() - 1;
    let end = bounds[n_periods];
    let due = cast(col("due_at"), DataType::Int64);
    let closed = cast(col("closed_at"), DataType::Int64);
    // Due before the end of the history, and not closed by the deadline.
    let mut f = col("cell").is_not_null().and(due.clone().lt(lit(end))).and(
        col("closed_at")
            .is_null()
            .or(closed.clone().gt(due.clone())),
    );
    if let Some(s) = site {
        f = f.and(col("site").eq(lit(s.to_string())));
    }
    let batches = ds
        .table(TableKind::Hazards)
        .await?
        .filter(f)?
        .aggregate(
            vec![
                col("site"),
                col("cell"),
                key_of(ds, TableKind::Hazards, "due_at", slice)
                    .await?
                    .alias("d"),
                key_of(ds, TableKind::Hazards, "closed_at", slice)
                    .await?
                    .alias("k"),
            ],
            vec![count(lit(1i64)).alias("n")],
        )?
        .collect()
        .await?;
    // Period index of a period start: before the first → 0 (or −1 for a
    // closing), after the last → n.
    // The period of a key: before the first → −1, after the last → the
    // last (a closing after the history is caught by `end` below).
    let position = |k: i64| keys.partition_point(|&s| s <= k) as i64 - 1;
    let last_key = keys[n_periods - 1];
    let mut delta = vec![vec![0.0; n_periods + 1]; cells.len()];
    for b in &batches {
        let (s, c) = (strings(b, "site")?, strings(b, "cell")?);
        let (d, k, n) = (ints(b, "d")?, ints(b, "k")?, ints(b, "n")?);
        for i in 0..b.num_rows() {
            let Some(&ci) = cells.get(&(s.value(i).to_string(), c.value(i).to_string())) else {
                continue;
            };
            if d.is_null(i) {
                continue;
            }
            let first = position(d.value(i)).max(0) as usize;
            let stop = if k.is_null(i) || k.value(i) > last_key {
                n_periods as i64
            } else {
                position(k.value(i)).min(n_periods as i64)
            };
            if stop <= first as i64 || first >= n_periods {
                continue;
            }
            delta[ci][first] += n.value(i) as f64;
            delta[ci][stop as usize] -= n.value(i) as f64;
        }
    }
    Ok(delta
        .into_iter()
        .map(|d| {
            let mut run = 0.0;
            d[..n_periods]
                .iter()
                .map(|x| {
                    run += x;
                    run
                })
                .collect()
        })
        .collect())
}

/// Each site's share of the target events in each of the 168 hours of the
/// week (index weekday × 24 + hour, Monday 0, local time) over the
/// history, smoothed: (n + ½) / (N + 84). Counted in the plan per site,
/// weekday and hour; rows whose time of day is unknown are left out.
pub(crate) async fn hour_shares(
    ds: &Dataset,
    h: &History,
    target: Target,
    site: Option<&str>,
) -> Result<BTreeMap<String, [f64; 168]>> {
    use crate::model::time::local_micros_expr;
    const HOUR_US: i64 = 3_600_000_000;
    let tz = parse_tz(ds.timezone())?;
    let (lo, hi) = (h.bounds[0], h.bounds[h.bounds.len() - 1]);
    let keep = match target {
        Target::Injuries => Some(col("severity").not_eq(lit("near_miss"))),
        Target::Incidents => None,
    };
    let mut df = rows(ds, TableKind::Incidents, "occurred_at", lo, hi, site, keep).await?;
    if df.schema().has_column_with_unqualified_name("time_known") {
        df = df.filter(col("time_known").is_not_false())?;
    }
    let local = local_micros_expr(&tz, cast(col("occurred_at"), DataType::Int64), lo, hi)?;
    // Local hours since 1970-01-01 00:00 (floor), then weekday and hour.
    let hours = {
        let r = ((local.clone() % lit(HOUR_US)) + lit(HOUR_US)) % lit(HOUR_US);
        (local - r) / lit(HOUR_US)
    };
    let day = {
        let r = ((hours.clone() % lit(24i64)) + lit(24i64)) % lit(24i64);
        (hours.clone() - r) / lit(24i64)
    };
    let hour = ((hours % lit(24i64)) + lit(24i64)) % lit(24i64);
    // 1970-01-01 was a Thursday (weekday 3 from Monday).
    let weekday = ((day + lit(3i64)) % lit(7i64) + lit(7i64)) % lit(7i64);
    let batches = df
        .aggregate(
            vec![col("site"), weekday.alias("weekday"), hour.alias("hour")],
            vec![count(lit(1i64)).alias("n")],
        )?
        .collect()
        .await?;
    let mut counts: BTreeMap<String, [f64; 168]> = BTreeMap::new();
    for c in &h.cells {
        counts.entry(c.site.clone()).or_insert([0.0; 168]);
    }
    for b in &batches {
        let s = strings(b, "site")?;
        let (w, hr, n) = (ints(b, "weekday")?, ints(b, "hour")?, ints(b, "n")?);
        for i in 0..b.num_rows() {
            if let Some(slot) = counts.get_mut(s.value(i)) {
                let k = (w.value(i) * 24 + hr.value(i)).clamp(0, 167) as usize;
                slot[k] += n.value(i) as f64;
            }
        }
    }
    Ok(counts
        .into_iter()
        .map(|(s, c)| {
            let total: f64 = c.iter().sum::<f64>() + 84.0;
            let mut out = [0.0; 168];
            for (o, n) in out.iter_mut().zip(c) {
                *o = (n + 0.5) / total;
            }
            (s, out)
        })
        .collect())
}
