//! The risk four-colour map (风险四色图): a level per cell — red / orange /
//! yellow / blue (重大 / 较大 / 一般 / 低) — from the static assessment of the
//! site plan (LEC or LS) and the dynamic evidence of a time window, with the
//! contribution of every component, the level from each source and the
//! trend against the previous window of equal length.
//!
//! Evidence is aggregated by DataFusion plans (per cell, severity and day of
//! age); weights, decay, exposure and the empirical-Bayes smoothing run on
//! those small aggregates. See `docs/analyses.md` for the rules and defaults.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, cast, col, lit};
use serde::{Deserialize, Serialize};

use crate::model::options::RiskWeights;
use crate::model::options::RollUp;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::session::window::resolve_window;
use crate::util::columns::ints;
use crate::util::columns::strings;
use crate::util::columns::{f64s, i64s};
use crate::util::error::{Error, Result};

const DAY_US: i64 = 86_400_000_000;

/// The four risk levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 低风险.
    Blue,
    /// 一般风险.
    Yellow,
    /// 较大风险.
    Orange,
    /// 重大风险.
    Red,
}

impl Level {
    /// Canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Blue => "blue",
            Level::Yellow => "yellow",
            Level::Orange => "orange",
            Level::Red => "red",
        }
    }

    /// Chinese name.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Blue => "低风险",
            Level::Yellow => "一般风险",
            Level::Orange => "较大风险",
            Level::Red => "重大风险",
        }
    }

    /// Map colour.
    pub fn color(self) -> &'static str {
        match self {
            Level::Blue => "#2b6cb0",
            Level::Yellow => "#f6e05e",
            Level::Orange => "#ed8936",
            Level::Red => "#c53030",
        }
    }
}

/// A banding table: the first band whose threshold the value reaches gives
/// the level; values below every band are blue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandTable {
    /// Name and version written beside every level it produces.
    pub name: String,
    /// (threshold, level), highest threshold first.
    pub bands: Vec<(f64, Level)>,
    /// Whether a value equal to a threshold belongs to the band above it
    /// (true: `value >= threshold`) or below it (false: `value > threshold`).
    pub boundary_above: bool,
}

impl BandTable {
    /// The LEC table of the domain brief: D > 320 red, 160–320 orange,
    /// 70–160 yellow, below 70 blue; a boundary value belongs to the band below.
    pub fn lec_default() -> BandTable {
        BandTable {
            name: "LEC D=L×E×C: >320 red, >160 orange, >70 yellow (v1)".into(),
            bands: vec![
                (320.0, Level::Red),
                (160.0, Level::Orange),
                (70.0, Level::Yellow),
            ],
            boundary_above: false,
        }
    }

    /// The LS matrix of the domain brief: R = L × S, 20–25 red, 15–16 orange,
    /// 9–12 yellow, 1–8 blue.
    pub fn ls_default() -> BandTable {
        BandTable {
            name: "LS R=L×S: ≥20 red, ≥15 orange, ≥9 yellow (v1)".into(),
            bands: vec![
                (20.0, Level::Red),
                (15.0, Level::Orange),
                (9.0, Level::Yellow),
            ],
            boundary_above: true,
        }
    }

    /// Dynamic bands on the ratio of a cell's smoothed rate to the mean.
    pub fn dynamic_default() -> BandTable {
        BandTable {
            name: "rate ratio: ≥3 red, ≥2 orange, ≥1.25 yellow (v1)".into(),
            bands: vec![
                (3.0, Level::Red),
                (2.0, Level::Orange),
                (1.25, Level::Yellow),
            ],
            boundary_above: true,
        }
    }

    /// The level of a value.
    pub fn level(&self, v: f64) -> Level {
        for (t, l) in &self.bands {
            if (self.boundary_above && v >= *t) || (!self.boundary_above && v > *t) {
                return *l;
            }
        }
        Level::Blue
    }

    fn check(&self, option: &str) -> Result<()> {
        if self.bands.windows(2).any(|w| w[0].0 < w[1].0)
            || self.bands.iter().any(|b| !b.0.is_finite())
        {
            return Err(Error::option(
                option,
                "bands must be finite thresholds, highest first",
            ));
        }
        Ok(())
    }
}

/// How the final level combines the two sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelRule {
    /// The higher of the static and the dynamic level (就高原则).
    Max,
    /// The static assessment only (dynamic where a cell has none).
    Static,
    /// The dynamic evidence only.
    Dynamic,
}

/// Options of [`risk_map`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskOptions {
    /// Window start, local time, inclusive (default: 90 days before `to`).
    pub from: Option<String>,
    /// Window end, local time, exclusive (default: the day after the latest
    /// incident, hazard or violation).
    pub to: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Evidence weights.
    pub weights: RiskWeights,
    /// Exponential decay of event weights with this half-life in days,
    /// counted back from `to` (none by default).
    pub half_life_days: Option<f64>,
    /// Normalise by hours worked (per 1,000 h) where exposure is known.
    pub per_exposure: bool,
    /// Prior strength of the empirical-Bayes smoothing in hours (default:
    /// estimated from the data by the method of moments).
    pub prior_hours: Option<f64>,
    /// Static bands for LEC assessments.
    pub lec_bands: BandTable,
    /// Static bands for LS assessments.
    pub ls_bands: BandTable,
    /// Dynamic bands on the rate ratio.
    pub dynamic_bands: BandTable,
    /// How the final level is chosen.
    pub rule: LevelRule,
    /// Rows per cell, zone or site.
    pub by: RollUp,
}

impl Default for RiskOptions {
    fn default() -> Self {
        RiskOptions {
            from: None,
            to: None,
            site: None,
            weights: RiskWeights::default(),
            half_life_days: None,
            per_exposure: true,
            prior_hours: None,
            lec_bands: BandTable::lec_default(),
            ls_bands: BandTable::ls_default(),
            dynamic_bands: BandTable::dynamic_default(),
            rule: LevelRule::Max,
            by: RollUp::Cell,
        }
    }
}

/// Evidence of one cell in one window.
#[derive(Debug, Clone, Default, PartialEq)]
struct Evidence {
    injuries: f64,
    near_misses: f64,
    open_hazards: f64,
    overdue_hazards: f64,
    violations: f64,
    alarms: f64,
    intrusions: f64,
}

impl Evidence {
    fn total(&self) -> f64 {
        self.injuries
            + self.near_misses
            + self.open_hazards
            + self.overdue_hazards
            + self.violations
            + self.alarms
            + self.intrusions
    }
}

type CellKey = (String, String);

fn decay(age_days: i64, half_life: Option<f64>) -> f64 {
    match half_life {
        Some(h) => 0.5f64.powf(age_days.max(0) as f64 / h),
        None => 1.0,
    }
}

fn ts_lit(ds: &Dataset, micros: i64) -> Expr {
    lit(datafusion::common::ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some(ds.timezone().into()),
    ))
}

/// The severities of incidents in the order their weights are summed.
const SEVERITIES: [&str; 5] = ["fatal", "first_aid", "minor", "near_miss", "serious"];

/// Evidence per cell for the window [from, to) (`[0]`) and for the window
/// of the same length before it (`[1]`), read in one scan per table: every
/// row is counted for the window it falls in (hazards for each window end
/// they are open at), with its age in whole days from that window's end.
///
/// Rows are counted by hand per cell of the plan (`cells`), window,
/// category and age, in parallel partitions; the weighted sums are then
/// taken over the counts in a fixed order, so they are the same, bit for
/// bit, on every run and however the rows were split.
async fn evidence(
    ds: &Dataset,
    cells: &[PlanCell],
    from: i64,
    to: i64,
    site: Option<&str>,
    o: &RiskOptions,
) -> Result<[BTreeMap<CellKey, Evidence>; 2]> {
    use crate::session::scan::{
        CellIndex, NO_CELL, codes, column, partitions, tally_by_cell, times,
    };
    let w = &o.weights;
    let prev = from - (to - from);
    let index = Arc::new(CellIndex::new(
        cells.iter().map(|c| (c.site.as_str(), c.cell.as_str())),
    ));
    let n_cells = index.len() as u64;
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
    // Incidents: per cell, window, severity and age.
    let inc_stride = 2 * SEVERITIES.len() as u64 * ages;
    let inc = tally_by_cell(
        partitions(
            ds,
            TableKind::Incidents,
            &["site", "cell", "severity", "occurred_at"],
            of_site(
                col("occurred_at")
                    .gt_eq(ts_lit(ds, prev))
                    .and(col("occurred_at").lt(ts_lit(ds, to))),
            ),
        )
        .await?,
        &index,
        "incidents",
        n_cells * inc_stride,
        move |b, keys, tally| {
            const T: &str = "incidents";
            let mut sev = Vec::new();
            let severity = |v: Option<&str>| {
                v.and_then(|v| SEVERITIES.iter().position(|s| *s == v))
                    .unwrap_or(0) as u64
            };
            codes(column(b, T, "severity")?, T, "severity", severity, &mut sev)?;
            let (t, nulls) = times(b, T, "occurred_at")?;
            for (i, k, win, age) in windows.rows(keys, t, nulls) {
                let sub = (win * SEVERITIES.len() as u64 + sev[i]) * ages + age;
                tally.add(k * inc_stride + sub, 1);
            }
            Ok(())
        },
    );
    // Violations: per cell, window and age.
    let vio_stride = 2 * ages;
    let vio = tally_by_cell(
        partitions(
            ds,
            TableKind::Violations,
            &["site", "cell", "detected_at"],
            of_site(
                col("detected_at")
                    .gt_eq(ts_lit(ds, prev))
                    .and(col("detected_at").lt(ts_lit(ds, to))),
            ),
        )
        .await?,
        &index,
        "violations",
        n_cells * vio_stride,
        move |b, keys, tally| {
            let (t, nulls) = times(b, "violations", "detected_at")?;
            for (_, k, win, age) in windows.rows(keys, t, nulls) {
                tally.add(k * vio_stride + win * ages + age, 1);
            }
            Ok(())
        },
    );
    // Hazards open at each window end (reported before it, not closed by
    // it), per cell, level and days overdue then. Past the day the factor
    // reaches its cap every day weighs the same: those days are counted as
    // that one day (fewer counts, same weights).
    let cap_day = ((w.overdue_cap - 1.0) / w.overdue_growth_per_day).ceil() + 1.0;
    let cap_day = (cap_day.is_finite() && (0.0..1e6).contains(&cap_day)).then_some(cap_day as i64);
    // Days overdue run from -1 (not overdue) up.
    let days = cap_day.map_or(1u64 << 32, |c| c as u64 + 2);
    let haz_stride = 2 * 2 * days;
    let haz = tally_by_cell(
        partitions(
            ds,
            TableKind::Hazards,
            &[
                "site",
                "cell",
                "level",
                "reported_at",
                "closed_at",
                "due_at",
            ],
            of_site(col("reported_at").lt(ts_lit(ds, to))),
        )
        .await?,
        &index,
        "hazards",
        n_cells * haz_stride,
        move |b, keys, tally| {
            const T: &str = "hazards";
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
                    tally.add(u64::from(k) * haz_stride + sub, 1);
                }
            }
            Ok(())
        },
    );
    // The three tables are read together.
    let (inc, vio, haz) = futures::try_join!(inc, vio, haz)?;
    let mut out: [BTreeMap<CellKey, Evidence>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let key = |k: u64| -> CellKey {
        let c = &cells[index.position(k)];
        (c.site.clone(), c.cell.clone())
    };
    for (i, n) in inc.sorted() {
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
    for (i, n) in vio.sorted() {
        let (k, sub) = (i / vio_stride, i % vio_stride);
        let (win, age) = (sub / ages, sub % ages);
        out[win as usize].entry(key(k)).or_default().violations +=
            n as f64 * decay(age as i64, o.half_life_days) * w.violation;
    }
    for (i, n) in haz.sorted() {
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
        ..Default::default()
    };
    for (k, (a, b)) in [(from, to), (prev, from)].into_iter().enumerate() {
        if w.alarm_episode != 0.0 {
            let eps =
                crate::analysis::followup::episodes::alarm_episodes_in(ds, &follow, a, b).await?;
            add_episodes(&mut out[k], &eps, "start", b, o, w.alarm_episode, |e| {
                &mut e.alarms
            })?;
        }
        if w.intrusion != 0.0 {
            let eps =
                crate::analysis::followup::episodes::fence_intrusions_in(ds, &follow, a, b).await?;
            add_episodes(&mut out[k], &eps, "entry", b, o, w.intrusion, |e| {
                &mut e.intrusions
            })?;
        }
    }
    Ok(out)
}

/// The current window [from, to) (0) and the one of the same length before
/// it, [prev, from) (1), as event rows are counted in them.
#[derive(Debug, Clone, Copy)]
struct Windows {
    prev: i64,
    from: i64,
    to: i64,
    /// Whether ages are counted (with decay); otherwise every age is 0.
    decays: bool,
}

impl Windows {
    /// The number of ages counted: whole days from a window's end.
    fn ages(self) -> u64 {
        if self.decays {
            ((self.to - self.from + DAY_US - 1) / DAY_US + 1) as u64
        } else {
            1
        }
    }

    /// The rows of a batch whose cell is known and whose instant `t` lies in
    /// one of the windows: (row, cell number, window, age in whole days from
    /// that window's end).
    fn rows<'a>(
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
fn add_episodes(
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

fn key(s: &StringArray, c: &StringArray, i: usize) -> Option<CellKey> {
    (!s.is_null(i) && !c.is_null(i)).then(|| (s.value(i).to_string(), c.value(i).to_string()))
}

/// One cell of the plan.
#[derive(Debug, Clone)]
struct PlanCell {
    site: String,
    zone: String,
    cell: String,
    row: i32,
    col: i32,
    owner: Option<String>,
    lec: Option<f64>,
    ls: Option<f64>,
}

fn plan(ds: &Dataset, site: Option<&str>) -> Result<Vec<PlanCell>> {
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

/// Hours worked per cell in [from, to): each exposure row's hours times the
/// share of its period inside the window, spread evenly over the cells of
/// its zone (or of its site when the row has no zone).
async fn hours_per_cell(
    ds: &Dataset,
    cells: &[PlanCell],
    from: i64,
    to: i64,
) -> Result<BTreeMap<CellKey, f64>> {
    let mut per_zone: BTreeMap<(String, Option<String>), f64> = BTreeMap::new();
    // The rows overlapping the window, in a fixed order: the sums are the
    // same whatever order the files or partitions are read in.
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
    for b in &batches {
        let (s, z) = (strings(b, "site")?, strings(b, "zone")?);
        let ts = |n: &str| -> Result<Int64Array> { i64s(b, n) };
        let (p0, p1) = (ts("period_start")?, ts("period_end")?);
        let hours = b
            .column_by_name("hours_worked")
            .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned())
            .ok_or_else(|| Error::schema("exposure", "hours_worked"))?;
        for i in 0..b.num_rows() {
            let (a, e) = (p0.value(i), p1.value(i));
            if e <= a {
                continue;
            }
            let overlap = (e.min(to) - a.max(from)).max(0) as f64 / (e - a) as f64;
            if overlap > 0.0 {
                *per_zone
                    .entry((
                        s.value(i).to_string(),
                        (!z.is_null(i)).then(|| z.value(i).to_string()),
                    ))
                    .or_default() += hours.value(i) * overlap;
            }
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
    Ok(out)
}

/// Empirical-Bayes (global, method of moments) smoothing of rates
/// `score / hours`: returns (mean rate m, smoothed rates). With prior
/// strength k hours the smoothed rate is (score + k·m) / (hours + k). By
/// default k = m / A, where A = Σh(r − m)² / Σh − m / h̄ is the between-cell
/// variance of the true rates (Marshall 1991), estimated from the reliably
/// measured cells — those with at least a tenth of the median hours — so that
/// the very cells smoothing is for cannot inflate it; A ≤ 0 means no
/// detectable variation and every cell gets m.
pub fn eb_smooth(
    scores: &[f64],
    hours: &[f64],
    prior_hours: Option<f64>,
) -> (f64, Vec<Option<f64>>) {
    let (sum_s, sum_h): (f64, f64) = scores
        .iter()
        .zip(hours)
        .filter(|(_, h)| **h > 0.0)
        .fold((0.0, 0.0), |a, (s, h)| (a.0 + s, a.1 + h));
    if sum_h <= 0.0 {
        return (0.0, vec![None; scores.len()]);
    }
    let m = sum_s / sum_h;
    let k = prior_hours.unwrap_or_else(|| {
        let mut positive: Vec<f64> = hours.iter().copied().filter(|h| *h > 0.0).collect();
        positive.sort_by(f64::total_cmp);
        let median = positive[positive.len() / 2];
        let reliable: Vec<(f64, f64)> = scores
            .iter()
            .zip(hours)
            .filter(|(_, h)| **h >= 0.1 * median)
            .map(|(s, h)| (*s, *h))
            .collect();
        let rel_h: f64 = reliable.iter().map(|(_, h)| h).sum();
        let var = reliable
            .iter()
            .map(|(s, h)| h * (s / h - m).powi(2))
            .sum::<f64>()
            / rel_h;
        let a = var - m / (rel_h / reliable.len() as f64);
        if a > 0.0 { m / a } else { f64::INFINITY }
    });
    let smoothed = scores
        .iter()
        .zip(hours)
        .map(|(s, h)| {
            if *h <= 0.0 {
                None
            } else if k.is_infinite() {
                Some(m)
            } else {
                Some((s + k * m) / (h + k))
            }
        })
        .collect();
    (m, smoothed)
}

/// The window, defaulting `to` to the day after the latest event and `from`
/// to 90 days before `to`.
async fn window(ds: &Dataset, o: &RiskOptions) -> Result<(i64, i64)> {
    resolve_window(ds, o.from.as_deref(), o.to.as_deref(), 90).await
}

/// The output schema of [`risk_map`] per cell.
pub fn risk_schema() -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    Arc::new(Schema::new(vec![
        f("site", DataType::Utf8, false),
        f("zone", DataType::Utf8, true),
        f("cell", DataType::Utf8, true),
        f("row", DataType::Int32, true),
        f("col", DataType::Int32, true),
        f("owner", DataType::Utf8, true),
        f("cells", DataType::Int32, false),
        f("c_injuries", DataType::Float64, false),
        f("c_near_misses", DataType::Float64, false),
        f("c_open_hazards", DataType::Float64, false),
        f("c_overdue_hazards", DataType::Float64, false),
        f("c_violations", DataType::Float64, false),
        f("c_alarms", DataType::Float64, false),
        f("c_intrusions", DataType::Float64, false),
        f("score", DataType::Float64, false),
        f("hours", DataType::Float64, true),
        f("rate_per_1000h", DataType::Float64, true),
        f("smoothed_per_1000h", DataType::Float64, true),
        f("ratio", DataType::Float64, true),
        f("dynamic_level", DataType::Utf8, false),
        f("dynamic_table", DataType::Utf8, false),
        f("static_method", DataType::Utf8, true),
        f("static_value", DataType::Float64, true),
        f("static_level", DataType::Utf8, true),
        f("static_table", DataType::Utf8, true),
        f("level", DataType::Utf8, false),
        f("level_source", DataType::Utf8, false),
        f("previous_score", DataType::Float64, false),
        f("change_pct", DataType::Float64, true),
        f("trend", DataType::Utf8, false),
        f("red_cells", DataType::Int32, false),
        f("orange_cells", DataType::Int32, false),
        f("yellow_cells", DataType::Int32, false),
        f("blue_cells", DataType::Int32, false),
        f("hotspot_z", DataType::Float64, true),
        f("hotspot", DataType::Utf8, true),
    ]))
}

struct Row {
    site: String,
    zone: Option<String>,
    cell: Option<String>,
    row: Option<i32>,
    col: Option<i32>,
    owner: Option<String>,
    cells: i32,
    ev: Evidence,
    hours: Option<f64>,
    rate: Option<f64>,
    smoothed: Option<f64>,
    ratio: Option<f64>,
    dynamic: Level,
    dynamic_table: String,
    static_method: Option<&'static str>,
    static_value: Option<f64>,
    static_level: Option<Level>,
    static_table: Option<String>,
    level: Level,
    source: &'static str,
    previous: f64,
    counts: [i32; 4],
    hotspot_z: Option<f64>,
    hotspot: Option<&'static str>,
}

/// The four-colour risk map.
///
/// One row per cell (or zone, or site with `by`), ordered by site, row,
/// column. Columns: the cell; `cells` (cells rolled up); the contribution of
/// every component (`c_injuries` weighted by severity, `c_near_misses`,
/// `c_open_hazards`, `c_overdue_hazards`, `c_violations`, `c_alarms`,
/// `c_intrusions`) and their sum
/// `score`; `hours` worked in the window, `rate_per_1000h` = score per 1,000
/// hours, its empirical-Bayes `smoothed_per_1000h` and the `ratio` of that to
/// the mean rate of all cells; `dynamic_level` from the ratio by
/// `dynamic_table`; `static_method` (`lec` / `ls`), `static_value` (D or R),
/// `static_level` and the `static_table` that produced it; the final `level`
/// and its `level_source` (`static`, `dynamic` or `both`); the
/// `previous_score` of the window of equal length before, `change_pct` and
/// `trend` (`up` / `down` beyond ±10 %, else `flat`; `new` from zero); and the
/// number of cells at each level.
pub async fn risk_map(ds: &Dataset, o: &RiskOptions) -> Result<DataFrame> {
    let b = risk_batch(ds, o).await?;
    Ok(ds.context().read_batch(b)?)
}

/// [`risk_map`] as a collected batch.
pub async fn risk_batch(ds: &Dataset, o: &RiskOptions) -> Result<RecordBatch> {
    for (name, t) in [
        ("lec_bands", &o.lec_bands),
        ("ls_bands", &o.ls_bands),
        ("dynamic_bands", &o.dynamic_bands),
    ] {
        t.check(name)?;
    }
    if o.half_life_days
        .is_some_and(|h| !(h > 0.0 && h.is_finite()))
    {
        return Err(Error::option(
            "half_life_days",
            "must be a positive number of days",
        ));
    }
    let (from, to) = window(ds, o).await?;
    let cells = plan(ds, o.site.as_deref())?;
    let [now, before] = evidence(ds, &cells, from, to, o.site.as_deref(), o).await?;
    let hours = if o.per_exposure {
        hours_per_cell(ds, &cells, from, to).await?
    } else {
        BTreeMap::new()
    };
    let scores: Vec<f64> = cells
        .iter()
        .map(|c| {
            now.get(&(c.site.clone(), c.cell.clone()))
                .map_or(0.0, Evidence::total)
        })
        .collect();
    let h: Vec<f64> = cells
        .iter()
        .map(|c| {
            hours
                .get(&(c.site.clone(), c.cell.clone()))
                .copied()
                .unwrap_or(0.0)
        })
        .collect();
    let (m, smoothed) = eb_smooth(&scores, &h, o.prior_hours);
    let mean_score = if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    };
    let mut rows: Vec<Row> = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        let key = (c.site.clone(), c.cell.clone());
        let ev = now.get(&key).cloned().unwrap_or_default();
        let has_hours = h[i] > 0.0;
        let ratio = if has_hours {
            smoothed[i].map(|s| if m > 0.0 { s / m } else { 0.0 })
        } else if !o.per_exposure || hours.values().all(|v| *v <= 0.0) {
            Some(if mean_score > 0.0 {
                scores[i] / mean_score
            } else {
                0.0
            })
        } else {
            None
        };
        let dynamic = ratio.map_or(Level::Blue, |r| o.dynamic_bands.level(r));
        let (method, value, table) = match (c.lec, c.ls) {
            (Some(d), _) => (Some("lec"), Some(d), Some(&o.lec_bands)),
            (None, Some(r)) => (Some("ls"), Some(r), Some(&o.ls_bands)),
            _ => (None, None, None),
        };
        let static_level = value.zip(table).map(|(v, t)| t.level(v));
        let (level, source) = match (o.rule, static_level) {
            (LevelRule::Dynamic, _) | (_, None) => (dynamic, "dynamic"),
            (LevelRule::Static, Some(s)) => (s, "static"),
            (LevelRule::Max, Some(s)) => match s.cmp(&dynamic) {
                std::cmp::Ordering::Greater => (s, "static"),
                std::cmp::Ordering::Less => (dynamic, "dynamic"),
                std::cmp::Ordering::Equal => (s, "both"),
            },
        };
        let mut counts = [0; 4];
        counts[3 - level as usize] = 1;
        rows.push(Row {
            site: c.site.clone(),
            zone: Some(c.zone.clone()),
            cell: Some(c.cell.clone()),
            row: Some(c.row),
            col: Some(c.col),
            owner: c.owner.clone(),
            cells: 1,
            hours: has_hours.then_some(h[i]),
            rate: has_hours.then(|| scores[i] / h[i] * 1000.0),
            smoothed: if has_hours {
                smoothed[i].map(|s| s * 1000.0)
            } else {
                None
            },
            ratio,
            dynamic,
            dynamic_table: o.dynamic_bands.name.clone(),
            static_method: method,
            static_value: value,
            static_level,
            static_table: table.map(|t| t.name.clone()),
            level,
            source,
            previous: before.get(&key).map_or(0.0, Evidence::total),
            ev,
            counts,
            hotspot_z: None,
            hotspot: None,
        });
    }
    mark_hotspots(&mut rows);
    let rows = match o.by {
        RollUp::Cell => rows,
        RollUp::Zone => roll_up(rows, true, m),
        RollUp::Site => roll_up(rows, false, m),
    };
    build(rows)
}

/// Hot-spot markers: Gi* (queen contiguity, binary weights, cell included)
/// on the cells' scores of each site, Benjamini–Hochberg over all cells, the
/// class as in [`crate::analysis::spatial::hotspots`] (`hot_99` … `cold_99`, `not_significant`).
fn mark_hotspots(rows: &mut [Row]) {
    let mut p_all: Vec<Option<f64>> = vec![None; rows.len()];
    let mut z_all: Vec<Option<f64>> = vec![None; rows.len()];
    let mut by_site: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_site.entry(r.site.clone()).or_default().push(i);
    }
    for idx in by_site.values() {
        let at: BTreeMap<(i32, i32), usize> = idx
            .iter()
            .enumerate()
            .filter_map(|(k, &i)| Some(((rows[i].row?, rows[i].col?), k)))
            .collect();
        let nb: Vec<Vec<usize>> = idx
            .iter()
            .map(|&i| {
                let (Some(r), Some(c)) = (rows[i].row, rows[i].col) else {
                    return Vec::new();
                };
                (-1..=1)
                    .flat_map(|dr| (-1..=1).map(move |dc| (dr, dc)))
                    .filter(|&(dr, dc)| dr != 0 || dc != 0)
                    .filter_map(|(dr, dc)| at.get(&(r + dr, c + dc)).copied())
                    .collect()
            })
            .collect();
        let y: Vec<f64> = idx.iter().map(|&i| rows[i].ev.total()).collect();
        let gi = crate::analysis::spatial::hotspots::gi_star(
            &y,
            &nb,
            crate::analysis::spatial::hotspots::Transform::Binary,
            0,
            0,
        );
        for (k, &i) in idx.iter().enumerate() {
            z_all[i] = gi[k].z;
            p_all[i] = if gi[k].neighbors > 0 {
                gi[k].z.map(crate::util::stats::two_sided_p)
            } else {
                None
            };
        }
    }
    let q = crate::util::stats::benjamini_hochberg(&p_all);
    for (i, r) in rows.iter_mut().enumerate() {
        r.hotspot_z = z_all[i];
        r.hotspot = Some(match (z_all[i], q[i]) {
            (Some(z), Some(q)) if q <= 0.01 => {
                if z > 0.0 {
                    "hot_99"
                } else {
                    "cold_99"
                }
            }
            (Some(z), Some(q)) if q <= 0.05 => {
                if z > 0.0 {
                    "hot_95"
                } else {
                    "cold_95"
                }
            }
            (Some(z), Some(q)) if q <= 0.10 => {
                if z > 0.0 {
                    "hot_90"
                } else {
                    "cold_90"
                }
            }
            _ => "not_significant",
        });
    }
}

/// Zone or site rows: evidence and hours summed, the level of the worst cell
/// (a zone with a red cell is red), counts of cells per level.
fn roll_up(rows: Vec<Row>, by_zone: bool, m: f64) -> Vec<Row> {
    let mut groups: BTreeMap<(String, Option<String>), Row> = BTreeMap::new();
    for r in rows {
        let k = (r.site.clone(), if by_zone { r.zone.clone() } else { None });
        let g = groups.entry(k.clone()).or_insert_with(|| Row {
            site: k.0.clone(),
            zone: k.1.clone(),
            cell: None,
            row: None,
            col: None,
            owner: None,
            cells: 0,
            ev: Evidence::default(),
            hours: None,
            rate: None,
            smoothed: None,
            ratio: None,
            dynamic: Level::Blue,
            dynamic_table: "worst cell".into(),
            static_method: None,
            static_value: None,
            static_level: None,
            static_table: None,
            level: Level::Blue,
            source: "cells",
            previous: 0.0,
            counts: [0; 4],
            hotspot_z: None,
            hotspot: None,
        });
        g.cells += 1;
        g.ev.injuries += r.ev.injuries;
        g.ev.near_misses += r.ev.near_misses;
        g.ev.open_hazards += r.ev.open_hazards;
        g.ev.overdue_hazards += r.ev.overdue_hazards;
        g.ev.violations += r.ev.violations;
        g.ev.alarms += r.ev.alarms;
        g.ev.intrusions += r.ev.intrusions;
        g.previous += r.previous;
        if let Some(h) = r.hours {
            g.hours = Some(g.hours.unwrap_or(0.0) + h);
        }
        g.dynamic = g.dynamic.max(r.dynamic);
        g.static_level = match (g.static_level, r.static_level) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        g.level = g.level.max(r.level);
        for i in 0..4 {
            g.counts[i] += r.counts[i];
        }
    }
    groups
        .into_values()
        .map(|mut g| {
            if let Some(h) = g.hours.filter(|h| *h > 0.0) {
                g.rate = Some(g.ev.total() / h * 1000.0);
                g.ratio = (m > 0.0).then(|| g.ev.total() / h / m);
            }
            g
        })
        .collect()
}

fn build(rows: Vec<Row>) -> Result<RecordBatch> {
    let f64s = |f: &dyn Fn(&Row) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float64Array>())
    };
    let strs = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let i32s = |f: &dyn Fn(&Row) -> Option<i32>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int32Array>())
    };
    let trend = |r: &Row| {
        let now = r.ev.total();
        if r.previous == 0.0 {
            if now > 0.0 { "new" } else { "flat" }
        } else if now > r.previous * 1.1 {
            "up"
        } else if now < r.previous * 0.9 {
            "down"
        } else {
            "flat"
        }
    };
    let cols: Vec<ArrayRef> = vec![
        strs(&|r| Some(r.site.clone())),
        strs(&|r| r.zone.clone()),
        strs(&|r| r.cell.clone()),
        i32s(&|r| r.row),
        i32s(&|r| r.col),
        strs(&|r| r.owner.clone()),
        i32s(&|r| Some(r.cells)),
        f64s(&|r| Some(r.ev.injuries)),
        f64s(&|r| Some(r.ev.near_misses)),
        f64s(&|r| Some(r.ev.open_hazards)),
        f64s(&|r| Some(r.ev.overdue_hazards)),
        f64s(&|r| Some(r.ev.violations)),
        f64s(&|r| Some(r.ev.alarms)),
        f64s(&|r| Some(r.ev.intrusions)),
        f64s(&|r| Some(r.ev.total())),
        f64s(&|r| r.hours),
        f64s(&|r| r.rate),
        f64s(&|r| r.smoothed),
        f64s(&|r| r.ratio),
        strs(&|r| Some(r.dynamic.name().to_string())),
        strs(&|r| Some(r.dynamic_table.clone())),
        strs(&|r| r.static_method.map(str::to_string)),
        f64s(&|r| r.static_value),
        strs(&|r| r.static_level.map(|l| l.name().to_string())),
        strs(&|r| r.static_table.clone()),
        strs(&|r| Some(r.level.name().to_string())),
        strs(&|r| Some(r.source.to_string())),
        f64s(&|r| Some(r.previous)),
        f64s(&|r| (r.previous > 0.0).then(|| (r.ev.total() - r.previous) / r.previous * 100.0)),
        strs(&|r| Some(trend(r).to_string())),
        i32s(&|r| Some(r.counts[0])),
        i32s(&|r| Some(r.counts[1])),
        i32s(&|r| Some(r.counts[2])),
        i32s(&|r| Some(r.counts[3])),
        f64s(&|r| r.hotspot_z),
        strs(&|r| r.hotspot.map(str::to_string)),
    ];
    Ok(RecordBatch::try_new(risk_schema(), cols)?)
}

/// The chart of a risk-map result: the grid for cell rows, none for roll-ups.
pub fn risk_chart(batch: &RecordBatch, o: &RiskOptions) -> Result<Option<String>> {
    match o.by {
        RollUp::Cell => risk_svg(batch, o.site.as_deref(), "Risk four-colour map").map(Some),
        _ => Ok(None),
    }
}

/// Render a cell-level risk map of one site (the first when `site` is
/// `None`) as an SVG grid in the four colours, each cell labelled with its
/// level in words and its score.
pub fn risk_svg(batch: &RecordBatch, site: Option<&str>, title: &str) -> Result<String> {
    let level = strings(batch, "level")?;
    let source = strings(batch, "level_source")?;
    let trend = strings(batch, "trend")?;
    let score = f64s(batch, "score")?;
    let hotspot = strings(batch, "hotspot").ok();
    let items = [Level::Red, Level::Orange, Level::Yellow, Level::Blue]
        .iter()
        .map(|l| (l.color().to_string(), format!("{} {}", l.zh(), l.name())))
        .collect();
    crate::charts::site_grid(
        std::slice::from_ref(batch),
        site,
        title,
        "cell label: level (▲ = statistically significant hot spot of the score, Gi* with FDR); number: evidence score in the window",
        items,
        |p| {
            let i = p.i;
            let l = match level.value(i) {
                "red" => Level::Red,
                "orange" => Level::Orange,
                "yellow" => Level::Yellow,
                _ => Level::Blue,
            };
            Ok(crate::charts::Look {
                value: score.value(i),
                text: format!("{:.0}", score.value(i)),
                title: format!(
                    "{}: {} ({}), score {:.1}, from {}, trend {}",
                    p.cell,
                    l.name(),
                    l.zh(),
                    score.value(i),
                    source.value(i),
                    trend.value(i)
                ),
                fill: Some(l.color().to_string()),
                suffix: Some(
                    match hotspot
                        .as_ref()
                        .filter(|h| !h.is_null(i))
                        .map(|h| h.value(i))
                    {
                        Some(h) if h.starts_with("hot_") => format!("{} ▲", l.zh()),
                        _ => l.zh().to_string(),
                    },
                ),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lec_boundaries_follow_the_table() {
        let t = BandTable::lec_default();
        assert_eq!(t.level(320.0), Level::Orange);
        assert_eq!(t.level(320.1), Level::Red);
        assert_eq!(t.level(160.0), Level::Yellow);
        assert_eq!(t.level(70.0), Level::Blue);
        assert_eq!(t.level(6.0 * 6.0 * 15.0), Level::Red);
        let mut above = t.clone();
        above.boundary_above = true;
        assert_eq!(above.level(320.0), Level::Red);
        let ls = BandTable::ls_default();
        assert_eq!(
            (
                ls.level(25.0),
                ls.level(16.0),
                ls.level(12.0),
                ls.level(8.0)
            ),
            (Level::Red, Level::Orange, Level::Yellow, Level::Blue)
        );
    }

    #[test]
    fn eb_shrinks_small_exposure_to_the_mean() {
        // 35 cells with 1,000 hours and 5–25 points (more spread than chance
        // alone), one cell with 3 hours and 2 points: a raw rate 40 times the
        // mean.
        let mut scores: Vec<f64> = (0..35).map(|i| 5.0 + 5.0 * f64::from(i % 5)).collect();
        let mut hours = vec![1000.0; 35];
        scores.push(2.0);
        hours.push(3.0);
        let (m, s) = eb_smooth(&scores, &hours, None);
        assert!((m - scores.iter().sum::<f64>() / 35_003.0).abs() < 1e-15);
        let tiny = s[35].unwrap();
        let top = s[..35].iter().flatten().copied().fold(0.0, f64::max);
        assert!(
            tiny < top,
            "the 3-hour cell ({tiny}) must not top the map ({top})"
        );
        // A fixed prior strength is applied as given.
        let (m2, s2) = eb_smooth(&scores, &hours, Some(500.0));
        assert!((s2[35].unwrap() - (2.0 + 500.0 * m2) / 503.0).abs() < 1e-15);
    }
}
