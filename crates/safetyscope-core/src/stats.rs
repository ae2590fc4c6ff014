//! Small statistics helpers used on aggregated results: the normal
//! distribution and the Benjamini–Hochberg adjustment.

/// Upper tail of the standard normal distribution, P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Two-sided p-value of a z-score, P(|Z| ≥ |z|).
pub fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// Benjamini–Hochberg adjusted p-values (q-values). `None` entries are not
/// tested and stay `None`; the number of tests is the number of `Some`.
pub fn benjamini_hochberg(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut idx: Vec<usize> = (0..p.len())
        .filter(|&i| p[i].is_some_and(f64::is_finite))
        .collect();
    let m = idx.len();
    let mut q = vec![None; p.len()];
    if m == 0 {
        return q;
    }
    idx.sort_by(|&a, &b| p[a].unwrap_or(1.0).total_cmp(&p[b].unwrap_or(1.0)));
    let mut running = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let v = p[i].unwrap_or(1.0) * m as f64 / (rank + 1) as f64;
        running = running.min(v).min(1.0);
        q[i] = Some(running);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_values() {
        // scipy.stats.norm.sf(1.96) = 0.024997895148220435
        assert!((normal_sf(1.96) - 0.024_997_895_148_220_435).abs() < 1e-15);
        assert!((two_sided_p(-2.575_829_303_548_900_4) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn bh_matches_statsmodels() {
        // statsmodels.stats.multitest.multipletests([0.01, 0.04, 0.03, 0.2], method="fdr_bh")[1]
        let q = benjamini_hochberg(&[Some(0.01), Some(0.04), None, Some(0.03), Some(0.2)]);
        let want = [
            0.04,
            0.053_333_333_333_333_33,
            0.053_333_333_333_333_33,
            0.2,
        ];
        let got: Vec<f64> = q.iter().flatten().copied().collect();
        for (g, w) in got.iter().zip([want[0], want[1], want[2], want[3]]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(q[2], None);
    }
}
