//! Time windows of a dataset: option values parsed in the dataset's
//! timezone, table rows filtered to a window and site, and the default
//! window ending after the latest event.

use datafusion::dataframe::DataFrame;
use datafusion::prelude::*;
use datafusion::scalar::ScalarValue;

use crate::model::schema::TableKind;
use crate::model::time::{default_formats, parse_timestamp, parse_tz};
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

const DAY_US: i64 = 86_400_000_000;

/// Parse a local date or time of an option in the dataset timezone (µs).
pub(crate) fn parse_local(ds: &Dataset, option: &str, value: &str) -> Result<i64> {
    let tz = parse_tz(ds.timezone())?;
    parse_timestamp(value, &default_formats(), &tz).ok_or_else(|| {
        Error::option(
            option,
            format!("`{value}` is not a date or time (e.g. 2025-03-01 or 2025-03-01 08:00)"),
        )
    })
}

/// A window bound as a timestamp literal in the dataset timezone.
pub(crate) fn bound(ds: &Dataset, option: &str, value: Option<&str>) -> Result<Option<Expr>> {
    let Some(v) = value else { return Ok(None) };
    let micros = parse_local(ds, option, v)?;
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

/// The evaluation instant every analysis defaults "now" to: the local
/// midnight after the latest dated row of the incidents, hazards,
/// violations, readings and positions. A dataset with no dated row has none:
/// an error naming `option` (`as_of` or `to`), never the epoch.
pub async fn data_end(ds: &Dataset, option: &str) -> Result<i64> {
    let tz = parse_tz(ds.timezone())?;
    let Some(latest) = ds.latest_instant().await? else {
        return Err(Error::data(
            "dataset",
            format!("no dated rows to take \"now\" from; give `{option}`"),
        ));
    };
    let local = crate::model::time::micros_to_local(&tz, latest)
        .ok_or_else(|| Error::data("dataset", "timestamp out of range"))?;
    let next = (local.date() + chrono::Duration::days(1)).and_time(chrono::NaiveTime::MIN);
    Ok(crate::model::time::local_to_micros(&tz, next).unwrap_or(latest + DAY_US))
}

/// A window `[from, to)` in µs: `to` defaults to [`data_end`], `from` to
/// `default_days` before `to`.
pub(crate) async fn resolve_window(
    ds: &Dataset,
    from: Option<&str>,
    to: Option<&str>,
    default_days: i64,
) -> Result<(i64, i64)> {
    let parse = |opt: &str, v: &str| crate::session::window::parse_local(ds, opt, v);
    let to = match to {
        Some(v) => parse("to", v)?,
        None => data_end(ds, "to").await?,
    };
    let from = match from {
        Some(v) => parse("from", v)?,
        None => to - default_days * DAY_US,
    };
    if from >= to {
        return Err(Error::option(
            "from",
            "the window is empty: `from` must be before `to`",
        ));
    }
    Ok((from, to))
}
