//! Python bindings of safetyscope (`safetyscope._internal`). Thin by design:
//! every function converts arguments, calls `safetyscope-core` with the GIL
//! released and converts the result back. The Python package wraps these
//! classes with docstrings and conveniences.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use pyo3_arrow::PyTable;
use pyo3_arrow::input::AnyRecordBatch;
use safetyscope_core::{Dataset, Error, ErrorKind, OnTableError, TableKind};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("safetyscope")
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// Raise the Python exception class (defined in `safetyscope.errors`) that
/// matches an error.
fn to_py(e: Error) -> PyErr {
    let class = match e.kind() {
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::Io => "SafetyscopeIOError",
        ErrorKind::Schema => "SchemaError",
        ErrorKind::Data => "DataError",
        ErrorKind::Mapping => "MappingError",
        ErrorKind::InvalidOption => "OptionError",
        _ => "QueryError",
    };
    let msg = e.to_string();
    Python::attach(|py| {
        match py
            .import("safetyscope.errors")
            .and_then(|m| m.getattr(class))
        {
            Ok(cls) => match cls.call1((msg.clone(),)) {
                Ok(inst) => PyErr::from_value(inst),
                Err(err) => err,
            },
            Err(_) => PyRuntimeError::new_err(msg),
        }
    })
}

/// Run a future on the shared runtime with the GIL released, checking for
/// Ctrl-C (KeyboardInterrupt) every 200 ms so long queries can be cancelled.
fn wait<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = safetyscope_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime();
    let handle = rt.spawn(fut);
    let mut handle = Some(handle);
    loop {
        let h = handle.take().expect("handle present");
        let (res, h) = py.detach(|| {
            rt.block_on(async move {
                let mut h = h;
                match tokio::time::timeout(Duration::from_millis(200), &mut h).await {
                    Ok(r) => (Some(r), None),
                    Err(_) => (None, Some(h)),
                }
            })
        });
        match res {
            Some(Ok(r)) => return r.map_err(to_py),
            Some(Err(join)) => {
                // A panic is a bug, whatever the input: the library's own
                // base exception, with a request to report it.
                let msg = format!(
                    "internal error (a bug, not your input's fault): {join}; please report it"
                );
                return Err(Python::attach(|py| {
                    match py
                        .import("safetyscope.errors")
                        .and_then(|m| m.getattr("SafetyscopeError"))
                        .and_then(|cls| cls.call1((msg.clone(),)))
                    {
                        Ok(inst) => PyErr::from_value(inst),
                        Err(_) => PyRuntimeError::new_err(msg),
                    }
                }));
            }
            None => {
                let h = h.expect("pending handle");
                if let Err(e) = py.check_signals() {
                    h.abort();
                    return Err(e);
                }
                handle = Some(h);
            }
        }
    }
}

fn parse_options<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> PyResult<T> {
    serde_json::from_str(json).map_err(|e| to_py(Error::option(what, e.to_string())))
}

/// A result table (Arrow batches plus an optional SVG chart).
#[pyclass(frozen, module = "safetyscope._internal")]
struct RawResult {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    svg: Option<String>,
    document: Option<String>,
    report: String,
}

#[pymethods]
impl RawResult {
    /// Arrow C stream export (PyCapsule interface).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let table = PyTable::try_new(self.batches.clone(), self.schema.clone())?;
        let t = Bound::new(py, table)?;
        t.call_method1("__arrow_c_stream__", (requested_schema,))
    }

    /// Number of rows.
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Column names.
    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The SVG chart, if the analysis draws one.
    fn svg(&self) -> Option<String> {
        self.svg.clone()
    }

    /// The HTML document, if the analysis writes one (`report`).
    fn document(&self) -> Option<String> {
        self.document.clone()
    }

    /// The validation report of the dataset (JSON).
    fn validation_json(&self) -> String {
        self.report.clone()
    }
}

/// A loaded dataset.
#[pyclass(frozen, module = "safetyscope._internal")]
struct RawDataset {
    inner: Arc<Dataset>,
}

impl RawDataset {
    fn result(
        &self,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        svg: Option<String>,
    ) -> RawResult {
        RawResult {
            schema,
            batches,
            svg,
            document: None,
            report: self.report_json(),
        }
    }

    fn report_json(&self) -> String {
        serde_json::to_string(self.inner.report()).unwrap_or_else(|_| "{}".into())
    }
}

#[pymethods]
impl RawDataset {
    /// Open a dataset directory or mapping file.
    #[staticmethod]
    #[pyo3(signature = (path, timezone=None, lenient=false))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        timezone: Option<String>,
        lenient: bool,
    ) -> PyResult<Self> {
        let mode = if lenient {
            OnTableError::Report
        } else {
            OnTableError::Fail
        };
        let ds = py
            .detach(|| Dataset::open(&path, timezone.as_deref(), mode))
            .map_err(to_py)?;
        Ok(RawDataset {
            inner: Arc::new(ds),
        })
    }

    /// Load in-memory tables: a dict of table name → Arrow stream object.
    #[staticmethod]
    #[pyo3(signature = (tables, timezone=None, mapping=None))]
    fn from_tables(
        py: Python<'_>,
        tables: BTreeMap<String, AnyRecordBatch>,
        timezone: Option<String>,
        mapping: Option<String>,
    ) -> PyResult<Self> {
        let mut mem = BTreeMap::new();
        for (name, obj) in tables {
            let kind = TableKind::from_name(&name).ok_or_else(|| {
                to_py(Error::option(
                    "tables",
                    format!(
                        "unknown table `{name}`; canonical tables are {}",
                        TableKind::ALL.map(TableKind::name).join(", ")
                    ),
                ))
            })?;
            let reader = obj.into_reader()?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| to_py(Error::from(e)))?;
            mem.insert(kind, batches);
        }
        let mapping = match mapping {
            Some(text) => {
                Some(safetyscope_core::Mapping::from_toml(&text, ".", "mapping").map_err(to_py)?)
            }
            None => None,
        };
        let ds = py
            .detach(|| Dataset::from_batches(timezone.as_deref(), mem, mapping.as_ref()))
            .map_err(to_py)?;
        Ok(RawDataset {
            inner: Arc::new(ds),
        })
    }

    /// The dataset timezone.
    fn timezone(&self) -> String {
        self.inner.timezone().to_string()
    }

    /// The validation report as JSON.
    fn validation_json(&self) -> String {
        self.report_json()
    }

    /// Names of the tables provided.
    fn table_names(&self) -> Vec<String> {
        TableKind::ALL
            .into_iter()
            .filter(|k| self.inner.has_table(*k))
            .map(|k| k.name().to_string())
            .collect()
    }

    /// A canonical table.
    fn table(&self, py: Python<'_>, name: &str) -> PyResult<RawResult> {
        let kind = TableKind::from_name(name)
            .ok_or_else(|| to_py(Error::option("name", format!("unknown table `{name}`"))))?;
        let batches = if self.inner.is_stored(kind) {
            let ds = self.inner.clone();
            wait(py, async move { ds.collect(kind).await })?
        } else {
            self.inner.batches(kind).to_vec()
        };
        Ok(self.result(
            kind.def().arrow_schema(self.inner.timezone()),
            batches,
            None,
        ))
    }

    /// Run SQL over the canonical tables (queries only unless `allow_write`).
    #[pyo3(signature = (query, allow_write=false))]
    fn sql(&self, py: Python<'_>, query: String, allow_write: bool) -> PyResult<RawResult> {
        let ds = self.inner.clone();
        let (schema, batches) = wait(py, async move {
            let df = ds.sql_with(&query, allow_write).await?;
            let schema: SchemaRef = df.schema().inner().clone();
            Ok((schema, df.collect().await?))
        })?;
        Ok(self.result(schema, batches, None))
    }

    /// Run an analysis of the registry with its options as a JSON object
    /// (`targets_text`: the text of a CSV or TOML targets file, `label` its
    /// name, for `targets`).
    #[pyo3(signature = (name, options, targets_text=None, label=None))]
    fn run(
        &self,
        py: Python<'_>,
        name: String,
        options: &str,
        targets_text: Option<String>,
        label: Option<String>,
    ) -> PyResult<RawResult> {
        let mut o: serde_json::Map<String, serde_json::Value> =
            parse_options(options, &format!("{name} options"))?;
        if let Some(text) = targets_text {
            let label = label.unwrap_or_else(|| "targets".into());
            let targets = safetyscope_core::kpis::parse_targets(&text, &label).map_err(to_py)?;
            o.insert(
                "targets".into(),
                serde_json::to_value(targets).map_err(|e| PyValueError::new_err(e.to_string()))?,
            );
        }
        let ds = self.inner.clone();
        let out = wait(py, async move {
            safetyscope_core::api::run(&ds, &name, o).await
        })?;
        let mut r = self.result(out.schema, out.batches, out.chart);
        r.document = out.document;
        Ok(r)
    }
}

/// The registry of analyses as JSON: names, summaries, parameters and
/// options with their kinds, defaults and docs.
#[pyfunction]
fn registry_json() -> String {
    safetyscope_core::api::registry_json().to_string()
}

/// Rasterise an SVG chart to PNG bytes (`scale` 1.0 = one pixel per SVG unit).
#[pyfunction]
#[pyo3(signature = (svg, scale=2.0))]
fn svg_to_png<'py>(
    py: Python<'py>,
    svg: &str,
    scale: f32,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let svg = svg.to_string();
    let png = py
        .detach(move || safetyscope_core::output::chart_png(&svg, scale))
        .map_err(to_py)?;
    Ok(pyo3::types::PyBytes::new(py, &png))
}

/// Generate the sample dataset into a directory (options as JSON of
/// `GenerateOptions`); returns the ground truth as JSON.
#[pyfunction]
fn generate_sample(py: Python<'_>, out: PathBuf, options: &str) -> PyResult<String> {
    let o: safetyscope_core::generate::GenerateOptions =
        parse_options(options, "generate options")?;
    let truth = py
        .detach(|| safetyscope_core::generate::generate_to_dir(&out, &o))
        .map_err(to_py)?;
    serde_json::to_string(&truth).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Validate a dataset once into a store (canonical Parquet files plus the
/// validation report); returns the store's manifest as JSON.
#[pyfunction]
#[pyo3(signature = (data, out, timezone=None, rows_per_file=None))]
fn ingest(
    py: Python<'_>,
    data: PathBuf,
    out: PathBuf,
    timezone: Option<String>,
    rows_per_file: Option<u64>,
) -> PyResult<String> {
    let mut options = safetyscope_core::store::IngestOptions::default();
    if let Some(n) = rows_per_file {
        options.rows_per_file = n;
    }
    let manifest = py
        .detach(|| {
            safetyscope_core::store::ingest(&data, timezone.as_deref(), &out, &options, &|_| {})
        })
        .map_err(to_py)?;
    serde_json::to_string(&manifest).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A commented draft mapping for a data file (see `safetyscope map-init`).
#[pyfunction]
#[pyo3(signature = (path, table=None, mapping_dir=None))]
fn draft_mapping(
    py: Python<'_>,
    path: PathBuf,
    table: Option<String>,
    mapping_dir: Option<PathBuf>,
) -> PyResult<String> {
    py.detach(|| {
        safetyscope_core::io::draft::draft_mapping(&path, table.as_deref(), mapping_dir.as_deref())
    })
    .map_err(to_py)
}

/// The canonical data model as Markdown.
#[pyfunction]
fn data_model_markdown() -> String {
    safetyscope_core::schema::data_model_markdown()
}

/// The canonical table names, in load order.
#[pyfunction]
fn table_names() -> Vec<&'static str> {
    TableKind::ALL.map(TableKind::name).to_vec()
}

/// Allow (or forbid again) paths in mapping and job files that lead
/// outside the file's own directory.
#[pyfunction]
fn set_allow_outside(allow: bool) {
    safetyscope_core::confine::set_allow_outside(allow);
}

/// The `safetyscope._internal` module.
#[pymodule]
fn _internal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RawDataset>()?;
    m.add_class::<RawResult>()?;
    m.add_function(wrap_pyfunction!(generate_sample, m)?)?;
    m.add_function(wrap_pyfunction!(data_model_markdown, m)?)?;
    m.add_function(wrap_pyfunction!(table_names, m)?)?;
    m.add_function(wrap_pyfunction!(svg_to_png, m)?)?;
    m.add_function(wrap_pyfunction!(ingest, m)?)?;
    m.add_function(wrap_pyfunction!(registry_json, m)?)?;
    m.add_function(wrap_pyfunction!(set_allow_outside, m)?)?;
    m.add_function(wrap_pyfunction!(draft_mapping, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
