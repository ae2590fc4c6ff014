//! Small statistics helpers used on aggregated results: the normal,
//! binomial and Poisson distributions, exact tests and the
//! Benjamini–Hochberg adjustment.

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

/// Natural logarithm of the gamma function.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// Regularized incomplete beta function I_x(a, b).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2);
    // use the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Regularized lower incomplete gamma function P(a, x).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let ln_front = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // Series.
        let (mut ap, mut sum) = (a, 1.0 / a);
        let mut del = sum;
        for _ in 0..100_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        sum * ln_front.exp()
    } else {
        1.0 - gamma_q_cf(a, x, ln_front)
    }
}

/// Regularized upper incomplete gamma Q(a, x) by its continued fraction.
fn gamma_q_cf(a: f64, x: f64, ln_front: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..100_000 {
        let an = -f64::from(i) * (f64::from(i) - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    ln_front.exp() * h
}

/// Poisson upper tail P(X > k) for mean `mu`.
pub fn poisson_sf(k: f64, mu: f64) -> f64 {
    if k < 0.0 {
        return 1.0;
    }
    if mu <= 0.0 {
        return 0.0;
    }
    gamma_p(k.floor() + 1.0, mu)
}

/// Binomial probability mass P(X = k) for X ~ Bin(n, p).
pub fn binom_pmf(k: u64, n: u64, p: f64) -> f64 {
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    if p >= 1.0 {
        return if k == n { 1.0 } else { 0.0 };
    }
    let (k, n) = (k as f64, n as f64);
    (ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
        + k * p.ln()
        + (n - k) * (-p).ln_1p())
    .exp()
}

/// Binomial lower tail P(X ≤ k).
pub fn binom_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    beta_inc((n - k) as f64, k as f64 + 1.0, 1.0 - p)
}

/// Binomial upper tail P(X > k).
pub fn binom_sf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 0.0;
    }
    beta_inc(k as f64 + 1.0, (n - k) as f64, p)
}

/// Two-sided exact binomial test of `k` successes in `n` trials against
/// probability `p`: the probability of outcomes no more likely than the
/// observed one (relative tolerance 1e-7), as `scipy.stats.binomtest`.
pub fn binom_test_two_sided(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let d = binom_pmf(k, n, p);
    let rerr = 1.0 + 1e-7;
    let mean = p * n as f64;
    if (k as f64 - mean).abs() < 1e-12 {
        return 1.0;
    }
    // The pmf is unimodal: find on the far side of the mode the first
    // outcome whose probability does not exceed d·(1 + 1e-7).
    let pval = if (k as f64) < mean {
        // Far side: the upper tail from the smallest j ≥ ceil(mean) with pmf ≤ d.
        let (mut lo, mut hi) = (mean.ceil() as u64, n);
        if binom_pmf(hi, n, p) > d * rerr {
            binom_cdf(k, n, p)
        } else {
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if binom_pmf(mid, n, p) <= d * rerr {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            binom_cdf(k, n, p) + if lo == 0 { 1.0 } else { binom_sf(lo - 1, n, p) }
        }
    } else {
        // Far side: the lower tail up to the largest j ≤ floor(mean) with pmf ≤ d.
        let (mut lo, mut hi) = (0u64, mean.floor() as u64);
        let upper = if k == 0 { 1.0 } else { binom_sf(k - 1, n, p) };
        if binom_pmf(0, n, p) > d * rerr {
            upper
        } else {
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if binom_pmf(mid, n, p) <= d * rerr {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            binom_cdf(lo, n, p) + upper
        }
    };
    pval.min(1.0)
}

/// Exact (Clopper–Pearson) confidence interval of a binomial proportion at
/// confidence `1 − alpha`.
pub fn clopper_pearson(k: u64, n: u64, alpha: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    // Bisection on the tails: the bounds are where P(X ≥ k) resp. P(X ≤ k)
    // equal alpha / 2.
    let solve = |f: &dyn Fn(f64) -> f64| {
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if f(mid) > 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
            if hi - lo < 1e-15 {
                break;
            }
        }
        0.5 * (lo + hi)
    };
    let a2 = alpha / 2.0;
    let lower = if k == 0 {
        0.0
    } else {
        // P(X ≥ k | p) increases with p.
        solve(&|p| binom_sf(k - 1, n, p) - a2)
    };
    let upper = if k == n {
        1.0
    } else {
        // P(X ≤ k | p) decreases with p.
        solve(&|p| a2 - binom_cdf(k, n, p))
    };
    (lower, upper)
}

/// The exact conditional test of two Poisson rates (`k1` events in
/// exposure `e1` against `k2` in `e2`), two-sided, ratio = 1: the binomial
/// test of `k1` of `k1 + k2` against `e1 / (e1 + e2)`, as statsmodels
/// `test_poisson_2indep(method="exact-cond")`. Returns the rate ratio, its
/// exact confidence interval at `1 − alpha` and the p-value.
pub fn poisson_rate_test(k1: u64, e1: f64, k2: u64, e2: f64, alpha: f64) -> RateTest {
    let n = k1 + k2;
    let share = e1 / (e1 + e2);
    let ratio = if k2 == 0 || e1 <= 0.0 {
        None
    } else {
        Some((k1 as f64 / e1) / (k2 as f64 / e2))
    };
    let p = binom_test_two_sided(k1, n, share);
    let (pl, pu) = clopper_pearson(k1, n, alpha);
    let scale = e2 / e1;
    let to_ratio = |q: f64| {
        if q >= 1.0 {
            None
        } else {
            Some(q / (1.0 - q) * scale)
        }
    };
    RateTest {
        ratio,
        ci_low: to_ratio(pl),
        ci_high: to_ratio(pu),
        p,
        expected: n as f64 * share,
    }
}

/// Result of [`poisson_rate_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateTest {
    /// Rate ratio (first / second); `None` when the second rate is zero.
    pub ratio: Option<f64>,
    /// Lower confidence bound of the ratio.
    pub ci_low: Option<f64>,
    /// Upper confidence bound of the ratio (`None` = unbounded).
    pub ci_high: Option<f64>,
    /// Two-sided p-value.
    pub p: f64,
    /// Expected events of the first group under equal rates.
    pub expected: f64,
}

/// Linear-interpolation quantile of sorted values (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(quantile_at(sorted[lo], sorted[hi], pos - lo as f64))
}

/// The value a fraction `frac` of the way from `lo` to `hi` (the
/// interpolation step of [`quantile`]).
pub(crate) fn quantile_at(lo: f64, hi: f64, frac: f64) -> f64 {
    lo + (hi - lo) * frac
}

/// A sum of `f64` values that is exact until read: Shewchuk's
/// non-overlapping partials (the algorithm of Python's `math.fsum`). Its
/// value is the sum correctly rounded, whatever the order of the additions
/// and however they were split into sums that were then merged, so a sum
/// taken over a plan's partitions has the same bits on every run.
/// Non-finite values (and a sum past the largest `f64`) are added plainly
/// and make the value infinite or NaN.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExactSum {
    partials: Vec<f64>,
    special: f64,
}

impl ExactSum {
    /// Adds `x`.
    pub(crate) fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut x = x;
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            if !hi.is_finite() {
                // Past the largest double: the value is infinite.
                self.special += hi;
                self.partials.clear();
                return;
            }
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// Adds every value another sum holds.
    pub(crate) fn merge(&mut self, other: &ExactSum) {
        for &p in &other.partials {
            self.add(p);
        }
        self.special += other.special;
    }

    /// The sum, correctly rounded.
    pub(crate) fn value(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        let p = &self.partials;
        let Some(&top) = p.last() else { return 0.0 };
        let (mut hi, mut lo) = (top, 0.0);
        let mut n = p.len() - 1;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        // Round half to even across the remaining partials: when the
        // next one has the sign of the rounding error, the halfway case
        // rounds the other way.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }

    /// The partials, to store the sum (see [`ExactSum::from_parts`]).
    pub(crate) fn parts(&self) -> (&[f64], f64) {
        (&self.partials, self.special)
    }

    /// A sum from stored partials: added one by one, so any values give a
    /// valid sum.
    pub(crate) fn from_parts(partials: &[f64], special: f64) -> ExactSum {
        let mut s = ExactSum::default();
        for &p in partials {
            s.add(p);
        }
        s.special += special;
        s
    }

    /// Heap bytes held.
    pub(crate) fn heap_size(&self) -> usize {
        self.partials.capacity() * std::mem::size_of::<f64>()
    }
}

/// `v` rounded to `decimals` places, halves away from zero, as text: the
/// one rounding rule of every label a chart or a page shows (the dashboard
/// rounds the same way, [`DISPLAY_DECIMALS`] gives the places).
///
/// ```
/// use safetyscope_core::util::stats::round_half_away;
/// assert_eq!(round_half_away(20.5, 0), "21");
/// assert_eq!(round_half_away(-2.5, 0), "-3");
/// assert_eq!(round_half_away(0.125, 2), "0.13");
/// ```
pub fn round_half_away(v: f64, decimals: u32) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let f = 10f64.powi(decimals as i32);
    // The shortest decimal of v·f, so that 0.125·100 rounds as 12.5.
    let scaled: f64 = format!("{}", v * f).parse().unwrap_or(v * f);
    let r = scaled.round() / f;
    let r = if r == 0.0 { 0.0 } else { r };
    format!("{r:.*}", decimals as usize)
}

/// Decimals every surface shows a quantity with (values are rounded half
/// away from zero, as [`round_half_away`] does).
pub const DISPLAY_DECIMALS: &[(&str, u32)] = &[
    ("score", 0),
    ("rate", 2),
    ("ratio", 2),
    ("percent", 1),
    ("z", 2),
    ("count", 0),
    ("days", 0),
    ("hours", 1),
];

/// `v` as text with the decimals of `kind` (a key of [`DISPLAY_DECIMALS`];
/// 2 for another) and thousands grouped with commas.
///
/// ```
/// use safetyscope_core::util::stats::display;
/// assert_eq!(display(12345.5, "score"), "12,346");
/// assert_eq!(display(-0.125, "rate"), "-0.13");
/// ```
pub fn display(v: f64, kind: &str) -> String {
    let d = DISPLAY_DECIMALS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(2, |(_, d)| *d);
    let text = round_half_away(v, d);
    let (sign, body) = match text.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", text.as_str()),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums of values on a grid of 2⁻³⁰ against the exact integer sum, in
    /// shuffled orders and split into merged parts.
    #[test]
    fn exact_sums_are_correctly_rounded_in_any_order() {
        let mut rng = crate::util::rng::Rng::new(11, "exact-sum");
        for round in 0..200 {
            let n = 1 + rng.below(300);
            let scale = [1.0, 1e6, 1e12, 1e-6][round % 4];
            let ticks: Vec<i128> = (0..n)
                .map(|_| {
                    let v = (rng.f64() - 0.3) * scale * (1u64 << 30) as f64;
                    v as i128
                })
                .collect();
            let unit = 1.0 / (1u64 << 30) as f64;
            let values: Vec<f64> = ticks.iter().map(|&t| t as f64 * unit).collect();
            let exact: i128 = ticks.iter().sum();
            // The exact sum rounded once: an i128 of ticks converts to the
            // nearest double (ties to even), then the power of two scales it.
            let want = exact as f64 * unit;
            let mut a = ExactSum::default();
            values.iter().for_each(|&v| a.add(v));
            assert_eq!(a.value().to_bits(), want.to_bits(), "round {round}");
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let cut = rng.below(n + 1);
            let (mut b, mut c) = (ExactSum::default(), ExactSum::default());
            for (k, &i) in order.iter().enumerate() {
                if k < cut {
                    b.add(values[i])
                } else {
                    c.add(values[i])
                }
            }
            c.merge(&b);
            assert_eq!(c.value().to_bits(), want.to_bits(), "round {round}");
            let (p, sp) = c.parts();
            assert_eq!(
                ExactSum::from_parts(p, sp).value().to_bits(),
                want.to_bits()
            );
        }
    }

    #[test]
    fn exact_sums_cancel_and_keep_non_finite_values() {
        let mut s = ExactSum::default();
        for v in [1e16, 1.0, -1e16, 1e-300] {
            s.add(v);
        }
        assert_eq!(s.value(), 1.0 + 1e-300);
        assert_eq!(ExactSum::default().value(), 0.0);
        let mut big = ExactSum::default();
        big.add(f64::MAX);
        big.add(f64::MAX);
        assert_eq!(big.value(), f64::INFINITY);
        let mut nan = ExactSum::default();
        nan.add(f64::INFINITY);
        nan.add(f64::NEG_INFINITY);
        nan.add(2.0);
        assert!(nan.value().is_nan());
    }

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

    #[test]
    fn binomial_and_poisson_match_scipy() {
        // scipy.stats.binom.cdf(3, 20, 0.3) = 0.10708680450373087
        assert!((binom_cdf(3, 20, 0.3) - 0.107_086_804_503_730_87).abs() < 1e-13);
        // scipy.stats.binom.sf(10, 20, 0.3) = 0.017144816431258418
        assert!((binom_sf(10, 20, 0.3) - 0.017_144_816_431_258_418).abs() < 1e-13);
        // scipy.stats.binomtest(3, 20, 0.3).pvalue = 0.22041826738070913 (low side)
        assert!((binom_test_two_sided(3, 20, 0.3) - 0.220_418_267_380_709_13).abs() < 1e-12);
        // scipy.stats.binomtest(11, 20, 0.3).pvalue = 0.024782076205458414 (high side)
        assert!((binom_test_two_sided(11, 20, 0.3) - 0.024_782_076_205_458_414).abs() < 1e-12);
        // scipy.stats.binomtest(7, 40, 0.1).proportion_ci() = (0.07338272935208498, 0.32779013336159446)
        let (l, u) = clopper_pearson(7, 40, 0.05);
        assert!(
            (l - 0.073_382_729_352_084_98).abs() < 1e-10
                && (u - 0.327_790_133_361_594_46).abs() < 1e-10,
            "{l} {u}"
        );
        // 1 - scipy.stats.poisson.cdf(13, 10.1438161) = 0.1462455794016162
        assert!((poisson_sf(13.0, 10.143_816_1) - 0.146_245_579_401_616_2).abs() < 1e-12);
    }
}
