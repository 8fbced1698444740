//! The Kafka side (arrows 1 and 6 of the data flow): one consumer thread per sink.
//!
//! The thread owns an rdkafka `BaseConsumer` and never stops polling (librdkafka evicts a member
//! that does). It hands records to the sink task over a bounded channel; when the channel is full
//! it takes no more records from librdkafka's bounded queue until there is room, and pauses its
//! partitions to keep polling only if that lasts. Rebalances are handed off synchronously, the way
//! Kafka's own `onPartitionsRevoked` works. Every record is tagged with its partition's *epoch*;
//! the sink bumps the epoch when it seeks, so records fetched before the seek are dropped.
//!
//! - `protocol`: the events, commands and handle between the thread and the sink task.
//! - `rebalance`: librdkafka's rebalance callback (assign asks the sink, revoke waits for it).
//! - `poll`: the thread's loop: commands, seeks, polling, backpressure.
//! - `convert`: librdkafka message -> `KafkaRecord`, never panicking on a header key.
//! - `backlog`: what the thread holds while the channel is full, and its byte total.
//! - `fetch_state`: which partitions fetch and with which epoch, as plain synchronous code.
//! - `settings`: settings, the librdkafka configuration and the timeouts, side by side.
//! - `admin`: the start-up preflight and watermarks for `landfall verify`.
//! - `stats`: end offsets from librdkafka's statistics, for the sink's lag.
//! - `notify`: the idempotent producer of `[notify]` notifications.

mod admin;
mod backlog;
mod convert;
mod error;
mod fetch_state;
mod notify;
mod poll;
mod protocol;
mod rebalance;
mod settings;
mod stats;

use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use landfall_core::config::TopicSelection;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::mpsc;

pub use admin::{partitions, preflight, watermarks, Watermarks};
pub use backlog::received;
pub use convert::INVALID_HEADER_KEY;
pub use error::KafkaSinkError;
pub use notify::Notifier;
pub use protocol::{Assigned, ConsumerCommand, ConsumerEvent, ConsumerHandle, StartAt, Tagged};
pub use settings::ConsumerSettings;
pub use stats::{end_offsets, HighWatermarks};

use backlog::Backlog;
use rebalance::Context;
use settings::client_config;

/// Join the group and start the consumer thread. Its events arrive on `events`.
pub fn spawn(
    settings: ConsumerSettings,
    events: mpsc::Sender<ConsumerEvent>,
) -> Result<ConsumerHandle, KafkaSinkError> {
    let high_watermarks = HighWatermarks::default();
    let context = Context::new(
        events.clone(),
        settings.revoke_timeout,
        settings.assign_timeout,
        high_watermarks.clone(),
    );
    let mut config = client_config(&settings);
    // Statistics carry the end offsets the sink's lag is measured against; a user's own
    // `statistics.interval.ms` in `kafka.options` wins.
    if config.get("statistics.interval.ms").is_none() {
        config.set("statistics.interval.ms", stats::STATISTICS_INTERVAL_MS);
    }
    let consumer: BaseConsumer<Context> = config
        .create_with_context(context)
        .map_err(KafkaSinkError::Create)?;
    match &settings.topics {
        TopicSelection::Names(n) => {
            let names: Vec<&str> = n.iter().map(String::as_str).collect();
            consumer.subscribe(&names)
        }
        TopicSelection::Regex(re) => consumer.subscribe(&[re.as_str()]),
    }
    .map_err(KafkaSinkError::Subscribe)?;
    let (commands, command_rx) = std_mpsc::channel();
    let batch_records = settings.batch_records.max(1);
    let held_bytes = Arc::new(AtomicU64::new(0));
    let backlog = Backlog::new(held_bytes.clone());
    let thread = std::thread::Builder::new()
        .name(format!("landfall-consumer-{}", settings.kafka.group_id))
        .spawn(move || poll::poll_loop(consumer, events, command_rx, backlog, batch_records))
        .expect("spawn consumer thread");
    Ok(ConsumerHandle {
        commands,
        thread,
        held_bytes,
        high_watermarks,
    })
}
