//! Follow-up tracking as of a date: overdue hazards on an escalation ladder,
//! repeat violators, fence intrusions, sensor alarm episodes, the safety
//! points ledger, and the one `alerts` list that unifies them.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field};
use chrono::{Datelike, NaiveDate};
use datafusion::logical_expr::{cast, col, lit};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::model::schema::TableKind;
use crate::model::time::{local_to_micros, micros_to_local, parse_tz};
use crate::session::dataset::Dataset;
use crate::util::columns::Name;
use crate::util::columns::Names;
use crate::util::columns::strings;
use crate::util::error::{Error, Result};

use crate::analysis::followup::common::*;
use crate::analysis::followup::episodes::{alarm_episodes, fence_intrusions};
use crate::analysis::followup::options::*;
use crate::util::columns::str_col as strs;
// ------------------------------------------------------------------ overdue

/// Hazards open at `as_of` past their deadline, with the escalation level
/// reached: `id`, `site`, `zone`, `cell`, `level` (general / major),
/// `owner`, `reported_at`, `due_at`, `hours_overdue`, `age_hours`,
/// `escalation` (the ladder step's level), `escalation_step` (1 = first),
/// ordered by hours overdue, longest first.
pub async fn overdue_hazards(ds: &Dataset, o: &AlertOptions) -> Result<RecordBatch> {
    o.check()?;
    let (_, as_of) = window(ds, o).await?;
    // Open at `as_of` and past due: the rest is never read into memory.
    let us = |c: &str| cast(col(c), DataType::Int64);
    let overdue = us("due_at")
        .lt(lit(as_of))
        .and(us("reported_at").lt(lit(as_of)))
        .and(
            col("closed_at")
                .is_null()
                .or(us("closed_at").gt_eq(lit(as_of))),
        );
    // The overdue hazards themselves: as many rows as the list has.
    let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(
        table_stream_where(
            ds,
            TableKind::Hazards,
            o.site.as_deref(),
            Some(overdue),
            &["id", "site", "zone", "cell", "level", "owner"],
            &["reported_at", "due_at", "closed_at"],
            &[],
        )
        .await?,
    )
    .await?;
    let mut rows = vec![];
    for b in &batches {
        let (rep, due, closed) = (
            ints(b, "reported_at_us")?,
            ints(b, "due_at_us")?,
            ints(b, "closed_at_us")?,
        );
        let (level, ids) = (strs(b, "level")?, strs(b, "id")?);
        for i in 0..b.num_rows() {
            if due.is_null(i) || rep.value(i) >= as_of || due.value(i) >= as_of {
                continue;
            }
            if !closed.is_null(i) && closed.value(i) < as_of {
                continue;
            }
            let over = (as_of - due.value(i)) as f64 / HOUR;
            let ladder = if level.value(i) == "major" {
                &o.ladder.major
            } else {
                &o.ladder.general
            };
            let reached = ladder.iter().rposition(|s| s.after_hours <= over);
            rows.push((b, i, over, reached, ids.value(i)));
        }
    }
    // Most overdue first; equal ones by id, whatever order the scan
    // returned them in.
    rows.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.4.cmp(b.4)));
    let get = |name: &str| -> Result<Vec<Option<String>>> {
        rows.iter()
            .map(|(b, i, _, _, _)| Ok(opt_s(strs(b, name)?, *i)))
            .collect()
    };
    let times = |name: &str| -> Result<Vec<Option<i64>>> {
        rows.iter()
            .map(|(b, i, _, _, _)| Ok(Some(ints(b, name)?.value(*i))))
            .collect()
    };
    let tz = ds.timezone();
    Cols::default()
        .text("id", get("id")?)
        .text("site", get("site")?)
        .text("zone", get("zone")?)
        .text("cell", get("cell")?)
        .text("level", get("level")?)
        .text("owner", get("owner")?)
        .time("reported_at", tz, times("reported_at_us")?)
        .time("due_at", tz, times("due_at_us")?)
        .float("hours_overdue", rows.iter().map(|r| Some(r.2)).collect())
        .float(
            "age_hours",
            rows.iter()
                .map(|(b, i, _, _, _)| {
                    Ok(Some(
                        (as_of - ints(b, "reported_at_us")?.value(*i)) as f64 / HOUR,
                    ))
                })
                .collect::<Result<_>>()?,
        )
        .text(
            "escalation",
            rows.iter()
                .map(|(b, i, _, r, _)| {
                    let major = strs(b, "level")
                        .map(|l| l.value(*i) == "major")
                        .unwrap_or(false);
                    let ladder = if major {
                        &o.ladder.major
                    } else {
                        &o.ladder.general
                    };
                    r.map(|k| ladder[k].level.clone())
                })
                .collect(),
        )
        .int(
            "escalation_step",
            rows.iter().map(|r| r.3.map(|k| k as i64 + 1)).collect(),
        )
        .done()
}

// ------------------------------------------------------------------ repeats

/// Runs of `repeat_days` or more consecutive local days on which the same
/// person committed the same violation kind, within `[from, as_of)`:
/// `site`, `person_id`, `kind`, `first_day`, `last_day`, `days`,
/// `detections`, `zone` and `cell` of the last detection.
pub async fn repeat_violators(ds: &Dataset, o: &AlertOptions) -> Result<RecordBatch> {
    o.check()?;
    let (from, as_of) = window(ds, o).await?;
    let tz = parse_tz(ds.timezone())?;
    // Detections per person, kind and local day, counted in the plan, with
    // the zone and cell of each day's last detection, sorted by person, kind
    // and day: runs are found as the rows stream by, holding one run.
    type Day = (u64, i64, Option<Name>, Option<Name>);
    let mut names = Names::default();
    let mut out: Vec<(Name, Name, Name, NaiveDate, NaiveDate, u64, Day)> = vec![];
    if ds.has_table(TableKind::Violations) {
        use datafusion::functions_aggregate::expr_fn::{count, last_value, max};
        let t = cast(col("detected_at"), DataType::Int64);
        let mut keep = col("person_id")
            .is_not_null()
            .and(t.clone().gt_eq(lit(from)))
            .and(t.clone().lt(lit(as_of)));
        if let Some(s) = &o.site {
            keep = keep.and(col("site").eq(lit(s.clone())));
        }
        if !o.repeat_kinds.is_empty() {
            keep = keep.and(col("kind").in_list(
                o.repeat_kinds.iter().map(|k| lit(k.clone())).collect(),
                false,
            ));
        }
        let latest = || {
            vec![
                t.clone().sort(true, true),
                col("zone").sort(true, true),
                col("cell").sort(true, true),
            ]
        };
        let (lo, hi) = ds
            .time_span(TableKind::Violations, "detected_at")
            .await?
            .unwrap_or((from, as_of));
        let day = crate::model::time::local_day_expr(&tz, t.clone(), lo.max(from), hi.min(as_of))?;
        let mut batches = ds
            .table(TableKind::Violations)
            .await?
            .filter(keep)?
            .aggregate(
                vec![col("site"), col("person_id"), col("kind"), day.alias("day")],
                vec![
                    count(lit(1i64)).alias("n"),
                    max(t.clone()).alias("last_us"),
                    last_value(col("zone"), latest()).alias("zone"),
                    last_value(col("cell"), latest()).alias("cell"),
                ],
            )?
            .sort(
                ["site", "person_id", "kind", "day"]
                    .iter()
                    .map(|c| col(*c).sort(true, true))
                    .collect(),
            )?
            .execute_stream()
            .await?;
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        // The current person's key (names are held only for the runs
        // found, not for every person seen).
        let mut key: Option<(String, String, String)> = None;
        let mut run: Vec<(NaiveDate, Day)> = vec![];
        let flush = |key: &Option<(String, String, String)>,
                     run: &mut Vec<(NaiveDate, Day)>,
                     names: &mut Names,
                     out: &mut Vec<_>| {
            if let Some((site, person, kind)) = key
                && run.len() >= o.repeat_days as usize
            {
                let n = run.iter().map(|r| r.1.0).sum();
                let last = run.last().expect("non-empty").clone();
                out.push((
                    names.get(site),
                    names.get(person),
                    names.get(kind),
                    run[0].0,
                    last.0,
                    n,
                    last.1,
                ));
            }
            run.clear();
        };
        while let Some(b) = batches.next().await {
            let b = &b?;
            let (site, person, kind) = (strs(b, "site")?, strs(b, "person_id")?, strs(b, "kind")?);
            let (zone, cell) = (strs(b, "zone")?, strs(b, "cell")?);
            let (day, n, last) = (ints(b, "day")?, ints(b, "n")?, ints(b, "last_us")?);
            for i in 0..b.num_rows() {
                let Some(date) = epoch.checked_add_signed(chrono::Duration::days(day.value(i)))
                else {
                    continue;
                };
                let same = key.as_ref().is_some_and(|(s, p, k)| {
                    s == site.value(i) && p == person.value(i) && k == kind.value(i)
                });
                if !same {
                    flush(&key, &mut run, &mut names, &mut out);
                    key = Some((
                        site.value(i).to_string(),
                        person.value(i).to_string(),
                        kind.value(i).to_string(),
                    ));
                } else if run.last().is_some_and(|(p, _)| p.succ_opt() != Some(date)) {
                    flush(&key, &mut run, &mut names, &mut out);
                }
                run.push((
                    date,
                    (
                        n.value(i) as u64,
                        last.value(i),
                        names.opt(zone, i),
                        names.opt(cell, i),
                    ),
                ));
            }
        }
        flush(&key, &mut run, &mut names, &mut out);
    }
    let text = |v: &Name| Some(v.to_string());
    Cols::default()
        .text("site", out.iter().map(|r| text(&r.0)).collect())
        .text("person_id", out.iter().map(|r| text(&r.1)).collect())
        .text("kind", out.iter().map(|r| text(&r.2)).collect())
        .text(
            "first_day",
            out.iter().map(|r| Some(r.3.to_string())).collect(),
        )
        .text(
            "last_day",
            out.iter().map(|r| Some(r.4.to_string())).collect(),
        )
        .int(
            "days",
            out.iter()
                .map(|r| Some((r.4 - r.3).num_days() + 1))
                .collect(),
        )
        .int("detections", out.iter().map(|r| Some(r.5 as i64)).collect())
        .text(
            "zone",
            out.iter().map(|r| r.6.2.as_ref().and_then(text)).collect(),
        )
        .text(
            "cell",
            out.iter().map(|r| r.6.3.as_ref().and_then(text)).collect(),
        )
        .done()
}

// ------------------------------------------------------------------ points

/// The rows of the points ledger: every hazard reported and every violation
/// of the year of `as_of` up to `as_of`, as `site`, `person`, `month` (the
/// local month, 1–12), `rewards` and `penalties`; with the year and the
/// ledger's last month. `None` without hazards and violations.
async fn points_rows(
    ds: &Dataset,
    o: &AlertOptions,
) -> Result<(i32, u32, Option<datafusion::dataframe::DataFrame>)> {
    use datafusion::logical_expr::when;
    o.check()?;
    let (_, as_of) = window(ds, o).await?;
    let tz = parse_tz(ds.timezone())?;
    let year = micros_to_local(&tz, as_of - 1).map_or(1970, |l| l.year());
    let last_month = micros_to_local(&tz, as_of - 1).map_or(12, |l| l.month());
    let month_start = |m: u32| {
        crate::model::time::local_day_start(
            &tz,
            NaiveDate::from_ymd_opt(year, m, 1).unwrap_or_default(),
        )
    };
    let start = month_start(1);
    let p = &o.points;
    let mut parts = vec![];
    for (kind, time, person, what) in [
        (TableKind::Hazards, "reported_at", "reporter", "level"),
        (TableKind::Violations, "detected_at", "person_id", "kind"),
    ] {
        if !ds.has_table(kind) {
            continue;
        }
        let t = cast(col(time), DataType::Int64);
        let mut keep = col(person)
            .is_not_null()
            .and(t.clone().gt_eq(lit(start)))
            .and(t.clone().lt(lit(as_of)));
        if let Some(s) = &o.site {
            keep = keep.and(col("site").eq(lit(s.clone())));
        }
        // The local month: how many of this year's month starts are not
        // after the instant.
        let mut month = when(t.clone().lt(lit(month_start(2))), lit(1i64));
        for m in 3..=12 {
            month = month.when(t.clone().lt(lit(month_start(m))), lit(i64::from(m) - 1));
        }
        let month = month.otherwise(lit(12i64))?;
        let points = if kind == TableKind::Hazards {
            when(col(what).eq(lit("major")), lit(p.hazard_major))
                .otherwise(lit(p.hazard_general))?
        } else {
            let mut rules = p.violation.iter();
            match rules.next() {
                None => lit(p.violation_default),
                Some((k, v)) => {
                    let mut c = when(col(what).eq(lit(k.clone())), lit(*v));
                    for (k, v) in rules {
                        c = c.when(col(what).eq(lit(k.clone())), lit(*v));
                    }
                    c.otherwise(lit(p.violation_default))?
                }
            }
        };
        let (rewards, penalties) = if kind == TableKind::Hazards {
            (points, lit(0.0))
        } else {
            (lit(0.0), points)
        };
        parts.push(ds.table(kind).await?.filter(keep)?.select(vec![
            col("site"),
            col(person).alias("person"),
            month.alias("month"),
            rewards.alias("rewards"),
            penalties.alias("penalties"),
        ])?);
    }
    let mut parts = parts.into_iter();
    let Some(mut all) = parts.next() else {
        return Ok((year, last_month, None));
    };
    for p in parts {
        all = all.union(p)?;
    }
    Ok((year, last_month, Some(all)))
}

/// Rewards and penalties of the year of `as_of`: the year, the last month
/// of the ledger, and a stream of `site`, `person`, `month` (1–12),
/// `rewards`, `penalties` per (site, person, month) with any, sorted by
/// site, person and month. The plan sums them (spilling to disk under a
/// memory limit), so nothing per row is held here.
async fn ledger(
    ds: &Dataset,
    o: &AlertOptions,
) -> Result<(
    i32,
    u32,
    datafusion::physical_plan::SendableRecordBatchStream,
)> {
    use datafusion::functions_aggregate::expr_fn::sum;
    let (year, last_month, rows) = points_rows(ds, o).await?;
    let Some(all) = rows else {
        return Ok((year, last_month, crate::session::context::empty_stream()));
    };
    let stream = all
        .aggregate(
            vec![col("site"), col("person"), col("month")],
            vec![
                sum(col("rewards")).alias("rewards"),
                sum(col("penalties")).alias("penalties"),
            ],
        )?
        .sort(vec![
            col("site").sort(true, true),
            col("person").sort(true, true),
            col("month").sort(true, true),
        ])?
        .execute_stream()
        .await?;
    Ok((year, last_month, stream))
}

/// Rewards and penalties of January … December.
type Months = [(f64, f64); 12];

/// Calls `f` with every (site, person) of a ledger stream (see [`ledger`])
/// and their months, in order of site and person.
async fn each_person(
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    mut f: impl FnMut(&str, &str, &Months),
) -> Result<()> {
    let mut current: Option<(String, String, Months)> = None;
    while let Some(b) = stream.next().await {
        let b = b?;
        let (s, who) = (strs(&b, "site")?, strs(&b, "person")?);
        let month = ints(&b, "month")?;
        let r = crate::util::columns::col_as::<Float64Array>(&b, "rewards")?;
        let pen = crate::util::columns::col_as::<Float64Array>(&b, "penalties")?;
        for i in 0..b.num_rows() {
            let same = current
                .as_ref()
                .is_some_and(|(a, p, _)| a == s.value(i) && p == who.value(i));
            if !same {
                if let Some((a, p, m)) = &current {
                    f(a, p, m);
                }
                current = Some((s.value(i).into(), who.value(i).into(), [(0.0, 0.0); 12]));
            }
            if let Some((_, _, m)) = &mut current
                && let Some(slot) = usize::try_from(month.value(i) - 1)
                    .ok()
                    .and_then(|k| m.get_mut(k))
            {
                *slot = (r.value(i), pen.value(i));
            }
        }
    }
    if let Some((a, p, m)) = &current {
        f(a, p, m);
    }
    Ok(())
}

/// The safety points ledger of the calendar year of `as_of`, per person and
/// local month up to `as_of`: `site`, `person_id`, `month`, `rewards`
/// (hazards reported), `penalties` (violations), `change`, `total` (the
/// running annual total from `base`) and `below_floor`.
pub async fn points_ledger(ds: &Dataset, o: &AlertOptions) -> Result<RecordBatch> {
    let mut batches = vec![];
    points_ledger_batches(ds, o, usize::MAX, &mut |b| {
        batches.push(b);
        Ok(())
    })
    .await?;
    match batches.len() {
        1 => Ok(batches.remove(0)),
        _ => LedgerRows::default().take(),
    }
}

/// [`points_ledger`] handed to `emit` in batches of about `rows` rows as the
/// plan's sorted sums stream by, so that a ledger larger than memory can be
/// written as it is computed (at least one batch, empty if the ledger is).
pub async fn points_ledger_batches(
    ds: &Dataset,
    o: &AlertOptions,
    rows: usize,
    emit: &mut (dyn FnMut(RecordBatch) -> Result<()> + Send),
) -> Result<()> {
    o.check()?;
    let p = &o.points;
    let mut out = LedgerRows::default();
    let mut failed: Option<Error> = None;
    let mut emitted = false;
    let (year, last_month, stream) = ledger(ds, o).await?;
    let labels: Vec<String> = (1..=last_month).map(|m| format!("{year}-{m:02}")).collect();
    each_person(stream, |s, who, months| {
        if failed.is_some() {
            return;
        }
        let mut t = p.base;
        for (m, label) in labels.iter().enumerate() {
            let (r, pen) = months[m];
            t += r - pen;
            out.site.append_value(s);
            out.person.append_value(who);
            out.month.append_value(label);
            out.values.push([r, pen, r - pen, t]);
            out.below.push(t < p.floor);
        }
        if out.values.len() >= rows {
            emitted = true;
            if let Err(e) = out.take().and_then(&mut *emit) {
                failed = Some(e);
            }
        }
    })
    .await?;
    if let Some(e) = failed {
        return Err(e);
    }
    if !out.values.is_empty() || !emitted {
        emit(out.take()?)?;
    }
    Ok(())
}

/// Rows per batch of a points ledger written as it is computed.
#[cfg(feature = "native")]
const LEDGER_BATCH_ROWS: usize = 65_536;

/// Write the points ledger to each of `paths` (format by extension) as it is
/// computed, each file complete or absent; returns the rows and each file's
/// size in bytes.
#[cfg(feature = "native")]
pub async fn write_points_ledger(
    ds: &Dataset,
    o: &AlertOptions,
    paths: &[std::path::PathBuf],
) -> Result<(usize, Vec<u64>)> {
    let mut sinks = crate::io::output::FileSinks::new(paths);
    points_ledger_batches(ds, o, LEDGER_BATCH_ROWS, &mut |b| sinks.write(b)).await?;
    sinks.finish(&LedgerRows::default().take()?.schema())
}

/// Rows of the points ledger being built.
#[derive(Default)]
struct LedgerRows {
    site: arrow::array::StringBuilder,
    person: arrow::array::StringBuilder,
    month: arrow::array::StringBuilder,
    /// Rewards, penalties, change and total.
    values: Vec<[f64; 4]>,
    below: Vec<bool>,
}

impl LedgerRows {
    /// The rows so far as a batch; starts empty again.
    fn take(&mut self) -> Result<RecordBatch> {
        let mut c = Cols::default();
        for (name, a) in [
            ("site", &mut self.site),
            ("person_id", &mut self.person),
            ("month", &mut self.month),
        ] {
            c.fields.push(Field::new(name, DataType::Utf8, true));
            c.arrays.push(Arc::new(a.finish()));
        }
        let values = std::mem::take(&mut self.values);
        let col = |k: usize| values.iter().map(|v| Some(v[k])).collect();
        c.float("rewards", col(0))
            .float("penalties", col(1))
            .float("change", col(2))
            .float("total", col(3))
            .flag(
                "below_floor",
                std::mem::take(&mut self.below)
                    .into_iter()
                    .map(Some)
                    .collect(),
            )
            .done()
    }
}

// ------------------------------------------------------------------ alerts

/// The one list to chase, as of a date: `kind` (`overdue_hazard`,
/// `repeat_violation`, `fence_intrusion`, `sensor_alarm`, `low_points`),
/// `subject`, `site`, `zone`, `cell`, `since`, `level` and `detail` (one
/// English line), then the same facts as values for a reader to phrase in
/// its own language: `owner` (the hazard's owner or the person concerned),
/// `cell_owner` (the owner of the cell in the site plan), `age_days` (days
/// from `since` to `as_of`), `amount` (hours overdue, consecutive days,
/// minutes inside, the peak reading or the points), `limit` (the alarm
/// threshold or the points floor) and `urgency` (3 leadership or alarm, 2
/// supervisor, 1 the rest). Ordered by kind and then longest standing first.
pub async fn alerts(ds: &Dataset, o: &AlertOptions) -> Result<RecordBatch> {
    o.check()?;
    // An interactive session asks for every site's list (the overview),
    // then for one site's: the latter are the former's rows of that site.
    let (from, as_of) = window(ds, o).await?;
    let key = format!(
        "alerts {from} {as_of} {}",
        serde_json::to_string(&AlertOptions {
            as_of: None,
            from: None,
            site: None,
            ..o.clone()
        })
        .unwrap_or_default()
    );
    if let Some(all) = ds.recall(&key) {
        return match &o.site {
            None => Ok(all),
            Some(s) => {
                let site = arrow::array::StringArray::new_scalar(s.as_str());
                let keep = arrow::compute::kernels::cmp::eq(&strings(&all, "site")?, &site)?;
                Ok(arrow::compute::filter_record_batch(&all, &keep)?)
            }
        };
    }
    let b = alert_list(ds, o).await?;
    if o.site.is_none() {
        ds.remember(key, &b);
    }
    Ok(b)
}

/// [`alerts`], computed.
async fn alert_list(ds: &Dataset, o: &AlertOptions) -> Result<RecordBatch> {
    let tz = parse_tz(ds.timezone())?;
    let (_, as_of) = window(ds, o).await?;
    let local = |t: i64| micros_to_local(&tz, t).map(|l| l.format("%Y-%m-%d %H:%M").to_string());
    let age = |t: i64| Some((as_of - t) as f64 / 86_400_000_000.0);
    let cell_owners = cell_owners(ds).await?;
    let mut rows = AlertRows::default();
    let get = |b: &RecordBatch, n: &str, i: usize| -> Result<Option<String>> {
        Ok(opt_s(strs(b, n)?, i))
    };
    let ts = |b: &RecordBatch, n: &str, i: usize| -> Result<i64> {
        b.column_by_name(n)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .map(|a| a.value(i))
            .ok_or_else(|| Error::schema("alerts", format!("column `{n}` is not a timestamp")))
    };
    let o_h = overdue_hazards(ds, o).await?;
    let hrs = floats(&o_h, "hours_overdue")?.clone();
    for i in 0..o_h.num_rows() {
        let step = get(&o_h, "escalation", i)?;
        let due = ts(&o_h, "due_at", i)?;
        let owner = get(&o_h, "owner", i)?;
        rows.push(
            Alert {
                kind: "overdue_hazard",
                subject: get(&o_h, "id", i)?,
                site: get(&o_h, "site", i)?,
                zone: get(&o_h, "zone", i)?,
                cell: get(&o_h, "cell", i)?,
                since: local(due),
                detail: format!(
                    "{} hazard, owner {}, {:.0} h overdue",
                    get(&o_h, "level", i)?.unwrap_or_default(),
                    owner.as_deref().unwrap_or("—"),
                    hrs.value(i)
                ),
                urgency: match step.as_deref() {
                    Some("leadership") => 3,
                    Some("supervisor") => 2,
                    _ => 1,
                },
                level: step,
                owner,
                age_days: age(due),
                amount: Some(hrs.value(i)),
                limit: None,
            },
            &cell_owners,
        );
    }
    let r = repeat_violators(ds, o).await?;
    let days = r
        .column_by_name("days")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .cloned();
    for i in 0..r.num_rows() {
        let first = get(&r, "first_day", i)?;
        let n = days.as_ref().map_or(0, |d| d.value(i));
        let first_at = first
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .and_then(|d| local_to_micros(&tz, d.and_time(chrono::NaiveTime::MIN)));
        rows.push(
            Alert {
                kind: "repeat_violation",
                subject: get(&r, "person_id", i)?,
                site: get(&r, "site", i)?,
                zone: get(&r, "zone", i)?,
                cell: get(&r, "cell", i)?,
                detail: format!(
                    "{} on {} consecutive days ({} – {})",
                    get(&r, "kind", i)?.unwrap_or_default(),
                    n,
                    first.as_deref().unwrap_or_default(),
                    get(&r, "last_day", i)?.unwrap_or_default()
                ),
                since: first,
                level: Some("reminder".into()),
                owner: get(&r, "person_id", i)?,
                age_days: first_at.and_then(age),
                amount: Some(n as f64),
                limit: None,
                urgency: 1,
            },
            &cell_owners,
        );
    }
    let f = fence_intrusions(ds, o).await?;
    let dwell = floats(&f, "dwell_minutes")?.clone();
    for i in 0..f.num_rows() {
        let entry = ts(&f, "entry", i)?;
        rows.push(
            Alert {
                kind: "fence_intrusion",
                subject: get(&f, "person_id", i)?,
                site: get(&f, "site", i)?,
                zone: get(&f, "zone", i)?,
                cell: get(&f, "cell", i)?,
                since: local(entry),
                level: Some("alarm".into()),
                detail: format!(
                    "inside restricted cell for {:.0} min ({})",
                    dwell.value(i),
                    get(&f, "ended_by", i)?.unwrap_or_default()
                ),
                owner: get(&f, "person_id", i)?,
                age_days: age(entry),
                amount: Some(dwell.value(i)),
                limit: None,
                urgency: 3,
            },
            &cell_owners,
        );
    }
    let e = alarm_episodes(ds, o).await?;
    let (peak, thr, dur) = (
        floats(&e, "peak")?.clone(),
        floats(&e, "threshold")?.clone(),
        floats(&e, "duration_minutes")?.clone(),
    );
    for i in 0..e.num_rows() {
        let start = ts(&e, "start", i)?;
        rows.push(
            Alert {
                kind: "sensor_alarm",
                subject: get(&e, "sensor_id", i)?,
                site: get(&e, "site", i)?,
                zone: get(&e, "zone", i)?,
                cell: get(&e, "cell", i)?,
                since: local(start),
                level: Some("alarm".into()),
                detail: format!(
                    "{} peak {} (alarm {}) for {:.0} min ({})",
                    get(&e, "metric", i)?.unwrap_or_default(),
                    peak.value(i),
                    thr.value(i),
                    dur.value(i),
                    get(&e, "ended_by", i)?.unwrap_or_default()
                ),
                owner: None,
                age_days: age(start),
                amount: Some(peak.value(i)),
                limit: Some(thr.value(i)),
                urgency: 3,
            },
            &cell_owners,
        );
    }
    let (year, last_month, low) = low_points(ds, o).await?;
    let last = format!("{year}-{last_month:02}");
    let floor = o.points.floor;
    for b in &low {
        let (site, person) = (strs(b, "site")?, strs(b, "person")?);
        let totals = floats(b, "total")?;
        for i in 0..b.num_rows() {
            let (site, person, total) = (site.value(i), person.value(i), totals.value(i));
            rows.push(
                Alert {
                    kind: "low_points",
                    subject: Some(person.to_string()),
                    site: Some(site.to_string()),
                    zone: None,
                    cell: None,
                    since: Some(last.clone()),
                    level: Some("review".into()),
                    detail: format!("safety points {total} (floor {floor})"),
                    owner: Some(person.to_string()),
                    age_days: None,
                    amount: Some(total),
                    limit: Some(floor),
                    urgency: 1,
                },
                &cell_owners,
            );
        }
    }
    rows.finish()
}

/// The people whose points total at `as_of` is below the floor: `site`,
/// `person`, `total` (the ledger's total of its last month), sorted by site
/// and person. The plan sums each person's year and keeps only those below
/// the floor, so only they reach this process.
async fn low_points(ds: &Dataset, o: &AlertOptions) -> Result<(i32, u32, Vec<RecordBatch>)> {
    use datafusion::functions_aggregate::expr_fn::sum;
    let (year, last_month, rows) = points_rows(ds, o).await?;
    let Some(all) = rows else {
        return Ok((year, last_month, vec![]));
    };
    let total = lit(o.points.base) + (col("rewards") - col("penalties"));
    let low = all
        .aggregate(
            vec![col("site"), col("person")],
            vec![
                sum(col("rewards")).alias("rewards"),
                sum(col("penalties")).alias("penalties"),
            ],
        )?
        .filter(total.clone().lt(lit(o.points.floor)))?
        .select(vec![col("site"), col("person"), total.alias("total")])?
        .sort(vec![
            col("site").sort(true, true),
            col("person").sort(true, true),
        ])?
        .collect()
        .await?;
    Ok((year, last_month, low))
}

/// The owner of each cell of the site plan (none without a plan).
async fn cell_owners(ds: &Dataset) -> Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    if ds.row_count(TableKind::Cells) == 0 {
        return Ok(m);
    }
    for b in ds.collect(TableKind::Cells).await? {
        let (cell, owner) = (strings(&b, "cell")?, strings(&b, "owner")?);
        for i in 0..b.num_rows() {
            if !cell.is_null(i) && !owner.is_null(i) {
                m.insert(cell.value(i).to_string(), owner.value(i).to_string());
            }
        }
    }
    Ok(m)
}

/// One alert before it becomes a row.
struct Alert {
    kind: &'static str,
    subject: Option<String>,
    site: Option<String>,
    zone: Option<String>,
    cell: Option<String>,
    since: Option<String>,
    level: Option<String>,
    detail: String,
    owner: Option<String>,
    age_days: Option<f64>,
    amount: Option<f64>,
    limit: Option<f64>,
    urgency: i64,
}

/// The columns of the alerts list, appended a row at a time.
#[derive(Default)]
struct AlertRows {
    text: [Vec<Option<String>>; 10],
    age_days: Vec<Option<f64>>,
    amount: Vec<Option<f64>>,
    limit: Vec<Option<f64>>,
    urgency: Vec<Option<i64>>,
}

impl AlertRows {
    fn push(&mut self, a: Alert, cell_owners: &HashMap<String, String>) {
        let cell_owner = a.cell.as_ref().and_then(|c| cell_owners.get(c).cloned());
        let text = [
            Some(a.kind.to_string()),
            a.subject,
            a.site,
            a.zone,
            a.cell,
            a.since,
            a.level,
            Some(a.detail),
            a.owner,
            cell_owner,
        ];
        for (col, v) in self.text.iter_mut().zip(text) {
            col.push(v);
        }
        self.age_days.push(a.age_days);
        self.amount.push(a.amount);
        self.limit.push(a.limit);
        self.urgency.push(Some(a.urgency));
    }

    fn finish(self) -> Result<RecordBatch> {
        let names = [
            "kind",
            "subject",
            "site",
            "zone",
            "cell",
            "since",
            "level",
            "detail",
            "owner",
            "cell_owner",
        ];
        let mut c = Cols::default();
        for (n, v) in names.iter().zip(self.text) {
            c = c.text(n, v);
        }
        c.float("age_days", self.age_days)
            .float("amount", self.amount)
            .float("limit", self.limit)
            .int("urgency", self.urgency)
            .done()
    }
}

/// The follow-up lists by name, for the CLI and the bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertView {
    /// [`alerts`].
    All,
    /// [`overdue_hazards`].
    Overdue,
    /// [`repeat_violators`].
    Repeats,
    /// [`fence_intrusions`].
    Intrusions,
    /// [`alarm_episodes`].
    Episodes,
    /// [`points_ledger`].
    Points,
}

impl AlertView {
    /// Parse a list name (`all`, `overdue`, `repeats`, `intrusions`,
    /// `episodes`, `points`).
    pub fn parse(s: &str) -> Result<AlertView> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            Error::option(
                "list",
                format!("unknown list `{s}` (all, overdue, repeats, intrusions, episodes, points)"),
            )
        })
    }
}

/// Compute a follow-up list and its chart (the ageing bars of overdue
/// hazards; none for the other lists).
pub async fn run_view(
    ds: &Dataset,
    view: AlertView,
    o: &AlertOptions,
    lang: crate::model::vocab::Lang,
) -> Result<(RecordBatch, Option<String>)> {
    Ok(match view {
        AlertView::All => (alerts(ds, o).await?, None),
        AlertView::Overdue => {
            let b = overdue_hazards(ds, o).await?;
            let svg = overdue_svg(
                &b,
                lang.w(
                    "逾期隐患（按逾期时长）",
                    "Overdue hazards by time past the deadline",
                ),
                lang,
            )?;
            (b, Some(svg))
        }
        AlertView::Repeats => (repeat_violators(ds, o).await?, None),
        AlertView::Intrusions => (fence_intrusions(ds, o).await?, None),
        AlertView::Episodes => (alarm_episodes(ds, o).await?, None),
        AlertView::Points => (points_ledger(ds, o).await?, None),
    })
}

/// Overdue-hazard ageing bars: open overdue hazards by time past the
/// deadline (< 1 day, 1–3 days, 3–7 days, 7–30 days, > 30 days).
pub fn overdue_svg(
    b: &RecordBatch,
    title: &str,
    lang: crate::model::vocab::Lang,
) -> Result<String> {
    let hours = floats(b, "hours_overdue")?;
    let edges = [24.0, 72.0, 168.0, 720.0, f64::INFINITY];
    let labels = match lang {
        crate::model::vocab::Lang::Zh => ["< 1 天", "1–3 天", "3–7 天", "7–30 天", "> 30 天"],
        crate::model::vocab::Lang::En => ["< 1 d", "1–3 d", "3–7 d", "7–30 d", "> 30 d"],
    };
    let mut counts = [0.0; 5];
    for i in 0..b.num_rows() {
        let h = hours.value(i);
        let k = edges.iter().position(|e| h < *e).unwrap_or(4);
        counts[k] += 1.0;
    }
    let items: Vec<(String, f64)> = labels.iter().map(|l| l.to_string()).zip(counts).collect();
    Ok(safetyscope_render::bars_svg(title, &items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ladders_are_ordered() {
        let o = AlertOptions::default();
        o.check().unwrap();
        let bad = AlertOptions {
            ladder: Ladder {
                general: vec![step(24.0, "a"), step(0.0, "b")],
                ..Ladder::default()
            },
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
