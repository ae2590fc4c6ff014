//! The annual targets against the KPIs as of a date: effective target,
//! actual, expected, projection, probability and status.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::analysis::kpis::catalogue::*;
use crate::analysis::kpis::compute::*;
use crate::analysis::kpis::measure::{Facts, Window};
use crate::analysis::kpis::scope::{Period, Scope};
use crate::model::schema::TableKind;
use crate::model::time::local_day_start;
use crate::model::time::parse_tz;
use crate::session::dataset::Dataset;
use crate::util::columns::col_as as typed;
use crate::util::columns::str_col as strs;
use crate::util::error::{Error, Result};

// ------------------------------------------------------------------ targets

/// One target of the annual plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// KPI code.
    pub kpi: String,
    /// `group`, a site or `site/zone`.
    pub scope: String,
    /// `2025`, `2025-Q1` or `2025-03`.
    pub period: String,
    /// Target value (ignored when `baseline` is relative).
    #[serde(default)]
    pub target: f64,
    /// `at_most` or `at_least`.
    pub direction: String,
    /// Baseline: an absolute value (`72`) or relative to a year's actual
    /// (`-20% vs 2024`), which then defines the target.
    #[serde(default)]
    pub baseline: Option<String>,
}

/// A targets file in TOML: `[[target]]` tables with the fields of [`Target`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetsToml {
    pub(crate) target: Vec<Target>,
}

/// Read targets from CSV (header `kpi,scope,period,target,direction[,baseline]`)
/// or TOML text; errors name the line and the field.
pub fn parse_targets(text: &str, label: &str) -> Result<Vec<Target>> {
    let toml_like = label.ends_with(".toml") || text.trim_start().starts_with("[[");
    if toml_like {
        let t: TargetsToml = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            Error::data(
                "targets",
                format!(
                    "{label}{}: {}",
                    line.map(|l| format!(" line {l}")).unwrap_or_default(),
                    e.message()
                ),
            )
        })?;
        for (i, t) in t.target.iter().enumerate() {
            check_target(t, &format!("{label} target #{}", i + 1))?;
        }
        return Ok(t.target);
    }
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(Error::data("targets", format!("{label}: empty file")));
    };
    let names: Vec<String> = split_csv(header)
        .into_iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let idx = |n: &str| names.iter().position(|h| h == n);
    let need = |n: &str| {
        idx(n).ok_or_else(|| {
            Error::schema(
                "targets",
                format!("{label}: missing column `{n}` (have: {})", names.join(", ")),
            )
        })
    };
    let (ik, is, ip, it, id) = (
        need("kpi")?,
        need("scope")?,
        need("period")?,
        need("target")?,
        need("direction")?,
    );
    let ib = idx("baseline");
    let mut out = vec![];
    for (n, line) in lines {
        let v = split_csv(line);
        let get = |i: usize| v.get(i).map(|s| s.trim().to_string()).unwrap_or_default();
        let where_ = format!("{label} line {}", n + 1);
        let target = get(it);
        let t = Target {
            kpi: get(ik),
            scope: get(is),
            period: get(ip),
            target: if target.is_empty() {
                0.0
            } else {
                target.parse().map_err(|_| {
                    Error::data(
                        "targets",
                        format!("{where_}, column `target`: `{target}` is not a number"),
                    )
                })?
            },
            direction: get(id),
            baseline: ib.map(get).filter(|b| !b.is_empty()),
        };
        check_target(&t, &where_)?;
        out.push(t);
    }
    Ok(out)
}

pub(crate) fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

pub(crate) fn check_target(t: &Target, where_: &str) -> Result<()> {
    if kpi_def(&t.kpi).is_none() {
        return Err(Error::data(
            "targets",
            format!(
                "{where_}, column `kpi`: unknown KPI `{}` (see docs/kpis.md)",
                t.kpi
            ),
        ));
    }
    Period::parse(&t.period).map_err(|_| {
        Error::data(
            "targets",
            format!(
                "{where_}, column `period`: `{}` is not 2025, 2025-Q1 or 2025-03",
                t.period
            ),
        )
    })?;
    let dir = crate::model::vocab::TARGET_DIRECTIONS.resolve(&t.direction);
    if dir.is_none() {
        return Err(Error::data(
            "targets",
            format!(
                "{where_}, column `direction`: `{}` is not at_most or at_least",
                t.direction
            ),
        ));
    }
    if let Some(b) = &t.baseline {
        parse_baseline(b).ok_or_else(|| {
            Error::data(
                "targets",
                format!(
                    "{where_}, column `baseline`: `{b}` is neither a number nor e.g. `-20% vs 2024`"
                ),
            )
        })?;
    }
    Ok(())
}

/// A parsed baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Baseline {
    Absolute(f64),
    Relative { pct: f64, year: i32 },
}

pub(crate) fn parse_baseline(s: &str) -> Option<Baseline> {
    let s = s.trim().replace('−', "-");
    if let Ok(v) = s.parse::<f64>() {
        return Some(Baseline::Absolute(v));
    }
    let (pct, year) = s.split_once("vs")?;
    let pct = pct.trim().strip_suffix('%')?.trim().parse::<f64>().ok()?;
    let year = year.trim().parse::<i32>().ok()?;
    Some(Baseline::Relative { pct, year })
}

/// Options of [`track_targets`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TargetOptions {
    /// Evaluate as of this local date (default: the day after the latest event).
    pub as_of: Option<String>,
    /// Targets to evaluate (default: the dataset's `targets` table).
    pub targets: Option<Vec<Target>>,
    /// Expected to date: `pro_rata` or `seasonal` (last year's profile).
    pub expectation: String,
    /// Relative gap of the projection within which a target is `at_risk`
    /// rather than `off_track` (default 0.1 = 10 %).
    pub tolerance: f64,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            as_of: None,
            targets: None,
            expectation: "pro_rata".into(),
            tolerance: 0.1,
        }
    }
}

/// Read the targets table of a dataset.
pub(crate) async fn dataset_targets(ds: &Dataset) -> Result<Vec<Target>> {
    let mut out = vec![];
    if !ds.has_table(TableKind::Targets) {
        return Ok(out);
    }
    for b in ds.table(TableKind::Targets).await?.collect().await? {
        let (k, s, p, d, bl) = (
            strs(&b, "kpi")?,
            strs(&b, "scope")?,
            strs(&b, "period")?,
            strs(&b, "direction")?,
            strs(&b, "baseline")?,
        );
        let t = typed::<Float64Array>(&b, "target")?;
        for i in 0..b.num_rows() {
            let target = Target {
                kpi: k.value(i).into(),
                scope: s.value(i).into(),
                period: p.value(i).into(),
                target: t.value(i),
                direction: d.value(i).into(),
                baseline: opt_s(bl, i),
            };
            check_target(&target, &format!("targets row {}", out.len() + 1))?;
            out.push(target);
        }
    }
    Ok(out)
}

pub(crate) fn meets(v: f64, target: f64, at_most: bool) -> bool {
    if at_most {
        v <= target + 1e-12
    } else {
        v >= target - 1e-12
    }
}

/// Targets evaluated as of a date, one row per target (quarterly
/// milestones are their own rows): `effective_target` (from a relative
/// baseline where given), `actual` to date, `expected` to date, `projection`
/// to the period end, `probability` of meeting a count target under a
/// Poisson model of the remaining period, `elapsed` share of the period and
/// `status`:
///
/// - `achieved` / `missed`: the period is over (or a count can no longer
///   come back: an at-most count already above its target is `missed`, an
///   at-least count already reached is `achieved`);
/// - `on_track`: the projection meets the target (counts: probability ≥ 0.8);
/// - `at_risk`: the projection misses by at most `tolerance` (relative;
///   counts: probability ≥ 0.5);
/// - `off_track`: otherwise; `no_data` when the KPI has no value yet.
pub async fn track_targets(ds: &Dataset, o: &TargetOptions) -> Result<RecordBatch> {
    if !(o.expectation == "pro_rata" || o.expectation == "seasonal") {
        return Err(Error::option("expectation", "pro_rata or seasonal"));
    }
    let tz = parse_tz(ds.timezone())?;
    let targets = match &o.targets {
        Some(t) => {
            for (i, x) in t.iter().enumerate() {
                check_target(x, &format!("target #{}", i + 1))?;
            }
            t.clone()
        }
        None => dataset_targets(ds).await?,
    };
    let as_of = match parse_as_of(ds, o.as_of.as_deref())? {
        Some(a) => a,
        None => crate::session::window::data_end(ds, "as_of").await?,
    };
    // An interactive session asks for the same date more than once (the
    // overview, then the targets' cards).
    let key = format!(
        "targets {as_of} {}",
        serde_json::to_string(&TargetOptions {
            as_of: None,
            ..o.clone()
        })
        .unwrap_or_default()
    );
    if let Some(b) = ds.recall(&key) {
        return Ok(b);
    }
    let f = Facts::of_dataset(ds).await?;
    let mut c: Vec<Vec<Option<String>>> = vec![vec![]; 6];
    let mut n: Vec<Vec<Option<f64>>> = vec![vec![]; 8];
    // Each target reads a few windows (to date, its baseline, last year's
    // same share and whole period). The first round only collects them,
    // all are measured in one pass, and the second round reads them.
    let mut windows: Vec<Window> = vec![];
    let mut index: HashMap<(String, i64, i64, u64), usize> = HashMap::new();
    let mut measured = vec![];
    for round in 0..2 {
        if round == 1 {
            let m = f.measure(ds, &windows, true).await?;
            measured = (0..m.len()).filter_map(|w| m.get(w)).collect();
        }
        for t in &targets {
            let def = kpi_def(&t.kpi).expect("checked");
            let scope = Scope::parse(&t.scope);
            let p = Period::parse(&t.period)?;
            let at_most =
                crate::model::vocab::TARGET_DIRECTIONS.resolve(&t.direction) == Some("at_most");
            let (a, e) = (local_day_start(&tz, p.first), local_day_start(&tz, p.next));
            let now = as_of.clamp(a, e);
            let elapsed = (now - a) as f64 / (e - a) as f64;
            let mut value = |from: i64, to: i64, months: f64| -> Option<f64> {
                if to <= from {
                    return None;
                }
                let key = (scope.label(), from, to, months.to_bits());
                if round == 0 {
                    index.entry(key).or_insert_with(|| {
                        windows.push(Window {
                            scope: scope.clone(),
                            a: from,
                            b: to,
                            months,
                        });
                        windows.len() - 1
                    });
                    return None;
                }
                let i = index.get(&key)?;
                measured.get(*i)?.get(def.code)?.value
            };
            let months_elapsed = p.months() * elapsed;
            let actual = value(a, now, months_elapsed.max(1e-9));
            let baseline = t.baseline.as_deref().and_then(parse_baseline);
            let effective = match baseline {
                Some(Baseline::Relative { pct, year }) => {
                    let shift = year - p.first.year();
                    let base = Period {
                        label: String::new(),
                        kind: p.kind,
                        first: shift_years(p.first, shift),
                        next: shift_years(p.next, shift),
                    };
                    let (ba, be) = (
                        local_day_start(&tz, base.first),
                        local_day_start(&tz, base.next),
                    );
                    value(ba, be, base.months()).map(|v| v * (1.0 + pct / 100.0))
                }
                _ => Some(t.target),
            };
            // Last year's share of the period's value accrued by the same point.
            let last = p.year_before();
            let (la, le) = (
                local_day_start(&tz, last.first),
                local_day_start(&tz, last.next),
            );
            let l_now = la + ((le - la) as f64 * elapsed) as i64;
            let seasonal_share = match (
                value(la, l_now, last.months() * elapsed),
                value(la, le, last.months()),
            ) {
                (Some(part), Some(full)) if full > 0.0 && def.kind == KpiKind::Count => {
                    Some(part / full)
                }
                _ => None,
            };
            let share = if o.expectation == "seasonal" {
                seasonal_share.unwrap_or(elapsed)
            } else {
                elapsed
            };
            let expected = effective.map(|tv| match def.kind {
                KpiKind::Count | KpiKind::Cumulative => tv * share,
                KpiKind::Rate => tv,
            });
            let projection = actual.map(|v| match def.kind {
                KpiKind::Count | KpiKind::Cumulative if share > 0.0 && elapsed < 1.0 => v / share,
                _ => v,
            });
            // Poisson chance of meeting a count target in the remaining period.
            let probability = match (def.kind, actual, effective) {
                (KpiKind::Count, Some(v), Some(tv)) if elapsed < 1.0 => {
                    let rate_left = if v > 0.0 && share > 0.0 {
                        v / share * (1.0 - share)
                    } else {
                        // No events yet: last year's count over the same remaining share.
                        value(la, le, last.months()).map_or(0.0, |full| full * (1.0 - share))
                    };
                    let room = tv - v;
                    Some(if at_most {
                        if room < 0.0 {
                            0.0
                        } else {
                            1.0 - crate::util::stats::poisson_sf(room.floor(), rate_left)
                        }
                    } else if room <= 0.0 {
                        1.0
                    } else {
                        crate::util::stats::poisson_sf(room.ceil() - 1.0, rate_left)
                    })
                }
                _ => None,
            };
            let status = match (actual, effective, projection) {
                (Some(v), Some(tv), Some(pr)) => {
                    let over = elapsed >= 1.0;
                    if over {
                        if meets(v, tv, at_most) {
                            "achieved"
                        } else {
                            "missed"
                        }
                    } else if def.kind == KpiKind::Count && at_most && v > tv + 1e-12 {
                        "missed"
                    } else if def.kind == KpiKind::Count && !at_most && v >= tv - 1e-12 {
                        "achieved"
                    } else if let Some(pb) = probability {
                        if pb >= 0.8 {
                            "on_track"
                        } else if pb >= 0.5 {
                            "at_risk"
                        } else {
                            "off_track"
                        }
                    } else if meets(pr, tv, at_most) {
                        "on_track"
                    } else if (pr - tv).abs() <= o.tolerance * tv.abs().max(1e-9) {
                        "at_risk"
                    } else {
                        "off_track"
                    }
                }
                _ => "no_data",
            };
            if round == 0 {
                continue;
            }
            let base_text = match baseline {
                Some(Baseline::Absolute(v)) => Some(v),
                _ => None,
            };
            for (i, v) in [
                Some(t.kpi.clone()),
                Some(scope.label()),
                Some(t.period.clone()),
                Some(p.kind.to_string()),
                Some(if at_most { "at_most" } else { "at_least" }.to_string()),
                Some(status.to_string()),
            ]
            .into_iter()
            .enumerate()
            {
                c[i].push(v);
            }
            for (i, v) in [
                Some(t.target),
                effective,
                base_text,
                actual,
                expected,
                projection,
                probability,
                Some(elapsed),
            ]
            .into_iter()
            .enumerate()
            {
                n[i].push(v);
            }
        }
    }
    let names_s = [
        "kpi",
        "scope",
        "period",
        "period_type",
        "direction",
        "status",
    ];
    let names_n = [
        "target",
        "effective_target",
        "baseline",
        "actual",
        "expected",
        "projection",
        "probability",
        "elapsed",
    ];
    let mut fields = vec![];
    let mut arrays: Vec<ArrayRef> = vec![];
    for (name, v) in names_s.iter().zip(c) {
        fields.push(Field::new(*name, DataType::Utf8, true));
        arrays.push(Arc::new(StringArray::from(v)));
    }
    for (name, v) in names_n.iter().zip(n) {
        fields.push(Field::new(*name, DataType::Float64, true));
        arrays.push(Arc::new(Float64Array::from(v)));
    }
    // The unit goes last.
    let units: Vec<Option<String>> = targets
        .iter()
        .map(|t| kpi_def(&t.kpi).map(|d| d.unit.to_string()))
        .collect();
    fields.push(Field::new("unit", DataType::Utf8, true));
    arrays.push(Arc::new(StringArray::from(units)));
    let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
    ds.remember(key, &b);
    Ok(b)
}

pub(crate) fn shift_years(d: NaiveDate, years: i32) -> NaiveDate {
    if years >= 0 {
        d.checked_add_months(chrono::Months::new(12 * years as u32))
    } else {
        d.checked_sub_months(chrono::Months::new(12 * (-years) as u32))
    }
    .unwrap_or(d)
}

/// Status colours (colour-blind safe with the text label beside them).
pub fn status_color(status: &str) -> &'static str {
    match status {
        "achieved" => "#1a9850",
        "on_track" => "#91cf60",
        "at_risk" => "#fdae61",
        "off_track" => "#d73027",
        "missed" => "#7f0000",
        _ => "#bdbdbd",
    }
}

/// Bullet charts, one per target row (the bar is the actual to date, the
/// tick the effective target, the hollow marker the projection, the colour
/// and text the status), followed by a milestone strip per KPI and scope
/// with quarterly rows.
pub fn targets_svg(
    b: &RecordBatch,
    title: &str,
    lang: crate::model::vocab::Lang,
) -> Result<String> {
    let kpi = strs(b, "kpi")?;
    let scope = strs(b, "scope")?;
    let period = strs(b, "period")?;
    let ptype = strs(b, "period_type")?;
    let status = strs(b, "status")?;
    let f = |n: &str| typed::<Float64Array>(b, n);
    let (target, actual, proj) = (f("effective_target")?, f("actual")?, f("projection")?);
    let opt = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    // Codes as they are in English, named in Chinese.
    let shown = |code: &str| match lang {
        crate::model::vocab::Lang::En => code.to_string(),
        crate::model::vocab::Lang::Zh => lang.term(code),
    };
    let shown_status = |code: &str| match lang {
        crate::model::vocab::Lang::En => code.replace('_', " "),
        crate::model::vocab::Lang::Zh => lang.term(code),
    };
    let rows: Vec<safetyscope_render::Bullet> = (0..b.num_rows())
        .map(|i| safetyscope_render::Bullet {
            label: format!(
                "{} · {} · {}",
                shown(kpi.value(i)),
                shown(scope.value(i)),
                period.value(i)
            ),
            actual: opt(actual, i),
            target: opt(target, i),
            projection: opt(proj, i),
            status: shown_status(status.value(i)),
            color: status_color(status.value(i)).to_string(),
        })
        .collect();
    let words = match lang {
        crate::model::vocab::Lang::En => safetyscope_render::BulletWords::default(),
        crate::model::vocab::Lang::Zh => safetyscope_render::BulletWords {
            actual: "实际".into(),
            target: "目标".into(),
            projection: "预测".into(),
            key: "条 = 截至目前的实际 · | = 目标 · ○ = 期末预测".into(),
        },
    };
    let mut parts = vec![safetyscope_render::bullets_svg(title, &rows, &words)];
    // (kpi, scope) → (period, text, colour) boxes.
    type Strip = Vec<(String, String, String)>;
    let mut strips: BTreeMap<(String, String), Strip> = BTreeMap::new();
    for i in 0..b.num_rows() {
        if ptype.value(i) == "quarter" {
            strips
                .entry((kpi.value(i).to_string(), scope.value(i).to_string()))
                .or_default()
                .push((
                    period.value(i).to_string(),
                    format!(
                        "{} · {}",
                        opt(actual, i).map_or("–".into(), safetyscope_render::short_number),
                        shown_status(status.value(i))
                    ),
                    status_color(status.value(i)).to_string(),
                ));
        }
    }
    for ((k, s), items) in strips {
        parts.push(safetyscope_render::strip_svg(
            &format!(
                "{} · {} · {}",
                lang.w("季度里程碑", "Quarterly milestones"),
                shown(&k),
                shown(&s)
            ),
            &items,
        ));
    }
    Ok(safetyscope_render::stack_svg(&parts))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::util::stats::quantile;

    #[test]
    pub(crate) fn periods_and_baselines_parse() {
        let q = Period::parse("2025-Q2").unwrap();
        assert_eq!((q.first.month(), q.next.month(), q.months()), (4, 7, 3.0));
        assert_eq!(q.year_before().label, "2024-Q2");
        assert_eq!(Period::parse("2025").unwrap().months(), 12.0);
        assert!(Period::parse("2025-13").is_err());
        assert_eq!(
            parse_baseline("-20% vs 2024"),
            Some(Baseline::Relative {
                pct: -20.0,
                year: 2024
            })
        );
        assert!(parse_baseline("−20 % vs 2024").is_some());
        assert_eq!(parse_baseline("72"), Some(Baseline::Absolute(72.0)));
        // numpy.quantile([1, 2, 3, 4, 10], 0.9) = 7.6
        assert!((quantile(&[1.0, 2.0, 3.0, 4.0, 10.0], 0.9).unwrap() - 7.6).abs() < 1e-12);
    }

    #[test]
    pub(crate) fn targets_csv_errors_name_line_and_column() {
        let e = parse_targets("kpi,scope,period,target,direction\ntrir,group,2025,1.2,at_most\nfoo,group,2025,1,at_most\n", "t.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.csv line 3") && e.contains("unknown KPI `foo`"),
            "{e}"
        );
        let e = parse_targets(
            "kpi,scope,period,target,direction\ntrir,group,2025,x,at_most\n",
            "t.csv",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("column `target`") && e.contains("`x`"), "{e}");
        let ok = parse_targets("[[target]]\nkpi = \"trir\"\nscope = \"U01\"\nperiod = \"2025-Q1\"\ntarget = 1.5\ndirection = \"at_most\"\n", "t.toml").unwrap();
        assert_eq!(ok[0].scope, "U01");
    }
}
