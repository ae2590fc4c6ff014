//! Episodes from streams of readings and position fixes: sensor alarm
//! episodes and electronic-fence intrusions. The risk map and the alert
//! lists count the same episodes.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{cast, col, lit};
use futures::StreamExt;

use crate::analysis::followup::common::*;
use crate::analysis::followup::options::AlertOptions;
use crate::analysis::followup::options::MINUTE;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
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
    fence_intrusions_in(ds, o, from, as_of).await
}

/// [`fence_intrusions`] over `[from, as_of)` given as instants (µs).
pub(crate) async fn fence_intrusions_in(
    ds: &Dataset,
    o: &AlertOptions,
    from: i64,
    as_of: i64,
) -> Result<RecordBatch> {
    let fences = fences(ds, o.site.as_deref()).await?;
    let authorised: BTreeSet<&str> = o.authorised.iter().map(String::as_str).collect();
    type Track = Vec<(i64, f64, f64)>;
    let mut tracks: BTreeMap<(String, String), Track> = BTreeMap::new();
    if !fences.is_empty() {
        let t = cast(col("ts"), DataType::Int64);
        let in_window = t.clone().gt_eq(lit(from)).and(t.lt(lit(as_of)));
        let mut batches = table_stream_where(
            ds,
            TableKind::Positions,
            o.site.as_deref(),
            Some(in_window),
            &["site", "person_id"],
            &["ts"],
            &["x", "y"],
        )
        .await?;
        while let Some(b) = batches.next().await {
            let b = b?;
            let (s, p) = (strs(&b, "site")?, strs(&b, "person_id")?);
            let t = ints(&b, "ts_us")?;
            let (x, y) = (floats(&b, "x")?, floats(&b, "y")?);
            for i in 0..b.num_rows() {
                let ti = t.value(i);
                if ti < from || ti >= as_of || authorised.contains(p.value(i)) {
                    continue;
                }
                tracks
                    .entry((s.value(i).into(), p.value(i).into()))
                    .or_default()
                    .push((ti, x.value(i), y.value(i)));
            }
        }
    }
    let gap = (o.max_gap_minutes * MINUTE as f64) as i64;
    let mut eps: Vec<(String, String, usize, i64, i64, i64, &'static str)> = vec![];
    for ((site, person), mut fixes) in tracks {
        fixes.sort_by_key(|f| f.0);
        let inside = |x: f64, y: f64| {
            fences
                .iter()
                .position(|f| f.0 == site && x >= f.3 && x < f.5 && y >= f.4 && y < f.6)
        };
        // (fence, entry, last inside, fixes)
        let mut cur: Option<(usize, i64, i64, i64)> = None;
        for &(t, x, y) in &fixes {
            let here = inside(x, y);
            if let Some((f, entry, last, n)) = cur {
                if t - last > gap {
                    eps.push((site.clone(), person.clone(), f, entry, last, n, "gap"));
                    cur = None;
                } else if here != Some(f) {
                    eps.push((site.clone(), person.clone(), f, entry, t, n, "exit"));
                    cur = None;
                } else {
                    cur = Some((f, entry, t, n + 1));
                    continue;
                }
            }
            if let Some(f) = here {
                cur = Some((f, t, t, 1));
            }
        }
        if let Some((f, entry, last, n)) = cur {
            eps.push((site.clone(), person.clone(), f, entry, last, n, "ongoing"));
        }
    }
    let tz = ds.timezone();
    Cols::default()
        .text("site", eps.iter().map(|e| Some(e.0.clone())).collect())
        .text("person_id", eps.iter().map(|e| Some(e.1.clone())).collect())
        .text(
            "cell",
            eps.iter().map(|e| Some(fences[e.2].1.clone())).collect(),
        )
        .text(
            "zone",
            eps.iter().map(|e| Some(fences[e.2].2.clone())).collect(),
        )
        .time("entry", tz, eps.iter().map(|e| Some(e.3)).collect())
        .time("exit", tz, eps.iter().map(|e| Some(e.4)).collect())
        .float(
            "dwell_minutes",
            eps.iter()
                .map(|e| Some((e.4 - e.3) as f64 / MINUTE as f64))
                .collect(),
        )
        .int("fixes", eps.iter().map(|e| Some(e.5)).collect())
        .text(
            "ended_by",
            eps.iter().map(|e| Some(e.6.to_string())).collect(),
        )
        .done()
}

// ------------------------------------------------------------------ episodes

/// Sensor alarm episodes in `[from, as_of)`: per sensor and metric, readings
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
    alarm_episodes_in(ds, o, from, as_of).await
}

/// [`alarm_episodes`] over `[from, as_of)` given as instants (µs).
pub(crate) async fn alarm_episodes_in(
    ds: &Dataset,
    o: &AlertOptions,
    from: i64,
    as_of: i64,
) -> Result<RecordBatch> {
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
    type Key = (String, String);
    type Series = (Vec<(i64, f64)>, [Option<String>; 3]);
    let mut series: BTreeMap<Key, Series> = BTreeMap::new();
    let t = cast(col("ts"), DataType::Int64);
    let wanted = t
        .clone()
        .gt_eq(lit(from))
        .and(t.lt(lit(as_of)))
        .and(col("value").is_not_null())
        .and(if limits.is_empty() {
            lit(false)
        } else {
            col("metric").in_list(limits.keys().map(|m| lit(m.clone())).collect(), false)
        });
    let mut batches = table_stream_where(
        ds,
        TableKind::Readings,
        o.site.as_deref(),
        Some(wanted),
        &["sensor_id", "metric", "site", "zone", "cell"],
        &["ts"],
        &["value"],
    )
    .await?;
    while let Some(b) = batches.next().await {
        let b = b?;
        let (sn, m) = (strs(&b, "sensor_id")?, strs(&b, "metric")?);
        let (s, z, c) = (strs(&b, "site")?, strs(&b, "zone")?, strs(&b, "cell")?);
        let t = ints(&b, "ts_us")?;
        let v = floats(&b, "value")?;
        for i in 0..b.num_rows() {
            let ti = t.value(i);
            if ti < from || ti >= as_of || !limits.contains_key(m.value(i)) || v.is_null(i) {
                continue;
            }
            let e = series
                .entry((sn.value(i).into(), m.value(i).into()))
                .or_insert_with(|| (vec![], [opt_s(s, i), opt_s(z, i), opt_s(c, i)]));
            e.0.push((ti, v.value(i)));
        }
    }
    let gap = (o.reading_gap_minutes * MINUTE as f64) as i64;
    let min_len = (o.min_duration_minutes * MINUTE as f64) as i64;
    struct Ep {
        key: (String, String),
        place: [Option<String>; 3],
        start: i64,
        end: i64,
        peak: f64,
        n: i64,
        limit: f64,
        by: &'static str,
    }
    let mut eps: Vec<Ep> = vec![];
    for (key, (mut pts, place)) in series {
        pts.sort_by_key(|p| p.0);
        let limit = limits[&key.1];
        let clear = limit - o.hysteresis;
        // (start, last, peak, readings)
        let mut cur: Option<(i64, i64, f64, i64)> = None;
        let mut close = |cur: &mut Option<(i64, i64, f64, i64)>, end: i64, by: &'static str| {
            if let Some((s, _, peak, n)) = cur.take()
                && end - s >= min_len
            {
                eps.push(Ep {
                    key: key.clone(),
                    place: place.clone(),
                    start: s,
                    end,
                    peak,
                    n,
                    limit,
                    by,
                });
            }
        };
        for &(t, v) in &pts {
            if let Some((_, last, _, _)) = cur
                && t - last > gap
            {
                close(&mut cur, last, "gap");
            }
            match cur {
                Some((s, _, peak, n)) if v >= clear => cur = Some((s, t, peak.max(v), n + 1)),
                Some(_) => close(&mut cur, t, "clear"),
                None if v >= limit => cur = Some((t, t, v, 1)),
                None => {}
            }
        }
        if let Some((_, last, _, _)) = cur {
            close(&mut cur, last, "ongoing");
        }
    }
    let tz = ds.timezone();
    Cols::default()
        .text(
            "sensor_id",
            eps.iter().map(|e| Some(e.key.0.clone())).collect(),
        )
        .text(
            "metric",
            eps.iter().map(|e| Some(e.key.1.clone())).collect(),
        )
        .text("site", eps.iter().map(|e| e.place[0].clone()).collect())
        .text("zone", eps.iter().map(|e| e.place[1].clone()).collect())
        .text("cell", eps.iter().map(|e| e.place[2].clone()).collect())
        .time("start", tz, eps.iter().map(|e| Some(e.start)).collect())
        .time("end", tz, eps.iter().map(|e| Some(e.end)).collect())
        .float(
            "duration_minutes",
            eps.iter()
                .map(|e| Some((e.end - e.start) as f64 / MINUTE as f64))
                .collect(),
        )
        .float("peak", eps.iter().map(|e| Some(e.peak)).collect())
        .int("readings", eps.iter().map(|e| Some(e.n)).collect())
        .float("threshold", eps.iter().map(|e| Some(e.limit)).collect())
        .text(
            "ended_by",
            eps.iter().map(|e| Some(e.by.to_string())).collect(),
        )
        .done()
}
