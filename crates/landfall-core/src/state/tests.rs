//! The sink state machine against a model of everything around it: a log with compacted
//! offsets, a consumer that obeys pause/resume/seek and tags records with epochs, a create-only
//! store of commit records shared with a foreign writer (a zombie or a new owner), landings that
//! commit, fail before writing, fail after writing (unknown outcome), lose the race, or are
//! aborted half-way — interleaved at random with revokes, re-assignments, memory pressure and
//! retention deleting the start of the log (the consumer reports the partition out of range).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::buffer::BufferFormat;
use crate::config::{
    Compression, FlushConfig, FormatConfig, MetadataColumn, ParquetConfig, Statistics,
};
use crate::decode::RecordDecoder;
use crate::manifest::{Gap, GapReason, Landed, Manifest, FORMAT_VERSION};
use crate::parquet_props::writer_properties;

const PARTITIONS: i32 = 2;
const LOG_END: i64 = 120;

fn settings(max_records: u64, budget: u64, seed: u64) -> StateSettings {
    StateSettings {
        format: BufferFormat {
            decoder: RecordDecoder::new(&FormatConfig::Raw, &[MetadataColumn::Offset], None),
            props: writer_properties(&ParquetConfig {
                compression: Compression::None,
                row_group_rows: 1000,
                data_page_bytes: 64 * 1024,
                dictionary: false,
                statistics: Statistics::None,
            }),
            timezone: chrono_tz::UTC,
            chunk_records: 4,
            fail_on_bad_record: false,
            size_model: Default::default(),
            dictionary: Default::default(),
            hold_records: false,
        },
        policy: FlushPolicy::new(FlushConfig {
            max_records,
            max_file_bytes: u64::MAX,
            max_age_ms: 1_000,
        }),
        max_records,
        max_buffered_bytes: budget,
        stuck_after_ms: 5_000,
        seed,
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn record(p: i32, offset: i64) -> KafkaRecord {
    KafkaRecord {
        topic: "t".into(),
        partition: p,
        offset,
        timestamp_ms: Some(1_763_719_200_000),
        key: None,
        value: Some(Bytes::from(vec![b'x'; 100])),
        headers: vec![],
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Commit,
    /// Failed before anything was written.
    Transient,
    /// The commit record was written, but the writer did not hear back.
    Unknown,
    /// A foreign writer commits at the same key first, covering `extra` offsets more or fewer.
    Foreign(u8),
}

#[derive(Debug, Clone)]
enum Op {
    Deliver(i32, u8),
    /// Deliver a record tagged with an out-of-date epoch (fetched before a seek).
    DeliverStale(i32),
    Tick(u16),
    /// Memory held outside the machine (records the consumer holds back).
    Outside(u32),
    Complete(u8, Outcome),
    RunRecoveries,
    Revoke(i32, bool, u8),
    Assign(i32),
    /// The consumer thread gets round to the seeks the sink asked for.
    ApplySeeks,
    /// Retention deletes the log's first `n` offsets more (every partition).
    Expire(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        5 => Just(Outcome::Commit),
        2 => Just(Outcome::Transient),
        1 => Just(Outcome::Unknown),
        1 => (0u8..6).prop_map(Outcome::Foreign),
    ];
    prop_oneof![
        6 => (0..PARTITIONS, 1..8u8).prop_map(|(p, n)| Op::Deliver(p, n)),
        1 => (0..PARTITIONS).prop_map(Op::DeliverStale),
        3 => (0u16..1500).prop_map(Op::Tick),
        1 => prop_oneof![Just(0u32), 0u32..20_000].prop_map(Op::Outside),
        5 => (any::<u8>(), outcome).prop_map(|(i, o)| Op::Complete(i, o)),
        2 => Just(Op::RunRecoveries),
        1 => (0..PARTITIONS, any::<bool>(), 0u8..4).prop_map(|(p, l, k)| Op::Revoke(p, l, k)),
        2 => (0..PARTITIONS).prop_map(Op::Assign),
        2 => Just(Op::ApplySeeks),
        1 => (1u8..30).prop_map(Op::Expire),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Record {
    range: OffsetRange,
    attempt: String,
    /// Offsets skipped inside `range` (retention).
    gaps: Vec<Gap>,
}

#[derive(Default)]
struct Consumer {
    assigned: bool,
    position: i64,
    epoch: u64,
    paused: bool,
    /// A seek the sink asked for that the consumer has not performed yet: until it does, it
    /// keeps fetching from the old position under the old epoch.
    seek: Option<(i64, u64)>,
    /// Found out of range and reported: fetches nothing until a seek or a new assignment.
    stalled: bool,
}

struct World {
    log: Vec<i64>,
    /// The log start: retention deleted every offset below it.
    low: i64,
    store: BTreeMap<(i32, i64), Record>,
    consumers: HashMap<i32, Consumer>,
    inflight: Vec<(TopicPartition, u64, Arc<SealedBatch>)>,
    recoveries: Vec<(TopicPartition, u64)>,
    now: Now,
    outside: u64,
    /// Attempt ids whose batch this machine was told committed (each at most once).
    committed_attempts: BTreeSet<String>,
    coin: u64,
    /// Partitions reported stuck and not yet unstuck.
    stuck: BTreeSet<i32>,
}

impl World {
    /// Every log offset of `p` from its tip on was deleted by retention, or there is none: a
    /// skip to the log start waits for a record to ride with, so nothing more can land.
    fn unread_expired(&self, p: i32) -> bool {
        let tip = self.tip(p);
        self.log.iter().all(|&o| o < tip || o < self.low)
    }

    fn flip(&mut self) -> bool {
        self.coin = self.coin.wrapping_mul(6364136223846793005).wrapping_add(1);
        (self.coin >> 33) & 1 == 1
    }

    fn tip(&self, p: i32) -> i64 {
        self.store
            .range((p, i64::MIN)..=(p, i64::MAX))
            .next_back()
            .map_or(0, |(_, r)| r.range.next)
    }

    fn manifest(p: i32, r: &Record) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            sink: "s".into(),
            topic: "t".into(),
            partition: p,
            offsets: r.range,
            gaps: r.gaps.clone(),
            records: 0,
            rows: 0,
            dead_lettered: 0,
            files: vec![],
            dead_letter_files: vec![],
            schema_fingerprint: None,
            event_time: None,
            writer_id: "w".into(),
            attempt_id: r.attempt.clone(),
            landed_at: String::new(),
            flush_reason: String::new(),
            commit_url: String::new(),
            marker_url: String::new(),
        }
    }

    /// The create-only put of a commit record.
    fn create(&mut self, p: i32, r: Record) -> Landed {
        match self.store.entry((p, r.range.first)) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(r.clone());
                Landed::Committed(Box::new(Self::manifest(p, &r)))
            }
            std::collections::btree_map::Entry::Occupied(e) => {
                let existing = e.get().clone();
                if existing.attempt == r.attempt {
                    Landed::Committed(Box::new(Self::manifest(p, &existing)))
                } else {
                    Landed::Lost(Box::new(Self::manifest(p, &existing)))
                }
            }
        }
    }

    /// A foreign writer's record at `first`: it read the same log and sealed a little more or
    /// less, but it ends on a log offset so the chain stays a tiling of the log.
    fn foreign(&mut self, p: i32, first: i64, extra: u8) {
        let after: Vec<i64> = self.log.iter().copied().filter(|&o| o >= first).collect();
        let Some(&last) = after.get(extra as usize % after.len().max(1)) else {
            return;
        };
        self.store.entry((p, first)).or_insert_with(|| Record {
            range: OffsetRange::new(first, last),
            attempt: format!("foreign-{first}"),
            gaps: vec![],
        });
    }

    fn apply(&mut self, state: &mut SinkState, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Land { tp, epoch, batch } => {
                    assert!(
                        !self
                            .inflight
                            .iter()
                            .any(|(t, e, _)| *t == tp && *e == epoch),
                        "two landings of {tp} at once"
                    );
                    self.inflight.push((tp, epoch, batch));
                }
                Action::Abort { tp, epoch } => {
                    let aborted: Vec<_> = self
                        .inflight
                        .iter()
                        .filter(|(t, e, _)| *t == tp && *e == epoch)
                        .cloned()
                        .collect();
                    self.inflight.retain(|(t, e, _)| !(*t == tp && *e == epoch));
                    // The task may have got as far as the commit record before it was stopped.
                    for (tp, _, b) in aborted {
                        if self.flip() {
                            self.create(
                                tp.partition,
                                Record {
                                    range: b.offsets,
                                    attempt: b.attempt_id.clone(),
                                    gaps: b.gaps.clone(),
                                },
                            );
                        }
                    }
                }
                Action::Pause(tp) => self.consumers.get_mut(&tp.partition).unwrap().paused = true,
                Action::Resume(tp) => self.consumers.get_mut(&tp.partition).unwrap().paused = false,
                Action::Seek { tp, offset, epoch } => {
                    self.consumers.get_mut(&tp.partition).unwrap().seek = Some((offset, epoch));
                }
                Action::Recover { tp, epoch, .. } => self.recoveries.push((tp, epoch)),
                Action::CommitHint { .. } => {}
                Action::Stuck { tp, .. } => {
                    assert!(self.stuck.insert(tp.partition), "{tp} reported stuck twice")
                }
                Action::Unstuck(tp) => {
                    assert!(
                        self.stuck.remove(&tp.partition),
                        "{tp} unstuck but not stuck"
                    )
                }
                Action::Skipped { gap, .. } => {
                    assert!(gap.last < self.low, "skipped {gap:?} the log still holds");
                }
                Action::Halted(o) => panic!("stopped although the log is whole: {o}"),
            }
        }
        self.check(state);
    }

    fn check(&self, state: &SinkState) {
        // The store's records tile the log of every partition from offset 0.
        for p in 0..PARTITIONS {
            let mut expect = 0;
            for ((_, first), r) in self.store.range((p, i64::MIN)..=(p, i64::MAX)) {
                assert_eq!(*first, r.range.first);
                assert_eq!(r.range.first, expect, "gap or overlap in partition {p}");
                expect = r.range.next;
            }
        }
        // What the machine believes paused is what the consumer has paused.
        for s in state.status() {
            let c = &self.consumers[&s.tp.partition];
            assert!(c.assigned, "{} in the machine but not assigned", s.tp);
            if s.phase == Phase::Running {
                assert_eq!(
                    c.paused,
                    s.paused.any(),
                    "{}: consumer paused={} machine {:?}",
                    s.tp,
                    c.paused,
                    s.paused
                );
            }
        }
    }

    fn apply_seeks(&mut self) {
        for c in self.consumers.values_mut() {
            if let Some((offset, epoch)) = c.seek.take() {
                c.position = offset;
                c.epoch = epoch;
                c.stalled = false;
            }
        }
    }

    fn deliver(&mut self, state: &mut SinkState, p: i32, n: usize) {
        let low = self.low;
        let c = self.consumers.entry(p).or_default();
        if !c.assigned || c.paused || c.stalled {
            return;
        }
        if c.position < low {
            // A fetch below the log start fails; the consumer stops fetching and reports it.
            c.stalled = true;
            let actions = state.out_of_range(&tp(p), low, LOG_END);
            self.apply(state, actions);
            return;
        }
        let epoch = c.epoch;
        let batch: Vec<(KafkaRecord, u64)> = self
            .log
            .iter()
            .copied()
            .filter(|&o| o >= c.position)
            .take(n)
            .map(|o| (record(p, o), epoch))
            .collect();
        if let Some((r, _)) = batch.last() {
            c.position = r.offset + 1;
        }
        let (actions, _) = state.records(batch, self.now).unwrap();
        self.apply(state, actions);
    }

    fn complete(&mut self, state: &mut SinkState, i: usize, outcome: Outcome) {
        if self.inflight.is_empty() {
            return;
        }
        let (tp, epoch, b) = self.inflight.remove(i % self.inflight.len());
        // A batch holds exactly the log's records in its range but outside its gaps: it claims
        // no offset it did not read (compacted ones aside, which the log does not have), and
        // every offset it skipped is one retention deleted.
        let skipped = |o: i64| b.gaps.iter().any(|g| o >= g.first && o <= g.last);
        let in_log = self
            .log
            .iter()
            .filter(|&&o| o >= b.offsets.first && o <= b.offsets.last && !skipped(o))
            .count() as u64;
        assert_eq!(b.records, in_log, "batch {:?} of {tp}", b.offsets);
        for g in &b.gaps {
            assert!(
                g.first >= b.offsets.first && g.last <= b.offsets.last && g.last < self.low,
                "gap {g:?} of batch {:?}, log start {}",
                b.offsets,
                self.low
            );
        }
        let ours = Record {
            range: b.offsets,
            attempt: b.attempt_id.clone(),
            gaps: b.gaps.clone(),
        };
        let result = match outcome {
            Outcome::Commit => LandingResult::Landed(self.create(tp.partition, ours)),
            Outcome::Transient => LandingResult::Retryable,
            Outcome::Unknown => {
                self.create(tp.partition, ours);
                LandingResult::Retryable
            }
            Outcome::Foreign(extra) => {
                self.foreign(tp.partition, b.offsets.first, extra);
                LandingResult::Landed(self.create(tp.partition, ours))
            }
        };
        if let LandingResult::Landed(Landed::Committed(m)) = &result {
            if m.attempt_id == b.attempt_id && state.epoch(&tp) == Some(epoch) {
                assert!(
                    self.committed_attempts.insert(b.attempt_id.clone()),
                    "batch {} committed twice",
                    b.attempt_id
                );
            }
        }
        let actions = state.landed(&tp, epoch, result, self.now).unwrap();
        self.apply(state, actions);
    }

    fn run_recoveries(&mut self, state: &mut SinkState) {
        for (tp, epoch) in std::mem::take(&mut self.recoveries) {
            let next = self.tip(tp.partition);
            let actions = state.recovered(&tp, epoch, next);
            self.apply(state, actions);
        }
    }

    fn assign(&mut self, state: &mut SinkState, p: i32) {
        if self.consumers.get(&p).is_some_and(|c| c.assigned) {
            return;
        }
        let next = self.tip(p);
        let a = state.assign_within(tp(p), next, Some((self.low, LOG_END)));
        assert_eq!(a.start, next.max(self.low));
        let c = self.consumers.entry(p).or_default();
        // The consumer keeps whatever pause state it had: the machine must clear it.
        c.assigned = true;
        c.position = a.start;
        c.epoch = a.epoch;
        c.seek = None;
        c.stalled = false;
        self.apply(state, a.actions);
    }

    fn revoke(&mut self, state: &mut SinkState, p: i32, lost: bool, rounds: u8) {
        if !self.consumers.get(&p).is_some_and(|c| c.assigned) {
            return;
        }
        let t = tp(p);
        let actions = state
            .revoke(std::slice::from_ref(&t), lost, self.now)
            .unwrap();
        self.apply(state, actions);
        // The sink lands what it can before the deadline, then lets go.
        for _ in 0..rounds {
            if !state.pending(std::slice::from_ref(&t)) {
                break;
            }
            while let Some(i) = self.inflight.iter().position(|(x, _, _)| *x == t) {
                self.complete(state, i, Outcome::Commit);
            }
            self.now.mono_ms += 1_000;
            let actions = state.tick(self.now, self.outside).unwrap();
            self.apply(state, actions);
        }
        let actions = state.remove(std::slice::from_ref(&t));
        self.apply(state, actions);
        self.recoveries.retain(|(x, _)| *x != t);
        self.consumers.get_mut(&p).unwrap().assigned = false;
    }
}

fn run(ops: Vec<Op>, skips: BTreeSet<i64>, max_records: u64, budget: u64, seed: u64) {
    let mut state = SinkState::new(settings(max_records, budget, seed));
    let mut w = World {
        log: (0..LOG_END).filter(|o| !skips.contains(o)).collect(),
        low: 0,
        store: BTreeMap::new(),
        consumers: HashMap::new(),
        inflight: Vec::new(),
        recoveries: Vec::new(),
        now: Now {
            mono_ms: 1,
            wall_us: 1_763_719_200_000_000,
        },
        outside: 0,
        committed_attempts: BTreeSet::new(),
        coin: seed,
        stuck: BTreeSet::new(),
    };
    for p in 0..PARTITIONS {
        w.assign(&mut state, p);
    }
    for op in ops {
        match op {
            Op::Deliver(p, n) => w.deliver(&mut state, p, n as usize),
            Op::DeliverStale(p) => {
                let c = w.consumers.entry(p).or_default();
                if c.assigned && c.epoch > 1 {
                    let r = (record(p, c.position), c.epoch - 1);
                    let (actions, tally) = state.records([r], w.now).unwrap();
                    assert!(state.fetch_epoch(&tp(p)) == Some(c.epoch - 1) || tally.stale == 1);
                    w.apply(&mut state, actions);
                }
            }
            Op::Tick(ms) => {
                w.now.mono_ms += ms as u64;
                w.now.wall_us += ms as i64 * 1000;
                let actions = state.tick(w.now, w.outside).unwrap();
                w.apply(&mut state, actions);
            }
            Op::Outside(b) => w.outside = b as u64,
            Op::Complete(i, o) => w.complete(&mut state, i as usize, o),
            Op::RunRecoveries => w.run_recoveries(&mut state),
            Op::Revoke(p, lost, rounds) => w.revoke(&mut state, p, lost, rounds),
            Op::Assign(p) => w.assign(&mut state, p),
            Op::ApplySeeks => w.apply_seeks(),
            Op::Expire(n) => w.low = (w.low + n as i64).min(LOG_END),
        }
    }

    // Drain: everything assigned, the whole log delivered, every landing succeeds.
    w.outside = 0;
    for p in 0..PARTITIONS {
        w.assign(&mut state, p);
    }
    for _ in 0..400 {
        for p in 0..PARTITIONS {
            w.deliver(&mut state, p, LOG_END as usize);
        }
        w.run_recoveries(&mut state);
        w.apply_seeks();
        while !w.inflight.is_empty() {
            w.complete(&mut state, 0, Outcome::Commit);
        }
        w.now.mono_ms += 1_000;
        let actions = state.tick(w.now, 0).unwrap();
        w.apply(&mut state, actions);
        let done = (0..PARTITIONS).all(|p| w.tip(p) == LOG_END || w.unread_expired(p));
        if done && state.unlanded() == 0 && w.inflight.is_empty() {
            break;
        }
    }
    let actions = state.shutdown(w.now).unwrap();
    w.apply(&mut state, actions);
    while !w.inflight.is_empty() {
        w.complete(&mut state, 0, Outcome::Commit);
    }
    assert_eq!(state.unlanded(), 0, "{:?}", state.status());
    assert!(
        w.stuck.is_empty(),
        "still reported stuck after landing: {:?}",
        w.stuck
    );
    // Every offset of the log is covered by exactly one commit record.
    for p in 0..PARTITIONS {
        let covered: Vec<i64> = w
            .store
            .range((p, i64::MIN)..=(p, i64::MAX))
            .flat_map(|(_, r)| {
                w.log
                    .iter()
                    .copied()
                    .filter(move |&o| o >= r.range.first && o <= r.range.last)
            })
            .collect();
        // The commits cover the log once, up to the tip; beyond it only offsets retention
        // deleted are left (a skip with no record after it waits for one).
        let tip = w.tip(p);
        let below_tip: Vec<i64> = w.log.iter().copied().filter(|&o| o < tip).collect();
        assert_eq!(
            covered, below_tip,
            "partition {p}: the commits do not cover the log once"
        );
        assert!(
            w.unread_expired(p),
            "partition {p}: log left unread at {tip}"
        );
        // Every offset a commit skips is one retention deleted, and each is skipped once.
        let skipped: Vec<i64> = w
            .store
            .range((p, i64::MIN)..=(p, i64::MAX))
            .flat_map(|(_, r)| r.gaps.iter().flat_map(|g| g.first..=g.last))
            .collect();
        assert!(skipped.windows(2).all(|x| x[0] < x[1]), "{skipped:?}");
        assert!(skipped.iter().all(|&o| o < w.low), "{skipped:?}");
        for s in state.status().iter().filter(|s| s.tp.partition == p) {
            assert!(!s.paused.any(), "{} left paused: {:?}", s.tp, s.paused);
            assert!(!w.consumers[&p].paused, "consumer left {p} paused");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn commits_tile_the_log_and_nothing_is_lost_landed_twice_or_left_paused(
        ops in prop::collection::vec(op(), 1..120),
        skips in prop::collection::btree_set(0i64..LOG_END, 0..12),
        max_records in 1u64..12,
        budget in prop_oneof![Just(u64::MAX), 2_000u64..40_000],
        seed in any::<u64>(),
    ) {
        run(ops, skips, max_records, budget, seed);
    }
}

#[test]
fn a_batch_holds_exactly_max_records_and_commits_in_order() {
    let mut state = SinkState::new(settings(3, u64::MAX, 7));
    let now = Now::default();
    let (epoch, _) = state.assign(tp(0), 10);
    let recs = (10..17).map(|o| (record(0, o), epoch));
    let (actions, tally) = state.records(recs, now).unwrap();
    assert_eq!(tally.by_topic, vec![("t".into(), 7, 0)]);
    let lands: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Land { batch, .. } => Some(batch.offsets),
            _ => None,
        })
        .collect();
    // One landing at a time: the second batch (13..=15) waits behind the first.
    assert_eq!(lands, vec![OffsetRange::new(10, 12)]);
    assert_eq!(state.status()[0].sealed_batches, 2);
    assert_eq!(state.status()[0].buffered_records, 1);
}

#[test]
fn a_failed_landing_pauses_retries_with_the_same_attempt_and_resumes_on_commit() {
    let mut state = SinkState::new(settings(2, u64::MAX, 7));
    let (epoch, _) = state.assign(tp(0), 0);
    let now = Now {
        mono_ms: 1000,
        wall_us: 0,
    };
    let (actions, _) = state
        .records([(record(0, 0), epoch), (record(0, 1), epoch)], now)
        .unwrap();
    let Some(Action::Land { batch, .. }) = actions
        .into_iter()
        .find(|a| matches!(a, Action::Land { .. }))
    else {
        panic!("no landing")
    };
    let actions = state
        .landed(&tp(0), epoch, LandingResult::Retryable, now)
        .unwrap();
    assert!(matches!(&actions[..], [Action::Pause(_)]));
    let at = state.retry_at(&tp(0)).unwrap();
    // 400 ms (the first doubling) times a jitter in [0.5, 1.5).
    assert!(at >= now.mono_ms + 200 && at < now.mono_ms + 600, "{at}");
    assert!(state.tick(now, 0).unwrap().is_empty(), "retried too early");
    let later = Now {
        mono_ms: at,
        wall_us: 0,
    };
    let actions = state.tick(later, 0).unwrap();
    let Some(Action::Land { batch: again, .. }) = actions.into_iter().next() else {
        panic!("not retried")
    };
    assert_eq!(again.attempt_id, batch.attempt_id);
    let m = World::manifest(
        0,
        &Record {
            range: batch.offsets,
            attempt: batch.attempt_id.clone(),
            gaps: vec![],
        },
    );
    let actions = state
        .landed(
            &tp(0),
            epoch,
            LandingResult::Landed(Landed::Committed(Box::new(m))),
            later,
        )
        .unwrap();
    assert!(actions.iter().any(|a| matches!(a, Action::Resume(_))));
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::CommitHint { offset: 2, .. })));
    assert_eq!(state.status()[0].durable_next, 2);
}

#[test]
fn a_permanent_failure_names_the_batch() {
    let mut state = SinkState::new(settings(1, u64::MAX, 7));
    let (epoch, _) = state.assign(tp(0), 5);
    state
        .records([(record(0, 5), epoch)], Now::default())
        .unwrap();
    let err = state
        .landed(&tp(0), epoch, LandingResult::Permanent, Now::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t[0]: landing the batch at offsets 5..=5 failed and cannot be retried"
    );
}

#[test]
fn a_partition_failing_past_the_budget_is_reported_stuck_once_and_unstuck_when_it_lands() {
    let mut state = SinkState::new(settings(1, u64::MAX, 3));
    let (epoch, _) = state.assign(tp(0), 0);
    let at = |ms| Now {
        mono_ms: ms,
        wall_us: 0,
    };
    state.records([(record(0, 0), epoch)], at(1)).unwrap();
    let mut stuck = Vec::new();
    let mut landed_at = None;
    // The store keeps failing: retried on every due tick, reported stuck after 5 s, once.
    for ms in (1..20_000).step_by(100) {
        for a in state.tick(at(ms), 0).unwrap() {
            match a {
                Action::Stuck {
                    failing_for_ms,
                    failures,
                    ..
                } => stuck.push((ms, failing_for_ms, failures)),
                Action::Land { .. } => {
                    state
                        .landed(&tp(0), epoch, LandingResult::Retryable, at(ms))
                        .unwrap();
                }
                _ => {}
            }
        }
        if ms == 1 {
            state
                .landed(&tp(0), epoch, LandingResult::Retryable, at(ms))
                .unwrap();
        }
        landed_at = Some(ms);
    }
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    let (ms, failing_for, failures) = stuck[0];
    assert!(
        (5_000..5_200).contains(&failing_for),
        "{failing_for} at {ms}"
    );
    assert!(failures >= 4, "{failures}");
    assert!(state.status()[0].stuck);
    // It lands at last: no longer stuck.
    let now = at(landed_at.unwrap() + 60_000);
    let actions = state.tick(now, 0).unwrap();
    assert!(actions.iter().any(|a| matches!(a, Action::Land { .. })));
    let m = World::manifest(
        0,
        &Record {
            range: OffsetRange::new(0, 0),
            attempt: String::new(),
            gaps: vec![],
        },
    );
    let actions = state
        .landed(
            &tp(0),
            epoch,
            LandingResult::Landed(Landed::Committed(Box::new(m))),
            now,
        )
        .unwrap();
    assert!(
        actions.iter().any(|a| matches!(a, Action::Unstuck(_))),
        "{actions:?}"
    );
    assert!(!state.status()[0].stuck);
}

fn lands(actions: &[Action]) -> Vec<Arc<SealedBatch>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Land { batch, .. } => Some(batch.clone()),
            _ => None,
        })
        .collect()
}

fn committed(batch: &SealedBatch) -> LandingResult {
    let mut m = World::manifest(
        batch.tp.partition,
        &Record {
            range: batch.offsets,
            attempt: batch.attempt_id.clone(),
            gaps: vec![],
        },
    );
    m.gaps = batch.gaps.clone();
    LandingResult::Landed(Landed::Committed(Box::new(m)))
}

fn retention(first: i64, last: i64) -> Gap {
    Gap {
        first,
        last,
        reason: GapReason::Retention,
    }
}

#[test]
fn a_retention_gap_seeks_to_the_log_start_and_rides_inside_the_next_batch() {
    let mut state = SinkState::new(settings(100, u64::MAX, 7));
    let now = Now::default();
    let (epoch, _) = state.assign(tp(0), 0);
    state
        .records((0..5).map(|o| (record(0, o), epoch)), now)
        .unwrap();
    // Kafka now holds 10..20: offsets 5..=9 were deleted before they were read.
    let actions = state.out_of_range(&tp(0), 10, 20);
    let [Action::Skipped { gap, .. }, Action::Seek {
        offset,
        epoch: seek_epoch,
        ..
    }] = &actions[..]
    else {
        panic!("{actions:?}")
    };
    assert_eq!(*gap, retention(5, 9));
    assert_eq!(*offset, 10);
    assert!(*seek_epoch > epoch);
    // Reported once: the same report again (an earlier fetch) only restarts the fetch.
    let again = state.out_of_range(&tp(0), 10, 20);
    assert!(
        matches!(&again[..], [Action::Seek { offset: 10, .. }]),
        "{again:?}"
    );
    let seek_epoch = state.fetch_epoch(&tp(0)).unwrap();
    // Fetched before the seek: stale. After it: taken.
    let (_, tally) = state.records([(record(0, 5), epoch)], now).unwrap();
    assert_eq!(tally.stale, 1);
    state
        .records((10..13).map(|o| (record(0, o), seek_epoch)), now)
        .unwrap();
    let batches = lands(&state.shutdown(now).unwrap());
    assert_eq!(batches.len(), 1);
    // The batch starts where the store says (the chain stays gap-free) and explains the jump.
    assert_eq!(batches[0].offsets, OffsetRange::new(0, 12));
    assert_eq!(batches[0].gaps, vec![retention(5, 9)]);
    assert_eq!(batches[0].records, 8);
}

#[test]
fn a_gap_while_a_batch_is_landing_keeps_that_landing_and_goes_into_the_next_batch() {
    let mut state = SinkState::new(settings(3, u64::MAX, 7));
    let now = Now::default();
    let (epoch, _) = state.assign(tp(0), 0);
    let (actions, _) = state
        .records((0..4).map(|o| (record(0, o), epoch)), now)
        .unwrap();
    let first = lands(&actions);
    assert_eq!(first[0].offsets, OffsetRange::new(0, 2));
    let actions = state.out_of_range(&tp(0), 10, 20);
    let seek_epoch = state.fetch_epoch(&tp(0)).unwrap();
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Seek { offset: 10, .. })));
    // The landing started before the seek still counts.
    let actions = state
        .landed(&tp(0), epoch, committed(&first[0]), now)
        .unwrap();
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::CommitHint { offset: 3, .. })));
    assert_eq!(state.status()[0].durable_next, 3);
    let (actions, _) = state
        .records((10..12).map(|o| (record(0, o), seek_epoch)), now)
        .unwrap();
    let second = lands(&actions);
    assert_eq!(second[0].offsets, OffsetRange::new(3, 11));
    assert_eq!(second[0].gaps, vec![retention(4, 9)]);
    assert_eq!(second[0].records, 3);
}

#[test]
fn a_revoke_before_landing_neither_loses_nor_duplicates_a_gap() {
    let now = Now::default();
    // Handed off cleanly: the revoke lands the records before the gap together with the gap.
    let mut state = SinkState::new(settings(100, u64::MAX, 7));
    let (epoch, _) = state.assign(tp(0), 0);
    state
        .records((0..5).map(|o| (record(0, o), epoch)), now)
        .unwrap();
    state.out_of_range(&tp(0), 10, 20);
    let batches = lands(&state.revoke(&[tp(0)], false, now).unwrap());
    assert_eq!(batches[0].offsets, OffsetRange::new(0, 9));
    assert_eq!(batches[0].gaps, vec![retention(5, 9)]);
    assert_eq!(batches[0].records, 5);

    // Lost before landing: the gap goes with everything local. The next assignment decides
    // again from the store's position (0) and the watermarks: one gap, 0..=9, recorded once.
    let mut state = SinkState::new(settings(100, u64::MAX, 7));
    let (epoch, _) = state.assign(tp(0), 0);
    state
        .records((0..5).map(|o| (record(0, o), epoch)), now)
        .unwrap();
    state.out_of_range(&tp(0), 10, 20);
    state.revoke(&[tp(0)], true, now).unwrap();
    assert_eq!(state.assigned(), 0);
    let a = state.assign_within(tp(0), 0, Some((10, 20)));
    assert_eq!(a.start, 10);
    let skipped: Vec<Gap> = a
        .actions
        .iter()
        .filter_map(|x| match x {
            Action::Skipped { gap, .. } => Some(*gap),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, vec![retention(0, 9)]);
    state
        .records((10..12).map(|o| (record(0, o), a.epoch)), now)
        .unwrap();
    let batches = lands(&state.shutdown(now).unwrap());
    assert_eq!(batches[0].offsets, OffsetRange::new(0, 11));
    assert_eq!(batches[0].gaps, vec![retention(0, 9)]);
}

#[test]
fn a_position_within_the_log_at_assignment_skips_nothing() {
    let mut state = SinkState::new(settings(100, u64::MAX, 7));
    let a = state.assign_within(tp(0), 10, Some((10, 10)));
    assert_eq!(a.start, 10);
    assert!(a.actions.iter().all(|x| matches!(x, Action::Resume(_))));
    assert_eq!(state.stuck(), 0);
}

#[test]
fn a_log_shorter_than_the_position_stops_only_that_partition() {
    let mut state = SinkState::new(settings(100, u64::MAX, 7));
    let now = Now::default();
    let (e0, _) = state.assign(tp(0), 0);
    let (e1, _) = state.assign(tp(1), 0);
    state
        .records((0..5).map(|o| (record(0, o), e0)), now)
        .unwrap();
    // The topic was recreated: Kafka holds 0..3 of partition 0.
    let actions = state.out_of_range(&tp(0), 0, 3);
    let [Action::Pause(paused), Action::Halted(o)] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(*paused, tp(0));
    assert_eq!((o.durable_next, o.position, o.low, o.high), (0, 5, 0, 3));
    let msg = o.to_string();
    assert!(
        msg.starts_with("t[0]: Kafka holds offsets 0..3")
            && msg.contains("position is 5")
            && msg.contains("docs/operations.md"),
        "{msg}"
    );
    assert_eq!(state.stuck(), 1);
    assert!(
        state.out_of_range(&tp(0), 0, 3).is_empty(),
        "reported twice"
    );
    // Nothing of it is taken any more, and nothing is dropped as a duplicate either.
    let (_, tally) = state.records([(record(0, 1), e0)], now).unwrap();
    assert_eq!((tally.stale, tally.by_topic.len()), (1, 0));
    // The other partition goes on.
    let (_, tally) = state.records([(record(1, 0), e1)], now).unwrap();
    assert_eq!(tally.by_topic, vec![("t".into(), 1, 0)]);
    // What it read before is real: it lands, and the commit does not resume the partition.
    let batches = lands(&state.shutdown(now).unwrap());
    let b0 = batches.iter().find(|b| b.tp == tp(0)).unwrap();
    assert_eq!(b0.offsets, OffsetRange::new(0, 4));
    let actions = state.landed(&tp(0), e0, committed(b0), now).unwrap();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Resume(_) | Action::Seek { .. })),
        "{actions:?}"
    );
    let s0 = &state.status()[0];
    assert!(s0.paused.out_of_range && s0.out_of_range.is_some());
    assert_eq!(state.stuck(), 1);
    // Revoked: no longer ours, no longer stuck.
    state.remove(&[tp(0)]);
    assert_eq!(state.stuck(), 0);
}

#[test]
fn a_store_position_beyond_the_log_end_at_assignment_stops_the_partition() {
    let mut state = SinkState::new(settings(100, u64::MAX, 7));
    let a = state.assign_within(tp(0), 500, Some((0, 100)));
    // It starts (paused) where the store says, never lower.
    assert_eq!(a.start, 500);
    assert!(a.actions.iter().any(|x| matches!(x, Action::Pause(_))));
    assert!(a
        .actions
        .iter()
        .any(|x| matches!(x, Action::Halted(o) if o.position == 500 && o.high == 100)));
    assert_eq!(state.stuck(), 1);
}
