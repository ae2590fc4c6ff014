//! A dataset: the canonical tables registered in a DataFusion session, with
//! the validation report of how they were loaded.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::io::ingest::{MemoryTables, load_table};
use crate::io::inputs::OnTableError;
use crate::io::inputs::TableInput;
use crate::io::inputs::for_each_table;
use crate::io::loader::site_extents;
use crate::io::mapping::Mapping;
use crate::io::source::Source;
use crate::io::source::SourceData;
use crate::model::report::{TableReport, ValidationReport};
use crate::model::schema::TableKind;
use crate::model::time::DEFAULT_TIMEZONE;
use crate::session::context::new_context;
use crate::util::error::{Error, Result};

/// What [`Dataset::keep_facts`] keeps: set once by the analysis that
/// computes it, read back by downcasting.
pub(crate) type FactsCache = Arc<dyn std::any::Any + Send + Sync>;

/// Time spans by table and column.
type Spans = BTreeMap<(TableKind, String), Option<(i64, i64)>>;

/// Results kept by an interactive session, the latest last.
type Memo = std::collections::VecDeque<(String, RecordBatch)>;

/// How many results an interactive session keeps.
const MEMO_SIZE: usize = 16;

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
    /// Whether the session is the caller's (a distributed engine's, see
    /// `store::open_in`): its queries may run in other processes, so this
    /// one reads no table's files itself.
    remote: bool,
    roster: Option<crate::model::roster::Roster>,
    /// A value derived from the whole dataset once computed (the KPI
    /// facts), when kept (see [`Dataset::keep_facts`]). Held as `Any`: the
    /// session layer does not know the analyses above it.
    facts: Option<Arc<std::sync::OnceLock<FactsCache>>>,
    /// The latest results of analyses that others reuse (targets and the
    /// alerts of every site as of a date), when the facts are kept.
    memo: Option<Arc<std::sync::Mutex<Memo>>>,
    /// The latest instant of the dated tables once computed (the data do
    /// not change after loading): every analysis's default "now".
    latest: Arc<std::sync::OnceLock<Option<i64>>>,
    /// The first and last instant of each timestamp column asked for, once
    /// computed (see [`Dataset::time_span`]).
    spans: Arc<std::sync::Mutex<Spans>>,
    /// A shared lock on the store the dataset reads (held while it lives;
    /// a writer of the store waits for it).
    #[cfg_attr(not(feature = "native"), allow(dead_code))]
    lock: Option<Arc<std::fs::File>>,
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

impl Dataset {
    /// Load tables from their sources. The site plan (`cells`) is loaded
    /// first so that coordinates of the other tables can be checked.
    pub fn load(
        timezone: Option<&str>,
        inputs: BTreeMap<TableKind, TableInput>,
        on_error: OnTableError,
    ) -> Result<Dataset> {
        let tz = timezone.unwrap_or(DEFAULT_TIMEZONE).to_string();
        crate::model::time::parse_tz(&tz)?;
        let mut report = ValidationReport {
            timezone: tz.clone(),
            tables: BTreeMap::new(),
        };
        let mut tables = BTreeMap::new();
        let load_one =
            |kind: TableKind, input: &TableInput, extents: crate::io::loader::SiteExtents| {
                match &input.error {
                    Some(e) => Err(e.in_table(kind.name())),
                    None => load_table(kind, &tz, input.mapping.as_ref(), &input.sources, extents),
                }
            };
        // The site plan first: the other tables' coordinates are checked
        // against it. Then the other tables, in parallel where threads exist.
        let mut results = Vec::new();
        let mut extents: crate::io::loader::SiteExtents = Default::default();
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
                                error: Some(match &e {
                                    Error::Table { message, .. } => message.clone(),
                                    e => e.to_string(),
                                }),
                                error_kind: Some(e.kind().name().to_string()),
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
            remote: false,
            roster: None,
            facts: None,
            memo: None,
            latest: Default::default(),
            spans: Default::default(),
            lock: None,
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
            remote: false,
            roster: None,
            facts: None,
            memo: None,
            latest: Default::default(),
            spans: Default::default(),
            lock: None,
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
                        format: crate::io::format::Format::Arrow,
                        partitions: vec![],
                    }],
                    error: None,
                },
            );
        }
        crate::io::inputs::apply_plans(mapping, &mut inputs)?;
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
                Some(f) => crate::io::format::Format::parse(f)?,
                None => crate::io::format::Format::from_name(&name).ok_or_else(|| {
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
        crate::io::inputs::apply_plans(mapping, &mut inputs)?;
        let tz = timezone
            .map(str::to_string)
            .or_else(|| mapping.and_then(|m| m.timezone.clone()));
        Ok(Dataset::load(tz.as_deref(), inputs, OnTableError::Fail)?
            .with_roster(mapping.and_then(|m| m.roster.clone())))
    }

    /// Declare the sites' shift roster (from the mapping's `[roster]`).
    /// The dataset holding `lock` while it lives.
    #[cfg(feature = "native")]
    /// Marks the session as the caller's, whose queries may run in other
    /// processes (see the `remote` field).
    pub(crate) fn in_remote_session(mut self) -> Dataset {
        self.remote = true;
        self
    }

    /// Whether this process reads the table's files itself: a store's
    /// table in a local session (not a distributed engine's).
    pub(crate) fn reads_files_here(&self, kind: TableKind) -> bool {
        self.is_stored(kind) && !self.remote
    }

    pub(crate) fn with_lock(mut self, lock: Option<std::fs::File>) -> Dataset {
        self.lock = lock.map(Arc::new);
        self
    }

    /// Use this roster of shifts (from a store's manifest).
    pub fn with_roster(mut self, roster: Option<crate::model::roster::Roster>) -> Dataset {
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
        self.memo = Some(Arc::default());
        self
    }

    /// A result kept under `key` (see [`Dataset::keep_facts`]).
    pub(crate) fn recall(&self, key: &str) -> Option<RecordBatch> {
        let memo = self.memo.as_ref()?;
        let m = memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, b)| b.clone())
    }

    /// Keep a result under `key` when the dataset keeps facts (the oldest
    /// goes beyond [`MEMO_SIZE`]).
    pub(crate) fn remember(&self, key: String, batch: &RecordBatch) {
        let Some(memo) = &self.memo else { return };
        let mut m = memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.retain(|(k, _)| *k != key);
        m.push_back((key, batch.clone()));
        while m.len() > MEMO_SIZE {
            m.pop_front();
        }
    }

    /// The kept KPI facts, when [`Dataset::keep_facts`] is on.
    pub(crate) fn facts_cache(&self) -> Option<&std::sync::OnceLock<FactsCache>> {
        self.facts.as_deref()
    }

    /// The declared shift roster, if any.
    pub fn roster(&self) -> Option<&crate::model::roster::Roster> {
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

    /// Fail unless a site plan (the `cells` table, with at least one cell)
    /// is loaded: `analysis` compares cells with their neighbours and has
    /// nothing to compare without one.
    pub fn require_site_plan(&self, analysis: &str) -> Result<()> {
        if self.row_count(TableKind::Cells) > 0 {
            return Ok(());
        }
        Err(Error::data(
            "cells",
            format!(
                "{analysis} needs a site plan: a `cells` table giving each cell's site, row and \
                 col, or a `[[grid]]` in the mapping that bins coordinates into cells \
                 (docs/mapping.md); \
                 this dataset has {}",
                if self.has_table(TableKind::Cells) {
                    "an empty one"
                } else {
                    "none"
                }
            ),
        ))
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

    /// Run a query over the canonical tables (lazy). Read-only: DDL
    /// (`CREATE`, `DROP`), DML (`INSERT`, `COPY … TO`) and statements
    /// (`SET`) are refused with an option error; [`Dataset::sql_with`]
    /// allows them.
    #[cfg(feature = "native")]
    pub async fn sql(&self, query: &str) -> Result<DataFrame> {
        self.sql_with(query, false).await
    }

    /// Run SQL over the canonical tables (lazy); with `allow_write`, DDL,
    /// DML and `COPY` run too, and may write any file the process can.
    #[cfg(feature = "native")]
    pub async fn sql_with(&self, query: &str, allow_write: bool) -> Result<DataFrame> {
        let plan = self.ctx.state().create_logical_plan(query).await?;
        if !allow_write {
            datafusion::execution::context::SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false)
                .verify_plan(&plan)
                .map_err(|e| {
                    Error::option(
                        "sql",
                        format!(
                            "only queries run here (SELECT, WITH, EXPLAIN), not `{}` ({}); \
                             allow writes explicitly to run it (CLI `--allow-write`, \
                             Python `allow_write=True`)",
                            query
                                .split_whitespace()
                                .take(3)
                                .collect::<Vec<_>>()
                                .join(" "),
                            e.strip_backtrace()
                        ),
                    )
                })?;
        }
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// The first and last instant (µs) of a timestamp column, computed in the
    /// plan once per column (the data do not change after loading); `None`
    /// for an empty or absent table.
    pub async fn time_span(&self, kind: TableKind, column: &str) -> Result<Option<(i64, i64)>> {
        let key = (kind, column.to_string());
        let known = |s: &Self| {
            s.spans
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
                .copied()
        };
        if let Some(span) = known(self) {
            return Ok(span);
        }
        let span = self.compute_span(kind, column).await?;
        self.spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, span);
        Ok(span)
    }

    async fn compute_span(&self, kind: TableKind, column: &str) -> Result<Option<(i64, i64)>> {
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

    /// The latest instant (µs) of the incidents, hazards, violations,
    /// readings and positions; `None` without a dated row. Computed once.
    pub async fn latest_instant(&self) -> Result<Option<i64>> {
        if let Some(v) = self.latest.get() {
            return Ok(*v);
        }
        let mut latest = None;
        for (kind, c) in [
            (TableKind::Incidents, "occurred_at"),
            (TableKind::Hazards, "reported_at"),
            (TableKind::Violations, "detected_at"),
            (TableKind::Readings, "ts"),
            (TableKind::Positions, "ts"),
        ] {
            if let Some((_, m)) = self.time_span(kind, c).await? {
                latest = latest.max(Some(m));
            }
        }
        // Another call may have stored the same value meanwhile.
        let _ = self.latest.set(latest);
        Ok(latest)
    }

    /// The local files and directories the dataset was read from (each
    /// table's sources as reported; a store's part files), for checking
    /// that outputs do not overwrite them.
    pub fn input_paths(&self) -> Vec<std::path::PathBuf> {
        self.report
            .tables
            .values()
            .flat_map(|t| t.sources.iter())
            .filter(|s| !s.starts_with("memory:") && !s.contains("://"))
            .map(std::path::PathBuf::from)
            .collect()
    }

    /// The first table that was named but could not be loaded, as an error
    /// of the kind of its failure (a missing file is
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)).
    pub fn unusable_error(&self) -> Option<Error> {
        let t = self.report.tables.values().find(|t| t.error.is_some())?;
        let kind = crate::util::error::ErrorKind::ALL
            .into_iter()
            .find(|k| Some(k.name()) == t.error_kind.as_deref())
            .unwrap_or(crate::util::error::ErrorKind::Data);
        Some(Error::Table {
            table: t.table.clone(),
            kind,
            message: t.error.clone().unwrap_or_default(),
        })
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
