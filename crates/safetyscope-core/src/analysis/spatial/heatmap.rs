//! The event heat map: counts of incidents, hazards and violations per grid
//! cell, joined to the site plan so that every cell appears (with zeros) and
//! events in cells missing from the plan are kept and flagged.

use crate::model::vocab::Lang;
use arrow::array::{Array, RecordBatch};
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use serde::{Deserialize, Serialize};

use crate::model::options::EventKind;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::session::window::filtered;
use crate::util::error::{Error, Result};

/// Options of [`event_heatmap`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// One row per cell (default), or counts summed per zone or site.
    pub by: crate::model::options::RollUp,
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        HeatmapOptions {
            by: crate::model::options::RollUp::Cell,
            kinds: vec![EventKind::Incidents],
            from: None,
            to: None,
            site: None,
        }
    }
}

fn one_if(e: Expr) -> Expr {
    when(e, lit(1i64)).otherwise(lit(0i64)).expect("valid case")
}

/// The count columns of the event heat map.
const COUNT_COLUMNS: [&str; 6] = [
    "incidents",
    "injuries",
    "near_misses",
    "hazards",
    "violations",
    "events",
];

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
///
/// With `by = "zone"` or `"site"`: one row per zone (site) with `cells`
/// and the counts summed.
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
        COUNT_COLUMNS.map(|c| sum(col(c)).alias(c)).to_vec(),
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
        .sort({
            // With one site the site is a constant: ordering by it is
            // redundant, and a distributed engine's stage split rejects the
            // plan the optimiser makes of it.
            let mut order = vec![];
            if o.site.is_none() {
                order.push(col("site").sort(true, false));
            }
            order.extend([
                col("row").sort(true, false),
                col("col").sort(true, false),
                col("cell").sort(true, false),
            ]);
            order
        })?;
    let out = out.select(vec![
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
    ])?;
    let keys = match o.by {
        crate::model::options::RollUp::Cell => return Ok(out),
        crate::model::options::RollUp::Zone => vec![col("site"), col("zone")],
        crate::model::options::RollUp::Site => vec![col("site")],
    };
    let sums = COUNT_COLUMNS.map(|c| sum(col(c)).alias(c));
    let mut aggs =
        vec![datafusion::functions_aggregate::expr_fn::count(col("cell")).alias("cells")];
    aggs.extend(sums);
    let sort = keys.iter().map(|k| k.clone().sort(true, false)).collect();
    Ok(out.aggregate(keys, aggs)?.sort(sort)?)
}

/// The chart of a heat-map result: the grid for cell rows, none for roll-ups.
pub fn heatmap_chart(
    batches: &[RecordBatch],
    o: &HeatmapOptions,
    lang: Lang,
) -> Result<Option<String>> {
    match o.by {
        crate::model::options::RollUp::Cell => heatmap_svg(
            batches,
            o.site.as_deref(),
            lang.w("各网格事件数", "Events per cell"),
            lang,
        )
        .map(Some),
        _ => Ok(None),
    }
}

/// Render a heat-map result as an SVG grid of one site (the first site when
/// `site` is `None`). Cells outside the plan are listed below the grid.
pub fn heatmap_svg(
    batches: &[RecordBatch],
    site: Option<&str>,
    title: &str,
    lang: Lang,
) -> Result<String> {
    let legend = lang.w("事件数", "events");
    crate::charts::site_grid(batches, site, title, legend, vec![], lang, |p| {
        let events = crate::util::columns::f64s(p.batch, "events")?.value(p.i);
        let zone = crate::util::columns::strings(p.batch, "zone")?;
        let mut tip = match lang {
            Lang::Zh => format!("{}：{events} 起事件", p.cell),
            Lang::En => format!("{}: {events} events", p.cell),
        };
        if !zone.is_null(p.i) {
            tip.push_str(&format!("\n{} {}", lang.w("区域", "zone"), zone.value(p.i)));
        }
        Ok(crate::charts::Look {
            value: events,
            text: format!("{events}"),
            title: tip,
            fill: None,
            suffix: None,
        })
    })
}
