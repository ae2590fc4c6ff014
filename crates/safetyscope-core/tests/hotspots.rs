//! Gi* finds the hot cells planted by the sample generator, and finds no
//! cluster where none was planted.

mod common;

use arrow::array::{Array, Float64Array};
use safetyscope_core::Dataset;
use safetyscope_core::generate::GenerateOptions;
use safetyscope_core::hotspots::{HotspotOptions, hotspots_batch};

use common::load;

fn hot_cells(ds: &Dataset, o: &HotspotOptions) -> Vec<(String, String)> {
    let b = common::block_on(hotspots_batch(ds, o)).unwrap();
    let (site, cell, class) = (
        common::text(&b, "site"),
        common::text(&b, "cell"),
        common::text(&b, "class"),
    );
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
