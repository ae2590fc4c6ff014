//! Sources of a table (files, globs, directories, Hive partitions, objects
//! on S3, bytes) and their Arrow record batches.

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;

use crate::io::format::{Format, resolve_encoding};
use crate::io::mapping::TableMapping;
use crate::util::error::{Error, Result};

/// Where the bytes of a source come from.
#[derive(Debug, Clone)]
pub enum SourceData {
    /// A file on disk.
    #[cfg(feature = "native")]
    Path(std::path::PathBuf),
    /// An object on an object store (`s3://…`).
    #[cfg(feature = "native")]
    Object(crate::io::remote::Object),
    /// Bytes in memory (uploads in the browser, tests).
    Bytes(Bytes),
    /// Arrow batches already in memory (from the bindings).
    Batches(Vec<RecordBatch>),
}

/// One input of a table.
#[derive(Debug, Clone)]
pub struct Source {
    /// Label used in reports (file path or `memory`).
    pub label: String,
    /// The data.
    pub data: SourceData,
    /// Format of the bytes (ignored for batches).
    pub format: Format,
    /// Hive partition values (`dt=2024-03-01` → `("dt", "2024-03-01")`),
    /// added as text columns.
    pub partitions: Vec<(String, String)>,
}

/// Options for reading text formats.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Text encoding label.
    pub encoding: Option<String>,
    /// CSV delimiter.
    pub delimiter: u8,
    /// CSV header line.
    pub has_header: bool,
    /// Rows per batch.
    pub batch_size: usize,
    /// Parquet only: read only these row groups (all when `None`).
    pub row_groups: Option<Vec<usize>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            encoding: None,
            delimiter: b',',
            has_header: true,
            batch_size: 65_536,
            row_groups: None,
        }
    }
}

impl ReadOptions {
    /// Options from a table mapping.
    pub fn from_mapping(m: &TableMapping) -> ReadOptions {
        ReadOptions {
            encoding: m.encoding.clone(),
            delimiter: m
                .delimiter
                .as_deref()
                .and_then(|d| d.bytes().next())
                .unwrap_or(b','),
            has_header: m.has_header.unwrap_or(true),
            ..ReadOptions::default()
        }
    }
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch>>>;

fn transcode(bytes: Bytes, encoding: Option<&str>, label: &str) -> Result<Bytes> {
    let Some(enc) = encoding else {
        return Ok(bytes);
    };
    let enc = resolve_encoding(enc)
        .ok_or_else(|| Error::option("encoding", format!("unknown encoding `{enc}`")))?;
    if enc == encoding_rs::UTF_8 {
        return Ok(bytes);
    }
    let (text, _, had_errors) = enc.decode(&bytes);
    if had_errors {
        return Err(Error::data(
            label,
            format!("bytes not valid in encoding {}", enc.name()),
        ));
    }
    Ok(Bytes::from(text.into_owned().into_bytes()))
}

fn strip_bom(bytes: Bytes) -> Bytes {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.slice(3..)
    } else {
        bytes
    }
}

fn csv_batches(bytes: Bytes, opts: &ReadOptions, label: &str) -> Result<BatchIter> {
    let bytes = strip_bom(transcode(bytes, opts.encoding.as_deref(), label)?);
    // Every CSV column is read as text: the mapping decides the types, so a
    // sentinel such as `?` in a number column is a counted null, not a failure.
    let fmt = arrow::csv::reader::Format::default()
        .with_header(opts.has_header)
        .with_delimiter(opts.delimiter);
    let (inferred, _) = fmt
        .infer_schema(Cursor::new(&bytes[..]), Some(0))
        .map_err(|e| Error::data(label, format!("cannot read CSV header: {e}")))?;
    let mut seen = HashSet::new();
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().trim().to_string();
            let mut unique = name.clone();
            let mut i = 2;
            while !seen.insert(unique.clone()) {
                unique = format!("{name}_{i}");
                i += 1;
            }
            Field::new(unique, DataType::Utf8, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = arrow::csv::ReaderBuilder::new(schema)
        .with_format(fmt)
        .with_batch_size(opts.batch_size)
        .with_truncated_rows(true)
        .build(Cursor::new(bytes))
        .map_err(|e| Error::data(label, format!("cannot read CSV: {e}")))?;
    let label = label.to_string();
    Ok(Box::new(reader.map(move |r| {
        r.map_err(|e| Error::data(&label, format!("CSV: {e}")))
    })))
}

/// Batches of a Parquet file read through its byte ranges (bytes in memory,
/// a local file or an object on a store), one row group's columns at a time.
fn parquet_reader_batches<R: parquet::file::reader::ChunkReader + 'static>(
    reader: R,
    opts: &ReadOptions,
    label: &str,
) -> Result<BatchIter> {
    use parquet::arrow::arrow_reader::{
        ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    // The Arrow schema a writer embeds is a hint: when it cannot be read
    // (some writers leave its buffers unaligned), the Parquet schema alone
    // gives the columns.
    let meta = ArrowReaderMetadata::load(&reader, ArrowReaderOptions::new())
        .or_else(|first| {
            ArrowReaderMetadata::load(
                &reader,
                ArrowReaderOptions::new().with_skip_arrow_metadata(true),
            )
            .map_err(|_| first)
        })
        .map_err(|e| Error::data(label, format!("not a readable Parquet file: {e}")))?;
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(reader, meta)
        .with_batch_size(opts.batch_size);
    if let Some(groups) = &opts.row_groups {
        let n = builder.metadata().num_row_groups();
        if let Some(g) = groups.iter().find(|&&g| g >= n) {
            return Err(Error::data(
                label,
                format!("has {n} row groups, not a row group {g}: it changed while it was read"),
            ));
        }
        builder = builder.with_row_groups(groups.clone());
    }
    let reader = builder.build()?;
    let label = label.to_string();
    Ok(Box::new(reader.map(move |r| {
        r.map_err(|e| Error::data(&label, format!("Parquet: {e}")))
    })))
}

fn ndjson_batches(bytes: Bytes, opts: &ReadOptions, label: &str) -> Result<BatchIter> {
    let bytes = strip_bom(transcode(bytes, opts.encoding.as_deref(), label)?);
    let (schema, _) = arrow::json::reader::infer_json_schema(Cursor::new(&bytes[..]), None)
        .map_err(|e| Error::data(label, format!("cannot infer NDJSON schema: {e}")))?;
    let reader = arrow::json::ReaderBuilder::new(Arc::new(schema))
        .with_batch_size(opts.batch_size)
        .build(Cursor::new(bytes))
        .map_err(|e| Error::data(label, format!("cannot read NDJSON: {e}")))?;
    let label = label.to_string();
    Ok(Box::new(reader.map(move |r| {
        r.map_err(|e| Error::data(&label, format!("NDJSON: {e}")))
    })))
}

fn ipc_batches(bytes: Bytes, label: &str) -> Result<BatchIter> {
    let label_owned = label.to_string();
    if bytes.starts_with(b"ARROW1") {
        let r = arrow::ipc::reader::FileReader::try_new(Cursor::new(bytes), None)
            .map_err(|e| Error::data(label, format!("Arrow IPC file: {e}")))?;
        Ok(Box::new(r.map(move |b| {
            b.map_err(|e| Error::data(&label_owned, format!("Arrow IPC: {e}")))
        })))
    } else {
        let r = arrow::ipc::reader::StreamReader::try_new(Cursor::new(bytes), None)
            .map_err(|e| Error::data(label, format!("Arrow IPC stream: {e}")))?;
        Ok(Box::new(r.map(move |b| {
            b.map_err(|e| Error::data(&label_owned, format!("Arrow IPC: {e}")))
        })))
    }
}

#[cfg(feature = "native")]
fn read_path_batches(
    path: &std::path::Path,
    format: Format,
    opts: &ReadOptions,
    label: &str,
) -> Result<BatchIter> {
    if format == Format::Parquet {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        return parquet_reader_batches(file, opts, label);
    }
    let bytes = Bytes::from(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    bytes_batches(bytes, format, opts, label)
}

fn bytes_batches(
    bytes: Bytes,
    format: Format,
    opts: &ReadOptions,
    label: &str,
) -> Result<BatchIter> {
    match format {
        Format::Parquet => parquet_reader_batches(bytes, opts, label),
        Format::Csv => csv_batches(bytes, opts, label),
        Format::Ndjson => ndjson_batches(bytes, opts, label),
        Format::Arrow => ipc_batches(bytes, label),
    }
}

/// Read a source as raw batches (partition columns appended).
pub fn read_source(src: &Source, opts: &ReadOptions) -> Result<BatchIter> {
    let iter: BatchIter = match &src.data {
        #[cfg(feature = "native")]
        SourceData::Path(p) => read_path_batches(p, src.format, opts, &src.label)?,
        #[cfg(feature = "native")]
        SourceData::Object(o) if src.format == Format::Parquet => {
            parquet_reader_batches(o.clone(), opts, &src.label)?
        }
        #[cfg(feature = "native")]
        SourceData::Object(o) => bytes_batches(o.bytes(&src.label)?, src.format, opts, &src.label)?,
        SourceData::Bytes(b) => bytes_batches(b.clone(), src.format, opts, &src.label)?,
        SourceData::Batches(b) => Box::new(b.clone().into_iter().map(Ok)),
    };
    if src.partitions.is_empty() {
        return Ok(iter);
    }
    let parts = src.partitions.clone();
    Ok(Box::new(iter.map(move |b| {
        let b = b?;
        let mut fields: Vec<Field> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
        for (k, v) in &parts {
            if b.schema().index_of(k).is_ok() {
                continue;
            }
            fields.push(Field::new(k, DataType::Utf8, true));
            cols.push(Arc::new(StringArray::from(vec![v.as_str(); b.num_rows()])));
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    })))
}

/// The rows of each row group of a Parquet source (a file or an object),
/// read from its footer; `None` for other sources and for a footer that
/// cannot be read (reading the source then says why).
#[cfg(feature = "native")]
pub fn parquet_row_groups(src: &Source) -> Option<Vec<u64>> {
    use parquet::file::metadata::ParquetMetaDataReader;
    if src.format != Format::Parquet {
        return None;
    }
    let meta = match &src.data {
        SourceData::Path(p) => {
            let file = std::fs::File::open(p).ok()?;
            ParquetMetaDataReader::new().parse_and_finish(&file).ok()?
        }
        SourceData::Object(o) => ParquetMetaDataReader::new().parse_and_finish(o).ok()?,
        _ => return None,
    };
    Some(
        meta.row_groups()
            .iter()
            .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
            .collect(),
    )
}

/// Expand a path, glob or directory into sources (native only).
#[cfg(feature = "native")]
pub fn discover(path: &std::path::Path, format: Option<Format>) -> Result<Vec<Source>> {
    use std::path::PathBuf;
    if let Some(url) = crate::io::remote::url_of(path) {
        return discover_url(url, format);
    }
    let text = path.to_string_lossy();
    let mut files: Vec<PathBuf> = Vec::new();
    if text.contains(['*', '?', '[']) {
        let g = glob::glob(&text)
            .map_err(|e| Error::option("path", format!("bad glob `{text}`: {e}")))?;
        for entry in g {
            files.push(entry.map_err(|e| {
                let p = e.path().to_path_buf();
                Error::io(p, e.into())
            })?);
        }
        if files.is_empty() {
            return Err(Error::NotFound(path.to_path_buf()));
        }
    } else if path.is_dir() {
        walk(path, &mut files)?;
    } else if path.exists() {
        files.push(path.to_path_buf());
    } else {
        return Err(Error::NotFound(path.to_path_buf()));
    }
    files.sort();
    let root = if path.is_dir() { Some(path) } else { None };
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let fmt = match format.or_else(|| Format::from_name(&name)) {
            Some(fmt) => fmt,
            None if root.is_some() => continue,
            None => {
                return Err(Error::option(
                    "format",
                    format!("cannot tell the format of {}; set `format`", f.display()),
                ));
            }
        };
        let mut partitions = Vec::new();
        if let Some(rel) = root.and_then(|r| f.strip_prefix(r).ok()) {
            for comp in rel.parent().into_iter().flat_map(|p| p.components()) {
                let c = comp.as_os_str().to_string_lossy();
                if let Some((k, v)) = c.split_once('=') {
                    partitions.push((k.to_string(), v.to_string()));
                }
            }
        }
        out.push(Source {
            label: f.display().to_string(),
            data: SourceData::Path(f),
            format: fmt,
            partitions,
        });
    }
    if out.is_empty() {
        return Err(Error::data(
            text.to_string(),
            "no readable files (parquet, csv, ndjson, arrow) found",
        ));
    }
    Ok(out)
}

#[cfg(feature = "native")]
fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Rows of a source when its format records them (Parquet footers, batches
/// in memory); `None` for text formats, known only once read.
pub fn source_rows(src: &Source) -> Option<u64> {
    match &src.data {
        #[cfg(feature = "native")]
        SourceData::Path(p) if src.format == Format::Parquet => {
            let file = std::fs::File::open(p).ok()?;
            let meta = parquet::file::metadata::ParquetMetaDataReader::new()
                .parse_and_finish(&file)
                .ok()?;
            u64::try_from(meta.file_metadata().num_rows()).ok()
        }
        SourceData::Batches(b) => Some(b.iter().map(|b| b.num_rows() as u64).sum()),
        _ => None,
    }
}

/// Expand a URL (object, prefix or glob) into sources, as [`discover`]
/// does for local paths.
#[cfg(feature = "native")]
pub(crate) fn discover_url(url: &str, format: Option<Format>) -> Result<Vec<Source>> {
    use crate::io::remote::{Object, head, list, split, store, url_for};
    use object_store::path::Path as ObjectPath;
    use std::path::PathBuf;
    let (bucket, key) = split(url)?;
    let store = store(url, &bucket)?;
    // (key, size, the prefix partitions are relative to)
    let mut found: Vec<(String, u64, Option<String>)> = Vec::new();
    let is_glob = key.contains(['*', '?', '[']);
    if is_glob {
        let fixed: String = key
            .split('/')
            .take_while(|s| !s.contains(['*', '?', '[']))
            .collect::<Vec<_>>()
            .join("/");
        let pattern = glob::Pattern::new(&key)
            .map_err(|e| Error::option("path", format!("bad glob `{url}`: {e}")))?;
        for (k, size) in list(&store, url, &fixed)? {
            if pattern.matches(&k) {
                found.push((k, size, None));
            }
        }
        if found.is_empty() {
            return Err(Error::NotFound(PathBuf::from(url)));
        }
    } else if let Some(size) = head(&store, url, &key)? {
        found.push((key.clone(), size, None));
    } else {
        found = list(&store, url, &key)?
            .into_iter()
            .map(|(k, size)| (k, size, Some(key.clone())))
            .collect();
        if found.is_empty() {
            return Err(Error::NotFound(PathBuf::from(url)));
        }
    }
    let mut out = Vec::new();
    for (k, size, root) in found {
        let rel = match &root {
            Some(r) if !r.is_empty() => k.strip_prefix(r.as_str()).unwrap_or(&k),
            _ => &k,
        }
        .trim_start_matches('/');
        let name = k.rsplit('/').next().unwrap_or_default();
        // Hidden and marker objects (`_SUCCESS`, `.part`), in any segment
        // under the root.
        if root.is_some() && rel.split('/').any(|s| s.starts_with(['.', '_'])) {
            continue;
        }
        let fmt = match format.or_else(|| Format::from_name(name)) {
            Some(f) => f,
            None if root.is_some() => continue,
            None => {
                return Err(Error::option(
                    "format",
                    format!(
                        "cannot tell the format of {}; set `format`",
                        url_for(&bucket, &k)
                    ),
                ));
            }
        };
        let partitions = match root {
            Some(_) => rel
                .split('/')
                .rev()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .filter_map(|c| c.split_once('='))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            None => Vec::new(),
        };
        out.push(Source {
            label: url_for(&bucket, &k),
            data: SourceData::Object(Object {
                store: store.clone(),
                path: ObjectPath::from(k.as_str()),
                size,
            }),
            format: fmt,
            partitions,
        });
    }
    if out.is_empty() {
        return Err(Error::data(
            url,
            "no readable files (parquet, csv, ndjson, arrow) found",
        ));
    }
    Ok(out)
}
