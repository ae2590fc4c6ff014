//! Tests of the `measure` module.

use super::*;
use crate::analysis::kpis::meter::{HOUR, order_key};
use crate::analysis::kpis::scope::Scope;
use crate::analysis::kpis::timeline::Timeline;

#[test]
fn order_keys_sort_like_the_values() {
    let mut v = vec![-3.5, -0.25, 0.0, 1e-9, 0.5, 1.0, 1.5, 2.0, 1e6];
    let keys: Vec<u64> = v.iter().map(|x| order_key(*x)).collect();
    assert!(keys.windows(2).all(|k| k[0] < k[1]));
    v.reverse();
    assert!(
        v.windows(2)
            .all(|p| order_key(p[0]) >> 44 >= order_key(p[1]) >> 44)
    );
}

#[test]
fn timeline_covers_and_counts_before_bounds() {
    let tl = Timeline::new(vec![(0, 0, 10), (1, 5, 20), (2, 20, 30)]);
    assert_eq!(tl.covering(-1), &[] as &[u32]);
    assert_eq!(tl.covering(0), &[0]);
    assert_eq!(tl.covering(7), &[0, 1]);
    assert_eq!(tl.covering(10), &[1]);
    assert_eq!(tl.covering(20), &[2]);
    assert_eq!(tl.covering(30), &[] as &[u32]);
    // An instant is before bounds[j] for j >= its slot.
    for t in [-5, 0, 4, 5, 19, 20, 29, 30, 99] {
        let s = tl.slot(t);
        for (j, &b) in tl.bounds.iter().enumerate() {
            assert_eq!(t < b, j >= s, "t={t} b={b}");
        }
    }
}

/// Hazard counts and cycle quantiles of random windows against a plain
/// count and sort of the same hazards.
#[test]
fn hazard_measures_equal_a_direct_computation() {
    use std::sync::Arc;
    let mut rng = crate::util::rng::Rng::new(7, "measure-test");
    let h = 3_600_000_000i64;
    let n = 4000;
    let (mut site, mut zone, mut level) = (vec![], vec![], vec![]);
    let (mut rep, mut due, mut closed) = (vec![], vec![], vec![]);
    for _ in 0..n {
        site.push(["A", "B"][rng.below(2)]);
        zone.push([Some("z1"), Some("z2"), None][rng.below(3)]);
        level.push(if rng.chance(0.2) { "major" } else { "general" });
        let r = (rng.f64() * 2000.0) as i64 * h + rng.below(3600) as i64 * 1_000_000;
        rep.push(r);
        due.push(rng.chance(0.9).then(|| r + [24, 72, 168][rng.below(3)] * h));
        // Many cycles of exactly equal length share a bin.
        closed.push(rng.chance(0.8).then(|| {
            if rng.chance(0.3) {
                r + 5 * h
            } else {
                r + (rng.f64() * 400.0 * h as f64) as i64 - h / 2
            }
        }));
    }
    let batch = RecordBatch::try_from_iter(vec![
        (
            "site",
            Arc::new(arrow::array::StringArray::from(site.clone())) as _,
        ),
        (
            "zone",
            Arc::new(arrow::array::StringArray::from(zone.clone())) as _,
        ),
        (
            "level",
            Arc::new(arrow::array::StringArray::from(level.clone())) as _,
        ),
        ("reported_at", Arc::new(Int64Array::from(rep.clone())) as _),
        ("due_at", Arc::new(Int64Array::from(due.clone())) as _),
        ("closed_at", Arc::new(Int64Array::from(closed.clone())) as _),
    ])
    .unwrap();
    let scopes = [
        Scope::parse("group"),
        Scope::parse("A"),
        Scope::parse("B/z2"),
    ];
    let mut windows = vec![];
    for _ in 0..40 {
        let a = (rng.f64() * 2100.0 * h as f64) as i64 - 50 * h;
        let b = a + (rng.f64() * 900.0 * h as f64) as i64;
        windows.push(Window {
            scope: scopes[rng.below(3)].clone(),
            a,
            b,
            months: 1.0,
        });
    }
    // Two partial meters over a split of the rows, merged as the plan's
    // partitions are, in both passes.
    let windows: std::sync::Arc<[Window]> = windows.into();
    let (first, rest) = (batch.slice(0, 1500), batch.slice(1500, n - 1500));
    let mut m = Meter::new(windows.clone(), &[]);
    m.fold(Input::Hazards, &first).unwrap();
    let mut other = Meter::new(windows.clone(), &[]);
    other.fold(Input::Hazards, &rest).unwrap();
    m.merge(&other.encode()).unwrap();
    let (keys, wanted) = m.cycle_bins();
    let mut picking = Meter::new(windows.clone(), &keys);
    picking.fold(Input::Cycles, &rest).unwrap();
    let mut other = Meter::new(windows.clone(), &keys);
    other.fold(Input::Cycles, &first).unwrap();
    picking.merge(&other.encode()).unwrap();
    m.picked = picking.picked;
    m.finish();
    let pool: std::sync::Arc<dyn datafusion::execution::memory_pool::MemoryPool> =
        std::sync::Arc::new(datafusion::execution::memory_pool::UnboundedMemoryPool::default());
    let measured = Measured {
        meter: m,
        wanted,
        _memory: datafusion::execution::memory_pool::MemoryConsumer::new("test").register(&pool),
    };
    let got: Vec<_> = (0..measured.len())
        .filter_map(|w| measured.get(w))
        .collect();
    for (w, win) in windows.iter().enumerate() {
        let inside = |i: usize| {
            win.scope.site.as_deref().is_none_or(|s| s == site[i])
                && win.scope.zone.as_deref().is_none_or(|z| Some(z) == zone[i])
        };
        let (mut found, mut cl, mut du, mut on, mut open, mut over) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut mopen, mut mover, mut mfound) = (0.0, 0.0, 0.0);
        let mut cycles = vec![];
        for i in (0..n).filter(|&i| inside(i) && rep[i] < win.b) {
            let by_end = closed[i].is_some_and(|c| c < win.b);
            let major = level[i] == "major";
            if rep[i] >= win.a {
                found += 1.0;
                mfound += f64::from(u8::from(major));
                if by_end {
                    cl += 1.0;
                    cycles.push((closed[i].unwrap() - rep[i]) as f64 / HOUR);
                }
            }
            if let Some(d) = due[i].filter(|d| *d >= win.a && *d < win.b) {
                du += 1.0;
                on += f64::from(u8::from(closed[i].is_some_and(|c| c <= d)));
            }
            if !by_end {
                let late = due[i].is_some_and(|d| d < win.b);
                open += 1.0;
                over += f64::from(u8::from(late));
                mopen += f64::from(u8::from(major));
                mover += f64::from(u8::from(major && late));
            }
        }
        cycles.sort_by(f64::total_cmp);
        let g = |k: &str| got[w][k].value;
        assert_eq!(g("hazards_found"), Some(found), "window {w}");
        assert_eq!(g("hazards_closed"), Some(cl));
        assert_eq!(got[w]["on_time_rate"].denominator, Some(du));
        assert_eq!(got[w]["on_time_rate"].numerator, Some(on));
        assert_eq!(g("open_hazards"), Some(open), "window {w}");
        assert_eq!(g("overdue_hazards"), Some(over));
        assert_eq!(g("major_hazards_found"), Some(mfound));
        assert_eq!(g("major_open_hazards"), Some(mopen));
        assert_eq!(g("major_overdue_hazards"), Some(mover));
        assert_eq!(
            g("rectification_cycle_hours"),
            crate::util::stats::quantile(&cycles, 0.5)
        );
        assert_eq!(
            g("rectification_cycle_p90_hours"),
            crate::util::stats::quantile(&cycles, 0.9)
        );
    }
}

/// The outline taken from kept inputs equals the one planned over the
/// tables, with a zone left empty and a site whose only rows are trainings
/// without a person.
#[test]
fn the_kept_outline_equals_the_planned_one() {
    let csv = |kind: TableKind, text: &str| {
        (
            kind,
            format!("{}.csv", kind.name()),
            bytes::Bytes::from(text.to_string()),
        )
    };
    let ds = Dataset::from_bytes(
        Some("Asia/Shanghai"),
        vec![
            csv(
                TableKind::Incidents,
                "id,occurred_at,site,zone,category,severity\ni1,2025-01-03 08:00,A,z1,fire,minor\ni2,2025-02-03 08:00,A,,fire,first_aid\ni3,2025-03-09 23:30,B,z9,fire,near_miss\n",
            ),
            csv(
                TableKind::Hazards,
                "id,reported_at,site,zone,category,level\nh1,2024-12-30 10:00,C,zc,fire,general\n",
            ),
            csv(
                TableKind::Violations,
                "id,detected_at,site,zone,kind\nv1,2025-06-01 09:00,D,zd,phone\n",
            ),
            csv(
                TableKind::Exposure,
                "site,zone,period_start,period_end,hours_worked\nE,ze,2025-01-01,2025-02-01,1000\n",
            ),
            csv(
                TableKind::Activities,
                "at,site,kind,person_id\n2025-01-05 09:00,T,training,\n2025-01-06 09:00,A,training,P1\n",
            ),
        ],
        None,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (kept, planned) = rt.block_on(async {
        (
            Facts::open(&ds, None, true).await.unwrap().outline,
            Facts::open(&ds, None, false).await.unwrap().outline,
        )
    });
    assert_eq!(kept.sites, planned.sites);
    assert_eq!(kept.zones, planned.zones);
    assert_eq!(kept.span, planned.span);
    assert!(kept.sites.contains("T") && kept.zones["A"].len() == 1);
}
