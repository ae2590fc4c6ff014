//! Incident patterns by time of day and location: hour × weekday profiles,
//! shifts, monthly trends, Pareto, cross-tabs, the accident pyramid, and
//! the tests that tell a real peak from noise (exact Poisson rate tests with
//! exposure, Benjamini–Hochberg) and near-repeat clustering (Knox).
//!
//! All time-of-day logic is in the dataset's local time. DataFusion scans,
//! filters and aggregates the events to quarter-hour instants (every UTC
//! offset in use is a multiple of 15 minutes, so a quarter-hour never
//! straddles a local hour); the quarter-hours are then placed in local
//! weekday and hour with the timezone rules, so daylight-saving days are
//! neither shifted nor doubled.

use std::collections::BTreeMap;

use arrow::array::{Array, BooleanArray, Float64Array, Int32Array, RecordBatch};
use serde::{Deserialize, Serialize};

pub use crate::analysis::temporal::knox::*;
pub use crate::analysis::temporal::options::*;
pub use crate::analysis::temporal::profile::{peaks, shift_events, shift_profile, time_profile};
use crate::analysis::temporal::summaries::key_of;
pub use crate::analysis::temporal::summaries::{crosstab, pareto, pyramid, trends};
use crate::model::vocab::Lang;
use crate::session::dataset::Dataset;
use crate::util::columns::col_as;
use crate::util::columns::str_col;
use crate::util::error::{Error, Result};

/// The pattern analyses by name, for the CLI and the bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternView {
    /// [`time_profile`].
    Profile,
    /// [`shift_profile`].
    Shifts,
    /// [`shift_events`].
    ShiftEvents,
    /// [`trends`].
    Trends,
    /// [`pareto`].
    Pareto,
    /// [`crosstab`].
    Crosstab,
    /// [`pyramid`].
    Pyramid,
    /// The ranked high-risk periods of [`peaks`].
    Peaks,
    /// Every tested cell of [`peaks`].
    PeakCells,
}

impl PatternView {
    /// Parse a view name (`profile`, `shifts`, `shift_events`, `trends`,
    /// `pareto`, `crosstab`, `pyramid`, `peaks`, `peak_cells`).
    pub fn parse(s: &str) -> Result<PatternView> {
        serde_json::from_value(serde_json::Value::String(s.replace('-', "_"))).map_err(|_| {
            Error::option(
                "view",
                format!("unknown pattern view `{s}` (profile, shifts, shift_events, trends, pareto, crosstab, pyramid, peaks, peak_cells)"),
            )
        })
    }
}

/// [`peaks`] with its chart: the hour × weekday map with the significant
/// cells outlined (the hour chart for `grid = "hour"`). Returns `(cells,
/// periods, svg)`.
pub async fn peaks_charted(
    ds: &Dataset,
    o: &PatternOptions,
    lang: Lang,
) -> Result<(RecordBatch, RecordBatch, String)> {
    let (cells, periods) = peaks(ds, o).await?;
    let svg = match o.grid {
        PeakGrid::HourWeekday => profile_svg(
            &cells,
            Some(&cells),
            o,
            lang.w("时段 × 星期高峰", "Hour × weekday peaks"),
            lang,
        )?,
        PeakGrid::Hour => group_hour_svg(&cells, o, lang.w("各时段事件", "Events by hour"), lang)?,
    };
    Ok((cells, periods, svg))
}

/// Compute a pattern view and its chart: the hour × weekday heat map of a
/// profile (group × hour when grouped by one dimension), peaks outlined on
/// the hour × weekday map, trend lines, the Pareto chart; no chart for the
/// other views.
pub async fn run_view(
    ds: &Dataset,
    view: PatternView,
    o: &PatternOptions,
    lang: Lang,
) -> Result<(RecordBatch, Option<String>)> {
    Ok(match view {
        PatternView::Profile => {
            let b = time_profile(ds, o).await?;
            let svg = if o.by.len() == 1 && o.by[0] != Dim::Kind {
                let dim = o.by[0].name();
                let title = match lang {
                    Lang::Zh => format!("{} × 时段", dim_zh(dim)),
                    Lang::En => format!("{dim} × hour"),
                };
                group_hour_svg(&b, o, &title, lang)?
            } else {
                profile_svg(&b, None, o, lang.w("时段 × 星期", "Hour × weekday"), lang)?
            };
            (b, Some(svg))
        }
        PatternView::Peaks | PatternView::PeakCells => {
            let (cells, periods, svg) = peaks_charted(ds, o, lang).await?;
            let b = if view == PatternView::Peaks {
                periods
            } else {
                cells
            };
            (b, Some(svg))
        }
        PatternView::Trends => {
            let b = trends(ds, o).await?;
            let svg = trends_svg(&b, o, lang.w("月度趋势", "Monthly trend"), lang)?;
            (b, Some(svg))
        }
        PatternView::Pareto => {
            let b = pareto(ds, o).await?;
            let svg = pareto_chart(&b, o, lang.w("帕累托图", "Pareto"), lang)?;
            (b, Some(svg))
        }
        PatternView::Shifts => (shift_profile(ds, o).await?, None),
        PatternView::ShiftEvents => (shift_events(ds, o).await?, None),
        PatternView::Crosstab => (crosstab(ds, o).await?, None),
        PatternView::Pyramid => (pyramid(ds, o).await?, None),
    })
}

// ---------------------------------------------------------------- charts

/// The Chinese name of a grouping dimension.
fn dim_zh(dim: &str) -> &str {
    match dim {
        "zone" => "区域",
        "cell" => "网格",
        "site" => "单位",
        "category" => "事故类别",
        "severity" => "严重程度",
        "kind" => "类型",
        "shift" => "班次",
        other => other,
    }
}

/// A group label as a reader sees it: each part's vocabulary code named in
/// `lang`.
fn shown(label: &str, lang: Lang) -> String {
    match lang {
        Lang::En => label.to_string(),
        Lang::Zh => label
            .split(" / ")
            .map(|p| lang.term(p))
            .collect::<Vec<_>>()
            .join(" / "),
    }
}

fn group_label(b: &RecordBatch, o: &PatternOptions, i: usize) -> Result<String> {
    let parts: Vec<String> = key_of(b, &o.by, i)?
        .into_iter()
        .map(|v| v.unwrap_or_else(|| "(none)".into()))
        .collect();
    Ok(parts.join(" / "))
}

/// The hour × weekday heat map of a profile (the first group), with the
/// significant cells of `peak_cells` outlined when given.
pub fn profile_svg(
    profile: &RecordBatch,
    peak_cells: Option<&RecordBatch>,
    o: &PatternOptions,
    title: &str,
    lang: Lang,
) -> Result<String> {
    let wd = col_as::<Int32Array>(profile, "weekday")?;
    let hr = col_as::<Int32Array>(profile, "hour")?;
    let ev = col_as::<Float64Array>(profile, "events")?;
    let first = if profile.num_rows() > 0 {
        Some(group_label(profile, o, 0)?)
    } else {
        None
    };
    let mut values = vec![vec![Some(0.0); 24]; 7];
    for i in 0..profile.num_rows() {
        if Some(group_label(profile, o, i)?) != first || hr.is_null(i) {
            continue;
        }
        values[wd.value(i) as usize][hr.value(i) as usize] = Some(ev.value(i));
    }
    let mut outlined = vec![];
    if let Some(p) = peak_cells {
        let pw = col_as::<Int32Array>(p, "weekday")?;
        let ph = col_as::<Int32Array>(p, "hour")?;
        let sig = col_as::<BooleanArray>(p, "significant")?;
        let rr = col_as::<Float64Array>(p, "rate_ratio")?;
        for i in 0..p.num_rows() {
            if Some(group_label(p, o, i)?) == first
                && sig.value(i)
                && !pw.is_null(i)
                && !rr.is_null(i)
                && rr.value(i) > 1.0
            {
                outlined.push((pw.value(i) as usize, ph.value(i) as usize));
            }
        }
    }
    let title = match &first {
        Some(g) if !g.is_empty() => format!("{title} · {}", shown(g, lang)),
        _ => title.to_string(),
    };
    Ok(safetyscope_render::matrix_svg(
        &safetyscope_render::MatrixChart {
            title,
            legend: lang.w("事件数", "events").into(),
            rows: match lang {
                Lang::Zh => WEEKDAYS_ZH.iter().map(|d| d.to_string()).collect(),
                Lang::En => WEEKDAYS_ZH
                    .iter()
                    .zip(WEEKDAYS)
                    .map(|(z, e)| format!("{z} {e}"))
                    .collect(),
            },
            cols: (0..24).map(|h| format!("{h}")).collect(),
            values,
            outlined,
            outline_label: lang
                .w("显著高峰（FDR 校正）", "significant peak (FDR)")
                .into(),
        },
    ))
}

/// A group × hour heat map (e.g. zone × hour) of a profile grouped by one
/// dimension: events summed over weekdays.
pub fn group_hour_svg(
    profile: &RecordBatch,
    o: &PatternOptions,
    title: &str,
    lang: Lang,
) -> Result<String> {
    let hr = col_as::<Int32Array>(profile, "hour")?;
    let ev = col_as::<Float64Array>(profile, "events")?;
    let mut rows: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for i in 0..profile.num_rows() {
        if hr.is_null(i) {
            continue;
        }
        let v = rows
            .entry(group_label(profile, o, i)?)
            .or_insert_with(|| vec![Some(0.0); 24]);
        let h = hr.value(i) as usize;
        v[h] = Some(v[h].unwrap_or(0.0) + ev.value(i));
    }
    Ok(safetyscope_render::matrix_svg(
        &safetyscope_render::MatrixChart {
            title: title.into(),
            legend: lang.w("事件数", "events").into(),
            rows: rows.keys().map(|k| shown(k, lang)).collect(),
            cols: (0..24).map(|h| format!("{h}")).collect(),
            values: rows.into_values().collect(),
            outlined: vec![],
            outline_label: String::new(),
        },
    ))
}

/// Monthly trend lines of the first group: events, 3- and 12-month means.
pub fn trends_svg(t: &RecordBatch, o: &PatternOptions, title: &str, lang: Lang) -> Result<String> {
    let month = str_col(t, "month")?;
    let first = if t.num_rows() > 0 {
        Some(group_label(t, o, 0)?)
    } else {
        None
    };
    let mut labels = vec![];
    let mut s: [Vec<Option<f64>>; 3] = Default::default();
    let cols = [
        col_as::<Float64Array>(t, "events")?,
        col_as::<Float64Array>(t, "rolling_3")?,
        col_as::<Float64Array>(t, "rolling_12")?,
    ];
    for i in 0..t.num_rows() {
        if Some(group_label(t, o, i)?) != first {
            continue;
        }
        labels.push(month.value(i).to_string());
        for (v, c) in s.iter_mut().zip(cols) {
            v.push((!c.is_null(i)).then(|| c.value(i)));
        }
    }
    let [a, b, c] = s;
    let series = vec![
        safetyscope_render::Series {
            label: lang.w("月事件数", "events / month").into(),
            color: "#d95f0e".into(),
            values: a,
            dashed: false,
        },
        safetyscope_render::Series {
            label: lang.w("3 个月均值", "3-month mean").into(),
            color: "#08519c".into(),
            values: b,
            dashed: false,
        },
        safetyscope_render::Series {
            label: lang.w("12 个月均值", "12-month mean").into(),
            color: "#555555".into(),
            values: c,
            dashed: true,
        },
    ];
    let title = match &first {
        Some(g) if !g.is_empty() => format!("{title} · {}", shown(g, lang)),
        _ => title.to_string(),
    };
    Ok(safetyscope_render::line_svg(&title, &labels, &series))
}

/// The Pareto chart of the first group.
pub fn pareto_chart(
    p: &RecordBatch,
    o: &PatternOptions,
    title: &str,
    lang: Lang,
) -> Result<String> {
    let v = str_col(p, o.dim.name())?;
    let ev = col_as::<Float64Array>(p, "events")?;
    let first = if p.num_rows() > 0 {
        Some(group_label(p, o, 0)?)
    } else {
        None
    };
    let mut items = vec![];
    for i in 0..p.num_rows() {
        if Some(group_label(p, o, i)?) == first {
            let label = if v.is_null(i) {
                lang.w("（无）", "(none)").to_string()
            } else {
                crate::model::vocab::ACCIDENT_TYPES
                    .term(v.value(i))
                    .map_or_else(|| v.value(i).to_string(), |t| t.zh.to_string())
            };
            items.push((label, ev.value(i)));
        }
    }
    Ok(safetyscope_render::pareto_svg(
        title,
        &items,
        lang.w("累计", "cumulative"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::roster::{Shift, default_shifts};

    #[test]
    fn shifts_cross_midnight() {
        let s = parse_shifts(&default_shifts()).unwrap();
        assert_eq!(s[1].minutes_in(2 * 60 + 30), Some(6 * 60 + 30));
        assert_eq!(s[1].minutes_in(20 * 60), Some(0));
        assert_eq!(s[1].minutes_in(8 * 60), None);
        assert_eq!(s[0].minutes_in(8 * 60), Some(0));
        assert!(
            parse_shifts(&[Shift {
                name: "x".into(),
                start: "08:10".into(),
                end: "16:00".into(),
                headcount: 1.0
            }])
            .is_err()
        );
    }

    #[test]
    fn knox_counts_pairs_inclusively() {
        // Three points: (0,0,t0), (3,4,t2), (100,0,t1): one space pair at
        // exactly 5 m, 2 days apart.
        let pts = [(0.0, 0.0, 0.0), (3.0, 4.0, 2.0), (100.0, 0.0, 1.0)];
        let r = knox_points(&pts, 5.0, 2.0, 0, 1, 0).unwrap();
        assert_eq!((r.close_space, r.close_time, r.statistic), (1, 3, 1));
        assert!((r.expected - 1.0).abs() < 1e-12);
    }
}
