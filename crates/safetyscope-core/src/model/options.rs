//! Option types shared by several analyses: the event tables counted, the
//! roll-up of cells, and the severity weights of evidence.

use serde::{Deserialize, Serialize};

use crate::model::schema::TableKind;
use crate::util::error::{Error, Result};

/// Weights of the evidence components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RiskWeights {
    /// Per near miss.
    pub near_miss: f64,
    /// Per first-aid case.
    pub first_aid: f64,
    /// Per minor injury (轻伤).
    pub minor: f64,
    /// Per serious injury (重伤).
    pub serious: f64,
    /// Per fatality.
    pub fatal: f64,
    /// Per general hazard open at the end of the window.
    pub open_hazard_general: f64,
    /// Per major hazard open at the end of the window.
    pub open_hazard_major: f64,
    /// Per general hazard past its deadline, before the age factor.
    pub overdue_hazard_general: f64,
    /// Per major hazard past its deadline, before the age factor.
    pub overdue_hazard_major: f64,
    /// Overdue weights grow by this fraction per day overdue…
    pub overdue_growth_per_day: f64,
    /// …up to this multiple.
    pub overdue_cap: f64,
    /// Per violation.
    pub violation: f64,
    /// Per sensor alarm episode starting in the window (the sensor's cell).
    pub alarm_episode: f64,
    /// Per fence intrusion (entry into a restricted cell) in the window.
    pub intrusion: f64,
}

impl Default for RiskWeights {
    fn default() -> Self {
        RiskWeights {
            near_miss: 1.0,
            first_aid: 2.0,
            minor: 5.0,
            serious: 15.0,
            fatal: 40.0,
            open_hazard_general: 1.0,
            open_hazard_major: 4.0,
            overdue_hazard_general: 2.0,
            overdue_hazard_major: 8.0,
            overdue_growth_per_day: 1.0 / 7.0,
            overdue_cap: 3.0,
            violation: 0.5,
            alarm_episode: 2.0,
            intrusion: 1.0,
        }
    }
}

/// Roll-up of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollUp {
    /// One row per cell.
    Cell,
    /// One row per zone.
    Zone,
    /// One row per site.
    Site,
}

/// Event tables a heat map can count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Incidents and near misses.
    Incidents,
    /// Hazard reports.
    Hazards,
    /// Violations.
    Violations,
}

impl EventKind {
    pub(crate) fn table(self) -> TableKind {
        match self {
            EventKind::Incidents => TableKind::Incidents,
            EventKind::Hazards => TableKind::Hazards,
            EventKind::Violations => TableKind::Violations,
        }
    }

    /// Parse a kind name.
    pub fn parse(s: &str) -> Result<EventKind> {
        match s.trim() {
            "incidents" | "incident" => Ok(EventKind::Incidents),
            "hazards" | "hazard" => Ok(EventKind::Hazards),
            "violations" | "violation" => Ok(EventKind::Violations),
            other => Err(Error::option(
                "kinds",
                format!("unknown event kind `{other}` (incidents, hazards, violations)"),
            )),
        }
    }
}

/// Length of a time slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Slice {
    /// Calendar weeks starting Monday (local time).
    Week,
    /// Calendar months (local time).
    Month,
}
