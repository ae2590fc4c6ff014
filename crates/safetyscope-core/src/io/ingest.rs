//! Reading sources (Parquet, CSV, NDJSON, Arrow IPC; files, globs,
//! directories, Hive partitions, bytes, in-memory batches) and turning them
//! into canonical tables with a validation report.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef};

use crate::io::convert::*;
use crate::io::dedup::*;
pub use crate::io::dedup::{Duplicate, IdSpill};
pub use crate::io::loader::TableLoader;
use crate::io::loader::*;
use crate::io::mapping::{ColumnSpec, TableMapping};
use crate::io::source::ReadOptions;
use crate::io::source::Source;
use crate::io::source::read_source;
use crate::model::report::{Example, Reason, TableReport};
use crate::model::schema::{ColType, ColumnDef, TIME_KNOWN, TableKind};
use crate::util::error::{Error, Result};

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
        let years = mapping.and_then(|m| m.years).unwrap_or(DEFAULT_YEARS);
        let plans = match mapping {
            Some(m) if crate::io::plan::binned(kind) => m.plans.clone(),
            _ => vec![],
        };
        Ok(TableLoader {
            plans,
            plausible: plausible_micros(years),
            years,
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
            seen_ids: Default::default(),
            spill: None,
            accepted_rows: None,
            #[cfg(feature = "native")]
            exprs: Default::default(),
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

    pub(crate) fn need(
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

    /// Evaluate a mapping's `expr` for canonical column `for_col` on a raw
    /// batch with DataFusion; returns the values and the source columns it
    /// reads (for the report). The physical expression is planned once per
    /// source schema.
    #[cfg(feature = "native")]
    fn evaluate(
        &self,
        batch: &RecordBatch,
        for_col: &str,
        sql: &str,
        source: &str,
    ) -> Result<(ArrayRef, String)> {
        use datafusion::common::DFSchema;
        let schema = batch.schema();
        let planned = {
            let cache = self.exprs.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(for_col)
                .filter(|(s, _, _)| *s == schema)
                .map(|(_, e, n)| (e.clone(), n.clone()))
        };
        let (phys, names) = match planned {
            Some(p) => p,
            None => {
                let loc = format!("[tables.{}.columns] {for_col}", self.def.name);
                let bad = |e: datafusion::error::DataFusionError| {
                    Error::mapping(
                        Some(loc.clone()),
                        format!(
                            "expression `{sql}` on {source}: {}; its columns are: {} \
                             (quote names with capitals or spaces: \"Persons Killed\")",
                            e.strip_backtrace(),
                            column_list(batch)
                        ),
                    )
                };
                let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
                let ctx = datafusion::prelude::SessionContext::new();
                let expr = ctx.parse_sql_expr(sql, &df_schema).map_err(bad)?;
                let mut names: Vec<String> =
                    expr.column_refs().iter().map(|c| c.name.clone()).collect();
                names.sort();
                let phys = ctx.create_physical_expr(expr, &df_schema).map_err(bad)?;
                let names = if names.is_empty() {
                    format!("expr {sql}")
                } else {
                    names.join(", ")
                };
                self.exprs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(for_col.to_string(), (schema, phys.clone(), names.clone()));
                (phys, names)
            }
        };
        let values = phys
            .evaluate(batch)
            .and_then(|v| v.into_array(batch.num_rows()))
            .map_err(|e| {
                Error::data(
                    self.def.name,
                    format!(
                        "expression for `{for_col}` failed on {source}: {}",
                        e.strip_backtrace()
                    ),
                )
            })?;
        Ok((values, names))
    }

    /// Expressions need DataFusion's SQL front end, which the WASM build
    /// leaves out.
    #[cfg(not(feature = "native"))]
    fn evaluate(
        &self,
        _batch: &RecordBatch,
        for_col: &str,
        _sql: &str,
        _source: &str,
    ) -> Result<(ArrayRef, String)> {
        Err(Error::mapping(
            Some(format!("[tables.{}.columns] {for_col}", self.def.name)),
            "`expr` columns are evaluated by the native builds (CLI, Python); load this mapping there",
        ))
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
        if let Some(sql) = &spec.expr {
            let (a, names) = self.evaluate(batch, c.name, sql, source)?;
            return Ok(Raw::Array(a, names));
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
            if tk.is_some() && self.def.time_column == Some(c.name) {
                time_known_from_spec = tk;
            }
            columns.push(arr);
        }
        if !self.checked_columns {
            // A grid fills `cell`.
            self.report.missing_optional_columns = missing_optional
                .into_iter()
                .filter(|c| c != TIME_KNOWN && (c != "cell" || self.plans.is_empty()))
                .collect();
            self.checked_columns = true;
        }

        // Derived defaults.
        self.apply_defaults(&mut columns, time_known_from_spec, n)?;
        // Cross-column checks.
        self.check_intervals(&columns, &mut problems);
        self.check_cell_positions(&columns, &mut problems);
        self.bin_to_plans(&mut columns, &mut problems);
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
        if !problems.date_only.is_empty() {
            self.report.date_only += (0..n)
                .filter(|&r| problems.date_only[r] && keep.value(r))
                .count() as u64;
        }
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

    /// A cell of the site plan has a grid position (row and col) or a
    /// polygon (`geometry`, WKT that parses).
    fn check_cell_positions(&self, cols: &[ArrayRef], problems: &mut Problems) {
        if self.kind != TableKind::Cells {
            return;
        }
        let (Some(ri), Some(ci), Some(gi)) = (
            self.col_index("row"),
            self.col_index("col"),
            self.col_index("geometry"),
        ) else {
            return;
        };
        let g = cols[gi]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("geometry is text");
        for r in 0..g.len() {
            if !problems.ok(r) {
                continue;
            }
            if g.is_valid(r) {
                if let Err(why) = crate::model::geometry::Shape::from_wkt(g.value(r)) {
                    let v = g.value(r).chars().take(60).collect::<String>();
                    problems.set(r, Reason::Unparseable, "geometry", || format!("{v}: {why}"));
                }
            } else if cols[ri].is_null(r) || cols[ci].is_null(r) {
                problems.set(
                    r,
                    Reason::MissingRequired,
                    "row, col or geometry",
                    String::new,
                );
            }
        }
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

    /// Bin the coordinates of rows whose site has a plan (a grid or a
    /// polygon layer): `cell` from the plan, `x` / `y` as the plan keeps them
    /// (a grid's metres). A point outside every cell is rejected as outside
    /// the site; rows without coordinates keep their cell.
    fn bin_to_plans(&self, cols: &mut [ArrayRef], problems: &mut Problems) {
        if self.plans.is_empty() {
            return;
        }
        let (Some(si), Some(xi), Some(yi), Some(ci)) = (
            self.col_index("site"),
            self.col_index("x"),
            self.col_index("y"),
            self.col_index("cell"),
        ) else {
            return;
        };
        let site = cols[si]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("site is text")
            .clone();
        let floats = |a: &ArrayRef| {
            a.as_any()
                .downcast_ref::<Float64Array>()
                .expect("coordinates are floats")
                .clone()
        };
        let (x, y) = (floats(&cols[xi]), floats(&cols[yi]));
        let cell = cols[ci]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cell is text")
            .clone();
        let n = x.len();
        let (mut nx, mut ny, mut nc) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in 0..n {
            let keep = |nx: &mut Vec<Option<f64>>,
                        ny: &mut Vec<Option<f64>>,
                        nc: &mut Vec<Option<String>>| {
                nx.push(x.is_valid(r).then(|| x.value(r)));
                ny.push(y.is_valid(r).then(|| y.value(r)));
                nc.push(cell.is_valid(r).then(|| cell.value(r).to_string()));
            };
            let plan = site
                .is_valid(r)
                .then(|| self.plans.iter().find(|g| g.site() == site.value(r)))
                .flatten();
            let (Some(g), true, true) = (plan, x.is_valid(r), y.is_valid(r)) else {
                keep(&mut nx, &mut ny, &mut nc);
                continue;
            };
            match g.bin(x.value(r), y.value(r)) {
                Some((id, mx, my)) => {
                    nx.push(Some(mx));
                    ny.push(Some(my));
                    nc.push(Some(id));
                }
                None => {
                    problems.set(r, Reason::OutsideSite, "x, y", || {
                        format!("({}, {}) outside {}", x.value(r), y.value(r), g.outside())
                    });
                    keep(&mut nx, &mut ny, &mut nc);
                }
            }
        }
        cols[xi] = Arc::new(Float64Array::from(nx));
        cols[yi] = Arc::new(Float64Array::from(ny));
        cols[ci] = Arc::new(StringArray::from(nc));
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
        if let Some(rows) = &mut self.accepted_rows {
            rows.extend(
                (0..arr.len())
                    .filter(|&r| problems.ok(r))
                    .map(|r| first_row + r as u64),
            );
            return Ok(());
        }
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
        let batch = self.seen_ids.batch(arr);
        for r in 0..arr.len() {
            if arr.is_null(r) || !problems.ok(r) {
                continue;
            }
            let v = arr.value(r);
            if self
                .seen_ids
                .repeats(id_fingerprint(v.as_bytes()), batch, r as u32)
            {
                problems.set(r, Reason::DuplicateId, id, || v.to_string());
            }
        }
        Ok(())
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
/// from [`IdSpill::candidates`], confirmed on the ids by
/// [`crate::io::dedup::confirm`], for the caller to remove and report.
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
