//! Offsets Kafka no longer holds, against a real broker (tansu, SQLite engine):
//! - `landfall verify` with hand-written commit records: offsets a manifest explains as skipped
//!   (retention) are reported as explained and counted, and pass; a hole in the chain fails;
//! - a topic deleted and recreated under a running sink's feet: its partition's log now ends
//!   before the stored position, and only that partition stops.
//!
//! tansu 0.6.0 cannot move a log start (DeleteRecords is a `todo!()`, no retention by age), so
//! the retention skip itself is tested with the scripted consumer
//! (`crates/landfall-runtime/tests/scripted_sink.rs`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use landfall_core::keys::commit_key;
use landfall_core::manifest::{Gap, GapReason, Manifest, OffsetRange, FORMAT_VERSION};
use landfall_store::Location;
use landfall_testkit::{eventually, json_record, manifests, produce, producer, write_config};

const SINK: &str = "verify";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_landfall"))
}

fn commit(topic: &str, partition: i32, offsets: OffsetRange, gaps: Vec<Gap>) -> Manifest {
    let skipped: u64 = gaps.iter().map(|g| g.len()).sum();
    let records = (offsets.next - offsets.first) as u64 - skipped;
    Manifest {
        format_version: FORMAT_VERSION,
        sink: SINK.into(),
        topic: topic.into(),
        partition,
        offsets,
        gaps,
        records,
        rows: records,
        dead_lettered: 0,
        files: vec![],
        dead_letter_files: vec![],
        schema_fingerprint: None,
        event_time: None,
        writer_id: "w".into(),
        attempt_id: format!("a{}", offsets.first),
        landed_at: "2026-11-22T08:00:00.000Z".into(),
        flush_reason: "records".into(),
        commit_url: String::new(),
        marker_url: String::new(),
    }
}

async fn put(markers: &Location, m: &Manifest) {
    let key = commit_key(SINK, &m.topic, m.partition, m.offsets.first);
    landfall_store::io::put(markers, &key, m.to_json().into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_an_explained_gap_as_ok_and_fails_an_unexplained_hole() {
    let broker = broker();
    let topic = unique("verify");
    broker.create_topic(&topic, 2);
    let dir = test_dir();
    let t = Target::local(dir.path());
    let text = sink_toml(
        SINK,
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 10",
        "",
    );
    let config = write_config(dir.path(), SINK, &text);
    let markers = stores(&parse(&text), &t).markers;
    // Partition 0: retention removed 60..=99 before they were landed; the second batch says so.
    put(
        &markers,
        &commit(&topic, 0, OffsetRange::new(0, 49), vec![]),
    )
    .await;
    let gap = Gap {
        first: 60,
        last: 99,
        reason: GapReason::Retention,
    };
    put(
        &markers,
        &commit(&topic, 0, OffsetRange::new(50, 149), vec![gap]),
    )
    .await;
    // Partition 1: nothing covers 10..=19 (a commit record is missing).
    put(&markers, &commit(&topic, 1, OffsetRange::new(0, 9), vec![])).await;
    put(
        &markers,
        &commit(&topic, 1, OffsetRange::new(20, 29), vec![]),
    )
    .await;

    let cli = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("LANDFALL_LOG", "error")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, report) = cli(&["verify"]);
    eprintln!("exit {code:?}\n{report}");
    assert_eq!(code, Some(1), "{report}");
    let line = |p: i32| {
        report
            .lines()
            .find(|l| l.contains(&format!("{topic}[{p}]")))
            .unwrap_or_else(|| panic!("no line for partition {p}: {report}"))
            .to_string()
    };
    let p0 = line(0);
    assert!(p0.starts_with("OK  "), "{p0}");
    assert!(
        p0.contains("explained_gaps=[60..=99 retention] skipped=40"),
        "{p0}"
    );
    let p1 = line(1);
    assert!(
        p1.starts_with("FAIL") && p1.contains("gaps=[(10, 19)]"),
        "{p1}"
    );

    let (code, json) = cli(&["verify", "--json"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let p0 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["partition"] == 0)
        .unwrap();
    assert_eq!(p0["ok"], true);
    assert_eq!(p0["skipped_offsets"], 40);
    assert_eq!(
        p0["explained_gaps"],
        serde_json::json!([{"first": 60, "last": 99, "reason": "retention"}])
    );

    // The missing record found again: clean, the explained gap still reported.
    put(
        &markers,
        &commit(&topic, 1, OffsetRange::new(10, 19), vec![]),
    )
    .await;
    let (code, report) = cli(&["verify"]);
    eprintln!("exit {code:?}\n{report}");
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("skipped=40"), "{report}");
}

/// The next offset after the commits of each topic of `sink`.
async fn tips(markers: &Location, sink: &str) -> BTreeMap<String, i64> {
    let mut next = BTreeMap::new();
    for m in manifests(markers, sink).await {
        let e = next.entry(m.topic.clone()).or_insert(0);
        *e = m.offsets.next.max(*e);
    }
    next
}

async fn await_tips(markers: &Location, sink: &str, want: &BTreeMap<String, i64>) {
    eventually(
        "every produced offset committed",
        Duration::from_secs(60),
        || async {
            let got = tips(markers, sink).await;
            want.iter()
                .all(|(t, n)| got.get(t).copied().unwrap_or(0) >= *n)
                .then_some(())
        },
    )
    .await;
}

fn sample(metrics: &landfall_runtime::Metrics, name_and_labels: &str) -> Option<f64> {
    metrics.render().lines().find_map(|l| {
        l.strip_prefix(name_and_labels)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

/// A topic deleted and recreated while the sink was down: the store says its partition
/// continues at 50 (a commit of 0..=49 landed from the old topic), but the new topic's log ends
/// at 5. That partition stops — paused, reported stuck, none of the new records committed or
/// taken as duplicates — while the other topic keeps landing, and the sink stops cleanly.
///
/// (tansu 0.6.0's DeleteTopics loses the metadata of the *other* topics of the broker — the
/// sink's start-up check then reports `steady-...` missing — so the old topic's landing is made
/// directly in the store, as a sink would have made it, instead of deleting a topic.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_stops_only_its_partition_and_the_others_keep_landing() {
    const SINK: &str = "recreated";
    let broker = broker();
    let (a, b) = (unique("recreated"), unique("steady"));
    broker.create_topic(&a, 1);
    broker.create_topic(&b, 1);
    let dir = test_dir();
    let t = Target::local(dir.path());
    let text = sink_toml(
        SINK,
        &a,
        &broker.bootstrap(),
        &t,
        "max_records = 10\nmax_age_ms = 500",
        "",
    )
    .replace(
        &format!(r#"topics = ["{a}"]"#),
        &format!(r#"topics = ["{a}", "{b}"]"#),
    );
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    // What a sink landed from the old topic: offsets 0..=49 of partition 0.
    let old = landfall_testkit::sealed_json_batch(
        &landfall_core::buffer::BufferFormat::from_config(&cfg),
        &a,
        0,
        OffsetRange::new(0, 49),
        "oldtopic",
    );
    let landed = landfall_runtime::land::land(
        &st,
        &landfall_runtime::land::LandSettings {
            sink: SINK.into(),
            writer_id: "before".into(),
            multipart_threshold_bytes: 1 << 30,
            multipart_part_bytes: 8 << 20,
        },
        &std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        &landfall_runtime::publish::Publisher::new(st.markers.clone()),
        &old,
        || 0,
    )
    .await
    .unwrap();
    assert!(matches!(
        landed,
        landfall_core::manifest::Landed::Committed(_)
    ));
    // The new topic holds 5 records; the other topic 50.
    let p = producer(&broker.bootstrap());
    produce(&p, &a, 1, (0..5).map(|i| (i, json_record(i)))).await;
    produce(&p, &b, 1, (0..50).map(|i| (i, json_record(i)))).await;

    let markers = st.markers.clone();
    let sink = start_sink(cfg.clone(), st, "w2");
    let stuck = format!(r#"landfall_partitions_stuck{{sink="{SINK}"}}"#);
    let metrics = sink.metrics.clone();
    let m2 = metrics.clone();
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        eventually(
            "the recreated partition reported stuck",
            Duration::from_secs(120),
            || std::future::ready((sample(&m2, &stuck) == Some(1.0)).then_some(())),
        ),
    )
    .await;
    if waited.is_err() {
        let ended = if sink.task.is_finished() {
            format!("{:?}", sink.task.await)
        } else {
            "still running".into()
        };
        panic!(
            "not reported stuck within 60 s; the sink: {ended}; commits end at {:?}; metrics:\n{}",
            tips(&markers, SINK).await,
            metrics.render()
        );
    }
    // `/readyz` reads the status board, which the sink loop refreshes every tick.
    let body = eventually(
        "/readyz reports the partition out of range",
        Duration::from_secs(30),
        || {
            let (code, body) = landfall_runtime::http::ready(&metrics);
            std::future::ready(
                (code.as_u16() == 503 && body.contains("out of range")).then_some(body),
            )
        },
    )
    .await;
    eprintln!("{stuck} = 1; /readyz 503: {body}");
    // The other topic lands, and keeps landing.
    await_tips(&markers, SINK, &BTreeMap::from([(b.clone(), 50)])).await;
    produce(&p, &b, 1, (50..80).map(|i| (i, json_record(i)))).await;
    await_tips(&markers, SINK, &BTreeMap::from([(b.clone(), 80)])).await;
    let consumed = format!(r#"landfall_records_consumed_total{{sink="{SINK}",topic="{a}"}}"#);
    let duplicates = format!(r#"landfall_records_duplicate_total{{sink="{SINK}",topic="{a}"}}"#);
    let (consumed, duplicates) = (sample(&metrics, &consumed), sample(&metrics, &duplicates));
    sink.stop().await;
    let got = tips(&markers, SINK).await;
    eprintln!(
        "commit chains end at {got:?}; {a}: consumed {consumed:?}, duplicates {duplicates:?}"
    );
    assert_eq!(got, BTreeMap::from([(a, 50), (b, 80)]));
    assert_eq!(consumed.unwrap_or(0.0), 0.0);
    assert_eq!(duplicates.unwrap_or(0.0), 0.0);
}
