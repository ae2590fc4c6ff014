//! The event heat map: counts of incidents, hazards and violations per grid
//! cell, joined to the site plan so that every cell appears (with zeros) and
//! events in cells missing from the plan are kept and flagged.

use arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::common::{JoinType, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::schema::TableKind;
use crate::timeparse::{default_formats, parse_timestamp, parse_tz};

/// Event tables a heat map can count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Incidents and near misses.
    Incidents,
    /// Hazard reports.
    Hazards,
    /// Violations.
    Violations,
}

impl EventKind {
    fn table(self) -> TableKind {
        match self {
            EventKind::Incidents => TableKind::Incidents,
            EventKind::Hazards => TableKind::Hazards,
            EventKind::Violations => TableKind::Violations,
        }
    }

    /// Parse a kind name.
    pub fn parse(s: &str) -> Result<EventKind> {
        match s.trim() {
            "incidents" | "incident" => Ok(EventKind::Incidents),
            "hazards" | "hazard" => Ok(EventKind::Hazards),
            "violations" | "violation" => Ok(EventKind::Violations),
            other => Err(Error::option(
                "kinds",
                format!("unknown event kind `{other}` (incidents, hazards, violations)"),
            )),
        }
    }
}

/// Options of [`event_heatmap`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeatmapOptions {
    /// Event tables counted into `events` (default: incidents).
    pub kinds: Vec<EventKind>,
    /// Start of the window, inclusive, local time (`2025-01-01` or `2025-01-01 08:00`).
    pub from: Option<String>,
    /// End of the window, exclusive, local time.
    pub to: Option<String>,
    /// Only this site.
    pub site: Option<String>,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        HeatmapOptions {
            kinds: vec![EventKind::Incidents],
            from: None,
            to: None,
            site: None,
        }
    }
}

/// A window bound as a timestamp literal in the dataset timezone.
pub(crate) fn bound(ds: &Dataset, option: &str, value: Option<&str>) -> Result<Option<Expr>> {
    let Some(v) = value else { return Ok(None) };
    let tz = parse_tz(ds.timezone())?;
    let micros = parse_timestamp(v, &default_formats(), &tz).ok_or_else(|| {
        Error::option(
            option,
            format!("`{v}` is not a date or time (e.g. 2025-03-01 or 2025-03-01 08:00)"),
        )
    })?;
    Ok(Some(lit(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some(ds.timezone().into()),
    ))))
}

/// Rows of a table in the window and site of the options.
pub(crate) async fn filtered(
    ds: &Dataset,
    kind: TableKind,
    from: Option<&str>,
    to: Option<&str>,
    site: Option<&str>,
) -> Result<DataFrame> {
    let mut df = ds.table(kind).await?;
    let tcol = kind
        .def()
        .time_column
        .expect("event tables have a time column");
    if let Some(b) = bound(ds, "from", from)? {
        df = df.filter(col(tcol).gt_eq(b))?;
    }
    if let Some(b) = bound(ds, "to", to)? {
        df = df.filter(col(tcol).lt(b))?;
    }
    if let Some(s) = site {
        df = df.filter(col("site").eq(lit(s.to_string())))?;
    }
    Ok(df)
}

fn one_if(e: Expr) -> Expr {
    when(e, lit(1i64)).otherwise(lit(0i64)).expect("valid case")
}

/// Counts of events per cell of the site plan.
///
/// Output schema, one row per cell of the plan (ordered by site, row, col)
/// plus one row per (site, cell) that has events but is not in the plan:
///
/// | column | type | meaning |
/// |---|---|---|
/// | `site`, `zone`, `cell` | text | where |
/// | `row`, `col` | int32 | grid position (null when not in the plan) |
/// | `owner` | text | the cell's owner |
/// | `in_plan` | bool | the cell is in the site plan |
/// | `incidents` | int64 | incidents and near misses |
/// | `injuries` | int64 | incidents other than near misses |
/// | `near_misses` | int64 | near misses |
/// | `hazards`, `violations` | int64 | hazard reports, violations |
/// | `events` | int64 | sum over the selected `kinds` |
pub async fn event_heatmap(ds: &Dataset, o: &HeatmapOptions) -> Result<DataFrame> {
    if o.kinds.is_empty() {
        return Err(Error::option("kinds", "select at least one event kind"));
    }
    let mut union: Option<DataFrame> = None;
    for kind in [
        EventKind::Incidents,
        EventKind::Hazards,
        EventKind::Violations,
    ] {
        let df = filtered(
            ds,
            kind.table(),
            o.from.as_deref(),
            o.to.as_deref(),
            o.site.as_deref(),
        )
        .await?;
        let is = |k: EventKind| if kind == k { lit(1i64) } else { lit(0i64) };
        let (injuries, near) = if kind == EventKind::Incidents {
            (
                one_if(col("severity").not_eq(lit("near_miss"))),
                one_if(col("severity").eq(lit("near_miss"))),
            )
        } else {
            (lit(0i64), lit(0i64))
        };
        let selected = if o.kinds.contains(&kind) {
            lit(1i64)
        } else {
            lit(0i64)
        };
        let df = df.select(vec![
            col("site"),
            col("cell"),
            is(EventKind::Incidents).alias("incidents"),
            injuries.alias("injuries"),
            near.alias("near_misses"),
            is(EventKind::Hazards).alias("hazards"),
            is(EventKind::Violations).alias("violations"),
            selected.alias("events"),
        ])?;
        union = Some(match union {
            None => df,
            Some(u) => u.union(df)?,
        });
    }
    let counts = union.expect("three kinds").aggregate(
        vec![col("site").alias("e_site"), col("cell").alias("e_cell")],
        [
            "incidents",
            "injuries",
            "near_misses",
            "hazards",
            "violations",
            "events",
        ]
        .map(|c| sum(col(c)).alias(c))
        .to_vec(),
    )?;
    let mut cells = ds.table(TableKind::Cells).await?;
    if let Some(s) = &o.site {
        cells = cells.filter(col("site").eq(lit(s.clone())))?;
    }
    let cells = cells.select(vec![
        col("site").alias("p_site"),
        col("cell").alias("p_cell"),
        col("zone").alias("p_zone"),
        col("row"),
        col("col"),
        col("owner"),
    ])?;
    let joined = cells.join(
        counts,
        JoinType::Full,
        &["p_site", "p_cell"],
        &["e_site", "e_cell"],
        None,
    )?;
    let zero = |c: &str| coalesce(vec![col(c), lit(0i64)]).alias(c);
    let out = joined
        .select(vec![
            coalesce(vec![col("p_site"), col("e_site")]).alias("site"),
            col("p_zone").alias("zone"),
            coalesce(vec![col("p_cell"), col("e_cell")]).alias("cell"),
            col("row"),
            col("col"),
            col("owner"),
            col("p_cell").is_not_null().alias("in_plan"),
            zero("incidents"),
            zero("injuries"),
            zero("near_misses"),
            zero("hazards"),
            zero("violations"),
            zero("events"),
        ])?
        .sort(vec![
            col("site").sort(true, false),
            col("row").sort(true, false),
            col("col").sort(true, false),
            col("cell").sort(true, false),
        ])?;
    Ok(out.select(vec![
        col("site"),
        col("zone"),
        col("cell"),
        cast(col("row"), arrow::datatypes::DataType::Int32).alias("row"),
        cast(col("col"), arrow::datatypes::DataType::Int32).alias("col"),
        col("owner"),
        col("in_plan"),
        col("incidents"),
        col("injuries"),
        col("near_misses"),
        col("hazards"),
        col("violations"),
        col("events"),
    ])?)
}

/// Render a heat-map result as an SVG grid of one site (the first site when
/// `site` is `None`). Cells outside the plan are listed below the grid.
pub fn heatmap_svg(batches: &[RecordBatch], site: Option<&str>, title: &str) -> Result<String> {
    let mut cells = Vec::new();
    let mut chosen: Option<String> = site.map(str::to_string);
    for b in batches {
        let s = text_col(b, "site")?;
        let cell = text_col(b, "cell")?;
        let owner = text_col(b, "owner")?;
        let zone = text_col(b, "zone")?;
        let row = b
            .column_by_name("row")
            .and_then(|a| a.as_any().downcast_ref::<Int32Array>().cloned())
            .ok_or_else(|| Error::schema("heatmap", "column `row` missing"))?;
        let colv = b
            .column_by_name("col")
            .and_then(|a| a.as_any().downcast_ref::<Int32Array>().cloned())
            .ok_or_else(|| Error::schema("heatmap", "column `col` missing"))?;
        let events = b
            .column_by_name("events")
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>().cloned())
            .ok_or_else(|| Error::schema("heatmap", "column `events` missing"))?;
        for i in 0..b.num_rows() {
            if s.is_null(i) {
                continue;
            }
            let this = s.value(i).to_string();
            if chosen.is_none() {
                chosen = Some(this.clone());
            }
            if chosen.as_deref() != Some(this.as_str()) {
                continue;
            }
            let label = if cell.is_null(i) {
                "(no cell)".to_string()
            } else {
                cell.value(i).to_string()
            };
            let short = label.rsplit('-').next().unwrap_or(&label).to_string();
            let mut tip = format!("{label}: {} events", events.value(i));
            if !zone.is_null(i) {
                tip.push_str(&format!("\nzone {}", zone.value(i)));
            }
            if !owner.is_null(i) {
                tip.push_str(&format!("\nowner {}", owner.value(i)));
            }
            cells.push(safetyscope_render::GridCell {
                row: if row.is_null(i) {
                    None
                } else {
                    Some(row.value(i).max(0) as u32)
                },
                col: if colv.is_null(i) {
                    None
                } else {
                    Some(colv.value(i).max(0) as u32)
                },
                label: short,
                value: events.value(i) as f64,
                text: events.value(i).to_string(),
                title: tip,
                fill: None,
            });
        }
    }
    let chart = safetyscope_render::GridChart {
        title: format!(
            "{title}{}",
            chosen.map(|s| format!(" — {s}")).unwrap_or_default()
        ),
        legend: "events".into(),
        legend_items: vec![],
        cells,
    };
    Ok(safetyscope_render::grid_svg(&chart))
}

fn text_col(b: &RecordBatch, name: &str) -> Result<StringArray> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| Error::schema("heatmap", format!("column `{name}` missing")))?;
    let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)?;
    Ok(a.as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8")
        .clone())
}
