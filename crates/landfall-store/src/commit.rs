//! The commit (arrow 5): the fenced commit record, then the Airflow-facing batch marker.

use bytes::Bytes;
use landfall_core::manifest::Manifest;

use crate::backend::Location;
use crate::error::StoreError;
use crate::io::{self, Created};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Our commit record is durable; this is it (on a retry, the record of the first try).
    Committed(Box<Manifest>),
    /// Another writer committed this range first; here is what it wrote.
    Lost(Box<Manifest>),
}

/// Write the commit record create-only. A retry after an unknown outcome (timeout, reset) that
/// finds the record already there reads it back: if the attempt id is ours, the first try landed.
pub async fn commit_record(
    markers: &Location,
    commit_key: &str,
    manifest: &Manifest,
) -> Result<CommitOutcome, StoreError> {
    match io::create(markers, commit_key, Bytes::from(manifest.to_json())).await? {
        Created::Yes => Ok(CommitOutcome::Committed(Box::new(manifest.clone()))),
        Created::AlreadyExists => {
            let existing =
                read_manifest(markers, commit_key)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt {
                        url: markers.url_of(&markers.path(commit_key)),
                        message:
                            "create-only put said the commit record exists, but it cannot be read"
                                .into(),
                    })?;
            if existing.attempt_id == manifest.attempt_id {
                Ok(CommitOutcome::Committed(Box::new(existing)))
            } else {
                Ok(CommitOutcome::Lost(Box::new(existing)))
            }
        }
    }
}

/// Write (or rewrite) the batch marker Airflow watches. Overwrite is fine: its content is the
/// committed manifest, identical whoever writes it.
pub async fn publish_marker(
    markers: &Location,
    marker_key: &str,
    manifest: &Manifest,
) -> Result<(), StoreError> {
    io::put(markers, marker_key, Bytes::from(manifest.to_json())).await
}

pub async fn read_manifest(loc: &Location, key: &str) -> Result<Option<Manifest>, StoreError> {
    match io::get(loc, key).await? {
        Some(bytes) => Manifest::from_json(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                url: loc.url_of(&loc.path(key)),
                message: format!("not a Landfall manifest: {e}"),
            }),
        None => Ok(None),
    }
}
