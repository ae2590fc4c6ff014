//! Exposure by hour of the week: from exposure records, the shift roster,
//! positions or uniform.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, Float64Array, Int64Array};
use arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn::count_distinct;
use datafusion::logical_expr::{cast, col, lit};

use crate::analysis::temporal::options::*;
use crate::analysis::temporal::select::*;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::columns::col_as;
use crate::util::columns::str_col;
use crate::util::error::Result;

/// Exposure per hour of the week (168, Monday 00:00 first) of one scope.
#[derive(Debug, Clone)]
pub(crate) struct Exposure {
    /// Relative exposure per hour of the week.
    pub(crate) shape: Vec<f64>,
    /// Hours worked per hour of the week, when hours are known.
    pub(crate) hours: Option<Vec<f64>>,
    /// The source used.
    pub(crate) basis: &'static str,
}

/// Scope of exposure: the site and zone of a group, where `by` has them.
pub(crate) type Scope = (Option<String>, Option<String>);

pub(crate) fn scope_of(o: &PatternOptions, key: &[Option<String>]) -> Scope {
    let get = |d: Dim| {
        o.by.iter()
            .position(|x| *x == d)
            .and_then(|i| key[i].clone())
    };
    (get(Dim::Site), get(Dim::Zone))
}

/// Calendar hours of the window per hour of the week, weighted by `f(local)`.
pub(crate) fn calendar(clock: &mut Clock, q0: i64, q1: i64, f: &dyn Fn(&Local) -> f64) -> Vec<f64> {
    let mut v = vec![0.0; 168];
    for q in q0..q1 {
        let l = clock.local(q);
        v[l.weekday * 24 + l.hour] += 0.25 * f(&l);
    }
    v
}

pub(crate) async fn exposures(
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
pub(crate) struct ExposureRecord {
    pub(crate) scope: Scope,
    pub(crate) a: i64,
    pub(crate) z: i64,
    pub(crate) per_q: f64,
}

/// The exposure records overlapping `[q0, q1)`, keyed by the site and zone
/// of `by` (records without a zone are left out of zone scopes).
pub(crate) async fn exposure_records(
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
pub(crate) async fn record_hours(
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
pub(crate) async fn position_hours(
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
