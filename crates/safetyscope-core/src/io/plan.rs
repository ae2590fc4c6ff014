//! Site plans declared in a mapping: regular grids (`[[grid]]`) and
//! polygon layers (`[[polygons]]`). Coordinates become cells without a
//! script, and the site plan (`cells`) is generated from the same
//! definition.
//!
//! ```toml
//! [[grid]]
//! site = "NYC"
//! coordinates = "lonlat"          # or "xy": x / y already in metres
//! extent = [-74.26, 40.49, -73.70, 40.92]
//! cell_size = 1000                # metres
//! ```
//!
//! With `lonlat`, x is the longitude and y the latitude (WGS 84 degrees).
//! They are projected to metres east and north of the extent's south-west
//! corner with an equirectangular projection at the extent's middle
//! latitude: `x = R·(λ − λ₀)·cos φₘ`, `y = R·(φ − φ₀)`, `R` = 6,371,008.8 m
//! (the mean Earth radius). Over 50 km north to south the scale differs from
//! the true one by at most 0.4 % at 45° latitude. The canonical `x` / `y`
//! of every row then hold those metres, like the site plan's bounds.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray};
use serde::{Deserialize, Serialize};

use crate::model::geometry::Shape;
use crate::model::schema::{GRID_MAX, TableKind};
use crate::util::error::{Error, Result};

/// The mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The most cells a declared grid may have.
pub const MAX_GRID_CELLS: usize = 1_000_000;

/// The units of the coordinates a grid bins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coordinates {
    /// x / y in metres on a site plan.
    #[default]
    Xy,
    /// x = longitude, y = latitude, WGS 84 degrees.
    Lonlat,
}

/// One regular grid over one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// The site whose rows are binned (rows of other sites are left as
    /// they are).
    pub site: String,
    /// The units of `x` / `y` and of `extent`.
    #[serde(default)]
    pub coordinates: Coordinates,
    /// `[x_min, y_min, x_max, y_max]` in those units: the area covered.
    pub extent: [f64; 4],
    /// The side of a cell, metres.
    pub cell_size: f64,
    /// The zone of every generated cell (default: the site).
    pub zone: Option<String>,
    /// The owner of every generated cell.
    pub owner: Option<String>,
}

/// A grid ready to bin: the extent in metres and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The declaration.
    pub spec: GridSpec,
    /// Width and height of the extent, metres.
    pub size_m: (f64, f64),
    /// Columns and rows.
    pub shape: (usize, usize),
    /// `cos φₘ` of a lon/lat grid (1 for x / y).
    cos_mid: f64,
    /// Prefix of the cell ids (`SITE-` when several grids share a mapping).
    prefix: String,
}

impl Grid {
    /// Check a declaration and compute its shape; `loc` names it in errors.
    pub fn new(spec: &GridSpec, loc: &str, prefixed: bool) -> Result<Grid> {
        let bad = |m: String| Error::mapping(Some(loc.to_string()), m);
        let [x0, y0, x1, y1] = spec.extent;
        if spec.site.trim().is_empty() {
            return Err(bad("`site` is empty".into()));
        }
        if !spec.extent.iter().all(|v| v.is_finite()) || x1 <= x0 || y1 <= y0 {
            return Err(bad(format!(
                "`extent = [{x0}, {y0}, {x1}, {y1}]` must be [x_min, y_min, x_max, y_max] with x_min < x_max and y_min < y_max"
            )));
        }
        if spec.coordinates == Coordinates::Lonlat
            && !(x0 >= -180.0 && x1 <= 180.0 && y0 >= -90.0 && y1 <= 90.0)
        {
            return Err(bad(format!(
                "`extent = [{x0}, {y0}, {x1}, {y1}]` is not longitude / latitude (−180…180, −90…90)"
            )));
        }
        if !(spec.cell_size.is_finite() && spec.cell_size > 0.0) {
            return Err(bad(format!(
                "`cell_size = {}` must be a positive number of metres",
                spec.cell_size
            )));
        }
        let cos_mid = match spec.coordinates {
            Coordinates::Xy => 1.0,
            Coordinates::Lonlat => ((y0 + y1) / 2.0).to_radians().cos(),
        };
        let mut g = Grid {
            spec: spec.clone(),
            size_m: (0.0, 0.0),
            shape: (0, 0),
            cos_mid,
            prefix: if prefixed {
                format!("{}-", spec.site)
            } else {
                String::new()
            },
        };
        g.size_m = g.project(x1, y1);
        let cols = (g.size_m.0 / spec.cell_size).ceil();
        let rows = (g.size_m.1 / spec.cell_size).ceil();
        if cols * rows > MAX_GRID_CELLS as f64 || cols > GRID_MAX + 1.0 || rows > GRID_MAX + 1.0 {
            return Err(bad(format!(
                "{cols} × {rows} cells of {} m: more than {MAX_GRID_CELLS} cells or {} per side; raise `cell_size`",
                spec.cell_size,
                GRID_MAX + 1.0
            )));
        }
        g.shape = (cols as usize, rows as usize);
        Ok(g)
    }

    /// Metres east and north of the extent's south-west corner.
    pub fn project(&self, x: f64, y: f64) -> (f64, f64) {
        let [x0, y0, _, _] = self.spec.extent;
        match self.spec.coordinates {
            Coordinates::Xy => (x - x0, y - y0),
            Coordinates::Lonlat => (
                EARTH_RADIUS_M * (x - x0).to_radians() * self.cos_mid,
                EARTH_RADIUS_M * (y - y0).to_radians(),
            ),
        }
    }

    /// The (row, col) holding a projected point, row 0 at the top (north);
    /// `None` outside the grid. A point on the east or north edge of the
    /// extent belongs to the last cell.
    pub fn cell_of(&self, (mx, my): (f64, f64)) -> Option<(usize, usize)> {
        let (w, h) = self.size_m;
        if !(mx >= 0.0 && my >= 0.0 && mx <= w && my <= h) {
            return None;
        }
        let s = self.spec.cell_size;
        let (cols, rows) = self.shape;
        let col = ((mx / s).floor() as usize).min(cols - 1);
        let from_top = (((h - my) / s).floor() as usize).min(rows - 1);
        Some((from_top, col))
    }

    /// The id of a cell: `R003C012` (zero-padded to the grid's size), with
    /// the site first when a mapping declares several grids.
    pub fn cell_id(&self, row: usize, col: usize) -> String {
        let wr = self.shape.1.saturating_sub(1).to_string().len();
        let wc = self.shape.0.saturating_sub(1).to_string().len();
        format!("{}R{row:0wr$}C{col:0wc$}", self.prefix)
    }

    /// The site plan of the grid, in canonical `cells` columns.
    pub fn cells(&self) -> Result<RecordBatch> {
        let (cols, rows) = self.shape;
        let (_, h) = self.size_m;
        let s = self.spec.cell_size;
        let n = cols * rows;
        let mut id = Vec::with_capacity(n);
        let (mut r, mut c) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut x0, mut y0, mut x1, mut y1) = (vec![], vec![], vec![], vec![]);
        for row in 0..rows {
            for col in 0..cols {
                id.push(self.cell_id(row, col));
                r.push(row as i32);
                c.push(col as i32);
                x0.push(col as f64 * s);
                x1.push((col + 1) as f64 * s);
                y1.push(h - row as f64 * s);
                y0.push(h - (row + 1) as f64 * s);
            }
        }
        let zone = self
            .spec
            .zone
            .clone()
            .unwrap_or_else(|| self.spec.site.clone());
        let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("cell", Arc::new(StringArray::from(id))),
            ("zone", text(&zone)),
            ("site", text(&self.spec.site)),
            ("row", Arc::new(Int32Array::from(r))),
            ("col", Arc::new(Int32Array::from(c))),
            ("x_min", Arc::new(Float64Array::from(x0))),
            ("y_min", Arc::new(Float64Array::from(y0))),
            ("x_max", Arc::new(Float64Array::from(x1))),
            ("y_max", Arc::new(Float64Array::from(y1))),
            (
                "owner",
                Arc::new(StringArray::from(vec![self.spec.owner.clone(); n])),
            ),
        ];
        Ok(RecordBatch::try_from_iter(columns)?)
    }
}

/// A polygon layer over one site: each polygon a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolygonSpec {
    /// The site whose rows are binned.
    pub site: String,
    /// A GeoJSON FeatureCollection of Polygon / MultiPolygon features, or a
    /// CSV file with a WKT column; relative to the mapping file.
    pub path: String,
    /// The property (GeoJSON) or column (CSV) naming each cell.
    pub cell: String,
    /// The property or column of each cell's zone (default: the site).
    pub zone: Option<String>,
    /// The property or column of each cell's owner.
    pub owner: Option<String>,
    /// CSV only: the column holding each cell's polygon as WKT.
    pub wkt: Option<String>,
}

/// One polygon cell.
#[derive(Debug, Clone, PartialEq)]
pub struct PolygonCell {
    /// Cell id.
    pub id: String,
    /// Zone.
    pub zone: String,
    /// Owner.
    pub owner: Option<String>,
    /// The polygon.
    pub shape: Shape,
    /// Its bounding box.
    pub bbox: (f64, f64, f64, f64),
}

/// A loaded polygon layer with a bucket index for point-in-polygon.
#[derive(Debug, Clone, PartialEq)]
pub struct PolygonPlan {
    /// The declaration.
    pub spec: PolygonSpec,
    /// The cells, in file order.
    pub cells: Vec<PolygonCell>,
    /// Union bounding box.
    bbox: (f64, f64, f64, f64),
    /// Buckets per side.
    side: usize,
    /// Candidate cells of each bucket, row-major.
    buckets: Vec<Vec<u32>>,
}

/// The most polygons a layer may have.
pub const MAX_POLYGONS: usize = 100_000;

impl PolygonPlan {
    /// Index `cells` (checked: unique ids, at least one).
    pub fn new(spec: &PolygonSpec, cells: Vec<PolygonCell>, loc: &str) -> Result<PolygonPlan> {
        let bad = |m: String| Error::mapping(Some(loc.to_string()), m);
        if cells.is_empty() {
            return Err(bad(format!("{} holds no polygon", spec.path)));
        }
        if cells.len() > MAX_POLYGONS {
            return Err(bad(format!(
                "{} holds {} polygons, more than {MAX_POLYGONS}",
                spec.path,
                cells.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(c) = cells.iter().find(|c| !seen.insert(c.id.as_str())) {
            return Err(bad(format!(
                "cell `{}` appears twice in {} (`cell = \"{}\"` must name each polygon once)",
                c.id, spec.path, spec.cell
            )));
        }
        let bbox = cells.iter().fold(
            (
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), p| {
                (
                    a.min(p.bbox.0),
                    b.min(p.bbox.1),
                    c.max(p.bbox.2),
                    d.max(p.bbox.3),
                )
            },
        );
        let side = ((cells.len() as f64).sqrt().ceil() as usize * 2).clamp(1, 512);
        let mut plan = PolygonPlan {
            spec: spec.clone(),
            cells,
            bbox,
            side,
            buckets: vec![Vec::new(); side * side],
        };
        for (i, c) in plan.cells.iter().enumerate() {
            let (a, b) = (
                plan.bucket(c.bbox.0, c.bbox.1),
                plan.bucket(c.bbox.2, c.bbox.3),
            );
            for by in a.1..=b.1 {
                for bx in a.0..=b.0 {
                    plan.buckets[by * side + bx].push(i as u32);
                }
            }
        }
        Ok(plan)
    }

    /// The bucket holding a point (clamped to the index).
    fn bucket(&self, x: f64, y: f64) -> (usize, usize) {
        let (x0, y0, x1, y1) = self.bbox;
        let f = |v: f64, lo: f64, hi: f64| {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
            ((t * self.side as f64).floor().max(0.0) as usize).min(self.side - 1)
        };
        (f(x, x0, x1), f(y, y0, y1))
    }

    /// The first cell (in file order) holding the point.
    pub fn cell_of(&self, x: f64, y: f64) -> Option<&PolygonCell> {
        let (x0, y0, x1, y1) = self.bbox;
        if !(x >= x0 && x <= x1 && y >= y0 && y <= y1) {
            return None;
        }
        let (bx, by) = self.bucket(x, y);
        self.buckets[by * self.side + bx]
            .iter()
            .map(|&i| &self.cells[i as usize])
            .find(|c| {
                x >= c.bbox.0
                    && x <= c.bbox.2
                    && y >= c.bbox.1
                    && y <= c.bbox.3
                    && c.shape.contains((x, y))
            })
    }

    /// The site plan of the layer: bounds and WKT of each polygon, no
    /// grid position.
    pub fn cells(&self) -> Result<RecordBatch> {
        let c = &self.cells;
        let f = |g: &dyn Fn(&PolygonCell) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from(c.iter().map(g).collect::<Vec<_>>()))
        };
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "cell",
                Arc::new(StringArray::from_iter_values(
                    c.iter().map(|p| p.id.as_str()),
                )),
            ),
            (
                "zone",
                Arc::new(StringArray::from_iter_values(
                    c.iter().map(|p| p.zone.as_str()),
                )),
            ),
            (
                "site",
                Arc::new(StringArray::from(vec![self.spec.site.as_str(); c.len()])),
            ),
            ("row", Arc::new(Int32Array::from(vec![None; c.len()]))),
            ("col", Arc::new(Int32Array::from(vec![None; c.len()]))),
            ("x_min", f(&|p| p.bbox.0)),
            ("y_min", f(&|p| p.bbox.1)),
            ("x_max", f(&|p| p.bbox.2)),
            ("y_max", f(&|p| p.bbox.3)),
            (
                "owner",
                Arc::new(c.iter().map(|p| p.owner.clone()).collect::<StringArray>()),
            ),
            (
                "geometry",
                Arc::new(StringArray::from_iter_values(
                    c.iter().map(|p| p.shape.to_wkt()),
                )),
            ),
        ];
        Ok(RecordBatch::try_from_iter(columns)?)
    }
}

/// A site plan declared in a mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// A regular grid.
    Grid(Grid),
    /// A polygon layer.
    Polygons(PolygonPlan),
}

impl Plan {
    /// The site it covers.
    pub fn site(&self) -> &str {
        match self {
            Plan::Grid(g) => &g.spec.site,
            Plan::Polygons(p) => &p.spec.site,
        }
    }

    /// Its site plan in canonical `cells` columns.
    pub fn cells(&self) -> Result<RecordBatch> {
        match self {
            Plan::Grid(g) => g.cells(),
            Plan::Polygons(p) => p.cells(),
        }
    }

    /// The cell of a point and the coordinates kept for it (a grid's metres,
    /// a polygon layer's own units); `None` outside every cell.
    pub fn bin(&self, x: f64, y: f64) -> Option<(String, f64, f64)> {
        match self {
            Plan::Grid(g) => {
                let m = g.project(x, y);
                g.cell_of(m).map(|(r, c)| (g.cell_id(r, c), m.0, m.1))
            }
            Plan::Polygons(p) => p.cell_of(x, y).map(|c| (c.id.clone(), x, y)),
        }
    }

    /// What a point fell outside of, for the report.
    pub fn outside(&self) -> String {
        match self {
            Plan::Grid(g) => {
                let [a, b, c, d] = g.spec.extent;
                format!("the grid of {} [{a}, {b}, {c}, {d}]", g.spec.site)
            }
            Plan::Polygons(p) => format!(
                "every polygon of {} ({} cells in {})",
                p.spec.site,
                p.cells.len(),
                p.spec.path
            ),
        }
    }
}

/// The grids of a mapping, checked.
pub(crate) fn grids(specs: &[GridSpec], label: &str) -> Result<Vec<Grid>> {
    let prefixed = specs.len() > 1;
    let mut seen = std::collections::HashSet::new();
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let loc = format!("{label} [[grid]] {}", i + 1);
            if !seen.insert(s.site.as_str()) {
                return Err(Error::mapping(
                    Some(loc),
                    format!("a second grid for site `{}`", s.site),
                ));
            }
            Grid::new(s, &loc, prefixed)
        })
        .collect()
}

/// Whether a table's rows carry coordinates a grid bins.
pub fn binned(kind: TableKind) -> bool {
    let def = kind.def();
    kind != TableKind::Cells
        && ["x", "y", "cell"]
            .iter()
            .all(|c| def.columns.iter().any(|d| d.name == *c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(coordinates: Coordinates, extent: [f64; 4], cell_size: f64) -> GridSpec {
        GridSpec {
            site: "S".into(),
            coordinates,
            extent,
            cell_size,
            zone: None,
            owner: None,
        }
    }

    #[test]
    fn cells_are_counted_from_the_top_left() {
        let g = Grid::new(
            &spec(Coordinates::Xy, [100.0, 200.0, 130.0, 220.0], 10.0),
            "m",
            false,
        )
        .unwrap();
        assert_eq!(g.shape, (3, 2));
        // The top-left cell holds the north-west corner; edges close the grid.
        assert_eq!(g.cell_of(g.project(100.0, 220.0)), Some((0, 0)));
        assert_eq!(g.cell_of(g.project(129.0, 201.0)), Some((1, 2)));
        assert_eq!(g.cell_of(g.project(130.0, 200.0)), Some((1, 2)));
        assert_eq!(g.cell_of(g.project(99.9, 210.0)), None);
        assert_eq!(g.cell_id(1, 2), "R1C2");
        let b = g.cells().unwrap();
        assert_eq!(b.num_rows(), 6);
    }

    #[test]
    fn lonlat_is_projected_with_the_documented_formula() {
        let g = Grid::new(
            &spec(Coordinates::Lonlat, [-74.0, 40.0, -73.0, 41.0], 1000.0),
            "m",
            false,
        )
        .unwrap();
        let (x, y) = g.project(-73.5, 40.5);
        let r = EARTH_RADIUS_M;
        assert!((x - r * 0.5f64.to_radians() * 40.5f64.to_radians().cos()).abs() < 1e-6);
        assert!((y - r * 0.5f64.to_radians()).abs() < 1e-6);
        // One degree of latitude is about 111.2 km: 112 rows of 1 km.
        assert_eq!(g.shape.1, 112);
    }

    #[test]
    fn absurd_grids_are_mapping_errors() {
        for (s, what) in [
            (
                spec(Coordinates::Xy, [0.0, 0.0, 10.0, 10.0], 0.0),
                "cell_size",
            ),
            (spec(Coordinates::Xy, [0.0, 0.0, -1.0, 10.0], 1.0), "extent"),
            (
                spec(Coordinates::Lonlat, [0.0, 0.0, 200.0, 10.0], 1.0),
                "longitude",
            ),
            (
                spec(Coordinates::Xy, [0.0, 0.0, 1e9, 1e9], 1.0),
                "raise `cell_size`",
            ),
            (
                spec(Coordinates::Xy, [0.0, 0.0, f64::NAN, 1.0], 1.0),
                "extent",
            ),
        ] {
            let e = Grid::new(&s, "m.toml [[grid]] 1", false).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(what), "{e}");
        }
    }
}
