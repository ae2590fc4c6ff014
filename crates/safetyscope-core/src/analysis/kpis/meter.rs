//! The KPI meter: the sums of many windows (a scope and a time range),
//! taken as an aggregate function of the plan, `kpi_meter`.
//!
//! Per scope, the window bounds cut time into segments; a row finds the
//! windows covering its instant by a binary search and adds to their sums.
//! Counts taken at a window's end (open and overdue hazards, the last
//! lost-time injury) are kept per segment and made cumulative at the end.
//! Rectification cycle quantiles are exact without keeping the cycles: the
//! first pass counts them per window in bins of their leading 20 bits, the
//! second keeps only those in the bins that hold the wanted ranks. Memory
//! grows with the windows and the distinct names, not with the rows.
//!
//! Every partition of a plan folds its rows into its own meter, and the
//! meters merge: counts add, the end-of-window counts add per segment, the
//! latest lost-time injury is the latest of both. Fractional sums (hours,
//! headcount, drill minutes, readiness) are [`ExactSum`]s, so they have the
//! same bits however the rows were split, on one machine or on a cluster.
//!
//! `kpi_meter(config, columns…)` takes the windows and the input as its
//! first argument, a constant: the configuration's bytes as hex text
//! (the plan's names quote it), in a dictionary-encoded literal so that a
//! batch does not copy it per row. It returns the encoded sums.
//! It travels in plans to a Ballista cluster by name, whose scheduler and
//! executors register it (`safetyscope_core::udafs`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
};
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, Signature, Volatility, lit,
};
use datafusion::physical_expr::expressions::Literal;

use crate::analysis::kpis::scope::Scope;
use crate::analysis::kpis::timeline::*;
use crate::util::columns::col_as as typed;
use crate::util::columns::str_col as strs;
use crate::util::error::{Error, Result};
use crate::util::fasthash::IntMap;
use crate::util::stats::ExactSum;

pub(crate) const HOUR: f64 = 3_600_000_000.0;

/// The inputs of the KPIs, each a DataFusion plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// Incidents per local day, zone, severity, recordability and lost days.
    Incidents,
    /// Hazards, one row each.
    Hazards,
    /// Training and inspections with a person: one row per site, person
    /// and kind with the instants as a list.
    People,
    /// Drills and equipment checks.
    Valued,
    /// Other activities.
    Counted,
    /// Exposure rows.
    Exposure,
    /// Violations per local day and zone.
    Violations,
    /// Hazards again: the cycles in the bins of the wanted quantiles.
    Cycles,
}

impl Input {
    /// The columns the meter reads, in the order of the function's
    /// arguments.
    pub(crate) fn columns(self) -> &'static [&'static str] {
        match self {
            Input::Incidents => &[
                "site",
                "zone",
                "severity",
                "recordable",
                "lost_days",
                "day",
                "n",
                "t0",
                "t1",
            ],
            Input::Hazards | Input::Cycles => &[
                "site",
                "zone",
                "level",
                "reported_at",
                "due_at",
                "closed_at",
            ],
            Input::People => &["site", "person_id", "kind", "at"],
            Input::Valued => &["site", "kind", "value", "person_id", "at"],
            Input::Counted => &["site", "kind", "person_id", "at"],
            Input::Exposure => &[
                "site",
                "zone",
                "hours_worked",
                "headcount",
                "period_start",
                "period_end",
            ],
            Input::Violations => &["site", "zone", "day", "n", "t0", "t1"],
        }
    }

    /// The inputs read from the tables, in the order of their
    /// discriminants (kept inputs are indexed by them).
    pub(crate) const TABLES: [Input; 7] = [
        Input::Incidents,
        Input::Hazards,
        Input::People,
        Input::Valued,
        Input::Counted,
        Input::Exposure,
        Input::Violations,
    ];
}

// -------------------------------------------------------------- accumulation

/// Sums of one window. The counts are whole numbers held as `f64` (exact
/// below 2⁵³); the fractional sums are exact until read.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Acc {
    pub(crate) hours: ExactSum,
    pub(crate) heads: ExactSum,
    pub(crate) severity: [f64; 5],
    pub(crate) all: f64,
    pub(crate) injured: f64,
    pub(crate) recordables: f64,
    pub(crate) lti: f64,
    pub(crate) lost: f64,
    pub(crate) found: f64,
    pub(crate) major_found: f64,
    pub(crate) closed: f64,
    pub(crate) due: f64,
    pub(crate) on_time: f64,
    pub(crate) trained: f64,
    trained_mark: u64,
    pub(crate) inspectors: f64,
    inspector_mark: u64,
    pub(crate) inspections: f64,
    pub(crate) drills: f64,
    pub(crate) drill_sum: ExactSum,
    pub(crate) drill_n: f64,
    pub(crate) suggestions: f64,
    pub(crate) equipment_sum: ExactSum,
    pub(crate) equipment_n: f64,
    pub(crate) violations: f64,
}

impl Acc {
    /// The counts, in a fixed order (to merge and encode them).
    fn counts(&mut self) -> [&mut f64; 23] {
        let [s0, s1, s2, s3, s4] = &mut self.severity;
        [
            s0,
            s1,
            s2,
            s3,
            s4,
            &mut self.all,
            &mut self.injured,
            &mut self.recordables,
            &mut self.lti,
            &mut self.lost,
            &mut self.found,
            &mut self.major_found,
            &mut self.closed,
            &mut self.due,
            &mut self.on_time,
            &mut self.trained,
            &mut self.inspectors,
            &mut self.inspections,
            &mut self.drills,
            &mut self.drill_n,
            &mut self.suggestions,
            &mut self.equipment_n,
            &mut self.violations,
        ]
    }

    /// The fractional sums, in a fixed order.
    fn sums(&mut self) -> [&mut ExactSum; 4] {
        [
            &mut self.hours,
            &mut self.heads,
            &mut self.drill_sum,
            &mut self.equipment_sum,
        ]
    }
}

impl Acc {
    /// Whether nothing was added (the marks only tell people apart).
    fn is_empty(&self) -> bool {
        *self
            == Acc {
                trained_mark: self.trained_mark,
                inspector_mark: self.inspector_mark,
                ..Acc::default()
            }
    }
}

/// Past this many windows, a meter keeps the sums of the windows rows
/// reached in a map instead of one per window: every partition of a plan
/// holds a meter, and most of many windows (years of months of a thousand
/// sites) are reached by few of its rows.
const DENSE_WINDOWS: usize = 1 << 16;

/// The sums of the windows.
#[derive(Debug)]
pub(crate) enum Sums {
    /// One per window.
    Dense(Vec<Acc>),
    /// Those of the windows rows reached.
    Sparse(IntMap<Acc>),
}

impl Sums {
    fn new(windows: usize) -> Sums {
        if windows <= DENSE_WINDOWS {
            Sums::Dense(vec![Acc::default(); windows])
        } else {
            Sums::Sparse(IntMap::default())
        }
    }

    /// The sums of window `w`, to add to.
    #[inline]
    pub(crate) fn at(&mut self, w: u32) -> &mut Acc {
        match self {
            Sums::Dense(v) => &mut v[w as usize],
            Sums::Sparse(m) => m.entry(u64::from(w)).or_default(),
        }
    }

    /// The sums of window `w` (none when no row reached it).
    pub(crate) fn get(&self, w: usize) -> Option<&Acc> {
        match self {
            Sums::Dense(v) => v.get(w),
            Sums::Sparse(m) => m.get(&(w as u64)),
        }
    }

    /// The windows rows reached, with their sums.
    fn reached(&mut self) -> Vec<(u64, &mut Acc)> {
        match self {
            Sums::Dense(v) => v
                .iter_mut()
                .enumerate()
                .filter(|(_, a)| !a.is_empty())
                .map(|(w, a)| (w as u64, a))
                .collect(),
            Sums::Sparse(m) => m.iter_mut().map(|(w, a)| (*w, a)).collect(),
        }
    }

    fn heap_size(&self) -> usize {
        let each = |a: &Acc| {
            std::mem::size_of::<Acc>()
                + [&a.hours, &a.heads, &a.drill_sum, &a.equipment_sum]
                    .iter()
                    .map(|s| s.heap_size())
                    .sum::<usize>()
        };
        match self {
            Sums::Dense(v) => v.iter().map(each).sum(),
            Sums::Sparse(m) => m.values().map(|a| each(a) + 16).sum(),
        }
    }
}

/// A cycle's order-preserving bit pattern.
pub(crate) fn order_key(v: f64) -> u64 {
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

/// Where a quantile lies: the bin key and offset within the bin of the
/// values below and above it, and the fraction between them.
pub(crate) type Between = (u64, usize, u64, usize, f64);

/// Per window and quantile (0.5, 0.9): where the quantile lies (see
/// [`Meter::cycle_bins`]).
pub(crate) type Wanted = Vec<[Option<Between>; 2]>;

const QUANTILES: [f64; 2] = [0.5, 0.9];

/// Accumulates the sums of a set of windows.
#[derive(Debug)]
pub(crate) struct Meter {
    pub(crate) windows: Arc<[Window]>,
    pub(crate) scope_of: Vec<usize>,
    scopes: Scopes,
    zoned: Vec<bool>,
    pub(crate) timelines: Vec<Timeline>,
    pub(crate) acc: Sums,
    /// Closed hazards per window and cycle bin.
    hist: IntMap<u64>,
    /// The cycles found in the picked bins (keys set before the second
    /// pass over the hazards).
    pub(crate) picked: IntMap<Vec<f64>>,
    /// Sequence number of the current (site, person, kind) of the
    /// training and inspections.
    person: u64,
}

impl Meter {
    /// A meter of `windows` with nothing added; `bins` are the cycle bins
    /// the second pass keeps.
    pub(crate) fn new(windows: Arc<[Window]>, bins: &[u64]) -> Meter {
        let mut index: BTreeMap<&Scope, usize> = BTreeMap::new();
        let mut scope_of = vec![];
        for w in windows.iter() {
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
            scope_of,
            scopes,
            zoned,
            timelines: per.into_iter().map(Timeline::new).collect(),
            acc: Sums::new(windows.len()),
            hist: IntMap::default(),
            picked: bins.iter().map(|&k| (k, vec![])).collect(),
            person: 0,
            windows,
        }
    }

    /// Adds a batch of an input's rows.
    pub(crate) fn fold(&mut self, input: Input, b: &RecordBatch) -> Result<()> {
        match input {
            Input::Incidents => self.incidents(b),
            Input::Hazards => self.hazards(b, false),
            Input::Cycles => self.hazards(b, true),
            Input::People => self.people(b),
            Input::Valued | Input::Counted => self.activities(b),
            Input::Exposure => self.exposure(b),
            Input::Violations => self.violations(b),
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
                        let acc = self.acc.at(w);
                        acc.hours.add(h.value(i) * ov / (end - start) as f64);
                        if !hc.is_null(i) {
                            acc.heads
                                .add(f64::from(hc.value(i)) * ov / (win.b - win.a) as f64);
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
                    tl.ensure();
                    let slot = tl.slot(t);
                    let v = (day.value(i), t1.value(i));
                    tl.lti[slot] = Some(tl.lti[slot].map_or(v, |x| x.max(v)));
                }
                for &w in tl.covering(t) {
                    let acc = self.acc.at(w);
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

    /// Hazards: counts and cycle bins, or (`cycles`) the cycles in the
    /// picked bins.
    fn hazards(&mut self, b: &RecordBatch, cycles: bool) -> Result<()> {
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
            if cycles {
                let (Some(c), Some(v)) = (c, cycle) else {
                    continue;
                };
                for &sc in ids.as_slice() {
                    for &w in self.timelines[sc].covering(rep) {
                        if c < self.windows[w as usize].b
                            && let Some(vals) = self.picked.get_mut(&bin_key(w, bin))
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
                tl.ensure();
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
                    let acc = self.acc.at(w);
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
                            let acc = self.acc.at(w);
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
                        let acc = self.acc.at(w);
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
                    let acc = self.acc.at(w);
                    match kind {
                        "drill" => {
                            acc.drills += 1.0;
                            if let Some(v) = value {
                                acc.drill_sum.add(v);
                                acc.drill_n += 1.0;
                            }
                        }
                        "suggestion" => acc.suggestions += 1.0,
                        "equipment_check" => {
                            if let Some(v) = value {
                                acc.equipment_sum.add(v);
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
                    self.acc.at(w).violations += n.value(i) as f64;
                }
            }
        }
        Ok(())
    }

    /// The bins holding the ranks of each window's cycle quantiles, and
    /// where in them each quantile lies.
    pub(crate) fn cycle_bins(&self) -> (Vec<u64>, Wanted) {
        let mut per: Vec<Vec<(u64, u64)>> = vec![vec![]; self.windows.len()];
        for (&k, &n) in &self.hist {
            per[(k >> 20) as usize].push((k & 0xF_FFFF, n));
        }
        let mut keys = vec![];
        let mut wanted = vec![[None; 2]; self.windows.len()];
        for (w, bins) in per.iter_mut().enumerate() {
            bins.sort_unstable();
            let n: u64 = bins.iter().map(|b| b.1).sum();
            if n == 0 {
                continue;
            }
            // The bin and offset of a rank (below the count).
            let find = |rank: u64| {
                let mut below = 0;
                let mut last = (0, 0);
                for &(bin, c) in bins.iter() {
                    last = (
                        bin_key(w as u32, bin),
                        (rank.saturating_sub(below)) as usize,
                    );
                    if rank < below + c {
                        break;
                    }
                    below += c;
                }
                last
            };
            for (qi, q) in QUANTILES.iter().enumerate() {
                let pos = q * (n - 1) as f64;
                let (lo, hi) = (pos.floor() as u64, pos.ceil() as u64);
                let (kl, ol) = find(lo);
                let (kh, oh) = find(hi);
                keys.extend([kl, kh]);
                wanted[w][qi] = Some((kl, ol, kh, oh, pos - lo as f64));
            }
        }
        keys.sort_unstable();
        keys.dedup();
        (keys, wanted)
    }

    /// Closes the accumulation: cumulative timelines and the sorted values
    /// of the picked bins.
    pub(crate) fn finish(&mut self) {
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
        for v in self.picked.values_mut() {
            v.sort_by(f64::total_cmp);
        }
    }

    /// Bytes held.
    fn size(&self) -> usize {
        let timelines: usize = self
            .timelines
            .iter()
            .map(|t| {
                t.lti.capacity() * (8 * 8 + 24)
                    + t.bounds.capacity() * 8
                    + t.cover.iter().map(|c| 24 + 4 * c.capacity()).sum::<usize>()
            })
            .sum();
        let picked: usize = self.picked.values().map(|v| 48 + 8 * v.capacity()).sum();
        std::mem::size_of::<Self>()
            + self.acc.heap_size()
            + timelines
            + picked
            + self.hist.len() * 24
            + self.windows.len() * (std::mem::size_of::<Window>() + 16)
    }

    // ---------------------------------------------------------- as bytes

    /// The sums as bytes (the state of `kpi_meter`).
    pub(crate) fn encode(&mut self) -> Vec<u8> {
        let mut o = Out::default();
        // Only the windows and scopes rows reached.
        let reached = self.acc.reached();
        o.u(reached.len() as u64);
        for (w, a) in reached {
            o.u(w);
            for c in a.counts() {
                o.f(*c);
            }
            for s in a.sums() {
                let (p, special) = s.parts();
                o.u(p.len() as u64);
                p.iter().for_each(|&x| o.f(x));
                o.f(special);
            }
        }
        for tl in &self.timelines {
            o.u(u64::from(tl.touched()));
            if !tl.touched() {
                continue;
            }
            for c in &tl.cum {
                c.iter().for_each(|&x| o.i(x));
            }
            for l in &tl.lti {
                match l {
                    Some((d, t)) => {
                        o.u(1);
                        o.i(*d);
                        o.i(*t);
                    }
                    None => o.u(0),
                }
            }
        }
        // In the maps' order: merging adds, so the order is free.
        o.u(self.hist.len() as u64);
        for (k, n) in &self.hist {
            o.u(*k);
            o.u(*n);
        }
        o.u(self.picked.len() as u64);
        for (k, v) in &self.picked {
            o.u(*k);
            o.u(v.len() as u64);
            v.iter().for_each(|&x| o.f(x));
        }
        o.0
    }

    /// Adds the sums of another meter of the same windows, as bytes.
    pub(crate) fn merge(&mut self, bytes: &[u8]) -> Result<()> {
        let mut r = In { b: bytes, at: 0 };
        for _ in 0..r.len(8 * 24)? {
            let w = u32::try_from(r.u()?)
                .ok()
                .filter(|&w| (w as usize) < self.windows.len())
                .ok_or_else(state_error)?;
            let a = self.acc.at(w);
            for c in a.counts() {
                *c += r.f()?;
            }
            for s in a.sums() {
                let n = r.len(8)?;
                let p: Vec<f64> = (0..n).map(|_| r.f()).collect::<Result<_>>()?;
                let special = r.f()?;
                s.merge(&ExactSum::from_parts(&p, special));
            }
        }
        for tl in &mut self.timelines {
            if r.u()? == 0 {
                continue;
            }
            tl.ensure();
            for c in &mut tl.cum {
                for x in c.iter_mut() {
                    *x += r.i()?;
                }
            }
            for l in &mut tl.lti {
                if r.u()? == 1 {
                    let v = (r.i()?, r.i()?);
                    *l = Some(l.map_or(v, |x| x.max(v)));
                }
            }
        }
        for _ in 0..r.len(16)? {
            let (k, n) = (r.u()?, r.u()?);
            if (k >> 20) as usize >= self.windows.len() {
                return Err(state_error());
            }
            *self.hist.entry(k).or_default() += n;
        }
        for _ in 0..r.len(16)? {
            let k = r.u()?;
            let n = r.len(8)?;
            let e = self.picked.entry(k).or_default();
            for _ in 0..n {
                e.push(r.f()?);
            }
        }
        if r.at != bytes.len() {
            return Err(state_error());
        }
        Ok(())
    }
}

fn state_error() -> Error {
    Error::schema(
        "kpi_meter",
        "a partial state does not match the windows (a cluster with another build?)",
    )
}

#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn u(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A small count in as few bytes as it needs (7 bits a byte).
    fn v(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn s(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.u(s.len() as u64 + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
            None => self.u(0),
        }
    }
}

struct In<'a> {
    b: &'a [u8],
    at: usize,
}

impl In<'_> {
    fn word(&mut self) -> Result<[u8; 8]> {
        let w = self
            .b
            .get(self.at..self.at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .ok_or_else(state_error)?;
        self.at += 8;
        Ok(w)
    }
    fn u(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.word()?))
    }
    fn i(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.word()?))
    }
    fn f(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.word()?))
    }
    /// A count of items of `each` bytes at least, checked against the
    /// bytes left (so a corrupt count cannot allocate).
    fn len(&mut self, each: usize) -> Result<usize> {
        let n = self.u()?;
        self.fits(n, each)
    }
    /// [`In::len`] of a count written with [`Out::v`].
    fn count(&mut self, each: usize) -> Result<usize> {
        let n = self.v()?;
        self.fits(n, each)
    }
    fn fits(&self, n: u64, each: usize) -> Result<usize> {
        let left = (self.b.len() - self.at) / each.max(1);
        if n > left as u64 {
            return Err(state_error());
        }
        Ok(n as usize)
    }
    fn v(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.b.get(self.at).ok_or_else(state_error)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(state_error())
    }
    fn s(&mut self) -> Result<Option<String>> {
        let n = self.u()?;
        if n == 0 {
            return Ok(None);
        }
        let n = usize::try_from(n - 1).map_err(|_| state_error())?;
        let bytes = self.b.get(self.at..self.at + n).ok_or_else(state_error)?;
        self.at += n;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| state_error())
    }
}

// ---------------------------------------------------------- the function

/// What a `kpi_meter` call measures: the input it reads, the windows and
/// (for [`Input::Cycles`]) the bins to keep.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub(crate) input: Input,
    pub(crate) windows: Arc<[Window]>,
    pub(crate) bins: Vec<u64>,
}

impl Config {
    /// The configuration as bytes: the distinct scopes and time ranges
    /// once, then each window as the numbers of its scope and range (the
    /// windows are mostly scopes × periods).
    fn encode(&self) -> Vec<u8> {
        let mut o = Out::default();
        o.v(self.input as u64);
        let mut scopes: Vec<&Scope> = vec![];
        let mut ranges: Vec<(i64, i64, u64)> = vec![];
        let mut scope_ids: BTreeMap<&Scope, u64> = BTreeMap::new();
        let mut range_ids: std::collections::HashMap<(i64, i64, u64), u64> = Default::default();
        let mut pairs = vec![];
        for w in self.windows.iter() {
            let s = *scope_ids.entry(&w.scope).or_insert_with(|| {
                scopes.push(&w.scope);
                scopes.len() as u64 - 1
            });
            let key = (w.a, w.b, w.months.to_bits());
            let r = *range_ids.entry(key).or_insert_with(|| {
                ranges.push(key);
                ranges.len() as u64 - 1
            });
            pairs.push((s, r));
        }
        o.v(scopes.len() as u64);
        for s in scopes {
            o.s(s.site.as_deref());
            o.s(s.zone.as_deref());
        }
        o.v(ranges.len() as u64);
        for (a, b, m) in ranges {
            o.i(a);
            o.i(b);
            o.u(m);
        }
        o.v(pairs.len() as u64);
        for (s, r) in pairs {
            o.v(s);
            o.v(r);
        }
        o.v(self.bins.len() as u64);
        self.bins.iter().for_each(|&b| o.u(b));
        o.0
    }

    fn decode(bytes: &[u8]) -> Result<Config> {
        let mut r = In { b: bytes, at: 0 };
        let input = usize::try_from(r.v()?)
            .ok()
            .and_then(|i| {
                Input::TABLES
                    .get(i)
                    .copied()
                    .or((i == Input::Cycles as usize).then_some(Input::Cycles))
            })
            .ok_or_else(state_error)?;
        let mut scopes = vec![];
        for _ in 0..r.count(16)? {
            scopes.push(Scope {
                site: r.s()?,
                zone: r.s()?,
            });
        }
        let mut ranges = vec![];
        for _ in 0..r.count(24)? {
            ranges.push((r.i()?, r.i()?, r.f()?));
        }
        let mut windows = vec![];
        for _ in 0..r.count(2)? {
            let (s, g) = (r.v()?, r.v()?);
            let (Some(scope), Some(&(a, b, months))) = (
                usize::try_from(s).ok().and_then(|s| scopes.get(s)),
                usize::try_from(g).ok().and_then(|g| ranges.get(g)),
            ) else {
                return Err(state_error());
            };
            windows.push(Window {
                scope: scope.clone(),
                a,
                b,
                months,
            });
        }
        let bins = (0..r.count(8)?).map(|_| r.u()).collect::<Result<_>>()?;
        if r.at != bytes.len() {
            return Err(state_error());
        }
        Ok(Config {
            input,
            windows: windows.into(),
            bins,
        })
    }

    /// The call of `kpi_meter` with this configuration over the input's
    /// columns.
    pub(crate) fn call(&self) -> Expr {
        use std::fmt::Write;
        let mut hex = String::new();
        for b in self.encode() {
            let _ = write!(hex, "{b:02x}");
        }
        let config = ScalarValue::Dictionary(
            Box::new(DataType::Int32),
            Box::new(ScalarValue::Utf8(Some(hex))),
        );
        let mut args = vec![lit(config)];
        args.extend(
            self.input
                .columns()
                .iter()
                .map(|c| datafusion::logical_expr::col(*c)),
        );
        udaf().call(args)
    }
}

/// The `kpi_meter` aggregate function.
pub(crate) fn udaf() -> Arc<AggregateUDF> {
    static METER: OnceLock<Arc<AggregateUDF>> = OnceLock::new();
    METER
        .get_or_init(|| {
            Arc::new(AggregateUDF::new_from_impl(MeterUdaf {
                signature: Signature::variadic_any(Volatility::Immutable),
            }))
        })
        .clone()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MeterUdaf {
    signature: Signature,
}

impl AggregateUDFImpl for MeterUdaf {
    fn name(&self) -> &str {
        "kpi_meter"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "sums"),
            DataType::Binary,
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let config = match args
            .exprs
            .first()
            .and_then(|e| e.downcast_ref::<Literal>())
            .map(Literal::value)
        {
            Some(ScalarValue::Dictionary(_, v)) => match v.as_ref() {
                ScalarValue::Utf8(Some(h)) => Some(h),
                _ => None,
            },
            Some(ScalarValue::Utf8(Some(h))) => Some(h),
            _ => None,
        };
        let bytes = config.and_then(|h| {
            (h.len() % 2 == 0)
                .then(|| {
                    (0..h.len())
                        .step_by(2)
                        .map(|i| h.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
                        .collect::<Option<Vec<u8>>>()
                })
                .flatten()
        });
        let Some(bytes) = bytes else {
            return exec_err!("the first argument of kpi_meter must be its configuration");
        };
        let config = Config::decode(&bytes).map_err(to_df)?;
        let names = config.input.columns();
        if args.exprs.len() != names.len() + 1 {
            return exec_err!(
                "kpi_meter over {:?} takes {} columns, not {}",
                config.input,
                names.len(),
                args.exprs.len() - 1
            );
        }
        Ok(Box::new(MeterAcc {
            meter: Meter::new(config.windows, &config.bins),
            input: config.input,
        }))
    }
}

fn to_df(e: Error) -> datafusion::error::DataFusionError {
    e.into_plan()
}

#[derive(Debug)]
struct MeterAcc {
    meter: Meter,
    input: Input,
}

impl Accumulator for MeterAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let names = self.input.columns();
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = names
            .iter()
            .zip(&values[1..])
            .map(|(n, a)| (Field::new(*n, a.data_type().clone(), true), a.clone()))
            .unzip();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        self.meter.fold(self.input, &batch).map_err(to_df)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(s) = states.first().and_then(|s| s.as_binary_opt::<i32>()) else {
            return exec_err!("the state of kpi_meter is not binary");
        };
        for b in s.iter().flatten() {
            self.meter.merge(b).map_err(to_df)?;
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Binary(Some(self.meter.encode())))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.meter.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_and_sums_survive_their_bytes() {
        let w = |site: Option<&str>, zone: Option<&str>, a: i64, b: i64| Window {
            scope: Scope {
                site: site.map(str::to_string),
                zone: zone.map(str::to_string),
            },
            a,
            b,
            months: 1.5,
        };
        let windows: Arc<[Window]> = vec![
            w(None, None, 0, 100),
            w(Some("A"), None, 50, 200),
            w(Some("A"), Some("z"), -10, 60),
        ]
        .into();
        let c = Config {
            input: Input::Cycles,
            windows: windows.clone(),
            bins: vec![3, 1 << 40],
        };
        assert_eq!(Config::decode(&c.encode()).unwrap(), c);
        let mut m = Meter::new(windows.clone(), &[7]);
        m.acc.at(1).all = 3.0;
        m.acc.at(2).hours.add(0.1);
        m.timelines[0].ensure();
        m.timelines[0].cum[2][1] = 4;
        m.timelines[1].ensure();
        m.timelines[1].lti[1] = Some((5, 6));
        m.hist.insert(9, 2);
        m.picked.get_mut(&7).unwrap().push(2.5);
        let bytes = m.encode();
        let mut n = Meter::new(windows, &[7]);
        n.merge(&bytes).unwrap();
        n.merge(&bytes).unwrap();
        assert_eq!(n.acc.at(1).all, 6.0);
        assert_eq!(n.acc.at(2).hours.value(), 0.2);
        assert!(n.acc.get(0).is_none_or(Acc::is_empty));
        assert_eq!(n.timelines[0].cum[2][1], 8);
        assert_eq!(n.timelines[1].lti[1], Some((5, 6)));
        assert_eq!(n.hist[&9], 4);
        assert_eq!(n.picked[&7], vec![2.5, 2.5]);
        // Cut short or padded, a state is an error, not a panic.
        assert!(n.merge(&bytes[..bytes.len() - 3]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(n.merge(&long).is_err());
        assert!(Config::decode(&[0xff; 12]).is_err());
    }
}
