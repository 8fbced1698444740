//! Protocol-independent state of the fixture: buckets, objects, in-flight
//! multipart uploads, and optional write-through persistence to a directory.
//!
//! Both the XML API (`xml.rs`) and the JSON API (`json.rs`) are thin
//! translations onto the operations here.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use base64::prelude::BASE64_STANDARD;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// Real GCS rejects non-final multipart parts smaller than this.
pub const DEFAULT_MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// GCS (like S3) allows part numbers 1..=10000.
const MAX_PART_NUMBER: u32 = 10_000;

/// Errors, independent of which API surfaced them.
#[derive(Debug)]
pub enum StoreError {
    NoSuchBucket(String),
    NoSuchKey(String),
    NoSuchUpload(String),
    /// A generation / ETag / date precondition did not hold.
    PreconditionFailed,
    /// Malformed request (bad argument, bad part list, ...).
    InvalidArgument(String),
    InvalidPart(String),
    EntityTooSmall(String),
    BucketNotEmpty(String),
    Io(io::Error),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Headers that are stored with an object and replayed on GET/HEAD.
pub fn is_stored_header(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "cache-control"
            | "content-disposition"
            | "content-encoding"
            | "content-language"
            | "x-goog-storage-class"
    ) || name.starts_with("x-goog-meta-")
}

/// One live object (only the latest generation is kept).
#[derive(Debug, Clone)]
pub struct Object {
    pub data: Bytes,
    /// Quoted, as it appears in the `ETag` header, e.g. `"0123abcd..."`.
    pub etag: String,
    pub md5: Vec<u8>,
    pub generation: u64,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Lower-case header name -> value; see [`is_stored_header`].
    pub headers: Vec<(String, String)>,
}

impl Object {
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type")
            .unwrap_or("application/octet-stream")
    }

    pub fn storage_class(&self) -> &str {
        self.header("x-goog-storage-class").unwrap_or("STANDARD")
    }

    pub fn md5_base64(&self) -> String {
        BASE64_STANDARD.encode(&self.md5)
    }

    /// `md5=<base64>`, the value of `x-goog-hash`.
    pub fn goog_hash(&self) -> String {
        format!("md5={}", self.md5_base64())
    }
}

/// Content of an object about to be written.
struct NewObject {
    data: Bytes,
    md5: Vec<u8>,
    etag: String,
    headers: Vec<(String, String)>,
}

#[derive(Debug)]
struct Part {
    data: Bytes,
    md5: Vec<u8>,
    etag: String,
}

#[derive(Debug)]
struct Upload {
    bucket: String,
    key: String,
    headers: Vec<(String, String)>,
    parts: BTreeMap<u32, Part>,
}

#[derive(Debug)]
pub struct Bucket {
    pub created: DateTime<Utc>,
    objects: BTreeMap<String, Object>,
    /// Overwritten/deleted generations, oldest first; only kept when the
    /// store runs with `versioning` (memory only, never persisted).
    noncurrent: HashMap<String, Vec<Object>>,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            created: Utc::now(),
            objects: BTreeMap::new(),
            noncurrent: HashMap::new(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    buckets: BTreeMap<String, Bucket>,
    uploads: HashMap<String, Upload>,
    last_generation: u64,
    upload_counter: u64,
}

impl Inner {
    /// GCS generations are (roughly) microsecond timestamps; keep them
    /// strictly increasing across the whole server.
    fn next_generation(&mut self) -> u64 {
        let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        self.last_generation = now.max(self.last_generation + 1);
        self.last_generation
    }

    fn bucket_mut(&mut self, name: &str) -> &mut Bucket {
        self.buckets
            .entry(name.to_string())
            .or_insert_with(Bucket::new)
    }
}

/// Conditions on the *destination* of a write/delete, from
/// `x-goog-if-generation-match` (XML) or `ifGenerationMatch` (JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteCondition {
    /// `Some(0)` = must not exist; `Some(g)` = live generation must be `g`.
    pub if_generation_match: Option<u64>,
}

impl WriteCondition {
    fn check(&self, existing: Option<&Object>) -> StoreResult<()> {
        match self.if_generation_match {
            None => Ok(()),
            Some(0) if existing.is_none() => Ok(()),
            Some(g) if existing.is_some_and(|o| o.generation == g) => Ok(()),
            Some(_) => Err(StoreError::PreconditionFailed),
        }
    }
}

/// Parameters of a listing, common to both APIs.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive lower bound (XML `start-after`).
    pub start_after: Option<String>,
    /// Inclusive lower bound (JSON `startOffset`).
    pub start_offset: Option<String>,
    /// Exclusive upper bound (JSON `endOffset`).
    pub end_offset: Option<String>,
    /// Opaque token from a previous page.
    pub page_token: Option<String>,
    pub max_results: usize,
}

#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<(String, Object)>,
    pub prefixes: Vec<String>,
    pub next_page_token: Option<String>,
}

enum Resume {
    AfterKey(String),
    AfterPrefix(String),
}

fn encode_token(r: &Resume) -> String {
    let raw = match r {
        Resume::AfterKey(k) => format!("k{k}"),
        Resume::AfterPrefix(p) => format!("p{p}"),
    };
    BASE64_URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(t: &str) -> StoreResult<Resume> {
    let bad = || StoreError::InvalidArgument(format!("invalid page token {t:?}"));
    let raw = BASE64_URL_SAFE_NO_PAD.decode(t).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    match raw.split_at_checked(1) {
        Some(("k", k)) => Ok(Resume::AfterKey(k.to_string())),
        Some(("p", p)) => Ok(Resume::AfterPrefix(p.to_string())),
        _ => Err(bad()),
    }
}

pub fn md5_of(data: &[u8]) -> Vec<u8> {
    Md5::digest(data).to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Unquoted, `W/`-less form of an ETag, for comparisons.
pub fn normalize_etag(e: &str) -> &str {
    let e = e.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"')
}

/// The whole fixture state. Cheap operations under one mutex; object data
/// is reference-counted [`Bytes`] so reads copy nothing.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    root: Option<PathBuf>,
    min_part_size: u64,
    versioning: bool,
}

impl Store {
    /// In-memory store, or — with `root` — a store that loads existing
    /// objects from `root` and writes every change through to it.
    pub fn open(root: Option<PathBuf>, min_part_size: u64, versioning: bool) -> io::Result<Self> {
        let mut inner = Inner::default();
        if let Some(root) = &root {
            fs::create_dir_all(root)?;
            persist::load(root, &mut inner)?;
        }
        Ok(Store {
            inner: Mutex::new(inner),
            root,
            min_part_size,
            versioning,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters for a test fixture; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn create_bucket(&self, name: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.bucket_mut(name);
        if let Some(root) = &self.root {
            fs::create_dir_all(persist::bucket_dir(root, name))?;
        }
        Ok(())
    }

    /// Buckets are implicit: every bucket exists. This returns its creation
    /// time, creating it on first use.
    pub fn bucket_created(&self, name: &str) -> StoreResult<DateTime<Utc>> {
        self.create_bucket(name)?;
        Ok(self.lock().bucket_mut(name).created)
    }

    pub fn list_buckets(&self) -> Vec<(String, DateTime<Utc>)> {
        self.lock()
            .buckets
            .iter()
            .map(|(k, b)| (k.clone(), b.created))
            .collect()
    }

    pub fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.buckets.get(name) {
            None => return Err(StoreError::NoSuchBucket(name.to_string())),
            Some(b) if !b.objects.is_empty() => {
                return Err(StoreError::BucketNotEmpty(name.to_string()))
            }
            Some(_) => {}
        }
        inner.buckets.remove(name);
        if let Some(root) = &self.root {
            let dir = persist::bucket_dir(root, name);
            if dir.exists() {
                fs::remove_dir_all(dir)?;
            }
        }
        Ok(())
    }

    pub fn get(&self, bucket: &str, key: &str) -> StoreResult<Object> {
        let inner = self.lock();
        inner
            .buckets
            .get(bucket)
            .and_then(|b| b.objects.get(key))
            .cloned()
            .ok_or_else(|| StoreError::NoSuchKey(key.to_string()))
    }

    /// A specific generation: the live one, or (with `versioning`) a
    /// noncurrent one.
    pub fn get_generation(&self, bucket: &str, key: &str, generation: u64) -> StoreResult<Object> {
        let inner = self.lock();
        let b = inner.buckets.get(bucket);
        let live = b.and_then(|b| b.objects.get(key));
        let old = b.and_then(|b| b.noncurrent.get(key)).into_iter().flatten();
        live.into_iter()
            .chain(old)
            .find(|o| o.generation == generation)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchKey(format!("{key}#{generation}")))
    }

    fn retire(&self, bucket: &mut Bucket, key: &str, old: Option<Object>) {
        if let (true, Some(old)) = (self.versioning, old) {
            bucket
                .noncurrent
                .entry(key.to_string())
                .or_default()
                .push(old);
        }
    }

    fn insert(
        &self,
        inner: &mut Inner,
        bucket: &str,
        key: &str,
        new: NewObject,
        cond: WriteCondition,
    ) -> StoreResult<Object> {
        let NewObject {
            data,
            md5,
            etag,
            headers,
        } = new;
        let existing = inner.buckets.get(bucket).and_then(|b| b.objects.get(key));
        cond.check(existing)?;
        let created = existing.map(|o| o.created);
        let generation = inner.next_generation();
        let now = Utc::now();
        let obj = Object {
            data,
            etag,
            md5,
            generation,
            created: created.unwrap_or(now),
            updated: now,
            headers,
        };
        if let Some(root) = &self.root {
            persist::write_object(root, bucket, key, &obj)?;
        }
        let b = inner.bucket_mut(bucket);
        let old = b.objects.insert(key.to_string(), obj.clone());
        self.retire(b, key, old);
        Ok(obj)
    }

    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        headers: Vec<(String, String)>,
        cond: WriteCondition,
    ) -> StoreResult<Object> {
        validate_key(key)?;
        let md5 = md5_of(&data);
        let etag = format!("\"{}\"", hex(&md5));
        let mut inner = self.lock();
        let new = NewObject {
            data,
            md5,
            etag,
            headers,
        };
        self.insert(&mut inner, bucket, key, new, cond)
    }

    /// Server-side copy. `replace_headers` = `None` copies the source's
    /// metadata (GCS's default `x-goog-metadata-directive: COPY`).
    pub fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        replace_headers: Option<Vec<(String, String)>>,
        cond: WriteCondition,
    ) -> StoreResult<Object> {
        validate_key(dst_key)?;
        let mut inner = self.lock();
        let src = inner
            .buckets
            .get(src_bucket)
            .and_then(|b| b.objects.get(src_key))
            .cloned()
            .ok_or_else(|| StoreError::NoSuchKey(src_key.to_string()))?;
        let headers = replace_headers.unwrap_or(src.headers);
        let new = NewObject {
            data: src.data,
            md5: src.md5,
            etag: src.etag,
            headers,
        };
        self.insert(&mut inner, dst_bucket, dst_key, new, cond)
    }

    pub fn delete(&self, bucket: &str, key: &str, cond: WriteCondition) -> StoreResult<()> {
        let mut inner = self.lock();
        let existing = inner.buckets.get(bucket).and_then(|b| b.objects.get(key));
        if existing.is_none() {
            return Err(StoreError::NoSuchKey(key.to_string()));
        }
        cond.check(existing)?;
        let b = inner.bucket_mut(bucket);
        let old = b.objects.remove(key);
        self.retire(b, key, old);
        if let Some(root) = &self.root {
            persist::delete_object(root, bucket, key)?;
        }
        Ok(())
    }

    pub fn initiate_multipart(
        &self,
        bucket: &str,
        key: &str,
        headers: Vec<(String, String)>,
    ) -> StoreResult<String> {
        validate_key(key)?;
        let mut inner = self.lock();
        inner.bucket_mut(bucket);
        inner.upload_counter += 1;
        let id = format!(
            "fakegcs-{:x}-{:x}",
            inner.upload_counter,
            Utc::now().timestamp_nanos_opt().unwrap_or(0)
        );
        inner.uploads.insert(
            id.clone(),
            Upload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                headers,
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    fn upload_mut<'a>(
        inner: &'a mut Inner,
        upload_id: &str,
        bucket: &str,
        key: &str,
    ) -> StoreResult<&'a mut Upload> {
        match inner.uploads.get_mut(upload_id) {
            Some(u) if u.bucket == bucket && u.key == key => Ok(u),
            _ => Err(StoreError::NoSuchUpload(upload_id.to_string())),
        }
    }

    /// Stores one part and returns its quoted ETag.
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        data: Bytes,
    ) -> StoreResult<String> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(StoreError::InvalidArgument(format!(
                "partNumber must be between 1 and {MAX_PART_NUMBER}, got {part_number}"
            )));
        }
        let mut inner = self.lock();
        let upload = Self::upload_mut(&mut inner, upload_id, bucket, key)?;
        let md5 = md5_of(&data);
        let etag = format!("\"{}\"", hex(&md5));
        upload.parts.insert(
            part_number,
            Part {
                data,
                md5,
                etag: etag.clone(),
            },
        );
        Ok(etag)
    }

    /// Assembles the listed parts (number, ETag) into the object.
    pub fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        cond: WriteCondition,
    ) -> StoreResult<Object> {
        let mut inner = self.lock();
        let upload = Self::upload_mut(&mut inner, upload_id, bucket, key)?;
        if parts.is_empty() {
            return Err(StoreError::InvalidArgument(
                "CompleteMultipartUpload must list at least one part".into(),
            ));
        }
        let mut total = 0usize;
        let mut prev = 0u32;
        for (i, (number, etag)) in parts.iter().enumerate() {
            if *number <= prev {
                return Err(StoreError::InvalidArgument(
                    "parts must be listed in strictly ascending PartNumber order".into(),
                ));
            }
            prev = *number;
            let part = upload.parts.get(number).ok_or_else(|| {
                StoreError::InvalidPart(format!("part {number} was never uploaded"))
            })?;
            if normalize_etag(etag) != normalize_etag(&part.etag) {
                return Err(StoreError::InvalidPart(format!(
                    "ETag {etag} does not match part {number} ({})",
                    part.etag
                )));
            }
            let last = i + 1 == parts.len();
            if !last && (part.data.len() as u64) < self.min_part_size {
                return Err(StoreError::EntityTooSmall(format!(
                    "part {number} is {} bytes; every part but the last must be >= {} bytes",
                    part.data.len(),
                    self.min_part_size
                )));
            }
            total += part.data.len();
        }
        let mut buf = BytesMut::with_capacity(total);
        let mut md5s = Vec::with_capacity(parts.len() * 16);
        for (number, _) in parts {
            let part = &upload.parts[number];
            buf.extend_from_slice(&part.data);
            md5s.extend_from_slice(&part.md5);
        }
        let data = buf.freeze();
        let md5 = md5_of(&data);
        // S3-style composite ETag: md5 of the parts' md5s, dash, part count.
        let etag = format!("\"{}-{}\"", hex(&md5_of(&md5s)), parts.len());
        let headers = upload.headers.clone();
        let new = NewObject {
            data,
            md5,
            etag,
            headers,
        };
        let obj = self.insert(&mut inner, bucket, key, new, cond)?;
        inner.uploads.remove(upload_id);
        Ok(obj)
    }

    pub fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        Self::upload_mut(&mut inner, upload_id, bucket, key)?;
        inner.uploads.remove(upload_id);
        Ok(())
    }

    /// One page of a listing. Entries (objects and common prefixes) are in
    /// lexicographic order and `max_results` bounds their total.
    pub fn list(&self, bucket: &str, q: &ListQuery) -> StoreResult<ListPage> {
        let resume = q.page_token.as_deref().map(decode_token).transpose()?;
        let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
        let max = q.max_results.max(1);

        let inner = self.lock();
        let mut page = ListPage::default();
        let Some(b) = inner.buckets.get(bucket) else {
            return Ok(page);
        };

        let mut count = 0usize;
        let mut last: Option<Resume> = None;
        for (key, obj) in b.objects.range(q.prefix.clone()..) {
            if !key.starts_with(&q.prefix) {
                break;
            }
            if q.end_offset.as_ref().is_some_and(|e| key >= e) {
                break;
            }
            if q.start_after.as_ref().is_some_and(|s| key <= s)
                || q.start_offset.as_ref().is_some_and(|s| key < s)
            {
                continue;
            }
            match &resume {
                Some(Resume::AfterKey(k)) if key <= k => continue,
                Some(Resume::AfterPrefix(p)) if key <= p || key.starts_with(p.as_str()) => continue,
                _ => {}
            }
            let common = delimiter.and_then(|d| {
                let rest = &key[q.prefix.len()..];
                rest.find(d)
                    .map(|i| key[..q.prefix.len() + i + d.len()].to_string())
            });
            if let (Some(c), Some(Resume::AfterPrefix(p))) = (&common, &last) {
                if c == p {
                    continue; // same common prefix as the previous entry
                }
            }
            if count == max {
                page.next_page_token = last.as_ref().map(encode_token);
                break;
            }
            count += 1;
            match common {
                Some(c) => {
                    page.prefixes.push(c.clone());
                    last = Some(Resume::AfterPrefix(c));
                }
                None => {
                    page.objects.push((key.clone(), obj.clone()));
                    last = Some(Resume::AfterKey(key.clone()));
                }
            }
        }
        Ok(page)
    }
}

fn validate_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(StoreError::InvalidArgument(format!(
            "object name must be 1..=1024 bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

/// Write-through persistence: `<root>/<bucket>/<md5hex(key)>.{data,json}`.
mod persist {
    use super::*;

    /// Bucket names are GCS-safe in practice; encode anything else.
    const BUCKET_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

    pub fn bucket_dir(root: &Path, bucket: &str) -> PathBuf {
        root.join(utf8_percent_encode(bucket, BUCKET_SET).to_string())
    }

    fn stem(root: &Path, bucket: &str, key: &str) -> PathBuf {
        bucket_dir(root, bucket).join(hex(&md5_of(key.as_bytes())))
    }

    #[derive(Serialize, Deserialize)]
    struct Meta {
        bucket: String,
        key: String,
        etag: String,
        md5: String,
        generation: u64,
        created: DateTime<Utc>,
        updated: DateTime<Utc>,
        headers: Vec<(String, String)>,
    }

    fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, data)?;
        fs::rename(tmp, path)
    }

    pub fn write_object(root: &Path, bucket: &str, key: &str, obj: &Object) -> io::Result<()> {
        fs::create_dir_all(bucket_dir(root, bucket))?;
        let stem = stem(root, bucket, key);
        write_atomic(&stem.with_extension("data"), &obj.data)?;
        let meta = Meta {
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: obj.etag.clone(),
            md5: obj.md5_base64(),
            generation: obj.generation,
            created: obj.created,
            updated: obj.updated,
            headers: obj.headers.clone(),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        write_atomic(&stem.with_extension("json"), &json)
    }

    pub fn delete_object(root: &Path, bucket: &str, key: &str) -> io::Result<()> {
        let stem = stem(root, bucket, key);
        for ext in ["json", "data"] {
            match fs::remove_file(stem.with_extension(ext)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn load(root: &Path, inner: &mut Inner) -> io::Result<()> {
        for dir in fs::read_dir(root)? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            let bucket_name = dir.file_name().to_string_lossy().into_owned();
            let bucket_name = percent_encoding::percent_decode_str(&bucket_name)
                .decode_utf8_lossy()
                .into_owned();
            inner.bucket_mut(&bucket_name);
            for f in fs::read_dir(dir.path())? {
                let path = f?.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let meta: Meta = serde_json::from_slice(&fs::read(&path)?)
                    .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
                let data = Bytes::from(fs::read(path.with_extension("data"))?);
                let md5 = BASE64_STANDARD
                    .decode(&meta.md5)
                    .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
                inner.last_generation = inner.last_generation.max(meta.generation);
                inner.bucket_mut(&meta.bucket).objects.insert(
                    meta.key,
                    Object {
                        data,
                        etag: meta.etag,
                        md5,
                        generation: meta.generation,
                        created: meta.created,
                        updated: meta.updated,
                        headers: meta.headers,
                    },
                );
            }
        }
        Ok(())
    }
}
