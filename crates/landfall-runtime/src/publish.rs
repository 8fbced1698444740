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
