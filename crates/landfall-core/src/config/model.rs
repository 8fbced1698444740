//! The validated model: what the rest of the program uses.
//!
//! A value of these types has passed every check in `validate.rs`; code that holds a
//! [`SinkConfig`] never re-checks it. Field names carry units (`_ms`, `_bytes`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::security::{KafkaSecurity, StoreEncryption};
use super::RedactedOptions;
use crate::schema::DeclaredField;

/// Default consumer group: one group per sink, like a Kafka Connect connector.
pub fn default_group_id(sink: &str) -> String {
    format!("landfall-{sink}")
}

/// Which topics a sink subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicSelection {
    Names(Vec<String>),
    /// librdkafka subscribes to a pattern when the name starts with `^`.
    Regex(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// `Debug` hides secret option values (see [`RedactedOptions`]).
#[derive(Clone)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub start_from: StartFrom,
    pub session_timeout_ms: u64,
    /// librdkafka options passed through as they are (after Landfall's own, so they win).
    pub options: BTreeMap<String, String>,
    /// `[kafka.security]`; `None` leaves security to `options` (plaintext unless they say so).
    pub security: Option<KafkaSecurity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetadataColumn {
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Headers,
}

impl MetadataColumn {
    pub const ALL: [MetadataColumn; 6] = [
        MetadataColumn::Topic,
        MetadataColumn::Partition,
        MetadataColumn::Offset,
        MetadataColumn::Timestamp,
        MetadataColumn::Key,
        MetadataColumn::Headers,
    ];

    pub fn config_name(self) -> &'static str {
        match self {
            MetadataColumn::Topic => "topic",
            MetadataColumn::Partition => "partition",
            MetadataColumn::Offset => "offset",
            MetadataColumn::Timestamp => "timestamp",
            MetadataColumn::Key => "key",
            MetadataColumn::Headers => "headers",
        }
    }

    /// Column name in the Parquet files; the underscore keeps them apart from payload fields.
    pub fn column_name(self) -> &'static str {
        match self {
            MetadataColumn::Topic => "_topic",
            MetadataColumn::Partition => "_partition",
            MetadataColumn::Offset => "_offset",
            MetadataColumn::Timestamp => "_timestamp",
            MetadataColumn::Key => "_key",
            MetadataColumn::Headers => "_headers",
        }
    }
}

#[derive(Debug, Clone)]
pub enum FormatConfig {
    /// JSON objects decoded into a declared schema.
    JsonDeclared(Vec<DeclaredField>),
    /// JSON objects with a schema inferred from the records of each chunk.
    JsonInferred,
    /// Key and value bytes as they are.
    Raw,
}

#[derive(Debug, Clone)]
pub struct PartitioningConfig {
    /// A declared `timestamp` field to take event time from; `None` = the Kafka timestamp.
    pub event_time_field: Option<String>,
    pub timezone: chrono_tz::Tz,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushConfig {
    pub max_records: u64,
    pub max_file_bytes: u64,
    pub max_age_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd(i32),
    Snappy,
    Gzip(u32),
    Lz4,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    None,
    Chunk,
    Page,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetConfig {
    pub compression: Compression,
    pub row_group_rows: usize,
    pub data_page_bytes: usize,
    pub dictionary: bool,
    pub statistics: Statistics,
}

/// `Debug` hides secret option values (see [`RedactedOptions`]).
#[derive(Clone)]
pub struct StoreConfig {
    pub url: url::Url,
    pub options: BTreeMap<String, String>,
    pub multipart_threshold_bytes: u64,
    pub multipart_part_bytes: u64,
    pub max_retries: u32,
    pub request_timeout_ms: u64,
    /// S3 server-side encryption of every object the sink writes (data, markers, dead letters).
    pub encryption: Option<StoreEncryption>,
}

/// `Debug` hides secret option values (see [`RedactedOptions`]).
#[derive(Clone)]
pub struct MarkerConfig {
    pub prefix: url::Url,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDecodeError {
    /// Write the record with its reason to the dead-letter prefix and go on.
    DeadLetter,
    /// Stop the sink with an error naming the record; nothing of that batch is committed.
    Fail,
}

#[derive(Debug, Clone)]
pub struct ErrorsConfig {
    pub on_decode_error: OnDecodeError,
    pub dead_letter_url: url::Url,
}

#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    pub max_buffered_bytes: u64,
    pub revoke_flush_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    pub upload_concurrency: usize,
    pub chunk_records: usize,
    /// A partition whose oldest batch has failed to land for this long is reported stuck
    /// (error log, `landfall_partitions_stuck`, `/readyz` not ready); retries go on.
    pub stuck_after_ms: u64,
    /// How long recovering the partitions of one assignment may take.
    pub recovery_timeout_ms: u64,
}

/// A validated sink configuration.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub source: PathBuf,
    /// Where in `source` the keys that checks across files point at were written.
    pub lines: SourceLines,
    pub topics: TopicSelection,
    pub kafka: KafkaConfig,
    pub format: FormatConfig,
    pub metadata_columns: Vec<MetadataColumn>,
    pub partitioning: PartitioningConfig,
    pub flush: FlushConfig,
    pub parquet: ParquetConfig,
    pub store: StoreConfig,
    pub marker: MarkerConfig,
    pub errors: ErrorsConfig,
    pub runtime: RuntimeConfig,
    /// `[notify]`: `None` when the section is absent (no notifications).
    pub notify: Option<NotifyConfig>,
    pub windows: WindowsConfig,
}

/// `[notify]`, resolved: where each committed manifest is produced. `Debug` hides secret
/// option values (see [`RedactedOptions`]).
#[derive(Clone)]
pub struct NotifyConfig {
    pub kafka_topic: String,
    /// `[notify] bootstrap_servers`, or `[kafka] bootstrap_servers` when absent.
    pub bootstrap_servers: String,
    /// librdkafka producer options: the `[kafka]` security options (when the cluster is the
    /// same), then `[notify] options` (they win).
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateRecords {
    /// Late rows land under `{store.url}/{topic}/_late/dt=.../hour=.../`, listed by their
    /// batch's manifest, never in a window marker.
    LateArea,
    /// Late records go to the batch's dead-letter file with the reason
    /// `late: window dt=.../hour=... closed`; the buffer keeps every record's original bytes
    /// until its batch lands so it can (see `docs/markers.md#late-records`).
    DeadLetter,
}

/// `[windows]`: window `_SUCCESS` markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowsConfig {
    pub enabled: bool,
    pub allowed_lateness_ms: u64,
    pub late_records: LateRecords,
    /// A partition with nothing buffered, sealed or landing for this long is idle: its
    /// watermark follows the wall clock.
    pub idle_after_ms: u64,
}

impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NotifyConfig {
            kafka_topic,
            bootstrap_servers,
            options,
        } = self;
        f.debug_struct("NotifyConfig")
            .field("kafka_topic", kafka_topic)
            .field("bootstrap_servers", bootstrap_servers)
            .field("options", &RedactedOptions(options))
            .finish()
    }
}

/// Lines (1-based) of the keys [`check_sinks`](super::check_sinks) reports on; `None` when the
/// config was not read from a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceLines {
    pub name: Option<usize>,
    pub store_url: Option<usize>,
}

// `Debug` by hand for the sections that hold option maps, so secret values never reach a log.
// Each destructures its struct: a new field is a compile error here until it is printed (or
// deliberately not).

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let KafkaConfig {
            bootstrap_servers,
            group_id,
            start_from,
            session_timeout_ms,
            options,
            security,
        } = self;
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", bootstrap_servers)
            .field("group_id", group_id)
            .field("start_from", start_from)
            .field("session_timeout_ms", session_timeout_ms)
            .field("options", &RedactedOptions(options))
            // `Secret` fields print as `<redacted>`.
            .field("security", security)
            .finish()
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let StoreConfig {
            url,
            options,
            multipart_threshold_bytes,
            multipart_part_bytes,
            max_retries,
            request_timeout_ms,
            encryption,
        } = self;
        f.debug_struct("StoreConfig")
            .field("url", url)
            .field("options", &RedactedOptions(options))
            .field("multipart_threshold_bytes", multipart_threshold_bytes)
            .field("multipart_part_bytes", multipart_part_bytes)
            .field("max_retries", max_retries)
            .field("request_timeout_ms", request_timeout_ms)
            .field("encryption", encryption)
            .finish()
    }
}

impl fmt::Debug for MarkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let MarkerConfig { prefix, options } = self;
        f.debug_struct("MarkerConfig")
            .field("prefix", prefix)
            .field("options", &RedactedOptions(options))
            .finish()
    }
}
