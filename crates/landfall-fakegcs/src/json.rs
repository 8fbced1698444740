//! A small slice of the JSON API (`/storage/v1/...`). object_store 0.14.2
//! does not use it; it is here for scripts and other clients.

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::common::{decode_component, download, rfc3339, stored_headers, Query};
use crate::store::WriteCondition;
use crate::store::{normalize_etag, ListQuery, Object, Store, StoreError, StoreResult};
use crate::Ctx;

const MAX_RESULTS: usize = 1000;

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut resp = Response::new(Body::from(v.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "errors": [{"domain": "global", "reason": reason, "message": message}],
            }
        }),
    )
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NoSuchBucket(b) => error(
            StatusCode::NOT_FOUND,
            "notFound",
            &format!("The specified bucket does not exist: {b}"),
        ),
        StoreError::NoSuchKey(k) => error(
            StatusCode::NOT_FOUND,
            "notFound",
            &format!("No such object: {k}"),
        ),
        StoreError::NoSuchUpload(u) => error(
            StatusCode::NOT_FOUND,
            "notFound",
            &format!("No such upload: {u}"),
        ),
        StoreError::PreconditionFailed => error(
            StatusCode::PRECONDITION_FAILED,
            "conditionNotMet",
            "At least one of the pre-conditions you specified did not hold.",
        ),
        StoreError::InvalidArgument(m)
        | StoreError::InvalidPart(m)
        | StoreError::EntityTooSmall(m) => error(StatusCode::BAD_REQUEST, "invalid", &m),
        StoreError::BucketNotEmpty(b) => error(
            StatusCode::CONFLICT,
            "conflict",
            &format!("The bucket you tried to delete is not empty: {b}"),
        ),
        StoreError::Io(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backendError",
            &e.to_string(),
        ),
    }
}

fn not_supported(what: &str) -> Response {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "notImplemented",
        &format!("landfall-fakegcs (test fixture) does not implement {what}"),
    )
}

fn write_condition(q: &Query) -> StoreResult<WriteCondition> {
    Ok(WriteCondition {
        if_generation_match: q.get_u64("ifGenerationMatch")?,
    })
}

fn object_json(bucket: &str, key: &str, obj: &Object) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("storage#object"));
    m.insert(
        "id".into(),
        json!(format!("{bucket}/{key}/{}", obj.generation)),
    );
    m.insert("name".into(), json!(key));
    m.insert("bucket".into(), json!(bucket));
    m.insert("generation".into(), json!(obj.generation.to_string()));
    m.insert("metageneration".into(), json!("1"));
    m.insert("contentType".into(), json!(obj.content_type()));
    m.insert("storageClass".into(), json!(obj.storage_class()));
    m.insert("size".into(), json!(obj.size().to_string()));
    m.insert("md5Hash".into(), json!(obj.md5_base64()));
    m.insert("etag".into(), json!(normalize_etag(&obj.etag)));
    m.insert("timeCreated".into(), json!(rfc3339(obj.created)));
    m.insert("updated".into(), json!(rfc3339(obj.updated)));
    let mut metadata = Map::new();
    for (k, v) in &obj.headers {
        let field = match k.as_str() {
            "cache-control" => "cacheControl",
            "content-disposition" => "contentDisposition",
            "content-encoding" => "contentEncoding",
            "content-language" => "contentLanguage",
            other => {
                if let Some(name) = other.strip_prefix("x-goog-meta-") {
                    metadata.insert(name.to_string(), json!(v));
                }
                continue;
            }
        };
        m.insert(field.into(), json!(v));
    }
    if !metadata.is_empty() {
        m.insert("metadata".into(), Value::Object(metadata));
    }
    Value::Object(m)
}

fn bucket_json(name: &str, created: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "kind": "storage#bucket",
        "id": name,
        "name": name,
        "location": "US",
        "storageClass": "STANDARD",
        "timeCreated": rfc3339(created),
        "updated": rfc3339(created),
        "metageneration": "1",
    })
}

pub fn handle(store: &Store, ctx: &Ctx) -> Response {
    route(store, ctx).unwrap_or_else(store_error)
}

fn route(store: &Store, ctx: &Ctx) -> StoreResult<Response> {
    let rest = ctx.uri.path().strip_prefix("/storage/v1").unwrap_or("");
    let rest = rest.trim_start_matches('/');
    // The object name is one (encoded) segment, but tolerate raw slashes.
    let segs: Vec<&str> = rest.splitn(4, '/').collect();
    match (&ctx.method, segs.as_slice()) {
        (&Method::GET, ["b"]) => {
            let items: Vec<Value> = store
                .list_buckets()
                .iter()
                .map(|(n, c)| bucket_json(n, *c))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "storage#buckets", "items": items}),
            ))
        }
        (&Method::POST, ["b"]) => {
            let body: Value = serde_json::from_slice(&ctx.body)
                .map_err(|e| StoreError::InvalidArgument(format!("invalid JSON body: {e}")))?;
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| StoreError::InvalidArgument("bucket name required".into()))?;
            let created = store.bucket_created(name)?;
            Ok(json_response(StatusCode::OK, &bucket_json(name, created)))
        }
        (&Method::GET, ["b", b]) => {
            let b = decode_component(b)?;
            let created = store.bucket_created(&b)?;
            Ok(json_response(StatusCode::OK, &bucket_json(&b, created)))
        }
        (&Method::DELETE, ["b", b]) => {
            store.delete_bucket(&decode_component(b)?)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["b", b, "o"]) | (&Method::GET, ["b", b, "o", ""]) => {
            list_objects(store, &decode_component(b)?, &ctx.query)
        }
        (&Method::GET | &Method::HEAD, ["b", b, "o", o]) => {
            let (b, o) = (decode_component(b)?, decode_component(o)?);
            let obj = match ctx.query.get_u64("generation")? {
                Some(g) => store.get_generation(&b, &o, g)?,
                None => store.get(&b, &o)?,
            };
            if ctx.query.get("alt") == Some("media") {
                Ok(download(&obj, &ctx.headers, error))
            } else {
                Ok(json_response(StatusCode::OK, &object_json(&b, &o, &obj)))
            }
        }
        (&Method::DELETE, ["b", b, "o", o]) => {
            let (b, o) = (decode_component(b)?, decode_component(o)?);
            store.delete(&b, &o, write_condition(&ctx.query)?)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Ok(not_supported(&format!(
            "{} {} on the JSON API",
            ctx.method,
            ctx.uri.path()
        ))),
    }
}

/// `POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=...`
pub fn handle_upload(store: &Store, ctx: &Ctx) -> Response {
    upload(store, ctx).unwrap_or_else(store_error)
}

fn upload(store: &Store, ctx: &Ctx) -> StoreResult<Response> {
    let rest = ctx
        .uri
        .path()
        .strip_prefix("/upload/storage/v1/")
        .unwrap_or("");
    let segs: Vec<&str> = rest.split('/').collect();
    let (&Method::POST, ["b", b, "o"]) = (&ctx.method, segs.as_slice()) else {
        return Ok(not_supported(&format!("{} {}", ctx.method, ctx.uri.path())));
    };
    if ctx.query.get("uploadType") != Some("media") {
        return Ok(not_supported("uploadType other than media"));
    }
    let bucket = decode_component(b)?;
    let name = ctx
        .query
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| StoreError::InvalidArgument("name is required".into()))?;
    let obj = store.put(
        &bucket,
        name,
        ctx.body.clone(),
        stored_headers(&ctx.headers),
        write_condition(&ctx.query)?,
    )?;
    Ok(json_response(
        StatusCode::OK,
        &object_json(&bucket, name, &obj),
    ))
}

fn empty(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

fn list_objects(store: &Store, bucket: &str, q: &Query) -> StoreResult<Response> {
    if q.has("matchGlob") {
        return Ok(not_supported("matchGlob"));
    }
    let non_empty = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    let query = ListQuery {
        prefix: q.get("prefix").unwrap_or_default().to_string(),
        delimiter: non_empty("delimiter"),
        start_offset: non_empty("startOffset"),
        end_offset: non_empty("endOffset"),
        page_token: non_empty("pageToken"),
        max_results: q.get_u64("maxResults")?.map_or(MAX_RESULTS, |m| {
            usize::try_from(m).unwrap_or(MAX_RESULTS).min(MAX_RESULTS)
        }),
        ..ListQuery::default()
    };
    store.bucket_created(bucket)?;
    let page = store.list(bucket, &query)?;
    let mut out = Map::new();
    out.insert("kind".into(), json!("storage#objects"));
    if !page.objects.is_empty() {
        let items: Vec<Value> = page
            .objects
            .iter()
            .map(|(k, o)| object_json(bucket, k, o))
            .collect();
        out.insert("items".into(), Value::Array(items));
    }
    if !page.prefixes.is_empty() {
        out.insert("prefixes".into(), json!(page.prefixes));
    }
    if let Some(t) = page.next_page_token {
        out.insert("nextPageToken".into(), json!(t));
    }
    Ok(json_response(StatusCode::OK, &Value::Object(out)))
}
