//! The KPI catalogue: every KPI's code, unit, kind, formula and meaning.

use serde::Serialize;

use crate::model::schema::TableKind;

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

impl KpiDef {
    /// The tables the KPI is computed from: without one of them the KPI is
    /// unknown (null), never 0.
    pub fn source_tables(&self) -> &'static [TableKind] {
        use TableKind::{Activities, Exposure, Hazards, Incidents, Violations};
        match self.code {
            "hours_worked" | "average_headcount" => &[Exposure],
            "trir"
            | "dart"
            | "ltir"
            | "severity_rate"
            | "ltifr"
            | "trifr"
            | "injury_frequency_rate"
            | "injury_severity_rate"
            | "fatality_rate_per_1000" => &[Incidents, Exposure],
            "training_coverage" => &[Activities, Exposure],
            "violations_per_1000h" => &[Violations, Exposure],
            "violations" => &[Violations],
            c if c.contains("hazard") || c.starts_with("rectification") || c == "on_time_rate" => {
                &[Hazards]
            }
            "leader_inspections_per_month"
            | "drills"
            | "drill_response_minutes"
            | "suggestions_per_month"
            | "equipment_readiness" => &[Activities],
            _ => &[Incidents],
        }
    }
}

/// Look up a KPI.
pub fn kpi_def(code: &str) -> Option<&'static KpiDef> {
    CATALOGUE.iter().find(|k| k.code == code)
}

/// The catalogue as Markdown (`docs/kpis.md`).
pub fn catalogue_markdown() -> String {
    let mut s = String::from(
        "# KPI catalogue\n\nGenerated from `crates/safetyscope-core/src/analysis/kpis/catalogue.rs` (`safetyscope kpis --catalogue`);\na test keeps this file equal to the code.\n\n\
Every KPI is computed per scope (`group`, a site, or `site/zone`) and local calendar\nperiod (`2025`, `2025-Q1`, `2025-03`) from the canonical tables. *Kind* decides how a\ntarget is tracked: a **count** grows with the period (expected to date pro rata, projected\nlinearly or by last year's seasonal profile, with a Poisson probability of meeting the\ntarget), a **rate** is expected at the target all along and projected by its value to\ndate, a **cumulative** share grows towards the period end.\n\n\
| kpi | unit | kind | formula | meaning | from |\n|---|---|---|---|---|---|\n",
    );
    for k in CATALOGUE {
        let kind = match k.kind {
            KpiKind::Count => "count",
            KpiKind::Rate => "rate",
            KpiKind::Cumulative => "cumulative",
        };
        let from: Vec<&str> = k.source_tables().iter().map(|t| t.name()).collect();
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            k.code,
            k.unit,
            kind,
            k.formula,
            k.meaning,
            from.join(", ")
        ));
    }
    s.push_str("\nActivity KPIs (training, inspections, drills, suggestions, equipment) exist at the group\nand site scopes: activities carry no zone. Hazard, incident and violation KPIs exist at\nevery scope. Values with a zero denominator are null, never zero. A KPI whose source table\n(*from*) the dataset does not provide is null too, and its row names the absent tables in\n`missing_tables`: a hazards-only dataset reports no incident count, not 0 fatalities.\n");
    s
}
