//! The post-commit step: everything that hangs off a committed batch, in one place.
//!
//! A fresh landing runs it right after its commit record is durable; recovery runs it again for
//! a partition's tip whose step did not finish (a crash came between the commit record and the
//! batch marker). Whatever is attached here therefore runs for every committed batch at least
//! once, crash or not, and more than once only after a crash.
//!
//! Order: the `_index/` entry (recovery's shortcut from the group's offset hint), then the
//! window entries and progress (`[windows]`), then the notification (`[notify]`, acknowledged by the broker), then the batch marker last. The marker
//! is what Airflow waits for and what recovery checks to know the step finished, so nothing else
//! of the step may come after it: a crash anywhere before it makes recovery run the whole step
//! again, so a committed batch's notification is never skipped, and is sent twice only when a
//! crash (or a failed marker write) came after the broker acknowledged it (at least once).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use landfall_core::keys::index_key;
use landfall_core::manifest::{IndexEntry, Manifest};
use landfall_core::notify::{self, Notification};
use landfall_store::recovery::marker_key_of;
use landfall_store::{io, Location, StoreError};

use crate::windows::Windows;

/// Where notifications go: the Kafka producer in `landfall run`, a recorder or a failing
/// stand-in in tests.
pub trait Notify: Send + Sync + fmt::Debug {
    fn topic(&self) -> &str;
    /// Resolves once the notification is durable at the broker (acknowledged).
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), String>>;
}

impl Notify for landfall_kafka::Notifier {
    fn topic(&self) -> &str {
        landfall_kafka::Notifier::topic(self)
    }

    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(landfall_kafka::Notifier::send(self, n))
    }
}

/// Runs the post-commit step of a sink.
#[derive(Debug, Clone)]
pub struct Publisher {
    markers: Location,
    notify: Option<Arc<dyn Notify>>,
    windows: Option<Arc<Windows>>,
}

impl Publisher {
    pub fn new(markers: Location) -> Self {
        Publisher {
            markers,
            notify: None,
            windows: None,
        }
    }

    /// Also keep window entries and progress (`[windows]`), before each marker.
    pub fn with_windows(mut self, windows: Arc<Windows>) -> Self {
        self.windows = Some(windows);
        self
    }

    /// A partition was (re)assigned to this worker, or is recovered after a lost race.
    pub async fn assigned(&self, tp: &landfall_core::TopicPartition) {
        if let Some(w) = &self.windows {
            w.assigned(tp).await;
        }
    }

    /// Which time partitions of `batch` land in the late area (none without `[windows]`).
    pub async fn late_partitions(
        &self,
        batch: &landfall_core::buffer::SealedBatch,
    ) -> Result<Vec<String>, StoreError> {
        let Some(w) = &self.windows else {
            return Ok(Vec::new());
        };
        let tps: Vec<&str> = batch
            .files
            .iter()
            .map(|f| f.time_partition.as_str())
            .collect();
        w.late_partitions(&batch.tp, &batch.attempt_id, &tps).await
    }

    /// The `[windows] late_records` policy (`None` without `[windows]`).
    pub fn late_records(&self) -> Option<landfall_core::config::LateRecords> {
        self.windows.as_ref().map(|w| w.late_records())
    }

    /// Also send each committed batch's notification (before its marker).
    pub fn with_notify(mut self, notify: Arc<dyn Notify>) -> Self {
        self.notify = Some(notify);
        self
    }

    /// Publish a committed batch. Idempotent: every write is a deterministic key with the
    /// same content whoever writes it, so a repeat after a crash changes nothing (except a
    /// notification sent again).
    pub async fn publish(&self, m: &Manifest) -> Result<(), StoreError> {
        let entry = IndexEntry {
            first: m.offsets.first,
        };
        io::put(
            &self.markers,
            &index_key(&m.sink, &m.topic, m.partition, m.offsets.next),
            Bytes::from(serde_json::to_vec(&entry).expect("serializes")),
        )
        .await?;
        let marker = marker_key_of(&self.markers, m)?;
        if let Some(w) = &self.windows {
            w.committed(m).await?;
        }
        if let Some(n) = &self.notify {
            n.send(&notify::batch(m))
                .await
                .map_err(|message| StoreError::Notify {
                    topic: n.topic().to_string(),
                    message,
                })?;
        }
        io::put(&self.markers, &marker, Bytes::from(m.to_json())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_core::manifest::{OffsetRange, FORMAT_VERSION};
    use std::sync::Arc;

    fn manifest(markers: &Location) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            sink: "s".into(),
            topic: "t".into(),
            partition: 3,
            offsets: OffsetRange::new(10, 19),
            gaps: vec![],
            records: 10,
            rows: 10,
            dead_lettered: 0,
            files: vec![],
            dead_letter_files: vec![],
            schema_fingerprint: None,
            event_time: None,
            writer_id: "w".into(),
            attempt_id: "a".into(),
            landed_at: "2026-11-22T00:00:00.000Z".into(),
            flush_reason: "age".into(),
            commit_url: markers.url_of(&markers.path("_commits/s/t/00003/x.json")),
            marker_url: markers.url_of(&markers.path("batches/s/t/dt=2026-11-22/hour=00/m.json")),
        }
    }

    #[tokio::test]
    async fn publishes_the_index_entry_and_the_marker_and_repeats_harmlessly() {
        let markers = Location::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            "memory://lake",
            "_landfall",
        );
        let m = manifest(&markers);
        let p = Publisher::new(markers.clone());
        for _ in 0..2 {
            p.publish(&m).await.unwrap();
        }
        let index = io::get(&markers, &index_key("s", "t", 3, 20))
            .await
            .unwrap();
        let entry: IndexEntry = serde_json::from_slice(&index.unwrap()).unwrap();
        assert_eq!(entry, IndexEntry { first: 10 });
        let marker = io::get(&markers, "batches/s/t/dt=2026-11-22/hour=00/m.json")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Manifest::from_json(&marker).unwrap(), m);
    }

    /// Records what it was given; fails while `fail` is set.
    #[derive(Debug, Default)]
    struct Recorder {
        sent: std::sync::Mutex<Vec<Notification>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Notify for Recorder {
        fn topic(&self) -> &str {
            "landfall.batches"
        }
        fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err("broker down".into());
                }
                self.sent.lock().unwrap().push(n.clone());
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn the_notification_goes_before_the_marker_so_a_failure_leaves_the_step_unfinished() {
        let markers = Location::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            "memory://lake",
            "_landfall",
        );
        let m = manifest(&markers);
        let rec = Arc::new(Recorder::default());
        let p = Publisher::new(markers.clone()).with_notify(rec.clone());
        rec.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let err = p.publish(&m).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("landfall.batches"), "{err}");
        // No marker: recovery sees the step unfinished and runs it again.
        assert!(!landfall_store::recovery::is_published(&markers, &m)
            .await
            .unwrap());
        rec.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        p.publish(&m).await.unwrap();
        assert!(landfall_store::recovery::is_published(&markers, &m)
            .await
            .unwrap());
        let sent = rec.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0], notify::batch(&m));
        assert_eq!(sent[0].value, m.to_json());
    }

    #[tokio::test]
    async fn a_marker_outside_the_prefix_is_refused() {
        let markers = Location::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            "memory://lake",
            "_landfall",
        );
        let mut m = manifest(&markers);
        m.marker_url = "s3://elsewhere/m.json".into();
        let err = Publisher::new(markers).publish(&m).await.unwrap_err();
        assert!(
            err.to_string().contains("outside the marker prefix"),
            "{err}"
        );
    }
}
