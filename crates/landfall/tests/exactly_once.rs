//! Exactly-once landing through crashes, rebalances, zombies, store faults and broker restarts.
//! Real broker (tansu, SQLite engine: correct under seeks and restarts), moto's S3 server, the
//! real `landfall` binary where processes are killed. Every test ends with the same check: the
//! multiset of (partition, offset) read back from Parquet equals the produced set.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use landfall_core::buffer::{BufferFormat, PartitionBuffer};
use landfall_core::flush::FlushReason;
use landfall_core::manifest::{Landed, OffsetRange};
use landfall_core::{KafkaRecord, TopicPartition};
use landfall_runtime::land::{land, LandSettings};
use landfall_runtime::publish::Publisher;
use landfall_store::recovery::{recover_partition, Hint, IfNew};
use landfall_store::Location;
use landfall_testkit::faults::{FaultConfig, FaultyStore};
use landfall_testkit::{
    assert_exactly_once, eventually, json_record, landed_offsets, manifests, produce, producer,
    write_config, S3Server, SinkProcess,
};
use rand::Rng;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_landfall"))
}

fn s3_target(s3: &S3Server) -> Target {
    let prefix = unique("eo");
    Target {
        data: format!("s3://lake/{prefix}/raw"),
        markers: format!("s3://lake/{prefix}/_landfall"),
        options: s3.options(),
    }
}

/// Produce `total` records in rounds of `per_round` while something else happens.
fn spawn_producer(
    bootstrap: String,
    topic: String,
    partitions: i32,
    total: u64,
    per_round: u64,
) -> tokio::task::JoinHandle<BTreeMap<i32, u64>> {
    tokio::spawn(async move {
        let p = producer(&bootstrap);
        let mut counts: BTreeMap<i32, u64> = BTreeMap::new();
        let mut seq = 0;
        while seq < total {
            let end = (seq + per_round).min(total);
            let c = produce(
                &p,
                &topic,
                partitions,
                (seq..end).map(|i| (i, json_record(i))),
            )
            .await;
            for (k, v) in c {
                *counts.entry(k).or_insert(0) += v;
            }
            seq = end;
            // Pacing of the load, not synchronisation: records keep arriving while the sinks churn.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        counts
    })
}

async fn check(
    topic: &str,
    produced: &BTreeMap<i32, u64>,
    data: &Location,
    markers: &Location,
    sink: &str,
) {
    let ms = manifests(markers, sink).await;
    let landed = landed_offsets(data, &ms).await;
    assert_exactly_once(topic, produced, &ms, &landed);
}

/// No group offset is ahead of the markers (offsets are only hints, committed after the marker).
/// Offsets are read first and markers second: the chain only grows, so this order cannot race.
/// Returns the group's offsets and the manifests that were read.
async fn assert_offsets_behind_markers(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    markers: &Location,
    sink: &str,
) -> (BTreeMap<i32, i64>, Vec<landfall_core::manifest::Manifest>) {
    let committed = tokio::task::spawn_blocking({
        let (b, g, t) = (bootstrap.to_string(), group.to_string(), topic.to_string());
        move || landfall_testkit::committed_offsets(&b, &g, &t, partitions)
    })
    .await
    .unwrap();
    let ms = manifests(markers, sink).await;
    for (p, off) in &committed {
        let chain = ms
            .iter()
            .filter(|m| m.partition == *p)
            .map(|m| m.offsets.next)
            .max()
            .unwrap_or(0);
        assert!(
            *off <= chain,
            "partition {p}: group offset {off} ahead of the markers ({chain})"
        );
    }
    (committed, ms)
}

/// What each test here starts from: a broker (SQLite engine) with a fresh topic named after the
/// sink, moto S3, a fresh prefix of bucket `lake`, and the sink's config text.
struct Rig {
    broker: landfall_testkit::Broker,
    s3: S3Server,
    t: Target,
    topic: String,
    text: String,
}

impl Rig {
    fn start(sink: &str, partitions: i32, flush: &str, extra: &str) -> Rig {
        let broker = broker();
        let s3 = S3Server::start();
        let t = s3_target(&s3);
        let topic = unique(sink);
        broker.create_topic(&topic, partitions);
        let text = sink_toml(sink, &topic, &broker.bootstrap(), &t, flush, extra);
        Rig {
            broker,
            s3,
            t,
            topic,
            text,
        }
    }
}

fn stores_of(cfg_text: &str, t: &Target) -> landfall_runtime::SinkStores {
    stores(&parse(cfg_text), t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_soak_lands_every_offset_once() {
    const P: i32 = 4;
    let Rig {
        broker,
        s3: _s3,
        t,
        topic,
        text,
    } = Rig::start(
        "soak",
        P,
        "max_records = 400\nmax_age_ms = 700",
        "[runtime]\nchunk_records = 200\n",
    );
    let dir = test_dir();
    // Each restart joins a consumer group of its own. Landfall never needs the group's memory (the
    // store is the truth; a new group has no offset hint, the slowest recovery), and on tansu
    // 0.6.0 a group whose leader was killed can stay stuck with partitions nobody owns
    // (tests/broker_conformance.rs). In a fresh group the sink owns every partition within about
    // a second, so the kills land in the middle of real work, not in a wait for a rebalance.
    let config_for = |run: &str| {
        let body = text.replace(
            "session_timeout_ms = 6000",
            &format!("session_timeout_ms = 6000\ngroup_id = \"landfall-soak-{run}\""),
        );
        assert_ne!(body, text, "group id not set");
        write_config(dir.path(), &format!("soak-{run}"), &body)
    };
    // About 500 records/s, so that records keep arriving through all 20 cycles.
    let producing = spawn_producer(broker.bootstrap(), topic.clone(), P, 30_000, 50);

    let mut rng = rand::rng();
    let mut kills_ms = Vec::new();
    let mut committed_at_kill = Vec::new();
    let st = stores_of(&text, &t);
    for cycle in 0..20 {
        let sink = SinkProcess::start(
            bin(),
            &config_for(&cycle.to_string()),
            &[],
            dir.path().join(format!("sink-{cycle}.log")),
        );
        // The fault schedule: SIGKILL at a random moment of the sink's life.
        let life = rng.random_range(1500..5000);
        tokio::time::sleep(Duration::from_millis(life)).await;
        sink.kill9();
        kills_ms.push(life);
        committed_at_kill.push(manifests(&st.markers, "soak").await.len());
    }
    eprintln!(
        "{} SIGKILLs, after {kills_ms:?} ms of each sink's life; commits by then: {committed_at_kill:?}",
        kills_ms.len()
    );
    // The kills hit working sinks: commits kept growing across the cycles.
    assert!(
        committed_at_kill.windows(2).filter(|w| w[1] > w[0]).count() >= 10,
        "too few cycles committed anything: {committed_at_kill:?}"
    );
    let produced = producing.await.unwrap();
    let sink = SinkProcess::start(
        bin(),
        &config_for("final"),
        &[],
        dir.path().join("sink-final.log"),
    );
    // The killed sinks may have landed everything already; the final one must still take over
    // every partition before it is stopped.
    eventually(
        "the final sink owns every partition",
        Duration::from_secs(60),
        || async { (sink.metric("landfall_partitions_assigned") == Some(P as f64)).then_some(()) },
    )
    .await;
    await_landed(&st.markers, "soak", &produced, Duration::from_secs(240)).await;
    assert_eq!(
        sink.terminate(Duration::from_secs(60)),
        Some(0),
        "clean shutdown"
    );
    check(&topic, &produced, &st.data, &st.markers, "soak").await;
    assert_eq!(produced.values().sum::<u64>(), 30_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_storm_lands_every_offset_once() {
    const P: i32 = 12;
    let Rig {
        broker,
        s3: _s3,
        t,
        topic,
        text,
    } = Rig::start(
        "storm",
        P,
        "max_records = 500\nmax_age_ms = 800",
        "[runtime]\nchunk_records = 250\nrevoke_flush_timeout_ms = 3000\n",
    );
    let dir = test_dir();
    let config = write_config(dir.path(), "storm", &text);
    let producing = spawn_producer(broker.bootstrap(), topic.clone(), P, 36_000, 600);
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let mut members: Vec<Option<SinkProcess>> = (0..3)
        .map(|i| {
            Some(SinkProcess::start(
                bin(),
                &config,
                &[],
                log(&format!("m{i}-0")),
            ))
        })
        .collect();
    let mut rng = rand::rng();
    for step in 1..=9 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(2000..4000))).await;
        let i = step % 3;
        let m = members[i].take().unwrap();
        match step % 3 {
            0 => {
                m.terminate(Duration::from_secs(30)); // leaves the group cleanly
            }
            _ => m.kill9(), // vanishes; the group notices at session timeout
        }
        members[i] = Some(SinkProcess::start(
            bin(),
            &config,
            &[],
            log(&format!("m{i}-{step}")),
        ));
    }
    let produced = producing.await.unwrap();
    let st = stores_of(&text, &t);
    await_landed(&st.markers, "storm", &produced, Duration::from_secs(300)).await;
    for m in members.into_iter().flatten() {
        m.terminate(Duration::from_secs(60));
    }
    check(&topic, &produced, &st.data, &st.markers, "storm").await;
}

/// A writer stalls in the middle of landing (a GC pause, a frozen VM). Meanwhile another member
/// owns the partition and commits the same offsets. When the stalled writer wakes and tries to
/// commit, the create-only commit is refused: it learns who won, and nothing is duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_commit_is_refused() {
    let Rig {
        broker,
        s3: _s3,
        t,
        topic,
        text,
    } = Rig::start("zombie", 1, "max_records = 100\nmax_age_ms = 500", "");
    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        1,
        (0..300).map(|i| (i, json_record(i))),
    )
    .await;
    let cfg = parse(&text);
    let st = stores(&cfg, &t);

    // The zombie: it read offsets 0..=149 as the partition's owner and sealed them as one batch
    // (the store says the partition starts at 0), then stalled before its commit.
    let rec = recover_partition(
        &st.markers,
        "zombie",
        &topic,
        0,
        None,
        IfNew {
            offset: Some(0),
            writer_id: "zombie",
            now_rfc3339: "now",
        },
    )
    .await
    .unwrap();
    assert_eq!(rec.next, 0);
    let fmt = BufferFormat::from_config(&cfg);
    let mut buffer = PartitionBuffer::new(TopicPartition::new(topic.as_str(), 0));
    for o in 0..150 {
        buffer.push(
            KafkaRecord {
                topic: topic.as_str().into(),
                partition: 0,
                offset: o,
                timestamp_ms: Some(0),
                key: None,
                value: Some(json_record(o as u64).into()),
                headers: vec![],
            },
            0,
        );
    }
    let zombie_batch = buffer
        .seal(
            &fmt,
            FlushReason::Age,
            OffsetRange::new(0, 149),
            "zombieattempt",
            0,
        )
        .unwrap()
        .unwrap();

    // The new owner lands everything.
    let sink = start_sink(cfg, st.clone(), "new-owner");
    await_landed(&st.markers, "zombie", &produced, Duration::from_secs(60)).await;
    sink.stop().await;

    // The zombie wakes and commits.
    let settings = LandSettings {
        sink: "zombie".into(),
        writer_id: "zombie".into(),
        multipart_threshold_bytes: 1 << 30,
        multipart_part_bytes: 8 << 20,
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(2));
    let publisher = Publisher::new(st.markers.clone());
    let outcome = land(&st, &settings, &uploads, &publisher, &zombie_batch, || 0)
        .await
        .unwrap();
    match outcome {
        Landed::Lost(winner) => {
            assert_eq!(winner.writer_id, "new-owner");
            assert_eq!(winner.offsets.first, 0);
        }
        Landed::Committed(_) => panic!("the zombie's commit was accepted"),
    }
    // Nothing duplicated: the zombie's uploaded file is an orphan no manifest lists.
    check(&topic, &produced, &st.data, &st.markers, "zombie").await;
    let ms = manifests(&st.markers, "zombie").await;
    assert!(ms.iter().all(|m| m.writer_id == "new-owner"));

    // `landfall gc` finds the zombie's file (listed by no manifest) and deletes it on request;
    // `landfall verify` is clean before and after.
    let dir = test_dir();
    let config = write_config(dir.path(), "zombie", &text);
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
    let (code, report) = cli(&["verify", "--check-files"]);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.starts_with(&format!(
            "OK   {topic}[0]: commits=3 covered=[0, 300) rows=300"
        )),
        "{report}"
    );
    let (code, dry) = cli(&["gc", "--min-age-secs", "0"]);
    assert_eq!(code, Some(0));
    let orphans: Vec<&str> = dry.lines().collect();
    assert_eq!(orphans.len(), 1, "{dry}");
    assert!(
        orphans[0].starts_with("orphan ") && orphans[0].contains("zombieattempt"),
        "{dry}"
    );
    let (code, deleted) = cli(&["gc", "--min-age-secs", "0", "--delete"]);
    assert_eq!((code, deleted.lines().count()), (Some(0), 1));
    assert_eq!(cli(&["gc", "--min-age-secs", "0"]).1, "");
    assert_eq!(cli(&["verify", "--check-files"]).0, Some(0));

    // An overlapping commit record (what fencing prevents) makes verify fail.
    let mut bogus = ms[1].clone();
    bogus.offsets = OffsetRange::new(50, 120);
    bogus.attempt_id = "forged".into();
    let key = landfall_core::keys::commit_key("zombie", &topic, 0, 50);
    landfall_store::io::put(&st.markers, &key, bogus.to_json().into())
        .await
        .unwrap();
    let (code, report) = cli(&["verify"]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("FAIL") && report.contains("overlaps=[(50, "),
        "{report}"
    );
}

/// Transient store faults at random: 503s before a request, connection resets after a write was
/// applied (unknown outcome), slow requests. The sink retries, pauses, and lands each offset once;
/// the group's offsets never run ahead of the markers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_lose_and_duplicate_nothing() {
    const P: i32 = 4;
    let Rig {
        broker,
        s3: _s3,
        t,
        topic,
        text,
    } = Rig::start(
        "faults",
        P,
        "max_records = 300\nmax_age_ms = 500",
        "[runtime]\nchunk_records = 150\n",
    );
    let cfg = parse(&text);
    let clean = stores(&cfg, &t);
    let faults = FaultConfig {
        fail_before: 0.15,
        fail_after: 0.10,
        delay_rate: 0.05,
        delay: Duration::from_millis(1500),
        ..Default::default()
    };
    let wrap = |loc: &Location, seed: u64| -> (Location, Arc<FaultyStore>) {
        let f = Arc::new(FaultyStore::new(loc.store.clone(), faults, seed));
        (loc.with_store(f.clone()), f)
    };
    let (data, fd) = wrap(&clean.data, 1);
    let (markers, fm) = wrap(&clean.markers, 2);
    let (dead_letters, _) = wrap(&clean.dead_letters, 3);
    let faulty = landfall_runtime::SinkStores {
        data,
        markers,
        dead_letters,
    };
    let sink = start_sink(cfg, faulty, "faulty-writer");

    let producing = spawn_producer(broker.bootstrap(), topic.clone(), P, 12_000, 400);
    // While it runs: the group's committed offset of a partition never exceeds the markers.
    let watch = {
        let markers = clean.markers.clone();
        let bootstrap = broker.bootstrap();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut checks = 0;
            loop {
                assert_offsets_behind_markers(
                    &bootstrap,
                    "landfall-faults",
                    &topic,
                    P,
                    &markers,
                    "faults",
                )
                .await;
                checks += 1;
                if checks > 1000 {
                    return checks;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let produced = producing.await.unwrap();
    // Let faults hit the landing of the tail too, then stop injecting so it can finish.
    eventually("faults injected", Duration::from_secs(60), || async {
        use std::sync::atomic::Ordering::Relaxed;
        let n = fd.counts.failed_before.load(Relaxed)
            + fd.counts.failed_after.load(Relaxed)
            + fm.counts.failed_before.load(Relaxed)
            + fm.counts.failed_after.load(Relaxed);
        (n >= 20 && fm.counts.failed_after.load(Relaxed) >= 2).then_some(())
    })
    .await;
    fd.disable();
    fm.disable();
    eprintln!(
        "faults injected: data store {:?}, marker store {:?}",
        fd.counts, fm.counts
    );
    await_landed(
        &clean.markers,
        "faults",
        &produced,
        Duration::from_secs(180),
    )
    .await;
    assert!(
        !watch.is_finished(),
        "offset watcher failed: {:?}",
        watch.await
    );
    watch.abort();
    let (end, _) = assert_offsets_behind_markers(
        &broker.bootstrap(),
        "landfall-faults",
        &topic,
        P,
        &clean.markers,
        "faults",
    )
    .await;
    eprintln!("group offsets at the end: {end:?} (never ahead of the markers while running)");
    sink.stop().await;
    check(&topic, &produced, &clean.data, &clean.markers, "faults").await;
}

/// The sink's credentials are revoked while it runs. The next write gets 403: a permanent error,
/// so the sink stops with one clear line instead of retrying forever, having committed no offset
/// past its markers. With credentials back, a restart lands the rest, each offset once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_revoked_mid_run_stop_the_sink_and_lose_nothing() {
    const P: i32 = 2;
    let Rig {
        broker,
        s3,
        t,
        topic,
        text,
    } = Rig::start("revoked", P, "max_records = 250\nmax_age_ms = 500", "");
    let dir = test_dir();
    let config = write_config(dir.path(), "revoked", &text);
    let st = stores_of(&text, &t);
    let p = producer(&broker.bootstrap());
    let mut produced = produce(&p, &topic, P, (0..1000).map(|i| (i, json_record(i)))).await;
    let sink = SinkProcess::start(bin(), &config, &[], dir.path().join("sink-1.log"));
    await_landed(&st.markers, "revoked", &produced, Duration::from_secs(60)).await;

    s3.enforce_auth(true);
    for (k, v) in produce(&p, &topic, P, (1000..2000).map(|i| (i, json_record(i)))).await {
        *produced.entry(k).or_insert(0) += v;
    }
    let mut sink = sink;
    let exited = eventually("the sink stops on 403", Duration::from_secs(60), || {
        let status = sink.try_wait();
        async move { status }
    })
    .await;
    assert_eq!(exited.code(), Some(2), "{}", sink.log_tail(20));
    let last = sink.log_tail(1);
    eprintln!("sink exited {:?} with: {last}", exited.code());
    assert!(
        last.starts_with("error: sink `revoked`")
            && last.contains("InvalidAccessKeyId")
            && last.contains("permission denied"),
        "{last}"
    );
    drop(sink);

    s3.enforce_auth(false);
    let (_, ms) = assert_offsets_behind_markers(
        &broker.bootstrap(),
        "landfall-revoked",
        &topic,
        P,
        &st.markers,
        "revoked",
    )
    .await;
    let rows_before: u64 = ms.iter().map(|m| m.rows).sum();
    assert_eq!(
        rows_before, 1000,
        "nothing lands while the credentials are revoked"
    );

    let sink = SinkProcess::start(bin(), &config, &[], dir.path().join("sink-2.log"));
    await_landed(&st.markers, "revoked", &produced, Duration::from_secs(60)).await;
    assert_eq!(sink.terminate(Duration::from_secs(60)), Some(0));
    check(&topic, &produced, &st.data, &st.markers, "revoked").await;
}

/// The broker is killed and restarted (persistent SQLite storage); the sink reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_nothing() {
    let Rig {
        mut broker,
        s3: _s3,
        t,
        topic,
        text,
    } = Rig::start("restart", 3, "max_records = 500\nmax_age_ms = 500", "");
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let sink = start_sink(cfg, st.clone(), "w");
    let first = produce(
        &producer(&broker.bootstrap()),
        &topic,
        3,
        (0..3000).map(|i| (i, json_record(i))),
    )
    .await;
    await_landed(&st.markers, "restart", &first, Duration::from_secs(90)).await;
    broker.restart();
    let mut produced = first.clone();
    let more = produce(
        &producer(&broker.bootstrap()),
        &topic,
        3,
        (3000..6000).map(|i| (i, json_record(i))),
    )
    .await;
    for (k, v) in more {
        *produced.entry(k).or_insert(0) += v;
    }
    await_landed(&st.markers, "restart", &produced, Duration::from_secs(180)).await;
    sink.stop().await;
    check(&topic, &produced, &st.data, &st.markers, "restart").await;
}

/// Recovery reads the commit the group's offset points at and lists only what follows it: its
/// cost does not grow with the number of commits ever written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_reads_hint_not_history() {
    let dir = test_dir();
    let t = Target::local(dir.path());
    let text = sink_toml("hist", "hist", "127.0.0.1:1", &t, "", "");
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let fmt = BufferFormat::from_config(&cfg);
    let settings = LandSettings {
        sink: "hist".into(),
        writer_id: "w".into(),
        multipart_threshold_bytes: 1 << 30,
        multipart_part_bytes: 8 << 20,
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(4));
    let publisher = Publisher::new(st.markers.clone());
    // 300 committed batches of 2 records each, through the real landing code.
    const BATCHES: i64 = 300;
    for b in 0..BATCHES {
        let mut buffer = PartitionBuffer::new(TopicPartition::new("hist", 0));
        for o in [2 * b, 2 * b + 1] {
            buffer.push(
                KafkaRecord {
                    topic: "hist".into(),
                    partition: 0,
                    offset: o,
                    timestamp_ms: Some(0),
                    key: None,
                    value: Some(json_record(o as u64).into()),
                    headers: vec![],
                },
                0,
            );
        }
        let range = OffsetRange::new(2 * b, 2 * b + 1);
        let batch = buffer
            .seal(&fmt, FlushReason::Records, range, &format!("a{b}"), 0)
            .unwrap()
            .unwrap();
        assert!(matches!(
            land(&st, &settings, &uploads, &publisher, &batch, || 0)
                .await
                .unwrap(),
            Landed::Committed(_)
        ));
    }
    // The group's offset lags two commits behind (crash before the last offset commits).
    let hint = Hint {
        committed_offset: 2 * (BATCHES - 2),
    };
    let r = recover_partition(
        &st.markers,
        "hist",
        "hist",
        0,
        Some(hint),
        IfNew {
            offset: Some(0),
            writer_id: "w",
            now_rfc3339: "now",
        },
    )
    .await
    .unwrap();
    assert_eq!(r.next, 2 * BATCHES);
    assert_eq!(r.via, "hint+listing");
    assert!(r.listed <= 3, "listed {} objects with a hint", r.listed);
    let with_hint = r.listed;
    // Without a hint it is a listing of the partition's history.
    let r = recover_partition(
        &st.markers,
        "hist",
        "hist",
        0,
        None,
        IfNew {
            offset: Some(0),
            writer_id: "w",
            now_rfc3339: "now",
        },
    )
    .await
    .unwrap();
    assert_eq!(r.next, 2 * BATCHES);
    assert!(r.listed >= BATCHES as usize);
    eprintln!(
        "recovery over {BATCHES} commits listed {with_hint} object(s) with a hint, {} without",
        r.listed
    );
}
