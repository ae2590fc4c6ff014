//! The analyses, by concern: where (spatial), when (temporal), how the
//! group performs (kpis) and what to chase (follow-up). Each analysis is
//! an options struct and a function over a [`crate::session::dataset::Dataset`].
//! Imports `util`, `model`, `io`, `session` and `charts`.
//!
//! Within this layer: `followup` and `kpis` import no other analysis,
//! `spatial` imports `followup` (the risk map counts its episodes), and
//! `temporal` imports none; `forecast` imports `spatial` (the plan, the
//! hours per cell and the risk map its backtest compares with); `review`
//! (the overview) reads the results of all the others.

pub mod followup;
pub mod forecast;
pub mod kpis;
pub mod review;
pub mod spatial;
pub mod temporal;
