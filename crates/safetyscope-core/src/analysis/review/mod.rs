//! What leadership reads: the group overview that ranks the units and the
//! review-meeting report. Built from the other concerns' results (the risk
//! roll-up, the KPIs, the targets, the alerts, the hot spots and peaks),
//! never from rows.

pub mod overview;
pub mod report;
