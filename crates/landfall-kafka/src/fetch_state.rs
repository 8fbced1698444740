//! Which partitions fetch, and with which epoch: the consumer thread's bookkeeping of pauses
//! (asked by the sink, or for a full channel, or for shutdown), epochs and pending seeks, as
//! plain synchronous code. The thread feeds it commands and rebalances and carries out the
//! [`Actions`] it returns; nothing here talks to librdkafka.

use std::collections::{HashMap, HashSet};

use landfall_core::TopicPartition;

use crate::protocol::StartAt;

/// What the thread must tell librdkafka (and its own backlog) after a change.
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

#[derive(Debug)]
pub(crate) struct FetchState {
    /// Current epoch per assigned partition whose start the sink decided.
    epochs: HashMap<TopicPartition, u64>,
    /// Seeks librdkafka refused so far, retried every loop. Until one succeeds, the partition's
    /// records are dropped: they come from the old position, and taking them would leave a gap
    /// that the next batch's range would claim to cover.
    pending_seeks: HashMap<TopicPartition, PendingSeek>,
    /// Partitions the sink paused (memory budget, store retries).
    sink_paused: HashSet<TopicPartition>,
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
            epochs: HashMap::new(),
            pending_seeks: HashMap::new(),
            sink_paused: HashSet::new(),
            backpressured: false,
            fetching: true,
            closing: false,
        }
    }

    /// Partitions were assigned: `decided` start where the sink said, `undecided` have no start
    /// (the sink did not answer in time) and must never fetch.
    pub fn assign(&mut self, decided: &[StartAt], undecided: &[TopicPartition]) -> Actions {
        for s in decided {
            self.pending_seeks.remove(&s.tp);
            self.epochs.insert(s.tp.clone(), s.epoch);
        }
        Actions {
            pause: undecided.to_vec(),
            ..Actions::default()
        }
    }

    /// Partitions were revoked (or lost).
    pub fn revoke(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.epochs.remove(tp);
            self.pending_seeks.remove(tp);
        }
    }

    /// The sink paused these partitions.
    pub fn pause(&mut self, tps: Vec<TopicPartition>) -> Actions {
        self.sink_paused.extend(tps.iter().cloned());
        Actions {
            pause: tps,
            ..Actions::default()
        }
    }

    /// The sink resumed these partitions: they fetch again unless the thread itself holds them.
    pub fn resume(&mut self, tps: Vec<TopicPartition>) -> Actions {
        for tp in &tps {
            self.sink_paused.remove(tp);
        }
        let resume = if !self.backpressured && self.fetching {
            tps
        } else {
            Vec::new()
        };
        Actions {
            resume,
            ..Actions::default()
        }
    }

    /// The sink wants `tp` fetched from `offset` with a new `epoch`. A seek with an epoch not
    /// newer than the partition's is stale (it was meant for an earlier assignment).
    pub fn seek(&mut self, tp: TopicPartition, offset: i64, epoch: u64) -> Actions {
        match self.epochs.get_mut(&tp) {
            Some(e) if *e < epoch => {
                *e = epoch;
                self.pending_seeks.insert(
                    tp.clone(),
                    PendingSeek {
                        offset,
                        refusals: 0,
                    },
                );
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
        self.pending_seeks
            .iter()
            .map(|(tp, p)| (tp.clone(), *p))
            .collect()
    }

    /// librdkafka performed (`ok`) or refused `seek`. Returns the refusals so far if it was
    /// refused and is still the partition's pending seek (no newer seek or reassignment since).
    pub fn seek_done(&mut self, tp: &TopicPartition, seek: PendingSeek, ok: bool) -> Option<u32> {
        let current = self.pending_seeks.get_mut(tp).filter(|p| **p == seek)?;
        if ok {
            self.pending_seeks.remove(tp);
            None
        } else {
            current.refusals += 1;
            Some(current.refusals)
        }
    }

    /// The channel to the sink is full: pause everything that fetches.
    pub fn backpressure(&mut self) -> Actions {
        if self.backpressured {
            return Actions::default();
        }
        self.backpressured = true;
        Actions {
            pause: self.sorted(self.epochs.keys()),
            ..Actions::default()
        }
    }

    /// The backlog drained: resume what the sink has not paused itself.
    pub fn relieved(&mut self) -> Actions {
        if !self.backpressured {
            return Actions::default();
        }
        self.backpressured = false;
        if !self.fetching {
            return Actions::default();
        }
        let resume = self.sorted(
            self.epochs
                .keys()
                .filter(|tp| !self.sink_paused.contains(*tp)),
        );
        Actions {
            resume,
            ..Actions::default()
        }
    }

    /// Shutdown began: hand out nothing more (the thread also discards its backlog).
    pub fn stop_fetching(&mut self) -> Actions {
        self.fetching = false;
        Actions {
            pause: self.sorted(self.epochs.keys()),
            ..Actions::default()
        }
    }

    /// A record of `tp` was fetched: the epoch to tag it with, or `None` to drop it (the
    /// partition is not ours, a seek is pending, or shutdown began).
    pub fn accept(&mut self, tp: &TopicPartition) -> Option<u64> {
        if !self.fetching || self.pending_seeks.contains_key(tp) {
            return None;
        }
        self.epochs.get(tp).copied()
    }

    pub fn set_closing(&mut self) {
        self.closing = true;
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    fn sorted<'a>(&self, tps: impl Iterator<Item = &'a TopicPartition>) -> Vec<TopicPartition> {
        let mut v: Vec<TopicPartition> = tps.cloned().collect();
        v.sort();
        v
    }
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
