//! A Poisson generalised linear model with a log link and an offset,
//! fitted by iteratively reweighted least squares (the method statsmodels'
//! `GLM(..., family=Poisson(), offset=...).fit()` uses), with the standard
//! errors of the inverse Fisher information.
//!
//! The designs here are small (a few thousand rows, a dozen terms), so the
//! normal equations are solved by a Cholesky factorisation.

use crate::util::error::{Error, Result};

/// A fitted Poisson model.
#[derive(Debug, Clone)]
pub(crate) struct Fit {
    /// The coefficients, one per column of the design.
    pub beta: Vec<f64>,
    /// Their standard errors.
    pub se: Vec<f64>,
    /// The deviance of the fit.
    pub deviance: f64,
    /// Pearson's chi-square.
    pub pearson: f64,
    /// Rows minus columns.
    pub df_resid: f64,
    /// IRLS iterations taken.
    pub iterations: usize,
}

impl Fit {
    /// The dispersion Pearson's chi-square suggests (1 for a Poisson
    /// model; more when the counts vary more than that).
    pub fn dispersion(&self) -> f64 {
        if self.df_resid > 0.0 {
            self.pearson / self.df_resid
        } else {
            1.0
        }
    }
}

/// The Poisson deviance of counts `y` against means `mu`: the sum of
/// 2 (y ln(y/μ) − (y − μ)), with y ln(y/μ) = 0 for y = 0.
pub(crate) fn poisson_deviance(y: &[f64], mu: &[f64]) -> f64 {
    y.iter()
        .zip(mu)
        .map(|(&y, &m)| {
            let t = if y > 0.0 { y * (y / m).ln() } else { 0.0 };
            2.0 * (t - (y - m))
        })
        .sum()
}

/// Solve `a x = b` for a symmetric positive definite `a` (row-major, p × p)
/// by Cholesky; also return the inverse of `a`. `None` when `a` is not
/// positive definite (a column of the design is a combination of others).
fn cholesky_solve(a: &[f64], b: &[f64], p: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                // Relative to the diagonal: a pivot this small is rank loss.
                if s <= a[i * p + i].abs() * 1e-12 || s <= 0.0 {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let solve = |rhs: &[f64]| {
        let mut z = vec![0.0; p];
        for i in 0..p {
            let mut s = rhs[i];
            for k in 0..i {
                s -= l[i * p + k] * z[k];
            }
            z[i] = s / l[i * p + i];
        }
        let mut x = vec![0.0; p];
        for i in (0..p).rev() {
            let mut s = z[i];
            for k in i + 1..p {
                s -= l[k * p + i] * x[k];
            }
            x[i] = s / l[i * p + i];
        }
        x
    };
    let x = solve(b);
    let mut inv = vec![0.0; p * p];
    let mut e = vec![0.0; p];
    for j in 0..p {
        e.iter_mut().for_each(|v| *v = 0.0);
        e[j] = 1.0;
        let c = solve(&e);
        for i in 0..p {
            inv[i * p + j] = c[i];
        }
    }
    Some((x, inv))
}

/// Fit `log E[y] = offset + X β` by IRLS. `x` is row-major with `p`
/// columns. Converges when the deviance changes by less than 1e-10
/// relative (statsmodels' default tolerance is 1e-8); at most 100
/// iterations.
pub(crate) fn fit_poisson(x: &[f64], p: usize, y: &[f64], offset: &[f64]) -> Result<Fit> {
    fit_poisson_from(x, p, y, offset, None)
}

/// [`fit_poisson`] started from the coefficients `start` (a fit of a
/// nearby problem, such as the same rows with a slightly different offset),
/// or, without them, where statsmodels starts. The converged fit is the same
/// either way (to the deviance tolerance); a good start saves iterations.
pub(crate) fn fit_poisson_from(
    x: &[f64],
    p: usize,
    y: &[f64],
    offset: &[f64],
    start: Option<&[f64]>,
) -> Result<Fit> {
    let n = y.len();
    if p == 0 || x.len() != n * p || offset.len() != n {
        return Err(Error::data(
            "forecast",
            "the design does not match the counts",
        ));
    }
    if n <= p {
        return Err(Error::data(
            "forecast",
            format!("{n} cell-periods are too few to fit {p} terms"),
        ));
    }
    let (mut mu, mut eta): (Vec<f64>, Vec<f64>) = match start {
        Some(b) if b.len() == p && b.iter().all(|v| v.is_finite()) => (0..n)
            .map(|r| {
                let row = &x[r * p..(r + 1) * p];
                let e = offset[r] + row.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
                (e.clamp(-700.0, 700.0).exp(), e)
            })
            .unzip(),
        // Start where statsmodels does: μ = (y + mean y) / 2.
        _ => {
            let mean = y.iter().sum::<f64>() / n as f64;
            let mu: Vec<f64> = y.iter().map(|&v| (v + mean) / 2.0).collect();
            let eta = mu.iter().map(|m| m.ln()).collect();
            (mu, eta)
        }
    };
    let collinear = || {
        Error::data(
            "forecast",
            "the terms of the model are collinear (a term is constant or a combination of others); leave one out",
        )
    };
    let mut beta = vec![0.0; p];
    let mut dev = poisson_deviance(y, &mu);
    let mut iterations = 0;
    for it in 1..=100 {
        iterations = it;
        let (xtwx, xtwz) = normal_equations(x, p, y, offset, &mu, &eta);
        let (b, _) = cholesky_solve(&xtwx, &xtwz, p).ok_or_else(collinear)?;
        beta = b;
        for r in 0..n {
            let row = &x[r * p..(r + 1) * p];
            eta[r] = offset[r] + row.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>();
            // Guard the exponential against absurd linear predictors.
            mu[r] = eta[r].clamp(-700.0, 700.0).exp();
        }
        let new = poisson_deviance(y, &mu);
        let done = (dev - new).abs() <= 1e-10 * (new.abs() + 1e-10);
        dev = new;
        if done {
            break;
        }
    }
    if beta.iter().any(|b| !b.is_finite()) {
        return Err(Error::data("forecast", "the model did not converge"));
    }
    // The covariance is the inverse Fisher information at the estimate.
    let (xtwx, xtwz) = normal_equations(x, p, y, offset, &mu, &eta);
    let (_, inv) = cholesky_solve(&xtwx, &xtwz, p).ok_or_else(collinear)?;
    let pearson = y
        .iter()
        .zip(&mu)
        .map(|(&y, &m)| (y - m) * (y - m) / m)
        .sum();
    let se = (0..p).map(|i| inv[i * p + i].max(0.0).sqrt()).collect();
    Ok(Fit {
        beta,
        se,
        deviance: dev,
        pearson,
        df_resid: (n - p) as f64,
        iterations,
    })
}

/// The IRLS normal equations at the means `mu` (linear predictors `eta`):
/// X'WX and X'Wz with weights w = μ and working response
/// z = η − offset + (y − μ)/μ.
fn normal_equations(
    x: &[f64],
    p: usize,
    y: &[f64],
    offset: &[f64],
    mu: &[f64],
    eta: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut xtwx = vec![0.0; p * p];
    let mut xtwz = vec![0.0; p];
    for r in 0..y.len() {
        let w = mu[r];
        let z = eta[r] - offset[r] + (y[r] - mu[r]) / mu[r];
        let row = &x[r * p..(r + 1) * p];
        for i in 0..p {
            let wi = w * row[i];
            xtwz[i] += wi * z;
            for j in 0..=i {
                xtwx[i * p + j] += wi * row[j];
            }
        }
    }
    for i in 0..p {
        for j in 0..i {
            xtwx[j * p + i] = xtwx[i * p + j];
        }
    }
    (xtwx, xtwz)
}

/// The `q`-quantile of a count with mean `mu` and dispersion `phi`: Poisson
/// for φ ≤ 1, else negative binomial with variance φ μ.
pub(crate) fn count_quantile(mu: f64, phi: f64, q: f64) -> f64 {
    use crate::util::stats::{beta_inc, gamma_p};
    if mu.is_nan() || mu <= 0.0 {
        return 0.0;
    }
    let cdf = |k: f64| -> f64 {
        if phi <= 1.0 + 1e-9 {
            // P(X ≤ k) = Q(k + 1, μ).
            1.0 - gamma_p(k + 1.0, mu)
        } else {
            let size = mu / (phi - 1.0);
            let pr = size / (size + mu);
            beta_inc(size, k + 1.0, pr)
        }
    };
    if !mu.is_finite() {
        return mu;
    }
    let sd = (mu * phi.max(1.0)).sqrt();
    if mu > 1e9 {
        // Beyond a billion the incomplete gamma and beta functions lose
        // their digits to cancellation, while the normal approximation is
        // within a count or two (the skewness term, (z² − 1)/6 · √φ).
        let z = normal_quantile(q);
        return (mu + z * sd).round().max(0.0);
    }
    // The smallest k with P(X ≤ k) ≥ q, by bisection between bounds many
    // standard deviations either side of the mean: a few dozen evaluations
    // whatever the mean.
    let mut lo = (mu - 40.0 * sd - 10.0).floor().max(0.0);
    if cdf(lo) >= q {
        if lo == 0.0 || cdf(0.0) >= q {
            return 0.0;
        }
        lo = 0.0;
    }
    let mut hi = (mu + 60.0 * sd + 100.0).ceil();
    if cdf(hi) < q {
        return hi;
    }
    // cdf(lo) < q ≤ cdf(hi).
    for _ in 0..2_000 {
        let mid = ((lo + hi) / 2.0).floor();
        if mid <= lo || mid >= hi {
            break;
        }
        if cdf(mid) >= q {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The standard normal quantile, by bisection on the survival function.
fn normal_quantile(q: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if 1.0 - crate::util::stats::normal_sf(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy: poisson.ppf([0.05, 0.95], 3.7) = [1, 7]; nbinom with
    /// n = 3.7 / (2.5 − 1), p = n / (n + 3.7): ppf([0.05, 0.95]) = [0, 10];
    /// poisson.ppf(0.95, 1e6) = 1001645.
    #[test]
    fn quantiles_match_scipy_and_absurd_means_return() {
        assert_eq!(count_quantile(3.7, 1.0, 0.05), 1.0);
        assert_eq!(count_quantile(3.7, 1.0, 0.95), 7.0);
        assert_eq!(count_quantile(3.7, 2.5, 0.05), 0.0);
        assert_eq!(count_quantile(3.7, 2.5, 0.95), 10.0);
        assert_eq!(count_quantile(1e6, 1.0, 0.95), 1_001_645.0);
        // Either side of the switch to the normal approximation.
        let (below, above) = (
            count_quantile(9.99e8, 1.0, 0.95),
            count_quantile(1.001e9, 1.0, 0.95),
        );
        assert!(((below - 9.99e8) / 9.99e8f64.sqrt() - 1.6449).abs() < 1e-3);
        assert!(((above - 1.001e9) / 1.001e9f64.sqrt() - 1.6449).abs() < 1e-3);
        for mu in [1e12, 1e18, 1e300] {
            for phi in [1.0, 3.0] {
                let (a, b) = (count_quantile(mu, phi, 0.05), count_quantile(mu, phi, 0.95));
                assert!(
                    a.is_finite() && b.is_finite() && a <= mu && b >= mu * (1.0 - 1e-9),
                    "{mu} {phi} {a} {b}"
                );
            }
        }
        assert!(count_quantile(f64::MAX, 3.0, 0.5) >= 0.0);
        assert_eq!(count_quantile(f64::INFINITY, 1.0, 0.5), f64::INFINITY);
        assert_eq!(count_quantile(0.0, 1.0, 0.5), 0.0);
    }

    /// statsmodels 0.15: GLM(y, X, family=Poisson(), offset=off).fit(tol=1e-12)
    /// on y = [2, 3, 6, 7, 8, 9, 10, 12, 15], x = 1..9, off = ln([1, 1, 2,
    /// 2, 2, 3, 3, 3, 4]): params [0.97319025, 0.04231932], bse
    /// [0.33650536, 0.05054329].
    #[test]
    fn a_small_fit_matches_statsmodels() {
        let y = [2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 15.0];
        let hours = [1.0f64, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0];
        let off: Vec<f64> = hours.iter().map(|h| h.ln()).collect();
        let x: Vec<f64> = (1..=9).flat_map(|i| [1.0, i as f64]).collect();
        let f = fit_poisson(&x, 2, &y, &off).unwrap();
        let close = |a: f64, b: f64| ((a - b) / b).abs() < 1e-6;
        assert!(
            close(f.beta[0], 0.9731902484182341) && close(f.beta[1], 0.04231932496422451),
            "{:?}",
            f.beta
        );
        assert!(
            close(f.se[0], 0.3365053601205596) && close(f.se[1], 0.05054328502522513),
            "{:?}",
            f.se
        );
        // The score equations hold at the fit: X'(y − μ) = 0.
        let mu: Vec<f64> = (0..9)
            .map(|r| (off[r] + f.beta[0] + f.beta[1] * (r + 1) as f64).exp())
            .collect();
        let s0: f64 = (0..9).map(|r| y[r] - mu[r]).sum();
        let s1: f64 = (0..9).map(|r| (y[r] - mu[r]) * (r + 1) as f64).sum();
        assert!(s0.abs() < 1e-8 && s1.abs() < 1e-8, "{s0} {s1}");
        assert!(f.iterations < 30);
    }

    #[test]
    fn collinear_terms_are_an_error() {
        let x = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0];
        let e = fit_poisson(&x, 2, &[1.0, 2.0, 3.0, 4.0], &[0.0; 4]).unwrap_err();
        assert!(e.to_string().contains("collinear"), "{e}");
    }

    #[test]
    fn quantiles_of_counts() {
        // scipy.stats.poisson.ppf(0.95, 3.2) = 6; nbinom.ppf(0.95, n=1.6,
        // p=0.3333) (mean 3.2, variance 9.6) = 9.
        assert_eq!(count_quantile(3.2, 1.0, 0.95), 6.0);
        assert_eq!(count_quantile(3.2, 3.0, 0.95), 9.0);
        assert_eq!(count_quantile(0.0, 1.0, 0.95), 0.0);
        assert_eq!(count_quantile(3.2, 1.0, 0.05), 1.0);
    }
}
