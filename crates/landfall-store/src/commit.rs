//! The commit (arrow 5): the fenced commit record, and reading manifests back.

use bytes::Bytes;
use landfall_core::manifest::{Landed, Manifest};

use crate::backend::Location;
use crate::error::StoreError;
use crate::io::{self, Created};

/// Write the commit record create-only. A retry after an unknown outcome (timeout, reset) that
/// finds the record already there reads it back: if the attempt id is ours, the first try landed.
pub async fn commit_record(
    markers: &Location,
    commit_key: &str,
    manifest: &Manifest,
) -> Result<Landed, StoreError> {
    match io::create(markers, commit_key, Bytes::from(manifest.to_json())).await? {
        Created::Yes => Ok(Landed::Committed(Box::new(manifest.clone()))),
        Created::AlreadyExists => {
            // Not readable yet: the other writer's create is still in flight (S3 answers 409).
            let existing =
                read_manifest(markers, commit_key)
                    .await?
                    .ok_or_else(|| StoreError::Conflict {
                        url: markers.url_of(&markers.path(commit_key)),
                    })?;
            if existing.attempt_id == manifest.attempt_id {
                Ok(Landed::Committed(Box::new(existing)))
            } else {
                Ok(Landed::Lost(Box::new(existing)))
            }
        }
    }
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
