//! Options of the follow-up lists: the escalation ladder of overdue
//! hazards, the safety points rules and the alert options.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::util::error::{Error, Result};

pub(crate) const MINUTE: i64 = 60_000_000;
pub(crate) const HOUR: f64 = 3_600_000_000.0;

/// One step of an escalation ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Hours after the deadline the step is reached.
    pub after_hours: f64,
    /// Who is alerted: `owner`, `supervisor`, `leadership`, …
    pub level: String,
}

/// Escalation ladders for general and major hazards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Ladder {
    /// General hazards (default: owner at the deadline, supervisor 24 h
    /// later, leadership 72 h later).
    pub general: Vec<Step>,
    /// Major hazards (default: owner at the deadline, supervisor 8 h later,
    /// leadership 24 h later).
    pub major: Vec<Step>,
}

pub(crate) fn step(after_hours: f64, level: &str) -> Step {
    Step {
        after_hours,
        level: level.into(),
    }
}

impl Default for Ladder {
    fn default() -> Self {
        Ladder {
            general: vec![
                step(0.0, "owner"),
                step(24.0, "supervisor"),
                step(72.0, "leadership"),
            ],
            major: vec![
                step(0.0, "owner"),
                step(8.0, "supervisor"),
                step(24.0, "leadership"),
            ],
        }
    }
}

/// Rewards and penalties of the safety points ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PointsRules {
    /// Points every person starts the year with.
    pub base: f64,
    /// Reward per general hazard reported.
    pub hazard_general: f64,
    /// Reward per major hazard reported.
    pub hazard_major: f64,
    /// Penalty per violation by kind.
    pub violation: BTreeMap<String, f64>,
    /// Penalty for kinds not listed.
    pub violation_default: f64,
    /// People whose annual total falls below this are flagged.
    pub floor: f64,
}

impl Default for PointsRules {
    fn default() -> Self {
        PointsRules {
            base: 100.0,
            hazard_general: 2.0,
            hazard_major: 10.0,
            violation: [
                ("no_helmet", 5.0),
                ("no_vest", 3.0),
                ("phone", 3.0),
                ("no_harness", 10.0),
                ("smoking", 10.0),
                ("intrusion", 10.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            violation_default: 5.0,
            floor: 60.0,
        }
    }
}

/// Options of the follow-up analyses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AlertOptions {
    /// The local date or time "now" (default: the day after the latest
    /// event, hazard, reading or position).
    pub as_of: Option<String>,
    /// Start of the history searched for repeat violations, intrusions and
    /// alarm episodes (default: 30 days before `as_of`).
    pub from: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Escalation ladders of overdue hazards.
    pub ladder: Ladder,
    /// Consecutive days that make a repeat violator.
    pub repeat_days: u32,
    /// Violation kinds considered for repeats (default: all).
    pub repeat_kinds: Vec<String>,
    /// People allowed inside restricted cells.
    pub authorised: Vec<String>,
    /// Longest gap between position fixes inside one intrusion (minutes).
    pub max_gap_minutes: f64,
    /// Alarm thresholds per metric overriding the thresholds table.
    pub thresholds: BTreeMap<String, f64>,
    /// An alarm episode ends when the value falls below alarm − hysteresis.
    pub hysteresis: f64,
    /// Episodes shorter than this (minutes) are dropped.
    pub min_duration_minutes: f64,
    /// Longest gap between readings inside one episode (minutes).
    pub reading_gap_minutes: f64,
    /// The points ledger.
    pub points: PointsRules,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions {
            as_of: None,
            from: None,
            site: None,
            ladder: Ladder::default(),
            repeat_days: 3,
            repeat_kinds: vec![],
            authorised: vec![],
            max_gap_minutes: 10.0,
            thresholds: BTreeMap::new(),
            hysteresis: 0.0,
            min_duration_minutes: 0.0,
            reading_gap_minutes: 120.0,
            points: PointsRules::default(),
        }
    }
}

impl AlertOptions {
    pub(crate) fn check(&self) -> Result<()> {
        if self.repeat_days < 2 {
            return Err(Error::option("repeat_days", "at least 2"));
        }
        for (name, v) in [
            ("max_gap_minutes", self.max_gap_minutes),
            ("reading_gap_minutes", self.reading_gap_minutes),
            ("min_duration_minutes", self.min_duration_minutes),
            ("hysteresis", self.hysteresis),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::option(name, format!("must be ≥ 0, got {v}")));
            }
        }
        for (name, l) in [
            ("ladder.general", &self.ladder.general),
            ("ladder.major", &self.ladder.major),
        ] {
            if l.is_empty() || l.windows(2).any(|w| w[1].after_hours < w[0].after_hours) {
                return Err(Error::option(
                    name,
                    "at least one step, in increasing after_hours",
                ));
            }
        }
        Ok(())
    }
}
