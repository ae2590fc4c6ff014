//! Timestamp parsing in a dataset timezone: text formats, Excel serial days,
//! Unix epochs, date + HHMM time columns.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::util::error::{Error, Result};

/// Default timezone of a dataset.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// Parse an IANA timezone name (or `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| Error::option("timezone", format!("unknown IANA timezone `{name}`")))
}

/// Text formats tried, in order, when a timestamp column declares none.
pub const DEFAULT_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
];

/// A timestamp format: a chrono `strftime` pattern or a named numeric format.
#[derive(Debug, Clone, PartialEq)]
pub enum TsFormat {
    /// RFC 3339 / ISO 8601 with an offset (`2024-03-01T08:00:00+08:00`, `…Z`).
    Rfc3339,
    /// Excel serial day number (1900 date system), fractional part = time of day.
    Excel,
    /// Seconds since the Unix epoch (an instant, timezone-independent).
    UnixSeconds,
    /// Milliseconds since the Unix epoch.
    UnixMillis,
    /// A chrono pattern; with `%z` / `%:z` it reads an offset, else it is local.
    Pattern(String),
}

impl TsFormat {
    /// Parse a format name from a mapping file.
    pub fn parse(s: &str) -> TsFormat {
        match s.trim().to_ascii_lowercase().as_str() {
            "rfc3339" | "iso8601" => TsFormat::Rfc3339,
            "excel" | "excel_serial" => TsFormat::Excel,
            "unix" | "unix_s" | "epoch" => TsFormat::UnixSeconds,
            "unix_ms" | "epoch_ms" => TsFormat::UnixMillis,
            _ => TsFormat::Pattern(s.to_string()),
        }
    }
}

/// Outcome of converting a local wall-clock time to an instant.
pub fn local_to_micros(tz: &Tz, naive: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => Some(dt.timestamp_micros()),
        // A repeated hour (end of daylight saving): the earlier instant.
        LocalResult::Ambiguous(a, _) => Some(a.timestamp_micros()),
        // A skipped hour (start of daylight saving): does not exist.
        LocalResult::None => None,
    }
}

/// A local instant as an option value reads it back: the date alone at
/// midnight (`2025-10-03`), else date and time (`2025-10-03 08:30:00`);
/// empty for an instant out of range.
pub fn local_text(tz: &Tz, micros: i64) -> String {
    micros_to_local(tz, micros)
        .map(|l| {
            if l.time() == chrono::NaiveTime::MIN {
                l.format("%Y-%m-%d").to_string()
            } else {
                l.format("%Y-%m-%d %H:%M:%S").to_string()
            }
        })
        .unwrap_or_default()
}

/// Convert an instant (µs since epoch) to local wall-clock time.
pub fn micros_to_local(tz: &Tz, micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|dt| dt.with_timezone(tz).naive_local())
}

fn excel_to_naive(serial: f64) -> Option<NaiveDateTime> {
    if !serial.is_finite() || !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    // Excel's 1900 system counts 1900-02-29, which did not exist; serial 60 is
    // that phantom day. Day 25569 is 1970-01-01; 1899-12-30 is serial 0 for
    // every serial after 60.
    let base = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    let days = serial.floor();
    let mut day_offset = days as i64;
    if serial < 61.0 {
        day_offset += 1;
    }
    let frac_ms = ((serial - days) * 86_400_000.0).round() as i64;
    Some(base + Duration::days(day_offset) + Duration::milliseconds(frac_ms))
}

/// What one text value parsed to under a list of formats.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    /// The value, from the first format that applies.
    Value(T),
    /// Two listed formats read the value as different instants (or days):
    /// the description names both readings.
    Ambiguous(String),
    /// No format applies.
    NoMatch,
}

impl TsFormat {
    /// The format as written in a mapping.
    pub fn name(&self) -> String {
        match self {
            TsFormat::Rfc3339 => "rfc3339".into(),
            TsFormat::Excel => "excel".into(),
            TsFormat::UnixSeconds => "unix".into(),
            TsFormat::UnixMillis => "unix_ms".into(),
            TsFormat::Pattern(p) => p.clone(),
        }
    }
}

/// Try `formats` in order. With `check_all`, the remaining formats are tried
/// too and a second reading that differs makes the value ambiguous.
fn first_reading<T: PartialEq + Copy>(
    v: &str,
    formats: &[TsFormat],
    check_all: bool,
    read: impl Fn(&TsFormat) -> Option<T>,
    show: impl Fn(T) -> String,
) -> Parsed<T> {
    let mut found: Option<(T, &TsFormat)> = None;
    for f in formats {
        let Some(x) = read(f) else { continue };
        match found {
            None if !check_all => return Parsed::Value(x),
            None => found = Some((x, f)),
            Some((first, ff)) if first != x => {
                return Parsed::Ambiguous(format!(
                    "{v} (`{}` reads {}, `{}` reads {})",
                    ff.name(),
                    show(first),
                    f.name(),
                    show(x)
                ));
            }
            Some(_) => {}
        }
    }
    found.map_or(Parsed::NoMatch, |(x, _)| Parsed::Value(x))
}

/// Parse one text value with a list of formats. Returns microseconds since
/// the epoch, or `None` when no format applies (or the local time does not
/// exist in `tz`).
pub fn parse_timestamp(value: &str, formats: &[TsFormat], tz: &Tz) -> Option<i64> {
    match parse_timestamp_checked(value, formats, tz, false) {
        Parsed::Value((x, _)) => Some(x),
        _ => None,
    }
}

/// Parse one text value with a list of formats into microseconds since the
/// epoch and whether the text carried only a date (a date-only pattern, or
/// an Excel serial without a fraction of a day). With `check_all`, a value
/// that two formats read as different instants is [`Parsed::Ambiguous`].
pub fn parse_timestamp_checked(
    value: &str,
    formats: &[TsFormat],
    tz: &Tz,
    check_all: bool,
) -> Parsed<(i64, bool)> {
    let v = value.trim();
    if v.is_empty() {
        return Parsed::NoMatch;
    }
    let read = |f: &TsFormat| match f {
        TsFormat::Rfc3339 => DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|d| (d.timestamp_micros(), false)),
        TsFormat::Excel => v.parse::<f64>().ok().and_then(|serial| {
            let n = excel_to_naive(serial)?;
            Some((local_to_micros(tz, n)?, serial.fract() == 0.0))
        }),
        TsFormat::UnixSeconds => v
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && x.abs() < 1e14)
            .map(|x| ((x * 1e6).round() as i64, false)),
        TsFormat::UnixMillis => v
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && x.abs() < 1e17)
            .map(|x| ((x * 1e3).round() as i64, false)),
        TsFormat::Pattern(p) => parse_pattern(v, p, tz),
    };
    let show = |(x, _): (i64, bool)| {
        micros_to_local(tz, x).map_or_else(|| format!("{x} µs"), |d| d.to_string())
    };
    first_reading(v, formats, check_all, read, show)
}

fn parse_pattern(v: &str, p: &str, tz: &Tz) -> Option<(i64, bool)> {
    if p.contains("%z") || p.contains("%:z") || p.contains("%#z") {
        return DateTime::parse_from_str(v, p)
            .ok()
            .map(|d| (d.timestamp_micros(), false));
    }
    if let Ok(n) = NaiveDateTime::parse_from_str(v, p) {
        return Some((local_to_micros(tz, n)?, false));
    }
    // Date-only patterns: local midnight, flagged as a date without a time.
    if let Ok(d) = NaiveDate::parse_from_str(v, p) {
        return Some((local_to_micros(tz, d.and_time(NaiveTime::MIN))?, true));
    }
    None
}

/// Parse the default formats: RFC 3339 with offset first, then local patterns.
pub fn default_formats() -> Vec<TsFormat> {
    let mut v = vec![TsFormat::Rfc3339];
    v.extend(
        DEFAULT_FORMATS
            .iter()
            .map(|p| TsFormat::Pattern((*p).to_string())),
    );
    v
}

/// Format of a separate time-of-day column combined with a date column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOfDayFormat {
    /// An integer `HHMM` (`945` = 09:45, `30` = 00:30).
    Hhmm,
    /// Text `HH:MM` or `HH:MM:SS`.
    Clock,
}

impl TimeOfDayFormat {
    /// Parse a format name (`hhmm`, `hh:mm`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hhmm" => Ok(TimeOfDayFormat::Hhmm),
            "hh:mm" | "hh:mm:ss" | "clock" => Ok(TimeOfDayFormat::Clock),
            other => Err(Error::mapping(
                None,
                format!("unknown time_format `{other}` (use `hhmm` or `hh:mm`)"),
            )),
        }
    }

    /// Parse a time-of-day value. `2400` (and `24:00`) is the end of the
    /// day: midnight of the next day, returned as `(00:00, true)`.
    pub fn parse_with_day(self, v: &str) -> Option<(NaiveTime, bool)> {
        let v = v.trim();
        if matches!(v, "2400" | "24:00" | "24:00:00") {
            return Some((NaiveTime::MIN, true));
        }
        self.parse_value(v).map(|t| (t, false))
    }

    /// Parse a time-of-day value within the day (`2400` is not accepted here).
    pub fn parse_value(self, v: &str) -> Option<NaiveTime> {
        let v = v.trim();
        match self {
            TimeOfDayFormat::Hhmm => {
                let n: f64 = v.parse().ok()?;
                if n.fract() != 0.0 || !(0.0..2400.0).contains(&n) {
                    return None;
                }
                let n = n as u32;
                NaiveTime::from_hms_opt(n / 100, n % 100, 0)
            }
            TimeOfDayFormat::Clock => NaiveTime::parse_from_str(v, "%H:%M:%S")
                .or_else(|_| NaiveTime::parse_from_str(v, "%H:%M"))
                .ok(),
        }
    }
}

/// Parse a date value (any format in the list, the time part ignored).
pub fn parse_date(value: &str, formats: &[TsFormat]) -> Option<NaiveDate> {
    match parse_date_checked(value, formats, false) {
        Parsed::Value(d) => Some(d),
        _ => None,
    }
}

/// Parse a date value; with `check_all`, a value that two formats read as
/// different days is [`Parsed::Ambiguous`].
pub fn parse_date_checked(value: &str, formats: &[TsFormat], check_all: bool) -> Parsed<NaiveDate> {
    let v = value.trim();
    let read = |f: &TsFormat| match f {
        TsFormat::Excel => v
            .parse::<f64>()
            .ok()
            .and_then(excel_to_naive)
            .map(|n| n.date()),
        TsFormat::Pattern(p) => NaiveDate::parse_from_str(v, p)
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(v, p).ok().map(|n| n.date())),
        TsFormat::Rfc3339 => DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|d| d.naive_local().date()),
        TsFormat::UnixSeconds | TsFormat::UnixMillis => None,
    };
    first_reading(v, formats, check_all, read, |d| d.to_string())
}

/// The UTC offset (µs) of `tz` at the instant `micros`.
fn offset_at(tz: &Tz, micros: i64) -> i64 {
    use chrono::Offset;
    let utc = DateTime::from_timestamp_micros(micros)
        .map(|d| d.naive_utc())
        .unwrap_or_default();
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * 1_000_000
}

/// The offsets of `tz` over `[lo, hi]`: the offset at `lo`, then every
/// change as `(first instant with the new offset, new offset)`, exact to
/// the microsecond.
pub fn offset_changes(tz: &Tz, lo: i64, hi: i64) -> (i64, Vec<(i64, i64)>) {
    const STEP: i64 = 6 * 3_600_000_000;
    let first = offset_at(tz, lo);
    let (mut prev, mut t, mut out) = (first, lo, Vec::new());
    while t < hi {
        let next = t.saturating_add(STEP).min(hi);
        let o = offset_at(tz, next);
        if o != prev {
            // The offset changes once within six hours: bisect to it.
            let (mut a, mut b) = (t, next);
            while b - a > 1 {
                let mid = a + (b - a) / 2;
                if offset_at(tz, mid) == prev {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            out.push((b, offset_at(tz, b)));
            prev = o;
        }
        t = next;
    }
    (first, out)
}

/// The local day (days since 1970-01-01 in `tz`) of the instant `micros`,
/// an Int64 expression of µs since the epoch, exact for instants in
/// `[lo, hi]`: the offset is a constant, or a `CASE` over the timezone's
/// changes in that span.
pub fn local_day_expr(
    tz: &Tz,
    micros: datafusion::logical_expr::Expr,
    lo: i64,
    hi: i64,
) -> Result<datafusion::logical_expr::Expr> {
    use datafusion::logical_expr::lit;
    const DAY: i64 = 86_400_000_000;
    let local = local_micros_expr(tz, micros, lo, hi)?;
    // Floor division, also before 1970.
    let r = ((local.clone() % lit(DAY)) + lit(DAY)) % lit(DAY);
    Ok((local - r) / lit(DAY))
}

/// The key of the local period (see [`slice_key`]) a local day number
/// (days since 1970-01-01, an Int64 expression such as [`local_day_expr`]
/// gives) falls in, in integer arithmetic: for weeks from Monday the
/// number of the week, for months `year × 12 + month − 1` (the civil date
/// by H. Hinnant's days-to-civil algorithm, valid for years 0 and later).
pub fn slice_key_expr(
    day: datafusion::logical_expr::Expr,
    slice: crate::model::options::Slice,
) -> datafusion::logical_expr::Expr {
    use datafusion::logical_expr::{lit, when};
    match slice {
        // 1970-01-05 was a Monday: day + 3 counts from a Monday.
        crate::model::options::Slice::Week => {
            let d = day + lit(3i64);
            let r = ((d.clone() % lit(7i64)) + lit(7i64)) % lit(7i64);
            (d - r) / lit(7i64)
        }
        crate::model::options::Slice::Month => {
            let z = day + lit(719_468i64);
            let era = z.clone() / lit(146_097i64);
            let doe = z - era.clone() * lit(146_097i64);
            let yoe = (doe.clone() - doe.clone() / lit(1460i64) + doe.clone() / lit(36_524i64)
                - doe.clone() / lit(146_096i64))
                / lit(365i64);
            let doy = doe
                - (lit(365i64) * yoe.clone() + yoe.clone() / lit(4i64) - yoe.clone() / lit(100i64));
            let mp = (lit(5i64) * doy + lit(2i64)) / lit(153i64);
            // Months from March: 0 … 9 are March … December, 10 and 11
            // January and February of the next year.
            let year = yoe
                + era * lit(400i64)
                + when(mp.clone().gt_eq(lit(10i64)), lit(1i64))
                    .otherwise(lit(0i64))
                    .expect("a CASE with an ELSE");
            let month0 = when(mp.clone().lt(lit(10i64)), mp.clone() + lit(2i64))
                .otherwise(mp - lit(10i64))
                .expect("a CASE with an ELSE");
            year * lit(12i64) + month0
        }
    }
}

/// The key [`slice_key_expr`] gives the period starting on local date `d`.
pub fn slice_key(d: NaiveDate, slice: crate::model::options::Slice) -> i64 {
    use chrono::Datelike;
    match slice {
        crate::model::options::Slice::Week => {
            let days = (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days();
            (days + 3).div_euclid(7)
        }
        crate::model::options::Slice::Month => i64::from(d.year()) * 12 + i64::from(d.month0()),
    }
}

/// The local wall-clock time of the instant `micros` as µs since
/// 1970-01-01T00:00 local (an Int64 expression), exact for instants in
/// `[lo, hi]`.
pub fn local_micros_expr(
    tz: &Tz,
    micros: datafusion::logical_expr::Expr,
    lo: i64,
    hi: i64,
) -> Result<datafusion::logical_expr::Expr> {
    use datafusion::logical_expr::{lit, when};
    let (first, changes) = offset_changes(tz, lo, hi);
    let offset = if changes.is_empty() {
        lit(first)
    } else {
        let mut case = when(micros.clone().lt(lit(changes[0].0)), lit(first));
        for w in changes.windows(2) {
            case = case.when(micros.clone().lt(lit(w[1].0)), lit(w[0].1));
        }
        case.otherwise(lit(changes[changes.len() - 1].1))?
    };
    Ok(micros + offset)
}

/// Start of the slice containing a local date.
pub fn slice_start(d: NaiveDate, slice: crate::model::options::Slice) -> NaiveDate {
    use chrono::Datelike;
    match slice {
        crate::model::options::Slice::Week => {
            d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
        }
        crate::model::options::Slice::Month => d.with_day(1).expect("day 1 exists"),
    }
}

/// Start of the slice after the one starting on `d`.
pub fn next_slice(d: NaiveDate, slice: crate::model::options::Slice) -> NaiveDate {
    use chrono::Datelike;
    match slice {
        crate::model::options::Slice::Week => d + Duration::days(7),
        crate::model::options::Slice::Month => {
            if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1).expect("valid")
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1).expect("valid")
            }
        }
    }
}

#[cfg(test)]
mod local_day_tests {
    /// `(value, expr(value))` for every value of an Int64 column `v`,
    /// evaluated by DataFusion (the plan need not keep the row order).
    fn evaluate(values: &[i64], expr: datafusion::logical_expr::Expr) -> Vec<(i64, i64)> {
        use datafusion::logical_expr::col;
        use datafusion::prelude::SessionContext;
        let batch = RecordBatch::try_from_iter([(
            "v",
            Arc::new(Int64Array::from(values.to_vec())) as Arc<dyn Array>,
        )])
        .unwrap();
        let out = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                SessionContext::new()
                    .read_batch(batch)?
                    .select(vec![col("v"), expr.alias("k")])?
                    .collect()
                    .await
            })
            .unwrap();
        let column = |b: &RecordBatch, i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        let got: Vec<(i64, i64)> = out
            .iter()
            .flat_map(|b| column(b, 0).into_iter().zip(column(b, 1)))
            .collect();
        assert_eq!(got.len(), values.len());
        got
    }

    #[test]
    fn slice_keys_in_the_plan_equal_the_calendar() {
        use crate::model::options::Slice;
        use datafusion::logical_expr::col;
        // Every day from 1900 to 2200 (leap years and centuries included).
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let first = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
        let days: Vec<i64> = (0..110_000)
            .map(|k| (first - epoch).num_days() + k)
            .collect();
        for slice in [Slice::Week, Slice::Month] {
            for (d, k) in evaluate(&days, slice_key_expr(col("v"), slice)) {
                let date = epoch + chrono::Duration::days(d);
                let start = slice_start(date, slice);
                assert_eq!(k, slice_key(start, slice), "{date} {slice:?}");
            }
        }
    }

    use super::*;
    use arrow::array::{Array, Int64Array, RecordBatch};
    use std::sync::Arc;

    #[test]
    fn offset_changes_are_the_dst_transitions() {
        let tz = parse_tz("Europe/Berlin").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        let (first, changes) =
            offset_changes(&tz, at("2025-01-01T00:00:00Z"), at("2025-12-31T00:00:00Z"));
        assert_eq!(first, 3_600_000_000);
        assert_eq!(
            changes,
            vec![
                (at("2025-03-30T01:00:00Z"), 7_200_000_000),
                (at("2025-10-26T01:00:00Z"), 3_600_000_000)
            ]
        );
        let sh = parse_tz("Asia/Shanghai").unwrap();
        assert!(
            offset_changes(&sh, at("2000-01-01T00:00:00Z"), at("2030-01-01T00:00:00Z"))
                .1
                .is_empty()
        );
    }

    #[test]
    fn local_day_in_the_plan_equals_chrono() {
        use datafusion::logical_expr::col;
        for name in [
            "Europe/Berlin",
            "America/New_York",
            "Asia/Shanghai",
            "Asia/Kathmandu",
        ] {
            let tz = parse_tz(name).unwrap();
            // Every 7 minutes 13 seconds over two years around the DST changes,
            // and instants just either side of each change.
            let lo = 1_700_000_000_000_000i64;
            let hi = lo + 2 * 365 * 86_400_000_000;
            let mut ts: Vec<i64> = (lo..hi).step_by(433_000_000).collect();
            for (t, _) in offset_changes(&tz, lo, hi).1 {
                ts.extend([t - 1, t, t + 1]);
            }
            let expr = local_day_expr(&tz, col("v"), lo - 1, hi + 1).unwrap();
            let got = evaluate(&ts, expr);
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            for (t, d) in &got {
                let want = (micros_to_local(&tz, *t).unwrap().date() - epoch).num_days();
                assert_eq!(*d, want, "{name} at {t}");
            }
        }
    }
}

/// The first instant of a local day (midnight, or the first valid time
/// after a skipped midnight).
pub(crate) fn local_day_start(tz: &Tz, d: NaiveDate) -> i64 {
    let midnight = d.and_time(chrono::NaiveTime::MIN);
    (0..96)
        .find_map(|k| local_to_micros(tz, midnight + chrono::Duration::minutes(15 * k)))
        .unwrap_or_else(|| midnight.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_serials_match_the_spreadsheet() {
        // =DATE(2012,3,14) is 40982 in Excel; 39090.5 is 2007-01-08 12:00.
        let tz = parse_tz("UTC").unwrap();
        let t = parse_timestamp("40982", &[TsFormat::Excel], &tz).unwrap();
        assert_eq!(
            DateTime::from_timestamp_micros(t).unwrap().to_rfc3339(),
            "2012-03-14T00:00:00+00:00"
        );
        let t = parse_timestamp("39090.5", &[TsFormat::Excel], &tz).unwrap();
        assert_eq!(
            DateTime::from_timestamp_micros(t).unwrap().to_rfc3339(),
            "2007-01-08T12:00:00+00:00"
        );
    }

    #[test]
    fn naive_text_is_local_and_offsets_are_absolute() {
        let tz = parse_tz("Asia/Shanghai").unwrap();
        let f = default_formats();
        let local = parse_timestamp("2024-03-01 08:00:00", &f, &tz).unwrap();
        let utc = parse_timestamp("2024-03-01T00:00:00Z", &f, &tz).unwrap();
        assert_eq!(local, utc);
        assert!(parse_timestamp("2024-13-01", &f, &tz).is_none());
    }

    #[test]
    fn dst_gap_is_rejected_and_overlap_takes_the_first() {
        let tz = parse_tz("Europe/Berlin").unwrap();
        let f = default_formats();
        assert!(parse_timestamp("2024-03-31 02:30", &f, &tz).is_none());
        let first = parse_timestamp("2024-10-27 02:30", &f, &tz).unwrap();
        let utc = parse_timestamp("2024-10-27T00:30:00Z", &f, &tz).unwrap();
        assert_eq!(first, utc);
    }

    #[test]
    fn hhmm() {
        let f = TimeOfDayFormat::Hhmm;
        assert_eq!(f.parse_value("945"), NaiveTime::from_hms_opt(9, 45, 0));
        assert_eq!(f.parse_value("30"), NaiveTime::from_hms_opt(0, 30, 0));
        assert_eq!(f.parse_value("2400"), None);
        assert_eq!(f.parse_with_day("2400"), Some((NaiveTime::MIN, true)));
        assert_eq!(f.parse_value("1275"), None);
    }
}
