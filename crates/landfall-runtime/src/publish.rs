//! The post-commit step: everything that hangs off a committed batch, in one place.
//!
//! A fresh landing runs it right after its commit record is durable; recovery runs it again for
//! a partition's tip whose step did not finish (a crash came between the commit record and the
//! batch marker). Whatever is attached here therefore runs for every committed batch at least
//! once, crash or not, and more than once only after a crash.
//!
//! Order: the `_index/` entry (recovery's shortcut from the group's offset hint), then the
//! batch marker last. The marker is what Airflow waits for and what recovery checks to know the
//! step finished, so nothing else of the step may come after it.

use bytes::Bytes;
use landfall_core::keys::index_key;
use landfall_core::manifest::{IndexEntry, Manifest};
use landfall_store::recovery::marker_key_of;
use landfall_store::{io, Location, StoreError};

/// Runs the post-commit step of a sink.
#[derive(Debug, Clone)]
pub struct Publisher {
    markers: Location,
}

impl Publisher {
    pub fn new(markers: Location) -> Self {
        Publisher { markers }
    }

    /// Publish a committed batch. Idempotent: every write is a deterministic key with the
    /// same content whoever writes it, so a repeat after a crash changes nothing.
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
