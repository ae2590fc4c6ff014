//! Gi* finds the hot cells planted by the sample generator, and finds no
//! cluster where none was planted.

use arrow::array::{Array, Float64Array, StringArray};
use safetyscope_core::Dataset;
use safetyscope_core::generate::{GenerateOptions, GroundTruth, generate_parquet_bytes};
use safetyscope_core::hotspots::{HotspotOptions, hotspots_batch};

fn load(o: &GenerateOptions) -> (Dataset, GroundTruth) {
    let (files, truth) = generate_parquet_bytes(o).unwrap();
    let files = files
        .into_iter()
        .map(|(k, v)| (k, format!("{k}.parquet"), bytes::Bytes::from(v)))
        .collect();
    (
        Dataset::from_bytes(Some(&o.timezone), files, None).unwrap(),
        truth,
    )
}

fn hot_cells(ds: &Dataset, o: &HotspotOptions) -> Vec<(String, String)> {
    let b = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(hotspots_batch(ds, o))
        .unwrap();
    let site = b
        .column_by_name("site")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let cell = b
        .column_by_name("cell")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let class = b
        .column_by_name("class")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let z = b
        .column_by_name("z")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    (0..b.num_rows())
        .filter(|&i| {
            matches!(class.value(i), "hot_99" | "hot_95") && !z.is_null(i) && z.value(i) > 0.0
        })
        .map(|i| (site.value(i).to_string(), cell.value(i).to_string()))
        .collect()
}

#[test]
fn planted_hot_cells_are_found_at_95_percent() {
    let (ds, truth) = load(&GenerateOptions::default());
    // The year covered by the generator, FDR-adjusted, queen contiguity.
    let o = HotspotOptions {
        from: Some("2025-01-01".into()),
        to: Some("2026-01-01".into()),
        ..Default::default()
    };
    let found = hot_cells(&ds, &o);
    let hits = truth.hot_cells.iter().filter(|c| found.contains(c)).count();
    let recall = hits as f64 / truth.hot_cells.len() as f64;
    assert_eq!(truth.hot_cells.len(), 48);
    assert!(
        recall >= 0.9,
        "recall {recall} ({hits} of {})",
        truth.hot_cells.len()
    );
}

#[test]
fn no_cluster_no_hot_spots_beyond_the_fdr_rate() {
    let g = GenerateOptions {
        plant_hot_cells: false,
        seed: 5,
        ..Default::default()
    };
    let (ds, truth) = load(&g);
    assert!(truth.hot_cells.is_empty());
    for weights in [
        safetyscope_core::hotspots::WeightsKind::Queen,
        safetyscope_core::hotspots::WeightsKind::Rook,
    ] {
        let o = HotspotOptions {
            weights,
            ..Default::default()
        };
        let found = hot_cells(&ds, &o);
        // 432 cells tested at a false discovery rate of 5 %: under the null
        // Benjamini–Hochberg keeps the chance of any discovery at 5 %, so a
        // handful is already beyond the rate.
        assert!(found.len() <= 2, "{weights:?}: {found:?}");
    }
}
