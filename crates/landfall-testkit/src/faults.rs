//! A fault-injecting object store: wraps a real store and, at random, fails a request before it
//! reaches the store (a 503), fails it after the store has done it (a timeout with an unknown
//! outcome), or delays it. Lets tests drive every error path of the commit protocol on purpose.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, Default)]
pub struct FaultConfig {
    /// Chance a request fails before reaching the store.
    pub fail_before: f64,
    /// Chance a write succeeds at the store but the caller sees an error (unknown outcome).
    pub fail_after: f64,
    /// Chance a request is delayed by `delay`.
    pub delay_rate: f64,
    pub delay: Duration,
    /// Chance a create-only put is answered the way S3 answers two writers racing on one key
    /// (409 `ConditionalRequestConflict`, which object_store reports as `AlreadyExists`) while
    /// the object is not there yet: the other writer's put is still in flight.
    pub conflict_on_create: f64,
    /// Multipart uploads: part number `n` (0-based) and every later part fail with a 503, so a
    /// test can make a large upload fail mid-way, deterministically.
    pub fail_parts_from: Option<u64>,
}

#[derive(Debug, Default)]
pub struct FaultCounts {
    pub conflicts: AtomicU64,
    pub failed_before: AtomicU64,
    pub failed_after: AtomicU64,
    pub delayed: AtomicU64,
    /// Multipart uploads started, parts failed on purpose, uploads completed and aborted.
    pub multipart_started: AtomicU64,
    pub parts_failed: AtomicU64,
    pub multipart_completed: AtomicU64,
    pub multipart_aborted: AtomicU64,
}

/// A multipart upload that fails parts as configured and counts how the upload ended, so a test
/// can tell an aborted upload from one left with its parts in the store.
#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    fail_from: Option<u64>,
    next_part: u64,
    counts: Arc<FaultCounts>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        let n = self.next_part;
        self.next_part += 1;
        if self.fail_from.is_some_and(|from| n >= from) {
            self.counts.parts_failed.fetch_add(1, Ordering::Relaxed);
            return Box::pin(async move { Err(injected(&format!("503 on upload part {n}"))) });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let r = self.inner.complete().await;
        if r.is_ok() {
            self.counts
                .multipart_completed
                .fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn abort(&mut self) -> Result<()> {
        self.counts
            .multipart_aborted
            .fetch_add(1, Ordering::Relaxed);
        self.inner.abort().await
    }
}

pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    cfg: FaultConfig,
    rng: Mutex<StdRng>,
    enabled: AtomicBool,
    pub counts: Arc<FaultCounts>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected fault: {what}").into(),
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, cfg: FaultConfig, seed: u64) -> Self {
        FaultyStore {
            inner,
            cfg,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            enabled: AtomicBool::new(true),
            counts: Arc::new(FaultCounts::default()),
        }
    }

    /// Stop injecting (so a test can let the sink catch up cleanly at the end).
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
    }

    fn roll(&self, p: f64) -> bool {
        self.enabled.load(Ordering::SeqCst)
            && p > 0.0
            && self.rng.lock().expect("rng").random_bool(p.min(1.0))
    }

    async fn before(&self, op: &str) -> Result<()> {
        if self.roll(self.cfg.delay_rate) {
            self.counts.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.cfg.delay).await;
        }
        if self.roll(self.cfg.fail_before) {
            self.counts.failed_before.fetch_add(1, Ordering::Relaxed);
            return Err(injected(&format!("503 SlowDown on {op}")));
        }
        Ok(())
    }

    fn after<T>(&self, op: &str, r: Result<T>) -> Result<T> {
        match r {
            Ok(_) if self.roll(self.cfg.fail_after) => {
                self.counts.failed_after.fetch_add(1, Ordering::Relaxed);
                Err(injected(&format!(
                    "connection reset after {op} was applied"
                )))
            }
            r => r,
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.before("put").await?;
        if matches!(opts.mode, object_store::PutMode::Create)
            && self.roll(self.cfg.conflict_on_create)
        {
            self.counts.conflicts.fetch_add(1, Ordering::Relaxed);
            return Err(object_store::Error::AlreadyExists {
                path: location.to_string(),
                source: "injected fault: 409 ConditionalRequestConflict".into(),
            });
        }
        let r = self.inner.put_opts(location, payload, opts).await;
        self.after("put", r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.before("multipart upload").await?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        self.counts
            .multipart_started
            .fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(FaultyUpload {
            inner,
            fail_from: self.cfg.fail_parts_from,
            next_part: 0,
            counts: self.counts.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.before("get").await?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.roll(self.cfg.fail_before) {
            self.counts.failed_before.fetch_add(1, Ordering::Relaxed);
            return stream::once(async { Err(injected("503 on list")) }).boxed();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.roll(self.cfg.fail_before) {
            self.counts.failed_before.fetch_add(1, Ordering::Relaxed);
            return stream::once(async { Err(injected("503 on list")) }).boxed();
        }
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.before("list").await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.before("copy").await?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// A minimal HTTP/1.1 server on a loopback port that answers every request with `status` and an
/// S3-style XML error body (status 0: drops the connection unanswered). Point an S3 location's
/// `aws_endpoint` at it to get any answer on purpose — which no emulator offers. Runs until the
/// test's runtime ends; returns the endpoint URL.
pub async fn answering_http(status: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                // The answer does not depend on the request; read what arrives with the head.
                let _ = tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await;
                if status == 0 {
                    return;
                }
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>Test{status}</Code><Message>answered {status}</Message></Error>"
                );
                let head = format!(
                    "HTTP/1.1 {status} Test\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}
