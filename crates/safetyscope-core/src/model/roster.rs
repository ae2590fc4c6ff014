//! The shift roster: who is on duty when, the denominator of exposure by
//! hour of the week.

use serde::{Deserialize, Serialize};

/// One shift of the roster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// Name (`day`, `night`, `A`, …).
    pub name: String,
    /// Local start time `HH:MM` (a multiple of 15 minutes).
    pub start: String,
    /// Local end time `HH:MM`; before the start means the shift crosses
    /// midnight and belongs to the day it started ("shift day").
    pub end: String,
    /// Relative headcount on duty (exposure weight), default 1.
    #[serde(default = "one")]
    pub headcount: f64,
}

fn one() -> f64 {
    1.0
}

/// The shift roster of a dataset (`[roster]` in the mapping file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// The shifts.
    pub shifts: Vec<Shift>,
    /// Relative exposure per weekday, Monday first.
    #[serde(default)]
    pub weekday_factors: Option<Vec<f64>>,
}

/// The default roster: day shift 08:00–20:00 and night shift 20:00–08:00.
pub fn default_shifts() -> Vec<Shift> {
    vec![
        Shift {
            name: "day".into(),
            start: "08:00".into(),
            end: "20:00".into(),
            headcount: 1.0,
        },
        Shift {
            name: "night".into(),
            start: "20:00".into(),
            end: "08:00".into(),
            headcount: 1.0,
        },
    ]
}

impl std::str::FromStr for Shift {
    type Err = crate::util::error::Error;

    /// A shift as `NAME=HH:MM-HH:MM` with an optional relative headcount
    /// `*0.5` (`night=20:00-08:00*0.5`).
    fn from_str(s: &str) -> Result<Shift, Self::Err> {
        let bad = || {
            crate::util::error::Error::option(
                "shift",
                format!("`{s}` is not NAME=HH:MM-HH:MM[*HEADCOUNT]"),
            )
        };
        let (name, rest) = s.split_once('=').ok_or_else(bad)?;
        let (times, headcount) = match rest.split_once('*') {
            Some((t, h)) => (t, h.trim().parse::<f64>().map_err(|_| bad())?),
            None => (rest, 1.0),
        };
        let (start, end) = times.split_once('-').ok_or_else(bad)?;
        Ok(Shift {
            name: name.trim().to_string(),
            start: start.trim().to_string(),
            end: end.trim().to_string(),
            headcount,
        })
    }
}
