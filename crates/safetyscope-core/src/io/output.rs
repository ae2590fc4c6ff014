//! Writing results: Parquet, CSV, JSON and NDJSON by file extension, always
//! to a temporary name first and renamed into place when complete.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::util::error::{Error, Result};

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
    let mut e = Encoder::new(Vec::new(), format, schema)?;
    for b in batches {
        e.write(b)?;
    }
    e.finish()
}

/// One format's writer over `W`, batch by batch (shared by [`encode`] and
/// the file sink).
struct Encoder<W: std::io::Write + Send> {
    writer: Writer<W>,
    schema: SchemaRef,
    batches: usize,
}

enum Writer<W: std::io::Write + Send> {
    Parquet(parquet::arrow::ArrowWriter<W>),
    Csv(arrow::csv::Writer<W>),
    Json(arrow::json::ArrayWriter<W>),
    Ndjson(arrow::json::LineDelimitedWriter<W>),
}

impl<W: std::io::Write + Send> Encoder<W> {
    fn new(w: W, format: OutputFormat, schema: &SchemaRef) -> Result<Encoder<W>> {
        let writer = match format {
            OutputFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_created_by("safetyscope".to_string())
                    .build();
                Writer::Parquet(parquet::arrow::ArrowWriter::try_new(
                    w,
                    schema.clone(),
                    Some(props),
                )?)
            }
            OutputFormat::Csv => {
                Writer::Csv(arrow::csv::WriterBuilder::new().with_header(true).build(w))
            }
            OutputFormat::Json => Writer::Json(arrow::json::ArrayWriter::new(w)),
            OutputFormat::Ndjson => Writer::Ndjson(arrow::json::LineDelimitedWriter::new(w)),
        };
        Ok(Encoder {
            writer,
            schema: schema.clone(),
            batches: 0,
        })
    }

    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        match &mut self.writer {
            Writer::Parquet(w) => w.write(b)?,
            Writer::Csv(w) => w.write(b)?,
            Writer::Json(w) => w.write(b)?,
            Writer::Ndjson(w) => w.write(b)?,
        }
        self.batches += 1;
        Ok(())
    }

    /// Complete the encoding (with no batch written: the CSV header alone,
    /// `[]` for JSON) and return the writer.
    fn finish(self) -> Result<W> {
        Ok(match self.writer {
            Writer::Parquet(w) => w.into_inner()?,
            Writer::Csv(mut w) => {
                if self.batches == 0 {
                    w.write(&RecordBatch::new_empty(self.schema))?;
                }
                w.into_inner()
            }
            // The writer closes an array it never opened as `[]`.
            Writer::Json(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Writer::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner()
            }
        })
    }
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

/// Write batches to a file whose format follows its extension; returns its
/// size in bytes.
#[cfg(feature = "native")]
pub fn write_batches(
    path: &std::path::Path,
    batches: &[RecordBatch],
    schema: &SchemaRef,
) -> Result<u64> {
    let mut sink = FileSink::create(path, schema)?;
    for b in batches {
        sink.write(b)?;
    }
    sink.finish()
}

#[cfg(feature = "native")]
type Buffered = std::io::BufWriter<std::fs::File>;

/// A result file written a batch at a time, so that a result larger than
/// memory can be written as it is computed: encoded straight into a
/// temporary file next to the target, renamed into place by
/// [`FileSink::finish`], removed if the sink is dropped unfinished.
#[cfg(feature = "native")]
pub struct FileSink {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    encoder: Option<Encoder<Buffered>>,
    rows: usize,
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
        let encoder = Encoder::new(
            std::io::BufWriter::with_capacity(1 << 20, file),
            format,
            schema,
        );
        let mut sink = FileSink {
            path: path.to_path_buf(),
            tmp,
            encoder: None,
            rows: 0,
            done: false,
        };
        // Dropped here, the sink removes its temporary file if the encoder
        // cannot start.
        sink.encoder = Some(encoder?);
        Ok(sink)
    }

    /// Append a batch.
    pub fn write(&mut self, b: &RecordBatch) -> Result<()> {
        if let Some(e) = self.encoder.as_mut() {
            e.write(b)?;
        }
        self.rows += b.num_rows();
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
        let Some(encoder) = self.encoder.take() else {
            return Err(io(std::io::Error::other("already finished")));
        };
        let mut w = encoder.finish()?;
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
