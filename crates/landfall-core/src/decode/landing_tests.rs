//! Hostile input through the whole inferred path: decoder, partition buffer, Parquet writer, and
//! back through a Parquet reader. Invariant 6: every valid JSON object lands as a row, everything
//! else is a dead letter with a reason, and nothing fails the chunk or panics.

use arrow::array::{Array, AsArray, RecordBatch, RecordBatchReader};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::buffer::{BufferFormat, PartitionBuffer};
use crate::config::{Compression, FormatConfig, MetadataColumn, ParquetConfig, Statistics};
use crate::decode::{RecordDecoder, Rejected};
use crate::flush::FlushReason;
use crate::manifest::OffsetRange;
use crate::parquet_props::writer_properties;
use crate::record::{KafkaRecord, TopicPartition};

pub(super) fn format(
    format: &FormatConfig,
    metadata: &[MetadataColumn],
    chunk: usize,
) -> BufferFormat {
    BufferFormat {
        decoder: RecordDecoder::new(format, metadata, None),
        props: writer_properties(&ParquetConfig {
            compression: Compression::Zstd(1),
            row_group_rows: 1000,
            data_page_bytes: 64 * 1024,
            dictionary: true,
            statistics: Statistics::Page,
        }),
        timezone: chrono_tz::UTC,
        chunk_records: chunk,
        fail_on_bad_record: false,
        size_model: Default::default(),
        dictionary: Default::default(),
        hold_records: false,
    }
}

pub(super) fn record(offset: i64, value: impl Into<Bytes>) -> KafkaRecord {
    KafkaRecord {
        topic: "t".into(),
        partition: 0,
        offset,
        timestamp_ms: Some(1_763_719_200_000),
        key: None,
        value: Some(value.into()),
        headers: vec![],
    }
}

/// What a sealed batch holds once read back from its Parquet files.
pub(super) struct Landed {
    /// One batch per file, as a Parquet reader sees it.
    pub files: Vec<RecordBatch>,
    pub rejected: Vec<Rejected>,
}

impl Landed {
    /// The only file's rows (the tests that use it land one chunk into one file).
    pub fn one(&self) -> &RecordBatch {
        assert_eq!(self.files.len(), 1, "expected one file");
        &self.files[0]
    }

    pub fn offsets(&self) -> Vec<i64> {
        let mut all: Vec<i64> = self
            .files
            .iter()
            .flat_map(|b| {
                b.column_by_name("_offset")
                    .expect("_offset column")
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        all.sort();
        all
    }

    pub fn reason(&self, offset: i64) -> &str {
        &self
            .rejected
            .iter()
            .find(|r| r.record.offset == offset)
            .unwrap_or_else(|| panic!("offset {offset} was not rejected: {:?}", self.rejected))
            .reason
    }
}

pub(super) fn read_parquet(bytes: &Bytes) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .expect("a Parquet footer")
        .build()
        .expect("a reader");
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("a readable row group")).collect();
    concat_batches(&schema, &batches).expect("one schema per file")
}

/// Push `records` through a partition buffer (one chunk per `chunk` records), seal, read back.
pub(super) fn land_records(
    fmt: &BufferFormat,
    records: Vec<KafkaRecord>,
) -> Result<Landed, crate::buffer::BufferError> {
    let mut b = PartitionBuffer::new(TopicPartition::new("t", 0));
    let first = records.first().map_or(0, |r| r.offset);
    let last = records.last().map_or(0, |r| r.offset);
    for r in records {
        b.push(r, 0);
        if b.chunk_full(fmt) {
            b.encode_pending(fmt, 0)?;
        }
    }
    let sealed = b
        .seal(fmt, FlushReason::Age, OffsetRange::new(first, last), "a", 0)?
        .expect("records were pushed");
    Ok(Landed {
        files: sealed
            .files
            .iter()
            .map(|f| read_parquet(&f.bytes))
            .collect(),
        rejected: sealed.rejected,
    })
}

/// Land JSON values as one chunk of the inferred format with an `_offset` column.
fn land(values: &[&str]) -> Landed {
    let fmt = format(
        &FormatConfig::JsonInferred,
        &[MetadataColumn::Offset],
        values.len(),
    );
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| record(i as i64, v.to_string()))
        .collect();
    land_records(&fmt, records).expect("a chunk of JSON never fails the batch")
}

fn strings(b: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let c = b
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column} in {:?}", b.schema()));
    assert_eq!(c.data_type(), &DataType::Utf8, "{column}");
    c.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

// (a) `{"attrs":{}}` in every record inferred an empty struct, which the Parquet writer refuses.
#[test]
fn an_object_empty_in_every_record_lands_as_json_text() {
    let l = land(&[
        r#"{"id":1,"attrs":{}}"#,
        r#"{"id":2,"attrs":{}}"#,
        r#"{"id":3,"attrs":null}"#,
    ]);
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    let b = l.one();
    assert_eq!(l.offsets(), vec![0, 1, 2]);
    assert_eq!(
        strings(b, "attrs"),
        vec![Some("{}".into()), Some("{}".into()), None]
    );
    // Also nested, inside a list, and as the whole record.
    let l = land(&[r#"{"a":{"b":{}},"l":[{}],"e":{}}"#, "{}"]);
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    let b = l.one();
    let a = b.column_by_name("a").unwrap().as_struct();
    assert_eq!(
        a.column_by_name("b").unwrap().as_string::<i32>().value(0),
        "{}"
    );
    let list = b.column_by_name("l").unwrap().as_list::<i32>();
    assert_eq!(list.value(0).as_string::<i32>().value(0), "{}");
    assert_eq!(strings(b, "e"), vec![Some("{}".into()), None]);
    assert_eq!(l.offsets(), vec![0, 1]);
}

// (b) A list in some records and a scalar in others rejected records, or the whole chunk.
#[test]
fn a_field_that_is_a_list_in_some_records_and_a_scalar_in_others_lands() {
    let l = land(&[r#"{"a":[1]}"#, r#"{"a":2}"#, r#"{"a":"x"}"#, r#"{"b":0}"#]);
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert_eq!(l.offsets(), vec![0, 1, 2, 3]);
    assert_eq!(
        strings(l.one(), "a"),
        vec![Some("[1]".into()), Some("2".into()), Some("x".into()), None]
    );
    // Scalar first, then the list.
    let l = land(&[r#"{"a":2}"#, r#"{"a":[1,2]}"#]);
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert_eq!(strings(l.one(), "a"), some(&["2", "[1,2]"]));
}

// (c) Every other conflict widens by the same rule; only values that are not JSON objects are
// dead letters.
#[test]
fn every_json_object_lands_whatever_its_types() {
    let values = [
        r#"{"obj_or_scalar":{"x":1},"objs_or_scalars":[{"k":1}],"nested":{"deep":{"v":1}},"mixed":[1,"a",true,null,{"o":[]},[2]]}"#,
        r#"{"obj_or_scalar":true,"objs_or_scalars":[1,2],"nested":{"deep":{"v":"s"}},"mixed":[]}"#,
        r#"{"Case":1,"case":"two","CASE":[3],"":"empty key","a.b":1,"a":{"b":2},"n":null,"e":[]}"#,
        r#"{"list_of_lists":[[1],[2.5]],"deep_conflict":[{"a":[1]},{"a":{"b":1}}],"bool_num":false}"#,
        r#"{"list_of_lists":[["x"]],"deep_conflict":[{"a":null}],"bool_num":7,"unicode":"\u00e9\ud83d\ude00"}"#,
    ];
    let l = land(&values);
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert_eq!(l.offsets(), vec![0, 1, 2, 3, 4]);
    let b = l.one();
    assert_eq!(
        strings(b, "obj_or_scalar"),
        vec![
            Some(r#"{"x":1}"#.into()),
            Some("true".into()),
            None,
            None,
            None
        ]
    );
    let objs = b
        .column_by_name("objs_or_scalars")
        .unwrap()
        .as_list::<i32>();
    assert_eq!(objs.value(0).as_string::<i32>().value(0), r#"{"k":1}"#);
    assert_eq!(objs.value(1).as_string::<i32>().value(1), "2");
    let deep = b.column_by_name("nested").unwrap().as_struct();
    let v = deep
        .column_by_name("deep")
        .unwrap()
        .as_struct()
        .column_by_name("v")
        .unwrap();
    assert_eq!(v.as_string::<i32>().value(0), "1");
    assert_eq!(v.as_string::<i32>().value(1), "s");
    let mixed = b.column_by_name("mixed").unwrap().as_list::<i32>();
    let m0 = mixed.value(0);
    let m0: Vec<Option<&str>> = m0.as_string::<i32>().iter().collect();
    assert_eq!(
        m0,
        vec![
            Some("1"),
            Some("a"),
            Some("true"),
            None,
            Some(r#"{"o":[]}"#),
            Some("[2]")
        ]
    );
    assert_eq!(mixed.value(1).len(), 0);
    assert_eq!(
        b.column_by_name("Case")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(2),
        1
    );
    assert_eq!(strings(b, "case")[2].as_deref(), Some("two"));
    assert_eq!(strings(b, "")[2].as_deref(), Some("empty key"));
    assert_eq!(
        b.column_by_name("a.b")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(2),
        1
    );
    let a = b.column_by_name("a").unwrap().as_struct();
    assert_eq!(
        a.column_by_name("b")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(2),
        2
    );
    let lol = b.column_by_name("list_of_lists").unwrap().as_list::<i32>();
    let inner = lol.value(3);
    let inner = inner.as_list::<i32>();
    assert_eq!(inner.value(1).as_string::<i32>().value(0), "2.5");
    let dc = b.column_by_name("deep_conflict").unwrap().as_list::<i32>();
    let dc3 = dc.value(3);
    let dca = dc3
        .as_struct()
        .column_by_name("a")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(dca.value(0), "[1]");
    assert_eq!(dca.value(1), r#"{"b":1}"#);
    assert_eq!(strings(b, "bool_num")[3..], some(&["false", "7"]));
    assert_eq!(strings(b, "unicode")[4].as_deref(), Some("é😀"));
    // Each conflict alone in its own chunk lands too.
    for pair in [
        [r#"{"a":{"x":1}}"#, r#"{"a":1}"#],
        [r#"{"a":[{"x":1}]}"#, r#"{"a":[1]}"#],
        [r#"{"a":{"b":[1]}}"#, r#"{"a":{"b":{"c":1}}}"#],
        [r#"{"a":[1,"x",[1],{"y":2}]}"#, r#"{"a":[]}"#],
        [r#"{"A":1}"#, r#"{"a":"x"}"#],
        [r#"{"":1}"#, r#"{"":{}}"#],
        [r#"{"x.y":{"z":1}}"#, r#"{"x":{"y":{"z":"w"}}}"#],
        [r#"{"a":[[]]}"#, r#"{"a":[[{}]]}"#],
        [r#"{"a":null}"#, r#"{"a":[null]}"#],
    ] {
        let l = land(&pair);
        assert!(l.rejected.is_empty(), "{pair:?}: {:?}", l.rejected);
        assert_eq!(l.offsets(), vec![0, 1], "{pair:?}");
    }
}

#[test]
fn values_that_are_not_json_objects_are_dead_letters_with_a_reason() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let values: Vec<Vec<u8>> = vec![
        br#"{"ok":1}"#.to_vec(),
        b"{\"a\":\"\xff\xfe\"}".to_vec(),
        br#"{"a":1"#.to_vec(),
        br#"[{"a":1}]"#.to_vec(),
        br#"42"#.to_vec(),
        format!(r#"{{"a":{deep}}}"#).into_bytes(),
        br#"{"a":1}{"a":2}"#.to_vec(),
        b"".to_vec(),
        br#"{"a":"\ud800"}"#.to_vec(),
    ];
    let fmt = format(&FormatConfig::JsonInferred, &[MetadataColumn::Offset], 100);
    let mut records: Vec<KafkaRecord> = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| record(i as i64, v))
        .collect();
    let mut tombstone = record(9, "");
    tombstone.value = None;
    records.push(tombstone);
    let l = land_records(&fmt, records).unwrap();
    assert_eq!(l.offsets(), vec![0]);
    assert_eq!(l.rejected.len(), 9);
    assert!(l.reason(1).contains("UTF-8"), "{}", l.reason(1));
    assert!(l.reason(2).contains("invalid JSON"), "{}", l.reason(2));
    assert!(
        l.reason(3)
            .contains("expected a JSON object, found an array"),
        "{}",
        l.reason(3)
    );
    assert!(l.reason(4).contains("found a number"), "{}", l.reason(4));
    assert!(
        l.reason(5).contains("nested deeper than"),
        "{}",
        l.reason(5)
    );
    assert!(l.reason(6).contains("trailing"), "{}", l.reason(6));
    assert!(l.reason(7).contains("empty"), "{}", l.reason(7));
    assert!(l.reason(8).contains("invalid JSON"), "{}", l.reason(8));
    assert!(l.reason(9).contains("tombstone"), "{}", l.reason(9));
}

// (e) Int64 + Float64 used to widen to Float64, rounding integers above 2^53.
#[test]
fn integers_beyond_2_pow_53_mixed_with_floats_stay_exact() {
    let l = land(&[r#"{"n":9007199254740993}"#, r#"{"n":1.5}"#, r#"{"n":-3}"#]);
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert_eq!(
        strings(l.one(), "n"),
        some(&["9007199254740993", "1.5", "-3"])
    );
    // Beyond int64 (up to u64::MAX) as well, even without floats.
    let l = land(&[r#"{"n":18446744073709551615}"#, r#"{"n":1}"#]);
    assert_eq!(strings(l.one(), "n"), some(&["18446744073709551615", "1"]));
    // Integers float64 holds exactly still widen to float64.
    let l = land(&[r#"{"n":9007199254740992}"#, r#"{"n":1.5}"#]);
    let n = l
        .one()
        .column_by_name("n")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(n.value(0), 9_007_199_254_740_992.0);
    assert_eq!(n.value(1), 1.5);
    // And all-integer fields stay int64, exact to the last digit.
    let l = land(&[
        r#"{"n":9223372036854775807}"#,
        r#"{"n":-9223372036854775808}"#,
    ]);
    let n = l
        .one()
        .column_by_name("n")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(n.values().to_vec(), vec![i64::MAX, i64::MIN]);
}

// (e) The same across chunks: an int64 chunk written into a file whose column is float64.
#[test]
fn an_int64_chunk_never_rounds_into_a_float64_file() {
    let fmt = format(&FormatConfig::JsonInferred, &[MetadataColumn::Offset], 1);
    let l = land_records(
        &fmt,
        vec![
            record(0, r#"{"n":1.5}"#),
            record(1, r#"{"n":9007199254740993}"#),
            record(2, r#"{"n":3}"#),
        ],
    )
    .unwrap();
    let mut exact = Vec::new();
    for f in &l.files {
        let n = f.column_by_name("n").unwrap();
        let offsets = f
            .column_by_name("_offset")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..f.num_rows() {
            let text = match n.data_type() {
                DataType::Float64 => n.as_primitive::<Float64Type>().value(i).to_string(),
                DataType::Int64 => n.as_primitive::<Int64Type>().value(i).to_string(),
                other => panic!("{other}"),
            };
            exact.push((offsets.value(i), text));
        }
    }
    exact.sort();
    assert_eq!(
        exact,
        vec![
            (0, "1.5".to_string()),
            (1, "9007199254740993".to_string()),
            (2, "3".to_string())
        ]
    );
}

// (d) A payload field named like a metadata column must neither fail the chunk nor overwrite
// (or be overwritten by) the metadata column.
#[test]
fn payload_fields_named_like_metadata_columns_get_one_more_underscore() {
    let fmt = format(&FormatConfig::JsonInferred, &MetadataColumn::ALL, 10);
    let l = land_records(
        &fmt,
        vec![
            record(40, r#"{"_offset":"mine","__offset":1,"_topic":2,"_partition":[3],"_timestamp":"t","_key":"k","_headers":"h","x":{"_offset":5}}"#),
            record(41, r#"{"_offset":"yours","___offset":true}"#),
        ],
    )
    .unwrap();
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    let b = l.one();
    assert_eq!(l.offsets(), vec![40, 41]);
    assert_eq!(strings(b, "__offset"), some(&["mine", "yours"]));
    assert_eq!(
        b.column_by_name("___offset")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        1
    );
    assert!(b
        .column_by_name("____offset")
        .unwrap()
        .as_boolean()
        .value(1));
    assert_eq!(strings(b, "_topic"), some(&["t", "t"]));
    assert_eq!(
        b.column_by_name("__topic")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        2
    );
    assert_eq!(
        b.column_by_name("_partition").unwrap().data_type(),
        &DataType::Int32
    );
    assert!(b.column_by_name("__partition").is_some());
    assert_eq!(strings(b, "__timestamp")[0].as_deref(), Some("t"));
    assert_eq!(strings(b, "__key")[0].as_deref(), Some("k"));
    assert_eq!(strings(b, "__headers")[0].as_deref(), Some("h"));
    // Nested fields do not collide with anything and keep their names.
    let x = b.column_by_name("x").unwrap().as_struct();
    assert!(x.column_by_name("_offset").is_some());
    // Every column name is unique.
    let schema = b.schema();
    let mut names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), schema.fields().len());
}

// (f) Deep nesting and large records: a dead letter or a row, never a panic or a blown stack.
#[test]
fn deep_nesting_and_near_1mb_records_never_panic() {
    let deep_list = format!(r#"{{"a":{}1{}}}"#, "[".repeat(5000), "]".repeat(5000));
    let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000));
    let ok_depth = format!("{}1{}", r#"{"a":"#.repeat(100), "}".repeat(100));
    let big_string = format!(r#"{{"blob":"{}"}}"#, "x".repeat(1_000_000));
    let big_list = format!(
        r#"{{"nums":[{}]}}"#,
        (0..140_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let many_keys = format!(
        "{{{}}}",
        (0..2_000)
            .map(|i| format!(r#""k{i}":"{}""#, "v".repeat(400)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let values = [
        deep_list, deep_obj, ok_depth, big_string, big_list, many_keys,
    ];
    for v in &values {
        assert!(v.len() < 1_100_000, "{}", v.len());
    }
    let inferred = format(&FormatConfig::JsonInferred, &[MetadataColumn::Offset], 100);
    let records: Vec<KafkaRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| record(i as i64, v.clone()))
        .collect();
    let l = land_records(&inferred, records.clone()).unwrap();
    assert_eq!(l.offsets(), vec![2, 3, 4, 5]);
    assert!(
        l.reason(0).contains("nested deeper than"),
        "{}",
        l.reason(0)
    );
    assert!(
        l.reason(1).contains("nested deeper than"),
        "{}",
        l.reason(1)
    );
    let blob = l
        .files
        .iter()
        .find_map(|b| b.column_by_name("blob").cloned())
        .unwrap();
    assert_eq!(
        blob.as_string::<i32>()
            .iter()
            .flatten()
            .next()
            .unwrap()
            .len(),
        1_000_000
    );
    // The declared and raw formats take the same records without a panic.
    let declared = FormatConfig::JsonDeclared(vec![crate::schema::DeclaredField {
        name: "a".into(),
        data_type: DataType::Int64,
        nullable: true,
    }]);
    let l = land_records(
        &format(&declared, &[MetadataColumn::Offset], 100),
        records.clone(),
    )
    .unwrap();
    assert_eq!(l.offsets().len() + l.rejected.len(), values.len());
    let l = land_records(
        &format(&FormatConfig::Raw, &[MetadataColumn::Offset], 100),
        records,
    )
    .unwrap();
    assert_eq!(l.offsets().len(), values.len());
}

// A chunk of `{}` with `metadata_columns = []` wrote a Parquet file without columns, which reads
// back with no rows while the batch claimed them.
#[test]
fn objects_without_fields_and_no_metadata_columns_are_dead_letters_not_lost_rows() {
    let fmt = format(&FormatConfig::JsonInferred, &[], 10);
    let l = land_records(&fmt, vec![record(0, "{}"), record(1, " {} ")]);
    let l = l.expect("no error");
    let rows: usize = l.files.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(
        rows + l.rejected.len(),
        2,
        "every record is a row or a dead letter"
    );
    assert!(l.reason(1).contains("without columns"), "{}", l.reason(1));
    // With one field in the chunk, the empty objects are rows of nulls.
    let l = land_records(&fmt, vec![record(0, "{}"), record(1, r#"{"a":1}"#)]).unwrap();
    assert!(l.rejected.is_empty());
    assert_eq!(l.one().num_rows(), 2);
}

// Kafka timestamps are whatever the producer set: `i64::MAX` milliseconds overflowed the
// conversion to microseconds (a panic in debug builds, a wrapped negative time in release).
#[test]
fn kafka_timestamps_beyond_the_microsecond_range_are_null_not_a_panic() {
    let fmt = format(&FormatConfig::JsonInferred, &MetadataColumn::ALL, 10);
    let mut records = Vec::new();
    for (i, ts) in [i64::MAX, i64::MIN, -1, 9_223_372_036_854_776, 0]
        .into_iter()
        .enumerate()
    {
        let mut r = record(i as i64, r#"{"a":1}"#);
        r.timestamp_ms = Some(ts);
        records.push(r);
    }
    let l = land_records(&fmt, records).unwrap();
    assert_eq!(l.offsets(), vec![0, 1, 2, 3, 4]);
    let ts: Vec<Option<i64>> = l
        .files
        .iter()
        .flat_map(|b| {
            b.column_by_name("_timestamp")
                .unwrap()
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(ts.contains(&None));
    assert!(ts.contains(&Some(0)));
    // Event times from a payload field: any integer, any string.
    let mut fmt = format(&FormatConfig::JsonInferred, &[MetadataColumn::Offset], 10);
    fmt.decoder = RecordDecoder::new(
        &FormatConfig::JsonInferred,
        &[MetadataColumn::Offset],
        Some("ts".into()),
    );
    let values = [
        r#"{"ts":-9223372036854775808}"#,
        r#"{"ts":9223372036854775807}"#,
        r#"{"ts":-62135596800000001}"#,
        r#"{"ts":0}"#,
    ];
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| record(i as i64, *v))
        .collect();
    let l = land_records(&fmt, records).unwrap();
    assert_eq!(l.offsets(), vec![0, 1, 2, 3]);
    let mut fmt2 = fmt.clone();
    fmt2.chunk_records = 1;
    let values = [
        r#"{"ts":"+262142-12-31T23:59:59Z"}"#,
        r#"{"ts":"0000-01-01T00:00:00Z"}"#,
        r#"{"ts":1e300}"#,
    ];
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| record(i as i64, *v))
        .collect();
    let l = land_records(&fmt2, records).unwrap();
    assert_eq!(l.offsets(), vec![0, 1, 2]);
}
