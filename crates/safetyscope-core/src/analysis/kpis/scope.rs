//! Where and over which period a KPI is measured, and the value measured.

use chrono::{Datelike, NaiveDate};

use crate::util::error::{Error, Result};

/// Where a KPI is measured.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope {
    /// Site, or none for the group.
    pub site: Option<String>,
    /// Zone within the site.
    pub zone: Option<String>,
}

impl Scope {
    /// Parse `group`, `SITE` or `SITE/ZONE`.
    pub fn parse(s: &str) -> Scope {
        let s = s.trim();
        if s.eq_ignore_ascii_case("group") || s.is_empty() {
            return Scope {
                site: None,
                zone: None,
            };
        }
        match s.split_once('/') {
            Some((a, b)) => Scope {
                site: Some(a.to_string()),
                zone: Some(b.to_string()),
            },
            None => Scope {
                site: Some(s.to_string()),
                zone: None,
            },
        }
    }

    /// `group`, `SITE` or `SITE/ZONE`.
    pub fn label(&self) -> String {
        match (&self.site, &self.zone) {
            (None, _) => "group".into(),
            (Some(s), None) => s.clone(),
            (Some(s), Some(z)) => format!("{s}/{z}"),
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match (&self.site, &self.zone) {
            (None, _) => "group",
            (Some(_), None) => "site",
            _ => "zone",
        }
    }
}

/// A local calendar period.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// `2025`, `2025-Q1` or `2025-03`.
    pub label: String,
    /// `year`, `quarter` or `month`.
    pub kind: &'static str,
    /// First local day.
    pub first: NaiveDate,
    /// First local day after the period.
    pub next: NaiveDate,
}

impl Period {
    /// Parse a period label.
    pub fn parse(s: &str) -> Result<Period> {
        let bad = || {
            Error::option(
                "period",
                format!("`{s}` is not a period (2025, 2025-Q1 or 2025-03)"),
            )
        };
        let s = s.trim();
        let (kind, y, m0, months) = if let Some((y, q)) = s.split_once("-Q") {
            let q: u32 = q.parse().map_err(|_| bad())?;
            if !(1..=4).contains(&q) {
                return Err(bad());
            }
            ("quarter", y, (q - 1) * 3, 3)
        } else if let Some((y, m)) = s.split_once('-') {
            let m: u32 = m.parse().map_err(|_| bad())?;
            if !(1..=12).contains(&m) {
                return Err(bad());
            }
            ("month", y, m - 1, 1)
        } else {
            ("year", s, 0, 12)
        };
        let y: i32 = y.parse().map_err(|_| bad())?;
        let first = NaiveDate::from_ymd_opt(y, m0 + 1, 1).ok_or_else(bad)?;
        let next = first
            .checked_add_months(chrono::Months::new(months))
            .ok_or_else(bad)?;
        Ok(Period {
            label: s.to_string(),
            kind,
            first,
            next,
        })
    }

    pub(crate) fn months(&self) -> f64 {
        let a = self.first.year() * 12 + self.first.month0() as i32;
        let b = self.next.year() * 12 + self.next.month0() as i32;
        f64::from(b - a)
    }

    /// The same period one year earlier.
    pub(crate) fn year_before(&self) -> Period {
        let shift = |d: NaiveDate| d.checked_sub_months(chrono::Months::new(12)).unwrap_or(d);
        let label = match self.kind {
            "year" => format!("{}", self.first.year() - 1),
            "quarter" => format!("{}-Q{}", self.first.year() - 1, self.first.month0() / 3 + 1),
            _ => format!("{}-{:02}", self.first.year() - 1, self.first.month()),
        };
        Period {
            label,
            kind: self.kind,
            first: shift(self.first),
            next: shift(self.next),
        }
    }
}

/// Value of one KPI with its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measure {
    /// The value (null when undefined, e.g. a zero denominator).
    pub value: Option<f64>,
    /// Numerator, where the KPI is a ratio.
    pub numerator: Option<f64>,
    /// Denominator, where the KPI is a ratio.
    pub denominator: Option<f64>,
}
