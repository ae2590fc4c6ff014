//! Getis-Ord Gi* hot and cold spots over the cells of the site plan.
//!
//! The values are event counts per cell from [`crate::analysis::spatial::heatmap::event_heatmap`]
//! (a DataFusion plan); the statistic itself runs on that small aggregated
//! result. Each site's grid is analysed on its own.
//!
//! For cell *i* with weights w_ij (the cell itself included, w_ii = 1, as
//! in Gi*), values x, n cells, x̄ and s² the mean and (population) variance:
//!
//! ```text
//! G*_i  = Σ_j w_ij x_j / Σ_j x_j          E[G*_i] = W_i / n,  W_i = Σ_j w_ij
//! V[G*_i] = W_i (n − W_i) / ((n − 1) n²) · s² / x̄²
//! z_i   = (G*_i − E[G*_i]) / √V[G*_i]
//! ```
//!
//! With binary weights (`transform = "binary"`, the default) z_i is the
//! classic Getis-Ord Gi* z-score (the one ArcGIS reports), and it equals PySAL
//! `esda.G_Local(y, w, transform="B", star=True).Zs`; with
//! `transform = "row"` it equals esda's default `transform="R"`. p-values are
//! two-sided (esda's `p_norm` is the one-sided half), adjusted across every
//! tested cell of the result by Benjamini–Hochberg.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use serde::{Deserialize, Serialize};

use crate::analysis::spatial::heatmap::{HeatmapOptions, event_heatmap};
use crate::model::options::EventKind;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::columns::ints;
use crate::util::columns::strings;
use crate::util::error::{Error, Result};
use crate::util::rng::Rng;
use crate::util::stats::{benjamini_hochberg, two_sided_p};

/// How neighbours are defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WeightsKind {
    /// Cells sharing an edge (up, down, left, right).
    Rook,
    /// Cells sharing an edge or a corner.
    Queen,
    /// Cells whose centroids are within `distance` metres (the bounding boxes
    /// of the site plan; grid units of 1 when a plan has none).
    Distance,
}

/// Weight transformation (as in PySAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Binary weights: the classic Gi*.
    Binary,
    /// Row-standardised weights (each row sums to 1).
    Row,
}

/// Options of [`hotspots`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HotspotOptions {
    /// Event tables counted (default: incidents).
    pub kinds: Vec<EventKind>,
    /// Window start, local time, inclusive.
    pub from: Option<String>,
    /// Window end, local time, exclusive.
    pub to: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Neighbourhood definition (default queen).
    pub weights: WeightsKind,
    /// Distance band in metres for `weights = "distance"`.
    pub distance: Option<f64>,
    /// Weight transformation (default binary).
    pub transform: Transform,
    /// Significance level of the `significant` column (default 0.05).
    pub alpha: f64,
    /// Classify by FDR-adjusted q-values (default true) instead of raw p-values.
    pub fdr: bool,
    /// Conditional permutations for a pseudo p-value (0 = none).
    pub permutations: u32,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for HotspotOptions {
    fn default() -> Self {
        HotspotOptions {
            kinds: vec![EventKind::Incidents],
            from: None,
            to: None,
            site: None,
            weights: WeightsKind::Queen,
            distance: None,
            transform: Transform::Binary,
            alpha: 0.05,
            fdr: true,
            permutations: 0,
            seed: 42,
        }
    }
}

/// One cell's input to the statistic.
#[derive(Debug, Clone)]
struct CellIn {
    site: String,
    zone: Option<String>,
    cell: String,
    owner: Option<String>,
    row: Option<i32>,
    col: Option<i32>,
    centroid: Option<(f64, f64)>,
    /// The cell's polygon, on a plan of polygons.
    shape: Option<crate::model::geometry::Shape>,
    value: f64,
}

impl CellIn {
    fn place(&self) -> super::Place<'_> {
        match (self.row, self.col, &self.shape) {
            (Some(r), Some(c), _) => super::Place::Grid(r, c),
            (_, _, Some(s)) => super::Place::Polygon(s),
            _ => super::Place::Nowhere,
        }
    }
}

/// Result of Gi* for one cell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GiCell {
    /// Neighbours, the cell itself not counted.
    pub neighbors: u32,
    /// G*_i.
    pub g: Option<f64>,
    /// The expectation of G*_i.
    pub expected: Option<f64>,
    /// z-score.
    pub z: Option<f64>,
    /// Permutation pseudo p-value (folded, as PySAL's `p_sim`).
    pub p_sim: Option<f64>,
}

/// Gi* for values `y` with neighbour lists (indices, the cell itself not
/// included). Returns one result per value.
pub fn gi_star(
    y: &[f64],
    neighbors: &[Vec<usize>],
    transform: Transform,
    permutations: u32,
    seed: u64,
) -> Vec<GiCell> {
    let n = y.len();
    let nf = n as f64;
    let sum: f64 = y.iter().sum();
    let mean = sum / nf;
    let var = y.iter().map(|v| v * v).sum::<f64>() / nf - mean * mean;
    let mut rng = Rng::new(seed, "gi-star");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let k = neighbors[i].len();
        let raw_weight = (k + 1) as f64;
        let w = match transform {
            Transform::Binary => 1.0,
            Transform::Row => 1.0 / raw_weight,
        };
        let card = w * raw_weight;
        let local: f64 = (y[i] + neighbors[i].iter().map(|&j| y[j]).sum::<f64>()) * w;
        let mut c = GiCell {
            neighbors: k as u32,
            ..Default::default()
        };
        if n < 2 || sum == 0.0 || var <= 0.0 {
            out.push(c);
            continue;
        }
        let g = local / sum;
        let eg = card / nf;
        let vg = card * (nf - card) / (nf - 1.0) / (nf * nf) * var / (mean * mean);
        c.g = Some(g);
        c.expected = Some(eg);
        c.z = if vg > 0.0 {
            Some((g - eg) / vg.sqrt())
        } else {
            None
        };
        if permutations > 0 && k > 0 {
            // Conditional randomisation: the cell keeps its value, its k
            // neighbours are drawn from the other n − 1 cells.
            let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            let mut larger = 0u32;
            for _ in 0..permutations {
                let mut s = y[i];
                for t in 0..k.min(others.len()) {
                    let pick = t + rng.below(others.len() - t);
                    others.swap(t, pick);
                    s += y[others[t]];
                }
                if s * w / sum >= g {
                    larger += 1;
                }
            }
            let folded = larger.min(permutations - larger);
            c.p_sim = Some(f64::from(folded + 1) / f64::from(permutations + 1));
        }
        out.push(c);
    }
    out
}

/// Neighbour lists of cells on a grid (rook or queen) or within a distance band.
fn neighbor_lists(
    cells: &[CellIn],
    kind: WeightsKind,
    distance: Option<f64>,
) -> Result<Vec<Vec<usize>>> {
    let mut out = vec![Vec::new(); cells.len()];
    match kind {
        WeightsKind::Rook | WeightsKind::Queen => {
            let places: Vec<super::Place<'_>> = cells.iter().map(CellIn::place).collect();
            out = super::contiguity(&places, kind == WeightsKind::Rook);
        }
        WeightsKind::Distance => {
            let d = distance.ok_or_else(|| {
                Error::option(
                    "distance",
                    "a distance band (metres) is needed for weights = \"distance\"",
                )
            })?;
            if !(d > 0.0 && d.is_finite()) {
                return Err(Error::option(
                    "distance",
                    format!("must be a positive number of metres, got {d}"),
                ));
            }
            for i in 0..cells.len() {
                let Some((xi, yi)) = cells[i].centroid else {
                    continue;
                };
                for (j, other) in cells.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    if let Some((xj, yj)) = other.centroid
                        && ((xi - xj).powi(2) + (yi - yj).powi(2)).sqrt() <= d + 1e-9
                    {
                        out[i].push(j);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Confidence class of a cell.
fn classify(z: Option<f64>, p: Option<f64>, island: bool) -> (&'static str, i32) {
    if island {
        return ("island", 0);
    }
    let (Some(z), Some(p)) = (z, p) else {
        return ("no_variation", 0);
    };
    let level = if p <= 0.01 {
        3
    } else if p <= 0.05 {
        2
    } else if p <= 0.10 {
        1
    } else {
        0
    };
    match (level, z > 0.0) {
        (0, _) => ("not_significant", 0),
        (3, true) => ("hot_99", 3),
        (2, true) => ("hot_95", 2),
        (1, true) => ("hot_90", 1),
        (3, false) => ("cold_99", -3),
        (2, false) => ("cold_95", -2),
        _ => ("cold_90", -1),
    }
}

/// The output schema of [`hotspots`].
pub fn hotspot_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("site", DataType::Utf8, false),
        Field::new("zone", DataType::Utf8, true),
        Field::new("cell", DataType::Utf8, true),
        Field::new("row", DataType::Int32, true),
        Field::new("col", DataType::Int32, true),
        Field::new("owner", DataType::Utf8, true),
        Field::new("value", DataType::Float64, false),
        Field::new("neighbors", DataType::UInt32, false),
        Field::new("island", DataType::Boolean, false),
        Field::new("gi", DataType::Float64, true),
        Field::new("expected", DataType::Float64, true),
        Field::new("z", DataType::Float64, true),
        Field::new("p_value", DataType::Float64, true),
        Field::new("q_value", DataType::Float64, true),
        Field::new("p_sim", DataType::Float64, true),
        Field::new("significant", DataType::Boolean, false),
        Field::new("class", DataType::Utf8, false),
        Field::new("confidence", DataType::Int32, false),
    ]))
}

/// Getis-Ord Gi* hot and cold spots per cell.
///
/// Output, one row per cell of the plan (ordered by site, row, col; cells
/// with events but not on the plan are listed with `class = "not_on_plan"`):
///
/// | column | meaning |
/// |---|---|
/// | `site`, `zone`, `cell`, `row`, `col`, `owner` | the cell |
/// | `value` | events counted in the cell |
/// | `neighbors` | neighbours, the cell itself not counted |
/// | `island` | no neighbours: not tested |
/// | `gi`, `expected` | G*_i and its expectation |
/// | `z` | z-score |
/// | `p_value` | two-sided normal p-value |
/// | `q_value` | Benjamini–Hochberg adjusted over every tested cell of the result |
/// | `p_sim` | folded permutation pseudo p-value (with `permutations`) |
/// | `significant` | q (or p without `fdr`) ≤ `alpha` |
/// | `class` | `hot_99`, `hot_95`, `hot_90`, `not_significant`, `cold_90`, `cold_95`, `cold_99`, `island`, `no_variation`, `not_on_plan` |
/// | `confidence` | +3 … −3 as the class (0 otherwise) |
///
/// The class bins use the q-values when `fdr` is true (the default), the raw
/// p-values otherwise: 99 % for ≤ 0.01, 95 % for ≤ 0.05, 90 % for ≤ 0.10.
pub async fn hotspots(ds: &Dataset, o: &HotspotOptions) -> Result<DataFrame> {
    let batch = hotspots_batch(ds, o).await?;
    Ok(ds.context().read_batch(batch)?)
}

/// [`hotspots`] as a collected batch.
pub async fn hotspots_batch(ds: &Dataset, o: &HotspotOptions) -> Result<RecordBatch> {
    if !(o.alpha > 0.0 && o.alpha < 1.0) {
        return Err(Error::option(
            "alpha",
            format!("must be in (0, 1), got {}", o.alpha),
        ));
    }
    ds.require_site_plan("hotspots")?;
    let hm = HeatmapOptions {
        kinds: o.kinds.clone(),
        from: o.from.clone(),
        to: o.to.clone(),
        site: o.site.clone(),
        by: crate::model::options::RollUp::Cell,
    };
    let batches = event_heatmap(ds, &hm).await?.collect().await?;
    let centroids = cell_centroids(ds);
    let mut shapes = super::plan_shapes(ds);
    let mut by_site: BTreeMap<String, Vec<CellIn>> = BTreeMap::new();
    for b in &batches {
        let s = strings(b, "site")?;
        let zone = strings(b, "zone")?;
        let cell = strings(b, "cell")?;
        let owner = strings(b, "owner")?;
        let row = ints(b, "row")?;
        let col = ints(b, "col")?;
        let events = b
            .column_by_name("events")
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>().cloned())
            .ok_or_else(|| Error::schema("hotspots", "heat map without `events`"))?;
        for i in 0..b.num_rows() {
            let site = s.value(i).to_string();
            let cell_name = if cell.is_null(i) {
                None
            } else {
                Some(cell.value(i).to_string())
            };
            let shape = cell_name
                .as_ref()
                .and_then(|c| shapes.remove(&(site.clone(), c.clone())));
            let centroid = shape
                .as_ref()
                .map(crate::model::geometry::Shape::centroid)
                .or_else(|| {
                    cell_name
                        .as_ref()
                        .and_then(|c| centroids.get(&(site.clone(), c.clone())).copied())
                })
                .or_else(|| match (row.is_null(i), col.is_null(i)) {
                    (false, false) => {
                        Some((f64::from(col.value(i)) + 0.5, f64::from(row.value(i)) + 0.5))
                    }
                    _ => None,
                });
            by_site.entry(site.clone()).or_default().push(CellIn {
                site,
                zone: (!zone.is_null(i)).then(|| zone.value(i).to_string()),
                cell: cell_name.unwrap_or_default(),
                owner: (!owner.is_null(i)).then(|| owner.value(i).to_string()),
                row: (!row.is_null(i)).then(|| row.value(i)),
                col: (!col.is_null(i)).then(|| col.value(i)),
                centroid,
                shape,
                value: events.value(i) as f64,
            });
        }
    }
    let mut rows: Vec<(CellIn, GiCell, bool)> = Vec::new();
    for (_, cells) in by_site {
        let (placed, unplaced): (Vec<CellIn>, Vec<CellIn>) = cells
            .into_iter()
            .partition(|c| !matches!(c.place(), super::Place::Nowhere));
        let nb = neighbor_lists(&placed, o.weights, o.distance)?;
        let y: Vec<f64> = placed.iter().map(|c| c.value).collect();
        let gi = gi_star(&y, &nb, o.transform, o.permutations, o.seed);
        rows.extend(placed.into_iter().zip(gi).map(|(c, g)| (c, g, true)));
        rows.extend(unplaced.into_iter().map(|c| (c, GiCell::default(), false)));
    }
    let p: Vec<Option<f64>> = rows
        .iter()
        .map(|(_, g, placed)| {
            if *placed && g.neighbors > 0 {
                g.z.map(two_sided_p)
            } else {
                None
            }
        })
        .collect();
    let q = benjamini_hochberg(&p);
    let mut class = Vec::with_capacity(rows.len());
    let mut confidence = Vec::with_capacity(rows.len());
    let mut significant = Vec::with_capacity(rows.len());
    for (i, (_, g, placed)) in rows.iter().enumerate() {
        let basis = if o.fdr { q[i] } else { p[i] };
        let (cls, conf) = if *placed {
            classify(g.z, basis, g.neighbors == 0)
        } else {
            ("not_on_plan", 0)
        };
        class.push(cls);
        confidence.push(conf);
        significant.push(basis.is_some_and(|v| v <= o.alpha));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.site.as_str()),
        )),
        Arc::new(
            rows.iter()
                .map(|r| r.0.zone.clone())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| (!r.0.cell.is_empty()).then(|| r.0.cell.clone()))
                .collect::<StringArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.0.row).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| r.0.col).collect::<Int32Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.0.owner.clone())
                .collect::<StringArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.0.value).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.1.neighbors).collect::<UInt32Array>()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.2 && r.1.neighbors == 0))
                .collect::<BooleanArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.1.g).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.1.expected).collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.1.z).collect::<Float64Array>()),
        Arc::new(p.iter().copied().collect::<Float64Array>()),
        Arc::new(q.iter().copied().collect::<Float64Array>()),
        Arc::new(rows.iter().map(|r| r.1.p_sim).collect::<Float64Array>()),
        Arc::new(
            significant
                .iter()
                .map(|s| Some(*s))
                .collect::<BooleanArray>(),
        ),
        Arc::new(StringArray::from_iter_values(class.iter().copied())),
        Arc::new(Int32Array::from(confidence)),
    ];
    Ok(RecordBatch::try_new(hotspot_schema(), cols)?)
}

/// Centroids of the cells that have a bounding box.
fn cell_centroids(ds: &Dataset) -> BTreeMap<(String, String), (f64, f64)> {
    let mut out = BTreeMap::new();
    for b in ds.batches(TableKind::Cells) {
        let (Ok(site), Ok(cell)) = (strings(b, "site"), strings(b, "cell")) else {
            continue;
        };
        let f = |n: &str| {
            b.column_by_name(n)
                .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned())
        };
        let (Some(x0), Some(y0), Some(x1), Some(y1)) =
            (f("x_min"), f("y_min"), f("x_max"), f("y_max"))
        else {
            continue;
        };
        for i in 0..b.num_rows() {
            if x0.is_null(i) || y0.is_null(i) || x1.is_null(i) || y1.is_null(i) {
                continue;
            }
            out.insert(
                (site.value(i).to_string(), cell.value(i).to_string()),
                (
                    (x0.value(i) + x1.value(i)) / 2.0,
                    (y0.value(i) + y1.value(i)) / 2.0,
                ),
            );
        }
    }
    out
}

/// Fill colour of a hot-spot class (text labels carry the same information).
pub fn class_color(class: &str) -> &'static str {
    match class {
        "hot_99" => "#b2182b",
        "hot_95" => "#ef8a62",
        "hot_90" => "#fddbc7",
        "cold_90" => "#d1e5f0",
        "cold_95" => "#67a9cf",
        "cold_99" => "#2166ac",
        "island" => "#e0e0e0",
        _ => "#f7f7f7",
    }
}

/// Render a hot-spot result of one site (the first when `site` is `None`)
/// as an SVG grid: colour and a ±3 … ±1 label per class.
pub fn hotspots_svg(
    batch: &RecordBatch,
    site: Option<&str>,
    title: &str,
    lang: crate::model::vocab::Lang,
) -> Result<String> {
    let class = strings(batch, "class")?;
    let conf = ints(batch, "confidence")?;
    let value = crate::util::columns::f64s(batch, "value")?;
    let z = crate::util::columns::f64s(batch, "z")?;
    let items = [
        ("hot_99", "+3"),
        ("hot_95", "+2"),
        ("hot_90", "+1"),
        ("not_significant", "0"),
        ("cold_90", "−1"),
        ("cold_95", "−2"),
        ("cold_99", "−3"),
    ]
    .iter()
    .map(|(c, l)| (class_color(c).to_string(), format!("{l} {}", lang.term(c))))
    .collect();
    crate::charts::site_grid(
        std::slice::from_ref(batch),
        site,
        title,
        lang.w(
            "Getis-Ord Gi*，按 FDR 校正后的显著性分级；悬停网格可见 z 值",
            "Getis-Ord Gi*, classes by FDR-adjusted significance; hover a cell for its z-score",
        ),
        items,
        lang,
        |p| {
            let i = p.i;
            let zt = if z.is_null(i) {
                "—".to_string()
            } else {
                format!("{:.2}", z.value(i))
            };
            let c = conf.value(i);
            Ok(crate::charts::Look {
                value: value.value(i),
                text: if c > 0 {
                    format!("+{c}")
                } else {
                    c.to_string()
                },
                title: match lang {
                    crate::model::vocab::Lang::Zh => format!(
                        "{}：{} 起事件，z = {zt}，{}",
                        p.cell,
                        value.value(i),
                        lang.term(class.value(i))
                    ),
                    crate::model::vocab::Lang::En => format!(
                        "{}: {} events, z = {zt}, {}",
                        p.cell,
                        value.value(i),
                        class.value(i)
                    ),
                },
                fill: Some(class_color(class.value(i)).to_string()),
                suffix: None,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand computation on a 3-cell line (binary weights, self included):
    /// y = [1, 2, 6], n = 3, x̄ = 3, s² = 14/3.
    #[test]
    fn gi_star_by_hand() {
        let nb = vec![vec![1], vec![0, 2], vec![1]];
        let r = gi_star(&[1.0, 2.0, 6.0], &nb, Transform::Binary, 0, 1);
        // Cell 0: local sum 3, W = 2: z = (3 − 2·3) / (s √(2·1/2)) = −3 / √(14/3)
        let want = -3.0 / (14.0f64 / 3.0).sqrt();
        assert!((r[0].z.unwrap() - want).abs() < 1e-12, "{:?}", r[0]);
        // Cell 1 sees everything: W = n, variance 0 → no z.
        assert_eq!(r[1].z, None);
        assert_eq!(r[2].neighbors, 1);
    }

    #[test]
    fn permutation_p_is_reproducible_and_small_for_a_cluster() {
        let mut y = vec![1.0; 25];
        for i in [6, 7, 11, 12] {
            y[i] = 20.0;
        }
        let mut nb = vec![Vec::new(); 25];
        for (i, list) in nb.iter_mut().enumerate() {
            let (r, c) = ((i / 5) as i32, (i % 5) as i32);
            for (dr, dc) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                let (rr, cc) = (r + dr, c + dc);
                if (0..5).contains(&rr) && (0..5).contains(&cc) {
                    list.push((rr * 5 + cc) as usize);
                }
            }
        }
        let a = gi_star(&y, &nb, Transform::Binary, 999, 7);
        let b = gi_star(&y, &nb, Transform::Binary, 999, 7);
        assert_eq!(a, b);
        // Cell 6 keeps its 20 and draws 4 of the other 24 values (three 20s,
        // twenty-one 1s); its observed sum needs at least two 20s:
        // P = [C(3,2)·C(21,2) + C(3,3)·C(21,1)] / C(24,4) = 651 / 10626.
        let exact = 651.0 / 10626.0;
        assert!(
            (a[6].p_sim.unwrap() - exact).abs() < 0.025,
            "{:?} vs {exact}",
            a[6]
        );
    }
}
