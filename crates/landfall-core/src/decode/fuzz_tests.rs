//! Fuzz-style property test: arbitrary bytes and arbitrary JSON values, mixed in the chunks of
//! one batch, through the decoder, the partition buffer and the Parquet writer, and back through
//! a Parquet reader. For every input record exactly one outcome: a row (its `_offset` is in a
//! file) or a dead letter. Every JSON object lands as a row in the inferred format. No panic.
//!
//! Cases: `LANDFALL_FUZZ_CASES` (default 500: about 13,000 records, 7 s in a debug build). A long
//! run, about 25 records a case:
//! `LANDFALL_FUZZ_CASES=40000 cargo test -p landfall-core --lib fuzz -- --nocapture`
//! prints how many records went through and how long it took.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use super::landing_tests::{format, read_parquet};
use crate::buffer::{PartitionBuffer, MAX_CHUNK_BYTES};
use crate::config::{FormatConfig, MetadataColumn};
use crate::decode::RecordDecoder;
use crate::flush::FlushReason;
use crate::manifest::OffsetRange;
use crate::record::{KafkaRecord, TopicPartition};
use crate::schema::DeclaredField;

/// One input record's value, as generated.
#[derive(Debug, Clone)]
enum Input {
    /// A JSON object: must land as a row in the inferred format.
    Object(Value),
    /// Any JSON value (mostly not an object at the top).
    Json(Value),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    /// A JSON object's text cut short or with one byte replaced.
    Damaged(Value, usize, Option<u8>),
    /// `depth` nested arrays or objects inside `{"d":...}`.
    Deep(usize, bool),
    Tombstone,
}

impl Input {
    fn bytes(&self) -> Option<Bytes> {
        Some(Bytes::from(match self {
            Input::Object(v) | Input::Json(v) => serde_json::to_vec(v).expect("serializes"),
            Input::Bytes(b) => b.clone(),
            Input::Damaged(v, at, byte) => {
                let mut b = serde_json::to_vec(v).expect("serializes");
                let at = at % b.len().max(1);
                match byte {
                    Some(x) if !b.is_empty() => b[at] = *x,
                    _ => b.truncate(at),
                }
                b
            }
            Input::Deep(depth, arrays) => {
                let (open, close) = if *arrays {
                    ("[", "]")
                } else {
                    (r#"{"d":"#, "}")
                };
                format!(
                    r#"{{"d":{}1{}}}"#,
                    open.repeat(*depth),
                    close.repeat(*depth)
                )
                .into_bytes()
            }
            Input::Tombstone => return None,
        }))
    }
}

#[derive(Debug, Clone)]
struct Case {
    inputs: Vec<(Input, Option<i64>)>,
    chunk_records: usize,
    max_chunk_bytes: u64,
    format: u8,
    metadata: Vec<MetadataColumn>,
    event_time_field: bool,
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "a", "b", "A", "", "a.b", "ts", "_offset", "__offset", "_timestamp", "_headers",
            "_key", "item", "x y",
        ])
        .prop_map(String::from),
        1 => ".{0,6}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![
            9_007_199_254_740_993i64,
            9_007_199_254_740_992,
            -9_007_199_254_740_993,
            i64::MIN,
            i64::MAX,
        ])
        .prop_map(Value::from),
        // Mapped, not filtered: JSON has no NaN or infinity (serde_json writes them as null),
        // and a filter's rejections would end a long run at proptest's reject limit.
        any::<f64>()
            .prop_map(|f| { serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number) }),
        prop::sample::select(vec![0.5f64, -0.0, 1e300, 2.5e-300, 1.0]).prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
        Just(Value::String("2025-11-21T10:00:00Z".into())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), value(), 0..7)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        12 => object().prop_map(Input::Object),
        2 => value().prop_map(Input::Json),
        2 => prop::collection::vec(any::<u8>(), 0..48).prop_map(Input::Bytes),
        2 => (object(), any::<usize>(), prop::option::of(any::<u8>()))
            .prop_map(|(v, at, b)| Input::Damaged(v, at, b)),
        1 => (0usize..300, any::<bool>()).prop_map(|(d, a)| Input::Deep(d, a)),
        1 => Just(Input::Tombstone),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        4 => Just(Some(1_763_719_200_000i64)),
        1 => Just(None),
        1 => any::<i64>().prop_map(Some),
        1 => (0i64..4_000_000_000_000).prop_map(Some),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((input(), timestamp()), 1..48),
        1usize..20,
        prop::sample::select(vec![64u64, 2048, MAX_CHUNK_BYTES]),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop::sample::subsequence(
            vec![
                MetadataColumn::Topic,
                MetadataColumn::Partition,
                MetadataColumn::Timestamp,
                MetadataColumn::Key,
                MetadataColumn::Headers,
            ],
            0..=5,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(inputs, chunk_records, max_chunk_bytes, format, mut metadata, event_time_field)| {
                metadata.push(MetadataColumn::Offset);
                Case {
                    inputs,
                    chunk_records,
                    max_chunk_bytes,
                    format,
                    metadata,
                    event_time_field,
                }
            },
        )
}

fn cases() -> u32 {
    std::env::var("LANDFALL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// Land one case; check that the offsets of the rows and of the dead letters partition the input.
fn land(case: &Case) -> Result<(), TestCaseError> {
    let format_config = match case.format {
        0 => FormatConfig::JsonInferred,
        1 => FormatConfig::JsonDeclared(vec![
            DeclaredField {
                name: "a".into(),
                data_type: DataType::Int64,
                nullable: true,
            },
            DeclaredField {
                name: "b".into(),
                data_type: DataType::Utf8,
                nullable: true,
            },
        ]),
        _ => FormatConfig::Raw,
    };
    let mut fmt = format(&format_config, &case.metadata, case.chunk_records);
    if case.event_time_field {
        fmt.decoder = RecordDecoder::new(&format_config, &case.metadata, Some("ts".into()));
    }
    let mut b = PartitionBuffer::new(TopicPartition::new("t", 3))
        .with_max_chunk_bytes(case.max_chunk_bytes);
    let n = case.inputs.len() as i64;
    for (i, (input, ts)) in case.inputs.iter().enumerate() {
        b.push(
            KafkaRecord {
                topic: Arc::from("t"),
                partition: 3,
                offset: 100 + i as i64,
                timestamp_ms: *ts,
                key: Some(Bytes::from(vec![i as u8; i % 3])),
                value: input.bytes(),
                headers: vec![("h".into(), None)],
            },
            0,
        );
        if b.chunk_full(&fmt) {
            b.encode_pending(&fmt, 1_763_719_200_000_000)
                .map_err(|e| TestCaseError::fail(format!("encode failed: {e}")))?;
        }
    }
    let sealed = b
        .seal(
            &fmt,
            FlushReason::Age,
            OffsetRange::new(100, 100 + n - 1),
            "f",
            0,
        )
        .map_err(|e| TestCaseError::fail(format!("seal failed: {e}")))?
        .expect("records were pushed");
    let mut landed = Vec::new();
    for f in &sealed.files {
        let batch = read_parquet(&f.bytes);
        prop_assert_eq!(batch.num_rows() as u64, f.rows);
        let offsets = batch
            .column_by_name("_offset")
            .expect("an _offset column")
            .as_primitive::<Int64Type>();
        landed.extend(offsets.values().iter().copied());
    }
    let rejected: Vec<i64> = sealed.rejected.iter().map(|r| r.record.offset).collect();
    for r in &sealed.rejected {
        prop_assert!(!r.reason.is_empty());
    }
    prop_assert_eq!(landed.len() + rejected.len(), case.inputs.len());
    let mut all = landed.clone();
    all.extend(&rejected);
    all.sort();
    prop_assert_eq!(all, (100..100 + n).collect::<Vec<_>>());
    if case.format == 0 {
        for (i, (input, _)) in case.inputs.iter().enumerate() {
            let lands = match input {
                Input::Object(_) => true,
                Input::Deep(d, _) => *d < 127,
                _ => false,
            };
            if lands {
                let offset = 100 + i as i64;
                prop_assert!(
                    landed.contains(&offset),
                    "object at {} was rejected: {:?}",
                    offset,
                    sealed.rejected.iter().find(|r| r.record.offset == offset)
                );
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_every_record_is_a_row_or_a_dead_letter() {
    let cases = cases();
    let records = AtomicU64::new(0);
    let start = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        records.fetch_add(case.inputs.len() as u64, Ordering::Relaxed);
        land(&case)
    });
    eprintln!(
        "fuzz: {cases} cases, {} records (including shrinking), {:.1} s",
        records.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
