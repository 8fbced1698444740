//! Shared pieces of Landfall's benchmarks, so the broker-free pipeline benches
//! (`benches/pipeline.rs`) and the end-to-end harness (`src/bin/e2e.rs`) measure the same
//! records through the same configuration:
//!
//! - [`Shape`]: the records a run produces — realistic ~150 B and ~500 B events with nested
//!   objects, and [`event_record`], a deterministic JSON event padded to an exact size (default
//!   1 KiB) with a realistic mix of compressible text and high-entropy ids; each with its
//!   declared schema;
//! - [`sink_toml`]: the sink config text for a [`Format`], as an operator would write it;
//! - [`buffer_format`]: the [`BufferFormat`] the runtime derives from a validated config
//!   (mirrors `landfall-runtime`'s sink start-up).
//!
//! Results and how to run: `docs/benchmarks.md` at the workspace root.

use std::fmt::Write as _;

mod shapes;
pub use shapes::Shape;

use landfall_core::buffer::BufferFormat;
use landfall_core::config::SinkConfig;

/// 2026-11-21T10:00:00Z in milliseconds. Every generated record's Kafka timestamp falls within
/// this hour, so a run lands in one time partition and a byte-triggered batch is one file
/// (a batch straddling an hour boundary would end in a small tail file of the old hour).
pub const BASE_TIMESTAMP_MS: i64 = 1_795_255_200_000;

/// How the sink decodes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON with the declared schema of the records' [`Shape`].
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

    fn toml(self, shape: Shape) -> String {
        match self {
            Format::Declared => format!(
                "[format]\ntype = \"json\"\nfields = [\n{}]\n",
                shape.declared_fields()
            ),
            Format::Inferred => "[format]\ntype = \"json\"\n".to_string(),
            Format::Raw => "[format]\ntype = \"raw\"\n".to_string(),
        }
    }
}

/// The declared schema of [`event_record`] ([`Shape::Padded`]), in sink-config syntax.
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
pub(crate) fn mix(mut x: u64) -> u64 {
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
    /// The records' shape: its declared schema is what [`Format::Declared`] writes.
    pub shape: Shape,
    pub data_url: String,
    pub markers_url: String,
    pub max_file_bytes: u64,
    pub max_records: u64,
    pub max_age_ms: u64,
    pub max_buffered_bytes: u64,
    /// librdkafka options passed through `[kafka].options`.
    pub kafka_options: Vec<(String, String)>,
    /// object_store options for `[store].options` (the marker prefix uses them too); empty for
    /// local disk.
    pub store_options: Vec<(String, String)>,
}

/// The sink config text for `spec`. Parquet and runtime settings not named here keep Landfall's
/// defaults, so the benchmarks measure what a user gets out of the box.
pub fn sink_toml(spec: &SinkSpec) -> String {
    let table = |opts: &[(String, String)]| -> String {
        let items: Vec<String> = opts
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
            .collect();
        items.join(", ")
    };
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
options = {{ {store_options} }}

[marker]
prefix = "{markers}"

[runtime]
max_buffered_bytes = {budget}
"#,
        name = spec.name,
        topic = spec.topic,
        bootstrap = spec.bootstrap,
        group = spec.group_id,
        options = table(&spec.kafka_options),
        store_options = table(&spec.store_options),
        format = spec.format.toml(spec.shape),
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

    fn spec(format: Format, shape: Shape) -> SinkSpec {
        SinkSpec {
            name: "bench".into(),
            topic: "t".into(),
            bootstrap: "127.0.0.1:9092".into(),
            group_id: "g".into(),
            format,
            shape,
            data_url: "file:///tmp/data".into(),
            markers_url: "file:///tmp/markers".into(),
            max_file_bytes: 64 << 20,
            max_records: 100_000_000,
            max_age_ms: 600_000,
            max_buffered_bytes: 2 << 30,
            kafka_options: vec![("fetch.wait.max.ms".into(), "100".into())],
            store_options: Vec::new(),
        }
    }

    const SHAPES: [Shape; 3] = [Shape::Small, Shape::Medium, Shape::Padded(1024)];

    #[test]
    fn generated_configs_validate() {
        for shape in SHAPES {
            for format in [Format::Declared, Format::Inferred, Format::Raw] {
                let cfg = sink_config(&spec(format, shape));
                assert_eq!(cfg.flush.max_file_bytes, 64 << 20);
                let _ = buffer_format(&cfg);
            }
        }
        let mut s3 = spec(Format::Declared, Shape::Small);
        s3.data_url = "s3://lake/bench/raw".into();
        s3.markers_url = "s3://lake/bench/_landfall".into();
        s3.store_options = vec![
            ("aws_endpoint".into(), "http://127.0.0.1:9000".into()),
            ("aws_allow_http".into(), "true".into()),
        ];
        let cfg = sink_config(&s3);
        assert_eq!(cfg.store.options["aws_allow_http"], "true");
    }

    #[test]
    fn shapes_are_json_of_the_declared_size_with_twelve_fields() {
        for shape in [Shape::Small, Shape::Medium] {
            let (lo, hi) = shape.size_band();
            let n = 20_000u64;
            let mut total = 0usize;
            for seq in 0..n {
                let r = shape.record(seq);
                assert!((lo..=hi).contains(&r.len()), "{} B: {r}", r.len());
                total += r.len();
                let v: serde_json::Value = serde_json::from_str(&r).expect("valid JSON");
                let o = v.as_object().expect("an object");
                assert_eq!(o.len(), 12, "{r}");
                let seq_key = if shape == Shape::Small { "n" } else { "seq" };
                assert_eq!(o[seq_key], seq);
                assert!(o.values().filter(|v| v.is_object()).count() >= 2, "{r}");
                assert!(o.values().any(serde_json::Value::is_array), "{r}");
            }
            let mean = total as f64 / n as f64;
            eprintln!("{}: mean {mean:.1} B", shape.name());
            let target = if shape == Shape::Small { 150.0 } else { 500.0 };
            assert!(
                (mean - target).abs() < target * 0.1,
                "{}: mean {mean:.1} B",
                shape.name()
            );
            assert_eq!(shape.record(7), shape.record(7));
        }
        assert_eq!(Shape::Padded(1024).record(3).len(), 1024);
    }

    /// Every shape decodes through Landfall's own decoders with nothing rejected: declared (the
    /// schema each shape declares) and inferred.
    #[test]
    fn shapes_decode_through_landfalls_decoders() {
        for shape in SHAPES {
            let topic: std::sync::Arc<str> = "t".into();
            let records: Vec<landfall_core::KafkaRecord> = (0..5_000u64)
                .map(|seq| landfall_core::KafkaRecord {
                    topic: topic.clone(),
                    partition: 0,
                    offset: seq as i64,
                    timestamp_ms: Some(timestamp_ms(seq)),
                    key: None,
                    value: Some(bytes::Bytes::from(shape.record(seq))),
                    headers: Vec::new(),
                })
                .collect();
            for format in [Format::Declared, Format::Inferred] {
                let fmt = buffer_format(&sink_config(&spec(format, shape)));
                let d = fmt.decoder.decode(&records, 0).expect("decode");
                assert!(
                    d.rejected.is_empty(),
                    "{} {}: {:?}",
                    shape.name(),
                    format.name(),
                    d.rejected.first().map(|r| &r.reason)
                );
                assert_eq!(d.batch.num_rows(), records.len());
                // 12 payload columns (8 for the padded event) + 4 metadata columns.
                let payload = if matches!(shape, Shape::Padded(_)) {
                    8
                } else {
                    12
                };
                assert_eq!(d.batch.num_columns(), payload + 4, "{}", shape.name());
            }
        }
    }

    /// Event times stay inside the base hour, so a run lands in one time partition.
    #[test]
    fn event_times_stay_in_the_base_hour() {
        for seq in [0u64, 1, 3_599_999, 3_600_000, 12_345_678] {
            let v: serde_json::Value =
                serde_json::from_str(&Shape::Small.record(seq)).expect("json");
            let t = v["t"].as_i64().expect("t");
            assert!(
                (BASE_TIMESTAMP_MS * 1000..(BASE_TIMESTAMP_MS + 3_600_000) * 1000).contains(&t)
            );
            let v: serde_json::Value =
                serde_json::from_str(&Shape::Medium.record(seq)).expect("json");
            assert!(v["ts"].as_str().expect("ts").starts_with("2026-11-21T10:"));
        }
    }
}
