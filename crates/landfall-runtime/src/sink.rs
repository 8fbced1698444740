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
use landfall_core::shutdown::ShutdownPlan;
use landfall_core::state::{
    initial_offset, Action, LandingResult, Now, SinkState, StateError, StateSettings,
};
use landfall_core::status::{ErrorReport, Observer, SinkPhase, SinkStatus};
use landfall_core::TopicPartition;
use landfall_kafka::{
    Assigned, ConsumerCommand, ConsumerEvent, ConsumerSettings, HighWatermarks, KafkaSinkError,
    StartAt, Tagged,
};
use landfall_store::recovery::{recover_partition, Hint, IfNew, Recovered};
use landfall_store::StoreError;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::board::SinkBoard;
use crate::land::{land_timed, LandSettings, Timings};
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::stores::SinkStores;
use crate::windows::Windows;

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

impl SinkError {
    /// The `class` label of `landfall_sink_failures_total` and of `/status`'s `last_error`.
    pub fn class(&self) -> &'static str {
        match self {
            SinkError::Kafka { .. } => "kafka",
            SinkError::Store { .. } => "store",
            SinkError::Buffer { .. } => "buffer",
            SinkError::State { .. } => "state",
            SinkError::Consumer { .. } => "consumer",
            SinkError::ShutdownTimeout { .. } => "shutdown_timeout",
        }
    }
}

/// Values of the sink's secret options (by key name, as `landfall validate` hides them): never
/// shown in `/status`, whatever error message quotes them.
fn secrets_of(cfg: &SinkConfig) -> Vec<String> {
    [&cfg.kafka.options, &cfg.store.options, &cfg.marker.options]
        .into_iter()
        .flat_map(|o| o.iter())
        .filter(|(k, _)| landfall_core::config::is_secret_key(k))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Everything a sink needs from outside.
pub struct SinkContext {
    pub config: SinkConfig,
    pub stores: SinkStores,
    pub metrics: Metrics,
    pub writer_id: String,
}

/// How long leaving the group may take after a fatal error (a graceful shutdown leaves within its
/// [`ShutdownPlan`] instead): a slow coordinator must not keep the process from exiting (the
/// group drops the member at its session timeout instead).
const CONSUMER_CLOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// The consumer thread waits for the sink to decide where new partitions start for
/// `runtime.recovery_timeout_ms` (validated below librdkafka's `max.poll.interval.ms`) plus this
/// margin: recovery gives up at its deadline, the answer then still reaches the thread.
const ASSIGN_MARGIN: Duration = Duration::from_secs(15);
/// Partitions recovered at once: a listing each without a hint; many more at once only earns
/// throttling (S3 503 SlowDown) from the store.
const RECOVERY_PARALLELISM: usize = 16;
/// The loop's clock tick: age flushes and retries are at most this late; the loop's heartbeat
/// (`/healthz`) and `/status` snapshot are as fresh.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// Records per message from the consumer thread.
const BATCH_RECORDS: usize = 2048;

/// Run CPU-bound work without stalling the other tasks on this worker.
fn cpu<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

pub(crate) fn wall_ms() -> i64 {
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
        prefetch_bytes: landfall_core::budget::kafka_prefetch_bytes(
            ctx.config.runtime.max_buffered_bytes,
        ),
    };
    let kafka_err = |source| SinkError::Kafka {
        sink: name.clone(),
        source: Box::new(source),
    };
    let board = ctx.metrics.board.sink(
        &name,
        &ctx.writer_id,
        ctx.config.runtime.max_buffered_bytes,
        SinkPhase::Starting,
    );
    let secrets = secrets_of(&ctx.config);
    let metrics = ctx.metrics.clone();
    let failed = |e: &SinkError| {
        metrics
            .sink_failures
            .with_label_values(&[&name, e.class()])
            .inc();
        let report = ErrorReport::new(wall_ms(), e.class(), &e.to_string(), &secrets);
        board.update(|s| {
            s.phase = SinkPhase::Failed;
            s.last_error = Some(report);
        });
    };
    {
        let s = settings.clone();
        let preflight = tokio::task::spawn_blocking(move || landfall_kafka::preflight(&s));
        tokio::select! {
            r = preflight => if let Err(e) = r.expect("preflight does not panic").map_err(kafka_err) {
                failed(&e);
                return Err(e);
            },
            // Stopped while still starting: nothing consumed, nothing to land.
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
    let (events_tx, mut events) = mpsc::channel(32);
    let handle = match landfall_kafka::spawn(settings, events_tx).map_err(kafka_err) {
        Ok(h) => h,
        Err(e) => {
            failed(&e);
            return Err(e);
        }
    };
    let plan = ShutdownPlan::new(ctx.config.runtime.shutdown_timeout_ms);
    // When the shutdown began: the group leave must end by then + `plan.leave_until`.
    let shutdown_began = {
        let token = shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            tokio::time::Instant::now()
        })
    };
    let result = drive_observed(
        ctx,
        &mut events,
        handle.commands.clone(),
        handle.held_bytes.clone(),
        handle.high_watermarks.clone(),
        &shutdown,
    )
    .await;
    match &result {
        Err(e) => {
            error!(sink = %name, error = %e, "sink stopped");
            failed(e);
        }
        Ok(()) => board.set_phase(SinkPhase::Stopped),
    }
    // Leave the group: the consumer thread unsubscribes; answer its final revoke at once. Within
    // the shutdown's plan when stopping on a signal, else (a fatal error) within its own bound.
    let _ = handle.commands.send(ConsumerCommand::Shutdown);
    let deadline = if shutdown.is_cancelled() {
        match shutdown_began.await {
            Ok(began) => began + plan.leave_until,
            Err(_) => tokio::time::Instant::now(),
        }
    } else {
        shutdown_began.abort();
        tokio::time::Instant::now() + CONSUMER_CLOSE_TIMEOUT
    };
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
                warn!(sink = %name,
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
    drive_observed(
        ctx,
        events,
        commands,
        consumer_held,
        HighWatermarks::default(),
        shutdown,
    )
    .await
}

/// [`drive_with`], with the end offsets the consumer reports (for lag).
async fn drive_observed(
    ctx: SinkContext,
    events: &mut mpsc::Receiver<ConsumerEvent>,
    commands: std_mpsc::Sender<ConsumerCommand>,
    consumer_held: Arc<AtomicU64>,
    high_watermarks: HighWatermarks,
    shutdown: &CancellationToken,
) -> Result<(), SinkError> {
    let cfg = ctx.config;
    let name = cfg.name.clone();
    let named_topics = match &cfg.topics {
        landfall_core::config::TopicSelection::Names(n) => n.clone(),
        landfall_core::config::TopicSelection::Regex(_) => Vec::new(),
    };
    ctx.metrics
        .init_sink(&name, &named_topics, cfg.runtime.max_buffered_bytes);
    let board = ctx.metrics.board.sink(
        &name,
        &ctx.writer_id,
        cfg.runtime.max_buffered_bytes,
        SinkPhase::Running,
    );
    let seed: u64 = rand::random();
    // One post-commit step for fresh landings and recovery alike, notifications included.
    let mut publisher = Publisher::new(ctx.stores.markers.clone());
    let mut notifier: Option<Arc<dyn crate::publish::Notify>> = None;
    if let Some(n) = &cfg.notify {
        let client_id = format!("landfall-{}-{}-notify", name, ctx.writer_id);
        let n =
            landfall_kafka::Notifier::new(n, &client_id).map_err(|source| SinkError::Kafka {
                sink: name.clone(),
                source: Box::new(source),
            })?;
        let n: Arc<dyn crate::publish::Notify> = Arc::new(n);
        publisher = publisher.with_notify(n.clone());
        notifier = Some(n);
    }
    // `[windows]`: the closer runs beside the loop until it returns.
    let closer_stop = CancellationToken::new();
    let _stop_closer = closer_stop.clone().drop_guard();
    let windows = cfg.windows.enabled.then(|| {
        let w = Arc::new(Windows::new(
            cfg.windows,
            cfg.partitioning.timezone,
            &name,
            &ctx.writer_id,
            ctx.stores.data.clone(),
            ctx.stores.markers.clone(),
            cfg.kafka.clone(),
            notifier,
        ));
        tokio::spawn(w.clone().run_closer(closer_stop.clone()));
        w
    });
    if let Some(w) = &windows {
        publisher = publisher.with_windows(w.clone());
    }
    let mut sink = Sink {
        state: SinkState::new(StateSettings {
            format: BufferFormat::from_config(&cfg),
            policy: FlushPolicy::new(cfg.flush),
            max_records: cfg.flush.max_records,
            // librdkafka's prefetch is set aside from the budget (`run_sink`).
            max_buffered_bytes: landfall_core::budget::buffers_budget(
                cfg.runtime.max_buffered_bytes,
            ),
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
        publisher: publisher.clone(),
        recovery: Recovery {
            markers: ctx.stores.markers.clone(),
            publisher,
            sink: name.clone(),
            writer_id: ctx.writer_id.clone(),
            metrics: ctx.metrics.clone(),
            timeout: Duration::from_millis(cfg.runtime.recovery_timeout_ms),
        },
        start_from: cfg.kafka.start_from,
        revoke_flush_timeout: Duration::from_millis(cfg.runtime.revoke_flush_timeout_ms),
        shutdown_plan: ShutdownPlan::new(cfg.runtime.shutdown_timeout_ms),
        shutdown_deadline: None,
        name,
        stores: ctx.stores,
        metrics: ctx.metrics,
        commands,
        landings: JoinSet::new(),
        in_flight: HashMap::new(),
        recoveries: JoinSet::new(),
        consumer_held,
        started: Instant::now(),
        observer: Observer::default(),
        board,
        high_watermarks,
        writer_id: ctx.writer_id.clone(),
        secrets: secrets_of(&cfg),
        budget: cfg.runtime.max_buffered_bytes,
        windows,
    };
    info!(sink = %sink.name, group = %cfg.kafka.group_id, writer = %ctx.writer_id, "sink started");
    sink.run(events, shutdown).await
}

type LandOutcome = (
    TopicPartition,
    u64,
    Arc<SealedBatch>,
    Instant,
    Timings,
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
    shutdown_plan: ShutdownPlan,
    /// Set when the shutdown began: landing must be done by then (`shutdown_plan.land_until`).
    shutdown_deadline: Option<tokio::time::Instant>,
    commands: std_mpsc::Sender<ConsumerCommand>,
    landings: JoinSet<LandOutcome>,
    in_flight: HashMap<(TopicPartition, u64), AbortHandle>,
    recoveries: JoinSet<RecoverOutcome>,
    /// Bytes of records the consumer thread holds for a full channel.
    consumer_held: Arc<AtomicU64>,
    started: Instant,
    /// Last batch and last error per partition, for `/status`.
    observer: Observer,
    board: SinkBoard,
    high_watermarks: HighWatermarks,
    writer_id: String,
    secrets: Vec<String>,
    budget: u64,
    /// `[windows]`, when enabled.
    windows: Option<Arc<Windows>>,
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
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.board.beat();
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if self.shutdown_deadline.is_none() => {
                    info!(sink = %self.name, land_ms = self.shutdown_plan.land_until.as_millis() as u64,
                        "shutdown: landing what is buffered");
                    self.board.set_phase(SinkPhase::Stopping);
                    let _ = self.commands.send(ConsumerCommand::StopFetching);
                    self.shutdown_deadline =
                        Some(tokio::time::Instant::now() + self.shutdown_plan.land_until);
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
            if let Some(d) = self.shutdown_deadline {
                let unlanded = self.state.unlanded();
                if unlanded == 0 {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= d {
                    // Stop what is still landing: its offsets are not committed, so the next
                    // owner re-reads them. A commit write cut off mid-flight either happened or
                    // not; recovery reads either outcome (the kill -9 case).
                    self.landings.abort_all();
                    self.in_flight.clear();
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
                        "partition stuck: its oldest batch keeps failing to land; retrying, /readyz reports not ready");
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
        for (reason, n) in self.state.paused_by_reason() {
            self.metrics
                .partitions_paused_by_reason
                .with_label_values(&[&self.name, reason])
                .set(n as i64);
        }
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
            let mut timings = Timings::default();
            let r = land_timed(
                &stores,
                &settings,
                &uploads,
                &publisher,
                &batch,
                wall_ms,
                &mut timings,
            )
            .await;
            (tp, epoch, batch, started, timings, r)
        });
        self.in_flight.insert(key, abort);
    }

    async fn on_event(&mut self, ev: ConsumerEvent) -> Result<(), SinkError> {
        match ev {
            ConsumerEvent::Records(records) => {
                landfall_kafka::received(&self.consumer_held, &records);
                self.on_records(records)
            }
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
        self.state
            .set_outside_bytes(self.consumer_held.load(Ordering::Relaxed));
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
        // Also ticked from a revoke's hand-off wait, outside the main loop: alive there too.
        self.board.beat();
        let now = self.now();
        let held = self.consumer_held.load(Ordering::Relaxed);
        let state = &mut self.state;
        let actions = cpu(|| state.tick(now, held)).map_err(|e| self.state_err(e))?;
        self.perform(actions);
        if let Some(w) = &self.windows {
            w.on_tick(self.state.status());
        }
        self.metrics
            .buffered_bytes
            .with_label_values(&[&self.name])
            .set((self.state.buffered_bytes() + held) as i64);
        self.observe(held);
        Ok(())
    }

    /// Refresh what an operator sees: end offsets from the consumer, the lag and freshness
    /// gauges (freshness grows between landings because it is recomputed here every tick), and
    /// the `/status` snapshot.
    fn observe(&mut self, held: u64) {
        let marks: Vec<(TopicPartition, i64)> = {
            let m = self
                .high_watermarks
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            m.iter().map(|(tp, h)| (tp.clone(), *h)).collect()
        };
        self.observer.high_watermarks(marks);
        let now = wall_ms();
        let partitions = self.observer.partitions(&self.state, &self.writer_id, now);
        for p in &partitions {
            let part = p.partition.to_string();
            let labels = [self.name.as_str(), p.topic.as_str(), part.as_str()];
            if let Some(lag) = p.lag {
                self.metrics
                    .consumer_lag
                    .with_label_values(&labels)
                    .set(lag);
            }
            if let Some(f) = p.freshness_seconds {
                self.metrics.freshness.with_label_values(&labels).set(f);
            }
        }
        self.board.publish(SinkStatus {
            sink: self.name.clone(),
            writer_id: self.writer_id.clone(),
            phase: SinkPhase::Running, // the board keeps its own phase
            recovering_partitions: 0,
            buffered_bytes: self.state.buffered_bytes() + held,
            buffer_budget_bytes: self.budget,
            partitions,
            last_error: None,
        });
    }

    fn on_landed(
        &mut self,
        (tp, epoch, batch, started, timings, result): LandOutcome,
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
                        let took = started.elapsed();
                        self.metrics.batch_committed(&self.name, m, took);
                        for (h, t) in [
                            (&self.metrics.upload_seconds, timings.upload),
                            (&self.metrics.commit_seconds, timings.commit),
                        ] {
                            if let Some(t) = t {
                                h.with_label_values(&[&self.name]).observe(t.as_secs_f64());
                            }
                        }
                        self.observer
                            .committed(m, wall_ms(), batch.newest_timestamp_ms);
                        // The one line per landed batch (docs/operations.md#logs).
                        info!(
                            sink = %self.name,
                            topic = %m.topic,
                            partition = m.partition,
                            first_offset = m.offsets.first,
                            last_offset = m.offsets.last,
                            rows = m.rows,
                            dead_lettered = m.dead_lettered,
                            bytes = m.files.iter().map(|f| f.size_bytes).sum::<u64>(),
                            files = m.files.len(),
                            reason = %m.flush_reason,
                            duration_ms = took.as_millis() as u64,
                            marker = %m.marker_url,
                            "batch landed"
                        );
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
                if retryable {
                    self.metrics
                        .retries
                        .with_label_values(&[&self.name, "landing"])
                        .inc();
                }
                let report = ErrorReport::new(
                    wall_ms(),
                    class,
                    &format!("{e} — {}", e.cause()),
                    &self.secrets,
                );
                self.observer.failed(&tp, report);
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
        let n = partitions.len();
        self.board.update(|s| s.recovering_partitions = n);
        let all = futures::stream::iter(recoveries)
            .buffered(RECOVERY_PARALLELISM)
            .collect::<Vec<_>>();
        tokio::pin!(all);
        // Recovery can take up to runtime.recovery_timeout_ms; the loop is alive meanwhile.
        let mut beat = tokio::time::interval(TICK);
        let results = loop {
            tokio::select! {
                r = &mut all => break r,
                _ = beat.tick() => self.board.beat(),
            }
        };
        self.board.update(|s| s.recovering_partitions = 0);
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
        // Leave a tenth of the consumer's wait for the hand-off itself; during a shutdown, no
        // later than its landing deadline.
        let mut deadline = tokio::time::Instant::now() + self.revoke_flush_timeout * 9 / 10;
        if let Some(d) = self.shutdown_deadline {
            deadline = deadline.min(d);
        }
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
        for tp in &partitions {
            self.metrics
                .forget_partition(&self.name, &tp.topic, tp.partition);
        }
        self.observer.retain(&self.state);
        self.observe(self.consumer_held.load(Ordering::Relaxed));
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
        // Whatever this worker knew of the partition's windows may be stale now.
        self.publisher.assigned(&tp).await;
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
                    self.metrics
                        .retries
                        .with_label_values(&[&self.sink, "recovery"])
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
