//! Emerging hot spots find the planted new and diminishing blocks.

mod common;

use arrow::array::Array;

use safetyscope_core::emerging::{EmergingOptions, emerging_batch};
use safetyscope_core::generate::GenerateOptions;

#[test]
fn planted_new_and_fading_blocks_are_categorised() {
    let (ds, truth) = common::load(&GenerateOptions::default());
    let e = EmergingOptions {
        from: Some("2025-01-01".into()),
        to: Some("2026-01-01".into()),
        ..Default::default()
    };
    let b = common::block_on(emerging_batch(&ds, &e)).unwrap();
    let (site, cell, cat) = (
        common::text(&b, "site"),
        common::text(&b, "cell"),
        common::text(&b, "category"),
    );
    let category = |s: &str, c: &str| {
        (0..b.num_rows())
            .find(|&i| site.value(i) == s && cell.value(i) == c)
            .map(|i| cat.value(i).to_string())
            .unwrap()
    };
    assert_eq!(truth.emerging.len(), 8);
    // Each planted block is 4 cells; at least 3 of them carry its category
    // (edge cells of a block see fewer of its neighbours).
    let hits = |planted: &str, ok: &dyn Fn(&str) -> bool| {
        truth
            .emerging
            .iter()
            .filter(|(_, _, p)| p == planted)
            .filter(|(s, c, _)| ok(&category(s, c)))
            .count()
    };
    assert!(hits("new", &|c| c == "new") >= 3);
    assert!(hits("diminishing", &|c| c == "diminishing" || c == "historical") >= 3);
    // Outside the planted blocks a "new" hot spot is a false alarm: rare.
    let planted: Vec<(&str, &str)> = truth
        .emerging
        .iter()
        .map(|(s, c, _)| (s.as_str(), c.as_str()))
        .collect();
    let false_new = (0..b.num_rows())
        .filter(|&i| cat.value(i) == "new" && !planted.contains(&(site.value(i), cell.value(i))))
        .count();
    assert!(
        false_new <= 4,
        "{false_new} false new hot spots of {}",
        b.num_rows() - planted.len()
    );
    assert_eq!(common::text(&b, "history").len(), b.num_rows());
}
