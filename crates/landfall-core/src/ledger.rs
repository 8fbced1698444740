//! Offset ledger of one partition: which offsets are durable, landing, and buffered.
//!
//! Rules (the exactly-once promise rests on them):
//! - A batch always starts at `durable_next`, the first offset no committed manifest covers, even
//!   when Kafka skips offsets there (compaction, transaction markers). The commit key is derived
//!   from that start, so two writers that believe the same thing race for the same key.
//! - Batches commit strictly in order: batch N+1 may be sealed (and its files encoded) while N is
//!   landing, but it commits only after N, or a failure of N would leave a gap behind N+1.
//! - Offsets move only over committed data: `durable_next` advances only on a successful commit.
//! - After the store says someone else committed (a lost race), everything local is dropped and
//!   the partition restarts from what the store says.
//! - Offsets Kafka no longer holds (retention) are skipped only explicitly: [`OffsetLedger::skip_to`]
//!   records them as a [`Gap`] that the next sealed batch carries inside its range, so the
//!   chain stays gap-free and every skipped offset is explained in exactly one manifest.

use std::collections::VecDeque;

use crate::manifest::{Gap, GapReason, OffsetRange};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Buffer the record.
    Take,
    /// Already buffered or landed (re-delivery after a seek or a rebalance): drop it.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("nothing buffered to seal")]
    Empty,
    #[error("commit of {got:?} is not the oldest sealed batch {expected:?}")]
    NotLanding {
        got: OffsetRange,
        expected: Option<OffsetRange>,
    },
}

/// One partition's offsets, and its queue of sealed batches: the single place both live.
///
/// `T` is what a sealed batch carries besides its range (the encoded files, in the sink; nothing in
/// the protocol model test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetLedger<T = ()> {
    durable_next: i64,
    accepted_next: i64,
    last_buffered: Option<i64>,
    /// Skipped since the last seal, oldest first: the next sealed batch carries them.
    gaps: Vec<Gap>,
    /// Sealed, not yet committed, oldest first; only the front one may commit.
    sealed: VecDeque<Sealed<T>>,
}

/// A sealed batch waiting in the ledger: its offsets and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed<T> {
    pub range: OffsetRange,
    /// Skipped offsets inside `range`.
    pub gaps: Vec<Gap>,
    pub payload: T,
}

impl<T> OffsetLedger<T> {
    /// A ledger that starts where the store says the partition continues.
    pub fn new(durable_next: i64) -> Self {
        OffsetLedger {
            durable_next,
            accepted_next: durable_next,
            last_buffered: None,
            gaps: Vec::new(),
            sealed: VecDeque::new(),
        }
    }

    /// The next offset a record is expected at: one past the last one taken (or skipped).
    pub fn accepted_next(&self) -> i64 {
        self.accepted_next
    }

    /// Skipped offsets not yet sealed into a batch.
    pub fn pending_gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Kafka no longer holds the offsets before `next`: skip from where the ledger expects the
    /// next record to `next` (exclusive), recording why. Records below `next` are duplicates
    /// from now on. `None` (nothing skipped) unless `next` is ahead.
    pub fn skip_to(&mut self, next: i64, reason: GapReason) -> Option<Gap> {
        if next <= self.accepted_next {
            return None;
        }
        let gap = Gap {
            first: self.accepted_next,
            last: next - 1,
            reason,
        };
        self.gaps.push(gap);
        self.accepted_next = next;
        Some(gap)
    }

    pub fn durable_next(&self) -> i64 {
        self.durable_next
    }

    /// The oldest sealed batch: the only one that may commit now.
    pub fn landing(&self) -> Option<&Sealed<T>> {
        self.sealed.front()
    }

    pub fn landing_mut(&mut self) -> Option<&mut Sealed<T>> {
        self.sealed.front_mut()
    }

    pub fn sealed(&self) -> impl Iterator<Item = &Sealed<T>> {
        self.sealed.iter()
    }

    pub fn sealed_count(&self) -> usize {
        self.sealed.len()
    }

    pub fn has_buffered(&self) -> bool {
        self.last_buffered.is_some()
    }

    /// Decide about a delivered record.
    pub fn accept(&mut self, offset: i64) -> Accept {
        if offset < self.accepted_next {
            return Accept::Duplicate;
        }
        self.accepted_next = offset + 1;
        self.last_buffered = Some(offset);
        Accept::Take
    }

    /// The range the buffered records would be sealed as: from where the previous sealed batch
    /// ends (or `durable_next` when none is pending) to the last buffered offset, or to the end
    /// of a gap skipped after it. Gaps alone seal nothing: they wait for a record.
    pub fn next_range(&self) -> Option<OffsetRange> {
        let last = self.last_buffered?;
        let last = self.gaps.last().map_or(last, |g| g.last.max(last));
        let first = self
            .sealed
            .back()
            .map_or(self.durable_next, |s| s.range.next);
        Some(OffsetRange::new(first, last))
    }

    /// Turn what is buffered into a sealed batch; `make` builds its payload from the range and
    /// the gaps skipped inside it.
    pub fn seal_with<E>(
        &mut self,
        make: impl FnOnce(OffsetRange, &[Gap]) -> Result<T, E>,
    ) -> Result<Option<OffsetRange>, E> {
        let Some(range) = self.next_range() else {
            return Ok(None);
        };
        let payload = make(range, &self.gaps)?;
        self.last_buffered = None;
        let gaps = std::mem::take(&mut self.gaps);
        self.sealed.push_back(Sealed {
            range,
            gaps,
            payload,
        });
        Ok(Some(range))
    }

    /// The oldest sealed batch is committed (its commit record is durable); returns its payload.
    pub fn committed(&mut self, range: OffsetRange) -> Result<T, LedgerError> {
        if self.sealed.front().map(|s| s.range) != Some(range) {
            return Err(LedgerError::NotLanding {
                got: range,
                expected: self.sealed.front().map(|s| s.range),
            });
        }
        let done = self.sealed.pop_front().expect("checked above");
        self.durable_next = range.next;
        Ok(done.payload)
    }

    /// The store holds a different truth (lost race, recovery): restart from `next`, dropping
    /// everything sealed. The caller drops its buffer and seeks the consumer to `next`.
    pub fn reset(&mut self, next: i64) {
        *self = OffsetLedger::new(next);
    }
}

impl OffsetLedger<()> {
    /// Seal what is buffered (no payload).
    pub fn seal(&mut self) -> Result<OffsetRange, LedgerError> {
        self.seal_with(|_, _| Ok::<(), LedgerError>(()))?
            .ok_or(LedgerError::Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn batches_start_at_durable_next_even_over_skipped_offsets() {
        let mut l = OffsetLedger::new(10);
        assert_eq!(l.accept(12), Accept::Take); // 10 and 11 were compacted away
        assert_eq!(l.accept(12), Accept::Duplicate);
        let r = l.seal().unwrap();
        assert_eq!(r, OffsetRange::new(10, 12));
        assert_eq!(l.accept(15), Accept::Take);
        // Sealed while the first is landing: it chains on, and may not commit first.
        let r2 = l.seal().unwrap();
        assert_eq!(r2, OffsetRange::new(13, 15));
        assert!(l.committed(r2).is_err());
        l.committed(r).unwrap();
        assert_eq!(l.durable_next(), 13);
        l.committed(r2).unwrap();
        assert_eq!(l.durable_next(), 16);
        assert_eq!(l.seal(), Err(LedgerError::Empty));
    }

    #[test]
    fn a_skip_rides_inside_the_next_sealed_range_and_is_dropped_by_a_reset() {
        let mut l = OffsetLedger::new(0);
        assert_eq!(l.accept(0), Accept::Take);
        assert_eq!(l.accept(1), Accept::Take);
        // Kafka now starts at 10: 2..=9 are skipped, and anything below 10 is a duplicate.
        let gap = l.skip_to(10, GapReason::Retention).unwrap();
        assert_eq!((gap.first, gap.last, gap.len()), (2, 9, 8));
        assert_eq!(l.skip_to(10, GapReason::Retention), None);
        assert_eq!(l.accept(5), Accept::Duplicate);
        // Sealed with only records before the gap: the range still covers the gap.
        let mut seen = Vec::new();
        let r = l
            .seal_with(|_, gaps| {
                seen = gaps.to_vec();
                Ok::<(), LedgerError>(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(r, OffsetRange::new(0, 9));
        assert_eq!(seen, vec![gap]);
        assert_eq!(l.landing().unwrap().gaps, vec![gap]);
        assert!(l.pending_gaps().is_empty());
        // A skip with nothing buffered waits for a record; a reset drops it.
        assert_eq!(
            l.skip_to(20, GapReason::Retention).map(|g| g.first),
            Some(10)
        );
        assert_eq!(l.seal(), Err(LedgerError::Empty));
        l.reset(10);
        assert!(l.pending_gaps().is_empty());
        assert_eq!(l.accepted_next(), 10);
    }

    // ---- A model of the whole commit protocol -------------------------------------------------
    //
    // Several writers share one partition and one create-only store of commit records. Each writer
    // recovers from the store (latest record), reads the log from there, seals batches and commits
    // them at the key of their first offset. Operations interleave arbitrarily: writers stall
    // (zombies), crash (lose everything local) and restart. Whatever happens, the committed records
    // must tile the log: no overlap, no gap, from the genesis offset on.

    #[derive(Debug, Clone)]
    enum Op {
        Deliver(usize, u8),
        Seal(usize),
        Commit(usize),
        Crash(usize),
    }

    struct Writer {
        ledger: OffsetLedger,
        read_pos: i64,
        sealed: std::collections::VecDeque<OffsetRange>,
        alive: bool,
    }

    fn recover(store: &BTreeMap<i64, OffsetRange>, genesis: i64) -> i64 {
        store.values().next_back().map_or(genesis, |r| r.next)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3usize, 1..5u8).prop_map(|(w, n)| Op::Deliver(w, n)),
            2 => (0..3usize).prop_map(Op::Seal),
            2 => (0..3usize).prop_map(Op::Commit),
            1 => (0..3usize).prop_map(Op::Crash),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn commits_tile_the_log_whatever_the_interleaving(
            ops in prop::collection::vec(op(), 1..200),
            skips in prop::collection::btree_set(0i64..400, 0..40),
        ) {
            const GENESIS: i64 = 0;
            const LOG_END: i64 = 400;
            // The log: offsets 0..400 minus compacted ones.
            let log: Vec<i64> = (0..LOG_END).filter(|o| !skips.contains(o)).collect();
            let mut store: BTreeMap<i64, OffsetRange> = BTreeMap::new();
            let mut writers: Vec<Writer> = (0..3)
                .map(|_| Writer { ledger: OffsetLedger::new(GENESIS), read_pos: GENESIS, sealed: Default::default(), alive: false })
                .collect();
            for op in ops {
                match op {
                    Op::Deliver(w, n) => {
                        let wr = &mut writers[w];
                        if !wr.alive {
                            let next = recover(&store, GENESIS);
                            *wr = Writer { ledger: OffsetLedger::new(next), read_pos: next, sealed: Default::default(), alive: true };
                        }
                        for _ in 0..n {
                            let Some(&o) = log.iter().find(|&&o| o >= wr.read_pos) else { break };
                            wr.read_pos = o + 1;
                            let _ = wr.ledger.accept(o);
                        }
                    }
                    Op::Seal(w) => {
                        let wr = &mut writers[w];
                        if wr.alive {
                            if let Ok(r) = wr.ledger.seal() {
                                wr.sealed.push_back(r);
                            }
                        }
                    }
                    Op::Commit(w) => {
                        let wr = &mut writers[w];
                        if let Some(r) = wr.sealed.pop_front() {
                            // Create-only put at the key of the first offset.
                            if let std::collections::btree_map::Entry::Vacant(e) = store.entry(r.first) {
                                e.insert(r);
                                wr.ledger.committed(r).unwrap();
                            } else {
                                // Lost the race: re-read the truth and seek there.
                                let next = recover(&store, GENESIS);
                                wr.ledger.reset(next);
                                wr.sealed.clear();
                                wr.read_pos = next;
                            }
                        }
                    }
                    Op::Crash(w) => writers[w].alive = false,
                }
            }
            // The committed records tile [GENESIS, end) without gaps or overlaps.
            let mut expect = GENESIS;
            for (first, r) in &store {
                prop_assert_eq!(*first, r.first);
                prop_assert_eq!(r.first, expect, "gap or overlap at {}", expect);
                prop_assert!(r.last >= r.first);
                expect = r.next;
            }
            // Every log offset below the end of the chain is covered exactly once.
            let covered = log.iter().filter(|&&o| o < expect).count();
            let by_ranges: usize = store.values().map(|r| log.iter().filter(|&&o| o >= r.first && o <= r.last).count()).sum();
            prop_assert_eq!(covered, by_ranges);
        }
    }
}
