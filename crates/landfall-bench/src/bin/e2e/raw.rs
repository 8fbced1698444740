//! The raw consumer: an rdkafka `BaseConsumer` that drains the topic and does nothing with the
//! records — the broker's ceiling in this run. It runs as a child process (this binary with
//! `--raw-child SPEC`) so its CPU and peak RSS are measured from /proc exactly like Landfall's
//! and the Python baseline's.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde::{Deserialize, Serialize};

use crate::procfs::{self, last_json};
use crate::produce::{now_ms, Marks};
use crate::stats::{Hist, Latency};

/// Librdkafka settings Landfall's consumer uses (crates/landfall-kafka `client_config`), so the
/// raw consumer fetches the way Landfall does.
pub fn consumer_config(bootstrap: &str, group: &str, fetch_wait_max_ms: u64) -> ClientConfig {
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

/// What the child is asked to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct RawSpec {
    pub bootstrap: String,
    pub topic: String,
    pub group: String,
    pub marks: Marks,
    pub fetch_wait_max_ms: u64,
    /// Wall-clock ms the phase started (latencies are measured from it).
    pub t0_ms: i64,
    pub timeout_secs: u64,
}

/// What the child reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct RawOut {
    pub records: u64,
    pub bytes: u64,
    /// Phase start (the harness spawning this process) -> last record received.
    pub seconds: f64,
    pub first_record_after_s: f64,
    /// Records/s from the first to the last record (group join excluded).
    pub steady_records_per_s: f64,
    /// Receive time - phase start, per record.
    pub latency: Option<Latency>,
}

/// `e2e --raw-child SPEC`: consume and print one JSON line.
pub fn child_main(spec: &str) -> ExitCode {
    let run = || -> Result<RawOut> {
        let spec: RawSpec = serde_json::from_str(spec).context("parse --raw-child spec")?;
        consume(&spec)
    };
    match run() {
        Ok(out) => {
            println!("{}", serde_json::to_string(&out).expect("serializable"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raw consumer failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn consume(spec: &RawSpec) -> Result<RawOut> {
    let started = Instant::now();
    let start_wall = now_ms();
    let c: BaseConsumer = consumer_config(&spec.bootstrap, &spec.group, spec.fetch_wait_max_ms)
        .create()
        .context("create raw consumer")?;
    c.subscribe(&[spec.topic.as_str()])?;
    let marks = &spec.marks;
    let mut next: BTreeMap<i32, i64> = marks.iter().map(|(&p, &(lo, _))| (p, lo)).collect();
    let total: i64 = marks.values().map(|(lo, hi)| hi - lo).sum();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut first = None;
    let mut last = started;
    let mut hist = Hist::default();
    let offset_ms = start_wall - spec.t0_ms;
    let deadline = started + Duration::from_secs(spec.timeout_secs);
    while next.iter().any(|(p, n)| *n < marks[p].1) {
        if Instant::now() > deadline {
            bail!(
                "raw consumer: {records} of {total} records after {}s",
                spec.timeout_secs
            );
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                records += 1;
                bytes += m.payload_len() as u64;
                hist.add(offset_ms + (now - started).as_millis() as i64, 1);
                next.insert(m.partition(), m.offset() + 1);
            }
            Some(Err(e)) => eprintln!("raw consumer: {e}"),
            None => {}
        }
    }
    if records as i64 != total {
        bail!("raw consumer read {records} records, the topic holds {total}");
    }
    let spawn_s = offset_ms as f64 / 1000.0;
    let first = first.unwrap_or(last);
    Ok(RawOut {
        records,
        bytes,
        seconds: spawn_s + (last - started).as_secs_f64(),
        first_record_after_s: spawn_s + (first - started).as_secs_f64(),
        steady_records_per_s: records as f64 / (last - first).as_secs_f64().max(1e-9),
        latency: hist.summary(),
    })
}

/// Run the raw consumer as a child process and measure it.
pub fn run(spec: &RawSpec, ticks: f64) -> Result<(RawOut, procfs::Finished)> {
    let mut cmd = Command::new(std::env::current_exe().context("path of e2e")?);
    cmd.arg("--raw-child").arg(serde_json::to_string(spec)?);
    let finished = procfs::run_measured(cmd, ticks, Duration::from_secs(spec.timeout_secs + 30))?;
    if finished.exit_code != Some(0) {
        bail!("raw consumer exited with {:?}", finished.exit_code);
    }
    let out = last_json(&finished.stdout).context("raw consumer printed no report")?;
    Ok((out, finished))
}
