//! Landing one sealed batch (arrows 4 and 5): upload its files, write its dead letters, write the
//! fenced commit record, then run the post-commit step ([`crate::publish`]). Marker after data:
//! the commit record is written only once every file it lists is durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::try_join_all;
use landfall_core::buffer::SealedBatch;
use landfall_core::config::LateRecords;
use landfall_core::keys::{batch_marker_key, commit_key, data_key, dead_letter_key};
use landfall_core::manifest::{FileEntry, Landed, LandingIds, Manifest};
use landfall_store::commit::commit_record;
use landfall_store::{io, StoreError};
use tokio::sync::Semaphore;
use tracing::warn;

use crate::publish::Publisher;
use crate::stores::SinkStores;

#[derive(Debug, Clone)]
pub struct LandSettings {
    pub sink: String,
    pub writer_id: String,
    pub multipart_threshold_bytes: u64,
    pub multipart_part_bytes: u64,
}

/// How long the two halves of a landing took (`landfall_upload_seconds`,
/// `landfall_commit_seconds`); a half that did not run stays `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Data files and dead letters.
    pub upload: Option<Duration>,
    /// Commit record and post-commit step.
    pub commit: Option<Duration>,
}

/// Land a batch. Its attempt id stays the same across retries, so a retry after an unknown
/// outcome recognises its own commit record and only re-runs the post-commit step.
pub async fn land(
    stores: &SinkStores,
    settings: &LandSettings,
    uploads: &Arc<Semaphore>,
    publisher: &Publisher,
    batch: &SealedBatch,
    now_ms: impl Fn() -> i64,
) -> Result<Landed, StoreError> {
    land_timed(
        stores,
        settings,
        uploads,
        publisher,
        batch,
        now_ms,
        &mut Timings::default(),
    )
    .await
}

/// [`land`], recording how long its halves took in `timings`.
pub async fn land_timed(
    stores: &SinkStores,
    settings: &LandSettings,
    uploads: &Arc<Semaphore>,
    publisher: &Publisher,
    batch: &SealedBatch,
    now_ms: impl Fn() -> i64,
    timings: &mut Timings,
) -> Result<Landed, StoreError> {
    let started = Instant::now();
    let tp = &batch.tp;
    let first = batch.offsets.first;
    let attempt = batch.attempt_id.as_str();
    // `[windows]`: files of windows that already closed go to the late area (decided once
    // per attempt, so a retry lands the same layout).
    let late = publisher.late_partitions(batch).await?;
    // ... or, with `late_records = "dead_letter"`, their rows become dead letters: the batch
    // lands without those files, and its dead-letter file gains their original records.
    let dead_lettered;
    let (batch, late) = if !late.is_empty()
        && publisher.late_records() == Some(LateRecords::DeadLetter)
    {
        match landfall_core::windows::dead_letter_late(batch, &late) {
            Ok(b) => {
                dead_lettered = b;
                (&dead_lettered, Vec::new())
            }
            Err(reason) => {
                // Only if the buffer did not keep the records (a bug): still never in the
                // closed window, and nothing lost.
                warn!(sink = %settings.sink, %reason, "late rows land in the late area instead of the dead letters");
                (batch, late)
            }
        }
    } else {
        (batch, late)
    };
    let late = &late;

    let files = try_join_all(batch.files.iter().map(|f| async move {
        let dir = if late.contains(&f.time_partition) {
            landfall_core::windows::late_partition(&f.time_partition)
        } else {
            f.time_partition.clone()
        };
        let key = data_key(
            &settings.sink,
            &tp.topic,
            &dir,
            tp.partition,
            first,
            attempt,
            f.seq,
        );
        let _permit = uploads.acquire().await.expect("semaphore never closed");
        let path = io::upload(
            &stores.data,
            &key,
            f.bytes.clone(),
            settings.multipart_threshold_bytes,
            settings.multipart_part_bytes,
        )
        .await?;
        let mut entry =
            FileEntry::data(f, stores.data.url_of(&path), stores.data.bucket_key(&path));
        // A late file's `time_partition` is its directory, `_late/dt=.../hour=...`.
        entry.time_partition = Some(dir);
        Ok::<_, StoreError>(entry)
    }))
    .await?;

    let mut dead_letter_files = Vec::new();
    if !batch.rejected.is_empty() {
        let key = dead_letter_key(&settings.sink, &tp.topic, tp.partition, first, attempt);
        let body = Bytes::from(landfall_core::deadletter::jsonl(&batch.rejected));
        let path = stores.dead_letters.path(&key);
        io::put(&stores.dead_letters, &key, body.clone()).await?;
        dead_letter_files.push(FileEntry::dead_letters(
            batch,
            &body,
            stores.dead_letters.url_of(&path),
            stores.dead_letters.bucket_key(&path),
        ));
    }

    timings.upload = Some(started.elapsed());
    let committing = Instant::now();
    let landed_at_ms = now_ms();
    let ckey = commit_key(&settings.sink, &tp.topic, tp.partition, first);
    let mkey = batch_marker_key(&settings.sink, &tp.topic, tp.partition, first, landed_at_ms);
    let manifest = Manifest::assemble(
        batch,
        files,
        dead_letter_files,
        LandingIds {
            sink: &settings.sink,
            writer_id: &settings.writer_id,
            landed_at_ms,
            commit_url: stores.markers.url_of(&stores.markers.path(&ckey)),
            marker_url: stores.markers.url_of(&stores.markers.path(&mkey)),
        },
    );
    let landed = commit_record(&stores.markers, &ckey, &manifest).await?;
    if let Landed::Committed(m) = &landed {
        // On a retry after an unknown outcome `m` is the first try's record, whose marker key
        // (it contains the landing time) differs from the one computed now: it is what counts.
        publisher.publish(m).await?;
    }
    timings.commit = Some(committing.elapsed());
    Ok(landed)
}
