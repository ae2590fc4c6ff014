//! Near-repeat space-time clustering: the Knox test.

use std::collections::HashMap;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{AggregateUDF, cast, col, lit};
use serde::{Deserialize, Serialize};

use crate::analysis::temporal::options::*;
use crate::analysis::temporal::profile::*;
use crate::analysis::temporal::select::*;
use crate::session::dataset::Dataset;
use crate::session::points::{PointsFn, float, int, points_udaf};
use crate::util::columns::col_as;
use crate::util::error::{Error, Result};

/// Options of [`knox`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KnoxOptions {
    /// Event selection (kinds, window, site, zone, categories, severities).
    pub events: PatternOptions,
    /// Space threshold in metres: pairs at most this far apart are close.
    pub distance: f64,
    /// Time threshold in days: pairs at most this far apart are close.
    pub days: f64,
    /// Permutations of the times over the places (0 = none).
    pub permutations: u32,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for KnoxOptions {
    fn default() -> Self {
        KnoxOptions {
            events: PatternOptions::default(),
            distance: 5.0,
            days: 3.0,
            permutations: 199,
            seed: 1,
        }
    }
}

/// Result of the Knox test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnoxResult {
    /// Events with coordinates used.
    pub n: u64,
    /// Events left out for lack of x/y.
    pub without_xy: u64,
    /// Pairs close in space.
    pub close_space: u64,
    /// Pairs close in time.
    pub close_time: u64,
    /// Pairs close in both (the statistic).
    pub statistic: u64,
    /// Expected statistic under no interaction: close_space × close_time / pairs.
    pub expected: f64,
    /// Poisson p-value, P(X > statistic).
    pub p_poisson: f64,
    /// Permutation p-value, (exceedances + 1) / (permutations + 1).
    pub p_permutation: Option<f64>,
}

/// Near-repeat space-time interaction: the Knox test on events with x/y
/// (times in days). The statistic counts pairs within `distance` metres
/// and `days` days (both inclusive), as PySAL `pointpats` does; the
/// permutation p-value shuffles times over places with `seed`.
pub async fn knox(ds: &Dataset, o: &KnoxOptions) -> Result<KnoxResult> {
    o.events.validate()?;
    if !(o.distance > 0.0 && o.days >= 0.0) {
        return Err(Error::option(
            "distance",
            "distance must be > 0 and days ≥ 0",
        ));
    }
    // The points are gathered and tested where the plan runs (on a
    // cluster, on an executor): only the result comes back.
    let args = vec![
        col("x"),
        col("y"),
        cast(col("t"), DataType::Float64) / lit(86_400e6),
        lit(o.distance),
        lit(o.days),
        lit(i64::from(o.permutations)),
        lit(o.seed as i64),
    ];
    let batches = events_frame(ds, &o.events)
        .await?
        .aggregate(vec![], vec![udaf().call(args).alias("knox")])?
        .collect()
        .await?;
    let row = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| Error::schema("knox", "the test returned no row"))?;
    let r = col_as::<StructArray>(row, "knox")?;
    let int = |name: &str| -> Result<u64> {
        let a = r
            .column_by_name(name)
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| Error::schema("knox", format!("`{name}` is missing")))?;
        Ok(a.value(0).max(0) as u64)
    };
    let float = |name: &str| -> Result<Option<f64>> {
        let a = r
            .column_by_name(name)
            .and_then(|a| a.as_any().downcast_ref::<Float64Array>())
            .ok_or_else(|| Error::schema("knox", format!("`{name}` is missing")))?;
        Ok(a.is_valid(0).then(|| a.value(0)))
    };
    Ok(KnoxResult {
        n: int("n")?,
        without_xy: int("without_xy")?,
        close_space: int("close_space")?,
        close_time: int("close_time")?,
        statistic: int("statistic")?,
        expected: float("expected")?.unwrap_or(f64::NAN),
        p_poisson: float("p_poisson")?.unwrap_or(f64::NAN),
        p_permutation: float("p_permutation")?,
    })
}

/// The Knox test as an aggregate function of the plan:
/// `knox_test(x, y, t_days, distance, days, permutations, seed)`. The
/// events are tested in the order of their time, then x and y, so the
/// seeded permutations, and `p_permutation`, are the same on every run.
#[derive(Debug)]
struct KnoxFn;

const KNOX_FIELDS: [(&str, bool); 8] = [
    ("n", true),
    ("without_xy", true),
    ("close_space", true),
    ("close_time", true),
    ("statistic", true),
    ("expected", false),
    ("p_poisson", false),
    ("p_permutation", false),
];

fn knox_fields() -> arrow::datatypes::Fields {
    KNOX_FIELDS
        .iter()
        .map(|(n, int)| {
            let t = if *int {
                DataType::Int64
            } else {
                DataType::Float64
            };
            Field::new(*n, t, true)
        })
        .collect()
}

impl PointsFn for KnoxFn {
    fn name(&self) -> &'static str {
        "knox_test"
    }

    fn constants(&self) -> usize {
        4
    }

    fn return_type(&self) -> DataType {
        DataType::Struct(knox_fields())
    }

    fn order(&self, a: &[f64; 3], b: &[f64; 3]) -> std::cmp::Ordering {
        a[2].total_cmp(&b[2])
            .then(a[0].total_cmp(&b[0]))
            .then(a[1].total_cmp(&b[1]))
    }

    fn finish(
        &self,
        points: &[[f64; 3]],
        left_out: u64,
        constants: &[ScalarValue],
    ) -> Result<ScalarValue> {
        let pts: Vec<(f64, f64, f64)> = points.iter().map(|p| (p[0], p[1], p[2])).collect();
        let permutations = u32::try_from(int(constants, 2, self.name())?)
            .map_err(|_| Error::option("permutations", "must be between 0 and 4294967295"))?;
        let seed = int(constants, 3, self.name())? as u64;
        let r = knox_points(
            &pts,
            float(constants, 0),
            float(constants, 1),
            permutations,
            seed,
            left_out,
        )?;
        let ints = [r.n, r.without_xy, r.close_space, r.close_time, r.statistic];
        let mut columns: Vec<ArrayRef> = ints
            .iter()
            .map(|v| Arc::new(Int64Array::from(vec![*v as i64])) as ArrayRef)
            .collect();
        for v in [Some(r.expected), Some(r.p_poisson), r.p_permutation] {
            columns.push(Arc::new(Float64Array::from(vec![v])));
        }
        Ok(ScalarValue::Struct(Arc::new(StructArray::try_new(
            knox_fields(),
            columns,
            None,
        )?)))
    }
}

/// The `knox_test` aggregate function.
pub(crate) fn udaf() -> Arc<AggregateUDF> {
    static KNOX: std::sync::OnceLock<Arc<AggregateUDF>> = std::sync::OnceLock::new();
    KNOX.get_or_init(|| Arc::new(points_udaf(Arc::new(KnoxFn))))
        .clone()
}

/// The most pairs of points within `distance` one Knox test may hold
/// (8 bytes each: 1.6 GB).
pub const MAX_CLOSE_PAIRS: usize = 200_000_000;

/// The Knox statistic and its inference on `(x, y, t)` points.
pub fn knox_points(
    pts: &[(f64, f64, f64)],
    distance: f64,
    days: f64,
    permutations: u32,
    seed: u64,
    without_xy: u64,
) -> Result<KnoxResult> {
    knox_capped(
        pts,
        distance,
        days,
        permutations,
        seed,
        without_xy,
        MAX_CLOSE_PAIRS,
    )
}

/// [`knox_points`] holding at most `max_pairs` close pairs.
fn knox_capped(
    pts: &[(f64, f64, f64)],
    distance: f64,
    days: f64,
    permutations: u32,
    seed: u64,
    without_xy: u64,
    max_pairs: usize,
) -> Result<KnoxResult> {
    let n = pts.len();
    let d2 = distance * distance;
    // Spatial pairs through a grid of buckets `distance` wide.
    let mut buckets: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    let cell = |v: f64| (v / distance).floor() as i64;
    for (i, p) in pts.iter().enumerate() {
        buckets.entry((cell(p.0), cell(p.1))).or_default().push(i);
    }
    let mut space_pairs: Vec<(u32, u32)> = vec![];
    for (i, p) in pts.iter().enumerate() {
        let (cx, cy) = (cell(p.0), cell(p.1));
        for dx in -1..=1 {
            for dy in -1..=1 {
                if let Some(v) = buckets.get(&(cx + dx, cy + dy)) {
                    for &j in v {
                        if j > i {
                            let (ex, ey) = (p.0 - pts[j].0, p.1 - pts[j].1);
                            if ex * ex + ey * ey <= d2 {
                                if space_pairs.len() == max_pairs {
                                    return Err(Error::option(
                                        "distance",
                                        format!(
                                            "more than {max_pairs} pairs of the {n} points lie within {distance} m; use a smaller distance or fewer events (from/to, site, kinds)"
                                        ),
                                    ));
                                }
                                space_pairs.push((i as u32, j as u32));
                            }
                        }
                    }
                }
            }
        }
    }
    // Temporal pairs by a sweep over sorted times.
    let mut times: Vec<f64> = pts.iter().map(|p| p.2).collect();
    times.sort_by(f64::total_cmp);
    let mut close_time = 0u64;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] > days {
            lo += 1;
        }
        close_time += (hi - lo) as u64;
    }
    let close = |t: &dyn Fn(usize) -> f64| {
        space_pairs
            .iter()
            .filter(|(i, j)| (t(*i as usize) - t(*j as usize)).abs() <= days)
            .count() as u64
    };
    let statistic = close(&|i| pts[i].2);
    let pairs = (n as f64) * (n as f64 - 1.0) / 2.0;
    let expected = if pairs > 0.0 {
        space_pairs.len() as f64 * close_time as f64 / pairs
    } else {
        0.0
    };
    let p_permutation = (permutations > 0 && n > 1).then(|| {
        let mut rng = crate::util::rng::Rng::new(seed, "knox");
        let mut perm: Vec<usize> = (0..n).collect();
        let mut exceed = 0u32;
        for _ in 0..permutations {
            for i in (1..n).rev() {
                let j = rng.below(i + 1);
                perm.swap(i, j);
            }
            if close(&|i| pts[perm[i]].2) >= statistic {
                exceed += 1;
            }
        }
        f64::from(exceed + 1) / f64::from(permutations + 1)
    });
    Ok(KnoxResult {
        n: n as u64,
        without_xy,
        close_space: space_pairs.len() as u64,
        close_time,
        statistic,
        expected,
        p_poisson: crate::util::stats::poisson_sf(statistic as f64, expected),
        p_permutation,
    })
}

/// The Knox result as a one-row batch.
pub fn knox_batch(r: &KnoxResult) -> Result<RecordBatch> {
    let mut c = Columns::default();
    let u = |v: u64| vec![Some(v as i64)];
    c.int64("n", u(r.n));
    c.int64("without_xy", u(r.without_xy));
    c.int64("close_space", u(r.close_space));
    c.int64("close_time", u(r.close_time));
    c.int64("statistic", u(r.statistic));
    c.float("expected", vec![Some(r.expected)]);
    c.float("p_poisson", vec![Some(r.p_poisson)]);
    c.float("p_permutation", vec![r.p_permutation]);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize, side: f64, seed: u64) -> Vec<(f64, f64, f64)> {
        let mut rng = crate::util::rng::Rng::new(seed, "knox-test");
        (0..n)
            .map(|_| (rng.f64() * side, rng.f64() * side, rng.f64() * 365.0))
            .collect()
    }

    #[test]
    fn the_grid_finds_every_close_pair_of_a_brute_force() {
        let pts = points(20_000, 1_000.0, 3);
        let (d, days) = (7.5, 3.0);
        let r = knox_points(&pts, d, days, 0, 1, 0).unwrap();
        let (mut space, mut both) = (0u64, 0u64);
        for i in 0..pts.len() {
            for j in i + 1..pts.len() {
                let (ex, ey) = (pts[i].0 - pts[j].0, pts[i].1 - pts[j].1);
                if ex * ex + ey * ey <= d * d {
                    space += 1;
                    both += u64::from((pts[i].2 - pts[j].2).abs() <= days);
                }
            }
        }
        assert!(space > 1_000);
        assert_eq!((r.close_space, r.statistic), (space, both));
        // 10⁵ points: the cost follows the close pairs (about 860,000 here),
        // not the 5 × 10⁹ pairs of points.
        let big = knox_points(&points(100_000, 1_000.0, 4), d, days, 0, 1, 0).unwrap();
        assert!(big.close_space > 700_000 && big.close_space < 1_000_000);
    }

    #[test]
    fn too_many_close_pairs_are_refused_naming_the_distance() {
        // Every point on one spot: n(n−1)/2 close pairs.
        let pts = vec![(1.0, 1.0, 0.0); 1_000];
        let e = knox_capped(&pts, 5.0, 1.0, 0, 1, 0, 10_000).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("smaller distance"), "{e}");
        assert!(knox_capped(&pts, 5.0, 1.0, 0, 1, 0, 1_000_000).is_ok());
    }
}
