//! Typed access to the columns of Arrow record batches, with errors that
//! name the column, and names held once however many rows carry them.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::util::error::{Error, Result};

/// A text column of a batch by name.
pub(crate) fn str_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    col_as::<StringArray>(b, name)
}

/// A column of a batch by name, as its concrete array type.
pub(crate) fn col_as<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            Error::schema(
                "result",
                format!("column `{name}` is missing or has an unexpected type"),
            )
        })
}

pub(crate) fn strings(b: &RecordBatch, name: &str) -> Result<StringArray> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| Error::schema("result", format!("column `{name}` missing")))?;
    let a = arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(a.as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8")
        .clone())
}

pub(crate) fn ints(b: &RecordBatch, name: &str) -> Result<Int32Array> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| Error::schema("result", format!("column `{name}` missing")))?;
    let a = arrow::compute::cast(a, &DataType::Int32)?;
    Ok(a.as_any()
        .downcast_ref::<Int32Array>()
        .expect("int32")
        .clone())
}

/// A numeric result column as f64.
pub(crate) fn f64s(b: &RecordBatch, name: &str) -> Result<Float64Array> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| Error::schema("result", format!("column `{name}` missing")))?;
    let a = arrow::compute::cast(a, &DataType::Float64)?;
    Ok(a.as_any()
        .downcast_ref::<Float64Array>()
        .expect("float64")
        .clone())
}

/// A zone, severity, activity kind or person held once however many rows
/// name it.
pub(crate) type Name = std::sync::Arc<str>;

/// The names of one load, each stored once.
#[derive(Debug, Default)]
pub(crate) struct Names(std::collections::HashSet<Name>);

impl Names {
    pub(crate) fn get(&mut self, s: &str) -> Name {
        if let Some(n) = self.0.get(s) {
            return n.clone();
        }
        let n: Name = s.into();
        self.0.insert(n.clone());
        n
    }

    pub(crate) fn opt(&mut self, a: &StringArray, i: usize) -> Option<Name> {
        (!a.is_null(i)).then(|| self.get(a.value(i)))
    }
}

/// Row `i` of a text column, `None` where null.
pub(crate) fn opt_text(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

/// Row `i` of a float column, `None` where null.
pub(crate) fn opt_f64(a: &Float64Array, i: usize) -> Option<f64> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// Row `i` of an integer column as f64, `None` where null.
pub(crate) fn opt_i64_f64(a: &Int64Array, i: usize) -> Option<f64> {
    (!a.is_null(i)).then(|| a.value(i) as f64)
}

/// Row `i` of a text column, "—" where null.
pub(crate) fn text_or_dash(a: &StringArray, i: usize) -> String {
    opt_text(a, i).unwrap_or_else(|| "—".to_string())
}

pub(crate) fn i64s(b: &RecordBatch, name: &str) -> Result<Int64Array> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| Error::schema("result", format!("column `{name}` missing")))?;
    let a = arrow::compute::cast(a, &DataType::Int64)?;
    Ok(a.as_any()
        .downcast_ref::<Int64Array>()
        .expect("int64")
        .clone())
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
