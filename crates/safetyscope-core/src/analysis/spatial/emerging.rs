//! Emerging hot spots: Getis-Ord Gi* in every time slice (week or month) and
//! a Mann-Kendall trend test on each cell's series of Gi* z-scores (relative
//! to each slice, so seasonal swings of the whole site cancel), combined into
//! the categories of space-time pattern mining.
//!
//! Per cell, with `hot[k]` = the cell is a hot spot in slice k (Gi* z > 0 and
//! q ≤ `alpha` among the site's cells in that slice, Benjamini–Hochberg),
//! n slices and the share of hot slices:
//!
//! | category | rule |
//! |---|---|
//! | `new` | hot in the final slice and never before |
//! | `consecutive` | a run of ≥ 2 hot slices up to the final one, never hot before it, share < 90 % |
//! | `intensifying` | hot in ≥ 90 % of slices including the final, z-scores rising (Mann-Kendall, p ≤ alpha) |
//! | `persistent` | hot in ≥ 90 % of slices including the final, no significant trend |
//! | `diminishing` | hot in ≥ 90 % of slices including the final, z-scores falling |
//! | `sporadic` | hot in the final slice, on and off before, share < 90 %, never cold |
//! | `oscillating` | hot in the final slice, cold in some earlier slice |
//! | `historical` | not hot in the final slice, hot in ≥ 90 % of the others |
//! | `no_pattern` | none of these |
//!
//! and the same for cold spots with a `cold_` prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::date_trunc;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{cast, col, lit};
use serde::{Deserialize, Serialize};

use crate::analysis::spatial::hotspots::{Transform, WeightsKind, gi_star};
use crate::model::options::EventKind;
pub use crate::model::options::Slice;
use crate::model::schema::TableKind;
use crate::model::time::{local_to_micros, micros_to_local, parse_tz};
use crate::model::time::{next_slice, slice_start};
use crate::session::dataset::Dataset;
use crate::session::window::filtered;
use crate::util::columns::ints;
use crate::util::columns::strings;
use crate::util::error::{Error, Result};
use crate::util::stats::{benjamini_hochberg, two_sided_p};

/// Options of [`emerging_hotspots`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EmergingOptions {
    /// Event tables counted (default incidents).
    pub kinds: Vec<EventKind>,
    /// Only this site.
    pub site: Option<String>,
    /// Start, local time (default 365 days before `to`), rounded down to a slice.
    pub from: Option<String>,
    /// End, exclusive (default the local midnight after the latest event).
    pub to: Option<String>,
    /// Slice length (default month).
    pub slice: Slice,
    /// Neighbourhood of Gi* (default queen).
    pub weights: WeightsKind,
    /// Significance for a hot slice (q-value) and for the trend (default 0.05).
    pub alpha: f64,
}

impl Default for EmergingOptions {
    fn default() -> Self {
        EmergingOptions {
            kinds: vec![EventKind::Incidents],
            site: None,
            from: None,
            to: None,
            slice: Slice::Month,
            weights: WeightsKind::Queen,
            alpha: 0.05,
        }
    }
}

/// Mann-Kendall trend test of a series in time order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// S = Σ_{i<j} sign(x_j − x_i).
    pub s: f64,
    /// Variance of S with the correction for ties.
    pub var_s: f64,
    /// z with continuity correction: (S − 1)/√V for S > 0, (S + 1)/√V for S < 0.
    pub z: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Whether two values of a series are a tie: equal to within 1e-12 of the
/// larger (or of 1). Equal inputs can give z-scores that differ in the last
/// bits when their sums run in another order; from the definition they tie.
fn tie(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// The Mann-Kendall test (as `pymannkendall.original_test`), values equal
/// to within 1e-12 counted as ties.
pub fn mann_kendall(x: &[f64]) -> MannKendall {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            if !tie(x[j], x[i]) {
                s += (x[j] - x[i]).signum();
            }
        }
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && tie(sorted[j + 1], sorted[i]) {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        if t > 1.0 {
            ties += t * (t - 1.0) * (2.0 * t + 5.0);
        }
        i = j + 1;
    }
    let nf = n as f64;
    let var_s = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    let z = if var_s <= 0.0 {
        0.0
    } else if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    MannKendall {
        s,
        var_s,
        z,
        p: two_sided_p(z),
    }
}

/// Category of a cell from its hot/cold history and trend.
pub fn categorize(hot: &[bool], cold: &[bool], trend: &MannKendall, alpha: f64) -> String {
    fn one(hot: &[bool], other: &[bool], trend_up: bool, trend_down: bool) -> Option<&'static str> {
        let n = hot.len();
        if n == 0 {
            return None;
        }
        let count = hot.iter().filter(|h| **h).count();
        let share = count as f64 / n as f64;
        let last = hot[n - 1];
        if last {
            if count == 1 {
                return Some("new");
            }
            let run = hot.iter().rev().take_while(|h| **h).count();
            if share >= 0.9 {
                return Some(if trend_up {
                    "intensifying"
                } else if trend_down {
                    "diminishing"
                } else {
                    "persistent"
                });
            }
            if run == count && run >= 2 {
                return Some("consecutive");
            }
            if other[..n - 1].iter().any(|c| *c) {
                return Some("oscillating");
            }
            return Some("sporadic");
        }
        let before = hot[..n - 1].iter().filter(|h| **h).count();
        if n > 1 && before as f64 / (n - 1) as f64 >= 0.9 {
            return Some("historical");
        }
        None
    }
    let up = trend.p <= alpha && trend.s > 0.0;
    let down = trend.p <= alpha && trend.s < 0.0;
    if let Some(c) = one(hot, cold, up, down) {
        return c.to_string();
    }
    // Cold spots: a rising count is the cold spot fading.
    if let Some(c) = one(cold, hot, down, up) {
        return format!("cold_{c}");
    }
    "no_pattern".to_string()
}

/// A cell of the plan.
struct PlanCell {
    cell: String,
    zone: Option<String>,
    row: Option<i32>,
    col: Option<i32>,
    /// The polygon, on a plan of polygons.
    shape: Option<crate::model::geometry::Shape>,
}

/// The result of one cell.
struct CellResult {
    site: String,
    cell: PlanCell,
    hot: Vec<bool>,
    cold: Vec<bool>,
    series: Vec<f64>,
    mk: MannKendall,
    last_z: Option<f64>,
    category: String,
}

/// The output schema of [`emerging_hotspots`].
pub fn emerging_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("site", DataType::Utf8, false),
        Field::new("zone", DataType::Utf8, true),
        Field::new("cell", DataType::Utf8, false),
        Field::new("row", DataType::Int32, true),
        Field::new("col", DataType::Int32, true),
        Field::new("slices", DataType::Int32, false),
        Field::new("hot_slices", DataType::Int32, false),
        Field::new("cold_slices", DataType::Int32, false),
        Field::new("history", DataType::Utf8, false),
        Field::new("events", DataType::Float64, false),
        Field::new("mk_s", DataType::Float64, false),
        Field::new("mk_z", DataType::Float64, false),
        Field::new("mk_p_value", DataType::Float64, false),
        Field::new("last_z", DataType::Float64, true),
        Field::new("category", DataType::Utf8, false),
    ]))
}

/// Emerging hot spots per cell.
///
/// Output per cell of the plan: `slices`, `hot_slices`, `cold_slices`,
/// `history` (one character per slice, oldest first: `H` hot, `C` cold, `.`
/// neither), total `events`, the Mann-Kendall `mk_s`, `mk_z`, `mk_p_value` of the
/// cell's Gi* z-scores over the slices, the z of the final slice `last_z`, and the `category`
/// (module docs).
pub async fn emerging_hotspots(ds: &Dataset, o: &EmergingOptions) -> Result<DataFrame> {
    let b = emerging_batch(ds, o).await?;
    Ok(ds.context().read_batch(b)?)
}

/// [`emerging_hotspots`] as a collected batch.
pub async fn emerging_batch(ds: &Dataset, o: &EmergingOptions) -> Result<RecordBatch> {
    if o.kinds.is_empty() {
        return Err(Error::option("kinds", "select at least one event kind"));
    }
    ds.require_site_plan("emerging hot spots")?;
    let tz = parse_tz(ds.timezone())?;
    let (from, to) =
        crate::session::window::resolve_window(ds, o.from.as_deref(), o.to.as_deref(), 365).await?;
    // Slice starts in local time from the slice containing `from` to `to`.
    let first = slice_start(
        micros_to_local(&tz, from)
            .ok_or_else(|| Error::option("from", "out of range"))?
            .date(),
        o.slice,
    );
    let mut starts = Vec::new();
    let mut d = first;
    while let Some(us) = local_to_micros(&tz, d.and_hms_opt(0, 0, 0).expect("midnight")) {
        if us >= to {
            break;
        }
        starts.push(us);
        d = next_slice(d, o.slice);
    }
    if starts.len() < 3 {
        return Err(Error::option(
            "slice",
            format!(
                "the window holds {} slices; at least 3 are needed",
                starts.len()
            ),
        ));
    }
    let index: BTreeMap<i64, usize> = starts.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let unit = match o.slice {
        Slice::Week => "week",
        Slice::Month => "month",
    };
    let from_lit = micros_to_local(&tz, starts[0])
        .map(|t| t.to_string())
        .unwrap_or_default();
    let to_lit = micros_to_local(&tz, to)
        .map(|t| t.to_string())
        .unwrap_or_default();
    // Counts per (site, cell, slice) by a DataFusion aggregate.
    let mut counts: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for kind in &o.kinds {
        let table = match kind {
            EventKind::Incidents => TableKind::Incidents,
            EventKind::Hazards => TableKind::Hazards,
            EventKind::Violations => TableKind::Violations,
        };
        let tcol = table.def().time_column.expect("event table");
        let df = filtered(ds, table, Some(&from_lit), Some(&to_lit), o.site.as_deref()).await?;
        let b = df
            .aggregate(
                vec![
                    col("site"),
                    col("cell"),
                    cast(date_trunc(lit(unit), col(tcol)), DataType::Int64).alias("slice"),
                ],
                vec![count(lit(1i64)).alias("n")],
            )?
            .collect()
            .await?;
        for batch in &b {
            let (s, c) = (strings(batch, "site")?, strings(batch, "cell")?);
            let sl = crate::util::columns::f64s(batch, "slice")?;
            let n = crate::util::columns::f64s(batch, "n")?;
            for i in 0..batch.num_rows() {
                if arrow::array::Array::is_null(&c, i) {
                    continue;
                }
                if let Some(&k) = index.get(&(sl.value(i) as i64)) {
                    counts
                        .entry((s.value(i).to_string(), c.value(i).to_string()))
                        .or_insert_with(|| vec![0.0; starts.len()])[k] += n.value(i);
                }
            }
        }
    }
    // The plan, per site.
    let mut sites: BTreeMap<String, Vec<PlanCell>> = BTreeMap::new();
    let mut shapes = super::plan_shapes(ds);
    for b in ds.batches(TableKind::Cells) {
        let (s, z, c) = (
            strings(b, "site")?,
            strings(b, "zone")?,
            strings(b, "cell")?,
        );
        let (r, k) = (ints(b, "row")?, ints(b, "col")?);
        for i in 0..b.num_rows() {
            if o.site.as_deref().is_some_and(|x| x != s.value(i)) {
                continue;
            }
            sites
                .entry(s.value(i).to_string())
                .or_default()
                .push(PlanCell {
                    cell: c.value(i).to_string(),
                    zone: (!arrow::array::Array::is_null(&z, i)).then(|| z.value(i).to_string()),
                    row: arrow::array::Array::is_valid(&r, i).then(|| r.value(i)),
                    col: arrow::array::Array::is_valid(&k, i).then(|| k.value(i)),
                    shape: shapes.remove(&(s.value(i).to_string(), c.value(i).to_string())),
                });
        }
    }
    let n_slices = starts.len();
    let mut out: Vec<CellResult> = Vec::new();
    for (site, mut cells) in sites {
        cells.sort_by(|a, b| (a.row, a.col, &a.cell).cmp(&(b.row, b.col, &b.cell)));
        let places: Vec<super::Place<'_>> = cells
            .iter()
            .map(|c| match (c.row, c.col, &c.shape) {
                (Some(r), Some(k), _) => super::Place::Grid(r, k),
                (_, _, Some(s)) => super::Place::Polygon(s),
                _ => super::Place::Nowhere,
            })
            .collect();
        let neighbors = super::contiguity(&places, o.weights == WeightsKind::Rook);
        if o.weights == WeightsKind::Distance {
            return Err(Error::option(
                "weights",
                "emerging hot spots use rook or queen contiguity",
            ));
        }
        let series: Vec<Vec<f64>> = cells
            .iter()
            .map(|c| {
                counts
                    .get(&(site.clone(), c.cell.clone()))
                    .cloned()
                    .unwrap_or_else(|| vec![0.0; n_slices])
            })
            .collect();
        let mut hot = vec![vec![false; n_slices]; cells.len()];
        let mut cold = vec![vec![false; n_slices]; cells.len()];
        let mut last_z = vec![None; cells.len()];
        let mut z_series = vec![vec![0.0; n_slices]; cells.len()];
        for k in 0..n_slices {
            let y: Vec<f64> = series.iter().map(|s| s[k]).collect();
            let gi = gi_star(&y, &neighbors, Transform::Binary, 0, 0);
            let p: Vec<Option<f64>> = gi
                .iter()
                .map(|g| {
                    if g.neighbors > 0 {
                        g.z.map(two_sided_p)
                    } else {
                        None
                    }
                })
                .collect();
            let q = benjamini_hochberg(&p);
            for (i, g) in gi.iter().enumerate() {
                if let (Some(z), Some(qv)) = (g.z, q[i]) {
                    hot[i][k] = z > 0.0 && qv <= o.alpha;
                    cold[i][k] = z < 0.0 && qv <= o.alpha;
                }
                z_series[i][k] = g.z.unwrap_or(0.0);
                if k == n_slices - 1 {
                    last_z[i] = g.z;
                }
            }
        }
        for (i, c) in cells.into_iter().enumerate() {
            let mk = mann_kendall(&z_series[i]);
            let category = categorize(&hot[i], &cold[i], &mk, o.alpha);
            out.push(CellResult {
                site: site.clone(),
                cell: c,
                hot: hot[i].clone(),
                cold: cold[i].clone(),
                series: series[i].clone(),
                mk,
                last_z: last_z[i],
                category,
            });
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            out.iter().map(|r| r.site.as_str()),
        )),
        Arc::new(
            out.iter()
                .map(|r| r.cell.zone.clone())
                .collect::<StringArray>(),
        ),
        Arc::new(StringArray::from_iter_values(
            out.iter().map(|r| r.cell.cell.as_str()),
        )),
        Arc::new(out.iter().map(|r| r.cell.row).collect::<Int32Array>()),
        Arc::new(out.iter().map(|r| r.cell.col).collect::<Int32Array>()),
        Arc::new(Int32Array::from_iter_values(
            out.iter().map(|_| n_slices as i32),
        )),
        Arc::new(Int32Array::from_iter_values(
            out.iter()
                .map(|r| r.hot.iter().filter(|h| **h).count() as i32),
        )),
        Arc::new(Int32Array::from_iter_values(
            out.iter()
                .map(|r| r.cold.iter().filter(|h| **h).count() as i32),
        )),
        Arc::new(StringArray::from_iter_values(out.iter().map(|r| {
            r.hot
                .iter()
                .zip(&r.cold)
                .map(|(h, c)| {
                    if *h {
                        'H'
                    } else if *c {
                        'C'
                    } else {
                        '.'
                    }
                })
                .collect::<String>()
        }))),
        Arc::new(Float64Array::from_iter_values(
            out.iter().map(|r| r.series.iter().sum::<f64>()),
        )),
        Arc::new(Float64Array::from_iter_values(out.iter().map(|r| r.mk.s))),
        Arc::new(Float64Array::from_iter_values(out.iter().map(|r| r.mk.z))),
        Arc::new(Float64Array::from_iter_values(out.iter().map(|r| r.mk.p))),
        Arc::new(out.iter().map(|r| r.last_z).collect::<Float64Array>()),
        Arc::new(StringArray::from_iter_values(
            out.iter().map(|r| r.category.as_str()),
        )),
    ];
    Ok(RecordBatch::try_new(emerging_schema(), cols)?)
}

/// Colour of an emerging category (cold categories in blues).
fn category_color(c: &str) -> &'static str {
    match c {
        "new" => "#7f0000",
        "consecutive" => "#b30000",
        "intensifying" => "#d7301f",
        "persistent" => "#ef6548",
        "diminishing" => "#fc8d59",
        "sporadic" => "#fdbb84",
        "oscillating" => "#fdd49e",
        "historical" => "#fee8c8",
        c if c.starts_with("cold_") => "#9ecae1",
        _ => "#f7f7f7",
    }
}

/// Render an emerging hot-spot result of one site as an SVG grid with the
/// category in words and its hot/cold history on hover.
pub fn emerging_svg(
    batch: &RecordBatch,
    site: Option<&str>,
    title: &str,
    lang: crate::model::vocab::Lang,
) -> Result<String> {
    let cat = strings(batch, "category")?;
    let hist = strings(batch, "history")?;
    let events = crate::util::columns::f64s(batch, "events")?;
    let items = [
        "new",
        "consecutive",
        "intensifying",
        "persistent",
        "diminishing",
        "sporadic",
        "oscillating",
        "historical",
        "cold_*",
    ]
    .iter()
    .map(|c| {
        let name = match *c {
            "cold_*" => lang.w("冷点", "cold_*").to_string(),
            c => match lang {
                crate::model::vocab::Lang::Zh => lang.term(c),
                crate::model::vocab::Lang::En => c.to_string(),
            },
        };
        (category_color(c).to_string(), name)
    })
    .collect();
    let name = |c: &str| match lang {
        crate::model::vocab::Lang::Zh => lang.term(c),
        crate::model::vocab::Lang::En => c.to_string(),
    };
    crate::charts::site_grid(
        std::slice::from_ref(batch),
        site,
        title,
        lang.w(
            "历程：H 热点，C 冷点，. 均非，由远及近",
            "history: H hot, C cold, . neither, oldest first",
        ),
        items,
        lang,
        |p| {
            let i = p.i;
            Ok(crate::charts::Look {
                value: events.value(i),
                text: match lang {
                    crate::model::vocab::Lang::Zh => lang.term(cat.value(i)),
                    crate::model::vocab::Lang::En => cat.value(i).replace('_', " "),
                },
                title: format!("{}: {} — {}", p.cell, name(cat.value(i)), hist.value(i)),
                fill: Some(category_color(cat.value(i)).to_string()),
                suffix: None,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_kendall_matches_pymannkendall() {
        // pymannkendall.original_test([1, 2, 2, 3, 5, 4, 6, 7]):
        // s = 25, var_s = 64.333…, z = 2.992217885724178, p = 0.0027695851547209216
        let r = mann_kendall(&[1.0, 2.0, 2.0, 3.0, 5.0, 4.0, 6.0, 7.0]);
        assert_eq!(r.s, 25.0);
        assert!((r.var_s - 64.333_333_333_333_33).abs() < 1e-9);
        assert!((r.z - 2.992_217_885_724_178).abs() < 1e-12);
        assert!((r.p - 0.002_769_585_154_720_921_6).abs() < 1e-12);
    }

    #[test]
    fn values_equal_but_for_the_last_bits_are_ties() {
        // The same z-score computed along two summation orders.
        let a: f64 = -0.797_724_035_217_465_6;
        let b = f64::from_bits(a.to_bits() + 1);
        let exact = mann_kendall(&[0.1, a, 0.3, a]);
        let rounded = mann_kendall(&[0.1, a, 0.3, b]);
        assert_eq!(exact, rounded);
        assert_eq!(exact.s, -1.0);
    }

    #[test]
    fn categories() {
        let flat = mann_kendall(&[1.0; 12]);
        let f = |s: &str| s.chars().map(|c| c == 'H').collect::<Vec<_>>();
        let none = vec![false; 12];
        assert_eq!(categorize(&f("...........H"), &none, &flat, 0.05), "new");
        assert_eq!(
            categorize(&f(".........HHH"), &none, &flat, 0.05),
            "consecutive"
        );
        assert_eq!(
            categorize(&f("HHHHHHHHHHHH"), &none, &flat, 0.05),
            "persistent"
        );
        let down = mann_kendall(&(0..12).map(|i| 30.0 - f64::from(i)).collect::<Vec<_>>());
        assert_eq!(
            categorize(&f("HHHHHHHHHHHH"), &none, &down, 0.05),
            "diminishing"
        );
        assert_eq!(
            categorize(&f("HHHHHHHHHHH."), &none, &flat, 0.05),
            "historical"
        );
        assert_eq!(
            categorize(&f("H..H...H...H"), &none, &flat, 0.05),
            "sporadic"
        );
        assert_eq!(
            categorize(&none, &f("...........H"), &flat, 0.05),
            "cold_new"
        );
        assert_eq!(categorize(&none, &none, &flat, 0.05), "no_pattern");
    }
}
