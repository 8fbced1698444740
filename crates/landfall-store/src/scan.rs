//! Whole-sink scans for `landfall verify` and `landfall gc`. Not on the hot path.

use std::collections::HashSet;

use futures::{stream, StreamExt, TryStreamExt};
use landfall_core::keys::parse_commit_key;
use landfall_core::manifest::{Genesis, Manifest};
use object_store::ObjectStoreExt;

use crate::backend::Location;
use crate::commit::read_manifest;
use crate::error::StoreError;
use crate::io::{self, Listed};

/// Every commit record and genesis record of a sink.
pub async fn load_commits(
    markers: &Location,
    sink: &str,
) -> Result<(Vec<Manifest>, Vec<Genesis>), StoreError> {
    let listed = io::list(markers, &format!("_commits/{sink}"), None).await?;
    let mut commit_keys = Vec::new();
    let mut genesis_keys = Vec::new();
    for l in &listed {
        let Some(rel) = markers.relative(&l.path) else {
            continue;
        };
        if parse_commit_key(rel).is_some() {
            commit_keys.push(rel.to_string());
        } else if rel.ends_with("/genesis.json") {
            genesis_keys.push(rel.to_string());
        }
    }
    let manifests: Vec<Manifest> = stream::iter(commit_keys)
        .map(|k| async move {
            read_manifest(markers, &k)
                .await?
                .ok_or_else(|| StoreError::Corrupt {
                    url: markers.url_of(&markers.path(&k)),
                    message: "listed commit record vanished".into(),
                })
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let mut genesis = Vec::new();
    for k in genesis_keys {
        if let Some(b) = io::get(markers, &k).await? {
            genesis.push(serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                url: markers.url_of(&markers.path(&k)),
                message: e.to_string(),
            })?);
        }
    }
    Ok((manifests, genesis))
}

/// Files a manifest lists that are missing or whose size differs: each is a broken promise.
pub async fn missing_files(
    data: &Location,
    manifests: &[Manifest],
) -> Result<Vec<String>, StoreError> {
    let entries: Vec<(String, u64)> = manifests
        .iter()
        .flat_map(|m| m.files.iter().chain(&m.dead_letter_files))
        .map(|f| (f.url.clone(), f.size_bytes))
        .collect();
    let results: Vec<Option<String>> = stream::iter(entries)
        .map(|(url, size)| async move {
            let Some(key) = data.key_of_url(&url) else {
                return Ok(None); // lives in another location (dead letters); not checked here
            };
            match data.store.head(&data.path(&key)).await {
                Ok(meta) if meta.size == size => Ok(None),
                Ok(meta) => Ok(Some(format!(
                    "{url}: size {} but the manifest says {size}",
                    meta.size
                ))),
                Err(object_store::Error::NotFound { .. }) => Ok(Some(format!("{url}: missing"))),
                Err(e) => Err(StoreError::object("head", url.clone(), e)),
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    Ok(results.into_iter().flatten().collect())
}

/// Objects under `dirs` that no manifest lists and that are older than `older_than`: files of a
/// batch that crashed between upload and commit, or of a zombie whose commit was refused.
pub async fn orphans(
    loc: &Location,
    dirs: &[String],
    listed_urls: &HashSet<String>,
    older_than: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Listed>, StoreError> {
    let mut out = Vec::new();
    for dir in dirs {
        for l in io::list(loc, dir, None).await? {
            // A window marker (`_SUCCESS`) is Landfall's own, listed by no batch manifest.
            let window_marker = l.path.filename() == Some("_SUCCESS");
            if !window_marker
                && !listed_urls.contains(&loc.url_of(&l.path))
                && l.last_modified < older_than
            {
                out.push(l);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;

    #[tokio::test]
    async fn window_markers_are_not_orphans() {
        let data = Location::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            "memory://lake",
            "raw",
        );
        let listed_key = "t/dt=2026-11-21/hour=10/t+0+00000000000000000000+a-0.parquet";
        let orphan_key = "t/dt=2026-11-21/hour=10/t+0+00000000000000000000+b-0.parquet";
        let success = landfall_core::keys::window_marker_key("t", "dt=2026-11-21/hour=10");
        for k in [listed_key, orphan_key, success.as_str()] {
            io::put(&data, k, Bytes::from_static(b"x")).await.unwrap();
        }
        let listed: HashSet<String> = [data.url_of(&data.path(listed_key))].into();
        let found = orphans(
            &data,
            &["t".to_string()],
            &listed,
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
        let keys: Vec<String> = found
            .iter()
            .map(|l| data.relative(&l.path).unwrap().to_string())
            .collect();
        assert_eq!(keys, [orphan_key]);
    }
}
