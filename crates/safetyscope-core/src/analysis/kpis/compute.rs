//! Safety KPIs per scope (group, site, zone) and period (month, quarter,
//! year), and the annual targets evaluated against them as of a date.
//!
//! DataFusion selects, projects and groups the rows; every scope × period
//! window is measured in one streamed pass over each table, holding sums per
//! window rather than rows (see the `measure` module). Formulas, units and
//! kinds are in [`CATALOGUE`] (`docs/kpis.md` is generated from it).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, RecordBatch, StringArray,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::analysis::kpis::catalogue::*;
use crate::model::time::local_day_start;
use crate::model::time::{micros_to_local, parse_tz};
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

// ------------------------------------------------------------------ facts

use crate::analysis::kpis::measure::{Facts, Window};
use crate::analysis::kpis::scope::{Measure, Period, Scope};

pub(crate) fn opt_s(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

// ------------------------------------------------------------- scopes & periods

// ------------------------------------------------------------------ measures

// ------------------------------------------------------------------ kpis

/// Options of [`kpis`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
        Field::new("missing_tables", DataType::Utf8, true),
    ]))
}

pub(crate) fn parse_as_of(ds: &Dataset, v: Option<&str>) -> Result<Option<i64>> {
    v.map(|v| crate::session::window::parse_local(ds, "as_of", v))
        .transpose()
}

/// KPIs per scope and period, long format: `scope_type`, `scope`,
/// `period_type`, `period`, `partial` (the period runs past the data or the
/// as-of date), `kpi`, `value`, `unit`, `numerator`, `denominator`,
/// `missing_tables` (the KPI's source tables the dataset does not provide:
/// its value is then null, not 0).
///
/// A row per scope, period and KPI: a dataset with a thousand sites over
/// sixteen years has ten million. [`write_kpis`] writes them as they are
/// computed; this function holds them all.
pub async fn kpis(ds: &Dataset, o: &KpiOptions) -> Result<RecordBatch> {
    let mut out = vec![];
    kpi_batches(ds, o, KPI_BATCH_ROWS, &mut |b| {
        out.push(b);
        Ok(())
    })
    .await?;
    Ok(arrow::compute::concat_batches(&kpi_schema(), &out)?)
}

/// Rows per batch of the streamed KPIs.
const KPI_BATCH_ROWS: usize = 64 * 1024;

/// Compute the KPIs of [`kpis`] and write them to `paths` (one file per
/// format) as they are computed; returns the rows and each file's size.
#[cfg(feature = "native")]
pub async fn write_kpis(
    ds: &Dataset,
    o: &KpiOptions,
    paths: &[std::path::PathBuf],
) -> Result<(usize, Vec<u64>)> {
    let mut sinks = crate::io::output::FileSinks::new(paths);
    kpi_batches(ds, o, KPI_BATCH_ROWS, &mut |b| sinks.write(b)).await?;
    sinks.finish(&kpi_schema())
}

/// The KPIs of [`kpis`], handed to `emit` in batches of about `rows` rows.
async fn kpi_batches(
    ds: &Dataset,
    o: &KpiOptions,
    rows: usize,
    emit: &mut (dyn FnMut(RecordBatch) -> Result<()> + Send),
) -> Result<()> {
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
        return Ok(());
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
    let missing: Vec<Option<String>> = CATALOGUE
        .iter()
        .map(|def| {
            let absent: Vec<&str> = def
                .source_tables()
                .iter()
                .filter(|t| !ds.has_table(**t))
                .map(|t| t.name())
                .collect();
            (!absent.is_empty()).then(|| absent.join(", "))
        })
        .collect();
    let mut out = KpiRows::default();
    let mut w = 0;
    for sc in &scopes {
        for p in &periods {
            let full_end = local_day_start(&tz, p.next);
            let b = full_end.min(cut);
            let Some(m) = measured.get(w) else { break };
            w += 1;
            for (def, absent) in CATALOGUE.iter().zip(&missing) {
                if !wanted(def.code) {
                    continue;
                }
                let Some(x) = m.get(def.code) else { continue };
                let x = if absent.is_some() {
                    Measure::default()
                } else {
                    *x
                };
                out.scope_type.append_value(sc.kind());
                out.scope.append_value(sc.label());
                out.period_type.append_value(p.kind);
                out.period.append_value(&p.label);
                out.partial.append_value(b < full_end);
                out.kpi.append_value(def.code);
                out.value.append_option(x.value);
                out.unit.append_value(def.unit);
                out.numerator.append_option(x.numerator);
                out.denominator.append_option(x.denominator);
                out.missing_tables.append_option(absent.as_deref());
            }
            if out.kpi.len() >= rows {
                emit(out.take()?)?;
            }
        }
    }
    if !out.kpi.is_empty() {
        emit(out.take()?)?;
    }
    Ok(())
}

/// KPI rows being built.
#[derive(Default)]
struct KpiRows {
    scope_type: StringBuilder,
    scope: StringBuilder,
    period_type: StringBuilder,
    period: StringBuilder,
    partial: BooleanBuilder,
    kpi: StringBuilder,
    value: Float64Builder,
    unit: StringBuilder,
    numerator: Float64Builder,
    denominator: Float64Builder,
    missing_tables: StringBuilder,
}

impl KpiRows {
    /// The rows so far as a batch; starts empty again.
    fn take(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(self.scope_type.finish()),
            Arc::new(self.scope.finish()),
            Arc::new(self.period_type.finish()),
            Arc::new(self.period.finish()),
            Arc::new(self.partial.finish()),
            Arc::new(self.kpi.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.numerator.finish()),
            Arc::new(self.denominator.finish()),
            Arc::new(self.missing_tables.finish()),
        ];
        Ok(RecordBatch::try_new(kpi_schema(), arrays)?)
    }
}
