//! What the consumer thread holds while the channel to the sink is full: events in the order
//! they are due (records, and the events that must not overtake them), with the byte total of
//! the held records published for the sink's memory budget. They are fetched but not yet the
//! sink's, so without this count they would be outside every budget.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use landfall_core::TopicPartition;
use tokio::sync::mpsc;

use crate::protocol::ConsumerEvent;

/// The sink task is gone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Closed;

pub(crate) struct Backlog {
    /// Each event with the bytes of its records.
    queue: VecDeque<(ConsumerEvent, u64)>,
    bytes: u64,
    /// `bytes`, for the sink (see `ConsumerHandle::held_bytes`).
    published: Arc<AtomicU64>,
}

fn bytes_of(ev: &ConsumerEvent) -> u64 {
    match ev {
        ConsumerEvent::Records(records) => records.iter().map(|t| t.record.size_bytes()).sum(),
        _ => 0,
    }
}

impl Backlog {
    pub fn new(published: Arc<AtomicU64>) -> Backlog {
        published.store(0, Ordering::Relaxed);
        Backlog {
            queue: VecDeque::new(),
            bytes: 0,
            published,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Send `ev` to the sink after everything held, or hold it if the channel is full.
    pub fn send(
        &mut self,
        events: &mpsc::Sender<ConsumerEvent>,
        ev: ConsumerEvent,
    ) -> Result<(), Closed> {
        if !self.queue.is_empty() {
            self.hold(ev);
            return Ok(());
        }
        match events.try_send(ev) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(ev)) => {
                self.hold(ev);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Closed),
        }
    }

    /// Send what the channel has room for, oldest first.
    pub fn drain(&mut self, events: &mpsc::Sender<ConsumerEvent>) -> Result<(), Closed> {
        while let Some((ev, bytes)) = self.queue.pop_front() {
            match events.try_send(ev) {
                Ok(()) => self.bytes -= bytes,
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.queue.push_front((ev, bytes));
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
            }
        }
        self.publish();
        Ok(())
    }

    /// Drop the held records of `tp` (fetched before a seek).
    pub fn drop_partition(&mut self, tp: &TopicPartition) {
        for (ev, bytes) in self.queue.iter_mut() {
            if let ConsumerEvent::Records(records) = ev {
                records.retain(|t| {
                    !(t.record.topic == tp.topic && t.record.partition == tp.partition)
                });
                let now = bytes_of(ev);
                self.bytes -= *bytes - now;
                *bytes = now;
            }
        }
        self.queue
            .retain(|(ev, _)| !matches!(ev, ConsumerEvent::Records(r) if r.is_empty()));
        self.publish();
    }

    /// Drop everything (shutdown began).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
        self.publish();
    }

    fn hold(&mut self, ev: ConsumerEvent) {
        let bytes = bytes_of(&ev);
        self.queue.push_back((ev, bytes));
        self.bytes += bytes;
        self.publish();
    }

    fn publish(&self) {
        self.published.store(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use landfall_core::KafkaRecord;

    use super::*;
    use crate::protocol::Tagged;

    fn records(partition: i32, offsets: std::ops::Range<i64>) -> ConsumerEvent {
        ConsumerEvent::Records(
            offsets
                .map(|offset| Tagged {
                    record: KafkaRecord {
                        topic: "t".into(),
                        partition,
                        offset,
                        timestamp_ms: None,
                        key: None,
                        value: Some(Bytes::from_static(b"0123456789")),
                        headers: Vec::new(),
                    },
                    epoch: 1,
                })
                .collect(),
        )
    }

    /// 10 value bytes + 64 bytes of overhead (`KafkaRecord::size_bytes`).
    const RECORD: u64 = 74;

    fn offsets(ev: ConsumerEvent) -> Vec<(i32, i64)> {
        match ev {
            ConsumerEvent::Records(r) => r
                .iter()
                .map(|t| (t.record.partition, t.record.offset))
                .collect(),
            other => panic!("not records: {other:?}"),
        }
    }

    #[test]
    fn held_bytes_are_published_until_sent() {
        let gauge = Arc::new(AtomicU64::new(7));
        let (tx, mut rx) = mpsc::channel(1);
        let mut b = Backlog::new(gauge.clone());
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
        b.send(&tx, records(0, 0..2)).unwrap();
        assert!(b.is_empty(), "the channel had room");
        b.send(&tx, records(0, 2..5)).unwrap();
        b.send(&tx, records(1, 0..1)).unwrap();
        assert_eq!(gauge.load(Ordering::Relaxed), 4 * RECORD);
        assert_eq!(offsets(rx.try_recv().unwrap()), vec![(0, 0), (0, 1)]);
        b.drain(&tx).unwrap();
        assert_eq!(gauge.load(Ordering::Relaxed), RECORD, "one message fit");
        assert_eq!(
            offsets(rx.try_recv().unwrap()),
            vec![(0, 2), (0, 3), (0, 4)]
        );
        b.drain(&tx).unwrap();
        assert!(b.is_empty());
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
        assert_eq!(offsets(rx.try_recv().unwrap()), vec![(1, 0)]);
    }

    #[test]
    fn nothing_overtakes_what_is_held() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut b = Backlog::new(Arc::default());
        b.send(&tx, records(0, 0..1)).unwrap();
        b.send(&tx, records(0, 1..2)).unwrap();
        b.send(&tx, ConsumerEvent::Fatal("after the records".into()))
            .unwrap();
        rx.try_recv().unwrap();
        b.drain(&tx).unwrap();
        assert_eq!(offsets(rx.try_recv().unwrap()), vec![(0, 1)]);
        b.drain(&tx).unwrap();
        assert!(matches!(rx.try_recv().unwrap(), ConsumerEvent::Fatal(_)));
    }

    #[test]
    fn dropping_a_partition_and_clearing_update_the_total() {
        let gauge = Arc::new(AtomicU64::new(0));
        let (tx, _rx) = mpsc::channel(1);
        let mut b = Backlog::new(gauge.clone());
        b.send(&tx, records(9, 0..1)).unwrap(); // fills the channel
        b.send(&tx, records(0, 0..2)).unwrap();
        b.send(&tx, records(1, 0..3)).unwrap();
        b.send(&tx, records(0, 2..3)).unwrap();
        assert_eq!(gauge.load(Ordering::Relaxed), 6 * RECORD);
        b.drop_partition(&TopicPartition::new("t", 0));
        assert_eq!(gauge.load(Ordering::Relaxed), 3 * RECORD);
        assert_eq!(b.queue.len(), 1, "emptied messages are gone");
        b.clear();
        assert!(b.is_empty());
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_closed_channel_is_reported() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut b = Backlog::new(Arc::default());
        assert_eq!(b.send(&tx, records(0, 0..1)), Err(Closed));
    }
}
