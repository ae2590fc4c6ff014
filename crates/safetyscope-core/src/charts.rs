//! Shared plumbing of the grid charts: pick one site's rows of a result and
//! turn them into `safetyscope-render` cells.

use arrow::array::{Array, RecordBatch, StringArray};
use safetyscope_render::{GridCell, GridChart};

use crate::model::vocab::Lang;
use crate::util::columns::ints;
use crate::util::columns::strings;
use crate::util::error::Result;

/// One row of a result placed on the grid of the chosen site.
pub(crate) struct Placed<'a> {
    /// The batch the row is in.
    pub batch: &'a RecordBatch,
    /// Row index in the batch.
    pub i: usize,
    /// Full cell name (`(no cell)` for events without one).
    pub cell: String,
    /// Owner of the cell, if known.
    pub owner: Option<String>,
}

/// How a chart presents one row.
pub(crate) struct Look {
    /// Value for the sequential colour scale.
    pub value: f64,
    /// Text drawn in the cell.
    pub text: String,
    /// Hover text before the owner line.
    pub title: String,
    /// Explicit colour.
    pub fill: Option<String>,
    /// Label after the short cell name.
    pub suffix: Option<String>,
}

/// Build a grid chart of one site (the first site seen when `site` is
/// `None`) from result batches with `site`, `cell`, `row`, `col` and `owner`.
pub(crate) fn site_grid(
    batches: &[RecordBatch],
    site: Option<&str>,
    title: &str,
    legend: &str,
    legend_items: Vec<(String, String)>,
    lang: Lang,
    look: impl Fn(&Placed<'_>) -> Result<Look>,
) -> Result<String> {
    let mut chosen: Option<String> = site.map(str::to_string);
    let mut cells = Vec::new();
    for b in batches {
        let (s, cell): (StringArray, StringArray) = (strings(b, "site")?, strings(b, "cell")?);
        // Not every result carries the owner.
        let owner: Option<StringArray> = strings(b, "owner").ok();
        let (row, col) = (ints(b, "row")?, ints(b, "col")?);
        for i in 0..b.num_rows() {
            if s.is_null(i) {
                continue;
            }
            if chosen.is_none() {
                chosen = Some(s.value(i).to_string());
            }
            if chosen.as_deref() != Some(s.value(i)) {
                continue;
            }
            let name = if cell.is_null(i) {
                lang.w("（无网格）", "(no cell)").to_string()
            } else {
                cell.value(i).to_string()
            };
            let p = Placed {
                batch: b,
                i,
                cell: name.clone(),
                owner: owner
                    .as_ref()
                    .filter(|o| !o.is_null(i))
                    .map(|o| o.value(i).to_string()),
            };
            let l = look(&p)?;
            let short = name.rsplit('-').next().unwrap_or(&name).to_string();
            cells.push(GridCell {
                row: (!row.is_null(i)).then(|| row.value(i).max(0) as u32),
                col: (!col.is_null(i)).then(|| col.value(i).max(0) as u32),
                label: match l.suffix {
                    Some(x) => format!("{short} {x}"),
                    None => short,
                },
                value: l.value,
                text: l.text,
                title: match &p.owner {
                    Some(o) => format!("{}\n{} {o}", l.title, lang.w("责任人", "owner")),
                    None => l.title,
                },
                fill: l.fill,
            });
        }
    }
    let chart = GridChart {
        title: format!(
            "{title}{}",
            chosen.map(|s| format!(" — {s}")).unwrap_or_default()
        ),
        legend: legend.to_string(),
        legend_items,
        cells,
    };
    Ok(safetyscope_render::grid_svg(&chart))
}
