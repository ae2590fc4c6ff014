//! How the group performs: safety KPIs per scope and period, and the annual
//! targets against them.

pub mod compute;
pub(crate) mod measure;
pub mod scope;
