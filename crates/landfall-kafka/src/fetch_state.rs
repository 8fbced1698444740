//! Which partitions fetch, and with which epoch: the consumer thread's bookkeeping of pauses
//! (asked by the sink, or for a full channel, or for shutdown), epochs and pending seeks, as
//! plain synchronous code. The thread feeds it commands and rebalances and carries out the
//! [`Actions`] it returns; nothing here talks to librdkafka.

use std::collections::HashMap;

use landfall_core::TopicPartition;

use crate::protocol::StartAt;

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
        self.fetching && !self.backpressured && !p.sink_paused
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
        match self.parts.get_mut(&tp) {
            Some(p) if p.epoch < epoch => {
                p.epoch = epoch;
                p.pending_seek = Some(PendingSeek {
                    offset,
                    refusals: 0,
                });
                Actions {
                    drop_held: vec![tp],
                    ..Actions::default()
                }
            }
            _ => Actions::default(),
        }
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

    /// The channel to the sink is full: pause everything.
    pub fn backpressure(&mut self) -> Actions {
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
    pub fn accept(&mut self, tp: &TopicPartition) -> Option<u64> {
        let p = self.parts.get(tp)?;
        if !self.fetching || p.pending_seek.is_some() {
            return None;
        }
        Some(p.epoch)
    }

    pub fn set_closing(&mut self) {
        self.closing = true;
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }
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
        assert_eq!(s.accept(&tp(0)), Some(1));
        assert_eq!(s.accept(&tp(1)), None);
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
        assert_eq!(s.accept(&tp(0)), None, "fetched before the seek happened");
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
        assert_eq!(s.accept(&tp(0)), Some(2));
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
        assert_eq!(s.accept(&tp(0)), None);
        assert_eq!(s.accept(&tp(1)), Some(1));
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
    fn stop_fetching_pauses_everything_and_resumes_nothing() {
        let mut s = assigned(&[0, 1]);
        let a = s.stop_fetching();
        assert_eq!(a.pause, vec![tp(0), tp(1)]);
        assert_eq!(s.accept(&tp(0)), None);
        assert!(s.resume(vec![tp(0)]).resume.is_empty());
        s.backpressure();
        assert!(s.relieved().resume.is_empty());
    }
}
