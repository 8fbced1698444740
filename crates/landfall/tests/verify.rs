//! `landfall verify` against a real broker (for the watermarks) and a local store holding
//! hand-written commit records: offsets a manifest explains as skipped (retention) are reported
//! as explained and counted, and pass; a hole in the commit chain fails.

mod common;

use std::path::Path;

use common::*;
use landfall_core::keys::commit_key;
use landfall_core::manifest::{Gap, GapReason, Manifest, OffsetRange, FORMAT_VERSION};
use landfall_store::Location;
use landfall_testkit::write_config;

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
    let text = sink_toml(SINK, &topic, &broker.bootstrap(), &t, "max_records = 10", "");
    let config = write_config(dir.path(), SINK, &text);
    let markers = stores(&parse(&text), &t).markers;
    // Partition 0: retention removed 60..=99 before they were landed; the second batch says so.
    put(&markers, &commit(&topic, 0, OffsetRange::new(0, 49), vec![])).await;
    let gap = Gap {
        first: 60,
        last: 99,
        reason: GapReason::Retention,
    };
    put(&markers, &commit(&topic, 0, OffsetRange::new(50, 149), vec![gap])).await;
    // Partition 1: nothing covers 10..=19 (a commit record is missing).
    put(&markers, &commit(&topic, 1, OffsetRange::new(0, 9), vec![])).await;
    put(&markers, &commit(&topic, 1, OffsetRange::new(20, 29), vec![])).await;

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
    put(&markers, &commit(&topic, 1, OffsetRange::new(10, 19), vec![])).await;
    let (code, report) = cli(&["verify"]);
    eprintln!("exit {code:?}\n{report}");
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("skipped=40"), "{report}");
}
