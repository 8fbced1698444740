//! What Airflow sensors see: the documented wildcard patterns match only complete, committed
//! batches (and window `_SUCCESS` markers), never Landfall's internal objects (start-up probes,
//! genesis and commit records, index entries). `docs/markers.md` names the patterns.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::TryStreamExt;
use landfall_core::keys::{batch_marker_pattern, fnmatch, window_marker_pattern};
use landfall_core::manifest::Manifest;
use landfall_store::{Location, OpenOptions};
use landfall_testkit::{json_record, produce, producer, write_config, S3Server, SinkProcess};

/// Every key of the bucket (bucket-relative), as a sensor's listing sees it.
async fn bucket_keys(bucket: &Location) -> Vec<String> {
    bucket
        .store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list the bucket")
}

/// What a wildcard watcher saw while the sink started and landed.
#[derive(Default)]
struct Watched {
    listings: usize,
    /// Every key ever seen.
    seen: BTreeSet<String>,
    /// Keys that matched the batch pattern, with whether their batch was complete (commit
    /// record and every listed file present) in the same instant the sensor would have woken.
    matched: BTreeMap<String, bool>,
    /// Listings that matched nothing before the first match.
    empty_before_first: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_on_the_documented_prefix_wakes_only_for_complete_batches() {
    let broker = broker();
    let s3 = S3Server::start();
    let prefix = unique("mk");
    let t = Target {
        data: format!("s3://lake/{prefix}/raw"),
        markers: format!("s3://lake/{prefix}/_landfall"),
        options: s3.options(),
    };
    let (sink, topic) = ("mk", unique("mk"));
    broker.create_topic(&topic, 2);
    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        2,
        (0..400).map(|i| (i, json_record(i))),
    )
    .await;

    let bucket = Location::open(
        &"s3://lake".parse().unwrap(),
        &OpenOptions {
            options: s3.options(),
            max_retries: 3,
            request_timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    // The documented patterns, bucket-relative (what S3KeySensor's bucket_key holds).
    let batch_pattern = format!("{prefix}/_landfall/{}", batch_marker_pattern(sink, &topic));
    let window_pattern = format!("{prefix}/raw/{}", window_marker_pattern(&topic));

    // The watcher starts before `landfall run`: a deferrable sensor started before anything landed.
    let watched = Arc::new(Mutex::new(Watched::default()));
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = {
        let (bucket, watched, stop, pattern) = (
            bucket.clone(),
            watched.clone(),
            stop.clone(),
            batch_pattern.clone(),
        );
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let keys = bucket_keys(&bucket).await;
                let listed: BTreeSet<&String> = keys.iter().collect();
                let hits: Vec<&String> = keys.iter().filter(|k| fnmatch(&pattern, k)).collect();
                {
                    let mut w = watched.lock().unwrap();
                    w.listings += 1;
                    for k in &keys {
                        w.seen.insert(k.clone());
                    }
                    if hits.is_empty() && w.matched.is_empty() {
                        w.empty_before_first += 1;
                    }
                }
                for k in hits {
                    if watched.lock().unwrap().matched.contains_key(k) {
                        continue;
                    }
                    // Complete = its commit record and every file it lists were in the same
                    // listing (so were durable before the marker appeared).
                    let body = landfall_store::io::get(&bucket, k)
                        .await
                        .unwrap()
                        .expect("a listed marker exists");
                    let m = Manifest::from_json(&body).expect("a batch marker is a manifest");
                    let commit = bucket.key_of_url(&m.commit_url).unwrap();
                    let complete =
                        listed.contains(&commit) && m.files.iter().all(|f| listed.contains(&f.key));
                    watched.lock().unwrap().matched.insert(k.clone(), complete);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let dir = test_dir();
    let text = sink_toml(
        sink,
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 100\nmax_age_ms = 1000",
        // Windows on, so their bookkeeping (`_windows/`) is among what the watcher lists.
        "[windows]\nenabled = true\n",
    );
    let config = write_config(dir.path(), sink, &text);
    let proc = SinkProcess::start(
        Path::new(env!("CARGO_BIN_EXE_landfall")),
        &config,
        &[],
        dir.path().join("sink.log"),
    );
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let committed = await_landed(&st.markers, sink, &produced, Duration::from_secs(90)).await;
    assert_eq!(proc.terminate(Duration::from_secs(60)), Some(0));
    // One more listing after the last marker.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    watcher.await.unwrap();

    let everything = bucket_keys(&bucket).await;
    let w = watched.lock().unwrap();
    let batch_hits: BTreeSet<String> = everything
        .iter()
        .filter(|k| fnmatch(&batch_pattern, k))
        .cloned()
        .collect();
    let markers: BTreeSet<String> = committed
        .iter()
        .map(|m| bucket.key_of_url(&m.marker_url).unwrap())
        .collect();
    let probe_seen = w.seen.iter().any(|k| k.contains("_landfall_probe"));
    let internal_seen = w
        .seen
        .iter()
        .filter(|k| k.starts_with(&format!("{prefix}/_landfall/")) && !markers.contains(*k))
        .count();
    eprintln!(
        "listings {}, empty before the first match {}, objects written {}, batch markers {}, \
         internal marker-prefix objects seen {internal_seen}, probe seen by the watcher {probe_seen}",
        w.listings,
        w.empty_before_first,
        everything.len(),
        markers.len()
    );
    assert!(
        w.empty_before_first > 0,
        "the watcher listed before the first batch"
    );
    // Exactly the committed batches' markers match the batch pattern, and each was complete
    // when the watcher first saw it.
    assert_eq!(batch_hits, markers);
    let incomplete: Vec<_> = w.matched.iter().filter(|(_, ok)| !**ok).collect();
    assert!(
        incomplete.is_empty(),
        "incomplete at wake-up: {incomplete:?}"
    );
    assert_eq!(
        w.matched.keys().cloned().collect::<BTreeSet<_>>(),
        markers,
        "the watcher saw every marker, nothing else"
    );
    // Nothing matched the window pattern but `_SUCCESS` objects (none yet: the records' hour is
    // the current one).
    let window_hits: Vec<_> = everything
        .iter()
        .chain(w.seen.iter())
        .filter(|k| fnmatch(&window_pattern, k))
        .filter(|k| !k.ends_with("/_SUCCESS"))
        .collect();
    assert!(window_hits.is_empty(), "{window_hits:?}");
    let total: u64 = committed.iter().map(|m| m.records).sum();
    assert_eq!(total, 400);
}
