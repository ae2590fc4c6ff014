//! Ingest as a DataFusion plan: the validation of a dataset into a store,
//! run by the engine's tasks, so that on a distributed engine (Ballista)
//! the executors read the sources, validate them and write the store's
//! Parquet files, and the process that asked only writes the manifest.
//!
//! [`ingest_in`] runs three kinds of queries in the caller's session:
//!
//! 1. **Load**: one task per source file (or object) of every table. A
//!    task validates its source with the same [`TableLoader`] a
//!    one-process ingest uses, writes the accepted rows into the store's
//!    temporary directory (`TABLE/part-SSSSS-NNNNN.parquet`, SSSSS the
//!    source's position) and the ids with their positions into
//!    `.ids/TABLE/SSSSS.parquet`, and returns its report and files.
//! 2. **Duplicate ids**: a grouped plan over the id files (`GROUP BY id
//!    HAVING count(*) > 1`, joined back to the positions), decided on the
//!    ids themselves. In each group the first row in source order stays.
//! 3. **Drop**: one task per file holding a later occurrence of an id,
//!    rewriting the file without it.
//!
//! Every file is written under a temporary name and renamed when
//! complete, so a task that is retried (an executor lost) writes the same
//! files again. The store itself is renamed into place only when every
//! query succeeded: a failure, on any machine, leaves no store behind (and
//! an old store as it was).
//!
//! The site plan (`cells`) is loaded by the caller, as it is small and
//! every other table's coordinates are checked against it.
//!
//! The plan's table ([`IngestTable`]) carries all its work as bytes
//! ([`IngestWork::to_bytes`]), for a distributed engine's logical codec.
//! Its node ([`IngestExec`]) reads the tasks' descriptions from an
//! in-memory scan with one partition per task, so an engine that restricts
//! a stage's scan to each of its tasks' partitions (Ballista does) runs
//! each ingest task once; the node itself carries only what the tasks
//! share ([`IngestTables::to_bytes`], for the physical codec). Every
//! process must see the sources and the store at the same paths (a shared
//! file system) or read the sources from an object store.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};

use crate::io::format::Format;
use crate::io::loader::{SiteExtents, TableLoader};
use crate::io::mapping::TableMapping;
use crate::io::plan::{GridSpec, PolygonSpec};
use crate::io::source::{ReadOptions, Source, SourceData, read_source};
use crate::model::report::{Example, MAX_EXAMPLES, TableReport};
use crate::model::schema::TableKind;
use crate::session::store::{
    Dropped, IngestOptions, Manifest, Progress, StoredFile, TableWriter, Written, create_dir_in,
    drop_rows, fail_on_missing, prepare, reject_duplicates, write_cells,
};
use crate::util::error::{Error, Result};

/// The directory of the id files inside the store's temporary directory.
const IDS: &str = ".ids";

/// Validate the dataset at `path` into a store at `out` (as
/// [`crate::session::store::ingest`]) with the work done by the queries of
/// `ctx`: on a distributed engine's session, by its executors.
pub async fn ingest_in(
    path: &Path,
    timezone: Option<&str>,
    out: &Path,
    options: &IngestOptions,
    ctx: &SessionContext,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Manifest> {
    // The executors resolve paths in their own working directories.
    let out = std::path::absolute(out).map_err(|e| Error::io(out, e))?;
    let p = prepare(path, timezone, &out, options)?;
    let written = match write_all(&p, options, ctx, progress).await {
        Ok(tables) => p.manifest(path, tables),
        Err(e) => Err(e),
    };
    p.commit(&out, written)
}

/// The work of one ingest's query: what the tasks of each table share,
/// and one task per partition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestWork {
    tables: Vec<TableSpec>,
    tasks: Vec<Task>,
}

/// What every task of one table shares (held once in a plan, however many
/// tasks the table has).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TableSpec {
    kind: TableKind,
    tz: String,
    /// The table's mapping as TOML (the form it is read in).
    mapping: Option<String>,
    /// The mapping's site plans, when they bin this table.
    plans: Option<PlanDecl>,
    extents: SiteExtents,
    /// The store's temporary directory.
    root: PathBuf,
    rows_per_file: u64,
    row_group_rows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Task {
    Load(Box<Load>),
    Drop(Box<DropTask>),
}

/// Validate one source of a table into the store's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Load {
    /// The table ([`IngestWork::tables`]).
    table: usize,
    source: SourceRef,
    /// The task's position among the table's tasks (names its files).
    index: usize,
}

/// A mapping's site plans, loaded again where the task runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlanDecl {
    grid: Vec<GridSpec>,
    polygons: Vec<PolygonSpec>,
    base_dir: PathBuf,
}

/// A source by location, or some of its row groups.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SourceRef {
    label: String,
    path: Option<PathBuf>,
    url: Option<String>,
    format: Format,
    partitions: Vec<(String, String)>,
    /// Parquet only: the row groups to read (all when `None`).
    row_groups: Option<Vec<usize>>,
    /// The source row (1-based) of the first row read.
    first_row: u64,
    /// Whether these are the source's first rows (the report lists the
    /// source once).
    first: bool,
}

/// Rewrite one store file without some of its rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DropTask {
    /// The table ([`IngestWork::tables`]).
    table: usize,
    file: StoredFile,
    /// Positions in the file.
    drop: Vec<u64>,
    /// Those whose ids the report shows.
    examples: Vec<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Loaded {
    report: TableReport,
    files: Vec<StoredFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Rewritten {
    file: StoredFile,
    dropped: Dropped,
}

impl IngestWork {
    /// The work as bytes (JSON), for a plan sent to other processes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::option("ingest", e.to_string()))
    }

    /// The work from [`IngestWork::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<IngestWork> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::option("ingest", format!("not an ingest plan: {e}")))
    }
}

impl SourceRef {
    fn of(src: &Source) -> Result<SourceRef> {
        let (path, url) = match &src.data {
            SourceData::Path(p) => (
                Some(std::path::absolute(p).map_err(|e| Error::io(p, e))?),
                None,
            ),
            SourceData::Object(_) => (None, Some(src.label.clone())),
            SourceData::Bytes(_) | SourceData::Batches(_) => {
                return Err(Error::option(
                    "data",
                    format!(
                        "{} is in memory: an ingest on a cluster reads files or objects",
                        src.label
                    ),
                ));
            }
        };
        Ok(SourceRef {
            label: src.label.clone(),
            path,
            url,
            format: src.format,
            partitions: src.partitions.clone(),
            row_groups: None,
            first_row: 1,
            first: true,
        })
    }

    /// The source's tasks: a Parquet source of more than `task_rows` rows
    /// split at its row groups, every other source whole.
    fn split(self, src: &Source, task_rows: u64) -> Vec<SourceRef> {
        let groups = match crate::io::source::parquet_row_groups(src) {
            Some(g) if g.len() > 1 && g.iter().sum::<u64>() > task_rows => g,
            _ => return vec![self],
        };
        let mut out: Vec<SourceRef> = Vec::new();
        let (mut current, mut rows, mut first_row) = (Vec::new(), 0u64, 1u64);
        for (i, n) in groups.iter().enumerate() {
            current.push(i);
            rows += n;
            if rows >= task_rows || i + 1 == groups.len() {
                out.push(SourceRef {
                    row_groups: Some(std::mem::take(&mut current)),
                    first_row,
                    first: out.is_empty(),
                    ..self.clone()
                });
                first_row += rows;
                rows = 0;
            }
        }
        out
    }

    fn open(&self) -> Result<Source> {
        let data = match (&self.path, &self.url) {
            (Some(p), _) => SourceData::Path(p.clone()),
            (None, Some(u)) => SourceData::Object(crate::io::remote::object(u)?),
            (None, None) => {
                return Err(Error::option("ingest", "a source without a location"));
            }
        };
        Ok(Source {
            label: self.label.clone(),
            data,
            format: self.format,
            partitions: self.partitions.clone(),
        })
    }
}

fn options_of(rows_per_file: u64, row_group_rows: usize) -> IngestOptions {
    IngestOptions {
        rows_per_file,
        row_group_rows,
        ..IngestOptions::default()
    }
}

/// The schema of the id files.
fn ids_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("part", DataType::UInt32, false),
        Field::new("ordinal", DataType::UInt64, false),
        Field::new("row", DataType::UInt64, false),
    ]))
}

impl Load {
    /// Validate the source; `stop` says the query was given up (checked
    /// between batches).
    fn run(&self, t: &TableSpec, part: u32, stop: &dyn Fn() -> bool) -> Result<Loaded> {
        let mut mapping = match &t.mapping {
            Some(text) => Some(toml::from_str::<TableMapping>(text).map_err(|e| {
                Error::mapping(Some(t.kind.name().to_string()), e.message().to_string())
            })?),
            None => None,
        };
        if let Some(decl) = &t.plans {
            let plans = crate::io::plan_files::plans(
                &decl.grid,
                &decl.polygons,
                &decl.base_dir,
                "mapping",
            )?;
            mapping.get_or_insert_with(Default::default).plans =
                plans.into_iter().map(Arc::new).collect();
        }
        if !t.root.is_dir() {
            // Another machine's directory, or an ingest already given up.
            return Err(Error::Io {
                path: t.root.clone(),
                source: std::io::Error::other(
                    "the store's temporary directory is not on this machine: a cluster's \
                     executors must see the store at the same path (a shared file system)",
                ),
            });
        }
        let source = self.source.open()?;
        let mut loader = TableLoader::new(t.kind, &t.tz, mapping.as_ref(), t.extents.clone())?;
        let id_column = t.kind.def().id_column;
        if id_column.is_some() {
            loader.accepted_rows = Some(Vec::new());
        }
        let options = options_of(t.rows_per_file, t.row_group_rows);
        let stem = format!("part-{:05}", self.index);
        let mut files = TableWriter::with_stem(&t.root, t.kind, &t.tz, &options, &stem)?;
        let mut ids = match id_column {
            Some(c) => Some(IdWriter::new(&t.root, t.kind, self.index, part, c)?),
            None => None,
        };
        let opts = ReadOptions {
            row_groups: self.source.row_groups.clone(),
            ..mapping
                .as_ref()
                .map(ReadOptions::from_mapping)
                .unwrap_or_default()
        };
        if self.source.first {
            loader.report.sources.push(source.label.clone());
        }
        let mut row = self.source.first_row;
        for batch in read_source(&source, &opts)? {
            if stop() {
                return Err(Error::option("ingest", "the ingest was given up"));
            }
            let batch = batch?;
            let n = batch.num_rows() as u64;
            let accepted = loader.push(&batch, &source.label, row)?;
            row += n;
            if let (Some(ids), Some(rows)) = (&mut ids, &mut loader.accepted_rows) {
                ids.write(&accepted, rows)?;
                rows.clear();
            }
            if accepted.num_rows() > 0 {
                files.write(&accepted)?;
            }
        }
        if let Some(ids) = ids {
            ids.finish()?;
        }
        Ok(Loaded {
            report: loader.report,
            files: files.finish_written()?,
        })
    }
}

/// Writes the ids of a source's accepted rows with their positions.
struct IdWriter {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<ArrowWriter<std::fs::File>>,
    column: &'static str,
    part: u32,
    ordinal: u64,
}

impl IdWriter {
    fn new(
        root: &Path,
        kind: TableKind,
        index: usize,
        part: u32,
        column: &'static str,
    ) -> Result<IdWriter> {
        let dir = root.join(IDS);
        create_dir_in(&dir)?;
        let dir = dir.join(kind.name());
        create_dir_in(&dir)?;
        let path = dir.join(format!("{index:05}.parquet"));
        let (tmp, file) = crate::io::output::create_temp_file_in(&path)?;
        // Small row groups: a task holds one in memory.
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(64 * 1024))
            .build();
        Ok(IdWriter {
            path,
            tmp,
            writer: Some(ArrowWriter::try_new(file, ids_schema(), Some(props))?),
            column,
            part,
            ordinal: 0,
        })
    }

    /// The ids of `accepted`, whose source rows are `rows`.
    fn write(&mut self, accepted: &RecordBatch, rows: &[u64]) -> Result<()> {
        let ids = accepted
            .column_by_name(self.column)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| Error::data(self.column, "the id column is not text"))?;
        if ids.len() != rows.len() {
            return Err(Error::option(
                "ingest",
                format!("{} accepted rows, {} positions", ids.len(), rows.len()),
            ));
        }
        let keep: Vec<usize> = (0..ids.len()).filter(|&i| ids.is_valid(i)).collect();
        let first = self.ordinal;
        self.ordinal += ids.len() as u64;
        if keep.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(
            ids_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    keep.iter().map(|&i| ids.value(i)),
                )),
                Arc::new(UInt32Array::from(vec![self.part; keep.len()])),
                Arc::new(UInt64Array::from_iter_values(
                    keep.iter().map(|&i| first + i as u64),
                )),
                Arc::new(UInt64Array::from_iter_values(keep.iter().map(|&i| rows[i]))),
            ],
        )?;
        if let Some(w) = &mut self.writer {
            w.write(&batch)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        writer.close()?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for IdWriter {
    /// A writer given up leaves no temporary file.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl DropTask {
    fn run(&self, t: &TableSpec) -> Result<Rewritten> {
        let options = options_of(t.rows_per_file, t.row_group_rows);
        let schema = t.kind.def().arrow_schema(&t.tz);
        let mut file = self.file.clone();
        let drop: HashSet<u64> = self.drop.iter().copied().collect();
        let examples: BTreeSet<u64> = self.examples.iter().copied().collect();
        let dropped = drop_rows(
            &t.root, &mut file, t.kind, &schema, &options, &drop, &examples,
        )?;
        Ok(Rewritten { file, dropped })
    }
}

impl Task {
    /// Run the task with its table among `tables`; its result as JSON.
    fn run(&self, tables: &[TableSpec], part: u32, stop: &dyn Fn() -> bool) -> Result<String> {
        let table = match self {
            Task::Load(l) => l.table,
            Task::Drop(d) => d.table,
        };
        let t = tables
            .get(table)
            .ok_or_else(|| Error::option("ingest", format!("a task of unknown table {table}")))?;
        match self {
            Task::Load(l) => to_json(&l.run(t, part, stop)?),
            Task::Drop(d) => to_json(&d.run(t)?),
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::option("ingest", e.to_string()))
}

/// The schema of an ingest query's rows: the task and its result (JSON).
fn result_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("part", DataType::UInt32, false),
        Field::new("result", DataType::Utf8, false),
    ]))
}

/// The tasks of an ingest as a table: scanning it runs them.
#[derive(Debug)]
pub struct IngestTable {
    work: Arc<IngestWork>,
}

impl IngestTable {
    /// A table over `work`.
    pub fn new(work: IngestWork) -> IngestTable {
        IngestTable {
            work: Arc::new(work),
        }
    }

    /// Its work.
    pub fn work(&self) -> &IngestWork {
        &self.work
    }
}

#[async_trait::async_trait]
impl TableProvider for IngestTable {
    fn schema(&self) -> SchemaRef {
        result_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(IngestExec::over(&self.work, projection.cloned())?))
    }
}

/// What the tasks of one ingest query share: the tables' specifications.
/// A plan node carries them once; each task's own description is a row of
/// the node's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestTables {
    tables: Vec<TableSpec>,
}

impl IngestTables {
    /// The tables as bytes (JSON), for a plan sent to other processes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::option("ingest", e.to_string()))
    }

    /// The tables from [`IngestTables::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<IngestTables> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::option("ingest", format!("not an ingest plan: {e}")))
    }
}

/// The schema of the tasks' descriptions: the task and its JSON.
fn task_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("part", DataType::UInt32, false),
        Field::new("task", DataType::Utf8, false),
    ]))
}

/// The plan node running an ingest's tasks. Its input is an in-memory scan
/// with one partition per task, holding the task's description; the node
/// runs the tasks of each input partition and yields one row per task, its
/// result. A distributed engine that splits a stage's scan between its
/// tasks (Ballista restricts an in-memory scan to each task's partitions)
/// so runs every ingest task once, wherever it is sent.
#[derive(Debug)]
pub struct IngestExec {
    tables: Arc<IngestTables>,
    input: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl IngestExec {
    /// A node running the tasks of `work`, its rows projected to
    /// `projection`.
    pub fn over(
        work: &IngestWork,
        projection: Option<Vec<usize>>,
    ) -> datafusion::error::Result<IngestExec> {
        let partitions = work
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let part = u32::try_from(i)
                    .map_err(|_| Error::option("ingest", "too many tasks").into_plan())?;
                let text = to_json(t).map_err(Error::into_plan)?;
                Ok(vec![RecordBatch::try_new(
                    task_schema(),
                    vec![
                        Arc::new(UInt32Array::from(vec![part])),
                        Arc::new(StringArray::from(vec![text])),
                    ],
                )?])
            })
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let input = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
            &partitions,
            task_schema(),
            None,
        )?;
        let tables = IngestTables {
            tables: work.tables.clone(),
        };
        IngestExec::new(Arc::new(tables), input, projection)
    }

    /// A node running the tasks described by `input` (rows of `part` and
    /// `task`) with `tables`.
    pub fn new(
        tables: Arc<IngestTables>,
        input: Arc<dyn ExecutionPlan>,
        projection: Option<Vec<usize>>,
    ) -> datafusion::error::Result<IngestExec> {
        let schema = match &projection {
            Some(p) => Arc::new(result_schema().project(p)?),
            None => result_schema(),
        };
        let partitions = input.properties().output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(IngestExec {
            tables,
            input,
            projection,
            properties: Arc::new(properties),
        })
    }

    /// The tables its tasks share.
    pub fn tables(&self) -> &IngestTables {
        &self.tables
    }

    /// The projection of its rows.
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.projection.as_ref()
    }
}

impl DisplayAs for IngestExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "IngestExec: tables={}", self.tables.tables.len())
    }
}

impl ExecutionPlan for IngestExec {
    fn name(&self) -> &str {
        "IngestExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // One task a partition, as planned: no repartitioning.
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|c| {
            Error::option("ingest", format!("{} inputs, not one", c.len())).into_plan()
        })?;
        Ok(Arc::new(IngestExec::new(
            self.tables.clone(),
            input,
            self.projection.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        use futures::StreamExt;
        let mut input = self.input.execute(partition, context)?;
        let schema = self.properties.eq_properties.schema().clone();
        let mut builder = RecordBatchReceiverStreamBuilder::new(schema, 1);
        let tx = builder.tx();
        let tables = self.tables.clone();
        let projection = self.projection.clone();
        builder.spawn(async move {
            while let Some(batch) = input.next().await {
                let batch = batch?;
                let (Some(parts), Some(texts)) = (
                    batch
                        .column_by_name("part")
                        .and_then(|c| c.as_any().downcast_ref::<UInt32Array>()),
                    batch
                        .column_by_name("task")
                        .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
                ) else {
                    return Err(
                        Error::option("ingest", "a task's description has another shape")
                            .into_plan(),
                    );
                };
                for i in 0..batch.num_rows() {
                    let (part, text) = (parts.value(i), texts.value(i).to_string());
                    let (tables, stop) = (tables.clone(), tx.clone());
                    let result = tokio::task::spawn_blocking(move || {
                        let task: Task = parse(&text)?;
                        task.run(&tables.tables, part, &|| stop.is_closed())
                    })
                    .await
                    .map_err(|e| {
                        Error::option("ingest", format!("an ingest task stopped: {e}")).into_plan()
                    })?
                    .map_err(Error::into_plan)?;
                    let out = RecordBatch::try_new(
                        result_schema(),
                        vec![
                            Arc::new(UInt32Array::from(vec![part])),
                            Arc::new(StringArray::from(vec![result])),
                        ],
                    )?;
                    let out = match &projection {
                        Some(p) => out.project(p)?,
                        None => out,
                    };
                    if tx.send(Ok(out)).await.is_err() {
                        // The query was given up.
                        return Ok(());
                    }
                }
            }
            Ok(())
        });
        Ok(builder.build())
    }
}

/// Run `work` as one query of `ctx`; its tasks' results, in task order.
async fn run_tasks(ctx: &SessionContext, work: IngestWork) -> Result<Vec<String>> {
    let n = work.tasks.len();
    if n == 0 {
        return Ok(vec![]);
    }
    let df = ctx.read_table(Arc::new(IngestTable::new(work)))?;
    let mut out: Vec<Option<String>> = vec![None; n];
    for b in df.collect().await? {
        let (Some(parts), Some(results)) = (
            b.column_by_name("part")
                .and_then(|c| c.as_any().downcast_ref::<UInt32Array>()),
            b.column_by_name("result")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
        ) else {
            return Err(Error::option("ingest", "a task's result has another shape"));
        };
        for i in 0..b.num_rows() {
            if let Some(slot) = out.get_mut(parts.value(i) as usize) {
                *slot = Some(results.value(i).to_string());
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| Error::option("ingest", format!("task {i} returned no result")))
        })
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::option(
            "ingest",
            format!("an ingest task's description or result: {e}"),
        )
    })
}

/// One table's load results, by source.
struct TableParts {
    kind: TableKind,
    /// (task, source label, its result).
    parts: Vec<(u32, String, Loaded)>,
}

async fn write_all(
    p: &crate::session::store::Prepared,
    options: &IngestOptions,
    ctx: &SessionContext,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Written> {
    let root = &p.tmp;
    let (mut out, extents) = write_cells(&p.inputs, &p.tz, root, options, progress)?;
    let plans = p
        .mapping
        .as_ref()
        .filter(|m| !(m.grid.is_empty() && m.polygons.is_empty()))
        .map(|m| -> Result<PlanDecl> {
            Ok(PlanDecl {
                grid: m.grid.clone(),
                polygons: m.polygons.clone(),
                base_dir: std::path::absolute(&m.base_dir)
                    .map_err(|e| Error::io(&m.base_dir, e))?,
            })
        })
        .transpose()?;
    let mut work = IngestWork {
        tables: Vec::new(),
        tasks: Vec::new(),
    };
    // The source of every task.
    let mut layout: Vec<String> = Vec::new();
    for (&kind, input) in &p.inputs {
        if kind == TableKind::Cells {
            continue;
        }
        fail_on_missing(kind, input)?;
        let mapping = input
            .mapping
            .as_ref()
            .map(|m| {
                toml::to_string(m)
                    .map_err(|e| Error::mapping(Some(kind.name().into()), e.to_string()))
            })
            .transpose()?;
        let table = work.tables.len();
        work.tables.push(TableSpec {
            kind,
            tz: p.tz.clone(),
            mapping,
            plans: plans.clone().filter(|_| crate::io::plan::binned(kind)),
            extents: extents.clone(),
            root: root.clone(),
            rows_per_file: options.rows_per_file,
            row_group_rows: options.row_group_rows,
        });
        let mut index = 0;
        for src in &input.sources {
            for source in SourceRef::of(src)?.split(src, options.task_rows.max(1)) {
                work.tasks.push(Task::Load(Box::new(Load {
                    table,
                    source,
                    index,
                })));
                layout.push(src.label.clone());
                index += 1;
            }
        }
    }
    // Every table, in order, even one without a source to read (it gets
    // an empty report and an empty file, as in one process).
    let mut tables: Vec<TableParts> = work
        .tables
        .iter()
        .map(|t| TableParts {
            kind: t.kind,
            parts: Vec::new(),
        })
        .collect();
    let owners: Vec<usize> = work
        .tasks
        .iter()
        .map(|t| match t {
            Task::Load(l) => l.table,
            Task::Drop(d) => d.table,
        })
        .collect();
    let results = run_tasks(ctx, work).await?;
    for (part, ((owner, label), text)) in owners.into_iter().zip(layout).zip(results).enumerate() {
        let loaded: Loaded = parse(&text)?;
        if let Some(t) = tables.get_mut(owner) {
            t.parts.push((part as u32, label, loaded));
        }
    }
    let mut merged = Vec::new();
    for t in tables {
        merged.push(merge(t, &p.tz, root, options, ctx).await?);
    }
    for (kind, (rep, files)) in merged {
        progress(Progress {
            table: kind.name(),
            rows_read: rep.rows_read,
            rows_total: Some(rep.rows_read),
            done: true,
        });
        out.push((kind, (rep, files)));
    }
    clean(root, &out)?;
    Ok(out)
}

/// One table's report and files from its sources' results, without the
/// later occurrences of its ids.
async fn merge(
    t: TableParts,
    tz: &str,
    root: &Path,
    options: &IngestOptions,
    ctx: &SessionContext,
) -> Result<(TableKind, (TableReport, Vec<StoredFile>))> {
    let kind = t.kind;
    let mut report = TableReport {
        table: kind.name().to_string(),
        ..Default::default()
    };
    // The optional columns missing from the first source read, as a load
    // of all the sources in one go reports them.
    let missing = t
        .parts
        .iter()
        .find(|(_, _, l)| l.report.rows_read > 0)
        .or(t.parts.first())
        .map(|(_, _, l)| l.report.missing_optional_columns.clone())
        .unwrap_or_default();
    // Per task: the table's rows before it, its label and its files.
    let mut offsets: HashMap<u32, (u64, String)> = HashMap::new();
    let mut files: Vec<StoredFile> = Vec::new();
    let mut before = 0u64;
    for (part, label, loaded) in t.parts {
        offsets.insert(part, (before, label));
        before += loaded.report.rows_accepted;
        files.extend(loaded.files);
        report.merge(loaded.report);
    }
    report.missing_optional_columns = missing;
    if let Some(column) = kind.def().id_column {
        let dups = duplicates(ctx, root, kind, &offsets).await?;
        if !dups.is_empty() {
            remove(
                ctx,
                kind,
                tz,
                root,
                options,
                &mut report,
                &mut files,
                &dups,
                column,
            )
            .await?;
        }
    }
    if files.is_empty() {
        files = TableWriter::new(root, kind, tz, options)?.finish()?;
    }
    Ok((kind, (report, files)))
}

/// A later occurrence of an id: its position among the table's rows, its
/// source and row there, and the id.
struct Dup {
    ordinal: u64,
    source: String,
    row: u64,
    id: String,
}

/// The later occurrences of the table's ids, found by a grouped plan over
/// the id files, in the order of the table's rows.
async fn duplicates(
    ctx: &SessionContext,
    root: &Path,
    kind: TableKind,
    offsets: &HashMap<u32, (u64, String)>,
) -> Result<Vec<Dup>> {
    use datafusion::functions_aggregate::count::count;
    use datafusion::prelude::{ParquetReadOptions, col, lit};
    let dir = root.join(IDS).join(kind.name());
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    let url = format!("{}/", dir.display());
    let ids = ctx
        .read_parquet(url, ParquetReadOptions::default().schema(&ids_schema()))
        .await?;
    let repeated = ids
        .clone()
        .aggregate(vec![col("id")], vec![count(lit(1)).alias("n")])?
        .filter(col("n").gt(lit(1)))?
        .select(vec![col("id").alias("repeated")])?;
    let rows = ids
        .join(
            repeated,
            datafusion::common::JoinType::LeftSemi,
            &["id"],
            &["repeated"],
            None,
        )?
        .collect()
        .await?;
    let mut groups: HashMap<String, Vec<(u32, u64, u64)>> = HashMap::new();
    for b in &rows {
        let column = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| Error::option("ingest", format!("no `{name}` in the id files")))
        };
        let (ids, parts, ordinals, src_rows) = (
            column("id")?.as_any().downcast_ref::<StringArray>(),
            column("part")?.as_any().downcast_ref::<UInt32Array>(),
            column("ordinal")?.as_any().downcast_ref::<UInt64Array>(),
            column("row")?.as_any().downcast_ref::<UInt64Array>(),
        );
        let (Some(ids), Some(parts), Some(ordinals), Some(src_rows)) =
            (ids, parts, ordinals, src_rows)
        else {
            return Err(Error::option("ingest", "the id files have another schema"));
        };
        for i in 0..b.num_rows() {
            groups.entry(ids.value(i).to_string()).or_default().push((
                parts.value(i),
                ordinals.value(i),
                src_rows.value(i),
            ));
        }
    }
    let mut out = Vec::new();
    for (id, mut g) in groups {
        g.sort_unstable();
        for &(part, ordinal, row) in &g[1..] {
            let (before, label) = offsets
                .get(&part)
                .ok_or_else(|| Error::option("ingest", format!("an id of unknown task {part}")))?;
            out.push(Dup {
                ordinal: before + ordinal,
                source: label.clone(),
                row,
                id: id.clone(),
            });
        }
    }
    out.sort_unstable_by_key(|d| d.ordinal);
    Ok(out)
}

/// Take `dups` out of the table's files (one task per file holding one)
/// and count them in the report as duplicate ids.
#[allow(clippy::too_many_arguments)]
async fn remove(
    ctx: &SessionContext,
    kind: TableKind,
    tz: &str,
    root: &Path,
    options: &IngestOptions,
    report: &mut TableReport,
    files: &mut [StoredFile],
    dups: &[Dup],
    column: &str,
) -> Result<()> {
    let shown: BTreeSet<u64> = dups.iter().take(MAX_EXAMPLES).map(|d| d.ordinal).collect();
    let mut work = IngestWork {
        tables: vec![TableSpec {
            kind,
            tz: tz.to_string(),
            mapping: None,
            plans: None,
            extents: SiteExtents::default(),
            root: root.to_path_buf(),
            rows_per_file: options.rows_per_file,
            row_group_rows: options.row_group_rows,
        }],
        tasks: Vec::new(),
    };
    let mut which = Vec::new();
    let (mut start, mut next) = (0u64, 0usize);
    for (i, f) in files.iter().enumerate() {
        let end = start + f.rows;
        let first = next;
        while next < dups.len() && dups[next].ordinal < end {
            next += 1;
        }
        if next > first {
            work.tasks.push(Task::Drop(Box::new(DropTask {
                table: 0,
                file: f.clone(),
                drop: dups[first..next]
                    .iter()
                    .map(|d| d.ordinal - start)
                    .collect(),
                examples: shown.range(start..end).map(|o| o - start).collect(),
            })));
            which.push(i);
        }
        start = end;
    }
    let mut time_unknown = 0u64;
    for (i, text) in which.into_iter().zip(run_tasks(ctx, work).await?) {
        let r: Rewritten = parse(&text)?;
        time_unknown += r.dropped.time_unknown;
        files[i] = r.file;
    }
    reject_duplicates(report, time_unknown, dups.len(), &|i| Example {
        source: dups[i].source.clone(),
        row: dups[i].row,
        column: column.to_string(),
        value: dups[i].id.clone(),
    });
    Ok(())
}

/// Remove what is not part of the store: the id files, and files of
/// attempts that did not finish (a task retried after its executor was
/// lost).
fn clean(root: &Path, written: &Written) -> Result<()> {
    let ids = root.join(IDS);
    if ids.exists() {
        std::fs::remove_dir_all(&ids).map_err(|e| Error::io(&ids, e))?;
    }
    let listed: BTreeSet<&str> = written
        .iter()
        .flat_map(|(_, (_, files))| files.iter().map(|f| f.path.as_str()))
        .collect();
    for (kind, _) in written {
        let dir = root.join(kind.name());
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let rel = format!("{}/{}", kind.name(), entry.file_name().to_string_lossy());
            if !listed.contains(rel.as_str()) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_survives_its_toml() {
        let text = r#"
path = "incidents.csv"
delimiter = ";"
null_values = ["n/a"]
years = [2000, 2030]
[columns]
id = "Incident No"
site = { constant = "U01" }
occurred_at = { column = "Date", formats = ["%d/%m/%Y"], time_column = "Time" }
severity = { column = "Sev", valid_if = { column = "Status", in = ["closed"] } }
"#;
        let m: TableMapping = toml::from_str(text).unwrap();
        let back: TableMapping = toml::from_str(&toml::to_string(&m).unwrap()).unwrap();
        assert_eq!(m, back);
    }

    /// A task on a machine that does not see the store's directory fails
    /// with an I/O error (exit code 3) that says so, and creates nothing.
    #[test]
    fn a_task_that_cannot_see_the_store_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("incidents.csv");
        std::fs::write(
            &source,
            "id,occurred_at,site,cell,category,severity\n1,2025-03-01 08:00,S1,A1,fire,minor\n",
        )
        .unwrap();
        let root = dir.path().join("elsewhere").join(".store.tmp");
        let tables = vec![TableSpec {
            kind: TableKind::Incidents,
            tz: "UTC".into(),
            mapping: None,
            plans: None,
            extents: SiteExtents::default(),
            root: root.clone(),
            rows_per_file: 10,
            row_group_rows: 5,
        }];
        let task = Task::Load(Box::new(Load {
            table: 0,
            source: SourceRef {
                label: source.display().to_string(),
                path: Some(source.clone()),
                url: None,
                format: Format::Csv,
                partitions: vec![],
                row_groups: None,
                first_row: 1,
                first: true,
            },
            index: 0,
        }));
        let e = task.run(&tables, 0, &|| false).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.to_string().contains("not on this machine"), "{e}");
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn work_survives_its_bytes_and_bad_bytes_are_an_error() {
        let work = IngestWork {
            tables: vec![TableSpec {
                kind: TableKind::Incidents,
                tz: "Asia/Shanghai".into(),
                mapping: None,
                plans: None,
                extents: [("S1".to_string(), (0.0, 0.0, 10.0, 10.0))].into(),
                root: "/tmp/x".into(),
                rows_per_file: 10,
                row_group_rows: 5,
            }],
            tasks: vec![Task::Drop(Box::new(DropTask {
                table: 0,
                file: StoredFile {
                    path: "incidents/part-00000-00000.parquet".into(),
                    rows: 3,
                    bytes: 100,
                },
                drop: vec![2],
                examples: vec![2],
            }))],
        };
        let back = IngestWork::from_bytes(&work.to_bytes().unwrap()).unwrap();
        assert_eq!(format!("{work:?}"), format!("{back:?}"));
        assert!(IngestWork::from_bytes(b"{\"tasks\": 3}").is_err());
        // A task naming a table the work does not have is an error.
        let stray = IngestWork {
            tables: vec![],
            tasks: back.tasks.clone(),
        };
        assert!(stray.tasks[0].run(&stray.tables, 0, &|| false).is_err());
        assert!(IngestWork::from_bytes(&[0xff, 0x00]).is_err());
    }
}
