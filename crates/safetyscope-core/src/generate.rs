//! The deterministic sample-data generator: a group of units, each with two
//! workshops and a warehouse on a 6 × 6 grid of named cells, and a year of
//! incidents, hazards, violations, sensor readings, positions, exposure,
//! activities and targets. Known hot cells, high-risk hours, a repeat
//! violator per unit and sensor alarm episodes are planted and written to a
//! ground-truth record so that analyses can be tested for recall.
//!
//! Data is produced day by day and handed to a [`TableSink`] in batches, so
//! memory stays bounded at any `scale`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::model::schema::{ColType, TableKind};
use crate::model::time::{DEFAULT_TIMEZONE, local_to_micros, parse_tz};
use crate::util::error::{Error, Result};
use crate::util::rng::{Rng, cumulative};

/// Options of the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateOptions {
    /// Volume multiplier: 1.0 gives about 18,600 incidents and near misses in
    /// the year (23,000 in the year before), 9,400 hazards, 23,500
    /// violations, 210,000 readings and 480,000 position fixes for 12 units;
    /// row counts grow linearly with it.
    pub scale: f64,
    /// Random seed: the same seed and options give byte-identical data.
    pub seed: u64,
    /// Calendar year covered (the previous year's incidents are added at
    /// a 25 % higher rate so year-over-year targets have a baseline).
    pub year: i32,
    /// Number of units (sites).
    pub sites: usize,
    /// Dataset timezone.
    pub timezone: String,
    /// Plant hot cells (set false for a site with no cluster).
    pub plant_hot_cells: bool,
    /// Plant high-risk hours (set false for a flat hourly rate).
    pub plant_hours: bool,
    /// Rows per output batch.
    pub batch_rows: usize,
    /// Generate only these tables (default: all). The site plan is always
    /// written; skipped tables are written empty.
    pub only: Option<Vec<TableKind>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            scale: 1.0,
            seed: 42,
            year: 2025,
            sites: 12,
            timezone: DEFAULT_TIMEZONE.to_string(),
            plant_hot_cells: true,
            plant_hours: true,
            batch_rows: 65_536,
            only: None,
        }
    }
}

/// What was planted, for recall tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Generator options used.
    pub options: Option<GenerateOptions>,
    /// Cells with an elevated incident rate: `(site, cell)`.
    pub hot_cells: Vec<(String, String)>,
    /// Cell weight of the hot cells (other cells: uniform in 0.6–1.4).
    pub hot_cell_factor: f64,
    /// Local hours with an elevated rate on every day.
    pub high_risk_hours: Vec<u32>,
    /// `(weekday 0 = Monday, hour)` cells with an elevated rate.
    pub high_risk_weekday_hours: Vec<(u32, u32)>,
    /// Multiplier of the rate in the planted hours.
    pub hour_factor: f64,
    /// People planted without a helmet on consecutive days: `(site, person, first day, days)`.
    pub repeat_violators: Vec<(String, String, String, u32)>,
    /// Emerging hot spots planted in the incidents of the main year:
    /// `(site, cell, category)` with category `new` (hot in December only) or
    /// `diminishing` (hot all year with a falling rate).
    pub emerging: Vec<(String, String, String)>,
    /// Number of planted sensor alarm episodes.
    pub alarm_episodes: u64,
    /// Rows written per table.
    pub rows: BTreeMap<String, u64>,
}

/// Receives generated batches.
pub trait TableSink {
    /// Accept one batch of a table.
    fn write(&mut self, kind: TableKind, batch: RecordBatch) -> Result<()>;
}

/// A sink collecting batches in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Batches per table.
    pub tables: BTreeMap<TableKind, Vec<RecordBatch>>,
}

impl TableSink for MemorySink {
    fn write(&mut self, kind: TableKind, batch: RecordBatch) -> Result<()> {
        self.tables.entry(kind).or_default().push(batch);
        Ok(())
    }
}

/// One value of a generated row.
enum V<'a> {
    S(&'a str),
    F(f64),
    I(i32),
    B(bool),
    T(i64),
    N,
}

enum ColBuf {
    Text(StringBuilder),
    Float(Float64Builder),
    Int(Int32Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder),
}

struct Buf {
    kind: TableKind,
    tz: String,
    cols: Vec<ColBuf>,
    rows: usize,
    written: u64,
}

impl Buf {
    fn new(kind: TableKind, tz: &str) -> Buf {
        let mut b = Buf {
            kind,
            tz: tz.to_string(),
            cols: Vec::new(),
            rows: 0,
            written: 0,
        };
        b.reset();
        b
    }

    fn reset(&mut self) {
        self.cols = self
            .kind
            .def()
            .columns
            .iter()
            .map(|c| match c.ty {
                ColType::Text => ColBuf::Text(StringBuilder::new()),
                ColType::Float => ColBuf::Float(Float64Builder::new()),
                ColType::Int => ColBuf::Int(Int32Builder::new()),
                ColType::Bool => ColBuf::Bool(BooleanBuilder::new()),
                ColType::Timestamp => {
                    ColBuf::Ts(TimestampMicrosecondBuilder::new().with_timezone(self.tz.as_str()))
                }
            })
            .collect();
        self.rows = 0;
    }

    fn push(&mut self, row: &[V<'_>]) {
        debug_assert_eq!(row.len(), self.cols.len(), "{}", self.kind);
        for (c, v) in self.cols.iter_mut().zip(row) {
            match (c, v) {
                (ColBuf::Text(b), V::S(s)) => b.append_value(s),
                (ColBuf::Float(b), V::F(x)) => b.append_value(*x),
                (ColBuf::Int(b), V::I(x)) => b.append_value(*x),
                (ColBuf::Bool(b), V::B(x)) => b.append_value(*x),
                (ColBuf::Ts(b), V::T(x)) => b.append_value(*x),
                (ColBuf::Text(b), _) => b.append_null(),
                (ColBuf::Float(b), _) => b.append_null(),
                (ColBuf::Int(b), _) => b.append_null(),
                (ColBuf::Bool(b), _) => b.append_null(),
                (ColBuf::Ts(b), _) => b.append_null(),
            }
        }
        self.rows += 1;
    }

    fn flush(&mut self, sink: &mut dyn TableSink) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    ColBuf::Text(b) => Arc::new(b.finish()),
                    ColBuf::Float(b) => Arc::new(b.finish()),
                    ColBuf::Int(b) => Arc::new(b.finish()),
                    ColBuf::Bool(b) => Arc::new(b.finish()),
                    ColBuf::Ts(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.kind.def().arrow_schema(&self.tz), arrays)?;
        self.written += batch.num_rows() as u64;
        sink.write(self.kind, batch)?;
        self.reset();
        Ok(())
    }
}

const SURNAMES: &[&str] = &[
    "张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞",
];
const ZONES: [&str; 3] = ["workshop-1", "workshop-2", "warehouse"];

/// Incident categories and their shares in the sample.
const CATEGORIES: &[(&str, f64)] = &[
    ("struck_by_object", 0.20),
    ("machinery", 0.18),
    ("vehicle", 0.12),
    ("fall_from_height", 0.12),
    ("lifting", 0.08),
    ("burns", 0.05),
    ("electric_shock", 0.04),
    ("collapse", 0.03),
    ("fire", 0.02),
    ("poisoning_asphyxia", 0.02),
    ("other", 0.14),
];
const SEVERITY_SHARES: &[(&str, f64)] = &[
    ("near_miss", 0.62),
    ("first_aid", 0.25),
    ("minor", 0.11),
    ("serious", 0.0195),
    ("fatal", 0.0005),
];
const VIOLATION_KINDS: &[(&str, f64)] = &[
    ("no_helmet", 0.5),
    ("no_vest", 0.15),
    ("no_harness", 0.15),
    ("smoking", 0.1),
    ("intrusion", 0.1),
];

/// Site identifier of the i-th unit.
pub fn site_id(i: usize) -> String {
    format!("U{:02}", i + 1)
}

/// Cell identifier: site, row letter, column number (`U01-B3`).
pub fn cell_id(site: &str, row: usize, col: usize) -> String {
    format!("{site}-{}{}", (b'A' + row as u8) as char, col + 1)
}

/// Zone of a grid row: rows 0–1 workshop 1, 2–3 workshop 2, 4–5 warehouse.
pub fn zone_of(row: usize) -> &'static str {
    ZONES[row / 2]
}

fn person_name(rng: &mut Rng) -> String {
    format!(
        "{}{}{}",
        SURNAMES[rng.below(SURNAMES.len())],
        GIVEN[rng.below(GIVEN.len())],
        GIVEN[rng.below(GIVEN.len())]
    )
}

/// Relative headcount by local hour: day shift 08–20 full, night shift 20–08 half.
fn headcount_factor(hour: u32) -> f64 {
    if (8..20).contains(&hour) { 1.0 } else { 0.5 }
}

struct SitePlan {
    id: String,
    cell_cum: Vec<f64>,
    /// Incident cell weights per month (0–11) of the main year, where an
    /// emerging block changes them.
    month_cum: Option<Vec<Vec<f64>>>,
    restricted: Vec<usize>,
    persons: Vec<String>,
}

struct Gen<'a> {
    o: &'a GenerateOptions,
    tz: Tz,
    sink: &'a mut dyn TableSink,
    bufs: BTreeMap<TableKind, Buf>,
    truth: GroundTruth,
}

impl Gen<'_> {
    fn emit(&mut self, kind: TableKind, row: &[V<'_>]) -> Result<()> {
        let b = self.bufs.get_mut(&kind).expect("buffer for every table");
        b.push(row);
        if b.rows >= self.o.batch_rows {
            b.flush(self.sink)?;
        }
        Ok(())
    }

    fn ts(&self, t: NaiveDateTime) -> i64 {
        // Local times skipped by daylight saving move forward an hour.
        local_to_micros(&self.tz, t)
            .or_else(|| local_to_micros(&self.tz, t + Duration::hours(1)))
            .unwrap_or_else(|| t.and_utc().timestamp_micros())
    }
}

/// Generate the sample into a sink; returns the ground truth.
pub fn generate(o: &GenerateOptions, sink: &mut dyn TableSink) -> Result<GroundTruth> {
    if !(o.scale > 0.0 && o.scale.is_finite()) {
        return Err(Error::option(
            "scale",
            format!("must be a positive number, got {}", o.scale),
        ));
    }
    if o.sites == 0 || o.sites > 99 {
        return Err(Error::option(
            "sites",
            format!("must be 1–99, got {}", o.sites),
        ));
    }
    if o.batch_rows == 0 {
        return Err(Error::option("batch_rows", "must be positive"));
    }
    let tz = parse_tz(&o.timezone)?;
    let mut bufs = BTreeMap::new();
    for k in TableKind::ALL {
        bufs.insert(k, Buf::new(k, &o.timezone));
    }
    let mut g = Gen {
        o,
        tz,
        sink,
        bufs,
        truth: GroundTruth {
            options: Some(o.clone()),
            hot_cell_factor: 3.5,
            hour_factor: 3.0,
            ..Default::default()
        },
    };
    if o.plant_hours {
        g.truth.high_risk_hours = vec![2, 3];
        g.truth.high_risk_weekday_hours = vec![(0, 9), (0, 10)];
    }
    let plans = site_plans(&mut g)?;
    thresholds(&mut g)?;
    targets(&mut g)?;
    let wanted = |k: TableKind| o.only.as_ref().is_none_or(|only| only.contains(&k));
    for p in &plans {
        if wanted(TableKind::Incidents) {
            incidents(&mut g, p)?;
        }
        if wanted(TableKind::Hazards) {
            hazards(&mut g, p)?;
        }
        if wanted(TableKind::Violations) {
            violations(&mut g, p)?;
        }
        if wanted(TableKind::Readings) {
            readings(&mut g, p)?;
        }
        if wanted(TableKind::Positions) {
            positions(&mut g, p)?;
        }
        if wanted(TableKind::Exposure) || wanted(TableKind::Activities) {
            exposure_and_activities(&mut g, p)?;
        }
    }
    let kinds: Vec<TableKind> = g.bufs.keys().copied().collect();
    for k in kinds {
        let b = g.bufs.get_mut(&k).expect("buffer");
        b.flush(g.sink)?;
        g.truth.rows.insert(k.name().to_string(), b.written);
    }
    Ok(g.truth)
}

fn site_plans(g: &mut Gen<'_>) -> Result<Vec<SitePlan>> {
    let mut rng = Rng::new(g.o.seed, "cells");
    let mut plans = Vec::new();
    for s in 0..g.o.sites {
        let site = site_id(s);
        let mut weights = vec![1.0; 36];
        // Cell-to-cell variation without spatial structure: only the planted
        // block is a real cluster.
        for w in weights.iter_mut() {
            *w = 0.6 + 0.8 * rng.f64();
        }
        let mut hot = Vec::new();
        if g.o.plant_hot_cells {
            // One 2 × 2 block of hot cells per unit: a cluster that a local
            // statistic over contiguous neighbours can find.
            let (r0, c0) = (rng.below(5), rng.below(5));
            hot = vec![
                r0 * 6 + c0,
                r0 * 6 + c0 + 1,
                (r0 + 1) * 6 + c0,
                (r0 + 1) * 6 + c0 + 1,
            ];
            for &h in &hot {
                weights[h] = g.truth.hot_cell_factor;
                g.truth
                    .hot_cells
                    .push((site.clone(), cell_id(&site, h / 6, h % 6)));
            }
        }
        let restricted: Vec<usize> = {
            let mut r = vec![rng.below(36)];
            let mut second = rng.below(36);
            while second == r[0] {
                second = rng.below(36);
            }
            r.push(second);
            r
        };
        let owners: Vec<String> = (0..9).map(|_| person_name(&mut rng)).collect();
        for i in 0..36 {
            let (row, col) = (i / 6, i % 6);
            let cell = cell_id(&site, row, col);
            let owner = &owners[(row / 2) * 3 + col / 2];
            let is_hot = hot.contains(&i);
            let lec_l = if is_hot {
                6.0
            } else {
                [1.0, 3.0, 3.0, 1.0, 0.5][rng.below(5)]
            };
            let lec_e = [6.0, 3.0, 2.0][rng.below(3)];
            let lec_c = if is_hot {
                15.0
            } else {
                [3.0, 7.0, 7.0, 15.0][rng.below(4)]
            };
            let use_ls = s % 4 == 3;
            let ls_l = (1 + rng.below(4)) as i32 + i32::from(is_hot);
            let ls_s = (1 + rng.below(4)) as i32 + i32::from(is_hot);
            let (x0, y0) = (col as f64 * 10.0, row as f64 * 10.0);
            g.emit(
                TableKind::Cells,
                &[
                    V::S(&cell),
                    V::S(zone_of(row)),
                    V::S(&site),
                    V::I(row as i32),
                    V::I(col as i32),
                    V::F(x0),
                    V::F(y0),
                    V::F(x0 + 10.0),
                    V::F(y0 + 10.0),
                    V::S(owner),
                    if use_ls { V::N } else { V::F(lec_l) },
                    if use_ls { V::N } else { V::F(lec_e) },
                    if use_ls { V::N } else { V::F(lec_c) },
                    if use_ls { V::I(ls_l) } else { V::N },
                    if use_ls { V::I(ls_s) } else { V::N },
                    V::B(restricted.contains(&i)),
                ],
            )?;
        }
        let persons = (0..(40.0 * g.o.scale.max(0.25)).ceil() as usize)
            .map(|p| format!("{site}-P{:04}", p + 1))
            .collect();
        // Emerging patterns: a new hot block in the last month at the second
        // unit, a fading (diminishing) one at the third, away from the
        // persistent block.
        let mut month_cum = None;
        if g.o.plant_hot_cells && (s == 1 || s == 2) {
            let (hr, hc) = (hot[0] / 6, hot[0] % 6);
            let r0 = if hr < 3 { 4 } else { 0 };
            let c0 = if hc < 3 { 4 } else { 0 };
            let block = [
                r0 * 6 + c0,
                r0 * 6 + c0 + 1,
                (r0 + 1) * 6 + c0,
                (r0 + 1) * 6 + c0 + 1,
            ];
            let category = if s == 1 { "new" } else { "diminishing" };
            for &b in &block {
                g.truth.emerging.push((
                    site.clone(),
                    cell_id(&site, b / 6, b % 6),
                    category.to_string(),
                ));
            }
            month_cum = Some(
                (0..12)
                    .map(|m| {
                        let mut w = weights.clone();
                        let boost = if s == 1 {
                            if m == 11 { 6.0 } else { 0.0 }
                        } else {
                            12.0 - 8.0 * f64::from(m) / 11.0
                        };
                        for &b in &block {
                            if boost > 0.0 {
                                w[b] = boost;
                            }
                        }
                        cumulative(&w)
                    })
                    .collect(),
            );
        }
        plans.push(SitePlan {
            id: site,
            cell_cum: cumulative(&weights),
            month_cum,
            restricted,
            persons,
        });
    }
    Ok(plans)
}

fn days_of(year: i32) -> impl Iterator<Item = NaiveDate> {
    let start = NaiveDate::from_ymd_opt(year, 1, 1).expect("valid year");
    let end = NaiveDate::from_ymd_opt(year + 1, 1, 1).expect("valid year");
    start.iter_days().take_while(move |d| *d < end)
}

fn day_factor(d: NaiveDate) -> f64 {
    let week = match d.weekday() {
        Weekday::Sat => 0.8,
        Weekday::Sun => 0.6,
        _ => 1.0,
    };
    let season = match d.month() {
        7 | 8 => 1.3,
        12 | 1 => 1.15,
        _ => 1.0,
    };
    week * season
}

fn hour_weights(g: &Gen<'_>, weekday: u32) -> Vec<f64> {
    (0..24u32)
        .map(|h| {
            let mut w = headcount_factor(h);
            if g.truth.high_risk_hours.contains(&h)
                || g.truth.high_risk_weekday_hours.contains(&(weekday, h))
            {
                w *= g.truth.hour_factor;
            }
            w
        })
        .collect()
}

fn pick_weighted<'a>(rng: &mut Rng, items: &'a [(&'a str, f64)]) -> &'a str {
    let total: f64 = items.iter().map(|i| i.1).sum();
    let mut x = rng.f64() * total;
    for (name, w) in items {
        if x < *w {
            return name;
        }
        x -= w;
    }
    items.last().map_or("", |i| i.0)
}

fn point_in(rng: &mut Rng, cell: usize) -> (f64, f64) {
    let (row, col) = (cell / 6, cell % 6);
    (
        (col as f64 + 0.05 + 0.9 * rng.f64()) * 10.0,
        (row as f64 + 0.05 + 0.9 * rng.f64()) * 10.0,
    )
}

fn at(d: NaiveDate, hour: u32, rng: &mut Rng) -> NaiveDateTime {
    d.and_time(
        NaiveTime::from_hms_opt(hour, rng.below(60) as u32, rng.below(60) as u32)
            .expect("valid time"),
    )
}

fn incidents(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("incidents-{}", p.id));
    // ~1,550 events per unit and year at scale 1, the previous year 25 % more.
    let per_day = 1550.0 / 365.0 * g.o.scale;
    let hw: Vec<Vec<f64>> = (0..7).map(|wd| cumulative(&hour_weights(g, wd))).collect();
    let mut n = 0u64;
    for (year, factor) in [(g.o.year - 1, 1.25), (g.o.year, 1.0)] {
        for d in days_of(year) {
            let wd = d.weekday().num_days_from_monday();
            let count = rng.poisson(per_day * factor * day_factor(d));
            for _ in 0..count {
                n += 1;
                let hour = rng.pick_cumulative(&hw[wd as usize]) as u32;
                let cum = match (&p.month_cum, year == g.o.year) {
                    (Some(months), true) => &months[d.month0() as usize],
                    _ => &p.cell_cum,
                };
                let cell = rng.pick_cumulative(cum);
                let (x, y) = point_in(&mut rng, cell);
                let t = at(d, hour, &mut rng);
                let time_known = !rng.chance(0.01);
                let t = if time_known {
                    t
                } else {
                    d.and_time(NaiveTime::MIN)
                };
                let until = if time_known && rng.chance(0.03) {
                    Some(t + Duration::minutes(60 * (2 + rng.below(7) as i64)))
                } else {
                    None
                };
                let sev = pick_weighted(&mut rng, SEVERITY_SHARES);
                let lost = match sev {
                    "near_miss" => None,
                    "first_aid" => Some(0),
                    "minor" => Some(1 + (rng.f64().powi(2) * 104.0) as i32),
                    "serious" => Some(105 + rng.below(300) as i32),
                    _ => Some(6000),
                };
                let contractor = rng.chance(0.25);
                let person = if sev == "near_miss" {
                    None
                } else {
                    Some(p.persons[rng.below(p.persons.len())].clone())
                };
                let id = format!("{}-I{:07}", p.id, n);
                let cell_name = cell_id(&p.id, cell / 6, cell % 6);
                let row = [
                    V::S(&id),
                    V::T(g.ts(t)),
                    until.map_or(V::N, |u| V::T(g.ts(u))),
                    V::B(time_known),
                    V::S(&p.id),
                    V::S(zone_of(cell / 6)),
                    V::S(&cell_name),
                    V::F(x),
                    V::F(y),
                    V::S(pick_weighted(&mut rng, CATEGORIES)),
                    V::S(sev),
                    lost.map_or(V::N, V::I),
                    V::N,
                    V::B(contractor),
                    person.as_deref().map_or(V::N, V::S),
                ];
                g.emit(TableKind::Incidents, &row)?;
            }
        }
    }
    Ok(())
}

fn hazards(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("hazards-{}", p.id));
    let per_day = 800.0 / 365.0 * g.o.scale;
    let year_end = NaiveDate::from_ymd_opt(g.o.year, 12, 31)
        .expect("date")
        .and_hms_opt(23, 59, 59)
        .expect("time");
    let mut n = 0u64;
    for d in days_of(g.o.year) {
        let count = rng.poisson(per_day * day_factor(d));
        for _ in 0..count {
            n += 1;
            let hour = 8 + rng.below(12) as u32;
            let t = at(d, hour, &mut rng);
            let cell = rng.pick_cumulative(&p.cell_cum);
            let (x, y) = point_in(&mut rng, cell);
            let major = rng.chance(0.05);
            let due = t + Duration::hours(if major { 168 } else { 72 });
            // Rectification cycle: log-normal, median 40 h, a tenth late.
            let cycle_h =
                (40.0f64.ln() + 0.7 * rng.normal()).exp() * if rng.chance(0.1) { 2.5 } else { 1.0 };
            let closed = t + Duration::minutes((cycle_h * 60.0) as i64);
            let still_open = closed > year_end || rng.chance(0.02);
            let verified = closed + Duration::minutes(120 + rng.below(22 * 60) as i64);
            let id = format!("{}-H{:07}", p.id, n);
            let cell_name = cell_id(&p.id, cell / 6, cell % 6);
            let reporter = p.persons[rng.below(p.persons.len())].clone();
            let owner = p.persons[rng.below(p.persons.len())].clone();
            let category = [
                "housekeeping",
                "electrical",
                "machine guarding",
                "fire safety",
                "ppe",
                "storage",
            ][rng.below(6)];
            let source = ["patrol", "photo", "inspection"][rng.below(3)];
            let row = [
                V::S(&id),
                V::T(g.ts(t)),
                V::B(true),
                V::S(&p.id),
                V::S(zone_of(cell / 6)),
                V::S(&cell_name),
                V::F(x),
                V::F(y),
                V::S(category),
                V::S(if major { "major" } else { "general" }),
                V::S(&reporter),
                V::S(&owner),
                V::T(g.ts(due)),
                if still_open { V::N } else { V::T(g.ts(closed)) },
                if still_open || verified > year_end {
                    V::N
                } else {
                    V::T(g.ts(verified))
                },
                V::S(source),
            ];
            g.emit(TableKind::Hazards, &row)?;
        }
    }
    Ok(())
}

fn violations(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("violations-{}", p.id));
    let per_day = 2000.0 / 365.0 * g.o.scale;
    let hw = cumulative(&(0..24).map(headcount_factor).collect::<Vec<_>>());
    // The planted repeat violator: no helmet on 4 consecutive days in March.
    let repeat_person = p.persons[0].clone();
    let first = NaiveDate::from_ymd_opt(g.o.year, 3, 10).expect("date");
    g.truth
        .repeat_violators
        .push((p.id.clone(), repeat_person.clone(), first.to_string(), 4));
    let mut n = 0u64;
    for d in days_of(g.o.year) {
        let count = rng.poisson(per_day * day_factor(d));
        let planted = d >= first && d < first + Duration::days(4);
        for k in 0..count + u64::from(planted) {
            n += 1;
            let is_planted = planted && k == count;
            let hour = rng.pick_cumulative(&hw) as u32;
            let t = at(d, hour, &mut rng);
            let cell = rng.pick_cumulative(&p.cell_cum);
            let (x, y) = point_in(&mut rng, cell);
            let kind = if is_planted {
                "no_helmet"
            } else {
                pick_weighted(&mut rng, VIOLATION_KINDS)
            };
            // Ordinary detections identify someone outside the planted person.
            let person = if is_planted {
                Some(repeat_person.clone())
            } else if rng.chance(0.7) {
                Some(p.persons[1 + rng.below(p.persons.len().saturating_sub(1).max(1))].clone())
            } else {
                None
            };
            let id = format!("{}-V{:07}", p.id, n);
            let cell_name = cell_id(&p.id, cell / 6, cell % 6);
            let camera = format!("{}-CAM{:02}", p.id, cell / 3 + 1);
            let row = [
                V::S(&id),
                V::T(g.ts(t)),
                V::S(&p.id),
                V::S(zone_of(cell / 6)),
                V::S(&cell_name),
                V::F(x),
                V::F(y),
                V::S(kind),
                person.as_deref().map_or(V::N, V::S),
                V::S(&camera),
                V::F(((0.6 + 0.39 * rng.f64()) * 100.0).round() / 100.0),
            ];
            g.emit(TableKind::Violations, &row)?;
        }
    }
    Ok(())
}

fn thresholds(g: &mut Gen<'_>) -> Result<()> {
    for (metric, warn, alarm, unit) in [
        ("h2s", 10.0, 20.0, "ppm"),
        ("vibration", 7.1, 11.2, "mm/s"),
        ("temperature", 40.0, 50.0, "°C"),
    ] {
        g.emit(
            TableKind::Thresholds,
            &[V::S(metric), V::F(warn), V::F(alarm), V::S(unit)],
        )?;
    }
    Ok(())
}

fn readings(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("readings-{}", p.id));
    let n_sensors = (2.0 * g.o.scale).ceil().max(1.0) as usize;
    for s in 0..n_sensors {
        let (metric, base, spike) = if s % 2 == 0 {
            ("h2s", 3.0, 26.0)
        } else {
            ("vibration", 3.5, 13.0)
        };
        let cell = if s % 2 == 0 { 30 + s % 6 } else { s % 12 };
        let sensor = format!("{}-S{:02}", p.id, s + 1);
        let cell_name = cell_id(&p.id, cell / 6, cell % 6);
        let mut episode_left = 0u32;
        for d in days_of(g.o.year) {
            for h in 0..24u32 {
                if episode_left == 0 && rng.chance(1.0 / (30.0 * 24.0)) {
                    episode_left = 2 + rng.below(5) as u32;
                    g.truth.alarm_episodes += 1;
                }
                let value = if episode_left > 0 {
                    episode_left -= 1;
                    spike * (1.0 + 0.1 * rng.f64())
                } else {
                    (base * (1.0 + 0.25 * rng.normal())).max(0.0)
                };
                let t = d.and_time(NaiveTime::from_hms_opt(h, 0, 0).expect("time"));
                let row = [
                    V::S(&sensor),
                    V::T(g.ts(t)),
                    V::S(&p.id),
                    V::S(zone_of(cell / 6)),
                    V::S(&cell_name),
                    V::S(metric),
                    V::F((value * 100.0).round() / 100.0),
                ];
                g.emit(TableKind::Readings, &row)?;
            }
        }
    }
    Ok(())
}

fn positions(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("positions-{}", p.id));
    let tracked = ((10.0 * g.o.scale).ceil() as usize)
        .min(p.persons.len())
        .max(1);
    let last = NaiveDate::from_ymd_opt(g.o.year, 12, 31).expect("date");
    let first = last - Duration::days(27);
    for who in 0..tracked {
        let person = &p.persons[who];
        let night = who % 3 == 2;
        let mut cell = rng.below(36);
        for d in first.iter_days().take_while(|d| *d <= last) {
            let start = d
                .and_time(NaiveTime::from_hms_opt(if night { 20 } else { 8 }, 0, 0).expect("time"));
            for k in 0..144 {
                // A random walk over neighbouring cells; restricted cells are
                // entered only now and then (fence intrusions).
                if rng.chance(0.2) {
                    let (r, c) = ((cell / 6) as i64, (cell % 6) as i64);
                    let nr = (r + rng.below(3) as i64 - 1).clamp(0, 5);
                    let nc = (c + rng.below(3) as i64 - 1).clamp(0, 5);
                    let next = (nr * 6 + nc) as usize;
                    if !p.restricted.contains(&next) || rng.chance(0.05) {
                        cell = next;
                    }
                }
                let (x, y) = point_in(&mut rng, cell);
                let t = start + Duration::minutes(5 * k);
                g.emit(
                    TableKind::Positions,
                    &[V::S(person), V::T(g.ts(t)), V::S(&p.id), V::F(x), V::F(y)],
                )?;
            }
        }
    }
    Ok(())
}

fn exposure_and_activities(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("activities-{}", p.id));
    let heads = p.persons.len() as f64;
    for year in [g.o.year - 1, g.o.year] {
        for m in 1..=12u32 {
            let start = NaiveDate::from_ymd_opt(year, m, 1).expect("date");
            let end = if m == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(year, m + 1, 1)
            }
            .expect("date");
            let days = (end - start).num_days() as f64;
            for (zi, zone) in ZONES.iter().enumerate() {
                let share = [0.4, 0.35, 0.25][zi];
                let hc = (heads * share).round();
                let hours = (hc * days * 8.0 * (0.95 + 0.1 * rng.f64())).round();
                g.emit(
                    TableKind::Exposure,
                    &[
                        V::S(&p.id),
                        V::S(zone),
                        V::T(g.ts(start.and_time(NaiveTime::MIN))),
                        V::T(g.ts(end.and_time(NaiveTime::MIN))),
                        V::F(hours),
                        V::I(hc as i32),
                    ],
                )?;
            }
        }
    }
    let leaders: Vec<String> = (0..2).map(|i| format!("{}-L{}", p.id, i + 1)).collect();
    for d in days_of(g.o.year) {
        let t = |h: u32, rng: &mut Rng| at(d, h, rng);
        // Leader inspections: about 6 a month per leader.
        for l in &leaders {
            if rng.chance(6.0 / 30.4) {
                let ts = g.ts(t(10, &mut rng));
                g.emit(
                    TableKind::Activities,
                    &[V::S("inspection"), V::T(ts), V::S(&p.id), V::S(l), V::N],
                )?;
            }
        }
        // Training: everyone once a quarter, spread over working days.
        for person in &p.persons {
            if d.weekday().num_days_from_monday() < 5 && rng.chance(1.0 / 65.0) {
                let ts = g.ts(t(14, &mut rng));
                g.emit(
                    TableKind::Activities,
                    &[
                        V::S("training"),
                        V::T(ts),
                        V::S(&p.id),
                        V::S(person),
                        V::F(2.0),
                    ],
                )?;
            }
        }
        // Suggestions: about 5 a month per unit.
        for _ in 0..rng.poisson(5.0 / 30.4 * g.o.scale) {
            let who = p.persons[rng.below(p.persons.len())].clone();
            let ts = g.ts(t(11, &mut rng));
            g.emit(
                TableKind::Activities,
                &[V::S("suggestion"), V::T(ts), V::S(&p.id), V::S(&who), V::N],
            )?;
        }
        // Drills on the 15th of the last month of each quarter.
        if d.day() == 15 && d.month() % 3 == 0 {
            let minutes = (12.0 + 2.5 * rng.normal()).max(5.0);
            let ts = g.ts(t(15, &mut rng));
            g.emit(
                TableKind::Activities,
                &[
                    V::S("drill"),
                    V::T(ts),
                    V::S(&p.id),
                    V::N,
                    V::F((minutes * 10.0).round() / 10.0),
                ],
            )?;
        }
        // Emergency equipment checks every Monday, 20 items.
        if d.weekday() == Weekday::Mon {
            for _ in 0..20 {
                let ready = if rng.chance(0.985) { 1.0 } else { 0.0 };
                let ts = g.ts(t(9, &mut rng));
                g.emit(
                    TableKind::Activities,
                    &[
                        V::S("equipment_check"),
                        V::T(ts),
                        V::S(&p.id),
                        V::N,
                        V::F(ready),
                    ],
                )?;
            }
        }
    }
    Ok(())
}

fn targets(g: &mut Gen<'_>) -> Result<()> {
    let y = g.o.year;
    let prev = format!("-20% vs {}", y - 1);
    let rows: Vec<(String, String, f64, &str, Option<&str>)> = vec![
        (
            "trir".into(),
            y.to_string(),
            0.0,
            "at_most",
            Some(prev.as_str()),
        ),
        ("fatalities".into(), y.to_string(), 0.0, "at_most", None),
        (
            "rectification_rate".into(),
            y.to_string(),
            1.0,
            "at_least",
            None,
        ),
        (
            "rectification_cycle_hours".into(),
            y.to_string(),
            48.0,
            "at_most",
            Some("72"),
        ),
        (
            "training_coverage".into(),
            y.to_string(),
            1.0,
            "at_least",
            None,
        ),
        (
            "drill_response_minutes".into(),
            y.to_string(),
            15.0,
            "at_most",
            None,
        ),
        (
            "leader_inspections_per_month".into(),
            y.to_string(),
            5.0,
            "at_least",
            None,
        ),
        (
            "suggestions_per_month".into(),
            y.to_string(),
            50.0,
            "at_least",
            None,
        ),
        (
            "equipment_readiness".into(),
            y.to_string(),
            0.98,
            "at_least",
            None,
        ),
    ];
    for (kpi, period, target, dir, baseline) in &rows {
        g.emit(
            TableKind::Targets,
            &[
                V::S(kpi),
                V::S("group"),
                V::S(period),
                V::F(*target),
                V::S(dir),
                baseline.map_or(V::N, V::S),
            ],
        )?;
    }
    for q in 1..=4 {
        let period = format!("{y}-Q{q}");
        g.emit(
            TableKind::Targets,
            &[
                V::S("trir"),
                V::S("group"),
                V::S(&period),
                V::F(0.0),
                V::S("at_most"),
                V::S(&prev),
            ],
        )?;
    }
    Ok(())
}

/// A sink writing one Parquet file (Snappy) per table into any writer.
pub struct ParquetSink<W: std::io::Write + Send> {
    writers: BTreeMap<TableKind, parquet::arrow::ArrowWriter<W>>,
    make: Box<dyn FnMut(TableKind) -> Result<W>>,
    tz: String,
}

impl<W: std::io::Write + Send> ParquetSink<W> {
    /// A sink creating its writers with `make`.
    pub fn new(tz: &str, make: Box<dyn FnMut(TableKind) -> Result<W>>) -> Self {
        ParquetSink {
            writers: BTreeMap::new(),
            make,
            tz: tz.to_string(),
        }
    }

    fn writer(&mut self, kind: TableKind) -> Result<&mut parquet::arrow::ArrowWriter<W>> {
        if !self.writers.contains_key(&kind) {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .set_max_row_group_row_count(Some(1 << 20))
                .set_created_by("safetyscope".to_string())
                .build();
            let w = parquet::arrow::ArrowWriter::try_new(
                (self.make)(kind)?,
                kind.def().arrow_schema(&self.tz),
                Some(props),
            )?;
            self.writers.insert(kind, w);
        }
        Ok(self.writers.get_mut(&kind).expect("just inserted"))
    }

    /// Write the files' footers and return the underlying writers.
    pub fn finish(mut self) -> Result<Vec<(TableKind, W)>> {
        for k in TableKind::ALL {
            if !self.writers.contains_key(&k) {
                self.writer(k)?;
            }
        }
        let mut out = Vec::new();
        for (k, w) in std::mem::take(&mut self.writers) {
            out.push((k, w.into_inner()?));
        }
        Ok(out)
    }
}

impl<W: std::io::Write + Send> TableSink for ParquetSink<W> {
    fn write(&mut self, kind: TableKind, batch: RecordBatch) -> Result<()> {
        self.writer(kind)?.write(&batch)?;
        Ok(())
    }
}

/// Parquet file bytes per table.
pub type ParquetFiles = Vec<(TableKind, Vec<u8>)>;

/// Generate into Parquet bytes per table (the browser and tests).
pub fn generate_parquet_bytes(o: &GenerateOptions) -> Result<(ParquetFiles, GroundTruth)> {
    let mut sink: ParquetSink<Vec<u8>> =
        ParquetSink::new(&o.timezone, Box::new(|_| Ok(Vec::new())));
    let truth = generate(o, &mut sink)?;
    Ok((sink.finish()?, truth))
}

/// The `dataset.toml` written beside generated files.
pub fn dataset_toml(o: &GenerateOptions) -> String {
    let mut s = format!(
        "# Sample dataset written by `safetyscope generate` (seed {}, scale {}).\ntimezone = \"{}\"\n",
        o.seed, o.scale, o.timezone
    );
    for k in TableKind::ALL {
        s.push_str(&format!(
            "\n[tables.{0}]\npath = \"{0}.parquet\"\n",
            k.name()
        ));
    }
    s.push_str(ROSTER_TOML);
    s
}

/// The roster the generator works by: a full day shift, a half-strength
/// night shift, lighter weekends (the exposure of every rate by hour).
pub const ROSTER_TOML: &str = r#"
# Who works when: the exposure of the time-of-day analyses.
[roster]
shifts = [
  { name = "day", start = "08:00", end = "20:00", headcount = 1.0 },
  { name = "night", start = "20:00", end = "08:00", headcount = 0.5 },
]
weekday_factors = [1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6]
"#;

/// Generate into a directory: `<table>.parquet` per table, `dataset.toml`
/// and `ground_truth.json`. Files are written under temporary names and
/// renamed when complete.
#[cfg(feature = "native")]
pub fn generate_to_dir(dir: &std::path::Path, o: &GenerateOptions) -> Result<GroundTruth> {
    use std::io::BufWriter;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let d = dir.to_path_buf();
    let mut sink: ParquetSink<BufWriter<std::fs::File>> = ParquetSink::new(
        &o.timezone,
        Box::new(move |k| {
            let p = d.join(format!(".{}.parquet.tmp", k.name()));
            std::fs::File::create(&p)
                .map(BufWriter::new)
                .map_err(|e| Error::io(p, e))
        }),
    );
    let truth = generate(o, &mut sink)?;
    for (k, w) in sink.finish()? {
        let f = w.into_inner().map_err(|e| Error::io(dir, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(dir, e))?;
        let tmp = dir.join(format!(".{}.parquet.tmp", k.name()));
        let fin = dir.join(format!("{}.parquet", k.name()));
        std::fs::rename(&tmp, &fin).map_err(|e| Error::io(fin, e))?;
    }
    crate::io::output::write_atomic(&dir.join("dataset.toml"), dataset_toml(o).as_bytes())?;
    let truth_json = serde_json::to_vec_pretty(&truth)
        .map_err(|e| Error::data("ground_truth", e.to_string()))?;
    crate::io::output::write_atomic(&dir.join("ground_truth.json"), &truth_json)?;
    Ok(truth)
}
