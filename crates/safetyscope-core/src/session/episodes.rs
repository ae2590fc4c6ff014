//! Episodes as aggregate functions of DataFusion plans: `fence_episodes`
//! (entries into restricted cells from position fixes) and
//! `alarm_episodes` (sensor alarms from readings), grouped by person or by
//! sensor, metric and place.
//!
//! Both keep per group only the (instant, value) pairs of its rows (16
//! bytes a row, counted in the session's memory pool: past `--memory-limit`
//! the aggregation spills, though a spilled batch of whole groups must fit
//! back; docs/cluster.md), merge partial states across partitions and
//! executors, and at the end sort each group's pairs by time and fold them
//! into episodes. The result per group is a list of
//! `{start, end, n, value, ended_by}`: for fences `value` is the fence's
//! number, `start` the entry and `end` the exit; for alarms `value` is the
//! peak reading.
//!
//! Being named functions of the session, they travel in plans to a
//! Ballista cluster, whose scheduler and executors register [`udafs`].

use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
    StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type, Int64Type};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

/// How an episode ended: the fix outside the fence, the reading below the
/// clear level, a gap longer than allowed, or not yet (the window's end).
pub(crate) const ENDED_BY: [&str; 4] = ["exit", "clear", "gap", "ongoing"];

/// Which episodes a function folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `fence_episodes(ts, fence, max_gap)`: `ts` in µs (Int64), `fence`
    /// the fence the fix lies in (Float64, null outside every fence),
    /// `max_gap` the longest gap in µs between fixes of one episode (a
    /// constant).
    Fence,
    /// `alarm_episodes(ts, value, alarm, clear, max_gap, min_duration)`:
    /// an episode starts at a reading at or above `alarm`, continues while
    /// readings stay at or above `clear` no more than `max_gap` µs apart;
    /// episodes shorter than `min_duration` µs are dropped (both constants).
    Alarm,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Fence => "fence_episodes",
            Kind::Alarm => "alarm_episodes",
        }
    }

    /// Per-group parameters (Float64 arguments after `ts` and the value).
    fn params(self) -> usize {
        match self {
            Kind::Fence => 0,
            Kind::Alarm => 2,
        }
    }

    /// Trailing constant Int64 arguments.
    fn constants(self) -> usize {
        match self {
            Kind::Fence => 1,
            Kind::Alarm => 2,
        }
    }

    fn arguments(self) -> Vec<DataType> {
        let mut a = vec![DataType::Int64, DataType::Float64];
        a.extend(std::iter::repeat_n(DataType::Float64, self.params()));
        a.extend(std::iter::repeat_n(DataType::Int64, self.constants()));
        a
    }

    /// Fold one group's points, sorted by time, into `out`.
    fn fold(self, points: &[(i64, f64)], params: &[f64], constants: &[i64], out: &mut Vec<Ep>) {
        match self {
            Kind::Fence => fold_fence(points, constants[0], out),
            Kind::Alarm => fold_alarm(points, params[0], params[1], constants, out),
        }
    }
}

/// One episode: `value` is the fence number or the peak reading, `by` an
/// index into [`ENDED_BY`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ep {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) n: i64,
    pub(crate) value: f64,
    pub(crate) by: usize,
}

fn fold_fence(points: &[(i64, f64)], gap: i64, out: &mut Vec<Ep>) {
    // (fence, entry, last inside, fixes)
    let mut cur: Option<(f64, i64, i64, i64)> = None;
    for &(t, v) in points {
        let here = (!v.is_nan()).then_some(v);
        if let Some((f, entry, last, n)) = cur {
            let ep = |end, by| Ep {
                start: entry,
                end,
                n,
                value: f,
                by,
            };
            if t.saturating_sub(last) > gap {
                out.push(ep(last, 2));
            } else if here != Some(f) {
                out.push(ep(t, 0));
            } else {
                cur = Some((f, entry, t, n + 1));
                continue;
            }
            cur = None;
        }
        if let Some(f) = here {
            cur = Some((f, t, t, 1));
        }
    }
    if let Some((f, entry, last, n)) = cur {
        out.push(Ep {
            start: entry,
            end: last,
            n,
            value: f,
            by: 3,
        });
    }
}

fn fold_alarm(points: &[(i64, f64)], alarm: f64, clear: f64, c: &[i64], out: &mut Vec<Ep>) {
    let (gap, min_len) = (c[0], c[1]);
    // (start, last, peak, readings)
    let mut cur: Option<(i64, i64, f64, i64)> = None;
    let mut close = |cur: &mut Option<(i64, i64, f64, i64)>, end: i64, by: usize| {
        if let Some((start, _, peak, n)) = cur.take()
            && end.saturating_sub(start) >= min_len
        {
            out.push(Ep {
                start,
                end,
                n,
                value: peak,
                by,
            });
        }
    };
    for &(t, v) in points {
        if let Some((_, last, _, _)) = cur
            && t.saturating_sub(last) > gap
        {
            close(&mut cur, last, 2);
        }
        match cur {
            Some((s, _, peak, n)) if v >= clear => cur = Some((s, t, peak.max(v), n + 1)),
            Some(_) => close(&mut cur, t, 1),
            None if v >= alarm => cur = Some((t, t, v, 1)),
            None => {}
        }
    }
    if let Some((_, last, _, _)) = cur {
        close(&mut cur, last, 3);
    }
}

/// The fields of one episode in the functions' result lists.
fn episode_fields() -> Fields {
    Fields::from(vec![
        Field::new("start", DataType::Int64, false),
        Field::new("end", DataType::Int64, false),
        Field::new("n", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("ended_by", DataType::Utf8, false),
    ])
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

/// The episode function of `kind` (one instance per process).
pub(crate) fn udaf(kind: Kind) -> Arc<AggregateUDF> {
    static FENCE: OnceLock<Arc<AggregateUDF>> = OnceLock::new();
    static ALARM: OnceLock<Arc<AggregateUDF>> = OnceLock::new();
    let cell = match kind {
        Kind::Fence => &FENCE,
        Kind::Alarm => &ALARM,
    };
    cell.get_or_init(|| {
        Arc::new(AggregateUDF::new_from_impl(EpisodeUdaf {
            kind,
            signature: Signature::exact(kind.arguments(), Volatility::Immutable),
        }))
    })
    .clone()
}

/// safetyscope's aggregate functions, to register in every session that
/// runs its plans (a Ballista scheduler's and executors' included).
pub fn udafs() -> Vec<Arc<AggregateUDF>> {
    vec![udaf(Kind::Fence), udaf(Kind::Alarm)]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct EpisodeUdaf {
    kind: Kind,
    signature: Signature,
}

impl EpisodeUdaf {
    fn series(&self, args: &AccumulatorArgs) -> DfResult<Series> {
        let first = 2 + self.kind.params();
        let mut constants = vec![];
        for (i, e) in args.exprs.iter().enumerate().skip(first) {
            match e.downcast_ref::<Literal>().map(Literal::value) {
                Some(ScalarValue::Int64(Some(v))) => constants.push(*v),
                _ => {
                    return exec_err!(
                        "argument {} of {} must be a non-null Int64 constant",
                        i + 1,
                        self.kind.name()
                    );
                }
            }
        }
        Ok(Series {
            kind: self.kind,
            constants,
            groups: vec![],
            params: vec![],
            capacity: 0,
        })
    }
}

impl AggregateUDFImpl for EpisodeUdaf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(DataType::Struct(episode_fields())))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let mut f = vec![
            Field::new(
                format_state_name(args.name, "ts"),
                list_of(DataType::Int64),
                true,
            ),
            Field::new(
                format_state_name(args.name, "value"),
                list_of(DataType::Float64),
                true,
            ),
        ];
        for p in 0..self.kind.params() {
            f.push(Field::new(
                format_state_name(args.name, &format!("param{p}")),
                DataType::Float64,
                true,
            ));
        }
        Ok(f.into_iter().map(Arc::new).collect())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(One(self.series(&args)?)))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.series(&args)?))
    }
}

/// Every group's points and parameters.
#[derive(Debug, Clone)]
struct Series {
    kind: Kind,
    constants: Vec<i64>,
    groups: Vec<Vec<(i64, f64)>>,
    /// `kind.params()` per group.
    params: Vec<f64>,
    /// The points' allocated capacity over all groups.
    capacity: usize,
}

impl Series {
    fn grow(&mut self, total_num_groups: usize) {
        if self.groups.len() < total_num_groups {
            self.groups.resize_with(total_num_groups, Vec::new);
            self.params
                .resize(total_num_groups * self.kind.params(), f64::NAN);
        }
    }

    fn push(&mut self, g: usize, point: (i64, f64)) {
        let v = &mut self.groups[g];
        let before = v.capacity();
        v.push(point);
        self.capacity += v.capacity() - before;
    }

    fn set_params(&mut self, g: usize, cols: &[&Float64Array], row: usize) {
        let k = self.kind.params();
        for (p, c) in cols.iter().enumerate() {
            if c.is_valid(row) {
                self.params[g * k + p] = c.value(row);
            }
        }
    }

    /// The first `emit_to` groups, removed: their points and parameters.
    fn take(&mut self, emit_to: EmitTo) -> (Vec<Vec<(i64, f64)>>, Vec<f64>) {
        let groups = emit_to.take_needed(&mut self.groups);
        let k = self.kind.params();
        let params = match emit_to {
            EmitTo::All => std::mem::take(&mut self.params),
            EmitTo::First(n) => self.params.drain(..n * k).collect(),
        };
        self.capacity -= groups.iter().map(Vec::capacity).sum::<usize>();
        (groups, params)
    }

    fn param_columns<'a>(&self, values: &'a [ArrayRef]) -> Vec<&'a Float64Array> {
        values[2..2 + self.kind.params()]
            .iter()
            .map(|a| a.as_primitive::<Float64Type>())
            .collect()
    }
}

impl GroupsAccumulator for Series {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let ts = values[0].as_primitive::<Int64Type>();
        let v = values[1].as_primitive::<Float64Type>();
        let params = self.param_columns(values);
        for (row, &g) in group_indices.iter().enumerate() {
            if opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) || ts.is_null(row) {
                continue;
            }
            let value = if v.is_null(row) {
                f64::NAN
            } else {
                v.value(row)
            };
            self.push(g, (ts.value(row), value));
            self.set_params(g, &params, row);
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let (mut groups, params) = self.take(emit_to);
        let k = self.kind.params();
        let mut eps = vec![];
        let mut offsets = Vec::with_capacity(groups.len() + 1);
        offsets.push(0i32);
        for (g, points) in groups.iter_mut().enumerate() {
            points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            self.kind.fold(
                points,
                &params[g * k..(g + 1) * k],
                &self.constants,
                &mut eps,
            );
            offsets.push(i32::try_from(eps.len()).map_err(|_| {
                datafusion::error::DataFusionError::Execution(format!(
                    "{} found more than {} episodes in one batch of groups",
                    self.kind.name(),
                    i32::MAX
                ))
            })?);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(eps.iter().map(|e| e.start))),
            Arc::new(Int64Array::from_iter_values(eps.iter().map(|e| e.end))),
            Arc::new(Int64Array::from_iter_values(eps.iter().map(|e| e.n))),
            Arc::new(Float64Array::from_iter_values(eps.iter().map(|e| e.value))),
            Arc::new(StringArray::from_iter_values(
                eps.iter().map(|e| ENDED_BY[e.by]),
            )),
        ];
        let items = StructArray::try_new(episode_fields(), columns, None)?;
        Ok(Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(items.data_type().clone(), true)),
            OffsetBuffer::new(offsets.into()),
            Arc::new(items),
            None,
        )?))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let (groups, params) = self.take(emit_to);
        let k = self.kind.params();
        let points: usize = groups.iter().map(Vec::len).sum();
        if i32::try_from(points).is_err() {
            return exec_err!(
                "{} holds {points} rows in one state, more than a list holds ({})",
                self.kind.name(),
                i32::MAX
            );
        }
        let lengths = groups.iter().map(Vec::len);
        let offsets = OffsetBuffer::<i32>::from_lengths(lengths);
        let ts = Int64Array::from_iter_values(groups.iter().flatten().map(|p| p.0));
        let v = Float64Array::from_iter_values(groups.iter().flatten().map(|p| p.1));
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(ListArray::try_new(
                Arc::new(Field::new_list_field(DataType::Int64, true)),
                offsets.clone(),
                Arc::new(ts),
                None,
            )?),
            Arc::new(ListArray::try_new(
                Arc::new(Field::new_list_field(DataType::Float64, true)),
                offsets,
                Arc::new(v),
                None,
            )?),
        ];
        // A group that has no row yet (all filtered out) has no parameters:
        // null, so that merging it keeps another state's.
        for p in 0..k {
            out.push(Arc::new(Float64Array::from_iter(
                (0..groups.len()).map(|g| Some(params[g * k + p]).filter(|v| !v.is_nan())),
            )));
        }
        Ok(out)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let (ts, v) = (values[0].as_list::<i32>(), values[1].as_list::<i32>());
        let (tv, vv) = (
            ts.values().as_primitive::<Int64Type>(),
            v.values().as_primitive::<Float64Type>(),
        );
        let params = self.param_columns(values);
        for (row, &g) in group_indices.iter().enumerate() {
            if ts.is_null(row) {
                continue;
            }
            let (a, b) = (
                ts.value_offsets()[row] as usize,
                ts.value_offsets()[row + 1] as usize,
            );
            let c = v.value_offsets()[row] as usize;
            for i in a..b {
                self.push(g, (tv.value(i), vv.value(c + i - a)));
            }
            self.set_params(g, &params, row);
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let mut one = Series {
            kind: self.kind,
            constants: self.constants.clone(),
            groups: vec![],
            params: vec![],
            capacity: 0,
        };
        let rows: Vec<usize> = (0..values[0].len()).collect();
        one.update_batch(values, &rows, opt_filter, rows.len())?;
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        self.capacity * std::mem::size_of::<(i64, f64)>()
            + self.groups.capacity() * std::mem::size_of::<Vec<(i64, f64)>>()
            + self.params.capacity() * std::mem::size_of::<f64>()
    }
}

/// The function without grouping: one group.
#[derive(Debug)]
struct One(Series);

impl One {
    fn first(arrays: Vec<ArrayRef>) -> DfResult<Vec<ScalarValue>> {
        arrays
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let rows = vec![0; values[0].len()];
        self.0.update_batch(values, &rows, None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let rows = vec![0; states[0].len()];
        self.0.merge_batch(states, &rows, 1)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let mut s = self.0.clone();
        s.grow(1);
        Self::first(s.state(EmitTo::All)?)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let mut s = self.0.clone();
        s.grow(1);
        Ok(Self::first(vec![s.evaluate(EmitTo::All)?])?.remove(0))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + GroupsAccumulator::size(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn fence(points: &[(i64, f64)], gap: i64) -> Vec<(i64, i64, i64, f64, &'static str)> {
        let mut out = vec![];
        fold_fence(points, gap, &mut out);
        out.iter()
            .map(|e| (e.start, e.end, e.n, e.value, ENDED_BY[e.by]))
            .collect()
    }

    #[test]
    fn fence_episodes_end_by_exit_gap_or_the_window() {
        let out = f64::NAN;
        let p = [
            (0, out),
            (MIN, 1.0),
            (2 * MIN, 1.0),
            (3 * MIN, out),
            (4 * MIN, 0.0),
            (5 * MIN, 1.0),
            (20 * MIN, 1.0),
            (21 * MIN, 1.0),
        ];
        assert_eq!(
            fence(&p, 10 * MIN),
            vec![
                (MIN, 3 * MIN, 2, 1.0, "exit"),
                (4 * MIN, 5 * MIN, 1, 0.0, "exit"),
                (5 * MIN, 5 * MIN, 1, 1.0, "gap"),
                (20 * MIN, 21 * MIN, 2, 1.0, "ongoing"),
            ]
        );
        // Absurd instants do not overflow.
        assert_eq!(fence(&[(i64::MIN, 0.0), (i64::MAX, 0.0)], 0).len(), 2);
    }

    #[test]
    fn alarm_episodes_keep_hysteresis_and_drop_short_ones() {
        let p = [
            (0, 1.0),
            (MIN, 5.0),
            (2 * MIN, 4.5),
            (3 * MIN, 3.0),
            (4 * MIN, 6.0),
            (5 * MIN, 2.0),
            (30 * MIN, 7.0),
        ];
        let mut out = vec![];
        fold_alarm(&p, 5.0, 4.0, &[10 * MIN, 2 * MIN], &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|e| (e.start, e.end, e.n, e.value, ENDED_BY[e.by]))
            .collect();
        // 4 min–5 min lasts 1 minute, 30 min is a single reading: dropped.
        assert_eq!(got, vec![(MIN, 3 * MIN, 2, 5.0, "clear")]);
    }

    #[test]
    fn filtered_rows_leave_the_parameters_of_other_states() {
        // Rows outside an aggregate's FILTER become states without
        // parameters; merged after a state with them, they keep them.
        let series = || Series {
            kind: Kind::Alarm,
            constants: vec![10 * MIN, 0],
            groups: vec![],
            params: vec![],
            capacity: 0,
        };
        let ts: ArrayRef = Arc::new(Int64Array::from(vec![0, MIN, 2 * MIN]));
        let v: ArrayRef = Arc::new(Float64Array::from(vec![6.0, 7.0, 1.0]));
        let alarm: ArrayRef = Arc::new(Float64Array::from(vec![5.0; 3]));
        let clear: ArrayRef = Arc::new(Float64Array::from(vec![4.0; 3]));
        let values = [ts, v, alarm, clear];
        let keep = BooleanArray::from(vec![true, true, true]);
        let none = BooleanArray::from(vec![false, false, false]);
        let a = series().convert_to_state(&values, Some(&keep)).unwrap();
        let b = series().convert_to_state(&values, Some(&none)).unwrap();
        let mut m = series();
        m.merge_batch(&a, &[0, 0, 0], 1).unwrap();
        m.merge_batch(&b, &[0, 0, 0], 1).unwrap();
        let got = m.evaluate(EmitTo::All).unwrap();
        let l = got.as_list::<i32>();
        assert_eq!(l.value(0).len(), 1, "{got:?}");
    }

    #[test]
    fn partial_states_merge_to_the_same_episodes() {
        let u = udaf(Kind::Fence);
        assert_eq!(u.name(), "fence_episodes");
        let mut a = Series {
            kind: Kind::Fence,
            constants: vec![10 * MIN],
            groups: vec![],
            params: vec![],
            capacity: 0,
        };
        let mut b = a.clone();
        let ts: ArrayRef = Arc::new(Int64Array::from(vec![3 * MIN, MIN, 2 * MIN, 0]));
        let v: ArrayRef = Arc::new(Float64Array::from(vec![None, Some(1.0), Some(1.0), None]));
        a.update_batch(&[ts.clone(), v.clone()], &[0, 0, 1, 1], None, 2)
            .unwrap();
        b.update_batch(&[ts, v], &[0, 0, 0, 0], None, 1).unwrap();
        let whole = b.evaluate(EmitTo::All).unwrap();
        let mut c = a.clone();
        c.groups.clear();
        c.capacity = 0;
        let s = a.state(EmitTo::All).unwrap();
        c.merge_batch(&s, &[0, 0], 1).unwrap();
        assert_eq!(c.evaluate(EmitTo::All).unwrap().to_data(), whole.to_data());
        let l = whole.as_list::<i32>();
        assert_eq!(l.value(0).len(), 1);
    }
}
