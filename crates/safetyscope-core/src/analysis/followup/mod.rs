//! What to chase: overdue hazards, repeat violators, fence intrusions,
//! sensor alarm episodes and the safety points ledger.

pub mod alerts;
pub(crate) mod common;
pub mod episodes;
pub mod options;
