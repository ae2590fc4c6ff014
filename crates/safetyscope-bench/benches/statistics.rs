//! Criterion benchmarks of the hand-written statistics at the sizes the
//! analyses call them with: the exact tests of a peak analysis (168 cells
//! per group), Benjamini–Hochberg over every tested cell, Gi* over a site
//! grid with and without permutations, the Mann-Kendall trend of a cell's
//! monthly z-scores, and a kernel density raster.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use safetyscope_core::density::{Kernel, kde_at};
use safetyscope_core::emerging::mann_kendall;
use safetyscope_core::hotspots::{Transform, gi_star};
use safetyscope_core::stats;

/// A deterministic pseudo-random sequence in [0, 1).
fn uniform(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// Rook neighbours of a `rows × cols` grid.
fn rook(rows: usize, cols: usize) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            if r > 0 {
                out[i].push(i - cols);
            }
            if r + 1 < rows {
                out[i].push(i + cols);
            }
            if c > 0 {
                out[i].push(i - 1);
            }
            if c + 1 < cols {
                out[i].push(i + 1);
            }
        }
    }
    out
}

fn tests(c: &mut Criterion) {
    // One group's 168 hour × weekday cells against the rest of its week.
    let counts: Vec<u64> = uniform(168, 1).iter().map(|u| (u * 40.0) as u64).collect();
    let total: u64 = counts.iter().sum();
    c.bench_function("poisson_rate_test × 168 cells", |b| {
        b.iter(|| {
            for &k in &counts {
                black_box(stats::poisson_rate_test(k, 1.0, total - k, 167.0, 0.05));
            }
        })
    });
    c.bench_function("binom_test_two_sided (k = 480, n = 10,000)", |b| {
        b.iter(|| black_box(stats::binom_test_two_sided(black_box(480), 10_000, 0.05)))
    });
    c.bench_function("clopper_pearson (k = 480, n = 10,000)", |b| {
        b.iter(|| black_box(stats::clopper_pearson(black_box(480), 10_000, 0.05)))
    });
    c.bench_function("gamma_p (a = 150, x = 160)", |b| {
        b.iter(|| black_box(stats::gamma_p(black_box(150.0), 160.0)))
    });
    let p: Vec<Option<f64>> = uniform(12 * 168, 2).into_iter().map(Some).collect();
    c.bench_function("benjamini_hochberg × 2,016 p-values", |b| {
        b.iter(|| black_box(stats::benjamini_hochberg(black_box(&p))))
    });
}

fn spatial(c: &mut Criterion) {
    let (rows, cols) = (30, 40);
    let y: Vec<f64> = uniform(rows * cols, 3)
        .iter()
        .map(|u| (u * 10.0).floor())
        .collect();
    let nb = rook(rows, cols);
    c.bench_function("gi_star 30 × 40 grid, analytic", |b| {
        b.iter(|| black_box(gi_star(black_box(&y), &nb, Transform::Binary, 0, 7)))
    });
    c.bench_function("gi_star 30 × 40 grid, 99 permutations", |b| {
        b.iter(|| black_box(gi_star(black_box(&y), &nb, Transform::Binary, 99, 7)))
    });
    let z = uniform(24, 4);
    c.bench_function("mann_kendall, 24 months", |b| {
        b.iter(|| black_box(mann_kendall(black_box(&z))))
    });
    let pts: Vec<(f64, f64, f64)> = uniform(2_000, 5)
        .chunks(2)
        .map(|p| (p[0] * 120.0, p[1] * 90.0, 1.0))
        .collect();
    c.bench_function(
        "kde_at, 1,000 points × 120 × 90 raster (gaussian, h = 6)",
        |b| {
            b.iter(|| {
                let mut s = 0.0;
                for gy in 0..90 {
                    for gx in 0..120 {
                        s += kde_at(
                            &pts,
                            1_000.0,
                            6.0,
                            Kernel::Gaussian,
                            gx as f64 + 0.5,
                            gy as f64 + 0.5,
                        );
                    }
                }
                black_box(s)
            })
        },
    );
}

criterion_group!(benches, tests, spatial);
criterion_main!(benches);
