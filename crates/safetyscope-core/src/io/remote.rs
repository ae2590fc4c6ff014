//! Inputs on object stores: `s3://bucket/prefix` (also `s3a://`) for S3 and
//! S3-compatible stores (MinIO, Ceph, OSS, COS, …).
//!
//! Credentials, region and endpoint come from the environment, as for the
//! AWS tools: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ENDPOINT`
//! (or `AWS_ENDPOINT_URL_S3`) for a store other than AWS, `AWS_ALLOW_HTTP=true`
//! for an endpoint without TLS, plus web-identity and container credentials.
//!
//! A URL names what a local path would: a dataset prefix (canonical table
//! files or a `dataset.toml` under it), a mapping file, a table's file, a
//! table's directory (Hive partitions, `_`/`.` names skipped) or a glob in
//! its last segments. Parquet objects are read by byte ranges, one row group
//! at a time; CSV, NDJSON and Arrow IPC objects are fetched whole, one at a
//! time per table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::io::format::Format;
use crate::util::error::{Error, Result};

/// Whether `location` is an object-store URL this build reads.
pub fn is_url(location: &str) -> bool {
    location.starts_with("s3://") || location.starts_with("s3a://")
}

/// The URL a path holds, if it holds one.
pub(crate) fn url_of(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| is_url(s))
}

/// `location` resolved against `base`: URLs and absolute paths as they
/// are, relative paths under `base` (a directory or a URL prefix).
pub fn join_location(base: &Path, location: &str) -> PathBuf {
    if is_url(location) || Path::new(location).is_absolute() {
        return PathBuf::from(location);
    }
    match url_of(base) {
        Some(b) => PathBuf::from(format!("{}/{}", b.trim_end_matches('/'), location)),
        None => base.join(location),
    }
}

/// One object of a store: what a source on S3 reads.
#[derive(Clone)]
pub struct Object {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: ObjectPath,
    pub(crate) size: u64,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("path", &self.path.as_ref())
            .field("size", &self.size)
            .finish()
    }
}

/// The runtime the object-store clients run on (their HTTP connections
/// need a reactor, whichever thread asks for bytes).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("safetyscope-io")
            .enable_all()
            .build()
            .expect("the object-store runtime starts")
    })
}

/// Run a request on the IO runtime and wait for it from any thread
/// (including a thread of another runtime).
fn block<T: Send + 'static>(
    f: impl std::future::Future<Output = object_store::Result<T>> + Send + 'static,
) -> object_store::Result<T> {
    let handle = runtime().spawn(f);
    match futures::executor::block_on(handle) {
        Ok(r) => r,
        Err(e) => Err(object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        }),
    }
}

pub(crate) fn split(url: &str) -> Result<(String, String)> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| Error::option("path", format!("not an object-store URL: {url}")))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::option("path", format!("{url}: no bucket")));
    }
    Ok((bucket.to_string(), key.trim_matches('/').to_string()))
}

/// The store of a bucket (built once per bucket from the environment).
pub(crate) fn store(url: &str, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = stores.get(bucket) {
        return Ok(s.clone());
    }
    let s: Arc<dyn ObjectStore> = Arc::new(
        object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| remote_error(url, e))?,
    );
    stores.insert(bucket.to_string(), s.clone());
    Ok(s)
}

fn remote_error(url: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound(PathBuf::from(url)),
        e => Error::Remote {
            url: url.to_string(),
            message: e.to_string(),
        },
    }
}

pub(crate) fn url_for(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// The objects under a key prefix (recursively), sorted by key.
pub(crate) fn list(
    store: &Arc<dyn ObjectStore>,
    url: &str,
    prefix: &str,
) -> Result<Vec<(String, u64)>> {
    let store = store.clone();
    let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let mut objects = block(async move {
        store
            .list(prefix.as_ref())
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect::<Vec<_>>()
            .await
    })
    .map_err(|e| remote_error(url, e))?;
    objects.sort();
    Ok(objects)
}

/// The size of one object, `None` when there is none at `key`.
pub(crate) fn head(store: &Arc<dyn ObjectStore>, url: &str, key: &str) -> Result<Option<u64>> {
    if key.is_empty() {
        return Ok(None);
    }
    let (store, path) = (store.clone(), ObjectPath::from(key));
    match block(async move { store.head(&path).await }) {
        Ok(m) => Ok(Some(m.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote_error(url, e)),
    }
}

/// The whole text of an object (mapping files).
pub(crate) fn read_text(url: &str) -> Result<String> {
    let (bucket, key) = split(url)?;
    let store = store(url, &bucket)?;
    let path = ObjectPath::from(key.as_str());
    let bytes = block(async move { store.get(&path).await?.bytes().await })
        .map_err(|e| remote_error(url, e))?;
    String::from_utf8(bytes.to_vec()).map_err(|e| Error::data(url, format!("not UTF-8 text: {e}")))
}

/// The object at `url` (`s3://bucket/key`), to read as a source.
pub(crate) fn object(url: &str) -> Result<Object> {
    let (bucket, key) = split(url)?;
    let store = store(url, &bucket)?;
    let size = head(&store, url, &key)?.ok_or_else(|| Error::NotFound(PathBuf::from(url)))?;
    Ok(Object {
        store,
        path: ObjectPath::from(key.as_str()),
        size,
    })
}

/// Whether an object exists at `url`.
pub(crate) fn exists(url: &str) -> Result<bool> {
    let (bucket, key) = split(url)?;
    Ok(head(&store(url, &bucket)?, url, &key)?.is_some())
}

/// The canonical tables directly under a dataset prefix: objects named
/// after a table (`incidents.parquet`) or prefixes named after one
/// (`incidents/…`), as URLs.
pub(crate) fn canonical_tables(
    url: &str,
) -> Result<Vec<(crate::model::schema::TableKind, String)>> {
    let (bucket, key) = split(url)?;
    let store = store(url, &bucket)?;
    let objects = list(&store, url, &key)?;
    if objects.is_empty() {
        // No object under the prefix: what a missing directory is on disk.
        return Err(Error::NotFound(PathBuf::from(url)));
    }
    let mut out = Vec::new();
    for kind in crate::model::schema::TableKind::ALL {
        let hit = objects.iter().find_map(|(k, _)| {
            let rel = k.strip_prefix(key.as_str())?.trim_start_matches('/');
            let first = rel.split('/').next()?;
            if rel.contains('/') && first == kind.name() {
                return Some(format!("{}/{first}", key.trim_end_matches('/')));
            }
            let (stem, _) = first.split_once('.')?;
            (!rel.contains('/') && stem == kind.name() && Format::from_name(first).is_some())
                .then(|| k.clone())
        });
        if let Some(k) = hit {
            out.push((kind, url_for(&bucket, k.trim_start_matches('/'))));
        }
    }
    Ok(out)
}

impl Object {
    fn fetch(&self, range: std::ops::Range<u64>) -> std::io::Result<Bytes> {
        let (store, path) = (self.store.clone(), self.path.clone());
        block(async move { store.get_range(&path, range).await }).map_err(std::io::Error::other)
    }

    /// The whole object.
    pub(crate) fn bytes(&self, label: &str) -> Result<Bytes> {
        self.fetch(0..self.size)
            .map_err(|e| Error::data(label, format!("cannot read: {e}")))
    }
}

impl parquet::file::reader::Length for Object {
    fn len(&self) -> u64 {
        self.size
    }
}

/// Bytes of an object from an offset on, fetched 64 KiB at a time as they
/// are read: the Parquet reader reads every page header through one of
/// these, so it must not fetch the rest of the object.
pub struct ObjectReader {
    object: Object,
    pos: u64,
    buf: Bytes,
}

impl std::io::Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        const WINDOW: u64 = 64 * 1024;
        if self.buf.is_empty() && self.pos < self.object.size {
            let end = (self.pos + WINDOW).min(self.object.size);
            self.buf = self.object.fetch(self.pos..end)?;
            self.pos = end;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        bytes::Buf::advance(&mut self.buf, n);
        Ok(n)
    }
}

impl parquet::file::reader::ChunkReader for Object {
    type T = ObjectReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(ObjectReader {
            object: self.clone(),
            pos: start.min(self.size),
            buf: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.fetch(start..start + length as u64)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}
