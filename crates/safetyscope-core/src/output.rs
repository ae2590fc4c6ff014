//! Writing results: Parquet, CSV, JSON and NDJSON by file extension, always
//! to a temporary name first and renamed into place when complete.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

/// Output formats of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Apache Parquet (Snappy).
    Parquet,
    /// CSV with a header.
    Csv,
    /// A JSON array of objects.
    Json,
    /// Newline-delimited JSON.
    Ndjson,
}

impl OutputFormat {
    /// From a path's extension.
    pub fn from_path(path: &std::path::Path) -> Result<OutputFormat> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet") => Ok(OutputFormat::Parquet),
            Some("csv") => Ok(OutputFormat::Csv),
            Some("json") => Ok(OutputFormat::Json),
            Some("ndjson" | "jsonl") => Ok(OutputFormat::Ndjson),
            _ => Err(Error::option(
                "out",
                format!(
                    "cannot tell the output format of {} (use .parquet, .csv, .json or .ndjson)",
                    path.display()
                ),
            )),
        }
    }
}

/// Encode batches in a format.
pub fn encode(
    batches: &[RecordBatch],
    schema: &SchemaRef,
    format: OutputFormat,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match format {
        OutputFormat::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .set_created_by("safetyscope".to_string())
                .build();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buf);
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(schema.clone());
                w.write(&empty)?;
            }
            for b in batches {
                w.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut buf);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            if buf.is_empty() {
                buf.extend_from_slice(b"[]");
            }
        }
        OutputFormat::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    Ok(buf)
}

/// Write bytes to `path` atomically: a temporary file in the same directory,
/// flushed, then renamed over the target.
#[cfg(feature = "native")]
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Rasterise an SVG chart to PNG (`scale` 1.0 = one pixel per SVG unit).
#[cfg(feature = "native")]
pub fn chart_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    safetyscope_render::svg_to_png(svg, scale).map_err(|e| Error::Chart(e.0))
}

/// Write a chart to `path` atomically: SVG text for `.svg`, a PNG image
/// (at twice the SVG size, sharp on projectors) for `.png`.
#[cfg(feature = "native")]
pub fn write_chart(path: &std::path::Path, svg: &str) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "svg" => write_atomic(path, svg.as_bytes()),
        "png" => write_atomic(path, &chart_png(svg, 2.0)?),
        _ => Err(Error::option(
            "chart",
            format!("{}: a chart is written as .svg or .png", path.display()),
        )),
    }
}

/// Write batches to a file whose format follows its extension.
#[cfg(feature = "native")]
pub fn write_batches(
    path: &std::path::Path,
    batches: &[RecordBatch],
    schema: &SchemaRef,
) -> Result<()> {
    let bytes = encode(batches, schema, OutputFormat::from_path(path)?)?;
    write_atomic(path, &bytes)
}
