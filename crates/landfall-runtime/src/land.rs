//! Landing one sealed batch (arrows 4 and 5): upload its files, write its dead letters, write the
//! fenced commit record, then the batch marker. Marker after data: the commit record is written
//! only once every file it lists is durable.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use futures::future::try_join_all;
use landfall_core::buffer::SealedBatch;
use landfall_core::keys::{batch_marker_key, commit_key, data_key, dead_letter_key, index_key};
use landfall_core::manifest::{
    rfc3339_ms, rfc3339_us, sha256_hex, FileEntry, Manifest, TimeRange, FORMAT_VERSION,
};
use landfall_store::commit::{commit_record, publish_marker, CommitOutcome};
use landfall_store::{io, Location, StoreError};
use tokio::sync::Semaphore;

/// The three places a sink writes.
#[derive(Debug, Clone)]
pub struct SinkStores {
    pub data: Location,
    pub markers: Location,
    pub dead_letters: Location,
}

#[derive(Debug, Clone)]
pub struct LandSettings {
    pub sink: String,
    pub writer_id: String,
    pub multipart_threshold_bytes: u64,
    pub multipart_part_bytes: u64,
}

#[derive(Debug)]
pub enum Landed {
    Committed(Box<Manifest>),
    /// Another writer committed a batch at this start offset first.
    Lost(Box<Manifest>),
}

/// Land a batch. `attempt_id` stays the same across retries of the same batch, so a retry after
/// an unknown outcome recognises its own commit record.
pub async fn land(
    stores: &SinkStores,
    settings: &LandSettings,
    uploads: &Arc<Semaphore>,
    batch: &SealedBatch,
    attempt_id: &str,
    now_ms: impl Fn() -> i64,
) -> Result<Landed, StoreError> {
    let tp = &batch.tp;
    let first = batch.offsets.first;

    let files = try_join_all(batch.files.iter().map(|f| async move {
        let key = data_key(
            &tp.topic,
            &f.time_partition,
            tp.partition,
            first,
            attempt_id,
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
        Ok::<_, StoreError>(FileEntry {
            url: stores.data.url_of(&path),
            key: stores.data.bucket_key(&path),
            size_bytes: f.bytes.len() as u64,
            rows: f.rows,
            sha256: f.sha256.clone(),
            time_partition: Some(f.time_partition.clone()),
            min_offset: f.min_offset,
            max_offset: f.max_offset,
            schema_fingerprint: Some(f.schema_fingerprint.clone()),
        })
    }))
    .await?;

    let mut dead_letter_files = Vec::new();
    if !batch.rejected.is_empty() {
        let key = dead_letter_key(&settings.sink, &tp.topic, tp.partition, first, attempt_id);
        let body = dead_letter_lines(batch);
        let path = stores.dead_letters.path(&key);
        io::put(&stores.dead_letters, &key, body.clone()).await?;
        dead_letter_files.push(FileEntry {
            url: stores.dead_letters.url_of(&path),
            key: stores.dead_letters.bucket_key(&path),
            size_bytes: body.len() as u64,
            rows: batch.rejected.len() as u64,
            sha256: sha256_hex(&body),
            time_partition: None,
            min_offset: batch
                .rejected
                .iter()
                .map(|r| r.record.offset)
                .min()
                .unwrap_or(first),
            max_offset: batch
                .rejected
                .iter()
                .map(|r| r.record.offset)
                .max()
                .unwrap_or(first),
            schema_fingerprint: None,
        });
    }

    let landed_at = now_ms();
    let ckey = commit_key(&settings.sink, &tp.topic, tp.partition, first);
    let mkey = batch_marker_key(&settings.sink, &tp.topic, tp.partition, first, landed_at);
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        sink: settings.sink.clone(),
        topic: tp.topic.to_string(),
        partition: tp.partition,
        offsets: batch.offsets,
        records: batch.records,
        rows: batch.rows(),
        dead_lettered: batch.rejected.len() as u64,
        schema_fingerprint: files.first().and_then(|f| f.schema_fingerprint.clone()),
        files,
        dead_letter_files,
        event_time: batch.event_time_us.map(|(lo, hi)| TimeRange {
            min: rfc3339_us(lo),
            max: rfc3339_us(hi),
        }),
        writer_id: settings.writer_id.clone(),
        attempt_id: attempt_id.to_string(),
        landed_at: rfc3339_ms(landed_at),
        flush_reason: batch.reason.as_str().to_string(),
        commit_url: stores.markers.url_of(&stores.markers.path(&ckey)),
        marker_url: stores.markers.url_of(&stores.markers.path(&mkey)),
    };
    let committed = match commit_record(&stores.markers, &ckey, &manifest).await? {
        CommitOutcome::Committed(m) => m,
        CommitOutcome::Lost(existing) => return Ok(Landed::Lost(existing)),
    };
    // The index entry lets recovery go from the group's committed offset (this commit's `next`)
    // to this record without listing history. Written before the marker, so a marker implies it.
    let index = serde_json::to_vec(&serde_json::json!({ "first": committed.offsets.first }))
        .expect("serializes");
    io::put(
        &stores.markers,
        &index_key(
            &settings.sink,
            &tp.topic,
            tp.partition,
            committed.offsets.next,
        ),
        Bytes::from(index),
    )
    .await?;
    // On a retry after an unknown outcome the durable record is the first try's, whose marker key
    // (it contains the landing time) differs from the one computed now: publish that one.
    let marker_key = stores
        .markers
        .key_of_url(&committed.marker_url)
        .unwrap_or(mkey);
    publish_marker(&stores.markers, &marker_key, &committed).await?;
    Ok(Landed::Committed(committed))
}

/// JSON lines, one per rejected record, with everything needed to replay it.
fn dead_letter_lines(batch: &SealedBatch) -> Bytes {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for r in &batch.rejected {
        let rec = &r.record;
        let line = serde_json::json!({
            "topic": rec.topic.as_ref(),
            "partition": rec.partition,
            "offset": rec.offset,
            "timestamp_ms": rec.timestamp_ms,
            "reason": r.reason,
            "key_base64": rec.key.as_ref().map(|k| b64.encode(k)),
            "value_base64": rec.value.as_ref().map(|v| b64.encode(v)),
            "headers": rec.headers.iter().map(|(k, v)| serde_json::json!({
                "key": k,
                "value_base64": v.as_ref().map(|v| b64.encode(v)),
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer(&mut out, &line).expect("serializes");
        out.push(b'\n');
    }
    Bytes::from(out)
}
