//! `[notify]`: one Kafka message per committed batch, consumed from a real broker and compared
//! one-to-one with the commit records, including a `kill -9` between a commit record and its
//! marker (the notification broker was down, so the post-commit step could not finish).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;
use landfall_core::manifest::Manifest;
use landfall_store::recovery::is_published;
use landfall_testkit::{eventually, json_record, manifests, produce, producer, write_config};
use landfall_testkit::{Broker, Engine, SinkProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_batch_is_notified_even_after_a_kill9_between_commit_and_marker() {
    let data_broker = broker();
    // The notification cluster differs from the data cluster, so it can be taken down alone.
    let mut notify_broker = Broker::start(Engine::Sqlite);
    let (sink, topic, notify_topic) = ("nt", unique("nt"), "landfall.batches");
    data_broker.create_topic(&topic, 2);
    notify_broker.create_topic(notify_topic, 1);
    let dir = test_dir();
    let t = Target::local(dir.path());
    let text = sink_toml(
        sink,
        &topic,
        &data_broker.bootstrap(),
        &t,
        "max_records = 50\nmax_age_ms = 500",
        &format!(
            "[notify]\nkafka_topic = \"{notify_topic}\"\nbootstrap_servers = \"{}\"\n\
             options = {{ \"message.timeout.ms\" = \"2000\" }}\n",
            notify_broker.bootstrap()
        ),
    );
    let config = write_config(dir.path(), sink, &text);
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let bin = Path::new(env!("CARGO_BIN_EXE_landfall"));
    let p = producer(&data_broker.bootstrap());

    // 1. Notifications flow.
    let mut produced = produce(&p, &topic, 2, (0..200).map(|i| (i, json_record(i)))).await;
    let first = SinkProcess::start(bin, &config, &[], dir.path().join("first.log"));
    await_landed(&st.markers, sink, &produced, Duration::from_secs(90)).await;
    // The marker is the step's last write: once every marker is there, so is every notification.
    eventually(
        "every marker published",
        Duration::from_secs(30),
        || async {
            let ms = manifests(&st.markers, sink).await;
            for m in &ms {
                if !is_published(&st.markers, m).await.unwrap() {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;

    // 2. The notification broker dies; batches still commit but their step cannot finish.
    notify_broker.kill();
    let more = produce(&p, &topic, 2, (200..400).map(|i| (i, json_record(i)))).await;
    for (k, v) in more {
        *produced.entry(k).or_insert(0) += v;
    }
    let stranded: Manifest = eventually(
        "a commit record whose marker is missing",
        Duration::from_secs(60),
        || async {
            for m in manifests(&st.markers, sink).await {
                if !is_published(&st.markers, &m).await.unwrap() {
                    return Some(m);
                }
            }
            None
        },
    )
    .await;
    first.kill9();
    eprintln!(
        "killed with {}[{}] {:?} committed, marker missing",
        stranded.topic, stranded.partition, stranded.offsets
    );

    // 3. Everything back; recovery finishes the stranded step, notification included.
    notify_broker.start_again();
    let second = SinkProcess::start(bin, &config, &[], dir.path().join("second.log"));
    let committed = await_landed(&st.markers, sink, &produced, Duration::from_secs(120)).await;
    eventually(
        "every marker published",
        Duration::from_secs(60),
        || async {
            for m in &committed {
                if !is_published(&st.markers, m).await.unwrap() {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    assert_eq!(second.terminate(Duration::from_secs(60)), Some(0));

    let committed = manifests(&st.markers, sink).await;
    let consumed = tokio::task::spawn_blocking({
        let b = notify_broker.bootstrap();
        move || consume_all(&b, notify_topic)
    })
    .await
    .unwrap();
    // One-to-one: the set of notified batches is the set of commit records; each value is the
    // marker's bytes; key and headers name the batch.
    let mut notified: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for c in &consumed {
        let m = Manifest::from_json(&c.value).expect("a notification is a manifest");
        let marker = landfall_store::io::get(
            &st.markers,
            &landfall_store::recovery::marker_key_of(&st.markers, &m).unwrap(),
        )
        .await
        .unwrap()
        .expect("a notified batch has its marker");
        assert_eq!(c.value, marker.to_vec(), "value = the marker's bytes");
        assert_eq!(c.key, format!("{sink}/{topic}/{:05}", m.partition));
        assert_eq!(c.headers["landfall-kind"], "batch");
        assert_eq!(c.headers["landfall-sink"], sink);
        assert_eq!(c.headers["landfall-topic"], topic);
        assert_eq!(c.headers["landfall-partition"], m.partition.to_string());
        *notified.entry((m.partition, m.offsets.first)).or_default() += 1;
    }
    let commits: BTreeSet<(i32, i64)> = committed
        .iter()
        .map(|m| (m.partition, m.offsets.first))
        .collect();
    let duplicates: usize = notified.values().map(|n| n - 1).sum();
    eprintln!(
        "commit records {}, notifications {}, distinct {}, repeated {duplicates}",
        commits.len(),
        consumed.len(),
        notified.len()
    );
    assert_eq!(
        notified.keys().copied().collect::<BTreeSet<_>>(),
        commits,
        "notified batches = commit records"
    );
    assert!(notified.contains_key(&(stranded.partition, stranded.offsets.first)));
    // Per partition, notifications arrive in commit order (one key per partition).
    for part in 0..2 {
        let firsts: Vec<i64> = consumed
            .iter()
            .map(|c| Manifest::from_json(&c.value).unwrap())
            .filter(|m| m.partition == part)
            .map(|m| m.offsets.first)
            .collect();
        let mut sorted = firsts.clone();
        sorted.sort();
        assert_eq!(firsts, sorted, "partition {part} in commit order");
    }
    let total: u64 = committed.iter().map(|m| m.records).sum();
    assert_eq!(total, 400);
}
