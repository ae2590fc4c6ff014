//! The KPI measures of many windows (a scope and a time range) in one pass
//! over each table.
//!
//! Nothing is held per row: each table is read as a stream and every row
//! adds to the windows it falls in. Per scope, the window bounds cut time
//! into segments; a row finds the windows covering its instant by a binary
//! search, and counts taken at a window's end (open and overdue hazards,
//! the last lost-time injury) are cumulative over the bounds. Rectification
//! cycle quantiles are exact without keeping the cycles: the first pass
//! counts them per window in bins of their leading 20 bits, the second
//! keeps only those in the bins that hold the wanted ranks. Memory grows
//! with the windows and the distinct names, not with the rows.
//!
//! Sums of fractional values (hours, headcount, drill minutes) are taken in
//! an order fixed by sorting their inputs, so every run gives the same bits.

use std::collections::BTreeMap;

use arrow::array::{Array, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, SortExpr, cast, col, lit};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::analysis::kpis::scope::{Measure, Scope};
use crate::analysis::kpis::timeline::*;
pub(crate) use crate::analysis::kpis::timeline::{Outline, Window};
use crate::model::schema::TableKind;
use crate::model::time::parse_tz;
use crate::session::dataset::Dataset;
use crate::util::columns::col_as as typed;
use crate::util::columns::str_col as strs;
use crate::util::error::{Error, Result};
use crate::util::fasthash::IntMap;
use crate::util::stats::quantile_at;

const HOUR: f64 = 3_600_000_000.0;
const DAY: f64 = 86_400_000_000.0;

/// The five inputs of the KPIs, each a DataFusion plan.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// Incidents per local day, zone, severity, recordability and lost days.
    Incidents,
    /// Hazards, one row each.
    Hazards,
    /// Training and inspections with a person: one row per site, person
    /// and kind with the instants as a list.
    People,
    /// Drills and equipment checks, sorted.
    Valued,
    /// Other activities.
    Counted,
    /// Exposure rows, sorted.
    Exposure,
    /// Violations per local day and zone.
    Violations,
}

const INPUTS: [Input; 7] = [
    Input::Incidents,
    Input::Hazards,
    Input::People,
    Input::Valued,
    Input::Counted,
    Input::Exposure,
    Input::Violations,
];

/// The KPI inputs of a dataset (optionally one site): planned anew for
/// every measurement, or collected once when the dataset keeps them.
#[derive(Debug)]
pub(crate) struct Facts {
    site: Option<String>,
    pub(crate) outline: Outline,
    kept: Option<Vec<Vec<RecordBatch>>>,
}

fn site_filter(site: Option<&str>) -> Option<Expr> {
    site.map(|s| col("site").eq(lit(s.to_string())))
}

/// A table's rows, optionally of one site.
async fn table(
    ds: &Dataset,
    kind: TableKind,
    site: Option<&str>,
) -> Result<datafusion::dataframe::DataFrame> {
    let df = ds.table(kind).await?;
    Ok(match site_filter(site) {
        Some(f) => df.filter(f)?,
        None => df,
    })
}

/// Rows of a table grouped by `keys` and the local day of `time`: the day
/// (days since 1970-01-01 in the dataset's timezone) as `day`, the rows as
/// `n`, the first and last instants (µs) as `t0` and `t1`. Period
/// boundaries are local day starts, so a group is wholly inside or outside
/// every period.
async fn daily(
    ds: &Dataset,
    kind: TableKind,
    time: &str,
    keys: &[&str],
    site: Option<&str>,
    cuts: &[i64],
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    use datafusion::functions_aggregate::expr_fn::{count, max, min};
    let t = cast(col(time), DataType::Int64);
    let Some((lo, hi)) = ds.time_span(kind, time).await? else {
        return Ok(crate::session::context::empty_stream());
    };
    let tz = parse_tz(ds.timezone())?;
    let day = crate::model::time::local_day_expr(&tz, t.clone(), lo, hi)?;
    let mut group: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    group.push(day.alias("day"));
    // A window that starts or ends within a day splits that day's rows at
    // its instant: each group then lies on one side of every cut, and its
    // first instant places it.
    if let Some(segment) = cuts
        .iter()
        .map(|&c| {
            datafusion::logical_expr::when(t.clone().gt_eq(lit(c)), lit(1i64)).otherwise(lit(0i64))
        })
        .collect::<datafusion::common::Result<Vec<Expr>>>()?
        .into_iter()
        .reduce(|a, b| a + b)
    {
        group.push(segment.alias("segment"));
    }
    Ok(table(ds, kind, site)
        .await?
        .aggregate(
            group,
            vec![
                count(lit(1i64)).alias("n"),
                min(t.clone()).alias("t0"),
                max(t).alias("t1"),
            ],
        )?
        .execute_stream()
        .await?)
}

/// Columns of a table, timestamps as µs, of the rows `keep` selects,
/// sorted by the first `order` columns (`cols`, then `times`).
async fn rows(
    ds: &Dataset,
    kind: TableKind,
    (cols, times): (&[&str], &[&str]),
    keep: Option<Expr>,
    order: usize,
    site: Option<&str>,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    let mut exprs: Vec<Expr> = cols.iter().map(|c| col(*c)).collect();
    for c in times {
        exprs.push(cast(col(*c), DataType::Int64).alias(*c));
    }
    let mut df = table(ds, kind, site).await?;
    if let Some(k) = keep {
        df = df.filter(k)?;
    }
    df = df.select(exprs)?;
    if order > 0 {
        let order: Vec<SortExpr> = cols
            .iter()
            .chain(times)
            .take(order)
            .map(|c| col(*c).sort(true, true))
            .collect();
        // One sort over one partition: the stream is consumed in one
        // order anyway, and under a memory limit two partitions' merges of
        // spilled runs (which cannot spill) race for the same pool.
        df = df
            .repartition(datafusion::logical_expr::Partitioning::RoundRobinBatch(1))?
            .sort(order)?;
    }
    Ok(df.execute_stream().await?)
}

/// Activities of kinds counted per distinct person, with a person.
fn per_person() -> Expr {
    col("kind")
        .in_list(vec![lit("training"), lit("inspection")], false)
        .and(col("person_id").is_not_null())
}

/// Activities whose values are summed.
fn valued() -> Expr {
    col("kind").in_list(vec![lit("drill"), lit("equipment_check")], false)
}

/// The rows of one input of the meter. `cuts`: the window bounds that fall
/// within a local day, where the per-day counts must split.
async fn plan(
    ds: &Dataset,
    input: Input,
    site: Option<&str>,
    cuts: &[i64],
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    let kind = match input {
        Input::Incidents => TableKind::Incidents,
        Input::Hazards => TableKind::Hazards,
        Input::People | Input::Valued | Input::Counted => TableKind::Activities,
        Input::Exposure => TableKind::Exposure,
        Input::Violations => TableKind::Violations,
    };
    if !ds.has_table(kind) {
        return Ok(crate::session::context::empty_stream());
    }
    match input {
        Input::Incidents => {
            daily(
                ds,
                kind,
                "occurred_at",
                &["site", "zone", "severity", "recordable", "lost_days"],
                site,
                cuts,
            )
            .await
        }
        Input::Hazards => {
            let cols: &[&str] = &["site", "zone", "level"];
            let times: &[&str] = &["reported_at", "due_at", "closed_at"];
            rows(ds, kind, (cols, times), None, 0, site).await
        }
        // Grouped by person, so that a window counts each person once: a
        // hash aggregate, with no sort of the rows.
        Input::People => {
            use datafusion::functions_aggregate::expr_fn::array_agg;
            Ok(table(ds, kind, site)
                .await?
                .filter(per_person())?
                .aggregate(
                    vec![col("site"), col("person_id"), col("kind")],
                    vec![array_agg(cast(col("at"), DataType::Int64)).alias("at")],
                )?
                .execute_stream()
                .await?)
        }
        // In a total order, so that sums of values have the same bits on
        // every run.
        Input::Valued => {
            let cols: &[&str] = &["site", "kind", "value", "person_id"];
            rows(ds, kind, (cols, &["at"]), Some(valued()), 5, site).await
        }
        Input::Counted => {
            let keep = (!per_person()).and(!valued());
            let cols: &[&str] = &["site", "kind", "person_id"];
            rows(ds, kind, (cols, &["at"]), Some(keep), 0, site).await
        }
        Input::Exposure => {
            let cols: &[&str] = &["site", "zone", "hours_worked", "headcount"];
            let times: &[&str] = &["period_start", "period_end"];
            rows(ds, kind, (cols, times), None, 6, site).await
        }
        Input::Violations => daily(ds, kind, "detected_at", &["site", "zone"], site, cuts).await,
    }
}

/// Sites, zones and time span of the KPI tables.
async fn outline(ds: &Dataset, site: Option<&str>) -> Result<Outline> {
    use datafusion::functions_aggregate::expr_fn::{max, min};
    let mut o = Outline::default();
    let tables: [(TableKind, &str, bool, bool); 5] = [
        (TableKind::Incidents, "occurred_at", true, true),
        (TableKind::Hazards, "reported_at", true, true),
        (TableKind::Exposure, "period_start", true, false),
        (TableKind::Violations, "detected_at", false, true),
        (TableKind::Activities, "at", false, false),
    ];
    for (kind, time, zoned, spans) in tables {
        if !ds.has_table(kind) {
            continue;
        }
        let mut keys = vec![col("site")];
        if zoned {
            keys.push(col("zone"));
        }
        let t = cast(col(time), DataType::Int64);
        let batches = table(ds, kind, site)
            .await?
            .aggregate(keys, vec![min(t.clone()).alias("t0"), max(t).alias("t1")])?
            .collect()
            .await?;
        for b in batches {
            let s = strs(&b, "site")?;
            let (t0, t1) = (
                typed::<Int64Array>(&b, "t0")?,
                typed::<Int64Array>(&b, "t1")?,
            );
            let z = if zoned { Some(strs(&b, "zone")?) } else { None };
            for i in 0..b.num_rows() {
                o.sites.insert(s.value(i).to_string());
                if let Some(z) = z {
                    let e = o.zones.entry(s.value(i).to_string()).or_default();
                    if !z.is_null(i) {
                        e.insert(z.value(i).to_string());
                    }
                }
                if spans && !t0.is_null(i) {
                    let (a, b) = (t0.value(i), t1.value(i));
                    o.span = Some(o.span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
                }
            }
        }
    }
    Ok(o)
}

/// The outline of kept inputs (see [`outline`]): every row of the KPI
/// tables is in one of them, as itself or in its day's group.
fn outline_of(kept: &[Vec<RecordBatch>]) -> Result<Outline> {
    let mut o = Outline::default();
    // (input, zoned, the columns of its earliest and latest instants when
    // its times count in the span)
    type Read = (Input, bool, Option<(&'static str, &'static str)>);
    let inputs: [Read; 7] = [
        (Input::Incidents, true, Some(("t0", "t1"))),
        (Input::Hazards, true, Some(("reported_at", "reported_at"))),
        (Input::Exposure, true, None),
        (Input::Violations, false, Some(("t0", "t1"))),
        (Input::People, false, None),
        (Input::Valued, false, None),
        (Input::Counted, false, None),
    ];
    for (input, zoned, span) in inputs {
        for b in &kept[input as usize] {
            let s = strs(b, "site")?;
            let z = if zoned { Some(strs(b, "zone")?) } else { None };
            let t = match span {
                Some((a, z)) => Some((typed::<Int64Array>(b, a)?, typed::<Int64Array>(b, z)?)),
                None => None,
            };
            for i in 0..b.num_rows() {
                // Rows of a group come together: skip the lookups while
                // the site and zone repeat.
                let same = i > 0
                    && s.value(i) == s.value(i - 1)
                    && z.is_none_or(|z| {
                        z.is_null(i) == z.is_null(i - 1) && z.value(i) == z.value(i - 1)
                    });
                if !same && !o.sites.contains(s.value(i)) {
                    o.sites.insert(s.value(i).to_string());
                }
                if let Some(z) = z.filter(|_| !same) {
                    if !o.zones.contains_key(s.value(i)) {
                        o.zones.insert(s.value(i).to_string(), Default::default());
                    }
                    if let Some(e) = o.zones.get_mut(s.value(i))
                        && !z.is_null(i)
                        && !e.contains(z.value(i))
                    {
                        e.insert(z.value(i).to_string());
                    }
                }
                if let Some((t0, t1)) = t
                    && !t0.is_null(i)
                {
                    let (a, b) = (t0.value(i), t1.value(i));
                    o.span = Some(o.span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
                }
            }
        }
    }
    Ok(o)
}

impl Facts {
    /// The facts of a dataset (or one of its sites); `keep` collects the
    /// inputs once for repeated measurements.
    pub(crate) async fn open(ds: &Dataset, site: Option<&str>, keep: bool) -> Result<Facts> {
        let (outline, kept) = if keep {
            let mut all = vec![];
            for i in INPUTS {
                all.push(plan(ds, i, site, &[]).await?.try_collect().await?);
            }
            (outline_of(&all)?, Some(all))
        } else {
            (outline(ds, site).await?, None)
        };
        Ok(Facts {
            site: site.map(str::to_string),
            outline,
            kept,
        })
    }

    /// The facts of the whole dataset: kept ones when the dataset keeps
    /// them, else planned for this call.
    pub(crate) async fn of_dataset(ds: &Dataset) -> Result<std::sync::Arc<Facts>> {
        let Some(cache) = ds.facts_cache() else {
            return Ok(std::sync::Arc::new(Facts::open(ds, None, false).await?));
        };
        if let Some(f) = cache.get().and_then(|f| f.clone().downcast::<Facts>().ok()) {
            return Ok(f);
        }
        let f = std::sync::Arc::new(Facts::open(ds, None, true).await?);
        // Another call may have stored equal facts meanwhile.
        let _ = cache.set(f.clone());
        Ok(f)
    }

    async fn input(
        &self,
        ds: &Dataset,
        input: Input,
        cuts: &[i64],
    ) -> Result<BoxStream<'_, Result<RecordBatch>>> {
        let per_day = matches!(input, Input::Incidents | Input::Violations);
        if let Some(k) = self.kept.as_ref().filter(|_| !per_day || cuts.is_empty()) {
            return Ok(futures::stream::iter(k[input as usize].iter().cloned().map(Ok)).boxed());
        }
        Ok(plan(ds, input, self.site.as_deref(), cuts)
            .await?
            .map(|b| b.map_err(Error::from))
            .boxed())
    }

    /// Every KPI of each window, in the windows' order. `cycles` asks for
    /// the rectification cycle quantiles (a second pass over the hazards).
    pub(crate) async fn measure<'w>(
        &self,
        ds: &Dataset,
        windows: &'w [Window],
        cycles: bool,
    ) -> Result<Measured<'w>> {
        // The sums of every window are held until the end: they count
        // against the memory limit.
        let per_window = std::mem::size_of::<Acc>() + std::mem::size_of::<Window>() + 64;
        let memory = crate::session::context::reserve(
            ds.context(),
            &format!("KPI sums of {} scope × period windows", windows.len()),
            windows.len().saturating_mul(per_window),
            "scopes",
            "narrow the KPIs with `site`, `scopes`, `periods` or `as_of`",
        )?;
        // Window bounds within a local day (an `as_of` with a time of day).
        let tz = parse_tz(ds.timezone())?;
        let mut cuts: Vec<i64> = windows
            .iter()
            .flat_map(|w| [w.a, w.b])
            .filter(|&x| {
                crate::model::time::micros_to_local(&tz, x)
                    .is_some_and(|l| l.time() != chrono::NaiveTime::MIN)
            })
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut m = Meter::new(windows);
        let mut s = self.input(ds, Input::Exposure, &cuts).await?;
        while let Some(b) = s.next().await {
            m.exposure(&b?)?;
        }
        let mut s = self.input(ds, Input::Incidents, &cuts).await?;
        while let Some(b) = s.next().await {
            m.incidents(&b?)?;
        }
        let mut s = self.input(ds, Input::Hazards, &cuts).await?;
        while let Some(b) = s.next().await {
            m.hazards(&b?, None)?;
        }
        let mut s = self.input(ds, Input::People, &cuts).await?;
        while let Some(b) = s.next().await {
            m.people(&b?)?;
        }
        for input in [Input::Valued, Input::Counted] {
            let mut s = self.input(ds, input, &cuts).await?;
            while let Some(b) = s.next().await {
                m.activities(&b?)?;
            }
        }
        let mut s = self.input(ds, Input::Violations, &cuts).await?;
        while let Some(b) = s.next().await {
            m.violations(&b?)?;
        }
        let mut picks = if cycles {
            m.cycle_bins()
        } else {
            Picks::default()
        };
        if !picks.bins.is_empty() {
            let mut s = self.input(ds, Input::Hazards, &cuts).await?;
            while let Some(b) = s.next().await {
                m.hazards(&b?, Some(&mut picks))?;
            }
        }
        let mut measured = m.finish(picks);
        measured.memory = Some(memory);
        Ok(measured)
    }
}

// -------------------------------------------------------------- accumulation

/// Sums of one window.
#[derive(Debug, Default, Clone)]
struct Acc {
    hours: f64,
    heads: f64,
    severity: [f64; 5],
    all: f64,
    injured: f64,
    recordables: f64,
    lti: f64,
    lost: f64,
    found: f64,
    major_found: f64,
    closed: f64,
    due: f64,
    on_time: f64,
    trained: f64,
    trained_mark: u64,
    inspectors: f64,
    inspector_mark: u64,
    inspections: f64,
    drills: f64,
    drill_sum: f64,
    drill_n: f64,
    suggestions: f64,
    equipment_sum: f64,
    equipment_n: f64,
    violations: f64,
}

/// A cycle's order-preserving bit pattern.
fn order_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The bin of a cycle: its leading 20 order bits (sign, exponent and 8
/// bits of mantissa).
fn bin_of(v: f64) -> u64 {
    order_key(v) >> 44
}

fn bin_key(w: u32, bin: u64) -> u64 {
    (u64::from(w) << 20) | bin
}

/// The bins that hold the ranks of the wanted quantiles, with the values
/// found in them on the second pass.
#[derive(Debug, Default)]
struct Picks {
    bins: IntMap<Vec<f64>>,
    /// Per window and quantile (0.5, 0.9): the bin keys and ranks within
    /// them of the two values the quantile lies between, and the fraction.
    wanted: Vec<[Option<Between>; 2]>,
}

/// Where a quantile lies: the bin key and offset within the bin of the
/// values below and above it, and the fraction between them.
type Between = (u64, usize, u64, usize, f64);

const QUANTILES: [f64; 2] = [0.5, 0.9];

/// Accumulates the measures of a set of windows.
struct Meter<'w> {
    windows: &'w [Window],
    scope_of: Vec<usize>,
    scopes: Scopes,
    zoned: Vec<bool>,
    timelines: Vec<Timeline>,
    acc: Vec<Acc>,
    /// Closed hazards per window and cycle bin.
    hist: IntMap<u64>,
    /// Sequence number of the current (site, person, kind) of the
    /// training and inspections.
    person: u64,
}

impl<'w> Meter<'w> {
    fn new(windows: &'w [Window]) -> Meter<'w> {
        let mut index: BTreeMap<&Scope, usize> = BTreeMap::new();
        let mut scope_of = vec![];
        for w in windows {
            let n = index.len();
            scope_of.push(*index.entry(&w.scope).or_insert(n));
        }
        let mut scopes = Scopes::default();
        let mut zoned = vec![false; index.len()];
        for (s, &i) in &index {
            match (&s.site, &s.zone) {
                (None, _) => scopes.group = Some(i),
                (Some(site), None) => scopes.sites.entry(site.clone()).or_default().0 = Some(i),
                (Some(site), Some(z)) => {
                    zoned[i] = true;
                    scopes
                        .sites
                        .entry(site.clone())
                        .or_default()
                        .1
                        .insert(z.clone(), i);
                }
            }
        }
        let mut per: Vec<Vec<(u32, i64, i64)>> = vec![vec![]; index.len()];
        for (i, w) in windows.iter().enumerate() {
            if w.b > w.a {
                per[scope_of[i]].push((i as u32, w.a, w.b));
            }
        }
        Meter {
            windows,
            scope_of,
            scopes,
            zoned,
            timelines: per.into_iter().map(Timeline::new).collect(),
            acc: vec![Acc::default(); windows.len()],
            hist: IntMap::default(),
            person: 0,
        }
    }

    fn exposure(&mut self, b: &RecordBatch) -> Result<()> {
        let (s, z) = (strs(b, "site")?, strs(b, "zone")?);
        let a0 = typed::<Int64Array>(b, "period_start")?;
        let e0 = typed::<Int64Array>(b, "period_end")?;
        let h = typed::<Float64Array>(b, "hours_worked")?;
        let hc = typed::<Int32Array>(b, "headcount")?;
        let mut look = Lookup::new(&self.scopes);
        for i in 0..b.num_rows() {
            let (start, end) = (a0.value(i), e0.value(i));
            if end <= start {
                continue;
            }
            let zone = (!z.is_null(i)).then(|| z.value(i));
            for &sc in look.get(s.value(i), zone).as_slice() {
                for &w in &self.timelines[sc].windows {
                    let win = &self.windows[w as usize];
                    let ov = (end.min(win.b) - start.max(win.a)) as f64;
                    if ov > 0.0 {
                        let acc = &mut self.acc[w as usize];
                        acc.hours += h.value(i) * ov / (end - start) as f64;
                        if !hc.is_null(i) {
                            acc.heads += f64::from(hc.value(i)) * ov / (win.b - win.a) as f64;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn incidents(&mut self, b: &RecordBatch) -> Result<()> {
        let (s, z, sev) = (strs(b, "site")?, strs(b, "zone")?, strs(b, "severity")?);
        let (t0, t1) = (typed::<Int64Array>(b, "t0")?, typed::<Int64Array>(b, "t1")?);
        let (day, n) = (typed::<Int64Array>(b, "day")?, typed::<Int64Array>(b, "n")?);
        let rec = typed::<BooleanArray>(b, "recordable")?;
        let lost = typed::<Int32Array>(b, "lost_days")?;
        let mut look = Lookup::new(&self.scopes);
        for i in 0..b.num_rows() {
            let rank = crate::model::vocab::severity_rank(sev.value(i)).map(usize::from);
            let injury = matches!(rank, Some(2..=4));
            let recordable = if rec.is_null(i) { injury } else { rec.value(i) };
            let lost_days = if lost.is_null(i) {
                if rank == Some(4) { 6000.0 } else { 0.0 }
            } else {
                f64::from(lost.value(i))
            };
            let (t, count) = (t0.value(i), n.value(i) as f64);
            let zone = (!z.is_null(i)).then(|| z.value(i));
            for &sc in look.get(s.value(i), zone).as_slice() {
                let tl = &mut self.timelines[sc];
                if recordable && lost_days > 0.0 {
                    let slot = tl.slot(t);
                    let v = (day.value(i), t1.value(i));
                    tl.lti[slot] = Some(tl.lti[slot].map_or(v, |x| x.max(v)));
                }
                for &w in tl.covering(t) {
                    let acc = &mut self.acc[w as usize];
                    acc.all += count;
                    if let Some(r) = rank {
                        acc.severity[r] += count;
                    }
                    if injury {
                        acc.injured += count;
                    }
                    if recordable {
                        acc.recordables += count;
                        if lost_days > 0.0 {
                            acc.lti += count;
                        }
                    }
                    acc.lost += lost_days * count;
                }
            }
        }
        Ok(())
    }

    /// Hazards: counts and cycle bins, or (with `picks`) the cycles in the
    /// picked bins.
    fn hazards(&mut self, b: &RecordBatch, mut picks: Option<&mut Picks>) -> Result<()> {
        let (s, z, lv) = (strs(b, "site")?, strs(b, "zone")?, strs(b, "level")?);
        let r = typed::<Int64Array>(b, "reported_at")?;
        let due = typed::<Int64Array>(b, "due_at")?;
        let cl = typed::<Int64Array>(b, "closed_at")?;
        let mut look = Lookup::new(&self.scopes);
        for i in 0..b.num_rows() {
            let rep = r.value(i);
            let d = (!due.is_null(i)).then(|| due.value(i));
            let c = (!cl.is_null(i)).then(|| cl.value(i));
            let cycle = c.map(|c| (c - rep) as f64 / HOUR);
            let bin = cycle.map_or(0, bin_of);
            let zone = (!z.is_null(i)).then(|| z.value(i));
            let ids = look.get(s.value(i), zone);
            if let Some(p) = picks.as_deref_mut() {
                let (Some(c), Some(v)) = (c, cycle) else {
                    continue;
                };
                for &sc in ids.as_slice() {
                    for &w in self.timelines[sc].covering(rep) {
                        if c < self.windows[w as usize].b
                            && let Some(vals) = p.bins.get_mut(&bin_key(w, bin))
                        {
                            vals.push(v);
                        }
                    }
                }
                continue;
            }
            let major = lv.value(i) == "major";
            for &sc in ids.as_slice() {
                let tl = &mut self.timelines[sc];
                let sr = tl.slot(rep);
                let scl = c.map(|c| tl.slot(c));
                let sd = d.map(|d| tl.slot(d));
                for &o in if major { [0, 4].as_slice() } else { &[0] } {
                    tl.cum[o][sr] += 1;
                    if let Some(x) = scl {
                        tl.cum[o + 1][sr.max(x)] += 1;
                    }
                    if let Some(y) = sd {
                        let late = sr.max(y);
                        tl.cum[o + 2][late] += 1;
                        if let Some(x) = scl {
                            tl.cum[o + 3][late.max(x)] += 1;
                        }
                    }
                }
                for &w in tl.cover_at(sr) {
                    let wb = self.windows[w as usize].b;
                    let acc = &mut self.acc[w as usize];
                    acc.found += 1.0;
                    if major {
                        acc.major_found += 1.0;
                    }
                    if c.is_some_and(|c| c < wb) {
                        acc.closed += 1.0;
                        *self.hist.entry(bin_key(w, bin)).or_default() += 1;
                    }
                }
                if let (Some(d), Some(y)) = (d, sd) {
                    for &w in tl.cover_at(y) {
                        if rep < self.windows[w as usize].b {
                            let acc = &mut self.acc[w as usize];
                            acc.due += 1.0;
                            if c.is_some_and(|c| c <= d) {
                                acc.on_time += 1.0;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Training and inspections (see [`Input::People`]): each row is one
    /// person's instants of one kind, so a window counts the person once.
    fn people(&mut self, b: &RecordBatch) -> Result<()> {
        use arrow::array::ListArray;
        let (s, k) = (strs(b, "site")?, strs(b, "kind")?);
        let at = typed::<ListArray>(b, "at")?;
        let mut look = Lookup::new(&self.scopes);
        for i in 0..b.num_rows() {
            self.person += 1;
            let training = k.value(i) == "training";
            let instants = at.value(i);
            let Some(instants) = instants.as_any().downcast_ref::<Int64Array>() else {
                return Err(Error::schema(
                    "activities",
                    "`at` is not a list of instants",
                ));
            };
            for &sc in look.get(s.value(i), None).as_slice() {
                if self.zoned[sc] {
                    continue;
                }
                for t in instants.iter().flatten() {
                    for &w in self.timelines[sc].covering(t) {
                        let acc = &mut self.acc[w as usize];
                        if training {
                            if acc.trained_mark != self.person {
                                acc.trained_mark = self.person;
                                acc.trained += 1.0;
                            }
                        } else {
                            acc.inspections += 1.0;
                            if acc.inspector_mark != self.person {
                                acc.inspector_mark = self.person;
                                acc.inspectors += 1.0;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Drills, equipment checks and the other activities, one row each.
    fn activities(&mut self, b: &RecordBatch) -> Result<()> {
        let (s, k) = (strs(b, "site")?, strs(b, "kind")?);
        let t = typed::<Int64Array>(b, "at")?;
        let v = b
            .column_by_name("value")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>());
        let mut look = Lookup::new(&self.scopes);
        for i in 0..b.num_rows() {
            let value = v.and_then(|v| (!v.is_null(i)).then(|| v.value(i)));
            let kind = k.value(i);
            for &sc in look.get(s.value(i), None).as_slice() {
                if self.zoned[sc] {
                    continue;
                }
                for &w in self.timelines[sc].covering(t.value(i)) {
                    let acc = &mut self.acc[w as usize];
                    match kind {
                        "drill" => {
                            acc.drills += 1.0;
                            if let Some(v) = value {
                                acc.drill_sum += v;
                                acc.drill_n += 1.0;
                            }
                        }
                        "suggestion" => acc.suggestions += 1.0,
                        "equipment_check" => {
                            if let Some(v) = value {
                                acc.equipment_sum += v;
                                acc.equipment_n += 1.0;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn violations(&mut self, b: &RecordBatch) -> Result<()> {
        let (s, z) = (strs(b, "site")?, strs(b, "zone")?);
        let t0 = typed::<Int64Array>(b, "t0")?;
        let n = typed::<Int64Array>(b, "n")?;
        let mut look = Lookup::new(&self.scopes);
        for i in 0..b.num_rows() {
            let zone = (!z.is_null(i)).then(|| z.value(i));
            for &sc in look.get(s.value(i), zone).as_slice() {
                for &w in self.timelines[sc].covering(t0.value(i)) {
                    self.acc[w as usize].violations += n.value(i) as f64;
                }
            }
        }
        Ok(())
    }

    /// The bins holding the ranks of each window's cycle quantiles.
    fn cycle_bins(&mut self) -> Picks {
        let mut per: Vec<Vec<(u64, u64)>> = vec![vec![]; self.windows.len()];
        for (&k, &n) in &self.hist {
            per[(k >> 20) as usize].push((k & 0xF_FFFF, n));
        }
        let mut picks = Picks {
            bins: IntMap::default(),
            wanted: vec![[None; 2]; self.windows.len()],
        };
        for (w, bins) in per.iter_mut().enumerate() {
            bins.sort_unstable();
            let n: u64 = bins.iter().map(|b| b.1).sum();
            if n == 0 {
                continue;
            }
            // The bin and offset of a rank.
            let find = |rank: u64| {
                let mut below = 0;
                for &(bin, c) in bins.iter() {
                    if rank < below + c {
                        return (bin_key(w as u32, bin), (rank - below) as usize);
                    }
                    below += c;
                }
                unreachable!("rank below the count")
            };
            for (qi, q) in QUANTILES.iter().enumerate() {
                let pos = q * (n - 1) as f64;
                let (lo, hi) = (pos.floor() as u64, pos.ceil() as u64);
                let (kl, ol) = find(lo);
                let (kh, oh) = find(hi);
                picks.bins.entry(kl).or_default();
                picks.bins.entry(kh).or_default();
                picks.wanted[w][qi] = Some((kl, ol, kh, oh, pos - lo as f64));
            }
        }
        self.hist = IntMap::default();
        picks
    }

    /// Closes the accumulation: cumulative timelines and the sorted values
    /// of the quantile bins. Each window's measures are then read on demand
    /// ([`Measured::get`]), so no map per window is held.
    fn finish(mut self, picks: Picks) -> Measured<'w> {
        for tl in &mut self.timelines {
            for c in &mut tl.cum {
                for j in 1..c.len() {
                    c[j] += c[j - 1];
                }
            }
            for j in 1..tl.lti.len() {
                if tl.lti[j - 1] > tl.lti[j] {
                    tl.lti[j] = tl.lti[j - 1];
                }
            }
        }
        let mut picks = picks;
        for v in picks.bins.values_mut() {
            v.sort_by(f64::total_cmp);
        }
        Measured {
            meter: self,
            picks,
            memory: None,
        }
    }
}

/// The measured sums of a set of windows; [`Measured::get`] gives a
/// window's KPIs.
pub(crate) struct Measured<'w> {
    meter: Meter<'w>,
    picks: Picks,
    /// The memory-pool reservation of the sums (released when dropped).
    memory: Option<datafusion::execution::memory_pool::MemoryReservation>,
}

impl Measured<'_> {
    /// The number of windows.
    pub(crate) fn len(&self) -> usize {
        self.meter.windows.len()
    }

    /// Every KPI of window `w` (none past the last window).
    pub(crate) fn get(&self, w: usize) -> Option<BTreeMap<&'static str, Measure>> {
        let win = self.meter.windows.get(w)?;
        let tl = &self.meter.timelines[self.meter.scope_of[w]];
        let x = &self.meter.acc[w];
        let value = |k: u64, o: usize| self.picks.bins.get(&k).and_then(|v| v.get(o)).copied();
        let mut q = [None; 2];
        if let Some(wanted) = self.picks.wanted.get(w) {
            for (qi, p) in wanted.iter().enumerate() {
                if let Some((kl, ol, kh, oh, frac)) = *p
                    && let (Some(lo), Some(hi)) = (value(kl, ol), value(kh, oh))
                {
                    q[qi] = Some(quantile_at(lo, hi, frac));
                }
            }
        }
        let (cum, lti) = if win.b > win.a {
            let j = tl.at(win.b);
            (std::array::from_fn(|i| tl.cum[i][j] as f64), tl.lti[j])
        } else {
            ([0.0; 8], None)
        };
        Some(finish(x, &cum, lti, win, q))
    }
}

fn count(v: f64) -> Measure {
    Measure {
        value: Some(v),
        numerator: None,
        denominator: None,
    }
}

fn count_opt(v: Option<f64>) -> Measure {
    Measure {
        value: v,
        ..Default::default()
    }
}

fn ratio(n: f64, d: f64, k: f64) -> Measure {
    Measure {
        value: (d > 0.0).then(|| n * k / d),
        numerator: Some(n),
        denominator: Some(d),
    }
}

/// Every KPI of a window from its sums, the cumulative hazard counts at
/// its end, its last lost-time injury and its cycle quantiles.
fn finish(
    x: &Acc,
    cum: &[f64; 8],
    last_lti: Option<(i64, i64)>,
    w: &Window,
    cycle: [Option<f64>; 2],
) -> BTreeMap<&'static str, Measure> {
    let mut m = BTreeMap::new();
    let hours = x.hours;
    let g = |r: usize| x.severity[r];
    m.insert("hours_worked", count(hours));
    m.insert("average_headcount", count(x.heads));
    m.insert("incidents", count(x.all));
    m.insert("near_misses", count(g(0)));
    m.insert("first_aid_cases", count(g(1)));
    m.insert("minor_injuries", count(g(2)));
    m.insert("serious_injuries", count(g(3)));
    m.insert("fatalities", count(g(4)));
    m.insert("injured_persons", count(x.injured));
    m.insert("recordables", count(x.recordables));
    m.insert("lost_time_injuries", count(x.lti));
    m.insert("lost_days", count(x.lost));
    m.insert("trir", ratio(x.recordables, hours, 200_000.0));
    m.insert("dart", ratio(x.lti, hours, 200_000.0));
    m.insert("ltir", ratio(x.lti, hours, 200_000.0));
    m.insert("severity_rate", ratio(x.lost, hours, 200_000.0));
    m.insert("ltifr", ratio(x.lti, hours, 1e6));
    m.insert("trifr", ratio(x.recordables, hours, 1e6));
    m.insert("injury_frequency_rate", ratio(x.injured, hours, 1e6));
    m.insert("injury_severity_rate", ratio(x.lost, hours, 1e6));
    m.insert("fatality_rate_per_1000", ratio(g(4), x.heads, 1000.0));
    m.insert(
        "days_since_lti",
        count_opt(last_lti.map(|(_, l)| (w.b - l) as f64 / DAY)),
    );
    m.insert("hazards_found", count(x.found));
    m.insert("hazards_closed", count(x.closed));
    m.insert("rectification_rate", ratio(x.closed, x.found, 1.0));
    m.insert("on_time_rate", ratio(x.on_time, x.due, 1.0));
    m.insert("rectification_cycle_hours", count_opt(cycle[0]));
    m.insert("rectification_cycle_p90_hours", count_opt(cycle[1]));
    m.insert("open_hazards", count(cum[0] - cum[1]));
    m.insert("overdue_hazards", count(cum[2] - cum[3]));
    m.insert("major_hazards_found", count(x.major_found));
    m.insert("major_open_hazards", count(cum[4] - cum[5]));
    m.insert("major_overdue_hazards", count(cum[6] - cum[7]));
    if w.scope.zone.is_none() {
        m.insert("training_coverage", ratio(x.trained, x.heads, 1.0));
        m.insert(
            "leader_inspections_per_month",
            ratio(x.inspections, x.inspectors * w.months, 1.0),
        );
        m.insert("drills", count(x.drills));
        m.insert("drill_response_minutes", ratio(x.drill_sum, x.drill_n, 1.0));
        m.insert("suggestions_per_month", ratio(x.suggestions, w.months, 1.0));
        m.insert(
            "equipment_readiness",
            ratio(x.equipment_sum, x.equipment_n, 1.0),
        );
    }
    m.insert("violations", count(x.violations));
    m.insert("violations_per_1000h", ratio(x.violations, hours, 1000.0));
    m
}

#[cfg(test)]
#[path = "measure_tests.rs"]
mod tests;
