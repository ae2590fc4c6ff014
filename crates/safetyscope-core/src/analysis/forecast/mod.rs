//! Forecasts: the expected events of the next period per cell of the site
//! plan (summed per zone, site and group) from a count model of the
//! history, and the rolling-origin backtest that says how often such
//! forecasts come true, against the baselines a safety office would use.

pub(crate) mod glm;
pub(crate) mod history;
pub(crate) mod model;

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

pub use crate::analysis::forecast::history::Target;
use crate::analysis::forecast::history::{History, history};
use crate::analysis::forecast::model::{Model, expected, fit, interval, rows};
pub use crate::model::options::Slice;
use crate::session::dataset::Dataset;
use crate::util::columns::Cols;
use crate::util::error::{Error, Result};
use crate::util::stats::two_sided_p;

/// Options of [`forecast`] and [`backtest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastOptions {
    /// What is forecast: `injuries` (incidents with an injury) or
    /// `incidents` (near misses included).
    pub target: Target,
    /// The period: `month` or `week` (local calendar weeks from Monday).
    pub period: Slice,
    /// Start of the history, local time (default: the first incident);
    /// whole periods only.
    pub from: Option<String>,
    /// End of the history, exclusive, local time (default: the day after
    /// the latest record); the forecast is for the period after the last
    /// whole one.
    pub to: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Coverage of the prediction intervals.
    pub level: f64,
    /// Backtest: how many of the last periods are each predicted from the
    /// periods before them.
    pub origins: usize,
}

impl Default for ForecastOptions {
    fn default() -> Self {
        ForecastOptions {
            target: Target::Injuries,
            period: Slice::Month,
            from: None,
            to: None,
            site: None,
            level: 0.9,
            origins: 6,
        }
    }
}

impl ForecastOptions {
    fn check(&self) -> Result<()> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::option(
                "level",
                format!("{} is not between 0 and 1", self.level),
            ));
        }
        if self.origins == 0 || self.origins > 120 {
            return Err(Error::option("origins", "must be 1 to 120"));
        }
        Ok(())
    }
}

/// The history the options ask for, of one site or all.
async fn history_of(ds: &Dataset, o: &ForecastOptions, site: Option<&str>) -> Result<History> {
    history(
        ds,
        o.target,
        o.period,
        o.from.as_deref(),
        o.to.as_deref(),
        site,
    )
    .await
}

/// The views of [`forecast`].
pub const FORECAST_VIEWS: [&str; 5] = ["cells", "hours", "coefficients", "indicators", "design"];

/// The views of [`backtest`].
pub const BACKTEST_VIEWS: [&str; 3] = ["summary", "calibration", "predictions"];

/// The forecast of the period after the history.
///
/// - `cells`: per cell, then per zone, site and the group (`scope`):
///   `period`, `expected` events, `lower` and `upper` (the interval at
///   `level`), `hours` (expected: the mean of the last three periods),
///   `cell_level` (the cell's own level θ, 1 = as the shared terms say) and
///   up to three `driver_*` with `driver_*_ratio`: the terms that raise
///   this cell's forecast most against the average cell, as rate ratios;
/// - `hours`: each cell's forecast spread over the 168 hours of the week
///   (`weekday` 0 = Monday, `hour` 0–23, local time) by its site's share
///   of the target events in each hour over the history, smoothed by
///   adding ½ to every hour's count: `share` and `expected`. Events whose
///   time of day is unknown do not count in the shares;
/// - `coefficients`: per term, `estimate`, `std_error`, `z`, `p_value`,
///   `rate_ratio` with its 95 % interval, and the fit's `rows`,
///   `deviance`, `dispersion` (Pearson), `prior_shape` and the IRLS
///   `iterations`;
/// - `indicators`: do the leading indicators predict the target? The
///   model fitted to the group and to each site alone (where its history
///   allows a fit): per `scope` and `indicator`, the `rate_ratio` of one
///   unit of ln(1 + count) of the period before, its 95 % interval,
///   `p_value` and the `rows` fitted;
/// - `design`: the model's rows (`site`, `cell`, `period`, `y`, `offset`
///   = ln hours + ln cell level, one column per term), to refit elsewhere.
pub async fn forecast(ds: &Dataset, o: &ForecastOptions, view: &str) -> Result<RecordBatch> {
    o.check()?;
    if !FORECAST_VIEWS.contains(&view) {
        return Err(Error::option(
            "view",
            format!("unknown view `{view}` ({})", FORECAST_VIEWS.join(", ")),
        ));
    }
    if view == "indicators" {
        return indicators_view(ds, o).await;
    }
    let h = history_of(ds, o, o.site.as_deref()).await?;
    let last = h.periods();
    let m = fit(&h, last)?;
    match view {
        "cells" => cells_view(&h, &m, o),
        "hours" => hours_view(ds, &h, &m, o).await,
        "coefficients" => coefficients_view(&m),
        _ => design_view(&h, &m),
    }
}

/// One row of the forecast: scope, site, zone, cell, expected events, hours
/// and the cell's index (none for a roll-up).
type Line = (
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
    f64,
    f64,
    Option<usize>,
);

fn cells_view(h: &History, m: &Model, o: &ForecastOptions) -> Result<RecordBatch> {
    let t = h.periods();
    let e = expected(h, m, t);
    let phi = m.fit.dispersion();
    let period = h.labels[t].clone();
    // (scope, site, zone, cell) → (expected, hours)
    let mut rows: Vec<Line> = vec![];
    let mut zones: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    let mut sites: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let (mut all, mut all_h) = (0.0, 0.0);
    for (c, cell) in h.cells.iter().enumerate() {
        rows.push((
            "cell",
            Some(cell.site.clone()),
            Some(cell.zone.clone()),
            Some(cell.cell.clone()),
            e[c].mean,
            e[c].hours,
            Some(c),
        ));
        let z = zones
            .entry((cell.site.clone(), cell.zone.clone()))
            .or_default();
        z.0 += e[c].mean;
        z.1 += e[c].hours;
        let s = sites.entry(cell.site.clone()).or_default();
        s.0 += e[c].mean;
        s.1 += e[c].hours;
        all += e[c].mean;
        all_h += e[c].hours;
    }
    for ((s, z), (v, hw)) in zones {
        rows.push(("zone", Some(s), Some(z), None, v, hw, None));
    }
    for (s, (v, hw)) in sites {
        rows.push(("site", Some(s), None, None, v, hw, None));
    }
    rows.push(("group", None, None, None, all, all_h, None));
    let mut c = Cols::default();
    let (mut lower, mut upper, mut level) = (vec![], vec![], vec![]);
    let mut drivers: [Vec<Option<String>>; 3] = Default::default();
    let mut ratios: [Vec<Option<f64>>; 3] = Default::default();
    for r in &rows {
        let (lo, hi) = interval(r.4, phi, o.level);
        lower.push(Some(lo));
        upper.push(Some(hi));
        level.push(r.6.map(|i| m.level[i]));
        for k in 0..3 {
            let d = r.6.and_then(|i| e[i].drivers.get(k));
            drivers[k].push(d.map(|d| d.0.clone()));
            ratios[k].push(d.map(|d| d.1));
        }
    }
    c = c
        .text(
            "scope",
            rows.iter().map(|r| Some(r.0.to_string())).collect(),
        )
        .text("site", rows.iter().map(|r| r.1.clone()).collect())
        .text("zone", rows.iter().map(|r| r.2.clone()).collect())
        .text("cell", rows.iter().map(|r| r.3.clone()).collect())
        .text("period", vec![Some(period); rows.len()])
        .float("expected", rows.iter().map(|r| Some(r.4)).collect())
        .float("lower", lower)
        .float("upper", upper)
        .float("hours", rows.iter().map(|r| Some(r.5)).collect())
        .float("cell_level", level);
    // Where each cell is drawn (none for the roll-ups).
    let place = |f: fn(&crate::analysis::spatial::risk_evidence::PlanCell) -> i32| {
        arrow::array::Int32Array::from(
            rows.iter()
                .map(|r| r.6.map(|i| f(&h.cells[i])))
                .collect::<Vec<_>>(),
        )
    };
    for (name, a) in [("row", place(|c| c.row)), ("col", place(|c| c.col))] {
        c.fields.push(arrow::datatypes::Field::new(
            name,
            arrow::datatypes::DataType::Int32,
            true,
        ));
        c.arrays.push(std::sync::Arc::new(a));
    }
    c = c.text(
        "owner",
        rows.iter()
            .map(|r| r.6.and_then(|i| h.cells[i].owner.clone()))
            .collect(),
    );
    for (k, (d, r)) in drivers.into_iter().zip(ratios).enumerate() {
        c = c
            .text(&format!("driver_{}", k + 1), d)
            .float(&format!("driver_{}_ratio", k + 1), r);
    }
    c.done()
}

async fn hours_view(
    ds: &Dataset,
    h: &History,
    m: &Model,
    o: &ForecastOptions,
) -> Result<RecordBatch> {
    let t = h.periods();
    let e = expected(h, m, t);
    let shares = history::hour_shares(ds, h, o.target, o.site.as_deref()).await?;
    let n = h.cells.len() * 168;
    let (mut site, mut zone, mut cell) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut wd, mut hr, mut share, mut exp) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (c, pc) in h.cells.iter().enumerate() {
        let sh = shares.get(&pc.site).copied().unwrap_or([1.0 / 168.0; 168]);
        for (k, v) in sh.iter().enumerate() {
            site.push(Some(pc.site.clone()));
            zone.push(Some(pc.zone.clone()));
            cell.push(Some(pc.cell.clone()));
            wd.push(Some((k / 24) as i64));
            hr.push(Some((k % 24) as i64));
            share.push(Some(*v));
            exp.push(Some(e[c].mean * v));
        }
    }
    Cols::default()
        .text("site", site)
        .text("zone", zone)
        .text("cell", cell)
        .text("period", vec![Some(h.labels[t].clone()); n])
        .int("weekday", wd)
        .int("hour", hr)
        .float("share", share)
        .float("expected", exp)
        .done()
}

async fn indicators_view(ds: &Dataset, o: &ForecastOptions) -> Result<RecordBatch> {
    let mut scopes: Vec<Option<String>> = vec![o.site.clone()];
    if o.site.is_none() {
        let mut sites: Vec<String> = crate::analysis::spatial::risk_evidence::plan(ds, None)?
            .into_iter()
            .map(|c| c.site)
            .collect();
        sites.sort();
        sites.dedup();
        scopes.extend(sites.into_iter().map(Some));
    }
    let (mut scope, mut name, mut rr, mut lo, mut hi, mut p, mut n) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for site in scopes {
        let h = history_of(ds, o, site.as_deref()).await?;
        // A site whose history cannot carry the model is left out; the
        // first scope's fit is required.
        let m = match fit(&h, h.periods()) {
            Ok(m) => m,
            Err(e) if scope.is_empty() => return Err(e),
            Err(_) => continue,
        };
        for (j, term) in m.design.terms.iter().enumerate() {
            let Some(ind) = term.strip_prefix("lag_") else {
                continue;
            };
            let (b, se) = (m.fit.beta[j], m.fit.se[j]);
            scope.push(Some(site.clone().unwrap_or_else(|| "group".into())));
            name.push(Some(ind.to_string()));
            rr.push(Some(b.exp()));
            lo.push(Some((b - 1.959_963_984_540_054 * se).exp()));
            hi.push(Some((b + 1.959_963_984_540_054 * se).exp()));
            p.push(Some(two_sided_p(b / se)));
            n.push(Some(m.rows as i64));
        }
    }
    Cols::default()
        .text("scope", scope)
        .text("indicator", name)
        .float("rate_ratio", rr)
        .float("rate_ratio_low", lo)
        .float("rate_ratio_high", hi)
        .float("p_value", p)
        .int("rows", n)
        .done()
}

fn coefficients_view(m: &Model) -> Result<RecordBatch> {
    let f = &m.fit;
    let n = m.design.terms.len();
    let z: Vec<f64> = (0..n).map(|j| f.beta[j] / f.se[j]).collect();
    let ci = |j: usize, s: f64| (f.beta[j] + s * 1.959_963_984_540_054 * f.se[j]).exp();
    Cols::default()
        .text(
            "term",
            m.design.terms.iter().map(|t| Some(t.clone())).collect(),
        )
        .float("estimate", f.beta.iter().map(|v| Some(*v)).collect())
        .float("std_error", f.se.iter().map(|v| Some(*v)).collect())
        .float("z", z.iter().map(|v| Some(*v)).collect())
        .float("p_value", z.iter().map(|v| Some(two_sided_p(*v))).collect())
        .float("rate_ratio", f.beta.iter().map(|v| Some(v.exp())).collect())
        .float(
            "rate_ratio_low",
            (0..n).map(|j| Some(ci(j, -1.0))).collect(),
        )
        .float(
            "rate_ratio_high",
            (0..n).map(|j| Some(ci(j, 1.0))).collect(),
        )
        .int("rows", vec![Some(m.rows as i64); n])
        .float("deviance", vec![Some(f.deviance); n])
        .float("dispersion", vec![Some(f.dispersion()); n])
        .float("prior_shape", vec![Some(m.shape); n])
        .int("iterations", vec![Some(f.iterations as i64); n])
        .done()
}

fn design_view(h: &History, m: &Model) -> Result<RecordBatch> {
    let p = m.design.terms.len();
    let model::Rows { x, y, offset, at } = rows(h, &m.design, h.periods());
    // The offset the model was fitted with: ln hours and the cell's level.
    let off: Vec<f64> = offset
        .iter()
        .zip(&at)
        .map(|(o, (c, _))| o + m.level[*c].ln())
        .collect();
    let mut c = Cols::default()
        .text(
            "site",
            at.iter()
                .map(|(c, _)| Some(h.cells[*c].site.clone()))
                .collect(),
        )
        .text(
            "cell",
            at.iter()
                .map(|(c, _)| Some(h.cells[*c].cell.clone()))
                .collect(),
        )
        .text(
            "period",
            at.iter().map(|(_, t)| Some(h.labels[*t].clone())).collect(),
        )
        .float("y", y.iter().map(|v| Some(*v)).collect())
        .float("offset", off.iter().map(|v| Some(*v)).collect());
    for (j, term) in m.design.terms.iter().enumerate() {
        c = c.float(term, (0..y.len()).map(|r| Some(x[r * p + j])).collect());
    }
    c.done()
}

// ------------------------------------------------------------- backtest

/// The methods a backtest compares: the model and three baselines.
pub const METHODS: [&str; 4] = ["model", "last_period", "long_run_mean", "risk_score"];

/// The shares of cells the capture is measured at (5 %, 10 %, 20 %).
const SHARES: [f64; 3] = [0.05, 0.10, 0.20];

/// Predictions below this count are raised to it in the deviance (a
/// baseline that predicts 0 where an event happens would be infinitely
/// wrong).
pub const DEVIANCE_FLOOR: f64 = 1e-3;

/// The cells a share `x` of them covers: ⌈x · n⌉.
fn top(n: usize, x: f64) -> usize {
    ((x * n as f64).ceil() as usize).clamp(1, n.max(1))
}

/// Events caught by the top `k` cells when ranked by `pred` (highest first,
/// ties in plan order).
fn caught(pred: &[f64], obs: &[f64], k: usize) -> f64 {
    let mut order: Vec<usize> = (0..pred.len()).collect();
    order.sort_by(|&a, &b| pred[b].total_cmp(&pred[a]).then(a.cmp(&b)));
    order.iter().take(k).map(|&i| obs[i]).sum()
}

/// Rolling-origin evaluation: each of the last `origins` periods is
/// predicted from the periods before it, by the model (refitted at each
/// origin) and by three baselines: the cell's count in the period before
/// (`last_period`), its mean over the periods before (`long_run_mean`),
/// and the risk map's score at the origin (`risk_score`, a ranking only:
/// no deviance).
///
/// - `summary`: per method and origin, and over all origins (`origin` =
///   `all`): `events`, `cells`, the share of events caught by the top 5,
///   10 and 20 % of cells (`hit_5` …) and the predictive accuracy index
///   (`pai_5` …: the share caught over the share of cells), and the
///   Poisson `deviance` (predictions below [`DEVIANCE_FLOOR`] raised to
///   it);
/// - `calibration`: per method, the predictions of every origin in ten
///   groups by rank (`decile` 1 = lowest): `predicted` and `observed`
///   means and `n`;
/// - `predictions`: every method's prediction and the observed count per
///   origin and cell.
pub async fn backtest(ds: &Dataset, o: &ForecastOptions, view: &str) -> Result<RecordBatch> {
    o.check()?;
    if !BACKTEST_VIEWS.contains(&view) {
        return Err(Error::option(
            "view",
            format!("unknown view `{view}` ({})", BACKTEST_VIEWS.join(", ")),
        ));
    }
    let h = history_of(ds, o, o.site.as_deref()).await?;
    let n_t = h.periods();
    // At least four periods to fit on (three with a lag).
    if n_t < o.origins + 4 {
        return Err(Error::option(
            "origins",
            format!(
                "{} origins leave {} periods to fit the first on; at least 4 are needed",
                o.origins,
                n_t.saturating_sub(o.origins)
            ),
        ));
    }
    let n_c = h.cells.len();
    // (method, origin, predictions)
    let mut preds: Vec<(usize, usize, Vec<f64>)> = vec![];
    for t in n_t - o.origins..n_t {
        let m = fit(&h, t)?;
        preds.push((0, t, expected(&h, &m, t).iter().map(|e| e.mean).collect()));
        preds.push((1, t, (0..n_c).map(|c| h.target[c][t - 1]).collect()));
        preds.push((
            2,
            t,
            (0..n_c)
                .map(|c| h.target[c][..t].iter().sum::<f64>() / t as f64)
                .collect(),
        ));
        preds.push((3, t, risk_scores(ds, &h, t, o).await?));
    }
    let obs = |t: usize| -> Vec<f64> { (0..n_c).map(|c| h.target[c][t]).collect() };
    match view {
        "summary" => summary(&h, &preds, &obs),
        "calibration" => calibration(&preds, &obs),
        _ => {
            let (mut method, mut origin, mut site, mut cell) = (vec![], vec![], vec![], vec![]);
            let (mut predicted, mut observed) = (vec![], vec![]);
            for (m, t, p) in &preds {
                let y = obs(*t);
                for (ci, c) in h.cells.iter().enumerate() {
                    method.push(Some(METHODS[*m].to_string()));
                    origin.push(Some(h.labels[*t].clone()));
                    site.push(Some(c.site.clone()));
                    cell.push(Some(c.cell.clone()));
                    predicted.push(Some(p[ci]));
                    observed.push(Some(y[ci]));
                }
            }
            let c = Cols::default()
                .text("method", method)
                .text("origin", origin)
                .text("site", site)
                .text("cell", cell)
                .float("predicted", predicted)
                .float("observed", observed);
            c.done()
        }
    }
}

/// The risk map's score per cell with its window ending at period `t`.
async fn risk_scores(ds: &Dataset, h: &History, t: usize, o: &ForecastOptions) -> Result<Vec<f64>> {
    use crate::analysis::spatial::risk::risk_batch;
    use crate::analysis::spatial::risk_model::RiskOptions;
    let tz = crate::model::time::parse_tz(ds.timezone())?;
    let to = crate::model::time::micros_to_local(&tz, h.bounds[t])
        .map(|l| l.format("%Y-%m-%d %H:%M:%S").to_string())
        .ok_or_else(|| Error::option("to", "out of range"))?;
    let b = risk_batch(
        ds,
        &RiskOptions {
            to: Some(to),
            site: o.site.clone(),
            ..Default::default()
        },
    )
    .await?;
    let (s, c) = (
        crate::util::columns::strings(&b, "site")?,
        crate::util::columns::strings(&b, "cell")?,
    );
    let score = crate::util::columns::f64s(&b, "score")?;
    let mut by: BTreeMap<(String, String), f64> = BTreeMap::new();
    for i in 0..b.num_rows() {
        if arrow::array::Array::is_null(&c, i) {
            continue;
        }
        by.insert(
            (s.value(i).to_string(), c.value(i).to_string()),
            score.value(i),
        );
    }
    Ok(h.cells
        .iter()
        .map(|c| {
            by.get(&(c.site.clone(), c.cell.clone()))
                .copied()
                .unwrap_or(0.0)
        })
        .collect())
}

type Observed<'a> = dyn Fn(usize) -> Vec<f64> + 'a;

/// One row of the summary: method, origin, events, cells, events caught at
/// each share, deviance.
type Score = (usize, String, f64, f64, [f64; 3], Option<f64>);

fn summary(
    h: &History,
    preds: &[(usize, usize, Vec<f64>)],
    obs: &Observed<'_>,
) -> Result<RecordBatch> {
    // (method, origin label) → [events, cells, caught×3, deviance]
    let mut rows: Vec<Score> = vec![];
    let mut pooled: BTreeMap<usize, (f64, f64, [f64; 3], Option<f64>)> = BTreeMap::new();
    for (m, t, p) in preds {
        let y = obs(*t);
        let n = p.len();
        let events: f64 = y.iter().sum();
        let mut got = [0.0; 3];
        for (k, x) in SHARES.iter().enumerate() {
            got[k] = caught(p, &y, top(n, *x));
        }
        let dev = (*m != 3).then(|| {
            let mu: Vec<f64> = p.iter().map(|v| v.max(DEVIANCE_FLOOR)).collect();
            glm::poisson_deviance(&y, &mu)
        });
        rows.push((*m, h.labels[*t].clone(), events, n as f64, got, dev));
        let e = pooled
            .entry(*m)
            .or_insert((0.0, 0.0, [0.0; 3], dev.map(|_| 0.0)));
        e.0 += events;
        e.1 += n as f64;
        for (a, g) in e.2.iter_mut().zip(got) {
            *a += g;
        }
        if let (Some(a), Some(d)) = (&mut e.3, dev) {
            *a += d;
        }
    }
    for (m, (ev, n, got, dev)) in pooled {
        rows.push((m, "all".into(), ev, n, got, dev));
    }
    let hit = |r: &Score, k: usize| (r.2 > 0.0).then(|| r.4[k] / r.2);
    let mut c = Cols::default()
        .text(
            "method",
            rows.iter().map(|r| Some(METHODS[r.0].into())).collect(),
        )
        .text("origin", rows.iter().map(|r| Some(r.1.clone())).collect())
        .float("events", rows.iter().map(|r| Some(r.2)).collect())
        .float("cells", rows.iter().map(|r| Some(r.3)).collect());
    for (k, x) in SHARES.iter().enumerate() {
        let pct = (x * 100.0).round() as u32;
        c = c.float(
            &format!("hit_{pct}"),
            rows.iter().map(|r| hit(r, k)).collect(),
        );
    }
    for (k, x) in SHARES.iter().enumerate() {
        let pct = (x * 100.0).round() as u32;
        // The share of cells actually taken: ⌈x n⌉ / n per origin.
        c = c.float(
            &format!("pai_{pct}"),
            rows.iter()
                .map(|r| {
                    let origins = if r.1 == "all" {
                        r.3 / h.cells.len() as f64
                    } else {
                        1.0
                    };
                    let area = top(h.cells.len(), *x) as f64 * origins / r.3;
                    hit(r, k).map(|v| v / area)
                })
                .collect(),
        );
    }
    c.float("deviance", rows.iter().map(|r| r.5).collect())
        .done()
}

fn calibration(preds: &[(usize, usize, Vec<f64>)], obs: &Observed<'_>) -> Result<RecordBatch> {
    let mut out: Vec<(usize, usize, f64, f64, f64)> = vec![];
    for m in 0..3 {
        let mut pairs: Vec<(f64, f64)> = vec![];
        for (mm, t, p) in preds {
            if *mm == m {
                pairs.extend(p.iter().copied().zip(obs(*t)));
            }
        }
        // Stable: equal predictions keep their order (origin, then cell).
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = pairs.len();
        let mut groups = vec![(0.0, 0.0, 0.0); 10];
        for (i, (p, y)) in pairs.iter().enumerate() {
            let g = (i * 10 / n.max(1)).min(9);
            groups[g].0 += p;
            groups[g].1 += y;
            groups[g].2 += 1.0;
        }
        for (g, (p, y, k)) in groups.into_iter().enumerate() {
            if k > 0.0 {
                out.push((m, g + 1, p / k, y / k, k));
            }
        }
    }
    Cols::default()
        .text(
            "method",
            out.iter().map(|r| Some(METHODS[r.0].into())).collect(),
        )
        .int("decile", out.iter().map(|r| Some(r.1 as i64)).collect())
        .float("predicted", out.iter().map(|r| Some(r.2)).collect())
        .float("observed", out.iter().map(|r| Some(r.3)).collect())
        .int("n", out.iter().map(|r| Some(r.4 as i64)).collect())
        .done()
}

// ---------------------------------------------------------------- charts

/// The forecast of one site's cells (the first when `site` is `None`) as a
/// grid: the expected events in each cell, the interval and drivers on
/// hover.
pub fn forecast_svg(
    b: &RecordBatch,
    site: Option<&str>,
    lang: crate::model::vocab::Lang,
) -> Result<String> {
    use crate::util::columns::{f64s, strings};
    let scope = strings(b, "scope")?;
    let keep = arrow::array::BooleanArray::from(
        (0..b.num_rows())
            .map(|i| Some(scope.value(i) == "cell"))
            .collect::<Vec<_>>(),
    );
    let cells = arrow::compute::filter_record_batch(b, &keep)?;
    let period = strings(&cells, "period")?;
    let (lo, hi) = (f64s(&cells, "lower")?, f64s(&cells, "upper")?);
    let driver = strings(&cells, "driver_1")?;
    let title = match lang {
        crate::model::vocab::Lang::Zh => format!(
            "下期预计事件数（{}）",
            if cells.num_rows() > 0 {
                period.value(0)
            } else {
                ""
            }
        ),
        crate::model::vocab::Lang::En => format!(
            "Expected events next period ({})",
            if cells.num_rows() > 0 {
                period.value(0)
            } else {
                ""
            }
        ),
    };
    let legend = lang.w("预计事件数", "expected events");
    crate::charts::site_grid(
        std::slice::from_ref(&cells),
        site,
        &title,
        legend,
        vec![],
        lang,
        |p| {
            let v = f64s(p.batch, "expected")?.value(p.i);
            let why = if arrow::array::Array::is_null(&driver, p.i) {
                String::new()
            } else {
                format!(", {}", lang.term(driver.value(p.i)))
            };
            Ok(crate::charts::Look {
                // The module's and the native build's floating point may
                // differ in the last bits: the chart carries six decimals.
                value: (v * 1e6).round() / 1e6,
                text: crate::util::stats::round_half_away(v, 1),
                title: format!(
                    "{}: {:.2} [{} – {}]{why}",
                    p.cell,
                    v,
                    lo.value(p.i),
                    hi.value(p.i)
                ),
                fill: None,
                suffix: None,
            })
        },
    )
}

/// A method's name in the charts (the display vocabulary), and its colour.
fn method_words(method: &str, lang: crate::model::vocab::Lang) -> (String, &'static str) {
    let color = match method {
        "model" => "#08519c",
        "last_period" => "#d95f0e",
        "long_run_mean" => "#555555",
        "risk_score" => "#31a354",
        _ => "#999999",
    };
    (lang.term(method), color)
}

/// The backtest summary as PAI curves: the predictive accuracy index over
/// all origins at 5, 10 and 20 % of cells, one line per method.
pub fn backtest_svg(b: &RecordBatch, lang: crate::model::vocab::Lang) -> Result<String> {
    use crate::util::columns::{f64s, strings};
    let (m, origin) = (strings(b, "method")?, strings(b, "origin")?);
    let pai = [f64s(b, "pai_5")?, f64s(b, "pai_10")?, f64s(b, "pai_20")?];
    let series: Vec<safetyscope_render::Series> = (0..b.num_rows())
        .filter(|&i| origin.value(i) == "all")
        .map(|i| {
            let (label, color) = method_words(m.value(i), lang);
            safetyscope_render::Series {
                label,
                color: color.into(),
                values: pai
                    .iter()
                    .map(|a| (!arrow::array::Array::is_null(a, i)).then(|| a.value(i)))
                    .collect(),
                dashed: m.value(i) == "risk_score",
            }
        })
        .collect();
    let share = lang.w("的网格", " of cells");
    let x: Vec<String> = [5, 10, 20]
        .iter()
        .map(|p| format!("{p} %{share}"))
        .collect();
    Ok(safetyscope_render::line_svg(
        lang.w(
            "回测：按预测排名前 5% / 10% / 20% 网格的预测准确指数（PAI）",
            "Backtest: predictive accuracy index of the top 5, 10 and 20 % of cells",
        ),
        &x,
        &series,
    ))
}

/// The backtest's calibration: per method, the mean observed count of each
/// tenth of the predictions against their mean prediction, over the
/// diagonal of perfect calibration (the risk score, a ranking, has none).
pub fn calibration_svg(b: &RecordBatch, lang: crate::model::vocab::Lang) -> Result<String> {
    use crate::util::columns::{f64s, strings};
    let m = strings(b, "method")?;
    let (pred, obs) = (f64s(b, "predicted")?, f64s(b, "observed")?);
    let mut series: Vec<safetyscope_render::Points> = vec![];
    let mut last: Option<String> = None;
    for i in 0..b.num_rows() {
        if arrow::array::Array::is_null(&pred, i) || arrow::array::Array::is_null(&obs, i) {
            continue;
        }
        let method = m.value(i).to_string();
        if last.as_deref() != Some(method.as_str()) {
            let (label, color) = method_words(&method, lang);
            series.push(safetyscope_render::Points {
                label,
                color: color.into(),
                points: vec![],
            });
            last = Some(method);
        }
        if let Some(s) = series.last_mut() {
            s.points.push((pred.value(i), obs.value(i)));
        }
    }
    Ok(safetyscope_render::calibration_svg(
        &safetyscope_render::CalibrationWords {
            title: lang
                .w(
                    "回测校准：按预测十分位的平均预测与实际事件数",
                    "Backtest calibration: mean predicted and observed events by tenth of the predictions",
                )
                .into(),
            x: lang.w("平均预测", "Mean predicted").into(),
            y: lang.w("平均实际", "Mean observed").into(),
            diagonal: lang.w("预测 = 实际", "predicted = observed").into(),
        },
        &series,
    ))
}
