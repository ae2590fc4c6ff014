//! What leadership reads: the group overview that ranks the units. Built
//! from the other concerns' results (the risk roll-up, the KPIs, the
//! targets and the alerts), never from rows.

pub mod overview;
