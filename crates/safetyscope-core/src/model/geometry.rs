//! Polygon cells of a site plan: parsing (WKT, GeoJSON), point in polygon,
//! centroids and contiguity (shared vertices or edges).

use std::collections::HashMap;

/// A point.
pub type Point = (f64, f64);

/// One polygon: an exterior ring and its holes (rings without the repeated
/// closing vertex).
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    /// The outer boundary.
    pub exterior: Vec<Point>,
    /// Holes.
    pub holes: Vec<Vec<Point>>,
}

/// A polygon or a multi-polygon.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Its polygons.
    pub parts: Vec<Polygon>,
}

fn ring_of(points: Vec<Point>) -> Result<Vec<Point>, String> {
    let mut r = points;
    if r.len() > 1 && r.first() == r.last() {
        r.pop();
    }
    if r.len() < 3 {
        return Err("a ring needs at least 3 distinct vertices".into());
    }
    if r.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return Err("a vertex is not a finite number".into());
    }
    Ok(r)
}

impl Shape {
    /// Parse `POLYGON ((x y, …), (…))` or `MULTIPOLYGON (((…)), ((…)))`.
    pub fn from_wkt(text: &str) -> Result<Shape, String> {
        let t = text.trim();
        let upper = t.to_ascii_uppercase();
        let (multi, rest) = if let Some(r) = upper.strip_prefix("MULTIPOLYGON") {
            (true, &t[t.len() - r.len()..])
        } else if let Some(r) = upper.strip_prefix("POLYGON") {
            (false, &t[t.len() - r.len()..])
        } else {
            return Err(format!(
                "`{}` is not a POLYGON or MULTIPOLYGON",
                t.chars().take(40).collect::<String>()
            ));
        };
        let nested = parse_nested(rest.trim())?;
        let polys = if multi {
            nested.into_polygons(3)?
        } else {
            nested.into_polygons(2)?
        };
        Ok(Shape { parts: polys })
    }

    /// A GeoJSON `Polygon` or `MultiPolygon` geometry object.
    pub fn from_geojson(g: &serde_json::Value) -> Result<Shape, String> {
        let kind = g.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let coords = g
            .get("coordinates")
            .ok_or_else(|| "a geometry without `coordinates`".to_string())?;
        let ring = |v: &serde_json::Value| -> Result<Vec<Point>, String> {
            let pts = v
                .as_array()
                .ok_or("a ring is not an array")?
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([x, y, ..]) => match (x.as_f64(), y.as_f64()) {
                        (Some(x), Some(y)) => Ok((x, y)),
                        _ => Err("a position is not two numbers".to_string()),
                    },
                    _ => Err("a position is not two numbers".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            ring_of(pts)
        };
        let polygon = |v: &serde_json::Value| -> Result<Polygon, String> {
            let rings = v.as_array().ok_or("a polygon is not an array of rings")?;
            let mut it = rings.iter();
            let exterior = ring(it.next().ok_or("a polygon without rings")?)?;
            let holes = it.map(ring).collect::<Result<_, _>>()?;
            Ok(Polygon { exterior, holes })
        };
        let parts = match kind {
            "Polygon" => vec![polygon(coords)?],
            "MultiPolygon" => coords
                .as_array()
                .ok_or("a MultiPolygon is not an array")?
                .iter()
                .map(polygon)
                .collect::<Result<_, _>>()?,
            other => {
                return Err(format!(
                    "a `{other}` geometry: cells are Polygon or MultiPolygon"
                ));
            }
        };
        Ok(Shape { parts })
    }

    /// Well-known text.
    pub fn to_wkt(&self) -> String {
        let ring = |r: &[Point]| {
            let mut pts: Vec<String> = r.iter().map(|(x, y)| format!("{x} {y}")).collect();
            if let Some(first) = r.first() {
                pts.push(format!("{} {}", first.0, first.1));
            }
            format!("({})", pts.join(", "))
        };
        let poly = |p: &Polygon| {
            let rings: Vec<String> = std::iter::once(&p.exterior)
                .chain(&p.holes)
                .map(|r| ring(r))
                .collect();
            format!("({})", rings.join(", "))
        };
        match self.parts.as_slice() {
            [p] => format!("POLYGON {}", poly(p)),
            parts => format!(
                "MULTIPOLYGON ({})",
                parts.iter().map(poly).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Every vertex of every ring.
    pub fn vertices(&self) -> impl Iterator<Item = Point> + '_ {
        self.parts
            .iter()
            .flat_map(|p| std::iter::once(&p.exterior).chain(&p.holes))
            .flatten()
            .copied()
    }

    /// Every edge of every ring (consecutive vertices, the ring closed).
    pub fn edges(&self) -> impl Iterator<Item = (Point, Point)> + '_ {
        self.parts
            .iter()
            .flat_map(|p| std::iter::once(&p.exterior).chain(&p.holes))
            .flat_map(|r| (0..r.len()).map(move |i| (r[i], r[(i + 1) % r.len()])))
    }

    /// `(x_min, y_min, x_max, y_max)`.
    pub fn bbox(&self) -> (f64, f64, f64, f64) {
        self.vertices().fold(
            (
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), (x, y)| (a.min(x), b.min(y), c.max(x), d.max(y)),
        )
    }

    /// Whether the point is inside (even–odd rule over each polygon's rings,
    /// so holes are outside). A point exactly on a boundary may fall either
    /// side; the binning takes the first cell that holds it.
    pub fn contains(&self, (x, y): Point) -> bool {
        self.parts.iter().any(|p| {
            std::iter::once(&p.exterior)
                .chain(&p.holes)
                .filter(|r| crosses_odd(r, x, y))
                .count()
                % 2
                == 1
        })
    }

    /// The area-weighted centroid (shoelace formula; holes subtract).
    pub fn centroid(&self) -> Point {
        let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
        for p in &self.parts {
            for (k, r) in std::iter::once(&p.exterior).chain(&p.holes).enumerate() {
                let (ra, rx, ry) = ring_moments(r);
                // Holes count against the polygon whatever their orientation.
                let sign = if k == 0 { ra.signum() } else { -ra.signum() };
                a += sign * ra;
                cx += sign * rx;
                cy += sign * ry;
            }
        }
        if a.abs() < f64::MIN_POSITIVE {
            let (x0, y0, x1, y1) = self.bbox();
            return ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        }
        (cx / (3.0 * a), cy / (3.0 * a))
    }
}

/// Signed area, and the sums of the centroid formula (×3·area).
fn ring_moments(r: &[Point]) -> (f64, f64, f64) {
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for i in 0..r.len() {
        let (x0, y0) = r[i];
        let (x1, y1) = r[(i + 1) % r.len()];
        let cross = x0 * y1 - x1 * y0;
        a += cross;
        cx += (x0 + x1) * cross;
        cy += (y0 + y1) * cross;
    }
    (a / 2.0, cx / 2.0, cy / 2.0)
}

/// Ray casting: whether a ray from the point to +x crosses the ring an odd
/// number of times.
fn crosses_odd(r: &[Point], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = r.len() - 1;
    for i in 0..r.len() {
        let (xi, yi) = r[i];
        let (xj, yj) = r[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Nested parentheses of WKT coordinates.
enum Nested {
    Coords(Vec<Point>),
    List(Vec<Nested>),
}

impl Nested {
    fn into_polygons(self, depth: usize) -> Result<Vec<Polygon>, String> {
        let rings = |n: Nested| -> Result<Polygon, String> {
            let Nested::List(rs) = n else {
                return Err("a polygon is not a list of rings".into());
            };
            let mut rings = rs.into_iter().map(|r| match r {
                Nested::Coords(c) => ring_of(c),
                Nested::List(_) => Err("a ring is not a list of coordinates".into()),
            });
            let exterior = rings.next().ok_or("a polygon without rings")??;
            let holes = rings.collect::<Result<_, _>>()?;
            Ok(Polygon { exterior, holes })
        };
        match (depth, self) {
            (2, n) => Ok(vec![rings(n)?]),
            (3, Nested::List(ps)) => ps.into_iter().map(rings).collect(),
            _ => Err("a MULTIPOLYGON is not a list of polygons".into()),
        }
    }
}

fn parse_nested(s: &str) -> Result<Nested, String> {
    let mut chars = s.char_indices().peekable();
    let n = parse_group(s, &mut chars)?;
    if chars.any(|(_, c)| !c.is_whitespace()) {
        return Err("text after the closing parenthesis".into());
    }
    Ok(n)
}

fn parse_group(
    s: &str,
    it: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<Nested, String> {
    while it.peek().is_some_and(|(_, c)| c.is_whitespace()) {
        it.next();
    }
    match it.next() {
        Some((_, '(')) => {}
        _ => return Err("expected `(`".into()),
    }
    while it.peek().is_some_and(|(_, c)| c.is_whitespace()) {
        it.next();
    }
    if it.peek().is_some_and(|(_, c)| *c == '(') {
        let mut items = Vec::new();
        loop {
            items.push(parse_group(s, it)?);
            while it.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                it.next();
            }
            match it.next() {
                Some((_, ',')) => continue,
                Some((_, ')')) => return Ok(Nested::List(items)),
                _ => return Err("expected `,` or `)`".into()),
            }
        }
    }
    let start = it.peek().map_or(s.len(), |(i, _)| *i);
    let mut end = start;
    for (i, c) in it.by_ref() {
        if c == ')' {
            end = i;
            break;
        }
        if c == '(' {
            return Err("unexpected `(` in a coordinate list".into());
        }
        end = i + c.len_utf8();
    }
    let pts = s[start..end]
        .split(',')
        .map(|p| {
            let mut xy = p.split_whitespace().map(str::parse::<f64>);
            match (xy.next(), xy.next()) {
                (Some(Ok(x)), Some(Ok(y))) => Ok((x, y)),
                _ => Err(format!("`{}` is not a coordinate pair", p.trim())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Nested::Coords(pts))
}

/// Neighbours of polygons: queen (a shared vertex) or rook (a shared edge,
/// either direction), on exact coordinates, as PySAL builds them.
pub fn contiguity(shapes: &[&Shape], rook: bool) -> Vec<Vec<usize>> {
    let key = |(x, y): Point| (x.to_bits(), y.to_bits());
    let mut owners: HashMap<(u64, u64, u64, u64), Vec<usize>> = HashMap::new();
    for (i, s) in shapes.iter().enumerate() {
        let mut mine: Vec<(u64, u64, u64, u64)> = if rook {
            s.edges()
                .map(|(a, b)| {
                    let (a, b) = (key(a), key(b));
                    let (a, b) = if a <= b { (a, b) } else { (b, a) };
                    (a.0, a.1, b.0, b.1)
                })
                .collect()
        } else {
            s.vertices().map(key).map(|(x, y)| (x, y, 0, 0)).collect()
        };
        mine.sort_unstable();
        mine.dedup();
        for k in mine {
            owners.entry(k).or_default().push(i);
        }
    }
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); shapes.len()];
    for list in owners.values() {
        for &a in list {
            for &b in list {
                if a != b {
                    out[a].push(b);
                }
            }
        }
    }
    for n in &mut out {
        n.sort_unstable();
        n.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wkt_round_trips_and_holes_are_outside() {
        let s =
            Shape::from_wkt("POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (4 4, 6 4, 6 6, 4 6, 4 4))")
                .unwrap();
        assert!(s.contains((1.0, 1.0)));
        assert!(!s.contains((5.0, 5.0)));
        assert!(!s.contains((11.0, 5.0)));
        assert_eq!(Shape::from_wkt(&s.to_wkt()).unwrap(), s);
        assert_eq!(s.centroid(), (5.0, 5.0));
        let m = Shape::from_wkt("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))")
            .unwrap();
        assert_eq!(m.parts.len(), 2);
        assert!(m.contains((5.9, 5.5)));
        for bad in [
            "POINT (1 2)",
            "POLYGON ((0 0, 1 1))",
            "POLYGON ((0 0, 1 x, 2 2))",
            "POLYGON ((0 0, 1 0, 1 1)",
        ] {
            assert!(Shape::from_wkt(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queen_shares_a_vertex_rook_an_edge() {
        // Four unit squares in a 2 × 2 block.
        let sq = |x: f64, y: f64| {
            Shape::from_wkt(&format!(
                "POLYGON (({x} {y}, {} {y}, {} {}, {x} {}, {x} {y}))",
                x + 1.0,
                x + 1.0,
                y + 1.0,
                y + 1.0
            ))
            .unwrap()
        };
        let s = [sq(0.0, 0.0), sq(1.0, 0.0), sq(0.0, 1.0), sq(1.0, 1.0)];
        let refs: Vec<&Shape> = s.iter().collect();
        assert_eq!(contiguity(&refs, false)[0], vec![1, 2, 3]);
        assert_eq!(contiguity(&refs, true)[0], vec![1, 2]);
    }
}
