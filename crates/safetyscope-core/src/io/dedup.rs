//! Duplicate ids of a table found after its load: fingerprints of the
//! accepted ids spilled to disk and sorted one file at a time; rows whose
//! fingerprints are equal are then confirmed on the ids themselves, so a
//! fingerprint collision never rejects a good row.

use arrow::array::RecordBatch;

use crate::util::error::{Error, Result};

/// Number of files the id fingerprints of one table are spread over.
pub(crate) const SPILL_PARTS: usize = 64;
/// Bytes of one spilled record: fingerprint, ordinal, source, row.
pub(crate) const SPILL_RECORD: usize = 16 + 8 + 4 + 8;

/// The fingerprints of a table's accepted ids on disk, spread over
/// 64 files by their top bits, so that duplicates are found
/// after the load one file at a time: memory holds 1/64 of 36 bytes per row
/// (56 MB at 100 M rows) instead of every fingerprint.
pub struct IdSpill {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) parts: Vec<std::io::BufWriter<std::fs::File>>,
    pub(crate) sources: Vec<String>,
    pub(crate) next: u64,
}

/// A later occurrence of an id already accepted: the `ordinal`-th accepted
/// row of the table (0-based), from `row` of `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// Position among the rows the load accepted.
    pub ordinal: u64,
    /// The source it came from.
    pub source: String,
    /// Its row in the source (1-based).
    pub row: u64,
}

impl IdSpill {
    /// Spill files in `dir` (created; removed by [`IdSpill::candidates`]).
    pub fn new(dir: &std::path::Path) -> Result<IdSpill> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let parts = (0..SPILL_PARTS)
            .map(|i| {
                let p = dir.join(format!("ids-{i:02}.bin"));
                std::fs::File::create(&p)
                    .map(|f| std::io::BufWriter::with_capacity(1 << 16, f))
                    .map_err(|e| Error::io(&p, e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(IdSpill {
            dir: dir.to_path_buf(),
            parts,
            sources: vec![],
            next: 0,
        })
    }

    pub(crate) fn record(&mut self, fp: u128, source: &str, row: u64) -> Result<()> {
        use std::io::Write;
        if self.sources.last().is_none_or(|s| s != source) {
            self.sources.push(source.to_string());
        }
        let src = (self.sources.len() - 1) as u32;
        let mut rec = [0u8; SPILL_RECORD];
        rec[..16].copy_from_slice(&fp.to_le_bytes());
        rec[16..24].copy_from_slice(&self.next.to_le_bytes());
        rec[24..28].copy_from_slice(&src.to_le_bytes());
        rec[28..].copy_from_slice(&row.to_le_bytes());
        self.next += 1;
        let part = (fp >> 122) as usize % SPILL_PARTS;
        self.parts[part]
            .write_all(&rec)
            .map_err(|e| Error::io(&self.dir, e))
    }

    /// Every accepted row whose id an earlier accepted row already had,
    /// by ordinal; the spill files are removed.
    /// Rows whose id fingerprint equals another's: each group of equal
    /// fingerprints (two or more rows, by ordinal). The ids themselves
    /// decide which are duplicates ([`confirm`]).
    pub fn candidates(self) -> Result<Vec<Vec<Duplicate>>> {
        let IdSpill {
            dir,
            parts,
            sources,
            ..
        } = self;
        for p in parts {
            p.into_inner()
                .map_err(|e| Error::io(&dir, e.into_error()))?;
        }
        let mut out = Vec::new();
        for i in 0..SPILL_PARTS {
            let path = dir.join(format!("ids-{i:02}.bin"));
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let mut recs: Vec<(u128, u64, u32, u64)> = bytes
                .chunks_exact(SPILL_RECORD)
                .map(|r| {
                    let u64_at = |a: usize| u64::from_le_bytes(r[a..a + 8].try_into().expect("8"));
                    (
                        u128::from_le_bytes(r[..16].try_into().expect("16")),
                        u64_at(16),
                        u32::from_le_bytes(r[24..28].try_into().expect("4")),
                        u64_at(28),
                    )
                })
                .collect();
            drop(bytes);
            recs.sort_unstable();
            for run in recs.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
                out.push(
                    run.iter()
                        .map(|r| Duplicate {
                            ordinal: r.1,
                            source: sources[r.2 as usize].clone(),
                            row: r.3,
                        })
                        .collect::<Vec<_>>(),
                );
            }
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
        let _ = std::fs::remove_dir(&dir);
        Ok(out)
    }
}

/// The duplicates among groups of rows with equal id fingerprints, decided
/// on the ids themselves (`id_of` an ordinal): in each group, every row
/// whose id an earlier row of the group has. Rows whose fingerprints merely
/// collide stay. Ordered by ordinal.
pub fn confirm(
    groups: Vec<Vec<Duplicate>>,
    id_of: &dyn Fn(u64) -> Option<String>,
) -> Vec<Duplicate> {
    let mut out = vec![];
    for mut g in groups {
        g.sort_by_key(|d| d.ordinal);
        let mut seen = std::collections::HashSet::new();
        for d in g {
            // An id that cannot be read back is never treated as a duplicate.
            if let Some(id) = id_of(d.ordinal)
                && !seen.insert(id)
            {
                out.push(d);
            }
        }
    }
    out.sort_by_key(|d| d.ordinal);
    out
}

/// The column names of a batch, for messages: `a, b, c`.
pub(crate) fn column_list(batch: &RecordBatch) -> String {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A 128-bit fingerprint of an id, the length mixed in. No allocation per id.
pub(crate) fn id_fingerprint(bytes: &[u8]) -> u128 {
    // Two multiply-rotate hashes over 8-byte words with different seeds and
    // multipliers, each finished by the splitmix64 avalanche.
    let (mut a, mut b) = (
        0x243f_6a88_85a3_08d3 ^ bytes.len() as u64,
        0x1319_8a2e_0370_7344 ^ (bytes.len() as u64).rotate_left(32),
    );
    let mut step = |w: u64| {
        a = (a.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        b = (b.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    };
    // Whole words are read in place; the last partial word is zero-padded.
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for chunk in words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        step(u64::from_le_bytes(w));
    }
    if !tail.is_empty() {
        let w = tail
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &c)| w | (u64::from(c) << (8 * i)));
        step(w);
    }
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (u128::from(mix(a)) << 64) | u128::from(mix(b))
}

/// The ids accepted so far while a table loads in memory: a fingerprint
/// per id pointing at the row that carries it, in the id arrays of the
/// batches checked so far (shared with the batches, not copied). A
/// repeated fingerprint is a duplicate only if the id text is equal; ids
/// whose fingerprints merely collide are both accepted.
#[derive(Default)]
pub(crate) struct SeenIds {
    first: std::collections::HashMap<u128, (u32, u32), std::hash::BuildHasherDefault<PreHashed>>,
    /// Further distinct ids of a fingerprint that collided.
    more: std::collections::HashMap<u128, Vec<(u32, u32)>>,
    arrays: Vec<arrow::array::StringArray>,
}

impl SeenIds {
    /// Start checking the ids of a batch; returns its index.
    pub(crate) fn batch(&mut self, ids: &arrow::array::StringArray) -> u32 {
        self.first.reserve(arrow::array::Array::len(ids));
        self.arrays.push(ids.clone());
        (self.arrays.len() - 1) as u32
    }

    /// Whether row `row` of batch `batch` repeats an id seen before (and
    /// if not, remember it). `fp` is the id's fingerprint.
    pub(crate) fn repeats(&mut self, fp: u128, batch: u32, row: u32) -> bool {
        let text = |(b, r): (u32, u32)| self.arrays[b as usize].value(r as usize);
        let value = text((batch, row));
        let Some(&at) = self.first.get(&fp) else {
            self.first.insert(fp, (batch, row));
            return false;
        };
        if text(at) == value
            || self
                .more
                .get(&fp)
                .is_some_and(|m| m.iter().any(|&o| text(o) == value))
        {
            return true;
        }
        self.more.entry(fp).or_default().push((batch, row));
        false
    }
}

/// The hasher of already mixed fingerprints: their low 64 bits.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ordinal: u64) -> Duplicate {
        Duplicate {
            ordinal,
            source: "s".into(),
            row: ordinal + 2,
        }
    }

    #[test]
    fn colliding_fingerprints_are_confirmed_on_the_ids() {
        // Two groups of equal fingerprints: in the first, rows 3 and 9 carry
        // the same id as row 1 and row 5 another id that merely collides;
        // in the second, the ids all differ.
        let ids = |o: u64| {
            Some(match o {
                1 | 3 | 9 => "A-1".to_string(),
                5 => "Z-7".to_string(),
                other => format!("id-{other}"),
            })
        };
        let got = confirm(vec![vec![d(9), d(1), d(5), d(3)], vec![d(20), d(21)]], &ids);
        assert_eq!(
            got.iter().map(|d| d.ordinal).collect::<Vec<_>>(),
            vec![3, 9]
        );
        // An id that cannot be read back rejects nothing.
        assert!(confirm(vec![vec![d(1), d(2)]], &|_| None).is_empty());
    }

    #[test]
    fn ids_seen_in_memory_are_confirmed_on_their_text() {
        let mut seen = SeenIds::default();
        let a = arrow::array::StringArray::from(vec!["A-1", "B-2", "A-1"]);
        let b = seen.batch(&a);
        // The same fingerprint for every id: only the equal text repeats.
        assert!(!seen.repeats(7, b, 0));
        assert!(!seen.repeats(7, b, 1));
        assert!(seen.repeats(7, b, 2));
        let c = arrow::array::StringArray::from(vec!["B-2", "C-3"]);
        let b2 = seen.batch(&c);
        assert!(seen.repeats(7, b2, 0));
        assert!(!seen.repeats(7, b2, 1));
        assert!(!seen.repeats(8, b2, 1));
    }

    #[test]
    fn a_spill_groups_equal_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = IdSpill::new(&dir.path().join("spill")).unwrap();
        for (fp, row) in [(7u128, 2u64), (8, 3), (7, 4), (u128::MAX, 5), (7, 6)] {
            s.record(fp, "a.csv", row).unwrap();
        }
        let groups = s.candidates().unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(
            groups[0].iter().map(|d| d.ordinal).collect::<Vec<_>>(),
            vec![0, 2, 4]
        );
        assert!(!dir.path().join("spill").exists());
    }

    #[test]
    fn fingerprints_read_words_as_zero_padded_bytes() {
        // The same hash written the plain way: every 8 bytes, the last
        // zero-padded, little-endian.
        fn plain(bytes: &[u8]) -> u128 {
            let (mut a, mut b) = (
                0x243f_6a88_85a3_08d3 ^ bytes.len() as u64,
                0x1319_8a2e_0370_7344 ^ (bytes.len() as u64).rotate_left(32),
            );
            for chunk in bytes.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                let w = u64::from_le_bytes(w);
                a = (a.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
                b = (b.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            }
            let mix = |mut z: u64| {
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            };
            (u128::from(mix(a)) << 64) | u128::from(mix(b))
        }
        let text = "INC-000123-隐患-ÿ\u{0}abcdefghijklmnopqrstuvwxyz";
        for n in 0..text.len() {
            let bytes = &text.as_bytes()[..n];
            assert_eq!(id_fingerprint(bytes), plain(bytes), "{n} bytes");
        }
    }
}
