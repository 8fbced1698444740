//! The rebalance hand-off: librdkafka's `ConsumerContext`, whose callback runs inside `poll` on
//! the consumer thread. Like Kafka's own `onPartitionsRevoked`, it is synchronous: on assign it
//! asks the sink where each new partition continues (the sink reads it from the object store)
//! and assigns exactly those offsets; on revoke it waits (bounded) while the sink lands what it
//! buffered for those partitions, then unassigns.

use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use landfall_core::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::fetch_state::FetchState;
use crate::protocol::{Assigned, ConsumerEvent, StartAt};
use crate::settings::METADATA_TIMEOUT;

pub(crate) struct Context {
    pub events: mpsc::Sender<ConsumerEvent>,
    /// Shared with the poll loop. Both run on the consumer thread (the callback inside `poll`),
    /// so the lock is never contended; librdkafka only requires the context to be `Sync`.
    state: Mutex<FetchState>,
    revoke_timeout: Duration,
    assign_timeout: Duration,
    high_watermarks: crate::HighWatermarks,
}

impl Context {
    pub fn new(
        events: mpsc::Sender<ConsumerEvent>,
        revoke_timeout: Duration,
        assign_timeout: Duration,
        high_watermarks: crate::HighWatermarks,
    ) -> Context {
        Context {
            events,
            state: Mutex::new(FetchState::new()),
            revoke_timeout,
            assign_timeout,
            high_watermarks,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, FetchState> {
        // Nothing panics while holding it; if something did, the bookkeeping is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka retries transport errors itself; they are worth a warning, not a stop.
        warn!(%error, reason, "kafka client error");
    }

    /// Keep only the end offsets (the default decodes and logs the whole document).
    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(ends) = crate::stats::end_offsets(statistics) {
            let mut marks = self
                .high_watermarks
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            marks.extend(ends);
        }
    }
}

pub(crate) fn tps_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

pub(crate) fn tpl_of(tps: &[TopicPartition]) -> TopicPartitionList {
    let mut l = TopicPartitionList::new();
    for tp in tps {
        l.add_partition(&tp.topic, tp.partition);
    }
    l
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.on_assign(consumer, tpl, cooperative)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.on_revoke(consumer, tpl, cooperative)
            }
            other => warn!(error = ?other, "rebalance error"),
        }
    }
}

impl Context {
    fn on_assign(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
        cooperative: bool,
    ) {
        let started = Instant::now();
        let decided = self.decide_starts(consumer, tpl);
        for s in &decided {
            // An offset the sink chose; the store, not the group, is the truth.
            let _ = tpl.set_partition_offset(&s.tp.topic, s.tp.partition, Offset::Offset(s.offset));
        }
        let undecided: Vec<TopicPartition> = tps_of(tpl)
            .into_iter()
            .filter(|tp| !decided.iter().any(|d| &d.tp == tp))
            .collect();
        let actions = self.state().assign(&decided, &undecided);
        // librdkafka keeps an application pause on a partition across unassign/assign (it
        // only clears its own, library-set pause then; see rdkafka_assignment.c), so a
        // partition paused in an earlier assignment would come back paused. Lift it before
        // assigning: resume is synchronous, so it is applied before the fetch start the assign
        // queues. Resuming a partition librdkafka has never seen is a no-op.
        if !actions.resume.is_empty() {
            let _ = consumer.resume(&tpl_of(&actions.resume));
        }
        let r = if cooperative {
            consumer.incremental_assign(tpl)
        } else {
            consumer.assign(tpl)
        };
        if let Err(e) = r {
            warn!(error = %e, "assign failed");
        }
        if !actions.pause.is_empty() {
            let _ = consumer.pause(&tpl_of(&actions.pause));
        }
        if !undecided.is_empty() {
            // The sink could not say where these start: they stay paused so nothing is fetched
            // from a guessed position, and the sink stops.
            let _ = self.events.blocking_send(ConsumerEvent::Fatal(format!(
                "no start position decided for {} partition(s) within {:?}",
                undecided.len(),
                self.assign_timeout
            )));
        }
        info!(
            partitions = tpl.count(),
            took_ms = started.elapsed().as_millis() as u64,
            "partitions assigned"
        );
    }

    fn on_revoke(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
        cooperative: bool,
    ) {
        let tps = tps_of(tpl);
        let closing = self.state().is_closing();
        let lost = consumer.assignment_lost();
        let (reply, answered) = std_mpsc::sync_channel(1);
        let sent = self
            .events
            .blocking_send(ConsumerEvent::Revoked {
                partitions: tps.clone(),
                lost,
                reply,
            })
            .is_ok();
        if sent && answered.recv_timeout(self.revoke_timeout).is_err() && !closing {
            warn!(
                partitions = tps.len(),
                timeout_ms = self.revoke_timeout.as_millis() as u64,
                "revoked partitions not landed in time; the new owner re-reads them"
            );
        }
        self.state().revoke(&tps);
        let r = if cooperative {
            consumer.incremental_unassign(tpl)
        } else {
            consumer.unassign()
        };
        if let Err(e) = r {
            warn!(error = %e, "unassign failed");
        }
        info!(partitions = tps.len(), lost, "partitions revoked");
    }

    /// Ask the sink where each new partition starts (it reads the object store).
    fn decide_starts(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> Vec<StartAt> {
        let committed = consumer
            .committed_offsets(tpl.clone(), METADATA_TIMEOUT)
            .ok();
        let partitions: Vec<Assigned> = tps_of(tpl)
            .into_iter()
            .map(|tp| {
                let committed = committed.as_ref().and_then(|c| {
                    c.find_partition(&tp.topic, tp.partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some((o, e.metadata().to_string())),
                            _ => None,
                        })
                });
                let watermarks = consumer
                    .fetch_watermarks(&tp.topic, tp.partition, METADATA_TIMEOUT)
                    .ok();
                Assigned {
                    tp,
                    committed,
                    watermarks,
                }
            })
            .collect();
        let (reply, answer) = std_mpsc::sync_channel(1);
        if self
            .events
            .blocking_send(ConsumerEvent::Assigned { partitions, reply })
            .is_err()
        {
            return Vec::new();
        }
        answer.recv_timeout(self.assign_timeout).unwrap_or_default()
    }
}
