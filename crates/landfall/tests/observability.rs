//! What an operator sees, checked against a real run: `/metrics` (values equal what landed; every
//! metric the Grafana dashboard queries and `docs/metrics.md` lists is exported, and nothing
//! exported is undocumented), `/readyz`, `/healthz`, `/status`, and the JSON log's one line per
//! landed batch.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use landfall_store::Location;
use landfall_testkit::faults::{FaultConfig, FaultyStore};
use landfall_testkit::{eventually, json_record, produce, producer, write_config, SinkProcess};
use serde_json::Value;

/// The binary under test; `LANDFALL_BIN` overrides it (a copy taken right after the build, when
/// several worktrees share one target directory).
fn bin() -> PathBuf {
    std::env::var_os("LANDFALL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_landfall")))
}

fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// GET `path` from the sink's HTTP port: (status code, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Sample name -> summed value, and the metric families (`# TYPE` lines) of a scrape.
fn parse_scrape(text: &str) -> (BTreeMap<String, f64>, BTreeSet<String>) {
    let mut samples = BTreeMap::new();
    let mut families = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split_whitespace().next().unwrap().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap().to_string();
            let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            *samples.entry(name).or_insert(0.0) += v;
        }
    }
    (samples, families)
}

/// Every `landfall_*` identifier in `text`.
fn landfall_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("landfall_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The metric names `docs/metrics.md` lists (first column of its tables).
fn documented_metrics() -> BTreeSet<String> {
    repo_file("docs/metrics.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `landfall_"))
        .map(|l| format!("landfall_{}", l.split('`').next().unwrap()))
        .collect()
}

/// The metric names the dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let dash: Value = serde_json::from_str(&repo_file("deploy/grafana/landfall.json")).unwrap();
    let mut exprs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dash, &mut exprs);
    assert!(exprs.len() >= 6, "the dashboard has its panels: {exprs:?}");
    exprs.iter().flat_map(|e| landfall_names(e)).collect()
}

const RECORDS: u64 = 600;
const PARTITIONS: i32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_exports_what_it_landed_and_everything_the_dashboard_queries() {
    let broker = broker();
    let dir = test_dir();
    let t = Target::local(dir.path());
    let topic = unique("obs");
    broker.create_topic(&topic, PARTITIONS);
    // Records stay buffered for 6 s (age flush), so the lag is seen before they land;
    // statistics every second so it is seen soon.
    let text = sink_toml(
        "obs",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 100000\nmax_age_ms = 6000",
        "[kafka.options]\n\"statistics.interval.ms\" = \"1000\"\n",
    );
    let cfg = parse(&text);
    let markers: Location = stores(&cfg, &t).markers;
    let config = write_config(dir.path(), "obs", &text);
    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        PARTITIONS,
        (0..RECORDS).map(|i| (i, json_record(i))),
    )
    .await;

    let sink = SinkProcess::start(&bin(), &config, &[], dir.path().join("obs.log"));
    let port = sink.metrics_port;
    let scrape = || get(port, "/metrics").map(|(_, b)| parse_scrape(&b).0);

    // Lag counts what is not landed yet, buffered records included.
    let lag = eventually("lag reported", Duration::from_secs(30), || async {
        let s = scrape()?;
        let landed = s.get("landfall_records_landed_total").copied()?;
        let lag = s.get("landfall_consumer_lag_records").copied()?;
        (landed == 0.0 && lag > 0.0).then_some(lag)
    })
    .await;
    eprintln!("lag before the first landing: {lag}");
    assert_eq!(lag, RECORDS as f64, "every produced record is behind");

    let manifests = await_landed(&markers, "obs", &produced, Duration::from_secs(60)).await;
    let rows: u64 = manifests.iter().map(|m| m.rows).sum();
    let files: usize = manifests.iter().map(|m| m.files.len()).sum();
    assert_eq!(rows, RECORDS);

    // Lag back to 0 once the statistics catch up with the landing.
    let s = eventually("lag 0 after catch-up", Duration::from_secs(30), || async {
        let s = scrape()?;
        (s.get("landfall_consumer_lag_records") == Some(&0.0)).then_some(s)
    })
    .await;
    let v = |name: &str| s.get(name).copied().unwrap_or(f64::NAN);
    eprintln!(
        "landed: records {} batches {} files {} bytes {}; consumed {}",
        v("landfall_records_landed_total"),
        v("landfall_batches_committed_total"),
        v("landfall_files_landed_total"),
        v("landfall_bytes_landed_total"),
        v("landfall_records_consumed_total"),
    );
    assert_eq!(v("landfall_records_landed_total"), RECORDS as f64);
    assert_eq!(v("landfall_records_consumed_total"), RECORDS as f64);
    assert_eq!(
        v("landfall_batches_committed_total"),
        manifests.len() as f64
    );
    assert_eq!(v("landfall_files_landed_total"), files as f64);
    assert_eq!(
        v("landfall_bytes_landed_total"),
        manifests
            .iter()
            .flat_map(|m| &m.files)
            .map(|f| f.size_bytes)
            .sum::<u64>() as f64
    );
    assert_eq!(v("landfall_upload_seconds_count"), manifests.len() as f64);
    assert_eq!(v("landfall_commit_seconds_count"), manifests.len() as f64);
    assert_eq!(
        v("landfall_durable_offset"),
        produced.values().sum::<u64>() as f64
    );
    assert_eq!(v("landfall_build_info"), 1.0);
    assert!(v("landfall_resident_memory_bytes") > 1e6);
    assert!(v("landfall_buffer_budget_bytes") > 0.0);

    // Freshness: small right after landing (records are ~6 s old, the age flush), then growing
    // while nothing lands.
    let fresh = v("landfall_freshness_seconds") / PARTITIONS as f64;
    assert!(
        fresh > 0.0 && fresh < 30.0,
        "freshness after landing: {fresh}"
    );
    let later = eventually(
        "freshness grows while idle",
        Duration::from_secs(20),
        || async {
            let f = scrape()?.get("landfall_freshness_seconds").copied()? / PARTITIONS as f64;
            (f >= fresh + 3.0).then_some(f)
        },
    )
    .await;
    eprintln!("freshness (mean over partitions): {fresh:.2} s after landing, {later:.2} s later");

    // Every metric the dashboard queries is exported; docs list exactly what is exported.
    let (text, families) = get(port, "/metrics")
        .map(|(_, b)| (b.clone(), parse_scrape(&b).1))
        .unwrap();
    let samples = parse_scrape(&text).0;
    let used = dashboard_metrics();
    let missing: Vec<_> = used.iter().filter(|n| !samples.contains_key(*n)).collect();
    assert!(
        missing.is_empty(),
        "dashboard queries metrics the binary does not export: {missing:?}"
    );
    let documented = documented_metrics();
    let undocumented: Vec<_> = families.difference(&documented).collect();
    let not_exported: Vec<_> = documented.difference(&families).collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in docs/metrics.md: {undocumented:?}"
    );
    assert!(
        not_exported.is_empty(),
        "in docs/metrics.md but not exported: {not_exported:?}"
    );
    eprintln!(
        "{} metric families exported and documented; dashboard uses {} series names",
        families.len(),
        used.len()
    );

    // Probes and /status.
    assert_eq!(get(port, "/healthz").unwrap(), (200, "ok\n".to_string()));
    assert_eq!(get(port, "/readyz").unwrap(), (200, "ok\n".to_string()));
    let (code, body) = get(port, "/status").unwrap();
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["ready"], true);
    let s0 = &status["sinks"][0];
    assert_eq!(
        (s0["sink"].as_str(), s0["phase"].as_str()),
        (Some("obs"), Some("running"))
    );
    let parts = s0["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), PARTITIONS as usize);
    for p in parts {
        let n = produced[&(p["partition"].as_i64().unwrap() as i32)] as i64;
        assert_eq!(p["owner"], s0["writer_id"]);
        assert_eq!(p["durable_offset"].as_i64(), Some(n));
        assert_eq!(p["high_watermark"].as_i64(), Some(n));
        assert_eq!(p["lag"].as_i64(), Some(0));
        assert_eq!(p["paused"], false);
        assert_eq!(p["last_batch"]["next_offset"].as_i64(), Some(n));
        assert_eq!(p["last_batch"]["reason"], "age");
        assert!(p["last_batch"]["marker_url"]
            .as_str()
            .unwrap()
            .starts_with("file://"));
        assert!(p["last_batch"]["age_seconds"].as_f64().unwrap() > 0.0);
    }

    // Stop; the JSON log parses line by line and has one `batch landed` line per batch.
    assert_eq!(sink.terminate(Duration::from_secs(60)), Some(0));
    let log = std::fs::read_to_string(dir.path().join("obs.log")).unwrap();
    let mut landed = Vec::new();
    for line in log.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        if v["message"] == "batch landed" {
            landed.push(v);
        }
    }
    assert_eq!(landed.len(), manifests.len(), "one line per landed batch");
    for l in &landed {
        for f in [
            "sink",
            "topic",
            "partition",
            "first_offset",
            "last_offset",
            "rows",
            "bytes",
            "files",
            "reason",
            "duration_ms",
        ] {
            assert!(!l[f].is_null(), "field {f} in {l}");
        }
        assert_eq!(l["level"], "INFO");
        let m = manifests
            .iter()
            .find(|m| {
                i64::from(m.partition) == l["partition"].as_i64().unwrap()
                    && m.offsets.first == l["first_offset"].as_i64().unwrap()
            })
            .expect("the line names a committed batch");
        assert_eq!(l["last_offset"].as_i64(), Some(m.offsets.last));
        assert_eq!(l["rows"].as_u64(), Some(m.rows));
        assert_eq!(l["files"].as_u64(), Some(m.files.len() as u64));
    }
    eprintln!("batch log lines: {}", landed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_start_and_reports_a_stuck_partition_until_it_lands() {
    use landfall_runtime::http::{ready, status_json};
    let broker = broker();
    let dir = test_dir();
    let t = Target::local(dir.path());
    let topic = unique("stuck");
    broker.create_topic(&topic, 1);
    let text = sink_toml(
        "stuck",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 10\nmax_age_ms = 500",
        "[runtime]\nstuck_after_ms = 1500\n",
    );
    let cfg = parse(&text);
    let clean = stores(&cfg, &t);
    // Every data upload fails (a 503 before it reaches the store); markers work, so the
    // partition recovers and becomes ready, then gets stuck landing.
    let faulty = Arc::new(FaultyStore::new(
        clean.data.store.clone(),
        FaultConfig {
            fail_before: 1.0,
            ..Default::default()
        },
        7,
    ));
    let st = landfall_runtime::SinkStores {
        data: clean.data.with_store(faulty.clone()),
        markers: clean.markers.clone(),
        dead_letters: clean.dead_letters.clone(),
    };
    let sink = start_sink(cfg, st, "w-stuck");
    let m = sink.metrics.clone();

    let (code, body) = ready(&m);
    eprintln!("at start: {code} {body}");
    assert_eq!(code.as_u16(), 503, "{body}");

    eventually(
        "ready after the partition recovered",
        Duration::from_secs(60),
        || async {
            let ok = ready(&m).0.as_u16() == 200
                && m.partitions_assigned.with_label_values(&["stuck"]).get() == 1;
            ok.then_some(())
        },
    )
    .await;

    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        1,
        (0..10).map(|i| (i, json_record(i))),
    )
    .await;
    let body = eventually("not ready: stuck", Duration::from_secs(60), || async {
        let (code, body) = ready(&m);
        (code.as_u16() == 503).then_some(body)
    })
    .await;
    eprintln!("while stuck: {body}");
    assert!(
        body.contains("stuck") && body.contains("[0] stuck"),
        "{body}"
    );
    let status: Value = serde_json::from_str(&status_json(&m)).unwrap();
    let p = &status["sinks"][0]["partitions"][0];
    eprintln!("status of the stuck partition: {p}");
    assert_eq!(status["ready"], false);
    assert_eq!(p["stuck"], true);
    assert_eq!(p["owner"], "w-stuck");
    assert_eq!(p["paused_because"], serde_json::json!(["retry"]));
    assert_eq!(p["durable_offset"], 0);
    assert_eq!(p["last_error"]["class"], "transient");
    assert!(p["failures"].as_u64().unwrap() >= 1);
    assert!(m.retries.with_label_values(&["stuck", "landing"]).get() >= 1);
    assert_eq!(m.partitions_stuck.with_label_values(&["stuck"]).get(), 1);
    assert_eq!(
        m.partitions_paused_by_reason
            .with_label_values(&["stuck", "retry"])
            .get(),
        1
    );

    // The store heals: the batch lands, ready again, the error is gone.
    faulty.disable();
    await_landed(&clean.markers, "stuck", &produced, Duration::from_secs(60)).await;
    eventually("ready again", Duration::from_secs(30), || async {
        (ready(&m).0.as_u16() == 200).then_some(())
    })
    .await;
    let status: Value = serde_json::from_str(&status_json(&m)).unwrap();
    let p = &status["sinks"][0]["partitions"][0];
    assert_eq!(
        (p["stuck"].as_bool(), p["durable_offset"].as_i64()),
        (Some(false), Some(10))
    );
    assert!(p["last_error"].is_null(), "{p}");
    sink.stop().await;
}
