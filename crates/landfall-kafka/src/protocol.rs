//! The protocol between the consumer thread and the sink task: what the thread tells the sink
//! ([`ConsumerEvent`]), what the sink tells the thread ([`ConsumerCommand`]), and the handle the
//! sink keeps. Nothing here talks to Kafka.

use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use landfall_core::{KafkaRecord, TopicPartition};

/// A record with the epoch its partition had when the record was fetched. The sink drops records
/// whose epoch is not its partition's current one (they were fetched before a seek).
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    pub record: KafkaRecord,
    pub epoch: u64,
}

/// A partition given to this member.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub tp: TopicPartition,
    /// The group's committed offset and its metadata (Landfall's recovery hint).
    pub committed: Option<(i64, String)>,
    /// Low and high watermarks when assigned.
    pub watermarks: Option<(i64, i64)>,
}

/// Where an assigned partition starts, decided by the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAt {
    pub tp: TopicPartition,
    pub offset: i64,
    pub epoch: u64,
}

/// What the consumer thread tells the sink task.
#[derive(Debug)]
pub enum ConsumerEvent {
    Records(Vec<Tagged>),
    /// Answer with where each partition starts; the thread waits for the answer.
    Assigned {
        partitions: Vec<Assigned>,
        reply: std_mpsc::SyncSender<Vec<StartAt>>,
    },
    /// Land what is buffered for these partitions, then answer; the thread waits (bounded).
    /// `lost`: the group already gave them away (session timeout), landing is pointless.
    Revoked {
        partitions: Vec<TopicPartition>,
        lost: bool,
        reply: std_mpsc::SyncSender<()>,
    },
    /// Kafka no longer has (or does not yet have) the offset `tp` was to be fetched from.
    /// librdkafka stopped fetching the partition (`auto.offset.reset=error`) and the thread
    /// keeps it paused; it fetches again only after a [`ConsumerCommand::Seek`] with a newer
    /// epoch. Every record fetched before the error was delivered before this event.
    OffsetOutOfRange {
        tp: TopicPartition,
        /// The offset that was to be fetched, if known: where the partition was started or
        /// sought, or one past the last record delivered.
        position: Option<i64>,
        /// Watermarks right after the error: `position < low` means retention removed records
        /// before they were landed; `position > high` means the log is shorter than where
        /// Landfall stands (records were lost, e.g. in an unclean leader election, or the topic
        /// was recreated).
        low: i64,
        high: i64,
    },
    /// The consumer cannot go on (fatal librdkafka error, or a state it cannot resolve alone).
    Fatal(String),
}

/// What the sink task tells the consumer thread.
#[derive(Debug)]
pub enum ConsumerCommand {
    Pause(Vec<TopicPartition>),
    Resume(Vec<TopicPartition>),
    /// Fetch from `offset`; records fetched before carry an older epoch.
    Seek {
        tp: TopicPartition,
        offset: i64,
        epoch: u64,
    },
    /// Commit the recovery hint to the group (lag tooling reads it too).
    CommitHint {
        tp: TopicPartition,
        offset: i64,
        metadata: String,
    },
    /// Stop handing out records (shutdown has begun); rebalances are still served.
    StopFetching,
    /// Leave the group and end the thread.
    Shutdown,
}

/// The handle the sink task keeps.
pub struct ConsumerHandle {
    pub commands: std_mpsc::Sender<ConsumerCommand>,
    pub thread: JoinHandle<()>,
    /// Bytes ([`KafkaRecord::size_bytes`]) of records fetched but not yet the sink's: held by the
    /// thread because the channel is full, or in the channel. The sink's memory budget counts
    /// them; the sink subtracts what it receives ([`crate::received`]).
    pub held_bytes: Arc<AtomicU64>,
    /// End offsets of the partitions the consumer fetches, from librdkafka's statistics.
    pub high_watermarks: crate::HighWatermarks,
}
