//! Time-of-day patterns: the planted high-risk hours are found, a flat rate
//! gives no peaks, the real mine-accident profile equals pandas, and the
//! profiles are dense, ordered and consistent with the raw counts.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, Float64Array, Int32Array, RecordBatch};
use safetyscope_core::generate::GenerateOptions;
use safetyscope_core::heatmap::EventKind;
use safetyscope_core::patterns::{
    Dim, ExposureSource, PatternOptions, PeakGrid, Shift, TimeBasis, peaks, pyramid, shift_profile,
    time_profile, trends,
};
use safetyscope_core::{Dataset, OnTableError};

use common::{block_on, load};

fn repo() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
    Path::new(&dir).join("../..")
}

fn f64s<'a>(b: &'a RecordBatch, name: &str) -> &'a Float64Array {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap()
}

fn i32s<'a>(b: &'a RecordBatch, name: &str) -> &'a Int32Array {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap()
}

/// The generator's roster: day shift full, night shift half, lighter weekends.
fn generator_roster() -> PatternOptions {
    PatternOptions {
        exposure: ExposureSource::Shifts,
        shifts: vec![
            Shift {
                name: "day".into(),
                start: "08:00".into(),
                end: "20:00".into(),
                headcount: 1.0,
            },
            Shift {
                name: "night".into(),
                start: "20:00".into(),
                end: "08:00".into(),
                headcount: 0.5,
            },
        ],
        weekday_factors: Some(vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6]),
        ..Default::default()
    }
}

fn significant_high(cells: &RecordBatch) -> BTreeSet<(i32, i32)> {
    let sig: &BooleanArray = cells
        .column_by_name("significant")
        .unwrap()
        .as_any()
        .downcast_ref()
        .unwrap();
    let rr = f64s(cells, "rate_ratio");
    let (wd, hr) = (i32s(cells, "weekday"), i32s(cells, "hour"));
    (0..cells.num_rows())
        .filter(|&i| sig.value(i) && !rr.is_null(i) && rr.value(i) > 1.0)
        .map(|i| (wd.value(i), hr.value(i)))
        .collect()
}

#[test]
fn planted_high_risk_hours_are_found() {
    let (ds, truth) = load(&GenerateOptions::default());
    let (cells, periods) = block_on(peaks(&ds, &generator_roster())).unwrap();
    assert_eq!(cells.num_rows(), 168);
    let found = significant_high(&cells);
    let mut planted: BTreeSet<(i32, i32)> = BTreeSet::new();
    for d in 0..7 {
        for &h in &truth.high_risk_hours {
            planted.insert((d, h as i32));
        }
    }
    for &(d, h) in &truth.high_risk_weekday_hours {
        planted.insert((d as i32, h as i32));
    }
    let missed: Vec<_> = planted.difference(&found).collect();
    let extra: Vec<_> = found.difference(&planted).collect();
    assert!(missed.is_empty(), "missed {missed:?}");
    assert!(
        extra.len() as f64 <= 0.05 * found.len() as f64,
        "false peaks {extra:?}"
    );
    // Adjacent significant hours are merged: 2–4 h on every day, Monday 9–11 h.
    let (from, to) = (i32s(&periods, "hour_from"), i32s(&periods, "hour_to"));
    let merged: BTreeSet<(i32, i32, i32)> = (0..periods.num_rows())
        .map(|i| {
            (
                i32s(&periods, "weekday").value(i),
                from.value(i),
                to.value(i),
            )
        })
        .collect();
    for d in 0..7 {
        assert!(merged.contains(&(d, 2, 4)), "{merged:?}");
    }
    assert!(merged.contains(&(0, 9, 11)), "{merged:?}");
    let rr = f64s(&periods, "rate_ratio");
    for i in 0..periods.num_rows() {
        // Planted factor 3 against the rest of the week, diluted a little.
        assert!(rr.value(i) > 2.0 && rr.value(i) < 4.0, "{}", rr.value(i));
    }
}

#[test]
fn flat_rate_gives_no_peaks_beyond_the_fdr_rate() {
    let g = GenerateOptions {
        plant_hours: false,
        seed: 11,
        ..Default::default()
    };
    let (ds, _) = load(&g);
    for grid in [PeakGrid::HourWeekday, PeakGrid::Hour] {
        let o = PatternOptions {
            grid,
            ..generator_roster()
        };
        let (cells, _) = block_on(peaks(&ds, &o)).unwrap();
        let sig: &BooleanArray = cells
            .column_by_name("significant")
            .unwrap()
            .as_any()
            .downcast_ref()
            .unwrap();
        let n = (0..cells.num_rows()).filter(|&i| sig.value(i)).count();
        assert!(
            n as f64 <= 0.05 * cells.num_rows() as f64,
            "{n} significant cells of {}",
            cells.num_rows()
        );
    }
}

#[test]
fn profile_is_dense_ordered_and_sums_to_the_events() {
    let (ds, _) = load(&GenerateOptions {
        scale: 0.2,
        sites: 3,
        ..Default::default()
    });
    let o = PatternOptions {
        by: vec![Dim::Site, Dim::Zone],
        kinds: vec![EventKind::Incidents, EventKind::Violations],
        ..Default::default()
    };
    let p = block_on(time_profile(&ds, &o)).unwrap();
    // 3 sites × 3 zones × 7 days × (24 hours + the unknown-time row).
    assert_eq!(p.num_rows(), 9 * 7 * 25);
    let (wd, hr) = (i32s(&p, "weekday"), i32s(&p, "hour"));
    for i in 0..25 * 7 {
        assert_eq!(wd.value(i) as usize, i / 25);
        if i % 25 == 24 {
            assert!(hr.is_null(i));
        } else {
            assert_eq!(hr.value(i) as usize, i % 25);
        }
    }
    let total: f64 = f64s(&p, "events").iter().flatten().sum();
    let n = ds.row_count(safetyscope_core::TableKind::Incidents)
        + ds.row_count(safetyscope_core::TableKind::Violations);
    assert_eq!(total, n as f64);
    // Aoristic weights of one event sum to 1: the total is unchanged.
    let a = block_on(time_profile(
        &ds,
        &PatternOptions {
            time: TimeBasis::Aoristic,
            ..o.clone()
        },
    ))
    .unwrap();
    let ta: f64 = f64s(&a, "events").iter().flatten().sum();
    assert!((ta - total).abs() < 1e-6, "{ta} vs {total}");
    // Rates use the exposure records where they exist.
    assert!(f64s(&p, "exposure_hours").iter().flatten().sum::<f64>() > 0.0);
}

#[test]
fn mine_accident_hour_by_weekday_equals_pandas() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/mine_accidents_expected.json"))
            .unwrap(),
    )
    .unwrap();
    let ds = Dataset::open(
        &repo().join("examples/real/mine-accidents.toml"),
        None,
        OnTableError::Fail,
    )
    .unwrap();
    let p = block_on(time_profile(&ds, &PatternOptions::default())).unwrap();
    let (wd, hr, ev) = (i32s(&p, "weekday"), i32s(&p, "hour"), f64s(&p, "events"));
    let mut want = [[0.0; 24]; 7];
    for row in expected["by_weekday_hour"].as_array().unwrap() {
        let r = row.as_array().unwrap();
        want[r[0].as_u64().unwrap() as usize][r[1].as_u64().unwrap() as usize] =
            r[2].as_f64().unwrap();
    }
    let mut unknown = [0.0; 7];
    for (k, v) in expected["time_unknown_by_weekday"].as_object().unwrap() {
        unknown[k.parse::<usize>().unwrap()] = v.as_f64().unwrap();
    }
    assert_eq!(p.num_rows(), 7 * 25);
    for i in 0..p.num_rows() {
        let d = wd.value(i) as usize;
        if hr.is_null(i) {
            assert_eq!(ev.value(i), unknown[d], "unknown time, weekday {d}");
        } else {
            let h = hr.value(i) as usize;
            assert_eq!(ev.value(i), want[d][h], "weekday {d} hour {h}");
        }
    }
    assert_eq!(
        unknown.iter().sum::<f64>(),
        expected["time_unknown"].as_f64().unwrap()
    );
}

#[test]
fn shifts_trends_and_pyramid_add_up() {
    let (ds, _) = load(&GenerateOptions {
        scale: 0.2,
        sites: 2,
        ..Default::default()
    });
    let n = ds.row_count(safetyscope_core::TableKind::Incidents) as f64;
    let o = PatternOptions::default();
    let s = block_on(shift_profile(&ds, &o)).unwrap();
    assert_eq!(f64s(&s, "events").iter().flatten().sum::<f64>(), n);
    // Two 12-hour shifts: 24 hour-of-shift rows plus the unknown-time row.
    assert_eq!(s.num_rows(), 25);
    let t = block_on(trends(&ds, &o)).unwrap();
    // Two generated years: 24 dense months.
    assert_eq!(t.num_rows(), 24);
    assert_eq!(f64s(&t, "events").iter().flatten().sum::<f64>(), n);
    let ev = f64s(&t, "events");
    let r3 = f64s(&t, "rolling_3");
    assert!(r3.is_null(1));
    assert!((r3.value(5) - (ev.value(3) + ev.value(4) + ev.value(5)) / 3.0).abs() < 1e-9);
    let yoy = f64s(&t, "yoy_change");
    assert!((yoy.value(14) - (ev.value(14) - ev.value(2))).abs() < 1e-9);
    let p = block_on(pyramid(&ds, &o)).unwrap();
    let pe = f64s(&p, "events");
    assert_eq!(pe.iter().flatten().sum::<f64>(), n);
}

#[test]
fn an_event_known_only_within_years_is_time_unknown_not_spread() {
    // Three events: one at a known hour, one known within 4 hours, one
    // known only within 17 months (which would be 50,000 quarter-hours).
    let csv = "id,occurred_at,occurred_until,site,category,severity\n\
               a,2025-03-03 10:20,,S1,fall,minor\n\
               b,2025-03-04 08:00,2025-03-04 12:00,S1,fall,minor\n\
               c,2025-01-01 00:00,2026-06-01 00:00,S1,fall,minor\n";
    let files = vec![(
        safetyscope_core::TableKind::Incidents,
        "incidents.csv".to_string(),
        bytes::Bytes::from(csv),
    )];
    let ds = Dataset::from_bytes(Some("Asia/Shanghai"), files, None).unwrap();
    let o = PatternOptions {
        time: TimeBasis::Aoristic,
        ..Default::default()
    };
    let p = block_on(time_profile(&ds, &o)).unwrap();
    let (hr, ev) = (i32s(&p, "hour"), f64s(&p, "events"));
    let mut known = 0.0;
    let mut unknown = 0.0;
    for i in 0..p.num_rows() {
        if hr.is_null(i) {
            unknown += ev.value(i);
        } else {
            known += ev.value(i);
        }
    }
    assert!((known - 2.0).abs() < 1e-12, "{known}");
    assert!((unknown - 1.0).abs() < 1e-12, "{unknown}");
    // The bound is an option with a clear error past a year.
    let e = block_on(time_profile(
        &ds,
        &PatternOptions {
            time: TimeBasis::Aoristic,
            max_aoristic_hours: 1e9,
            ..Default::default()
        },
    ))
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("max_aoristic_hours"), "{e}");
}
