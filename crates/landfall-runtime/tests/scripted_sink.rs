//! The real sink loop ([`landfall_runtime::drive`]) driven by a scripted consumer, no broker:
//! the test plays the consumer thread's part of the protocol (assignments answered with start
//! positions, records tagged with epochs, revokes answered after the hand-off, commands obeyed)
//! and lands into `object_store`'s `InMemory`, with and without injected faults. What it checks
//! is what a user would: the exact set of (partition, offset) read back from the landed Parquet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use landfall_core::buffer::{BufferFormat, PartitionBuffer};
use landfall_core::config::SinkConfig;
use landfall_core::flush::FlushReason;
use landfall_core::manifest::{Landed, OffsetRange};
use landfall_core::{KafkaRecord, TopicPartition};
use landfall_kafka::{Assigned, ConsumerCommand, ConsumerEvent, StartAt, Tagged};
use landfall_runtime::land::{land, LandSettings};
use landfall_runtime::publish::Publisher;
use landfall_runtime::{drive, Metrics, SinkContext, SinkError, SinkStores};
use landfall_store::Location;
use landfall_testkit::faults::{FaultConfig, FaultyStore};
use landfall_testkit::{eventually, json_record, landed_offsets, manifests};
use object_store::memory::InMemory;
use object_store::ObjectStore;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "orders";
const WAIT: Duration = Duration::from_secs(30);

fn config(flush: &str) -> SinkConfig {
    config_with(flush, "")
}

fn config_with(flush: &str, kafka: &str) -> SinkConfig {
    let text = format!(
        r#"name = "scripted"
topics = ["{TOPIC}"]

[kafka]
bootstrap_servers = "127.0.0.1:1"
{kafka}

[flush]
{flush}

[store]
url = "file:///nonexistent/data"

[marker]
prefix = "file:///nonexistent/markers"
"#
    );
    SinkConfig::from_toml(&text, Path::new("scripted.toml"), &|_| None).expect("valid config")
}

fn memory_stores(store: Arc<dyn ObjectStore>) -> SinkStores {
    SinkStores {
        data: Location::from_store(store.clone(), "memory://lake", "data"),
        markers: Location::from_store(store.clone(), "memory://lake", "markers"),
        dead_letters: Location::from_store(store, "memory://lake", "dead"),
    }
}

fn record(partition: i32, offset: i64) -> KafkaRecord {
    KafkaRecord {
        topic: TOPIC.into(),
        partition,
        offset,
        timestamp_ms: Some(1_763_719_200_000 + offset),
        key: None,
        value: Some(json_record(offset as u64).into()),
        headers: vec![],
    }
}

/// The consumer thread's side, played by the test.
struct Script {
    events: mpsc::Sender<ConsumerEvent>,
    commands: std_mpsc::Receiver<ConsumerCommand>,
    /// Every command the sink sent, in order.
    seen: Vec<ConsumerCommand>,
    sink: JoinHandle<Result<(), SinkError>>,
    shutdown: CancellationToken,
    /// The stores as the test reads them (without the faults the sink sees).
    stores: SinkStores,
    /// The sink's metrics, as `/metrics` shows them.
    metrics: Metrics,
}

impl Script {
    fn start(cfg: SinkConfig, stores: SinkStores, view: SinkStores) -> Script {
        let (events_tx, mut events) = mpsc::channel(8);
        let (commands_tx, commands) = std_mpsc::channel();
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new();
        let ctx = SinkContext {
            config: cfg,
            stores,
            metrics: metrics.clone(),
            writer_id: "scripted".into(),
        };
        let token = shutdown.clone();
        let sink = tokio::spawn(async move { drive(ctx, &mut events, commands_tx, &token).await });
        Script {
            events: events_tx,
            commands,
            seen: Vec::new(),
            sink,
            shutdown,
            stores: view,
            metrics,
        }
    }

    fn drain_commands(&mut self) {
        while let Ok(c) = self.commands.try_recv() {
            self.seen.push(c);
        }
    }

    /// Assign partitions (no group offset, watermarks 0..high) and return where the sink
    /// says each starts.
    async fn assign(&mut self, partitions: &[i32]) -> BTreeMap<i32, StartAt> {
        self.assign_with(partitions, Some((0, 1_000_000))).await
    }

    async fn assign_with(
        &mut self,
        partitions: &[i32],
        watermarks: Option<(i64, i64)>,
    ) -> BTreeMap<i32, StartAt> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        let partitions = partitions
            .iter()
            .map(|&p| Assigned {
                tp: TopicPartition::new(TOPIC, p),
                committed: None,
                watermarks,
            })
            .collect();
        self.events
            .send(ConsumerEvent::Assigned { partitions, reply })
            .await
            .expect("sink alive");
        let starts = tokio::task::spawn_blocking(move || answer.recv_timeout(WAIT))
            .await
            .unwrap()
            .expect("the sink answers an assignment");
        starts.into_iter().map(|s| (s.tp.partition, s)).collect()
    }

    async fn revoke(&mut self, partitions: &[i32]) {
        let (reply, answer) = std_mpsc::sync_channel(1);
        let partitions = partitions
            .iter()
            .map(|&p| TopicPartition::new(TOPIC, p))
            .collect();
        self.events
            .send(ConsumerEvent::Revoked {
                partitions,
                lost: false,
                reply,
            })
            .await
            .expect("sink alive");
        tokio::task::spawn_blocking(move || answer.recv_timeout(WAIT))
            .await
            .unwrap()
            .expect("the sink answers a revoke");
    }

    /// The consumer found `partition` out of range (as `poll::on_offset_reset` reports it).
    async fn out_of_range(&mut self, partition: i32, position: i64, low: i64, high: i64) {
        self.events
            .send(ConsumerEvent::OffsetOutOfRange {
                tp: TopicPartition::new(TOPIC, partition),
                position: Some(position),
                low,
                high,
            })
            .await
            .expect("sink alive");
    }

    async fn deliver(&mut self, partition: i32, epoch: u64, offsets: std::ops::Range<i64>) {
        let recs: Vec<_> = offsets
            .map(|o| Tagged {
                record: record(partition, o),
                epoch,
            })
            .collect();
        for chunk in recs.chunks(64) {
            self.events
                .send(ConsumerEvent::Records(chunk.to_vec()))
                .await
                .expect("sink alive");
        }
    }

    /// Wait until the sink sends a command `f` picks, and return what `f` made of it.
    async fn await_command<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&ConsumerCommand) -> Option<T>,
    ) -> T {
        let mut checked = 0;
        eventually(what, WAIT, || {
            self.drain_commands();
            let found = self.seen[checked..].iter().find_map(&mut f);
            checked = self.seen.len();
            std::future::ready(found)
        })
        .await
    }

    /// Wait until the commit records cover `expected` offsets of each partition.
    async fn await_landed(&self, expected: &BTreeMap<i32, i64>) {
        let markers = self.stores.markers.clone();
        eventually("every offset committed", WAIT, || {
            let markers = markers.clone();
            let expected = expected.clone();
            async move {
                let ms = manifests(&markers, "scripted").await;
                let mut next: BTreeMap<i32, i64> = BTreeMap::new();
                for m in &ms {
                    let e = next.entry(m.partition).or_default();
                    *e = (*e).max(m.offsets.next);
                }
                expected
                    .iter()
                    .all(|(p, n)| next.get(p) >= Some(n))
                    .then_some(())
            }
        })
        .await;
    }

    /// Wait until the sink has taken `n` records into its buffers in all (what
    /// `landfall_records_consumed_total` counts), so a shutdown right after lands them.
    async fn await_consumed(&self, n: u64) {
        let metrics = self.metrics.clone();
        let name = format!(r#"landfall_records_consumed_total{{sink="scripted",topic="{TOPIC}"}}"#);
        eventually("records taken", WAIT, || {
            std::future::ready((sample(&metrics, &name) == Some(n as f64)).then_some(()))
        })
        .await;
    }

    async fn stop(mut self) -> (Vec<ConsumerCommand>, SinkStores) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(WAIT, &mut self.sink)
            .await
            .expect("sink stops in time")
            .unwrap();
        r.expect("sink stops cleanly");
        self.drain_commands();
        (self.seen, self.stores)
    }
}

/// Read every landed row back and compare with `expected` partition -> offsets, exactly.
async fn assert_exact(stores: &SinkStores, expected: &BTreeMap<i32, std::ops::Range<i64>>) {
    let ms = manifests(&stores.markers, "scripted").await;
    let landed = landed_offsets(&stores.data, &ms).await;
    let mut got: Vec<(i32, i64)> = landed.iter().map(|(_, p, o)| (*p, *o)).collect();
    got.sort();
    let want: Vec<(i32, i64)> = expected
        .iter()
        .flat_map(|(p, r)| r.clone().map(move |o| (*p, o)))
        .collect();
    assert_eq!(got.len(), want.len(), "rows landed vs records delivered");
    assert_eq!(got, want, "landed (partition, offset) set");
    // The commit records tile each partition.
    let mut by_p: BTreeMap<i32, Vec<OffsetRange>> = BTreeMap::new();
    for m in &ms {
        by_p.entry(m.partition).or_default().push(m.offsets);
    }
    for (p, mut ranges) in by_p {
        ranges.sort_by_key(|r| r.first);
        for w in ranges.windows(2) {
            assert_eq!(w[0].next, w[1].first, "partition {p}: {ranges:?}");
        }
    }
    eprintln!(
        "{} rows read back = {} delivered, {} commits",
        got.len(),
        want.len(),
        ms.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lands_every_record_once_and_hints_the_group() {
    let stores = memory_stores(Arc::new(InMemory::new()));
    let mut s = Script::start(
        config("max_records = 100\nmax_age_ms = 60000"),
        stores.clone(),
        stores,
    );
    let starts = s.assign(&[0, 1]).await;
    assert_eq!(
        starts[&0].offset, 0,
        "an empty store starts at the low watermark"
    );
    s.deliver(0, starts[&0].epoch, 0..1000).await;
    s.deliver(1, starts[&1].epoch, 0..350).await;
    // 1000 and 300 land by record count; the last 50 of partition 1 wait for shutdown.
    s.await_landed(&BTreeMap::from([(0, 1000), (1, 300)])).await;
    let (seen, stores) = s.stop().await;
    assert_exact(&stores, &BTreeMap::from([(0, 0..1000), (1, 0..350)])).await;
    let hints: BTreeSet<(i32, i64)> = seen
        .iter()
        .filter_map(|c| match c {
            ConsumerCommand::CommitHint { tp, offset, .. } => Some((tp.partition, *offset)),
            _ => None,
        })
        .collect();
    assert!(
        hints.contains(&(0, 1000)) && hints.contains(&(1, 350)),
        "{hints:?}"
    );
    assert!(seen
        .iter()
        .any(|c| matches!(c, ConsumerCommand::StopFetching)));
    let ms = manifests(&stores.markers, "scripted").await;
    assert_eq!(
        ms.len(),
        14,
        "10 + 3 batches of 100, one shutdown batch of 50"
    );
    assert_eq!(
        ms.iter().filter(|m| m.flush_reason == "shutdown").count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_pause_retry_and_lose_nothing() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(
        memory.clone(),
        FaultConfig {
            // Per request; a landing makes four or five, so about a third of landings fail.
            fail_before: 0.05,
            fail_after: 0.04,
            ..Default::default()
        },
        42,
    ));
    let mut s = Script::start(
        config("max_records = 50\nmax_age_ms = 60000"),
        memory_stores(faulty.clone()),
        memory_stores(memory),
    );
    // Recovery retries transient errors too; the assignment still completes.
    let starts = s.assign(&[0, 1, 2]).await;
    for p in 0..3 {
        s.deliver(p, starts[&p].epoch, 0..400).await;
    }
    s.await_landed(&BTreeMap::from([(0, 400), (1, 400), (2, 400)]))
        .await;
    let (seen, view) = s.stop().await;
    faulty.disable();
    let counts = &faulty.counts;
    use std::sync::atomic::Ordering::Relaxed;
    eprintln!(
        "injected: {} before, {} after (unknown outcome)",
        counts.failed_before.load(Relaxed),
        counts.failed_after.load(Relaxed)
    );
    assert!(counts.failed_before.load(Relaxed) > 0 && counts.failed_after.load(Relaxed) > 0);
    let pauses = seen
        .iter()
        .filter(|c| matches!(c, ConsumerCommand::Pause(_)))
        .count();
    let resumes = seen
        .iter()
        .filter(|c| matches!(c, ConsumerCommand::Resume(_)))
        .count();
    assert!(pauses > 0, "a failing landing pauses its partition");
    assert!(resumes > pauses, "every pause is followed by a resume");
    assert_exact(
        &view,
        &BTreeMap::from([(0, 0..400), (1, 0..400), (2, 0..400)]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_hands_off_and_the_next_assignment_continues_where_it_ended() {
    let stores = memory_stores(Arc::new(InMemory::new()));
    let mut s = Script::start(
        config("max_records = 1000\nmax_age_ms = 60000"),
        stores.clone(),
        stores,
    );
    let starts = s.assign(&[0]).await;
    s.deliver(0, starts[&0].epoch, 0..150).await;
    // The revoke is answered only after what was buffered is committed (reason `revoke`).
    s.revoke(&[0]).await;
    let ms = manifests(&s.stores.markers, "scripted").await;
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].flush_reason, "revoke");
    assert_eq!(ms[0].offsets, OffsetRange::new(0, 149));
    // Assigned again (to us, as a new member would be): it continues from the store.
    let again = s.assign(&[0]).await;
    assert_eq!(again[&0].offset, 150);
    assert!(again[&0].epoch > starts[&0].epoch);
    // Records fetched under the old assignment are stale and dropped.
    s.deliver(0, starts[&0].epoch, 150..160).await;
    s.deliver(0, again[&0].epoch, 150..300).await;
    // Revoked again: the hand-off lands the rest before the answer.
    s.revoke(&[0]).await;
    let (seen, stores) = s.stop().await;
    // A new assignment is resumed explicitly, whatever paused it before.
    assert!(seen.iter().any(|c| matches!(c,
        ConsumerCommand::Resume(tps) if tps.contains(&TopicPartition::new(TOPIC, 0)))));
    assert_exact(&stores, &BTreeMap::from([(0, 0..300)])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_race_recovers_from_the_store_and_seeks() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let stores = memory_stores(memory);
    let cfg = config("max_records = 100\nmax_age_ms = 60000");
    let fmt = BufferFormat::from_config(&cfg);
    let mut s = Script::start(cfg, stores.clone(), stores.clone());
    let starts = s.assign(&[0]).await;
    s.deliver(0, starts[&0].epoch, 0..60).await;

    // Meanwhile another writer (a zombie that owned the partition before) commits 0..=49.
    let mut other = PartitionBuffer::new(TopicPartition::new(TOPIC, 0));
    for o in 0..50 {
        other.push(record(0, o), 0);
    }
    let theirs = other
        .seal(&fmt, FlushReason::Age, OffsetRange::new(0, 49), "other", 0)
        .unwrap()
        .unwrap();
    let landed = land(
        &stores,
        &LandSettings {
            sink: "scripted".into(),
            writer_id: "other-writer".into(),
            multipart_threshold_bytes: 1 << 30,
            multipart_part_bytes: 8 << 20,
        },
        &Arc::new(tokio::sync::Semaphore::new(1)),
        &Publisher::new(stores.markers.clone()),
        &theirs,
        || 0,
    )
    .await
    .unwrap();
    assert!(matches!(landed, Landed::Committed(_)));

    // Ours seals 0..=99 and loses the race at offset 0: it drops what it has, asks the store,
    // and seeks to where the other writer's commit ends, under a new epoch.
    s.deliver(0, starts[&0].epoch, 60..100).await;
    let (offset, epoch) = s
        .await_command("a seek after the lost race", |c| match c {
            ConsumerCommand::Seek { offset, epoch, .. } => Some((*offset, *epoch)),
            _ => None,
        })
        .await;
    assert_eq!(offset, 50);
    assert!(epoch > starts[&0].epoch);
    s.deliver(0, epoch, 50..200).await;
    s.await_landed(&BTreeMap::from([(0, 150)])).await;
    s.revoke(&[0]).await;
    let (_, stores) = s.stop().await;
    assert_exact(&stores, &BTreeMap::from([(0, 0..200)])).await;
    let ms = manifests(&stores.markers, "scripted").await;
    assert_eq!(ms[0].writer_id, "other-writer");
}

/// S3 answers two writers racing for one create-only key with 409 ConditionalRequestConflict
/// (object_store: `AlreadyExists`) while the winner's put is still in flight, so the record
/// cannot be read yet. That is a race to retry, not a corrupt store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_create_is_retried_not_fatal() {
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let faulty = Arc::new(FaultyStore::new(
        memory.clone(),
        FaultConfig {
            conflict_on_create: 0.3,
            ..Default::default()
        },
        7,
    ));
    let mut s = Script::start(
        config("max_records = 20\nmax_age_ms = 60000"),
        memory_stores(faulty.clone()),
        memory_stores(memory),
    );
    let starts = s.assign(&[0, 1]).await;
    for p in 0..2 {
        s.deliver(p, starts[&p].epoch, 0..200).await;
    }
    s.await_landed(&BTreeMap::from([(0, 200), (1, 200)])).await;
    let (_, view) = s.stop().await;
    let conflicts = faulty
        .counts
        .conflicts
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("injected {conflicts} create conflicts");
    assert!(conflicts > 0);
    assert_exact(&view, &BTreeMap::from([(0, 0..200), (1, 0..200)])).await;
}

/// `start_from = "latest"` needs the high watermark to place a partition's first commit. When
/// the broker did not give it, starting at offset 0 would land the whole topic history the user
/// asked to skip: the sink refuses to guess and stops, naming the partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_without_a_watermark_does_not_start_at_zero() {
    let stores = memory_stores(Arc::new(InMemory::new()));
    let mut s = Script::start(
        config_with("max_records = 10", "start_from = \"latest\""),
        stores.clone(),
        stores,
    );
    let starts = s.assign_with(&[0], None).await;
    assert!(
        starts.values().all(|s| s.offset != 0),
        "started at 0 without knowing where the topic ends: {starts:?}"
    );
    let err = tokio::time::timeout(WAIT, &mut s.sink)
        .await
        .expect("the sink stops")
        .unwrap()
        .expect_err("no start position is an error");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains("orders[0]") && msg.contains("high watermark"),
        "{msg}"
    );
}

/// A store that answers a landing's upload with a deterministic 4xx (here 400 Bad Request; the
/// same for 405, 411, 413) stops the sink with an error naming the object and the status, instead
/// of pausing the partition and retrying the same refused request without end while the sink
/// reports itself healthy. Nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deterministic_4xx_stops_the_sink_instead_of_retrying_forever() {
    let endpoint = landfall_testkit::faults::answering_http(400).await;
    let opts = landfall_store::OpenOptions {
        options: BTreeMap::from([
            ("aws_endpoint".to_string(), endpoint),
            ("aws_allow_http".to_string(), "true".to_string()),
            ("aws_access_key_id".to_string(), "AKIDTEST".to_string()),
            ("aws_secret_access_key".to_string(), "test".to_string()),
            ("aws_region".to_string(), "us-east-1".to_string()),
        ]),
        max_retries: 0,
        request_timeout: Duration::from_secs(5),
    };
    let refusing = Location::open(&"s3://lake/raw".parse().unwrap(), &opts).unwrap();
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut stores = memory_stores(memory.clone());
    stores.data = refusing;
    let mut s = Script::start(
        config("max_records = 50\nmax_age_ms = 60000"),
        stores,
        memory_stores(memory),
    );
    let starts = s.assign(&[0]).await;
    s.deliver(0, starts[&0].epoch, 0..60).await;
    let ended = tokio::time::timeout(WAIT, &mut s.sink)
        .await
        .expect("the sink stops instead of retrying")
        .unwrap();
    let err = ended.expect_err("a permanent store error");
    let shown = err.to_string();
    println!("sink stopped: {shown}");
    assert!(matches!(err, SinkError::Store { .. }), "{shown}");
    assert!(
        shown.contains("s3://lake/raw/orders/") && shown.contains("400 Bad Request"),
        "{shown}"
    );
    assert!(manifests(&s.stores.markers, "scripted").await.is_empty());
}

/// The value of one sample of `/metrics`, e.g. `landfall_partitions_stuck{sink="scripted"}`.
fn sample(metrics: &Metrics, name_and_labels: &str) -> Option<f64> {
    metrics.render().lines().find_map(|l| {
        l.strip_prefix(name_and_labels)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

/// The `gaps` a manifest's JSON carries, as (first, last, reason).
fn gaps_of(m: &landfall_core::manifest::Manifest) -> Vec<(i64, i64, String)> {
    let v = serde_json::to_value(m).unwrap();
    v.get("gaps")
        .and_then(|g| g.as_array())
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    (
                        g["first"].as_i64().unwrap(),
                        g["last"].as_i64().unwrap(),
                        g["reason"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const SKIPPED: &str =
    r#"landfall_offsets_skipped_total{reason="retention",sink="scripted",topic="orders"}"#;

/// Retention deleted offsets 30..=99 of partition 0 before they were landed: the consumer
/// reports the partition out of range below the log start. The sink continues from the log
/// start (a seek under a new epoch), and the next batch's manifest explains the jump; the chain
/// of commit records stays gap-free; the skipped offsets are counted; partition 1 is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_gap_continues_from_the_log_start_and_is_explained_in_the_manifest() {
    let stores = memory_stores(Arc::new(InMemory::new()));
    let mut s = Script::start(
        config("max_records = 1000\nmax_age_ms = 60000"),
        stores.clone(),
        stores,
    );
    let starts = s.assign(&[0, 1]).await;
    s.deliver(0, starts[&0].epoch, 0..30).await;
    s.deliver(1, starts[&1].epoch, 0..30).await;
    s.out_of_range(0, 30, 100, 200).await;
    let (tp, offset, epoch) = s
        .await_command("a seek to the log start", |c| match c {
            ConsumerCommand::Seek { tp, offset, epoch } => Some((tp.clone(), *offset, *epoch)),
            _ => None,
        })
        .await;
    assert_eq!((tp.partition, offset), (0, 100));
    assert!(epoch > starts[&0].epoch);
    // Records fetched before the seek are stale; those after it land.
    s.deliver(0, starts[&0].epoch, 30..40).await;
    s.deliver(0, epoch, 100..150).await;
    s.deliver(1, starts[&1].epoch, 30..60).await;
    s.await_consumed(30 + 30 + 50 + 30).await;
    let metrics = s.metrics.clone();
    let (_, stores) = s.stop().await;
    let ms = manifests(&stores.markers, "scripted").await;
    let p0: Vec<_> = ms.iter().filter(|m| m.partition == 0).collect();
    assert_eq!(p0.len(), 1, "{p0:?}");
    assert_eq!(p0[0].offsets, OffsetRange::new(0, 149));
    assert_eq!(p0[0].records, 80);
    assert_eq!(gaps_of(p0[0]), vec![(30, 99, "retention".to_string())]);
    assert!(ms
        .iter()
        .filter(|m| m.partition == 1)
        .all(|m| gaps_of(m).is_empty()));
    let mut landed = ms.clone();
    landed.sort_by_key(|m| m.partition);
    let rows = landed_offsets(&stores.data, &landed).await;
    let p0_rows: Vec<i64> = rows
        .iter()
        .filter(|(_, p, _)| *p == 0)
        .map(|r| r.2)
        .collect();
    assert_eq!(p0_rows, (0..30).chain(100..150).collect::<Vec<_>>());
    let p1_rows: Vec<i64> = rows
        .iter()
        .filter(|(_, p, _)| *p == 1)
        .map(|r| r.2)
        .collect();
    assert_eq!(p1_rows, (0..60).collect::<Vec<_>>());
    let skipped = sample(&metrics, SKIPPED);
    eprintln!(
        "manifest gaps {:?}, {SKIPPED} = {skipped:?}",
        gaps_of(p0[0])
    );
    assert_eq!(skipped, Some(70.0));
}

/// The sink was down longer than retention: the store says partition 0 continues at 50, but the
/// topic now starts at 100. The partition starts at the log start, and the gap is explained in
/// the first manifest after it, as when the consumer finds it out of range while running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_recovered_below_the_log_start_continues_there_with_an_explained_gap() {
    let stores = memory_stores(Arc::new(InMemory::new()));
    let mut s = Script::start(
        config("max_records = 1000\nmax_age_ms = 60000"),
        stores.clone(),
        stores,
    );
    let starts = s.assign(&[0]).await;
    s.deliver(0, starts[&0].epoch, 0..50).await;
    s.revoke(&[0]).await;
    // Assigned again while retention has removed everything below 100.
    let again = s.assign_with(&[0], Some((100, 300))).await;
    assert_eq!(again[&0].offset, 100, "{again:?}");
    s.deliver(0, again[&0].epoch, 100..120).await;
    s.await_consumed(50 + 20).await;
    let metrics = s.metrics.clone();
    let (_, stores) = s.stop().await;
    let mut ms = manifests(&stores.markers, "scripted").await;
    ms.sort_by_key(|m| m.offsets.first);
    let ranges: Vec<_> = ms.iter().map(|m| (m.offsets, gaps_of(m))).collect();
    eprintln!(
        "commits {ranges:?}, {SKIPPED} = {:?}",
        sample(&metrics, SKIPPED)
    );
    assert_eq!(
        ranges,
        vec![
            (OffsetRange::new(0, 49), vec![]),
            (
                OffsetRange::new(50, 119),
                vec![(50, 99, "retention".to_string())]
            ),
        ]
    );
    assert_eq!(sample(&metrics, SKIPPED), Some(50.0));
}

/// The log of partition 0 is shorter than what Landfall landed (the topic was recreated): the
/// consumer reports it out of range above the high watermark. That partition stops — no seek,
/// nothing dropped as a duplicate, reported stuck (metric and `/healthz`) — while partition 1
/// keeps landing, and the sink itself keeps running and stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_log_stops_only_that_partition_and_reports_it() {
    let stores = memory_stores(Arc::new(InMemory::new()));
    let mut s = Script::start(
        config("max_records = 50\nmax_age_ms = 60000"),
        stores.clone(),
        stores,
    );
    let starts = s.assign(&[0, 1]).await;
    s.deliver(0, starts[&0].epoch, 0..50).await;
    s.deliver(1, starts[&1].epoch, 0..50).await;
    s.await_landed(&BTreeMap::from([(0, 50), (1, 50)])).await;
    s.out_of_range(0, 50, 0, 10).await;
    let stuck = r#"landfall_partitions_stuck{sink="scripted"}"#;
    let metrics = s.metrics.clone();
    eventually("partition 0 reported stuck", WAIT, || {
        std::future::ready((sample(&metrics, stuck) == Some(1.0)).then_some(()))
    })
    .await;
    // `/readyz` reads the status board, which the sink loop refreshes every tick.
    let body = eventually("/readyz reports the partition out of range", WAIT, || {
        let (code, body) = landfall_runtime::http::ready(&metrics);
        std::future::ready((code.as_u16() == 503 && body.contains("out of range")).then_some(body))
    })
    .await;
    eprintln!("{stuck} = 1; /readyz 503: {body}");
    // Partition 1 keeps landing.
    s.deliver(1, starts[&1].epoch, 50..100).await;
    s.await_landed(&BTreeMap::from([(1, 100)])).await;
    let (seen, stores) = s.stop().await;
    assert!(
        !seen
            .iter()
            .any(|c| matches!(c, ConsumerCommand::Seek { .. })),
        "the stopped partition was moved"
    );
    assert!(seen.iter().any(|c| matches!(c,
        ConsumerCommand::Pause(tps) if tps.contains(&TopicPartition::new(TOPIC, 0)))));
    assert_exact(&stores, &BTreeMap::from([(0, 0..50), (1, 0..100)])).await;
}

/// `[windows] late_records = "dead_letter"`: records of windows that closed (one by its
/// `_SUCCESS`, one by the partition's own watermark) become dead letters with the reason, listed
/// by their batch's manifest; no data file joins the closed window or the late area, the
/// `_SUCCESS` is untouched, and every offset is a landed row or a dead letter exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_a_closed_window_become_dead_letters_with_the_reason() {
    use bytes::Bytes;
    use landfall_core::deadletter::parse_jsonl;
    use landfall_core::keys::{time_partition, window_marker_key};

    let text = format!(
        r#"name = "scripted"
topics = ["{TOPIC}"]

[kafka]
bootstrap_servers = "127.0.0.1:1"

[flush]
max_records = 10
max_age_ms = 60000

[store]
url = "file:///nonexistent/data"

[marker]
prefix = "file:///nonexistent/markers"

[windows]
enabled = true
allowed_lateness_ms = 1000
late_records = "dead_letter"
idle_after_ms = 600000
"#
    );
    let cfg = SinkConfig::from_toml(&text, Path::new("scripted.toml"), &|_| None).unwrap();
    let stores = memory_stores(Arc::new(InMemory::new()));
    const HOUR_MS: i64 = 3_600_000;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let hour_start = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let tp_of = |ms: i64| time_partition(ms * 1000, chrono_tz::UTC);
    // Three hours ago: another worker already closed it (its `_SUCCESS` exists).
    let closed_ms = hour_start - 3 * HOUR_MS + 60_000;
    // Two hours ago: no marker, but this partition's watermark (the rows of `now`) passed it.
    let passed_ms = hour_start - 2 * HOUR_MS + 60_000;
    let (closed_tp, passed_tp, now_tp) = (tp_of(closed_ms), tp_of(passed_ms), tp_of(now_ms));
    let success = Bytes::from_static(b"{\"kind\":\"window\"}");
    landfall_store::io::put(
        &stores.data,
        &window_marker_key(TOPIC, &closed_tp),
        success.clone(),
    )
    .await
    .unwrap();

    let rec = |offset: i64, ts_ms: i64, value: &str| Tagged {
        record: KafkaRecord {
            topic: TOPIC.into(),
            partition: 0,
            offset,
            timestamp_ms: Some(ts_ms),
            key: Some(Bytes::from(format!("key-{offset}"))),
            value: Some(Bytes::from(value.to_string())),
            headers: vec![],
        },
        epoch: 0,
    };
    let mut s = Script::start(cfg, stores.clone(), stores);
    let starts = s.assign(&[0]).await;
    let epoch = starts[&0].epoch;
    // Batch 0..10: the present hour, on time; its commit raises the partition's watermark.
    let first: Vec<Tagged> = (0..10)
        .map(|o| Tagged {
            epoch,
            ..rec(o, now_ms, &json_record(o as u64))
        })
        .collect();
    s.events.send(ConsumerEvent::Records(first)).await.unwrap();
    s.await_landed(&BTreeMap::from([(0, 10)])).await;
    // Batch 10..20: even offsets now, 11-17 in the closed hour, 19 in the passed hour, and
    // 18 undecodable.
    let second: Vec<Tagged> = (10..20)
        .map(|o| {
            let ts = match o {
                19 => passed_ms,
                o if o % 2 == 1 => closed_ms,
                _ => now_ms,
            };
            let value = if o == 18 {
                "{not json".to_string()
            } else {
                json_record(o as u64)
            };
            Tagged {
                epoch,
                ..rec(o, ts, &value)
            }
        })
        .collect();
    s.events.send(ConsumerEvent::Records(second)).await.unwrap();
    s.await_landed(&BTreeMap::from([(0, 20)])).await;
    let (_, stores) = s.stop().await;

    let ms = manifests(&stores.markers, "scripted").await;
    let m = ms
        .iter()
        .find(|m| m.offsets.first == 10)
        .expect("batch 10..20");
    assert_eq!(
        (m.records, m.rows, m.dead_lettered),
        (10, 4, 6),
        "records = rows + dead_lettered"
    );
    for f in ms.iter().flat_map(|m| &m.files) {
        assert_eq!(
            f.time_partition.as_deref(),
            Some(now_tp.as_str()),
            "{}",
            f.url
        );
    }
    assert_eq!(m.dead_letter_files.len(), 1);
    let dl = &m.dead_letter_files[0];
    let body = landfall_store::io::get(
        &stores.dead_letters,
        &stores.dead_letters.key_of_url(&dl.url).unwrap(),
    )
    .await
    .unwrap()
    .expect("the listed dead-letter file exists");
    let lines = parse_jsonl(&body).unwrap();
    let reasons: Vec<(i64, String)> = lines.iter().map(|l| (l.offset, l.reason.clone())).collect();
    eprintln!("dead letters of batch 10..20: {reasons:?}");
    let late_closed = format!("late: window {closed_tp} closed");
    let late_passed = format!("late: window {passed_tp} closed");
    assert_eq!(
        reasons
            .iter()
            .map(|(o, r)| (*o, r.starts_with("late: ").then_some(r.as_str())))
            .collect::<Vec<_>>(),
        [
            (11, Some(late_closed.as_str())),
            (13, Some(late_closed.as_str())),
            (15, Some(late_closed.as_str())),
            (17, Some(late_closed.as_str())),
            (18, None),
            (19, Some(late_passed.as_str())),
        ]
    );
    assert_eq!(
        lines[0].key_base64.as_deref(),
        Some("a2V5LTEx"),
        "key-11, byte-exact"
    );
    assert_eq!((dl.min_offset, dl.max_offset, dl.rows), (11, 19, 6));

    // Nothing joined the closed windows or went to the late area; the `_SUCCESS` is as it was.
    for dir in [
        format!("{TOPIC}/{closed_tp}"),
        format!("{TOPIC}/{passed_tp}"),
        format!("{TOPIC}/_late"),
    ] {
        let listed: Vec<String> = landfall_store::io::list(&stores.data, &dir, None)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.path.to_string())
            .filter(|p| !p.ends_with("/_SUCCESS"))
            .collect();
        assert!(listed.is_empty(), "{dir}: {listed:?}");
    }
    assert_eq!(
        landfall_store::io::get(&stores.data, &window_marker_key(TOPIC, &closed_tp))
            .await
            .unwrap(),
        Some(success)
    );

    // Every offset accounted for: rows read back plus dead letters, each once, and the commit
    // records tile 0..20 (what `landfall verify` checks).
    let mut seen: Vec<i64> = landed_offsets(&stores.data, &ms)
        .await
        .into_iter()
        .map(|(_, _, o)| o)
        .collect();
    seen.extend(lines.iter().map(|l| l.offset));
    seen.sort();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    let batches: Vec<(OffsetRange, &[landfall_core::manifest::Gap])> =
        ms.iter().map(|m| (m.offsets, m.gaps.as_slice())).collect();
    let cov = landfall_core::coverage::analyze_batches(Some(0), &batches);
    assert!(cov.ok() && cov.next == Some(20), "{cov:?}");
    eprintln!(
        "batch 10..20: records={} rows={} dead_lettered={}; offsets 0..20 all accounted for",
        m.records, m.rows, m.dead_lettered
    );
}
