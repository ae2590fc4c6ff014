//! The evidence of the risk map: events, open and overdue hazards,
//! violations, alarm episodes and intrusions counted per cell, window,
//! category and age, and the hours worked per cell.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, cast, col, lit, when};

use crate::session::scan::{CellIndex, NO_CELL, codes, column, partitions, tally_by_cell, times};

use crate::analysis::spatial::risk_model::*;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::columns::i64s;
use crate::util::columns::ints;
use crate::util::columns::strings;
use crate::util::error::{Error, Result};

/// Evidence of one cell in one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Evidence {
    pub(crate) injuries: f64,
    pub(crate) near_misses: f64,
    pub(crate) open_hazards: f64,
    pub(crate) overdue_hazards: f64,
    pub(crate) violations: f64,
    pub(crate) alarms: f64,
    pub(crate) intrusions: f64,
}

impl Evidence {
    pub(crate) fn total(&self) -> f64 {
        self.injuries
            + self.near_misses
            + self.open_hazards
            + self.overdue_hazards
            + self.violations
            + self.alarms
            + self.intrusions
    }
}

pub(crate) type CellKey = (String, String);

pub(crate) fn decay(age_days: i64, half_life: Option<f64>) -> f64 {
    match half_life {
        Some(h) => 0.5f64.powf(age_days.max(0) as f64 / h),
        None => 1.0,
    }
}

pub(crate) fn ts_lit(ds: &Dataset, micros: i64) -> Expr {
    lit(datafusion::common::ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some(ds.timezone().into()),
    ))
}

/// The severities of incidents in the order their weights are summed.
pub(crate) const SEVERITIES: [&str; 5] = ["fatal", "first_aid", "minor", "near_miss", "serious"];

/// Evidence per cell for the window [from, to) (`[0]`) and for the window
/// of the same length before it (`[1]`), read in one scan per table: every
/// row is counted for the window it falls in (hazards for each window end
/// they are open at), with its age in whole days from that window's end.
///
/// Rows are counted per site, cell, window, category and age by a grouped
/// aggregate in the plan (on a cluster, on its executors); only the counts
/// come back. The weighted sums are then taken over the counts of the
/// plan's cells (`cells`) in a fixed order, so they are the same, bit for
/// bit, on every run and however the rows were split.
pub(crate) async fn evidence(
    ds: &Dataset,
    cells: &[PlanCell],
    from: i64,
    to: i64,
    site: Option<&str>,
    o: &RiskOptions,
) -> Result<[BTreeMap<CellKey, Evidence>; 2]> {
    let w = &o.weights;
    let prev = from - (to - from);
    let index = Arc::new(CellIndex::new(
        cells.iter().map(|c| (c.site.as_str(), c.cell.as_str())),
    ));
    let windows = Windows {
        prev,
        from,
        to,
        decays: o.half_life_days.is_some(),
    };
    let ages = windows.ages();
    // Rows wanted: of the site, if one is asked for (files sorted by site
    // then skip the other sites' row groups).
    let of_site = |e: Expr| match site {
        Some(s) => e.and(col("site").eq(lit(s.to_string()))),
        None => e,
    };
    let in_windows = |time: &str| {
        of_site(
            col(time)
                .gt_eq(ts_lit(ds, prev))
                .and(col(time).lt(ts_lit(ds, to))),
        )
    };
    // Hazards are counted at each window end they are open at, by days
    // overdue then. Past the day the factor reaches its cap every day
    // weighs the same: those days are counted as that one day (fewer
    // counts, same weights).
    let cap_day = ((w.overdue_cap - 1.0) / w.overdue_growth_per_day).ceil() + 1.0;
    let cap_day = (cap_day.is_finite() && (0.0..1e6).contains(&cap_day)).then_some(cap_day as i64);
    // Days overdue run from -1 (not overdue) up.
    let days = cap_day.map_or(1u64 << 32, |c| c as u64 + 2);
    let hazards = Overdue {
        from,
        to,
        cap_day,
        days,
    };
    let inc_stride = 2 * SEVERITIES.len() as u64 * ages;
    let vio_stride = 2 * ages;
    let haz_stride = 2 * 2 * days;
    // The three tables are counted together.
    let (inc_counts, vio_counts, haz_counts) = futures::try_join!(
        incident_counts(ds, &index, windows, in_windows("occurred_at")),
        violation_counts(ds, &index, windows, in_windows("detected_at")),
        hazard_counts(ds, &index, hazards, site),
    )?;
    let mut out: [BTreeMap<CellKey, Evidence>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let key = |k: u64| -> CellKey {
        let c = &cells[index.position(k)];
        (c.site.clone(), c.cell.clone())
    };
    for (i, n) in inc_counts {
        let (k, sub) = (i / inc_stride, i % inc_stride);
        let (win, sev, age) = (
            sub / (SEVERITIES.len() as u64 * ages),
            sub / ages % SEVERITIES.len() as u64,
            sub % ages,
        );
        let f = n as f64 * decay(age as i64, o.half_life_days);
        let e = out[win as usize].entry(key(k)).or_default();
        match SEVERITIES[sev as usize] {
            "near_miss" => e.near_misses += f * w.near_miss,
            "first_aid" => e.injuries += f * w.first_aid,
            "minor" => e.injuries += f * w.minor,
            "serious" => e.injuries += f * w.serious,
            _ => e.injuries += f * w.fatal,
        }
    }
    for (i, n) in vio_counts {
        let (k, sub) = (i / vio_stride, i % vio_stride);
        let (win, age) = (sub / ages, sub % ages);
        out[win as usize].entry(key(k)).or_default().violations +=
            n as f64 * decay(age as i64, o.half_life_days) * w.violation;
    }
    for (i, n) in haz_counts {
        let (k, sub) = (i / haz_stride, i % haz_stride);
        let (window, major, d) = (sub / (2 * days), sub / days % 2 == 1, sub % days);
        let n = n as f64;
        let e = out[window as usize].entry(key(k)).or_default();
        e.open_hazards += n * if major {
            w.open_hazard_major
        } else {
            w.open_hazard_general
        };
        if d >= 1 {
            let factor = (1.0 + (d - 1) as f64 * w.overdue_growth_per_day).min(w.overdue_cap);
            e.overdue_hazards += n
                * factor
                * if major {
                    w.overdue_hazard_major
                } else {
                    w.overdue_hazard_general
                };
        }
    }
    // Sensor alarm episodes and fence intrusions starting in each window.
    let follow = crate::analysis::followup::options::AlertOptions {
        site: site.map(str::to_string),
        as_of: None,
        from: None,
        ..o.alerts.clone()
    };
    // Each kind from one scan for both windows.
    use crate::analysis::followup::episodes::{alarm_episodes_over, fence_intrusions_over};
    let windows = [(from, to), (prev, from)];
    if w.alarm_episode != 0.0 {
        let eps = alarm_episodes_over(ds, &follow, &windows).await?;
        for (k, (eps, (_, b))) in eps.iter().zip(windows).enumerate() {
            add_episodes(&mut out[k], eps, "start", b, o, w.alarm_episode, |e| {
                &mut e.alarms
            })?;
        }
    }
    if w.intrusion != 0.0 {
        let eps = fence_intrusions_over(ds, &follow, &windows).await?;
        for (k, (eps, (_, b))) in eps.iter().zip(windows).enumerate() {
            add_episodes(&mut out[k], eps, "entry", b, o, w.intrusion, |e| {
                &mut e.intrusions
            })?;
        }
    }
    Ok(out)
}

// ------------------------------------------------------------ the counts
//
// Each table's rows are counted per cell number of the plan's index and a
// sub-key (window, category, age or days overdue), as sorted
// `(cell × stride + sub-key, rows)` pairs. Two ways give the same pairs:
// a grouped aggregate in the plan, which runs wherever the session runs
// its queries (in memory, or on a cluster's executors); and, for a store
// this process reads itself, a scan of its files with the string keys
// read dictionary-encoded and counted per dictionary value (BENCHMARKS.md,
// "Counted by hand over dictionary keys": 0.19 s against 0.46 s for the
// grouped aggregate at 10 M incidents).

/// Where hazards are counted: open at `to` (window 0) and at `from`
/// (window 1), by days overdue then, capped at `cap_day`; `days` sub-keys
/// per window and level.
#[derive(Debug, Clone, Copy)]
struct Overdue {
    from: i64,
    to: i64,
    cap_day: Option<i64>,
    days: u64,
}

/// The rows of a table that `filter` keeps, grouped by site, cell and
/// `keys` (in the plan), with the rows of each group as `n`.
async fn grouped(
    ds: &Dataset,
    kind: TableKind,
    filter: Expr,
    keys: Vec<Expr>,
) -> Result<datafusion::dataframe::DataFrame> {
    use datafusion::functions_aggregate::expr_fn::count;
    let mut group = vec![col("site"), col("cell")];
    group.extend(keys);
    Ok(ds
        .table(kind)
        .await?
        .filter(filter)?
        .aggregate(group, vec![count(lit(1i64)).alias("n")])?)
}

/// An event's window (0 the current, 1 the one before) as `win` and its
/// age in whole days from that window's end as `age` (0 without decay).
fn event_keys(windows: Windows, time: &str) -> Result<Vec<Expr>> {
    let t = cast(col(time), DataType::Int64);
    let current = t.clone().gt_eq(lit(windows.from));
    let win = when(current.clone(), lit(0i64)).otherwise(lit(1i64))?;
    let age = if windows.decays {
        (when(current, lit(windows.to)).otherwise(lit(windows.from))? - t) / lit(DAY_US)
    } else {
        lit(0i64)
    };
    Ok(vec![win.alias("win"), age.alias("age")])
}

/// Pairs from grouped batches: `sub` gives a group's sub-keys (up to two,
/// for hazards open at both window ends), groups of cells outside the
/// index are left out, and the rows of equal keys are added.
fn pairs(
    batches: &[RecordBatch],
    index: &CellIndex,
    table: &str,
    stride: u64,
    mut sub: impl FnMut(&RecordBatch, usize) -> Result<[Option<u64>; 2]>,
) -> Result<Vec<(u64, i64)>> {
    let mut keys = vec![];
    let mut out: Vec<(u64, i64)> = vec![];
    for b in batches {
        index.rows(b, table, &mut keys)?;
        let n = i64s(b, "n")?;
        for (i, &k) in keys.iter().enumerate() {
            let subs = sub(b, i)?;
            if k != NO_CELL {
                out.extend(
                    subs.into_iter()
                        .flatten()
                        .map(|s| (u64::from(k) * stride + s, n.value(i))),
                );
            }
        }
    }
    out.sort_unstable();
    let mut merged: Vec<(u64, i64)> = Vec::with_capacity(out.len());
    for (k, n) in out {
        match merged.last_mut() {
            Some(last) if last.0 == k => last.1 += n,
            _ => merged.push((k, n)),
        }
    }
    Ok(merged)
}

/// Incidents in the windows: per cell, window, severity and age.
async fn incident_counts(
    ds: &Dataset,
    index: &Arc<CellIndex>,
    windows: Windows,
    filter: Expr,
) -> Result<Vec<(u64, i64)>> {
    const T: &str = "incidents";
    let ages = windows.ages();
    let stride = 2 * SEVERITIES.len() as u64 * ages;
    // Validation admits only the canonical severities; anything else here
    // is an error, never counted as some severity.
    let unknown = |shown: &str| {
        Error::data(
            T,
            format!("severity `{shown}` is not one of {}", SEVERITIES.join(", ")),
        )
    };
    if !ds.reads_files_here(TableKind::Incidents) {
        let mut keys = vec![col("severity")];
        keys.extend(event_keys(windows, "occurred_at")?);
        let groups = grouped(ds, TableKind::Incidents, filter, keys)
            .await?
            .collect()
            .await?;
        return pairs(&groups, index, T, stride, |b, i| {
            let sev = strings(b, "severity")?;
            let (win, age) = (i64s(b, "win")?, i64s(b, "age")?);
            let s = (!sev.is_null(i))
                .then(|| SEVERITIES.iter().position(|s| *s == sev.value(i)))
                .flatten()
                .ok_or_else(|| unknown(if sev.is_null(i) { "" } else { sev.value(i) }))?;
            let sub = (win.value(i) as u64 * SEVERITIES.len() as u64 + s as u64) * ages
                + age.value(i) as u64;
            Ok([Some(sub), None])
        });
    }
    let columns = ["site", "cell", "severity", "occurred_at"];
    let tally = tally_by_cell(
        partitions(ds, TableKind::Incidents, &columns, filter).await?,
        index,
        T,
        index.len() as u64 * stride,
        move |b, keys, tally| {
            const UNKNOWN: u64 = u64::MAX;
            let mut sev = Vec::new();
            let severity = |v: Option<&str>| {
                v.and_then(|v| SEVERITIES.iter().position(|s| *s == v))
                    .map_or(UNKNOWN, |p| p as u64)
            };
            let sevs = column(b, T, "severity")?;
            codes(sevs, T, "severity", severity, &mut sev)?;
            if let Some(i) = sev.iter().position(|&c| c == UNKNOWN) {
                let shown = arrow::util::display::array_value_to_string(sevs, i)
                    .unwrap_or_else(|_| "?".into());
                return Err(unknown(&shown));
            }
            let (t, nulls) = times(b, T, "occurred_at")?;
            for (i, k, win, age) in windows.rows(keys, t, nulls) {
                let sub = (win * SEVERITIES.len() as u64 + sev[i]) * ages + age;
                tally.add(k * stride + sub, 1);
            }
            Ok(())
        },
    )
    .await?;
    Ok(tally.sorted())
}

/// Violations in the windows: per cell, window and age.
async fn violation_counts(
    ds: &Dataset,
    index: &Arc<CellIndex>,
    windows: Windows,
    filter: Expr,
) -> Result<Vec<(u64, i64)>> {
    const T: &str = "violations";
    let ages = windows.ages();
    let stride = 2 * ages;
    if !ds.reads_files_here(TableKind::Violations) {
        let keys = event_keys(windows, "detected_at")?;
        let groups = grouped(ds, TableKind::Violations, filter, keys)
            .await?
            .collect()
            .await?;
        return pairs(&groups, index, T, stride, |b, i| {
            let (win, age) = (i64s(b, "win")?, i64s(b, "age")?);
            Ok([Some(win.value(i) as u64 * ages + age.value(i) as u64), None])
        });
    }
    let columns = ["site", "cell", "detected_at"];
    let tally = tally_by_cell(
        partitions(ds, TableKind::Violations, &columns, filter).await?,
        index,
        T,
        index.len() as u64 * stride,
        move |b, keys, tally| {
            let (t, nulls) = times(b, T, "detected_at")?;
            for (_, k, win, age) in windows.rows(keys, t, nulls) {
                tally.add(k * stride + win * ages + age, 1);
            }
            Ok(())
        },
    )
    .await?;
    Ok(tally.sorted())
}

/// Hazards open at each window end (reported before it, not closed by it):
/// per cell, window, level and days overdue then.
async fn hazard_counts(
    ds: &Dataset,
    index: &Arc<CellIndex>,
    h: Overdue,
    site: Option<&str>,
) -> Result<Vec<(u64, i64)>> {
    const T: &str = "hazards";
    let of_site = |e: Expr| match site {
        Some(s) => e.and(col("site").eq(lit(s.to_string()))),
        None => e,
    };
    let Overdue {
        from,
        to,
        cap_day,
        days,
    } = h;
    let stride = 2 * 2 * days;
    if !ds.reads_files_here(TableKind::Hazards) {
        // One scan: every hazard open at one of the window ends (reported
        // before `to`, not closed before `from`), grouped by level and its
        // days overdue at each end it is open at (null at an end it is
        // not open at).
        let overdue_at = |at: i64| -> Result<Expr> {
            let due = cast(col("due_at"), DataType::Int64);
            let late = (lit(at) - due.clone()) / lit(DAY_US);
            let late = match cap_day {
                Some(c) => when(late.clone().gt(lit(c)), lit(c)).otherwise(late)?,
                None => late,
            };
            Ok(when(
                due.is_not_null().and(col("due_at").lt(ts_lit(ds, at))),
                late,
            )
            .otherwise(lit(-1i64))?)
        };
        let open_at = |at: i64| {
            col("closed_at")
                .is_null()
                .or(col("closed_at").gt_eq(ts_lit(ds, at)))
        };
        let filter = of_site(col("reported_at").lt(ts_lit(ds, to))).and(open_at(from));
        let now = when(open_at(to), overdue_at(to)?).end()?;
        let before = when(col("reported_at").lt(ts_lit(ds, from)), overdue_at(from)?).end()?;
        let major = when(col("level").eq(lit("major")), lit(1i64)).otherwise(lit(0i64))?;
        let keys = vec![
            major.alias("major"),
            now.alias("now"),
            before.alias("before"),
        ];
        let groups = grouped(ds, TableKind::Hazards, filter, keys)
            .await?
            .collect()
            .await?;
        return pairs(&groups, index, T, stride, |b, i| {
            let major = i64s(b, "major")?.value(i) as u64;
            let key = |window: u64, d: &Int64Array| {
                (!d.is_null(i)).then(|| (window * 2 + major) * days + (d.value(i) + 1) as u64)
            };
            Ok([key(0, &i64s(b, "now")?), key(1, &i64s(b, "before")?)])
        });
    }
    let columns = [
        "site",
        "cell",
        "level",
        "reported_at",
        "closed_at",
        "due_at",
    ];
    let filter = of_site(col("reported_at").lt(ts_lit(ds, to)));
    let tally = tally_by_cell(
        partitions(ds, TableKind::Hazards, &columns, filter).await?,
        index,
        T,
        index.len() as u64 * stride,
        move |b, keys, tally| {
            let mut major = Vec::new();
            let is_major = |v: Option<&str>| u64::from(v == Some("major"));
            codes(column(b, T, "level")?, T, "level", is_major, &mut major)?;
            let (reported, rn) = times(b, T, "reported_at")?;
            let (closed, cn) = times(b, T, "closed_at")?;
            let (due, dn) = times(b, T, "due_at")?;
            for i in 0..b.num_rows() {
                let k = keys[i];
                if k == NO_CELL || rn.is_some_and(|n| n.is_null(i)) || reported[i] >= to {
                    continue;
                }
                let was_closed = cn.is_none_or(|n| n.is_valid(i));
                let has_due = dn.is_none_or(|n| n.is_valid(i));
                for (window, at) in [(0u64, to), (1, from)] {
                    if reported[i] >= at || (was_closed && closed[i] < at) {
                        continue;
                    }
                    let d = if has_due && due[i] < at {
                        let d = (at - due[i]) / DAY_US;
                        cap_day.map_or(d, |c| d.min(c))
                    } else {
                        -1
                    };
                    let sub = (window * 2 + major[i]) * days + (d + 1) as u64;
                    tally.add(u64::from(k) * stride + sub, 1);
                }
            }
            Ok(())
        },
    )
    .await?;
    Ok(tally.sorted())
}

/// The current window [from, to) (0) and the one of the same length before
/// it, [prev, from) (1), as event rows are counted in them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    pub(crate) prev: i64,
    pub(crate) from: i64,
    pub(crate) to: i64,
    /// Whether ages are counted (with decay); otherwise every age is 0.
    pub(crate) decays: bool,
}

impl Windows {
    /// The number of ages counted: whole days from a window's end.
    pub(crate) fn ages(self) -> u64 {
        if self.decays {
            ((self.to - self.from + DAY_US - 1) / DAY_US + 1) as u64
        } else {
            1
        }
    }

    /// The rows of a batch whose cell is known and whose instant `t` lies in
    /// one of the windows: (row, cell number, window, age in whole days from
    /// that window's end).
    pub(crate) fn rows<'a>(
        self,
        cells: &'a [u32],
        t: &'a [i64],
        nulls: Option<&'a arrow::buffer::NullBuffer>,
    ) -> impl Iterator<Item = (usize, u64, u64, u64)> + 'a {
        (0..cells.len()).filter_map(move |i| {
            let (k, t) = (cells[i], t[i]);
            if k == crate::session::scan::NO_CELL
                || nulls.is_some_and(|n| n.is_null(i))
                || t < self.prev
                || t >= self.to
            {
                return None;
            }
            let (win, end) = if t >= self.from {
                (0, self.to)
            } else {
                (1, self.from)
            };
            let age = if self.decays {
                ((end - t) / DAY_US) as u64
            } else {
                0
            };
            Some((i, u64::from(k), win, age))
        })
    }
}

/// Add episodes (alarm episodes, intrusions) to the evidence of their cells,
/// each `weight`, decayed by the age of its start.
pub(crate) fn add_episodes(
    out: &mut BTreeMap<CellKey, Evidence>,
    b: &RecordBatch,
    start: &str,
    to: i64,
    o: &RiskOptions,
    weight: f64,
    field: impl Fn(&mut Evidence) -> &mut f64,
) -> Result<()> {
    let (s, c) = (strings(b, "site")?, strings(b, "cell")?);
    let t = b
        .column_by_name(start)
        .and_then(|a| {
            a.as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
        })
        .ok_or_else(|| Error::schema("risk", format!("column `{start}` is not a timestamp")))?;
    for i in 0..b.num_rows() {
        let Some(key) = key(&s, &c, i) else { continue };
        let age = (to - t.value(i)).div_euclid(DAY_US);
        *field(out.entry(key).or_default()) += weight * decay(age, o.half_life_days);
    }
    Ok(())
}

pub(crate) fn key(s: &StringArray, c: &StringArray, i: usize) -> Option<CellKey> {
    (!s.is_null(i) && !c.is_null(i)).then(|| (s.value(i).to_string(), c.value(i).to_string()))
}

/// One cell of the plan.
#[derive(Debug, Clone)]
pub(crate) struct PlanCell {
    pub(crate) site: String,
    pub(crate) zone: String,
    pub(crate) cell: String,
    pub(crate) row: i32,
    pub(crate) col: i32,
    pub(crate) owner: Option<String>,
    pub(crate) lec: Option<f64>,
    pub(crate) ls: Option<f64>,
}

pub(crate) fn plan(ds: &Dataset, site: Option<&str>) -> Result<Vec<PlanCell>> {
    let mut out = Vec::new();
    for b in ds.batches(TableKind::Cells) {
        let (s, z, c, owner) = (
            strings(b, "site")?,
            strings(b, "zone")?,
            strings(b, "cell")?,
            strings(b, "owner")?,
        );
        let (row, colv) = (ints(b, "row")?, ints(b, "col")?);
        let f = |n: &str| {
            b.column_by_name(n)
                .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned())
        };
        let (l, e, cc) = (f("lec_l"), f("lec_e"), f("lec_c"));
        let (ll, ss) = (ints(b, "ls_l")?, ints(b, "ls_s")?);
        for i in 0..b.num_rows() {
            if site.is_some_and(|x| x != s.value(i)) {
                continue;
            }
            let lec = match (&l, &e, &cc) {
                (Some(l), Some(e), Some(c)) if !l.is_null(i) && !e.is_null(i) && !c.is_null(i) => {
                    Some(l.value(i) * e.value(i) * c.value(i))
                }
                _ => None,
            };
            let ls =
                (!ll.is_null(i) && !ss.is_null(i)).then(|| f64::from(ll.value(i) * ss.value(i)));
            out.push(PlanCell {
                site: s.value(i).to_string(),
                zone: z.value(i).to_string(),
                cell: c.value(i).to_string(),
                row: row.value(i),
                col: colv.value(i),
                owner: (!owner.is_null(i)).then(|| owner.value(i).to_string()),
                lec,
                ls,
            });
        }
    }
    out.sort_by(|a, b| (&a.site, a.row, a.col).cmp(&(&b.site, b.row, b.col)));
    Ok(out)
}

/// The exposure rows overlapping [from, to), in a fixed order (the sums
/// over them are the same whatever order the files or partitions are read
/// in): site, zone, start and end (µs), hours.
pub(crate) type ExposureRow = (String, Option<String>, i64, i64, f64);

/// Read the exposure rows overlapping [from, to) (see [`ExposureRow`]).
pub(crate) async fn exposure_rows(ds: &Dataset, from: i64, to: i64) -> Result<Vec<ExposureRow>> {
    let (s0, s1) = (
        cast(col("period_start"), DataType::Int64),
        cast(col("period_end"), DataType::Int64),
    );
    let batches = ds
        .table(TableKind::Exposure)
        .await?
        .filter(s1.clone().gt(lit(from)).and(s0.clone().lt(lit(to))))?
        .select(vec![
            col("site"),
            col("zone"),
            s0.alias("period_start"),
            s1.alias("period_end"),
            col("hours_worked"),
        ])?
        .sort_by(vec![
            col("site"),
            col("zone"),
            col("period_start"),
            col("period_end"),
            col("hours_worked"),
        ])?
        .collect()
        .await?;
    let mut out = vec![];
    for b in &batches {
        let (s, z) = (strings(b, "site")?, strings(b, "zone")?);
        let ts = |n: &str| -> Result<Int64Array> { i64s(b, n) };
        let (p0, p1) = (ts("period_start")?, ts("period_end")?);
        let hours = b
            .column_by_name("hours_worked")
            .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned())
            .ok_or_else(|| Error::schema("exposure", "hours_worked"))?;
        for i in 0..b.num_rows() {
            out.push((
                s.value(i).to_string(),
                (!z.is_null(i)).then(|| z.value(i).to_string()),
                p0.value(i),
                p1.value(i),
                hours.value(i),
            ));
        }
    }
    Ok(out)
}

/// Hours worked per cell in [from, to): each exposure row's hours times the
/// share of its period inside the window, spread evenly over the cells of
/// its zone (or of its site when the row has no zone).
pub(crate) async fn hours_per_cell(
    ds: &Dataset,
    cells: &[PlanCell],
    from: i64,
    to: i64,
) -> Result<BTreeMap<CellKey, f64>> {
    Ok(spread_hours(
        &exposure_rows(ds, from, to).await?,
        cells,
        from,
        to,
    ))
}

/// [`hours_per_cell`] of exposure rows already read.
pub(crate) fn spread_hours(
    rows: &[ExposureRow],
    cells: &[PlanCell],
    from: i64,
    to: i64,
) -> BTreeMap<CellKey, f64> {
    let mut per_zone: BTreeMap<(String, Option<String>), f64> = BTreeMap::new();
    for (site, zone, a, e, hours) in rows {
        let (a, e) = (*a, *e);
        if e <= a {
            continue;
        }
        let overlap = (e.min(to) - a.max(from)).max(0) as f64 / (e - a) as f64;
        if overlap > 0.0 {
            *per_zone.entry((site.clone(), zone.clone())).or_default() += hours * overlap;
        }
    }
    let mut zone_cells: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for c in cells {
        *zone_cells
            .entry((c.site.clone(), Some(c.zone.clone())))
            .or_default() += 1;
        *zone_cells.entry((c.site.clone(), None)).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for c in cells {
        let mut h = 0.0;
        for k in [
            (c.site.clone(), Some(c.zone.clone())),
            (c.site.clone(), None),
        ] {
            if let (Some(hours), Some(n)) = (per_zone.get(&k), zone_cells.get(&k)) {
                h += hours / *n as f64;
            }
        }
        out.insert((c.site.clone(), c.cell.clone()), h);
    }
    out
}
