//! The sink's state machine (arrows 2 to 6 of the data flow, decisions only): every assigned
//! partition's offset ledger, buffer, epoch, landing queue, retries and pause reasons, and the
//! memory budget over all of them.
//!
//! Events go in — records arrived, time passed, a landing finished (committed, lost the race,
//! failed transiently or with an unknown outcome, failed for good), partitions assigned, revoked or
//! recovered, shutdown — and [`Action`]s come out: land this batch, abort that landing, pause,
//! resume, seek, recover from the store, commit this offset hint. The async sink (in
//! `landfall-runtime`) performs the actions and feeds the outcomes back; it makes no decision of
//! its own about a partition. Time comes in as [`Now`]; randomness (retry jitter, attempt ids)
//! from a seed, so every run of this machine can be replayed in a test.
//!
//! Rules it keeps (see `ledger.rs` for the offset rules):
//! - a partition lands one batch at a time, oldest first; younger batches queue behind it;
//! - a failed landing is retried with the same attempt id after a jittered backoff, the partition
//!   paused meanwhile; a lost race drops everything local, bumps the epoch (records fetched
//!   before are stale) and asks for recovery, then seeks to where the store says it continues;
//! - a partition is paused for a reason (memory, retry) and resumed when no reason is left; a
//!   newly assigned partition is explicitly resumed, so no pause outlives an assignment;
//! - offsets are never skipped silently: when Kafka no longer holds a partition's next offset
//!   (retention, [`SinkState::out_of_range`] or found at assignment), the partition continues
//!   from the log start and the skipped offsets ride in the next batch as an explained gap;
//!   when the log ends before where Landfall stands (topic recreated, log truncated), that
//!   partition stops (paused, reported stuck) and nothing is skipped or dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::budget::{self, Step};
use crate::buffer::{BufferError, BufferFormat, PartitionBuffer, SealedBatch};
use crate::config::StartFrom;
use crate::flush::{FlushPolicy, FlushReason};
use crate::ledger::{Accept, LedgerError, OffsetLedger};
use crate::manifest::{Gap, GapReason, Landed, OffsetRange};
use crate::record::{KafkaRecord, TopicPartition};

/// The two clocks the machine reads, passed in by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic milliseconds (buffer age, retry deadlines): never jumps with the wall clock.
    pub mono_ms: u64,
    /// Wall-clock microseconds since the epoch (what the records' metadata columns record).
    pub wall_us: i64,
}

/// Where a partition that has never been committed starts: the genesis offset every later
/// worker agrees on. `watermarks` are the topic's (low, high) when it was assigned. `None` when it
/// cannot be decided: `latest` without the high watermark would otherwise become offset 0 and
/// land the whole history the user asked to skip. `earliest` without watermarks starts at 0;
/// if retention removed the start, the consumer reports it as out of range.
pub fn initial_offset(start_from: StartFrom, watermarks: Option<(i64, i64)>) -> Option<i64> {
    match (start_from, watermarks) {
        (StartFrom::Earliest, Some((low, _))) => Some(low.max(0)),
        (StartFrom::Earliest, None) => Some(0),
        (StartFrom::Latest, Some((_, high))) => Some(high.max(0)),
        (StartFrom::Latest, None) => None,
    }
}

/// A partition whose log ends before where Landfall stands: Kafka holds `low..high`, but
/// Landfall has read (or the store says it continues) up to `position`. Its `Display` is the
/// operator's error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    pub tp: TopicPartition,
    /// The first offset no commit covers (what the store says).
    pub durable_next: i64,
    /// The next offset Landfall expected from Kafka.
    pub position: i64,
    pub low: i64,
    pub high: i64,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{tp}: Kafka holds offsets {low}..{high} (low..high watermark) but Landfall's position \
             is {position} (landed up to {durable_next}): the log is shorter than what Landfall \
             read, so the topic was deleted and recreated or its log truncated (e.g. an unclean \
             leader election). This partition is stopped; nothing below {position} is taken as a \
             duplicate and nothing is skipped; the other partitions go on. To start it over, \
             follow \"A partition out of range above the log end\" in docs/operations.md",
            tp = self.tp,
            low = self.low,
            high = self.high,
            position = self.position,
            durable_next = self.durable_next,
        )
    }
}

/// What the caller must do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Land this batch (the oldest sealed one of its partition) and report the outcome with
    /// [`SinkState::landed`], quoting `epoch`.
    Land {
        tp: TopicPartition,
        epoch: u64,
        batch: Arc<SealedBatch>,
    },
    /// Stop the landing of `tp` started under `epoch`; its partition is gone.
    Abort {
        tp: TopicPartition,
        epoch: u64,
    },
    Pause(TopicPartition),
    Resume(TopicPartition),
    /// Fetch `tp` from `offset`; records fetched before carry an older epoch and are dropped.
    Seek {
        tp: TopicPartition,
        offset: i64,
        epoch: u64,
    },
    /// Another writer committed first: find where `tp` continues in the store (the winner's
    /// commit ends before `hint_next`) and report it with [`SinkState::recovered`].
    Recover {
        tp: TopicPartition,
        epoch: u64,
        hint_next: i64,
    },
    /// A batch committed: tell the group (a hint for lag tooling and faster recovery).
    CommitHint {
        tp: TopicPartition,
        offset: i64,
    },
    /// `tp`'s oldest batch has failed to land for `stuck_after_ms`: tell the operator (error
    /// log, metric, health probe). Retries go on. Said once until it lands or is let go.
    Stuck {
        tp: TopicPartition,
        failing_for_ms: u64,
        failures: u32,
    },
    /// A partition reported stuck landed again (or is no longer ours).
    Unstuck(TopicPartition),
    /// Kafka no longer holds `gap` of `tp` (retention): the partition continues after it, and
    /// the next batch's manifest records it. Said once per gap (log it).
    Skipped {
        tp: TopicPartition,
        gap: Gap,
    },
    /// `tp`'s log ends before where Landfall stands: the partition is stopped (paused,
    /// counted in [`SinkState::stuck`]) until it is revoked. Said once (log it as an error).
    Halted(OutOfRange),
}

/// How a landing ended, as the machine needs to know it.
#[derive(Debug, Clone)]
pub enum LandingResult {
    Landed(Landed),
    /// Failed, and retrying may help: before anything was written, or with an unknown outcome
    /// (the retry, with the same attempt id, recognises its own commit record).
    Retryable,
    /// Failed, and retrying cannot help (permission denied, bad request).
    Permanent,
}

/// Why a partition is paused. It is resumed when no reason is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PauseReasons {
    /// The memory budget is reached and this partition is still landing.
    pub memory: bool,
    /// Its oldest batch failed to land and waits to be retried.
    pub retry: bool,
    /// Its log ends before where Landfall stands: stopped until revoked (see [`OutOfRange`]).
    pub out_of_range: bool,
}

impl PauseReasons {
    pub fn any(self) -> bool {
        self.memory || self.retry || self.out_of_range
    }

    /// What is left when a commit (or a recovery) clears the transient reasons: a stopped
    /// partition stays stopped.
    fn after_commit(self) -> PauseReasons {
        PauseReasons {
            out_of_range: self.out_of_range,
            ..PauseReasons::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Consuming and landing.
    Running,
    /// Lost a commit race: waiting for the store to say where it continues; records are stale.
    Recovering,
    /// Being revoked: landing what it holds before the hand-off; retries are not delayed.
    Revoking,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Buffer(#[from] Box<BufferError>),
    #[error("{tp}: offset ledger: {source}")]
    Ledger {
        tp: TopicPartition,
        #[source]
        source: LedgerError,
    },
    #[error("{tp}: landing the batch at offsets {first}..={last} failed and cannot be retried")]
    Permanent {
        tp: TopicPartition,
        first: i64,
        last: i64,
    },
}

/// Where the oldest sealed batch of a partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Waiting,
    Landing,
    RetryAt(u64),
}

#[derive(Debug, Clone)]
struct Queued {
    batch: Arc<SealedBatch>,
    front: Front,
}

struct Partition {
    /// The life of the partition's landings: an outcome quoting another epoch is of an earlier
    /// life (before a revoke or a lost race) and ignored.
    epoch: u64,
    /// What records must be tagged with: the epoch of the last start or seek. Equal to `epoch`
    /// except after a seek that keeps local state (a retention skip), which must not orphan the
    /// landing in flight.
    fetch_epoch: u64,
    phase: Phase,
    ledger: OffsetLedger<Queued>,
    buffer: PartitionBuffer,
    failures: u32,
    paused: PauseReasons,
    /// When (monotonic ms) the oldest batch first failed to land, while it keeps failing.
    failing_since: Option<u64>,
    reported_stuck: bool,
    /// Its log ends before where Landfall stands: stopped, reported once.
    halted: Option<OutOfRange>,
}

impl Partition {
    /// The oldest batch landed, or was given up with the partition's local state: no longer
    /// failing. Returns whether it had been reported stuck.
    fn no_longer_failing(&mut self) -> bool {
        self.failures = 0;
        self.failing_since = None;
        std::mem::take(&mut self.reported_stuck)
    }

    /// What to do with a partition whose next offset Kafka may not hold (`low..high` it does).
    /// Applies a skip or a stop to the partition; the caller emits the actions.
    fn decide_out_of_range(&mut self, tp: &TopicPartition, low: i64, high: i64) -> Decision {
        let position = self.ledger.accepted_next();
        if position > high {
            let o = OutOfRange {
                tp: tp.clone(),
                durable_next: self.ledger.durable_next(),
                position,
                low,
                high,
            };
            self.paused.out_of_range = true;
            self.halted = Some(o.clone());
            return Decision::Halt(o);
        }
        match self.ledger.skip_to(low, GapReason::Retention) {
            Some(gap) => Decision::Skip(gap),
            None => Decision::InRange,
        }
    }

    fn landing(&self) -> bool {
        self.ledger
            .landing()
            .is_some_and(|q| q.payload.front == Front::Landing)
    }

    fn retrying(&self) -> bool {
        self.ledger
            .landing()
            .is_some_and(|q| matches!(q.payload.front, Front::RetryAt(_)))
    }

    fn sealed_bytes(&self) -> u64 {
        self.ledger
            .sealed()
            .map(|s| s.payload.batch.memory_bytes())
            .sum()
    }

    /// Has something not yet committed (records buffered or batches sealed).
    fn unlanded(&self) -> bool {
        !self.buffer.is_empty() || self.ledger.sealed_count() > 0
    }
}

enum Decision {
    Skip(Gap),
    Halt(OutOfRange),
    InRange,
}

/// A partition taken on by [`SinkState::assign_within`].
#[derive(Debug, Clone)]
pub struct Assignment {
    /// What its records must be tagged with.
    pub epoch: u64,
    /// Where the consumer starts it: the store's position, or the log start after a gap.
    pub start: i64,
    pub actions: Vec<Action>,
}

/// What a partition looks like from outside (metrics, `/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    pub tp: TopicPartition,
    pub phase: Phase,
    /// The first offset no commit covers: where a new owner would continue.
    pub durable_next: i64,
    pub buffered_records: u64,
    pub sealed_batches: usize,
    pub paused: PauseReasons,
    /// Consecutive failed landings of the oldest batch.
    pub failures: u32,
    /// Reported stuck: the oldest batch has failed to land for `stuck_after_ms`.
    pub stuck: bool,
    /// Stopped because its log ends before where Landfall stands.
    pub out_of_range: Option<OutOfRange>,
}

/// Records counted by topic, for the consumed/duplicate metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// (topic, records taken into a buffer, duplicates dropped)
    pub by_topic: Vec<(Arc<str>, u64, u64)>,
    /// Records dropped because they were fetched before a seek or for an unowned partition.
    pub stale: u64,
}

impl Tally {
    fn count(&mut self, topic: &Arc<str>, taken: u64, duplicate: u64) {
        match self.by_topic.iter_mut().find(|(t, _, _)| t == topic) {
            Some(e) => {
                e.1 += taken;
                e.2 += duplicate;
            }
            None => self.by_topic.push((topic.clone(), taken, duplicate)),
        }
    }
}

/// Retry backoff: 200 ms doubling to 30 s, times a jitter in [0.5, 1.5). While a partition is
/// being handed off or the sink is stopping, at most 1 s: the deadline is what bounds it then.
const BACKOFF_BASE_MS: u64 = 200;
const BACKOFF_MAX_MS: u64 = 30_000;
const BACKOFF_URGENT_MAX_MS: u64 = 1_000;

/// The settings the machine runs with.
#[derive(Debug, Clone)]
pub struct StateSettings {
    pub format: BufferFormat,
    pub policy: FlushPolicy,
    pub max_records: u64,
    pub max_buffered_bytes: u64,
    /// How long the oldest batch may keep failing before the partition is reported stuck.
    pub stuck_after_ms: u64,
    /// Makes attempt ids unique to this process (with a counter) and seeds the retry jitter.
    pub seed: u64,
}

pub struct SinkState {
    settings: StateSettings,
    parts: HashMap<TopicPartition, Partition>,
    epochs: u64,
    attempts: u64,
    rng: u64,
    stopping: bool,
    /// Memory held for this sink outside the machine, as last reported by [`Self::tick`].
    outside_bytes: u64,
}

impl SinkState {
    pub fn new(settings: StateSettings) -> Self {
        SinkState {
            rng: settings.seed | 1,
            settings,
            parts: HashMap::new(),
            epochs: 0,
            attempts: 0,
            stopping: false,
            outside_bytes: 0,
        }
    }

    fn next_epoch(&mut self) -> u64 {
        self.epochs += 1;
        self.epochs
    }

    fn next_attempt(&mut self) -> String {
        self.attempts += 1;
        format!("{:08x}{:04x}", self.settings.seed as u32, self.attempts)
    }

    /// xorshift64*: enough for jitter, and replayable from the seed.
    fn jitter(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        0.5 + (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn backoff_ms(&mut self, failures: u32, urgent: bool) -> u64 {
        let base = BACKOFF_BASE_MS
            .saturating_mul(1 << failures.min(8))
            .min(BACKOFF_MAX_MS);
        let ms = (base as f64 * self.jitter()) as u64;
        if urgent {
            ms.min(BACKOFF_URGENT_MAX_MS)
        } else {
            ms
        }
    }

    // ---- assignment --------------------------------------------------------------------------

    /// `tp` is ours from `next` on (the store said so). Returns the epoch its records must carry.
    /// The partition is resumed explicitly: whatever paused it in an earlier assignment is over.
    pub fn assign(&mut self, tp: TopicPartition, next: i64) -> (u64, Vec<Action>) {
        let a = self.assign_within(tp, next, None);
        (a.epoch, a.actions)
    }

    /// [`Self::assign`], knowing the partition's (low, high) watermarks: a `next` below the log
    /// start (the sink was down longer than retention) starts at the log start, the skipped
    /// offsets recorded as a gap; a `next` beyond the log end stops the partition (see
    /// [`OutOfRange`]) — it starts paused at `next`, never lower.
    pub fn assign_within(
        &mut self,
        tp: TopicPartition,
        next: i64,
        watermarks: Option<(i64, i64)>,
    ) -> Assignment {
        let mut out = self.remove(std::slice::from_ref(&tp));
        let epoch = self.next_epoch();
        let mut p = Partition {
            epoch,
            fetch_epoch: epoch,
            phase: Phase::Running,
            ledger: OffsetLedger::new(next),
            buffer: PartitionBuffer::new(tp.clone()),
            failures: 0,
            paused: PauseReasons::default(),
            failing_since: None,
            reported_stuck: false,
            halted: None,
        };
        out.push(Action::Resume(tp.clone()));
        if let Some((low, high)) = watermarks {
            match p.decide_out_of_range(&tp, low, high) {
                Decision::Skip(gap) => out.push(Action::Skipped {
                    tp: tp.clone(),
                    gap,
                }),
                Decision::Halt(o) => {
                    out.push(Action::Pause(tp.clone()));
                    out.push(Action::Halted(o));
                }
                Decision::InRange => {}
            }
        }
        let start = p.ledger.accepted_next();
        self.parts.insert(tp, p);
        Assignment {
            epoch,
            start,
            actions: out,
        }
    }

    /// Kafka does not hold the offset `tp` was to be fetched from; it holds `low..high` now
    /// (the consumer stopped fetching it). Decided from what the machine itself expects next,
    /// not from the consumer's position, which may be of a fetch before a seek:
    /// - below `low` (retention removed offsets before they were landed): skip to `low`,
    ///   recording the gap for the next batch, and seek there under a new fetch epoch;
    /// - above `high` (the log is shorter than what was read): stop the partition;
    /// - in range (the report was about an earlier position): seek again where it stands,
    ///   which restarts the consumer's fetch.
    ///
    /// A partition recovering from a lost race, being handed off or already stopped is left
    /// alone: its recovery seeks anyway, its next owner decides again, it is stopped.
    pub fn out_of_range(&mut self, tp: &TopicPartition, low: i64, high: i64) -> Vec<Action> {
        let mut out = Vec::new();
        let fetch_epoch = self.epochs + 1;
        let Some(p) = self.parts.get_mut(tp) else {
            return out;
        };
        if p.phase != Phase::Running || p.halted.is_some() {
            return out;
        }
        let was_paused = p.paused.any();
        let decision = p.decide_out_of_range(tp, low, high);
        if let Decision::Halt(o) = decision {
            if !was_paused {
                out.push(Action::Pause(tp.clone()));
            }
            out.push(Action::Halted(o));
            return out;
        }
        p.fetch_epoch = fetch_epoch;
        let offset = p.ledger.accepted_next();
        self.epochs = fetch_epoch;
        if let Decision::Skip(gap) = decision {
            out.push(Action::Skipped {
                tp: tp.clone(),
                gap,
            });
        }
        out.push(Action::Seek {
            tp: tp.clone(),
            offset,
            epoch: fetch_epoch,
        });
        out
    }

    /// Begin handing `tps` off: land what they hold, retrying without delay. When
    /// [`Self::pending`] is false (or the deadline passed), call [`Self::remove`]. A lost
    /// assignment (the group gave them away already) is removed at once.
    pub fn revoke(
        &mut self,
        tps: &[TopicPartition],
        lost: bool,
        now: Now,
    ) -> Result<Vec<Action>, StateError> {
        if lost {
            return Ok(self.remove(tps));
        }
        let mut out = Vec::new();
        for tp in tps {
            let Some(p) = self.parts.get_mut(tp) else {
                continue;
            };
            if p.phase == Phase::Recovering {
                // Nothing of it is worth landing: the store has a newer truth.
                continue;
            }
            p.phase = Phase::Revoking;
            self.seal(tp, FlushReason::Revoke, now)?;
            self.retry_now(tp, now);
            self.pump(tp, now, &mut out);
        }
        Ok(out)
    }

    /// Whether any of `tps` still holds something not committed.
    pub fn pending(&self, tps: &[TopicPartition]) -> bool {
        tps.iter().any(|tp| {
            self.parts
                .get(tp)
                .is_some_and(|p| p.phase != Phase::Recovering && p.unlanded())
        })
    }

    /// Forget `tps`: what they hold is dropped (the next owner re-reads it from the last commit).
    pub fn remove(&mut self, tps: &[TopicPartition]) -> Vec<Action> {
        let mut out = Vec::new();
        for tp in tps {
            if let Some(p) = self.parts.remove(tp) {
                if p.reported_stuck {
                    out.push(Action::Unstuck(tp.clone()));
                }
                if p.landing() {
                    out.push(Action::Abort {
                        tp: tp.clone(),
                        epoch: p.epoch,
                    });
                }
            }
        }
        out
    }

    /// The store says where `tp` continues after a lost race.
    pub fn recovered(&mut self, tp: &TopicPartition, epoch: u64, next: i64) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(p) = self.parts.get_mut(tp) else {
            return out;
        };
        if p.epoch != epoch || p.phase != Phase::Recovering {
            return out;
        }
        p.ledger.reset(next);
        p.phase = Phase::Running;
        p.fetch_epoch = epoch;
        out.push(Action::Seek {
            tp: tp.clone(),
            offset: next,
            epoch,
        });
        // A stop for a log shorter than where it stood is decided again from the new position.
        p.halted = None;
        if p.paused.any() {
            p.paused = PauseReasons::default();
            out.push(Action::Resume(tp.clone()));
        }
        out
    }

    // ---- records and time --------------------------------------------------------------------

    /// Records from the consumer, each with the epoch its partition had when it was fetched.
    pub fn records(
        &mut self,
        records: impl IntoIterator<Item = (KafkaRecord, u64)>,
        now: Now,
    ) -> Result<(Vec<Action>, Tally), StateError> {
        let mut out = Vec::new();
        let mut tally = Tally::default();
        // Partitions in the order they first appear (flushes are decided in that order), and
        // the set of them, so a delivery spanning 1,000 partitions costs no quadratic scan.
        let mut touched: Vec<TopicPartition> = Vec::new();
        let mut seen: HashSet<TopicPartition> = HashSet::new();
        let mut full: HashSet<TopicPartition> = HashSet::new();
        let max_records = self.settings.max_records;
        for (rec, epoch) in records {
            let tp = TopicPartition::new(rec.topic.clone(), rec.partition);
            let Some(p) = self.parts.get_mut(&tp) else {
                tally.stale += 1;
                continue;
            };
            if p.fetch_epoch != epoch || p.phase != Phase::Running || p.halted.is_some() {
                tally.stale += 1;
                continue;
            }
            if p.ledger.accept(rec.offset) == Accept::Duplicate {
                tally.count(&tp.topic, 0, 1);
                continue;
            }
            tally.count(&tp.topic, 1, 0);
            p.buffer.push(rec, now.mono_ms);
            if p.buffer.records() >= max_records {
                // Checked per record, so a batch holds exactly `max_records`.
                self.seal(&tp, FlushReason::Records, now)?;
                self.pump(&tp, now, &mut out);
            } else if p.buffer.chunk_full(&self.settings.format) && !full.contains(&tp) {
                full.insert(tp.clone());
            }
            // Records come in runs of one partition: the last one is the cheap check.
            if touched.last() != Some(&tp) && seen.insert(tp.clone()) {
                touched.push(tp);
            }
        }
        // Full chunks are encoded once the delivery is sorted, all partitions at once.
        self.encode(&full, now)?;
        for tp in &touched {
            self.flush_if_due(tp, now, &mut out)?;
        }
        self.enforce_budget(now, &mut out)?;
        Ok((out, tally))
    }

    /// Decode and Parquet-encode the pending records of `tps`, in parallel across partitions
    /// (each partition's buffer is its own; the encode pool has one thread per core, which also
    /// bounds how many decoded chunks are in memory at once). The sink's loop is otherwise
    /// single-threaded, so without this one core encodes while the other idles.
    fn encode(&mut self, tps: &HashSet<TopicPartition>, now: Now) -> Result<(), StateError> {
        if tps.is_empty() {
            return Ok(());
        }
        let fmt = &self.settings.format;
        let mut buffers: Vec<&mut PartitionBuffer> = self
            .parts
            .iter_mut()
            .filter(|(tp, _)| tps.contains(*tp))
            .map(|(_, p)| &mut p.buffer)
            .collect();
        if let [one] = buffers.as_mut_slice() {
            return one
                .encode_pending(fmt, now.wall_us)
                .map_err(|e| Box::new(e).into());
        }
        buffers
            .par_iter_mut()
            .map(|b| b.encode_pending(fmt, now.wall_us))
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
            .map_err(|e| Box::new(e).into())
    }

    /// Memory held for this sink outside the machine (records fetched, not yet delivered), as
    /// of now; [`Self::tick`] sets it too.
    pub fn set_outside_bytes(&mut self, bytes: u64) {
        self.outside_bytes = bytes;
    }

    /// Time passed: age flushes, retries that are due, the memory budget. `outside_bytes` is
    /// memory held for this sink outside the machine (records the consumer holds back).
    pub fn tick(&mut self, now: Now, outside_bytes: u64) -> Result<Vec<Action>, StateError> {
        self.outside_bytes = outside_bytes;
        let mut out = Vec::new();
        let mut tps: Vec<TopicPartition> = self.parts.keys().cloned().collect();
        tps.sort();
        let stuck_after = self.settings.stuck_after_ms;
        self.seal_due(&tps, now, &mut out)?;
        for tp in &tps {
            self.pump(tp, now, &mut out);
            self.flush_if_due(tp, now, &mut out)?;
            let p = self.parts.get_mut(tp).expect("listed above");
            if let Some(since) = p.failing_since {
                let failing_for_ms = now.mono_ms.saturating_sub(since);
                if failing_for_ms >= stuck_after && !p.reported_stuck {
                    p.reported_stuck = true;
                    out.push(Action::Stuck {
                        tp: tp.clone(),
                        failing_for_ms,
                        failures: p.failures,
                    });
                }
            }
        }
        self.enforce_budget(now, &mut out)?;
        Ok(out)
    }

    /// Stop taking new work: seal everything buffered now (reason `shutdown`), retry without
    /// delay. Done when [`Self::unlanded`] is 0.
    pub fn shutdown(&mut self, now: Now) -> Result<Vec<Action>, StateError> {
        self.stopping = true;
        let mut out = Vec::new();
        let mut tps: Vec<TopicPartition> = self.parts.keys().cloned().collect();
        tps.sort();
        self.seal_due(&tps, now, &mut out)?;
        for tp in &tps {
            self.flush_if_due(tp, now, &mut out)?;
            self.retry_now(tp, now);
            self.pump(tp, now, &mut out);
        }
        Ok(out)
    }

    /// Partitions holding something not yet committed.
    pub fn unlanded(&self) -> usize {
        self.parts
            .values()
            .filter(|p| p.phase != Phase::Recovering && p.unlanded())
            .count()
    }

    // ---- landing outcomes --------------------------------------------------------------------

    /// The landing of `tp`'s oldest batch, started under `epoch`, ended with `result`.
    pub fn landed(
        &mut self,
        tp: &TopicPartition,
        epoch: u64,
        result: LandingResult,
        now: Now,
    ) -> Result<Vec<Action>, StateError> {
        let mut out = Vec::new();
        let stopping = self.stopping;
        let Some(p) = self.parts.get_mut(tp) else {
            return Ok(out);
        };
        if p.epoch != epoch || !p.landing() {
            return Ok(out); // a landing of an earlier life of this partition
        }
        let range = p.ledger.landing().expect("landing").range;
        match result {
            LandingResult::Landed(Landed::Committed(m)) => {
                p.ledger
                    .committed(range)
                    .map_err(|source| StateError::Ledger {
                        tp: tp.clone(),
                        source,
                    })?;
                if p.no_longer_failing() {
                    out.push(Action::Unstuck(tp.clone()));
                }
                out.push(Action::CommitHint {
                    tp: tp.clone(),
                    offset: m.offsets.next,
                });
                // A commit freed memory and proved the store works: both reasons are gone (the
                // budget pauses it again if memory is still short).
                if p.paused.any() {
                    p.paused = p.paused.after_commit();
                    if !p.paused.any() {
                        out.push(Action::Resume(tp.clone()));
                    }
                }
                self.pump(tp, now, &mut out);
                self.flush_if_due(tp, now, &mut out)?;
            }
            LandingResult::Landed(Landed::Lost(theirs)) => {
                let epoch = self.next_epoch();
                let p = self.parts.get_mut(tp).expect("present");
                p.epoch = epoch;
                p.fetch_epoch = epoch;
                p.phase = Phase::Recovering;
                p.buffer.clear();
                p.ledger.reset(theirs.offsets.next);
                if p.no_longer_failing() {
                    out.push(Action::Unstuck(tp.clone()));
                }
                out.push(Action::Recover {
                    tp: tp.clone(),
                    epoch,
                    hint_next: theirs.offsets.next,
                });
            }
            LandingResult::Retryable => {
                p.failures += 1;
                p.failing_since.get_or_insert(now.mono_ms);
                let failures = p.failures;
                let urgent = stopping || p.phase == Phase::Revoking;
                let wait = self.backoff_ms(failures, urgent);
                let p = self.parts.get_mut(tp).expect("present");
                p.ledger.landing_mut().expect("landing").payload.front =
                    Front::RetryAt(now.mono_ms + wait);
                if !p.paused.retry {
                    let was = p.paused.any();
                    p.paused.retry = true;
                    if !was {
                        out.push(Action::Pause(tp.clone()));
                    }
                }
            }
            LandingResult::Permanent => {
                return Err(StateError::Permanent {
                    tp: tp.clone(),
                    first: range.first,
                    last: range.last,
                })
            }
        }
        Ok(out)
    }

    /// When the oldest batch of `tp` is retried next (monotonic ms), if it waits for a retry.
    pub fn retry_at(&self, tp: &TopicPartition) -> Option<u64> {
        match self.parts.get(tp)?.ledger.landing()?.payload.front {
            Front::RetryAt(at) => Some(at),
            _ => None,
        }
    }

    // ---- what it looks like ------------------------------------------------------------------

    pub fn assigned(&self) -> usize {
        self.parts.len()
    }

    /// Partitions reported stuck: landings failing for `stuck_after_ms`, or stopped because
    /// their log ends before where Landfall stands.
    pub fn stuck(&self) -> usize {
        self.parts
            .values()
            .filter(|p| p.reported_stuck || p.halted.is_some())
            .count()
    }

    pub fn paused(&self) -> usize {
        self.parts.values().filter(|p| p.paused.any()).count()
    }

    /// Paused partitions by reason (`memory`, `retry`, `out_of_range`, the metric's labels).
    /// One paused for several reasons counts in each.
    pub fn paused_by_reason(&self) -> [(&'static str, usize); 3] {
        let count =
            |f: fn(&PauseReasons) -> bool| self.parts.values().filter(|p| f(&p.paused)).count();
        [
            ("memory", count(|r| r.memory)),
            ("retry", count(|r| r.retry)),
            ("out_of_range", count(|r| r.out_of_range)),
        ]
    }

    /// Bytes held: buffers plus sealed batches (landing or queued).
    pub fn buffered_bytes(&self) -> u64 {
        self.parts
            .values()
            .map(|p| p.buffer.memory_bytes() + p.sealed_bytes())
            .sum()
    }

    pub fn status(&self) -> Vec<PartitionStatus> {
        let mut v: Vec<PartitionStatus> = self
            .parts
            .iter()
            .map(|(tp, p)| PartitionStatus {
                tp: tp.clone(),
                phase: p.phase,
                durable_next: p.ledger.durable_next(),
                buffered_records: p.buffer.records(),
                sealed_batches: p.ledger.sealed_count(),
                paused: p.paused,
                failures: p.failures,
                stuck: p.reported_stuck,
                out_of_range: p.halted.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.tp.cmp(&b.tp));
        v
    }

    /// The epoch `tp`'s landings run under.
    pub fn epoch(&self, tp: &TopicPartition) -> Option<u64> {
        self.parts.get(tp).map(|p| p.epoch)
    }

    /// The epoch `tp`'s records must carry.
    pub fn fetch_epoch(&self, tp: &TopicPartition) -> Option<u64> {
        self.parts.get(tp).map(|p| p.fetch_epoch)
    }

    // ---- internals ---------------------------------------------------------------------------

    fn flush_if_due(
        &mut self,
        tp: &TopicPartition,
        now: Now,
        out: &mut Vec<Action>,
    ) -> Result<(), StateError> {
        if let Some(reason) = self.due(tp, now) {
            self.seal(tp, reason, now)?;
            self.pump(tp, now, out);
        }
        Ok(())
    }

    /// Why `tp`'s buffer should be sealed now, if it should.
    fn due(&self, tp: &TopicPartition, now: Now) -> Option<FlushReason> {
        let p = self.parts.get(tp)?;
        if p.buffer.is_empty() || p.phase == Phase::Recovering {
            return None;
        }
        let forced = match p.phase {
            Phase::Revoking => Some(FlushReason::Revoke),
            _ if self.stopping => Some(FlushReason::Shutdown),
            _ => None,
        };
        forced.or_else(|| {
            self.settings
                .policy
                .due(&p.buffer.stats(&self.settings.format), now.mono_ms)
        })
    }

    /// Seal those of `tps` that are due, in parallel across partitions (see [`Self::seal_all`]).
    fn seal_due(
        &mut self,
        tps: &[TopicPartition],
        now: Now,
        out: &mut Vec<Action>,
    ) -> Result<(), StateError> {
        let due: Vec<(TopicPartition, FlushReason)> = tps
            .iter()
            .filter_map(|tp| self.due(tp, now).map(|r| (tp.clone(), r)))
            .collect();
        self.seal_all(&due, now)?;
        for (tp, _) in &due {
            self.pump(tp, now, out);
        }
        Ok(())
    }

    /// Seal `tp`'s buffer into a batch at the back of its queue.
    fn seal(
        &mut self,
        tp: &TopicPartition,
        reason: FlushReason,
        now: Now,
    ) -> Result<(), StateError> {
        if self.parts.get(tp).is_none_or(|p| p.buffer.is_empty()) {
            return Ok(());
        }
        let attempt = self.next_attempt();
        let fmt = &self.settings.format;
        let p = self.parts.get_mut(tp).expect("checked above");
        let (ledger, buffer) = (&mut p.ledger, &mut p.buffer);
        ledger
            .seal_with(|range: OffsetRange, gaps: &[Gap]| {
                let mut batch = buffer
                    .seal(fmt, reason, range, &attempt, now.wall_us)
                    .map_err(Box::new)?
                    .expect("the buffer holds records");
                batch.gaps = gaps.to_vec();
                Ok::<_, StateError>(Queued {
                    batch: Arc::new(batch),
                    front: Front::Waiting,
                })
            })
            .map(|_| ())
    }

    /// [`Self::seal`] for many partitions at once: each buffer is encoded and its files finished
    /// in parallel (a partition's Parquet writers are freed as soon as its files are done, so at
    /// most one partition per core holds a writer mid-finish), then the batches join their
    /// ledgers in the order given.
    fn seal_all(
        &mut self,
        due: &[(TopicPartition, FlushReason)],
        now: Now,
    ) -> Result<(), StateError> {
        if due.len() <= 1 {
            for (tp, reason) in due {
                self.seal(tp, *reason, now)?;
            }
            return Ok(());
        }
        let mut work: HashMap<TopicPartition, (FlushReason, String)> = HashMap::new();
        for (tp, reason) in due {
            let attempt = self.next_attempt();
            work.insert(tp.clone(), (*reason, attempt));
        }
        let fmt = &self.settings.format;
        let jobs: Vec<(&TopicPartition, &mut Partition)> = self
            .parts
            .iter_mut()
            .filter(|(tp, p)| work.contains_key(*tp) && !p.buffer.is_empty())
            .collect();
        let sealed: Vec<(TopicPartition, SealedBatch)> = jobs
            .into_par_iter()
            .filter_map(|(tp, p)| {
                let (reason, attempt) = &work[tp];
                let range = p.ledger.next_range()?;
                match p.buffer.seal(fmt, *reason, range, attempt, now.wall_us) {
                    Ok(b) => b.map(|b| Ok((tp.clone(), b))),
                    Err(e) => Some(Err(e)),
                }
            })
            .collect::<Result<_, _>>()
            .map_err(Box::new)?;
        let mut sealed: HashMap<TopicPartition, SealedBatch> = sealed.into_iter().collect();
        for (tp, _) in due {
            let Some(mut batch) = sealed.remove(tp) else {
                continue;
            };
            let p = self.parts.get_mut(tp).expect("sealed above");
            p.ledger.seal_with(|range: OffsetRange, gaps: &[Gap]| {
                debug_assert_eq!(range, batch.offsets);
                batch.gaps = gaps.to_vec();
                Ok::<_, StateError>(Queued {
                    batch: Arc::new(batch),
                    front: Front::Waiting,
                })
            })?;
        }
        Ok(())
    }

    /// A hand-off or shutdown does not wait out a long backoff: retry the oldest batch now.
    fn retry_now(&mut self, tp: &TopicPartition, now: Now) {
        if let Some(q) = self.parts.get_mut(tp).and_then(|p| p.ledger.landing_mut()) {
            if let Front::RetryAt(at) = &mut q.payload.front {
                *at = (*at).min(now.mono_ms);
            }
        }
    }

    /// Start landing `tp`'s oldest batch if it is waiting, or waiting to retry and due.
    fn pump(&mut self, tp: &TopicPartition, now: Now, out: &mut Vec<Action>) {
        let Some(p) = self.parts.get_mut(tp) else {
            return;
        };
        let epoch = p.epoch;
        let Some(q) = p.ledger.landing_mut() else {
            return;
        };
        let due = match q.payload.front {
            Front::Waiting => true,
            Front::Landing => false,
            Front::RetryAt(at) => at <= now.mono_ms,
        };
        if due {
            q.payload.front = Front::Landing;
            out.push(Action::Land {
                tp: tp.clone(),
                epoch,
                batch: q.payload.batch.clone(),
            });
        }
    }

    fn enforce_budget(&mut self, now: Now, out: &mut Vec<Action>) -> Result<(), StateError> {
        // This runs after every delivery: when the sink is under budget and nothing waits to be
        // resumed, the policy has nothing to say, so skip building its views (a size estimate
        // per partition).
        let total: u64 = self.outside_bytes
            + self
                .parts
                .values()
                .map(|p| p.buffer.memory_bytes() + p.sealed_bytes())
                .sum::<u64>();
        if total <= self.settings.max_buffered_bytes
            && !self.parts.values().any(|p| p.paused.memory)
        {
            return Ok(());
        }
        let mut tps: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| p.phase == Phase::Running)
            .map(|(tp, _)| tp.clone())
            .collect();
        tps.sort();
        let fmt = &self.settings.format;
        let views: Vec<budget::View> = tps
            .iter()
            .map(|tp| {
                let p = &self.parts[tp];
                budget::View {
                    buffered: p.buffer.memory_bytes(),
                    after_flush: p.buffer.stats(fmt).largest_file_bytes,
                    sealed: p.sealed_bytes(),
                    idle: !p.landing() && !p.retrying(),
                    paused_for_memory: p.paused.memory,
                }
            })
            .collect();
        // Sealed batches of partitions being handed off or recovered still take memory.
        let others: u64 = self
            .parts
            .values()
            .filter(|p| p.phase != Phase::Running)
            .map(|p| p.buffer.memory_bytes() + p.sealed_bytes())
            .sum();
        let steps = budget::plan(
            self.settings.max_buffered_bytes,
            self.outside_bytes + others,
            &views,
        );
        let flushed: Vec<(TopicPartition, FlushReason)> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Flush(i) => Some((tps[*i].clone(), FlushReason::Memory)),
                _ => None,
            })
            .collect();
        self.seal_all(&flushed, now)?;
        for step in steps {
            match step {
                Step::Flush(i) => self.pump(&tps[i], now, out),
                Step::Pause(i) => {
                    let p = self.parts.get_mut(&tps[i]).expect("present");
                    if !p.paused.any() {
                        out.push(Action::Pause(tps[i].clone()));
                    }
                    p.paused.memory = true;
                }
                Step::Resume(i) => {
                    let p = self.parts.get_mut(&tps[i]).expect("present");
                    p.paused.memory = false;
                    if !p.paused.any() {
                        out.push(Action::Resume(tps[i].clone()));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
