//! Safety KPIs per scope (group, site, zone) and period (month, quarter,
//! year), and the annual targets evaluated against them as of a date.
//!
//! DataFusion selects, projects and groups the rows; every scope × period
//! window is measured in one streamed pass over each table, holding sums per
//! window rather than rows (see the `measure` module). Formulas, units and
//! kinds are in [`CATALOGUE`] (`docs/kpis.md` is generated from it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::model::schema::TableKind;
use crate::model::time::local_day_start;
use crate::model::time::{micros_to_local, parse_tz};
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

/// How a KPI behaves over a period (decides expectation and projection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiKind {
    /// Events counted over the period: grows with time (fatalities, drills).
    Count,
    /// A ratio that does not grow with the period's length (TRIR, rates).
    Rate,
    /// A share that accumulates over the period (training coverage).
    Cumulative,
}

/// One KPI of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct KpiDef {
    /// Code used in results and targets.
    pub code: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Behaviour over a period.
    pub kind: KpiKind,
    /// Formula.
    pub formula: &'static str,
    /// Meaning (with the Chinese name where there is one).
    pub meaning: &'static str,
}

macro_rules! kpi {
    ($code:literal, $unit:literal, $kind:ident, $formula:literal, $meaning:literal) => {
        KpiDef {
            code: $code,
            unit: $unit,
            kind: KpiKind::$kind,
            formula: $formula,
            meaning: $meaning,
        }
    };
}

/// Every KPI with its formula and unit.
pub const CATALOGUE: &[KpiDef] = &[
    kpi!(
        "hours_worked",
        "h",
        Count,
        "Σ exposure hours × overlap with the period / record length",
        "Hours worked (工时)"
    ),
    kpi!(
        "average_headcount",
        "persons",
        Rate,
        "Σ exposure headcount × overlap / period length",
        "Average headcount"
    ),
    kpi!(
        "incidents",
        "count",
        Count,
        "incidents and near misses",
        "All incident reports"
    ),
    kpi!(
        "near_misses",
        "count",
        Count,
        "severity = near_miss",
        "Near misses (未遂事件)"
    ),
    kpi!(
        "first_aid_cases",
        "count",
        Count,
        "severity = first_aid",
        "First-aid cases"
    ),
    kpi!(
        "minor_injuries",
        "count",
        Count,
        "severity = minor",
        "Minor injuries (轻伤)"
    ),
    kpi!(
        "serious_injuries",
        "count",
        Count,
        "severity = serious",
        "Serious injuries (重伤)"
    ),
    kpi!(
        "fatalities",
        "count",
        Count,
        "severity = fatal",
        "Fatalities (死亡)"
    ),
    kpi!(
        "injured_persons",
        "count",
        Count,
        "severity ∈ {minor, serious, fatal}",
        "Injured persons of GB 6441 (伤亡人数)"
    ),
    kpi!(
        "recordables",
        "count",
        Count,
        "recordable (default: minor, serious, fatal)",
        "OSHA recordable cases"
    ),
    kpi!(
        "lost_time_injuries",
        "count",
        Count,
        "recordable with lost_days > 0 (fatal counts)",
        "Lost-time injuries (LTI)"
    ),
    kpi!(
        "lost_days",
        "days",
        Count,
        "Σ lost_days (fatal = 6000 when missing)",
        "Lost workdays"
    ),
    kpi!(
        "trir",
        "per 200,000 h",
        Rate,
        "recordables × 200,000 / hours_worked",
        "Total recordable incident rate"
    ),
    kpi!(
        "dart",
        "per 200,000 h",
        Rate,
        "lost-time (days away or restricted) cases × 200,000 / hours_worked",
        "Days away, restricted or transferred rate (equals LTIR: the model records lost days, not restrictions)"
    ),
    kpi!(
        "ltir",
        "per 200,000 h",
        Rate,
        "lost_time_injuries × 200,000 / hours_worked",
        "Lost-time incident rate"
    ),
    kpi!(
        "severity_rate",
        "days per 200,000 h",
        Rate,
        "lost_days × 200,000 / hours_worked",
        "OSHA severity rate"
    ),
    kpi!(
        "ltifr",
        "per 1,000,000 h",
        Rate,
        "lost_time_injuries × 10⁶ / hours_worked",
        "Lost-time injury frequency rate"
    ),
    kpi!(
        "trifr",
        "per 1,000,000 h",
        Rate,
        "recordables × 10⁶ / hours_worked",
        "Total recordable injury frequency rate"
    ),
    kpi!(
        "injury_frequency_rate",
        "per 1,000,000 h",
        Rate,
        "injured_persons × 10⁶ / hours_worked",
        "百万工时伤害率 (GB 6441 §6)"
    ),
    kpi!(
        "injury_severity_rate",
        "days per 1,000,000 h",
        Rate,
        "lost_days × 10⁶ / hours_worked",
        "伤害严重率"
    ),
    kpi!(
        "fatality_rate_per_1000",
        "per 1,000 workers",
        Rate,
        "fatalities × 1,000 / average_headcount",
        "千人死亡率"
    ),
    kpi!(
        "days_since_lti",
        "days",
        Rate,
        "(period end or as-of) − last lost-time injury before it",
        "Days since the last lost-time injury"
    ),
    kpi!(
        "hazards_found",
        "count",
        Count,
        "hazards reported in the period",
        "Hazards found (隐患排查数)"
    ),
    kpi!(
        "hazards_closed",
        "count",
        Count,
        "of those, closed by the period end (or as-of)",
        "Hazards rectified"
    ),
    kpi!(
        "rectification_rate",
        "ratio",
        Rate,
        "hazards_closed / hazards_found",
        "Rectification rate (整改率)"
    ),
    kpi!(
        "on_time_rate",
        "ratio",
        Rate,
        "due in the period and closed by the deadline / due in the period (deadline passed)",
        "On-time rectification rate (按期整改率)"
    ),
    kpi!(
        "rectification_cycle_hours",
        "h",
        Rate,
        "median of closed_at − reported_at, hazards found in the period and closed",
        "Rectification cycle, median (整改周期)"
    ),
    kpi!(
        "rectification_cycle_p90_hours",
        "h",
        Rate,
        "90th percentile (linear interpolation) of the same",
        "Rectification cycle, 90th percentile"
    ),
    kpi!(
        "open_hazards",
        "count",
        Rate,
        "reported before the period end and not closed by it",
        "Open hazards at the period end"
    ),
    kpi!(
        "overdue_hazards",
        "count",
        Rate,
        "open at the period end with due_at before it",
        "Overdue hazards at the period end (逾期未改)"
    ),
    kpi!(
        "major_hazards_found",
        "count",
        Count,
        "level = major, reported in the period",
        "Major hazards found (重大隐患)"
    ),
    kpi!(
        "major_open_hazards",
        "count",
        Rate,
        "level = major, open at the period end",
        "Major hazards open"
    ),
    kpi!(
        "major_overdue_hazards",
        "count",
        Rate,
        "level = major, overdue at the period end",
        "Major hazards overdue"
    ),
    kpi!(
        "training_coverage",
        "ratio",
        Cumulative,
        "distinct persons trained in the period / average_headcount",
        "Training coverage (培训覆盖率)"
    ),
    kpi!(
        "leader_inspections_per_month",
        "per leader per month",
        Rate,
        "inspections / distinct inspectors / months in the period",
        "Leader inspections (领导带班检查)"
    ),
    kpi!(
        "drills",
        "count",
        Count,
        "drills in the period",
        "Emergency drills (应急演练)"
    ),
    kpi!(
        "drill_response_minutes",
        "min",
        Rate,
        "mean drill value",
        "Drill response time"
    ),
    kpi!(
        "suggestions_per_month",
        "per month",
        Rate,
        "suggestions / months in the period",
        "Safety suggestions (合理化建议)"
    ),
    kpi!(
        "equipment_readiness",
        "ratio",
        Rate,
        "mean of equipment checks (1 ready, 0 not)",
        "Emergency equipment readiness (完好率)"
    ),
    kpi!(
        "violations",
        "count",
        Count,
        "violations detected in the period",
        "Violations (违章)"
    ),
    kpi!(
        "violations_per_1000h",
        "per 1,000 h",
        Rate,
        "violations × 1,000 / hours_worked",
        "Violation rate"
    ),
];

/// Look up a KPI.
pub fn kpi_def(code: &str) -> Option<&'static KpiDef> {
    CATALOGUE.iter().find(|k| k.code == code)
}

/// The catalogue as Markdown (`docs/kpis.md`).
pub fn catalogue_markdown() -> String {
    let mut s = String::from(
        "# KPI catalogue\n\nGenerated from `crates/safetyscope-core/src/kpis.rs` (`safetyscope kpis --catalogue`);\na test keeps this file equal to the code.\n\n\
Every KPI is computed per scope (`group`, a site, or `site/zone`) and local calendar\nperiod (`2025`, `2025-Q1`, `2025-03`) from the canonical tables. *Kind* decides how a\ntarget is tracked: a **count** grows with the period (expected to date pro rata, projected\nlinearly or by last year's seasonal profile, with a Poisson probability of meeting the\ntarget), a **rate** is expected at the target all along and projected by its value to\ndate, a **cumulative** share grows towards the period end.\n\n\
| kpi | unit | kind | formula | meaning |\n|---|---|---|---|---|\n",
    );
    for k in CATALOGUE {
        let kind = match k.kind {
            KpiKind::Count => "count",
            KpiKind::Rate => "rate",
            KpiKind::Cumulative => "cumulative",
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.code, k.unit, kind, k.formula, k.meaning
        ));
    }
    s.push_str("\nActivity KPIs (training, inspections, drills, suggestions, equipment) exist at the group\nand site scopes: activities carry no zone. Hazard, incident and violation KPIs exist at\nevery scope. Values with a zero denominator are null, never zero.\n");
    s
}

// ------------------------------------------------------------------ facts

use crate::analysis::kpis::measure::{Facts, Window};
use crate::analysis::kpis::scope::{Period, Scope};
use crate::util::columns::col_as as typed;
use crate::util::columns::str_col as strs;

fn opt_s(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

// ------------------------------------------------------------- scopes & periods

// ------------------------------------------------------------------ measures

// ------------------------------------------------------------------ kpis

/// Options of [`kpis`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KpiOptions {
    /// Period kinds: `month`, `quarter`, `year` (default all three).
    pub periods: Vec<String>,
    /// Scope kinds: `group`, `site`, `zone` (default group and site).
    pub scopes: Vec<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Only these KPIs (default all).
    pub kpis: Vec<String>,
    /// Count only what happened before this local date or time; periods
    /// after it are left out, the period containing it is partial.
    pub as_of: Option<String>,
}

impl Default for KpiOptions {
    fn default() -> Self {
        KpiOptions {
            periods: vec!["month".into(), "quarter".into(), "year".into()],
            scopes: vec!["group".into(), "site".into()],
            site: None,
            kpis: vec![],
            as_of: None,
        }
    }
}

/// The result schema of [`kpis`].
fn kpi_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("scope_type", DataType::Utf8, false),
        Field::new("scope", DataType::Utf8, false),
        Field::new("period_type", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("partial", DataType::Boolean, false),
        Field::new("kpi", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("unit", DataType::Utf8, false),
        Field::new("numerator", DataType::Float64, true),
        Field::new("denominator", DataType::Float64, true),
    ]))
}

fn parse_as_of(ds: &Dataset, v: Option<&str>) -> Result<Option<i64>> {
    v.map(|v| crate::session::window::parse_local(ds, "as_of", v))
        .transpose()
}

/// KPIs per scope and period, long format: `scope_type`, `scope`,
/// `period_type`, `period`, `partial` (the period runs past the data or the
/// as-of date), `kpi`, `value`, `unit`, `numerator`, `denominator`.
pub async fn kpis(ds: &Dataset, o: &KpiOptions) -> Result<RecordBatch> {
    for p in &o.periods {
        if !matches!(p.as_str(), "month" | "quarter" | "year") {
            return Err(Error::option(
                "periods",
                format!("`{p}`: month, quarter or year"),
            ));
        }
    }
    for s in &o.scopes {
        if !matches!(s.as_str(), "group" | "site" | "zone") {
            return Err(Error::option(
                "scopes",
                format!("`{s}`: group, site or zone"),
            ));
        }
    }
    for k in &o.kpis {
        if kpi_def(k).is_none() {
            return Err(Error::option("kpis", format!("unknown KPI `{k}`")));
        }
    }
    let tz = parse_tz(ds.timezone())?;
    let as_of = parse_as_of(ds, o.as_of.as_deref())?;
    let f = match &o.site {
        Some(site) => Arc::new(Facts::open(ds, Some(site), false).await?),
        None => Facts::of_dataset(ds).await?,
    };
    let Some((t0, t1)) = f.outline.span else {
        return Ok(RecordBatch::new_empty(kpi_schema()));
    };
    let last = as_of.map_or(t1, |a| (a - 1).max(t0));
    let (d0, d1) = (
        micros_to_local(&tz, t0)
            .map(|t| t.date())
            .unwrap_or_default(),
        micros_to_local(&tz, last)
            .map(|t| t.date())
            .unwrap_or_default(),
    );
    let mut periods = vec![];
    for kind in ["year", "quarter", "month"] {
        if !o.periods.iter().any(|p| p == kind) {
            continue;
        }
        let mut y = d0.year();
        while y <= d1.year() {
            let labels: Vec<String> = match kind {
                "year" => vec![format!("{y}")],
                "quarter" => (1..=4).map(|q| format!("{y}-Q{q}")).collect(),
                _ => (1..=12).map(|m| format!("{y}-{m:02}")).collect(),
            };
            for l in labels {
                let p = Period::parse(&l)?;
                if p.next > d0 && p.first <= d1 {
                    periods.push(p);
                }
            }
            y += 1;
        }
    }
    let mut scopes = vec![];
    if o.scopes.iter().any(|s| s == "group") && o.site.is_none() {
        scopes.push(Scope::parse("group"));
    }
    for s in &f.outline.sites {
        if o.scopes.iter().any(|x| x == "site") {
            scopes.push(Scope {
                site: Some(s.clone()),
                zone: None,
            });
        }
        if o.scopes.iter().any(|x| x == "zone") {
            for z in f.outline.zones.get(s).into_iter().flatten() {
                scopes.push(Scope {
                    site: Some(s.clone()),
                    zone: Some(z.clone()),
                });
            }
        }
    }
    let data_end = local_day_start(&tz, d1.succ_opt().unwrap_or(d1));
    type Keys = (
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<bool>,
    );
    let mut cols: Keys = Default::default();
    let mut kpi = vec![];
    let (mut val, mut unit, mut num, mut den) = (vec![], vec![], vec![], vec![]);
    let cut = as_of.unwrap_or(data_end);
    let mut windows = vec![];
    for sc in &scopes {
        for p in &periods {
            let a = local_day_start(&tz, p.first);
            let b = local_day_start(&tz, p.next).min(cut);
            windows.push(Window {
                scope: sc.clone(),
                a,
                b,
                months: p.months(),
            });
        }
    }
    let wanted = |code: &str| o.kpis.is_empty() || o.kpis.iter().any(|k| k == code);
    let cycles = wanted("rectification_cycle_hours") || wanted("rectification_cycle_p90_hours");
    let measured = f.measure(ds, &windows, cycles).await?;
    let mut measured = measured.iter();
    for sc in &scopes {
        for p in &periods {
            let full_end = local_day_start(&tz, p.next);
            let b = full_end.min(cut);
            let Some(m) = measured.next() else { break };
            for def in CATALOGUE {
                if !o.kpis.is_empty() && !o.kpis.iter().any(|k| k == def.code) {
                    continue;
                }
                let Some(x) = m.get(def.code) else { continue };
                cols.0.push(sc.kind().to_string());
                cols.1.push(sc.label());
                cols.2.push(p.kind.to_string());
                cols.3.push(p.label.clone());
                cols.4.push(b < full_end);
                kpi.push(def.code.to_string());
                val.push(x.value);
                unit.push(def.unit.to_string());
                num.push(x.numerator);
                den.push(x.denominator);
            }
        }
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(cols.0)),
        Arc::new(StringArray::from(cols.1)),
        Arc::new(StringArray::from(cols.2)),
        Arc::new(StringArray::from(cols.3)),
        Arc::new(BooleanArray::from(cols.4)),
        Arc::new(StringArray::from(kpi)),
        Arc::new(Float64Array::from(val)),
        Arc::new(StringArray::from(unit)),
        Arc::new(Float64Array::from(num)),
        Arc::new(Float64Array::from(den)),
    ];
    Ok(RecordBatch::try_new(kpi_schema(), arrays)?)
}

// ------------------------------------------------------------------ targets

/// One target of the annual plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
struct TargetsToml {
    target: Vec<Target>,
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

fn split_csv(line: &str) -> Vec<String> {
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

fn check_target(t: &Target, where_: &str) -> Result<()> {
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
enum Baseline {
    Absolute(f64),
    Relative { pct: f64, year: i32 },
}

fn parse_baseline(s: &str) -> Option<Baseline> {
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
async fn dataset_targets(ds: &Dataset) -> Result<Vec<Target>> {
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

fn meets(v: f64, target: f64, at_most: bool) -> bool {
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
    let f = Facts::of_dataset(ds).await?;
    let as_of = match parse_as_of(ds, o.as_of.as_deref())? {
        Some(a) => a,
        None => {
            let last = f.outline.span.map_or(0, |s| s.1);
            let d = micros_to_local(&tz, last)
                .map(|t| t.date())
                .unwrap_or_default();
            local_day_start(&tz, d.succ_opt().unwrap_or(d))
        }
    };
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
            measured = f.measure(ds, &windows, true).await?;
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
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

fn shift_years(d: NaiveDate, years: i32) -> NaiveDate {
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
pub fn targets_svg(b: &RecordBatch, title: &str) -> Result<String> {
    let kpi = strs(b, "kpi")?;
    let scope = strs(b, "scope")?;
    let period = strs(b, "period")?;
    let ptype = strs(b, "period_type")?;
    let status = strs(b, "status")?;
    let f = |n: &str| typed::<Float64Array>(b, n);
    let (target, actual, proj) = (f("effective_target")?, f("actual")?, f("projection")?);
    let opt = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    let rows: Vec<safetyscope_render::Bullet> = (0..b.num_rows())
        .map(|i| safetyscope_render::Bullet {
            label: format!(
                "{} · {} · {}",
                kpi.value(i),
                scope.value(i),
                period.value(i)
            ),
            actual: opt(actual, i),
            target: opt(target, i),
            projection: opt(proj, i),
            status: status.value(i).replace('_', " "),
            color: status_color(status.value(i)).to_string(),
        })
        .collect();
    let mut parts = vec![safetyscope_render::bullets_svg(title, &rows)];
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
                        status.value(i).replace('_', " ")
                    ),
                    status_color(status.value(i)).to_string(),
                ));
        }
    }
    for ((k, s), items) in strips {
        parts.push(safetyscope_render::strip_svg(
            &format!("Quarterly milestones · {k} · {s}"),
            &items,
        ));
    }
    Ok(safetyscope_render::stack_svg(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_baselines_parse() {
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
    fn targets_csv_errors_name_line_and_column() {
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
