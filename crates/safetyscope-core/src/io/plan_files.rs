//! Reading the files of a mapping's site plans: polygon layers from
//! GeoJSON or CSV with WKT, and every plan of a mapping loaded.

#[cfg(feature = "native")]
use arrow::array::{Array, StringArray};

use crate::io::plan::{GridSpec, Plan, PolygonSpec, grids};
#[cfg(feature = "native")]
use crate::io::plan::{PolygonCell, PolygonPlan};
#[cfg(feature = "native")]
use crate::model::geometry::Shape;
use crate::util::error::{Error, Result};

/// Read a polygon layer's file: GeoJSON features or CSV rows with WKT.
#[cfg(feature = "native")]
pub fn load_polygons(spec: &PolygonSpec, base: &std::path::Path, loc: &str) -> Result<PolygonPlan> {
    crate::io::confine::check_location(base, &spec.path, &format!("{loc} path"))?;
    let full = crate::io::remote::join_location(base, &spec.path);
    let bad = |m: String| Error::mapping(Some(loc.to_string()), m);
    let text_of = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let default_zone = spec.site.clone();
    let mut cells = Vec::new();
    let lower = spec.path.to_ascii_lowercase();
    if lower.ends_with(".geojson") || lower.ends_with(".json") {
        let text = match crate::io::remote::url_of(&full) {
            Some(u) => crate::io::remote::read_text(u)?,
            None => std::fs::read_to_string(&full).map_err(|e| Error::io(&full, e))?,
        };
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{} is not JSON: {e}", spec.path)))?;
        let features = doc
            .get("features")
            .and_then(|f| f.as_array())
            .ok_or_else(|| bad(format!("{} is not a GeoJSON FeatureCollection", spec.path)))?;
        for (i, f) in features.iter().enumerate() {
            let at = |m: String| bad(format!("{} feature {}: {m}", spec.path, i + 1));
            let props = f.get("properties").cloned().unwrap_or_default();
            let prop = |name: &str| props.get(name).and_then(text_of);
            let id = prop(&spec.cell).ok_or_else(|| {
                at(format!(
                    "no property `{}`; its properties are {}",
                    spec.cell,
                    props
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                ))
            })?;
            let shape = Shape::from_geojson(f.get("geometry").unwrap_or(&serde_json::Value::Null))
                .map_err(at)?;
            cells.push(PolygonCell {
                zone: spec
                    .zone
                    .as_deref()
                    .and_then(prop)
                    .unwrap_or_else(|| default_zone.clone()),
                owner: spec.owner.as_deref().and_then(prop),
                bbox: shape.bbox(),
                shape,
                id,
            });
        }
    } else {
        let wkt = spec.wkt.as_deref().ok_or_else(|| {
            bad("a CSV polygon layer needs `wkt`, the column of the polygons".into())
        })?;
        let opts = crate::io::source::ReadOptions::default();
        let mut row = 0usize;
        for src in crate::io::source::discover(&full, None)? {
            for b in crate::io::source::read_source(&src, &opts)? {
                let b = b?;
                let col = |name: &str| -> Result<StringArray> {
                    let a = b.column_by_name(name).ok_or_else(|| {
                        bad(format!(
                            "{} has no column `{name}`; its columns are {}",
                            spec.path,
                            b.schema()
                                .fields()
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                    let t = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)?;
                    Ok(t.as_any()
                        .downcast_ref::<StringArray>()
                        .expect("utf8")
                        .clone())
                };
                let (ids, shapes) = (col(&spec.cell)?, col(wkt)?);
                let zones = spec.zone.as_deref().map(col).transpose()?;
                let owners = spec.owner.as_deref().map(col).transpose()?;
                for i in 0..b.num_rows() {
                    row += 1;
                    let at = |m: String| bad(format!("{} row {row}: {m}", spec.path));
                    if ids.is_null(i) || shapes.is_null(i) {
                        return Err(at(format!("no `{}` or `{wkt}`", spec.cell)));
                    }
                    let shape = Shape::from_wkt(shapes.value(i)).map_err(at)?;
                    let get = |a: &Option<StringArray>| {
                        a.as_ref()
                            .filter(|a| !a.is_null(i))
                            .map(|a| a.value(i).to_string())
                    };
                    cells.push(PolygonCell {
                        id: ids.value(i).trim().to_string(),
                        zone: get(&zones).unwrap_or_else(|| default_zone.clone()),
                        owner: get(&owners),
                        bbox: shape.bbox(),
                        shape,
                    });
                }
            }
        }
    }
    PolygonPlan::new(spec, cells, loc)
}

/// A polygon layer, read from its file.
#[cfg(feature = "native")]
fn load(p: &PolygonSpec, base: &std::path::Path, loc: &str) -> Result<Plan> {
    load_polygons(p, base, loc).map(Plan::Polygons)
}

/// Polygon layers are files: the WASM build has none to read.
#[cfg(not(feature = "native"))]
fn load(_: &PolygonSpec, _: &std::path::Path, loc: &str) -> Result<Plan> {
    Err(Error::mapping(
        Some(loc.to_string()),
        "polygon layers are read from files by the native builds (CLI, Python)",
    ))
}

/// The site plans a mapping declares, checked and loaded (`base` resolves
/// polygon files).
pub fn plans(
    grid: &[GridSpec],
    polygons: &[PolygonSpec],
    base: &std::path::Path,
    label: &str,
) -> Result<Vec<Plan>> {
    let mut out: Vec<Plan> = grids(grid, label)?.into_iter().map(Plan::Grid).collect();
    for (i, p) in polygons.iter().enumerate() {
        let loc = format!("{label} [[polygons]] {}", i + 1);
        if out.iter().any(|x| x.site() == p.site) {
            return Err(Error::mapping(
                Some(loc),
                format!("a second plan for site `{}`", p.site),
            ));
        }
        out.push(load(p, base, &loc)?);
    }
    Ok(out)
}
