//! Validation, one function per section: raw model in, validated model or problems out.
//!
//! Every check runs even after an earlier one failed, so one `landfall validate` run reports
//! every problem of a file. A section that cannot be built returns `None`; [`validate`] only
//! assembles a [`SinkConfig`] when no problem was found at all.

use std::collections::BTreeMap;
use std::path::Path;

use super::document::Document;
use super::problem::Problems;
use super::raw::{
    RawErrors, RawFlush, RawFormat, RawKafka, RawMarker, RawNotify, RawParquet, RawPartitioning,
    RawRuntime, RawSink, RawStore, RawWindows,
};
use super::*;
use crate::schema::{parse_field_type, DeclaredField};

/// The whole file: every section, then the assembled config if nothing was wrong.
pub(super) fn validate(
    raw: RawSink,
    doc: &Document<'_>,
    file: &Path,
) -> Result<SinkConfig, ConfigErrors> {
    let mut p = Problems {
        file,
        doc,
        list: Vec::new(),
    };
    let topics = validate_root(&raw, &mut p);
    let kafka = validate_kafka(&raw.kafka, &raw.name, &mut p);
    let (format, metadata_columns) = validate_format(&raw.format, &mut p);
    let partitioning = validate_partitioning(raw.partitioning, &format, &mut p);
    let flush = validate_flush(&raw.flush, &mut p);
    let parquet = validate_parquet(&raw.parquet, &mut p);
    let store = validate_store(raw.store, &raw.marker.options, &mut p);
    let marker = validate_marker(raw.marker, &mut p);
    let errors = validate_errors(&raw.errors, marker.as_ref(), &mut p);
    let runtime = validate_runtime(&raw.runtime, &flush, &kafka, &mut p);
    let notify = raw
        .notify
        .as_ref()
        .map(|n| validate_notify(n, &kafka, &mut p));
    let windows = validate_windows(&raw.windows, &mut p);

    match (store, marker, errors) {
        (Some(store), Some(marker), Some(errors)) if p.list.is_empty() => Ok(SinkConfig {
            name: raw.name,
            source: file.to_path_buf(),
            lines: SourceLines {
                name: doc.line(&["name"]),
                store_url: doc.line(&["store", "url"]),
            },
            topics,
            kafka,
            format,
            metadata_columns,
            partitioning,
            flush,
            parquet,
            store,
            marker,
            errors,
            runtime,
            notify,
            windows,
        }),
        _ => Err(ConfigErrors(p.list)),
    }
}

fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn parse_store_url(p: &mut Problems<'_>, path: &[&str], raw: &str) -> Option<url::Url> {
    let hint = Some("use s3://bucket/prefix, gs://bucket/prefix or file:///absolute/path");
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "s3" | "gs" | "file") => {
            if u.scheme() != "file" && u.host_str().unwrap_or("").is_empty() {
                p.add(path, format!("`{raw}` names no bucket"), hint);
                None
            } else {
                Some(u)
            }
        }
        Ok(u) => {
            p.add(
                path,
                format!("unsupported scheme `{}` in `{raw}`", u.scheme()),
                hint,
            );
            None
        }
        Err(e) => {
            p.add(path, format!("`{raw}` is not a URL: {e}"), hint);
            None
        }
    }
}

/// The root keys: the sink's name and what it subscribes to.
fn validate_root(raw: &RawSink, p: &mut Problems<'_>) -> TopicSelection {
    if !is_valid_name(&raw.name) {
        p.add(
            &["name"],
            format!("`{}` is not a valid sink name", raw.name),
            Some("letters, digits, `-`, `_` and `.`; it appears in object keys and metrics"),
        );
    }
    match (raw.topics.is_empty(), &raw.topics_regex) {
        (false, None) => {
            for (i, t) in raw.topics.iter().enumerate() {
                if !is_valid_name(t) {
                    p.add(
                        &["topics", &i.to_string()],
                        format!("`{t}` is not a valid Kafka topic name"),
                        None,
                    );
                }
            }
            TopicSelection::Names(raw.topics.clone())
        }
        (true, Some(re)) => {
            if let Err(e) = regex::Regex::new(re) {
                p.add(
                    &["topics_regex"],
                    format!("invalid regular expression: {e}"),
                    None,
                );
            }
            // librdkafka treats a subscription starting with `^` as a regex.
            let re = if re.starts_with('^') {
                re.clone()
            } else {
                format!("^{re}")
            };
            TopicSelection::Regex(re)
        }
        (false, Some(_)) => {
            p.add(
                &["topics_regex"],
                "set either `topics` or `topics_regex`, not both",
                None,
            );
            TopicSelection::Names(raw.topics.clone())
        }
        (true, None) => {
            p.add(
                &["topics"],
                "no topics to consume",
                Some("set `topics = [\"name\"]` or `topics_regex = \"^prefix\\\\..*\"`"),
            );
            TopicSelection::Names(Vec::new())
        }
    }
}

/// librdkafka properties `landfall-kafka` sets itself (names and librdkafka's aliases; librdkafka
/// matches names case-sensitively), each with why it may not be changed. `isolation.level` is
/// checked on its own: `read_committed`, what Landfall sets, may be repeated.
const RESERVED_KAFKA_OPTIONS: [(&str, &str); 10] = [
    ("bootstrap.servers", "use kafka.bootstrap_servers"),
    ("metadata.broker.list", "use kafka.bootstrap_servers"),
    ("group.id", "use kafka.group_id"),
    (
        "session.timeout.ms",
        "use kafka.session_timeout_ms, which is checked against runtime.revoke_flush_timeout_ms",
    ),
    ("enable.auto.commit", OFFSETS_ARE_COMMITTED_BY_LANDFALL),
    ("auto.commit.enable", OFFSETS_ARE_COMMITTED_BY_LANDFALL),
    (
        "enable.auto.offset.store",
        OFFSETS_ARE_COMMITTED_BY_LANDFALL,
    ),
    (
        "auto.offset.reset",
        "where a partition starts is decided by its commit records and kafka.start_from",
    ),
    (
        "enable.partition.eof",
        "the consumer loop does not expect end-of-partition events",
    ),
    (
        "partition.assignment.strategy",
        "the revoke hand-off depends on the cooperative-sticky assignor",
    ),
];

const OFFSETS_ARE_COMMITTED_BY_LANDFALL: &str =
    "offsets are committed by the commit protocol, after the data is landed";

fn validate_kafka(raw: &RawKafka, sink: &str, p: &mut Problems<'_>) -> KafkaConfig {
    if raw.bootstrap_servers.trim().is_empty() {
        p.add(
            &["kafka", "bootstrap_servers"],
            "is empty",
            Some("host:port[,host:port]"),
        );
    }
    let start_from = match raw.start_from.as_str() {
        "earliest" => StartFrom::Earliest,
        "latest" => StartFrom::Latest,
        other => {
            p.add(
                &["kafka", "start_from"],
                format!("unknown value `{other}`"),
                Some("earliest | latest"),
            );
            StartFrom::Earliest
        }
    };
    for key in raw.options.keys() {
        let path = ["kafka", "options", key.as_str()];
        if let Some((_, why)) = RESERVED_KAFKA_OPTIONS.iter().find(|(k, _)| k == key) {
            p.add(
                &path,
                "is managed by landfall and cannot be overridden",
                Some(why),
            );
        }
    }
    let security = raw
        .security
        .as_ref()
        .and_then(|s| super::security::validate_kafka_security(s, p));
    if raw.security.is_some() {
        for key in raw.options.keys() {
            if SECURITY_MANAGED_OPTIONS.contains(&key.as_str()) {
                p.add(
                    &["kafka", "options", key.as_str()],
                    "conflicts with [kafka.security], which manages this librdkafka property",
                    Some("set it in [kafka.security] (see docs/security.md), not in kafka.options"),
                );
            }
        }
    }
    if let Some(level) = raw.options.get("isolation.level") {
        if level != "read_committed" {
            p.add(
                &["kafka", "options", "isolation.level"],
                format!("must stay `read_committed`, not `{level}`: any other level lands records of aborted transactions"),
                Some("remove the key; landfall always reads committed records only"),
            );
        }
    }
    KafkaConfig {
        bootstrap_servers: raw.bootstrap_servers.clone(),
        group_id: raw
            .group_id
            .clone()
            .unwrap_or_else(|| default_group_id(sink)),
        start_from,
        session_timeout_ms: raw.session_timeout_ms,
        options: raw.options.clone(),
        security,
    }
}

fn validate_format(raw: &RawFormat, p: &mut Problems<'_>) -> (FormatConfig, Vec<MetadataColumn>) {
    let mut metadata_columns = Vec::new();
    for (i, name) in raw.metadata_columns.iter().enumerate() {
        let path = ["format", "metadata_columns", &i.to_string()];
        match MetadataColumn::ALL.iter().find(|c| c.config_name() == name) {
            Some(c) if !metadata_columns.contains(c) => metadata_columns.push(*c),
            Some(_) => p.add(&path, format!("`{name}` listed twice"), None),
            None => p.add(
                &path,
                format!("unknown metadata column `{name}`"),
                Some("topic, partition, offset, timestamp, key, headers"),
            ),
        }
    }
    let format = match (raw.kind.as_str(), &raw.fields) {
        ("json", None) => FormatConfig::JsonInferred,
        ("json", Some(fields)) => {
            let mut declared = Vec::new();
            if fields.is_empty() {
                p.add(
                    &["format", "fields"],
                    "declares no fields",
                    Some("remove `fields` to infer the schema"),
                );
            }
            for (i, f) in fields.iter().enumerate() {
                let i = i.to_string();
                if f.name.starts_with('_')
                    && MetadataColumn::ALL
                        .iter()
                        .any(|c| c.column_name() == f.name)
                {
                    p.add(
                        &["format", "fields", &i, "name"],
                        format!("field `{}` clashes with a metadata column", f.name),
                        None,
                    );
                }
                if declared.iter().any(|d: &DeclaredField| d.name == f.name) {
                    p.add(
                        &["format", "fields", &i, "name"],
                        format!("field `{}` declared twice", f.name),
                        None,
                    );
                }
                match parse_field_type(&f.kind) {
                    Ok(data_type) => declared.push(DeclaredField {
                        name: f.name.clone(),
                        data_type,
                        nullable: f.nullable,
                    }),
                    Err(e) => p.add(
                        &["format", "fields", &i, "type"],
                        format!("field `{}`: {e}", f.name),
                        Some("types: bool, int8..int64, uint8..uint64, float32, float64, string, binary, date, timestamp, decimal(P,S), list<T>, struct<a:T,...>, map<string,T>"),
                    ),
                }
            }
            FormatConfig::JsonDeclared(declared)
        }
        ("raw", None) => FormatConfig::Raw,
        ("raw", Some(_)) => {
            p.add(
                &["format", "fields"],
                "`raw` format takes no fields",
                Some("use type = \"json\" to decode fields"),
            );
            FormatConfig::Raw
        }
        (other, _) => {
            p.add(
                &["format", "type"],
                format!("unknown format `{other}`"),
                Some("json | raw"),
            );
            FormatConfig::Raw
        }
    };
    (format, metadata_columns)
}

fn validate_partitioning(
    raw: RawPartitioning,
    format: &FormatConfig,
    p: &mut Problems<'_>,
) -> PartitioningConfig {
    let timezone = match raw.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            p.add(
                &["partitioning", "timezone"],
                format!("unknown timezone `{}`", raw.timezone),
                Some("an IANA name such as UTC or Europe/Berlin"),
            );
            chrono_tz::UTC
        }
    };
    if let Some(field) = &raw.event_time_field {
        let ok = match format {
            FormatConfig::JsonDeclared(fields) => fields.iter().any(|f| {
                &f.name == field && matches!(f.data_type, arrow::datatypes::DataType::Timestamp(..))
            }),
            _ => false,
        };
        if !ok {
            p.add(
                &["partitioning", "event_time_field"],
                format!("`{field}` is not a declared `timestamp` field"),
                Some("declare it in [format].fields with type = \"timestamp\", or remove the key to use the Kafka timestamp"),
            );
        }
    }
    PartitioningConfig {
        event_time_field: raw.event_time_field,
        timezone,
    }
}

fn validate_flush(raw: &RawFlush, p: &mut Problems<'_>) -> FlushConfig {
    if raw.max_records == 0 {
        p.add(&["flush", "max_records"], "must be at least 1", None);
    }
    if raw.max_file_bytes < 1024 {
        p.add(
            &["flush", "max_file_bytes"],
            "must be at least 1024",
            Some("sizes are bytes of compressed Parquet, e.g. 134217728 for 128 MiB"),
        );
    }
    if raw.max_age_ms == 0 {
        p.add(&["flush", "max_age_ms"], "must be at least 1", None);
    }
    FlushConfig {
        max_records: raw.max_records,
        max_file_bytes: raw.max_file_bytes,
        max_age_ms: raw.max_age_ms,
    }
}

fn validate_parquet(raw: &RawParquet, p: &mut Problems<'_>) -> ParquetConfig {
    let level = raw.compression_level;
    let compression = match raw.compression.as_str() {
        "zstd" => {
            // Level 1, as Arrow and pyarrow write by default: level 3 cost a quarter more CPU
            // per byte landed for 1.6% smaller files (`parquet_codec` in docs/benchmarks.md).
            let l = level.unwrap_or(1);
            if !(1..=22).contains(&l) {
                p.add(
                    &["parquet", "compression_level"],
                    "zstd levels are 1..=22",
                    None,
                );
            }
            Compression::Zstd(l)
        }
        "gzip" => {
            let l = level.unwrap_or(6);
            if !(0..=9).contains(&l) {
                p.add(
                    &["parquet", "compression_level"],
                    "gzip levels are 0..=9",
                    None,
                );
            }
            Compression::Gzip(l.clamp(0, 9) as u32)
        }
        other => {
            if level.is_some() {
                p.add(
                    &["parquet", "compression_level"],
                    format!("`{other}` takes no level"),
                    None,
                );
            }
            match other {
                "snappy" => Compression::Snappy,
                "lz4" => Compression::Lz4,
                "none" => Compression::None,
                _ => {
                    p.add(
                        &["parquet", "compression"],
                        format!("unknown codec `{other}`"),
                        Some("zstd | snappy | gzip | lz4 | none"),
                    );
                    Compression::None
                }
            }
        }
    };
    let statistics = match raw.statistics.as_str() {
        "none" => Statistics::None,
        "chunk" => Statistics::Chunk,
        "page" => Statistics::Page,
        other => {
            p.add(
                &["parquet", "statistics"],
                format!("unknown value `{other}`"),
                Some("none | chunk | page"),
            );
            Statistics::Page
        }
    };
    if raw.row_group_rows == 0 {
        p.add(&["parquet", "row_group_rows"], "must be at least 1", None);
    }
    if raw.data_page_bytes < 1024 {
        p.add(
            &["parquet", "data_page_bytes"],
            "must be at least 1024",
            None,
        );
    }
    ParquetConfig {
        compression,
        row_group_rows: raw.row_group_rows,
        data_page_bytes: raw.data_page_bytes,
        dictionary: raw.dictionary,
        statistics,
    }
}

fn validate_store(
    raw: RawStore,
    marker_options: &std::collections::BTreeMap<String, String>,
    p: &mut Problems<'_>,
) -> Option<StoreConfig> {
    let url = parse_store_url(p, &["store", "url"], &raw.url);
    let encryption =
        super::security::validate_store_encryption(&raw, url.as_ref(), marker_options, p);
    const S3_MIN_PART: u64 = 5 * 1024 * 1024;
    if raw.multipart_part_bytes < S3_MIN_PART {
        p.add(
            &["store", "multipart_part_bytes"],
            "must be at least 5 MiB (5242880), the S3 minimum part size",
            None,
        );
    }
    if raw.multipart_threshold_bytes < raw.multipart_part_bytes {
        p.add(
            &["store", "multipart_threshold_bytes"],
            "must be at least multipart_part_bytes",
            None,
        );
    }
    Some(StoreConfig {
        url: url?,
        options: raw.options,
        multipart_threshold_bytes: raw.multipart_threshold_bytes,
        multipart_part_bytes: raw.multipart_part_bytes,
        max_retries: raw.max_retries,
        request_timeout_ms: raw.request_timeout_ms,
        encryption,
    })
}

fn validate_marker(raw: RawMarker, p: &mut Problems<'_>) -> Option<MarkerConfig> {
    Some(MarkerConfig {
        prefix: parse_store_url(p, &["marker", "prefix"], &raw.prefix)?,
        options: raw.options,
    })
}

/// `marker` is `None` when the marker prefix was invalid (already reported).
fn validate_errors(
    raw: &RawErrors,
    marker: Option<&MarkerConfig>,
    p: &mut Problems<'_>,
) -> Option<ErrorsConfig> {
    let on_decode_error = match raw.on_decode_error.as_str() {
        "dead_letter" => OnDecodeError::DeadLetter,
        "fail" => OnDecodeError::Fail,
        other => {
            p.add(
                &["errors", "on_decode_error"],
                format!("unknown value `{other}`"),
                Some("dead_letter | fail"),
            );
            OnDecodeError::Fail
        }
    };
    let dead_letter_url = match &raw.dead_letter_url {
        Some(u) => parse_store_url(p, &["errors", "dead_letter_url"], u),
        None => marker.map(|m| join_url(&m.prefix, "_dead_letter")),
    };
    Some(ErrorsConfig {
        on_decode_error,
        dead_letter_url: dead_letter_url?,
    })
}

fn validate_runtime(
    raw: &RawRuntime,
    flush: &FlushConfig,
    kafka: &KafkaConfig,
    p: &mut Problems<'_>,
) -> RuntimeConfig {
    if raw.max_buffered_bytes < flush.max_file_bytes.min(64 * 1024 * 1024) {
        p.add(
            &["runtime", "max_buffered_bytes"],
            "is smaller than one file; the sink could never fill a file",
            Some("make it at least flush.max_file_bytes (or 64 MiB)"),
        );
    }
    if raw.revoke_flush_timeout_ms >= kafka.session_timeout_ms {
        p.add(
            &["runtime", "revoke_flush_timeout_ms"],
            "must be below kafka.session_timeout_ms",
            Some("a member blocked in a revoke for longer than the session risks being fenced"),
        );
    }
    if raw.upload_concurrency == 0 {
        p.add(
            &["runtime", "upload_concurrency"],
            "must be at least 1",
            None,
        );
    }
    if raw.chunk_records == 0 {
        p.add(&["runtime", "chunk_records"], "must be at least 1", None);
    }
    if raw.stuck_after_ms == 0 {
        p.add(&["runtime", "stuck_after_ms"], "must be at least 1", None);
    }
    let max_poll_interval_ms = kafka
        .options
        .get("max.poll.interval.ms")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(300_000);
    if raw.recovery_timeout_ms == 0 || raw.recovery_timeout_ms >= max_poll_interval_ms {
        p.add(
            &["runtime", "recovery_timeout_ms"],
            format!("must be between 1 and max.poll.interval.ms ({max_poll_interval_ms})"),
            Some("the consumer does not poll while an assignment is recovered; past max.poll.interval.ms the group evicts it"),
        );
    }
    RuntimeConfig {
        max_buffered_bytes: raw.max_buffered_bytes,
        revoke_flush_timeout_ms: raw.revoke_flush_timeout_ms,
        shutdown_timeout_ms: raw.shutdown_timeout_ms,
        upload_concurrency: raw.upload_concurrency,
        chunk_records: raw.chunk_records,
        stuck_after_ms: raw.stuck_after_ms,
        recovery_timeout_ms: raw.recovery_timeout_ms,
    }
}

/// `[kafka] options` a notification producer on the same cluster inherits: how to connect and
/// authenticate, nothing about consuming.
fn is_connection_option(key: &str) -> bool {
    key == "security.protocol"
        || key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || key == "enable.ssl.certificate.verification"
        || key == "client.dns.lookup"
        || key == "broker.address.family"
}

/// Producer options Landfall sets itself: the at-least-once promise depends on them.
const RESERVED_NOTIFY_OPTIONS: [(&str, &str); 3] = [
    (
        "enable.idempotence",
        "the notification producer is always idempotent: a retry never reorders or duplicates within a session",
    ),
    ("acks", "idempotence needs acks=all"),
    ("bootstrap.servers", "set [notify] bootstrap_servers instead"),
];

fn validate_notify(raw: &RawNotify, kafka: &KafkaConfig, p: &mut Problems<'_>) -> NotifyConfig {
    let t = &raw.kafka_topic;
    if t.is_empty()
        || t.len() > 249
        || t == "."
        || t == ".."
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        p.add(
            &["notify", "kafka_topic"],
            format!("`{t}` is not a valid Kafka topic name"),
            Some("1 to 249 characters of a-z, A-Z, 0-9, '.', '_', '-'"),
        );
    }
    if let Some(b) = &raw.bootstrap_servers {
        if b.trim().is_empty() {
            p.add(
                &["notify", "bootstrap_servers"],
                "is empty",
                Some("host:port[,host:port], or remove the key to use [kafka] bootstrap_servers"),
            );
        }
    }
    for key in raw.options.keys() {
        if let Some((_, why)) = RESERVED_NOTIFY_OPTIONS.iter().find(|(k, _)| k == key) {
            p.add(
                &["notify", "options", key.as_str()],
                "is managed by landfall and cannot be overridden",
                Some(why),
            );
        }
    }
    // Same cluster: same connection and security settings as the consumer. Another cluster:
    // only what [notify] says.
    let mut options: BTreeMap<String, String> = match &raw.bootstrap_servers {
        None => kafka
            .security
            .iter()
            .flat_map(|s| s.librdkafka_properties())
            .map(|(k, v)| (k.to_string(), v))
            .chain(
                kafka
                    .options
                    .iter()
                    .filter(|(k, _)| is_connection_option(k))
                    .map(|(k, v)| (k.clone(), v.clone())),
            )
            .collect(),
        Some(_) => BTreeMap::new(),
    };
    options.extend(raw.options.iter().map(|(k, v)| (k.clone(), v.clone())));
    NotifyConfig {
        kafka_topic: t.clone(),
        bootstrap_servers: raw
            .bootstrap_servers
            .clone()
            .unwrap_or_else(|| kafka.bootstrap_servers.clone()),
        options,
    }
}

fn validate_windows(raw: &RawWindows, p: &mut Problems<'_>) -> WindowsConfig {
    let late_records = match raw.late_records.as_str() {
        "late_area" => LateRecords::LateArea,
        "dead_letter" => LateRecords::DeadLetter,
        other => {
            p.add(
                &["windows", "late_records"],
                format!("unknown value `{other}`"),
                Some("late_area | dead_letter"),
            );
            LateRecords::LateArea
        }
    };
    // A window stays open at least this long past its end; more than a week would keep every
    // partition's progress for a week of windows.
    if raw.allowed_lateness_ms > 7 * 24 * 3_600_000 {
        p.add(
            &["windows", "allowed_lateness_ms"],
            "must be at most 604800000 (7 days)",
            None,
        );
    }
    if raw.idle_after_ms < 1000 {
        p.add(
            &["windows", "idle_after_ms"],
            "must be at least 1000",
            Some("a partition between two fetches is not idle"),
        );
    }
    WindowsConfig {
        enabled: raw.enabled,
        allowed_lateness_ms: raw.allowed_lateness_ms,
        late_records,
        idle_after_ms: raw.idle_after_ms,
    }
}
