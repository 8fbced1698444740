//! Shared pieces of Landfall's benchmarks, so the broker-free pipeline benches
//! (`benches/pipeline.rs`) and the end-to-end harness (`src/bin/e2e.rs`) measure the same
//! records through the same configuration:
//!
//! - [`event_record`]: a deterministic JSON event padded to an exact size (default ~1 KiB),
//!   with a realistic mix of compressible text and high-entropy ids;
//! - [`sink_toml`]: the sink config text for a [`Format`], as an operator would write it;
//! - [`buffer_format`]: the [`BufferFormat`] the runtime derives from a validated config
//!   (mirrors `landfall-runtime`'s sink start-up).
//!
//! Results and how to run: `benches/README.md` at the workspace root.

use std::fmt::Write as _;

use landfall_core::buffer::BufferFormat;
use landfall_core::config::SinkConfig;

/// 2026-11-21T10:00:00Z in milliseconds. Every generated record's Kafka timestamp falls within
/// this hour, so a run lands in one time partition and a byte-triggered batch is one file
/// (a batch straddling an hour boundary would end in a small tail file of the old hour).
pub const BASE_TIMESTAMP_MS: i64 = 1_795_255_200_000;

/// How the sink decodes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON with the declared schema of [`DECLARED_FIELDS`].
    Declared,
    /// JSON with a schema inferred per chunk.
    Inferred,
    /// Value bytes as they are.
    Raw,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Declared => "json_declared",
            Format::Inferred => "json_inferred",
            Format::Raw => "raw",
        }
    }

    fn toml(self) -> String {
        match self {
            Format::Declared => {
                format!("[format]\ntype = \"json\"\nfields = [\n{DECLARED_FIELDS}]\n")
            }
            Format::Inferred => "[format]\ntype = \"json\"\n".to_string(),
            Format::Raw => "[format]\ntype = \"raw\"\n".to_string(),
        }
    }
}

/// The declared schema of [`event_record`], in sink-config syntax.
pub const DECLARED_FIELDS: &str = r#"  { name = "seq", type = "int64", nullable = false },
  { name = "user_id", type = "int64" },
  { name = "event", type = "string" },
  { name = "country", type = "string" },
  { name = "amount", type = "float64" },
  { name = "ts", type = "timestamp" },
  { name = "name", type = "string" },
  { name = "payload", type = "string" },
"#;

const EVENTS: [&str; 8] = [
    "page_view",
    "click",
    "add_to_cart",
    "checkout",
    "purchase",
    "search",
    "login",
    "logout",
];
const COUNTRIES: [&str; 12] = [
    "DE", "FR", "US", "GB", "NL", "SE", "PL", "ES", "IT", "JP", "BR", "IN",
];
const WORDS: [&str; 32] = [
    "the",
    "order",
    "was",
    "shipped",
    "to",
    "customer",
    "from",
    "warehouse",
    "after",
    "payment",
    "cleared",
    "and",
    "inventory",
    "reserved",
    "for",
    "item",
    "sku",
    "session",
    "browser",
    "mobile",
    "desktop",
    "referrer",
    "campaign",
    "discount",
    "applied",
    "cart",
    "total",
    "currency",
    "eur",
    "usd",
    "status",
    "ok",
];

/// splitmix64: a tiny deterministic generator, so every run produces the same bytes.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Kafka timestamp of record `seq`: spread over [`BASE_TIMESTAMP_MS`]'s hour.
pub fn timestamp_ms(seq: u64) -> i64 {
    BASE_TIMESTAMP_MS + (seq % 3_600_000) as i64
}

/// A JSON event of exactly `target_bytes` bytes (or its minimal size if that is larger): a few
/// typed fields and a `payload` of words from a small vocabulary mixed with hex ids, which
/// compresses roughly like real event logs (neither all text nor all entropy).
pub fn event_record(seq: u64, target_bytes: usize) -> String {
    let mut r = mix(seq);
    let ts = timestamp_ms(seq);
    let (min, sec, ms) = ((ts / 60_000) % 60, (ts / 1000) % 60, ts % 1000);
    let mut s = String::with_capacity(target_bytes + 32);
    write!(
        s,
        r#"{{"seq":{seq},"user_id":{},"event":"{}","country":"{}","amount":{}.{:02},"ts":"2026-11-21T10:{min:02}:{sec:02}.{ms:03}Z","name":"record-{seq}","payload":""#,
        r % 100_000,
        EVENTS[(r >> 20) as usize % EVENTS.len()],
        COUNTRIES[(r >> 24) as usize % COUNTRIES.len()],
        (r >> 32) % 1000,
        (r >> 8) % 100,
    )
    .expect("write to a String");
    let head = s.len();
    let end = target_bytes.saturating_sub(2); // room for `"}`
    let mut i = 0u64;
    while s.len() < end {
        r = mix(r ^ i);
        if i % 4 == 3 {
            write!(s, "{:08x} ", r as u32).expect("write to a String");
        } else {
            s.push_str(WORDS[(r % WORDS.len() as u64) as usize]);
            s.push(' ');
        }
        i += 1;
    }
    s.truncate(end.max(head));
    s.push_str("\"}");
    s
}

/// Everything a generated sink config varies.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub name: String,
    pub topic: String,
    pub bootstrap: String,
    pub group_id: String,
    pub format: Format,
    pub data_url: String,
    pub markers_url: String,
    pub max_file_bytes: u64,
    pub max_records: u64,
    pub max_age_ms: u64,
    pub max_buffered_bytes: u64,
    /// librdkafka options passed through `[kafka].options`.
    pub kafka_options: Vec<(String, String)>,
}

/// The sink config text for `spec`. Parquet and runtime settings not named here keep Landfall's
/// defaults, so the benchmarks measure what a user gets out of the box.
pub fn sink_toml(spec: &SinkSpec) -> String {
    let options: Vec<String> = spec
        .kafka_options
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
        .collect();
    format!(
        r#"name = "{name}"
topics = ["{topic}"]

[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
options = {{ {options} }}

{format}
[flush]
max_file_bytes = {max_file_bytes}
max_records = {max_records}
max_age_ms = {max_age_ms}

[parquet]
compression = "zstd"

[store]
url = "{data}"

[marker]
prefix = "{markers}"

[runtime]
max_buffered_bytes = {budget}
"#,
        name = spec.name,
        topic = spec.topic,
        bootstrap = spec.bootstrap,
        group = spec.group_id,
        options = options.join(", "),
        format = spec.format.toml(),
        max_file_bytes = spec.max_file_bytes,
        max_records = spec.max_records,
        max_age_ms = spec.max_age_ms,
        data = spec.data_url,
        markers = spec.markers_url,
        budget = spec.max_buffered_bytes,
    )
}

/// Parse and validate a generated config (panics with every problem if it is invalid).
pub fn sink_config(spec: &SinkSpec) -> SinkConfig {
    let text = sink_toml(spec);
    SinkConfig::from_toml(&text, std::path::Path::new("bench.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("generated config is invalid:\n{e}\n---\n{text}"))
}

/// The buffer settings the runtime derives from a sink config.
pub fn buffer_format(cfg: &SinkConfig) -> BufferFormat {
    BufferFormat::from_config(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_the_requested_size_and_parse() {
        for size in [200, 512, 1024, 4096] {
            for seq in [0, 1, 99_999, 12_345_678] {
                let r = event_record(seq, size);
                assert_eq!(r.len(), size, "{r}");
                let v: serde_json::Value = serde_json::from_str(&r).expect("valid JSON");
                assert_eq!(v["seq"], seq);
            }
        }
        assert_eq!(event_record(7, 1024), event_record(7, 1024));
    }

    #[test]
    fn generated_configs_validate() {
        for format in [Format::Declared, Format::Inferred, Format::Raw] {
            let cfg = sink_config(&SinkSpec {
                name: "bench".into(),
                topic: "t".into(),
                bootstrap: "127.0.0.1:9092".into(),
                group_id: "g".into(),
                format,
                data_url: "file:///tmp/data".into(),
                markers_url: "file:///tmp/markers".into(),
                max_file_bytes: 64 << 20,
                max_records: 100_000_000,
                max_age_ms: 600_000,
                max_buffered_bytes: 2 << 30,
                kafka_options: vec![("fetch.wait.max.ms".into(), "100".into())],
            });
            assert_eq!(cfg.flush.max_file_bytes, 64 << 20);
            let _ = buffer_format(&cfg);
        }
    }
}
