//! The risk levels, the banding tables that assign them, the rule that
//! combines the static and dynamic level, and the risk map's options.

use serde::{Deserialize, Serialize};

use crate::model::options::RiskWeights;
use crate::model::options::RollUp;
use crate::util::error::{Error, Result};

/// Microseconds in a day.
pub(crate) const DAY_US: i64 = 86_400_000_000;

/// The four risk levels, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 低风险.
    Blue,
    /// 一般风险.
    Yellow,
    /// 较大风险.
    Orange,
    /// 重大风险.
    Red,
}

impl Level {
    /// Canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Blue => "blue",
            Level::Yellow => "yellow",
            Level::Orange => "orange",
            Level::Red => "red",
        }
    }

    /// Chinese name.
    pub fn zh(self) -> &'static str {
        match self {
            Level::Blue => "低风险",
            Level::Yellow => "一般风险",
            Level::Orange => "较大风险",
            Level::Red => "重大风险",
        }
    }

    /// Map colour.
    pub fn color(self) -> &'static str {
        match self {
            Level::Blue => "#2b6cb0",
            Level::Yellow => "#f6e05e",
            Level::Orange => "#ed8936",
            Level::Red => "#c53030",
        }
    }
}

/// A banding table: the first band whose threshold the value reaches gives
/// the level; values below every band are blue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BandTable {
    /// Name and version written beside every level it produces.
    pub name: String,
    /// (threshold, level), highest threshold first.
    pub bands: Vec<(f64, Level)>,
    /// Whether a value equal to a threshold belongs to the band above it
    /// (true: `value >= threshold`) or below it (false: `value > threshold`).
    pub boundary_above: bool,
}

impl BandTable {
    /// The LEC table of the domain brief: D > 320 red, 160–320 orange,
    /// 70–160 yellow, below 70 blue; a boundary value belongs to the band below.
    pub fn lec_default() -> BandTable {
        BandTable {
            name: "LEC D=L×E×C: >320 red, >160 orange, >70 yellow (v1)".into(),
            bands: vec![
                (320.0, Level::Red),
                (160.0, Level::Orange),
                (70.0, Level::Yellow),
            ],
            boundary_above: false,
        }
    }

    /// The LS matrix of the domain brief: R = L × S, 20–25 red, 15–16 orange,
    /// 9–12 yellow, 1–8 blue.
    pub fn ls_default() -> BandTable {
        BandTable {
            name: "LS R=L×S: ≥20 red, ≥15 orange, ≥9 yellow (v1)".into(),
            bands: vec![
                (20.0, Level::Red),
                (15.0, Level::Orange),
                (9.0, Level::Yellow),
            ],
            boundary_above: true,
        }
    }

    /// Dynamic bands on the ratio of a cell's smoothed rate to the mean.
    pub fn dynamic_default() -> BandTable {
        BandTable {
            name: "rate ratio: ≥3 red, ≥2 orange, ≥1.25 yellow (v1)".into(),
            bands: vec![
                (3.0, Level::Red),
                (2.0, Level::Orange),
                (1.25, Level::Yellow),
            ],
            boundary_above: true,
        }
    }

    /// The level of a value.
    pub fn level(&self, v: f64) -> Level {
        for (t, l) in &self.bands {
            if (self.boundary_above && v >= *t) || (!self.boundary_above && v > *t) {
                return *l;
            }
        }
        Level::Blue
    }

    pub(crate) fn check(&self, option: &str) -> Result<()> {
        if self.bands.windows(2).any(|w| w[0].0 < w[1].0)
            || self.bands.iter().any(|b| !b.0.is_finite())
        {
            return Err(Error::option(
                option,
                "bands must be finite thresholds, highest first",
            ));
        }
        Ok(())
    }
}

/// How the final level combines the two sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelRule {
    /// The higher of the static and the dynamic level (就高原则).
    Max,
    /// The static assessment only (dynamic where a cell has none).
    Static,
    /// The dynamic evidence only.
    Dynamic,
}

/// Options of `risk_map`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RiskOptions {
    /// Window start, local time, inclusive (default: 90 days before `to`).
    pub from: Option<String>,
    /// Window end, local time, exclusive (default: the day after the latest
    /// incident, hazard or violation).
    pub to: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Evidence weights.
    pub weights: RiskWeights,
    /// Exponential decay of event weights with this half-life in days,
    /// counted back from `to` (none by default).
    pub half_life_days: Option<f64>,
    /// Normalise by hours worked (per 1,000 h) where exposure is known.
    pub per_exposure: bool,
    /// Prior strength of the empirical-Bayes smoothing in hours (default:
    /// estimated from the data by the method of moments).
    pub prior_hours: Option<f64>,
    /// Static bands for LEC assessments.
    pub lec_bands: BandTable,
    /// Static bands for LS assessments.
    pub ls_bands: BandTable,
    /// Dynamic bands on the rate ratio.
    pub dynamic_bands: BandTable,
    /// How the final level is chosen.
    pub rule: LevelRule,
    /// Rows per cell, zone or site.
    pub by: RollUp,
    /// The alert configuration the alarm and intrusion evidence is found
    /// with: the options of `alerts` (authorised people, thresholds,
    /// hysteresis, gaps, minimum duration), so that the risk map and the
    /// alert list count the same episodes. Its `site`, `as_of` and `from`
    /// are ignored: the risk windows apply.
    pub alerts: crate::analysis::followup::options::AlertOptions,
}

impl Default for RiskOptions {
    fn default() -> Self {
        RiskOptions {
            from: None,
            to: None,
            site: None,
            weights: RiskWeights::default(),
            half_life_days: None,
            per_exposure: true,
            prior_hours: None,
            lec_bands: BandTable::lec_default(),
            ls_bands: BandTable::ls_default(),
            dynamic_bands: BandTable::dynamic_default(),
            rule: LevelRule::Max,
            by: RollUp::Cell,
            alerts: Default::default(),
        }
    }
}
