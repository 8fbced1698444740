//! The poll loop: the consumer thread's body. It never stops polling for long (librdkafka evicts a member
//! that does, and the rebalance callbacks run inside `poll`); it applies the sink's commands,
//! hands records to the sink over a bounded channel, and when the channel is full keeps what it
//! could not send and takes no more records until there is room; if that lasts, it pauses its
//! partitions and goes on polling.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use landfall_core::TopicPartition;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use crate::backlog::{Backlog, Closed};
use crate::convert::{to_record, INVALID_HEADER_KEY};
use crate::fetch_state::{out_of_range, Actions};
use crate::protocol::{ConsumerCommand, ConsumerEvent, Tagged};
use crate::rebalance::{tpl_of, Context};
use crate::settings::{LEAVE_GROUP_TIMEOUT, METADATA_TIMEOUT, SEEK_TIMEOUT};

/// How long one `poll` waits when there is nothing to send, and when paused by a backlog.
const POLL_IDLE: Duration = Duration::from_millis(100);
const POLL_BACKLOGGED: Duration = Duration::from_millis(20);
/// How long a backlog waits for room in the channel between two tries, when not polling: short,
/// since the sink may take a message every millisecond; a try is a few atomic operations.
const BACKLOG_RETRY: Duration = Duration::from_millis(2);

pub(crate) fn poll_loop(
    consumer: BaseConsumer<Context>,
    events: mpsc::Sender<ConsumerEvent>,
    commands: std_mpsc::Receiver<ConsumerCommand>,
    mut held: Backlog,
    batch_records: usize,
) {
    let mut topics: HashMap<String, Arc<str>> = HashMap::new();
    let mut invalid_header_records: u64 = 0;
    // When records began to wait for room in the channel to the sink.
    let mut backlogged_since: Option<Instant> = None;
    'outer: loop {
        loop {
            let actions = match commands.try_recv() {
                Ok(ConsumerCommand::Pause(tps)) => consumer.context().state().pause(tps),
                Ok(ConsumerCommand::Resume(tps)) => consumer.context().state().resume(tps),
                Ok(ConsumerCommand::Seek { tp, offset, epoch }) => {
                    consumer.context().state().seek(tp, offset, epoch)
                }
                Ok(ConsumerCommand::CommitHint {
                    tp,
                    offset,
                    metadata,
                }) => {
                    commit_hint(&consumer, &tp, offset, metadata);
                    Actions::default()
                }
                Ok(ConsumerCommand::StopFetching) => {
                    held.clear();
                    consumer.context().state().stop_fetching()
                }
                Ok(ConsumerCommand::Shutdown) | Err(std_mpsc::TryRecvError::Disconnected) => {
                    break 'outer
                }
                Err(std_mpsc::TryRecvError::Empty) => break,
            };
            apply(&consumer, &mut held, actions);
        }

        retry_seeks(&consumer);

        if held.drain(&events).is_err() {
            break 'outer;
        }
        if held.is_empty() {
            backlogged_since = None;
            let actions = consumer.context().state().relieved();
            apply(&consumer, &mut held, actions);
        } else {
            let since = *backlogged_since.get_or_insert_with(Instant::now);
            let decided = consumer.context().state().backlogged(since.elapsed());
            match decided {
                // Take nothing more from librdkafka until the sink makes room (see
                // `FetchState::backlogged`); commands are still served every round.
                None => {
                    std::thread::sleep(BACKLOG_RETRY);
                    continue;
                }
                Some(actions) => apply(&consumer, &mut held, actions),
            }
        }

        // Poll even when paused or backpressured: it serves rebalances and keeps membership.
        let mut batch = Vec::new();
        let mut offset_reset = false;
        let mut timeout = if held.is_empty() {
            POLL_IDLE
        } else {
            POLL_BACKLOGGED
        };
        while batch.len() < batch_records {
            match consumer.poll(timeout) {
                Some(Ok(m)) => {
                    let topic = topics
                        .entry(m.topic().to_string())
                        .or_insert_with(|| Arc::from(m.topic()))
                        .clone();
                    let tp = TopicPartition::new(topic.clone(), m.partition());
                    // Records of partitions no longer assigned, fetched before a pending seek,
                    // or fetched after shutdown began are dropped.
                    if let Some(epoch) = consumer.context().state().accept(&tp, m.offset()) {
                        let c = to_record(&m, &topic);
                        if c.invalid_header_keys > 0 {
                            invalid_header_records += 1;
                            // Once at warn, then at debug: a producer sending such keys would
                            // otherwise flood the log.
                            if invalid_header_records == 1 {
                                warn!(%tp, offset = c.record.offset, headers = c.invalid_header_keys, name = INVALID_HEADER_KEY,
                                    "header key is not valid UTF-8; the record is kept, the header renamed without its value (further cases at debug level)");
                            } else {
                                debug!(%tp, offset = c.record.offset, headers = c.invalid_header_keys, "header key is not valid UTF-8");
                            }
                        }
                        batch.push(Tagged {
                            record: c.record,
                            epoch,
                        });
                    }
                }
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                    // Handled once this batch is on its way: the sink must see the records
                    // polled before the error first.
                    offset_reset = true;
                    break;
                }
                Some(Err(e)) => {
                    if let KafkaError::MessageConsumption(code) = &e {
                        debug!(error = %code, "consume error");
                    } else {
                        warn!(error = %e, "poll error");
                    }
                    if let Some((code, reason)) = consumer.client().fatal_error() {
                        let _ = events
                            .blocking_send(ConsumerEvent::Fatal(format!("{code:?}: {reason}")));
                        break 'outer;
                    }
                    break;
                }
                None => break,
            }
            timeout = Duration::ZERO;
        }
        if !batch.is_empty() && held.send(&events, ConsumerEvent::Records(batch)).is_err() {
            break 'outer;
        }
        if offset_reset && on_offset_reset(&consumer, &mut held, &events).is_err() {
            break 'outer;
        }
    }
    leave_group(consumer);
}

/// Carry out what the bookkeeping decided, in the order [`Actions`] asks for.
fn apply(consumer: &BaseConsumer<Context>, held: &mut Backlog, a: Actions) {
    for tp in &a.drop_held {
        held.drop_partition(tp);
    }
    for (tp, offset) in &a.reassign {
        if let Err(e) = reassign(consumer, tp, *offset) {
            // The partition would stay stopped with nobody noticing: stop the sink instead.
            error!(%tp, offset, error = %e, "cannot restart the partition after offset out of range");
            let _ = held.send(
                &consumer.context().events,
                ConsumerEvent::Fatal(format!(
                    "{tp}: cannot restart fetching at offset {offset} after an offset-out-of-range error: {e}"
                )),
            );
        }
    }
    if !a.pause.is_empty() {
        let _ = consumer.pause(&tpl_of(&a.pause));
    }
    if !a.resume.is_empty() {
        let _ = consumer.resume(&tpl_of(&a.resume));
    }
}

/// Start `tp` again at `offset`. A seek cannot do it: after an offset-out-of-range error with
/// `auto.offset.reset=error`, librdkafka leaves the partition in fetch state none, where it
/// refuses seeks (rd_kafka_toppar_seek: "Local: Erroneous state"); only a new fetch start,
/// i.e. an assignment, restarts it. Under the cooperative protocol Landfall uses, librdkafka
/// accepts incremental (un)assigns outside a rebalance, and no rebalance callback can run
/// between the two calls (callbacks run inside `poll`, on this thread).
fn reassign(consumer: &BaseConsumer<Context>, tp: &TopicPartition, offset: i64) -> KafkaResult<()> {
    let one = tpl_of(std::slice::from_ref(tp));
    // The thread paused it when it stalled, and librdkafka keeps that pause across
    // unassign/assign (see rebalance.rs).
    consumer.resume(&one)?;
    consumer.incremental_unassign(&one)?;
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset))?;
    consumer.incremental_assign(&at)
}

/// librdkafka reported `RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET`: with `auto.offset.reset=error`,
/// a fetch failed with offset out of range (or there was no offset to start from), and
/// librdkafka stopped fetching that partition (fetch state none, rdkafka_offset.c
/// `rd_kafka_offset_reset`). librdkafka puts the partition and the offset asked for on the
/// error event (`rd_kafka_event_topic_partition`), but rust-rdkafka 0.39's `BaseConsumer::poll`
/// turns it into a bare `KafkaError::MessageConsumption(AutoOffsetReset)`; only the message
/// reaches `ClientContext::error` ("fetch failed due to requested offset not available on the
/// broker: Broker: Offset out of range (broker N)", logged there), naming neither. No safe API
/// reaches the event. So the thread finds the partition itself: every partition whose
/// next offset is outside its current watermarks. Records fetched before the error were polled
/// before it (same queue), so the thread's next offset is the fetch position, except where
/// compaction or transaction markers skipped offsets at the end of what was fetched.
///
/// Each one found is paused and reported to the sink (behind the records held for it). If none
/// is found, the partition cannot be named and would stall silently: the sink is stopped. A
/// partition flagged although librdkafka still fetched it (paused by the sink, or prefetched
/// past an offset retention removed since) would hit the same error once fetched further; the
/// sink decides for it the same way, so nothing is skipped unrecorded.
fn on_offset_reset(
    consumer: &BaseConsumer<Context>,
    held: &mut Backlog,
    events: &mpsc::Sender<ConsumerEvent>,
) -> Result<(), Closed> {
    let suspects = consumer.context().state().suspects();
    let deadline = Instant::now() + METADATA_TIMEOUT;
    let mut found = 0;
    let mut unchecked = 0;
    for (tp, next) in &suspects {
        let left = deadline.saturating_duration_since(Instant::now());
        let (low, high) = match consumer.fetch_watermarks(&tp.topic, tp.partition, left) {
            Ok(w) => w,
            Err(e) => {
                warn!(%tp, error = %e, "no watermarks while looking for the partition out of range");
                unchecked += 1;
                continue;
            }
        };
        if !out_of_range(*next, low, high) {
            continue;
        }
        found += 1;
        error!(%tp, position = next, low, high,
            "offset out of range: Kafka does not hold the partition's next offset; it stays paused until the sink decides");
        let actions = consumer.context().state().stall(tp);
        apply(consumer, held, actions);
        held.send(
            events,
            ConsumerEvent::OffsetOutOfRange {
                tp: tp.clone(),
                position: Some(*next),
                low,
                high,
            },
        )?;
    }
    if found == 0 {
        error!(
            partitions = suspects.len(),
            unchecked, "offset out of range on a partition that cannot be identified"
        );
        held.send(
            events,
            ConsumerEvent::Fatal(format!(
                "librdkafka reported an offset out of range (auto.offset.reset=error), but none of \
                 the {} assigned partition(s) is to be fetched outside its watermarks ({unchecked} \
                 could not be checked); rather than let a partition stall unnoticed, the consumer stops",
                suspects.len()
            )),
        )?;
    }
    Ok(())
}

fn commit_hint(
    consumer: &BaseConsumer<Context>,
    tp: &TopicPartition,
    offset: i64,
    metadata: String,
) {
    let mut l = TopicPartitionList::new();
    let mut e = l.add_partition(&tp.topic, tp.partition);
    let _ = e.set_offset(Offset::Offset(offset));
    e.set_metadata(metadata);
    // Async: the hint is for lag tooling and faster recovery, never for truth.
    if let Err(err) = consumer.commit(&l, CommitMode::Async) {
        debug!(%tp, offset, error = %err, "offset hint not committed");
    }
}

/// Perform the seeks the sink asked for; a refused one stays pending and is tried again.
fn retry_seeks(consumer: &BaseConsumer<Context>) {
    let pending = consumer.context().state().pending_seeks();
    for (tp, seek) in pending {
        let r = consumer.seek(
            &tp.topic,
            tp.partition,
            Offset::Offset(seek.offset),
            SEEK_TIMEOUT,
        );
        let refusals = consumer.context().state().seek_done(&tp, seek, r.is_ok());
        if let (Some(refusals), Err(e)) = (refusals, r) {
            // Tried every loop: say it once, then only at debug level.
            if refusals == 1 {
                warn!(%tp, offset = seek.offset, error = %e,
                    "seek refused; the partition's records are held back until it succeeds");
            } else {
                debug!(%tp, offset = seek.offset, error = %e, refusals, "seek refused again");
            }
        }
    }
}

/// Leave the group: unsubscribing runs a final revoke through the callback, which the sink
/// answers at once; poll until it is served (bounded).
fn leave_group(consumer: BaseConsumer<Context>) {
    consumer.context().state().set_closing();
    consumer.unsubscribe();
    let deadline = Instant::now() + LEAVE_GROUP_TIMEOUT;
    while Instant::now() < deadline
        && consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false)
    {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    drop(consumer);
}
