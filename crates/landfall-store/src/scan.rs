//! Whole-sink scans for `landfall verify` and `landfall gc`. Not on the hot path.

use futures::{stream, StreamExt, TryStreamExt};
use landfall_core::keys::parse_commit_key;
use landfall_core::keys::FileKind;
use landfall_core::manifest::{Genesis, Manifest};
use landfall_core::orphans::{GcView, Verdict};
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
    load_commits_under(markers, &format!("_commits/{sink}")).await
}

/// Every commit record under the marker prefix, of every sink: what `landfall gc` checks a file
/// against before calling it an orphan (another sink sharing the data prefix may list it).
pub async fn load_all_commits(markers: &Location) -> Result<Vec<Manifest>, StoreError> {
    Ok(load_commits_under(markers, "_commits").await?.0)
}

async fn load_commits_under(
    markers: &Location,
    dir: &str,
) -> Result<(Vec<Manifest>, Vec<Genesis>), StoreError> {
    let listed = io::list(markers, dir, None).await?;
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

/// Objects under `dirs` (relative to `loc`) that `view` judges orphans of its sink; the rules are
/// in `landfall_core::orphans`. Returns every object found with its verdict, so the caller can
/// report what was kept and why.
pub async fn judge(
    loc: &Location,
    kind: FileKind,
    dirs: &[String],
    view: &GcView,
) -> Result<Vec<(Listed, Verdict)>, StoreError> {
    let mut out = Vec::new();
    for dir in dirs {
        for l in io::list(loc, dir, None).await? {
            let verdict = view.judge(kind, l.path.as_ref(), l.last_modified.timestamp_millis());
            out.push((l, verdict));
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
    async fn window_markers_and_late_files_are_never_orphans() {
        let data = Location::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            "memory://lake",
            "raw",
        );
        let listed_key = "t/dt=2026-11-21/hour=10/t+0+00000000000000000000+s+a-0.parquet";
        let orphan_key = "t/dt=2026-11-21/hour=10/t+0+00000000000000000000+s+b-0.parquet";
        let late_key = "t/_late/dt=2026-11-21/hour=09/t+0+00000000000000000000+s+a-1.parquet";
        let success = landfall_core::keys::window_marker_key("t", "dt=2026-11-21/hour=10");
        for k in [listed_key, orphan_key, late_key, success.as_str()] {
            io::put(&data, k, Bytes::from_static(b"x")).await.unwrap();
        }
        // Built from JSON so the test does not depend on every field of the model.
        let file = |key: &str| {
            serde_json::json!({"url": data.url_of(&data.path(key)), "key": key,
                "size_bytes": 1, "rows": 1, "sha256": "", "min_offset": 0, "max_offset": 0})
        };
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "format_version": 1, "sink": "s", "topic": "t", "partition": 0,
            "offsets": {"first": 0, "last": 9, "next": 10},
            "records": 2, "rows": 2, "dead_lettered": 0,
            "files": [file(listed_key), file(late_key)],
            "writer_id": "w", "attempt_id": "a", "landed_at": "2026-11-21T11:00:00.000Z",
            "flush_reason": "age", "commit_url": "c", "marker_url": "m"
        }))
        .unwrap();
        let view = GcView::new("s", &[m], i64::MAX);
        let found = judge(&data, FileKind::Data, &["t".to_string()], &view)
            .await
            .unwrap();
        let verdicts: Vec<(String, Verdict)> = found
            .iter()
            .map(|(l, v)| (data.relative(&l.path).unwrap().to_string(), *v))
            .collect();
        assert_eq!(
            verdicts,
            [
                (late_key.to_string(), Verdict::Listed),
                (success, Verdict::Unrecognised),
                (listed_key.to_string(), Verdict::Listed),
                (orphan_key.to_string(), Verdict::Orphan),
            ]
        );
    }
}
