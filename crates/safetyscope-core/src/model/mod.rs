//! The data model: canonical tables, vocabularies, the validation report,
//! time and timezone rules, the shift roster and option types shared by
//! several analyses. Imports only `util`.

pub mod geometry;
pub mod options;
pub mod report;
pub mod roster;
pub mod schema;
pub mod time;
pub mod vocab;
