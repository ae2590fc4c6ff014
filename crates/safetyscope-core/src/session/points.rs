//! Aggregate functions over whole sets of points: every partition of a plan
//! gathers its rows' `(a, b, c)` triples (24 bytes a row, counted in the
//! memory pool), the partial sets merge, and the final step hands them, in
//! one fixed order (sorted by [`PointsFn::order`]), to a computation that
//! needs them all at once: the Knox test's permutations, a kernel density
//! raster. On a cluster that step runs on an executor; only its small
//! result comes back.
//!
//! The computations live with their analyses; they implement [`PointsFn`]
//! and become functions of the plan with [`points_udaf`].

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use crate::util::error::{Error, Result};

/// A computation over every point of a plan: `name(a, b, c, constants…)`
/// with `a`, `b`, `c` Float64 columns and the constants literals.
pub(crate) trait PointsFn: std::fmt::Debug + Send + Sync + 'static {
    /// The function's name in plans.
    fn name(&self) -> &'static str;
    /// The number of constants after the three columns.
    fn constants(&self) -> usize;
    /// The type of the result.
    fn return_type(&self) -> DataType;
    /// Whether a row's point is kept (rows with a null are never kept:
    /// they are counted as left out).
    fn keep(&self, _p: [f64; 3]) -> bool {
        true
    }
    /// The order the points are handed over in.
    fn order(&self, a: &[f64; 3], b: &[f64; 3]) -> std::cmp::Ordering {
        a[0].total_cmp(&b[0])
            .then(a[1].total_cmp(&b[1]))
            .then(a[2].total_cmp(&b[2]))
    }
    /// The result from the sorted points, the number of rows left out for
    /// a null and the constants.
    fn finish(
        &self,
        points: &[[f64; 3]],
        left_out: u64,
        constants: &[ScalarValue],
    ) -> Result<ScalarValue>;
}

/// A [`PointsFn`] as an aggregate function of the plan.
pub(crate) fn points_udaf(f: Arc<dyn PointsFn>) -> AggregateUDF {
    AggregateUDF::new_from_impl(PointsUdaf {
        signature: Signature::any(3 + f.constants(), Volatility::Immutable),
        f,
    })
}

#[derive(Debug)]
struct PointsUdaf {
    f: Arc<dyn PointsFn>,
    signature: Signature,
}

impl PartialEq for PointsUdaf {
    fn eq(&self, other: &Self) -> bool {
        self.f.name() == other.f.name()
    }
}

impl Eq for PointsUdaf {}

impl std::hash::Hash for PointsUdaf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.f.name().hash(state);
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

impl AggregateUDFImpl for PointsUdaf {
    fn name(&self) -> &str {
        self.f.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.f.return_type())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let mut f: Vec<FieldRef> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                Arc::new(Field::new(
                    format_state_name(args.name, n),
                    list_of(DataType::Float64),
                    true,
                ))
            })
            .collect();
        f.push(Arc::new(Field::new(
            format_state_name(args.name, "left_out"),
            DataType::Int64,
            true,
        )));
        Ok(f)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let mut constants = vec![];
        for (i, e) in args.exprs.iter().enumerate().skip(3) {
            match e.downcast_ref::<Literal>() {
                Some(l) => constants.push(l.value().clone()),
                None => {
                    return exec_err!("argument {} of {} must be a constant", i + 1, self.f.name());
                }
            }
        }
        Ok(Box::new(Points {
            f: Arc::clone(&self.f),
            constants,
            points: vec![],
            left_out: 0,
        }))
    }
}

#[derive(Debug)]
struct Points {
    f: Arc<dyn PointsFn>,
    constants: Vec<ScalarValue>,
    points: Vec<[f64; 3]>,
    left_out: u64,
}

fn floats(a: &ArrayRef) -> DfResult<Float64Array> {
    let a = arrow::compute::cast(a, &DataType::Float64)?;
    Ok(a.as_primitive::<Float64Type>().clone())
}

impl Accumulator for Points {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let (a, b, c) = (
            floats(&values[0])?,
            floats(&values[1])?,
            floats(&values[2])?,
        );
        for i in 0..a.len() {
            if a.is_null(i) || b.is_null(i) || c.is_null(i) {
                self.left_out += 1;
                continue;
            }
            let p = [a.value(i), b.value(i), c.value(i)];
            if self.f.keep(p) {
                self.points.push(p);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        if states.len() != 4 {
            return exec_err!("the partial state of {} is damaged", self.f.name());
        }
        let lists: Option<Vec<&ListArray>> =
            states[..3].iter().map(|s| s.as_list_opt::<i32>()).collect();
        let (Some(lists), Some(left)) = (lists, states[3].as_primitive_opt::<Int64Type>()) else {
            return exec_err!("the partial state of {} is damaged", self.f.name());
        };
        for row in 0..lists[0].len() {
            if !left.is_null(row) {
                self.left_out += left.value(row).max(0) as u64;
            }
            if lists.iter().any(|l| l.is_null(row)) {
                continue;
            }
            let cols: Vec<ArrayRef> = lists.iter().map(|l| l.value(row)).collect();
            let Some(cols) = cols
                .iter()
                .map(|c| c.as_primitive_opt::<Float64Type>())
                .collect::<Option<Vec<&Float64Array>>>()
            else {
                return exec_err!("the partial state of {} is damaged", self.f.name());
            };
            if cols.iter().any(|c| c.len() != cols[0].len()) {
                return exec_err!("the partial state of {} is damaged", self.f.name());
            }
            for i in 0..cols[0].len() {
                self.points
                    .push([cols[0].value(i), cols[1].value(i), cols[2].value(i)]);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let n = i32::try_from(self.points.len()).map_err(|_| {
            datafusion::error::DataFusionError::Execution(format!(
                "{}: more than 2³¹ points in one partition",
                self.f.name()
            ))
        })?;
        let mut out = vec![];
        for k in 0..3 {
            let values: Float64Array = self.points.iter().map(|p| p[k]).collect();
            let list = ListArray::new(
                Arc::new(Field::new_list_field(DataType::Float64, true)),
                OffsetBuffer::new(vec![0, n].into()),
                Arc::new(values),
                None,
            );
            out.push(ScalarValue::List(Arc::new(list)));
        }
        out.push(ScalarValue::Int64(Some(self.left_out as i64)));
        Ok(out)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        // Sorted in place: the order of the points held does not matter.
        let f = Arc::clone(&self.f);
        self.points.sort_by(|a, b| f.order(a, b));
        self.f
            .finish(&self.points, self.left_out, &self.constants)
            .map_err(Error::into_plan)
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.points.capacity() * 24
    }
}

/// A Float64 constant of a [`PointsFn`] (NaN when null).
pub(crate) fn float(constants: &[ScalarValue], i: usize) -> f64 {
    match constants.get(i) {
        Some(ScalarValue::Float64(Some(v))) => *v,
        Some(ScalarValue::Int64(Some(v))) => *v as f64,
        _ => f64::NAN,
    }
}

/// An Int64 constant of a [`PointsFn`].
pub(crate) fn int(constants: &[ScalarValue], i: usize, f: &str) -> Result<i64> {
    match constants.get(i) {
        Some(ScalarValue::Int64(Some(v))) => Ok(*v),
        _ => Err(Error::schema(
            f.to_string(),
            format!("argument {} must be an Int64 constant", i + 4),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The points as text, in the order handed over.
    #[derive(Debug)]
    struct Listed;

    impl PointsFn for Listed {
        fn name(&self) -> &'static str {
            "listed"
        }
        fn constants(&self) -> usize {
            0
        }
        fn return_type(&self) -> DataType {
            DataType::Utf8
        }
        fn keep(&self, p: [f64; 3]) -> bool {
            p[2] > 0.0
        }
        fn finish(
            &self,
            points: &[[f64; 3]],
            left_out: u64,
            _: &[ScalarValue],
        ) -> Result<ScalarValue> {
            Ok(ScalarValue::Utf8(Some(format!("{points:?} {left_out}"))))
        }
    }

    fn acc() -> Points {
        Points {
            f: Arc::new(Listed),
            constants: vec![],
            points: vec![],
            left_out: 0,
        }
    }

    fn batch(a: Vec<Option<f64>>, b: Vec<Option<f64>>, c: Vec<Option<f64>>) -> Vec<ArrayRef> {
        vec![
            Arc::new(Float64Array::from(a)),
            Arc::new(Float64Array::from(b)),
            Arc::new(Float64Array::from(c)),
        ]
    }

    #[test]
    fn partial_sets_merge_to_one_ordered_set() {
        let first = batch(
            vec![Some(3.0), None, Some(1.0)],
            vec![Some(0.0), Some(1.0), Some(2.0)],
            vec![Some(1.0), Some(1.0), Some(0.0)],
        );
        let second = batch(vec![Some(2.0)], vec![Some(5.0)], vec![Some(2.0)]);
        let mut one = acc();
        one.update_batch(&first).unwrap();
        one.update_batch(&second).unwrap();
        let (mut a, mut b) = (acc(), acc());
        a.update_batch(&second).unwrap();
        b.update_batch(&first).unwrap();
        let states: Vec<ArrayRef> = b
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        a.merge_batch(&states).unwrap();
        let want = "[[2.0, 5.0, 2.0], [3.0, 0.0, 1.0]] 1";
        assert_eq!(
            one.evaluate().unwrap(),
            ScalarValue::Utf8(Some(want.into()))
        );
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Utf8(Some(want.into())));
        // A damaged state is an error, not a panic.
        assert!(a.merge_batch(&states[..2]).is_err());
        let wrong: Vec<ArrayRef> = (0..4)
            .map(|_| Arc::new(Float64Array::from(vec![1.0])) as ArrayRef)
            .collect();
        assert!(a.merge_batch(&wrong).is_err());
    }
}
