//! `[windows]`: two `landfall run` processes share a 4-partition topic with events in a past hour
//! and now. The past hour's `_SUCCESS` lists exactly the committed files of that hour, its rows
//! equal the rows produced for it, it is written once, an idle partition does not hold it open,
//! the current hour stays open, and a record for the closed hour lands in the late area (or, with
//! `late_records = "dead_letter"`, becomes a dead letter with the reason).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;
use landfall_core::keys::time_partition;
use landfall_core::windows::WindowManifest;
use landfall_testkit::{eventually, manifests, producer, write_config, SinkProcess};
use rdkafka::producer::FutureRecord;

fn record(seq: u64, ts_us: i64) -> String {
    let ts = chrono::DateTime::from_timestamp_micros(ts_us)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ");
    format!(r#"{{"seq":{seq},"name":"r{seq}","amount":1.25,"ts":"{ts}"}}"#)
}

/// Produce `(partition, value)` pairs; returns how many went to each partition.
async fn send(p: &rdkafka::producer::FutureProducer, topic: &str, values: &[(i32, String)]) {
    for (part, v) in values {
        p.send(
            FutureRecord::<str, str>::to(topic)
                .partition(*part)
                .payload(v),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_close_a_past_hour_once_with_every_file_and_route_late_records() {
    let broker = broker();
    let (sink, topic) = ("win", unique("win"));
    broker.create_topic(&topic, 4);
    let notify_topic = unique("notify");
    broker.create_topic(&notify_topic, 1);
    let dir = test_dir();
    let t = Target::local(dir.path());
    let text = sink_toml(
        sink,
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 100\nmax_age_ms = 500",
        // Idle after 20 s: long enough that the producing partitions never idle during the test,
        // short enough that partition 3 (no records at all) does.
        "[partitioning]\nevent_time_field = \"ts\"\n\n[windows]\nenabled = true\nallowed_lateness_ms = 1000\nidle_after_ms = 20000\n",
    )
    .replace("[windows]", &format!("[notify]\nkafka_topic = \"{notify_topic}\"\n\n[windows]"),
    );
    let config = write_config(dir.path(), sink, &text);
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let tz = cfg.partitioning.timezone;

    let now_us = chrono::Utc::now().timestamp_micros();
    let hour = 3_600_000_000i64;
    let past_start = now_us.div_euclid(hour) * hour - 2 * hour;
    let past_tp = time_partition(past_start, tz);
    let now_tp = time_partition(now_us, tz);
    // Partitions 0-2 get rows in the past hour and now; partition 3 gets nothing (idle).
    let mut values = Vec::new();
    let mut past_rows = 0u64;
    for seq in 0..600u64 {
        let part = (seq % 3) as i32;
        if seq < 450 {
            values.push((
                part,
                record(seq, past_start + (seq as i64 * 7_919_000) % hour),
            ));
            past_rows += 1;
        } else {
            values.push((part, record(seq, now_us)));
        }
    }
    // Both workers own two partitions before anything is produced, so both land.
    let bin = Path::new(env!("CARGO_BIN_EXE_landfall"));
    let a = SinkProcess::start(bin, &config, &[], dir.path().join("a.log"));
    let b = SinkProcess::start(bin, &config, &[], dir.path().join("b.log"));
    let owned = |s: &SinkProcess| s.metric("landfall_partitions_assigned");
    eventually("2 and 2", Duration::from_secs(90), || async {
        (owned(&a) == Some(2.0) && owned(&b) == Some(2.0)).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let p = producer(&broker.bootstrap());
    send(&p, &topic, &values).await;
    let produced: BTreeMap<i32, u64> = [(0, 200), (1, 200), (2, 200)].into();
    await_landed(&st.markers, sink, &produced, Duration::from_secs(120)).await;
    // Partitions 0-2 are past the hour now (their rows reach the present), but partition 3 has
    // neither rows nor, before `idle_after_ms`, an idle promise: the window stays open.
    let success = |tp: &str| format!("{topic}/{tp}/_SUCCESS");
    let landed_after = started.elapsed();
    if landed_after < Duration::from_secs(15) {
        assert!(
            landfall_store::io::get(&st.data, &success(&past_tp))
                .await
                .unwrap()
                .is_none(),
            "closed before partition 3 was past the window"
        );
    }
    eprintln!("everything landed {landed_after:?} after both workers owned their partitions; window still open");

    let body = eventually(
        "the past hour's _SUCCESS",
        Duration::from_secs(90),
        || async {
            landfall_store::io::get(&st.data, &success(&past_tp))
                .await
                .unwrap()
        },
    )
    .await;
    let w: WindowManifest = serde_json::from_slice(&body).expect("a window manifest");

    // Exactly the committed files of that hour, across partitions and workers.
    let committed = manifests(&st.markers, sink).await;
    let expected: BTreeSet<String> = committed
        .iter()
        .flat_map(|m| m.files.iter())
        .filter(|f| f.time_partition.as_deref() == Some(past_tp.as_str()))
        .map(|f| f.key.clone())
        .collect();
    let listed: BTreeSet<String> = w.files.iter().map(|f| f.file.key.clone()).collect();
    let writers: BTreeSet<&str> = committed.iter().map(|m| m.writer_id.as_str()).collect();
    assert_eq!(writers.len(), 2, "both workers landed: {writers:?}");
    assert_eq!(listed, expected);
    assert_eq!(w.rows, past_rows, "rows = rows produced for the hour");
    let on_disk: u64 = w.files.iter().map(|f| f.file.rows).sum();
    assert_eq!(on_disk, past_rows);
    for f in &w.files {
        let bytes = std::fs::read(&f.file.key).expect("listed file exists");
        assert_eq!(
            landfall_core::manifest::sha256_hex(&bytes),
            f.file.sha256,
            "{}",
            f.file.key
        );
    }
    let by: BTreeMap<i32, String> = w
        .partitions
        .iter()
        .map(|p| (p.partition, format!("{:?}", p.closed_by)))
        .collect();
    assert_eq!(by.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(
        by[&3], "Idle",
        "the partition without records closed it by idleness"
    );
    eprintln!(
        "window {past_tp}: {} files, {} rows, partitions {by:?}, closed {:?} after both workers owned their partitions",
        w.files.len(),
        w.rows,
        started.elapsed()
    );
    // The current hour stays open (unless the test straddled the end of the hour).
    let still_now = chrono::Utc::now().timestamp_micros() < (now_us.div_euclid(hour) + 1) * hour;
    if still_now {
        assert!(landfall_store::io::get(&st.data, &success(&now_tp))
            .await
            .unwrap()
            .is_none());
    }

    // A record for the closed hour after closing: the late area, never the closed window.
    send(&p, &topic, &[(3, record(10_000, past_start + 60_000_000))]).await;
    let late = eventually(
        "the late record landed",
        Duration::from_secs(60),
        || async {
            manifests(&st.markers, sink)
                .await
                .into_iter()
                .find(|m| m.partition == 3 && m.rows > 0)
        },
    )
    .await;
    assert_eq!(late.files.len(), 1);
    let f = &late.files[0];
    assert_eq!(
        f.time_partition.as_deref(),
        Some(format!("_late/{past_tp}").as_str())
    );
    assert!(
        f.key.contains(&format!("/{topic}/_late/{past_tp}/")),
        "{}",
        f.key
    );
    let again = landfall_store::io::get(&st.data, &success(&past_tp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, body, "a closed window never changes");

    a.terminate(Duration::from_secs(60));
    b.terminate(Duration::from_secs(60));
    // Written once: exactly one worker created it.
    let logs = std::fs::read_to_string(dir.path().join("a.log")).unwrap()
        + &std::fs::read_to_string(dir.path().join("b.log")).unwrap();
    let created = logs
        .lines()
        .filter(|l| l.contains("window closed") && l.contains(&past_tp))
        .count();
    assert_eq!(created, 1, "one create won");

    // The window's notification: its `_SUCCESS` bytes, keyed and labelled as a window.
    let consumed = tokio::task::spawn_blocking({
        let (b, t) = (broker.bootstrap(), notify_topic.clone());
        move || consume_all(&b, &t)
    })
    .await
    .unwrap();
    let windows: Vec<&Consumed> = consumed
        .iter()
        .filter(|c| c.headers.get("landfall-kind").map(String::as_str) == Some("window"))
        .collect();
    eprintln!(
        "notifications: {} batch, {} window",
        consumed.len() - windows.len(),
        windows.len()
    );
    assert!(!windows.is_empty());
    for c in &windows {
        assert_eq!(c.key, format!("{sink}/{topic}/window"));
        assert_eq!(c.headers["landfall-sink"], sink);
        assert_eq!(c.headers["landfall-topic"], topic);
        assert!(!c.headers.contains_key("landfall-partition"));
        assert_eq!(c.value, body.to_vec(), "value = the _SUCCESS bytes");
    }
    assert_eq!(
        consumed.len() - windows.len(),
        committed_count(&st.markers, sink).await
    );
}

async fn committed_count(markers: &landfall_store::Location, sink: &str) -> usize {
    manifests(markers, sink).await.len()
}

/// `late_records = "dead_letter"` end to end (one worker, one partition, real broker): the past
/// hour closes once the partition's rows reach the present; a record for it produced afterwards
/// is a dead letter with the reason `late: window ... closed`, listed by its batch's manifest,
/// never in the `_SUCCESS` (unchanged) nor in a data directory; `landfall verify` accounts for
/// every offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_for_a_closed_window_is_dead_lettered_with_the_reason() {
    let broker = broker();
    let (sink, topic) = ("late-dl", unique("late-dl"));
    broker.create_topic(&topic, 1);
    let dir = test_dir();
    let t = Target::local(dir.path());
    let text = sink_toml(
        sink,
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 100\nmax_age_ms = 500",
        "[partitioning]\nevent_time_field = \"ts\"\n\n[windows]\nenabled = true\nallowed_lateness_ms = 1000\nidle_after_ms = 60000\nlate_records = \"dead_letter\"\n",
    );
    let config = write_config(dir.path(), sink, &text);
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let tz = cfg.partitioning.timezone;
    let now_us = chrono::Utc::now().timestamp_micros();
    let hour = 3_600_000_000i64;
    let past_start = now_us.div_euclid(hour) * hour - 2 * hour;
    let past_tp = time_partition(past_start, tz);

    let bin = Path::new(env!("CARGO_BIN_EXE_landfall"));
    let a = SinkProcess::start(bin, &config, &[], dir.path().join("a.log"));
    eventually("partition assigned", Duration::from_secs(90), || async {
        (a.metric("landfall_partitions_assigned") == Some(1.0)).then_some(())
    })
    .await;
    // 30 rows in the past hour, then 10 now: the partition's watermark passes the past hour.
    let mut values: Vec<(i32, String)> = (0..30u64)
        .map(|s| (0, record(s, past_start + s as i64 * 60_000_000)))
        .collect();
    values.extend((30..40u64).map(|s| (0, record(s, now_us))));
    let p = producer(&broker.bootstrap());
    send(&p, &topic, &values).await;
    await_landed(
        &st.markers,
        sink,
        &[(0, 40)].into(),
        Duration::from_secs(60),
    )
    .await;
    let success = format!("{topic}/{past_tp}/_SUCCESS");
    let body = eventually(
        "the past hour's _SUCCESS",
        Duration::from_secs(60),
        || async { landfall_store::io::get(&st.data, &success).await.unwrap() },
    )
    .await;
    let w: WindowManifest = serde_json::from_slice(&body).unwrap();
    assert_eq!(w.rows, 30);

    // Offset 40: a record for the closed hour.
    send(&p, &topic, &[(0, record(10_000, past_start + 90_000_000))]).await;
    let ms = await_landed(
        &st.markers,
        sink,
        &[(0, 41)].into(),
        Duration::from_secs(60),
    )
    .await;
    let m = ms
        .iter()
        .find(|m| m.offsets.first <= 40 && 40 <= m.offsets.last)
        .unwrap();
    assert_eq!((m.records, m.rows, m.dead_lettered), (1, 0, 1));
    assert!(m.files.is_empty(), "{:?}", m.files);
    let dl = &m.dead_letter_files[0];
    let lines = landfall_core::deadletter::parse_jsonl(&std::fs::read(&dl.key).unwrap()).unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].offset, 40);
    assert_eq!(lines[0].reason, format!("late: window {past_tp} closed"));
    eprintln!(
        "offset 40 -> {}: {:?}; manifest records={} rows={} dead_lettered={}",
        dl.key, lines[0].reason, m.records, m.rows, m.dead_lettered
    );
    // Never in the closed window or the late area; the `_SUCCESS` is unchanged.
    let files_of = |sub: &str| -> Vec<String> {
        let d = dir.path().join("data").join(&topic).join(sub);
        walk(&d)
    };
    let in_window = files_of(&past_tp);
    assert_eq!(
        in_window.iter().filter(|f| f.ends_with(".parquet")).count(),
        w.files.len(),
        "{in_window:?}"
    );
    assert!(files_of("_late").is_empty());
    assert_eq!(
        landfall_store::io::get(&st.data, &success).await.unwrap(),
        Some(body)
    );
    a.terminate(Duration::from_secs(60));

    // `landfall verify`: every offset of the partition covered, the dead letter counted.
    let out = std::process::Command::new(bin)
        .args(["verify", "--config"])
        .arg(&config)
        .env("LANDFALL_LOG", "error")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains("covered=[0, 41) rows=40 dead_lettered=1"),
        "{report}"
    );
}

/// Every file below `dir` (none if it does not exist).
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
