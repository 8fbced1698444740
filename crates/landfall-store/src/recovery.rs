//! Recovery on partition assignment (invariant 3: the object store is the source of truth).
//!
//! The group's committed offset is only a hint. It is the `next` of some commit; the index entry
//! `_index/.../{next}` names that commit's first offset, so recovery reads that record and lists
//! only the records after it. Cost is two GETs plus one short listing, however many commits the
//! partition has had. Without a usable hint it lists the partition's commit records.

use bytes::Bytes;
use landfall_core::keys::{commit_dir, commit_key, genesis_key, index_key, parse_commit_key};
use landfall_core::manifest::{Genesis, IndexEntry, Manifest, FORMAT_VERSION};

use crate::backend::Location;
use crate::commit::read_manifest;
use crate::error::StoreError;
use crate::io::{self, Created};

/// The group's committed offset for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub committed_offset: i64,
}

/// The first offset of the commit whose `next` is `next`, from the index.
async fn indexed_first(
    markers: &Location,
    sink: &str,
    topic: &str,
    partition: i32,
    next: i64,
) -> Result<Option<i64>, StoreError> {
    let Some(b) = io::get(markers, &index_key(sink, topic, partition, next)).await? else {
        return Ok(None);
    };
    // An unreadable entry is only a lost shortcut: recovery falls back to listing.
    Ok(serde_json::from_slice::<IndexEntry>(&b)
        .ok()
        .map(|e| e.first))
}

#[derive(Debug, Clone)]
pub struct Recovered {
    /// The offset the partition continues from.
    pub next: i64,
    /// The latest commit record, if any.
    pub tip: Option<Manifest>,
    /// The tip's post-commit step did not finish (its batch marker is missing): a crash came
    /// between the commit record and the marker. The caller publishes it again.
    pub tip_unpublished: bool,
    /// Commit records listed to find the tip (stays small with a good hint).
    pub listed: usize,
    /// How the tip was found, for logs: "hint", "hint+listing", "listing", "genesis".
    pub via: &'static str,
}

/// Where a never-committed partition starts, and who decided it (for its genesis record).
#[derive(Debug, Clone, Copy)]
pub struct IfNew<'a> {
    /// `None`: the start could not be decided (the broker gave no watermarks); recovering a
    /// partition that has no genesis record yet is then an error rather than a guess.
    pub offset: Option<i64>,
    pub writer_id: &'a str,
    pub now_rfc3339: &'a str,
}

/// Find where a partition continues. `if_new` is used only when the partition has never
/// been committed: it becomes the genesis record every later worker agrees on.
pub async fn recover_partition(
    markers: &Location,
    sink: &str,
    topic: &str,
    partition: i32,
    hint: Option<Hint>,
    if_new: IfNew<'_>,
) -> Result<Recovered, StoreError> {
    let dir = commit_dir(sink, topic, partition);
    let hinted = match hint {
        Some(h) => indexed_first(markers, sink, topic, partition, h.committed_offset)
            .await?
            .map(|f| (h, f)),
        None => None,
    };
    if let Some((h, first)) = hinted {
        let after = io::list(
            markers,
            &dir,
            Some(&commit_key(sink, topic, partition, first)),
        )
        .await?;
        let later = after
            .iter()
            .filter_map(|l| parse_commit_key(l.path.as_ref()))
            .max();
        let tip_first = later.unwrap_or(first);
        if let Some(tip) =
            read_manifest(markers, &commit_key(sink, topic, partition, tip_first)).await?
        {
            if later.is_some() || tip.offsets.next == h.committed_offset {
                return Ok(Recovered {
                    next: tip.offsets.next,
                    tip_unpublished: !is_published(markers, &tip).await?,
                    tip: Some(tip),
                    listed: after.len(),
                    via: if later.is_some() {
                        "hint+listing"
                    } else {
                        "hint"
                    },
                });
            }
        }
        // The hint does not match the store (another deployment's offsets, a wiped bucket):
        // fall back to a full listing.
    }
    let all = io::list(markers, &dir, None).await?;
    let tip_first = all
        .iter()
        .filter_map(|l| parse_commit_key(l.path.as_ref()))
        .max();
    if let Some(first) = tip_first {
        let tip = read_manifest(markers, &commit_key(sink, topic, partition, first))
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                url: markers.url_of(&markers.path(&commit_key(sink, topic, partition, first))),
                message: "listed commit record vanished".into(),
            })?;
        return Ok(Recovered {
            next: tip.offsets.next,
            tip_unpublished: !is_published(markers, &tip).await?,
            tip: Some(tip),
            listed: all.len(),
            via: "listing",
        });
    }
    let genesis = ensure_genesis(markers, sink, topic, partition, if_new).await?;
    Ok(Recovered {
        next: genesis.first_offset,
        tip: None,
        tip_unpublished: false,
        listed: all.len(),
        via: "genesis",
    })
}

/// The batch marker is the last write of a committed batch's post-commit step, so its presence
/// says the step finished. A crash between the commit record and the marker leaves only the tip
/// in that state: the next batch is landed only after the marker.
pub async fn is_published(markers: &Location, tip: &Manifest) -> Result<bool, StoreError> {
    io::exists(markers, &marker_key_of(markers, tip)?).await
}

/// The batch marker key a committed manifest names (relative to the marker prefix).
pub fn marker_key_of(markers: &Location, m: &Manifest) -> Result<String, StoreError> {
    markers
        .key_of_url(&m.marker_url)
        .ok_or_else(|| StoreError::Corrupt {
            url: m.commit_url.clone(),
            message: format!("marker_url {} is outside the marker prefix", m.marker_url),
        })
}

async fn ensure_genesis(
    markers: &Location,
    sink: &str,
    topic: &str,
    partition: i32,
    if_new: IfNew<'_>,
) -> Result<Genesis, StoreError> {
    let key = genesis_key(sink, topic, partition);
    let parse = |b: Bytes| {
        serde_json::from_slice::<Genesis>(&b).map_err(|e| StoreError::Corrupt {
            url: markers.url_of(&markers.path(&key)),
            message: format!("not a genesis record: {e}"),
        })
    };
    if let Some(b) = io::get(markers, &key).await? {
        return parse(b);
    }
    let Some(first_offset) = if_new.offset else {
        return Err(StoreError::NoStart {
            url: markers.url_of(&markers.path(&key)),
            what: format!("{topic}[{partition}]"),
        });
    };
    let g = Genesis {
        format_version: FORMAT_VERSION,
        sink: sink.into(),
        topic: topic.into(),
        partition,
        first_offset,
        writer_id: if_new.writer_id.into(),
        created_at: if_new.now_rfc3339.into(),
    };
    let bytes = Bytes::from(serde_json::to_vec_pretty(&g).expect("serializes"));
    match io::create(markers, &key, bytes).await? {
        Created::Yes => Ok(g),
        // Another worker chose first; its choice wins. Not readable yet: its create is still in
        // flight (replicas starting together on an empty store; S3 answers 409).
        Created::AlreadyExists => {
            parse(
                io::get(markers, &key)
                    .await?
                    .ok_or_else(|| StoreError::Conflict {
                        url: markers.url_of(&markers.path(&key)),
                    })?,
            )
        }
    }
}
