//! Plain store operations with errors that name the URL (arrow 4: upload).

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use crate::backend::Location;
use crate::error::StoreError;

/// Result of a create-only put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Yes,
    AlreadyExists,
}

/// Upload a data file: a single PUT below `multipart_threshold`, a multipart upload above it
/// (parts are retried individually by object_store; an upload that fails anyway is aborted, so
/// no parts linger).
pub async fn upload(
    loc: &Location,
    key: &str,
    bytes: Bytes,
    multipart_threshold: u64,
    part_bytes: u64,
) -> Result<Path, StoreError> {
    let path = loc.path(key);
    let url = loc.url_of(&path);
    if (bytes.len() as u64) < multipart_threshold {
        loc.store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| StoreError::object("put", &url, e))?;
        return Ok(path);
    }
    let upload = loc
        .store
        .put_multipart(&path)
        .await
        .map_err(|e| StoreError::object("start multipart upload of", &url, e))?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, part_bytes as usize);
    // Parts go out as they fill, up to 8 at a time.
    for chunk in bytes.chunks(part_bytes as usize) {
        if let Err(e) = w.wait_for_capacity(8).await {
            // S3 and GCS keep the parts of an upload nobody completes or aborts: invisible, but
            // billed until a lifecycle rule removes them. The landing is retried under a new
            // upload, so this one is abandoned now. The part's error is what the caller needs;
            // a failed abort is only logged (the lifecycle rule is the backstop).
            if let Err(abort) = w.abort().await {
                tracing::warn!(url = %url, "aborting the failed multipart upload: {}", abort);
            }
            return Err(StoreError::object("upload part of", &url, e));
        }
        w.write(chunk);
    }
    // `finish` aborts the upload itself when a part or the completion fails.
    w.finish()
        .await
        .map_err(|e| StoreError::object("complete multipart upload of", &url, e))?;
    Ok(path)
}

/// Create-only put: the fence. S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`, local hard link.
pub async fn create(loc: &Location, key: &str, bytes: Bytes) -> Result<Created, StoreError> {
    let path = loc.path(key);
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match loc
        .store
        .put_opts(&path, PutPayload::from_bytes(bytes), opts)
        .await
    {
        Ok(_) => Ok(Created::Yes),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyExists),
        // Some S3-compatible stores answer a failed If-None-Match with 412 mapped to Precondition.
        Err(object_store::Error::Precondition { .. }) => Ok(Created::AlreadyExists),
        Err(e) => Err(StoreError::object("create", loc.url_of(&path), e)),
    }
}

pub async fn put(loc: &Location, key: &str, bytes: Bytes) -> Result<(), StoreError> {
    let path = loc.path(key);
    loc.store
        .put(&path, PutPayload::from_bytes(bytes))
        .await
        .map(|_| ())
        .map_err(|e| StoreError::object("put", loc.url_of(&path), e))
}

/// Read an object; `None` if it does not exist.
pub async fn get(loc: &Location, key: &str) -> Result<Option<Bytes>, StoreError> {
    get_path(loc, &loc.path(key)).await
}

pub async fn get_path(loc: &Location, path: &Path) -> Result<Option<Bytes>, StoreError> {
    let url = loc.url_of(path);
    match loc.store.get(path).await {
        Ok(r) => r
            .bytes()
            .await
            .map(Some)
            .map_err(|e| StoreError::object("read", &url, e)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(StoreError::object("get", &url, e)),
    }
}

pub async fn exists(loc: &Location, key: &str) -> Result<bool, StoreError> {
    let path = loc.path(key);
    match loc.store.head(&path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(StoreError::object("head", loc.url_of(&path), e)),
    }
}

/// An object found by a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub path: Path,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// List everything under `dir` (relative to the location), optionally only keys after `after`,
/// in key order (for commit records: offset order) on every backend.
///
/// object_store leaves the order of a listing unspecified. S3, GCS and `InMemory` return key
/// order, but `LocalFileSystem` returns directory order (walkdir), so the listing is sorted
/// here: it is in memory anyway, and a caller walking a commit chain must not depend on the
/// backend (`store_conformance::listing_order_and_prefixes`).
pub async fn list(
    loc: &Location,
    dir: &str,
    after: Option<&str>,
) -> Result<Vec<Listed>, StoreError> {
    let prefix = loc.path(dir);
    let stream = match after {
        Some(a) => loc.store.list_with_offset(Some(&prefix), &loc.path(a)),
        None => loc.store.list(Some(&prefix)),
    };
    let mut listed: Vec<Listed> = stream
        .map_ok(|m| Listed {
            path: m.location,
            size: m.size,
            last_modified: m.last_modified,
        })
        .try_collect()
        .await
        .map_err(|e| StoreError::object("list", loc.url_of(&prefix), e))?;
    listed.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(listed)
}

pub async fn delete(loc: &Location, path: &Path) -> Result<(), StoreError> {
    match loc.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(StoreError::object("delete", loc.url_of(path), e)),
    }
}

/// Check a location at start-up, with the sink's own credentials: it can be listed, written and
/// deleted, and it honours create-only writes (the fencing depends on it). One clear error beats a
/// sink that fails on its first flush minutes later.
pub async fn preflight(loc: &Location, probe_name: &str) -> Result<(), StoreError> {
    // Beside `batches/` and the topics: no documented sensor pattern matches it.
    let key = landfall_core::keys::probe_key(probe_name);
    // The write first: a PUT to a missing bucket is a clean 404 (NotFound), a LIST is not.
    let first = create(loc, &key, Bytes::from_static(b"probe")).await?;
    list(loc, landfall_core::keys::PROBE_DIR, None).await?;
    let second = create(loc, &key, Bytes::from_static(b"probe")).await;
    delete(loc, &loc.path(&key)).await?;
    match (first, second?) {
        (Created::Yes, Created::AlreadyExists) => Ok(()),
        _ => Err(StoreError::Open {
            url: loc.display(),
            message: "the store does not honour create-only writes (S3 If-None-Match / GCS ifGenerationMatch=0); Landfall's commit fencing needs them".into(),
        }),
    }
}
