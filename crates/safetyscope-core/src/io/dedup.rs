//! Duplicate ids of a table found after its load: fingerprints of the
//! accepted ids spilled to disk and sorted one file at a time, confirmed on
//! the ids themselves.

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
    /// Spill files in `dir` (created; removed by [`IdSpill::duplicates`]).
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
    pub fn duplicates(self) -> Result<Vec<Duplicate>> {
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
            for w in recs.windows(2) {
                if w[0].0 == w[1].0 {
                    out.push(Duplicate {
                        ordinal: w[1].1,
                        source: sources[w[1].2 as usize].clone(),
                        row: w[1].3,
                    });
                }
            }
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
        let _ = std::fs::remove_dir(&dir);
        out.sort_by_key(|d| d.ordinal);
        Ok(out)
    }
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
