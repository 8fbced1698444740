//! Shared helpers of the integration tests: sink configs, stores, running a sink in-process.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use landfall_core::config::SinkConfig;
use landfall_core::manifest::Manifest;
use landfall_runtime::{run_sink, Metrics, SinkContext, SinkStores};
use landfall_store::{Location, OpenOptions};
use landfall_testkit::{eventually, inline_table, manifests, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use tokio_util::sync::CancellationToken;

/// Where a test lands: data URL, marker URL and store options.
#[derive(Clone)]
pub struct Target {
    pub data: String,
    pub markers: String,
    pub options: BTreeMap<String, String>,
}

impl Target {
    pub fn local(dir: &Path) -> Target {
        Target {
            data: format!("file://{}/data", dir.display()),
            markers: format!("file://{}/markers", dir.display()),
            options: BTreeMap::new(),
        }
    }
}

pub const DECLARED_FIELDS: &str = r#"fields = [
  { name = "seq", type = "int64", nullable = false },
  { name = "name", type = "string" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "ts", type = "timestamp" },
]"#;

/// A sink config; `extra` is appended verbatim (more tables).
pub fn sink_toml(
    name: &str,
    topic: &str,
    bootstrap: &str,
    t: &Target,
    flush: &str,
    extra: &str,
) -> String {
    let opts = if t.options.is_empty() {
        String::new()
    } else {
        format!("options = {}\n", inline_table(&t.options))
    };
    format!(
        r#"name = "{name}"
topics = ["{topic}"]

[kafka]
bootstrap_servers = "{bootstrap}"
session_timeout_ms = 6000

[format]
type = "json"
{DECLARED_FIELDS}

[flush]
{flush}

[store]
url = "{data}"
max_retries = 3
request_timeout_ms = 10000
{opts}
[marker]
prefix = "{markers}"
{marker_opts}
{extra}
"#,
        data = t.data,
        markers = t.markers,
        marker_opts = if t.options.is_empty() {
            String::new()
        } else {
            format!("options = {}\n", inline_table(&t.options))
        },
    )
}

pub fn parse(toml: &str) -> SinkConfig {
    SinkConfig::from_toml(toml, Path::new("test.toml"), &|k| std::env::var(k).ok())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn open_opts(t: &Target) -> OpenOptions {
    OpenOptions {
        options: t.options.clone(),
        max_retries: 3,
        request_timeout: Duration::from_secs(10),
    }
}

/// The sink's stores, opened the way `landfall run` opens them (the target's options are in
/// the config `sink_toml` wrote).
pub fn stores(cfg: &SinkConfig, _t: &Target) -> SinkStores {
    SinkStores::open(cfg).expect("open the sink's stores")
}

/// A sink running in this process.
pub struct RunningSink {
    pub token: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), landfall_runtime::SinkError>>,
    pub metrics: Metrics,
}

pub fn start_sink(cfg: SinkConfig, stores: SinkStores, writer: &str) -> RunningSink {
    let token = CancellationToken::new();
    let metrics = Metrics::new();
    let ctx = SinkContext {
        config: cfg,
        stores,
        metrics: metrics.clone(),
        writer_id: writer.to_string(),
    };
    let task = tokio::spawn(run_sink(ctx, token.clone()));
    RunningSink {
        token,
        task,
        metrics,
    }
}

impl RunningSink {
    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("sink stops within 60 s")
            .expect("sink task did not panic")
            .expect("sink stopped cleanly");
    }
}

/// Wait until the commit chain of every partition reaches `produced` (count per partition).
pub async fn await_landed(
    markers: &Location,
    sink: &str,
    produced: &BTreeMap<i32, u64>,
    timeout: Duration,
) -> Vec<Manifest> {
    // The last progress seen, so that a timeout says which partitions were behind.
    let progress = std::sync::Mutex::new(BTreeMap::<i32, i64>::new());
    let landed = tokio::time::timeout(
        timeout,
        eventually("every produced offset committed", timeout * 2, || async {
            let ms = manifests(markers, sink).await;
            let mut next: BTreeMap<i32, i64> = BTreeMap::new();
            for m in &ms {
                let e = next.entry(m.partition).or_insert(0);
                *e = (*e).max(m.offsets.next);
            }
            let done = produced
                .iter()
                .all(|(p, n)| next.get(p).copied().unwrap_or(0) >= *n as i64);
            *progress.lock().unwrap() = next;
            done.then_some(ms)
        }),
    )
    .await;
    match landed {
        Ok(ms) => ms,
        Err(_) => panic!(
            "timed out after {timeout:?} waiting for every produced offset committed: \
             produced (partition -> records) {produced:?}, committed up to {:?}",
            progress.lock().unwrap()
        ),
    }
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn broker() -> Broker {
    Broker::start(landfall_testkit::Engine::Sqlite)
}

/// Store options that point object_store's GCS backend at the fixture.
pub fn gcs_options(gcs: &landfall_fakegcs::RunningFakeGcs) -> BTreeMap<String, String> {
    [
        ("google_base_url", gcs.base_url()),
        ("google_bearer_token", "test".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The GCS fixture with bucket `lake`, in this process.
pub async fn gcs_fixture() -> landfall_fakegcs::RunningFakeGcs {
    landfall_fakegcs::spawn(landfall_fakegcs::Config {
        buckets: vec!["lake".into()],
        ..Default::default()
    })
    .await
    .expect("start the GCS fixture")
}

/// A test's scratch directory (configs, sink logs, local stores). With
/// `LANDFALL_KEEP_TEST_DIRS=1` it outlives the test, so a failure's logs can be read afterwards.
pub fn test_dir() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().expect("tempdir");
    if std::env::var_os("LANDFALL_KEEP_TEST_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("test dir kept: {}", dir.path().display());
    }
    dir
}

/// One consumed notification.
#[derive(Debug)]
pub struct Consumed {
    pub key: String,
    pub headers: BTreeMap<String, String>,
    pub value: Vec<u8>,
}

/// Every message of partition 0 of `topic`, read from the start up to the high watermark.
pub fn consume_all(bootstrap: &str, topic: &str) -> Vec<Consumed> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let high = c
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks")
        .1;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut next = 0;
    while next < high {
        assert!(
            std::time::Instant::now() < deadline,
            "read {next} of {high} notifications"
        );
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("consume a notification");
        next = m.offset() + 1;
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Consumed {
            key: String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
            headers,
            value: m.payload().unwrap_or_default().to_vec(),
        });
    }
    out
}

/// The `landfall` binary the process tests run: `LANDFALL_BIN` if set (as the Python tests do),
/// else the one cargo built for this test.
pub fn landfall_bin() -> std::path::PathBuf {
    std::env::var_os("LANDFALL_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_landfall").into())
}
