//! A store: the canonical tables of a dataset, validated once and written as
//! Parquet files, with the validation report in a manifest
//! (`_safetyscope.json`).
//!
//! Ingest streams every source batch by batch through validation into the
//! files, so memory holds one batch per table. Duplicate ids are found
//! after each table is written, from fingerprints spilled to disk and
//! sorted one 64th at a time ([`crate::io::dedup::IdSpill`]); the few files
//! holding a later occurrence of an id are rewritten without it, and the
//! report counts those rows as an in-memory load does. Analyses over a store read
//! the files through the DataFusion session as they query: nothing but the
//! site plan is held in memory, and the session's memory pool (with spilling
//! to disk, see [`crate::session::context::set_memory_limit`]) bounds the rest. The
//! files are plain Parquet in the canonical schema, so DuckDB, Polars or a
//! distributed engine read them as they are.
//!
//! A store is replaced as a whole: it is written under a temporary name
//! beside the target and renamed into place when complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::io::dedup::{Duplicate, IdSpill};
use crate::io::ingest::{TableStream, load_table, stream_table};
use crate::io::inputs::OnTableError;
use crate::io::inputs::TableInput;
use crate::io::inputs::for_each_table;
use crate::io::loader::{SiteExtents, site_extents};
use crate::io::source::source_rows;
use crate::model::report::{Example, Reason, TableReport, ValidationReport};
use crate::model::schema::TableKind;
use crate::model::time::DEFAULT_TIMEZONE;
use crate::session::context::new_context;
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

impl Manifest {
    /// A line per table (`incidents: 10 read, 9 accepted, 1 rejected`)
    /// and the store's files and bytes, for a command's log.
    pub fn summary(&self) -> (Vec<String>, usize, u64) {
        let lines = self
            .report
            .tables
            .iter()
            .map(|(name, t)| {
                format!(
                    "{name}: {} read, {} accepted, {} rejected",
                    t.rows_read,
                    t.rows_accepted,
                    t.rows_read.saturating_sub(t.rows_accepted)
                )
            })
            .collect();
        let files = self.tables.values().flat_map(|t| &t.files);
        (lines, files.clone().count(), files.map(|f| f.bytes).sum())
    }
}

/// The manifest's file name inside a store directory.
pub const MANIFEST: &str = "_safetyscope.json";
const FORMAT: &str = "safetyscope-store";
const VERSION: u32 = 1;

/// What a store holds: written last, so a directory with a manifest is a
/// complete store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `safetyscope-store`.
    pub format: String,
    /// Layout version.
    pub version: u32,
    /// The dataset timezone the timestamps were read in.
    pub timezone: String,
    /// The dataset the store was ingested from.
    pub source: String,
    /// The shift roster of the dataset's mapping.
    #[serde(default)]
    pub roster: Option<crate::model::roster::Roster>,
    /// The validation report of the ingest.
    pub report: ValidationReport,
    /// The files of every table.
    pub tables: BTreeMap<String, StoredTable>,
}

/// The files of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTable {
    /// Accepted rows.
    pub rows: u64,
    /// Its Parquet files, in order.
    pub files: Vec<StoredFile>,
}

/// One Parquet file of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Path relative to the store directory (`incidents/part-00000.parquet`).
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// How a store's files are cut.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Rows per Parquet file before a new file is started (files are the
    /// unit a distributed engine hands to its executors).
    pub rows_per_file: u64,
    /// Rows per row group (the unit of parallel reads and of pruning).
    pub row_group_rows: usize,
    /// How long to wait for other processes reading or writing the store
    /// before failing (default one minute).
    pub lock_wait: std::time::Duration,
    /// Rows per task when the ingest runs as a plan
    /// (`ingest_plan`, on a distributed engine): a Parquet source with more rows is
    /// split at its row groups into tasks of about this many rows (each
    /// other source is one task).
    pub task_rows: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            rows_per_file: 4 * 1024 * 1024,
            row_group_rows: 256 * 1024,
            lock_wait: LOCK_WAIT,
            task_rows: 1 << 20,
        }
    }
}

/// How long a reader waits for a store's writer to finish (and a writer,
/// by default, for its readers) before failing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Lock the store at `store` through the file `.<name>.lock` beside it:
/// exclusively to write it, shared to read it, waiting up to `wait` for
/// other processes. A reader that cannot create the lock file (a read-only
/// directory) reads without one.
fn lock_store(
    store: &Path,
    exclusive: bool,
    wait: std::time::Duration,
) -> Result<Option<std::fs::File>> {
    let name = store
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "store".into());
    let parent = match store.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let path = parent.join(format!(".{name}.lock"));
    let mut open = std::fs::OpenOptions::new();
    open.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link planted in a shared directory.
        open.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match open.open(&path) {
        Ok(f) => f,
        Err(_) if !exclusive => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let start = std::time::Instant::now();
    loop {
        let r = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match r {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::io(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        format!(
                            "the store {} is being {} by another process; waited {} s",
                            store.display(),
                            if exclusive {
                                "read or written"
                            } else {
                                "written"
                            },
                            wait.as_secs()
                        ),
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
    }
}

/// Progress of an ingest: rows read of a table so far, and in all when the
/// sources' formats record it (Parquet).
#[derive(Debug, Clone)]
pub struct Progress {
    /// The table.
    pub table: &'static str,
    /// Rows read so far.
    pub rows_read: u64,
    /// Rows to read, when known beforehand.
    pub rows_total: Option<u64>,
    /// The table is complete.
    pub done: bool,
}

/// Whether `path` is a store directory.
pub fn is_store(path: &Path) -> bool {
    path.join(MANIFEST).is_file()
}

/// Read a store's manifest.
pub fn manifest(path: &Path) -> Result<Manifest> {
    let file = path.join(MANIFEST);
    let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::data(
            file.display().to_string(),
            format!("not a store manifest: {e}"),
        )
    })?;
    if m.format != FORMAT || m.version != VERSION {
        return Err(Error::data(
            file.display().to_string(),
            format!(
                "store format `{}` version {} (this build reads `{FORMAT}` version {VERSION}): ingest the dataset again",
                m.format, m.version
            ),
        ));
    }
    Ok(m)
}

/// Snappy, row groups of `options.row_group_rows`; no dictionary pages for
/// the id, the instants and the coordinates (`x`, `y`): their values are
/// nearly all distinct, so a dictionary for them is built only to be
/// abandoned, and written plain they are smaller and as fast to read.
/// Every other column keeps its dictionary (names, codes, and numbers
/// with few values such as a detection's confidence).
pub(crate) fn writer_properties(
    kind: TableKind,
    schema: &SchemaRef,
    options: &IngestOptions,
) -> WriterProperties {
    let id = kind.def().id_column;
    let mut b = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_created_by("safetyscope".to_string());
    for f in schema.fields() {
        let distinct = Some(f.name().as_str()) == id
            || matches!(f.data_type(), DataType::Timestamp(_, _))
            || matches!(f.name().as_str(), "x" | "y");
        if distinct {
            b = b.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(f.name().as_str()),
                false,
            );
        }
    }
    b.build()
}

/// Take the rows of `dups` (ordinals among the table's rows, in file
/// order) out of the table's files and count them in the report as
/// duplicate ids, with the examples an in-memory load gives.
/// The id values of the rows at `ordinals` (positions among the table's
/// stored rows), read from the files that hold them.
fn ids_at(
    root: &Path,
    kind: TableKind,
    files: &[StoredFile],
    ordinals: &std::collections::BTreeSet<u64>,
) -> Result<std::collections::HashMap<u64, String>> {
    use arrow::array::{Array, StringArray};
    let mut out = std::collections::HashMap::new();
    if ordinals.is_empty() {
        return Ok(out);
    }
    let id_column = kind.def().id_column.unwrap_or("id");
    let mut start = 0u64;
    for f in files {
        let end = start + f.rows;
        if ordinals.range(start..end).next().is_none() {
            start = end;
            continue;
        }
        let path = root.join(&f.path);
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?,
        )?;
        let at = builder
            .schema()
            .index_of(id_column)
            .map_err(|e| Error::data(kind.name(), e.to_string()))?;
        let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [at]);
        let mut row = start;
        for b in builder.with_projection(mask).build()? {
            let b = b?;
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| Error::data(kind.name(), format!("`{id_column}` is not text")))?;
            for o in ordinals.range(row..row + b.num_rows() as u64) {
                let i = (o - row) as usize;
                if ids.is_valid(i) {
                    out.insert(*o, ids.value(i).to_string());
                }
            }
            row += b.num_rows() as u64;
        }
        start = end;
    }
    Ok(out)
}

fn remove_duplicates(
    root: &Path,
    kind: TableKind,
    schema: &SchemaRef,
    options: &IngestOptions,
    report: &mut TableReport,
    files: &mut [StoredFile],
    dups: &[Duplicate],
) -> Result<()> {
    let id_column = kind.def().id_column.unwrap_or("id");
    let examples: std::collections::BTreeSet<u64> = dups
        .iter()
        .take(crate::model::report::MAX_EXAMPLES)
        .map(|d| d.ordinal)
        .collect();
    let mut values: BTreeMap<u64, String> = BTreeMap::new();
    let mut time_unknown = 0u64;
    let (mut start, mut next) = (0u64, 0usize);
    for f in files.iter_mut() {
        let end = start + f.rows;
        let first = next;
        while next < dups.len() && dups[next].ordinal < end {
            next += 1;
        }
        if next > first {
            let drop: std::collections::HashSet<u64> = dups[first..next]
                .iter()
                .map(|d| d.ordinal - start)
                .collect();
            let shown = examples.range(start..end).map(|o| o - start).collect();
            let done = drop_rows(root, f, kind, schema, options, &drop, &shown)?;
            time_unknown += done.time_unknown;
            values.extend(done.values.into_iter().map(|(i, v)| (start + i, v)));
        }
        start = end;
    }
    reject_duplicates(report, time_unknown, dups.len(), &|i| Example {
        source: dups[i].source.clone(),
        row: dups[i].row,
        column: id_column.to_string(),
        value: values.get(&dups[i].ordinal).cloned().unwrap_or_default(),
    });
    Ok(())
}

/// Count `n` later occurrences of ids, taken out of a table's files, in
/// its report: no longer accepted (`time_unknown` of them without a time
/// of day), rejected as duplicate ids with the first ones as examples.
pub(crate) fn reject_duplicates(
    report: &mut TableReport,
    time_unknown: u64,
    n: usize,
    example: &dyn Fn(usize) -> Example,
) {
    report.rows_accepted -= n as u64;
    report.time_unknown -= time_unknown;
    for i in 0..n {
        report.reject(Reason::DuplicateId, || example(i));
    }
}

/// What [`drop_rows`] took out of a file.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Dropped {
    /// Rows taken out whose time of day was unknown.
    pub(crate) time_unknown: u64,
    /// The ids of the rows asked for as examples, by their position in
    /// the file.
    pub(crate) values: BTreeMap<u64, String>,
}

/// Rewrite the store file `f` (under `root`) without the rows at the
/// positions `drop` (0-based, in the file), through a temporary file
/// renamed over it; `f`'s rows and bytes are updated.
pub(crate) fn drop_rows(
    root: &Path,
    f: &mut StoredFile,
    kind: TableKind,
    schema: &SchemaRef,
    options: &IngestOptions,
    drop: &std::collections::HashSet<u64>,
    examples: &std::collections::BTreeSet<u64>,
) -> Result<Dropped> {
    use arrow::array::{Array, BooleanArray, StringArray};
    let id_at = kind.def().id_column.and_then(|c| schema.index_of(c).ok());
    let tk_at = schema.index_of(crate::model::schema::TIME_KNOWN).ok();
    let path = root.join(&f.path);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?,
    )?
    .build()?;
    let (tmp, out) = crate::io::output::create_temp_file_in(&path)?;
    let mut done = Dropped::default();
    let written = (|| {
        let mut w = ArrowWriter::try_new(
            out,
            schema.clone(),
            Some(writer_properties(kind, schema, options)),
        )?;
        let mut at = 0u64;
        for b in reader {
            let b = b?;
            let ids = id_at.and_then(|i| b.column(i).as_any().downcast_ref::<StringArray>());
            let tk = tk_at.and_then(|i| b.column(i).as_any().downcast_ref::<BooleanArray>());
            let keep: BooleanArray = (0..b.num_rows())
                .map(|i| {
                    let o = at + i as u64;
                    if !drop.contains(&o) {
                        return Some(true);
                    }
                    if let (true, Some(ids)) = (examples.contains(&o), ids) {
                        done.values.insert(o, ids.value(i).to_string());
                    }
                    if tk.is_some_and(|t| t.is_valid(i) && !t.value(i)) {
                        done.time_unknown += 1;
                    }
                    Some(false)
                })
                .collect();
            w.write(&arrow::compute::filter_record_batch(&b, &keep)?)?;
            at += b.num_rows() as u64;
        }
        w.close()?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    f.rows -= drop.len() as u64;
    f.bytes = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    Ok(done)
}

/// Writes the accepted batches of one table into numbered Parquet files
/// (`TABLE/STEM-NNNNN.parquet`). Each file is written under a temporary
/// name and renamed when closed, so a file of a store is complete or absent.
pub(crate) struct TableWriter {
    root: PathBuf,
    table: &'static str,
    stem: String,
    pub(crate) schema: SchemaRef,
    options: IngestOptions,
    properties: WriterProperties,
    current: Option<(ArrowWriter<std::fs::File>, String, PathBuf, u64)>,
    files: Vec<StoredFile>,
}

impl TableWriter {
    pub(crate) fn new(
        root: &Path,
        kind: TableKind,
        tz: &str,
        options: &IngestOptions,
    ) -> Result<Self> {
        Self::with_stem(root, kind, tz, options, "part")
    }

    /// A writer whose files are named `STEM-NNNNN.parquet`.
    pub(crate) fn with_stem(
        root: &Path,
        kind: TableKind,
        tz: &str,
        options: &IngestOptions,
        stem: &str,
    ) -> Result<Self> {
        let dir = root.join(kind.name());
        create_dir_in(&dir)?;
        let schema = kind.def().arrow_schema(tz);
        Ok(TableWriter {
            root: root.to_path_buf(),
            table: kind.name(),
            stem: stem.to_string(),
            properties: writer_properties(kind, &schema, options),
            schema,
            options: options.clone(),
            current: None,
            files: vec![],
        })
    }

    pub(crate) fn write(&mut self, b: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < b.num_rows() {
            if self.current.is_none() {
                self.open_file(Some(self.properties.clone()))?;
            }
            let Some((w, _, _, rows)) = self.current.as_mut() else {
                return Err(Error::option("store", "no file is open"));
            };
            let room = self.options.rows_per_file.saturating_sub(*rows).max(1);
            let take = (b.num_rows() - offset).min(usize::try_from(room).unwrap_or(usize::MAX));
            w.write(&b.slice(offset, take))?;
            *rows += take as u64;
            offset += take;
            if *rows >= self.options.rows_per_file {
                self.close_file()?;
            }
        }
        Ok(())
    }

    fn open_file(&mut self, properties: Option<WriterProperties>) -> Result<()> {
        let rel = format!(
            "{}/{}-{:05}.parquet",
            self.table,
            self.stem,
            self.files.len()
        );
        let (tmp, file) = crate::io::output::create_temp_file_in(&self.root.join(&rel))?;
        let w = ArrowWriter::try_new(file, self.schema.clone(), properties)?;
        self.current = Some((w, rel, tmp, 0));
        Ok(())
    }

    fn close_file(&mut self) -> Result<()> {
        if let Some((w, rel, tmp, rows)) = self.current.take() {
            w.close()?;
            let path = self.root.join(&rel);
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
            let bytes = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            self.files.push(StoredFile {
                path: rel,
                rows,
                bytes,
            });
        }
        Ok(())
    }

    /// Close the last file. A table with no accepted rows still gets one
    /// (empty) file, so that every engine reading the store finds its schema.
    pub(crate) fn finish(mut self) -> Result<Vec<StoredFile>> {
        if self.files.is_empty() && self.current.is_none() {
            self.open_file(None)?;
        }
        self.finish_written()
    }

    /// Close the last file; no file when no row was written.
    pub(crate) fn finish_written(mut self) -> Result<Vec<StoredFile>> {
        self.close_file()?;
        Ok(std::mem::take(&mut self.files))
    }
}

impl Drop for TableWriter {
    /// A writer given up (an error, a cancelled task) leaves no temporary
    /// file.
    fn drop(&mut self) {
        if let Some((_, _, tmp, _)) = self.current.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Create the directory `dir` inside an existing one (not the parents: a
/// task still running after its ingest failed and removed its temporary
/// directory must not create it again).
pub(crate) fn create_dir_in(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

/// Validate the dataset at `path` (a directory, a mapping file) and write it
/// as a store at `out`, replacing a store already there. `progress` hears
/// every table's progress, from several threads.
pub fn ingest(
    path: &Path,
    timezone: Option<&str>,
    out: &Path,
    options: &IngestOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Manifest> {
    let p = prepare(path, timezone, out, options)?;
    let written = write_tables(&p.inputs, &p.tz, &p.tmp, options, progress)
        .and_then(|tables| p.manifest(path, tables));
    p.commit(out, written)
}

/// An ingest under way: its inputs, the store's lock and the temporary
/// directory the store is written in.
pub(crate) struct Prepared {
    pub(crate) mapping: Option<crate::io::mapping::Mapping>,
    pub(crate) inputs: BTreeMap<TableKind, TableInput>,
    pub(crate) tz: String,
    pub(crate) tmp: PathBuf,
    _lock: Option<std::fs::File>,
}

/// Check an ingest's arguments, resolve its inputs, lock the store and
/// create the temporary directory it is written in.
pub(crate) fn prepare(
    path: &Path,
    timezone: Option<&str>,
    out: &Path,
    options: &IngestOptions,
) -> Result<Prepared> {
    if is_store(path) {
        return Err(Error::option(
            "data",
            format!("{} is already a store", path.display()),
        ));
    }
    if options.rows_per_file == 0 || options.row_group_rows == 0 {
        return Err(Error::option(
            "rows_per_file",
            "files and row groups need a positive number of rows",
        ));
    }
    if out.exists() && !is_store(out) && !is_empty_dir(out) {
        return Err(Error::option(
            "out",
            format!(
                "{} exists and is not a store: choose a new directory",
                out.display()
            ),
        ));
    }
    let (mapping, inputs) = crate::io::inputs::resolve_inputs(path, OnTableError::Fail)?;
    let lock = lock_store(out, true, options.lock_wait)?;
    let tz = timezone
        .map(str::to_string)
        .or_else(|| mapping.as_ref().and_then(|m| m.timezone.clone()))
        .unwrap_or_else(|| DEFAULT_TIMEZONE.to_string());
    crate::model::time::parse_tz(&tz)?;
    let tmp = sibling(out, "tmp")?;
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    Ok(Prepared {
        mapping,
        inputs,
        tz,
        tmp,
        _lock: lock,
    })
}

impl Prepared {
    /// The manifest of the tables written, written into the temporary
    /// directory.
    pub(crate) fn manifest(&self, path: &Path, tables: Written) -> Result<Manifest> {
        let mut report = ValidationReport {
            timezone: self.tz.clone(),
            tables: BTreeMap::new(),
        };
        let mut stored = BTreeMap::new();
        for (kind, (rep, files)) in tables {
            stored.insert(
                kind.name().to_string(),
                StoredTable {
                    rows: rep.rows_accepted,
                    files,
                },
            );
            report.tables.insert(kind.name().to_string(), rep);
        }
        let m = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            timezone: self.tz.clone(),
            source: path.display().to_string(),
            roster: self.mapping.as_ref().and_then(|m| m.roster.clone()),
            report,
            tables: stored,
        };
        let text =
            serde_json::to_vec_pretty(&m).map_err(|e| Error::option("manifest", e.to_string()))?;
        crate::io::output::write_atomic(&self.tmp.join(MANIFEST), &text)?;
        Ok(m)
    }

    /// Put the store in place when it was written whole; remove the
    /// temporary directory otherwise.
    pub(crate) fn commit(self, out: &Path, written: Result<Manifest>) -> Result<Manifest> {
        // A store that is not put in place is removed when `self` drops.
        let m = written?;
        replace_dir(&self.tmp, out)?;
        Ok(m)
    }
}

impl Drop for Prepared {
    /// An ingest that ends without its store in place (an error, or its
    /// future dropped: a runner's timeout) leaves no temporary directory.
    fn drop(&mut self) {
        if self.tmp.exists() {
            remove_all(&self.tmp);
        }
    }
}

/// The report and files of every table written.
pub(crate) type Written = Vec<(TableKind, (TableReport, Vec<StoredFile>))>;

fn write_tables(
    inputs: &BTreeMap<TableKind, TableInput>,
    tz: &str,
    root: &Path,
    options: &IngestOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Written> {
    let total = |input: &TableInput| -> Option<u64> {
        input.sources.iter().map(source_rows).sum::<Option<u64>>()
    };
    let (mut out, extents) = write_cells(inputs, tz, root, options, progress)?;
    let rest = for_each_table(inputs, &|kind, input| {
        fail_on_missing(kind, input)?;
        let rows_total = total(input);
        let mut w = TableWriter::new(root, kind, tz, options)?;
        let spill = match kind.def().id_column {
            Some(_) => Some(IdSpill::new(&root.join(format!(".ids-{}", kind.name())))?),
            None => None,
        };
        let (mut rep, spill) = stream_table(
            TableStream {
                kind,
                tz,
                mapping: input.mapping.as_ref(),
                sources: &input.sources,
                extents: extents.clone(),
                spill,
            },
            &mut |b| w.write(&b),
            &mut |rows_read| {
                progress(Progress {
                    table: kind.name(),
                    rows_read,
                    rows_total,
                    done: false,
                });
            },
        )?;
        let schema = w.schema.clone();
        let mut files = w.finish()?;
        if let Some(spill) = spill {
            let groups = spill.candidates()?;
            let wanted: std::collections::BTreeSet<u64> =
                groups.iter().flatten().map(|d| d.ordinal).collect();
            let ids = ids_at(root, kind, &files, &wanted)?;
            let dups = crate::io::dedup::confirm(groups, &|o| ids.get(&o).cloned());
            if !dups.is_empty() {
                remove_duplicates(root, kind, &schema, options, &mut rep, &mut files, &dups)?;
            }
        }
        progress(Progress {
            table: kind.name(),
            rows_read: rep.rows_read,
            rows_total,
            done: true,
        });
        Ok((rep, files))
    });
    for (kind, r) in rest {
        out.push((kind, r?));
    }
    Ok(out)
}

/// The site plan, first and in memory: the other tables' coordinates are
/// checked against its extents.
pub(crate) fn write_cells(
    inputs: &BTreeMap<TableKind, TableInput>,
    tz: &str,
    root: &Path,
    options: &IngestOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Written, SiteExtents)> {
    let Some(input) = inputs.get(&TableKind::Cells) else {
        return Ok((Vec::new(), SiteExtents::default()));
    };
    fail_on_missing(TableKind::Cells, input)?;
    let (batches, rep) = load_table(
        TableKind::Cells,
        tz,
        input.mapping.as_ref(),
        &input.sources,
        SiteExtents::default(),
    )?;
    let extents = site_extents(&batches);
    let mut w = TableWriter::new(root, TableKind::Cells, tz, options)?;
    for b in &batches {
        w.write(b)?;
    }
    progress(Progress {
        table: TableKind::Cells.name(),
        rows_read: rep.rows_read,
        rows_total: Some(rep.rows_read),
        done: true,
    });
    Ok((vec![(TableKind::Cells, (rep, w.finish()?))], extents))
}

pub(crate) fn fail_on_missing(kind: TableKind, input: &TableInput) -> Result<()> {
    match &input.error {
        Some(e) => Err(e.in_table(kind.name())),
        None => Ok(()),
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// A fresh temporary name beside `path` (see [`crate::io::output::temp_sibling`]).
fn sibling(path: &Path, what: &str) -> Result<PathBuf> {
    if path.file_name().is_none() {
        return Err(Error::option(
            "out",
            format!("{} has no name", path.display()),
        ));
    }
    crate::io::output::temp_sibling(path, what)
}

/// Remove the directory `dir` of an ingest that failed. Tasks of the
/// ingest may still be finishing a file in it (on a distributed engine, or
/// a blocking thread here), so a removal that finds a new entry is tried
/// again, for up to ten seconds.
fn remove_all(dir: &Path) {
    for _ in 0..100 {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            _ => return,
        }
    }
}

/// Put the complete directory `tmp` at `out`, replacing what was there.
fn replace_dir(tmp: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        let old = sibling(out, "old")?;
        std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
        std::fs::rename(tmp, out).map_err(|e| Error::io(out, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    } else {
        if let Some(p) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
        }
        std::fs::rename(tmp, out).map_err(|e| Error::io(out, e))?;
    }
    Ok(())
}

/// Open a store: the site plan in memory, every other table read from its
/// files as queries run.
pub fn open(path: &Path, timezone: Option<&str>) -> Result<Dataset> {
    open_with(path, timezone, new_context(), false)
}

/// Open a store in a session of the caller's, such as a distributed
/// engine's (a Ballista `SessionContext::remote`): every table, the site plan
/// included, is registered as its files, since such a session can only
/// read files; the site plan is also read into memory for the analyses
/// that walk it. The files must be readable at the same paths by every
/// process of the engine.
pub fn open_in(path: &Path, timezone: Option<&str>, ctx: SessionContext) -> Result<Dataset> {
    open_with(path, timezone, ctx, true)
}

fn open_with(
    path: &Path,
    timezone: Option<&str>,
    ctx: SessionContext,
    files_only: bool,
) -> Result<Dataset> {
    let lock = lock_store(path, false, LOCK_WAIT)?;
    let m = manifest(path)?;
    if let Some(tz) = timezone.filter(|tz| *tz != m.timezone) {
        return Err(Error::option(
            "timezone",
            format!(
                "the store {} was read in timezone {}, not {tz}: ingest the dataset again with --timezone {tz}",
                path.display(),
                m.timezone
            ),
        ));
    }
    let root = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    verify_files(&root, &m)?;
    let mut memory = BTreeMap::new();
    let mut stored = BTreeMap::new();
    for kind in TableKind::ALL {
        let schema = kind.def().arrow_schema(&m.timezone);
        let files = m
            .tables
            .get(kind.name())
            .map(|t| t.files.as_slice())
            .unwrap_or_default();
        if kind == TableKind::Cells || files.is_empty() {
            let mut batches = Vec::new();
            for f in files {
                batches.extend(read_file(&root.join(&f.path))?);
            }
            if !files_only || files.is_empty() {
                let table = MemTable::try_new(schema.clone(), vec![batches.clone()])?;
                ctx.register_table(kind.name(), Arc::new(table))?;
                memory.insert(kind, (schema, batches));
                continue;
            }
            memory.insert(kind, (schema.clone(), batches));
        }
        let urls = files
            .iter()
            .map(|f| {
                let p = root.join(&f.path);
                ListingTableUrl::parse(p.to_string_lossy()).map_err(Error::from)
            })
            .collect::<Result<Vec<_>>>()?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        ctx.register_table(kind.name(), Arc::new(ListingTable::try_new(config)?))?;
        if kind != TableKind::Cells {
            stored.insert(kind, m.tables[kind.name()].rows);
        }
    }
    let ds = Dataset::from_session(ctx, m.timezone.clone(), m.report, memory, stored)
        .with_roster(m.roster)
        .with_lock(lock);
    Ok(if files_only {
        ds.in_remote_session()
    } else {
        ds
    })
}

/// Check every file of a store's manifest before reading any: it is inside
/// the store, exists, has the size the manifest gives, and its footer holds
/// the rows and the canonical columns of its table. A missing, truncated or
/// foreign file is an I/O error (exit 3), never a table read short.
fn verify_files(root: &Path, m: &Manifest) -> Result<()> {
    let corrupt = |p: &Path, msg: String| Error::Io {
        path: p.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{msg}; the store is damaged: ingest the dataset again"),
        ),
    };
    for (table, t) in &m.tables {
        let Some(kind) = TableKind::from_name(table) else {
            return Err(corrupt(
                root,
                format!("the manifest names an unknown table `{table}`"),
            ));
        };
        let columns: Vec<&str> = kind.def().columns.iter().map(|c| c.name).collect();
        for f in &t.files {
            let rel = Path::new(&f.path);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(corrupt(
                    root,
                    format!("the manifest lists `{}`, a path outside the store", f.path),
                ));
            }
            let p = root.join(rel);
            let meta = std::fs::metadata(&p).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    corrupt(
                        &p,
                        format!("listed in the manifest of `{table}` but missing"),
                    )
                } else {
                    Error::io(&p, e)
                }
            })?;
            if meta.len() != f.bytes {
                return Err(corrupt(
                    &p,
                    format!("{} bytes where the manifest says {}", meta.len(), f.bytes),
                ));
            }
            let file = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
            let footer = parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&file)
                .map_err(|e| corrupt(&p, format!("not a readable Parquet file ({e})")))?;
            let rows = u64::try_from(footer.file_metadata().num_rows()).unwrap_or(u64::MAX);
            if rows != f.rows {
                return Err(corrupt(
                    &p,
                    format!("{rows} rows where the manifest says {}", f.rows),
                ));
            }
            let names: Vec<&str> = footer
                .file_metadata()
                .schema_descr()
                .root_schema()
                .get_fields()
                .iter()
                .map(|c| c.name())
                .collect();
            if names != columns {
                return Err(corrupt(
                    &p,
                    format!(
                        "columns {} where `{table}` has {}",
                        names.join(", "),
                        columns.join(", ")
                    ),
                ));
            }
        }
        let in_files = t.files.iter().try_fold(0u64, |n, f| n.checked_add(f.rows));
        if in_files != Some(t.rows) {
            return Err(corrupt(
                root,
                format!(
                    "`{table}` has {} rows in the manifest but its files hold {in_files:?}",
                    t.rows
                ),
            ));
        }
    }
    // The validation report must add up and agree with the files.
    for (name, r) in &m.report.tables {
        let stored = m.tables.get(name).map_or(0, |t| t.rows);
        let adds_up = r.rows_accepted.checked_add(r.rows_rejected()) == Some(r.rows_read);
        if r.error.is_none() && (!adds_up || r.rows_accepted != stored) {
            return Err(corrupt(
                root,
                format!(
                    "the report of `{name}` says {} read, {} accepted, {} rejected, and the files hold {stored}",
                    r.rows_read,
                    r.rows_accepted,
                    r.rows_rejected()
                ),
            ));
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(65_536)
        .build()?;
    reader
        .map(|b| b.map_err(Error::from))
        .collect::<Result<Vec<_>>>()
}

impl Dataset {
    /// Open a dataset from a path: a mapping file (`.toml`), a directory with
    /// a `dataset.toml` mapping, or a directory of canonical files named after
    /// the tables (`incidents.parquet`, `hazards/…`, any supported format).
    #[cfg(feature = "native")]
    pub fn open(
        path: &std::path::Path,
        timezone: Option<&str>,
        on_error: OnTableError,
    ) -> Result<Dataset> {
        if is_store(path) {
            return open(path, timezone);
        }
        let (mapping, inputs) = crate::io::inputs::resolve_inputs(path, on_error)?;
        let tz = timezone
            .map(str::to_string)
            .or_else(|| mapping.as_ref().and_then(|m| m.timezone.clone()));
        Ok(Dataset::load(tz.as_deref(), inputs, on_error)?
            .with_roster(mapping.and_then(|m| m.roster)))
    }
}
