//! The count model of a forecast: per cell and period,
//!
//! ln E[y] = ln hours + β₀ + Σ β_j ln(1 + indicator_j of the period before)
//!           + β_t trend + β_s sin 2πs + β_c cos 2πs + ln θ_cell,
//!
//! a Poisson GLM (IRLS, [`super::glm`]) for the terms shared by every cell,
//! then each cell's own level θ by empirical Bayes: a gamma prior centred
//! on its zone's ratio of observed to fitted events, its shape from the
//! spread of the cells' ratios (method of moments), so that a cell with
//! little history stays near its zone.

use crate::analysis::forecast::glm::{Fit, count_quantile, fit_poisson, fit_poisson_from};
use crate::analysis::forecast::history::History;
use crate::util::error::Result;

/// The model's terms, in design order.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    /// Term names.
    pub terms: Vec<String>,
    /// Which indicators (index into the history's) the lag terms are.
    pub lags: Vec<usize>,
    /// Per lag term, each cell's mean of it over the fitted rows where its
    /// indicator is recorded: the term `cell_mean_<indicator>`. With it the
    /// lag's coefficient is the within-cell effect (a cell against its own
    /// usual count, Mundlak's device), free of the busy cells' levels even
    /// where the cell levels are shrunk.
    pub means: Vec<Vec<f64>>,
    /// The periods from which some indicator is recorded: a term
    /// `unrecorded_until_<period>` is 1 in the rows whose lags precede it
    /// (their lag is 0 there for want of records, not for want of events).
    pub unrecorded: Vec<usize>,
}

impl Design {
    /// The terms the periods `1..until` of a history support: the
    /// intercept; every indicator (not in `skip`) whose lags count something
    /// in a row with a target event, and its cell mean; one term per period
    /// from which an indicator is recorded, when some rows lie before it;
    /// the trend and the season.
    pub fn of(h: &History, until: usize, skip: &[usize]) -> Design {
        let mut terms = vec!["intercept".to_string()];
        let mut lags = vec![];
        let mut unrecorded = vec![];
        let until = until.min(h.periods());
        for (j, (name, g)) in h.indicators.iter().enumerate() {
            // The lags of rows 1..until are the periods 0..until - 1. A lag
            // whose rows with a count hold no target event would have no
            // maximum-likelihood estimate (its coefficient runs to −∞), so it
            // stays out.
            let events_with = (0..h.cells.len())
                .flat_map(|c| (1..until).map(move |t| (c, t)))
                .filter(|&(c, t)| g[c][t - 1] > 0.0)
                .map(|(c, t)| h.target[c][t])
                .sum::<f64>();
            if events_with > 0.0 && !skip.contains(&j) {
                terms.push(format!("lag_{name}"));
                lags.push(j);
                let from = h.recorded_from[j];
                if from >= 1 && !unrecorded.contains(&from) {
                    unrecorded.push(from);
                }
            }
        }
        // Over the fitted rows (those with hours) whose lag is recorded.
        let means: Vec<Vec<f64>> = lags
            .iter()
            .map(|&j| {
                let from = h.recorded_from[j] + 1;
                (0..h.cells.len())
                    .map(|c| {
                        let (sum, n) = (from..until)
                            .filter(|&t| hours(h, c, t) > 0.0)
                            .fold((0.0, 0usize), |(s, n), t| {
                                (s + h.indicators[j].1[c][t - 1].ln_1p(), n + 1)
                            });
                        sum / n.max(1) as f64
                    })
                    .collect()
            })
            .collect();
        for &j in &lags {
            terms.push(format!("cell_mean_{}", h.indicators[j].0));
        }
        unrecorded.sort_unstable();
        for &s in &unrecorded {
            terms.push(format!("unrecorded_until_{}", h.labels[s]));
        }
        terms.extend(["trend", "season_sin", "season_cos"].map(String::from));
        Design {
            terms,
            lags,
            means,
            unrecorded,
        }
    }

    /// The row of cell `c` for period `t` (≥ 1; `t` may be the period after
    /// the history, whose lags are the last period's).
    pub fn row(&self, h: &History, c: usize, t: usize) -> Vec<f64> {
        let mid = h.periods() as f64 / 2.0;
        let angle = 2.0 * std::f64::consts::PI * h.season[t];
        let mut r = Vec::with_capacity(self.terms.len());
        r.push(1.0);
        for &j in &self.lags {
            r.push(h.indicators[j].1[c][t - 1].ln_1p());
        }
        for m in &self.means {
            r.push(m[c]);
        }
        for &s in &self.unrecorded {
            r.push(if t - 1 < s { 1.0 } else { 0.0 });
        }
        r.push((t as f64 - mid) / h.per_year);
        r.push(angle.sin());
        r.push(angle.cos());
        r
    }
}

/// Hours of cell `c` in period `t` (1 without exposure).
fn hours(h: &History, c: usize, t: usize) -> f64 {
    h.hours.as_ref().map_or(1.0, |g| g[c][t])
}

/// Hours expected in the period after `last` (exclusive): the mean of the
/// three periods before it.
pub(crate) fn hours_ahead(h: &History, c: usize, last: usize) -> f64 {
    let from = last.saturating_sub(3);
    let n = (last - from).max(1) as f64;
    (from..last).map(|t| hours(h, c, t)).sum::<f64>() / n
}

/// A model fitted to the periods `1..until` of a history.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub design: Design,
    pub fit: Fit,
    /// Each cell's level θ (1 = as the shared terms predict).
    pub level: Vec<f64>,
    /// The prior shape of the cell levels.
    pub shape: f64,
    /// Rows used.
    pub rows: usize,
}

/// The rows a model is fitted to.
pub(crate) struct Rows {
    /// The design, row-major.
    pub x: Vec<f64>,
    /// The counts.
    pub y: Vec<f64>,
    /// ln hours.
    pub offset: Vec<f64>,
    /// The cell and period of each row.
    pub at: Vec<(usize, usize)>,
}

/// The design rows, counts and offsets of periods `1..until` (cell-periods
/// without hours left out), with the cell of each row.
pub(crate) fn rows(h: &History, d: &Design, until: usize) -> Rows {
    let (mut x, mut y, mut off, mut at) = (vec![], vec![], vec![], vec![]);
    for c in 0..h.cells.len() {
        for t in 1..until {
            let hw = hours(h, c, t);
            if hw <= 0.0 {
                continue;
            }
            x.extend(d.row(h, c, t));
            y.push(h.target[c][t]);
            off.push(hw.ln());
            at.push((c, t));
        }
    }
    Rows {
        x,
        y,
        offset: off,
        at,
    }
}

/// The cells' levels given the shared terms `beta`: the empirical-Bayes
/// posterior means, and the prior's shape.
/// `rows.offset` is ln hours alone.
fn levels(h: &History, rows: &Rows, p: usize, beta: &[f64]) -> (Vec<f64>, f64) {
    // Observed and fitted events per cell (the fit without the levels).
    let n_cells = h.cells.len();
    let (mut obs, mut exp) = (vec![0.0; n_cells], vec![0.0; n_cells]);
    for (r, &(c, _)) in rows.at.iter().enumerate() {
        let eta = rows.offset[r]
            + rows.x[r * p..(r + 1) * p]
                .iter()
                .zip(beta)
                .map(|(a, b)| a * b)
                .sum::<f64>();
        obs[c] += rows.y[r];
        exp[c] += eta.clamp(-700.0, 700.0).exp();
    }
    // The zone's ratio of observed to fitted events.
    let mut zone: std::collections::BTreeMap<(&str, &str), (f64, f64)> = Default::default();
    for (c, cell) in h.cells.iter().enumerate() {
        let e = zone.entry((&cell.site, &cell.zone)).or_default();
        e.0 += obs[c];
        e.1 += exp[c];
    }
    let ratio = |c: usize| {
        let (o, e) = zone[&(h.cells[c].site.as_str(), h.cells[c].zone.as_str())];
        if e > 0.0 && o > 0.0 { o / e } else { 1.0 }
    };
    // Method of moments: the spread of r_c / ρ_zone beyond what Poisson
    // noise gives (1 / E_c) is the prior's variance 1 / shape.
    let (mut num, mut den) = (0.0, 0.0);
    for c in 0..n_cells {
        if exp[c] > 0.0 {
            let rho = ratio(c);
            let r = obs[c] / exp[c] / rho;
            num += exp[c] * ((r - 1.0).powi(2) - 1.0 / (exp[c] * rho));
            den += exp[c];
        }
    }
    let inv_shape = if den > 0.0 {
        (num / den).clamp(1e-3, 1e3)
    } else {
        1e-3
    };
    let shape = 1.0 / inv_shape;
    let mut level: Vec<f64> = (0..n_cells)
        .map(|c| {
            let rho = ratio(c);
            (obs[c] + shape) / (exp[c] + shape / rho)
        })
        .collect();
    // A common factor of the levels is the intercept's to carry (the
    // forecasts are the same either way): the levels average 1 over the
    // fitted events, Σ E_c θ_c = Σ E_c.
    let total: f64 = exp.iter().sum();
    let weighted: f64 = exp.iter().zip(&level).map(|(e, l)| e * l).sum();
    if total > 0.0 && weighted > 0.0 {
        let k = weighted / total;
        level.iter_mut().for_each(|l| *l /= k);
    }
    (level, shape)
}

/// Fit the model to periods `1..until`: the shared terms with the cells'
/// levels as part of the offset, the levels from the shared terms, in turn
/// until the levels move by less than 1e-9 (on the log scale; at most 200
/// rounds), so that a leading indicator's coefficient compares a cell
/// with itself rather than busy cells with quiet ones.
pub(crate) fn fit(h: &History, until: usize) -> Result<Model> {
    let mut skip = vec![];
    loop {
        let m = fit_design(h, until, Design::of(h, until, &skip))?;
        match diverged(&m) {
            Some(j) => skip.push(j),
            None => return Ok(m),
        }
    }
}

/// The indicator whose lag or cell-mean coefficient ran off (a standard
/// error above 1,000 on the log scale: the likelihood keeps rising as the
/// coefficient goes to ±∞, so the maximum-likelihood estimate does not
/// exist, as when a rare indicator's counts separate the rows), the worst
/// first.
fn diverged(m: &Model) -> Option<usize> {
    let k = m.design.lags.len();
    (1..=2 * k)
        .filter(|&t| m.fit.se[t].is_nan() || m.fit.se[t] > 1e3)
        .max_by(|&a, &b| m.fit.se[a].total_cmp(&m.fit.se[b]))
        .map(|t| m.design.lags[(t - 1) % k])
}

/// [`fit`] of one design.
fn fit_design(h: &History, until: usize, d: Design) -> Result<Model> {
    let p = d.terms.len();
    // `base.offset` is ln hours; `offset` adds the cells' levels.
    let base = rows(h, &d, until);
    let mut offset = base.offset.clone();
    let mut level = vec![1.0; h.cells.len()];
    let mut f = fit_poisson(&base.x, p, &base.y, &offset)?;
    let mut shape = f64::INFINITY;
    for _ in 0..200 {
        let (next, a) = levels(h, &base, p, &f.beta);
        shape = a;
        let moved = next
            .iter()
            .zip(&level)
            .map(|(a, b): (&f64, &f64)| (a.ln() - b.ln()).abs())
            .fold(0.0, f64::max);
        level = next;
        for ((o, hw), &(c, _)) in offset.iter_mut().zip(&base.offset).zip(&base.at) {
            *o = hw + level[c].ln();
        }
        f = fit_poisson_from(&base.x, p, &base.y, &offset, Some(&f.beta))?;
        if moved < 1e-9 {
            break;
        }
    }
    Ok(Model {
        design: d,
        fit: f,
        level,
        shape,
        rows: base.y.len(),
    })
}

/// One cell's forecast for the period after `last` (exclusive end of the
/// data the model saw): the expected count, its interval and the terms
/// that push it up most against the average cell.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub mean: f64,
    pub hours: f64,
    /// The terms and their effect on this cell (rate ratio against the
    /// mean of the cells), strongest first, only those above 1.
    pub drivers: Vec<(String, f64)>,
}

/// Forecasts of every cell for period `t` (its lags from `t − 1`).
pub(crate) fn expected(h: &History, m: &Model, t: usize) -> Vec<Expected> {
    let p = m.design.terms.len();
    let n = h.cells.len();
    let rows: Vec<Vec<f64>> = (0..n).map(|c| m.design.row(h, c, t)).collect();
    let mean: Vec<f64> = (0..p)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n as f64)
        .collect();
    let mean_level = m.level.iter().map(|l| l.ln()).sum::<f64>() / n as f64;
    (0..n)
        .map(|c| {
            let hw = hours_ahead(h, c, t);
            let eta: f64 = rows[c].iter().zip(&m.fit.beta).map(|(a, b)| a * b).sum();
            let mu = if hw > 0.0 {
                (eta + hw.ln() + m.level[c].ln()).clamp(-700.0, 700.0).exp()
            } else {
                0.0
            };
            let mut drivers: Vec<(String, f64)> = (1..p)
                .map(|j| {
                    (
                        m.design.terms[j].clone(),
                        (m.fit.beta[j] * (rows[c][j] - mean[j])).exp(),
                    )
                })
                .collect();
            drivers.push(("cell".into(), (m.level[c].ln() - mean_level).exp()));
            drivers.retain(|d| d.1 > 1.0);
            drivers.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Expected {
                mean: mu,
                hours: hw,
                drivers,
            }
        })
        .collect()
}

/// The interval of a count with mean `mu` at `level` (0.9: the 5 % and
/// 95 % quantiles) for the model's dispersion.
pub(crate) fn interval(mu: f64, phi: f64, level: f64) -> (f64, f64) {
    let a = (1.0 - level) / 2.0;
    (count_quantile(mu, phi, a), count_quantile(mu, phi, 1.0 - a))
}
