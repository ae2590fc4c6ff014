//! The windows the KPIs are measured over, indexed by time: each scope's
//! window bounds cut time into segments with the windows covering them.

use std::collections::{BTreeMap, BTreeSet};

use crate::analysis::kpis::scope::Scope;
use crate::util::fasthash::NameMap;

/// A scope and the time range `[a, b)` (µs) to measure, `months` long (for
/// the per-month KPIs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    pub(crate) scope: Scope,
    pub(crate) a: i64,
    pub(crate) b: i64,
    pub(crate) months: f64,
}

/// What the KPIs read: sites and zones present, and the span of event
/// times.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outline {
    /// Sites with incidents, hazards or exposure, with their zones.
    pub(crate) zones: BTreeMap<String, BTreeSet<String>>,
    /// Every site with rows in a KPI table.
    pub(crate) sites: BTreeSet<String>,
    /// Earliest and latest incident, hazard report and violation (µs).
    pub(crate) span: Option<(i64, i64)>,
}
// ------------------------------------------------------------ windows index

/// The windows of one scope: their bounds cut time into segments, each
/// with the windows covering it.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    pub(crate) bounds: Vec<i64>,
    pub(crate) cover: Vec<Vec<u32>>,
    pub(crate) windows: Vec<u32>,
    /// Hazard counts by the slot of an instant, summed over slots `≤ j` to
    /// count instants before `bounds[j]`: reported, resolved
    /// (max(reported, closed)), late (max(reported, due)), late and
    /// resolved; then the same for major hazards. Empty until a row adds
    /// to them ([`Timeline::ensure`]).
    pub(crate) cum: [Vec<i64>; 8],
    /// The latest (local day, last instant) of a lost-time injury group by
    /// slot of its first instant (empty with `cum`).
    pub(crate) lti: Vec<Option<(i64, i64)>>,
}

impl Timeline {
    pub(crate) fn new(windows: Vec<(u32, i64, i64)>) -> Timeline {
        let mut bounds: Vec<i64> = windows.iter().flat_map(|w| [w.1, w.2]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut cover = vec![vec![]; bounds.len().saturating_sub(1)];
        for &(id, a, b) in &windows {
            let lo = bounds.partition_point(|&x| x < a);
            let hi = bounds.partition_point(|&x| x < b);
            for c in &mut cover[lo..hi] {
                c.push(id);
            }
        }
        Timeline {
            cover,
            windows: windows.iter().map(|w| w.0).collect(),
            cum: Default::default(),
            lti: vec![],
            bounds,
        }
    }

    /// Sizes the per-slot counts, on the first row that adds to them (a
    /// scope no row reaches holds none).
    pub(crate) fn ensure(&mut self) {
        if self.lti.is_empty() {
            let n = self.bounds.len() + 1;
            self.cum = std::array::from_fn(|_| vec![0; n]);
            self.lti = vec![None; n];
        }
    }

    /// Whether a row has added to the per-slot counts.
    pub(crate) fn touched(&self) -> bool {
        !self.lti.is_empty()
    }

    /// The windows whose range holds `t`.
    pub(crate) fn covering(&self, t: i64) -> &[u32] {
        self.cover_at(self.slot(t))
    }

    /// The windows covering the instants of a slot.
    pub(crate) fn cover_at(&self, slot: usize) -> &[u32] {
        if slot == 0 || slot >= self.bounds.len() {
            &[]
        } else {
            &self.cover[slot - 1]
        }
    }

    /// The slot of an instant: it is before `bounds[j]` for every `j ≥`
    /// its slot (so the slot of the later of two instants is the larger
    /// of their slots).
    pub(crate) fn slot(&self, t: i64) -> usize {
        self.bounds.partition_point(|&x| x <= t)
    }

    /// The index of a window bound.
    pub(crate) fn at(&self, b: i64) -> usize {
        self.bounds.partition_point(|&x| x < b)
    }
}

/// Up to three scope indexes (group, site, zone) a row belongs to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ids {
    pub(crate) n: usize,
    pub(crate) v: [usize; 3],
}

impl Ids {
    pub(crate) fn as_slice(&self) -> &[usize] {
        &self.v[..self.n]
    }
}

/// Scopes of the windows, found by site and zone names.
#[derive(Debug, Default)]
pub(crate) struct Scopes {
    pub(crate) group: Option<usize>,
    pub(crate) sites: NameMap<(Option<usize>, NameMap<usize>)>,
}

impl Scopes {
    pub(crate) fn ids(&self, site: &str, zone: Option<&str>) -> Ids {
        let mut out = Ids::default();
        let mut push = |i: usize| {
            out.v[out.n] = i;
            out.n += 1;
        };
        if let Some(g) = self.group {
            push(g);
        }
        if let Some((s, zones)) = self.sites.get(site) {
            if let Some(s) = s {
                push(*s);
            }
            if let Some(z) = zone.and_then(|z| zones.get(z)) {
                push(*z);
            }
        }
        out
    }
}

/// Finds the scopes of consecutive rows, looking up names only when they
/// change.
pub(crate) struct Lookup<'a> {
    pub(crate) scopes: &'a Scopes,
    pub(crate) site: String,
    pub(crate) zone: Option<String>,
    pub(crate) ids: Option<Ids>,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(scopes: &'a Scopes) -> Lookup<'a> {
        Lookup {
            scopes,
            site: String::new(),
            zone: None,
            ids: None,
        }
    }

    pub(crate) fn get(&mut self, site: &str, zone: Option<&str>) -> Ids {
        if let Some(ids) = self.ids
            && self.site == site
            && self.zone.as_deref() == zone
        {
            return ids;
        }
        let ids = self.scopes.ids(site, zone);
        self.site.clear();
        self.site.push_str(site);
        match zone {
            Some(z) => {
                let b = self.zone.get_or_insert_with(String::new);
                b.clear();
                b.push_str(z);
            }
            None => self.zone = None,
        }
        self.ids = Some(ids);
        ids
    }
}
