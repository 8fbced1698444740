//! Test harness: real processes (the tansu broker, moto's S3 server, the `landfall` binary), a
//! producer, Parquet read-back, the exactly-once check, and a fault-injecting object store.
//!
//! Every wait here is a condition polled against a deadline, never a bare sleep.

pub mod faults;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, Int32Array, Int64Array, StringArray};
use arrow::datatypes::Int64Type;
use landfall_core::buffer::{BufferFormat, PartitionBuffer, SealedBatch};
use landfall_core::flush::FlushReason;
use landfall_core::manifest::{Manifest, OffsetRange};
use landfall_core::{KafkaRecord, TopicPartition};
use landfall_store::{scan, Location};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_port(port: u16, timeout: Duration, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not open port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("LANDFALL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/landfall")
        })
}

/// The tansu binary: `TANSU_BIN`, else the cache `scripts/ensure-tools.sh` fills.
pub fn tansu_bin() -> PathBuf {
    std::env::var_os("TANSU_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("tansu-0.6.0/bin/tansu"))
}

/// The Python with moto, pyarrow and duckdb: `LANDFALL_PYTHON` (set by `scripts/ensure-tools.sh`).
pub fn python() -> PathBuf {
    std::env::var_os("LANDFALL_PYTHON")
        .map(PathBuf::from)
        .expect("LANDFALL_PYTHON is not set: run `eval \"$(scripts/ensure-tools.sh)\"` first")
}

/// Storage engine of a test broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite: correct under seeks and restarts; every exactly-once test uses it.
    Sqlite,
    /// In-memory: fast, but loses records when a fetch starts inside a batch. Throughput only.
    Memory,
}

/// A tansu broker on its own port and storage.
pub struct Broker {
    pub port: u16,
    engine: Engine,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Broker {
    pub fn start(engine: Engine) -> Broker {
        let mut b = Broker {
            port: free_port(),
            engine,
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        if std::env::var_os("LANDFALL_KEEP_TEST_DIRS").is_some() {
            b.dir.disable_cleanup(true);
            eprintln!("broker dir kept: {}", b.dir.path().display());
        }
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let storage = match self.engine {
            // tansu resolves a sqlite path against its working directory.
            Engine::Sqlite => "sqlite://tansu.db".to_string(),
            Engine::Memory => "memory://tansu/".to_string(),
        };
        let log = self.dir.path().join("tansu.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut child = Command::new(tansu_bin())
            .args([
                "broker",
                "--cluster-id",
                "landfall-test",
                "--storage-engine",
                &storage,
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .current_dir(self.dir.path())
            // TANSU_LOG=info shows the coordinator's decisions (joins, missed heartbeats).
            .env(
                "RUST_LOG",
                std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start tansu at {}: {e} (run scripts/ensure-tools.sh)",
                    tansu_bin().display()
                )
            });
        wait_port(
            self.port,
            Duration::from_secs(30),
            &mut child,
            "tansu",
            &log,
        );
        self.child = Some(child);
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kill the broker (SIGKILL) and start it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn start_again(&mut self) {
        self.spawn();
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("admin client");
        // On a thread of its own so this works from sync and async tests alike.
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("rt");
                rt.block_on(admin.create_topics(
                    &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                    &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
                ))
            })
            .join()
            .expect("admin thread")
        });
        r.expect("create topics request")[0]
            .as_ref()
            .expect("topic created");
        // Wait until metadata shows every partition.
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("consumer");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = c
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
                .unwrap_or(0);
            if n == partitions as usize {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "topic {topic} has {n} of {partitions} partitions"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// High watermark of each partition.
    pub fn high_watermarks(&self, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("consumer");
        (0..partitions)
            .map(|p| {
                (
                    p,
                    c.fetch_watermarks(topic, p, Duration::from_secs(10))
                        .expect("watermarks")
                        .1,
                )
            })
            .collect()
    }

    /// Committed offsets and metadata of a group.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> BTreeMap<i32, (i64, String)> {
        committed_with_metadata(&self.bootstrap(), group, topic, partitions)
    }
}

/// Committed offsets of a group.
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    committed_with_metadata(bootstrap, group, topic, partitions)
        .into_iter()
        .map(|(p, (o, _))| (p, o))
        .collect()
}

fn committed_with_metadata(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, (i64, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some((e.partition(), (o, e.metadata().to_string()))),
            _ => None,
        })
        .collect()
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An idempotent producer (no duplicates from its own retries, so the produced set is exact).
pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

/// A JSON test record whose body names its own sequence number.
pub fn json_record(seq: u64) -> String {
    format!(
        r#"{{"seq":{seq},"name":"record-{seq}","amount":{}.25,"ts":"2026-11-21T10:{:02}:00Z"}}"#,
        seq % 1000,
        seq % 60
    )
}

/// Produce `values` round-robin over `partitions`; returns how many went to each partition.
pub async fn produce(
    p: &FutureProducer,
    topic: &str,
    partitions: i32,
    values: impl IntoIterator<Item = (u64, String)>,
) -> BTreeMap<i32, u64> {
    let mut counts = BTreeMap::new();
    let mut pending = Vec::new();
    for (seq, v) in values {
        let part = (seq % partitions as u64) as i32;
        let key = seq.to_string();
        let fut = p
            .send_result(
                FutureRecord::to(topic)
                    .partition(part)
                    .key(&key)
                    .payload(&v),
            )
            .expect("enqueue");
        pending.push(fut);
        *counts.entry(part).or_insert(0) += 1;
        if pending.len() >= 5000 {
            for f in pending.drain(..) {
                f.await.expect("delivery").expect("delivered");
            }
        }
    }
    for f in pending {
        f.await.expect("delivery").expect("delivered");
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    counts
}

/// A sealed batch of [`json_record`]s covering `offsets` of one partition, encoded with `fmt`
/// exactly as the sink encodes it: what `landfall_runtime::land::land` takes.
pub fn sealed_json_batch(
    fmt: &BufferFormat,
    topic: &str,
    partition: i32,
    offsets: OffsetRange,
    attempt_id: &str,
) -> SealedBatch {
    let mut buffer = PartitionBuffer::new(TopicPartition::new(topic, partition));
    for offset in offsets.first..=offsets.last {
        buffer.push(
            KafkaRecord {
                topic: topic.into(),
                partition,
                offset,
                timestamp_ms: Some(0),
                key: None,
                value: Some(json_record(offset as u64).into()),
                headers: vec![],
            },
            0,
        );
    }
    buffer
        .seal(fmt, FlushReason::Records, offsets, attempt_id, 0)
        .expect("the test records encode")
        .expect("the batch holds records")
}

/// Every commit record of a sink.
pub async fn manifests(markers: &Location, sink: &str) -> Vec<Manifest> {
    scan::load_commits(markers, sink)
        .await
        .expect("load commits")
        .0
}

/// (topic, partition, offset) of every row of every file the manifests list, read from Parquet.
pub async fn landed_offsets(data: &Location, manifests: &[Manifest]) -> Vec<(String, i32, i64)> {
    let mut out = Vec::new();
    for m in manifests {
        for f in &m.files {
            let key = data
                .key_of_url(&f.url)
                .unwrap_or_else(|| panic!("{} outside {}", f.url, data.display()));
            let bytes = landfall_store::io::get(data, &key)
                .await
                .expect("get")
                .unwrap_or_else(|| panic!("{} listed but missing", f.url));
            assert_eq!(bytes.len() as u64, f.size_bytes, "{} size", f.url);
            assert_eq!(
                landfall_core::manifest::sha256_hex(&bytes),
                f.sha256,
                "{} checksum",
                f.url
            );
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .expect("parquet")
                .build()
                .expect("reader");
            let mut rows = 0u64;
            for batch in reader {
                let batch = batch.expect("batch");
                rows += batch.num_rows() as u64;
                let topics = batch
                    .column_by_name("_topic")
                    .expect("_topic")
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("utf8")
                    .clone();
                let parts = batch
                    .column_by_name("_partition")
                    .expect("_partition")
                    .as_any()
                    .downcast_ref::<Int32Array>()
                    .expect("i32")
                    .clone();
                let offsets: Int64Array = batch
                    .column_by_name("_offset")
                    .expect("_offset")
                    .as_primitive::<Int64Type>()
                    .clone();
                for i in 0..batch.num_rows() {
                    out.push((
                        topics.value(i).to_string(),
                        parts.value(i),
                        offsets.value(i),
                    ));
                }
            }
            assert_eq!(rows, f.rows, "{} row count", f.url);
        }
    }
    out
}

/// The exactly-once check: the landed (partition, offset) multiset equals offsets `0..count` of
/// each partition, each once; the manifests tile each partition; every file is in one manifest.
pub fn assert_exactly_once(
    topic: &str,
    produced: &BTreeMap<i32, u64>,
    manifests: &[Manifest],
    landed: &[(String, i32, i64)],
) {
    let mut seen: HashMap<(i32, i64), u32> = HashMap::new();
    for (t, p, o) in landed {
        assert_eq!(t, topic);
        *seen.entry((*p, *o)).or_insert(0) += 1;
    }
    let dups: Vec<_> = seen
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(k, n)| (*k, *n))
        .collect();
    assert!(
        dups.is_empty(),
        "duplicated offsets (partition, offset) x times: {:?}",
        &dups[..dups.len().min(20)]
    );
    for (&p, &n) in produced {
        let missing: Vec<i64> = (0..n as i64)
            .filter(|o| !seen.contains_key(&(p, *o)))
            .collect();
        assert!(
            missing.is_empty(),
            "partition {p}: {} of {n} offsets missing, first {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
    }
    let expected: u64 = produced.values().sum();
    assert_eq!(landed.len() as u64, expected, "landed rows");
    // Manifests tile each partition from 0 without gaps or overlaps.
    let mut by_p: BTreeMap<i32, Vec<&Manifest>> = BTreeMap::new();
    for m in manifests {
        by_p.entry(m.partition).or_default().push(m);
    }
    for (p, ms) in by_p.iter_mut() {
        ms.sort_by_key(|m| m.offsets.first);
        let mut next = 0;
        for m in ms.iter() {
            assert_eq!(
                m.offsets.first, next,
                "partition {p}: commit chain broken at {next}"
            );
            next = m.offsets.next;
        }
        assert_eq!(
            next as u64, produced[p],
            "partition {p}: chain ends at {next}"
        );
    }
    let mut files: HashMap<&str, u32> = HashMap::new();
    for m in manifests {
        for f in &m.files {
            *files.entry(f.url.as_str()).or_insert(0) += 1;
        }
    }
    assert!(
        files.values().all(|&n| n == 1),
        "a file is listed by more than one manifest"
    );
    eprintln!(
        "exactly once: {topic}: {} rows read back = {expected} produced over {} partition(s), \
         {} commits, {} files; no duplicate, no missing offset",
        landed.len(),
        produced.len(),
        manifests.len(),
        files.len()
    );
}

/// moto's S3 server on its own port with bucket `lake`.
pub struct S3Server {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl S3Server {
    pub fn start() -> S3Server {
        Self::spawn(false)
    }

    /// A server that checks credentials (moto's IAM enforcement after its first request, which
    /// creates the bucket): keys it does not know get 403 InvalidAccessKeyId.
    pub fn start_with_auth() -> S3Server {
        Self::spawn(true)
    }

    fn spawn(enforce_auth: bool) -> S3Server {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("moto.log");
        let out = std::fs::File::create(&log).expect("log");
        let py = python();
        let mut cmd = Command::new(&py);
        if enforce_auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "1");
        }
        let mut child = cmd
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start moto");
        wait_port(port, Duration::from_secs(30), &mut child, "moto", &log);
        let status = Command::new(&py)
            .args(["-c", &format!("import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test').create_bucket(Bucket='lake')")])
            .stdout(Stdio::null())
            .status()
            .expect("create bucket");
        assert!(status.success(), "create bucket lake");
        S3Server {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Turn IAM enforcement on or off while running (moto's `/moto-api/reset-auth`). On, the
    /// `test` keys of [`S3Server::options`] are unknown to IAM: every request gets 403
    /// InvalidAccessKeyId, as when a sink's credentials are revoked.
    pub fn enforce_auth(&self, on: bool) {
        use std::io::{Read, Write};
        let body = if on { "0" } else { "inf" };
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("moto");
        write!(
            s,
            "POST /moto-api/reset-auth HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("reset-auth");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("reset-auth answer");
        assert!(
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
            "{answer}"
        );
    }

    /// object_store options for a sink config's `[store].options`.
    pub fn options(&self) -> BTreeMap<String, String> {
        s3_options(&self.endpoint())
    }
}

/// `[store].options` for an S3 endpoint over plain HTTP with moto's `test` keys.
pub fn s3_options(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `landfall run` process.
pub struct SinkProcess {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

/// Path of the landfall binary under test (`CARGO_BIN_EXE_landfall` from the test crate).
impl SinkProcess {
    pub fn start(bin: &Path, config: &Path, env: &[(&str, &str)], log: PathBuf) -> SinkProcess {
        let metrics_port = free_port();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--config"])
            .arg(config)
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .env(
                "LANDFALL_LOG",
                std::env::var("LANDFALL_TEST_SINK_LOG")
                    .unwrap_or_else(|_| "info,landfall_runtime=debug,rdkafka=warn".into()),
            )
            .env("LANDFALL_LOG_FORMAT", "json")
            .stdout(out.try_clone().expect("dup"))
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start landfall");
        SinkProcess {
            child,
            metrics_port,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for exit; returns the exit code.
    pub fn terminate(mut self, timeout: Duration) -> Option<i32> {
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                eprintln!(
                    "sink did not exit within {timeout:?}; last log lines:\n{}",
                    self.log_tail(30)
                );
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `n` lines of the sink's log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(n).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// A metric's value summed over its label sets, from /metrics.
    pub fn metric(&self, name: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        let mut total = None;
        for line in body.lines() {
            if line.starts_with(name)
                && (line[name.len()..].starts_with('{') || line[name.len()..].starts_with(' '))
            {
                let v: f64 = line.rsplit(' ').next()?.parse().ok()?;
                total = Some(total.unwrap_or(0.0) + v);
            }
        }
        total
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        // A test failed while this sink was still running: its log is the evidence, and the
        // temporary directory holding it is about to be deleted.
        if std::thread::panicking() {
            eprintln!(
                "--- sink pid {} ({}) still running at test failure; last log lines:\n{}",
                self.child.id(),
                self.log.display(),
                self.log_tail(60)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write a sink config to `dir/name.toml` and return its path.
pub fn write_config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, body).expect("write config");
    p
}

/// `[store.options]`-style inline table.
pub fn inline_table(opts: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = opts.iter().map(|(k, v)| format!("{k} = \"{v}\"")).collect();
    format!("{{ {} }}", items.join(", "))
}
