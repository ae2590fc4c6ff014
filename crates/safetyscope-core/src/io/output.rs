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
            // Nulls are written as `null`: every row has every column.
            OutputFormat::Json => Writer::Json(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::JsonArray>(w),
            ),
            OutputFormat::Ndjson => Writer::Ndjson(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(w),
            ),
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

/// A fresh hidden name beside `path` for a temporary file or directory,
/// `.<name>.<pid>.<random>.<what>`: in the same directory (created if
/// missing), unpredictable to other users of the directory. Temporary
/// names of processes no longer running are removed first.
#[cfg(feature = "native")]
pub fn temp_sibling(path: &std::path::Path, what: &str) -> Result<std::path::PathBuf> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(temp_name(path, what))
}

#[cfg(feature = "native")]
fn parent_dir(path: &std::path::Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// [`temp_sibling`] without creating the directory.
#[cfg(feature = "native")]
fn temp_name(path: &std::path::Path, what: &str) -> std::path::PathBuf {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    remove_stale(&dir, &name);
    // RandomState is keyed from the operating system's random source.
    let random = std::collections::hash_map::RandomState::new().hash_one((
        std::time::SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ));
    dir.join(format!(
        ".{name}.{}.{random:016x}.{what}",
        std::process::id()
    ))
}

/// How long a temporary entry of a process that is not running here must
/// have been untouched before it is removed: a process of another PID
/// namespace (another container writing the same directory) is invisible
/// in `/proc`, and its live files must survive.
#[cfg(feature = "native")]
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Remove `.<name>.<pid>.….tmp|old` entries of `dir` left by a run that
/// was killed: their process is not running (Linux: no `/proc/<pid>`) and
/// they have not changed for [`STALE_AFTER`].
#[cfg(feature = "native")]
fn remove_stale(dir: &std::path::Path, name: &str) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let mut parts = rest.split('.');
        let (Some(pid), Some(_), Some(what), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !matches!(what, "tmp" | "old") || pid.parse::<u32>().is_err() {
            continue;
        }
        if std::path::Path::new("/proc").join(pid).exists() {
            continue;
        }
        let p = entry.path();
        // Never follow a link: the link itself is judged and removed.
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let idle = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if !idle {
            continue;
        }
        let _ = if meta.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// Create a temporary file beside `path`, exclusively: never an existing
/// file, never through a link planted at its name. Its directory is
/// created if missing.
#[cfg(feature = "native")]
pub fn create_temp_file(path: &std::path::Path) -> Result<(std::path::PathBuf, std::fs::File)> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    create_temp_file_in(path)
}

/// [`create_temp_file`] in a directory that must exist: a writer whose
/// directory was removed (its work given up) fails instead of creating it
/// again.
#[cfg(feature = "native")]
pub fn create_temp_file_in(path: &std::path::Path) -> Result<(std::path::PathBuf, std::fs::File)> {
    let mut last = None;
    for _ in 0..8 {
        let tmp = temp_name(path, "tmp");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(Error::io(&tmp, e)),
        }
    }
    match last {
        Some((tmp, e)) => Err(Error::io(&tmp, e)),
        None => Err(Error::io(path, std::io::Error::other("no temporary name"))),
    }
}

/// Write bytes to `path` atomically: a temporary file in the same directory,
/// flushed, then renamed over the target.
#[cfg(feature = "native")]
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let (tmp, mut f) = create_temp_file(path)?;
    let result = (|| {
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
/// (at twice the SVG size, sharp on projectors) for `.png`, and an HTML
/// document (the report) as it is for `.html`.
#[cfg(feature = "native")]
pub fn write_chart(path: &std::path::Path, svg: &str) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "svg" => write_atomic(path, svg.as_bytes()),
        "png" => write_atomic(path, &chart_png(svg, 2.0)?),
        "html" | "htm" if svg.trim_start().starts_with("<!doctype html>") => {
            write_atomic(path, svg.as_bytes())
        }
        _ => Err(Error::option(
            "chart",
            format!(
                "{}: a chart is written as .svg or .png (a document as .html)",
                path.display()
            ),
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
        let (tmp, file) = create_temp_file(path)?;
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

/// One result written to several files (formats) at once, a batch at a
/// time: the files are started at the first batch and completed together.
#[cfg(feature = "native")]
pub struct FileSinks<'p> {
    paths: &'p [std::path::PathBuf],
    sinks: Vec<FileSink>,
}

#[cfg(feature = "native")]
impl<'p> FileSinks<'p> {
    /// Sinks for `paths`, created at the first batch.
    pub fn new(paths: &'p [std::path::PathBuf]) -> FileSinks<'p> {
        FileSinks {
            paths,
            sinks: vec![],
        }
    }

    fn start(&mut self, schema: &SchemaRef) -> Result<()> {
        if self.sinks.is_empty() {
            for p in self.paths {
                self.sinks.push(FileSink::create(p, schema)?);
            }
        }
        Ok(())
    }

    /// Append a batch to every file.
    pub fn write(&mut self, b: RecordBatch) -> Result<()> {
        self.start(&b.schema())?;
        self.sinks.iter_mut().try_for_each(|s| s.write(&b))
    }

    /// Complete every file (with `schema` and no rows when no batch came);
    /// returns the rows and each file's size.
    pub fn finish(mut self, schema: &SchemaRef) -> Result<(usize, Vec<u64>)> {
        self.start(schema)?;
        let rows = self.sinks.first().map_or(0, FileSink::rows);
        let sizes = self
            .sinks
            .into_iter()
            .map(FileSink::finish)
            .collect::<Result<Vec<u64>>>()?;
        Ok((rows, sizes))
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

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_fresh_and_stale_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("risk.csv");
        let a = temp_sibling(&target, "tmp").unwrap();
        let b = temp_sibling(&target, "tmp").unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with(&format!(".risk.csv.{}.", std::process::id())),
            "{name}"
        );
        // Left by a process that no longer runs (pid 0 is never a user
        // process), a file and a directory; and one of this live process.
        let dead_file = dir.path().join(".risk.csv.0.00000000000000aa.tmp");
        let dead_dir = dir.path().join(".risk.csv.0.00000000000000bb.old");
        let live = dir.path().join(format!(
            ".risk.csv.{}.00000000000000cc.tmp",
            std::process::id()
        ));
        // A recent entry of a process not seen here may be another
        // container's live file: it stays.
        let recent = dir.path().join(".risk.csv.0.00000000000000dd.tmp");
        std::fs::write(&dead_file, b"x").unwrap();
        std::fs::create_dir(&dead_dir).unwrap();
        std::fs::write(dead_dir.join("part-0.parquet"), b"x").unwrap();
        std::fs::write(&live, b"x").unwrap();
        std::fs::write(&recent, b"x").unwrap();
        let old = std::time::SystemTime::now() - STALE_AFTER - std::time::Duration::from_secs(60);
        for p in [&dead_file, &dead_dir, &live] {
            std::fs::File::open(p).unwrap().set_modified(old).unwrap();
        }
        write_atomic(&target, b"a,b\n").unwrap();
        assert!(!dead_file.exists() && !dead_dir.exists());
        assert!(live.exists() && recent.exists());
        assert_eq!(std::fs::read(&target).unwrap(), b"a,b\n");
        // The target, the live process's file and the recent one remain.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
