//! The file formats a source can be read in, and the text encodings of
//! CSV and NDJSON sources.

use crate::util::error::{Error, Result};

/// File formats that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// Comma (or other delimiter) separated values.
    Csv,
    /// Newline-delimited JSON.
    Ndjson,
    /// Arrow IPC file or stream.
    Arrow,
}

impl Format {
    /// Parse a format name.
    pub fn parse(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Ok(Format::Parquet),
            "csv" | "tsv" | "txt" => Ok(Format::Csv),
            "ndjson" | "jsonl" | "json" => Ok(Format::Ndjson),
            "arrow" | "ipc" | "feather" | "arrows" => Ok(Format::Arrow),
            other => Err(Error::option(
                "format",
                format!("unknown format `{other}` (parquet, csv, ndjson, arrow)"),
            )),
        }
    }

    /// Guess from a file name's extension.
    pub fn from_name(name: &str) -> Option<Format> {
        let ext = name.rsplit('.').next()?;
        Format::parse(ext).ok()
    }
}

/// Resolve a text-encoding label (`utf-8`, `latin-1`, `gbk`, `shift_jis`, …).
/// Latin-1 is read as Windows-1252, its superset, as browsers do.
pub fn resolve_encoding(label: &str) -> Option<&'static encoding_rs::Encoding> {
    let l = label.trim().to_ascii_lowercase();
    encoding_rs::Encoding::for_label(l.as_bytes()).or_else(|| {
        let compact: String = l
            .chars()
            .filter(|c| *c != '-' && *c != '_' && *c != ' ')
            .collect();
        match compact.as_str() {
            "latin1" | "iso88591" | "cp1252" | "windows1252" => Some(encoding_rs::WINDOWS_1252),
            "utf8" => Some(encoding_rs::UTF_8),
            "gbk" | "cp936" | "gb2312" => Some(encoding_rs::GBK),
            "gb18030" => Some(encoding_rs::GB18030),
            "big5" => Some(encoding_rs::BIG5),
            _ => encoding_rs::Encoding::for_label(compact.as_bytes()),
        }
    })
}
