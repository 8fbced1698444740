//! The consumer thread against librdkafka's in-process mock cluster, with the test playing the
//! sink: it answers assignments and revokes and sends commands.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use landfall_core::config::{KafkaConfig, StartFrom, TopicSelection};
use landfall_core::TopicPartition;
use landfall_kafka::{
    spawn, ConsumerCommand, ConsumerEvent, ConsumerHandle, ConsumerSettings, StartAt,
};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio::sync::mpsc;

const TOPIC: &str = "t";

fn produce(bootstrap: &str, partition: i32, n: usize, value_bytes: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let value = vec![b'x'; value_bytes];
    for _ in 0..n {
        loop {
            match producer.send(
                BaseRecord::<(), _>::to(TOPIC)
                    .partition(partition)
                    .payload(&value),
            ) {
                Ok(()) => break,
                // Queue full: let deliveries make room.
                Err(_) => producer.poll(Duration::from_millis(10)),
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn settings(bootstrap: &str) -> ConsumerSettings {
    ConsumerSettings {
        kafka: KafkaConfig {
            bootstrap_servers: bootstrap.to_string(),
            group_id: "landfall-test".into(),
            start_from: StartFrom::Earliest,
            session_timeout_ms: 6000,
            options: BTreeMap::new(),
            security: None,
        },
        topics: TopicSelection::Names(vec![TOPIC.into()]),
        client_id: "landfall-test".into(),
        revoke_timeout: Duration::from_secs(2),
        assign_timeout: Duration::from_secs(60),
        batch_records: 100,
        prefetch_bytes: 16 << 20,
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

/// The sink's side of the channel.
struct Sink {
    events: mpsc::Receiver<ConsumerEvent>,
    handle: ConsumerHandle,
}

/// Offsets and epoch of one delivered record.
type Got = (i32, i64, u64);

impl Sink {
    fn start(bootstrap: &str) -> Sink {
        let (tx, events) = mpsc::channel(32);
        let handle = spawn(settings(bootstrap), tx).expect("spawn");
        Sink { events, handle }
    }

    /// The next event that is not records (records are returned alongside, in order), within
    /// `wait`. Revokes and empty assignments are answered at once.
    fn next_event(&mut self, wait: Duration, got: &mut Vec<Got>) -> Option<ConsumerEvent> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match self.events.try_recv() {
                Ok(ConsumerEvent::Records(records)) => got.extend(
                    records
                        .iter()
                        .map(|t| (t.record.partition, t.record.offset, t.epoch)),
                ),
                Ok(ConsumerEvent::Revoked { reply, .. }) => {
                    let _ = reply.send(());
                }
                // The cooperative protocol assigns after every revoke, possibly nothing.
                Ok(ConsumerEvent::Assigned { partitions, reply }) if partitions.is_empty() => {
                    let _ = reply.send(Vec::new());
                }
                Ok(ev) => return Some(ev),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        None
    }

    /// Records only, for `wait`; fails on any other event but a revoke.
    fn records(&mut self, wait: Duration) -> Vec<Got> {
        let mut got = Vec::new();
        if let Some(ev) = self.next_event(wait, &mut got) {
            panic!("unexpected event {ev:?}");
        }
        got
    }

    /// Wait for an assignment and answer it with `start(tp) -> (offset, epoch)`.
    fn assign(&mut self, start: impl Fn(&TopicPartition) -> (i64, u64)) -> Vec<TopicPartition> {
        let mut got = Vec::new();
        match self.next_event(Duration::from_secs(60), &mut got) {
            Some(ConsumerEvent::Assigned { partitions, reply }) => {
                let tps: Vec<TopicPartition> = partitions.iter().map(|a| a.tp.clone()).collect();
                let starts = tps
                    .iter()
                    .map(|tp| {
                        let (offset, epoch) = start(tp);
                        StartAt {
                            tp: tp.clone(),
                            offset,
                            epoch,
                        }
                    })
                    .collect();
                reply.send(starts).expect("reply");
                assert!(got.is_empty(), "records before the assignment: {got:?}");
                tps
            }
            other => panic!("expected an assignment, got {other:?}"),
        }
    }

    fn send(&self, c: ConsumerCommand) {
        self.handle.commands.send(c).expect("consumer thread alive");
    }

    fn stop(mut self) {
        self.send(ConsumerCommand::Shutdown);
        let mut got = Vec::new();
        while !self.handle.thread.is_finished() {
            let _ = self.next_event(Duration::from_millis(100), &mut got);
        }
        self.handle
            .thread
            .join()
            .expect("consumer thread ended cleanly");
    }
}

#[test]
fn high_side_offset_out_of_range_is_reported_and_the_seek_restarts_the_partition() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap, 0, 5, 10);
    let mut sink = Sink::start(&bootstrap);
    // A start beyond the end of the log (say, the topic was recreated).
    assert_eq!(sink.assign(|_| (100, 1)), vec![tp(0)]);
    let mut got = Vec::new();
    match sink.next_event(Duration::from_secs(30), &mut got) {
        Some(ConsumerEvent::OffsetOutOfRange {
            tp: t,
            position,
            low,
            high,
        }) => {
            assert_eq!((t, position, low, high), (tp(0), Some(100), 0, 5));
        }
        other => panic!("expected offset out of range, got {other:?}"),
    }
    assert!(got.is_empty());
    // librdkafka refuses to seek the stopped partition; the thread re-assigns it.
    sink.send(ConsumerCommand::Seek {
        tp: tp(0),
        offset: 2,
        epoch: 2,
    });
    let got = sink.records(Duration::from_secs(5));
    assert_eq!(got, vec![(0, 2, 2), (0, 3, 2), (0, 4, 2)]);
    sink.stop();
}

#[test]
fn retention_gap_is_reported_with_the_low_watermark() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    // The mock broker keeps about 5 MB per partition: 8 MB push the log start up.
    produce(&bootstrap, 0, 80, 100_000);
    let mut sink = Sink::start(&bootstrap);
    sink.assign(|_| (0, 1));
    let mut got = Vec::new();
    let low = match sink.next_event(Duration::from_secs(30), &mut got) {
        Some(ConsumerEvent::OffsetOutOfRange {
            tp: t,
            position,
            low,
            high,
        }) => {
            assert_eq!((t, position, high), (tp(0), Some(0), 80));
            assert!(low > 0, "retention moved the log start");
            low
        }
        other => panic!("expected offset out of range, got {other:?}"),
    };
    sink.send(ConsumerCommand::Seek {
        tp: tp(0),
        offset: low,
        epoch: 2,
    });
    let got = sink.records(Duration::from_secs(10));
    let offsets: Vec<i64> = got.iter().map(|g| g.1).collect();
    assert_eq!(offsets, (low..80).collect::<Vec<_>>());
    assert!(got.iter().all(|g| g.2 == 2));
    sink.stop();
}

/// A sink slower than the fetcher keeps the channel full. Pausing every partition at each full
/// channel made librdkafka purge what it had prefetched and fetch it again from the last record
/// taken, over and over: 11,450 of this test's 80,000 records arrived within the minute. The
/// thread now leaves them in librdkafka's bounded queue while it waits, and pauses only a
/// backlog that lasts (here: the sink stops reading for twice that long once). Every offset
/// must arrive, once and in order.
#[test]
fn a_sink_that_keeps_the_channel_full_gets_every_record_promptly_and_in_order() {
    const PARTITIONS: i32 = 4;
    const PER_PARTITION: usize = 20_000;
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    for p in 0..PARTITIONS {
        produce(&bootstrap, p, PER_PARTITION, 100);
    }
    // A channel of one message: full after every batch the thread polls.
    let (tx, events) = mpsc::channel(1);
    let mut s = settings(&bootstrap);
    s.batch_records = 50;
    let handle = spawn(s, tx).expect("spawn");
    let mut sink = Sink { events, handle };
    sink.assign(|_| (0, 1));
    let total = PARTITIONS as usize * PER_PARTITION;
    let mut next: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut received = 0usize;
    let mut stalled_once = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received < total {
        assert!(
            Instant::now() < deadline,
            "{received} of {total} records arrived within 60 s; next offsets {next:?}"
        );
        let ev = match sink.events.try_recv() {
            Ok(ev) => ev,
            Err(mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => panic!("the consumer thread ended"),
        };
        let ConsumerEvent::Records(records) = ev else {
            panic!("unexpected event {ev:?}")
        };
        for t in &records {
            let n = next
                .get_mut(&t.record.partition)
                .expect("assigned partition");
            assert_eq!(
                t.record.offset, *n,
                "partition {}: offset {} arrived where {} was due",
                t.record.partition, t.record.offset, n
            );
            *n += 1;
        }
        received += records.len();
        // Slower than the fetcher, so the thread finds the channel full after most batches.
        std::thread::sleep(Duration::from_millis(1));
        if !stalled_once && received > total / 2 {
            // The sink stops reading long enough for the thread to pause everything.
            stalled_once = true;
            std::thread::sleep(2 * Duration::from_secs(1));
        }
    }
    assert!(
        next.values().all(|&n| n == PER_PARTITION as i64),
        "{next:?}"
    );
    sink.stop();
}
