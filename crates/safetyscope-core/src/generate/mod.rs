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
use chrono::{Duration, NaiveDateTime};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::model::schema::{ColType, TableKind};
use crate::model::time::{DEFAULT_TIMEZONE, local_to_micros, parse_tz};
use crate::util::error::{Error, Result};
use crate::util::rng::{Rng, cumulative};
mod tables;
use tables::*;

/// Options of the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateOptions {
    /// Volume multiplier: 1.0 gives a group of 12 units with 800 people each
    /// (about 20 million hours a year) and about 18,600 incidents in the
    /// year, nearly all near misses (23,000 in the year before), 9,400
    /// hazards, 23,500 violations, 210,000 readings and 480,000 position
    /// fixes; people and row counts grow linearly with it, rates per person
    /// stay.
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

impl GenerateOptions {
    /// Check the options (before anything is written).
    pub fn check(&self) -> Result<()> {
        let o = self;
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
        // The sample spans the year before `year` too, and every instant must
        // lie inside the plausible range that validation accepts (1900–2100).
        if !(1902..=2099).contains(&o.year) {
            return Err(Error::option(
                "year",
                format!("must be 1902–2099, got {}", o.year),
            ));
        }
        parse_tz(&o.timezone)?;
        Ok(())
    }
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
    /// The planted leading-indicator relation: the rate ratio of a cell's
    /// injuries in a month per unit of ln(1 + the cell's count of the
    /// indicator in the month before), `near_misses` over both years and
    /// `violations` over the main year (the year the cameras record). Each
    /// cell's near misses and violations rise and fall together from month
    /// to month (a shared log-normal swing, σ = `leading_swing`).
    pub leading_rate_ratios: BTreeMap<String, f64>,
    /// σ of the monthly log-normal swing of each cell's near misses and
    /// violations.
    pub leading_swing: f64,
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
/// The zones as a Chinese plant names them: workshop 1, workshop 2, warehouse.
const ZONES: [&str; 3] = ["一车间", "二车间", "仓库"];

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
/// Severity shares of the incidents, shaped like Bird's accident ratio
/// (1 serious or disabling : 10 minor injuries : 30 property-damage or
/// first-aid cases : 600 near misses), with fatalities rarer than serious
/// injuries by two orders of magnitude (docs/sample-data.md).
const SEVERITY_SHARES: &[(&str, f64)] = &[
    ("near_miss", 0.937),
    ("first_aid", 0.046),
    ("minor", 0.01576),
    ("serious", 0.0012),
    ("fatal", 0.00002),
];

/// Camera detections per unit and year at scale 1.
pub(crate) const VIOLATIONS_PER_YEAR: f64 = 2000.0;

/// People per unit at scale 1.
pub(crate) const PEOPLE_PER_UNIT: f64 = 800.0;
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

/// The planted leading-indicator rate ratios (see
/// [`GroundTruth::leading_rate_ratios`]).
pub(crate) const LEADING_RATE_RATIOS: [(&str, f64); 2] =
    [("near_misses", 1.5), ("violations", 1.3)];
/// σ of the monthly swing of each cell's near misses and violations.
pub(crate) const LEADING_SWING: f64 = 0.2;

struct SitePlan {
    id: String,
    /// Cell weights of the events (hot cells 3.5, others 0.6–1.4).
    weights: Vec<f64>,
    cell_cum: Vec<f64>,
    /// Near-miss cell weights per month (0–11) of the main year, where an
    /// emerging block changes them.
    month_weights: Option<Vec<Vec<f64>>>,
    /// Each cell's monthly swing of near misses and violations, per month
    /// from the January of the year before (24 months).
    swing: Vec<Vec<f64>>,
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
    o.check()?;
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
            leading_rate_ratios: LEADING_RATE_RATIOS
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            leading_swing: LEADING_SWING,
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
        // Next month's injuries follow this month's violations, so they
        // are drawn (and counted) first, written only when wanted.
        let camera = if wanted(TableKind::Violations) || wanted(TableKind::Incidents) {
            violations(&mut g, p, wanted(TableKind::Violations))?
        } else {
            vec![]
        };
        if wanted(TableKind::Incidents) {
            incidents(&mut g, p, &camera)?;
        }
        if wanted(TableKind::Hazards) {
            hazards(&mut g, p)?;
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
                    // A grid cell has no polygon.
                    V::N,
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
        let persons = (0..((PEOPLE_PER_UNIT * g.o.scale).ceil() as usize).max(10))
            .map(|p| format!("{site}-P{:04}", p + 1))
            .collect();
        // Emerging patterns: a new hot block in the last month at the second
        // unit, a fading (diminishing) one at the third, away from the
        // persistent block.
        let mut month_weights = None;
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
            month_weights = Some(
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
                        w
                    })
                    .collect(),
            );
        }
        // Log-normal with mean 1: busier and quieter months per cell.
        let mut swing_rng = Rng::new(g.o.seed, &format!("swing-{site}"));
        let sd = LEADING_SWING;
        let swing = (0..24)
            .map(|_| {
                (0..36)
                    .map(|_| (sd * swing_rng.normal() - sd * sd / 2.0).exp())
                    .collect()
            })
            .collect();
        plans.push(SitePlan {
            id: site,
            cell_cum: cumulative(&weights),
            weights,
            month_weights,
            swing,
            restricted,
            persons,
        });
    }
    Ok(plans)
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
    o.check()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let d = dir.to_path_buf();
    // Each table is written under a fresh temporary name, renamed when all
    // are complete; a failure removes them.
    let temps: std::sync::Arc<std::sync::Mutex<BTreeMap<TableKind, std::path::PathBuf>>> =
        Default::default();
    let seen = temps.clone();
    let mut sink: ParquetSink<BufWriter<std::fs::File>> = ParquetSink::new(
        &o.timezone,
        Box::new(move |k| {
            let (tmp, f) =
                crate::io::output::create_temp_file(&d.join(format!("{}.parquet", k.name())))?;
            seen.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(k, tmp);
            Ok(BufWriter::new(f))
        }),
    );
    let remove_temps = || {
        for p in temps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
        {
            let _ = std::fs::remove_file(p);
        }
    };
    let written = generate(o, &mut sink).and_then(|truth| Ok((truth, sink.finish()?)));
    let (truth, files) = match written {
        Ok(w) => w,
        Err(e) => {
            remove_temps();
            return Err(e);
        }
    };
    for (k, w) in files {
        let f = w.into_inner().map_err(|e| Error::io(dir, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(dir, e))?;
        let tmp = temps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&k)
            .cloned()
            .ok_or_else(|| Error::data(k.name(), "no temporary file was written"))?;
        let fin = dir.join(format!("{}.parquet", k.name()));
        std::fs::rename(&tmp, &fin).map_err(|e| Error::io(fin, e))?;
    }
    crate::io::output::write_atomic(&dir.join("dataset.toml"), dataset_toml(o).as_bytes())?;
    let truth_json = serde_json::to_vec_pretty(&truth)
        .map_err(|e| Error::data("ground_truth", e.to_string()))?;
    crate::io::output::write_atomic(&dir.join("ground_truth.json"), &truth_json)?;
    Ok(truth)
}
