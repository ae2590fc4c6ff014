//! How the group performs: the KPI catalogue, safety KPIs per scope and
//! period, and the annual targets against them. Lowest first: catalogue
//! and scope, timeline (the windows by time), measure (the streamed facts),
//! compute (the KPI table), targets.

pub mod catalogue;
pub mod compute;
pub(crate) mod measure;
pub(crate) mod meter;
pub mod scope;
pub mod targets;
pub(crate) mod timeline;
