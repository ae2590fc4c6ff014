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

use arrow::array::{Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;

use crate::model::options::RollUp;
use crate::model::vocab::Lang;
use crate::session::dataset::Dataset;
use crate::session::window::resolve_window;
use crate::util::columns::f64s;
use crate::util::columns::strings;
use crate::util::error::{Error, Result};

use crate::analysis::spatial::risk_evidence::*;
pub use crate::analysis::spatial::risk_model::{BandTable, Level, LevelRule, RiskOptions};

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

/// The days of the risk map's default window before `to`.
pub const RISK_DEFAULT_DAYS: i64 = 90;

/// The window, defaulting `to` to the day after the latest event and `from`
/// to [`RISK_DEFAULT_DAYS`] before `to`.
async fn window(ds: &Dataset, o: &RiskOptions) -> Result<(i64, i64)> {
    resolve_window(ds, o.from.as_deref(), o.to.as_deref(), RISK_DEFAULT_DAYS).await
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
    mark_hotspots(&mut rows, &super::plan_shapes(ds));
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
fn mark_hotspots(
    rows: &mut [Row],
    shapes: &std::collections::HashMap<(String, String), crate::model::geometry::Shape>,
) {
    let mut p_all: Vec<Option<f64>> = vec![None; rows.len()];
    let mut z_all: Vec<Option<f64>> = vec![None; rows.len()];
    let mut by_site: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_site.entry(r.site.clone()).or_default().push(i);
    }
    for idx in by_site.values() {
        let places: Vec<super::Place<'_>> = idx
            .iter()
            .map(|&i| {
                let r = &rows[i];
                match (r.row, r.col, &r.cell) {
                    (Some(a), Some(b), _) => super::Place::Grid(a, b),
                    (_, _, Some(c)) => shapes
                        .get(&(r.site.clone(), c.clone()))
                        .map_or(super::Place::Nowhere, super::Place::Polygon),
                    _ => super::Place::Nowhere,
                }
            })
            .collect();
        let nb = super::contiguity(&places, false);
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
pub fn risk_chart(batch: &RecordBatch, o: &RiskOptions, lang: Lang) -> Result<Option<String>> {
    match o.by {
        RollUp::Cell => risk_svg(
            batch,
            o.site.as_deref(),
            lang.w("风险四色图", "Risk four-colour map"),
            lang,
        )
        .map(Some),
        _ => Ok(None),
    }
}

/// Render a cell-level risk map of one site (the first when `site` is
/// `None`) as an SVG grid in the four colours, each cell labelled with its
/// level in words and its score, the words in `lang`.
pub fn risk_svg(
    batch: &RecordBatch,
    site: Option<&str>,
    title: &str,
    lang: Lang,
) -> Result<String> {
    let level = strings(batch, "level")?;
    let source = strings(batch, "level_source")?;
    let trend = strings(batch, "trend")?;
    let score = f64s(batch, "score")?;
    let hotspot = strings(batch, "hotspot").ok();
    let items = [Level::Red, Level::Orange, Level::Yellow, Level::Blue]
        .iter()
        .map(|l| {
            let name = match lang {
                Lang::Zh => l.zh().to_string(),
                Lang::En => format!("{} ({})", lang.term(l.name()), l.name()),
            };
            (l.color().to_string(), name)
        })
        .collect();
    crate::charts::site_grid(
        std::slice::from_ref(batch),
        site,
        title,
        lang.w(
            "格内：风险等级（▲ = 评分的显著热点，Gi* 经 FDR 校正）；数字：窗口内的证据评分",
            "cell label: level (▲ = statistically significant hot spot of the score, Gi* with FDR); number: evidence score in the window",
        ),
        items,
        lang,
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
                text: crate::util::stats::round_half_away(score.value(i), 0),
                title: match lang {
                    Lang::Zh => format!(
                        "{}：{}，评分 {:.1}，依据 {}，趋势 {}",
                        p.cell,
                        l.zh(),
                        score.value(i),
                        lang.term(source.value(i)),
                        lang.term(trend.value(i))
                    ),
                    Lang::En => format!(
                        "{}: {} ({}), score {:.1}, from {}, trend {}",
                        p.cell,
                        l.name(),
                        l.zh(),
                        score.value(i),
                        source.value(i),
                        trend.value(i)
                    ),
                },
                fill: Some(l.color().to_string()),
                suffix: Some(
                    match hotspot
                        .as_ref()
                        .filter(|h| !h.is_null(i))
                        .map(|h| h.value(i))
                    {
                        Some(h) if h.starts_with("hot_") => format!("{} ▲", lang.term(l.name())),
                        _ => lang.term(l.name()),
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
