//! Where: heat maps, Getis-Ord Gi* hot spots, the risk four-colour map,
//! kernel density and emerging hot spots.

pub mod density;
pub mod emerging;
pub mod heatmap;
pub mod hotspots;
pub mod risk;
pub(crate) mod risk_evidence;
pub mod risk_model;
