//! Monthly trends, Pareto, cross-tabs and the accident pyramid.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch};
use chrono::{Datelike, NaiveDate};
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, col, lit};

use crate::analysis::temporal::exposure::*;
use crate::analysis::temporal::options::*;
use crate::analysis::temporal::profile::*;
use crate::analysis::temporal::select::*;
use crate::model::options::EventKind;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::columns::col_as;
use crate::util::columns::str_col;
use crate::util::error::{Error, Result};

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
pub(crate) async fn monthly_hours(
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
pub(crate) async fn counts(
    ds: &Dataset,
    o: &PatternOptions,
    extra: &[Dim],
) -> Result<Vec<RecordBatch>> {
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

pub(crate) fn key_of(b: &RecordBatch, dims: &[Dim], i: usize) -> Result<Vec<Option<String>>> {
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
