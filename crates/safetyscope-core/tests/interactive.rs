//! An interactive session (the dashboard's: facts and recent results kept)
//! gives the same results as a batch one: one site's alerts taken from
//! every site's list equal that site's list computed alone, and targets
//! asked twice are the same.

mod common;

use safetyscope_core::alerts::{AlertOptions, alerts};
use safetyscope_core::generate::GenerateOptions;
use safetyscope_core::kpis::{TargetOptions, track_targets};

#[test]
fn kept_results_equal_computed_ones() {
    let o = GenerateOptions::default();
    let (batch, _) = common::load(&o);
    let (kept, _) = common::load(&o);
    let kept = kept.keep_facts();
    for as_of in ["2025-07-01", "2026-01-01"] {
        let all = AlertOptions {
            as_of: Some(as_of.into()),
            ..Default::default()
        };
        let every = common::block_on(alerts(&kept, &all)).unwrap();
        assert!(every.num_rows() > 0);
        assert_eq!(every, common::block_on(alerts(&batch, &all)).unwrap());
        let sites = common::text(&every, "site");
        let mut seen: Vec<&str> = sites.iter().flatten().collect();
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 1);
        for s in seen {
            let one = AlertOptions {
                site: Some(s.into()),
                ..all.clone()
            };
            let from_kept = common::block_on(alerts(&kept, &one)).unwrap();
            let alone = common::block_on(alerts(&batch, &one)).unwrap();
            assert!(alone.num_rows() > 0, "{s}");
            assert_eq!(from_kept, alone, "{s} as of {as_of}");
        }
        let t = TargetOptions {
            as_of: Some(as_of.into()),
            ..Default::default()
        };
        let first = common::block_on(track_targets(&kept, &t)).unwrap();
        let again = common::block_on(track_targets(&kept, &t)).unwrap();
        assert_eq!(first, again);
        assert_eq!(first, common::block_on(track_targets(&batch, &t)).unwrap());
    }
}
