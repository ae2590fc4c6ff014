//! Episodes from streams of readings and position fixes: sensor alarm
//! episodes and electronic-fence intrusions. The risk map and the alert
//! lists count the same episodes.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, BooleanArray, ListArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, cast, col, lit, when};

use crate::analysis::followup::common::*;
use crate::analysis::followup::options::AlertOptions;
use crate::analysis::followup::options::MINUTE;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::session::episodes::{ENDED_BY, Ep, Kind, udaf};
use crate::util::columns::str_col as strs;
use crate::util::error::{Error, Result};

// ------------------------------------------------------------------ intrusions

/// Restricted cells of the plan: (site, cell, zone, x0, y0, x1, y1).
pub(crate) type Fence = (String, String, String, f64, f64, f64, f64);

pub(crate) async fn fences(ds: &Dataset, site: Option<&str>) -> Result<Vec<Fence>> {
    let mut out = vec![];
    for b in table_rows(
        ds,
        TableKind::Cells,
        site,
        &["site", "cell", "zone"],
        &[],
        &["x_min", "y_min", "x_max", "y_max", "restricted"],
    )
    .await?
    {
        let (s, c, z) = (strs(&b, "site")?, strs(&b, "cell")?, strs(&b, "zone")?);
        let r = b
            .column_by_name("restricted")
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            .ok_or_else(|| Error::schema("cells", "column `restricted` is not boolean"))?;
        let (x0, y0, x1, y1) = (
            floats(&b, "x_min")?,
            floats(&b, "y_min")?,
            floats(&b, "x_max")?,
            floats(&b, "y_max")?,
        );
        for i in 0..b.num_rows() {
            if r.is_null(i)
                || !r.value(i)
                || x0.is_null(i)
                || y0.is_null(i)
                || x1.is_null(i)
                || y1.is_null(i)
            {
                continue;
            }
            out.push((
                s.value(i).into(),
                c.value(i).into(),
                z.value(i).into(),
                x0.value(i),
                y0.value(i),
                x1.value(i),
                y1.value(i),
            ));
        }
    }
    Ok(out)
}

/// Entries into restricted (fenced) cells from the positions stream in
/// `[from, as_of)`: an episode starts at the first fix inside a restricted
/// cell and lasts while the person's consecutive fixes stay inside the same
/// cell no more than `max_gap_minutes` apart; it ends at the first fix
/// outside (`ended_by = "exit"`), at a longer gap (`"gap"`: the exit is the
/// last fix inside) or is still open at the end (`"ongoing"`). People on
/// the authorised list are ignored. Columns: `site`, `person_id`, `cell`,
/// `zone`, `entry`, `exit`, `dwell_minutes`, `fixes`, `ended_by`.
pub async fn fence_intrusions(ds: &Dataset, o: &AlertOptions) -> Result<RecordBatch> {
    o.check()?;
    let (from, as_of) = window(ds, o).await?;
    Ok(fence_intrusions_over(ds, o, &[(from, as_of)])
        .await?
        .remove(0))
}

/// [`fence_intrusions`] over each of `windows` (`[from, to)` in µs), from
/// one scan of the positions: the fixes' fences are a `CASE` of the plan,
/// the episodes one `fence_episodes` aggregate per window (its `FILTER` the
/// window), per site and person.
pub(crate) async fn fence_intrusions_over(
    ds: &Dataset,
    o: &AlertOptions,
    windows: &[(i64, i64)],
) -> Result<Vec<RecordBatch>> {
    let fences = fences(ds, o.site.as_deref()).await?;
    let mut eps: Vec<Vec<(String, String, Ep)>> = vec![vec![]; windows.len()];
    if !fences.is_empty() && ds.has_table(TableKind::Positions) && !windows.is_empty() {
        // The fence a fix lies in: the first of its site's restricted cells
        // that holds it.
        let mut sites: BTreeMap<&str, Vec<(usize, &Fence)>> = BTreeMap::new();
        for (i, f) in fences.iter().enumerate() {
            sites.entry(f.0.as_str()).or_default().push((i, f));
        }
        let (x, y) = (col("x"), col("y"));
        let mut by_site = when(lit(false), lit(ScalarValue::Float64(None)));
        for (site, fs) in &sites {
            let mut inside = when(lit(false), lit(ScalarValue::Float64(None)));
            for (i, f) in fs {
                inside = inside.when(
                    x.clone()
                        .gt_eq(lit(f.3))
                        .and(x.clone().lt(lit(f.5)))
                        .and(y.clone().gt_eq(lit(f.4)))
                        .and(y.clone().lt(lit(f.6))),
                    lit(*i as f64),
                );
            }
            by_site = by_site.when(col("site").eq(lit(site.to_string())), inside.end()?);
        }
        let fence = by_site.end()?;
        let t = cast(col("ts"), DataType::Int64);
        let mut wanted = within(&t, windows);
        if !o.authorised.is_empty() {
            let list = o.authorised.iter().map(|p| lit(p.clone())).collect();
            wanted = wanted.and(col("person_id").in_list(list, true));
        }
        let gap = (o.max_gap_minutes * MINUTE as f64) as i64;
        let f = udaf(Kind::Fence).call(vec![t.clone(), fence, lit(gap)]);
        let fs = per_window(f, &t, windows)?;
        let keys = &["site", "person_id"];
        for (key, lists) in episode_groups(ds, o, TableKind::Positions, wanted, keys, fs).await? {
            let mut key = key.into_iter().map(Option::unwrap_or_default);
            let (site, person) = (
                key.next().unwrap_or_default(),
                key.next().unwrap_or_default(),
            );
            for (w, list) in lists.into_iter().enumerate() {
                if let Some(e) = list.iter().find(|e| fences.get(e.value as usize).is_none()) {
                    return Err(Error::data(
                        "positions",
                        format!(
                            "an intrusion episode names fence {}, not one of the {} restricted cells",
                            e.value,
                            fences.len()
                        ),
                    ));
                }
                eps[w].extend(list.into_iter().map(|e| (site.clone(), person.clone(), e)));
            }
        }
    }
    let fence = |e: &Ep| &fences[e.value as usize];
    let tz = ds.timezone();
    eps.iter()
        .map(|eps| {
            let cols = Cols::default()
                .text("site", eps.iter().map(|e| Some(e.0.clone())).collect())
                .text("person_id", eps.iter().map(|e| Some(e.1.clone())).collect())
                .text(
                    "cell",
                    eps.iter().map(|e| Some(fence(&e.2).1.clone())).collect(),
                )
                .text(
                    "zone",
                    eps.iter().map(|e| Some(fence(&e.2).2.clone())).collect(),
                );
            let eps: Vec<&Ep> = eps.iter().map(|e| &e.2).collect();
            span(cols, tz, ["entry", "exit", "dwell_minutes"], &eps)
                .int("fixes", eps.iter().map(|e| Some(e.n)).collect())
                .text("ended_by", ended_by(&eps))
                .done()
        })
        .collect()
}

/// Rows whose instant `t` lies in one of `windows` (`[from, to)`): one
/// range from the first start to the last end, which the scan can prune by.
fn within(t: &Expr, windows: &[(i64, i64)]) -> Expr {
    let from = windows.iter().map(|w| w.0).min().unwrap_or(0);
    let to = windows.iter().map(|w| w.1).max().unwrap_or(0);
    t.clone().gt_eq(lit(from)).and(t.clone().lt(lit(to)))
}

/// The aggregate `f` once per window, each over the rows of its window.
fn per_window(f: Expr, t: &Expr, windows: &[(i64, i64)]) -> Result<Vec<Expr>> {
    use datafusion::logical_expr::ExprFunctionExt;
    windows
        .iter()
        .map(|&(a, b)| {
            Ok(f.clone()
                .filter(t.clone().gt_eq(lit(a)).and(t.clone().lt(lit(b))))
                .build()?)
        })
        .collect()
}

/// Rows per batch in the episode plans.
const EPISODE_BATCH: usize = 1024;

/// The episodes of each of `fs`, episode aggregates, per group of `keys`
/// over the rows of `kind` that pass `wanted` (and the site option), groups
/// with an episode in the order of their keys: only the episodes reach this
/// process.
async fn episode_groups(
    ds: &Dataset,
    o: &AlertOptions,
    kind: TableKind,
    wanted: Expr,
    keys: &[&str],
    fs: Vec<Expr>,
) -> Result<Vec<(Vec<Option<String>>, Vec<Vec<Ep>>)>> {
    let mut df = ds.table(kind).await?.filter(wanted)?;
    if let Some(s) = &o.site {
        df = df.filter(col("site").eq(lit(s.clone())))?;
    }
    let df = df.aggregate(
        keys.iter().map(|k| col(*k)).collect(),
        fs.into_iter()
            .enumerate()
            .map(|(i, f)| f.alias(format!("episodes_{i}")))
            .collect(),
    )?;
    let names: Vec<String> = (0..df.schema().fields().len() - keys.len())
        .map(|i| format!("episodes_{i}"))
        .collect();
    let df = df.select(
        keys.iter()
            .map(|k| cast(col(*k), DataType::Utf8).alias(*k))
            .chain(names.iter().map(|n| col(n.as_str())))
            .collect::<Vec<_>>(),
    )?;
    // A partial aggregate would only copy every point, and then hand the
    // final one a single batch of all its groups' points: rows go to the
    // final aggregate as they come, in small batches, so that its state
    // grows with them (BENCHMARKS.md, "Episodes in the plan").
    let (mut state, plan) = df.into_parts();
    let execution = &mut state.config_mut().options_mut().execution;
    execution.batch_size = datafusion::common::config::ConfigNonZeroUsize::try_new(EPISODE_BATCH)?;
    execution.skip_partial_aggregation_probe_rows_threshold = 0;
    execution.skip_partial_aggregation_probe_ratio_threshold = 0.0;
    let df = datafusion::dataframe::DataFrame::new(state, plan);
    let mut out = vec![];
    for b in df.collect().await? {
        let key_cols = keys
            .iter()
            .map(|k| strs(&b, k))
            .collect::<Result<Vec<_>>>()?;
        let lists = names
            .iter()
            .map(|n| {
                b.column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<ListArray>())
                    .ok_or_else(|| Error::schema(kind.name(), "episode aggregate is not a list"))
            })
            .collect::<Result<Vec<_>>>()?;
        for i in 0..b.num_rows() {
            let eps = lists
                .iter()
                .map(|l| episodes_of(kind, &l.value(i)))
                .collect::<Result<Vec<_>>>()?;
            if eps.iter().any(|e| !e.is_empty()) {
                out.push((
                    key_cols.iter().map(|c| opt_s(c, i)).collect::<Vec<_>>(),
                    eps,
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// One group's list of episode structs.
fn episodes_of(kind: TableKind, items: &arrow::array::ArrayRef) -> Result<Vec<Ep>> {
    let items = items
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| Error::schema(kind.name(), "episodes are not structs"))?;
    let field = |n: &str| {
        items
            .column_by_name(n)
            .cloned()
            .ok_or_else(|| Error::schema(kind.name(), format!("episodes lack `{n}`")))
    };
    let (start, end, n) = (field("start")?, field("end")?, field("n")?);
    let (value, by) = (field("value")?, field("ended_by")?);
    let (start, end, n) = (
        start.as_primitive::<Int64Type>(),
        end.as_primitive::<Int64Type>(),
        n.as_primitive::<Int64Type>(),
    );
    let (value, by) = (value.as_primitive::<Float64Type>(), by.as_string::<i32>());
    Ok((0..items.len())
        .map(|j| Ep {
            start: start.value(j),
            end: end.value(j),
            n: n.value(j),
            value: value.value(j),
            by: ENDED_BY.iter().position(|b| *b == by.value(j)).unwrap_or(3),
        })
        .collect())
}

// ------------------------------------------------------------------ episodes

/// Sensor alarm episodes in `[from, as_of)`: per sensor, metric and place
/// (a sensor moved to another zone or cell starts a new series), readings
/// in time order; an episode starts at a reading at or above the alarm
/// threshold (the thresholds table, or `thresholds`), continues while
/// readings stay at or above `alarm − hysteresis` no more than
/// `reading_gap_minutes` apart, and ends at the first reading below
/// (`ended_by = "clear"`, `end` = that reading), at a longer gap (`"gap"`,
/// `end` = the last reading in the episode) or is still open (`"ongoing"`).
/// Episodes shorter than `min_duration_minutes` are dropped. Columns:
/// `sensor_id`, `metric`, `site`, `zone`, `cell`, `start`, `end`,
/// `duration_minutes`, `peak`, `readings`, `threshold`, `ended_by`.
pub async fn alarm_episodes(ds: &Dataset, o: &AlertOptions) -> Result<RecordBatch> {
    o.check()?;
    let (from, as_of) = window(ds, o).await?;
    Ok(alarm_episodes_over(ds, o, &[(from, as_of)])
        .await?
        .remove(0))
}

/// [`alarm_episodes`] over each of `windows` (`[from, to)` in µs), from one
/// scan of the readings: one `alarm_episodes` aggregate per window (its
/// `FILTER` the window), per sensor, metric and place.
pub(crate) async fn alarm_episodes_over(
    ds: &Dataset,
    o: &AlertOptions,
    windows: &[(i64, i64)],
) -> Result<Vec<RecordBatch>> {
    let mut limits: BTreeMap<String, f64> = BTreeMap::new();
    for b in table_rows(
        ds,
        TableKind::Thresholds,
        None,
        &["metric"],
        &[],
        &["alarm"],
    )
    .await?
    {
        let (m, a) = (strs(&b, "metric")?, floats(&b, "alarm")?);
        for i in 0..b.num_rows() {
            limits.insert(m.value(i).into(), a.value(i));
        }
    }
    limits.extend(o.thresholds.clone());
    let mut eps: Vec<Vec<AlarmEp>> = vec![vec![]; windows.len()];
    if !limits.is_empty() && ds.has_table(TableKind::Readings) && !windows.is_empty() {
        let t = cast(col("ts"), DataType::Int64);
        let wanted = within(&t, windows)
            .and(col("value").is_not_null())
            .and(col("metric").in_list(limits.keys().map(|m| lit(m.clone())).collect(), false));
        let mut alarm = when(lit(false), lit(ScalarValue::Float64(None)));
        for (m, a) in &limits {
            alarm = alarm.when(col("metric").eq(lit(m.clone())), lit(*a));
        }
        let alarm = alarm.end()?;
        let gap = (o.reading_gap_minutes * MINUTE as f64) as i64;
        let min_len = (o.min_duration_minutes * MINUTE as f64) as i64;
        let value = cast(col("value"), DataType::Float64);
        let f = udaf(Kind::Alarm).call(vec![
            t.clone(),
            value.clone(),
            alarm.clone(),
            alarm.clone() - lit(o.hysteresis),
            lit(gap),
            lit(min_len),
        ]);
        let fs = per_window(f, &t, windows)?;
        let keys = &["sensor_id", "metric", "site", "zone", "cell"];
        for (key, lists) in episode_groups(ds, o, TableKind::Readings, wanted, keys, fs).await? {
            let limit = key[1]
                .as_ref()
                .and_then(|m| limits.get(m))
                .copied()
                .unwrap_or(f64::NAN);
            for (w, list) in lists.into_iter().enumerate() {
                eps[w].extend(list.into_iter().map(|e| (key.clone(), limit, e)));
            }
        }
    }
    let tz = ds.timezone();
    eps.iter().map(|eps| alarm_batch(eps, tz)).collect()
}

/// An alarm episode: the sensor, metric and place, the threshold, the
/// episode.
type AlarmEp = (Vec<Option<String>>, f64, Ep);

/// The alarm episodes' result columns.
fn alarm_batch(eps: &[AlarmEp], tz: &str) -> Result<RecordBatch> {
    let text = |k: usize| eps.iter().map(|e| e.0[k].clone()).collect();
    let cols = Cols::default()
        .text("sensor_id", text(0))
        .text("metric", text(1))
        .text("site", text(2))
        .text("zone", text(3))
        .text("cell", text(4));
    let limits: Vec<Option<f64>> = eps.iter().map(|e| Some(e.1)).collect();
    let eps: Vec<&Ep> = eps.iter().map(|e| &e.2).collect();
    span(cols, tz, ["start", "end", "duration_minutes"], &eps)
        .float("peak", eps.iter().map(|e| Some(e.value)).collect())
        .int("readings", eps.iter().map(|e| Some(e.n)).collect())
        .float("threshold", limits)
        .text("ended_by", ended_by(&eps))
        .done()
}

/// An episode's start and end instants and its length in minutes, under
/// `names`.
fn span(cols: Cols, tz: &str, names: [&str; 3], eps: &[&Ep]) -> Cols {
    cols.time(names[0], tz, eps.iter().map(|e| Some(e.start)).collect())
        .time(names[1], tz, eps.iter().map(|e| Some(e.end)).collect())
        .float(
            names[2],
            eps.iter()
                .map(|e| Some((e.end - e.start) as f64 / MINUTE as f64))
                .collect(),
        )
}

/// How each episode ended ([`ENDED_BY`]).
fn ended_by(eps: &[&Ep]) -> Vec<Option<String>> {
    eps.iter()
        .map(|e| Some(ENDED_BY[e.by].to_string()))
        .collect()
}
