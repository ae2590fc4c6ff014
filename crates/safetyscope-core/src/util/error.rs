//! The one error type of `safetyscope-core`.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way a safetyscope operation can fail.
///
/// Messages name the table, column, row and value involved where there is one,
/// so that a user can find the offending record without a debugger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An object store could not be reached or refused a request
    /// (credentials, permissions, network).
    #[error("object store error on {url}: {message}")]
    Remote {
        /// The URL involved.
        url: String,
        /// The store's answer.
        message: String,
    },
    /// A path named by the user does not exist.
    #[error("not found: {0}")]
    NotFound(PathBuf),
    /// A table does not have the columns or types the canonical model needs.
    #[error("schema error in table `{table}`: {message}")]
    Schema {
        /// The canonical table.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// Data values that make a table unusable (as opposed to single bad rows,
    /// which are counted in the validation report).
    #[error("data error in table `{table}`: {message}")]
    Data {
        /// The canonical table.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// A mapping file is invalid.
    #[error("mapping error{}: {message}", location.as_deref().map(|l| format!(" in {l}")).unwrap_or_default())]
    Mapping {
        /// Where in the mapping (file, table, column).
        location: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Options given to an analysis are invalid.
    #[error("invalid option `{option}`: {message}")]
    InvalidOption {
        /// The option name.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// A named table could not be loaded; `kind` is the kind of the
    /// underlying failure (a missing file stays [`ErrorKind::NotFound`]).
    #[error("table `{table}` is unusable: {message}")]
    Table {
        /// The canonical table.
        table: String,
        /// The kind of the underlying failure.
        kind: ErrorKind,
        /// What went wrong.
        message: String,
    },
    /// A chart could not be rasterised (PNG output).
    #[error("chart error: {0}")]
    Chart(String),
    /// A SQL query or a plan failed.
    #[error("query error: {0}")]
    Query(#[source] datafusion::error::DataFusionError),
    /// Arrow failed to build or convert data.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet reading or writing failed.
    #[error("parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

impl Error {
    /// Build an [`Error::Io`] for a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(path)
        } else {
            Error::Io { path, source }
        }
    }

    /// Build an [`Error::Mapping`].
    pub fn mapping(location: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        Error::Mapping {
            location: location.into(),
            message: message.into(),
        }
    }

    /// Build an [`Error::Schema`].
    pub fn schema(table: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Schema {
            table: table.into(),
            message: message.into(),
        }
    }

    /// Build an [`Error::Data`].
    pub fn data(table: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Data {
            table: table.into(),
            message: message.into(),
        }
    }

    /// Build an [`Error::InvalidOption`].
    pub fn option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidOption {
            option: option.into(),
            message: message.into(),
        }
    }

    /// The documented exit code of the command-line tools for this error:
    /// 1 bad data, 2 bad usage or configuration, 3 a file could not be
    /// read or written, 4 a query failed.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }

    /// A table-level error of table `table` from `self`, keeping its kind.
    pub fn in_table(&self, table: &str) -> Error {
        Error::Table {
            table: table.to_string(),
            kind: self.kind(),
            message: self.to_string(),
        }
    }

    /// An own error raised inside a plan (by safetyscope's aggregate
    /// functions, plan nodes and their codecs), as DataFusion carries it:
    /// wrapped whole in this process, and tagged with its kind in its text
    /// across a distributed engine, so that [`Error`]'s `From` of
    /// DataFusion's error restores it either way.
    pub fn into_plan(self) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::External(Box::new(InPlan(self)))
    }

    /// The error of a plan's execution: one of safetyscope's own errors
    /// raised inside the plan as itself, with its kind, whether it comes
    /// from this process or (as text) from a distributed engine's
    /// executor; any other as a query error.
    pub(crate) fn from_plan(e: datafusion::error::DataFusionError) -> Error {
        use datafusion::error::DataFusionError;
        let e = match e {
            DataFusionError::External(b) => match b.downcast::<InPlan>() {
                Ok(own) => return own.0,
                Err(b) => match b.downcast::<Error>() {
                    Ok(own) => return *own,
                    Err(other) => DataFusionError::External(other),
                },
            },
            DataFusionError::Context(_, inner) => return Error::from_plan(*inner),
            e => e,
        };
        InPlan::restore(&format!("{e:?}")).unwrap_or(Error::Query(e))
    }

    /// A short machine-readable kind, used by the bindings to pick an
    /// exception class and by the CLI to pick an exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Remote { .. } => ErrorKind::Io,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Schema { .. } => ErrorKind::Schema,
            Error::Data { .. } => ErrorKind::Data,
            Error::Mapping { .. } => ErrorKind::Mapping,
            Error::InvalidOption { .. } => ErrorKind::InvalidOption,
            Error::Table { kind, .. } => *kind,
            // A failure whose cause is an operating-system I/O error (a full
            // disk, a vanished file) is an I/O error whatever layer reports it.
            Error::Query(_) | Error::Arrow(_) | Error::Parquet(_) if self.io_cause() => {
                ErrorKind::Io
            }
            Error::Query(datafusion::error::DataFusionError::ResourcesExhausted(_)) => {
                ErrorKind::Resources
            }
            Error::Query(_) => ErrorKind::Query,
            Error::Arrow(_) | Error::Parquet(_) => ErrorKind::Data,
            // The chart output could not be produced: an output failure.
            Error::Chart(_) => ErrorKind::Io,
        }
    }
}

impl Error {
    /// Whether an operating-system I/O error is among the causes.
    fn io_cause(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        let mut depth = 0;
        while let Some(e) = cause {
            if e.downcast_ref::<std::io::Error>().is_some() {
                return true;
            }
            if let Some(datafusion::error::DataFusionError::IoError(_)) =
                e.downcast_ref::<datafusion::error::DataFusionError>()
            {
                return true;
            }
            depth += 1;
            if depth > 32 {
                break;
            }
            cause = e.source();
        }
        false
    }
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Io,
        ErrorKind::NotFound,
        ErrorKind::Schema,
        ErrorKind::Data,
        ErrorKind::Mapping,
        ErrorKind::InvalidOption,
        ErrorKind::Query,
        ErrorKind::Resources,
    ];

    /// The documented exit code of the command-line tools: 1 bad data,
    /// 2 bad usage or configuration, 3 a file could not be read or
    /// written, 4 a query failed or ran out of its memory limit.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Mapping | ErrorKind::InvalidOption => 2,
            ErrorKind::Io | ErrorKind::NotFound => 3,
            ErrorKind::Query | ErrorKind::Resources => 4,
            ErrorKind::Schema | ErrorKind::Data => 1,
        }
    }

    /// The kind's name in reports (`not_found`, `io`, `schema`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Schema => "schema",
            ErrorKind::Data => "data",
            ErrorKind::Mapping => "mapping",
            ErrorKind::InvalidOption => "invalid_option",
            ErrorKind::Query => "query",
            ErrorKind::Resources => "resources",
        }
    }
}

/// Coarse classification of [`Error`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing failed.
    Io,
    /// A named path does not exist.
    NotFound,
    /// Columns or types are wrong.
    Schema,
    /// Values are wrong.
    Data,
    /// The mapping file is wrong.
    Mapping,
    /// An option value is wrong.
    InvalidOption,
    /// A query failed.
    Query,
    /// A query or an analysis needed more memory than its limit.
    Resources,
}

impl From<datafusion::error::DataFusionError> for Error {
    /// A plan's error: one of safetyscope's own raised inside the plan
    /// comes back as itself, with its kind.
    fn from(e: datafusion::error::DataFusionError) -> Error {
        Error::from_plan(e)
    }
}

/// An own error crossing a plan. A distributed engine hands a task's error
/// back as text (its debug form): that form tags the error's kind and
/// fields, `⟦safetyscope:KIND:FIELD⟧MESSAGE⟦/safetyscope⟧`, so that the
/// job runner restores the error with its kind and exit code
/// ([`Error::from_plan`]). Kinds other than options, schema and data
/// errors cross as their text.
pub(crate) struct InPlan(pub(crate) Error);

const TAG: &str = "⟦safetyscope:";
const END: &str = "⟦/safetyscope⟧";

impl InPlan {
    fn tagged(&self) -> Option<String> {
        let (kind, field, message) = match &self.0 {
            Error::InvalidOption { option, message } => ("invalid_option", option, message),
            Error::Schema { table, message } => ("schema", table, message),
            Error::Data { table, message } => ("data", table, message),
            _ => return None,
        };
        let clean = |t: &str| t.replace('⟦', "[").replace('⟧', "]");
        Some(format!(
            "{TAG}{kind}:{}⟧{}{END}",
            clean(field).replace(':', "_"),
            clean(message)
        ))
    }

    /// The error tagged in a message, if any.
    fn restore(text: &str) -> Option<Error> {
        let start = text.find(TAG)? + TAG.len();
        let rest = &text[start..];
        let (head, rest) = rest.split_once('⟧')?;
        let (kind, field) = head.split_once(':')?;
        let message = &rest[..rest.find(END)?];
        // A message that went through a debug form once more has its
        // quotes escaped.
        let message = message.replace("\\\"", "\"");
        Some(match kind {
            "invalid_option" => Error::option(field, message),
            "schema" => Error::schema(field, message),
            "data" => Error::data(field, message),
            _ => return None,
        })
    }
}

impl std::fmt::Debug for InPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tagged() {
            Some(t) => f.write_str(&t),
            None => write!(f, "{:?}", self.0),
        }
    }
}

impl std::fmt::Display for InPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tagged() {
            Some(t) => f.write_str(&t),
            None => write!(f, "{}", self.0),
        }
    }
}

impl std::error::Error for InPlan {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An option error raised in a plan comes back as itself, from this
    /// process and from an engine that only sends its debug text (nested
    /// as Ballista nests it).
    #[test]
    fn own_errors_cross_a_plan_with_their_kind() {
        use datafusion::error::DataFusionError;
        let own = || Error::option("resolution", "6000 × 6000 \"cells\" is too many");
        let back = Error::from_plan(own().into_plan());
        assert_eq!(back.kind(), ErrorKind::InvalidOption);
        assert_eq!(back.to_string(), own().to_string());
        let remote = format!(
            "Job 1 failed: Task failed: {:?}",
            DataFusionError::Shared(std::sync::Arc::new(own().into_plan()))
        );
        let back = Error::from_plan(DataFusionError::Execution(remote));
        assert_eq!(back.kind(), ErrorKind::InvalidOption);
        assert_eq!(back.to_string(), own().to_string());
        let data = Error::from_plan(Error::data("incidents", "bad").into_plan());
        assert_eq!(data.kind(), ErrorKind::Data);
        // Anything else stays a query error.
        let other = Error::from_plan(DataFusionError::Execution("boom".into()));
        assert_eq!(other.kind(), ErrorKind::Query);
    }

    fn full() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device")
    }

    #[test]
    fn io_failures_are_exit_3_whatever_layer_reports_them() {
        use datafusion::error::DataFusionError;
        let arrow = || arrow::error::ArrowError::IoError("write".into(), full());
        let cases = [
            Error::Arrow(arrow()),
            Error::Parquet(parquet::errors::ParquetError::External(Box::new(full()))),
            Error::Query(DataFusionError::ArrowError(Box::new(arrow()), None)),
            Error::Query(DataFusionError::Context(
                "writing".into(),
                Box::new(DataFusionError::IoError(full())),
            )),
            Error::io("/out/risk.csv", full()),
        ];
        for e in cases {
            assert_eq!(e.exit_code(), 3, "{e}");
            assert_eq!(e.kind(), ErrorKind::Io, "{e}");
        }
        // Without an I/O cause: bad data (1) and a failed query (4).
        let schema = arrow::error::ArrowError::SchemaError("x".into());
        assert_eq!(Error::Arrow(schema).exit_code(), 1);
        assert_eq!(
            Error::Query(DataFusionError::Plan("x".into())).exit_code(),
            4
        );
        let memory = Error::Query(DataFusionError::ResourcesExhausted("x".into()));
        assert_eq!(memory.kind(), ErrorKind::Resources);
        assert_eq!(memory.exit_code(), 4);
    }

    #[test]
    fn a_table_error_keeps_the_kind_of_its_cause() {
        let e =
            Error::io("/data/gone.csv", std::io::ErrorKind::NotFound.into()).in_table("incidents");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("incidents") && e.to_string().contains("gone.csv"));
        for k in ErrorKind::ALL {
            assert!(!k.name().is_empty());
        }
    }
}
