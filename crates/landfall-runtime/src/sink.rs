//! One sink: a consumer thread feeding an event loop that owns every partition's ledger and
//! buffer, seals batches when the flush policy says so, and lands them one at a time per partition.
//!
//! The loop reacts to four things: records and rebalances from the consumer thread, landing
//! results, a timer (age flushes, retries), and shutdown. It is the only owner of partition state,
//! so no locks; CPU work (decoding, Parquet encoding) runs under `block_in_place`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use landfall_core::buffer::{BufferError, BufferFormat, PartitionBuffer, SealedBatch};
use landfall_core::config::{SinkConfig, StartFrom};
use landfall_core::flush::{FlushPolicy, FlushReason};
use landfall_core::ledger::{Accept, LedgerError, OffsetLedger};
use landfall_core::manifest::rfc3339_ms;
use landfall_core::TopicPartition;
use landfall_kafka::{
    Assigned, ConsumerCommand, ConsumerEvent, ConsumerSettings, KafkaSinkError, StartAt, Tagged,
};
use landfall_store::recovery::{recover_partition, Hint, IfNew, Recovered};
use landfall_store::StoreError;
use rand::Rng;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::land::{land, LandSettings, Landed, SinkStores};
use crate::metrics::Metrics;

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
    #[error("sink `{sink}`: offset ledger: {source}")]
    Ledger {
        sink: String,
        #[source]
        source: LedgerError,
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

struct Landing {
    abort: AbortHandle,
    bytes: u64,
}

struct Retry {
    batch: SealedBatch,
    attempt: String,
    at: Instant,
}

struct PartitionState {
    ledger: OffsetLedger,
    buffer: PartitionBuffer,
    epoch: u64,
    /// The oldest sealed batch, being landed.
    landing: Option<Landing>,
    /// The oldest sealed batch, waiting to be retried after a transient failure.
    retry: Option<Retry>,
    /// Younger sealed batches waiting for their turn (commits go strictly in order).
    queued: std::collections::VecDeque<(SealedBatch, String)>,
    failures: u32,
    paused: bool,
}

/// How long leaving the group may take at shutdown.
const CONSUMER_CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

type LandResult = (
    TopicPartition,
    u64,
    String,
    SealedBatch,
    Instant,
    Result<Landed, StoreError>,
);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Run CPU-bound work without stalling the other tasks on this worker.
fn cpu<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Jittered exponential backoff: 200 ms doubling to 30 s, times a random factor in [0.5, 1.5).
fn backoff(failures: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << failures.min(8)).min(30_000);
    let jitter = rand::rng().random_range(0.5..1.5);
    Duration::from_millis((base as f64 * jitter) as u64)
}

struct Sink {
    name: String,
    cfg: SinkConfig,
    stores: SinkStores,
    metrics: Metrics,
    writer_id: String,
    format: BufferFormat,
    policy: FlushPolicy,
    land_settings: Arc<LandSettings>,
    uploads: Arc<Semaphore>,
    commands: std::sync::mpsc::Sender<ConsumerCommand>,
    partitions: HashMap<TopicPartition, PartitionState>,
    landings: JoinSet<LandResult>,
    epochs: AtomicU64,
    stopping: bool,
}

/// Run one sink until `shutdown` is cancelled (then land what is buffered) or a fatal error.
pub async fn run_sink(ctx: SinkContext, shutdown: CancellationToken) -> Result<(), SinkError> {
    let cfg = ctx.config;
    let name = cfg.name.clone();
    let settings = ConsumerSettings {
        kafka: cfg.kafka.clone(),
        topics: cfg.topics.clone(),
        client_id: format!("landfall-{}-{}", name, ctx.writer_id),
        revoke_timeout: Duration::from_millis(cfg.runtime.revoke_flush_timeout_ms),
        batch_records: 2048,
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
    let format = BufferFormat::from_config(&cfg);
    let mut sink = Sink {
        name: name.clone(),
        policy: FlushPolicy::new(cfg.flush),
        land_settings: Arc::new(LandSettings {
            sink: name.clone(),
            writer_id: ctx.writer_id.clone(),
            multipart_threshold_bytes: cfg.store.multipart_threshold_bytes,
            multipart_part_bytes: cfg.store.multipart_part_bytes,
        }),
        uploads: Arc::new(Semaphore::new(cfg.runtime.upload_concurrency)),
        cfg,
        stores: ctx.stores,
        metrics: ctx.metrics,
        writer_id: ctx.writer_id,
        format,
        commands: handle.commands.clone(),
        partitions: HashMap::new(),
        landings: JoinSet::new(),
        epochs: AtomicU64::new(1),
        stopping: false,
    };
    info!(sink = %name, group = %sink.cfg.kafka.group_id, writer = %sink.writer_id, "sink started");
    let result = sink.run(&mut events, &shutdown).await;
    if let Err(e) = &result {
        error!(sink = %name, error = %e, "sink stopped");
    }
    // Leave the group: the consumer thread unsubscribes; answer its final revoke at once. Leaving
    // is bounded: everything is landed and committed by now, so a coordinator that is slow to
    // answer must not keep the process from exiting (the group then drops the member at its
    // session timeout).
    let _ = sink.commands.send(ConsumerCommand::Shutdown);
    sink.landings.abort_all();
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
    sink.metrics
        .partitions_assigned
        .with_label_values(&[&name])
        .set(0);
    info!(sink = %name, ok = result.is_ok(), "sink stopped");
    result
}

impl Sink {
    fn store_err(&self, source: StoreError) -> SinkError {
        SinkError::Store {
            sink: self.name.clone(),
            source: Box::new(source),
        }
    }

    fn next_epoch(&self) -> u64 {
        self.epochs.fetch_add(1, Ordering::Relaxed)
    }

    async fn run(
        &mut self,
        events: &mut mpsc::Receiver<ConsumerEvent>,
        shutdown: &CancellationToken,
    ) -> Result<(), SinkError> {
        let mut shutdown_deadline: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !self.stopping => {
                    info!(sink = %self.name, "shutdown: landing what is buffered");
                    self.stopping = true;
                    let _ = self.commands.send(ConsumerCommand::StopFetching);
                    shutdown_deadline = Some(tokio::time::Instant::now() + Duration::from_millis(self.cfg.runtime.shutdown_timeout_ms));
                }
                Some(res) = self.landings.join_next(), if !self.landings.is_empty() => {
                    if let Ok(res) = res {
                        self.on_landed(res).await?;
                    }
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev).await?,
                    None => return Err(SinkError::Consumer { sink: self.name.clone(), message: "consumer thread ended".into() }),
                },
                _ = tick.tick() => self.on_tick()?,
            }
            if self.stopping {
                let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
                for tp in &tps {
                    self.flush_if(tp, Some(FlushReason::Shutdown))?;
                }
                let unlanded = self
                    .partitions
                    .values()
                    .filter(|s| {
                        !s.buffer.is_empty()
                            || s.landing.is_some()
                            || s.retry.is_some()
                            || !s.queued.is_empty()
                    })
                    .count();
                if unlanded == 0 {
                    return Ok(());
                }
                if shutdown_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    return Err(SinkError::ShutdownTimeout {
                        sink: self.name.clone(),
                        partitions: unlanded,
                    });
                }
            }
        }
    }

    async fn on_event(&mut self, ev: ConsumerEvent) -> Result<(), SinkError> {
        match ev {
            ConsumerEvent::Records(records) => self.on_records(records),
            ConsumerEvent::Assigned { partitions, reply } => {
                let starts = self.on_assigned(partitions).await;
                let (starts, err) = match starts {
                    Ok(s) => (s, None),
                    Err(e) => (Vec::new(), Some(e)),
                };
                let _ = reply.send(starts);
                match err {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
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
            // Not handled yet (retention gap: seek to `low` and record the gap; high side: stop
            // the partition): stop rather than skip anything.
            ConsumerEvent::OffsetOutOfRange {
                tp,
                position,
                low,
                high,
            } => {
                error!(sink = %self.name, %tp, ?position, low, high, "offset out of range");
                Err(SinkError::Consumer {
                    sink: self.name.clone(),
                    message: format!(
                        "{tp}: offset {position:?} is out of range (Kafka holds {low}..{high}); stopping, nothing was skipped"
                    ),
                })
            }
            ConsumerEvent::Fatal(message) => Err(SinkError::Consumer {
                sink: self.name.clone(),
                message,
            }),
        }
    }

    fn on_records(&mut self, records: Vec<Tagged>) -> Result<(), SinkError> {
        let now = now_ms();
        let max_records = self.cfg.flush.max_records;
        let mut touched: Vec<TopicPartition> = Vec::new();
        for Tagged { record: rec, epoch } in records {
            let tp = TopicPartition::new(rec.topic.clone(), rec.partition);
            let Some(state) = self.partitions.get_mut(&tp) else {
                continue;
            };
            if state.epoch != epoch {
                continue; // fetched before a seek
            }
            match state.ledger.accept(rec.offset) {
                Accept::Take => {
                    self.metrics
                        .records_consumed
                        .with_label_values(&[self.name.as_str(), &rec.topic])
                        .inc();
                    state.buffer.push(rec, now);
                }
                Accept::Duplicate => {
                    self.metrics
                        .records_duplicate
                        .with_label_values(&[self.name.as_str(), &rec.topic])
                        .inc();
                    continue;
                }
            }
            if state.buffer.chunk_full(&self.format) {
                let fmt = &self.format;
                let buffer = &mut state.buffer;
                cpu(|| buffer.encode_pending(fmt, (now * 1000) as i64)).map_err(|e| {
                    SinkError::Buffer {
                        sink: self.name.clone(),
                        source: Box::new(e),
                    }
                })?;
                self.flush_if(&tp, None)?;
            } else if state.buffer.records() >= max_records {
                // Checked per record so a batch holds exactly `max_records` when nothing of the
                // partition is landing (while one is, the next batch keeps filling).
                self.flush_if(&tp, None)?;
            }
            if !touched.contains(&tp) {
                touched.push(tp);
            }
        }
        for tp in &touched {
            self.flush_if(tp, None)?;
        }
        self.enforce_budget()
    }

    /// Seal and start landing `tp`'s buffer if the policy (or `forced`) says so and nothing of
    /// this partition is landing.
    fn flush_if(
        &mut self,
        tp: &TopicPartition,
        forced: Option<FlushReason>,
    ) -> Result<(), SinkError> {
        let Some(state) = self.partitions.get_mut(tp) else {
            return Ok(());
        };
        if state.buffer.is_empty() {
            return Ok(());
        }
        let reason =
            match forced.or_else(|| self.policy.due(&state.buffer.stats(&self.format), now_ms())) {
                Some(r) => r,
                None => return Ok(()),
            };
        let range = state.ledger.seal().map_err(|e| SinkError::Ledger {
            sink: self.name.clone(),
            source: e,
        })?;
        let fmt = &self.format;
        let buffer = &mut state.buffer;
        let now_us = (now_ms() * 1000) as i64;
        let sealed = cpu(|| buffer.seal(fmt, reason, now_us)).map_err(|e| SinkError::Buffer {
            sink: self.name.clone(),
            source: Box::new(e),
        })?;
        let Some(mut batch) = sealed else {
            return Ok(());
        };
        debug_assert_eq!(batch.offsets.last, range.last);
        // The batch covers from the first offset no commit covers (see the ledger).
        batch.offsets = range;
        let attempt = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        state.queued.push_back((batch, attempt));
        self.pump(tp);
        Ok(())
    }

    /// Start landing the oldest sealed batch of `tp` if nothing of it is landing or waiting to retry.
    fn pump(&mut self, tp: &TopicPartition) {
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        if state.landing.is_some() || state.retry.is_some() {
            return;
        }
        if let Some((batch, attempt)) = state.queued.pop_front() {
            self.start_landing(tp.clone(), batch, attempt);
        }
    }

    fn start_landing(&mut self, tp: TopicPartition, batch: SealedBatch, attempt: String) {
        let state = self
            .partitions
            .get_mut(&tp)
            .expect("landing an owned partition");
        let epoch = state.epoch;
        let bytes = batch.bytes();
        let stores = self.stores.clone();
        let settings = self.land_settings.clone();
        let uploads = self.uploads.clone();
        debug!(sink = %self.name, %tp, first = batch.offsets.first, last = batch.offsets.last, reason = batch.reason.as_str(), "landing batch");
        let abort = self.landings.spawn(async move {
            let started = Instant::now();
            let r = land(&stores, &settings, &uploads, &batch, &attempt, || {
                now_ms() as i64
            })
            .await;
            (tp, epoch, attempt, batch, started, r)
        });
        state.landing = Some(Landing { abort, bytes });
    }

    async fn on_landed(
        &mut self,
        (tp, epoch, attempt, batch, started, result): LandResult,
    ) -> Result<(), SinkError> {
        let Some(state) = self.partitions.get_mut(&tp) else {
            return Ok(());
        };
        if state.epoch != epoch {
            return Ok(());
        }
        state.landing = None;
        match result {
            Ok(Landed::Committed(m)) => {
                state
                    .ledger
                    .committed(batch.offsets)
                    .map_err(|e| SinkError::Ledger {
                        sink: self.name.clone(),
                        source: e,
                    })?;
                state.failures = 0;
                if state.paused && !self.stopping {
                    state.paused = false;
                    let _ = self
                        .commands
                        .send(ConsumerCommand::Resume(vec![tp.clone()]));
                }
                let labels = [self.name.as_str(), &tp.topic];
                self.metrics
                    .records_landed
                    .with_label_values(&labels)
                    .inc_by(m.rows);
                self.metrics
                    .records_dead_lettered
                    .with_label_values(&labels)
                    .inc_by(m.dead_lettered);
                self.metrics
                    .files_landed
                    .with_label_values(&labels)
                    .inc_by(m.files.len() as u64);
                self.metrics
                    .bytes_landed
                    .with_label_values(&labels)
                    .inc_by(m.files.iter().map(|f| f.size_bytes).sum());
                self.metrics
                    .batches_committed
                    .with_label_values(&[self.name.as_str(), &tp.topic, &m.flush_reason])
                    .inc();
                self.metrics
                    .landing_seconds
                    .with_label_values(&[&self.name])
                    .observe(started.elapsed().as_secs_f64());
                self.metrics
                    .durable_offset
                    .with_label_values(&[self.name.as_str(), &tp.topic, &tp.partition.to_string()])
                    .set(m.offsets.next);
                let _ = self.commands.send(ConsumerCommand::CommitHint {
                    tp: tp.clone(),
                    offset: m.offsets.next,
                    metadata: String::new(),
                });
                debug!(sink = %self.name, %tp, first = m.offsets.first, next = m.offsets.next, rows = m.rows, "batch committed");
                self.pump(&tp);
                self.flush_if(&tp, None)
            }
            Ok(Landed::Lost(existing)) => {
                self.metrics
                    .commit_conflicts
                    .with_label_values(&[self.name.as_str(), &tp.topic])
                    .inc();
                warn!(sink = %self.name, %tp, ours = ?batch.offsets, theirs = ?existing.offsets, writer = %existing.writer_id,
                    "another writer committed this range first; discarding our batch and re-reading from the store");
                let hint = Hint {
                    committed_offset: existing.offsets.next,
                };
                let recovered = self
                    .recovery()
                    .run(tp.clone(), Some(hint), existing.offsets.next)
                    .await?;
                self.restart_partition(&tp, recovered.next);
                Ok(())
            }
            Err(e) if e.is_retryable() => {
                self.metrics
                    .store_errors
                    .with_label_values(&[&self.name, "transient"])
                    .inc();
                let wait = backoff(state.failures);
                state.failures += 1;
                warn!(sink = %self.name, %tp, error = %e, retry_in_ms = wait.as_millis() as u64, attempt = state.failures,
                    "landing failed; partition paused, retrying with the same attempt id");
                state.retry = Some(Retry {
                    batch,
                    attempt,
                    at: Instant::now() + wait,
                });
                if !state.paused {
                    state.paused = true;
                    let _ = self.commands.send(ConsumerCommand::Pause(vec![tp.clone()]));
                }
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .store_errors
                    .with_label_values(&[&self.name, "permanent"])
                    .inc();
                Err(self.store_err(e))
            }
        }
    }

    /// Drop local state of `tp` and continue from `next` (after a lost race).
    fn restart_partition(&mut self, tp: &TopicPartition, next: i64) {
        let epoch = self.next_epoch();
        let state = self.partitions.get_mut(tp).expect("owned");
        state.buffer.clear();
        state.ledger.reset(next);
        state.retry = None;
        state.queued.clear();
        state.epoch = epoch;
        let _ = self.commands.send(ConsumerCommand::Seek {
            tp: tp.clone(),
            offset: next,
            epoch,
        });
        if state.paused {
            state.paused = false;
            let _ = self
                .commands
                .send(ConsumerCommand::Resume(vec![tp.clone()]));
        }
    }

    fn on_tick(&mut self) -> Result<(), SinkError> {
        let now = Instant::now();
        let due: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, s)| {
                s.landing.is_none()
                    && s.retry
                        .as_ref()
                        .is_some_and(|r| r.at <= now || self.stopping)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in due {
            let r = self
                .partitions
                .get_mut(&tp)
                .and_then(|s| s.retry.take())
                .expect("retry present");
            self.start_landing(tp, r.batch, r.attempt);
        }
        let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        for tp in &tps {
            self.flush_if(tp, None)?;
        }
        self.enforce_budget()
    }

    fn buffered_bytes(&self) -> u64 {
        self.partitions
            .values()
            .map(|s| {
                s.buffer.memory_bytes()
                    + s.landing.as_ref().map_or(0, |l| l.bytes)
                    + s.retry.as_ref().map_or(0, |r| r.batch.bytes())
                    + s.queued.iter().map(|(b, _)| b.bytes()).sum::<u64>()
            })
            .sum()
    }

    /// Invariant 5: stay under the byte budget. Flush the biggest buffers early; if that is not
    /// enough (their partitions are still landing), pause the biggest partitions. Never stop polling.
    fn enforce_budget(&mut self) -> Result<(), SinkError> {
        let budget = self.cfg.runtime.max_buffered_bytes;
        let mut total = self.buffered_bytes();
        self.metrics
            .buffered_bytes
            .with_label_values(&[&self.name])
            .set(total as i64);
        if total > budget {
            let mut by_size: Vec<(u64, TopicPartition)> = self
                .partitions
                .iter()
                .map(|(tp, s)| (s.buffer.memory_bytes(), tp.clone()))
                .collect();
            by_size.sort_by_key(|(size, _)| std::cmp::Reverse(*size));
            for (size, tp) in by_size {
                if total <= budget * 8 / 10 || size == 0 {
                    break;
                }
                let s = &self.partitions[&tp];
                if s.landing.is_none() && s.retry.is_none() {
                    self.flush_if(&tp, Some(FlushReason::Memory))?;
                    total = self.buffered_bytes();
                } else if !s.paused {
                    let s = self.partitions.get_mut(&tp).expect("present");
                    s.paused = true;
                    let _ = self.commands.send(ConsumerCommand::Pause(vec![tp.clone()]));
                }
            }
        } else if total < budget / 2 && !self.stopping {
            let resume: Vec<TopicPartition> = self
                .partitions
                .iter_mut()
                .filter(|(_, s)| s.paused && s.retry.is_none())
                .map(|(tp, s)| {
                    s.paused = false;
                    tp.clone()
                })
                .collect();
            if !resume.is_empty() {
                let _ = self.commands.send(ConsumerCommand::Resume(resume));
            }
        }
        let paused = self.partitions.values().filter(|s| s.paused).count();
        self.metrics
            .partitions_paused
            .with_label_values(&[&self.name])
            .set(paused as i64);
        Ok(())
    }

    fn recovery(&self) -> Recovery {
        Recovery {
            markers: self.stores.markers.clone(),
            sink: self.name.clone(),
            writer_id: self.writer_id.clone(),
            metrics: self.metrics.clone(),
        }
    }

    async fn on_assigned(&mut self, partitions: Vec<Assigned>) -> Result<Vec<StartAt>, SinkError> {
        let recovery = self.recovery();
        let recoveries = partitions.iter().map(|a| {
            let hint = a.committed.as_ref().map(|(offset, _)| Hint {
                committed_offset: *offset,
            });
            let initial = match (self.cfg.kafka.start_from, a.watermarks) {
                (StartFrom::Earliest, Some((low, _))) => low.max(0),
                (StartFrom::Latest, Some((_, high))) => high.max(0),
                (_, None) => 0,
            };
            recovery.run(a.tp.clone(), hint, initial)
        });
        let results = futures::future::join_all(recoveries).await;
        let mut starts = Vec::new();
        for (a, r) in partitions.into_iter().zip(results) {
            let rec = r?;
            if let Some((low, _)) = a.watermarks {
                if rec.next < low {
                    warn!(sink = %self.name, tp = %a.tp, next = rec.next, earliest = low,
                        "the topic no longer holds offsets {}..{}: retention removed them before they were landed", rec.next, low);
                }
            }
            info!(sink = %self.name, tp = %a.tp, next = rec.next, via = rec.via, listed = rec.listed, "partition recovered");
            let epoch = self.next_epoch();
            self.metrics
                .durable_offset
                .with_label_values(&[self.name.as_str(), &a.tp.topic, &a.tp.partition.to_string()])
                .set(rec.next);
            self.partitions.insert(
                a.tp.clone(),
                PartitionState {
                    ledger: OffsetLedger::new(rec.next),
                    buffer: PartitionBuffer::new(a.tp.clone()),
                    epoch,
                    landing: None,
                    retry: None,
                    queued: Default::default(),
                    failures: 0,
                    paused: false,
                },
            );
            starts.push(StartAt {
                tp: a.tp,
                offset: rec.next,
                epoch,
            });
        }
        self.metrics
            .partitions_assigned
            .with_label_values(&[&self.name])
            .set(self.partitions.len() as i64);
        Ok(starts)
    }

    /// Hand revoked partitions off cleanly: land what is buffered within the deadline, else drop it
    /// (the new owner re-reads it from the last commit).
    async fn on_revoked(
        &mut self,
        partitions: Vec<TopicPartition>,
        lost: bool,
    ) -> Result<(), SinkError> {
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.cfg.runtime.revoke_flush_timeout_ms * 9 / 10);
        if !lost {
            loop {
                for tp in &partitions {
                    if let Some(s) = self.partitions.get_mut(tp) {
                        if s.landing.is_none() {
                            if let Some(r) = s.retry.take() {
                                self.start_landing(tp.clone(), r.batch, r.attempt);
                                continue;
                            }
                        }
                    }
                    self.flush_if(tp, Some(FlushReason::Revoke))?;
                }
                let pending = partitions.iter().any(|tp| {
                    self.partitions.get(tp).is_some_and(|s| {
                        s.landing.is_some()
                            || s.retry.is_some()
                            || !s.queued.is_empty()
                            || !s.buffer.is_empty()
                    })
                });
                if !pending {
                    break;
                }
                tokio::select! {
                    Some(res) = self.landings.join_next(), if !self.landings.is_empty() => {
                        if let Ok(res) = res {
                            self.on_landed(res).await?;
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        warn!(sink = %self.name, partitions = partitions.len(), "revoke deadline passed; dropping what is not landed");
                        break;
                    }
                }
            }
        }
        for tp in &partitions {
            if let Some(s) = self.partitions.remove(tp) {
                if let Some(l) = s.landing {
                    l.abort.abort();
                }
            }
        }
        self.metrics
            .partitions_assigned
            .with_label_values(&[&self.name])
            .set(self.partitions.len() as i64);
        Ok(())
    }
}

/// What recovering a partition needs; owned, so the sink loop is not borrowed across the await.
struct Recovery {
    markers: landfall_store::Location,
    sink: String,
    writer_id: String,
    metrics: Metrics,
}

impl Recovery {
    /// Recover with backoff on transient store errors (bounded well under the consumer's
    /// assignment timeout); permanent errors stop the sink.
    async fn run(
        &self,
        tp: TopicPartition,
        hint: Option<Hint>,
        initial: i64,
    ) -> Result<Recovered, SinkError> {
        let started = Instant::now();
        let mut failures = 0;
        loop {
            let r = recover_partition(
                &self.markers,
                &self.sink,
                &tp.topic,
                tp.partition,
                hint,
                IfNew {
                    offset: initial,
                    writer_id: &self.writer_id,
                    now_rfc3339: &rfc3339_ms(now_ms() as i64),
                },
            )
            .await;
            match r {
                Ok(rec) => {
                    self.metrics
                        .recovery_seconds
                        .with_label_values(&[&self.sink])
                        .observe(started.elapsed().as_secs_f64());
                    return Ok(rec);
                }
                Err(e) if e.is_retryable() && started.elapsed() < Duration::from_secs(45) => {
                    self.metrics
                        .store_errors
                        .with_label_values(&[&self.sink, "transient"])
                        .inc();
                    warn!(sink = %self.sink, %tp, error = %e, "recovery failed; retrying");
                    tokio::time::sleep(backoff(failures)).await;
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
