//! The safety review-meeting report (安全生产工作总结): one self-contained,
//! printable HTML document for a year, built from the results of the other
//! analyses for the same dates, and a table of every number it shows.
//!
//! Every number in the document is a `<span class="n">` whose `data-src`,
//! `data-key` and `data-field` name the analysis, the row and the column it
//! comes from and whose `data-value` is the value itself, so that a reader
//! (or a test) can check it against that analysis's own output.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use arrow::array::{Array, RecordBatch};
use serde::{Deserialize, Serialize};

use crate::analysis::followup::alerts::{overdue_hazards, points_ledger, repeat_violators};
use crate::analysis::followup::episodes::alarm_episodes;
use crate::analysis::followup::options::AlertOptions;
use crate::analysis::kpis::compute::{KpiOptions, kpis};
use crate::analysis::kpis::targets::{TargetOptions, targets_svg, track_targets};
use crate::analysis::review::overview::{OverviewOptions, overview};
use crate::analysis::spatial::hotspots::{HotspotOptions, hotspots_batch};
use crate::analysis::spatial::risk::{RISK_DEFAULT_DAYS, risk_batch, risk_svg};
use crate::analysis::spatial::risk_model::RiskOptions;
use crate::analysis::temporal::options::PatternOptions;
use crate::analysis::temporal::patterns::{PatternView, run_view};
use crate::model::schema::TableKind;
use crate::model::time::{local_text, micros_to_local, parse_tz};
use crate::model::vocab::Lang;
use crate::session::dataset::Dataset;
use crate::session::window::{data_end, parse_local};
use crate::util::columns::{Cols, f64s, i64s, opt_f64, opt_i64_f64, strings, text_or_dash};
use crate::util::error::{Error, Result};
use crate::util::stats::display;

/// Options of [`report`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReportOptions {
    /// The year reviewed, e.g. `2025` (default: the year of the latest
    /// record). The report is as of the year's end or the end of the data,
    /// whichever comes first.
    pub period: Option<String>,
    /// The language: `zh` (default) or `en`.
    pub lang: Option<String>,
    /// Only this site (the targets stay the group's).
    pub site: Option<String>,
    /// Rows per ranked list (default 10).
    pub top: Option<usize>,
}

/// The report: the HTML document and the table of its numbers (`section`,
/// `src`, `key`, `field`, `value`, `text`).
pub struct Report {
    /// The document.
    pub html: String,
    /// Every number the document shows.
    pub numbers: RecordBatch,
}

/// The dates of a report: the year, its start and its end (exclusive, at
/// most the end of the data), as local text.
struct Dates {
    year: i32,
    from: String,
    to: String,
    /// The window of the risk map: the 90 days before `to`.
    risk_from: String,
}

/// Collects the numbers of the document as it is written.
#[derive(Default)]
struct Numbers {
    section: Vec<Option<String>>,
    src: Vec<Option<String>>,
    key: Vec<Option<String>>,
    field: Vec<Option<String>>,
    value: Vec<Option<f64>>,
    text: Vec<Option<String>>,
    current: String,
}

impl Numbers {
    /// A number as an HTML span with its source, recorded in the table.
    fn n(&mut self, src: &str, key: &str, field: &str, v: Option<f64>, kind: &str) -> String {
        let text = match v {
            None => "—".to_string(),
            Some(v) if kind == "percent" => format!("{} %", display(v * 100.0, "percent")),
            Some(v) => display(v, kind),
        };
        self.section.push(Some(self.current.clone()));
        self.src.push(Some(src.into()));
        self.key.push(Some(key.into()));
        self.field.push(Some(field.into()));
        self.value.push(v);
        self.text.push(Some(text.clone()));
        format!(
            r#"<span class="n" data-src="{}" data-key="{}" data-field="{}" data-value="{}">{}</span>"#,
            esc(src),
            esc(key),
            esc(field),
            v.map(|x| x.to_string()).unwrap_or_default(),
            esc(&text)
        )
    }

    fn finish(self) -> Result<RecordBatch> {
        Cols::default()
            .text("section", self.section)
            .text("src", self.src)
            .text("key", self.key)
            .text("field", self.field)
            .float("value", self.value)
            .text("text", self.text)
            .done()
    }
}

/// HTML-escaped text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The dates of the report for `period`.
async fn dates(ds: &Dataset, o: &ReportOptions) -> Result<Dates> {
    let tz = parse_tz(ds.timezone())?;
    let end = data_end(ds, "period").await?;
    let year = match &o.period {
        Some(p) => p
            .trim()
            .parse::<i32>()
            .map_err(|_| Error::option("period", format!("`{p}` is not a year (e.g. 2025)")))?,
        None => micros_to_local(&tz, end - 1)
            .map(|l| chrono::Datelike::year(&l))
            .ok_or_else(|| Error::data("dataset", "timestamp out of range"))?,
    };
    if !(1900..=9999).contains(&year) {
        return Err(Error::option(
            "period",
            format!("{year} is not a year between 1900 and 9999"),
        ));
    }
    let from = format!("{year}-01-01");
    let next = format!("{}-01-01", year + 1);
    let start = parse_local(ds, "period", &from)?;
    if start >= end {
        return Err(Error::option(
            "period",
            format!("the data ends before {year}: nothing to review"),
        ));
    }
    let stop = parse_local(ds, "period", &next)?.min(end);
    let text = |t: i64| local_text(&tz, t);
    let risk_from = (stop - RISK_DEFAULT_DAYS * 86_400_000_000).max(start);
    Ok(Dates {
        year,
        from,
        to: text(stop),
        risk_from: text(risk_from),
    })
}

/// A KPI's name with its unit where the number alone does not say it.
fn kpi_name(w: Lang, kpi: &str, unit: &str) -> String {
    match unit {
        "ratio" | "count" => w.term(kpi),
        u if (w == Lang::Zh) => format!("{}（{}）", w.term(kpi), w.term(u)),
        u => format!("{} ({})", w.term(kpi), w.term(u)),
    }
}

/// The value kind of a KPI unit, for its decimals.
fn kind_of(unit: &str) -> &'static str {
    match unit {
        "ratio" => "percent",
        "count" => "count",
        "per 200,000 h" => "rate",
        _ => "hours",
    }
}

const WEEKDAYS_ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
const WEEKDAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Write the review report for a year.
pub async fn report(ds: &Dataset, o: &ReportOptions) -> Result<Report> {
    let w = Lang::parse(o.lang.as_deref(), Lang::Zh)?;
    let top = o.top.unwrap_or(10).clamp(1, 1000);
    let d = dates(ds, o).await?;
    let site = o.site.clone();
    let mut n = Numbers::default();
    let mut body = String::new();
    let mut tasks: Vec<String> = Vec::new();
    let scope = site
        .clone()
        .unwrap_or_else(|| w.w("集团", "Group").to_string());

    // ------------------------------------------------ targets vs actuals
    n.current = "targets".into();
    let year = d.year.to_string();
    let mut target_rows: Vec<(String, String, String)> = Vec::new();
    if ds.row_count(TableKind::Targets) > 0 {
        let t = track_targets(
            ds,
            &TargetOptions {
                as_of: Some(d.to.clone()),
                ..Default::default()
            },
        )
        .await?;
        let (kpi, period, dir, status, unit) = (
            strings(&t, "kpi")?,
            strings(&t, "period")?,
            strings(&t, "direction")?,
            strings(&t, "status")?,
            strings(&t, "unit")?,
        );
        let (actual, target, projection) = (
            f64s(&t, "actual")?,
            f64s(&t, "effective_target")?,
            f64s(&t, "projection")?,
        );
        let _ = write!(
            body,
            "<section><h2>{}</h2><p class=\"note\">{}</p><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            w.w("一、年度目标完成情况", "1. Targets against actuals"),
            w.w(
                "集团口径，截至报告日期；预测为按当前进度推算的全年值。",
                "Group-wide, as of the report date; the projection extends the year to date."
            ),
            w.w("指标", "Indicator"),
            w.w("期间", "Period"),
            w.w("实际", "Actual"),
            w.w("目标", "Target"),
            w.w("全年预测", "Projection"),
            w.w("状态", "Status"),
        );
        for i in 0..t.num_rows() {
            if !period.value(i).starts_with(&year) {
                continue;
            }
            let key = format!("{}|{}", kpi.value(i), period.value(i));
            let k = kind_of(unit.value(i));
            let op = if dir.value(i) == "at_most" {
                "≤"
            } else {
                "≥"
            };
            let a = n.n("targets", &key, "actual", opt_f64(&actual, i), k);
            let g = n.n("targets", &key, "effective_target", opt_f64(&target, i), k);
            let _ = write!(
                body,
                "<tr data-status=\"{}\"><td>{}</td><td>{}</td><td>{a}</td><td>{op} {g}</td><td>{}</td><td class=\"st-{}\">{}</td></tr>",
                esc(status.value(i)),
                esc(&kpi_name(w, kpi.value(i), unit.value(i))),
                esc(period.value(i)),
                n.n("targets", &key, "projection", opt_f64(&projection, i), k),
                esc(status.value(i)),
                esc(&w.term(status.value(i))),
            );
            if period.value(i) == year
                && matches!(status.value(i), "missed" | "off_track" | "at_risk")
            {
                target_rows.push((kpi.value(i).to_string(), a, format!("{op} {g}")));
            }
        }
        body.push_str("</tbody></table>");
        if t.num_rows() > 0 {
            body.push_str(&targets_svg(&t, w.w("目标完成情况", "Targets"), w)?);
        }
        body.push_str("</section>");
    }

    // ------------------------------------------- KPI trend vs last year
    n.current = "kpis".into();
    if ds.row_count(TableKind::Exposure) > 0 {
        let k = kpis(
            ds,
            &KpiOptions {
                periods: vec!["month".into()],
                scopes: vec![if site.is_some() { "site" } else { "group" }.into()],
                site: site.clone(),
                kpis: vec!["trir".into(), "rectification_rate".into()],
                as_of: Some(d.to.clone()),
            },
        )
        .await?;
        let (sc, period, kpi, value) = (
            strings(&k, "scope")?,
            strings(&k, "period")?,
            strings(&k, "kpi")?,
            f64s(&k, "value")?,
        );
        let mut by: BTreeMap<(String, String), (String, Option<f64>)> = BTreeMap::new();
        for i in 0..k.num_rows() {
            by.insert(
                (kpi.value(i).to_string(), period.value(i).to_string()),
                (
                    sc.value(i).to_string(),
                    (!value.is_null(i)).then(|| value.value(i)),
                ),
            );
        }
        let _ = write!(
            body,
            "<section><h2>{}</h2><table><thead><tr><th>{}</th><th>TRIR {}</th><th>TRIR {}</th><th>{} {}</th><th>{} {}</th></tr></thead><tbody>",
            w.w(
                "二、主要指标月度走势（对比上年）",
                "2. KPIs by month against the year before"
            ),
            w.w("月份", "Month"),
            d.year,
            d.year - 1,
            w.w("隐患整改率", "Rectification"),
            d.year,
            w.w("隐患整改率", "Rectification"),
            d.year - 1,
        );
        for m in 1..=12 {
            let now = format!("{}-{m:02}", d.year);
            let before = format!("{}-{m:02}", d.year - 1);
            if !by.keys().any(|(_, p)| *p == now) {
                continue;
            }
            let mut cell =
                |kp: &str, p: &str, kind: &str| match by.get(&(kp.to_string(), p.to_string())) {
                    Some((s, v)) => n.n("kpis", &format!("{s}|{p}|{kp}"), "value", *v, kind),
                    None => "—".to_string(),
                };
            let a = cell("trir", &now, "rate");
            let b = cell("trir", &before, "rate");
            let c = cell("rectification_rate", &now, "percent");
            let e = cell("rectification_rate", &before, "percent");
            let _ = write!(
                body,
                "<tr><td>{now}</td><td>{a}</td><td>{b}</td><td>{c}</td><td>{e}</td></tr>"
            );
        }
        body.push_str("</tbody></table><p class=\"note\">");
        body.push_str(w.w(
            "TRIR：每 20 万工时可记录事件数。",
            "TRIR: recordable cases per 200,000 hours worked.",
        ));
        body.push_str("</p>");
        // The core's monthly trend of incidents to the end of the year.
        let (_, trend) = run_view(
            ds,
            PatternView::Trends,
            &PatternOptions {
                to: Some(d.to.clone()),
                site: site.clone(),
                ..Default::default()
            },
            w,
        )
        .await?;
        if let Some(svg) = trend {
            body.push_str(&svg);
        }
        body.push_str("</section>");
    }

    // -------------------------------------- units and red/orange cells
    n.current = "risk".into();
    let ov = overview(
        ds,
        &OverviewOptions {
            from: Some(d.risk_from.clone()),
            to: Some(d.to.clone()),
            risk: RiskOptions::default(),
        },
    )
    .await?;
    let _ = write!(
        body,
        "<section><h2>{}</h2><p class=\"note\">{} {} – {}</p><table><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>TRIR</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        w.w(
            "三、风险分布：单位排名与重大、较大风险网格",
            "3. Where the risk is: units ranked, and the major and high-risk cells"
        ),
        w.w("风险窗口：", "Risk window:"),
        esc(&d.risk_from),
        esc(&d.to),
        w.w("单位", "Unit"),
        w.w("等级", "Level"),
        w.w("重大网格", "Major cells"),
        w.w("较大网格", "High cells"),
        w.w("风险分值", "Score"),
        w.w("逾期隐患", "Overdue hazards"),
        w.w("待办提醒", "Open alerts"),
    );
    {
        let (scope_c, s, level, trend) = (
            strings(&ov, "scope")?,
            strings(&ov, "site")?,
            strings(&ov, "level")?,
            strings(&ov, "trend")?,
        );
        let (rank, red, orange, over, al) = (
            i64s(&ov, "rank")?,
            i64s(&ov, "red_cells")?,
            i64s(&ov, "orange_cells")?,
            i64s(&ov, "overdue_hazards")?,
            i64s(&ov, "open_alerts")?,
        );
        let (score, trir) = (f64s(&ov, "score")?, f64s(&ov, "trir")?);
        for i in 0..ov.num_rows() {
            if scope_c.value(i) != "site" || site.as_ref().is_some_and(|x| x != s.value(i)) {
                continue;
            }
            let key = s.value(i).to_string();
            let lv = if level.is_null(i) { "" } else { level.value(i) };
            let tr = if trend.is_null(i) { "" } else { trend.value(i) };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"lv-{}\">{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                n.n("overview", &key, "rank", opt_i64_f64(&rank, i), "count"),
                esc(&key),
                esc(lv),
                esc(&w.term(lv)),
                n.n("overview", &key, "red_cells", opt_i64_f64(&red, i), "count"),
                n.n(
                    "overview",
                    &key,
                    "orange_cells",
                    opt_i64_f64(&orange, i),
                    "count"
                ),
                n.n("overview", &key, "score", opt_f64(&score, i), "score"),
                esc(&w.term(tr)),
                n.n("overview", &key, "trir", opt_f64(&trir, i), "rate"),
                n.n(
                    "overview",
                    &key,
                    "overdue_hazards",
                    opt_i64_f64(&over, i),
                    "count"
                ),
                n.n(
                    "overview",
                    &key,
                    "open_alerts",
                    opt_i64_f64(&al, i),
                    "count"
                ),
            );
        }
    }
    body.push_str("</tbody></table>");
    let risk = risk_batch(
        ds,
        &RiskOptions {
            from: Some(d.risk_from.clone()),
            to: Some(d.to.clone()),
            site: site.clone(),
            ..Default::default()
        },
    )
    .await?;
    let mut hot_cells: Vec<(usize, f64, usize)> = Vec::new();
    {
        let level = strings(&risk, "level")?;
        let score = f64s(&risk, "score")?;
        for i in 0..risk.num_rows() {
            let r = match level.value(i) {
                "red" => 0,
                "orange" => 1,
                _ => continue,
            };
            hot_cells.push((r, score.value(i), i));
        }
        hot_cells.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    }
    let (red_n, orange_n) = (
        hot_cells.iter().filter(|c| c.0 == 0).count(),
        hot_cells.iter().filter(|c| c.0 == 1).count(),
    );
    let _ = write!(
        body,
        "<h3>{} ({} {red_n}, {} {orange_n})</h3><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        w.w(
            "重大、较大风险网格及原因",
            "Major and high-risk cells and why"
        ),
        w.w("重大", "major"),
        w.w("较大", "high"),
        w.w("网格", "Cell"),
        w.w("区域", "Zone"),
        w.w("责任人", "Owner"),
        w.w("等级", "Level"),
        w.w("来源", "From"),
        w.w("固有评估", "Assessment"),
        w.w("率比", "Rate ratio"),
        w.w("风险分值", "Score"),
    );
    {
        let (cell, zone, owner, level, source, method) = (
            strings(&risk, "cell")?,
            strings(&risk, "zone")?,
            strings(&risk, "owner")?,
            strings(&risk, "level")?,
            strings(&risk, "level_source")?,
            strings(&risk, "static_method")?,
        );
        let (sv, ratio, score) = (
            f64s(&risk, "static_value")?,
            f64s(&risk, "ratio")?,
            f64s(&risk, "score")?,
        );
        for &(_, _, i) in hot_cells.iter().take(top * 2) {
            let key = text_or_dash(&cell, i);
            let assessment = if method.is_null(i) {
                "—".to_string()
            } else {
                format!(
                    "{} {}",
                    method.value(i).to_uppercase(),
                    n.n("risk", &key, "static_value", opt_f64(&sv, i), "score")
                )
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"lv-{}\">{}</td><td>{}</td><td>{assessment}</td><td>{}</td><td>{}</td></tr>",
                esc(&key),
                esc(&text_or_dash(&zone, i)),
                esc(&text_or_dash(&owner, i)),
                esc(level.value(i)),
                esc(&w.term(level.value(i))),
                esc(&w.term(source.value(i))),
                n.n("risk", &key, "ratio", opt_f64(&ratio, i), "ratio"),
                n.n("risk", &key, "score", opt_f64(&score, i), "score"),
            );
        }
    }
    body.push_str("</tbody></table>");
    // The four-colour map of the unit ranked first (or the one reported).
    let first = match &site {
        Some(x) => Some(x.clone()),
        None => {
            let (scope_c, s) = (strings(&ov, "scope")?, strings(&ov, "site")?);
            (0..ov.num_rows())
                .find(|&i| scope_c.value(i) == "site")
                .map(|i| s.value(i).to_string())
        }
    };
    if let Some(unit) = first
        && risk.num_rows() > 0
    {
        body.push_str(&risk_svg(
            &risk,
            Some(&unit),
            w.w("风险四色图", "Risk four-colour map"),
            w,
        )?);
    }
    body.push_str("</section>");
    if red_n > 0 {
        tasks.push(if w == Lang::Zh {
            format!("{red_n} 个网格为重大风险（红色）、{orange_n} 个为较大风险（橙色）：逐格落实责任人和管控措施，下一周期复评。")
        } else {
            format!("{red_n} cells are at major risk (red) and {orange_n} at high risk (orange): name an owner and a control for each and reassess next period.")
        });
    }

    // ----------------------------------- hot spots and high-risk hours
    n.current = "when".into();
    let hs = if ds.row_count(TableKind::Cells) > 0 {
        Some(
            hotspots_batch(
                ds,
                &HotspotOptions {
                    from: Some(d.from.clone()),
                    to: Some(d.to.clone()),
                    site: site.clone(),
                    ..Default::default()
                },
            )
            .await?,
        )
    } else {
        None
    };
    let _ = write!(
        body,
        "<section><h2>{}</h2>",
        w.w(
            "四、统计显著的热点与高风险时段",
            "4. Statistically real hot spots and high-risk hours"
        ),
    );
    let mut hot_list: Vec<String> = Vec::new();
    if let Some(h) = &hs {
        let (cell, class) = (strings(h, "cell")?, strings(h, "class")?);
        let z = f64s(h, "z")?;
        let mut rows: Vec<usize> = (0..h.num_rows())
            .filter(|&i| !class.is_null(i) && class.value(i).starts_with("hot_"))
            .collect();
        rows.sort_by(|&a, &b| z.value(b).total_cmp(&z.value(a)));
        for &i in rows.iter().take(top) {
            let key = cell.value(i).to_string();
            hot_list.push(format!(
                "{} {} (z = {})",
                esc(&key),
                esc(&w.term(class.value(i))),
                n.n(
                    "hotspots",
                    &key,
                    "z",
                    (!z.is_null(i)).then(|| z.value(i)),
                    "z"
                )
            ));
        }
        let _ = write!(
            body,
            "<p>{} {}：{}</p>",
            w.w(
                "热点网格（Getis-Ord Gi*，FDR 校正）",
                "Hot-spot cells (Getis-Ord Gi*, FDR-adjusted)"
            ),
            n.n(
                "hotspots",
                "all",
                "hot_cells",
                Some(rows.len() as f64),
                "count"
            ),
            if hot_list.is_empty() {
                "—".to_string()
            } else {
                hot_list.join(w.w("；", "; "))
            }
        );
        if !rows.is_empty() {
            tasks.push(if w == Lang::Zh {
                format!("{} 个网格为统计显著的事故热点：安排专项检查，核查作业条件。", rows.len())
            } else {
                format!("{} cells are statistically significant accident hot spots: schedule targeted inspections.", rows.len())
            });
        }
    }
    let (peaks, _) = run_view(
        ds,
        PatternView::Peaks,
        &PatternOptions {
            from: Some(d.from.clone()),
            to: Some(d.to.clone()),
            site: site.clone(),
            ..Default::default()
        },
        w,
    )
    .await?;
    let _ = write!(
        body,
        "<table><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        w.w("星期", "Day"),
        w.w("时段", "Hours"),
        w.w("事件数", "Events"),
        w.w("期望", "Expected"),
        w.w("率比", "Rate ratio"),
    );
    {
        let (rank, wd, hf, ht) = (
            i64s(&peaks, "rank")?,
            i64s(&peaks, "weekday")?,
            i64s(&peaks, "hour_from")?,
            i64s(&peaks, "hour_to")?,
        );
        let (ev, ex, rr) = (
            f64s(&peaks, "events")?,
            f64s(&peaks, "expected")?,
            f64s(&peaks, "rate_ratio")?,
        );
        for i in 0..peaks.num_rows().min(top) {
            let key = rank.value(i).to_string();
            let day = if wd.is_null(i) {
                "—".to_string()
            } else {
                let k = wd.value(i).clamp(0, 6) as usize;
                (if w == Lang::Zh {
                    WEEKDAYS_ZH[k]
                } else {
                    WEEKDAYS_EN[k]
                })
                .to_string()
            };
            let _ = write!(
                body,
                "<tr><td>{key}</td><td>{day}</td><td>{}:00–{}:00</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                hf.value(i),
                ht.value(i),
                n.n("peaks", &key, "events", Some(ev.value(i)), "count"),
                n.n("peaks", &key, "expected", Some(ex.value(i)), "hours"),
                n.n(
                    "peaks",
                    &key,
                    "rate_ratio",
                    (!rr.is_null(i)).then(|| rr.value(i)),
                    "ratio"
                ),
            );
            if i == 0 {
                tasks.push(if w == Lang::Zh {
                    format!("事故最集中的时段为{day} {}:00–{}:00（率比 {}）：该时段加强带班和巡查。", hf.value(i), ht.value(i), display(rr.value(i), "ratio"))
                } else {
                    format!("Accidents concentrate on {day} {}:00–{}:00 (rate ratio {}): add supervision and patrols then.", hf.value(i), ht.value(i), display(rr.value(i), "ratio"))
                });
            }
        }
        if peaks.num_rows() == 0 {
            let _ = write!(
                body,
                "<tr><td colspan=\"6\">{}</td></tr>",
                w.w("无显著高峰", "No significant peaks")
            );
        }
    }
    body.push_str("</tbody></table></section>");

    // ---------------------------------- overdue hazards by owner, step
    n.current = "overdue".into();
    let follow = AlertOptions {
        as_of: Some(d.to.clone()),
        site: site.clone(),
        ..Default::default()
    };
    let _ = write!(
        body,
        "<section><h2>{}</h2>",
        w.w(
            "五、逾期未整改隐患（按责任人和督办层级）",
            "5. Overdue hazards by owner and escalation step"
        ),
    );
    let mut overdue_total = 0usize;
    let mut overdue_by_site: BTreeMap<(String, String), usize> = BTreeMap::new();
    if ds.row_count(TableKind::Hazards) > 0 {
        let oh = overdue_hazards(ds, &follow).await?;
        let (owner, step, s, zone) = (
            strings(&oh, "owner")?,
            strings(&oh, "escalation")?,
            strings(&oh, "site")?,
            strings(&oh, "zone")?,
        );
        let hours = f64s(&oh, "hours_overdue")?;
        // (owner, step) → (count, longest hours overdue)
        let mut by: BTreeMap<(String, String), (usize, f64)> = BTreeMap::new();
        for i in 0..oh.num_rows() {
            let e = by
                .entry((text_or_dash(&owner, i), text_or_dash(&step, i)))
                .or_insert((0, 0.0));
            e.0 += 1;
            e.1 = e.1.max(hours.value(i));
            *overdue_by_site
                .entry((text_or_dash(&s, i), text_or_dash(&zone, i)))
                .or_default() += 1;
        }
        overdue_total = oh.num_rows();
        let mut rows: Vec<_> = by.into_iter().collect();
        let rank = |s: &str| match s {
            "leadership" => 0,
            "supervisor" => 1,
            _ => 2,
        };
        rows.sort_by(|a, b| {
            rank(&a.0.1)
                .cmp(&rank(&b.0.1))
                .then(b.1.0.cmp(&a.1.0))
                .then(b.1.1.total_cmp(&a.1.1))
                .then(a.0.cmp(&b.0))
        });
        let _ = write!(
            body,
            "<p>{} {}</p><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            w.w(
                "截至报告日期逾期隐患共",
                "Overdue hazards at the report date:"
            ),
            n.n(
                "overdue",
                "all",
                "count",
                Some(overdue_total as f64),
                "count"
            ),
            w.w("责任人", "Owner"),
            w.w("督办层级", "Step"),
            w.w("逾期隐患数", "Overdue"),
            w.w("最长逾期（天）", "Longest overdue (days)"),
        );
        for ((o_, s_), (c, h)) in rows.iter().take(top) {
            let key = format!("{o_}|{s_}");
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(o_),
                esc(&w.term(s_)),
                n.n("overdue", &key, "count", Some(*c as f64), "count"),
                n.n("overdue", &key, "max_days_overdue", Some(*h / 24.0), "days"),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");

    // ----------------------------------------------- repeat violators
    n.current = "repeats".into();
    let mut year_follow = follow.clone();
    year_follow.from = Some(d.from.clone());
    let _ = write!(
        body,
        "<section><h2>{}</h2>",
        w.w("六、连续违章人员", "6. Repeat violators")
    );
    if ds.row_count(TableKind::Violations) > 0 {
        let r = repeat_violators(ds, &year_follow).await?;
        let (person, kind, first, s) = (
            strings(&r, "person_id")?,
            strings(&r, "kind")?,
            strings(&r, "first_day")?,
            strings(&r, "site")?,
        );
        let days = i64s(&r, "days")?;
        let mut idx: Vec<usize> = (0..r.num_rows()).collect();
        idx.sort_by(|&a, &b| {
            days.value(b)
                .cmp(&days.value(a))
                .then(first.value(a).cmp(first.value(b)))
        });
        let people: std::collections::BTreeSet<&str> =
            (0..r.num_rows()).map(|i| person.value(i)).collect();
        let _ = write!(
            body,
            "<p>{} {} {} {}</p><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            w.w("全年连续违章", "Runs of repeat violations in the year:"),
            n.n("repeats", "all", "runs", Some(r.num_rows() as f64), "count"),
            w.w("次，涉及人员", "by"),
            n.n(
                "repeats",
                "all",
                "people",
                Some(people.len() as f64),
                "count"
            ),
            w.w("人员", "Person"),
            w.w("单位", "Unit"),
            w.w("违章类型", "Violation"),
            w.w("开始日期", "From"),
            w.w("连续天数", "Days in a row"),
        );
        for &i in idx.iter().take(top) {
            let key = format!("{}|{}|{}", person.value(i), kind.value(i), first.value(i));
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(person.value(i)),
                esc(s.value(i)),
                esc(&w.term(kind.value(i))),
                esc(first.value(i)),
                n.n("repeats", &key, "days", Some(days.value(i) as f64), "count"),
            );
        }
        body.push_str("</tbody></table>");
        if !people.is_empty() {
            tasks.push(if w == Lang::Zh {
                format!("{} 人出现连续违章：约谈并复训，班组长跟踪。", people.len())
            } else {
                format!("{} people violated on consecutive days: interview and retrain them, team leaders to follow up.", people.len())
            });
        }
    }
    body.push_str("</section>");

    // ----------------------------------------------- points ranking
    n.current = "points".into();
    let _ = write!(
        body,
        "<section><h2>{}</h2>",
        w.w("七、安全积分排名", "7. Safety points ranking")
    );
    if ds.row_count(TableKind::Violations) > 0 || ds.row_count(TableKind::Hazards) > 0 {
        let p = points_ledger(ds, &follow).await?;
        let (person, s, month) = (
            strings(&p, "person_id")?,
            strings(&p, "site")?,
            strings(&p, "month")?,
        );
        let total = f64s(&p, "total")?;
        let last = (0..p.num_rows()).map(|i| month.value(i).to_string()).max();
        let mut idx: Vec<usize> = (0..p.num_rows())
            .filter(|&i| Some(month.value(i)) == last.as_deref())
            .collect();
        idx.sort_by(|&a, &b| {
            total
                .value(b)
                .total_cmp(&total.value(a))
                .then(person.value(a).cmp(person.value(b)))
        });
        let row = |n: &mut Numbers, body: &mut String, i: usize| {
            let key = format!("{}|{}", person.value(i), month.value(i));
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(person.value(i)),
                esc(s.value(i)),
                n.n("points", &key, "total", Some(total.value(i)), "count"),
            );
        };
        let head = format!(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            w.w("人员", "Person"),
            w.w("单位", "Unit"),
            w.w("积分", "Points"),
        );
        let _ = write!(
            body,
            "<div class=\"two\"><div><h3>{}</h3>{head}",
            w.w("最高", "Top")
        );
        for &i in idx.iter().take(top) {
            row(&mut n, &mut body, i);
        }
        let _ = write!(
            body,
            "</tbody></table></div><div><h3>{}</h3>{head}",
            w.w("最低", "Bottom")
        );
        let start = idx.len().saturating_sub(top);
        for &i in idx[start..].iter().rev() {
            row(&mut n, &mut body, i);
        }
        body.push_str("</tbody></table></div></div>");
    }
    body.push_str("</section>");

    // ----------------------------------------- sensor alarm episodes
    n.current = "episodes".into();
    let _ = write!(
        body,
        "<section><h2>{}</h2>",
        w.w("八、传感器报警", "8. Sensor alarm episodes")
    );
    if ds.row_count(TableKind::Readings) > 0 {
        let e = alarm_episodes(ds, &year_follow).await?;
        let (s, metric) = (strings(&e, "site")?, strings(&e, "metric")?);
        let dur = f64s(&e, "duration_minutes")?;
        let mut by: BTreeMap<(String, String), (usize, f64, f64)> = BTreeMap::new();
        for i in 0..e.num_rows() {
            let x = by
                .entry((s.value(i).to_string(), metric.value(i).to_string()))
                .or_insert((0, 0.0, 0.0));
            x.0 += 1;
            x.1 += dur.value(i);
            x.2 = x.2.max(dur.value(i));
        }
        let _ = write!(
            body,
            "<p>{} {}</p><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            w.w("全年报警次数", "Alarm episodes in the year:"),
            n.n(
                "episodes",
                "all",
                "count",
                Some(e.num_rows() as f64),
                "count"
            ),
            w.w("单位", "Unit"),
            w.w("监测项", "Metric"),
            w.w("次数", "Episodes"),
            w.w("累计时长（分钟）", "Total minutes"),
            w.w("最长（分钟）", "Longest (min)"),
        );
        for ((s_, m_), (c, total, longest)) in &by {
            let key = format!("{s_}|{m_}");
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(s_),
                esc(m_),
                n.n("episodes", &key, "count", Some(*c as f64), "count"),
                n.n("episodes", &key, "total_minutes", Some(*total), "count"),
                n.n("episodes", &key, "longest_minutes", Some(*longest), "count"),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");

    // ------------------------------------- problems and next tasks
    n.current = "tasks".into();
    let mut problems: Vec<String> = Vec::new();
    for (kpi, actual, target) in &target_rows {
        let mut line = if w == Lang::Zh {
            format!("{}为 {actual}，未达到目标 {target}", esc(&w.term(kpi)))
        } else {
            format!(
                "{} is {actual}, against a target of {target}",
                esc(&w.term(kpi))
            )
        };
        if kpi == "rectification_rate"
            && overdue_total > 0
            && let Some(((s_, z_), c)) = overdue_by_site
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        {
            line.push_str(&if w == Lang::Zh {
                format!(
                    "：{overdue_total} 项隐患逾期，其中 {c} 项在 {} {}",
                    esc(s_),
                    esc(z_)
                )
            } else {
                format!(
                    ": {overdue_total} hazards overdue, {c} of them in {} {}",
                    esc(s_),
                    esc(z_)
                )
            });
        }
        line.push_str(w.w("。", "."));
        problems.push(line);
    }
    let _ = write!(
        body,
        "<section><h2>{}</h2><h3>{}</h3><ol>",
        w.w("九、存在问题与下一步工作", "9. Problems and next tasks"),
        w.w("存在问题", "Problems"),
    );
    if problems.is_empty() {
        let _ = write!(
            body,
            "<li>{}</li>",
            w.w(
                "年度目标均已达成或正常推进。",
                "Every target is achieved or on track."
            )
        );
    }
    for p in &problems {
        let _ = write!(body, "<li>{p}</li>");
    }
    let _ = write!(
        body,
        "</ol><h3>{}</h3><ol>",
        w.w("下一步工作", "Next tasks")
    );
    if overdue_total > 0 {
        tasks.insert(
            0,
            if w == Lang::Zh {
                format!("{overdue_total} 项逾期隐患按督办层级逐项销号，领导督办项限期整改。")
            } else {
                format!("Close the {overdue_total} overdue hazards step by step; the leadership-step ones first, with deadlines.")
            },
        );
    }
    for t in &tasks {
        let _ = write!(body, "<li>{}</li>", esc(t));
    }
    body.push_str("</ol></section>");

    let title = if w == Lang::Zh {
        format!("{} {} 年度安全生产工作总结", esc(&scope), d.year)
    } else {
        format!("{} safety review {}", esc(&scope), d.year)
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>{title}</title><style>{CSS}</style></head><body><header><h1>{title}</h1><p>{} {} – {} · {} {}</p></header>{body}<footer>{}</footer></body></html>\n",
        w.w("统计期间：", "Period:"),
        esc(&d.from),
        esc(&d.to),
        w.w("数据截至", "data to"),
        esc(&d.to),
        w.w(
            "由 safetyscope 生成；每个数字均可与同日期的命令行输出核对。",
            "Made by safetyscope; every number equals the command line's output for the same dates."
        ),
        lang = if w == Lang::Zh { "zh-CN" } else { "en" },
    );
    Ok(Report {
        html,
        numbers: n.finish()?,
    })
}

/// The report's style: A4 print, tables that break between rows.
const CSS: &str = "body{font-family:\"Noto Sans CJK SC\",\"WenQuanYi Micro Hei\",\"PingFang SC\",\"Microsoft YaHei\",Arial,sans-serif;margin:24px auto;max-width:900px;color:#111;font-size:13px;line-height:1.45}h1{font-size:22px;margin:0}header{border-bottom:2px solid #111;margin-bottom:12px}h2{font-size:16px;margin:18px 0 6px;border-left:5px solid #1f2d3d;padding-left:6px}h3{font-size:14px;margin:10px 0 4px}table{border-collapse:collapse;width:100%;margin:4px 0 8px}th,td{border:1px solid #999;padding:2px 6px;text-align:left;vertical-align:top}td .n,td.n{font-variant-numeric:tabular-nums}.note{color:#333;font-size:12px}.two{display:grid;grid-template-columns:1fr 1fr;gap:12px}.lv-red{background:#c53030;color:#fff}.lv-orange{background:#ed8936;color:#111}.lv-yellow{background:#f6e05e}.lv-blue{background:#2b6cb0;color:#fff}.st-missed,.st-off_track{color:#7f0000;font-weight:700}.st-achieved{color:#0a5a2a;font-weight:700}svg{max-width:100%;height:auto}footer{margin-top:16px;color:#333;font-size:11px}@page{size:A4;margin:14mm}@media print{body{margin:0;max-width:none;font-size:11px}tr{break-inside:avoid}h2{break-after:avoid}section{break-inside:auto}}";
