//! The hour × weekday profile, the peak tests, shift profiles and events
//! by shift.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{NaiveTime, Timelike};
use datafusion::logical_expr::col;

use crate::analysis::temporal::exposure::*;
use crate::analysis::temporal::options::*;
use crate::analysis::temporal::select::*;
use crate::model::time::{local_to_micros, micros_to_local, parse_tz};
use crate::session::dataset::Dataset;
use crate::util::columns::col_as;
use crate::util::columns::str_col;
use crate::util::error::{Error, Result};

/// Group keys sorted with their original index, nulls last.
pub(crate) fn sorted_groups(b: &Binned) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..b.groups.len()).collect();
    idx.sort_by(|&x, &y| {
        let (a, c) = (&b.groups[x], &b.groups[y]);
        a.iter()
            .zip(c)
            .map(|(p, q)| match (p, q) {
                (Some(p), Some(q)) => p.cmp(q),
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    idx
}

/// Builds a result batch column by column.
#[derive(Default)]
pub(crate) struct Columns {
    pub(crate) fields: Vec<Field>,
    pub(crate) arrays: Vec<ArrayRef>,
}

impl Columns {
    pub(crate) fn text(&mut self, name: &str, v: Vec<Option<String>>) {
        self.fields.push(Field::new(name, DataType::Utf8, true));
        self.arrays.push(Arc::new(StringArray::from(v)));
    }
    pub(crate) fn int(&mut self, name: &str, v: Vec<Option<i32>>) {
        self.fields.push(Field::new(name, DataType::Int32, true));
        self.arrays.push(Arc::new(Int32Array::from(v)));
    }
    pub(crate) fn float(&mut self, name: &str, v: Vec<Option<f64>>) {
        self.fields.push(Field::new(name, DataType::Float64, true));
        self.arrays.push(Arc::new(Float64Array::from(v)));
    }
    pub(crate) fn int64(&mut self, name: &str, v: Vec<Option<i64>>) {
        self.fields.push(Field::new(name, DataType::Int64, true));
        self.arrays.push(Arc::new(Int64Array::from(v)));
    }
    pub(crate) fn boolean(&mut self, name: &str, v: Vec<Option<bool>>) {
        self.fields.push(Field::new(name, DataType::Boolean, true));
        self.arrays.push(Arc::new(BooleanArray::from(v)));
    }
    pub(crate) fn dims(&mut self, o: &PatternOptions, keys: &[&Vec<Option<String>>]) {
        for (k, d) in o.by.iter().enumerate() {
            self.text(d.name(), keys.iter().map(|key| key[k].clone()).collect());
        }
    }
    pub(crate) fn finish(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(self.fields)),
            self.arrays,
        )?)
    }
}

/// Per group: events and weighted events per hour of the week, plus events
/// whose time of day is unknown per weekday.
pub(crate) struct Grids {
    pub(crate) events: Vec<[f64; 168]>,
    pub(crate) weighted: Vec<[f64; 168]>,
    pub(crate) unknown: Vec<[f64; 7]>,
    pub(crate) unknown_w: Vec<[f64; 7]>,
}

pub(crate) fn grids(b: &Binned, clock: &mut Clock) -> Grids {
    let n = b.groups.len();
    let mut g = Grids {
        events: vec![[0.0; 168]; n],
        weighted: vec![[0.0; 168]; n],
        unknown: vec![[0.0; 7]; n],
        unknown_w: vec![[0.0; 7]; n],
    };
    for &(gi, q, known, e, w) in &b.rows {
        let l = clock.local(q);
        if known {
            g.events[gi][l.weekday * 24 + l.hour] += e;
            g.weighted[gi][l.weekday * 24 + l.hour] += w;
        } else {
            g.unknown[gi][l.weekday] += e;
            g.unknown_w[gi][l.weekday] += w;
        }
    }
    g
}

/// The hour × weekday profile: one row per group, weekday (0 = Monday) and
/// hour (0–23), dense and ordered, with explicit zeros; events whose time
/// of day is unknown get rows with a null `hour` (one per weekday) when
/// there are any.
///
/// Columns: the `by` dimensions, `weekday`, `day`, `hour`, `events`,
/// `weighted` (severity-weighted), `share` (of the group's events with a
/// known hour), `exposure_hours`, `rate_per_1000h`, `exposure_basis`
/// (`records`, `shifts`, `positions` or `uniform`).
pub async fn time_profile(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    let b = binned_as(ds, o, Binning::WeekHours).await?;
    let mut clock = Clock::new(ds)?;
    let win = window(ds, o, &b, &mut clock)?;
    let exp = exposures(ds, o, &b, &mut clock, win).await?;
    let g = grids(&b, &mut clock);
    let any_unknown = g.unknown.iter().any(|u| u.iter().any(|v| *v > 0.0));
    let mut keys = vec![];
    let (mut wd, mut day, mut hour) = (vec![], vec![], vec![]);
    let (mut ev, mut wt, mut share, mut hrs, mut rate, mut basis) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for gi in sorted_groups(&b) {
        let key = &b.groups[gi];
        let e = exp.get(&scope_of(o, key)).expect("exposure of every scope");
        let total: f64 = g.events[gi].iter().sum();
        for (d, name) in WEEKDAYS.iter().enumerate() {
            for h in 0..24 {
                let c = d * 24 + h;
                keys.push(key);
                wd.push(Some(d as i32));
                day.push(Some(name.to_string()));
                hour.push(Some(h as i32));
                ev.push(Some(g.events[gi][c]));
                wt.push(Some(g.weighted[gi][c]));
                share.push((total > 0.0).then(|| g.events[gi][c] / total));
                let x = e.hours.as_ref().map(|v| v[c]);
                hrs.push(x);
                rate.push(x.and_then(|x| (x > 0.0).then(|| g.events[gi][c] / x * 1000.0)));
                basis.push(Some(e.basis.to_string()));
            }
            if any_unknown {
                keys.push(key);
                wd.push(Some(d as i32));
                day.push(Some(name.to_string()));
                hour.push(None);
                ev.push(Some(g.unknown[gi][d]));
                wt.push(Some(g.unknown_w[gi][d]));
                share.push(None);
                hrs.push(None);
                rate.push(None);
                basis.push(Some(e.basis.to_string()));
            }
        }
    }
    let mut c = Columns::default();
    c.dims(o, &keys);
    c.int("weekday", wd);
    c.text("day", day);
    c.int("hour", hour);
    c.float("events", ev);
    c.float("weighted", wt);
    c.float("share", share);
    c.float("exposure_hours", hrs);
    c.float("rate_per_1000h", rate);
    c.text("exposure_basis", basis);
    c.finish()
}

/// One tested cell of a peak analysis.
pub(crate) struct Tested {
    pub(crate) group: usize,
    pub(crate) weekday: Option<usize>,
    pub(crate) hour: usize,
    pub(crate) events: f64,
    pub(crate) exposure: f64,
    pub(crate) total_events: f64,
    pub(crate) total_exposure: f64,
    pub(crate) test: Option<crate::util::stats::RateTest>,
}

/// Peak tests: every hour × weekday cell (or hour of the day, `grid =
/// "hour"`) of every group against the rest of the group's week (day) by
/// the exact conditional Poisson rate test with exposure, rate ratio with
/// its exact confidence interval, Benjamini–Hochberg across all tested
/// cells.
///
/// Returns `(cells, periods)`: every tested cell; and the ranked
/// "high-risk periods": adjacent significant hours (q ≤ alpha, ratio > 1)
/// of the same group and weekday merged, tested again as one block (`p`),
/// with `q` the largest member q-value.
pub async fn peaks(ds: &Dataset, o: &PatternOptions) -> Result<(RecordBatch, RecordBatch)> {
    o.validate()?;
    if o.time == TimeBasis::Aoristic {
        return Err(Error::option(
            "time",
            "peak tests count whole events; use time = \"start\" (aoristic weights are for profiles)",
        ));
    }
    let b = binned_as(ds, o, Binning::WeekHours).await?;
    let mut clock = Clock::new(ds)?;
    let win = window(ds, o, &b, &mut clock)?;
    let exp = exposures(ds, o, &b, &mut clock, win).await?;
    let g = grids(&b, &mut clock);
    let mut tests = vec![];
    let order = sorted_groups(&b);
    for &gi in &order {
        let e = &exp[&scope_of(o, &b.groups[gi])];
        let cells: Vec<(Option<usize>, usize, f64, f64)> = match o.grid {
            PeakGrid::HourWeekday => (0..168)
                .map(|c| (Some(c / 24), c % 24, g.events[gi][c], e.shape[c]))
                .collect(),
            PeakGrid::Hour => (0..24)
                .map(|h| {
                    let ev = (0..7).map(|d| g.events[gi][d * 24 + h]).sum();
                    let ex = (0..7).map(|d| e.shape[d * 24 + h]).sum();
                    (None, h, ev, ex)
                })
                .collect(),
        };
        let te: f64 = cells.iter().map(|c| c.2).sum();
        let tx: f64 = cells.iter().map(|c| c.3).sum();
        for (wd, h, ev, ex) in cells {
            let test = (ex > 0.0 && tx - ex > 0.0 && te > 0.0).then(|| {
                crate::util::stats::poisson_rate_test(
                    ev.round() as u64,
                    ex,
                    (te - ev).round() as u64,
                    tx - ex,
                    o.alpha,
                )
            });
            tests.push(Tested {
                group: gi,
                weekday: wd,
                hour: h,
                events: ev,
                exposure: ex,
                total_events: te,
                total_exposure: tx,
                test,
            });
        }
    }
    let q = crate::util::stats::benjamini_hochberg(
        &tests
            .iter()
            .map(|t| t.test.map(|x| x.p))
            .collect::<Vec<_>>(),
    );
    let significant = |i: usize| {
        q[i].is_some_and(|q| q <= o.alpha)
            && tests[i].test.and_then(|t| t.ratio).is_some_and(|r| r > 1.0)
    };
    // Cells.
    let mut c = Columns::default();
    c.dims(
        o,
        &tests.iter().map(|t| &b.groups[t.group]).collect::<Vec<_>>(),
    );
    c.int(
        "weekday",
        tests.iter().map(|t| t.weekday.map(|d| d as i32)).collect(),
    );
    c.text(
        "day",
        tests
            .iter()
            .map(|t| t.weekday.map(|d| WEEKDAYS[d].to_string()))
            .collect(),
    );
    c.int("hour", tests.iter().map(|t| Some(t.hour as i32)).collect());
    c.float("events", tests.iter().map(|t| Some(t.events)).collect());
    c.float(
        "expected",
        tests.iter().map(|t| t.test.map(|x| x.expected)).collect(),
    );
    c.float(
        "exposure_share",
        tests
            .iter()
            .map(|t| (t.total_exposure > 0.0).then(|| t.exposure / t.total_exposure))
            .collect(),
    );
    c.float(
        "rate_ratio",
        tests.iter().map(|t| t.test.and_then(|x| x.ratio)).collect(),
    );
    c.float(
        "ci_low",
        tests
            .iter()
            .map(|t| t.test.and_then(|x| x.ci_low))
            .collect(),
    );
    c.float(
        "ci_high",
        tests
            .iter()
            .map(|t| t.test.and_then(|x| x.ci_high))
            .collect(),
    );
    c.float(
        "p_value",
        tests.iter().map(|t| t.test.map(|x| x.p)).collect(),
    );
    c.float("q_value", q.clone());
    c.boolean(
        "significant",
        (0..tests.len())
            .map(|i| Some(q[i].is_some_and(|v| v <= o.alpha)))
            .collect(),
    );
    c.text(
        "exposure_basis",
        tests
            .iter()
            .map(|t| Some(exp[&scope_of(o, &b.groups[t.group])].basis.to_string()))
            .collect(),
    );
    let cells = c.finish()?;
    // Periods: runs of significant high cells within a group and weekday.
    struct Period {
        group: usize,
        weekday: Option<usize>,
        from: usize,
        to: usize,
        events: f64,
        exposure: f64,
        total_events: f64,
        total_exposure: f64,
        q: f64,
    }
    let mut periods: Vec<Period> = vec![];
    for i in 0..tests.len() {
        if !significant(i) {
            continue;
        }
        let t = &tests[i];
        let qi = q[i].unwrap_or(1.0);
        match periods.last_mut() {
            Some(p)
                if p.group == t.group
                    && p.weekday == t.weekday
                    && p.to == t.hour
                    && i > 0
                    && significant(i - 1) =>
            {
                p.to = t.hour + 1;
                p.events += t.events;
                p.exposure += t.exposure;
                p.q = p.q.max(qi);
            }
            _ => periods.push(Period {
                group: t.group,
                weekday: t.weekday,
                from: t.hour,
                to: t.hour + 1,
                events: t.events,
                exposure: t.exposure,
                total_events: t.total_events,
                total_exposure: t.total_exposure,
                q: qi,
            }),
        }
    }
    let tested: Vec<crate::util::stats::RateTest> = periods
        .iter()
        .map(|p| {
            crate::util::stats::poisson_rate_test(
                p.events.round() as u64,
                p.exposure,
                (p.total_events - p.events).round() as u64,
                p.total_exposure - p.exposure,
                o.alpha,
            )
        })
        .collect();
    let mut rank: Vec<usize> = (0..periods.len()).collect();
    rank.sort_by(|&a, &b| {
        periods[a].q.total_cmp(&periods[b].q).then(
            tested[b]
                .ratio
                .unwrap_or(f64::INFINITY)
                .total_cmp(&tested[a].ratio.unwrap_or(f64::INFINITY)),
        )
    });
    let mut c = Columns::default();
    c.int("rank", (1..=rank.len()).map(|r| Some(r as i32)).collect());
    c.dims(
        o,
        &rank
            .iter()
            .map(|&i| &b.groups[periods[i].group])
            .collect::<Vec<_>>(),
    );
    c.int(
        "weekday",
        rank.iter()
            .map(|&i| periods[i].weekday.map(|d| d as i32))
            .collect(),
    );
    c.text(
        "day",
        rank.iter()
            .map(|&i| periods[i].weekday.map(|d| WEEKDAYS[d].to_string()))
            .collect(),
    );
    c.int(
        "hour_from",
        rank.iter().map(|&i| Some(periods[i].from as i32)).collect(),
    );
    c.int(
        "hour_to",
        rank.iter().map(|&i| Some(periods[i].to as i32)).collect(),
    );
    c.float(
        "events",
        rank.iter().map(|&i| Some(periods[i].events)).collect(),
    );
    c.float(
        "expected",
        rank.iter().map(|&i| Some(tested[i].expected)).collect(),
    );
    c.float(
        "rate_ratio",
        rank.iter().map(|&i| tested[i].ratio).collect(),
    );
    c.float("ci_low", rank.iter().map(|&i| tested[i].ci_low).collect());
    c.float("ci_high", rank.iter().map(|&i| tested[i].ci_high).collect());
    c.float("p_value", rank.iter().map(|&i| Some(tested[i].p)).collect());
    c.float(
        "q_value",
        rank.iter().map(|&i| Some(periods[i].q)).collect(),
    );
    Ok((cells, c.finish()?))
}

/// Shift analysis: events attributed to the shift on duty when they
/// happened and to its shift day (the local date the shift began), profiled
/// by hour of shift (hours since the shift began, the fatigue pattern).
///
/// Columns: the `by` dimensions, `shift`, `hour_of_shift`, `events`,
/// `weighted`, `share` (of the group's attributed events). Events outside
/// every shift get `shift = null`; events with unknown time of day get
/// `shift = null, hour_of_shift = null` rows — counted, never dropped.
pub async fn shift_profile(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    let (shifts, _, _) = roster_of(ds, o)?;
    if shifts.is_empty() {
        return Err(Error::option("shifts", "define at least one shift"));
    }
    let b = binned(ds, o).await?;
    let mut clock = Clock::new(ds)?;
    // (group, shift or none, hour or none) → (events, weighted)
    let mut acc: BTreeMap<ShiftCell, (f64, f64)> = BTreeMap::new();
    for &(gi, q, known, e, w) in &b.rows {
        let key = if known {
            let l = clock.local(q);
            match shifts
                .iter()
                .enumerate()
                .find_map(|(si, s)| s.minutes_in(l.minute_of_day).map(|m| (si, m)))
            {
                Some((si, m)) => (gi, Some(si), Some((m / 60) as usize)),
                None => (gi, None, Some(l.hour)),
            }
        } else {
            (gi, None, None)
        };
        let a = acc.entry(key).or_default();
        a.0 += e;
        a.1 += w;
    }
    let mut keys = vec![];
    let (mut shift, mut hour, mut ev, mut wt, mut share) = (vec![], vec![], vec![], vec![], vec![]);
    for gi in sorted_groups(&b) {
        let attributed: f64 = acc
            .iter()
            .filter(|(k, _)| k.0 == gi && k.1.is_some())
            .map(|(_, v)| v.0)
            .sum();
        for (si, s) in shifts.iter().enumerate() {
            for h in 0..(s.len_min.div_ceil(60) as usize) {
                let v = acc
                    .get(&(gi, Some(si), Some(h)))
                    .copied()
                    .unwrap_or_default();
                keys.push(&b.groups[gi]);
                shift.push(Some(s.name.clone()));
                hour.push(Some(h as i32));
                ev.push(Some(v.0));
                wt.push(Some(v.1));
                share.push((attributed > 0.0).then(|| v.0 / attributed));
            }
        }
        for ((g2, s, h), v) in &acc {
            if *g2 == gi && s.is_none() {
                keys.push(&b.groups[gi]);
                shift.push(None);
                hour.push(h.map(|h| h as i32));
                ev.push(Some(v.0));
                wt.push(Some(v.1));
                share.push(None);
            }
        }
    }
    let mut c = Columns::default();
    c.dims(o, &keys);
    c.text("shift", shift);
    c.int("hour_of_shift", hour);
    c.float("events", ev);
    c.float("weighted", wt);
    c.float("share", share);
    c.finish()
}

/// Every selected event with its shift, shift day and hour of shift
/// (`shift` null outside every shift or when the time of day is unknown).
///
/// Columns: `kind`, `site`, `zone`, `cell`, `category`, `severity`,
/// `occurred_at` (local text), `shift`, `shift_day`, `hour_of_shift`.
pub async fn shift_events(ds: &Dataset, o: &PatternOptions) -> Result<RecordBatch> {
    o.validate()?;
    let (shifts, _, _) = roster_of(ds, o)?;
    let tz = parse_tz(ds.timezone())?;
    let batches = events_frame(ds, o)
        .await?
        .sort(vec![col("t").sort(true, false)])?
        .collect()
        .await?;
    let mut c = Columns::default();
    let mut text: BTreeMap<&str, Vec<Option<String>>> = BTreeMap::new();
    let (mut at, mut shift, mut day, mut hour) = (vec![], vec![], vec![], vec![]);
    for b in &batches {
        for name in ["kind", "site", "zone", "cell", "category", "severity"] {
            let a = str_col(b, name)?;
            text.entry(name)
                .or_default()
                .extend((0..b.num_rows()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())));
        }
        let t = col_as::<Int64Array>(b, "t")?;
        let known = col_as::<BooleanArray>(b, "known")?;
        for i in 0..b.num_rows() {
            let local = micros_to_local(&tz, t.value(i));
            at.push(local.map(|l| l.format("%Y-%m-%d %H:%M:%S").to_string()));
            let found = local.filter(|_| known.value(i)).and_then(|l| {
                let m = l.hour() * 60 + l.minute();
                shifts.iter().find_map(|s| {
                    s.minutes_in(m).map(|since| {
                        let start_day = if m < s.start_min {
                            l.date().pred_opt().unwrap_or(l.date())
                        } else {
                            l.date()
                        };
                        let start = start_day.and_time(
                            NaiveTime::from_num_seconds_from_midnight_opt(s.start_min * 60, 0)
                                .unwrap_or(NaiveTime::MIN),
                        );
                        // Elapsed real time, so a daylight-saving night counts right.
                        let hours = local_to_micros(&tz, start)
                            .map(|s0| (t.value(i) - s0).div_euclid(HOUR))
                            .unwrap_or(i64::from(since / 60));
                        (s.name.clone(), start_day, hours)
                    })
                })
            });
            shift.push(found.as_ref().map(|f| f.0.clone()));
            day.push(found.as_ref().map(|f| f.1.to_string()));
            hour.push(found.map(|f| f.2 as i32));
        }
    }
    for name in ["kind", "site", "zone", "cell", "category", "severity"] {
        c.text(name, text.remove(name).unwrap_or_default());
    }
    c.text("occurred_at", at);
    c.text("shift", shift);
    c.text("shift_day", day);
    c.int("hour_of_shift", hour);
    c.finish()
}
