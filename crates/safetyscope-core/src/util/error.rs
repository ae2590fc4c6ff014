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
    /// A chart could not be rasterised (PNG output).
    #[error("chart error: {0}")]
    Chart(String),
    /// A SQL query or a plan failed.
    #[error("query error: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
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
        match self.kind() {
            ErrorKind::Mapping | ErrorKind::InvalidOption => 2,
            ErrorKind::Io | ErrorKind::NotFound => 3,
            ErrorKind::Query => 4,
            _ => 1,
        }
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
            Error::Query(e) => match e {
                datafusion::error::DataFusionError::IoError(_) => ErrorKind::Io,
                _ => ErrorKind::Query,
            },
            Error::Arrow(_) | Error::Parquet(_) => ErrorKind::Data,
            // The chart output could not be produced: an output failure.
            Error::Chart(_) => ErrorKind::Io,
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
}
