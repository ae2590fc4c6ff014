//! When: the hour × weekday profile, shifts, peaks, trends, Pareto,
//! cross-tabs, the accident pyramid and the Knox test.

pub mod patterns;
