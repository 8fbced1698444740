//! `landfall gc --delete` deletes only what it can prove is its own sink's uncommitted attempt:
//! never a file any manifest lists — whatever the spelling of the store URL, and whichever sink
//! (another sink sharing the prefix, a renamed sink, a `topics_regex` sink) committed it.
//!
//! Batches are landed through Landfall's own `land` (the path `landfall run` takes), without a
//! broker: gc reads only the store. An orphan is made the way production makes one: a data file
//! (and dead-letter file) uploaded under the sink's key layout whose commit never happened.

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use landfall_core::buffer::{BufferFormat, PartitionBuffer, SealedBatch};
use landfall_core::flush::FlushReason;
use landfall_core::keys::{data_key, dead_letter_key};
use landfall_core::manifest::{Landed, OffsetRange};
use landfall_core::record::{KafkaRecord, TopicPartition};
use landfall_runtime::land::{land, LandSettings};
use landfall_runtime::publish::Publisher;
use landfall_runtime::SinkStores;
use landfall_testkit::{json_record, write_config};

/// A sealed batch of `first..=last` as the sink's own buffer seals it: valid records, and the
/// last one undecodable so the batch has a dead-letter file too.
fn batch(topic: &str, partition: i32, first: i64, last: i64, attempt: &str) -> SealedBatch {
    // Every sink of these tests has the same format section (`sink_toml`'s declared fields).
    let cfg = parse(&toml(
        "fmt",
        topic,
        &Target::local(Path::new("/nonexistent")),
    ));
    let fmt = BufferFormat::from_config(&cfg);
    let mut buffer = PartitionBuffer::new(TopicPartition::new(topic, partition));
    for o in first..=last {
        let value: Bytes = if o == last {
            Bytes::from_static(b"{not json")
        } else {
            json_record(o as u64).into()
        };
        buffer.push(
            KafkaRecord {
                topic: topic.into(),
                partition,
                offset: o,
                timestamp_ms: Some(1_763_719_200_000),
                key: None,
                value: Some(value),
                headers: vec![],
            },
            0,
        );
    }
    let b = buffer
        .seal(
            &fmt,
            FlushReason::Age,
            OffsetRange::new(first, last),
            attempt,
            0,
        )
        .unwrap()
        .unwrap();
    assert!(!b.files.is_empty() && !b.rejected.is_empty());
    b
}

/// Land a batch the way the sink does; returns the URLs the manifest lists.
async fn commit(st: &SinkStores, sink: &str, b: &SealedBatch) -> Vec<String> {
    let settings = LandSettings {
        sink: sink.into(),
        writer_id: "test-writer".into(),
        multipart_threshold_bytes: 1 << 30,
        multipart_part_bytes: 8 << 20,
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(2));
    let publisher = Publisher::new(st.markers.clone());
    match land(st, &settings, &uploads, &publisher, b, || 1_763_719_200_000)
        .await
        .unwrap()
    {
        Landed::Committed(m) => m
            .files
            .iter()
            .chain(&m.dead_letter_files)
            .map(|f| f.key.clone())
            .collect(),
        Landed::Lost(_) => panic!("lost the commit"),
    }
}

/// Upload a batch's data and dead-letter files as `land` would, then "crash" before the commit.
async fn orphan(st: &SinkStores, sink: &str, b: &SealedBatch) -> Vec<String> {
    let f = &b.files[0];
    let dk = data_key(
        sink,
        &b.tp.topic,
        &f.time_partition,
        b.tp.partition,
        b.offsets.first,
        &b.attempt_id,
        f.seq,
    );
    let p = landfall_store::io::upload(&st.data, &dk, f.bytes.clone(), 1 << 30, 8 << 20)
        .await
        .unwrap();
    let lk = dead_letter_key(
        sink,
        &b.tp.topic,
        b.tp.partition,
        b.offsets.first,
        &b.attempt_id,
    );
    landfall_store::io::put(&st.dead_letters, &lk, Bytes::from_static(b"{}\n"))
        .await
        .unwrap();
    vec![
        st.data.bucket_key(&p),
        st.dead_letters.bucket_key(&st.dead_letters.path(&lk)),
    ]
}

/// `landfall gc --min-age-secs 0 [--delete]` with one config; returns stdout.
fn gc(dir: &Path, name: &str, toml: &str, delete: bool) -> String {
    let config = write_config(dir, name, toml);
    let mut args = vec!["gc", "--min-age-secs", "0"];
    if delete {
        args.push("--delete");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_landfall"))
        .args(&args)
        .arg("--config")
        .arg(&config)
        .env("LANDFALL_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn toml(name: &str, topic: &str, t: &Target) -> String {
    sink_toml(name, topic, "127.0.0.1:9", t, "", "")
}

fn regex_toml(name: &str, pattern: &str, t: &Target) -> String {
    let text = toml(name, "placeholder", t);
    text.replace(
        "topics = [\"placeholder\"]",
        &format!("topics_regex = {pattern:?}"),
    )
}

/// Which of `files` (absolute paths, for file://) still exist.
fn surviving(files: &[String]) -> Vec<&String> {
    files.iter().filter(|f| Path::new(f).exists()).collect()
}

fn assert_all_exist(what: &str, files: &[String]) {
    let gone: Vec<_> = files.iter().filter(|f| !Path::new(f).exists()).collect();
    assert!(gone.is_empty(), "{what}: deleted {gone:?}");
}

/// A trailing slash on `file://` (and the run and gc spelling the URL differently) must not make
/// committed files look orphaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_slash_url_keeps_committed_files() {
    let dir = test_dir();
    let base = dir.path().display().to_string();
    for (run_suffix, gc_suffix) in [("/", "/"), ("", "/"), ("/", "")] {
        let topic = unique("slash");
        let spell = |s: &str| Target {
            data: format!("file://{base}/data{s}"),
            markers: format!("file://{base}/markers{s}"),
            options: Default::default(),
        };
        let cfg = parse(&toml("slash", &topic, &spell(run_suffix)));
        let st = SinkStores::open(&cfg).unwrap();
        let committed = commit(&st, "slash", &batch(&topic, 0, 0, 99, "a0000000000a")).await;
        let orphans = orphan(&st, "slash", &batch(&topic, 0, 0, 99, "b0000000000b")).await;
        let _ = commit(&st, "slash", &batch(&topic, 0, 100, 199, "c0000000000c")).await;
        let report = gc(
            dir.path(),
            "slash",
            &toml("slash", &topic, &spell(gc_suffix)),
            true,
        );
        println!("run {run_suffix:?} gc {gc_suffix:?}:\n{report}");
        assert_all_exist("committed", &committed);
        assert_eq!(surviving(&orphans), Vec::<&String>::new(), "{report}");
        assert_eq!(report.lines().count(), 2, "{report}");
    }
}

/// Another sink (deployed separately, so the start-up check never saw both) lands the same topic
/// under the same `store.url`: gc of the first deletes none of its files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sink_sharing_the_prefix_keeps_its_files() {
    let dir = test_dir();
    let t = Target::local(dir.path());
    let topic = unique("shared");
    let a = SinkStores::open(&parse(&toml("alpha", &topic, &t))).unwrap();
    let b = SinkStores::open(&parse(&toml("beta", &topic, &t))).unwrap();
    let alpha_committed = commit(&a, "alpha", &batch(&topic, 0, 0, 99, "a0000000000a")).await;
    let beta_committed = commit(&b, "beta", &batch(&topic, 0, 0, 49, "b0000000000b")).await;
    let beta_more = commit(&b, "beta", &batch(&topic, 1, 0, 49, "b1111111111b")).await;
    let alpha_orphans = orphan(&a, "alpha", &batch(&topic, 0, 0, 99, "d0000000000d")).await;
    let _ = commit(&a, "alpha", &batch(&topic, 0, 100, 199, "e0000000000e")).await;
    // Uploaded, not yet committed, at the partition's tip: its landing may still commit (a
    // commit retrying through a store outage outlasts any grace period).
    let alpha_in_flight = orphan(&a, "alpha", &batch(&topic, 0, 200, 299, "f0000000000f")).await;
    let report = gc(dir.path(), "alpha", &toml("alpha", &topic, &t), true);
    println!("{report}");
    assert_all_exist("alpha's attempt at the tip", &alpha_in_flight);
    assert_all_exist("alpha's committed", &alpha_committed);
    assert_all_exist("beta's committed", &[beta_committed, beta_more].concat());
    assert_eq!(surviving(&alpha_orphans), Vec::<&String>::new(), "{report}");
}

/// A sink renamed in its config: gc under the new name finds no commit of the old name, and must
/// not take the old name's committed files for its own orphans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_sink_keeps_the_old_names_files() {
    let dir = test_dir();
    let t = Target::local(dir.path());
    let topic = unique("renamed");
    let old = SinkStores::open(&parse(&toml("orders", &topic, &t))).unwrap();
    let committed = commit(&old, "orders", &batch(&topic, 0, 0, 99, "a0000000000a")).await;
    let report = gc(
        dir.path(),
        "orders-v2",
        &toml("orders-v2", &topic, &t),
        true,
    );
    println!("{report}");
    assert_all_exist("the old name's committed", &committed);
    assert_eq!(report, "", "{report}");
}

/// A `topics_regex` sink and a `topics` sink share `store.url`: neither's gc deletes the other's
/// committed files, and the regex sink's gc still deletes its own orphans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_regex_sink_keeps_its_files_and_loses_its_orphans() {
    let dir = test_dir();
    let t = Target::local(dir.path());
    let topic = unique("rx");
    let rx = SinkStores::open(&parse(&regex_toml("rx", "^rx.*", &t))).unwrap();
    let named = SinkStores::open(&parse(&toml("named", &topic, &t))).unwrap();
    let rx_committed = commit(&rx, "rx", &batch(&topic, 0, 0, 99, "a0000000000a")).await;
    let rx_orphans = orphan(&rx, "rx", &batch(&topic, 0, 0, 99, "b0000000000b")).await;
    let _ = commit(&rx, "rx", &batch(&topic, 0, 100, 199, "c0000000000c")).await;
    let named_committed = commit(&named, "named", &batch(&topic, 0, 0, 9, "d0000000000d")).await;

    let report = gc(dir.path(), "named", &toml("named", &topic, &t), true);
    println!("gc named:\n{report}");
    assert_all_exist("rx's committed", &rx_committed);
    assert_all_exist("rx's orphans (not named's to delete)", &rx_orphans);
    assert_all_exist("named's committed", &named_committed);

    let report = gc(dir.path(), "rx", &regex_toml("rx", "^rx.*", &t), true);
    println!("gc rx:\n{report}");
    assert_all_exist("rx's committed", &rx_committed);
    assert_all_exist("named's committed", &named_committed);
    assert_eq!(surviving(&rx_orphans), Vec::<&String>::new(), "{report}");
}
