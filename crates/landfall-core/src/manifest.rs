//! The manifest (arrow 5 of the data flow): what one landed batch contains. The same JSON is the
//! fenced commit record and the Airflow-facing batch marker. Format: `docs/markers.md`,
//! JSON Schema: `docs/schemas/manifest.v1.json`.

use serde::{Deserialize, Serialize};

use crate::buffer::{EncodedFile, SealedBatch};

pub const FORMAT_VERSION: u32 = 1;

/// Offsets a batch covers. `next` is `last + 1`: where the following batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetRange {
    pub first: i64,
    pub last: i64,
    pub next: i64,
}

impl OffsetRange {
    pub fn new(first: i64, last: i64) -> Self {
        OffsetRange {
            first,
            last,
            next: last + 1,
        }
    }
}

/// Why offsets inside a batch's range were never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// Kafka's retention deleted them before they were landed (the partition was out of range
    /// below the log start; Landfall continued from the log start).
    Retention,
}

impl GapReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::Retention => "retention",
        }
    }
}

/// Offsets `first..=last` inside a batch's range that were skipped, not read, and why. The
/// batch's range still starts where the previous commit ends, so the chain of commits stays
/// gap-free; the skip is explained inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub first: i64,
    pub last: i64,
    pub reason: GapReason,
}

impl Gap {
    /// Offsets skipped.
    pub fn len(&self) -> u64 {
        (self.last - self.first + 1).max(0) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Full URL, e.g. `s3://lake/raw/orders/dt=2026-11-21/hour=10/orders+0+...parquet`.
    pub url: String,
    /// Key within the bucket (what an `S3Hook` wants).
    pub key: String,
    pub size_bytes: u64,
    /// Parquet rows, or dead-lettered records for a dead-letter file.
    pub rows: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_partition: Option<String>,
    pub min_offset: i64,
    pub max_offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// RFC 3339, microseconds, UTC.
    pub min: String,
    pub max: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub sink: String,
    pub topic: String,
    pub partition: i32,
    pub offsets: OffsetRange,
    /// Offsets inside `offsets` that were skipped, not read, with the reason; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    /// Records consumed: `rows + dead_lettered`.
    pub records: u64,
    pub rows: u64,
    pub dead_lettered: u64,
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub dead_letter_files: Vec<FileEntry>,
    /// Fingerprint of the first file's schema (each file carries its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<TimeRange>,
    pub writer_id: String,
    /// Unique per landing attempt; tells a writer whether an existing commit record is its own.
    pub attempt_id: String,
    /// RFC 3339, milliseconds, UTC.
    pub landed_at: String,
    pub flush_reason: String,
    /// URL of the fenced commit record.
    pub commit_url: String,
    /// URL of the Airflow-facing batch marker (same content).
    pub marker_url: String,
}

/// Where a partition's commit chain starts, chosen once per partition and written create-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub format_version: u32,
    pub sink: String,
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub writer_id: String,
    pub created_at: String,
}

/// Hex SHA-256 of a file's bytes, as manifests list it (`hashlib.sha256(data).hexdigest()`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Format microseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Format milliseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The `_index/` entry of a commit: from the offset a commit ends before (what the group's
/// committed offset hint says) to the commit record's key (its first offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub first: i64,
}

/// What landing a batch came to. Returned by the create-only commit and by the whole landing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// Our commit record is durable; this is it (on a retry after an unknown outcome, the record
    /// of the first try, which may differ in `landed_at` and `marker_url`).
    Committed(Box<Manifest>),
    /// Another writer committed a batch at this start offset first; here is what it wrote.
    Lost(Box<Manifest>),
}

/// Who lands a batch, when, and where its records go: what a manifest needs besides the batch.
#[derive(Debug, Clone)]
pub struct LandingIds<'a> {
    pub sink: &'a str,
    pub writer_id: &'a str,
    pub landed_at_ms: i64,
    pub commit_url: String,
    pub marker_url: String,
}

impl FileEntry {
    /// The entry of an uploaded data file.
    pub fn data(file: &EncodedFile, url: String, key: String) -> FileEntry {
        FileEntry {
            url,
            key,
            size_bytes: file.bytes.len() as u64,
            rows: file.rows,
            sha256: file.sha256.clone(),
            time_partition: Some(file.time_partition.clone()),
            min_offset: file.min_offset,
            max_offset: file.max_offset,
            schema_fingerprint: Some(file.schema_fingerprint.clone()),
        }
    }

    /// The entry of a batch's dead-letter file (`body` as [`crate::deadletter::jsonl`] made it).
    pub fn dead_letters(batch: &SealedBatch, body: &[u8], url: String, key: String) -> FileEntry {
        let offsets = batch.rejected.iter().map(|r| r.record.offset);
        FileEntry {
            url,
            key,
            size_bytes: body.len() as u64,
            rows: batch.rejected.len() as u64,
            sha256: sha256_hex(body),
            time_partition: None,
            min_offset: offsets.clone().min().unwrap_or(batch.offsets.first),
            max_offset: offsets.max().unwrap_or(batch.offsets.first),
            schema_fingerprint: None,
        }
    }
}

impl Manifest {
    /// The manifest of a batch whose files are durable at the listed places.
    pub fn assemble(
        batch: &SealedBatch,
        files: Vec<FileEntry>,
        dead_letter_files: Vec<FileEntry>,
        ids: LandingIds<'_>,
    ) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            sink: ids.sink.to_string(),
            topic: batch.tp.topic.to_string(),
            partition: batch.tp.partition,
            offsets: batch.offsets,
            gaps: batch.gaps.clone(),
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
            writer_id: ids.writer_id.to_string(),
            attempt_id: batch.attempt_id.clone(),
            landed_at: rfc3339_ms(ids.landed_at_ms),
            flush_reason: batch.reason.as_str().to_string(),
            commit_url: ids.commit_url,
            marker_url: ids.marker_url,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_against_the_published_schema_fields() {
        let m = Manifest {
            format_version: FORMAT_VERSION,
            sink: "s".into(),
            topic: "t".into(),
            partition: 1,
            offsets: OffsetRange::new(10, 19),
            gaps: vec![],
            records: 10,
            rows: 9,
            dead_lettered: 1,
            files: vec![],
            dead_letter_files: vec![],
            schema_fingerprint: None,
            event_time: Some(TimeRange {
                min: rfc3339_us(0),
                max: rfc3339_us(1_500_000),
            }),
            writer_id: "w".into(),
            attempt_id: "a".into(),
            landed_at: rfc3339_ms(1_000),
            flush_reason: "age".into(),
            commit_url: "c".into(),
            marker_url: "m".into(),
        };
        let back = Manifest::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.offsets.next, 20);
        assert_eq!(m.event_time.unwrap().max, "1970-01-01T00:00:01.500000Z");
        // Every required property of the published JSON Schema is a field we write.
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/schemas/manifest.v1.json")).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&back.to_json()).unwrap();
        for key in schema["required"].as_array().unwrap() {
            assert!(
                written.get(key.as_str().unwrap()).is_some(),
                "{key} missing"
            );
        }
    }
}
