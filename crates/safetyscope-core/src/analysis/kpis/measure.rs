//! The KPI measures of many windows (a scope and a time range) in one pass
//! over each table: each input is a plan ending in the `kpi_meter`
//! aggregate (see [`crate::analysis::kpis::meter`]), so the rows are
//! folded where the plan runs and only the windows' sums come back.
//! Datasets that keep their facts (an interactive session) fold the kept
//! inputs directly.

use std::collections::BTreeMap;

use arrow::array::{Array, BinaryArray, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, cast, col, lit};

use crate::analysis::kpis::meter::{Acc, Config, Input, Meter, Wanted};
use crate::analysis::kpis::scope::Measure;
pub(crate) use crate::analysis::kpis::timeline::{Outline, Window};
use crate::model::schema::TableKind;
use crate::model::time::parse_tz;
use crate::session::dataset::Dataset;
use crate::util::columns::col_as as typed;
use crate::util::columns::str_col as strs;
use crate::util::error::Result;
use crate::util::stats::quantile_at;

const DAY: f64 = 86_400_000_000.0;

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
) -> Result<Option<DataFrame>> {
    use datafusion::functions_aggregate::expr_fn::{count, max, min};
    let t = cast(col(time), DataType::Int64);
    let Some((lo, hi)) = ds.time_span(kind, time).await? else {
        return Ok(None);
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
    Ok(Some(table(ds, kind, site).await?.aggregate(
        group,
        vec![
            count(lit(1i64)).alias("n"),
            min(t.clone()).alias("t0"),
            max(t).alias("t1"),
        ],
    )?))
}

/// Columns of a table, timestamps as µs, of the rows `keep` selects.
async fn rows(
    ds: &Dataset,
    kind: TableKind,
    (cols, times): (&[&str], &[&str]),
    keep: Option<Expr>,
    site: Option<&str>,
) -> Result<DataFrame> {
    let mut exprs: Vec<Expr> = cols.iter().map(|c| col(*c)).collect();
    for c in times {
        exprs.push(cast(col(*c), DataType::Int64).alias(*c));
    }
    let mut df = table(ds, kind, site).await?;
    if let Some(k) = keep {
        df = df.filter(k)?;
    }
    Ok(df.select(exprs)?)
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

/// The rows of one input of the meter (none without its table). `cuts`:
/// the window bounds that fall within a local day, where the per-day
/// counts must split.
async fn plan(
    ds: &Dataset,
    input: Input,
    site: Option<&str>,
    cuts: &[i64],
) -> Result<Option<DataFrame>> {
    let kind = match input {
        Input::Incidents => TableKind::Incidents,
        Input::Hazards | Input::Cycles => TableKind::Hazards,
        Input::People | Input::Valued | Input::Counted => TableKind::Activities,
        Input::Exposure => TableKind::Exposure,
        Input::Violations => TableKind::Violations,
    };
    if !ds.has_table(kind) {
        return Ok(None);
    }
    Ok(match input {
        Input::Incidents => {
            daily(
                ds,
                kind,
                "occurred_at",
                &["site", "zone", "severity", "recordable", "lost_days"],
                site,
                cuts,
            )
            .await?
        }
        Input::Hazards | Input::Cycles => {
            let cols: &[&str] = &["site", "zone", "level"];
            let times: &[&str] = &["reported_at", "due_at", "closed_at"];
            Some(rows(ds, kind, (cols, times), None, site).await?)
        }
        // Grouped by person, so that a window counts each person once: a
        // hash aggregate, with no sort of the rows.
        Input::People => {
            use datafusion::functions_aggregate::expr_fn::array_agg;
            Some(
                table(ds, kind, site)
                    .await?
                    .filter(per_person())?
                    .aggregate(
                        vec![col("site"), col("person_id"), col("kind")],
                        vec![array_agg(cast(col("at"), DataType::Int64)).alias("at")],
                    )?,
            )
        }
        Input::Valued => {
            let cols: &[&str] = &["site", "kind", "value", "person_id"];
            Some(rows(ds, kind, (cols, &["at"]), Some(valued()), site).await?)
        }
        Input::Counted => {
            let keep = (!per_person()).and(!valued());
            let cols: &[&str] = &["site", "kind", "person_id"];
            Some(rows(ds, kind, (cols, &["at"]), Some(keep), site).await?)
        }
        Input::Exposure => {
            let cols: &[&str] = &["site", "zone", "hours_worked", "headcount"];
            let times: &[&str] = &["period_start", "period_end"];
            Some(rows(ds, kind, (cols, times), None, site).await?)
        }
        Input::Violations => daily(ds, kind, "detected_at", &["site", "zone"], site, cuts).await?,
    })
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
            for i in Input::TABLES {
                all.push(match plan(ds, i, site, &[]).await? {
                    Some(df) => df.collect().await?,
                    None => vec![],
                });
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

    /// Adds an input's rows to the meter: the kept ones here, else those
    /// of a plan that folds them into partial meters, partition by
    /// partition (on a cluster, on its executors), and returns the merged
    /// sums.
    async fn feed(&self, ds: &Dataset, m: &mut Meter, input: Input, cuts: &[i64]) -> Result<()> {
        let per_day = matches!(input, Input::Incidents | Input::Violations);
        let at = if input == Input::Cycles {
            Input::Hazards
        } else {
            input
        };
        if let Some(k) = self.kept.as_ref().filter(|_| !per_day || cuts.is_empty()) {
            for b in &k[at as usize] {
                m.fold(input, b)?;
            }
            return Ok(());
        }
        let Some(df) = plan(ds, input, self.site.as_deref(), cuts).await? else {
            return Ok(());
        };
        let config = Config {
            input,
            windows: m.windows.clone(),
            bins: m.picked.keys().copied().collect(),
        };
        let sums = df
            .aggregate(vec![], vec![config.call().alias("sums")])?
            .collect()
            .await?;
        for b in sums {
            let s = typed::<BinaryArray>(&b, "sums")?;
            for v in s.iter().flatten() {
                m.merge(v)?;
            }
        }
        Ok(())
    }

    /// Every KPI of each window, in the windows' order. `cycles` asks for
    /// the rectification cycle quantiles (a second pass over the hazards).
    pub(crate) async fn measure(
        &self,
        ds: &Dataset,
        windows: &[Window],
        cycles: bool,
    ) -> Result<Measured> {
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
        let mut m = Meter::new(windows.to_vec().into(), &[]);
        for input in Input::TABLES {
            self.feed(ds, &mut m, input, &cuts).await?;
        }
        let mut wanted = vec![];
        if cycles {
            let (keys, w) = m.cycle_bins();
            wanted = w;
            if !keys.is_empty() {
                let mut picking = Meter::new(m.windows.clone(), &keys);
                self.feed(ds, &mut picking, Input::Cycles, &cuts).await?;
                m.picked = picking.picked;
            }
        }
        m.finish();
        Ok(Measured {
            meter: m,
            wanted,
            _memory: memory,
        })
    }
}

/// The measured sums of a set of windows; [`Measured::get`] gives a
/// window's KPIs.
pub(crate) struct Measured {
    meter: Meter,
    wanted: Wanted,
    /// The memory-pool reservation of the sums (released when dropped).
    _memory: datafusion::execution::memory_pool::MemoryReservation,
}

impl Measured {
    /// The number of windows.
    pub(crate) fn len(&self) -> usize {
        self.meter.windows.len()
    }

    /// Every KPI of window `w` (none past the last window).
    pub(crate) fn get(&self, w: usize) -> Option<BTreeMap<&'static str, Measure>> {
        let win = self.meter.windows.get(w)?;
        let tl = &self.meter.timelines[self.meter.scope_of[w]];
        let none = Acc::default();
        let x = self.meter.acc.get(w).unwrap_or(&none);
        let value = |k: u64, o: usize| self.meter.picked.get(&k).and_then(|v| v.get(o)).copied();
        let mut q = [None; 2];
        if let Some(wanted) = self.wanted.get(w) {
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
            (
                std::array::from_fn(|i| tl.cum[i].get(j).copied().unwrap_or(0) as f64),
                tl.lti.get(j).copied().flatten(),
            )
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
    let hours = x.hours.value();
    let g = |r: usize| x.severity[r];
    m.insert("hours_worked", count(hours));
    m.insert("average_headcount", count(x.heads.value()));
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
    m.insert(
        "fatality_rate_per_1000",
        ratio(g(4), x.heads.value(), 1000.0),
    );
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
        m.insert("training_coverage", ratio(x.trained, x.heads.value(), 1.0));
        m.insert(
            "leader_inspections_per_month",
            ratio(x.inspections, x.inspectors * w.months, 1.0),
        );
        m.insert("drills", count(x.drills));
        m.insert(
            "drill_response_minutes",
            ratio(x.drill_sum.value(), x.drill_n, 1.0),
        );
        m.insert("suggestions_per_month", ratio(x.suggestions, w.months, 1.0));
        m.insert(
            "equipment_readiness",
            ratio(x.equipment_sum.value(), x.equipment_n, 1.0),
        );
    }
    m.insert("violations", count(x.violations));
    m.insert("violations_per_1000h", ratio(x.violations, hours, 1000.0));
    m
}

#[cfg(test)]
#[path = "measure_tests.rs"]
mod tests;
