//! End-to-end throughput harness: a memory-engine tansu broker, a topic filled with ~1 KiB JSON
//! events, a raw rdkafka consumer as the broker's ceiling in this run, then the real `landfall`
//! binary landing the same topic as Parquet on local disk.
//!
//! The broker's fetch path is latency-bound (see `/work/shared/DESIGN.md`), so the absolute
//! records/s say more about tansu than about Landfall. What to read: the ratio landfall/raw (same
//! broker, same run, same librdkafka fetch settings), Landfall's CPU-seconds per GB of input, its
//! peak RSS, and the file-size check — every file sealed because it reached `max_file_bytes`
//! must be within ±10% of it.
//!
//! The sink's `max_age_ms` is 10 minutes, so after the last byte-triggered batch each partition
//! keeps a tail in memory. The harness waits until Landfall has consumed every record (its
//! `landfall_records_consumed_total` metric), sends SIGTERM, and stops the clock when the
//! manifests show every partition landed up to its end offset — the shutdown flush lands the
//! tails, as it would on a rolling restart. End offsets come from the producer's delivery
//! reports: tansu's memory engine under-reports the high watermark in ListOffsets.
//!
//! Exit status: 0 when every check passed, 1 when a check failed, 2 when the run itself failed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use landfall_bench::{event_record, sink_toml, timestamp_ms, Format, SinkSpec};
use landfall_core::manifest::Manifest;
use landfall_store::{scan, Location, OpenOptions};
use landfall_testkit::{Broker, Engine, SinkProcess};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};
use serde::Serialize;

const SINK: &str = "bench";
const TOPIC: &str = "events";
const MB: f64 = 1e6;
const GB: f64 = 1e9;

#[derive(Parser, Debug)]
#[command(
    name = "e2e",
    about = "End-to-end throughput of the landfall binary against a raw consumer on a tansu broker"
)]
struct Args {
    /// Gigabytes (10^9 bytes) of record values to produce.
    #[arg(long, default_value_t = 1.0)]
    gb: f64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// `[flush].max_file_bytes` of the sink; also the target of the ±10% file-size check.
    #[arg(long, default_value_t = 67_108_864)]
    max_file_bytes: u64,
    /// Size of each record value in bytes.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// The landfall binary (default: target/release/landfall, built if missing).
    #[arg(long)]
    landfall_bin: Option<PathBuf>,
    /// Also print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Record format the sink decodes.
    #[arg(long, value_enum, default_value = "declared")]
    format: Format,
    /// Producer `compression.type` (none, lz4, zstd, ...).
    #[arg(long, default_value = "none")]
    producer_compression: String,
    /// Extra librdkafka producer setting KEY=VALUE (repeatable), applied after the defaults.
    #[arg(long = "producer-option", value_parser = parse_kv)]
    producer_options: Vec<(String, String)>,
    /// `fetch.wait.max.ms` for both consumers (Landfall's own default is 100).
    #[arg(long, default_value_t = 100)]
    fetch_wait_max_ms: u64,
    /// `[runtime].max_buffered_bytes` of the sink (the memory budget).
    #[arg(long, default_value_t = 2 << 30)]
    max_buffered_bytes: u64,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Keep the working directory (config, landfall.log, data, markers) even when all passed.
    #[arg(long)]
    keep: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("e2e: run failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn note(msg: impl AsRef<str>) {
    eprintln!("[e2e] {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------------
// Report model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Report {
    cpus: usize,
    /// /proc/loadavg at the start and the end: other work on the machine skews the figures.
    loadavg_start: String,
    loadavg_end: String,
    format: &'static str,
    partitions: i32,
    record_bytes: usize,
    records: u64,
    input_bytes: u64,
    input_mb: f64,
    max_file_bytes: u64,
    fetch_wait_max_ms: u64,
    produce: Phase,
    raw: Consumed,
    landfall: Landfall,
    /// Landfall's records/s over the raw consumer's, both wall clock from client start.
    ratio: f64,
    /// The same ratio over the span from first to last record consumed.
    steady_ratio: f64,
    files: Files,
    size_check: SizeCheck,
    exactly_once: ExactlyOnce,
    workdir: Option<String>,
}

#[derive(Debug, Serialize)]
struct Phase {
    seconds: f64,
    records_per_s: f64,
    mb_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Consumed {
    /// Client created -> last record received.
    seconds: f64,
    first_record_after_s: f64,
    records_per_s: f64,
    mb_per_s: f64,
    /// Records/s from the first to the last record (group join excluded).
    steady_records_per_s: f64,
    /// CPU of the harness process while it consumed (librdkafka's threads included).
    cpu_seconds: f64,
    cpu_s_per_gb: f64,
    /// CPU the broker process spent meanwhile.
    broker_cpu_seconds: f64,
}

#[derive(Debug, Serialize)]
struct Landfall {
    bin: String,
    /// Process start -> every partition's manifests reach its high watermark.
    seconds: f64,
    first_consumed_after_s: f64,
    all_consumed_after_s: f64,
    records_per_s: f64,
    mb_per_s: f64,
    steady_records_per_s: f64,
    /// utime + stime of the process, up to its exit.
    cpu_seconds: f64,
    cpu_s_per_gb: f64,
    /// CPU the broker process spent meanwhile.
    broker_cpu_seconds: f64,
    /// VmHWM, last sample before exit.
    peak_rss_mb: f64,
    max_buffered_mb: f64,
    max_partitions_paused: f64,
    exit_code: Option<i32>,
}

#[derive(Debug, Serialize, Default)]
struct Files {
    count: usize,
    total_bytes: u64,
    min_bytes: u64,
    max_bytes: u64,
    mean_bytes: f64,
    /// flush reason -> batches, files, size stats.
    by_reason: BTreeMap<String, ReasonStats>,
    /// (partition, offsets first..=last, flush reason, size) of every file, in chain order.
    list: Vec<FileRow>,
}

#[derive(Debug, Serialize, Default)]
struct ReasonStats {
    batches: usize,
    files: usize,
    min_bytes: u64,
    max_bytes: u64,
    mean_bytes: f64,
}

#[derive(Debug, Serialize)]
struct FileRow {
    partition: i32,
    first_offset: i64,
    last_offset: i64,
    rows: u64,
    flush_reason: String,
    size_bytes: u64,
    deviation_pct: f64,
}

#[derive(Debug, Serialize)]
struct SizeCheck {
    target_bytes: u64,
    tolerance_pct: f64,
    checked_files: usize,
    min_deviation_pct: f64,
    max_deviation_pct: f64,
    mean_deviation_pct: f64,
    outside: Vec<String>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct ExactlyOnce {
    ok: bool,
    manifests: usize,
    records: u64,
    dead_lettered: u64,
    problems: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// /proc sampling
// ---------------------------------------------------------------------------------------------

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0)
}

/// (state, utime + stime in seconds) from /proc/<pid>/stat. A zombie still reports its final
/// CPU times, which is why the harness reads them before reaping the child.
fn proc_cpu(pid: &str, ticks: f64) -> Option<(char, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((state, (utime + stime) / ticks))
}

/// The pid of this process's child named `comm` (the tansu broker the testkit started).
fn child_named(comm: &str) -> Option<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().into_owned();
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let name = &s[s.find('(')? + 1..s.rfind(')')?];
        let ppid = s[s.rfind(')')? + 2..].split_whitespace().nth(1)?;
        (name == comm && ppid == me).then_some(pid)
    })
}

/// CPU seconds of `pid`, or 0 if it cannot be read.
fn cpu_of(pid: Option<&str>, ticks: f64) -> f64 {
    pid.and_then(|p| proc_cpu(p, ticks)).map_or(0.0, |c| c.1)
}

/// A `Vm*` line of /proc/<pid>/status in bytes.
fn proc_vm_bytes(pid: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Partition -> (records acknowledged, largest offset the broker assigned).
    partitions: Mutex<BTreeMap<i32, (i64, i64)>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                let mut parts = self.partitions.lock().expect("not poisoned");
                let (n, max) = parts.entry(m.partition()).or_insert((0, -1));
                *n += 1;
                *max = (*max).max(m.offset());
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("not poisoned");
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// What was produced: value bytes, and per partition the offsets the broker acknowledged as
/// (first, next) — taken from the delivery reports, not from ListOffsets, because tansu's
/// memory engine answers ListOffsets(latest) with the last batch's base offset + 1.
struct Produced {
    bytes: u64,
    marks: BTreeMap<i32, (i64, i64)>,
    phase: Phase,
}

/// Produce `records` events round-robin over the partitions.
fn produce(args: &Args, bootstrap: &str, records: u64) -> Result<Produced> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // Idempotent, so the topic holds exactly `records` records however librdkafka retries.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", &args.producer_compression)
        .set("message.timeout.ms", "300000");
    for (k, v) in &args.producer_options {
        config.set(k, v);
    }
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .context("create producer")?;
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut last_note = Instant::now();
    for seq in 0..records {
        let value = event_record(seq, args.record_bytes);
        let key = seq.to_string();
        bytes += value.len() as u64;
        let mut record = BaseRecord::to(TOPIC)
            .partition((seq % args.partitions as u64) as i32)
            .key(&key)
            .payload(&value)
            .timestamp(timestamp_ms(seq));
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("produce record {seq}: {e}"),
            }
        }
        if seq % 1024 == 0 {
            producer.poll(Duration::ZERO);
            if let Some(e) = producer
                .context()
                .first_error
                .lock()
                .expect("not poisoned")
                .as_ref()
            {
                bail!("delivery failed: {e}");
            }
        }
        if last_note.elapsed() > Duration::from_secs(10) {
            note(format!(
                "produced {seq}/{records} records ({:.0} MB/s)",
                bytes as f64 / MB / started.elapsed().as_secs_f64()
            ));
            last_note = Instant::now();
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .context("flush producer")?;
    let secs = started.elapsed().as_secs_f64();
    let ctx = producer.context();
    let (ok, failed) = (
        ctx.ok.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    if failed > 0 || ok != records {
        bail!(
            "{ok} of {records} records delivered, {failed} failed (first error: {:?})",
            ctx.first_error.lock().expect("not poisoned")
        );
    }
    let parts = ctx.partitions.lock().expect("not poisoned").clone();
    let mut marks = BTreeMap::new();
    for (p, (n, max)) in parts {
        // A fresh topic: offsets 0..n, each acknowledged once.
        if max + 1 != n {
            bail!("partition {p}: {n} records acknowledged but the largest offset is {max}");
        }
        marks.insert(p, (0, n));
    }
    Ok(Produced {
        bytes,
        marks,
        phase: Phase {
            seconds: secs,
            records_per_s: records as f64 / secs,
            mb_per_s: bytes as f64 / MB / secs,
        },
    })
}

/// Librdkafka settings Landfall's consumer uses (crates/landfall-kafka `client_config`), so the
/// raw consumer fetches the way Landfall does.
fn consumer_config(bootstrap: &str, group: &str, fetch_wait_max_ms: u64) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("queued.max.messages.kbytes", "65536")
        .set("fetch.wait.max.ms", fetch_wait_max_ms.to_string());
    c
}

/// (low, high) watermark of each partition.
fn watermarks(bootstrap: &str, partitions: i32) -> Result<BTreeMap<i32, (i64, i64)>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    (0..partitions)
        .map(|p| {
            Ok((
                p,
                c.fetch_watermarks(TOPIC, p, Duration::from_secs(10))
                    .with_context(|| format!("watermarks of partition {p}"))?,
            ))
        })
        .collect()
}

fn raw_consume(
    args: &Args,
    bootstrap: &str,
    marks: &BTreeMap<i32, (i64, i64)>,
    ticks: f64,
    broker: Option<&str>,
) -> Result<Consumed> {
    let me = std::process::id().to_string();
    let cpu0 = proc_cpu(&me, ticks).map_or(0.0, |c| c.1);
    let broker0 = cpu_of(broker, ticks);
    let started = Instant::now();
    let group = format!("bench-raw-{}-{}", std::process::id(), unique());
    let c: BaseConsumer = consumer_config(bootstrap, &group, args.fetch_wait_max_ms)
        .create()
        .context("create raw consumer")?;
    c.subscribe(&[TOPIC])?;
    let mut next: BTreeMap<i32, i64> = marks.iter().map(|(&p, &(lo, _))| (p, lo)).collect();
    let total: i64 = marks.values().map(|(lo, hi)| hi - lo).sum();
    let (mut records, mut bytes) = (0i64, 0u64);
    let mut first = None;
    let mut last = started;
    let deadline = started + Duration::from_secs(args.timeout_secs);
    while next.iter().any(|(p, n)| *n < marks[p].1) {
        if Instant::now() > deadline {
            bail!(
                "raw consumer: {records} of {total} records after {}s",
                args.timeout_secs
            );
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                records += 1;
                bytes += m.payload_len() as u64;
                next.insert(m.partition(), m.offset() + 1);
            }
            Some(Err(e)) => note(format!("raw consumer: {e}")),
            None => {}
        }
    }
    let cpu = proc_cpu(&me, ticks).map_or(0.0, |c| c.1) - cpu0;
    let broker_cpu = cpu_of(broker, ticks) - broker0;
    drop(c);
    if records != total {
        bail!("raw consumer read {records} records, the topic holds {total}");
    }
    let secs = (last - started).as_secs_f64();
    let first = first.expect("records > 0");
    let steady = (last - first).as_secs_f64().max(1e-9);
    Ok(Consumed {
        seconds: secs,
        first_record_after_s: (first - started).as_secs_f64(),
        records_per_s: records as f64 / secs,
        mb_per_s: bytes as f64 / MB / secs,
        steady_records_per_s: records as f64 / steady,
        cpu_seconds: cpu,
        cpu_s_per_gb: cpu / (bytes as f64 / GB),
        broker_cpu_seconds: broker_cpu,
    })
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn landfall_bin(args: &Args) -> Result<PathBuf> {
    if let Some(b) = &args.landfall_bin {
        return Ok(b.clone());
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/landfall");
    if !bin.exists() {
        note(format!(
            "{} is missing: cargo build --release -p landfall",
            bin.display()
        ));
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "landfall"])
            .current_dir(&root)
            .status()
            .context("run cargo build")?;
        if !status.success() {
            bail!("cargo build --release -p landfall failed ({status})");
        }
    }
    Ok(bin)
}

/// Per partition, the largest `offsets.next` the manifests reach.
fn landed_next(manifests: &[Manifest]) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for m in manifests {
        let n = next.entry(m.partition).or_insert(i64::MIN);
        *n = (*n).max(m.offsets.next);
    }
    next
}

fn all_landed(manifests: &[Manifest], marks: &BTreeMap<i32, (i64, i64)>) -> bool {
    let next = landed_next(manifests);
    marks
        .iter()
        .all(|(p, (lo, hi))| hi == lo || next.get(p) == Some(hi))
}

struct LandfallRun {
    result: Landfall,
    manifests: Vec<Manifest>,
}

#[allow(clippy::too_many_arguments)]
fn run_landfall(
    args: &Args,
    bin: &Path,
    dir: &Path,
    bootstrap: &str,
    marks: &BTreeMap<i32, (i64, i64)>,
    records: u64,
    input_bytes: u64,
    ticks: f64,
    broker: Option<&str>,
) -> Result<LandfallRun> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let data = dir.join("data");
    let markers = dir.join("markers");
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&markers)?;
    let markers_url = url::Url::from_directory_path(&markers)
        .map_err(|_| anyhow::anyhow!("{} is not absolute", markers.display()))?;
    let data_url = url::Url::from_directory_path(&data)
        .map_err(|_| anyhow::anyhow!("{} is not absolute", data.display()))?;
    let spec = SinkSpec {
        name: SINK.into(),
        topic: TOPIC.into(),
        bootstrap: bootstrap.into(),
        group_id: format!("landfall-bench-{}-{}", std::process::id(), unique()),
        format: args.format,
        data_url: data_url.as_str().trim_end_matches('/').into(),
        markers_url: markers_url.as_str().trim_end_matches('/').into(),
        max_file_bytes: args.max_file_bytes,
        max_records: 100_000_000,
        max_age_ms: 600_000,
        max_buffered_bytes: args.max_buffered_bytes,
        kafka_options: vec![(
            "fetch.wait.max.ms".into(),
            args.fetch_wait_max_ms.to_string(),
        )],
    };
    let config = landfall_testkit::write_config(dir, SINK, &sink_toml(&spec));
    let log = dir.join("landfall.log");
    let loc = Location::open(
        &markers_url,
        &OpenOptions {
            max_retries: 3,
            request_timeout: Duration::from_secs(30),
            ..OpenOptions::default()
        },
    )?;
    let load = |rt: &tokio::runtime::Runtime| -> Result<Vec<Manifest>> {
        Ok(rt.block_on(scan::load_commits(&loc, SINK))?.0)
    };

    note(format!(
        "starting {} (log: {})",
        bin.display(),
        log.display()
    ));
    let broker0 = cpu_of(broker, ticks);
    let started = Instant::now();
    let mut proc = SinkProcess::start(
        bin,
        &config,
        &[("LANDFALL_LOG", "info,rdkafka=warn")],
        log.clone(),
    );
    let pid = proc.pid().to_string();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let (mut first_consumed, mut landed_at) = (None, None);
    let (mut hwm_bytes, mut cpu, mut max_buffered, mut max_paused) = (0u64, 0.0f64, 0.0f64, 0.0f64);
    let mut last_note = Instant::now();
    let mut manifests: Vec<Manifest>;
    let fail = |why: String| -> anyhow::Error {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        anyhow::anyhow!(
            "{why}\n--- last lines of {} ---\n{}",
            log.display(),
            tail.join("\n")
        )
    };

    // Phase 1: until every record is in Landfall's buffers (or already landed).
    let all_consumed = loop {
        if let Some(status) = proc.try_wait() {
            return Err(fail(format!("landfall exited early with {status}")));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "landfall did not consume the topic within {}s",
                args.timeout_secs
            )));
        }
        let consumed = proc
            .metric("landfall_records_consumed_total")
            .unwrap_or(0.0) as u64;
        max_buffered = max_buffered.max(proc.metric("landfall_buffered_bytes").unwrap_or(0.0));
        max_paused = max_paused.max(proc.metric("landfall_partitions_paused").unwrap_or(0.0));
        if let Some(h) = proc_vm_bytes(&pid, "VmHWM") {
            hwm_bytes = hwm_bytes.max(h);
        }
        if let Some((_, c)) = proc_cpu(&pid, ticks) {
            cpu = c;
        }
        if consumed > 0 && first_consumed.is_none() {
            first_consumed = Some(started.elapsed());
        }
        manifests = load(&rt)?;
        if all_landed(&manifests, marks) {
            landed_at.get_or_insert(started.elapsed());
        }
        if consumed >= records || landed_at.is_some() {
            break started.elapsed();
        }
        if last_note.elapsed() > Duration::from_secs(5) {
            let landed: i64 = landed_next(&manifests)
                .iter()
                .map(|(p, n)| n - marks[p].0)
                .sum();
            note(format!(
                "landfall: consumed {consumed}/{records}, landed {landed}, {} manifests, RSS peak {:.0} MB, CPU {cpu:.1}s",
                manifests.len(),
                hwm_bytes as f64 / MB
            ));
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    // Phase 2: SIGTERM lands the tails; the clock stops when the manifests cover everything.
    note(format!(
        "landfall consumed every record after {:.1}s; SIGTERM to land the tails",
        started.elapsed().as_secs_f64()
    ));
    proc.signal("TERM");
    let term_deadline = Instant::now() + Duration::from_secs(120);
    // Not try_wait: reaping would remove /proc/<pid> before the final CPU reading; a zombie
    // still reports its CPU times.
    while let Some((state, c)) = proc_cpu(&pid, ticks) {
        cpu = c;
        if let Some(h) = proc_vm_bytes(&pid, "VmHWM") {
            hwm_bytes = hwm_bytes.max(h);
        }
        if state == 'Z' || state == 'X' {
            break;
        }
        if landed_at.is_none() {
            manifests = load(&rt)?;
            if all_landed(&manifests, marks) {
                landed_at = Some(started.elapsed());
            }
        }
        if Instant::now() > term_deadline {
            return Err(fail("landfall did not exit within 120s of SIGTERM".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let broker_cpu = cpu_of(broker, ticks) - broker0;
    let exit_code = proc.terminate(Duration::from_secs(10));
    manifests = load(&rt)?;
    if landed_at.is_none() && all_landed(&manifests, marks) {
        landed_at = Some(started.elapsed());
    }
    let Some(landed_at) = landed_at else {
        let next = landed_next(&manifests);
        return Err(fail(format!("landfall exited ({exit_code:?}) with partitions not landed: manifests reach {next:?}, high watermarks {marks:?}")));
    };
    let first_consumed = first_consumed.unwrap_or_default();
    let secs = landed_at.as_secs_f64();
    Ok(LandfallRun {
        result: Landfall {
            bin: bin.display().to_string(),
            seconds: secs,
            first_consumed_after_s: first_consumed.as_secs_f64(),
            all_consumed_after_s: all_consumed.as_secs_f64(),
            records_per_s: records as f64 / secs,
            mb_per_s: input_bytes as f64 / MB / secs,
            steady_records_per_s: records as f64
                / (all_consumed - first_consumed).as_secs_f64().max(1e-9),
            cpu_seconds: cpu,
            cpu_s_per_gb: cpu / (input_bytes as f64 / GB),
            broker_cpu_seconds: broker_cpu,
            peak_rss_mb: hwm_bytes as f64 / MB,
            max_buffered_mb: max_buffered / MB,
            max_partitions_paused: max_paused,
            exit_code,
        },
        manifests,
    })
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

const TOLERANCE: f64 = 0.10;

fn chain(manifests: &[Manifest]) -> BTreeMap<i32, Vec<&Manifest>> {
    let mut by_p: BTreeMap<i32, Vec<&Manifest>> = BTreeMap::new();
    for m in manifests {
        by_p.entry(m.partition).or_default().push(m);
    }
    for ms in by_p.values_mut() {
        ms.sort_by_key(|m| m.offsets.first);
    }
    by_p
}

fn files_and_sizes(manifests: &[Manifest], target: u64) -> (Files, SizeCheck) {
    let mut files = Files::default();
    let mut devs = Vec::new();
    let mut outside = Vec::new();
    for ms in chain(manifests).values() {
        for m in ms {
            let stats = files.by_reason.entry(m.flush_reason.clone()).or_default();
            stats.batches += 1;
            for f in &m.files {
                let dev = (f.size_bytes as f64 - target as f64) / target as f64;
                stats.files += 1;
                stats.min_bytes = if stats.files == 1 {
                    f.size_bytes
                } else {
                    stats.min_bytes.min(f.size_bytes)
                };
                stats.max_bytes = stats.max_bytes.max(f.size_bytes);
                stats.mean_bytes += f.size_bytes as f64;
                files.list.push(FileRow {
                    partition: m.partition,
                    first_offset: f.min_offset,
                    last_offset: f.max_offset,
                    rows: f.rows,
                    flush_reason: m.flush_reason.clone(),
                    size_bytes: f.size_bytes,
                    deviation_pct: dev * 100.0,
                });
                if m.flush_reason == "bytes" {
                    devs.push(dev);
                    if dev.abs() > TOLERANCE {
                        outside.push(format!(
                            "{} ({} bytes, {:+.1}%)",
                            f.key,
                            f.size_bytes,
                            dev * 100.0
                        ));
                    }
                }
            }
        }
    }
    for s in files.by_reason.values_mut() {
        if s.files > 0 {
            s.mean_bytes /= s.files as f64;
        }
    }
    let sizes: Vec<u64> = files.list.iter().map(|f| f.size_bytes).collect();
    files.count = sizes.len();
    files.total_bytes = sizes.iter().sum();
    files.min_bytes = sizes.iter().copied().min().unwrap_or(0);
    files.max_bytes = sizes.iter().copied().max().unwrap_or(0);
    files.mean_bytes = if sizes.is_empty() {
        0.0
    } else {
        files.total_bytes as f64 / sizes.len() as f64
    };
    let pct = |v: Option<f64>| v.map_or(0.0, |v| v * 100.0);
    let check = SizeCheck {
        target_bytes: target,
        tolerance_pct: TOLERANCE * 100.0,
        checked_files: devs.len(),
        min_deviation_pct: pct(devs.iter().copied().reduce(f64::min)),
        max_deviation_pct: pct(devs.iter().copied().reduce(f64::max)),
        mean_deviation_pct: pct(
            (!devs.is_empty()).then(|| devs.iter().sum::<f64>() / devs.len() as f64)
        ),
        // No byte-triggered file means the target was never exercised: that is not a pass.
        ok: !devs.is_empty() && outside.is_empty(),
        outside,
    };
    (files, check)
}

/// Cheap exactly-once check from the manifests: per partition the chain starts at the low
/// watermark, is contiguous, ends at the high watermark, and its record counts add up; every
/// listed file exists with the listed size.
fn exactly_once(
    manifests: &[Manifest],
    marks: &BTreeMap<i32, (i64, i64)>,
    data_dir: &Path,
) -> ExactlyOnce {
    let mut problems = Vec::new();
    let by_p = chain(manifests);
    let mut records = 0;
    let mut dead = 0;
    for (&p, &(lo, hi)) in marks {
        let ms = by_p.get(&p).map(Vec::as_slice).unwrap_or(&[]);
        let mut next = lo;
        let mut sum = 0u64;
        for m in ms {
            if m.offsets.first != next {
                problems.push(format!(
                    "partition {p}: chain broken at {next}: next manifest covers {}..={}",
                    m.offsets.first, m.offsets.last
                ));
            }
            if m.records != m.rows + m.dead_lettered {
                problems.push(format!(
                    "partition {p} {}..={}: records {} != rows {} + dead-lettered {}",
                    m.offsets.first, m.offsets.last, m.records, m.rows, m.dead_lettered
                ));
            }
            if m.records as i64 != m.offsets.next - m.offsets.first {
                problems.push(format!(
                    "partition {p} {}..={}: {} records for {} offsets",
                    m.offsets.first,
                    m.offsets.last,
                    m.records,
                    m.offsets.next - m.offsets.first
                ));
            }
            let file_rows: u64 = m.files.iter().map(|f| f.rows).sum();
            if file_rows != m.rows {
                problems.push(format!(
                    "partition {p} {}..={}: files hold {file_rows} rows, manifest says {}",
                    m.offsets.first, m.offsets.last, m.rows
                ));
            }
            for f in &m.files {
                let path = f
                    .url
                    .strip_prefix("file://")
                    .map_or_else(|| data_dir.join(&f.key), PathBuf::from);
                match std::fs::metadata(&path) {
                    Ok(md) if md.len() == f.size_bytes => {}
                    Ok(md) => problems.push(format!(
                        "{}: {} bytes on disk, manifest says {}",
                        f.key,
                        md.len(),
                        f.size_bytes
                    )),
                    Err(e) => problems.push(format!("{}: {e}", f.key)),
                }
            }
            next = m.offsets.next;
            sum += m.records;
            dead += m.dead_lettered;
        }
        if next != hi {
            problems.push(format!(
                "partition {p}: chain ends at {next}, high watermark is {hi}"
            ));
        }
        if sum as i64 != hi - lo {
            problems.push(format!(
                "partition {p}: manifests count {sum} records, the partition holds {}",
                hi - lo
            ));
        }
        records += sum;
    }
    if let Some(p) = by_p.keys().find(|p| !marks.contains_key(p)) {
        problems.push(format!(
            "manifests for partition {p}, which the topic does not have"
        ));
    }
    if dead > 0 {
        problems.push(format!(
            "{dead} records were dead-lettered; every generated record is valid"
        ));
    }
    ExactlyOnce {
        ok: problems.is_empty(),
        manifests: manifests.len(),
        records,
        dead_lettered: dead,
        problems,
    }
}

// ---------------------------------------------------------------------------------------------
// Main flow and printing
// ---------------------------------------------------------------------------------------------

fn run(args: &Args) -> Result<bool> {
    if args.partitions < 1 || args.record_bytes < 200 || args.gb <= 0.0 {
        bail!("need --partitions >= 1, --record-bytes >= 200 and --gb > 0");
    }
    let ticks = clock_ticks();
    let loadavg_start = loadavg();
    let bin = landfall_bin(args)?;
    if !bin.exists() {
        bail!("landfall binary {} does not exist", bin.display());
    }
    let records = ((args.gb * GB) / args.record_bytes as f64).ceil() as u64;

    note(format!(
        "starting tansu (memory engine) and creating {TOPIC} with {} partitions",
        args.partitions
    ));
    let broker = Broker::start(Engine::Memory);
    let bootstrap = broker.bootstrap();
    broker.create_topic(TOPIC, args.partitions);

    note(format!(
        "producing {records} records of {} bytes ({:.2} GB)",
        args.record_bytes,
        records as f64 * args.record_bytes as f64 / GB
    ));
    let Produced {
        bytes: input_bytes,
        marks,
        phase: produce,
    } = produce(args, &bootstrap, records)?;
    // Diagnostics only: what the broker's ListOffsets says (see `Produced`).
    let listed = watermarks(&bootstrap, args.partitions)?;
    if listed != marks {
        note(format!(
            "broker ListOffsets reports (low, high) {listed:?}; delivery reports say {marks:?}"
        ));
    }
    note(format!(
        "produced in {:.1}s ({:.0} records/s, {:.1} MB/s)",
        produce.seconds, produce.records_per_s, produce.mb_per_s
    ));

    note("raw consumer: draining the topic with a new group");
    let broker_pid = child_named("tansu");
    let raw = raw_consume(args, &bootstrap, &marks, ticks, broker_pid.as_deref())?;
    note(format!(
        "raw consumer: {:.1}s, {:.0} records/s, {:.1} MB/s",
        raw.seconds, raw.records_per_s, raw.mb_per_s
    ));

    let dir = tempfile::Builder::new().prefix("landfall-e2e-").tempdir()?;
    let run = run_landfall(
        args,
        &bin,
        dir.path(),
        &bootstrap,
        &marks,
        records,
        input_bytes,
        ticks,
        broker_pid.as_deref(),
    );
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            let kept = dir.keep();
            note(format!("kept {} for inspection", kept.display()));
            return Err(e);
        }
    };
    drop(broker);

    let (files, size_check) = files_and_sizes(&run.manifests, args.max_file_bytes);
    let eo = exactly_once(&run.manifests, &marks, &dir.path().join("data"));
    let ok = size_check.ok && eo.ok && run.result.exit_code == Some(0);
    let workdir = if ok && !args.keep {
        None
    } else {
        Some(dir.keep().display().to_string())
    };
    let report = Report {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg_start,
        loadavg_end: loadavg(),
        format: args.format.name(),
        partitions: args.partitions,
        record_bytes: args.record_bytes,
        records,
        input_bytes,
        input_mb: input_bytes as f64 / MB,
        max_file_bytes: args.max_file_bytes,
        fetch_wait_max_ms: args.fetch_wait_max_ms,
        ratio: run.result.records_per_s / raw.records_per_s,
        steady_ratio: run.result.steady_records_per_s / raw.steady_records_per_s,
        produce,
        raw,
        landfall: run.result,
        files,
        size_check,
        exactly_once: eo,
        workdir,
    };
    print_report(&report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if let Some(d) = &report.workdir {
        std::fs::write(
            Path::new(d).join("report.json"),
            serde_json::to_vec_pretty(&report)?,
        )?;
    }
    std::io::stdout().flush()?;
    Ok(ok)
}

fn print_report(r: &Report) {
    let l = &r.landfall;
    println!(
        "== landfall e2e ({} cpus, format {}, {} partitions, memory-engine tansu) ==",
        r.cpus, r.format, r.partitions
    );
    println!(
        "load average     {} at start, {} at end",
        r.loadavg_start, r.loadavg_end
    );
    println!(
        "input            {} records x {} B = {:.1} MB",
        r.records, r.record_bytes, r.input_mb
    );
    println!(
        "produce          {:>8.1} s  {:>9.0} records/s  {:>7.1} MB/s",
        r.produce.seconds, r.produce.records_per_s, r.produce.mb_per_s
    );
    println!(
        "raw consumer     {:>8.1} s  {:>9.0} records/s  {:>7.1} MB/s",
        r.raw.seconds, r.raw.records_per_s, r.raw.mb_per_s
    );
    println!(
        "                 steady {:.0} records/s, first record after {:.1} s; consumer {:.1} CPU-s ({:.1} CPU-s/GB), broker {:.1} CPU-s",
        r.raw.steady_records_per_s,
        r.raw.first_record_after_s,
        r.raw.cpu_seconds,
        r.raw.cpu_s_per_gb,
        r.raw.broker_cpu_seconds
    );
    println!(
        "landfall         {:>8.1} s  {:>9.0} records/s  {:>7.1} MB/s",
        l.seconds, l.records_per_s, l.mb_per_s
    );
    println!(
        "                 steady {:.0} records/s; first consumed {:.1} s, all consumed {:.1} s, all landed {:.1} s; broker {:.1} CPU-s",
        l.steady_records_per_s,
        l.first_consumed_after_s,
        l.all_consumed_after_s,
        l.seconds,
        l.broker_cpu_seconds
    );
    println!(
        "ratio            {:.3} landfall/raw records/s (steady {:.3})",
        r.ratio, r.steady_ratio
    );
    println!(
        "landfall CPU     {:.1} CPU-s = {:.1} CPU-s per GB of input",
        l.cpu_seconds, l.cpu_s_per_gb
    );
    println!(
        "landfall memory  peak RSS {:.0} MB (VmHWM), max buffered {:.0} MB, max paused partitions {}, exit code {:?}",
        l.peak_rss_mb, l.max_buffered_mb, l.max_partitions_paused, l.exit_code
    );
    let f = &r.files;
    println!(
        "parquet files    {} files, {:.1} MB total ({:.3} of input), min {:.2} MB, max {:.2} MB, mean {:.2} MB",
        f.count,
        f.total_bytes as f64 / MB,
        f.total_bytes as f64 / r.input_bytes as f64,
        f.min_bytes as f64 / MB,
        f.max_bytes as f64 / MB,
        f.mean_bytes / MB
    );
    for (reason, s) in &f.by_reason {
        println!(
            "  reason {reason:<9} {} batches, {} files, min {} B, max {} B, mean {:.0} B",
            s.batches, s.files, s.min_bytes, s.max_bytes, s.mean_bytes
        );
    }
    for row in &f.list {
        println!(
            "  p{} offsets {:>8}..={:<8} rows {:>7} {:<9} {:>10} B ({:+.1}% of target)",
            row.partition,
            row.first_offset,
            row.last_offset,
            row.rows,
            row.flush_reason,
            row.size_bytes,
            row.deviation_pct
        );
    }
    let s = &r.size_check;
    println!(
        "size check       {}: {} files sealed for \"bytes\", target {} B ±{}%, deviation min {:+.2}% max {:+.2}% mean {:+.2}%",
        if s.ok { "PASS" } else { "FAIL" },
        s.checked_files,
        s.target_bytes,
        s.tolerance_pct,
        s.min_deviation_pct,
        s.max_deviation_pct,
        s.mean_deviation_pct
    );
    if s.checked_files == 0 {
        println!("  no file was sealed for \"bytes\": raise --gb or lower --max-file-bytes");
    }
    for o in &s.outside {
        println!("  outside: {o}");
    }
    let e = &r.exactly_once;
    println!(
        "exactly once     {}: {} manifests, {} records, {} dead-lettered",
        if e.ok { "PASS" } else { "FAIL" },
        e.manifests,
        e.records,
        e.dead_lettered
    );
    for p in &e.problems {
        println!("  problem: {p}");
    }
    if let Some(d) = &r.workdir {
        println!("workdir          {d}");
    }
}
