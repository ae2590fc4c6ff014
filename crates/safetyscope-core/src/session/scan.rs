//! Row scans for the analyses that aggregate by hand: the columns they
//! need, read in parallel partitions, with rows outside a predicate pruned
//! where the files' statistics allow it, and string keys kept
//! dictionary-encoded when they are read from Parquet files (each row's key
//! is then an index into a small dictionary, looked up once per batch).
//!
//! Only a store's files in a local session are scanned here: when the
//! session is a distributed engine's, the analyses count in the plan, on
//! its executors, and this process reads no rows.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int32Type};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};
use crate::util::fasthash::{IntMap, NameMap};

/// The partitions of a scan of `columns` of a table. `prune` describes the
/// rows wanted: rows of the session's tables held in memory are filtered by
/// it; rows read from files are only pruned by row group (whole row groups
/// whose statistics exclude it are skipped), so every consumer checks its
/// rows itself.
pub(crate) async fn partitions(
    ds: &Dataset,
    kind: TableKind,
    columns: &[&str],
    prune: Expr,
) -> Result<Vec<SendableRecordBatchStream>> {
    #[cfg(feature = "native")]
    if ds.is_stored(kind)
        && let Some(streams) = files::scan(ds, kind, columns, &prune).await?
    {
        return Ok(streams);
    }
    Ok(ds
        .table(kind)
        .await?
        .select_columns(columns)?
        .filter(prune)?
        .execute_stream_partitioned()
        .await?)
}

/// Fold the batches of each partition into a state of its own (partitions
/// in parallel where the runtime has threads); the states in partition
/// order.
pub(crate) async fn fold<S, I, F>(
    streams: Vec<SendableRecordBatchStream>,
    init: I,
    f: F,
) -> Result<Vec<S>>
where
    S: Send + 'static,
    I: Fn() -> S + Send + Sync + 'static,
    F: Fn(&mut S, &RecordBatch) -> Result<()> + Send + Sync + 'static,
{
    async fn one<S>(
        mut stream: SendableRecordBatchStream,
        mut state: S,
        f: &(dyn Fn(&mut S, &RecordBatch) -> Result<()> + Send + Sync),
    ) -> Result<S> {
        while let Some(batch) = stream.next().await {
            f(&mut state, &batch?)?;
        }
        Ok(state)
    }
    let f = Arc::new(f);
    #[cfg(feature = "native")]
    if tokio::runtime::Handle::try_current().is_ok() && streams.len() > 1 {
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|s| {
                let (f, state) = (Arc::clone(&f), init());
                tokio::spawn(async move { one(s, state, f.as_ref()).await })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.map_err(|e| {
                Error::Query(datafusion::error::DataFusionError::External(Box::new(e)))
            })??);
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(streams.len());
    for s in streams {
        out.push(one(s, init(), f.as_ref()).await?);
    }
    Ok(out)
}

/// A column of a batch by name.
pub(crate) fn column<'a>(b: &'a RecordBatch, table: &str, name: &str) -> Result<&'a ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| Error::schema(table, format!("column `{name}` missing")))
}

/// The values of a timestamp (or 64-bit integer) column, and its nulls.
pub(crate) fn times<'a>(
    b: &'a RecordBatch,
    table: &str,
    name: &str,
) -> Result<(&'a [i64], Option<&'a arrow::buffer::NullBuffer>)> {
    let a = column(b, table, name)?;
    let values = match a.data_type() {
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => a
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .map(|a| a.values().as_ref()),
        DataType::Int64 => a
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .map(|a| a.values().as_ref()),
        _ => None,
    }
    .ok_or_else(|| {
        Error::schema(
            table,
            format!(
                "column `{name}` is {}, not a timestamp in microseconds",
                a.data_type()
            ),
        )
    })?;
    Ok((values, a.nulls()))
}

/// A string column as codes: `code(value)` for every row (`None` for a
/// null), computed once per dictionary value when the column is
/// dictionary-encoded.
pub(crate) fn codes<T: Copy>(
    a: &ArrayRef,
    table: &str,
    name: &str,
    mut code: impl FnMut(Option<&str>) -> T,
    out: &mut Vec<T>,
) -> Result<()> {
    out.clear();
    if let Some(d) = dictionary(a) {
        let values = utf8(d.values(), table, name)?;
        let mapped: Vec<T> = (0..values.len())
            .map(|i| code((!values.is_null(i)).then(|| values.value(i))))
            .collect();
        let none = code(None);
        let keys = d.keys();
        out.extend(keys.values().iter().enumerate().map(|(i, k)| {
            if keys.is_null(i) {
                none
            } else {
                mapped[*k as usize]
            }
        }));
    } else {
        let s = utf8(a, table, name)?;
        out.extend((0..s.len()).map(|i| code((!s.is_null(i)).then(|| s.value(i)))));
    }
    Ok(())
}

fn dictionary(a: &ArrayRef) -> Option<&DictionaryArray<Int32Type>> {
    a.as_any().downcast_ref::<DictionaryArray<Int32Type>>()
}

fn utf8(a: &ArrayRef, table: &str, name: &str) -> Result<StringArray> {
    let s = match a.data_type() {
        DataType::Utf8 => a.clone(),
        DataType::Utf8View | DataType::LargeUtf8 => arrow::compute::cast(a, &DataType::Utf8)?,
        t => {
            return Err(Error::schema(
                table,
                format!("column `{name}` is {t}, not a string"),
            ));
        }
    };
    Ok(s.as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to utf8")
        .clone())
}

/// No cell: a null key, or a cell the index does not hold.
pub(crate) const NO_CELL: u32 = u32::MAX;

/// The cells an aggregation counts, numbered in the order given: maps the
/// `site` and `cell` columns of a batch to those numbers.
#[derive(Debug, Default)]
pub(crate) struct CellIndex {
    sites: NameMap<NameMap<u32>>,
    /// The position in the given order of each number's cell.
    positions: Vec<usize>,
}

impl CellIndex {
    /// Number the cells `(site, cell)` in this order (a repeated cell keeps
    /// its first number).
    pub(crate) fn new<'a>(cells: impl IntoIterator<Item = (&'a str, &'a str)>) -> CellIndex {
        let mut index = CellIndex::default();
        for (position, (site, cell)) in cells.into_iter().enumerate() {
            let next = u32::try_from(index.positions.len()).unwrap_or(NO_CELL);
            let n = index
                .sites
                .entry(site.to_string())
                .or_default()
                .entry(cell.to_string())
                .or_insert(next);
            if *n == next {
                index.positions.push(position);
            }
        }
        index
    }

    /// Number of cells.
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    /// The position in the given order of the cell numbered `n`.
    pub(crate) fn position(&self, n: u64) -> usize {
        self.positions[n as usize]
    }

    /// The number of each row's cell ([`NO_CELL`] for a null site or cell,
    /// or a cell not in the index), into `out`.
    pub(crate) fn rows(&self, b: &RecordBatch, table: &str, out: &mut Vec<u32>) -> Result<()> {
        let (site, cell) = (column(b, table, "site")?, column(b, table, "cell")?);
        out.clear();
        if let (Some(sd), Some(cd)) = (dictionary(site), dictionary(cell)) {
            // Per site value of the batch, the number of each cell value,
            // looked up the first time a row needs it.
            const UNSET: u32 = u32::MAX - 1;
            let (sv, cv) = (
                utf8(sd.values(), table, "site")?,
                utf8(cd.values(), table, "cell")?,
            );
            let sites: Vec<Option<&NameMap<u32>>> = (0..sv.len())
                .map(|i| {
                    (!sv.is_null(i))
                        .then(|| self.sites.get(sv.value(i)))
                        .flatten()
                })
                .collect();
            let mut tables: Vec<Vec<u32>> = vec![Vec::new(); sv.len()];
            let (sk, ck) = (sd.keys(), cd.keys());
            for i in 0..b.num_rows() {
                if sk.is_null(i) || ck.is_null(i) {
                    out.push(NO_CELL);
                    continue;
                }
                let (s, c) = (sk.values()[i] as usize, ck.values()[i] as usize);
                let Some(cells) = sites[s] else {
                    out.push(NO_CELL);
                    continue;
                };
                let t = &mut tables[s];
                if t.is_empty() {
                    t.resize(cv.len(), UNSET);
                }
                if t[c] == UNSET {
                    t[c] = if cv.is_null(c) {
                        NO_CELL
                    } else {
                        cells.get(cv.value(c)).copied().unwrap_or(NO_CELL)
                    };
                }
                out.push(t[c]);
            }
        } else {
            let (sv, cv) = (utf8(site, table, "site")?, utf8(cell, table, "cell")?);
            let mut last: Option<(&str, Option<&NameMap<u32>>)> = None;
            for i in 0..b.num_rows() {
                if sv.is_null(i) || cv.is_null(i) {
                    out.push(NO_CELL);
                    continue;
                }
                let s = sv.value(i);
                let cells = match last {
                    Some((l, cells)) if l == s => cells,
                    _ => {
                        let cells = self.sites.get(s);
                        last = Some((s, cells));
                        cells
                    }
                };
                out.push(
                    cells
                        .and_then(|m| m.get(cv.value(i)).copied())
                        .unwrap_or(NO_CELL),
                );
            }
        }
        Ok(())
    }
}

/// Integer counts at dense indices, held in a vector when there are few
/// possible indices and in a map otherwise; merged by addition, so the
/// result does not depend on how rows were split into partitions.
#[derive(Debug)]
pub(crate) enum Tally {
    /// One count per index.
    Dense(Vec<i64>),
    /// Counts of the indices seen.
    Sparse(IntMap<i64>),
}

impl Tally {
    /// Counts for indices `0..size`.
    pub(crate) fn new(size: u64) -> Tally {
        match usize::try_from(size) {
            Ok(n) if n <= 1 << 20 => Tally::Dense(vec![0; n]),
            _ => Tally::Sparse(IntMap::default()),
        }
    }

    /// Add `n` at `i`.
    #[inline]
    pub(crate) fn add(&mut self, i: u64, n: i64) {
        match self {
            Tally::Dense(v) => v[i as usize] += n,
            Tally::Sparse(m) => *m.entry(i).or_default() += n,
        }
    }

    /// Add another tally of the same size.
    pub(crate) fn merge(&mut self, other: Tally) {
        match other {
            Tally::Dense(v) => {
                for (i, n) in v.into_iter().enumerate() {
                    if n != 0 {
                        self.add(i as u64, n);
                    }
                }
            }
            Tally::Sparse(m) => {
                for (i, n) in m {
                    self.add(i, n);
                }
            }
        }
    }

    /// The non-zero counts in index order.
    pub(crate) fn sorted(self) -> Vec<(u64, i64)> {
        match self {
            Tally::Dense(v) => v
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n != 0)
                .map(|(i, n)| (i as u64, n))
                .collect(),
            Tally::Sparse(m) => {
                let mut v: Vec<(u64, i64)> = m.into_iter().filter(|(_, n)| *n != 0).collect();
                v.sort_unstable();
                v
            }
        }
    }
}

/// Count the rows of a table's partitions by cell: `count` sees every
/// batch with its rows' cell numbers (see [`CellIndex::rows`]) and adds to
/// its partition's tally of indices `0..size`; the tallies merged.
pub(crate) async fn tally_by_cell<F>(
    streams: Vec<SendableRecordBatchStream>,
    index: &Arc<CellIndex>,
    table: &'static str,
    size: u64,
    count: F,
) -> Result<Tally>
where
    F: Fn(&RecordBatch, &[u32], &mut Tally) -> Result<()> + Send + Sync + 'static,
{
    let index = Arc::clone(index);
    let parts = fold(
        streams,
        move || (Tally::new(size), Vec::new()),
        move |(tally, keys): &mut (Tally, Vec<u32>), b| {
            index.rows(b, table, keys)?;
            count(b, keys, tally)
        },
    )
    .await?;
    let mut all = Tally::new(size);
    for (t, _) in parts {
        all.merge(t);
    }
    Ok(all)
}

#[cfg(feature = "native")]
mod files {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::catalog::TableProvider;
    use datafusion::common::DFSchema;
    use datafusion::datasource::listing::ListingTable;
    use datafusion::datasource::physical_plan::{
        FileGroup, FileGroupPartitioner, FileScanConfig, FileScanConfigBuilder, ParquetSource,
    };
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::datasource::table_schema::TableSchema;
    use datafusion::logical_expr::Expr;
    use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};

    use crate::model::schema::TableKind;
    use crate::session::dataset::Dataset;
    use crate::util::error::Result;

    /// A scan of a table registered as Parquet files (a store) with its
    /// string columns read dictionary-encoded; `None` when the table is not
    /// such a table.
    pub(super) async fn scan(
        ds: &Dataset,
        kind: TableKind,
        columns: &[&str],
        prune: &Expr,
    ) -> Result<Option<Vec<SendableRecordBatchStream>>> {
        let ctx = ds.context();
        let Some(provider) = ctx.table_provider(kind.name()).await.ok() else {
            return Ok(None);
        };
        let Some(listing) = provider.downcast_ref::<ListingTable>() else {
            return Ok(None);
        };
        if listing.options().format.get_ext() != "parquet" {
            return Ok(None);
        }
        let state = ctx.state();
        let schema = listing.schema();
        let projection = columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<Result<Vec<_>, _>>()?;
        // The table's files (and where they are) as the table plans them.
        let plan = listing
            .scan(&state, Some(&projection), std::slice::from_ref(prune), None)
            .await?;
        let Some(config) = plan
            .downcast_ref::<DataSourceExec>()
            .and_then(|e| e.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Ok(None);
        };
        // The same columns, strings as dictionaries of 32-bit keys: the
        // Parquet reader hands over each column chunk's dictionary and keys
        // instead of copying every row's string.
        let dictionary = Arc::new(Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Utf8 => Arc::new(Field::new(
                        f.name(),
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                        f.is_nullable(),
                    )),
                    _ => Arc::clone(f),
                })
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let files: FileGroup = config
            .file_groups
            .iter()
            .flat_map(|g| g.iter().cloned())
            .map(|f| f.with_arrow_schema(Arc::clone(&dictionary)))
            .collect();
        let options = state.config().options();
        let groups = FileGroupPartitioner::new()
            .with_target_partitions(options.execution.target_partitions)
            .with_repartition_file_min_size(options.optimizer.repartition_file_min_size)
            .repartition_file_groups(std::slice::from_ref(&files))
            .unwrap_or_else(|| vec![files]);
        let predicate =
            state.create_physical_expr(prune.clone(), &DFSchema::try_from(Arc::clone(&schema))?)?;
        let source = ParquetSource::new(TableSchema::from(Arc::clone(&dictionary)))
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_predicate(predicate);
        let config = FileScanConfigBuilder::new(config.object_store_url.clone(), Arc::new(source))
            .with_file_groups(groups)
            .with_projection_indices(Some(projection))?
            .build();
        let exec = DataSourceExec::from_data_source(config);
        let task = ctx.task_ctx();
        let n = exec.properties().output_partitioning().partition_count();
        Ok(Some(
            (0..n)
                .map(|p| exec.execute(p, Arc::clone(&task)))
                .collect::<datafusion::error::Result<Vec<_>>>()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::{Field, Schema};

    fn batch(site: ArrayRef, cell: ArrayRef) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("site", site.data_type().clone(), true),
            Field::new("cell", cell.data_type().clone(), true),
        ]);
        RecordBatch::try_new(Arc::new(schema), vec![site, cell]).unwrap()
    }

    fn dict(keys: Vec<Option<i32>>, values: Vec<Option<&str>>) -> ArrayRef {
        Arc::new(
            DictionaryArray::<Int32Type>::try_new(
                Int32Array::from(keys),
                Arc::new(StringArray::from(values)),
            )
            .unwrap(),
        )
    }

    #[test]
    fn cell_numbers_are_the_same_from_strings_and_dictionaries() {
        let index = CellIndex::new([("S1", "A1"), ("S1", "A2"), ("S2", "A1"), ("S1", "A1")]);
        assert_eq!(index.len(), 3);
        assert_eq!(index.position(2), 2);
        let sites = vec![
            Some("S1"),
            Some("S2"),
            None,
            Some("S3"),
            Some("S1"),
            Some("S2"),
            Some("S1"),
        ];
        let cells = vec![
            Some("A2"),
            Some("A1"),
            Some("A1"),
            Some("A1"),
            None,
            Some("A2"),
            Some("A1"),
        ];
        let want = vec![1, 2, NO_CELL, NO_CELL, NO_CELL, NO_CELL, 0];
        let plain = batch(
            Arc::new(StringArray::from(sites.clone())),
            Arc::new(StringArray::from(cells.clone())),
        );
        // Dictionaries with unused, null and repeated values.
        let site_values = vec![Some("S3"), Some("S1"), None, Some("S2"), Some("S9")];
        let cell_values = vec![Some("A1"), Some("Z9"), Some("A2"), None, Some("A1")];
        let key = |v: &Option<&str>, values: &[Option<&str>], skip: usize| {
            v.map(|v| {
                values
                    .iter()
                    .enumerate()
                    .rposition(|(i, x)| *x == Some(v) && i >= skip)
                    .unwrap() as i32
            })
        };
        let encoded = batch(
            dict(
                sites.iter().map(|v| key(v, &site_values, 0)).collect(),
                site_values.clone(),
            ),
            dict(
                cells.iter().map(|v| key(v, &cell_values, 0)).collect(),
                cell_values.clone(),
            ),
        );
        let mut out = Vec::new();
        index.rows(&plain, "t", &mut out).unwrap();
        assert_eq!(out, want);
        index.rows(&encoded, "t", &mut out).unwrap();
        assert_eq!(out, want);
        let mut sev = Vec::new();
        codes(
            encoded.column(1),
            "t",
            "cell",
            |v| v.map_or(9, |v| v.len()),
            &mut sev,
        )
        .unwrap();
        assert_eq!(sev, vec![2, 2, 2, 2, 9, 2, 2]);
    }

    #[test]
    fn dense_and_sparse_tallies_agree() {
        let mut dense = Tally::new(1000);
        let mut sparse = Tally::new(1 << 40);
        assert!(matches!(dense, Tally::Dense(_)) && matches!(sparse, Tally::Sparse(_)));
        let mut parts = [Tally::new(1000), Tally::new(1000)];
        let mut plain = std::collections::BTreeMap::<u64, i64>::new();
        for i in 0..5000u64 {
            let (at, n) = ((i * 7919) % 1000, (i % 3) as i64 - 1);
            dense.add(at, n);
            sparse.add(at, n);
            parts[(i % 2) as usize].add(at, n);
            *plain.entry(at).or_default() += n;
        }
        let plain: Vec<(u64, i64)> = plain.into_iter().filter(|(_, n)| *n != 0).collect();
        let [a, mut split] = parts;
        split.merge(a);
        let split = split.sorted();
        let dense = dense.sorted();
        assert!(!dense.is_empty() && dense.iter().all(|(_, n)| *n != 0));
        assert_eq!(dense, plain);
        assert_eq!(dense, sparse.sorted());
        assert_eq!(dense, split);
    }

    #[test]
    fn a_store_is_scanned_with_dictionary_keys() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let o = crate::generate::GenerateOptions {
            scale: 0.5,
            sites: 2,
            only: Some(vec![TableKind::Cells, TableKind::Incidents]),
            ..Default::default()
        };
        crate::generate::generate_to_dir(&data, &o).unwrap();
        let store = dir.path().join("store");
        let layout = crate::session::store::IngestOptions {
            rows_per_file: 500,
            row_group_rows: 100,
            ..Default::default()
        };
        crate::session::store::ingest(&data, None, &store, &layout, &|_| {}).unwrap();
        let ds = crate::session::store::open(&store, None).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let (types, rows, counted) = rt.block_on(async {
            let streams = partitions(
                &ds,
                TableKind::Incidents,
                &["site", "cell", "occurred_at"],
                datafusion::logical_expr::lit(true),
            )
            .await
            .unwrap();
            let index = CellIndex::new(
                ds.collect(TableKind::Cells)
                    .await
                    .unwrap()
                    .iter()
                    .flat_map(|b| {
                        let (s, c) = (
                            b.column_by_name("site")
                                .unwrap()
                                .as_any()
                                .downcast_ref::<StringArray>()
                                .unwrap()
                                .clone(),
                            b.column_by_name("cell")
                                .unwrap()
                                .as_any()
                                .downcast_ref::<StringArray>()
                                .unwrap()
                                .clone(),
                        );
                        (0..b.num_rows())
                            .map(|i| (s.value(i).to_string(), c.value(i).to_string()))
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|(s, c)| (s.as_str(), c.as_str())),
            );
            let index = Arc::new(index);
            let states = fold(
                streams,
                || (Vec::new(), 0usize, 0usize, Vec::new()),
                move |(types, rows, counted, keys): &mut (
                    Vec<DataType>,
                    usize,
                    usize,
                    Vec<u32>,
                ),
                      b| {
                    types.push(b.column(0).data_type().clone());
                    index.rows(b, "incidents", keys)?;
                    *rows += b.num_rows();
                    *counted += keys.iter().filter(|k| **k != NO_CELL).count();
                    Ok(())
                },
            )
            .await
            .unwrap();
            let mut all = (Vec::new(), 0, 0);
            for (t, r, c, _) in states {
                all.0.extend(t);
                all.1 += r;
                all.2 += c;
            }
            all
        });
        let expected = ds.row_count(TableKind::Incidents);
        assert!(expected > 1000);
        assert_eq!(rows, expected);
        // Every generated incident has a cell of the plan.
        assert_eq!(counted, expected);
        assert!(!types.is_empty());
        assert!(
            types
                .iter()
                .all(|t| matches!(t, DataType::Dictionary(_, _))),
            "{types:?}"
        );
    }
}
