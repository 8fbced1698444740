//! # landfall-fakegcs — a TEST FIXTURE, not a GCS emulator
//!
//! This crate is a test fixture implementing the subset of the Google Cloud
//! Storage **XML and JSON APIs** that `object_store` 0.14's GCS backend
//! (`object_store::gcp::GoogleCloudStorage`) uses. It is **not** an emulator of
//! GCS semantics beyond that: no IAM/ACLs, no authentication (every request
//! is accepted, any `Authorization` header is ignored), no lifecycle rules,
//! no signed-URL verification, no resumable uploads, no compose/rewrite, no
//! CRC32C, no virtual-hosted-style URLs. Object versioning is only an opt-in,
//! in-memory approximation ([`Config::versioning`]).
//! It exists because no available emulator runs `object_store`'s GCS backend
//! end to end (fake-gcs-server rejects its XML-API PUT; gcp-storage-emulator
//! has no ETags and no XML multipart upload).
//!
//! ## What object_store 0.14.2 actually sends (and what is served here)
//!
//! Everything goes to `{base_url}/{bucket}/{percent-encoded object name}`,
//! i.e. the **XML API**, path-style:
//!
//! | object_store call | request | served as |
//! |---|---|---|
//! | `put_opts` | `PUT /b/o`, `x-goog-if-generation-match: 0` for `PutMode::Create`, `: <generation>` for `PutMode::Update` | 200 + `ETag`, `x-goog-generation`; 412 when the condition fails (→ `AlreadyExists` / `Precondition`) |
//! | `get_opts` / `head` | `GET`/`HEAD /b/o`, `Range`, `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`, `?generation=` | 200 / 206 + `Content-Range` / 304 / 412 / 416 / 404 |
//! | `delete` | `DELETE /b/o` | 204 / 404 |
//! | `copy` / `copy_if_not_exists` | `PUT /b/dst` + `x-goog-copy-source: b/src` (+ `x-goog-if-generation-match: 0`) | 200 / 404 / 412 |
//! | `put_multipart` | `POST /b/o?uploads`, `PUT /b/o?partNumber=N&uploadId=U`, `POST /b/o?uploadId=U` (CompleteMultipartUpload XML), `DELETE /b/o?uploadId=U` | InitiateMultipartUploadResult / part `ETag` / CompleteMultipartUploadResult / 204 |
//! | `list`, `list_with_offset`, `list_with_delimiter` | `GET /b?list-type=2&prefix=&delimiter=&start-after=&continuation-token=&max-keys=` | S3-style V2 `ListBucketResult` XML |
//!
//! Note that object_store 0.14.2 lists through the **XML** API (`list-type=2`),
//! not the JSON API. For other clients (gsutil-ish scripts, curl) a small
//! JSON API is also served: `GET /storage/v1/b/{b}/o` (`prefix`, `delimiter`,
//! `pageToken`, `maxResults`, `startOffset`, `endOffset`), object metadata
//! `GET /storage/v1/b/{b}/o/{o}`, media download with `?alt=media`, `DELETE`
//! of objects, bucket get/list/insert/delete, and simple media upload
//! `POST /upload/storage/v1/b/{b}/o?uploadType=media&name=…`.
//!
//! Buckets are implicit: any bucket name works and is created on first use.
//! Non-final multipart parts smaller than 5 MiB are rejected on completion
//! (`EntityTooSmall`), as real GCS does; see [`Config::min_part_size`].
//!
//! ## Pointing object_store at the fixture
//!
//! object_store never contacts the fixture for a token, but its GCS client
//! *always* asks its credential provider for one before a write (even with
//! `skip_signature`), and the default provider is the GCE metadata server. So
//! you must give it a static credential — either a bearer token, or a
//! service-account key with `"disable_oauth": true`. HTTP (not HTTPS) base
//! URLs are allowed by default by the GCS builder.
//!
//! ```no_run
//! # async fn f() -> object_store::Result<()> {
//! use object_store::gcp::GoogleCloudStorageBuilder;
//! let gcs = GoogleCloudStorageBuilder::new()
//!     .with_bucket_name("lake")
//!     .with_base_url("http://127.0.0.1:4443") // no trailing slash, no bucket
//!     .with_bearer_token("fake") // any string; ignored by the fixture
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! Equivalent alternatives:
//!
//! * **Environment, for `GoogleCloudStorageBuilder::from_env()`:**
//!   `GOOGLE_BASE_URL=http://127.0.0.1:4443`, `GOOGLE_BEARER_TOKEN=fake`,
//!   `GOOGLE_BUCKET=lake` (or `GOOGLE_BUCKET_NAME`, or `.with_url("gs://lake")`).
//! * **Config keys** (`with_config`, `object_store::parse_url_opts`):
//!   `google_base_url` / `base_url`, `google_bearer_token` / `bearer_token`,
//!   `google_bucket` / `bucket`.
//! * **Service-account key** (`GOOGLE_SERVICE_ACCOUNT_KEY=<json>` /
//!   `with_service_account_key`, or a file via `GOOGLE_SERVICE_ACCOUNT` /
//!   `with_service_account_path`):
//!   `{"gcs_base_url": "http://127.0.0.1:4443", "disable_oauth": true,
//!   "client_email": "", "private_key": "", "private_key_id": ""}` —
//!   `private_key_id` is required by object_store's parser even though its
//!   docs omit it. An explicit base URL takes precedence over `gcs_base_url`.
//!
//! `with_skip_signature(true)` alone does **not** work (writes would still try
//! the metadata server). Signed URLs (`Signer`) are not supported.
//!
//! ## Running it
//!
//! In-process (tests): [`spawn`] binds `127.0.0.1:0` and returns a
//! [`RunningFakeGcs`] with the base URL; or bind your own listener and call
//! [`serve`] / [`FakeGcs::serve`]. As a process:
//! `landfall-fakegcs --port 4443 --bucket lake [--bucket other] [--root DIR]`
//! prints `listening on http://127.0.0.1:PORT` once bound (use `--port 0` for
//! an ephemeral port). Storage is in memory unless `--root`/[`Config::root`]
//! is given, in which case objects are also written through to that
//! directory and reloaded on start (in-flight multipart uploads are not).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod common;
mod json;
mod store;
mod xml;

use store::Store;
pub use store::DEFAULT_MIN_PART_SIZE;

/// Fixture configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persist objects under this directory (write-through, reloaded on
    /// start). `None` = memory only.
    pub root: Option<PathBuf>,
    /// Buckets to create up front. Others are created on first use anyway.
    pub buckets: Vec<String>,
    /// Minimum size of every multipart part except the last. Defaults to
    /// 5 MiB like real GCS; set to 0 to accept tiny parts.
    pub min_part_size: u64,
    /// Keep overwritten/deleted generations readable via `?generation=`
    /// (`GetOptions::version`), like a bucket with Object Versioning. Off by
    /// default, like a default GCS bucket; kept in memory only.
    pub versioning: bool,
    /// Log one line per request to stderr.
    pub log_requests: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: None,
            buckets: Vec::new(),
            min_part_size: DEFAULT_MIN_PART_SIZE,
            versioning: false,
            log_requests: false,
        }
    }
}

/// The fixture server (cheaply cloneable; clones share state).
#[derive(Debug, Clone)]
pub struct FakeGcs {
    store: Arc<Store>,
    log_requests: bool,
}

impl FakeGcs {
    pub fn new(config: Config) -> io::Result<Self> {
        let store = Store::open(config.root, config.min_part_size, config.versioning)?;
        for b in &config.buckets {
            store.create_bucket(b).map_err(common::store_error_to_io)?;
        }
        Ok(FakeGcs {
            store: Arc::new(store),
            log_requests: config.log_requests,
        })
    }

    /// The axum router serving both APIs (everything goes through one
    /// fallback handler that dispatches on the raw path).
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Serve on `listener` until the future is dropped or fails.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}

/// Serve an in-memory (or, with `root`, directory-backed) fixture on an
/// already-bound listener. Runs until dropped/aborted.
pub async fn serve(listener: TcpListener, root: Option<PathBuf>) -> io::Result<()> {
    FakeGcs::new(Config {
        root,
        ..Config::default()
    })?
    .serve(listener)
    .await
}

/// A fixture running on a background tokio task; aborted on drop.
#[derive(Debug)]
pub struct RunningFakeGcs {
    addr: SocketAddr,
    task: JoinHandle<io::Result<()>>,
}

impl RunningFakeGcs {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — pass to `GoogleCloudStorageBuilder::with_base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningFakeGcs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bind `127.0.0.1:0` and serve `config` on a spawned task.
pub async fn spawn(config: Config) -> io::Result<RunningFakeGcs> {
    let server = FakeGcs::new(config)?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(server.serve(listener));
    Ok(RunningFakeGcs { addr, task })
}

/// A parsed request, independent of the API flavour.
pub(crate) struct Ctx {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub query: common::Query,
    pub body: Bytes,
}

async fn handle(State(app): State<FakeGcs>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("reading body: {e}")).into_response();
        }
    };
    let ctx = Ctx {
        query: common::Query::parse(parts.uri.query()),
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    let path = ctx.uri.path();
    let mut resp = if path == "/storage/v1" || path.starts_with("/storage/v1/") {
        json::handle(&app.store, &ctx)
    } else if path.starts_with("/upload/storage/v1/") {
        json::handle_upload(&app.store, &ctx)
    } else {
        xml::handle(&app.store, &ctx)
    };
    if ctx.method == Method::HEAD {
        // Keep headers (incl. Content-Length), drop the body.
        *resp.body_mut() = Body::empty();
    }
    if app.log_requests {
        eprintln!(
            "landfall-fakegcs: {} {} -> {}",
            ctx.method,
            ctx.uri,
            resp.status().as_u16()
        );
    }
    resp
}
