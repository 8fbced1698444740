//! Records -> Arrow (inside arrow 2 of the data flow).
//!
//! A chunk of records is decoded in one pass (fast path). If anything in the chunk is wrong, the
//! chunk is decoded again record by record (slow path) so that each bad record is rejected with its
//! own offset and reason while the good ones land: bad input costs time, never data.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BinaryBuilder, Int32Array, Int64Array, ListBuilder,
    StringArray, StructBuilder, TimestampMicrosecondArray,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow_json::ReaderBuilder;
use serde_json::Value;

use crate::config::{FormatConfig, MetadataColumn};
use crate::record::KafkaRecord;
use crate::schema::{declared_schema, header_fields, metadata_field, raw_schema};

mod infer;

/// A record that could not be decoded, with the reason. Goes to the dead-letter destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub record: KafkaRecord,
    pub reason: String,
}

/// The decoded part of a chunk.
#[derive(Debug)]
pub struct Decoded {
    /// Payload columns followed by the configured metadata columns; one row per accepted record.
    pub batch: RecordBatch,
    /// Kafka offset of each row.
    pub offsets: Vec<i64>,
    /// Event time of each row in microseconds (event-time field, else Kafka timestamp, else now).
    pub event_time_us: Vec<i64>,
    pub rejected: Vec<Rejected>,
}

/// Decodes records of one sink's format.
#[derive(Debug, Clone)]
pub struct RecordDecoder {
    kind: Kind,
    metadata: Vec<MetadataColumn>,
    event_time_field: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    Declared(SchemaRef),
    Inferred,
    Raw,
}

#[derive(Debug, thiserror::Error)]
#[error("decoding {topic}[{partition}] offsets {first}..={last}: {message}")]
pub struct DecodeError {
    pub topic: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    pub message: String,
}

impl RecordDecoder {
    pub fn new(
        format: &FormatConfig,
        metadata: &[MetadataColumn],
        event_time_field: Option<String>,
    ) -> Self {
        let kind = match format {
            FormatConfig::JsonDeclared(fields) => Kind::Declared(declared_schema(fields)),
            FormatConfig::JsonInferred => Kind::Inferred,
            FormatConfig::Raw => Kind::Raw,
        };
        RecordDecoder {
            kind,
            metadata: metadata.to_vec(),
            event_time_field,
        }
    }

    /// Decode a chunk. `now_us` is the event time of last resort.
    pub fn decode(&self, records: &[KafkaRecord], now_us: i64) -> Result<Decoded, DecodeError> {
        let (payload, accepted, rejected) = match &self.kind {
            Kind::Declared(schema) => decode_declared(schema, records),
            Kind::Inferred => decode_inferred(records, self.metadata.len()),
            Kind::Raw => decode_raw(records),
        }
        .map_err(|message| DecodeError {
            topic: records
                .first()
                .map(|r| r.topic.to_string())
                .unwrap_or_default(),
            partition: records.first().map_or(-1, |r| r.partition),
            first: records.first().map_or(-1, |r| r.offset),
            last: records.last().map_or(-1, |r| r.offset),
            message,
        })?;
        let kept: Vec<&KafkaRecord> = accepted.iter().map(|&i| &records[i]).collect();
        let event_time_us = self.event_times(&payload, &kept, now_us);
        let batch = append_metadata(payload, &kept, &self.metadata).map_err(|e| DecodeError {
            topic: records[0].topic.to_string(),
            partition: records[0].partition,
            first: records[0].offset,
            last: records[records.len() - 1].offset,
            message: e.to_string(),
        })?;
        Ok(Decoded {
            batch,
            offsets: kept.iter().map(|r| r.offset).collect(),
            event_time_us,
            rejected,
        })
    }

    fn event_times(&self, payload: &RecordBatch, kept: &[&KafkaRecord], now_us: i64) -> Vec<i64> {
        let field_col = self
            .event_time_field
            .as_ref()
            .and_then(|name| {
                // An inferred payload field named like a metadata column is renamed (`infer`).
                let renamed = infer::column_name(name);
                payload.column_by_name(renamed.as_deref().unwrap_or(name))
            })
            .and_then(|c| cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None)).ok());
        let field_col = field_col
            .as_ref()
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>());
        kept.iter()
            .enumerate()
            .map(|(i, r)| {
                field_col
                    .filter(|c| c.is_valid(i))
                    .map(|c| c.value(i))
                    .filter(|t| EVENT_TIME_US.contains(t))
                    .or(kafka_time_us(r).filter(|t| EVENT_TIME_US.contains(t)))
                    .unwrap_or(now_us)
            })
            .collect()
    }
}

/// Event times a time partition can name: years 1 to 9999. A payload or producer can send any
/// integer; one outside this range falls back to the next source (Kafka timestamp, then now).
const EVENT_TIME_US: std::ops::RangeInclusive<i64> =
    -62_135_596_800_000_000..=253_402_300_799_999_999;

/// The Kafka timestamp in microseconds; `None` when the broker gave none (-1) or when it is too
/// large to be one (a producer may set any i64 milliseconds).
fn kafka_time_us(r: &KafkaRecord) -> Option<i64> {
    r.timestamp_ms
        .filter(|&t| t >= 0)
        .and_then(|t| t.checked_mul(1000))
}

type PayloadResult = Result<(RecordBatch, Vec<usize>, Vec<Rejected>), String>;

fn reject(r: &KafkaRecord, reason: impl Into<String>) -> Rejected {
    Rejected {
        record: r.clone(),
        reason: reason.into(),
    }
}

/// Decode one chunk with a declared schema. Fast path first; on any trouble, record by record.
fn decode_declared(schema: &SchemaRef, records: &[KafkaRecord]) -> PayloadResult {
    if let Some(batch) = declared_fast(schema, records) {
        return Ok((batch, (0..records.len()).collect(), Vec::new()));
    }
    let mut batches = Vec::new();
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match declared_one(schema, r) {
            Ok(b) => {
                batches.push(b);
                accepted.push(i);
            }
            Err(reason) => rejected.push(reject(r, reason)),
        }
    }
    let batch = concat_batches(schema, &batches).map_err(|e| e.to_string())?;
    Ok((batch, accepted, rejected))
}

fn json_decoder(schema: &SchemaRef, rows: usize) -> Result<arrow_json::reader::Decoder, String> {
    ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1) + 1)
        .with_coerce_primitive(true)
        .build_decoder()
        .map_err(|e| e.to_string())
}

fn declared_fast(schema: &SchemaRef, records: &[KafkaRecord]) -> Option<RecordBatch> {
    let mut d = json_decoder(schema, records.len()).ok()?;
    for r in records {
        let v = r.value.as_ref()?;
        let read = d.decode(v).ok()?;
        // A record must be exactly one complete JSON value: a partial one would merge with the
        // next record's bytes, two would shift every later row.
        if read != v.len() || d.has_partial_record() {
            return None;
        }
    }
    let batch = d.flush().ok()??;
    (batch.num_rows() == records.len()).then_some(batch)
}

fn declared_one(schema: &SchemaRef, r: &KafkaRecord) -> Result<RecordBatch, String> {
    let v = r
        .value
        .as_ref()
        .ok_or("record has no value (a tombstone)")?;
    let mut d = json_decoder(schema, 1)?;
    let read = d.decode(v).map_err(|e| format!("invalid JSON: {e}"))?;
    if read != v.len() || d.has_partial_record() {
        return Err("invalid JSON: truncated value or more than one value".into());
    }
    let batch = d
        .flush()
        .map_err(|e| format!("does not match the declared schema: {e}"))?
        .ok_or("empty value")?;
    match batch.num_rows() {
        1 => Ok(batch),
        0 => Err("empty value".into()),
        n => Err(format!("value holds {n} JSON documents, expected one")),
    }
}

/// Decode one chunk inferring the schema from it. Only values that are not JSON objects are
/// rejected; every object lands (see `infer`).
fn decode_inferred(records: &[KafkaRecord], metadata_columns: usize) -> PayloadResult {
    let mut objects = Vec::with_capacity(records.len());
    let mut accepted = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match json_object(r) {
            Ok(o) => {
                objects.push(o);
                accepted.push(i);
            }
            Err(reason) => rejected.push(reject(r, reason)),
        }
    }
    let batch = infer::objects_to_batch(&objects).map_err(|e| e.to_string())?;
    if batch.num_columns() == 0 && metadata_columns == 0 && !objects.is_empty() {
        // Parquet stores no rows without columns: the file would read back empty.
        for &i in &accepted {
            rejected.push(reject(
                &records[i],
                "an object without fields in a chunk of them, and no metadata columns: a row \
                 without columns cannot be stored in Parquet",
            ));
        }
        rejected.sort_by_key(|r| r.record.offset);
        return Ok((batch.slice(0, 0), Vec::new(), rejected));
    }
    Ok((batch, accepted, rejected))
}

/// Parse a record value as one JSON object, or say why it is not one.
fn json_object(r: &KafkaRecord) -> Result<serde_json::Map<String, Value>, String> {
    let Some(v) = &r.value else {
        return Err("record has no value (a tombstone)".into());
    };
    let text = std::str::from_utf8(v).map_err(|e| {
        format!(
            "value is not UTF-8 (invalid byte at position {}), so not JSON",
            e.valid_up_to()
        )
    })?;
    if text.trim_ascii().is_empty() {
        return Err("value is empty (no bytes or only whitespace), not a JSON object".into());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            json_kind(&other)
        )),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => Err(format!(
            "value is nested deeper than {JSON_MAX_DEPTH} levels (the JSON parser's limit): {e}"
        )),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// serde_json's recursion limit: deeper values fail to parse instead of exhausting the stack.
const JSON_MAX_DEPTH: usize = 128;

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn decode_raw(records: &[KafkaRecord]) -> PayloadResult {
    // Binary arrays address values with i32 offsets; the buffer bounds chunks by bytes far
    // below this (`buffer::MAX_CHUNK_BYTES`), so this is an error, never an overflow panic.
    let keys_len: usize = records
        .iter()
        .filter_map(|r| r.key.as_ref())
        .map(|k| k.len())
        .sum();
    let values_len: usize = records
        .iter()
        .filter_map(|r| r.value.as_ref())
        .map(|v| v.len())
        .sum();
    if keys_len.max(values_len) > i32::MAX as usize {
        return Err(format!(
            "chunk of {} records holds {} bytes of keys and {} of values, more than one Arrow \
             array can hold (2 GiB)",
            records.len(),
            keys_len,
            values_len
        ));
    }
    let mut keys = BinaryBuilder::new();
    let mut values = BinaryBuilder::new();
    for r in records {
        keys.append_option(r.key.as_deref());
        values.append_option(r.value.as_deref());
    }
    let batch = RecordBatch::try_new(
        raw_schema(),
        vec![Arc::new(keys.finish()), Arc::new(values.finish())],
    )
    .map_err(|e| e.to_string())?;
    Ok((batch, (0..records.len()).collect(), Vec::new()))
}

/// Append the configured metadata columns to a payload batch.
fn append_metadata(
    payload: RecordBatch,
    kept: &[&KafkaRecord],
    metadata: &[MetadataColumn],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if metadata.is_empty() {
        return Ok(payload);
    }
    let mut fields: Vec<Arc<Field>> = payload.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = payload.columns().to_vec();
    for &c in metadata {
        fields.push(Arc::new(metadata_field(c)));
        columns.push(metadata_array(c, kept));
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(kept.len())),
    )
}

fn metadata_array(c: MetadataColumn, kept: &[&KafkaRecord]) -> ArrayRef {
    match c {
        MetadataColumn::Topic => Arc::new(StringArray::from_iter_values(
            kept.iter().map(|r| r.topic.as_ref()),
        )),
        MetadataColumn::Partition => Arc::new(Int32Array::from_iter_values(
            kept.iter().map(|r| r.partition),
        )),
        MetadataColumn::Offset => {
            Arc::new(Int64Array::from_iter_values(kept.iter().map(|r| r.offset)))
        }
        MetadataColumn::Timestamp => Arc::new(
            TimestampMicrosecondArray::from_iter(kept.iter().map(|r| kafka_time_us(r)))
                .with_timezone("UTC"),
        ),
        MetadataColumn::Key => {
            let mut b = BinaryBuilder::new();
            for r in kept {
                b.append_option(r.key.as_deref());
            }
            Arc::new(b.finish())
        }
        MetadataColumn::Headers => {
            let fields = header_fields();
            let mut b = ListBuilder::new(StructBuilder::from_fields(fields.clone(), kept.len()))
                .with_field(Arc::new(Field::new(
                    "item",
                    DataType::Struct(fields),
                    false,
                )));
            for r in kept {
                for (k, v) in &r.headers {
                    let s = b.values();
                    s.field_builder::<arrow::array::StringBuilder>(0)
                        .expect("key is a string")
                        .append_value(k);
                    s.field_builder::<BinaryBuilder>(1)
                        .expect("value is binary")
                        .append_option(v.as_deref());
                    s.append(true);
                }
                b.append(true);
            }
            Arc::new(b.finish())
        }
    }
}

/// Reshape a batch to `target`: reorder columns by name, cast where types differ, fill columns the
/// batch lacks with nulls. Returns `None` if the batch has a column `target` lacks or a cast fails,
/// in which case the caller starts a new file with the batch's own schema.
pub fn conform(batch: &RecordBatch, target: &SchemaRef) -> Option<RecordBatch> {
    if batch.schema() == *target {
        return Some(batch.clone());
    }
    let src = batch.schema();
    if src
        .fields()
        .iter()
        .any(|f| target.field_with_name(f.name()).is_err())
    {
        return None;
    }
    let mut cols = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => cols.push(c.clone()),
            // Only casts that cannot change a value: integers float64 holds exactly into a
            // float column, all-null columns into anything. Anything else (2.5 into int64, "x"
            // into a number, 2^53 + 1 into float64) starts a new file with the chunk's own
            // schema instead of truncating, rounding or nulling values.
            Some(c) if lossless(c, f.data_type()) => cols.push(cast(c, f.data_type()).ok()?),
            Some(_) => return None,
            None if f.is_nullable() => cols.push(new_null_array(f.data_type(), batch.num_rows())),
            None => return None,
        }
    }
    RecordBatch::try_new_with_options(
        target.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .ok()
}

fn lossless(from: &ArrayRef, to: &DataType) -> bool {
    match (from.data_type(), to) {
        (DataType::Null, _)
        | (
            DataType::Int8 | DataType::Int16 | DataType::Int32,
            DataType::Int64 | DataType::Float64,
        ) => true,
        (DataType::Int64, DataType::Float64) => from
            .as_any()
            .downcast_ref::<Int64Array>()
            .is_some_and(|a| a.iter().flatten().all(|v| v.unsigned_abs() <= 1 << 53)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{parse_field_type, DeclaredField};
    use arrow::array::{AsArray, Decimal128Array, ListArray, StructArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    use bytes::Bytes;

    fn rec(offset: i64, value: &str) -> KafkaRecord {
        KafkaRecord {
            topic: "t".into(),
            partition: 2,
            offset,
            timestamp_ms: Some(1_700_000_000_000 + offset),
            key: Some(Bytes::from(format!("k{offset}"))),
            value: Some(Bytes::from(value.to_string())),
            headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
        }
    }

    fn declared(fields: &[(&str, &str)]) -> FormatConfig {
        FormatConfig::JsonDeclared(
            fields
                .iter()
                .map(|(n, t)| DeclaredField {
                    name: n.to_string(),
                    data_type: parse_field_type(t).unwrap(),
                    nullable: true,
                })
                .collect(),
        )
    }

    #[test]
    fn declared_types_decode() {
        let fmt = declared(&[
            ("id", "int64"),
            ("ts", "timestamp"),
            ("amount", "decimal(10,2)"),
            ("tags", "list<string>"),
            ("addr", "struct<city:string>"),
        ]);
        let d = RecordDecoder::new(&fmt, &MetadataColumn::ALL, Some("ts".into()));
        let out = d
            .decode(
                &[
                    rec(5, r#"{"id":1,"ts":"2026-11-21T10:00:00.5Z","amount":"12.34","tags":["a","b"],"addr":{"city":"Oslo"}}"#),
                    rec(6, r#"{"id":2,"amount":7.5}"#),
                ],
                0,
            )
            .unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let b = &out.batch;
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.num_columns(), 5 + 6);
        assert_eq!(b.column(0).as_primitive::<Int64Type>().value(1), 2);
        let amount = b
            .column(2)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        assert_eq!(amount.value(0), 1234);
        assert_eq!(amount.value(1), 750);
        let tags = b.column(3).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(tags.value(0).len(), 2);
        let addr = b.column(4).as_any().downcast_ref::<StructArray>().unwrap();
        assert_eq!(addr.column(0).as_string::<i32>().value(0), "Oslo");
        // Event time from the field, falling back to the Kafka timestamp when the field is null.
        assert_eq!(out.event_time_us[0], 1_795_255_200_500_000);
        assert_eq!(out.event_time_us[1], (1_700_000_000_000 + 6) * 1000);
        assert_eq!(out.offsets, vec![5, 6]);
        assert_eq!(b.schema().field(5).name(), "_topic");
        assert_eq!(
            b.column_by_name("_offset")
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(1),
            6
        );
    }

    #[test]
    fn bad_records_are_rejected_one_by_one() {
        let fmt = declared(&[("id", "int64")]);
        let d = RecordDecoder::new(&fmt, &[MetadataColumn::Offset], None);
        let mut tomb = rec(4, "");
        tomb.value = None;
        let out = d
            .decode(
                &[
                    rec(1, r#"{"id":1}"#),
                    rec(2, r#"{"id":"#),
                    rec(3, r#"{"id":"not a number"}"#),
                    tomb,
                    rec(5, r#"{"id":5}{"id":6}"#),
                    rec(6, r#"{"id":7}"#),
                ],
                0,
            )
            .unwrap();
        assert_eq!(out.offsets, vec![1, 6]);
        let rejected: Vec<i64> = out.rejected.iter().map(|r| r.record.offset).collect();
        assert_eq!(rejected, vec![2, 3, 4, 5]);
        assert!(
            out.rejected[1].reason.contains("schema"),
            "{}",
            out.rejected[1].reason
        );
        assert!(out.rejected[2].reason.contains("tombstone"));
    }

    #[test]
    fn inferred_schema_and_rejections() {
        let d = RecordDecoder::new(&FormatConfig::JsonInferred, &[], None);
        let out = d
            .decode(
                &[
                    rec(1, r#"{"a":1,"b":"x"}"#),
                    rec(2, r#"{"a":2.5,"c":{"d":true}}"#),
                    rec(3, r#"[1,2]"#),
                    rec(4, r#"nope"#),
                ],
                0,
            )
            .unwrap();
        assert_eq!(out.batch.num_rows(), 2);
        assert_eq!(out.rejected.len(), 2);
        let a = out
            .batch
            .column_by_name("a")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(a.value(1), 2.5);
        assert!(out.rejected[0].reason.contains("an array"));
    }

    #[test]
    fn raw_keeps_bytes() {
        let d = RecordDecoder::new(&FormatConfig::Raw, &[MetadataColumn::Headers], None);
        let out = d.decode(&[rec(1, "\u{0}binary")], 0).unwrap();
        assert_eq!(
            out.batch.column(1).as_binary::<i32>().value(0),
            b"\x00binary"
        );
        let headers = out.batch.column(2).as_list::<i32>();
        assert_eq!(headers.value(0).len(), 1);
    }

    #[test]
    fn conform_pads_and_casts() {
        let d = RecordDecoder::new(&FormatConfig::JsonInferred, &[], None);
        let first = d
            .decode(&[rec(1, r#"{"a":1.5,"b":"x"}"#)], 0)
            .unwrap()
            .batch;
        let second = d.decode(&[rec(2, r#"{"a":3}"#)], 0).unwrap().batch;
        let c = conform(&second, &first.schema()).unwrap();
        assert_eq!(c.schema(), first.schema());
        assert!(c.column(1).is_null(0));
        let third = d.decode(&[rec(3, r#"{"z":1}"#)], 0).unwrap().batch;
        assert!(conform(&third, &first.schema()).is_none());
        // A float never goes into an int64 column (it would be truncated): a new file instead.
        let ints = d.decode(&[rec(4, r#"{"a":1}"#)], 0).unwrap().batch;
        let floats = d.decode(&[rec(5, r#"{"a":2.5}"#)], 0).unwrap().batch;
        assert!(conform(&floats, &ints.schema()).is_none());
        let strings = d.decode(&[rec(6, r#"{"a":"x"}"#)], 0).unwrap().batch;
        assert!(conform(&strings, &ints.schema()).is_none());
    }
}

#[cfg(test)]
mod landing_tests;

#[cfg(test)]
mod fuzz_tests;
