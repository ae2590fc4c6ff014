//! Helpers of the follow-up lists: typed columns, table reads and the
//! window of an as-of date.

use arrow::array::{Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, cast, col, lit};

use crate::analysis::followup::options::AlertOptions;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

// ------------------------------------------------------------------ helpers

use crate::analysis::followup::options::MINUTE;
use crate::util::columns::col_as;
pub(crate) use crate::util::columns::{Cols, opt_text as opt_s};

pub(crate) fn ints<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    col_as::<Int64Array>(b, name)
}

pub(crate) fn floats<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Float64Array> {
    col_as::<Float64Array>(b, name)
}

/// Rows of a table with timestamps as µs (`*_us` columns), site-filtered.
pub(crate) async fn table_rows(
    ds: &Dataset,
    kind: TableKind,
    site: Option<&str>,
    text: &[&str],
    times: &[&str],
    other: &[&str],
) -> Result<Vec<RecordBatch>> {
    use futures::TryStreamExt;
    Ok(table_stream_where(ds, kind, site, None, text, times, other)
        .await?
        .try_collect()
        .await?)
}

/// [`table_rows`] of the rows that pass `filter` (evaluated in the plan,
/// so only those rows are read into memory).
pub(crate) async fn table_stream_where(
    ds: &Dataset,
    kind: TableKind,
    site: Option<&str>,
    filter: Option<Expr>,
    text: &[&str],
    times: &[&str],
    other: &[&str],
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    if !ds.has_table(kind) {
        return Ok(crate::session::context::empty_stream());
    }
    let mut df = ds.table(kind).await?;
    if let Some(s) = site {
        df = df.filter(col("site").eq(lit(s.to_string())))?;
    }
    if let Some(f) = filter {
        df = df.filter(f)?;
    }
    let mut cols = vec![];
    cols.extend(text.iter().map(|c| col(*c)));
    cols.extend(
        times
            .iter()
            .map(|c| cast(col(*c), DataType::Int64).alias(format!("{c}_us"))),
    );
    cols.extend(other.iter().map(|c| col(*c)));
    Ok(df.select(cols)?.execute_stream().await?)
}

/// The as-of instant and the history start.
pub(crate) async fn window(ds: &Dataset, o: &AlertOptions) -> Result<(i64, i64)> {
    let as_of = match &o.as_of {
        Some(v) => crate::session::window::parse_local(ds, "as_of", v)?,
        None => crate::session::window::data_end(ds, "as_of").await?,
    };
    let from = match &o.from {
        Some(v) => crate::session::window::parse_local(ds, "from", v)?,
        None => as_of - 30 * 24 * 60 * MINUTE,
    };
    if from >= as_of {
        return Err(Error::option("from", "must be before as_of"));
    }
    Ok((from, as_of))
}
