//! The manifest (arrow 5 of the data flow): what one landed batch contains. The same JSON is the
//! fenced commit record and the Airflow-facing batch marker. Format: `docs/markers.md`,
//! JSON Schema: `docs/schemas/manifest.v1.json`.

use serde::{Deserialize, Serialize};

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

impl Manifest {
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
