//! The XML API (path style: `/{bucket}/{object}`), which is what
//! object_store's GCS backend uses for everything, listing included.

use std::fmt::Write;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use crate::common::{
    decode_component, download, header_write_condition, rfc3339, stored_headers, write_response,
};
use crate::store::{ListQuery, Store, StoreError, StoreResult};
use crate::Ctx;

const MAX_KEYS: usize = 1000;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=UTF-8"),
    );
    resp
}

pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    xml_response(
        status,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{}</Code><Message>{}</Message></Error>",
            escape(code),
            escape(message)
        ),
    )
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NoSuchBucket(b) => error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            &format!("The specified bucket does not exist: {b}"),
        ),
        StoreError::NoSuchKey(k) => error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            &format!("The specified key does not exist: {k}"),
        ),
        StoreError::NoSuchUpload(u) => error(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            &format!("The requested upload was not found: {u}"),
        ),
        StoreError::PreconditionFailed => error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        ),
        StoreError::InvalidArgument(m) => error(StatusCode::BAD_REQUEST, "InvalidArgument", &m),
        StoreError::InvalidPart(m) => error(StatusCode::BAD_REQUEST, "InvalidPart", &m),
        StoreError::EntityTooSmall(m) => error(StatusCode::BAD_REQUEST, "EntityTooSmall", &m),
        StoreError::BucketNotEmpty(b) => error(
            StatusCode::CONFLICT,
            "BucketNotEmpty",
            &format!("The bucket you tried to delete is not empty: {b}"),
        ),
        StoreError::Io(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        ),
    }
}

fn not_supported(what: &str) -> Response {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        &format!("landfall-fakegcs (test fixture) does not implement {what}"),
    )
}

pub fn handle(store: &Store, ctx: &Ctx) -> Response {
    route(store, ctx).unwrap_or_else(store_error)
}

fn route(store: &Store, ctx: &Ctx) -> StoreResult<Response> {
    let path = ctx.uri.path();
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return match ctx.method {
            Method::GET | Method::HEAD => Ok(list_buckets(store)),
            _ => Ok(not_supported(&format!("{} /", ctx.method))),
        };
    }
    let (bucket_raw, key_raw) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket = decode_component(bucket_raw)?;
    if key_raw.is_empty() {
        return match ctx.method {
            Method::GET => list_objects(store, &bucket, ctx),
            Method::HEAD => {
                store.bucket_created(&bucket)?;
                Ok(xml_response(StatusCode::OK, String::new()))
            }
            Method::PUT => {
                store.create_bucket(&bucket)?;
                Ok(xml_response(StatusCode::OK, String::new()))
            }
            Method::DELETE => {
                store.delete_bucket(&bucket)?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            _ => Ok(not_supported(&format!("{} on a bucket", ctx.method))),
        };
    }
    let key = decode_component(key_raw)?;
    let q = &ctx.query;
    match ctx.method {
        Method::PUT if q.has("uploadId") => put_part(store, &bucket, &key, ctx),
        Method::PUT if ctx.headers.contains_key("x-goog-copy-source") => {
            copy(store, &bucket, &key, ctx)
        }
        Method::PUT => {
            let cond = header_write_condition(&ctx.headers)?;
            let headers = stored_headers(&ctx.headers);
            let obj = store.put(&bucket, &key, ctx.body.clone(), headers, cond)?;
            Ok(write_response(&obj))
        }
        Method::POST if q.has("uploads") => {
            let headers = stored_headers(&ctx.headers);
            let id = store.initiate_multipart(&bucket, &key, headers)?;
            Ok(xml_response(
                StatusCode::OK,
                format!(
                    "<?xml version='1.0' encoding='UTF-8'?>\
                     <InitiateMultipartUploadResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>\
                     <Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId>\
                     </InitiateMultipartUploadResult>",
                    escape(&bucket),
                    escape(&key),
                    escape(&id)
                ),
            ))
        }
        Method::POST if q.has("uploadId") => complete(store, &bucket, &key, ctx),
        Method::POST => Ok(not_supported(
            "POST on an object without ?uploads/?uploadId",
        )),
        Method::GET | Method::HEAD if q.has("uploadId") => {
            Ok(not_supported("listing multipart parts"))
        }
        Method::GET | Method::HEAD => {
            let obj = match q.get_u64("generation")? {
                Some(g) => store.get_generation(&bucket, &key, g)?,
                None => store.get(&bucket, &key)?,
            };
            Ok(download(&obj, &ctx.headers, error))
        }
        Method::DELETE if q.has("uploadId") => {
            let id = q.get("uploadId").unwrap_or_default();
            store.abort_multipart(&bucket, &key, id)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        Method::DELETE => {
            let cond = header_write_condition(&ctx.headers)?;
            store.delete(&bucket, &key, cond)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Ok(not_supported(&format!("{} on an object", ctx.method))),
    }
}

fn empty(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

fn put_part(store: &Store, bucket: &str, key: &str, ctx: &Ctx) -> StoreResult<Response> {
    let id = ctx.query.get("uploadId").unwrap_or_default();
    let number = ctx
        .query
        .get_u64("partNumber")?
        .ok_or_else(|| StoreError::InvalidArgument("missing partNumber".into()))?;
    let number = u32::try_from(number)
        .map_err(|_| StoreError::InvalidArgument(format!("partNumber {number} too large")))?;
    let etag = store.put_part(bucket, key, id, number, ctx.body.clone())?;
    let mut resp = empty(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(axum::http::header::ETAG, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct CompleteMultipartUpload {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

fn complete(store: &Store, bucket: &str, key: &str, ctx: &Ctx) -> StoreResult<Response> {
    let id = ctx.query.get("uploadId").unwrap_or_default();
    let body = std::str::from_utf8(&ctx.body)
        .map_err(|_| StoreError::InvalidArgument("body is not UTF-8".into()))?;
    let req: CompleteMultipartUpload = quick_xml::de::from_str(body).map_err(|e| {
        StoreError::InvalidArgument(format!("malformed CompleteMultipartUpload: {e}"))
    })?;
    let parts: Vec<(u32, String)> = req.parts.into_iter().map(|p| (p.number, p.etag)).collect();
    let cond = header_write_condition(&ctx.headers)?;
    let obj = store.complete_multipart(bucket, key, id, &parts, cond)?;
    let mut resp = xml_response(
        StatusCode::OK,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?>\
             <CompleteMultipartUploadResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>\
             <Location>/{b}/{k}</Location><Bucket>{b}</Bucket><Key>{k}</Key><ETag>{e}</ETag>\
             </CompleteMultipartUploadResult>",
            b = escape(bucket),
            k = escape(key),
            e = escape(&obj.etag)
        ),
    );
    for (name, value) in [
        ("x-goog-generation", obj.generation.to_string()),
        ("x-goog-metageneration", "1".to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
}

fn copy(store: &Store, bucket: &str, key: &str, ctx: &Ctx) -> StoreResult<Response> {
    let source = ctx
        .headers
        .get("x-goog-copy-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let source = source.strip_prefix('/').unwrap_or(source);
    // A `?generation=` suffix would select an old generation; only the live
    // one exists, so it is ignored.
    let source = source.split_once('?').map_or(source, |(s, _)| s);
    let (src_bucket, src_key) = source.split_once('/').ok_or_else(|| {
        StoreError::InvalidArgument(format!(
            "x-goog-copy-source must be bucket/object: {source:?}"
        ))
    })?;
    let src_bucket = decode_component(src_bucket)?;
    let src_key = decode_component(src_key)?;
    let replace = ctx
        .headers
        .get("x-goog-metadata-directive")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"REPLACE"))
        .then(|| stored_headers(&ctx.headers));
    let cond = header_write_condition(&ctx.headers)?;
    let obj = store.copy(&src_bucket, &src_key, bucket, key, replace, cond)?;
    let mut resp = xml_response(
        StatusCode::OK,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?>\
             <CopyObjectResult><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
            rfc3339(obj.updated),
            escape(&obj.etag)
        ),
    );
    let wr = write_response(&obj);
    for name in [
        "etag",
        "x-goog-generation",
        "x-goog-metageneration",
        "x-goog-hash",
    ] {
        if let Some(v) = wr.headers().get(name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    Ok(resp)
}

fn list_buckets(store: &Store) -> Response {
    let mut body = String::from(
        "<?xml version='1.0' encoding='UTF-8'?>\
         <ListAllMyBucketsResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'>\
         <Owner><ID>landfall-fakegcs</ID></Owner><Buckets>",
    );
    for (name, created) in store.list_buckets() {
        let _ = write!(
            body,
            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
            escape(&name),
            rfc3339(created)
        );
    }
    body.push_str("</Buckets></ListAllMyBucketsResult>");
    xml_response(StatusCode::OK, body)
}

/// V2 listing (`list-type=2`); V1's `marker` is accepted as `start-after`.
fn list_objects(store: &Store, bucket: &str, ctx: &Ctx) -> StoreResult<Response> {
    let q = &ctx.query;
    let max_keys = q.get_u64("max-keys")?.map_or(MAX_KEYS, |m| {
        usize::try_from(m).unwrap_or(MAX_KEYS).min(MAX_KEYS)
    });
    let prefix = q.get("prefix").unwrap_or_default().to_string();
    let delimiter = q.get("delimiter").filter(|d| !d.is_empty());
    let query = ListQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.map(str::to_string),
        start_after: q
            .get("start-after")
            .or_else(|| q.get("marker"))
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        page_token: q
            .get("continuation-token")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        max_results: max_keys,
        ..ListQuery::default()
    };
    store.bucket_created(bucket)?;
    let page = store.list(bucket, &query)?;

    let mut body = String::from(
        "<?xml version='1.0' encoding='UTF-8'?>\
         <ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'>",
    );
    let _ = write!(
        body,
        "<Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys>",
        escape(bucket),
        escape(&prefix),
        page.objects.len() + page.prefixes.len(),
        max_keys
    );
    if let Some(d) = delimiter {
        let _ = write!(body, "<Delimiter>{}</Delimiter>", escape(d));
    }
    let _ = write!(
        body,
        "<IsTruncated>{}</IsTruncated>",
        page.next_page_token.is_some()
    );
    // All <Contents> before all <CommonPrefixes>: list elements must not be
    // interleaved for serde-based parsers.
    for (key, obj) in &page.objects {
        let _ = write!(
            body,
            "<Contents><Key>{}</Key><Generation>{}</Generation><MetaGeneration>1</MetaGeneration>\
             <LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size>\
             <StorageClass>{}</StorageClass></Contents>",
            escape(key),
            obj.generation,
            rfc3339(obj.updated),
            escape(&obj.etag),
            obj.size(),
            escape(obj.storage_class())
        );
    }
    for p in &page.prefixes {
        let _ = write!(
            body,
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            escape(p)
        );
    }
    if let Some(t) = &page.next_page_token {
        let _ = write!(
            body,
            "<NextContinuationToken>{}</NextContinuationToken>",
            escape(t)
        );
    }
    body.push_str("</ListBucketResult>");
    Ok(xml_response(StatusCode::OK, body))
}
