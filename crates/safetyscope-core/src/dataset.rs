//! A dataset: the canonical tables registered in a DataFusion session, with
//! the validation report of how they were loaded.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};
use crate::ingest::{MemoryTables, Source, SourceData, load_table, site_extents};
use crate::mapping::{Mapping, TableMapping};
use crate::report::{TableReport, ValidationReport};
use crate::schema::TableKind;
use crate::timeparse::DEFAULT_TIMEZONE;

/// What to do when a table cannot be loaded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTableError {
    /// Return the error (analyses).
    #[default]
    Fail,
    /// Record it in the report and register an empty table (validation).
    Report,
}

/// Run `f` on every table of `inputs` but the site plan, in parallel where
/// threads exist; results in table order.
pub(crate) fn for_each_table<T: Send>(
    inputs: &BTreeMap<TableKind, TableInput>,
    f: &(dyn Fn(TableKind, &TableInput) -> Result<T> + Sync),
) -> Vec<(TableKind, Result<T>)> {
    let rest: Vec<(TableKind, &TableInput)> = TableKind::ALL
        .into_iter()
        .filter(|k| *k != TableKind::Cells)
        .filter_map(|k| inputs.get(&k).map(|i| (k, i)))
        .collect();
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::thread::scope(|scope| {
            let handles: Vec<_> = rest
                .iter()
                .map(|(k, input)| (*k, scope.spawn(move || f(*k, input))))
                .collect();
            handles
                .into_iter()
                .map(|(k, h)| {
                    (
                        k,
                        h.join()
                            .unwrap_or_else(|_| Err(Error::data(k.name(), "loading panicked"))),
                    )
                })
                .collect()
        })
    }
    #[cfg(target_arch = "wasm32")]
    {
        rest.into_iter()
            .map(|(k, input)| (k, f(k, input)))
            .collect()
    }
}

/// Canonical tables in a DataFusion session plus their validation report.
#[derive(Clone)]
pub struct Dataset {
    ctx: SessionContext,
    timezone: String,
    report: ValidationReport,
    tables: BTreeMap<TableKind, (SchemaRef, Vec<RecordBatch>)>,
    /// Tables read from files by the session (a store) rather than held in
    /// memory, with their accepted rows.
    stored: BTreeMap<TableKind, u64>,
    roster: Option<crate::patterns::Roster>,
    /// The KPI facts of the whole dataset once computed, when kept (see
    /// [`Dataset::keep_facts`]).
    facts: Option<Arc<std::sync::OnceLock<Arc<crate::measure::Facts>>>>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("timezone", &self.timezone)
            .field(
                "tables",
                &self
                    .tables
                    .iter()
                    .map(|(k, (_, b))| {
                        (k.name(), b.iter().map(RecordBatch::num_rows).sum::<usize>())
                    })
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The memory the sessions of native builds may use for query state before
/// spilling to disk (0: no limit). Set once per process, before datasets
/// are opened (the CLI's `--memory-limit`).
static MEMORY_LIMIT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Limit the memory of every session created from now on to `bytes`
/// (sorts, joins and aggregations spill to the system's temporary directory
/// past it); `None` removes the limit. Fails when a runtime with that limit
/// cannot be built (no usable temporary directory to spill to).
pub fn set_memory_limit(bytes: Option<usize>) -> Result<()> {
    if let Some(limit) = bytes {
        limited_runtime(limit).map_err(|e| {
            Error::option(
                "memory-limit",
                format!("cannot limit memory to {limit} bytes: {e}"),
            )
        })?;
    }
    MEMORY_LIMIT.store(bytes.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn limited_runtime(
    limit: usize,
) -> datafusion::error::Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
    // Each spilling operator (sorts, aggregations) gets an even share of
    // what the others cannot spill, so two of them in one plan both spill
    // rather than the first starving the second; errors name the five
    // largest consumers.
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(limit),
        std::num::NonZeroUsize::new(5).expect("non-zero"),
    );
    datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
}

/// A DataFusion session configured for safetyscope (one partition on wasm32;
/// the memory limit of [`set_memory_limit`]).
///
/// Native sessions carry DataFusion's full function library and file
/// formats (the `sql` command and Python users query with them). The WASM
/// session registers none: every analysis builds its expressions from the
/// function objects directly, so the module links only the functions it
/// calls.
pub fn new_context() -> SessionContext {
    let mut config = SessionConfig::new();
    if cfg!(target_arch = "wasm32") {
        config = config.with_target_partitions(1);
    } else {
        config = config.with_information_schema(true);
    }
    let limit = MEMORY_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
    let runtime = match limit {
        0 => None,
        // Checked by `set_memory_limit`.
        _ => limited_runtime(limit).ok(),
    }
    .unwrap_or_default();
    let builder = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime);
    #[cfg(not(target_arch = "wasm32"))]
    let builder = builder.with_default_features();
    SessionContext::new_with_state(builder.build())
}

/// A stream of no batches (a table the dataset does not have).
pub(crate) fn empty_stream() -> datafusion::physical_plan::SendableRecordBatchStream {
    Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            Arc::new(arrow::datatypes::Schema::empty()),
            futures::stream::empty(),
        ),
    )
}

/// One table to load: its mapping (if any) and its sources.
#[derive(Debug, Clone, Default)]
pub struct TableInput {
    /// Column mapping and read options.
    pub mapping: Option<TableMapping>,
    /// Files, bytes or batches.
    pub sources: Vec<Source>,
    /// Set when the sources could not even be found.
    pub error: Option<String>,
}

impl Dataset {
    /// Load tables from their sources. The site plan (`cells`) is loaded
    /// first so that coordinates of the other tables can be checked.
    pub fn load(
        timezone: Option<&str>,
        inputs: BTreeMap<TableKind, TableInput>,
        on_error: OnTableError,
    ) -> Result<Dataset> {
        let tz = timezone.unwrap_or(DEFAULT_TIMEZONE).to_string();
        crate::timeparse::parse_tz(&tz)?;
        let mut report = ValidationReport {
            timezone: tz.clone(),
            tables: BTreeMap::new(),
        };
        let mut tables = BTreeMap::new();
        let load_one =
            |kind: TableKind, input: &TableInput, extents: crate::ingest::SiteExtents| match &input
                .error
            {
                Some(e) => Err(Error::data(kind.name(), e.clone())),
                None => load_table(kind, &tz, input.mapping.as_ref(), &input.sources, extents),
            };
        // The site plan first: the other tables' coordinates are checked
        // against it. Then the other tables, in parallel where threads exist.
        let mut results = Vec::new();
        let mut extents: crate::ingest::SiteExtents = Default::default();
        if let Some(input) = inputs.get(&TableKind::Cells) {
            let r = load_one(TableKind::Cells, input, Default::default());
            if let Ok((batches, _)) = &r {
                extents = site_extents(batches);
            }
            results.push((TableKind::Cells, r));
        }
        results.extend(for_each_table(&inputs, &|k, input| {
            load_one(k, input, extents.clone())
        }));
        for (kind, loaded) in results {
            let input = &inputs[&kind];
            match loaded {
                Ok((batches, rep)) => {
                    report.tables.insert(kind.name().to_string(), rep);
                    tables.insert(kind, (kind.def().arrow_schema(&tz), batches));
                }
                Err(e) => match on_error {
                    OnTableError::Fail => return Err(e),
                    OnTableError::Report => {
                        report.tables.insert(
                            kind.name().to_string(),
                            TableReport {
                                table: kind.name().to_string(),
                                sources: input.sources.iter().map(|s| s.label.clone()).collect(),
                                error: Some(e.to_string()),
                                ..Default::default()
                            },
                        );
                    }
                },
            }
        }
        Dataset::assemble(tz, tables, report)
    }

    fn assemble(
        timezone: String,
        mut tables: BTreeMap<TableKind, (SchemaRef, Vec<RecordBatch>)>,
        report: ValidationReport,
    ) -> Result<Dataset> {
        let ctx = new_context();
        for kind in TableKind::ALL {
            let (schema, batches) = tables
                .entry(kind)
                .or_insert_with(|| (kind.def().arrow_schema(&timezone), Vec::new()));
            let mem = MemTable::try_new(schema.clone(), vec![batches.clone()])?;
            ctx.register_table(kind.name(), Arc::new(mem))?;
        }
        Ok(Dataset {
            ctx,
            timezone,
            report,
            tables,
            stored: BTreeMap::new(),
            roster: None,
            facts: None,
        })
    }

    /// A dataset whose session already has every table registered: `memory`
    /// holds the tables kept in memory, `stored` the rows of those the session
    /// reads from files.
    #[cfg(feature = "native")]
    pub(crate) fn from_session(
        ctx: SessionContext,
        timezone: String,
        report: ValidationReport,
        memory: BTreeMap<TableKind, (SchemaRef, Vec<RecordBatch>)>,
        stored: BTreeMap<TableKind, u64>,
    ) -> Dataset {
        Dataset {
            ctx,
            timezone,
            report,
            tables: memory,
            stored,
            roster: None,
            facts: None,
        }
    }

    /// Load canonical tables given as Arrow batches (column names canonical,
    /// or mapped by `mapping`).
    pub fn from_batches(
        timezone: Option<&str>,
        tables: MemoryTables,
        mapping: Option<&Mapping>,
    ) -> Result<Dataset> {
        let mut inputs = BTreeMap::new();
        for (kind, batches) in tables {
            inputs.insert(
                kind,
                TableInput {
                    mapping: mapping.and_then(|m| m.tables.get(kind.name()).cloned()),
                    sources: vec![Source {
                        label: format!("memory:{}", kind.name()),
                        data: SourceData::Batches(batches),
                        format: crate::ingest::Format::Arrow,
                        partitions: vec![],
                    }],
                    error: None,
                },
            );
        }
        let tz = timezone
            .map(str::to_string)
            .or_else(|| mapping.and_then(|m| m.timezone.clone()));
        Ok(Dataset::load(tz.as_deref(), inputs, OnTableError::Fail)?
            .with_roster(mapping.and_then(|m| m.roster.clone())))
    }

    /// Load tables given as file bytes (the browser): `(table, file name, bytes)`.
    pub fn from_bytes(
        timezone: Option<&str>,
        files: Vec<(TableKind, String, bytes::Bytes)>,
        mapping: Option<&Mapping>,
    ) -> Result<Dataset> {
        let mut inputs: BTreeMap<TableKind, TableInput> = BTreeMap::new();
        for (kind, name, bytes) in files {
            let format = match mapping
                .and_then(|m| m.tables.get(kind.name()))
                .and_then(|t| t.format.as_deref())
            {
                Some(f) => crate::ingest::Format::parse(f)?,
                None => crate::ingest::Format::from_name(&name).ok_or_else(|| {
                    Error::option(
                        "format",
                        format!("cannot tell the format of `{name}` from its extension"),
                    )
                })?,
            };
            let e = inputs.entry(kind).or_default();
            e.mapping = mapping.and_then(|m| m.tables.get(kind.name()).cloned());
            e.sources.push(Source {
                label: name,
                data: SourceData::Bytes(bytes),
                format,
                partitions: vec![],
            });
        }
        let tz = timezone
            .map(str::to_string)
            .or_else(|| mapping.and_then(|m| m.timezone.clone()));
        Ok(Dataset::load(tz.as_deref(), inputs, OnTableError::Fail)?
            .with_roster(mapping.and_then(|m| m.roster.clone())))
    }

    /// Open a dataset from a path: a mapping file (`.toml`), a directory with
    /// a `dataset.toml` mapping, or a directory of canonical files named after
    /// the tables (`incidents.parquet`, `hazards/…`, any supported format).
    #[cfg(feature = "native")]
    pub fn open(
        path: &std::path::Path,
        timezone: Option<&str>,
        on_error: OnTableError,
    ) -> Result<Dataset> {
        if crate::store::is_store(path) {
            return crate::store::open(path, timezone);
        }
        let (mapping, inputs) = resolve_inputs(path, on_error)?;
        let tz = timezone
            .map(str::to_string)
            .or_else(|| mapping.as_ref().and_then(|m| m.timezone.clone()));
        Ok(Dataset::load(tz.as_deref(), inputs, on_error)?
            .with_roster(mapping.and_then(|m| m.roster)))
    }

    /// Declare the sites' shift roster (from the mapping's `[roster]`).
    pub fn with_roster(mut self, roster: Option<crate::patterns::Roster>) -> Dataset {
        self.roster = roster;
        self
    }

    /// Keep the rows the KPI and target analyses are computed from (incidents
    /// and violations per local day, hazards, activities, exposure) after the
    /// first such analysis, so that later ones only recompute their windows:
    /// for interactive sessions (the dashboard) that change the as-of date
    /// many times. Batch runs leave it off and hold nothing between
    /// analyses.
    pub fn keep_facts(mut self) -> Dataset {
        self.facts = Some(Arc::default());
        self
    }

    /// The kept KPI facts, when [`Dataset::keep_facts`] is on.
    pub(crate) fn facts_cache(&self) -> Option<&std::sync::OnceLock<Arc<crate::measure::Facts>>> {
        self.facts.as_deref()
    }

    /// The declared shift roster, if any.
    pub fn roster(&self) -> Option<&crate::patterns::Roster> {
        self.roster.as_ref()
    }

    /// The DataFusion session with every canonical table registered.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The dataset timezone.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The validation report.
    pub fn report(&self) -> &ValidationReport {
        &self.report
    }

    /// Whether a table was provided (as opposed to registered empty).
    pub fn has_table(&self, kind: TableKind) -> bool {
        self.report.tables.contains_key(kind.name())
    }

    /// Accepted rows of a table.
    pub fn row_count(&self, kind: TableKind) -> usize {
        if let Some(n) = self.stored.get(&kind) {
            return usize::try_from(*n).unwrap_or(usize::MAX);
        }
        self.tables
            .get(&kind)
            .map_or(0, |(_, b)| b.iter().map(RecordBatch::num_rows).sum())
    }

    /// Whether a table is read from files as it is queried (a store) rather
    /// than held in memory.
    pub fn is_stored(&self, kind: TableKind) -> bool {
        self.stored.contains_key(&kind)
    }

    /// The accepted batches of a table held in memory; empty for a table read
    /// from a store (see [`Dataset::is_stored`] and [`Dataset::collect`]).
    /// The site plan is always in memory.
    pub fn batches(&self, kind: TableKind) -> &[RecordBatch] {
        self.tables.get(&kind).map_or(&[], |(_, b)| b.as_slice())
    }

    /// Every accepted row of a table, in memory or read from its files.
    pub async fn collect(&self, kind: TableKind) -> Result<Vec<RecordBatch>> {
        if self.is_stored(kind) {
            Ok(self.table(kind).await?.collect().await?)
        } else {
            Ok(self.batches(kind).to_vec())
        }
    }

    /// A lazy DataFrame over a canonical table.
    pub async fn table(&self, kind: TableKind) -> Result<DataFrame> {
        Ok(self.ctx.table(kind.name()).await?)
    }

    /// Run SQL over the canonical tables (lazy).
    #[cfg(feature = "native")]
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        Ok(self.ctx.sql(query).await?)
    }

    /// The first and last instant (µs) of a timestamp column, computed in the
    /// plan; `None` for an empty or absent table.
    pub async fn time_span(&self, kind: TableKind, column: &str) -> Result<Option<(i64, i64)>> {
        use datafusion::functions_aggregate::expr_fn::{max, min};
        use datafusion::logical_expr::col;
        if !self.has_table(kind) {
            return Ok(None);
        }
        // min/max of the column itself, so that file statistics can answer.
        let b = self
            .table(kind)
            .await?
            .aggregate(
                vec![],
                vec![min(col(column)).alias("lo"), max(col(column)).alias("hi")],
            )?
            .collect()
            .await?;
        let value = |name: &str| {
            b.first()
                .and_then(|b| b.column_by_name(name))
                .and_then(|a| arrow::compute::cast(a, &arrow::datatypes::DataType::Int64).ok())
                .and_then(|a| {
                    use arrow::array::Array;
                    let a = a.as_any().downcast_ref::<arrow::array::Int64Array>()?;
                    (!a.is_empty() && !a.is_null(0)).then(|| a.value(0))
                })
        };
        Ok(value("lo").zip(value("hi")))
    }

    /// Tables that were named but could not be loaded, with the reason.
    pub fn unusable_tables(&self) -> Vec<(String, String)> {
        self.report
            .tables
            .values()
            .filter_map(|t| t.error.clone().map(|e| (t.table.clone(), e)))
            .collect()
    }
}

/// The mapping and the table inputs of a dataset path: a mapping file
/// (`.toml`), a directory with a `dataset.toml`, or a directory of canonical
/// files named after the tables.
#[cfg(feature = "native")]
pub(crate) fn resolve_inputs(
    path: &std::path::Path,
    on_error: OnTableError,
) -> Result<(Option<Mapping>, BTreeMap<TableKind, TableInput>)> {
    let url = crate::remote::url_of(path);
    let (mapping, base) = if let Some(u) = url {
        if u.ends_with(".toml") {
            let base = u.rsplit_once('/').map_or(u, |(b, _)| b);
            (
                Some(Mapping::from_toml(&crate::remote::read_text(u)?, base, u)?),
                std::path::PathBuf::from(base),
            )
        } else {
            let toml = format!("{}/dataset.toml", u.trim_end_matches('/'));
            let mapping = match crate::remote::exists(&toml)? {
                true => Some(Mapping::from_toml(
                    &crate::remote::read_text(&toml)?,
                    u,
                    &toml,
                )?),
                false => None,
            };
            (mapping, path.to_path_buf())
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
        (
            Some(Mapping::from_file(path)?),
            path.parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default(),
        )
    } else if path.is_dir() && path.join("dataset.toml").is_file() {
        (
            Some(Mapping::from_file(&path.join("dataset.toml"))?),
            path.to_path_buf(),
        )
    } else if path.is_dir() {
        (None, path.to_path_buf())
    } else if !path.exists() {
        return Err(Error::NotFound(path.to_path_buf()));
    } else {
        return Err(Error::option(
            "path",
            format!(
                "{} is neither a directory nor a .toml mapping file",
                path.display()
            ),
        ));
    };
    let mut inputs = BTreeMap::new();
    match &mapping {
        Some(m) => {
            for (name, t) in &m.tables {
                let kind = TableKind::from_name(name).expect("checked when parsing");
                let Some(p) = &t.path else {
                    return Err(Error::mapping(
                        Some(format!("[tables.{name}]")),
                        "`path` is required when opening from files",
                    ));
                };
                let full = crate::remote::join_location(&base, p);
                let fmt = t
                    .format
                    .as_deref()
                    .map(crate::ingest::Format::parse)
                    .transpose()?;
                let sources = match crate::ingest::discover(&full, fmt) {
                    Ok(s) => s,
                    Err(e) if on_error == OnTableError::Report => {
                        inputs.insert(
                            kind,
                            TableInput {
                                mapping: Some(t.clone()),
                                sources: vec![],
                                error: Some(e.to_string()),
                            },
                        );
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                inputs.insert(
                    kind,
                    TableInput {
                        mapping: Some(t.clone()),
                        sources,
                        error: None,
                    },
                );
            }
        }
        None if url.is_some() => {
            for (kind, table_url) in crate::remote::canonical_tables(url.unwrap_or_default())? {
                inputs.insert(
                    kind,
                    TableInput {
                        mapping: None,
                        sources: crate::remote::discover(&table_url, None)?,
                        error: None,
                    },
                );
            }
        }
        None => {
            for kind in TableKind::ALL {
                let mut found = None;
                for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
                    let p = entry.map_err(|e| Error::io(path, e))?.path();
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let is_dir_match =
                        p.is_dir() && p.file_name().is_some_and(|n| n == kind.name());
                    let is_file_match = p.is_file()
                        && stem == kind.name()
                        && crate::ingest::Format::from_name(&p.to_string_lossy()).is_some();
                    if is_dir_match || is_file_match {
                        found = Some(p);
                        break;
                    }
                }
                if let Some(p) = found {
                    inputs.insert(
                        kind,
                        TableInput {
                            mapping: None,
                            sources: crate::ingest::discover(&p, None)?,
                            error: None,
                        },
                    );
                }
            }
        }
    }
    if mapping.is_none() && inputs.is_empty() {
        return Err(Error::data(
            path.display().to_string(),
            format!(
                "no canonical table files found (expected e.g. incidents.parquet; tables: {})",
                TableKind::ALL.map(TableKind::name).join(", ")
            ),
        ));
    }
    Ok((mapping, inputs))
}
