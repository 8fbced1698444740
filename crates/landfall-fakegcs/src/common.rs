//! Helpers shared by the XML and JSON front ends: query strings, request
//! metadata headers, conditional requests, ranges and download responses.

use std::io;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MATCH, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::percent_decode_str;

use crate::store::{is_stored_header, normalize_etag, Object, StoreError, WriteCondition};

/// Decoded query string; keeps order and repeated keys.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Parses an optional numeric parameter; `Err` carries a message.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    StoreError::InvalidArgument(format!("invalid value {v:?} for {key}"))
                })
            })
            .transpose()
    }
}

pub fn store_error_to_io(e: StoreError) -> io::Error {
    match e {
        StoreError::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Percent-decode one path component (object names may contain `/`).
pub fn decode_component(raw: &str) -> Result<String, StoreError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| StoreError::InvalidArgument(format!("path is not UTF-8: {raw:?}")))
}

/// Metadata headers of a write request that are stored with the object.
pub fn stored_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| is_stored_header(k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    if !out.iter().any(|(k, _)| k == "content-type") {
        out.push((
            "content-type".to_string(),
            "application/octet-stream".to_string(),
        ));
    }
    out
}

/// `x-goog-if-generation-match` from XML API headers.
pub fn header_write_condition(headers: &HeaderMap) -> Result<WriteCondition, StoreError> {
    let if_generation_match = match headers.get("x-goog-if-generation-match") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    StoreError::InvalidArgument(format!(
                        "invalid x-goog-if-generation-match: {v:?}"
                    ))
                })?,
        ),
    };
    Ok(WriteCondition {
        if_generation_match,
    })
}

pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_http_date(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.timestamp())
}

fn etag_list_matches(list: &str, obj: &Object) -> bool {
    let ours = normalize_etag(&obj.etag);
    list.split(',').any(|e| {
        let e = e.trim();
        e == "*" || normalize_etag(e) == ours
    })
}

/// Outcome of evaluating read preconditions.
pub enum ReadCondition {
    Proceed,
    NotModified,
    Failed,
}

/// RFC 9110 §13.2.2 order, plus GCS's generation headers.
pub fn check_read_conditions(obj: &Object, headers: &HeaderMap) -> ReadCondition {
    let modified = obj.updated.timestamp(); // HTTP dates have 1 s resolution
    if let Some(v) = header_str(headers, &IF_MATCH) {
        if !etag_list_matches(v, obj) {
            return ReadCondition::Failed;
        }
    } else if let Some(t) = header_str(headers, &IF_UNMODIFIED_SINCE).and_then(parse_http_date) {
        if modified > t {
            return ReadCondition::Failed;
        }
    }
    if let Some(v) = headers
        .get("x-goog-if-generation-match")
        .and_then(|v| v.to_str().ok())
    {
        if v.trim().parse::<u64>().ok() != Some(obj.generation) {
            return ReadCondition::Failed;
        }
    }
    if let Some(v) = header_str(headers, &IF_NONE_MATCH) {
        if etag_list_matches(v, obj) {
            return ReadCondition::NotModified;
        }
    } else if let Some(t) = header_str(headers, &IF_MODIFIED_SINCE).and_then(parse_http_date) {
        if modified <= t {
            return ReadCondition::NotModified;
        }
    }
    if let Some(v) = headers
        .get("x-goog-if-generation-not-match")
        .and_then(|v| v.to_str().ok())
    {
        if v.trim().parse::<u64>().ok() == Some(obj.generation) {
            return ReadCondition::NotModified;
        }
    }
    ReadCondition::Proceed
}

pub enum RangeSpec {
    Full,
    /// Inclusive byte range.
    Partial(u64, u64),
    Unsatisfiable,
}

/// Single `bytes=` ranges only; anything unparsable or multi-range is
/// ignored (full content), as HTTP permits.
pub fn parse_range(value: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return RangeSpec::Full;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Partial(size.saturating_sub(n), size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeSpec::Full,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Partial(start, end.min(size - 1))
}

fn set(resp: &mut Response, name: impl TryInto<HeaderName>, value: impl AsRef<str>) {
    if let (Ok(name), Ok(value)) = (name.try_into(), HeaderValue::from_str(value.as_ref())) {
        resp.headers_mut().insert(name, value);
    }
}

/// Headers describing an object, as GCS's XML API returns them.
pub fn set_object_headers(resp: &mut Response, obj: &Object) {
    set(resp, ETAG, &obj.etag);
    set(resp, LAST_MODIFIED, http_date(obj.updated));
    set(resp, "x-goog-generation", obj.generation.to_string());
    set(resp, "x-goog-metageneration", "1");
    set(resp, "x-goog-hash", obj.goog_hash());
    set(resp, "x-goog-stored-content-length", obj.size().to_string());
    set(
        resp,
        "x-goog-stored-content-encoding",
        obj.header("content-encoding").unwrap_or("identity"),
    );
    set(resp, "x-goog-storage-class", obj.storage_class());
    for (k, v) in &obj.headers {
        set(resp, k.as_str(), v);
    }
}

/// Empty 200 response for a completed write.
pub fn write_response(obj: &Object) -> Response {
    let mut resp = Response::new(Body::empty());
    set_object_headers(&mut resp, obj);
    resp.headers_mut().remove(CONTENT_TYPE);
    set(&mut resp, CONTENT_LENGTH, "0");
    resp
}

/// GET/HEAD of an object's bytes, honouring conditionals and `Range`.
/// `fail` renders 412/416 in the caller's API flavour.
pub fn download(
    obj: &Object,
    headers: &HeaderMap,
    fail: impl Fn(StatusCode, &str, &str) -> Response,
) -> Response {
    match check_read_conditions(obj, headers) {
        ReadCondition::Proceed => {}
        ReadCondition::Failed => {
            return fail(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold.",
            )
        }
        ReadCondition::NotModified => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            set(&mut resp, ETAG, &obj.etag);
            set(&mut resp, LAST_MODIFIED, http_date(obj.updated));
            set(&mut resp, "x-goog-generation", obj.generation.to_string());
            return resp;
        }
    }
    let size = obj.size();
    let (status, body, content_range) =
        match parse_range(header_str(headers, &axum::http::header::RANGE), size) {
            RangeSpec::Full => (StatusCode::OK, obj.data.clone(), None),
            RangeSpec::Partial(s, e) => {
                // `s <= e < size`, both fit in usize as the data is in memory.
                let slice = obj.data.slice(s as usize..=e as usize);
                (
                    StatusCode::PARTIAL_CONTENT,
                    slice,
                    Some(format!("bytes {s}-{e}/{size}")),
                )
            }
            RangeSpec::Unsatisfiable => {
                let mut resp = fail(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range cannot be satisfied.",
                );
                set(&mut resp, CONTENT_RANGE, format!("bytes */{size}"));
                return resp;
            }
        };
    let len = body.len();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    set_object_headers(&mut resp, obj);
    set(&mut resp, ACCEPT_RANGES, "bytes");
    set(&mut resp, CONTENT_LENGTH, len.to_string());
    if let Some(cr) = content_range {
        set(&mut resp, CONTENT_RANGE, cr);
    }
    resp
}
