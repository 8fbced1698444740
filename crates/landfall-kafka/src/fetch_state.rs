//! Which partitions fetch, and with which epoch: the consumer thread's bookkeeping of pauses
//! (asked by the sink, or for a full channel, or for shutdown), epochs and pending seeks, as
//! plain synchronous code. The thread feeds it commands and rebalances and carries out the
//! [`Actions`] it returns; nothing here talks to librdkafka.

use std::collections::HashMap;
use std::time::Duration;

use landfall_core::TopicPartition;

use crate::protocol::StartAt;

/// How long records may wait for room in the channel to the sink before the thread pauses every
/// partition to go on polling. Polling is what serves rebalances: a revoke waits at most this
/// long (far below librdkafka's `max.poll.interval.ms`) for a sink that is behind.
pub(crate) const PAUSE_AFTER_BACKLOG: Duration = Duration::from_secs(1);

/// What the thread must tell librdkafka (and its own backlog) after a change.
///
/// After an assignment, `resume` must happen *before* librdkafka's assign and `pause` after it:
/// librdkafka keeps an application pause on its partition object across unassign/assign, so a
/// partition paused in an earlier assignment would otherwise come back paused with nobody left
/// to resume it; and resuming after the assign could race with the fetch start it queued.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Actions {
    pub pause: Vec<TopicPartition>,
    pub resume: Vec<TopicPartition>,
    /// Drop the records of these partitions the thread still holds: they were fetched before
    /// a seek.
    pub drop_held: Vec<TopicPartition>,
    /// Start these partitions again at the offset by unassigning and assigning them (resumed
    /// first, like any assignment): librdkafka refuses to seek a partition it stopped after an
    /// offset-out-of-range error. Done before `pause`, which may pause them again.
    pub reassign: Vec<(TopicPartition, i64)>,
}

/// A seek the sink asked for that librdkafka has not performed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingSeek {
    pub offset: i64,
    /// How often librdkafka refused it so far.
    pub refusals: u32,
}

/// One assigned partition whose start the sink decided. Everything the thread knows about a
/// partition lives here, so a revoke forgets all of it at once.
#[derive(Debug)]
struct Part {
    epoch: u64,
    /// The sink paused it (memory budget, store retries).
    sink_paused: bool,
    /// A seek librdkafka refused so far, retried every loop. Until it succeeds, the partition's
    /// records are dropped: they come from the old position, and taking them would leave a gap
    /// that the next batch's range would claim to cover.
    pending_seek: Option<PendingSeek>,
    /// librdkafka stopped fetching it after an offset-out-of-range error: with
    /// `auto.offset.reset=error` it sets the partition's fetch state to none, and refuses a
    /// seek in that state ("Local: Erroneous state"). Kept paused until the sink seeks it; that
    /// seek re-assigns it.
    stalled: bool,
    /// The offset librdkafka fetches next, as far as the thread can tell: where the partition
    /// was started or sought, then one past the last record taken. (librdkafka's own fetch
    /// position can be further on where compaction or transaction markers left offsets out.)
    next: i64,
}

#[derive(Debug)]
pub(crate) struct FetchState {
    parts: HashMap<TopicPartition, Part>,
    /// The channel to the sink is full: every partition is paused until the backlog drains.
    backpressured: bool,
    /// False once shutdown began: nothing is handed out any more.
    fetching: bool,
    /// The thread is leaving the group.
    closing: bool,
}

impl FetchState {
    pub fn new() -> FetchState {
        FetchState {
            parts: HashMap::new(),
            backpressured: false,
            fetching: true,
            closing: false,
        }
    }

    /// Whether `p` should be fetching now.
    fn runs(&self, p: &Part) -> bool {
        self.fetching && !self.backpressured && !p.sink_paused && !p.stalled
    }

    /// Partitions were assigned: `decided` start where the sink said, `undecided` have no start
    /// (the sink did not answer in time) and must never fetch. See [`Actions`] for the order.
    pub fn assign(&mut self, decided: &[StartAt], undecided: &[TopicPartition]) -> Actions {
        let mut a = Actions::default();
        for s in decided {
            let part = Part {
                epoch: s.epoch,
                sink_paused: false,
                pending_seek: None,
                stalled: false,
                next: s.offset,
            };
            // Every one: any of them may carry a pause from an earlier assignment.
            a.resume.push(s.tp.clone());
            if !self.runs(&part) {
                a.pause.push(s.tp.clone());
            }
            self.parts.insert(s.tp.clone(), part);
        }
        a.pause.extend(undecided.iter().cloned());
        a
    }

    /// Partitions were revoked (or lost): forget them, pauses included.
    pub fn revoke(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.parts.remove(tp);
        }
    }

    /// The sink paused these partitions.
    pub fn pause(&mut self, tps: Vec<TopicPartition>) -> Actions {
        let mut a = Actions::default();
        for tp in tps {
            // A command for a partition no longer assigned is stale.
            if let Some(p) = self.parts.get_mut(&tp) {
                p.sink_paused = true;
                a.pause.push(tp);
            }
        }
        a
    }

    /// The sink resumed these partitions: they fetch again unless the thread itself holds them.
    pub fn resume(&mut self, tps: Vec<TopicPartition>) -> Actions {
        let mut a = Actions::default();
        for tp in tps {
            if let Some(p) = self.parts.get_mut(&tp) {
                p.sink_paused = false;
                let p = &self.parts[&tp];
                if self.runs(p) {
                    a.resume.push(tp);
                }
            }
        }
        a
    }

    /// The sink wants `tp` fetched from `offset` with a new `epoch`. A seek with an epoch not
    /// newer than the partition's is stale (it was meant for an earlier assignment).
    pub fn seek(&mut self, tp: TopicPartition, offset: i64, epoch: u64) -> Actions {
        let Some(p) = self.parts.get_mut(&tp).filter(|p| p.epoch < epoch) else {
            return Actions::default();
        };
        p.epoch = epoch;
        p.next = offset;
        let mut a = Actions {
            drop_held: vec![tp.clone()],
            ..Actions::default()
        };
        if p.stalled {
            p.stalled = false;
            p.pending_seek = None;
            a.reassign.push((tp.clone(), offset));
            if !self.runs(&self.parts[&tp]) {
                a.pause.push(tp);
            }
        } else {
            p.pending_seek = Some(PendingSeek {
                offset,
                refusals: 0,
            });
        }
        a
    }

    /// Seeks still to perform.
    pub fn pending_seeks(&self) -> Vec<(TopicPartition, PendingSeek)> {
        self.parts
            .iter()
            .filter_map(|(tp, p)| p.pending_seek.map(|s| (tp.clone(), s)))
            .collect()
    }

    /// librdkafka performed (`ok`) or refused `seek`. Returns the refusals so far if it was
    /// refused and is still the partition's pending seek (no newer seek or reassignment since).
    pub fn seek_done(&mut self, tp: &TopicPartition, seek: PendingSeek, ok: bool) -> Option<u32> {
        let p = self.parts.get_mut(tp)?;
        let current = p.pending_seek.as_mut().filter(|p| **p == seek)?;
        if ok {
            p.pending_seek = None;
            None
        } else {
            current.refusals += 1;
            Some(current.refusals)
        }
    }

    /// Records have waited `waited` for room in the channel to the sink. `None`: keep waiting
    /// without polling. librdkafka keeps what it fetched, stops fetching once its queue holds
    /// `queued.max.messages.kbytes`, and hands it over when the thread polls again. Pausing
    /// instead would purge that queue and fetch it all again from the last record taken,
    /// usually from inside a batch, at every full channel: under a sink slightly slower than
    /// the fetcher that was most of the traffic, and consumption crawled. `Some`: the wait
    /// lasted [`PAUSE_AFTER_BACKLOG`]; pause everything (nothing if already done) and poll again,
    /// because rebalances and librdkafka's callbacks are only served inside `poll`.
    pub fn backlogged(&mut self, waited: Duration) -> Option<Actions> {
        if self.backpressured {
            Some(Actions::default())
        } else if waited >= PAUSE_AFTER_BACKLOG {
            Some(self.backpressure())
        } else {
            None
        }
    }

    /// The channel to the sink is full: pause everything.
    fn backpressure(&mut self) -> Actions {
        if self.backpressured {
            return Actions::default();
        }
        self.backpressured = true;
        Actions {
            pause: sorted(self.parts.keys()),
            ..Actions::default()
        }
    }

    /// The backlog drained: resume what the sink has not paused itself.
    pub fn relieved(&mut self) -> Actions {
        if !self.backpressured {
            return Actions::default();
        }
        self.backpressured = false;
        Actions {
            resume: sorted(
                self.parts
                    .iter()
                    .filter(|(_, p)| self.runs(p))
                    .map(|(tp, _)| tp),
            ),
            ..Actions::default()
        }
    }

    /// Shutdown began: hand out nothing more (the thread also discards its backlog).
    pub fn stop_fetching(&mut self) -> Actions {
        self.fetching = false;
        Actions {
            pause: sorted(self.parts.keys()),
            ..Actions::default()
        }
    }

    /// A record of `tp` was fetched: the epoch to tag it with, or `None` to drop it (the
    /// partition is not ours, a seek is pending, or shutdown began).
    pub fn accept(&mut self, tp: &TopicPartition, offset: i64) -> Option<u64> {
        let p = self.parts.get_mut(tp)?;
        if !self.fetching || p.pending_seek.is_some() || p.stalled {
            return None;
        }
        p.next = offset + 1;
        Some(p.epoch)
    }

    /// librdkafka reported an offset-out-of-range error without saying for which partition
    /// (see `poll::on_offset_reset`): the partitions that may be the one, with the offset each
    /// was to be fetched from.
    pub fn suspects(&self) -> Vec<(TopicPartition, i64)> {
        let mut v: Vec<(TopicPartition, i64)> = self
            .parts
            .iter()
            .filter(|(_, p)| !p.stalled)
            .map(|(tp, p)| (tp.clone(), p.next))
            .collect();
        v.sort();
        v
    }

    /// `tp` is out of range and librdkafka stopped fetching it: keep it paused until the sink
    /// seeks it. A seek still pending is moot (librdkafka would refuse it now).
    pub fn stall(&mut self, tp: &TopicPartition) -> Actions {
        match self.parts.get_mut(tp) {
            Some(p) if !p.stalled => {
                p.stalled = true;
                p.pending_seek = None;
                Actions {
                    pause: vec![tp.clone()],
                    ..Actions::default()
                }
            }
            _ => Actions::default(),
        }
    }

    pub fn set_closing(&mut self) {
        self.closing = true;
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }
}

/// Whether fetching `next` fails with offset out of range on a log holding `low..high`
/// (`high` itself is where the next record will be written: fetching it waits, it does not fail).
pub(crate) fn out_of_range(next: i64, low: i64, high: i64) -> bool {
    next < low || next > high
}

fn sorted<'a>(tps: impl Iterator<Item = &'a TopicPartition>) -> Vec<TopicPartition> {
    let mut v: Vec<TopicPartition> = tps.cloned().collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn start(p: i32, offset: i64, epoch: u64) -> StartAt {
        StartAt {
            tp: tp(p),
            offset,
            epoch,
        }
    }

    fn assigned(parts: &[i32]) -> FetchState {
        let mut s = FetchState::new();
        let starts: Vec<StartAt> = parts.iter().map(|&p| start(p, 0, 1)).collect();
        s.assign(&starts, &[]);
        s
    }

    #[test]
    fn undecided_partitions_are_paused_and_never_tagged() {
        let mut s = FetchState::new();
        let a = s.assign(&[start(0, 5, 1)], &[tp(1)]);
        assert_eq!(a.pause, vec![tp(1)]);
        assert_eq!(s.accept(&tp(0), 0), Some(1));
        assert_eq!(s.accept(&tp(1), 0), None);
    }

    #[test]
    fn a_short_backlog_waits_without_pausing_and_a_long_one_pauses_everything_once() {
        let mut s = assigned(&[0, 1]);
        assert_eq!(s.backlogged(Duration::ZERO), None);
        assert_eq!(
            s.backlogged(PAUSE_AFTER_BACKLOG - Duration::from_millis(1)),
            None
        );
        assert_eq!(
            s.backlogged(PAUSE_AFTER_BACKLOG),
            Some(Actions {
                pause: vec![tp(0), tp(1)],
                ..Actions::default()
            })
        );
        // Paused: poll (for rebalances) without pausing again.
        assert_eq!(s.backlogged(Duration::ZERO), Some(Actions::default()));
        assert_eq!(s.relieved().resume, vec![tp(0), tp(1)]);
        assert_eq!(s.backlogged(Duration::ZERO), None, "relieved: wait again");
    }

    #[test]
    fn backpressure_pauses_all_and_relief_resumes_what_the_sink_did_not_pause() {
        let mut s = assigned(&[0, 1, 2]);
        s.pause(vec![tp(1)]);
        assert_eq!(s.backpressure().pause, vec![tp(0), tp(1), tp(2)]);
        assert_eq!(
            s.backpressure(),
            Actions::default(),
            "already backpressured"
        );
        // The sink resumes 2 while the channel is full: it stays paused until relief.
        assert!(s.resume(vec![tp(2)]).resume.is_empty());
        assert_eq!(s.relieved().resume, vec![tp(0), tp(2)]);
        assert_eq!(s.relieved(), Actions::default(), "already relieved");
        assert_eq!(s.resume(vec![tp(1)]).resume, vec![tp(1)]);
    }

    #[test]
    fn a_seek_drops_held_records_and_holds_back_records_until_performed() {
        let mut s = assigned(&[0]);
        let a = s.seek(tp(0), 42, 2);
        assert_eq!(a.drop_held, vec![tp(0)]);
        assert_eq!(
            s.accept(&tp(0), 0),
            None,
            "fetched before the seek happened"
        );
        let seek = PendingSeek {
            offset: 42,
            refusals: 0,
        };
        assert_eq!(s.pending_seeks(), vec![(tp(0), seek)]);
        assert_eq!(s.seek_done(&tp(0), seek, false), Some(1));
        let refused = PendingSeek {
            offset: 42,
            refusals: 1,
        };
        assert_eq!(s.seek_done(&tp(0), refused, true), None);
        assert!(s.pending_seeks().is_empty());
        assert_eq!(s.accept(&tp(0), 42), Some(2));
    }

    #[test]
    fn stale_seeks_are_ignored() {
        let mut s = assigned(&[0]);
        s.seek(tp(0), 10, 3);
        assert_eq!(s.seek(tp(0), 5, 2), Actions::default(), "older epoch");
        assert_eq!(s.seek(tp(1), 5, 9), Actions::default(), "not assigned");
        assert_eq!(s.pause(vec![tp(1)]), Actions::default(), "not assigned");
        assert_eq!(s.resume(vec![tp(1)]), Actions::default(), "not assigned");
        // A seek result for a seek that a newer one replaced changes nothing.
        let old = PendingSeek {
            offset: 7,
            refusals: 0,
        };
        assert_eq!(s.seek_done(&tp(0), old, true), None);
        assert_eq!(s.pending_seeks().len(), 1);
    }

    #[test]
    fn revoke_forgets_epochs_and_pending_seeks() {
        let mut s = assigned(&[0, 1]);
        s.seek(tp(0), 10, 3);
        s.revoke(&[tp(0)]);
        assert!(s.pending_seeks().is_empty());
        assert_eq!(s.accept(&tp(0), 0), None);
        assert_eq!(s.accept(&tp(1), 0), Some(1));
    }

    #[test]
    fn a_partition_paused_revoked_and_assigned_back_fetches_again() {
        // The sink paused 0 (memory budget or a store retry); then 0 was revoked and assigned
        // back. The sink starts it afresh, not paused, so it never sends Resume: the thread must
        // resume it itself.
        let mut s = assigned(&[0, 1]);
        s.pause(vec![tp(0)]);
        s.revoke(&[tp(0)]);
        let a = s.assign(&[start(0, 10, 2)], &[]);
        // librdkafka keeps an application pause across unassign/assign, so the assignment
        // lifts it.
        assert_eq!(a.resume, vec![tp(0)]);
        assert!(a.pause.is_empty());
        // And no backpressure episode leaves it paused either.
        s.backpressure();
        assert_eq!(s.relieved().resume, vec![tp(0), tp(1)]);
    }

    #[test]
    fn a_partition_assigned_while_backpressured_or_stopped_stays_paused() {
        let mut s = assigned(&[0]);
        s.backpressure();
        let a = s.assign(&[start(1, 0, 2)], &[]);
        assert_eq!(a.resume, vec![tp(1)], "a stale pause is lifted first");
        assert_eq!(a.pause, vec![tp(1)], "then it is paused like the rest");
        assert_eq!(s.relieved().resume, vec![tp(0), tp(1)]);
        s.stop_fetching();
        assert_eq!(s.assign(&[start(2, 0, 3)], &[]).pause, vec![tp(2)]);
    }

    #[test]
    fn out_of_range_means_outside_low_to_high_inclusive() {
        assert!(out_of_range(4, 5, 10), "retention removed it");
        assert!(!out_of_range(5, 5, 10));
        assert!(!out_of_range(10, 5, 10), "the next record to be written");
        assert!(out_of_range(11, 5, 10), "the log lost records we saw");
    }

    #[test]
    fn suspects_carry_the_offset_each_partition_fetches_next() {
        let mut s = FetchState::new();
        s.assign(&[start(0, 100, 1), start(1, 7, 1)], &[]);
        s.accept(&tp(0), 100);
        s.accept(&tp(0), 101);
        assert_eq!(s.suspects(), vec![(tp(0), 102), (tp(1), 7)]);
        s.seek(tp(1), 3, 2);
        assert_eq!(s.suspects(), vec![(tp(0), 102), (tp(1), 3)]);
    }

    #[test]
    fn a_stalled_partition_stays_paused_until_the_sink_seeks_it_then_is_reassigned() {
        let mut s = assigned(&[0, 1]);
        s.seek(tp(0), 9, 2); // refused so far: pending
        assert_eq!(s.stall(&tp(0)).pause, vec![tp(0)]);
        assert_eq!(s.stall(&tp(0)), Actions::default(), "already stalled");
        assert!(
            s.pending_seeks().is_empty(),
            "librdkafka would refuse it now"
        );
        assert_eq!(s.suspects(), vec![(tp(1), 0)]);
        assert_eq!(s.accept(&tp(0), 5), None);
        // Neither the sink's resume nor relief from backpressure restarts it.
        assert!(s.resume(vec![tp(0)]).resume.is_empty());
        s.backpressure();
        assert_eq!(s.relieved().resume, vec![tp(1)]);
        // A stale seek does not either.
        assert_eq!(s.seek(tp(0), 1, 2), Actions::default());
        let a = s.seek(tp(0), 20, 3);
        assert_eq!(a.reassign, vec![(tp(0), 20)]);
        assert_eq!(a.drop_held, vec![tp(0)]);
        assert!(a.pause.is_empty());
        assert!(
            s.pending_seeks().is_empty(),
            "the assignment sets the offset"
        );
        assert_eq!(s.accept(&tp(0), 20), Some(3));
    }

    #[test]
    fn a_stalled_partition_reassigned_while_paused_is_paused_again() {
        let mut s = assigned(&[0]);
        s.pause(vec![tp(0)]);
        s.stall(&tp(0));
        let a = s.seek(tp(0), 20, 3);
        assert_eq!(a.reassign, vec![(tp(0), 20)]);
        assert_eq!(a.pause, vec![tp(0)], "the sink still has it paused");
        assert_eq!(s.resume(vec![tp(0)]).resume, vec![tp(0)]);
    }

    #[test]
    fn stop_fetching_pauses_everything_and_resumes_nothing() {
        let mut s = assigned(&[0, 1]);
        let a = s.stop_fetching();
        assert_eq!(a.pause, vec![tp(0), tp(1)]);
        assert_eq!(s.accept(&tp(0), 0), None);
        assert!(s.resume(vec![tp(0)]).resume.is_empty());
        s.backpressure();
        assert!(s.relieved().resume.is_empty());
    }
}
