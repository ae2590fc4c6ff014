//! The group overview: one row for the group and one per unit (site),
//! ranked by their red and orange cells, with the TRIR of the year against
//! its target, the overdue hazards and the open alerts. Every number is the
//! one the risk map (`by = site`), `kpis`, `targets` and `alerts` give for
//! the same window and date.

use std::collections::HashMap;

use arrow::array::{Array, RecordBatch};
use serde::{Deserialize, Serialize};

use crate::analysis::followup::alerts::alerts;
use crate::analysis::kpis::compute::{KpiOptions, kpis};
use crate::analysis::kpis::targets::{TargetOptions, track_targets};
use crate::analysis::spatial::risk::{RISK_DEFAULT_DAYS, risk_batch};
use crate::analysis::spatial::risk_model::RiskOptions;
use crate::model::options::RollUp;
use crate::model::schema::TableKind;
use crate::model::time::{local_text, micros_to_local, parse_tz};
use crate::session::dataset::Dataset;
use crate::session::window::resolve_window;
use crate::util::columns::{Cols, f64s, i64s, opt_f64, opt_text, strings};
use crate::util::error::Result;

/// Options of [`overview`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OverviewOptions {
    /// Window start, local time, inclusive (default: the risk map's, 90
    /// days before `to`).
    pub from: Option<String>,
    /// Window end, local time, exclusive (default: the day after the latest
    /// record); also the date the TRIR, the targets and the alerts are
    /// taken as of.
    pub to: Option<String>,
    /// The risk map's options (weights, bands, rule, and the alert
    /// configuration the alerts are counted with); their `from`, `to`,
    /// `site` and `by` are ignored.
    pub risk: RiskOptions,
}

/// Units in rank order: most red cells, then most orange cells, then the
/// highest risk score, then by name.
fn rank_key(a: &Unit, b: &Unit) -> std::cmp::Ordering {
    b.red
        .cmp(&a.red)
        .then(b.orange.cmp(&a.orange))
        .then(b.score.total_cmp(&a.score))
        .then(a.site.cmp(&b.site))
}

/// One unit's row before ranking.
struct Unit {
    site: String,
    level: Option<String>,
    red: i64,
    orange: i64,
    yellow: i64,
    blue: i64,
    score: f64,
    previous: Option<f64>,
    change_pct: Option<f64>,
    trend: Option<String>,
}

/// The overview: `scope` (`group`, then `site` in rank order), `rank`,
/// `site`, `level`, `red_cells`, `orange_cells`, `yellow_cells`,
/// `blue_cells`, `score`, `previous_score`, `change_pct`, `trend` (from the
/// risk map by site; the group row sums the units and has no level or
/// trend), `year`, `trir` (the year to `to`, per 200,000 h), `trir_target`
/// (the group's effective target for the year), `trir_meets` (the TRIR
/// within it), `trir_status` (the target's status, group row),
/// `overdue_hazards`, `open_alerts` (every alert kind, as of `to`), and the
/// window `from` and `to`.
pub async fn overview(ds: &Dataset, o: &OverviewOptions) -> Result<RecordBatch> {
    let tz = parse_tz(ds.timezone())?;
    let (from, to) =
        resolve_window(ds, o.from.as_deref(), o.to.as_deref(), RISK_DEFAULT_DAYS).await?;
    let text = |t: i64| local_text(&tz, t);
    let (from_s, to_s) = (text(from), text(to));
    // The year of the window's last instant.
    let year = micros_to_local(&tz, to - 1)
        .map(|l| chrono::Datelike::year(&l).to_string())
        .unwrap_or_default();

    let risk = risk_batch(
        ds,
        &RiskOptions {
            from: Some(from_s.clone()),
            to: Some(to_s.clone()),
            site: None,
            by: RollUp::Site,
            ..o.risk.clone()
        },
    )
    .await?;
    let mut units = Vec::new();
    {
        let b = &risk;
        let (site, level, trend) = (
            strings(b, "site")?,
            strings(b, "level")?,
            strings(b, "trend")?,
        );
        let (red, orange, yellow, blue) = (
            i64s(b, "red_cells")?,
            i64s(b, "orange_cells")?,
            i64s(b, "yellow_cells")?,
            i64s(b, "blue_cells")?,
        );
        let (score, prev, change) = (
            f64s(b, "score")?,
            f64s(b, "previous_score")?,
            f64s(b, "change_pct")?,
        );
        for i in 0..b.num_rows() {
            units.push(Unit {
                site: site.value(i).to_string(),
                level: opt_text(&level, i),
                red: red.value(i),
                orange: orange.value(i),
                yellow: yellow.value(i),
                blue: blue.value(i),
                score: score.value(i),
                previous: opt_f64(&prev, i),
                change_pct: opt_f64(&change, i),
                trend: opt_text(&trend, i),
            });
        }
    }
    units.sort_by(rank_key);

    // TRIR of the year to `to`, group and per site.
    let mut trir: HashMap<Option<String>, f64> = HashMap::new();
    if ds.row_count(TableKind::Exposure) > 0 {
        let k = kpis(
            ds,
            &KpiOptions {
                periods: vec!["year".into()],
                scopes: vec!["group".into(), "site".into()],
                site: None,
                kpis: vec!["trir".into()],
                as_of: Some(to_s.clone()),
            },
        )
        .await?;
        let (st, scope, period, value) = (
            strings(&k, "scope_type")?,
            strings(&k, "scope")?,
            strings(&k, "period")?,
            f64s(&k, "value")?,
        );
        for i in 0..k.num_rows() {
            if period.value(i) != year || value.is_null(i) {
                continue;
            }
            let key = (st.value(i) == "site").then(|| scope.value(i).to_string());
            trir.insert(key, value.value(i));
        }
    }
    // The group's TRIR target for the year.
    let mut target: Option<(f64, String, bool)> = None;
    if ds.row_count(TableKind::Targets) > 0 {
        let t = track_targets(
            ds,
            &TargetOptions {
                as_of: Some(to_s.clone()),
                ..Default::default()
            },
        )
        .await?;
        let (kpi, scope, period, dir, status, eff) = (
            strings(&t, "kpi")?,
            strings(&t, "scope")?,
            strings(&t, "period")?,
            strings(&t, "direction")?,
            strings(&t, "status")?,
            f64s(&t, "effective_target")?,
        );
        for i in 0..t.num_rows() {
            if kpi.value(i) == "trir"
                && scope.value(i) == "group"
                && period.value(i) == year
                && !eff.is_null(i)
            {
                target = Some((
                    eff.value(i),
                    status.value(i).to_string(),
                    dir.value(i) == "at_most",
                ));
            }
        }
    }
    let meets = |v: Option<f64>| match (v, &target) {
        (Some(v), Some((t, _, at_most))) => Some(if *at_most { v <= *t } else { v >= *t }),
        _ => None,
    };

    // Alerts as of `to`, per site and kind.
    let follow_up = [
        TableKind::Hazards,
        TableKind::Violations,
        TableKind::Readings,
        TableKind::Positions,
    ];
    let mut open: Option<HashMap<String, (i64, i64)>> = None;
    if follow_up.iter().any(|k| ds.row_count(*k) > 0) {
        let mut a_o = o.risk.alerts.clone();
        a_o.as_of = Some(to_s.clone());
        a_o.from = None;
        a_o.site = None;
        let a = alerts(ds, &a_o).await?;
        let (kind, site) = (strings(&a, "kind")?, strings(&a, "site")?);
        let mut m: HashMap<String, (i64, i64)> = HashMap::new();
        for i in 0..a.num_rows() {
            if site.is_null(i) {
                continue;
            }
            let e = m.entry(site.value(i).to_string()).or_default();
            e.1 += 1;
            if kind.value(i) == "overdue_hazard" {
                e.0 += 1;
            }
        }
        open = Some(m);
    }
    let count = |site: Option<&str>, pick: fn(&(i64, i64)) -> i64| {
        open.as_ref().map(|m| match site {
            Some(s) => m.get(s).map_or(0, pick),
            None => m.values().map(pick).sum(),
        })
    };

    // The group row, then the units.
    let n = units.len() + 1;
    let mut c = Rows::with_capacity(n);
    let sum = |f: fn(&Unit) -> i64| units.iter().map(f).sum::<i64>();
    let score: f64 = units.iter().fold(0.0, |a, u| a + u.score);
    let previous: Option<f64> = if units.is_empty() {
        None
    } else {
        units
            .iter()
            .map(|u| u.previous)
            .try_fold(0.0, |a, p| p.map(|p| a + p))
    };
    let group_trir = trir.get(&None).copied();
    c.push(Row {
        scope: "group",
        rank: None,
        site: None,
        level: None,
        cells: [
            sum(|u| u.red),
            sum(|u| u.orange),
            sum(|u| u.yellow),
            sum(|u| u.blue),
        ],
        score,
        previous,
        change_pct: previous
            .filter(|p| *p > 0.0)
            .map(|p| (score - p) / p * 100.0),
        trend: None,
        trir: group_trir,
        meets: meets(group_trir),
        status: target.as_ref().map(|t| t.1.clone()),
        overdue: count(None, |e| e.0),
        alerts: count(None, |e| e.1),
    });
    for (i, u) in units.iter().enumerate() {
        let v = trir.get(&Some(u.site.clone())).copied();
        c.push(Row {
            scope: "site",
            rank: Some(i as i64 + 1),
            site: Some(u.site.clone()),
            level: u.level.clone(),
            cells: [u.red, u.orange, u.yellow, u.blue],
            score: u.score,
            previous: u.previous,
            change_pct: u.change_pct,
            trend: u.trend.clone(),
            trir: v,
            meets: meets(v),
            status: None,
            overdue: count(Some(&u.site), |e| e.0),
            alerts: count(Some(&u.site), |e| e.1),
        });
    }
    c.finish(&year, target.as_ref().map(|t| t.0), &from_s, &to_s)
}

/// One row of the overview.
struct Row {
    scope: &'static str,
    rank: Option<i64>,
    site: Option<String>,
    level: Option<String>,
    cells: [i64; 4],
    score: f64,
    previous: Option<f64>,
    change_pct: Option<f64>,
    trend: Option<String>,
    trir: Option<f64>,
    meets: Option<bool>,
    status: Option<String>,
    overdue: Option<i64>,
    alerts: Option<i64>,
}

/// The overview's rows, column by column.
#[derive(Default)]
struct Rows(Vec<Row>);

impl Rows {
    fn with_capacity(n: usize) -> Rows {
        Rows(Vec::with_capacity(n))
    }

    fn push(&mut self, r: Row) {
        self.0.push(r);
    }

    fn finish(self, year: &str, target: Option<f64>, from: &str, to: &str) -> Result<RecordBatch> {
        let r = &self.0;
        let n = r.len();
        let cells = |k: usize| r.iter().map(|x| Some(x.cells[k])).collect();
        Cols::default()
            .text(
                "scope",
                r.iter().map(|x| Some(x.scope.to_string())).collect(),
            )
            .int("rank", r.iter().map(|x| x.rank).collect())
            .text("site", r.iter().map(|x| x.site.clone()).collect())
            .text("level", r.iter().map(|x| x.level.clone()).collect())
            .int("red_cells", cells(0))
            .int("orange_cells", cells(1))
            .int("yellow_cells", cells(2))
            .int("blue_cells", cells(3))
            .float("score", r.iter().map(|x| Some(x.score)).collect())
            .float("previous_score", r.iter().map(|x| x.previous).collect())
            .float("change_pct", r.iter().map(|x| x.change_pct).collect())
            .text("trend", r.iter().map(|x| x.trend.clone()).collect())
            .text("year", vec![Some(year.to_string()); n])
            .float("trir", r.iter().map(|x| x.trir).collect())
            .float("trir_target", vec![target; n])
            .flag("trir_meets", r.iter().map(|x| x.meets).collect())
            .text("trir_status", r.iter().map(|x| x.status.clone()).collect())
            .int("overdue_hazards", r.iter().map(|x| x.overdue).collect())
            .int("open_alerts", r.iter().map(|x| x.alerts).collect())
            .text("from", vec![Some(from.to_string()); n])
            .text("to", vec![Some(to.to_string()); n])
            .done()
    }
}
