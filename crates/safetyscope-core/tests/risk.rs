//! The risk map of a store (its files scanned in parallel partitions, the
//! string keys read dictionary-encoded and counted by hand) equals, bit for
//! bit, the risk map of the same data held in memory and of the same store
//! opened in a session of the caller's (both counted by grouped aggregates
//! in the plan, as on a cluster), under every option that changes how rows
//! are counted.

use arrow::array::{Array, Float64Array, RecordBatch};
use safetyscope_core::generate::{GenerateOptions, generate_to_dir};
use safetyscope_core::risk::{RiskOptions, RollUp, risk_batch};
use safetyscope_core::store::{IngestOptions, ingest};
use safetyscope_core::{Dataset, OnTableError};

fn sum(b: &RecordBatch, name: &str) -> f64 {
    let a = b
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .clone();
    (0..a.len())
        .filter(|i| a.is_valid(*i))
        .map(|i| a.value(i))
        .sum()
}

#[test]
fn risk_of_a_store_equals_risk_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let generated = GenerateOptions {
        scale: 0.2,
        sites: 3,
        seed: 23,
        ..Default::default()
    };
    generate_to_dir(&data, &generated).unwrap();
    // Small files and row groups: many partitions, dictionaries and
    // batches per file.
    let store = dir.path().join("store");
    let layout = IngestOptions {
        rows_per_file: 400,
        row_group_rows: 150,
        ..Default::default()
    };
    let m = ingest(&data, None, &store, &layout, &|_| {}).unwrap();
    assert!(m.tables["incidents"].files.len() > 3);
    let memory = Dataset::open(&data, None, OnTableError::Fail).unwrap();
    let stored = Dataset::open(&store, None, OnTableError::Fail).unwrap();
    let session = safetyscope_core::deps::datafusion::prelude::SessionContext::new();
    let planned = safetyscope_core::store::open_in(&store, None, session).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let window = |from: &str, to: &str| RiskOptions {
        from: Some(from.into()),
        to: Some(to.into()),
        ..Default::default()
    };
    let mut no_cap = window("2025-07-01", "2026-01-01");
    no_cap.weights.overdue_growth_per_day = 0.0;
    no_cap.half_life_days = Some(3.0);
    let mut low_cap = window("2025-10-01", "2026-01-01");
    low_cap.weights.overdue_cap = 1.5;
    let cases = [
        ("three months", window("2025-10-01", "2026-01-01")),
        (
            "decay",
            RiskOptions {
                half_life_days: Some(30.0),
                ..window("2025-10-01", "2026-01-01")
            },
        ),
        (
            "one site by zone, mid-day bounds",
            RiskOptions {
                site: Some("U02".into()),
                by: RollUp::Zone,
                ..window("2025-08-15 12:30", "2025-11-02 06:00")
            },
        ),
        (
            "a year without exposure",
            RiskOptions {
                per_exposure: false,
                ..window("2025-01-01", "2026-01-01")
            },
        ),
        ("no cap on overdue days", no_cap),
        ("low cap", low_cap),
        ("default window", RiskOptions::default()),
    ];
    for (name, o) in cases {
        let (a, b, c) = rt.block_on(async {
            (
                risk_batch(&memory, &o).await.unwrap(),
                risk_batch(&stored, &o).await.unwrap(),
                risk_batch(&planned, &o).await.unwrap(),
            )
        });
        assert!(a.num_rows() > 0, "{name}");
        for c in [
            "c_injuries",
            "c_near_misses",
            "c_open_hazards",
            "c_overdue_hazards",
            "c_violations",
        ] {
            assert!(sum(&a, c) > 0.0, "{name}: {c} is all zero");
        }
        assert_eq!(a, b, "{name}");
        assert_eq!(a, c, "{name}");
    }
}
