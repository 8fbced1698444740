//! The raw file model: what the TOML says, field for field, before any judgement.
//!
//! Every struct is `deny_unknown_fields` and nothing is `flatten`ed beside it, so a misspelt key
//! is an error rather than a silently ignored line. Defaults live in [`super::defaults`]; a
//! section whose every key is optional is `#[serde(default)]` as a whole, so a missing key takes
//! the section's `Default`, the one place that names it. Checking and converting happens in
//! `validate.rs`, never here.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::defaults;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSink {
    pub(super) name: String,
    #[serde(default)]
    pub(super) topics: Vec<String>,
    pub(super) topics_regex: Option<String>,
    pub(super) kafka: RawKafka,
    #[serde(default)]
    pub(super) format: RawFormat,
    #[serde(default)]
    pub(super) partitioning: RawPartitioning,
    #[serde(default)]
    pub(super) flush: RawFlush,
    #[serde(default)]
    pub(super) parquet: RawParquet,
    pub(super) store: RawStore,
    pub(super) marker: RawMarker,
    #[serde(default)]
    pub(super) errors: RawErrors,
    #[serde(default)]
    pub(super) runtime: RawRuntime,
    pub(super) notify: Option<RawNotify>,
    #[serde(default)]
    pub(super) windows: RawWindows,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKafka {
    pub(super) bootstrap_servers: String,
    pub(super) group_id: Option<String>,
    #[serde(default = "defaults::start_from")]
    pub(super) start_from: String,
    #[serde(default = "defaults::session_timeout_ms")]
    pub(super) session_timeout_ms: u64,
    #[serde(default)]
    pub(super) options: BTreeMap<String, String>,
    /// `[kafka.security]`; absent = whatever `kafka.options` says (plaintext by default).
    pub(super) security: Option<RawKafkaSecurity>,
}

/// `[kafka.security]`: flat, one key per setting; which keys apply depends on `protocol` and
/// `mechanism` (checked in `security.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKafkaSecurity {
    pub(super) protocol: String,
    pub(super) ca_file: Option<String>,
    pub(super) cert_file: Option<String>,
    pub(super) key_file: Option<String>,
    pub(super) key_password: Option<String>,
    pub(super) key_password_file: Option<String>,
    pub(super) verify_hostname: Option<bool>,
    pub(super) mechanism: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<String>,
    pub(super) token_endpoint_url: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_file: Option<String>,
    pub(super) scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawFormat {
    #[serde(rename = "type")]
    pub(super) kind: String,
    /// Declared schema; absent means "infer from the records".
    pub(super) fields: Option<Vec<RawField>>,
    pub(super) metadata_columns: Vec<String>,
}

impl Default for RawFormat {
    fn default() -> Self {
        RawFormat {
            kind: defaults::format_type(),
            fields: None,
            metadata_columns: defaults::metadata_columns(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default = "defaults::yes")]
    pub(super) nullable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPartitioning {
    pub(super) event_time_field: Option<String>,
    pub(super) timezone: String,
}

impl Default for RawPartitioning {
    fn default() -> Self {
        RawPartitioning {
            event_time_field: None,
            timezone: defaults::timezone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawFlush {
    pub(super) max_records: u64,
    pub(super) max_file_bytes: u64,
    pub(super) max_age_ms: u64,
}

impl Default for RawFlush {
    fn default() -> Self {
        RawFlush {
            max_records: defaults::max_records(),
            max_file_bytes: defaults::max_file_bytes(),
            max_age_ms: defaults::max_age_ms(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawParquet {
    pub(super) compression: String,
    pub(super) compression_level: Option<i32>,
    pub(super) row_group_rows: usize,
    pub(super) data_page_bytes: usize,
    pub(super) dictionary: bool,
    pub(super) statistics: String,
}

impl Default for RawParquet {
    fn default() -> Self {
        RawParquet {
            compression: defaults::compression(),
            compression_level: None,
            row_group_rows: defaults::row_group_rows(),
            data_page_bytes: defaults::data_page_bytes(),
            dictionary: true,
            statistics: defaults::statistics(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) url: String,
    #[serde(default)]
    pub(super) options: BTreeMap<String, String>,
    #[serde(default = "defaults::multipart_threshold_bytes")]
    pub(super) multipart_threshold_bytes: u64,
    #[serde(default = "defaults::multipart_part_bytes")]
    pub(super) multipart_part_bytes: u64,
    #[serde(default = "defaults::max_retries")]
    pub(super) max_retries: u32,
    #[serde(default = "defaults::request_timeout_ms")]
    pub(super) request_timeout_ms: u64,
    /// S3 server-side encryption: `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub(super) sse: Option<String>,
    pub(super) sse_kms_key_id: Option<String>,
    pub(super) sse_bucket_key: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMarker {
    pub(super) prefix: String,
    #[serde(default)]
    pub(super) options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawErrors {
    pub(super) on_decode_error: String,
    pub(super) dead_letter_url: Option<String>,
}

impl Default for RawErrors {
    fn default() -> Self {
        RawErrors {
            on_decode_error: defaults::on_decode_error(),
            dead_letter_url: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRuntime {
    pub(super) max_buffered_bytes: u64,
    pub(super) revoke_flush_timeout_ms: u64,
    pub(super) shutdown_timeout_ms: u64,
    pub(super) upload_concurrency: usize,
    pub(super) chunk_records: usize,
    pub(super) stuck_after_ms: u64,
    pub(super) recovery_timeout_ms: u64,
}

impl Default for RawRuntime {
    fn default() -> Self {
        RawRuntime {
            max_buffered_bytes: defaults::max_buffered_bytes(),
            revoke_flush_timeout_ms: defaults::revoke_flush_timeout_ms(),
            shutdown_timeout_ms: defaults::shutdown_timeout_ms(),
            upload_concurrency: defaults::upload_concurrency(),
            chunk_records: defaults::chunk_records(),
            stuck_after_ms: defaults::stuck_after_ms(),
            recovery_timeout_ms: defaults::recovery_timeout_ms(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) kafka_topic: String,
    pub(super) bootstrap_servers: Option<String>,
    #[serde(default)]
    pub(super) options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawWindows {
    pub(super) enabled: bool,
    pub(super) allowed_lateness_ms: u64,
    pub(super) late_records: String,
    pub(super) idle_after_ms: u64,
}

impl Default for RawWindows {
    fn default() -> Self {
        RawWindows {
            enabled: false,
            allowed_lateness_ms: defaults::allowed_lateness_ms(),
            late_records: defaults::late_records(),
            idle_after_ms: defaults::idle_after_ms(),
        }
    }
}
