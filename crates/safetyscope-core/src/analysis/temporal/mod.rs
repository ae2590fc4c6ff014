//! When: the hour × weekday profile, shifts, peaks, trends, Pareto,
//! cross-tabs, the accident pyramid and the Knox test. Lowest first:
//! options, the selected events (select), exposure, the profile and peak
//! tests, the summaries, Knox, and the views with their charts (patterns).

pub mod exposure;
pub mod knox;
pub mod options;
pub mod patterns;
pub mod profile;
pub mod select;
pub mod summaries;
