//! What librdkafka itself does, pinned down against its in-process mock cluster: the consumer
//! thread's design depends on these behaviours, and a librdkafka upgrade that changes one should
//! fail here first.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "t";

fn produce(bootstrap: &str, n: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for i in 0..n {
        let value = format!("v{i}");
        producer
            .send(BaseRecord::<(), _>::to(TOPIC).partition(0).payload(&value))
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pins")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .create()
        .expect("consumer")
}

fn at(offset: i64) -> TopicPartitionList {
    let mut l = TopicPartitionList::new();
    l.add_partition_offset(TOPIC, 0, Offset::Offset(offset))
        .expect("offset");
    l
}

/// Offsets of the messages polled within `wait` (errors are skipped).
fn drain(c: &BaseConsumer, wait: Duration) -> Vec<i64> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got.push(rdkafka::Message::offset(&m));
        }
    }
    got
}

#[test]
fn an_application_pause_survives_unassign_and_assign() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap, 5);
    let c = consumer(&bootstrap);
    let mut one = TopicPartitionList::new();
    one.add_partition(TOPIC, 0);

    c.incremental_assign(&at(0)).expect("assign");
    assert_eq!(drain(&c, Duration::from_secs(2)), vec![0, 1, 2, 3, 4]);
    c.pause(&one).expect("pause");
    c.incremental_unassign(&one).expect("unassign");
    c.incremental_assign(&at(0)).expect("assign again");
    assert_eq!(
        drain(&c, Duration::from_secs(2)),
        Vec::<i64>::new(),
        "librdkafka keeps the pause of an earlier assignment"
    );

    // What the rebalance callback does: resume before assigning.
    c.incremental_unassign(&one).expect("unassign");
    c.resume(&one).expect("resume");
    c.incremental_assign(&at(2)).expect("assign again");
    assert_eq!(drain(&c, Duration::from_secs(2)), vec![2, 3, 4]);
}

#[test]
fn offset_out_of_range_stops_the_partition_nameless_and_only_an_assignment_restarts_it() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap, 5);
    let c = consumer(&bootstrap);
    c.incremental_assign(&at(100)).expect("assign");
    // rust-rdkafka hands the error over without its partition or offset.
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(Instant::now() < deadline, "no offset reset error");
        match c.poll(Duration::from_millis(100)) {
            Some(Err(e)) => break e,
            Some(Ok(m)) => panic!("fetched offset {}", rdkafka::Message::offset(&m)),
            None => {}
        }
    };
    assert_eq!(
        err,
        KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)
    );
    // The partition stopped: a seek is refused ("Local: Erroneous state")...
    let seek = c.seek(TOPIC, 0, Offset::Offset(1), Duration::from_secs(1));
    assert!(seek.is_err(), "seek accepted: {seek:?}");
    assert_eq!(drain(&c, Duration::from_secs(1)), Vec::<i64>::new());
    // ...and unassigning and assigning again restarts it.
    let mut one = TopicPartitionList::new();
    one.add_partition(TOPIC, 0);
    c.incremental_unassign(&one).expect("unassign");
    c.incremental_assign(&at(1)).expect("assign again");
    assert_eq!(drain(&c, Duration::from_secs(2)), vec![1, 2, 3, 4]);
}

/// A seek moves the position a pause records as where to resume (rdkafka_partition.c
/// `rd_kafka_toppar_pause_resume` resumes at the application's position), whether the pause
/// comes before the seek's first record is taken or the seek happens while paused. The thread
/// seeks and pauses independently and relies on neither undoing the other.
#[test]
fn a_seek_survives_a_pause_and_resume_either_way_round() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap, 10);
    let c = consumer(&bootstrap);
    let mut one = TopicPartitionList::new();
    one.add_partition(TOPIC, 0);
    c.incremental_assign(&at(0)).expect("assign");
    assert_eq!(
        drain(&c, Duration::from_secs(2)),
        (0..10).collect::<Vec<_>>()
    );

    // Seek back, then pause before anything from the new position was taken.
    c.seek(TOPIC, 0, Offset::Offset(3), Duration::from_secs(1))
        .expect("seek");
    c.pause(&one).expect("pause");
    c.resume(&one).expect("resume");
    assert_eq!(
        drain(&c, Duration::from_secs(2)),
        (3..10).collect::<Vec<_>>()
    );

    // Seek while paused.
    c.pause(&one).expect("pause");
    c.seek(TOPIC, 0, Offset::Offset(5), Duration::from_secs(1))
        .expect("seek");
    c.resume(&one).expect("resume");
    assert_eq!(
        drain(&c, Duration::from_secs(2)),
        (5..10).collect::<Vec<_>>()
    );
}
