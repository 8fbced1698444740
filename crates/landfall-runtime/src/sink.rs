//! One sink: the wiring (Kafka preflight, the consumer thread) and the dispatch loop.
//!
//! The loop owns the sink's state machine ([`landfall_core::state::SinkState`]) and does only
//! IO: it feeds the machine what happened — records and rebalances from the consumer thread,
//! landing and recovery results, the clock, shutdown — and performs the actions it returns
//! (start or abort a landing, pause, resume, seek, recover, commit a hint). Every decision about
//! a partition is the machine's. CPU work (decoding, Parquet encoding) runs under
//! `block_in_place`. [`drive`] takes the consumer's channels as arguments, so a test can script
//! the consumer's side without a broker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use landfall_core::buffer::{BufferError, BufferFormat, SealedBatch};
use landfall_core::config::{SinkConfig, StartFrom};
use landfall_core::flush::FlushPolicy;
use landfall_core::manifest::{rfc3339_ms, Landed};
use landfall_core::state::{
    initial_offset, Action, LandingResult, Now, SinkState, StateError, StateSettings,
};
use landfall_core::TopicPartition;
use landfall_kafka::{
    Assigned, ConsumerCommand, ConsumerEvent, ConsumerSettings, KafkaSinkError, StartAt, Tagged,
};
use landfall_store::recovery::{recover_partition, Hint, IfNew, Recovered};
use landfall_store::StoreError;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::land::{land, LandSettings};
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::stores::SinkStores;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{sink}`: {source}")]
    Kafka {
        sink: String,
        #[source]
        source: Box<KafkaSinkError>,
    },
    #[error("sink `{sink}`: {source} — {cause}", cause = source.cause())]
    Store {
        sink: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("sink `{sink}`: {source}")]
    Buffer {
        sink: String,
        #[source]
        source: Box<BufferError>,
    },
    #[error("sink `{sink}`: {source}")]
    State {
        sink: String,
        #[source]
        source: Box<StateError>,
    },
    #[error("sink `{sink}`: consumer stopped: {message}")]
    Consumer { sink: String, message: String },
    #[error("sink `{sink}`: shutdown deadline passed with {partitions} partition(s) not landed; they are re-read on restart, nothing is lost")]
    ShutdownTimeout { sink: String, partitions: usize },
}

/// Everything a sink needs from outside.
pub struct SinkContext {
    pub config: SinkConfig,
    pub stores: SinkStores,
    pub metrics: Metrics,
    pub writer_id: String,
}

/// How long leaving the group may take at shutdown: everything is landed and committed by then,
/// so a slow coordinator must not keep the process from exiting (the group drops the member at
/// its session timeout instead).
const CONSUMER_CLOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// The consumer thread waits for the sink to decide where new partitions start for
/// `runtime.recovery_timeout_ms` (validated below librdkafka's `max.poll.interval.ms`) plus this
/// margin: recovery gives up at its deadline, the answer then still reaches the thread.
const ASSIGN_MARGIN: Duration = Duration::from_secs(15);
/// Partitions recovered at once: a listing each without a hint; many more at once only earns
/// throttling (S3 503 SlowDown) from the store.
const RECOVERY_PARALLELISM: usize = 16;
/// The loop's clock tick: age flushes and retries are at most this late.
const TICK: Duration = Duration::from_millis(100);
/// Records per message from the consumer thread.
const BATCH_RECORDS: usize = 2048;

/// Run CPU-bound work without stalling the other tasks on this worker.
fn cpu<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Run one sink until `shutdown` is cancelled (then land what is buffered) or a fatal error.
pub async fn run_sink(ctx: SinkContext, shutdown: CancellationToken) -> Result<(), SinkError> {
    let name = ctx.config.name.clone();
    let settings = ConsumerSettings {
        kafka: ctx.config.kafka.clone(),
        topics: ctx.config.topics.clone(),
        client_id: format!("landfall-{}-{}", name, ctx.writer_id),
        assign_timeout: Duration::from_millis(ctx.config.runtime.recovery_timeout_ms)
            + ASSIGN_MARGIN,
        revoke_timeout: Duration::from_millis(ctx.config.runtime.revoke_flush_timeout_ms),
        batch_records: BATCH_RECORDS,
    };
    let kafka_err = |source| SinkError::Kafka {
        sink: name.clone(),
        source: Box::new(source),
    };
    {
        let s = settings.clone();
        let preflight = tokio::task::spawn_blocking(move || landfall_kafka::preflight(&s));
        tokio::select! {
            r = preflight => r.expect("preflight does not panic").map_err(kafka_err)?,
            // Stopped while still starting: nothing consumed, nothing to land.
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
    let (events_tx, mut events) = mpsc::channel(32);
    let handle = landfall_kafka::spawn(settings, events_tx).map_err(kafka_err)?;
    let metrics = ctx.metrics.clone();
    let result = drive_with(
        ctx,
        &mut events,
        handle.commands.clone(),
        handle.held_bytes.clone(),
        &shutdown,
    )
    .await;
    if let Err(e) = &result {
        error!(sink = %name, error = %e, "sink stopped");
    }
    // Leave the group: the consumer thread unsubscribes; answer its final revoke at once.
    let _ = handle.commands.send(ConsumerCommand::Shutdown);
    let deadline = tokio::time::Instant::now() + CONSUMER_CLOSE_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ConsumerEvent::Revoked { reply, .. })) => {
                let _ = reply.send(());
            }
            Ok(Some(ConsumerEvent::Assigned { reply, .. })) => {
                let _ = reply.send(Vec::new());
            }
            Ok(Some(_)) => {}
            // The consumer is gone (its senders dropped with it): the thread is ending.
            Ok(None) => {
                let join = tokio::task::spawn_blocking(move || handle.thread.join());
                let _ = tokio::time::timeout_at(deadline, join).await;
                break;
            }
            Err(_) => {
                warn!(sink = %name, timeout_s = CONSUMER_CLOSE_TIMEOUT.as_secs(),
                    "the Kafka consumer did not leave the group in time; the group drops it at its session timeout");
                break;
            }
        }
    }
    metrics
        .partitions_assigned
        .with_label_values(&[&name])
        .set(0);
    info!(sink = %name, ok = result.is_ok(), "sink stopped");
    result
}

/// The sink loop, from the consumer's events to committed batches. Returns when `shutdown` is
/// cancelled and everything buffered is landed (or the shutdown deadline passed), or on a fatal
/// error. The caller owns the consumer: it sends `events` and receives `commands`.
pub async fn drive(
    ctx: SinkContext,
    events: &mut mpsc::Receiver<ConsumerEvent>,
    commands: std_mpsc::Sender<ConsumerCommand>,
    shutdown: &CancellationToken,
) -> Result<(), SinkError> {
    drive_with(ctx, events, commands, Default::default(), shutdown).await
}

/// [`drive`], with the bytes the consumer holds back for a full channel (they count against
/// the memory budget).
pub async fn drive_with(
    ctx: SinkContext,
    events: &mut mpsc::Receiver<ConsumerEvent>,
    commands: std_mpsc::Sender<ConsumerCommand>,
    consumer_held: Arc<AtomicU64>,
    shutdown: &CancellationToken,
) -> Result<(), SinkError> {
    let cfg = ctx.config;
    let name = cfg.name.clone();
    let seed: u64 = rand::random();
    let mut sink = Sink {
        state: SinkState::new(StateSettings {
            format: BufferFormat::from_config(&cfg),
            policy: FlushPolicy::new(cfg.flush),
            max_records: cfg.flush.max_records,
            max_buffered_bytes: cfg.runtime.max_buffered_bytes,
            stuck_after_ms: cfg.runtime.stuck_after_ms,
            seed,
        }),
        land_settings: Arc::new(LandSettings {
            sink: name.clone(),
            writer_id: ctx.writer_id.clone(),
            multipart_threshold_bytes: cfg.store.multipart_threshold_bytes,
            multipart_part_bytes: cfg.store.multipart_part_bytes,
        }),
        uploads: Arc::new(Semaphore::new(cfg.runtime.upload_concurrency)),
        publisher: Publisher::new(ctx.stores.markers.clone()),
        recovery: Recovery {
            markers: ctx.stores.markers.clone(),
            publisher: Publisher::new(ctx.stores.markers.clone()),
            sink: name.clone(),
            writer_id: ctx.writer_id.clone(),
            metrics: ctx.metrics.clone(),
            timeout: Duration::from_millis(cfg.runtime.recovery_timeout_ms),
        },
        start_from: cfg.kafka.start_from,
        revoke_flush_timeout: Duration::from_millis(cfg.runtime.revoke_flush_timeout_ms),
        shutdown_timeout: Duration::from_millis(cfg.runtime.shutdown_timeout_ms),
        name,
        stores: ctx.stores,
        metrics: ctx.metrics,
        commands,
        landings: JoinSet::new(),
        in_flight: HashMap::new(),
        recoveries: JoinSet::new(),
        consumer_held,
        started: Instant::now(),
    };
    info!(sink = %sink.name, group = %cfg.kafka.group_id, writer = %ctx.writer_id, "sink started");
    sink.run(events, shutdown).await
}

type LandOutcome = (
    TopicPartition,
    u64,
    Arc<SealedBatch>,
    Instant,
    Result<Landed, StoreError>,
);
type RecoverOutcome = (TopicPartition, u64, Result<Recovered, SinkError>);

struct Sink {
    name: String,
    state: SinkState,
    stores: SinkStores,
    metrics: Metrics,
    land_settings: Arc<LandSettings>,
    uploads: Arc<Semaphore>,
    publisher: Publisher,
    recovery: Recovery,
    start_from: StartFrom,
    revoke_flush_timeout: Duration,
    shutdown_timeout: Duration,
    commands: std_mpsc::Sender<ConsumerCommand>,
    landings: JoinSet<LandOutcome>,
    in_flight: HashMap<(TopicPartition, u64), AbortHandle>,
    recoveries: JoinSet<RecoverOutcome>,
    /// Bytes of records the consumer thread holds for a full channel.
    consumer_held: Arc<AtomicU64>,
    started: Instant,
}

impl Sink {
    fn now(&self) -> Now {
        Now {
            // +1 so that no reading is 0, which the buffer would take for "never".
            mono_ms: self.started.elapsed().as_millis() as u64 + 1,
            wall_us: wall_ms() * 1000,
        }
    }

    fn state_err(&self, e: StateError) -> SinkError {
        match e {
            StateError::Buffer(source) => SinkError::Buffer {
                sink: self.name.clone(),
                source,
            },
            e => SinkError::State {
                sink: self.name.clone(),
                source: Box::new(e),
            },
        }
    }

    async fn run(
        &mut self,
        events: &mut mpsc::Receiver<ConsumerEvent>,
        shutdown: &CancellationToken,
    ) -> Result<(), SinkError> {
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if deadline.is_none() => {
                    info!(sink = %self.name, "shutdown: landing what is buffered");
                    let _ = self.commands.send(ConsumerCommand::StopFetching);
                    deadline = Some(tokio::time::Instant::now() + self.shutdown_timeout);
                    let actions = self.state.shutdown(self.now()).map_err(|e| self.state_err(e))?;
                    self.perform(actions);
                }
                Some(res) = self.landings.join_next(), if !self.landings.is_empty() => {
                    if let Ok(res) = res {
                        self.on_landed(res)?;
                    }
                }
                Some(res) = self.recoveries.join_next(), if !self.recoveries.is_empty() => {
                    if let Ok(res) = res {
                        self.on_recovered(res)?;
                    }
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev).await?,
                    None => return Err(SinkError::Consumer { sink: self.name.clone(), message: "consumer thread ended".into() }),
                },
                _ = tick.tick() => self.on_tick()?,
            }
            if let Some(d) = deadline {
                let unlanded = self.state.unlanded();
                if unlanded == 0 {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= d {
                    return Err(SinkError::ShutdownTimeout {
                        sink: self.name.clone(),
                        partitions: unlanded,
                    });
                }
            }
        }
    }

    /// Carry out what the machine decided.
    fn perform(&mut self, actions: Vec<Action>) {
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for a in actions {
            match a {
                Action::Land { tp, epoch, batch } => self.start_landing(tp, epoch, batch),
                Action::Abort { tp, epoch } => {
                    if let Some(h) = self.in_flight.remove(&(tp, epoch)) {
                        h.abort();
                    }
                }
                Action::Pause(tp) => {
                    resume.retain(|t| t != &tp);
                    pause.push(tp);
                }
                Action::Resume(tp) => {
                    pause.retain(|t| t != &tp);
                    resume.push(tp);
                }
                Action::Seek { tp, offset, epoch } => {
                    let _ = self
                        .commands
                        .send(ConsumerCommand::Seek { tp, offset, epoch });
                }
                Action::Recover {
                    tp,
                    epoch,
                    hint_next,
                } => {
                    let recovery = self.recovery.clone();
                    let deadline = Instant::now() + recovery.timeout;
                    self.recoveries.spawn(async move {
                        let hint = Some(Hint {
                            committed_offset: hint_next,
                        });
                        let r = recovery
                            .run(tp.clone(), hint, Some(hint_next), deadline)
                            .await;
                        (tp, epoch, r)
                    });
                }
                Action::CommitHint { tp, offset } => {
                    let _ = self.commands.send(ConsumerCommand::CommitHint {
                        tp,
                        offset,
                        metadata: String::new(),
                    });
                }
                Action::Stuck {
                    tp,
                    failing_for_ms,
                    failures,
                } => {
                    error!(sink = %self.name, %tp, failing_for_ms, failures,
                        "partition stuck: its oldest batch keeps failing to land; retrying, /healthz reports unhealthy");
                }
                Action::Unstuck(tp) => {
                    info!(sink = %self.name, %tp, "partition no longer stuck");
                }
                Action::Skipped { tp, gap } => {
                    warn!(sink = %self.name, topic = %tp.topic, partition = tp.partition,
                        first = gap.first, last = gap.last, offsets = gap.len(), reason = gap.reason.as_str(),
                        "Kafka no longer holds offsets {}..={} of {tp}: they were not landed; continuing at {}, the next batch's manifest records the gap",
                        gap.first, gap.last, gap.last + 1);
                }
                Action::Halted(o) => {
                    error!(sink = %self.name, topic = %o.tp.topic, partition = o.tp.partition,
                        position = o.position, durable_next = o.durable_next, low = o.low, high = o.high,
                        "partition out of range above the log end: {o}");
                }
            }
        }
        self.metrics
            .partitions_stuck
            .with_label_values(&[&self.name])
            .set(self.state.stuck() as i64);
        if !pause.is_empty() {
            let _ = self.commands.send(ConsumerCommand::Pause(pause));
        }
        if !resume.is_empty() {
            let _ = self.commands.send(ConsumerCommand::Resume(resume));
        }
        self.metrics
            .partitions_paused
            .with_label_values(&[&self.name])
            .set(self.state.paused() as i64);
    }

    fn start_landing(&mut self, tp: TopicPartition, epoch: u64, batch: Arc<SealedBatch>) {
        let stores = self.stores.clone();
        let settings = self.land_settings.clone();
        let uploads = self.uploads.clone();
        let publisher = self.publisher.clone();
        debug!(sink = %self.name, %tp, first = batch.offsets.first, last = batch.offsets.last,
            reason = batch.reason.as_str(), attempt = %batch.attempt_id, "landing batch");
        let key = (tp.clone(), epoch);
        let abort = self.landings.spawn(async move {
            let started = Instant::now();
            let r = land(&stores, &settings, &uploads, &publisher, &batch, wall_ms).await;
            (tp, epoch, batch, started, r)
        });
        self.in_flight.insert(key, abort);
    }

    async fn on_event(&mut self, ev: ConsumerEvent) -> Result<(), SinkError> {
        match ev {
            ConsumerEvent::Records(records) => self.on_records(records),
            ConsumerEvent::Assigned { partitions, reply } => {
                let r = self.on_assigned(partitions).await;
                let starts = r.as_ref().map(Vec::clone).unwrap_or_default();
                let _ = reply.send(starts);
                r.map(|_| ())
            }
            ConsumerEvent::Revoked {
                partitions,
                lost,
                reply,
            } => {
                let r = self.on_revoked(partitions, lost).await;
                let _ = reply.send(());
                r
            }
            // The machine decides from where it stands (the consumer's position may be of a
            // fetch before a seek): skip a retention gap explicitly, or stop the partition.
            ConsumerEvent::OffsetOutOfRange {
                tp,
                position,
                low,
                high,
            } => {
                debug!(sink = %self.name, %tp, ?position, low, high, "offset out of range");
                let actions = self.state.out_of_range(&tp, low, high);
                self.perform(actions);
                Ok(())
            }
            ConsumerEvent::Fatal(message) => Err(SinkError::Consumer {
                sink: self.name.clone(),
                message,
            }),
        }
    }

    fn on_records(&mut self, records: Vec<Tagged>) -> Result<(), SinkError> {
        let now = self.now();
        let state = &mut self.state;
        let records = records.into_iter().map(|t| (t.record, t.epoch));
        let (actions, tally) =
            cpu(|| state.records(records, now)).map_err(|e| self.state_err(e))?;
        for (topic, taken, duplicates) in &tally.by_topic {
            let labels = [self.name.as_str(), topic];
            self.metrics
                .records_consumed
                .with_label_values(&labels)
                .inc_by(*taken);
            self.metrics
                .records_duplicate
                .with_label_values(&labels)
                .inc_by(*duplicates);
        }
        self.perform(actions);
        Ok(())
    }

    fn on_tick(&mut self) -> Result<(), SinkError> {
        let now = self.now();
        let held = self.consumer_held.load(Ordering::Relaxed);
        let state = &mut self.state;
        let actions = cpu(|| state.tick(now, held)).map_err(|e| self.state_err(e))?;
        self.perform(actions);
        self.metrics
            .buffered_bytes
            .with_label_values(&[&self.name])
            .set((self.state.buffered_bytes() + held) as i64);
        Ok(())
    }

    fn on_landed(
        &mut self,
        (tp, epoch, batch, started, result): LandOutcome,
    ) -> Result<(), SinkError> {
        self.in_flight.remove(&(tp.clone(), epoch));
        if self.state.epoch(&tp) != Some(epoch) {
            return Ok(()); // a landing of an earlier life of this partition
        }
        let mut store_error = None;
        let outcome = match result {
            Ok(landed) => {
                match &landed {
                    Landed::Committed(m) => {
                        self.metrics
                            .batch_committed(&self.name, m, started.elapsed());
                        debug!(sink = %self.name, %tp, first = m.offsets.first, next = m.offsets.next, rows = m.rows, "batch committed");
                    }
                    Landed::Lost(theirs) => {
                        self.metrics
                            .commit_conflicts
                            .with_label_values(&[self.name.as_str(), &tp.topic])
                            .inc();
                        warn!(sink = %self.name, %tp, ours = ?batch.offsets, theirs = ?theirs.offsets, writer = %theirs.writer_id,
                            "another writer committed this range first; discarding our batch and re-reading from the store");
                    }
                }
                LandingResult::Landed(landed)
            }
            Err(e) => {
                let retryable = e.is_retryable();
                let class = if retryable { "transient" } else { "permanent" };
                self.metrics
                    .store_errors
                    .with_label_values(&[&self.name, class])
                    .inc();
                let r = if retryable {
                    warn!(sink = %self.name, %tp, error = %e, attempt = %batch.attempt_id,
                        "landing failed; partition paused, retrying with the same attempt id");
                    LandingResult::Retryable
                } else {
                    LandingResult::Permanent
                };
                store_error = Some(e);
                r
            }
        };
        let now = self.now();
        match self.state.landed(&tp, epoch, outcome, now) {
            Ok(actions) => {
                self.perform(actions);
                Ok(())
            }
            Err(StateError::Permanent { .. }) if store_error.is_some() => Err(SinkError::Store {
                sink: self.name.clone(),
                source: Box::new(store_error.expect("checked")),
            }),
            Err(e) => Err(self.state_err(e)),
        }
    }

    fn on_recovered(&mut self, (tp, epoch, r): RecoverOutcome) -> Result<(), SinkError> {
        let rec = r?;
        info!(sink = %self.name, %tp, next = rec.next, via = rec.via, listed = rec.listed, "partition recovered after a lost race");
        let actions = self.state.recovered(&tp, epoch, rec.next);
        self.perform(actions);
        Ok(())
    }

    async fn on_assigned(&mut self, partitions: Vec<Assigned>) -> Result<Vec<StartAt>, SinkError> {
        use futures::StreamExt;
        // One deadline for the whole assignment: the consumer thread waits for all of it.
        let deadline = Instant::now() + self.recovery.timeout;
        // Each future owns what it needs: borrowing the loop inside a buffered stream trips
        // rustc's higher-ranked `Send` inference for the spawned sink task.
        let recoveries = partitions.iter().map(|a| {
            let hint = a.committed.as_ref().map(|(offset, _)| Hint {
                committed_offset: *offset,
            });
            let initial = initial_offset(self.start_from, a.watermarks);
            let (recovery, tp) = (self.recovery.clone(), a.tp.clone());
            async move { recovery.run(tp, hint, initial, deadline).await }
        });
        let recoveries: Vec<_> = recoveries.collect();
        let results: Vec<_> = futures::stream::iter(recoveries)
            .buffered(RECOVERY_PARALLELISM)
            .collect()
            .await;
        let mut starts = Vec::new();
        for (a, r) in partitions.into_iter().zip(results) {
            let rec = r?;
            info!(sink = %self.name, tp = %a.tp, next = rec.next, via = rec.via, listed = rec.listed, "partition recovered");
            self.metrics
                .durable_offset
                .with_label_values(&[self.name.as_str(), &a.tp.topic, &a.tp.partition.to_string()])
                .set(rec.next);
            // Below the log start (down longer than retention) it starts at the log start with
            // an explained gap; beyond the log end it is stopped. The machine decides.
            let assigned = self
                .state
                .assign_within(a.tp.clone(), rec.next, a.watermarks);
            self.perform(assigned.actions);
            starts.push(StartAt {
                tp: a.tp,
                offset: assigned.start,
                epoch: assigned.epoch,
            });
        }
        self.metrics
            .partitions_assigned
            .with_label_values(&[&self.name])
            .set(self.state.assigned() as i64);
        Ok(starts)
    }

    /// Hand revoked partitions off cleanly: land what they hold within the deadline, else drop
    /// it (the new owner re-reads it from the last commit).
    async fn on_revoked(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
    ) -> Result<(), SinkError> {
        // Leave a tenth of the consumer's wait for the hand-off itself.
        let deadline = tokio::time::Instant::now() + self.revoke_flush_timeout * 9 / 10;
        let now = self.now();
        let actions = cpu(|| self.state.revoke(&partitions, lost, now));
        let actions = actions.map_err(|e| self.state_err(e))?;
        self.perform(actions);
        let mut tick = tokio::time::interval(TICK);
        while self.state.pending(&partitions) {
            tokio::select! {
                Some(res) = self.landings.join_next(), if !self.landings.is_empty() => {
                    if let Ok(res) = res {
                        self.on_landed(res)?;
                    }
                }
                _ = tick.tick() => self.on_tick()?,
                _ = tokio::time::sleep_until(deadline) => {
                    warn!(sink = %self.name, partitions = partitions.len(), "revoke deadline passed; dropping what is not landed");
                    break;
                }
            }
        }
        let actions = self.state.remove(&partitions);
        self.perform(actions);
        self.metrics
            .partitions_assigned
            .with_label_values(&[&self.name])
            .set(self.state.assigned() as i64);
        Ok(())
    }
}

/// What recovering a partition needs; owned, so the sink loop is not borrowed across the await.
#[derive(Clone)]
struct Recovery {
    markers: landfall_store::Location,
    publisher: Publisher,
    sink: String,
    writer_id: String,
    metrics: Metrics,
    /// `runtime.recovery_timeout_ms`.
    timeout: Duration,
}

impl Recovery {
    /// Find where `tp` continues, finishing its tip's post-commit step if a crash cut it short.
    /// Transient store errors are retried with backoff until `deadline` (within the consumer's
    /// assignment wait); permanent ones stop the sink.
    async fn run(
        &self,
        tp: TopicPartition,
        hint: Option<Hint>,
        initial: Option<i64>,
        deadline: Instant,
    ) -> Result<Recovered, SinkError> {
        let started = Instant::now();
        let mut failures: u32 = 0;
        loop {
            let r = async {
                let rec = recover_partition(
                    &self.markers,
                    &self.sink,
                    &tp.topic,
                    tp.partition,
                    hint,
                    IfNew {
                        offset: initial,
                        writer_id: &self.writer_id,
                        now_rfc3339: &rfc3339_ms(wall_ms()),
                    },
                )
                .await?;
                if let (true, Some(tip)) = (rec.tip_unpublished, &rec.tip) {
                    info!(sink = %self.sink, %tp, first = tip.offsets.first,
                        "finishing the post-commit step of the last batch (a crash interrupted it)");
                    self.publisher.publish(tip).await?;
                }
                Ok::<_, StoreError>(rec)
            }
            .await;
            match r {
                Ok(rec) => {
                    self.metrics
                        .recovery_seconds
                        .with_label_values(&[&self.sink])
                        .observe(started.elapsed().as_secs_f64());
                    return Ok(rec);
                }
                Err(e) if e.is_retryable() && Instant::now() < deadline => {
                    self.metrics
                        .store_errors
                        .with_label_values(&[&self.sink, "transient"])
                        .inc();
                    warn!(sink = %self.sink, %tp, error = %e, "recovery failed; retrying");
                    let base = Duration::from_millis(200u64.saturating_mul(1 << failures.min(7)));
                    let wait = base
                        .min(Duration::from_secs(10))
                        .min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(wait).await;
                    failures += 1;
                }
                Err(e) => {
                    return Err(SinkError::Store {
                        sink: self.sink.clone(),
                        source: Box::new(e),
                    })
                }
            }
        }
    }
}
