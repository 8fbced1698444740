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
}

impl Script {
    fn start(cfg: SinkConfig, stores: SinkStores, view: SinkStores) -> Script {
        let (events_tx, mut events) = mpsc::channel(8);
        let (commands_tx, commands) = std_mpsc::channel();
        let shutdown = CancellationToken::new();
        let ctx = SinkContext {
            config: cfg,
            stores,
            metrics: Metrics::new(),
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
