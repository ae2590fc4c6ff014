//! The rows of every table of the sample: incidents, hazards, violations,
//! thresholds, readings, positions, exposure, activities and targets, with
//! the patterns planted in them.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

use super::*;
use crate::model::schema::TableKind;
use crate::util::error::Result;
use crate::util::rng::{Rng, cumulative};

pub(crate) fn days_of(year: i32) -> impl Iterator<Item = NaiveDate> {
    let start = NaiveDate::from_ymd_opt(year, 1, 1).expect("valid year");
    let end = NaiveDate::from_ymd_opt(year + 1, 1, 1).expect("valid year");
    start.iter_days().take_while(move |d| *d < end)
}

pub(crate) fn day_factor(d: NaiveDate) -> f64 {
    let week = match d.weekday() {
        Weekday::Sat => 0.8,
        Weekday::Sun => 0.6,
        _ => 1.0,
    };
    let season = match d.month() {
        7 | 8 => 1.3,
        12 | 1 => 1.15,
        _ => 1.0,
    };
    week * season
}

pub(crate) fn hour_weights(g: &Gen<'_>, weekday: u32) -> Vec<f64> {
    (0..24u32)
        .map(|h| {
            let mut w = headcount_factor(h);
            if g.truth.high_risk_hours.contains(&h)
                || g.truth.high_risk_weekday_hours.contains(&(weekday, h))
            {
                w *= g.truth.hour_factor;
            }
            w
        })
        .collect()
}

pub(crate) fn pick_weighted<'a>(rng: &mut Rng, items: &'a [(&'a str, f64)]) -> &'a str {
    let total: f64 = items.iter().map(|i| i.1).sum();
    let mut x = rng.f64() * total;
    for (name, w) in items {
        if x < *w {
            return name;
        }
        x -= w;
    }
    items.last().map_or("", |i| i.0)
}

pub(crate) fn point_in(rng: &mut Rng, cell: usize) -> (f64, f64) {
    let (row, col) = (cell / 6, cell % 6);
    (
        (col as f64 + 0.05 + 0.9 * rng.f64()) * 10.0,
        (row as f64 + 0.05 + 0.9 * rng.f64()) * 10.0,
    )
}

pub(crate) fn at(d: NaiveDate, hour: u32, rng: &mut Rng) -> NaiveDateTime {
    d.and_time(
        NaiveTime::from_hms_opt(hour, rng.below(60) as u32, rng.below(60) as u32)
            .expect("valid time"),
    )
}

/// The near misses and injuries of a unit over both years. Near misses
/// fall on the cells by their weight and monthly swing; a cell's injuries
/// in a month are its weight times the planted leading-indicator factor of
/// its near misses (and, in the main year, violations) of the month before:
/// (1 + near misses)^ln 1.5 × (1 + violations)^ln 1.3, scaled by constants
/// that keep the levels near the cell's weight. `camera`: violations per
/// month (24, from the January before) and cell.
pub(crate) fn incidents(g: &mut Gen<'_>, p: &SitePlan, camera: &[Vec<f64>]) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("incidents-{}", p.id));
    // ~1,550 events per unit and year at scale 1, the previous year 25 % more.
    let per_day = 1550.0 / 365.0 * g.o.scale;
    let near_share = SEVERITY_SHARES[0].1;
    let injury_shares = &SEVERITY_SHARES[1..];
    let hw: Vec<Vec<f64>> = (0..7).map(|wd| cumulative(&hour_weights(g, wd))).collect();
    let total: f64 = p.weights.iter().sum();
    let ratio = |name: &str| {
        LEADING_RATE_RATIOS
            .iter()
            .find(|l| l.0 == name)
            .map_or(0.0, |l| l.1.ln())
    };
    let (b_near, b_camera) = (ratio("near_misses"), ratio("violations"));
    // A cell's usual month of near misses and of violations.
    let usual_near: Vec<f64> = p
        .weights
        .iter()
        .map(|w| per_day * 365.0 / 12.0 * near_share * w / total)
        .collect();
    let usual_camera: Vec<f64> = p
        .weights
        .iter()
        .map(|w| VIOLATIONS_PER_YEAR / 12.0 * g.o.scale * w / total)
        .collect();
    // One constant for the months with violations, so that the camera
    // factor changes no cell's level on average.
    let camera_scale = p
        .weights
        .iter()
        .zip(&usual_camera)
        .map(|(w, v)| w * (1.0 + v).powf(b_camera))
        .sum::<f64>()
        / total;
    let mut near = vec![vec![0.0; 36]; 24];
    let mut month = usize::MAX;
    let (mut near_cum, mut near_mass) = (vec![], 0.0);
    let (mut injury_cum, mut injury_mass) = (vec![], 0.0);
    let mut n = 0u64;
    for (y, (year, factor)) in [(g.o.year - 1, 1.25), (g.o.year, 1.0)]
        .into_iter()
        .enumerate()
    {
        for d in days_of(year) {
            let m = y * 12 + d.month0() as usize;
            if m != month {
                month = m;
                let base = match (&p.month_weights, y == 1) {
                    (Some(months), true) => &months[d.month0() as usize],
                    _ => &p.weights,
                };
                let w: Vec<f64> = base.iter().zip(&p.swing[m]).map(|(a, b)| a * b).collect();
                near_mass = w.iter().sum::<f64>() / total;
                near_cum = cumulative(&w);
                let w: Vec<f64> = (0..36)
                    .map(|c| {
                        let mut lead = 1.0;
                        if m >= 1 {
                            lead *= ((1.0 + near[m - 1][c]) / (1.0 + usual_near[c])).powf(b_near);
                        }
                        // Violations are recorded in the main year only.
                        if m >= 13 {
                            lead *= (1.0 + camera[m - 1][c]).powf(b_camera) / camera_scale;
                        }
                        p.weights[c] * lead
                    })
                    .collect();
                injury_mass = w.iter().sum::<f64>() / total;
                injury_cum = cumulative(&w);
            }
            let wd = d.weekday().num_days_from_monday() as usize;
            let rate = per_day * factor * day_factor(d);
            let near_count = rng.poisson(rate * near_share * near_mass);
            for _ in 0..near_count {
                n += 1;
                let cell = rng.pick_cumulative(&near_cum);
                near[m][cell] += 1.0;
                incident(g, p, &mut rng, n, d, &hw[wd], cell, "near_miss")?;
            }
            let injury_count = rng.poisson(rate * (1.0 - near_share) * injury_mass);
            for _ in 0..injury_count {
                n += 1;
                let cell = rng.pick_cumulative(&injury_cum);
                let sev = pick_weighted(&mut rng, injury_shares);
                incident(g, p, &mut rng, n, d, &hw[wd], cell, sev)?;
            }
        }
    }
    Ok(())
}

/// Write the `n`-th incident of a unit: in `cell` on day `d`, its hour by
/// the weights `hours` (cumulative), of severity `sev`.
#[allow(clippy::too_many_arguments)]
fn incident(
    g: &mut Gen<'_>,
    p: &SitePlan,
    rng: &mut Rng,
    n: u64,
    d: NaiveDate,
    hours: &[f64],
    cell: usize,
    sev: &str,
) -> Result<()> {
    let hour = rng.pick_cumulative(hours) as u32;
    let (x, y) = point_in(rng, cell);
    let t = at(d, hour, rng);
    let time_known = !rng.chance(0.01);
    let t = if time_known {
        t
    } else {
        d.and_time(NaiveTime::MIN)
    };
    let until = if time_known && rng.chance(0.03) {
        Some(t + Duration::minutes(60 * (2 + rng.below(7) as i64)))
    } else {
        None
    };
    let lost = match sev {
        "near_miss" => None,
        "first_aid" => Some(0),
        // Most recordable minor injuries need medical treatment
        // or restricted work but no lost day.
        "minor" if rng.chance(0.9) => Some(0),
        "minor" => Some(1 + (rng.f64().powi(2) * 29.0) as i32),
        "serious" => Some(105 + rng.below(300) as i32),
        _ => Some(6000),
    };
    let contractor = rng.chance(0.25);
    let person = if sev == "near_miss" {
        None
    } else {
        Some(p.persons[rng.below(p.persons.len())].clone())
    };
    let id = format!("{}-I{:07}", p.id, n);
    let cell_name = cell_id(&p.id, cell / 6, cell % 6);
    let row = [
        V::S(&id),
        V::T(g.ts(t)),
        until.map_or(V::N, |u| V::T(g.ts(u))),
        V::B(time_known),
        V::S(&p.id),
        V::S(zone_of(cell / 6)),
        V::S(&cell_name),
        V::F(x),
        V::F(y),
        V::S(pick_weighted(rng, CATEGORIES)),
        V::S(sev),
        lost.map_or(V::N, V::I),
        V::N,
        V::B(contractor),
        person.as_deref().map_or(V::N, V::S),
    ];
    g.emit(TableKind::Incidents, &row)
}

pub(crate) fn hazards(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("hazards-{}", p.id));
    let per_day = 800.0 / 365.0 * g.o.scale;
    let year_end = NaiveDate::from_ymd_opt(g.o.year, 12, 31)
        .expect("date")
        .and_hms_opt(23, 59, 59)
        .expect("time");
    let mut n = 0u64;
    for d in days_of(g.o.year) {
        let count = rng.poisson(per_day * day_factor(d));
        for _ in 0..count {
            n += 1;
            let hour = 8 + rng.below(12) as u32;
            let t = at(d, hour, &mut rng);
            let cell = rng.pick_cumulative(&p.cell_cum);
            let (x, y) = point_in(&mut rng, cell);
            let major = rng.chance(0.05);
            let due = t + Duration::hours(if major { 168 } else { 72 });
            // Rectification cycle: log-normal, median 40 h, a tenth late.
            let cycle_h =
                (40.0f64.ln() + 0.7 * rng.normal()).exp() * if rng.chance(0.1) { 2.5 } else { 1.0 };
            let closed = t + Duration::minutes((cycle_h * 60.0) as i64);
            let still_open = closed > year_end || rng.chance(0.02);
            let verified = closed + Duration::minutes(120 + rng.below(22 * 60) as i64);
            let id = format!("{}-H{:07}", p.id, n);
            let cell_name = cell_id(&p.id, cell / 6, cell % 6);
            let reporter = p.persons[rng.below(p.persons.len())].clone();
            let owner = p.persons[rng.below(p.persons.len())].clone();
            let category = [
                "housekeeping",
                "electrical",
                "machine guarding",
                "fire safety",
                "ppe",
                "storage",
            ][rng.below(6)];
            let source = ["patrol", "photo", "inspection"][rng.below(3)];
            let row = [
                V::S(&id),
                V::T(g.ts(t)),
                V::B(true),
                V::S(&p.id),
                V::S(zone_of(cell / 6)),
                V::S(&cell_name),
                V::F(x),
                V::F(y),
                V::S(category),
                V::S(if major { "major" } else { "general" }),
                V::S(&reporter),
                V::S(&owner),
                V::T(g.ts(due)),
                if still_open { V::N } else { V::T(g.ts(closed)) },
                if still_open || verified > year_end {
                    V::N
                } else {
                    V::T(g.ts(verified))
                },
                V::S(source),
            ];
            g.emit(TableKind::Hazards, &row)?;
        }
    }
    Ok(())
}

/// The camera detections of a unit in the main year (written when `emit`),
/// their cells by weight and monthly swing; returns the count per month
/// (24, from the January before) and cell.
pub(crate) fn violations(g: &mut Gen<'_>, p: &SitePlan, emit: bool) -> Result<Vec<Vec<f64>>> {
    let mut rng = Rng::new(g.o.seed, &format!("violations-{}", p.id));
    let per_day = VIOLATIONS_PER_YEAR / 365.0 * g.o.scale;
    let mut counts = vec![vec![0.0; 36]; 24];
    let mut month = usize::MAX;
    let mut cell_cum = vec![];
    let hw = cumulative(&(0..24).map(headcount_factor).collect::<Vec<_>>());
    // The planted repeat violator: no helmet on 4 consecutive days in March.
    let repeat_person = p.persons[0].clone();
    let first = NaiveDate::from_ymd_opt(g.o.year, 3, 10).expect("date");
    g.truth
        .repeat_violators
        .push((p.id.clone(), repeat_person.clone(), first.to_string(), 4));
    let mut n = 0u64;
    for d in days_of(g.o.year) {
        let m = 12 + d.month0() as usize;
        if m != month {
            month = m;
            let w: Vec<f64> = p
                .weights
                .iter()
                .zip(&p.swing[m])
                .map(|(a, b)| a * b)
                .collect();
            cell_cum = cumulative(&w);
        }
        let count = rng.poisson(per_day * day_factor(d));
        let planted = d >= first && d < first + Duration::days(4);
        for k in 0..count + u64::from(planted) {
            n += 1;
            let is_planted = planted && k == count;
            let hour = rng.pick_cumulative(&hw) as u32;
            let t = at(d, hour, &mut rng);
            let cell = rng.pick_cumulative(&cell_cum);
            counts[m][cell] += 1.0;
            let (x, y) = point_in(&mut rng, cell);
            let kind = if is_planted {
                "no_helmet"
            } else {
                pick_weighted(&mut rng, VIOLATION_KINDS)
            };
            // Ordinary detections identify someone outside the planted person.
            let person = if is_planted {
                Some(repeat_person.clone())
            } else if rng.chance(0.7) {
                Some(p.persons[1 + rng.below(p.persons.len().saturating_sub(1).max(1))].clone())
            } else {
                None
            };
            let id = format!("{}-V{:07}", p.id, n);
            let cell_name = cell_id(&p.id, cell / 6, cell % 6);
            let camera = format!("{}-CAM{:02}", p.id, cell / 3 + 1);
            let row = [
                V::S(&id),
                V::T(g.ts(t)),
                V::S(&p.id),
                V::S(zone_of(cell / 6)),
                V::S(&cell_name),
                V::F(x),
                V::F(y),
                V::S(kind),
                person.as_deref().map_or(V::N, V::S),
                V::S(&camera),
                V::F(((0.6 + 0.39 * rng.f64()) * 100.0).round() / 100.0),
            ];
            if emit {
                g.emit(TableKind::Violations, &row)?;
            }
        }
    }
    Ok(counts)
}

pub(crate) fn thresholds(g: &mut Gen<'_>) -> Result<()> {
    for (metric, warn, alarm, unit) in [
        ("h2s", 10.0, 20.0, "ppm"),
        ("vibration", 7.1, 11.2, "mm/s"),
        ("temperature", 40.0, 50.0, "°C"),
    ] {
        g.emit(
            TableKind::Thresholds,
            &[V::S(metric), V::F(warn), V::F(alarm), V::S(unit)],
        )?;
    }
    Ok(())
}

pub(crate) fn readings(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("readings-{}", p.id));
    let n_sensors = (2.0 * g.o.scale).ceil().max(1.0) as usize;
    for s in 0..n_sensors {
        let (metric, base, spike) = if s % 2 == 0 {
            ("h2s", 3.0, 26.0)
        } else {
            ("vibration", 3.5, 13.0)
        };
        let cell = if s % 2 == 0 { 30 + s % 6 } else { s % 12 };
        let sensor = format!("{}-S{:02}", p.id, s + 1);
        let cell_name = cell_id(&p.id, cell / 6, cell % 6);
        let mut episode_left = 0u32;
        for d in days_of(g.o.year) {
            for h in 0..24u32 {
                if episode_left == 0 && rng.chance(1.0 / (30.0 * 24.0)) {
                    episode_left = 2 + rng.below(5) as u32;
                    g.truth.alarm_episodes += 1;
                }
                let value = if episode_left > 0 {
                    episode_left -= 1;
                    spike * (1.0 + 0.1 * rng.f64())
                } else {
                    (base * (1.0 + 0.25 * rng.normal())).max(0.0)
                };
                let t = d.and_time(NaiveTime::from_hms_opt(h, 0, 0).expect("time"));
                let row = [
                    V::S(&sensor),
                    V::T(g.ts(t)),
                    V::S(&p.id),
                    V::S(zone_of(cell / 6)),
                    V::S(&cell_name),
                    V::S(metric),
                    V::F((value * 100.0).round() / 100.0),
                ];
                g.emit(TableKind::Readings, &row)?;
            }
        }
    }
    Ok(())
}

pub(crate) fn positions(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("positions-{}", p.id));
    let tracked = ((10.0 * g.o.scale).ceil() as usize)
        .min(p.persons.len())
        .max(1);
    let last = NaiveDate::from_ymd_opt(g.o.year, 12, 31).expect("date");
    let first = last - Duration::days(27);
    // The sample covers one year: the last night shift's fixes stop at
    // midnight, so that "now" defaults to the first day of the next year.
    let year_end = (last + Duration::days(1)).and_time(NaiveTime::MIN);
    for who in 0..tracked {
        let person = &p.persons[who];
        let night = who % 3 == 2;
        let mut cell = rng.below(36);
        for d in first.iter_days().take_while(|d| *d <= last) {
            let start = d
                .and_time(NaiveTime::from_hms_opt(if night { 20 } else { 8 }, 0, 0).expect("time"));
            for k in 0..144 {
                // A random walk over neighbouring cells; restricted cells are
                // entered only now and then (fence intrusions).
                if rng.chance(0.2) {
                    let (r, c) = ((cell / 6) as i64, (cell % 6) as i64);
                    let nr = (r + rng.below(3) as i64 - 1).clamp(0, 5);
                    let nc = (c + rng.below(3) as i64 - 1).clamp(0, 5);
                    let next = (nr * 6 + nc) as usize;
                    if !p.restricted.contains(&next) || rng.chance(0.05) {
                        cell = next;
                    }
                }
                let (x, y) = point_in(&mut rng, cell);
                let t = start + Duration::minutes(5 * k);
                if t >= year_end {
                    break;
                }
                g.emit(
                    TableKind::Positions,
                    &[V::S(person), V::T(g.ts(t)), V::S(&p.id), V::F(x), V::F(y)],
                )?;
            }
        }
    }
    Ok(())
}

pub(crate) fn exposure_and_activities(g: &mut Gen<'_>, p: &SitePlan) -> Result<()> {
    let mut rng = Rng::new(g.o.seed, &format!("activities-{}", p.id));
    let heads = p.persons.len() as f64;
    for year in [g.o.year - 1, g.o.year] {
        for m in 1..=12u32 {
            let start = NaiveDate::from_ymd_opt(year, m, 1).expect("date");
            let end = if m == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(year, m + 1, 1)
            }
            .expect("date");
            let days = (end - start).num_days() as f64;
            for (zi, zone) in ZONES.iter().enumerate() {
                let share = [0.4, 0.35, 0.25][zi];
                let hc = (heads * share).round();
                // Five working days of eight hours a week: about 2,090 h a
                // person and year.
                let hours = (hc * days * 8.0 * 5.0 / 7.0 * (0.95 + 0.1 * rng.f64())).round();
                g.emit(
                    TableKind::Exposure,
                    &[
                        V::S(&p.id),
                        V::S(zone),
                        V::T(g.ts(start.and_time(NaiveTime::MIN))),
                        V::T(g.ts(end.and_time(NaiveTime::MIN))),
                        V::F(hours),
                        V::I(hc as i32),
                    ],
                )?;
            }
        }
    }
    let leaders: Vec<String> = (0..2).map(|i| format!("{}-L{}", p.id, i + 1)).collect();
    for d in days_of(g.o.year) {
        let t = |h: u32, rng: &mut Rng| at(d, h, rng);
        // Leader inspections: about 6 a month per leader.
        for l in &leaders {
            if rng.chance(6.0 / 30.4) {
                let ts = g.ts(t(10, &mut rng));
                g.emit(
                    TableKind::Activities,
                    &[V::S("inspection"), V::T(ts), V::S(&p.id), V::S(l), V::N],
                )?;
            }
        }
        // Training: everyone once a quarter, spread over working days.
        for person in &p.persons {
            if d.weekday().num_days_from_monday() < 5 && rng.chance(1.0 / 65.0) {
                let ts = g.ts(t(14, &mut rng));
                g.emit(
                    TableKind::Activities,
                    &[
                        V::S("training"),
                        V::T(ts),
                        V::S(&p.id),
                        V::S(person),
                        V::F(2.0),
                    ],
                )?;
            }
        }
        // Suggestions: about 5 a month per unit.
        for _ in 0..rng.poisson(5.0 / 30.4 * g.o.scale) {
            let who = p.persons[rng.below(p.persons.len())].clone();
            let ts = g.ts(t(11, &mut rng));
            g.emit(
                TableKind::Activities,
                &[V::S("suggestion"), V::T(ts), V::S(&p.id), V::S(&who), V::N],
            )?;
        }
        // Drills on the 15th of the last month of each quarter.
        if d.day() == 15 && d.month() % 3 == 0 {
            let minutes = (12.0 + 2.5 * rng.normal()).max(5.0);
            let ts = g.ts(t(15, &mut rng));
            g.emit(
                TableKind::Activities,
                &[
                    V::S("drill"),
                    V::T(ts),
                    V::S(&p.id),
                    V::N,
                    V::F((minutes * 10.0).round() / 10.0),
                ],
            )?;
        }
        // Emergency equipment checks every Monday, 20 items.
        if d.weekday() == Weekday::Mon {
            for _ in 0..20 {
                let ready = if rng.chance(0.985) { 1.0 } else { 0.0 };
                let ts = g.ts(t(9, &mut rng));
                g.emit(
                    TableKind::Activities,
                    &[
                        V::S("equipment_check"),
                        V::T(ts),
                        V::S(&p.id),
                        V::N,
                        V::F(ready),
                    ],
                )?;
            }
        }
    }
    Ok(())
}

pub(crate) fn targets(g: &mut Gen<'_>) -> Result<()> {
    let y = g.o.year;
    let prev = format!("-20% vs {}", y - 1);
    let rows: Vec<(String, String, f64, &str, Option<&str>)> = vec![
        (
            "trir".into(),
            y.to_string(),
            0.0,
            "at_most",
            Some(prev.as_str()),
        ),
        ("fatalities".into(), y.to_string(), 0.0, "at_most", None),
        (
            "rectification_rate".into(),
            y.to_string(),
            1.0,
            "at_least",
            None,
        ),
        (
            "rectification_cycle_hours".into(),
            y.to_string(),
            48.0,
            "at_most",
            Some("72"),
        ),
        (
            "training_coverage".into(),
            y.to_string(),
            1.0,
            "at_least",
            None,
        ),
        (
            "drill_response_minutes".into(),
            y.to_string(),
            15.0,
            "at_most",
            None,
        ),
        (
            "leader_inspections_per_month".into(),
            y.to_string(),
            5.0,
            "at_least",
            None,
        ),
        (
            "suggestions_per_month".into(),
            y.to_string(),
            50.0,
            "at_least",
            None,
        ),
        (
            "equipment_readiness".into(),
            y.to_string(),
            0.98,
            "at_least",
            None,
        ),
    ];
    for (kpi, period, target, dir, baseline) in &rows {
        g.emit(
            TableKind::Targets,
            &[
                V::S(kpi),
                V::S("group"),
                V::S(period),
                V::F(*target),
                V::S(dir),
                baseline.map_or(V::N, V::S),
            ],
        )?;
    }
    for q in 1..=4 {
        let period = format!("{y}-Q{q}");
        g.emit(
            TableKind::Targets,
            &[
                V::S("trir"),
                V::S("group"),
                V::S(&period),
                V::F(0.0),
                V::S("at_most"),
                V::S(&prev),
            ],
        )?;
    }
    Ok(())
}
