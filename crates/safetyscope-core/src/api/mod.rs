//! The one registry of analyses that every surface reads: the command line,
//! the Python module, the WASM dashboard and job files.
//!
//! Each analysis is declared once, in [`ANALYSES`]: its name, what it
//! computes, its options type (whose serde names, `Default` values and doc
//! comments are the option names, defaults and docs every surface shows),
//! the parameters that pick a view of it, the function that runs it and its
//! chart. A binding lists the registry, converts its own values to the JSON
//! options object and calls [`run`]; it states no defaults of its own.
//!
//! ```
//! let risk = safetyscope_core::api::analysis("risk").unwrap();
//! let days = risk.options().into_iter().find(|o| o.name == "half_life_days").unwrap();
//! assert!(days.doc.starts_with("Exponential decay"));
//! assert_eq!(days.default, serde_json::Value::Null);
//! ```

mod options;

use crate::model::schema::TableKind;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::analysis::followup::alerts::{AlertView, run_view as alert_view};
use crate::analysis::followup::options::AlertOptions;
use crate::analysis::forecast::{
    BACKTEST_VIEWS, FORECAST_VIEWS, ForecastOptions, backtest, backtest_svg, calibration_svg,
    forecast, forecast_svg,
};
use crate::analysis::kpis::compute::{KpiOptions, kpis};
use crate::analysis::kpis::targets::{TargetOptions, targets_svg, track_targets};
use crate::analysis::review::overview::{OverviewOptions, overview};
use crate::analysis::review::report::{ReportOptions, report};
use crate::analysis::spatial::density::{DensityOptions, density_batch, density_svg};
use crate::analysis::spatial::emerging::{EmergingOptions, emerging_batch, emerging_svg};
use crate::analysis::spatial::heatmap::{HeatmapOptions, event_heatmap, heatmap_chart};
use crate::analysis::spatial::hotspots::{HotspotOptions, hotspots_batch, hotspots_svg};
use crate::analysis::spatial::risk::{RiskOptions, risk_batch, risk_chart};
use crate::analysis::temporal::patterns::{
    KnoxOptions, PatternOptions, PatternView, knox, knox_batch, run_view as pattern_view,
};
use crate::model::vocab::Lang;
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

pub use options::{OptionKind, OptionSpec, option_value};

/// What an analysis returns: its result table and, where it draws one, its
/// chart (SVG).
#[derive(Debug, Clone)]
pub struct Output {
    /// The result's schema.
    pub schema: SchemaRef,
    /// The result's rows.
    pub batches: Vec<RecordBatch>,
    /// The chart, where the analysis draws one for these options.
    pub chart: Option<String>,
    /// The HTML document, for an analysis that writes one (`report`).
    pub document: Option<String>,
}

impl Output {
    fn one(batch: RecordBatch, chart: Option<String>) -> Output {
        Output {
            schema: batch.schema(),
            batches: vec![batch],
            chart,
            document: None,
        }
    }
}

/// A parameter that picks a view of an analysis rather than configuring it
/// (`view` of `patterns`, `list` of `alerts`, `cells` of `peaks`).
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// The name.
    pub name: &'static str,
    /// What it picks.
    pub doc: &'static str,
    /// The values it takes (for a flag: `true` and `false`).
    pub choices: &'static [&'static str],
    /// The default value.
    pub default: &'static str,
}

type Run = for<'a> fn(&'a Dataset, Map<String, Value>, Lang) -> BoxFuture<'a, Result<Output>>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One analysis of the registry.
#[derive(Clone, Copy)]
pub struct Analysis {
    /// The name: the CLI subcommand, the job `kind`, the WASM and Python
    /// `run` name.
    pub name: &'static str,
    /// The Python method that runs it.
    pub python: &'static str,
    /// One line: what it computes.
    pub summary: &'static str,
    /// A paragraph: how, and what the result holds.
    pub about: &'static str,
    /// The chart it draws, if any.
    pub chart: Option<&'static str>,
    /// The parameters that pick a view.
    pub params: &'static [Param],
    /// Options the command line also takes under another name:
    /// `(flag, option, fixed JSON value)`; without a value the flag takes
    /// the option's value.
    pub aliases: &'static [(&'static str, &'static str, Option<&'static str>)],
    /// The tables it reads: a dataset with rows in one of `any_of` and in
    /// every table of `all_of` can run it.
    pub needs: Needs,
    schema: fn() -> schemars::Schema,
    run: Run,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("name", &self.name)
            .finish()
    }
}

impl Analysis {
    /// The options, by name: kind, default and doc, from the options type,
    /// and `lang` for an analysis that draws a chart.
    pub fn options(&self) -> Vec<OptionSpec> {
        let mut specs = options::specs(&(self.schema)());
        if self.chart.is_some() {
            specs.push(OptionSpec {
                name: CHART_LANG.into(),
                kind: OptionKind::Choice(vec!["zh".into(), "en".into()]),
                default: Value::String(Lang::default().code().into()),
                doc: "Language of the chart's words: zh (Chinese) or en (English).".into(),
            });
        }
        specs
    }

    /// Run on a dataset with an options object (parameters included);
    /// absent options take their defaults, unknown ones are an error.
    ///
    /// The result's schema carries the evaluation instant it was computed
    /// for, as the metadata [`AS_OF_KEY`] (local RFC 3339): the `as_of` or
    /// `to` option given, else the end of the data
    /// ([`data_end`](crate::session::window::data_end)); Parquet outputs
    /// keep it.
    pub async fn run(&self, ds: &Dataset, options: Map<String, Value>) -> Result<Output> {
        let given = ["as_of", "to"].iter().find_map(|k| {
            options
                .get(*k)
                .and_then(Value::as_str)
                .map(|v| (*k, v.to_string()))
        });
        let mut options = options;
        let lang = if self.chart.is_some() {
            chart_lang(&mut options)?
        } else {
            Lang::default()
        };
        let out = (self.run)(ds, options, lang).await?;
        let instant = match given {
            Some((k, v)) => Some(crate::session::window::parse_local(ds, k, &v)?),
            None => crate::session::window::data_end(ds, "as_of").await.ok(),
        };
        let tz = crate::model::time::parse_tz(ds.timezone())?;
        let local = instant
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.with_timezone(&tz).to_rfc3339());
        match local {
            Some(t) => out.with_metadata(AS_OF_KEY, &t),
            None => Ok(out),
        }
    }
}

/// The option of the chart's language, taken by every analysis that draws
/// one.
pub const CHART_LANG: &str = "lang";

/// Take the chart's language out of an options object (see
/// [`CHART_LANG`]; English when absent).
pub fn chart_lang(options: &mut Map<String, Value>) -> Result<Lang> {
    match options.remove(CHART_LANG) {
        None | Some(Value::Null) => Ok(Lang::default()),
        Some(Value::String(v)) => Lang::parse(Some(&v), Lang::default()),
        Some(other) => Err(Error::option(
            CHART_LANG,
            format!("`{other}` is not zh or en"),
        )),
    }
}

/// The schema metadata key of a result's evaluation instant.
pub const AS_OF_KEY: &str = "safetyscope.as_of";

impl Output {
    /// The result with `key = value` in its schema's metadata.
    fn with_metadata(self, key: &str, value: &str) -> Result<Output> {
        let mut meta = self.schema.metadata().clone();
        meta.insert(key.to_string(), value.to_string());
        let schema = Arc::new(self.schema.as_ref().clone().with_metadata(meta));
        let batches = self
            .batches
            .into_iter()
            .map(|b| b.with_schema(schema.clone()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Output {
            schema,
            batches,
            chart: self.chart,
            document: self.document,
        })
    }
}

/// The tables whose events the spatial and temporal analyses count.
const EVENTS: &[TableKind] = &[
    TableKind::Incidents,
    TableKind::Hazards,
    TableKind::Violations,
];

/// The tables the risk map weighs as evidence (the events, alarm episodes
/// and intrusions).
const EVIDENCE: &[TableKind] = &[
    TableKind::Incidents,
    TableKind::Hazards,
    TableKind::Violations,
    TableKind::Readings,
    TableKind::Positions,
];

/// The tables an analysis reads.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// At least one of these tables, with rows (empty: none needed).
    pub any_of: &'static [TableKind],
    /// Every one of these tables, with rows.
    pub all_of: &'static [TableKind],
}

impl Needs {
    /// Rows in one of `any_of`.
    const fn any(any_of: &'static [TableKind]) -> Needs {
        Needs {
            any_of,
            all_of: &[],
        }
    }

    /// Rows in one of `any_of` and in every table of `all_of`.
    const fn both(any_of: &'static [TableKind], all_of: &'static [TableKind]) -> Needs {
        Needs { any_of, all_of }
    }
}

/// For each table of a report with accepted rows, the analyses it enables
/// (with the other tables of the report), and the analyses no table
/// enables, with what they lack: what `validate` says after its report.
pub fn enabled_text(report: &crate::model::report::ValidationReport) -> String {
    let has = |k: &TableKind| {
        report
            .tables
            .get(k.name())
            .is_some_and(|t| t.rows_accepted > 0)
    };
    let runs = |a: &Analysis| {
        (a.needs.any_of.is_empty() || a.needs.any_of.iter().any(has))
            && a.needs.all_of.iter().all(has)
    };
    let mut s = String::from("\nwhat the tables enable:\n");
    for k in TableKind::ALL.iter().filter(|k| has(k)) {
        let names: Vec<&str> = ANALYSES
            .iter()
            .filter(|a| runs(a) && (a.needs.any_of.contains(k) || a.needs.all_of.contains(k)))
            .map(|a| a.name)
            .collect();
        let list = if names.is_empty() {
            "(no analysis on its own)".to_string()
        } else {
            names.join(", ")
        };
        s.push_str(&format!("  {}: {list}\n", k.name()));
    }
    for a in ANALYSES.iter().filter(|a| !runs(a)) {
        let lack: Vec<&str> = a
            .needs
            .all_of
            .iter()
            .filter(|k| !has(k))
            .map(|k| k.name())
            .collect();
        let why = if !a.needs.any_of.is_empty() && !a.needs.any_of.iter().any(has) {
            let any: Vec<&str> = a.needs.any_of.iter().map(|k| k.name()).collect();
            let mut w = format!("one of {}", any.join(", "));
            if !lack.is_empty() {
                w.push_str(&format!(" and {}", lack.join(", ")));
            }
            w
        } else {
            lack.join(", ")
        };
        s.push_str(&format!("  not available: {} (needs {why})\n", a.name));
    }
    s
}

/// Every analysis, in the order the surfaces list them.
pub static ANALYSES: &[Analysis] = &[
    Analysis {
        name: "heatmap",
        python: "heatmap",
        summary: "Events per cell of the site plan, with an SVG grid.",
        about: "Counts incidents, injuries, near misses, hazards and violations per cell (or summed per zone or site) in a window.",
        chart: Some("Event heat map of one site (needs by = cell)"),
        params: &[],
        aliases: &[],
        needs: Needs::any(EVENTS),
        schema: || schemars::schema_for!(HeatmapOptions),
        run: |ds, m, lang| {
            Box::pin(async move {
                let o: HeatmapOptions = parse("heatmap", m)?;
                let df = event_heatmap(ds, &o).await?;
                let schema = df.schema().inner().clone();
                let batches = df.collect().await?;
                let chart = heatmap_chart(&batches, &o, lang)?;
                Ok(Output {
                    schema,
                    batches,
                    chart,
                    document: None,
                })
            })
        },
    },
    Analysis {
        name: "hotspots",
        python: "hotspots",
        summary: "Getis-Ord Gi* hot and cold spots over the cells of the site plan.",
        about: "Gi* z-scores and p-values per cell with rook, queen or distance-band neighbours, Benjamini-Hochberg q-values and confidence classes (hot_99 … cold_99); optionally a seeded permutation p-value.",
        chart: Some("Hot spots (Getis-Ord Gi*)"),
        params: &[],
        aliases: &[("row-standardize", "transform", Some("\"row\""))],
        needs: Needs::both(EVENTS, &[TableKind::Cells]),
        schema: || schemars::schema_for!(HotspotOptions),
        run: |ds, m, lang| {
            Box::pin(async move {
                let o: HotspotOptions = parse("hotspots", m)?;
                let b = hotspots_batch(ds, &o).await?;
                let svg = hotspots_svg(
                    &b,
                    o.site.as_deref(),
                    lang.w("热点分析（Getis-Ord Gi*）", "Hot spots (Getis-Ord Gi*)"),
                    lang,
                )?;
                Ok(Output::one(b, Some(svg)))
            })
        },
    },
    Analysis {
        name: "risk",
        python: "risk_map",
        summary: "The risk four-colour map: a level per cell (or zone, site) from the static LEC/LS assessment and the evidence of a window.",
        about: "Red / orange / yellow / blue per cell from the fixed LEC or LS assessment and a dynamic score of the window's weighted evidence (incidents, near misses, open and overdue hazards, violations, alarm episodes, intrusions), per hour worked with empirical-Bayes smoothing. The window defaults to the 90 days before the day after the latest event.",
        chart: Some("Risk four-colour map of one site (needs by = cell)"),
        params: &[],
        aliases: &[("no-exposure", "per_exposure", Some("false"))],
        needs: Needs::any(EVIDENCE),
        schema: || schemars::schema_for!(RiskOptions),
        run: |ds, m, lang| {
            Box::pin(async move {
                let o: RiskOptions = parse("risk", m)?;
                let b = risk_batch(ds, &o).await?;
                let chart = risk_chart(&b, &o, lang)?;
                Ok(Output::one(b, chart))
            })
        },
    },
    Analysis {
        name: "density",
        python: "density",
        summary: "A kernel density surface of point data over one site's plan.",
        about: "Gaussian or Epanechnikov kernel density of incidents, hazards, violations or positions with x/y, on a raster of the site plan; `density` integrates to one, `intensity` is points per m².",
        chart: Some("Kernel density"),
        params: &[],
        aliases: &[],
        needs: Needs::any(EVENTS),
        schema: || schemars::schema_for!(DensityOptions),
        run: |ds, m, lang| {
            Box::pin(async move {
                let o: DensityOptions = parse("density", m)?;
                let b = density_batch(ds, &o).await?;
                let svg = density_svg(&b, lang.w("核密度", "Kernel density"), lang)?;
                Ok(Output::one(b, Some(svg)))
            })
        },
    },
    Analysis {
        name: "emerging",
        python: "emerging_hotspots",
        summary: "Emerging hot spots: Gi* per week or month and the Mann-Kendall trend of each cell's z-scores.",
        about: "Each cell as new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating or historical (cold_ for cold spots), or no_pattern. The window defaults to the 365 days before the day after the latest event.",
        chart: Some("Emerging hot spots"),
        params: &[],
        aliases: &[],
        needs: Needs::both(EVENTS, &[TableKind::Cells]),
        schema: || schemars::schema_for!(EmergingOptions),
        run: |ds, m, lang| {
            Box::pin(async move {
                let o: EmergingOptions = parse("emerging", m)?;
                let b = emerging_batch(ds, &o).await?;
                let svg = emerging_svg(
                    &b,
                    o.site.as_deref(),
                    lang.w("新兴热点", "Emerging hot spots"),
                    lang,
                )?;
                Ok(Output::one(b, Some(svg)))
            })
        },
    },
    Analysis {
        name: "patterns",
        python: "patterns",
        summary: "Time-of-day patterns: the hour × weekday profile, shift profiles, events by shift, Pareto, cross-tab or accident pyramid.",
        about: "Dense grids in the dataset's local time with explicit zeros, exposure-normalised rates and a row for events whose time of day is unknown.",
        chart: Some("The view's chart (profile, shifts, Pareto, pyramid)"),
        params: &[Param {
            name: "view",
            doc: "What to compute.",
            choices: &[
                "profile",
                "shifts",
                "shift_events",
                "pareto",
                "crosstab",
                "pyramid",
            ],
            default: "profile",
        }],
        aliases: PATTERN_ALIASES,
        needs: Needs::any(EVENTS),
        schema: || schemars::schema_for!(PatternOptions),
        run: |ds, mut m, lang| {
            Box::pin(async move {
                let view = take(&mut m, "patterns", "view", "profile")?;
                patterns(ds, &view, m, lang).await
            })
        },
    },
    Analysis {
        name: "peaks",
        python: "peaks",
        summary: "Peaks: every hour × weekday (or hour) cell against the rest of the week by the exact Poisson rate test with exposure, FDR-adjusted.",
        about: "The ranked high-risk periods (adjacent significant hours merged) or, with cells, every tested cell with its rate ratio, exact confidence interval, p and Benjamini-Hochberg q.",
        chart: Some("Hour × weekday peaks"),
        params: &[Param {
            name: "cells",
            doc: "Write every tested cell instead of the merged periods.",
            choices: &["true", "false"],
            default: "false",
        }],
        aliases: PATTERN_ALIASES,
        needs: Needs::any(EVENTS),
        schema: || schemars::schema_for!(PatternOptions),
        run: |ds, mut m, lang| {
            Box::pin(async move {
                let cells = take(&mut m, "peaks", "cells", "false")?;
                let view = match cells.as_str() {
                    "true" => "peak_cells",
                    "false" => "peaks",
                    other => {
                        return Err(Error::option(
                            "cells",
                            format!("`{other}` is not true or false"),
                        ));
                    }
                };
                patterns(ds, view, m, lang).await
            })
        },
    },
    Analysis {
        name: "trends",
        python: "trends",
        summary: "Monthly trend with rolling means, year-over-year change and seasonality.",
        about: "Events per local month with the 3- and 12-month rolling means, the change against the same month a year before and a seasonal index.",
        chart: Some("Monthly trend"),
        params: &[],
        aliases: PATTERN_ALIASES,
        needs: Needs::any(EVENTS),
        schema: || schemars::schema_for!(PatternOptions),
        run: |ds, m, lang| Box::pin(async move { patterns(ds, "trends", m, lang).await }),
    },
    Analysis {
        name: "knox",
        python: "knox",
        summary: "Near-repeat space-time clustering: the Knox test on events with x/y.",
        about: "Pairs of events close in space and in time against the count expected if space and time were independent, with a Poisson p-value and a seeded permutation p-value. The event selection options are those of the patterns.",
        chart: None,
        params: &[],
        aliases: PATTERN_ALIASES,
        needs: Needs::any(&[TableKind::Incidents]),
        schema: knox_schema,
        run: |ds, m, _| {
            Box::pin(async move {
                let o = knox_options(m)?;
                Ok(Output::one(knox_batch(&knox(ds, &o).await?)?, None))
            })
        },
    },
    Analysis {
        name: "kpis",
        python: "kpis",
        summary: "Safety KPIs per scope and period (TRIR, LTIFR, rectification, training, …).",
        about: "Every KPI of the catalogue (`safetyscope kpis --catalogue`) per group, site or zone and per month, quarter or year, with numerator and denominator; values with a zero denominator are null.",
        chart: None,
        params: &[],
        aliases: &[("kpi", "kpis", None)],
        needs: Needs::any(&[
            TableKind::Incidents,
            TableKind::Hazards,
            TableKind::Violations,
            TableKind::Activities,
            TableKind::Exposure,
        ]),
        schema: || schemars::schema_for!(KpiOptions),
        run: |ds, m, _| {
            Box::pin(async move {
                let o: KpiOptions = parse("kpis", m)?;
                Ok(Output::one(kpis(ds, &o).await?, None))
            })
        },
    },
    Analysis {
        name: "targets",
        python: "track_targets",
        summary: "The annual targets against the KPIs as of a date: actual, expected, projection, probability, status.",
        about: "Each target of the dataset's targets table (or of `targets`) with the actual to date, the expected value to date (pro rata or seasonal), the projection for the year, the probability of meeting it and a status.",
        chart: Some("Targets (bullet charts)"),
        params: &[],
        aliases: &[],
        needs: Needs::both(&[], &[TableKind::Targets]),
        schema: || schemars::schema_for!(TargetOptions),
        run: |ds, m, lang| {
            Box::pin(async move {
                let o: TargetOptions = parse("targets", m)?;
                let b = track_targets(ds, &o).await?;
                let svg = targets_svg(&b, lang.w("目标完成情况", "Targets"), lang)?;
                Ok(Output::one(b, Some(svg)))
            })
        },
    },
    Analysis {
        name: "alerts",
        python: "alerts",
        summary: "What to chase as of a date: overdue hazards, repeat violators, fence intrusions, sensor alarm episodes, low safety points.",
        about: "One list or all of them, as of a date (default: the day after the latest record), over a history that starts 30 days before it unless `from` is given.",
        chart: Some("Overdue hazards by escalation step (list = overdue)"),
        params: &[Param {
            name: "list",
            doc: "Which list.",
            choices: &[
                "all",
                "overdue",
                "repeats",
                "intrusions",
                "episodes",
                "points",
            ],
            default: "all",
        }],
        aliases: &[("threshold", "thresholds", None)],
        needs: Needs::any(&[
            TableKind::Hazards,
            TableKind::Violations,
            TableKind::Readings,
            TableKind::Positions,
        ]),
        schema: || schemars::schema_for!(AlertOptions),
        run: |ds, mut m, lang| {
            Box::pin(async move {
                let view = AlertView::parse(&take(&mut m, "alerts", "list", "all")?)?;
                let o: AlertOptions = parse("alerts", m)?;
                let (b, svg) = alert_view(ds, view, &o, lang).await?;
                Ok(Output::one(b, svg))
            })
        },
    },
    Analysis {
        name: "forecast",
        python: "forecast",
        summary: "Next period's expected events per cell (and zone, site, group) from a Poisson model of the history, with prediction intervals and each cell's main drivers.",
        about: "A Poisson GLM with the hours worked as offset, the leading indicators of the period before (near misses, hazards reported, hazards overdue, violations, as ln(1 + count)) with each cell's mean of them (so that an indicator's effect compares a cell with itself), a term for the periods before an indicator was recorded, a trend and the season, fitted by IRLS; each cell's own level by empirical Bayes, shrunk to its zone. Intervals from the Poisson or, when the counts vary more, the negative binomial with Pearson's dispersion. Views: the forecast per cell, spread over the hours of the week, the model's coefficients with rate ratios, the leading-indicator table (group and each site), or its design rows.",
        chart: Some("Expected events per cell next period (view = cells)"),
        params: &[Param {
            name: "view",
            doc: "What to return.",
            choices: &FORECAST_VIEWS,
            default: "cells",
        }],
        aliases: &[],
        needs: Needs::both(&[TableKind::Incidents], &[TableKind::Cells]),
        schema: || schemars::schema_for!(ForecastOptions),
        run: |ds, mut m, lang| {
            Box::pin(async move {
                let view = take(&mut m, "forecast", "view", "cells")?;
                let o: ForecastOptions = parse("forecast", m)?;
                let b = forecast(ds, &o, &view).await?;
                let chart = match view.as_str() {
                    "cells" => Some(forecast_svg(&b, o.site.as_deref(), lang)?),
                    _ => None,
                };
                Ok(Output::one(b, chart))
            })
        },
    },
    Analysis {
        name: "backtest",
        python: "backtest",
        summary: "How often the forecasts come true: each of the last periods predicted from the ones before, by the model and three baselines, with the predictive accuracy index, hit rates, deviance and calibration.",
        about: "A rolling-origin evaluation: the model refitted at each origin against the cell's count in the period before, its long-run mean and the risk map's score. The share of events caught by the top 5, 10 and 20 % of cells, that share over the share of cells (PAI), the Poisson deviance and a calibration table by decile of the prediction.",
        chart: Some(
            "PAI curves: the predictive accuracy index at 5, 10 and 20 % of cells per method (view = summary); calibration: mean observed against mean predicted per tenth of the predictions (view = calibration)",
        ),
        params: &[Param {
            name: "view",
            doc: "What to return.",
            choices: &BACKTEST_VIEWS,
            default: "summary",
        }],
        aliases: &[],
        needs: Needs::both(&[TableKind::Incidents], &[TableKind::Cells]),
        schema: || schemars::schema_for!(ForecastOptions),
        run: |ds, mut m, lang| {
            Box::pin(async move {
                let view = take(&mut m, "backtest", "view", "summary")?;
                let o: ForecastOptions = parse("backtest", m)?;
                let b = backtest(ds, &o, &view).await?;
                let chart = match view.as_str() {
                    "summary" => Some(backtest_svg(&b, lang)?),
                    "calibration" => Some(calibration_svg(&b, lang)?),
                    _ => None,
                };
                Ok(Output::one(b, chart))
            })
        },
    },
    Analysis {
        name: "overview",
        python: "overview",
        summary: "The group overview: every unit ranked by its red and orange cells, with TRIR against target, overdue hazards and open alerts.",
        about: "One row for the group and one per site from the risk map by site, the year's TRIR (`kpis`), the group's TRIR target (`targets`) and the alerts as of the window's end; sites ranked by red cells, then orange cells, then risk score. The window is the risk map's (90 days before the day after the latest record by default) and is written in `from` and `to`.",
        chart: None,
        params: &[],
        aliases: &[],
        needs: Needs::any(EVIDENCE),
        schema: || schemars::schema_for!(OverviewOptions),
        run: |ds, m, _| {
            Box::pin(async move {
                let o: OverviewOptions = parse("overview", m)?;
                Ok(Output::one(overview(ds, &o).await?, None))
            })
        },
    },
    Analysis {
        name: "report",
        python: "report",
        summary: "The safety review-meeting report of a year: one printable HTML document (write it with `--out report.html`) and the table of every number in it.",
        about: "Targets against actuals, KPIs by month against the year before, the units ranked with their major and high-risk cells and why, statistically real hot spots and high-risk hours, overdue hazards by owner and escalation step, repeat violators, the points ranking, sensor alarm episodes, and the problems and next tasks drawn from them. Each number carries the analysis, row and column it comes from (`data-src`, `data-key`, `data-field`, `data-value`); the table lists them all. Chinese by default.",
        chart: None,
        params: &[],
        aliases: &[],
        needs: Needs::any(EVENTS),
        schema: || schemars::schema_for!(ReportOptions),
        run: |ds, m, _| {
            Box::pin(async move {
                let o: ReportOptions = parse("report", m)?;
                let r = report(ds, &o).await?;
                let mut out = Output::one(r.numbers, None);
                out.document = Some(r.html);
                Ok(out)
            })
        },
    },
];

/// The command-line names of the selection options of the pattern analyses.
const PATTERN_ALIASES: &[(&str, &str, Option<&str>)] = &[
    ("category", "categories", None),
    ("severity", "severities", None),
    ("shift", "shifts", None),
];

/// The analysis of a name, or an option error listing the names.
pub fn analysis(name: &str) -> Result<&'static Analysis> {
    ANALYSES.iter().find(|a| a.name == name).ok_or_else(|| {
        Error::option(
            "kind",
            format!(
                "unknown analysis `{name}` ({})",
                ANALYSES
                    .iter()
                    .map(|a| a.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Run the analysis `name` on a dataset with an options object.
pub async fn run(ds: &Dataset, name: &str, options: Map<String, Value>) -> Result<Output> {
    analysis(name)?.run(ds, options).await
}

/// Write the result of an analysis to `paths` as it is computed, for the
/// results too large to hold: the points ledger (`alerts` with `list =
/// "points"`, a row per person and month) and `kpis` (a row per scope,
/// period and KPI). Returns the rows and the bytes of each file, or `None`
/// when the analysis is computed whole (then use [`run`]).
#[cfg(feature = "native")]
pub async fn write_streamed(
    ds: &Dataset,
    name: &str,
    options: &Map<String, Value>,
    paths: &[std::path::PathBuf],
) -> Result<Option<(usize, Vec<u64>)>> {
    if name == "kpis" {
        let o: crate::analysis::kpis::compute::KpiOptions = parse("kpis", options.clone())?;
        let (rows, sizes) = crate::analysis::kpis::compute::write_kpis(ds, &o, paths).await?;
        return Ok(Some((rows, sizes)));
    }
    if name != "alerts" || options.get("list").and_then(Value::as_str) != Some("points") {
        return Ok(None);
    }
    let mut o = options.clone();
    o.remove("list");
    o.remove(CHART_LANG);
    let o: AlertOptions = parse("alerts", o)?;
    let (rows, sizes) =
        crate::analysis::followup::alerts::write_points_ledger(ds, &o, paths).await?;
    Ok(Some((rows, sizes)))
}

/// The registry as JSON: every analysis with its summary, parameters and
/// options (name, kind, default, doc), for bindings and docs.
pub fn registry_json() -> Value {
    Value::Array(
        ANALYSES
            .iter()
            .map(|a| {
                serde_json::json!({
                    "name": a.name,
                    "python": a.python,
                    "summary": a.summary,
                    "about": a.about,
                    "chart": a.chart,
                    "params": a.params.iter().map(|p| serde_json::json!({
                        "name": p.name, "doc": p.doc, "choices": p.choices, "default": p.default,
                    })).collect::<Vec<_>>(),
                    "aliases": a.aliases.iter().map(|(flag, option, value)| serde_json::json!({
                        "flag": flag, "option": option, "value": value,
                    })).collect::<Vec<_>>(),
                    "options": a.options(),
                })
            })
            .collect(),
    )
}

/// Deserialize an options object; errors name the analysis and the option.
fn parse<T: DeserializeOwned>(name: &str, m: Map<String, Value>) -> Result<T> {
    serde_json::from_value(Value::Object(m))
        .map_err(|e| Error::option(format!("{name} options"), e.to_string()))
}

/// Remove a parameter from the options, as text.
fn take(m: &mut Map<String, Value>, analysis: &str, key: &str, default: &str) -> Result<String> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(other) => Err(Error::option(
            format!("{analysis} options"),
            format!("`{key}` must be text, got {other}"),
        )),
    }
}

async fn patterns(ds: &Dataset, view: &str, m: Map<String, Value>, lang: Lang) -> Result<Output> {
    let view = PatternView::parse(view)?;
    let o: PatternOptions = parse("pattern", m)?;
    let (b, svg) = pattern_view(ds, view, &o, lang).await?;
    Ok(Output::one(b, svg))
}

/// The options of the Knox test that are not the event selection.
const KNOX_OWN: [&str; 4] = ["distance", "days", "permutations", "seed"];

/// Knox options from one flat object: its own options plus the event
/// selection (or a nested `events` object, as the options type has it).
fn knox_options(mut m: Map<String, Value>) -> Result<KnoxOptions> {
    if !m.contains_key("events") {
        let events: Map<String, Value> = m
            .iter()
            .filter(|(k, _)| !KNOX_OWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        m.retain(|k, _| KNOX_OWN.contains(&k.as_str()));
        m.insert("events".into(), Value::Object(events));
    }
    parse("knox", m)
}

/// The Knox options as one flat object: the selection's and its own.
fn knox_schema() -> schemars::Schema {
    let mut events = schemars::schema_for!(PatternOptions);
    let knox = schemars::schema_for!(KnoxOptions);
    if let (Some(Value::Object(props)), Some(Value::Object(own))) = (
        events.as_object_mut().and_then(|o| o.get_mut("properties")),
        knox.as_object().and_then(|o| o.get("properties")),
    ) {
        for k in KNOX_OWN {
            if let Some(v) = own.get(k) {
                props.insert(k.to_string(), v.clone());
            }
        }
    }
    events
}

/// The analyses and their options as Markdown: the generated part of
/// docs/cli.md (`safetyscope options --markdown`).
pub fn markdown() -> String {
    let mut s = String::new();
    for a in ANALYSES {
        s.push_str(&format!(
            "### `{}`\n\n{} {}\n\n",
            a.name, a.summary, a.about
        ));
        s.push_str(&format!(
            "Python: `Dataset.{}(...)` or `Dataset.run(\"{}\", ...)`; job: `kind = \"{}\"`; chart: {}.\n\n",
            a.python,
            a.name,
            a.name,
            a.chart.unwrap_or("none")
        ));
        s.push_str("| option | value | default | what it does |\n|---|---|---|---|\n");
        for p in a.params {
            s.push_str(&format!(
                "| `{}` | {} | `{}` | {} |\n",
                p.name,
                p.choices.join(" \\| "),
                p.default,
                p.doc
            ));
        }
        for o in a.options() {
            let default = match &o.default {
                Value::Null => "—".to_string(),
                v => format!("`{}`", compact(v)),
            };
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                o.name,
                kind_text(&o.kind),
                default,
                o.doc.replace('|', "\\|")
            ));
        }
        if !a.aliases.is_empty() {
            let names: Vec<String> = a
                .aliases
                .iter()
                .map(|(flag, option, value)| match value {
                    Some(v) => format!("`--{flag}` (= `{option} = {v}`)"),
                    None => format!("`--{flag}` (= `--{}`)", option.replace('_', "-")),
                })
                .collect();
            s.push_str(&format!("\nCommand-line aliases: {}.\n", names.join(", ")));
        }
        s.push('\n');
    }
    s
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| !x.is_object()) => {
            a.iter().map(compact).collect::<Vec<_>>().join(",")
        }
        Value::Object(_) | Value::Array(_) => v.to_string().replace('|', "\\|"),
        other => other.to_string(),
    }
}

fn kind_text(k: &OptionKind) -> String {
    match k {
        OptionKind::Bool => "true \\| false".into(),
        OptionKind::Integer => "integer".into(),
        OptionKind::Number => "number".into(),
        OptionKind::Text => "text".into(),
        OptionKind::Choice(v) => v.join(" \\| "),
        OptionKind::List(inner) => format!("list of {}", kind_text(inner)),
        OptionKind::Map => "NAME=number, …".into(),
        OptionKind::Json => "table (JSON on the command line)".into(),
    }
}

pub use crate::util::stats::DISPLAY_DECIMALS;

/// The colours, labels and number rules every surface draws with, from
/// the core: risk levels, hot-spot classes, target statuses, samples of
/// the sequential ramp of counts (`[t, colour]`, t from 0 to 1), the
/// Chinese and English labels of the vocabulary codes (`labels`), the
/// decimals of each kind of quantity (`decimals`) and the text colour of
/// each fill (`inks`).
pub fn palettes() -> Value {
    use crate::analysis::kpis::targets::status_color;
    use crate::analysis::spatial::hotspots::class_color;
    use crate::analysis::spatial::risk_model::Level;
    let levels: Map<String, Value> = [Level::Red, Level::Orange, Level::Yellow, Level::Blue]
        .into_iter()
        .map(|l| (l.name().to_string(), Value::from(l.color())))
        .collect();
    let classes: Map<String, Value> = [
        "hot_99",
        "hot_95",
        "hot_90",
        "not_significant",
        "cold_90",
        "cold_95",
        "cold_99",
        "island",
    ]
    .into_iter()
    .map(|c| (c.to_string(), Value::from(class_color(c))))
    .collect();
    let statuses: Map<String, Value> = [
        "achieved",
        "on_track",
        "at_risk",
        "off_track",
        "missed",
        "no_data",
    ]
    .into_iter()
    .map(|s| (s.to_string(), Value::from(status_color(s))))
    .collect();
    use crate::model::vocab::{
        ACCIDENT_TYPES, ACTIVITY_KINDS, DISPLAY_TERMS, HAZARD_LEVELS, SEVERITIES, VIOLATION_KINDS,
    };
    // The display terms last: a code in two vocabularies (`owner`) is named
    // as a reader sees it.
    let labels: Map<String, Value> = [
        ACCIDENT_TYPES,
        SEVERITIES,
        HAZARD_LEVELS,
        ACTIVITY_KINDS,
        VIOLATION_KINDS,
        DISPLAY_TERMS,
    ]
    .iter()
    .flat_map(|v| v.terms.iter())
    .map(|t| {
        (
            t.code.to_string(),
            serde_json::json!({"zh": t.zh, "en": t.en}),
        )
    })
    .collect();
    let sequential: Vec<(f64, String)> = (0..=100)
        .map(|i| {
            let t = f64::from(i) / 100.0;
            (t, safetyscope_render::sequential_color(t))
        })
        .collect();
    // The text colour with the higher contrast on each fill.
    let inks: Map<String, Value> = levels
        .values()
        .chain(classes.values())
        .chain(statuses.values())
        .filter_map(Value::as_str)
        .map(str::to_string)
        .chain(sequential.iter().map(|(_, c)| c.clone()))
        .map(|c| {
            let ink = if safetyscope_render::dark_text_on(&c) {
                "#111"
            } else {
                "#fff"
            };
            (c, Value::from(ink))
        })
        .collect();
    serde_json::json!({
        "inks": inks,
        "labels": labels,
        "decimals": DISPLAY_DECIMALS
            .iter()
            .map(|(k, d)| ((*k).to_string(), Value::from(*d)))
            .collect::<Map<String, Value>>(),
        "levels": levels,
        "classes": classes,
        "statuses": statuses,
        "sequential": sequential
            .iter()
            .map(|(t, c)| serde_json::json!([t, c]))
            .collect::<Vec<_>>(),
    })
}
