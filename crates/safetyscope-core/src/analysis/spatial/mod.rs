//! Where: heat maps, Getis-Ord Gi* hot spots, the risk four-colour map,
//! kernel density and emerging hot spots.

pub mod density;
pub mod emerging;
pub mod heatmap;
pub mod hotspots;
pub mod risk;
pub(crate) mod risk_evidence;
pub mod risk_model;

use std::collections::{BTreeMap, HashMap};

use crate::model::geometry::Shape;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;

/// Where a cell of the plan sits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place<'a> {
    /// A grid position (row, col).
    Grid(i32, i32),
    /// A polygon.
    Polygon(&'a Shape),
    /// Not on the plan.
    Nowhere,
}

/// Contiguity neighbours of cells: on a grid the 8 (queen) or 4 (rook)
/// adjacent positions; between polygons a shared vertex (queen) or a shared
/// edge (rook). A grid cell and a polygon are never neighbours.
pub(crate) fn contiguity(places: &[Place<'_>], rook: bool) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); places.len()];
    let at: BTreeMap<(i32, i32), usize> = places
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Place::Grid(r, c) => Some(((*r, *c), i)),
            _ => None,
        })
        .collect();
    for (i, p) in places.iter().enumerate() {
        let Place::Grid(r, k) = *p else { continue };
        for dr in -1..=1 {
            for dc in -1..=1 {
                if (dr == 0 && dc == 0) || (rook && dr != 0 && dc != 0) {
                    continue;
                }
                if let Some(&j) = at.get(&(r + dr, k + dc)) {
                    out[i].push(j);
                }
            }
        }
    }
    let (idx, shapes): (Vec<usize>, Vec<&Shape>) = places
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Place::Polygon(s) => Some((i, *s)),
            _ => None,
        })
        .unzip();
    for (k, nb) in crate::model::geometry::contiguity(&shapes, rook)
        .into_iter()
        .enumerate()
    {
        out[idx[k]] = nb.into_iter().map(|j| idx[j]).collect();
    }
    out
}

/// The polygons of the plan's cells, by (site, cell).
pub(crate) fn plan_shapes(ds: &Dataset) -> HashMap<(String, String), Shape> {
    let mut out = HashMap::new();
    for b in ds.batches(TableKind::Cells) {
        let (Ok(s), Ok(c), Ok(g)) = (
            crate::util::columns::strings(b, "site"),
            crate::util::columns::strings(b, "cell"),
            crate::util::columns::strings(b, "geometry"),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            if arrow::array::Array::is_null(&g, i) {
                continue;
            }
            // Validated when the plan was loaded.
            if let Ok(shape) = Shape::from_wkt(g.value(i)) {
                out.insert((s.value(i).to_string(), c.value(i).to_string()), shape);
            }
        }
    }
    out
}
