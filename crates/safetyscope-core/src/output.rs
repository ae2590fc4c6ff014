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

/// The temporary name a file is written under before it is renamed to
/// `path`: hidden, in the same directory (created if missing), named after
/// the target and the process.
#[cfg(feature = "native")]
fn temp_path(path: &std::path::Path) -> Result<std::path::PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    Ok(dir.join(format!(".{name}.{}.tmp", std::process::id())))
}

/// Write bytes to `path` atomically: a temporary file in the same directory,
/// flushed, then renamed over the target.
#[cfg(feature = "native")]
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = temp_path(path)?;
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
    let mut sink = FileSink::create(path, schema)?;
    for b in batches {
        sink.write(b)?;
    }
    sink.finish()?;
    Ok(())
}

#[cfg(feature = "native")]
type Buffered = std::io::BufWriter<std::fs::File>;

/// The encoder of a [`FileSink`].
#[cfg(feature = "native")]
enum Encoder {
    Parquet(parquet::arrow::ArrowWriter<Buffered>),
    Csv(arrow::csv::Writer<Buffered>),
    Json(arrow::json::ArrayWriter<Buffered>),
    Ndjson(arrow::json::LineDelimitedWriter<Buffered>),
}

/// A result file written a batch at a time, so that a result larger than
/// memory can be written as it is computed: encoded straight into a
/// temporary file next to the target, renamed into place by
/// [`FileSink::finish`], removed if the sink is dropped unfinished.
#[cfg(feature = "native")]
pub struct FileSink {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    schema: SchemaRef,
    encoder: Option<Encoder>,
    rows: usize,
    batches: usize,
    /// Renamed into place.
    done: bool,
}

#[cfg(feature = "native")]
impl FileSink {
    /// Start writing `path` (format from its extension) with `schema`.
    pub fn create(path: &std::path::Path, schema: &SchemaRef) -> Result<FileSink> {
        let format = OutputFormat::from_path(path)?;
        let tmp = temp_path(path)?;
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let w = std::io::BufWriter::with_capacity(1 << 20, file);
        let encoder = match format {
            OutputFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_created_by("safetyscope".to_string())
                    .build();
                Encoder::Parquet(parquet::arrow::ArrowWriter::try_new(
                    w,
                    schema.clone(),
                    Some(props),
                )?)
            }
            OutputFormat::Csv => {
                Encoder::Csv(arrow::csv::WriterBuilder::new().with_header(true).build(w))
            }
            OutputFormat::Json => Encoder::Json(arrow::json::ArrayWriter::new(w)),
            OutputFormat::Ndjson => Encoder::Ndjson(arrow::json::LineDelimitedWriter::new(w)),
        };
        Ok(FileSink {
            path: path.to_path_buf(),
            tmp,
            schema: schema.clone(),
            encoder: Some(encoder),
            rows: 0,
            batches: 0,
            done: false,
        })
    }

    /// Append a batch.
    pub fn write(&mut self, b: &RecordBatch) -> Result<()> {
        match self.encoder.as_mut() {
            Some(Encoder::Parquet(w)) => w.write(b)?,
            Some(Encoder::Csv(w)) => w.write(b)?,
            Some(Encoder::Json(w)) => w.write(b)?,
            Some(Encoder::Ndjson(w)) => w.write(b)?,
            None => {}
        }
        self.rows += b.num_rows();
        self.batches += 1;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Complete the file, flush it to disk and rename it into place;
    /// returns its size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        use std::io::Write;
        let io = |e: std::io::Error| Error::io(&self.tmp, e);
        let mut w: Buffered = match self.encoder.take() {
            Some(Encoder::Parquet(w)) => w.into_inner()?,
            Some(Encoder::Csv(mut w)) => {
                if self.rows == 0 {
                    // The header alone.
                    w.write(&RecordBatch::new_empty(self.schema.clone()))?;
                }
                w.into_inner()
            }
            Some(Encoder::Json(mut w)) => {
                w.finish()?;
                let mut inner = w.into_inner();
                if self.batches == 0 {
                    // The writer opens the array with its first batch.
                    inner.write_all(b"[]").map_err(io)?;
                }
                inner
            }
            Some(Encoder::Ndjson(mut w)) => {
                w.finish()?;
                w.into_inner()
            }
            None => {
                return Err(Error::io(
                    &self.tmp,
                    std::io::Error::other("already finished"),
                ));
            }
        };
        w.flush().map_err(io)?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.done = true;
        Ok(size)
    }
}

#[cfg(feature = "native")]
impl Drop for FileSink {
    fn drop(&mut self) {
        // Unfinished (an error on the way): leave no partial file behind.
        if !self.done {
            self.encoder = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
