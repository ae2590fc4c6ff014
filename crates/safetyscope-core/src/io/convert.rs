//! Converting a raw source column to its canonical type, with the row,
//! column and value of every rejection.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Int32Array, RecordBatch,
    StringArray, StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::NaiveTime;

use crate::io::loader::*;
use crate::io::mapping::{ColumnSpec, DateOnly};
use crate::model::report::Reason;
use crate::model::schema::{Allowed, ColType, ColumnDef, TIME_KNOWN, TableKind};
use crate::model::time::{
    Parsed, TimeOfDayFormat, default_formats, local_to_micros, parse_date_checked,
    parse_timestamp_checked,
};
use crate::util::error::Result;

/// The plausible years of a timestamp when the mapping gives none.
pub(crate) const DEFAULT_YEARS: [i32; 2] = [1900, 2100];

/// The instants from the first day of `years[0]` to the end of `years[1]`
/// (µs since 1970, UTC), with a day's margin either side for time zones.
pub(crate) fn plausible_micros(years: [i32; 2]) -> (i64, i64) {
    const DAY: i64 = 86_400_000_000;
    let start = |y: i32| {
        chrono::NaiveDate::from_ymd_opt(y, 1, 1).map_or(0, |d| {
            d.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
        })
    };
    (start(years[0]) - DAY, start(years[1] + 1) + DAY)
}

pub(crate) struct Converter<'a> {
    pub(crate) loader: &'a TableLoader,
    pub(crate) c: &'a ColumnDef,
    pub(crate) spec: &'a ColumnSpec,
    pub(crate) table_nulls: &'a [String],
    pub(crate) first_row: u64,
    pub(crate) source: &'a str,
}

/// Text values of a raw column after null sentinels and the value map, with
/// the source column name for messages.
pub(crate) struct TextValues {
    pub(crate) values: Vec<Option<String>>,
    pub(crate) label: String,
}

impl Converter<'_> {
    pub(crate) fn is_null_text(&self, v: &str) -> bool {
        let t = v.trim();
        t.is_empty()
            || self.table_nulls.iter().any(|n| n == t)
            || self.spec.null_values.iter().any(|n| n.trim() == t)
    }

    pub(crate) fn has_text_transform(&self) -> bool {
        !self.table_nulls.is_empty()
            || !self.spec.null_values.is_empty()
            || !self.spec.map.is_empty()
            || self.spec.default.is_some()
            || self.spec.fill_null.is_some()
            || !self.spec.formats.is_empty()
            || self.spec.time_column.is_some()
            || self.spec.present
    }

    pub(crate) fn label(&self, src: &str) -> String {
        if src == self.c.name {
            src.to_string()
        } else {
            format!("{} (from {src})", self.c.name)
        }
    }

    pub(crate) fn text_of(&self, arr: &ArrayRef) -> Result<StringArray> {
        let s = cast(arr, &DataType::Utf8)?;
        Ok(s.as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8")
            .clone())
    }

    pub(crate) fn texts(&self, raw: &Raw, n: usize) -> Result<TextValues> {
        let apply = |v: Option<&str>| -> Option<String> {
            let v = match v {
                Some(v) if !self.is_null_text(v) => v,
                _ => return self.spec.fill_null.clone(),
            };
            let t = v.trim();
            if !self.spec.map.is_empty() {
                if let Some(m) = self.spec.map.get(t).or_else(|| self.spec.map.get(v)) {
                    return Some(m.clone());
                }
                if let Some(d) = &self.spec.default {
                    return Some(d.clone());
                }
            } else if let (Some(d), Allowed::Vocab(vocab)) = (&self.spec.default, self.c.allowed)
                && vocab.resolve(t).is_none()
            {
                // Without a map, `default` takes what the vocabulary does
                // not know.
                return Some(d.clone());
            }
            Some(t.to_string())
        };
        Ok(match raw {
            Raw::Array(a, name) => {
                let s = self.text_of(a)?;
                TextValues {
                    values: (0..n)
                        .map(|i| apply(if s.is_null(i) { None } else { Some(s.value(i)) }))
                        .collect(),
                    label: self.label(name),
                }
            }
            Raw::Coalesce(list) => {
                let arrays: Vec<StringArray> = list
                    .iter()
                    .map(|(a, _)| self.text_of(a))
                    .collect::<Result<_>>()?;
                let values = (0..n)
                    .map(|i| {
                        arrays
                            .iter()
                            .find_map(|s| apply(if s.is_null(i) { None } else { Some(s.value(i)) }))
                    })
                    .collect();
                let names: Vec<&str> = list.iter().map(|(_, n)| n.as_str()).collect();
                TextValues {
                    values,
                    label: self.label(&names.join(" | ")),
                }
            }
            Raw::Constant(k) => TextValues {
                values: vec![apply(Some(k)); n],
                label: self.c.name.to_string(),
            },
            Raw::RowNumber => TextValues {
                values: (0..n)
                    .map(|i| Some((self.first_row + i as u64).to_string()))
                    .collect(),
                label: self.c.name.to_string(),
            },
            Raw::Missing => TextValues {
                values: vec![None; n],
                label: self.c.name.to_string(),
            },
        })
    }

    /// Convert; returns the canonical array and, for a date+time spec, the
    /// time-known flags.
    pub(crate) fn convert(
        &self,
        raw: &Raw,
        batch: &RecordBatch,
        n: usize,
        p: &mut Problems,
    ) -> Result<(ArrayRef, Option<BooleanArray>)> {
        // Fast paths: typed source columns without text transforms.
        if let (Raw::Array(a, name), false) = (raw, self.has_text_transform())
            && let Some(arr) = self.fast(a, name, n, p)?
        {
            self.check_instants(&arr, &self.label(name), p);
            // A typed date column holds no time of day.
            let tk = if matches!(a.data_type(), DataType::Date32 | DataType::Date64) {
                self.date_only_flags((0..n).map(|r| a.is_valid(r)).collect(), p)
            } else {
                None
            };
            return Ok((arr, tk));
        }
        let tv = self.texts(raw, n)?;
        if self.spec.present {
            let arr: BooleanArray = tv.values.iter().map(|v| Some(v.is_some())).collect();
            return Ok((Arc::new(arr), None));
        }
        let mut tk = None;
        let arr: ArrayRef = match self.c.ty {
            ColType::Text => {
                let v: StringArray = self
                    .parse_each(&tv, p, |s| {
                        self.check_text(s).map(std::borrow::Cow::into_owned)
                    })
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Float => {
                let v: Float64Array = self
                    .parse_each(&tv, p, |s| {
                        let x = s
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .ok_or(Reason::Unparseable)?;
                        self.check_num(x).map_or(Ok(x), Err)
                    })
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Int => {
                let v: Int32Array = self
                    .parse_each(&tv, p, |s| {
                        let t = s.trim();
                        let x = t
                            .parse::<i32>()
                            .ok()
                            .or_else(|| {
                                t.parse::<f64>()
                                    .ok()
                                    .filter(|x| x.fract() == 0.0 && x.abs() < 2e9)
                                    .map(|x| x as i32)
                            })
                            .ok_or(Reason::Unparseable)?;
                        self.check_num(f64::from(x)).map_or(Ok(x), Err)
                    })
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Bool => {
                let v: BooleanArray = self
                    .parse_each(&tv, p, |s| parse_bool(s).ok_or(Reason::Unparseable))
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Timestamp => {
                let (a, t) = self.timestamps(&tv, batch, n, p)?;
                self.check_instants(&a, &tv.label, p);
                tk = t;
                a
            }
        };
        Ok((arr, tk))
    }

    /// Parse every text value with `parse`; nulls are checked against
    /// `required`, failures are recorded as the row's problem and become null.
    pub(crate) fn parse_each<T>(
        &self,
        tv: &TextValues,
        p: &mut Problems,
        parse: impl Fn(&str) -> std::result::Result<T, Reason>,
    ) -> Vec<Option<T>> {
        tv.values
            .iter()
            .enumerate()
            .map(|(r, v)| match v {
                None => {
                    self.missing(r, &tv.label, p);
                    None
                }
                Some(s) => match parse(s) {
                    Ok(x) => Some(x),
                    Err(reason) => {
                        p.set(r, reason, &tv.label, || s.clone());
                        None
                    }
                },
            })
            .collect()
    }

    pub(crate) fn missing(&self, r: usize, label: &str, p: &mut Problems) {
        if self.c.required {
            p.set(r, Reason::MissingRequired, label, String::new);
        }
    }

    pub(crate) fn check_text<'s>(
        &self,
        s: &'s str,
    ) -> std::result::Result<std::borrow::Cow<'s, str>, Reason> {
        use std::borrow::Cow;
        if s.len() > self.c.max_bytes() {
            return Err(Reason::OutOfRange);
        }
        match self.c.allowed {
            Allowed::Vocab(v) => v.resolve(s).map(Cow::Borrowed).ok_or(Reason::UnknownEnum),
            _ if self.c.name == "kind" && self.loader.kind == TableKind::Violations => {
                Ok(crate::model::vocab::VIOLATION_KINDS
                    .resolve(s)
                    .map_or(Cow::Borrowed(s), Cow::Borrowed))
            }
            _ => Ok(Cow::Borrowed(s)),
        }
    }

    /// Record instants outside the plausible years (the mapping's `years`,
    /// 1900–2100 by default) as out of range: a typo'd year (2205, 0009) or
    /// an instant at the edge of what a timestamp holds would otherwise
    /// stretch every time grid.
    pub(crate) fn check_instants(&self, a: &ArrayRef, label: &str, p: &mut Problems) {
        let Some(ts) = a.as_any().downcast_ref::<TimestampMicrosecondArray>() else {
            return;
        };
        let (lo, hi) = self.loader.plausible;
        let [y0, y1] = self.loader.years;
        for r in 0..ts.len() {
            if ts.is_null(r) {
                continue;
            }
            let v = ts.value(r);
            if v < lo || v >= hi {
                p.set(r, Reason::OutOfRange, label, || {
                    chrono::DateTime::from_timestamp_micros(v).map_or_else(
                        || format!("{v} µs since 1970 (outside {y0}–{y1})"),
                        |d| format!("{} UTC (outside {y0}–{y1})", d.naive_utc()),
                    )
                });
            }
        }
    }

    pub(crate) fn check_num(&self, x: f64) -> Option<Reason> {
        match self.c.allowed {
            Allowed::NonNegative if x < 0.0 => Some(Reason::OutOfRange),
            Allowed::Range(lo, hi) if x < lo || x > hi => Some(Reason::OutOfRange),
            Allowed::OneOf(v) if !v.iter().any(|a| (a - x).abs() < 1e-9) => {
                Some(Reason::OutOfRange)
            }
            _ => None,
        }
    }

    pub(crate) fn fast(
        &self,
        a: &ArrayRef,
        name: &str,
        n: usize,
        p: &mut Problems,
    ) -> Result<Option<ArrayRef>> {
        let label = self.label(name);
        let dt = a.data_type();
        let out: ArrayRef = match (self.c.ty, dt) {
            (ColType::Timestamp, DataType::Timestamp(_, Some(_))) => cast(
                a,
                &DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some(self.loader.tz_name.as_str().into()),
                ),
            )?,
            (
                ColType::Timestamp,
                DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64,
            ) => {
                let naive = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let naive = naive
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .expect("ts");
                let mut b = TimestampMicrosecondBuilder::with_capacity(n)
                    .with_timezone(self.loader.tz_name.as_str());
                for r in 0..n {
                    if naive.is_null(r) {
                        b.append_null();
                        continue;
                    }
                    let local = chrono::DateTime::from_timestamp_micros(naive.value(r))
                        .map(|d| d.naive_utc());
                    match local.and_then(|l| local_to_micros(&self.loader.tz, l)) {
                        Some(v) => b.append_value(v),
                        None => {
                            p.set(r, Reason::Unparseable, &label, || {
                                format!("{:?} (not a time in {})", local, self.loader.tz_name)
                            });
                            b.append_null();
                        }
                    }
                }
                Arc::new(b.finish())
            }
            (ColType::Float, d) if d.is_numeric() => cast(a, &DataType::Float64)?,
            (ColType::Int, d) if d.is_integer() => {
                let out = cast(a, &DataType::Int32)?;
                let ints = out.as_any().downcast_ref::<Int32Array>().expect("int32");
                for r in 0..n {
                    if !a.is_null(r) && out.is_null(r) {
                        p.set(r, Reason::OutOfRange, &label, || "integer overflow".into());
                    } else if !out.is_null(r)
                        && let Some(reason) = self.check_num(f64::from(ints.value(r)))
                    {
                        p.set(r, reason, &label, || ints.value(r).to_string());
                    }
                }
                out
            }
            (ColType::Bool, DataType::Boolean) => a.clone(),
            (
                ColType::Text,
                DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Dictionary(_, _),
            ) => {
                let out = cast(a, &DataType::Utf8)?;
                let text = out.as_any().downcast_ref::<StringArray>().expect("utf8");
                for r in 0..n {
                    if !text.is_null(r) && text.value(r).len() > self.c.max_bytes() {
                        p.set(r, Reason::OutOfRange, &label, || text.value(r).to_string());
                    }
                }
                out
            }
            (ColType::Text, d) if d.is_numeric() => cast(a, &DataType::Utf8)?,
            _ => return Ok(None),
        };
        // Checks shared by the fast path: required, vocabulary, ranges.
        match self.c.ty {
            ColType::Text => {
                let s = out.as_any().downcast_ref::<StringArray>().expect("utf8");
                if matches!(self.c.allowed, Allowed::Vocab(_))
                    || (self.c.name == "kind" && self.loader.kind == TableKind::Violations)
                {
                    // Canonical input (every value already its code, nulls
                    // only where allowed) is kept as it is, without a copy.
                    let canonical = (0..n).all(|r| {
                        if s.is_null(r) {
                            !self.c.required
                        } else {
                            let v = s.value(r);
                            matches!(self.check_text(v), Ok(std::borrow::Cow::Borrowed(code)) if code == v)
                        }
                    });
                    if canonical {
                        return Ok(Some(out));
                    }
                    let mut b = StringBuilder::with_capacity(n, n * 8);
                    for r in 0..n {
                        if s.is_null(r) {
                            self.missing(r, &label, p);
                            b.append_null();
                        } else {
                            match self.check_text(s.value(r)) {
                                Ok(code) => b.append_value(code),
                                Err(reason) => {
                                    p.set(r, reason, &label, || s.value(r).to_string());
                                    b.append_null();
                                }
                            }
                        }
                    }
                    return Ok(Some(Arc::new(b.finish())));
                }
                for r in 0..n {
                    if s.is_null(r) {
                        self.missing(r, &label, p);
                    } else if self.c.required && is_blank(s.value(r)) {
                        p.set(r, Reason::MissingRequired, &label, String::new);
                    }
                }
            }
            ColType::Float | ColType::Int => {
                let f = cast(&out, &DataType::Float64)?;
                let f = f.as_any().downcast_ref::<Float64Array>().expect("f64");
                for r in 0..n {
                    if f.is_null(r) {
                        self.missing(r, &label, p);
                    } else if let Some(reason) = self.check_num(f.value(r)) {
                        p.set(r, reason, &label, || f.value(r).to_string());
                    } else if !f.value(r).is_finite() {
                        p.set(r, Reason::Unparseable, &label, || f.value(r).to_string());
                    }
                }
            }
            _ => {
                for r in 0..n {
                    if out.is_null(r) {
                        self.missing(r, &label, p);
                    }
                }
            }
        }
        Ok(Some(out))
    }

    pub(crate) fn timestamps(
        &self,
        tv: &TextValues,
        batch: &RecordBatch,
        n: usize,
        p: &mut Problems,
    ) -> Result<(ArrayRef, Option<BooleanArray>)> {
        let tz = &self.loader.tz;
        let formats = {
            let f = self.spec.ts_formats();
            if f.is_empty() { default_formats() } else { f }
        };
        let mut b = TimestampMicrosecondBuilder::with_capacity(n)
            .with_timezone(self.loader.tz_name.as_str());
        // Several listed formats must not read one value two ways.
        let check_all = self.spec.formats.len() > 1;
        let Some(time_col) = &self.spec.time_column else {
            let mut date_only = vec![false; n];
            for (r, v) in tv.values.iter().enumerate() {
                match v {
                    None => {
                        self.missing(r, &tv.label, p);
                        b.append_null();
                    }
                    Some(s) => match parse_timestamp_checked(s, &formats, tz, check_all) {
                        Parsed::Value((x, d)) => {
                            date_only[r] = d;
                            b.append_value(x);
                        }
                        Parsed::Ambiguous(why) => {
                            p.set(r, Reason::Ambiguous, &tv.label, || why);
                            b.append_null();
                        }
                        Parsed::NoMatch => {
                            p.set(r, Reason::Unparseable, &tv.label, || s.clone());
                            b.append_null();
                        }
                    },
                }
            }
            let tk = self.date_only_flags(date_only, p);
            return Ok((Arc::new(b.finish()), tk));
        };
        let tod = self.spec.tod_format()?.unwrap_or(TimeOfDayFormat::Hhmm);
        let (tarr, tname) = self
            .loader
            .need(batch, time_col, self.c.name, self.source)?;
        let times = self.text_of(&tarr)?;
        let tlabel = self.label(&tname);
        let mut known = BooleanBuilder::with_capacity(n);
        for (r, v) in tv.values.iter().enumerate() {
            let Some(s) = v else {
                self.missing(r, &tv.label, p);
                b.append_null();
                known.append_value(true);
                continue;
            };
            let date = match parse_date_checked(s, &formats, check_all) {
                Parsed::Value(d) => d,
                Parsed::Ambiguous(why) => {
                    p.set(r, Reason::Ambiguous, &tv.label, || why);
                    b.append_null();
                    known.append_value(true);
                    continue;
                }
                Parsed::NoMatch => {
                    p.set(r, Reason::Unparseable, &tv.label, || s.clone());
                    b.append_null();
                    known.append_value(true);
                    continue;
                }
            };
            let t = if times.is_null(r) {
                None
            } else {
                Some(times.value(r).trim())
            };
            let unknown = match t {
                None => true,
                Some(t) => {
                    t.is_empty()
                        || self.spec.time_unknown.iter().any(|u| u.trim() == t)
                        || self.is_null_text(t)
                }
            };
            let time = if unknown {
                Some((NaiveTime::MIN, false))
            } else {
                let t = t.unwrap_or_default();
                match tod.parse_with_day(t) {
                    Some(x) => Some(x),
                    None => {
                        p.set(r, Reason::Unparseable, &tlabel, || t.to_string());
                        None
                    }
                }
            };
            let local =
                time.map(|(tm, next)| date.and_time(tm) + chrono::Duration::days(i64::from(next)));
            match local.and_then(|l| local_to_micros(tz, l)) {
                Some(x) => b.append_value(x),
                None => {
                    p.set(r, Reason::Unparseable, &tv.label, || {
                        format!("{s} (not a local time in {})", self.loader.tz_name)
                    });
                    b.append_null();
                }
            }
            known.append_value(!unknown);
        }
        Ok((Arc::new(b.finish()), Some(known.finish())))
    }

    /// Whether this column is its table's event time and the table flags
    /// rows whose time of day is unknown.
    fn feeds_time_known(&self) -> bool {
        self.loader.def.time_column == Some(self.c.name)
            && self.loader.def.columns.iter().any(|c| c.name == TIME_KNOWN)
    }

    /// Record the event time's date-only rows for the report and, unless the
    /// mapping reads them as midnight, return them as `time_known = false`.
    fn date_only_flags(&self, date_only: Vec<bool>, p: &mut Problems) -> Option<BooleanArray> {
        if !self.feeds_time_known() || !date_only.contains(&true) {
            return None;
        }
        let known = (self.spec.date_only.unwrap_or_default() == DateOnly::TimeUnknown)
            .then(|| date_only.iter().map(|d| Some(!d)).collect());
        p.date_only = date_only;
        known
    }
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "是" | "1.0" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "否" | "0.0" => Some(false),
        _ => None,
    }
}
