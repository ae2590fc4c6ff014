//! Reading sources (Parquet, CSV, NDJSON, Arrow IPC; files, globs,
//! directories, Hive partitions, bytes, in-memory batches) and turning them
//! into canonical tables with a validation report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Int32Array, RecordBatch,
    StringArray, StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use chrono::NaiveTime;
use chrono_tz::Tz;

use crate::io::mapping::{ColumnSpec, TableMapping};
use crate::io::source::ReadOptions;
use crate::io::source::Source;
use crate::io::source::read_source;
use crate::model::report::{Example, Reason, TableReport};
use crate::model::schema::{Allowed, ColType, ColumnDef, TIME_KNOWN, TableDef, TableKind};
use crate::model::time::{
    TimeOfDayFormat, default_formats, local_to_micros, parse_date, parse_timestamp,
};
use crate::util::error::{Error, Result};

/// Bounding boxes of sites, from the site plan, for the "outside the site" check.
pub type SiteExtents = HashMap<String, (f64, f64, f64, f64)>;

/// Compute site extents from canonical `cells` batches.
pub fn site_extents(cells: &[RecordBatch]) -> SiteExtents {
    let mut out: SiteExtents = HashMap::new();
    for b in cells {
        let get_f = |n: &str| {
            b.column_by_name(n)
                .and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned())
        };
        let (Some(site), Some(x0), Some(y0), Some(x1), Some(y1)) = (
            b.column_by_name("site")
                .and_then(|a| a.as_any().downcast_ref::<StringArray>().cloned()),
            get_f("x_min"),
            get_f("y_min"),
            get_f("x_max"),
            get_f("y_max"),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            if x0.is_null(i) || y0.is_null(i) || x1.is_null(i) || y1.is_null(i) {
                continue;
            }
            let e = out.entry(site.value(i).to_string()).or_insert((
                f64::MAX,
                f64::MAX,
                f64::MIN,
                f64::MIN,
            ));
            e.0 = e.0.min(x0.value(i));
            e.1 = e.1.min(y0.value(i));
            e.2 = e.2.max(x1.value(i));
            e.3 = e.3.max(y1.value(i));
        }
    }
    out
}

/// Per-row first problem of a batch.
struct Problems {
    first: Vec<Option<(Reason, String, String)>>,
}

impl Problems {
    fn new(n: usize) -> Self {
        Problems {
            first: vec![None; n],
        }
    }
    fn set(&mut self, row: usize, reason: Reason, column: &str, value: impl FnOnce() -> String) {
        if self.first[row].is_none() {
            self.first[row] = Some((reason, column.to_string(), value()));
        }
    }
    fn ok(&self, row: usize) -> bool {
        self.first[row].is_none()
    }
}

/// Where a canonical column's raw values come from in one batch.
enum Raw {
    Array(ArrayRef, String),
    Coalesce(Vec<(ArrayRef, String)>),
    Constant(String),
    RowNumber,
    Missing,
}

/// Turns raw batches of one table into canonical batches, accumulating the
/// validation report.
pub struct TableLoader {
    kind: TableKind,
    def: &'static TableDef,
    tz: Tz,
    tz_name: String,
    mapping: TableMapping,
    schema: SchemaRef,
    nullable_schema: SchemaRef,
    extents: SiteExtents,
    /// 128-bit fingerprints of the ids seen (two independent 64-bit hashes:
    /// a false duplicate needs a collision of both, ~n²/2¹²⁹).
    seen_ids: HashSet<u128, std::hash::BuildHasherDefault<PreHashed>>,
    /// When set, the fingerprints go to disk instead and duplicates are
    /// found after the load ([`IdSpill::duplicates`]).
    spill: Option<IdSpill>,
    /// The report so far.
    pub report: TableReport,
    checked_columns: bool,
}

impl TableLoader {
    /// A loader for `kind` in timezone `tz_name` with an optional mapping.
    pub fn new(
        kind: TableKind,
        tz_name: &str,
        mapping: Option<&TableMapping>,
        extents: SiteExtents,
    ) -> Result<Self> {
        let tz = crate::model::time::parse_tz(tz_name)?;
        let def = kind.def();
        Ok(TableLoader {
            kind,
            def,
            tz,
            tz_name: tz_name.to_string(),
            mapping: mapping.cloned().unwrap_or_default(),
            schema: def.arrow_schema(tz_name),
            nullable_schema: Arc::new(Schema::new(
                def.arrow_schema(tz_name)
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            )),
            extents,
            seen_ids: HashSet::default(),
            spill: None,
            report: TableReport {
                table: def.name.to_string(),
                ..Default::default()
            },
            checked_columns: false,
        })
    }

    /// The canonical schema produced.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn find_column(batch: &RecordBatch, name: &str) -> Option<(ArrayRef, String)> {
        let schema = batch.schema();
        if let Ok(i) = schema.index_of(name) {
            return Some((batch.column(i).clone(), name.to_string()));
        }
        schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(name))
            .map(|i| (batch.column(i).clone(), schema.field(i).name().clone()))
    }

    fn need(
        &self,
        batch: &RecordBatch,
        name: &str,
        for_col: &str,
        source: &str,
    ) -> Result<(ArrayRef, String)> {
        TableLoader::find_column(batch, name).ok_or_else(|| {
            Error::schema(
                self.def.name,
                format!(
                    "column `{name}` (for `{for_col}`) not found in {source}; its columns are: {}",
                    column_list(batch)
                ),
            )
        })
    }

    fn raw_for(
        &self,
        batch: &RecordBatch,
        c: &ColumnDef,
        spec: Option<&ColumnSpec>,
        source: &str,
    ) -> Result<Raw> {
        let Some(spec) = spec else {
            return Ok(match TableLoader::find_column(batch, c.name) {
                Some((a, n)) => Raw::Array(a, n),
                None => Raw::Missing,
            });
        };
        if let Some(k) = &spec.constant {
            return Ok(Raw::Constant(k.as_text()));
        }
        if spec.row_number {
            return Ok(Raw::RowNumber);
        }
        if let Some(cols) = &spec.columns {
            let mut v = Vec::new();
            for n in cols {
                v.push(self.need(batch, n, c.name, source)?);
            }
            return Ok(Raw::Coalesce(v));
        }
        if let Some(n) = &spec.column {
            let (a, n) = self.need(batch, n, c.name, source)?;
            return Ok(Raw::Array(a, n));
        }
        Ok(match TableLoader::find_column(batch, c.name) {
            Some((a, n)) => Raw::Array(a, n),
            None => Raw::Missing,
        })
    }

    /// Reject rows where `column` has a value but the condition's source
    /// column is not one of the allowed values.
    fn check_condition(
        &self,
        batch: &RecordBatch,
        column: &str,
        values: &ArrayRef,
        cond: &crate::io::mapping::Condition,
        source: &str,
        p: &mut Problems,
    ) -> Result<()> {
        let Some((a, name)) = TableLoader::find_column(batch, &cond.column) else {
            return Err(Error::mapping(
                Some(format!(
                    "[tables.{}.columns.{column}] valid_if",
                    self.def.name
                )),
                format!("column `{}` is not in {source}", cond.column),
            ));
        };
        let text = cast(&a, &DataType::Utf8)?;
        let text = text.as_any().downcast_ref::<StringArray>().expect("utf8");
        let label = format!("{column} (with {name})");
        for r in 0..batch.num_rows() {
            if values.is_null(r) {
                continue;
            }
            let v = if text.is_null(r) {
                ""
            } else {
                text.value(r).trim()
            };
            if !cond.values.iter().any(|x| x.trim() == v) {
                p.set(r, Reason::Inconsistent, &label, || {
                    format!("{name} = {v:?}")
                });
            }
        }
        Ok(())
    }

    /// Convert one raw batch; returns the accepted canonical rows.
    /// `first_row` is the 1-based record number of the batch's first row
    /// within `source`.
    pub fn push(
        &mut self,
        batch: &RecordBatch,
        source: &str,
        first_row: u64,
    ) -> Result<RecordBatch> {
        let n = batch.num_rows();
        self.report.rows_read += n as u64;
        let mut problems = Problems::new(n);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.def.columns.len());
        let mut time_known_from_spec: Option<BooleanArray> = None;
        let mut missing_optional = Vec::new();
        let table_nulls: Vec<String> = self
            .mapping
            .null_values
            .iter()
            .map(|s| s.trim().to_string())
            .collect();

        for c in self.def.columns {
            let spec = self.mapping.columns.get(c.name);
            let raw = self.raw_for(batch, c, spec, source)?;
            if matches!(raw, Raw::Missing) {
                if c.required && c.name != TIME_KNOWN {
                    return Err(Error::schema(
                        self.def.name,
                        format!(
                            "required column `{}` is missing from {source} and not mapped; its columns are: {}",
                            c.name,
                            column_list(batch)
                        ),
                    ));
                }
                missing_optional.push(c.name.to_string());
            }
            let default_spec = ColumnSpec::default();
            let spec_ref = spec.unwrap_or(&default_spec);
            let conv = Converter {
                loader: self,
                c,
                spec: spec_ref,
                table_nulls: &table_nulls,
                first_row,
                source,
            };
            let (arr, tk) = conv.convert(&raw, batch, n, &mut problems)?;
            if let Some(cond) = spec.and_then(|s| s.valid_if.as_ref()) {
                self.check_condition(batch, c.name, &arr, cond, source, &mut problems)?;
            }
            if tk.is_some() {
                time_known_from_spec = tk;
            }
            columns.push(arr);
        }
        if !self.checked_columns {
            self.report.missing_optional_columns = missing_optional
                .into_iter()
                .filter(|c| c != TIME_KNOWN)
                .collect();
            self.checked_columns = true;
        }

        // Derived defaults.
        self.apply_defaults(&mut columns, time_known_from_spec, n)?;
        // Cross-column checks.
        self.check_intervals(&columns, &mut problems);
        self.check_extents(&columns, &mut problems);
        self.check_ids(&columns, &mut problems, source, first_row)?;

        let mut keep = BooleanBuilder::with_capacity(n);
        for (i, p) in problems.first.iter().enumerate() {
            match p {
                None => keep.append_value(true),
                Some((reason, column, value)) => {
                    keep.append_value(false);
                    self.report.reject(*reason, || Example {
                        source: source.to_string(),
                        row: first_row + i as u64,
                        column: column.clone(),
                        value: value.clone(),
                    });
                }
            }
        }
        let keep = keep.finish();
        let out = if keep.true_count() == n {
            // Nothing rejected: no copy.
            RecordBatch::try_new(self.schema.clone(), columns)?
        } else {
            let all = RecordBatch::try_new(self.nullable_schema.clone(), columns)?;
            let kept = filter_record_batch(&all, &keep)?;
            RecordBatch::try_new(self.schema.clone(), kept.columns().to_vec())?
        };
        self.report.rows_accepted += out.num_rows() as u64;
        if let Some(i) = self.def.columns.iter().position(|c| c.name == TIME_KNOWN) {
            let tk = out
                .column(i)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .expect("time_known is boolean");
            self.report.time_unknown += tk.iter().filter(|v| *v == Some(false)).count() as u64;
        }
        Ok(out)
    }

    fn col_index(&self, name: &str) -> Option<usize> {
        self.def.columns.iter().position(|c| c.name == name)
    }

    fn apply_defaults(
        &self,
        cols: &mut [ArrayRef],
        time_known: Option<BooleanArray>,
        n: usize,
    ) -> Result<()> {
        let fill_bool = |a: &ArrayRef, default: &dyn Fn(usize) -> bool| -> ArrayRef {
            let b = a
                .as_any()
                .downcast_ref::<BooleanArray>()
                .expect("boolean column");
            Arc::new(
                (0..n)
                    .map(|i| Some(if b.is_null(i) { default(i) } else { b.value(i) }))
                    .collect::<BooleanArray>(),
            )
        };
        if let Some(i) = self.col_index(TIME_KNOWN) {
            if let Some(tk) = time_known {
                // A time sentinel decided; an explicit time_known column value wins when given.
                let given = cols[i]
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .expect("boolean column")
                    .clone();
                cols[i] = Arc::new(
                    (0..n)
                        .map(|r| {
                            Some(if given.is_null(r) {
                                tk.value(r)
                            } else {
                                given.value(r)
                            })
                        })
                        .collect::<BooleanArray>(),
                );
            } else {
                cols[i] = fill_bool(&cols[i], &|_| true);
            }
        }
        for name in ["contractor", "restricted"] {
            if let Some(i) = self.col_index(name) {
                cols[i] = fill_bool(&cols[i], &|_| false);
            }
        }
        if let (Some(ri), Some(si)) = (self.col_index("recordable"), self.col_index("severity")) {
            let sev = cols[si]
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("severity text")
                .clone();
            cols[ri] = fill_bool(&cols[ri], &|r| {
                !sev.is_null(r) && matches!(sev.value(r), "minor" | "serious" | "fatal")
            });
        }
        Ok(())
    }

    fn check_intervals(&self, cols: &[ArrayRef], problems: &mut Problems) {
        for (a, b) in self.def.intervals {
            let (Some(ia), Some(ib)) = (self.col_index(a), self.col_index(b)) else {
                continue;
            };
            let ty = self.def.columns[ia].ty;
            for r in 0..cols[ia].len() {
                if cols[ia].is_null(r) || cols[ib].is_null(r) || !problems.ok(r) {
                    continue;
                }
                let (va, vb, show): (f64, f64, Box<dyn Fn() -> String>) = match ty {
                    ColType::Timestamp => {
                        let xa = cols[ia]
                            .as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .expect("ts")
                            .value(r);
                        let xb = cols[ib]
                            .as_any()
                            .downcast_ref::<TimestampMicrosecondArray>()
                            .expect("ts")
                            .value(r);
                        let tz = self.tz;
                        (
                            xa as f64,
                            xb as f64,
                            Box::new(move || format!("{} < {}", fmt_ts(&tz, xb), fmt_ts(&tz, xa))),
                        )
                    }
                    _ => {
                        let xa = cols[ia]
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .expect("f64")
                            .value(r);
                        let xb = cols[ib]
                            .as_any()
                            .downcast_ref::<Float64Array>()
                            .expect("f64")
                            .value(r);
                        (xa, xb, Box::new(move || format!("{xb} < {xa}")))
                    }
                };
                if vb < va {
                    problems.set(r, Reason::EndBeforeStart, &format!("{b} < {a}"), show);
                }
            }
        }
    }

    fn check_extents(&self, cols: &[ArrayRef], problems: &mut Problems) {
        if self.extents.is_empty() || self.kind == TableKind::Cells {
            return;
        }
        let (Some(si), Some(xi), Some(yi)) = (
            self.col_index("site"),
            self.col_index("x"),
            self.col_index("y"),
        ) else {
            return;
        };
        let site = cols[si]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("site text");
        let x = cols[xi]
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("x f64");
        let y = cols[yi]
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("y f64");
        for r in 0..site.len() {
            if site.is_null(r) || x.is_null(r) || y.is_null(r) || !problems.ok(r) {
                continue;
            }
            if let Some(&(x0, y0, x1, y1)) = self.extents.get(site.value(r)) {
                let (xv, yv) = (x.value(r), y.value(r));
                if xv < x0 || xv > x1 || yv < y0 || yv > y1 {
                    problems.set(r, Reason::OutsideSite, "x, y", || {
                        format!("({xv}, {yv}) outside [{x0}, {x1}] × [{y0}, {y1}]")
                    });
                }
            }
        }
    }

    fn check_ids(
        &mut self,
        cols: &[ArrayRef],
        problems: &mut Problems,
        source: &str,
        first_row: u64,
    ) -> Result<()> {
        let Some(id) = self.def.id_column else {
            return Ok(());
        };
        let Some(i) = self.col_index(id) else {
            return Ok(());
        };
        let arr = cols[i]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("id text");
        if let Some(spill) = &mut self.spill {
            // The last check: every row still fine here is accepted, in
            // this order.
            for r in (0..arr.len()).filter(|&r| problems.ok(r)) {
                if arr.is_null(r) {
                    spill.next += 1;
                } else {
                    spill.record(
                        id_fingerprint(arr.value(r).as_bytes()),
                        source,
                        first_row + r as u64,
                    )?;
                }
            }
            return Ok(());
        }
        self.seen_ids.reserve(arr.len());
        for r in 0..arr.len() {
            if arr.is_null(r) || !problems.ok(r) {
                continue;
            }
            let v = arr.value(r);
            if !self.seen_ids.insert(id_fingerprint(v.as_bytes())) {
                problems.set(r, Reason::DuplicateId, id, || v.to_string());
            }
        }
        Ok(())
    }
}

/// Number of files the id fingerprints of one table are spread over.
const SPILL_PARTS: usize = 64;
/// Bytes of one spilled record: fingerprint, ordinal, source, row.
const SPILL_RECORD: usize = 16 + 8 + 4 + 8;

/// The fingerprints of a table's accepted ids on disk, spread over
/// 64 files by their top bits, so that duplicates are found
/// after the load one file at a time: memory holds 1/64 of 36 bytes per row
/// (56 MB at 100 M rows) instead of every fingerprint.
pub struct IdSpill {
    dir: std::path::PathBuf,
    parts: Vec<std::io::BufWriter<std::fs::File>>,
    sources: Vec<String>,
    next: u64,
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

    fn record(&mut self, fp: u128, source: &str, row: u64) -> Result<()> {
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
fn id_fingerprint(bytes: &[u8]) -> u128 {
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

/// Empty or only whitespace (without trimming values that start with a
/// visible character).
fn is_blank(v: &str) -> bool {
    v.chars().next().is_none_or(char::is_whitespace) && v.trim().is_empty()
}

fn fmt_ts(tz: &Tz, micros: i64) -> String {
    crate::model::time::micros_to_local(tz, micros)
        .map_or_else(|| micros.to_string(), |t| t.to_string())
}

struct Converter<'a> {
    loader: &'a TableLoader,
    c: &'a ColumnDef,
    spec: &'a ColumnSpec,
    table_nulls: &'a [String],
    first_row: u64,
    source: &'a str,
}

/// Text values of a raw column after null sentinels and the value map, with
/// the source column name for messages.
struct TextValues {
    values: Vec<Option<String>>,
    label: String,
}

impl Converter<'_> {
    fn is_null_text(&self, v: &str) -> bool {
        let t = v.trim();
        t.is_empty()
            || self.table_nulls.iter().any(|n| n == t)
            || self.spec.null_values.iter().any(|n| n.trim() == t)
    }

    fn has_text_transform(&self) -> bool {
        !self.table_nulls.is_empty()
            || !self.spec.null_values.is_empty()
            || !self.spec.map.is_empty()
            || self.spec.default.is_some()
            || self.spec.fill_null.is_some()
            || !self.spec.formats.is_empty()
            || self.spec.time_column.is_some()
            || self.spec.present
    }

    fn label(&self, src: &str) -> String {
        if src == self.c.name {
            src.to_string()
        } else {
            format!("{} (from {src})", self.c.name)
        }
    }

    fn text_of(&self, arr: &ArrayRef) -> Result<StringArray> {
        let s = cast(arr, &DataType::Utf8)?;
        Ok(s.as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8")
            .clone())
    }

    fn texts(&self, raw: &Raw, n: usize) -> Result<TextValues> {
        let apply = |v: Option<&str>| -> Option<String> {
            let v = match v {
                Some(v) if !self.is_null_text(v) => v,
                _ => return self.spec.fill_null.clone(),
            };
            let t = v.trim();
            if !self.spec.map.is_empty() {
                if let Some(m) = self.spec.map.get(t).or_else(|| self.spec.map.get(v)) {
                    return Some(m.clone());
                }
                if let Some(d) = &self.spec.default {
                    return Some(d.clone());
                }
            }
            Some(t.to_string())
        };
        Ok(match raw {
            Raw::Array(a, name) => {
                let s = self.text_of(a)?;
                TextValues {
                    values: (0..n)
                        .map(|i| apply(if s.is_null(i) { None } else { Some(s.value(i)) }))
                        .collect(),
                    label: self.label(name),
                }
            }
            Raw::Coalesce(list) => {
                let arrays: Vec<StringArray> = list
                    .iter()
                    .map(|(a, _)| self.text_of(a))
                    .collect::<Result<_>>()?;
                let values = (0..n)
                    .map(|i| {
                        arrays
                            .iter()
                            .find_map(|s| apply(if s.is_null(i) { None } else { Some(s.value(i)) }))
                    })
                    .collect();
                let names: Vec<&str> = list.iter().map(|(_, n)| n.as_str()).collect();
                TextValues {
                    values,
                    label: self.label(&names.join(" | ")),
                }
            }
            Raw::Constant(k) => TextValues {
                values: vec![apply(Some(k)); n],
                label: self.c.name.to_string(),
            },
            Raw::RowNumber => TextValues {
                values: (0..n)
                    .map(|i| Some((self.first_row + i as u64).to_string()))
                    .collect(),
                label: self.c.name.to_string(),
            },
            Raw::Missing => TextValues {
                values: vec![None; n],
                label: self.c.name.to_string(),
            },
        })
    }

    /// Convert; returns the canonical array and, for a date+time spec, the
    /// time-known flags.
    fn convert(
        &self,
        raw: &Raw,
        batch: &RecordBatch,
        n: usize,
        p: &mut Problems,
    ) -> Result<(ArrayRef, Option<BooleanArray>)> {
        // Fast paths: typed source columns without text transforms.
        if let (Raw::Array(a, name), false) = (raw, self.has_text_transform())
            && let Some(arr) = self.fast(a, name, n, p)?
        {
            return Ok((arr, None));
        }
        let tv = self.texts(raw, n)?;
        if self.spec.present {
            let arr: BooleanArray = tv.values.iter().map(|v| Some(v.is_some())).collect();
            return Ok((Arc::new(arr), None));
        }
        let mut tk = None;
        let arr: ArrayRef = match self.c.ty {
            ColType::Text => {
                let v: StringArray = self
                    .parse_each(&tv, p, |s| {
                        self.check_text(s).map(std::borrow::Cow::into_owned)
                    })
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Float => {
                let v: Float64Array = self
                    .parse_each(&tv, p, |s| {
                        let x = s
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .ok_or(Reason::Unparseable)?;
                        self.check_num(x).map_or(Ok(x), Err)
                    })
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Int => {
                let v: Int32Array = self
                    .parse_each(&tv, p, |s| {
                        let t = s.trim();
                        let x = t
                            .parse::<i32>()
                            .ok()
                            .or_else(|| {
                                t.parse::<f64>()
                                    .ok()
                                    .filter(|x| x.fract() == 0.0 && x.abs() < 2e9)
                                    .map(|x| x as i32)
                            })
                            .ok_or(Reason::Unparseable)?;
                        self.check_num(f64::from(x)).map_or(Ok(x), Err)
                    })
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Bool => {
                let v: BooleanArray = self
                    .parse_each(&tv, p, |s| parse_bool(s).ok_or(Reason::Unparseable))
                    .into_iter()
                    .collect();
                Arc::new(v)
            }
            ColType::Timestamp => {
                let (a, t) = self.timestamps(&tv, batch, n, p)?;
                tk = t;
                a
            }
        };
        Ok((arr, tk))
    }

    /// Parse every text value with `parse`; nulls are checked against
    /// `required`, failures are recorded as the row's problem and become null.
    fn parse_each<T>(
        &self,
        tv: &TextValues,
        p: &mut Problems,
        parse: impl Fn(&str) -> std::result::Result<T, Reason>,
    ) -> Vec<Option<T>> {
        tv.values
            .iter()
            .enumerate()
            .map(|(r, v)| match v {
                None => {
                    self.missing(r, &tv.label, p);
                    None
                }
                Some(s) => match parse(s) {
                    Ok(x) => Some(x),
                    Err(reason) => {
                        p.set(r, reason, &tv.label, || s.clone());
                        None
                    }
                },
            })
            .collect()
    }

    fn missing(&self, r: usize, label: &str, p: &mut Problems) {
        if self.c.required {
            p.set(r, Reason::MissingRequired, label, String::new);
        }
    }

    fn check_text<'s>(&self, s: &'s str) -> std::result::Result<std::borrow::Cow<'s, str>, Reason> {
        use std::borrow::Cow;
        match self.c.allowed {
            Allowed::Vocab(v) => v.resolve(s).map(Cow::Borrowed).ok_or(Reason::UnknownEnum),
            _ if self.c.name == "kind" && self.loader.kind == TableKind::Violations => {
                Ok(crate::model::vocab::VIOLATION_KINDS
                    .resolve(s)
                    .map_or(Cow::Borrowed(s), Cow::Borrowed))
            }
            _ => Ok(Cow::Borrowed(s)),
        }
    }

    fn check_num(&self, x: f64) -> Option<Reason> {
        match self.c.allowed {
            Allowed::NonNegative if x < 0.0 => Some(Reason::OutOfRange),
            Allowed::Range(lo, hi) if x < lo || x > hi => Some(Reason::OutOfRange),
            Allowed::OneOf(v) if !v.iter().any(|a| (a - x).abs() < 1e-9) => {
                Some(Reason::OutOfRange)
            }
            _ => None,
        }
    }

    fn fast(
        &self,
        a: &ArrayRef,
        name: &str,
        n: usize,
        p: &mut Problems,
    ) -> Result<Option<ArrayRef>> {
        let label = self.label(name);
        let dt = a.data_type();
        let out: ArrayRef = match (self.c.ty, dt) {
            (ColType::Timestamp, DataType::Timestamp(_, Some(_))) => cast(
                a,
                &DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some(self.loader.tz_name.as_str().into()),
                ),
            )?,
            (
                ColType::Timestamp,
                DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64,
            ) => {
                let naive = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let naive = naive
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .expect("ts");
                let mut b = TimestampMicrosecondBuilder::with_capacity(n)
                    .with_timezone(self.loader.tz_name.as_str());
                for r in 0..n {
                    if naive.is_null(r) {
                        b.append_null();
                        continue;
                    }
                    let local = chrono::DateTime::from_timestamp_micros(naive.value(r))
                        .map(|d| d.naive_utc());
                    match local.and_then(|l| local_to_micros(&self.loader.tz, l)) {
                        Some(v) => b.append_value(v),
                        None => {
                            p.set(r, Reason::Unparseable, &label, || {
                                format!("{:?} (not a time in {})", local, self.loader.tz_name)
                            });
                            b.append_null();
                        }
                    }
                }
                Arc::new(b.finish())
            }
            (ColType::Float, d) if d.is_numeric() => cast(a, &DataType::Float64)?,
            (ColType::Int, d) if d.is_integer() => {
                let out = cast(a, &DataType::Int32)?;
                for r in 0..n {
                    if !a.is_null(r) && out.is_null(r) {
                        p.set(r, Reason::OutOfRange, &label, || "integer overflow".into());
                    }
                }
                out
            }
            (ColType::Bool, DataType::Boolean) => a.clone(),
            (
                ColType::Text,
                DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Dictionary(_, _),
            ) => cast(a, &DataType::Utf8)?,
            (ColType::Text, d) if d.is_numeric() => cast(a, &DataType::Utf8)?,
            _ => return Ok(None),
        };
        // Checks shared by the fast path: required, vocabulary, ranges.
        match self.c.ty {
            ColType::Text => {
                let s = out.as_any().downcast_ref::<StringArray>().expect("utf8");
                if matches!(self.c.allowed, Allowed::Vocab(_))
                    || (self.c.name == "kind" && self.loader.kind == TableKind::Violations)
                {
                    // Canonical input (every value already its code, nulls
                    // only where allowed) is kept as it is, without a copy.
                    let canonical = (0..n).all(|r| {
                        if s.is_null(r) {
                            !self.c.required
                        } else {
                            let v = s.value(r);
                            matches!(self.check_text(v), Ok(std::borrow::Cow::Borrowed(code)) if code == v)
                        }
                    });
                    if canonical {
                        return Ok(Some(out));
                    }
                    let mut b = StringBuilder::with_capacity(n, n * 8);
                    for r in 0..n {
                        if s.is_null(r) {
                            self.missing(r, &label, p);
                            b.append_null();
                        } else {
                            match self.check_text(s.value(r)) {
                                Ok(code) => b.append_value(code),
                                Err(reason) => {
                                    p.set(r, reason, &label, || s.value(r).to_string());
                                    b.append_null();
                                }
                            }
                        }
                    }
                    return Ok(Some(Arc::new(b.finish())));
                }
                for r in 0..n {
                    if s.is_null(r) {
                        self.missing(r, &label, p);
                    } else if self.c.required && is_blank(s.value(r)) {
                        p.set(r, Reason::MissingRequired, &label, String::new);
                    }
                }
            }
            ColType::Float | ColType::Int => {
                let f = cast(&out, &DataType::Float64)?;
                let f = f.as_any().downcast_ref::<Float64Array>().expect("f64");
                for r in 0..n {
                    if f.is_null(r) {
                        self.missing(r, &label, p);
                    } else if let Some(reason) = self.check_num(f.value(r)) {
                        p.set(r, reason, &label, || f.value(r).to_string());
                    } else if !f.value(r).is_finite() {
                        p.set(r, Reason::Unparseable, &label, || f.value(r).to_string());
                    }
                }
            }
            _ => {
                for r in 0..n {
                    if out.is_null(r) {
                        self.missing(r, &label, p);
                    }
                }
            }
        }
        Ok(Some(out))
    }

    fn timestamps(
        &self,
        tv: &TextValues,
        batch: &RecordBatch,
        n: usize,
        p: &mut Problems,
    ) -> Result<(ArrayRef, Option<BooleanArray>)> {
        let tz = &self.loader.tz;
        let formats = {
            let f = self.spec.ts_formats();
            if f.is_empty() { default_formats() } else { f }
        };
        let mut b = TimestampMicrosecondBuilder::with_capacity(n)
            .with_timezone(self.loader.tz_name.as_str());
        let Some(time_col) = &self.spec.time_column else {
            for (r, v) in tv.values.iter().enumerate() {
                match v {
                    None => {
                        self.missing(r, &tv.label, p);
                        b.append_null();
                    }
                    Some(s) => match parse_timestamp(s, &formats, tz) {
                        Some(x) => b.append_value(x),
                        None => {
                            p.set(r, Reason::Unparseable, &tv.label, || s.clone());
                            b.append_null();
                        }
                    },
                }
            }
            return Ok((Arc::new(b.finish()), None));
        };
        let tod = self.spec.tod_format()?.unwrap_or(TimeOfDayFormat::Hhmm);
        let (tarr, tname) = self
            .loader
            .need(batch, time_col, self.c.name, self.source)?;
        let times = self.text_of(&tarr)?;
        let tlabel = self.label(&tname);
        let mut known = BooleanBuilder::with_capacity(n);
        for (r, v) in tv.values.iter().enumerate() {
            let Some(s) = v else {
                self.missing(r, &tv.label, p);
                b.append_null();
                known.append_value(true);
                continue;
            };
            let Some(date) = parse_date(s, &formats) else {
                p.set(r, Reason::Unparseable, &tv.label, || s.clone());
                b.append_null();
                known.append_value(true);
                continue;
            };
            let t = if times.is_null(r) {
                None
            } else {
                Some(times.value(r).trim())
            };
            let unknown = match t {
                None => true,
                Some(t) => {
                    t.is_empty()
                        || self.spec.time_unknown.iter().any(|u| u.trim() == t)
                        || self.is_null_text(t)
                }
            };
            let time = if unknown {
                Some((NaiveTime::MIN, false))
            } else {
                let t = t.unwrap_or_default();
                match tod.parse_with_day(t) {
                    Some(x) => Some(x),
                    None => {
                        p.set(r, Reason::Unparseable, &tlabel, || t.to_string());
                        None
                    }
                }
            };
            let local =
                time.map(|(tm, next)| date.and_time(tm) + chrono::Duration::days(i64::from(next)));
            match local.and_then(|l| local_to_micros(tz, l)) {
                Some(x) => b.append_value(x),
                None => {
                    p.set(r, Reason::Unparseable, &tv.label, || {
                        format!("{s} (not a local time in {})", self.loader.tz_name)
                    });
                    b.append_null();
                }
            }
            known.append_value(!unknown);
        }
        Ok((Arc::new(b.finish()), Some(known.finish())))
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "是" | "1.0" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "否" | "0.0" => Some(false),
        _ => None,
    }
}

/// Load one table from its sources.
pub fn load_table(
    kind: TableKind,
    tz: &str,
    mapping: Option<&TableMapping>,
    sources: &[Source],
    extents: SiteExtents,
) -> Result<(Vec<RecordBatch>, TableReport)> {
    let mut out = Vec::new();
    let (report, _) = stream_table(
        TableStream {
            kind,
            tz,
            mapping,
            sources,
            extents,
            spill: None,
        },
        &mut |b| {
            out.push(b);
            Ok(())
        },
        &mut |_| {},
    )?;
    Ok((out, report))
}

/// One table to validate by [`stream_table`].
pub struct TableStream<'a> {
    /// The canonical table.
    pub kind: TableKind,
    /// The dataset timezone.
    pub tz: &'a str,
    /// The table's mapping, if any.
    pub mapping: Option<&'a TableMapping>,
    /// Its sources, read in order.
    pub sources: &'a [Source],
    /// The sites' extents, for coordinate checks.
    pub extents: SiteExtents,
    /// Where id fingerprints go when duplicates are found after the load.
    pub spill: Option<IdSpill>,
}

/// Validate one table from its sources batch by batch, handing every
/// non-empty batch of accepted canonical rows to `sink` as soon as it is
/// converted; `on_read` hears the number of rows read so far after every
/// batch.
///
/// Memory holds one batch, plus the fingerprints of the ids — unless `spill`
/// is given: then the fingerprints go to disk, rows with an id seen before
/// reach `sink` too, and the report counts them as accepted; they come back
/// from [`IdSpill::duplicates`] for the caller to remove and report.
pub fn stream_table(
    table: TableStream<'_>,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
    on_read: &mut dyn FnMut(u64),
) -> Result<(TableReport, Option<IdSpill>)> {
    let TableStream {
        kind,
        tz,
        mapping,
        sources,
        extents,
        spill,
    } = table;
    let mut loader = TableLoader::new(kind, tz, mapping, extents)?;
    loader.spill = spill;
    let opts = mapping.map(ReadOptions::from_mapping).unwrap_or_default();
    for src in sources {
        loader.report.sources.push(src.label.clone());
        let mut row = 1u64;
        for batch in read_source(src, &opts)? {
            let batch = batch?;
            let n = batch.num_rows() as u64;
            let accepted = loader.push(&batch, &src.label, row)?;
            row += n;
            if accepted.num_rows() > 0 {
                sink(accepted)?;
            }
            on_read(loader.report.rows_read);
        }
    }
    Ok((loader.report, loader.spill))
}

/// Map of table → the raw batches given by a binding, to load as canonical
/// tables (column names already canonical unless a mapping says otherwise).
pub type MemoryTables = BTreeMap<TableKind, Vec<RecordBatch>>;
