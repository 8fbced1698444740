//! What the consumer thread holds while the channel to the sink is full: events in the order
//! they are due (records, and the events that must not overtake them). The bytes of records
//! fetched but not yet the sink's — held here, or sent and still in the channel (up to 32
//! messages of 2048 records: 64 MiB of 1 KiB records) — are published for the sink's memory
//! budget: the thread adds what it holds or sends, the sink subtracts what it receives
//! ([`received`]). Without this count they would be outside every budget.

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
    /// Bytes of the records in `queue`.
    bytes: u64,
    /// Bytes held or in the channel, for the sink (see `ConsumerHandle::held_bytes`).
    published: Arc<AtomicU64>,
}

/// The sink took `records` out of the channel: they are no longer outside its buffers.
pub fn received(published: &AtomicU64, records: &[crate::Tagged]) {
    let bytes: u64 = records.iter().map(|t| t.record.size_bytes()).sum();
    // Saturating: a test may hand the sink records no consumer thread counted.
    let _ = published.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(bytes))
    });
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
        let bytes = bytes_of(&ev);
        match events.try_send(ev) {
            Ok(()) => {
                self.published.fetch_add(bytes, Ordering::Relaxed);
                Ok(())
            }
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
                // From held to the channel: still published, until the sink receives it.
                Ok(()) => self.bytes -= bytes,
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.queue.push_front((ev, bytes));
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
            }
        }
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
                self.published.fetch_sub(*bytes - now, Ordering::Relaxed);
                *bytes = now;
            }
        }
        self.queue
            .retain(|(ev, _)| !matches!(ev, ConsumerEvent::Records(r) if r.is_empty()));
    }

    /// Drop everything held (shutdown began).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.published.fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
    }

    fn hold(&mut self, ev: ConsumerEvent) {
        let bytes = bytes_of(&ev);
        self.queue.push_back((ev, bytes));
        self.bytes += bytes;
        self.published.fetch_add(bytes, Ordering::Relaxed);
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

    /// What the sink does with a message: take it and subtract its bytes.
    fn receive(rx: &mut mpsc::Receiver<ConsumerEvent>, gauge: &AtomicU64) -> Vec<(i32, i64)> {
        let ev = rx.try_recv().unwrap();
        if let ConsumerEvent::Records(r) = &ev {
            received(gauge, r);
        }
        offsets(ev)
    }

    #[test]
    fn bytes_are_published_until_the_sink_receives_them() {
        let gauge = Arc::new(AtomicU64::new(7));
        let (tx, mut rx) = mpsc::channel(1);
        let mut b = Backlog::new(gauge.clone());
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
        b.send(&tx, records(0, 0..2)).unwrap();
        assert!(b.is_empty(), "the channel had room");
        assert_eq!(gauge.load(Ordering::Relaxed), 2 * RECORD, "in the channel");
        b.send(&tx, records(0, 2..5)).unwrap();
        b.send(&tx, records(1, 0..1)).unwrap();
        assert_eq!(gauge.load(Ordering::Relaxed), 6 * RECORD, "2 sent + 4 held");
        assert_eq!(receive(&mut rx, &gauge), vec![(0, 0), (0, 1)]);
        assert_eq!(gauge.load(Ordering::Relaxed), 4 * RECORD);
        b.drain(&tx).unwrap();
        assert_eq!(
            gauge.load(Ordering::Relaxed),
            4 * RECORD,
            "moved, not received"
        );
        assert_eq!(receive(&mut rx, &gauge), vec![(0, 2), (0, 3), (0, 4)]);
        assert_eq!(gauge.load(Ordering::Relaxed), RECORD);
        b.drain(&tx).unwrap();
        assert!(b.is_empty());
        assert_eq!(receive(&mut rx, &gauge), vec![(1, 0)]);
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
        // Records no thread counted (a scripted test) do not wrap the gauge around.
        received(&gauge, &[]);
        b.send(&tx, records(2, 0..1)).unwrap();
        let ev = rx.try_recv().unwrap();
        if let ConsumerEvent::Records(r) = &ev {
            received(&gauge, r);
            received(&gauge, r);
        }
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
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
        assert_eq!(gauge.load(Ordering::Relaxed), 7 * RECORD, "1 sent + 6 held");
        b.drop_partition(&TopicPartition::new("t", 0));
        assert_eq!(gauge.load(Ordering::Relaxed), 4 * RECORD);
        assert_eq!(b.queue.len(), 1, "emptied messages are gone");
        b.clear();
        assert!(b.is_empty());
        assert_eq!(
            gauge.load(Ordering::Relaxed),
            RECORD,
            "the one in the channel"
        );
    }

    #[test]
    fn a_closed_channel_is_reported() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut b = Backlog::new(Arc::default());
        assert_eq!(b.send(&tx, records(0, 0..1)), Err(Closed));
    }
}
