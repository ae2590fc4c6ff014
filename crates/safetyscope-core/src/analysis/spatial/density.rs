//! Kernel density surfaces of point data (incidents with x/y, hazards,
//! violations, personnel positions) on a raster over the site plan.
//!
//! Descriptive, no significance. For points p_i with weights w_i, bandwidth h
//! and a radially symmetric 2-D kernel K normalised to integrate to one:
//!
//! ```text
//! f(x) = Σ_i w_i K(|x − p_i| / h) / (h² Σ_i w_i)
//! gaussian:      K(u) = exp(−u²/2) / (2π)
//! epanechnikov:  K(u) = 2/π · (1 − u²) for u < 1, else 0
//! ```
//!
//! which is what scikit-learn's `KernelDensity` computes. The rule-of-thumb
//! bandwidths scale by the data: h = σ · n^(−1/6) (Scott) or
//! h = σ · (n (d + 2) / 4)^(−1/(d + 4)) = σ · n^(−1/6) (Silverman, d = 2),
//! with σ the root mean of the two coordinate variances and n the effective
//! number of points (Σw)² / Σw² (scikit-learn's string rules omit σ).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{col, lit};
use serde::{Deserialize, Serialize};

use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::session::points::{PointsFn, points_udaf};
use crate::session::window::filtered;
use crate::util::columns::f64s;
use crate::util::error::{Error, Result};

/// Kernel functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// Normal kernel (evaluated out to 8 bandwidths).
    Gaussian,
    /// Epanechnikov kernel (compact, radius h).
    Epanechnikov,
}

/// Rule-of-thumb bandwidths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BandwidthRule {
    /// Scott's rule.
    Scott,
    /// Silverman's rule.
    Silverman,
}

/// Point tables a density can be drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointSource {
    /// Incidents with x/y.
    Incidents,
    /// Hazards with x/y.
    Hazards,
    /// Violations with x/y.
    Violations,
    /// Personnel positions.
    Positions,
}

impl PointSource {
    fn table(self) -> TableKind {
        match self {
            PointSource::Incidents => TableKind::Incidents,
            PointSource::Hazards => TableKind::Hazards,
            PointSource::Violations => TableKind::Violations,
            PointSource::Positions => TableKind::Positions,
        }
    }
}

/// Options of [`density`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DensityOptions {
    /// Which points (default incidents).
    pub source: PointSource,
    /// The site: coordinates are per site plan, so a surface is per site
    /// (default: the first site in the plan).
    pub site: Option<String>,
    /// Window start, local time, inclusive.
    pub from: Option<String>,
    /// Window end, local time, exclusive.
    pub to: Option<String>,
    /// Kernel (default gaussian).
    pub kernel: Kernel,
    /// Bandwidth in metres; when absent, `bandwidth_rule`.
    pub bandwidth: Option<f64>,
    /// Rule-of-thumb bandwidth (default Scott).
    pub bandwidth_rule: BandwidthRule,
    /// Raster cell size in metres (default 1).
    pub resolution: f64,
    /// Raster extent `[x_min, y_min, x_max, y_max]` (default: the site's plan,
    /// else the points' bounds).
    pub bbox: Option<[f64; 4]>,
    /// A numeric column weighting each point (e.g. `lost_days`); rows where it
    /// is null weigh 0. Default: every point weighs 1.
    pub weight: Option<String>,
}

impl Default for DensityOptions {
    fn default() -> Self {
        DensityOptions {
            source: PointSource::Incidents,
            site: None,
            from: None,
            to: None,
            kernel: Kernel::Gaussian,
            bandwidth: None,
            bandwidth_rule: BandwidthRule::Scott,
            resolution: 1.0,
            bbox: None,
            weight: None,
        }
    }
}

/// Kernel density at `(x, y)` of weighted points (the formula in the module
/// docs).
pub fn kde_at(
    points: &[(f64, f64, f64)],
    total_weight: f64,
    h: f64,
    kernel: Kernel,
    x: f64,
    y: f64,
) -> f64 {
    let reach2 = match kernel {
        Kernel::Gaussian => (8.0 * h).powi(2),
        Kernel::Epanechnikov => h * h,
    };
    let mut s = 0.0;
    for &(px, py, w) in points {
        let d2 = (x - px).powi(2) + (y - py).powi(2);
        if d2 >= reach2 {
            continue;
        }
        let u2 = d2 / (h * h);
        s += w * match kernel {
            Kernel::Gaussian => (-0.5 * u2).exp() / std::f64::consts::TAU,
            Kernel::Epanechnikov => 2.0 / std::f64::consts::PI * (1.0 - u2),
        };
    }
    s / (h * h * total_weight)
}

/// Rule-of-thumb bandwidth of weighted 2-D points.
pub fn rule_bandwidth(points: &[(f64, f64, f64)], rule: BandwidthRule) -> Option<f64> {
    let sw: f64 = points.iter().map(|p| p.2).sum();
    let sw2: f64 = points.iter().map(|p| p.2 * p.2).sum();
    if sw <= 0.0 || points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0 * p.2).sum::<f64>() / sw;
    let my = points.iter().map(|p| p.1 * p.2).sum::<f64>() / sw;
    let vx = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum::<f64>() / sw;
    let vy = points.iter().map(|p| p.2 * (p.1 - my).powi(2)).sum::<f64>() / sw;
    let sigma = ((vx + vy) / 2.0).sqrt();
    let n = sw * sw / sw2;
    let factor = match rule {
        BandwidthRule::Scott => n.powf(-1.0 / 6.0),
        BandwidthRule::Silverman => (n * 4.0 / 4.0).powf(-1.0 / 6.0),
    };
    (sigma > 0.0).then_some(sigma * factor)
}

/// The output schema of [`density`].
pub fn density_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("site", DataType::Utf8, false),
        Field::new("ix", DataType::Int32, false),
        Field::new("iy", DataType::Int32, false),
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
        Field::new("density", DataType::Float64, false),
        Field::new("intensity", DataType::Float64, false),
        Field::new("bandwidth", DataType::Float64, false),
        Field::new("points", DataType::Float64, false),
    ]))
}

/// The most kernel evaluations (raster cells × points) one density may take.
pub const MAX_KERNEL_EVALUATIONS: u128 = 2_000_000_000;

/// A kernel density raster of one site.
///
/// One row per raster cell (`ix` from west, `iy` from the top of the plan,
/// centre `x`, `y`): `density` integrates to one over the plane, `intensity`
/// = density × total weight (expected points per m²), with the `bandwidth`
/// used and the total weight of the `points`.
pub async fn density(ds: &Dataset, o: &DensityOptions) -> Result<DataFrame> {
    let b = density_batch(ds, o).await?;
    Ok(ds.context().read_batch(b)?)
}

/// [`density`] as a collected batch.
pub async fn density_batch(ds: &Dataset, o: &DensityOptions) -> Result<RecordBatch> {
    if !(o.resolution > 0.0 && o.resolution.is_finite()) {
        return Err(Error::option(
            "resolution",
            "must be a positive number of metres",
        ));
    }
    if o.bandwidth.is_some_and(|h| !(h > 0.0 && h.is_finite())) {
        return Err(Error::option(
            "bandwidth",
            "must be a positive number of metres",
        ));
    }
    let extents = crate::io::loader::site_extents(ds.batches(TableKind::Cells));
    let site = match &o.site {
        Some(s) => s.clone(),
        None => {
            let mut sites: Vec<&String> = extents.keys().collect();
            sites.sort();
            sites.first().map(|s| (*s).clone()).ok_or_else(|| {
                Error::option(
                    "site",
                    "give a site (the plan has none with a bounding box)",
                )
            })?
        }
    };
    let kind = o.source.table();
    let df = if kind == TableKind::Positions {
        let mut df = ds
            .table(kind)
            .await?
            .filter(col("site").eq(lit(site.clone())))?;
        if let Some(b) = crate::session::window::bound(ds, "from", o.from.as_deref())? {
            df = df.filter(col("ts").gt_eq(b))?;
        }
        if let Some(b) = crate::session::window::bound(ds, "to", o.to.as_deref())? {
            df = df.filter(col("ts").lt(b))?;
        }
        df
    } else {
        filtered(ds, kind, o.from.as_deref(), o.to.as_deref(), Some(&site)).await?
    };
    let weight = match &o.weight {
        Some(w) => {
            if kind.def().column(w).is_none() {
                return Err(Error::option(
                    "weight",
                    format!("`{w}` is not a column of `{}`", kind.name()),
                ));
            }
            datafusion::functions::expr_fn::coalesce(vec![
                datafusion::logical_expr::cast(col(w.as_str()), DataType::Float64),
                lit(0.0),
            ])
        }
        None => lit(1.0),
    };
    // The bounding box: the option, else the site's plan, else (NaN) the
    // points' bounds, found where the points are.
    let bbox = o
        .bbox
        .or_else(|| extents.get(&site).map(|&(a, b, c, d)| [a, b, c, d]));
    let [bx0, by0, bx1, by1] = bbox.unwrap_or([f64::NAN; 4]);
    let rule = match o.bandwidth_rule {
        BandwidthRule::Scott => 0i64,
        BandwidthRule::Silverman => 1,
    };
    let kernel = match o.kernel {
        Kernel::Gaussian => 0i64,
        Kernel::Epanechnikov => 1,
    };
    // The points are gathered and the raster summed where the plan runs
    // (on a cluster, on an executor): only the raster comes back.
    let args = vec![
        col("x"),
        col("y"),
        weight,
        lit(bx0),
        lit(by0),
        lit(bx1),
        lit(by1),
        lit(o.resolution),
        lit(o.bandwidth.unwrap_or(f64::NAN)),
        lit(rule),
        lit(kernel),
        lit(site.clone()),
        lit(kind.name()),
    ];
    let raster = df
        .filter(col("x").is_not_null().and(col("y").is_not_null()))?
        .aggregate(vec![], vec![udaf().call(args).alias("raster")])?
        .collect()
        .await?;
    let row = raster
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| Error::schema("density", "the raster came back empty"))?;
    let r = crate::util::columns::col_as::<arrow::array::StructArray>(row, "raster")?;
    let field = |name: &str| -> Result<f64> {
        r.column_by_name(name)
            .and_then(|a| a.as_any().downcast_ref::<Float64Array>())
            .map(|a| a.value(0))
            .ok_or_else(|| Error::schema("density", format!("`{name}` is missing")))
    };
    let (h, total, x0, y0) = (field("h")?, field("total")?, field("x0")?, field("y0")?);
    let (nx, ny) = (field("nx")? as i32, field("ny")? as i32);
    let dens: Vec<f64> = r
        .column_by_name("density")
        .and_then(|a| a.as_any().downcast_ref::<arrow::array::ListArray>())
        .map(|l| l.value(0))
        .and_then(|v| v.as_any().downcast_ref::<Float64Array>().cloned())
        .map(|v| v.values().to_vec())
        .ok_or_else(|| Error::schema("density", "`density` is missing"))?;
    let n = dens.len();
    if n != (nx.max(0) as usize) * (ny.max(0) as usize) {
        return Err(Error::schema("density", "the raster has the wrong size"));
    }
    let (mut ix, mut iy, mut xs, mut ys) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for j in 0..ny {
        for i in 0..nx {
            ix.push(i);
            iy.push(j);
            xs.push(x0 + (f64::from(i) + 0.5) * o.resolution);
            ys.push(y0 + (f64::from(j) + 0.5) * o.resolution);
        }
    }
    let intensity: Vec<f64> = dens.iter().map(|d| d * total).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![site.as_str(); n])),
        Arc::new(Int32Array::from(ix)),
        Arc::new(Int32Array::from(iy)),
        Arc::new(Float64Array::from(xs)),
        Arc::new(Float64Array::from(ys)),
        Arc::new(Float64Array::from(dens)),
        Arc::new(Float64Array::from(intensity)),
        Arc::new(Float64Array::from(vec![h; n])),
        Arc::new(Float64Array::from(vec![total; n])),
    ];
    Ok(RecordBatch::try_new(density_schema(), cols)?)
}

/// The kernel density raster as an aggregate function of the plan:
/// `kde_raster(x, y, w, x0, y0, x1, y1, resolution, bandwidth, rule,
/// kernel, site, table)`. Points weighing 0 or less are left out; a NaN
/// box is the points' bounds and a NaN bandwidth the rule's. The points
/// are summed in the order of x, then y, then weight, so the raster has
/// the same bits on every run.
#[derive(Debug)]
struct KdeFn;

fn raster_fields() -> arrow::datatypes::Fields {
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    vec![
        f("h"),
        f("total"),
        f("x0"),
        f("y0"),
        f("nx"),
        f("ny"),
        Field::new(
            "density",
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
            true,
        ),
    ]
    .into()
}

impl PointsFn for KdeFn {
    fn name(&self) -> &'static str {
        "kde_raster"
    }

    fn constants(&self) -> usize {
        10
    }

    fn return_type(&self) -> DataType {
        DataType::Struct(raster_fields())
    }

    fn keep(&self, p: [f64; 3]) -> bool {
        p[2] > 0.0
    }

    fn finish(
        &self,
        pts: &[[f64; 3]],
        _: u64,
        c: &[datafusion::common::ScalarValue],
    ) -> Result<datafusion::common::ScalarValue> {
        use crate::session::points::{float, int};
        let text = |i: usize| match c.get(i) {
            Some(datafusion::common::ScalarValue::Utf8(Some(s))) => s.clone(),
            _ => String::new(),
        };
        let (site, table) = (text(8), text(9));
        let points: Vec<(f64, f64, f64)> = pts.iter().map(|p| (p[0], p[1], p[2])).collect();
        let resolution = float(c, 4);
        if !(resolution > 0.0 && resolution.is_finite()) {
            return Err(Error::option(
                "resolution",
                "must be a positive number of metres",
            ));
        }
        let rule = match int(c, 6, self.name())? {
            1 => BandwidthRule::Silverman,
            _ => BandwidthRule::Scott,
        };
        let kernel = match int(c, 7, self.name())? {
            1 => Kernel::Epanechnikov,
            _ => Kernel::Gaussian,
        };
        let total: f64 = points.iter().map(|p| p.2).sum();
        let h = match float(c, 5) {
            h if !h.is_nan() => h,
            _ => rule_bandwidth(&points, rule).ok_or_else(|| {
                Error::data(table.clone(), format!("too few distinct weighted points at site {site} for a rule-of-thumb bandwidth; give `bandwidth`"))
            })?,
        };
        let [x0, y0, x1, y1] = if float(c, 0).is_nan() {
            let fold = |f: fn(&(f64, f64, f64)) -> f64, init: f64, g: fn(f64, f64) -> f64| {
                points.iter().map(f).fold(init, g)
            };
            [
                fold(|p| p.0, f64::MAX, f64::min),
                fold(|p| p.1, f64::MAX, f64::min),
                fold(|p| p.0, f64::MIN, f64::max),
                fold(|p| p.1, f64::MIN, f64::max),
            ]
        } else {
            [float(c, 0), float(c, 1), float(c, 2), float(c, 3)]
        };
        if !(x1 > x0 && y1 > y0) {
            return Err(Error::option(
                "bbox",
                format!("empty extent [{x0}, {y0}, {x1}, {y1}]"),
            ));
        }
        let nx = ((x1 - x0) / resolution).ceil();
        let ny = ((y1 - y0) / resolution).ceil();
        if nx * ny > 4_000_000.0 {
            return Err(Error::option(
                "resolution",
                format!("{nx} × {ny} raster cells is too many; use a coarser resolution"),
            ));
        }
        let (nx, ny) = (nx as i32, ny as i32);
        let n = (nx * ny) as usize;
        // The density is summed exactly over every point at every raster
        // cell: past this many kernel evaluations (tens of seconds on one
        // core) the request is refused rather than left running.
        let work = (n as u128) * (points.len() as u128);
        if work > MAX_KERNEL_EVALUATIONS {
            return Err(Error::option(
                "resolution",
                format!(
                    "{n} raster cells × {} points = {work} kernel evaluations, more than {MAX_KERNEL_EVALUATIONS}; use a coarser resolution, a smaller bbox or a shorter window (from/to)",
                    points.len()
                ),
            ));
        }
        let mut dens = Vec::with_capacity(n);
        for j in 0..ny {
            for i in 0..nx {
                let x = x0 + (f64::from(i) + 0.5) * resolution;
                let y = y0 + (f64::from(j) + 0.5) * resolution;
                dens.push(if total > 0.0 {
                    kde_at(&points, total, h, kernel, x, y)
                } else {
                    0.0
                });
            }
        }
        let one = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
        let list = arrow::array::ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            arrow::buffer::OffsetBuffer::from_lengths([n]),
            Arc::new(Float64Array::from(dens)),
            None,
        );
        let columns = vec![
            one(h),
            one(total),
            one(x0),
            one(y0),
            one(f64::from(nx)),
            one(f64::from(ny)),
            Arc::new(list) as ArrayRef,
        ];
        Ok(datafusion::common::ScalarValue::Struct(Arc::new(
            arrow::array::StructArray::try_new(raster_fields(), columns, None)?,
        )))
    }
}

/// The `kde_raster` aggregate function.
pub(crate) fn udaf() -> Arc<datafusion::logical_expr::AggregateUDF> {
    static KDE: std::sync::OnceLock<Arc<datafusion::logical_expr::AggregateUDF>> =
        std::sync::OnceLock::new();
    KDE.get_or_init(|| Arc::new(points_udaf(Arc::new(KdeFn))))
        .clone()
}

/// Render a density raster as SVG with a sequential colour scale.
pub fn density_svg(
    batch: &RecordBatch,
    title: &str,
    lang: crate::model::vocab::Lang,
) -> Result<String> {
    let ix = crate::util::columns::ints(batch, "ix")?;
    let iy = crate::util::columns::ints(batch, "iy")?;
    let v = f64s(batch, "intensity")?;
    let site = crate::util::columns::strings(batch, "site")?;
    let cells: Vec<(u32, u32, f64)> = (0..batch.num_rows())
        .map(|i| {
            (
                ix.value(i).max(0) as u32,
                iy.value(i).max(0) as u32,
                v.value(i),
            )
        })
        .collect();
    let t = if batch.num_rows() > 0 {
        format!("{title} — {}", site.value(0))
    } else {
        title.to_string()
    };
    Ok(safetyscope_render::raster_svg(
        &t,
        lang.w("每平方米点数", "points per m²"),
        &cells,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_integrate_to_one() {
        let pts = [(0.0, 0.0, 1.0)];
        for (k, h) in [(Kernel::Gaussian, 1.0), (Kernel::Epanechnikov, 2.0)] {
            let step = 0.05;
            let mut total = 0.0;
            let mut x = -10.0;
            while x < 10.0 {
                let mut y = -10.0;
                while y < 10.0 {
                    total += kde_at(&pts, 1.0, h, k, x + step / 2.0, y + step / 2.0) * step * step;
                    y += step;
                }
                x += step;
            }
            assert!((total - 1.0).abs() < 1e-3, "{k:?}: {total}");
        }
    }
}
