//! Helpers of the follow-up lists: typed columns, table reads and the
//! window of an as-of date.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::logical_expr::{Expr, cast, col, lit};

use crate::analysis::followup::options::AlertOptions;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

// ------------------------------------------------------------------ helpers

use crate::analysis::followup::options::MINUTE;
use crate::util::columns::col_as;

pub(crate) fn ints<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    col_as::<Int64Array>(b, name)
}

pub(crate) fn floats<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Float64Array> {
    col_as::<Float64Array>(b, name)
}

pub(crate) fn opt_s(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
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

/// Builds a batch column by column.
#[derive(Default)]
pub(crate) struct Cols {
    pub(crate) fields: Vec<Field>,
    pub(crate) arrays: Vec<ArrayRef>,
}

impl Cols {
    pub(crate) fn text(mut self, name: &str, v: Vec<Option<String>>) -> Self {
        self.fields.push(Field::new(name, DataType::Utf8, true));
        self.arrays.push(Arc::new(StringArray::from(v)));
        self
    }
    pub(crate) fn float(mut self, name: &str, v: Vec<Option<f64>>) -> Self {
        self.fields.push(Field::new(name, DataType::Float64, true));
        self.arrays.push(Arc::new(Float64Array::from(v)));
        self
    }
    pub(crate) fn int(mut self, name: &str, v: Vec<Option<i64>>) -> Self {
        self.fields.push(Field::new(name, DataType::Int64, true));
        self.arrays.push(Arc::new(Int64Array::from(v)));
        self
    }
    pub(crate) fn flag(mut self, name: &str, v: Vec<Option<bool>>) -> Self {
        self.fields.push(Field::new(name, DataType::Boolean, true));
        self.arrays.push(Arc::new(BooleanArray::from(v)));
        self
    }
    pub(crate) fn time(mut self, name: &str, tz: &str, v: Vec<Option<i64>>) -> Self {
        self.fields.push(Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into())),
            true,
        ));
        self.arrays.push(Arc::new(
            TimestampMicrosecondArray::from(v).with_timezone(tz.to_string()),
        ));
        self
    }
    pub(crate) fn done(self) -> Result<RecordBatch> {
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(self.fields)),
            self.arrays,
        )?)
    }
}
