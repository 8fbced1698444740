//! Sink configuration: one TOML file per sink, parsed strictly and validated once.
//!
//! The raw structs mirror the file (unknown keys are errors); [`SinkConfig::load`] turns a file
//! into a validated [`SinkConfig`] or a list of every [`ConfigProblem`] found, each with the file,
//! line and a hint, so `landfall validate` can report all of them in one go.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::schema::{parse_field_type, DeclaredField};

/// Default consumer group: one group per sink, like a Kafka Connect connector.
pub fn default_group_id(sink: &str) -> String {
    format!("landfall-{sink}")
}

// ---------------------------------------------------------------------------------------------
// Raw file model (what the TOML says)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: String,
    #[serde(default)]
    topics: Vec<String>,
    topics_regex: Option<String>,
    kafka: RawKafka,
    #[serde(default)]
    format: RawFormat,
    #[serde(default)]
    partitioning: RawPartitioning,
    #[serde(default)]
    flush: RawFlush,
    #[serde(default)]
    parquet: RawParquet,
    store: RawStore,
    marker: RawMarker,
    #[serde(default)]
    errors: RawErrors,
    #[serde(default)]
    runtime: RawRuntime,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafka {
    bootstrap_servers: String,
    group_id: Option<String>,
    #[serde(default = "defaults::start_from")]
    start_from: String,
    #[serde(default = "defaults::session_timeout_ms")]
    session_timeout_ms: u64,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    #[serde(rename = "type", default = "defaults::format_type")]
    kind: String,
    /// Declared schema; absent means "infer from the records".
    fields: Option<Vec<RawField>>,
    #[serde(default = "defaults::metadata_columns")]
    metadata_columns: Vec<String>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "defaults::yes")]
    nullable: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartitioning {
    event_time_field: Option<String>,
    #[serde(default = "defaults::timezone")]
    timezone: String,
}

impl Default for RawPartitioning {
    fn default() -> Self {
        RawPartitioning {
            event_time_field: None,
            timezone: defaults::timezone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlush {
    #[serde(default = "defaults::max_records")]
    max_records: u64,
    #[serde(default = "defaults::max_file_bytes")]
    max_file_bytes: u64,
    #[serde(default = "defaults::max_age_ms")]
    max_age_ms: u64,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParquet {
    #[serde(default = "defaults::compression")]
    compression: String,
    compression_level: Option<i32>,
    #[serde(default = "defaults::row_group_rows")]
    row_group_rows: usize,
    #[serde(default = "defaults::data_page_bytes")]
    data_page_bytes: usize,
    #[serde(default = "defaults::yes")]
    dictionary: bool,
    #[serde(default = "defaults::statistics")]
    statistics: String,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: String,
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default = "defaults::multipart_threshold_bytes")]
    multipart_threshold_bytes: u64,
    #[serde(default = "defaults::multipart_part_bytes")]
    multipart_part_bytes: u64,
    #[serde(default = "defaults::max_retries")]
    max_retries: u32,
    #[serde(default = "defaults::request_timeout_ms")]
    request_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarker {
    prefix: String,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrors {
    #[serde(default = "defaults::on_decode_error")]
    on_decode_error: String,
    dead_letter_url: Option<String>,
}

impl Default for RawErrors {
    fn default() -> Self {
        RawErrors {
            on_decode_error: defaults::on_decode_error(),
            dead_letter_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    #[serde(default = "defaults::max_buffered_bytes")]
    max_buffered_bytes: u64,
    #[serde(default = "defaults::revoke_flush_timeout_ms")]
    revoke_flush_timeout_ms: u64,
    #[serde(default = "defaults::shutdown_timeout_ms")]
    shutdown_timeout_ms: u64,
    #[serde(default = "defaults::upload_concurrency")]
    upload_concurrency: usize,
    #[serde(default = "defaults::chunk_records")]
    chunk_records: usize,
}

impl Default for RawRuntime {
    fn default() -> Self {
        RawRuntime {
            max_buffered_bytes: defaults::max_buffered_bytes(),
            revoke_flush_timeout_ms: defaults::revoke_flush_timeout_ms(),
            shutdown_timeout_ms: defaults::shutdown_timeout_ms(),
            upload_concurrency: defaults::upload_concurrency(),
            chunk_records: defaults::chunk_records(),
        }
    }
}

/// Defaults, in one place so `docs/configuration.md` can be checked against them.
pub mod defaults {
    pub fn yes() -> bool {
        true
    }
    pub fn start_from() -> String {
        "earliest".into()
    }
    pub fn session_timeout_ms() -> u64 {
        10_000
    }
    pub fn format_type() -> String {
        "json".into()
    }
    pub fn metadata_columns() -> Vec<String> {
        ["topic", "partition", "offset", "timestamp"]
            .map(String::from)
            .to_vec()
    }
    pub fn timezone() -> String {
        "UTC".into()
    }
    pub fn max_records() -> u64 {
        1_000_000
    }
    pub fn max_file_bytes() -> u64 {
        128 * 1024 * 1024
    }
    pub fn max_age_ms() -> u64 {
        60_000
    }
    pub fn compression() -> String {
        "zstd".into()
    }
    pub fn row_group_rows() -> usize {
        1_048_576
    }
    pub fn data_page_bytes() -> usize {
        1024 * 1024
    }
    pub fn statistics() -> String {
        "page".into()
    }
    pub fn multipart_threshold_bytes() -> u64 {
        16 * 1024 * 1024
    }
    pub fn multipart_part_bytes() -> u64 {
        8 * 1024 * 1024
    }
    pub fn max_retries() -> u32 {
        10
    }
    pub fn request_timeout_ms() -> u64 {
        30_000
    }
    pub fn on_decode_error() -> String {
        "dead_letter".into()
    }
    pub fn max_buffered_bytes() -> u64 {
        512 * 1024 * 1024
    }
    pub fn revoke_flush_timeout_ms() -> u64 {
        5_000
    }
    pub fn shutdown_timeout_ms() -> u64 {
        30_000
    }
    pub fn upload_concurrency() -> usize {
        4
    }
    pub fn chunk_records() -> usize {
        8192
    }
}

// ---------------------------------------------------------------------------------------------
// Validated model (what the rest of the program uses)
// ---------------------------------------------------------------------------------------------

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

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub start_from: StartFrom,
    pub session_timeout_ms: u64,
    /// librdkafka options passed through as they are (after Landfall's own, so they win).
    pub options: BTreeMap<String, String>,
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

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: url::Url,
    pub options: BTreeMap<String, String>,
    pub multipart_threshold_bytes: u64,
    pub multipart_part_bytes: u64,
    pub max_retries: u32,
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone)]
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
}

/// A validated sink configuration.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub source: PathBuf,
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
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Substitute `${NAME}` with the environment's value; `$${` escapes a literal `${`.
/// Unset variables are problems (a silently empty password is worse than a clear error).
pub fn substitute_env(
    text: &str,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<ConfigProblem>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        // Comments are left alone: a variable named in a comment need not be set.
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            if rest[..pos].ends_with('$') {
                out.push_str(&rest[..pos - 1]);
                out.push_str("${");
                rest = &rest[pos + 2..];
                continue;
            }
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    let valid = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    match (valid, lookup(name)) {
                        (true, Some(value)) => out.push_str(&value),
                        (true, None) => problems.push(ConfigProblem {
                            file: file.to_path_buf(),
                            line: Some(lineno + 1),
                            key: String::new(),
                            message: format!("environment variable `{name}` is not set"),
                            hint: Some(format!("export {name}=... before starting landfall")),
                        }),
                        (false, _) => problems.push(ConfigProblem {
                            file: file.to_path_buf(),
                            line: Some(lineno + 1),
                            key: String::new(),
                            message: format!("`${{{name}}}` is not a valid variable reference"),
                            hint: Some(
                                "names are letters, digits and `_`; write `$${` for a literal `${`"
                                    .into(),
                            ),
                        }),
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    problems.push(ConfigProblem {
                        file: file.to_path_buf(),
                        line: Some(lineno + 1),
                        key: String::new(),
                        message: "unterminated `${` reference".into(),
                        hint: Some("close it with `}`, or write `$${` for a literal `${`".into()),
                    });
                    out.push_str(rest);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Find the line of `key` inside table `table` (dotted, "" for the root) in TOML source.
/// Used to point validation problems at a line; a best effort that falls back to the table header.
pub fn line_of(source: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    let mut table_line = None;
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') && !line.starts_with("[[") {
            current = line
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string();
            if current == table {
                table_line = Some(i + 1);
            }
            continue;
        }
        if current == table {
            if let Some((k, _)) = line.split_once('=') {
                let k = k.trim().trim_matches('"');
                if k == key {
                    return Some(i + 1);
                }
            }
        }
    }
    table_line
}

fn line_from_offset(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

struct Problems<'a> {
    file: &'a Path,
    source: &'a str,
    list: Vec<ConfigProblem>,
}

impl Problems<'_> {
    fn add(&mut self, table: &str, key: &str, message: impl Into<String>, hint: Option<&str>) {
        let dotted = if table.is_empty() {
            key.to_string()
        } else {
            format!("{table}.{key}")
        };
        self.list.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line: line_of(self.source, table, key),
            key: dotted,
            message: message.into(),
            hint: hint.map(String::from),
        });
    }
}

fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn parse_store_url(p: &mut Problems<'_>, table: &str, key: &str, raw: &str) -> Option<url::Url> {
    let hint = Some("use s3://bucket/prefix, gs://bucket/prefix or file:///absolute/path");
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "s3" | "gs" | "file") => {
            if u.scheme() != "file" && u.host_str().unwrap_or("").is_empty() {
                p.add(table, key, format!("`{raw}` names no bucket"), hint);
                None
            } else {
                Some(u)
            }
        }
        Ok(u) => {
            p.add(
                table,
                key,
                format!("unsupported scheme `{}` in `{raw}`", u.scheme()),
                hint,
            );
            None
        }
        Err(e) => {
            p.add(table, key, format!("`{raw}` is not a URL: {e}"), hint);
            None
        }
    }
}

impl SinkConfig {
    /// Read, substitute `${ENV}`, parse and validate one sink file.
    pub fn load(path: &Path) -> Result<SinkConfig, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigProblem {
                file: path.to_path_buf(),
                line: None,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
                hint: None,
            }])
        })?;
        Self::from_toml(&text, path, &|name| std::env::var(name).ok())
    }

    /// Parse and validate TOML text; `file` is only used in problem reports.
    pub fn from_toml(
        text: &str,
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SinkConfig, ConfigErrors> {
        let text = substitute_env(text, file, env).map_err(ConfigErrors)?;
        let raw: RawSink = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_from_offset(&text, s.start));
            let message = e.message().to_string();
            let hint = if message.contains("unknown field") {
                Some("see docs/configuration.md for every key".to_string())
            } else if message.contains("missing field") {
                Some("this key is required".to_string())
            } else {
                None
            };
            ConfigErrors(vec![ConfigProblem {
                file: file.to_path_buf(),
                line,
                key: String::new(),
                message,
                hint,
            }])
        })?;
        validate(raw, &text, file)
    }
}

fn validate(raw: RawSink, source: &str, file: &Path) -> Result<SinkConfig, ConfigErrors> {
    let mut p = Problems {
        file,
        source,
        list: Vec::new(),
    };

    if !is_valid_name(&raw.name) {
        p.add(
            "",
            "name",
            format!("`{}` is not a valid sink name", raw.name),
            Some("letters, digits, `-`, `_` and `.`; it appears in object keys and metrics"),
        );
    }

    let topics = match (raw.topics.is_empty(), &raw.topics_regex) {
        (false, None) => {
            for t in &raw.topics {
                if !is_valid_name(t) {
                    p.add(
                        "",
                        "topics",
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
                    "",
                    "topics_regex",
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
                "",
                "topics_regex",
                "set either `topics` or `topics_regex`, not both",
                None,
            );
            TopicSelection::Names(raw.topics.clone())
        }
        (true, None) => {
            p.add(
                "",
                "topics",
                "no topics to consume",
                Some("set `topics = [\"name\"]` or `topics_regex = \"^prefix\\\\..*\"`"),
            );
            TopicSelection::Names(Vec::new())
        }
    };

    // Kafka
    if raw.kafka.bootstrap_servers.trim().is_empty() {
        p.add(
            "kafka",
            "bootstrap_servers",
            "is empty",
            Some("host:port[,host:port]"),
        );
    }
    let start_from = match raw.kafka.start_from.as_str() {
        "earliest" => StartFrom::Earliest,
        "latest" => StartFrom::Latest,
        other => {
            p.add(
                "kafka",
                "start_from",
                format!("unknown value `{other}`"),
                Some("earliest | latest"),
            );
            StartFrom::Earliest
        }
    };
    for reserved in [
        "group.id",
        "bootstrap.servers",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "partition.assignment.strategy",
    ] {
        if raw.kafka.options.contains_key(reserved) {
            p.add(
                "kafka.options",
                reserved,
                "is managed by landfall and cannot be overridden",
                Some("use kafka.group_id / kafka.bootstrap_servers; offsets are managed by the commit protocol"),
            );
        }
    }
    let kafka = KafkaConfig {
        bootstrap_servers: raw.kafka.bootstrap_servers.clone(),
        group_id: raw
            .kafka
            .group_id
            .clone()
            .unwrap_or_else(|| default_group_id(&raw.name)),
        start_from,
        session_timeout_ms: raw.kafka.session_timeout_ms,
        options: raw.kafka.options.clone(),
    };

    // Format
    let mut metadata_columns = Vec::new();
    for name in &raw.format.metadata_columns {
        match MetadataColumn::ALL.iter().find(|c| c.config_name() == name) {
            Some(c) if !metadata_columns.contains(c) => metadata_columns.push(*c),
            Some(_) => p.add(
                "format",
                "metadata_columns",
                format!("`{name}` listed twice"),
                None,
            ),
            None => p.add(
                "format",
                "metadata_columns",
                format!("unknown metadata column `{name}`"),
                Some("topic, partition, offset, timestamp, key, headers"),
            ),
        }
    }
    let format = match (raw.format.kind.as_str(), &raw.format.fields) {
        ("json", None) => FormatConfig::JsonInferred,
        ("json", Some(fields)) => {
            let mut declared = Vec::new();
            if fields.is_empty() {
                p.add(
                    "format",
                    "fields",
                    "declares no fields",
                    Some("remove `fields` to infer the schema"),
                );
            }
            for f in fields {
                if f.name.starts_with('_')
                    && MetadataColumn::ALL
                        .iter()
                        .any(|c| c.column_name() == f.name)
                {
                    p.add(
                        "format",
                        "fields",
                        format!("field `{}` clashes with a metadata column", f.name),
                        None,
                    );
                }
                if declared.iter().any(|d: &DeclaredField| d.name == f.name) {
                    p.add(
                        "format",
                        "fields",
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
                        "format",
                        "fields",
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
                "format",
                "fields",
                "`raw` format takes no fields",
                Some("use type = \"json\" to decode fields"),
            );
            FormatConfig::Raw
        }
        (other, _) => {
            p.add(
                "format",
                "type",
                format!("unknown format `{other}`"),
                Some("json | raw"),
            );
            FormatConfig::Raw
        }
    };

    // Partitioning
    let timezone = match raw.partitioning.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            p.add(
                "partitioning",
                "timezone",
                format!("unknown timezone `{}`", raw.partitioning.timezone),
                Some("an IANA name such as UTC or Europe/Berlin"),
            );
            chrono_tz::UTC
        }
    };
    if let Some(field) = &raw.partitioning.event_time_field {
        let ok = match &format {
            FormatConfig::JsonDeclared(fields) => fields.iter().any(|f| {
                &f.name == field && matches!(f.data_type, arrow::datatypes::DataType::Timestamp(..))
            }),
            _ => false,
        };
        if !ok {
            p.add(
                "partitioning",
                "event_time_field",
                format!("`{field}` is not a declared `timestamp` field"),
                Some("declare it in [format].fields with type = \"timestamp\", or remove the key to use the Kafka timestamp"),
            );
        }
    }

    // Flush
    if raw.flush.max_records == 0 {
        p.add("flush", "max_records", "must be at least 1", None);
    }
    if raw.flush.max_file_bytes < 1024 {
        p.add(
            "flush",
            "max_file_bytes",
            "must be at least 1024",
            Some("sizes are bytes of compressed Parquet, e.g. 134217728 for 128 MiB"),
        );
    }
    if raw.flush.max_age_ms == 0 {
        p.add("flush", "max_age_ms", "must be at least 1", None);
    }

    // Parquet
    let level = raw.parquet.compression_level;
    let compression = match raw.parquet.compression.as_str() {
        "zstd" => {
            let l = level.unwrap_or(3);
            if !(1..=22).contains(&l) {
                p.add(
                    "parquet",
                    "compression_level",
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
                    "parquet",
                    "compression_level",
                    "gzip levels are 0..=9",
                    None,
                );
            }
            Compression::Gzip(l.clamp(0, 9) as u32)
        }
        other => {
            if level.is_some() {
                p.add(
                    "parquet",
                    "compression_level",
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
                        "parquet",
                        "compression",
                        format!("unknown codec `{other}`"),
                        Some("zstd | snappy | gzip | lz4 | none"),
                    );
                    Compression::None
                }
            }
        }
    };
    let statistics = match raw.parquet.statistics.as_str() {
        "none" => Statistics::None,
        "chunk" => Statistics::Chunk,
        "page" => Statistics::Page,
        other => {
            p.add(
                "parquet",
                "statistics",
                format!("unknown value `{other}`"),
                Some("none | chunk | page"),
            );
            Statistics::Page
        }
    };
    if raw.parquet.row_group_rows == 0 {
        p.add("parquet", "row_group_rows", "must be at least 1", None);
    }
    if raw.parquet.data_page_bytes < 1024 {
        p.add("parquet", "data_page_bytes", "must be at least 1024", None);
    }

    // Store, marker, errors
    let store_url = parse_store_url(&mut p, "store", "url", &raw.store.url);
    const S3_MIN_PART: u64 = 5 * 1024 * 1024;
    if raw.store.multipart_part_bytes < S3_MIN_PART {
        p.add(
            "store",
            "multipart_part_bytes",
            "must be at least 5 MiB (5242880), the S3 minimum part size",
            None,
        );
    }
    if raw.store.multipart_threshold_bytes < raw.store.multipart_part_bytes {
        p.add(
            "store",
            "multipart_threshold_bytes",
            "must be at least multipart_part_bytes",
            None,
        );
    }
    let marker_url = parse_store_url(&mut p, "marker", "prefix", &raw.marker.prefix);
    let on_decode_error = match raw.errors.on_decode_error.as_str() {
        "dead_letter" => OnDecodeError::DeadLetter,
        "fail" => OnDecodeError::Fail,
        other => {
            p.add(
                "errors",
                "on_decode_error",
                format!("unknown value `{other}`"),
                Some("dead_letter | fail"),
            );
            OnDecodeError::Fail
        }
    };
    let dead_letter_url = match &raw.errors.dead_letter_url {
        Some(u) => parse_store_url(&mut p, "errors", "dead_letter_url", u),
        None => marker_url.as_ref().map(|m| join_url(m, "_dead_letter")),
    };

    // Runtime
    let rt = &raw.runtime;
    if rt.max_buffered_bytes < raw.flush.max_file_bytes.min(64 * 1024 * 1024) {
        p.add(
            "runtime",
            "max_buffered_bytes",
            "is smaller than one file; the sink could never fill a file",
            Some("make it at least flush.max_file_bytes (or 64 MiB)"),
        );
    }
    if rt.revoke_flush_timeout_ms >= raw.kafka.session_timeout_ms {
        p.add(
            "runtime",
            "revoke_flush_timeout_ms",
            "must be below kafka.session_timeout_ms",
            Some("a member blocked in a revoke for longer than the session risks being fenced"),
        );
    }
    if rt.upload_concurrency == 0 || rt.chunk_records == 0 {
        p.add(
            "runtime",
            if rt.upload_concurrency == 0 {
                "upload_concurrency"
            } else {
                "chunk_records"
            },
            "must be at least 1",
            None,
        );
    }

    if !p.list.is_empty() {
        return Err(ConfigErrors(p.list));
    }
    Ok(SinkConfig {
        name: raw.name,
        source: file.to_path_buf(),
        topics,
        kafka,
        format,
        metadata_columns,
        partitioning: PartitioningConfig {
            event_time_field: raw.partitioning.event_time_field,
            timezone,
        },
        flush: FlushConfig {
            max_records: raw.flush.max_records,
            max_file_bytes: raw.flush.max_file_bytes,
            max_age_ms: raw.flush.max_age_ms,
        },
        parquet: ParquetConfig {
            compression,
            row_group_rows: raw.parquet.row_group_rows,
            data_page_bytes: raw.parquet.data_page_bytes,
            dictionary: raw.parquet.dictionary,
            statistics,
        },
        store: StoreConfig {
            url: store_url.expect("checked above"),
            options: raw.store.options,
            multipart_threshold_bytes: raw.store.multipart_threshold_bytes,
            multipart_part_bytes: raw.store.multipart_part_bytes,
            max_retries: raw.store.max_retries,
            request_timeout_ms: raw.store.request_timeout_ms,
        },
        marker: MarkerConfig {
            prefix: marker_url.expect("checked above"),
            options: raw.marker.options,
        },
        errors: ErrorsConfig {
            on_decode_error,
            dead_letter_url: dead_letter_url.expect("checked above"),
        },
        runtime: RuntimeConfig {
            max_buffered_bytes: rt.max_buffered_bytes,
            revoke_flush_timeout_ms: rt.revoke_flush_timeout_ms,
            shutdown_timeout_ms: rt.shutdown_timeout_ms,
            upload_concurrency: rt.upload_concurrency,
            chunk_records: rt.chunk_records,
        },
    })
}

/// Append a path segment to a URL prefix without doubling slashes.
pub fn join_url(base: &url::Url, segment: &str) -> url::Url {
    let mut u = base.clone();
    let path = format!("{}/{}", u.path().trim_end_matches('/'), segment);
    u.set_path(&path);
    u
}

/// Load every `*.toml` in a directory, sorted by name.
pub fn config_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "orders"
topics = ["orders"]

[kafka]
bootstrap_servers = "127.0.0.1:9092"

[format]
type = "json"
fields = [
  { name = "id", type = "int64", nullable = false },
  { name = "ts", type = "timestamp" },
  { name = "amount", type = "decimal(18,2)" },
]

[partitioning]
event_time_field = "ts"

[store]
url = "s3://lake/raw"

[marker]
prefix = "s3://lake/_landfall"
"#;

    fn parse(text: &str) -> Result<SinkConfig, ConfigErrors> {
        SinkConfig::from_toml(text, Path::new("orders.toml"), &|name| match name {
            "PASSWORD" => Some("s3cret".into()),
            _ => None,
        })
    }

    #[test]
    fn good_config_gets_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.kafka.group_id, "landfall-orders");
        assert_eq!(c.flush.max_file_bytes, 128 * 1024 * 1024);
        assert_eq!(c.parquet.compression, Compression::Zstd(3));
        assert_eq!(
            c.errors.dead_letter_url.as_str(),
            "s3://lake/_landfall/_dead_letter"
        );
        assert!(matches!(c.format, FormatConfig::JsonDeclared(ref f) if f.len() == 3));
    }

    #[test]
    fn unknown_key_names_the_line() {
        let text = GOOD
            .replace("[flush]", "")
            .replace("[store]\n", "[store]\nbucket_name = \"x\"\n");
        let err = parse(&text).unwrap_err();
        let p = &err.0[0];
        assert!(p.message.contains("unknown field `bucket_name`"), "{p}");
        assert_eq!(
            p.line,
            Some(line_of(&text, "store", "bucket_name").unwrap())
        );
    }

    #[test]
    fn every_semantic_problem_is_reported() {
        let text = GOOD
            .replace("\"s3://lake/raw\"", "\"ftp://lake/raw\"")
            .replace(
                "[partitioning]\nevent_time_field = \"ts\"",
                "[partitioning]\nevent_time_field = \"id\"\ntimezone = \"Mars/Base\"",
            )
            + "\n[flush]\nmax_records = 0\n";
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "partitioning.timezone",
                "partitioning.event_time_field",
                "flush.max_records",
                "store.url"
            ],
            "{err}"
        );
        let store = err.0.iter().find(|p| p.key == "store.url").unwrap();
        assert_eq!(store.line, line_of(&text, "store", "url"));
        assert!(store.to_string().starts_with("orders.toml:"), "{store}");
    }

    #[test]
    fn env_substitution_and_missing_variables() {
        let text = GOOD.replace(
            "[store]\n",
            "[store]\noptions = { secret_access_key = \"${PASSWORD}\", token = \"${NOPE}\" }\n",
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(err.0[0].message.contains("`NOPE` is not set"));
        let ok = parse(&text.replace(", token = \"${NOPE}\"", "")).unwrap();
        assert_eq!(ok.store.options["secret_access_key"], "s3cret");
        let escaped = substitute_env("a = \"$${HOME}\"", Path::new("x"), &|_| None).unwrap();
        assert!(substitute_env("# uses ${UNSET}\n", Path::new("x"), &|_| None).is_ok());
        assert_eq!(escaped, "a = \"${HOME}\"");
    }

    #[test]
    fn reserved_kafka_options_are_refused() {
        let text = GOOD.replace(
            "bootstrap_servers = \"127.0.0.1:9092\"",
            "bootstrap_servers = \"127.0.0.1:9092\"\noptions = { \"enable.auto.commit\" = \"true\" }",
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.0[0].key, "kafka.options.enable.auto.commit");
        // A reset must never silently move a partition the store positioned.
        let text = GOOD.replace(
            "bootstrap_servers = \"127.0.0.1:9092\"",
            "bootstrap_servers = \"127.0.0.1:9092\"\noptions = { \"auto.offset.reset\" = \"earliest\" }",
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.0[0].key, "kafka.options.auto.offset.reset");
    }
}
