//! Broker-free pipeline benchmarks: records -> Arrow -> Parquet through `PartitionBuffer`, the
//! CPU work of arrows 2 and 3 of the data flow, for each record format.
//!
//! - `partition_buffer/<format>`: `push` every record, `encode_pending` whenever a chunk is full
//!   (as the sink loop does), then `seal` the batch into finished Parquet files. This is the whole
//!   per-record CPU cost of landing, minus Kafka and the object store.
//! - `event_shapes/<shape>/<format>`: the same for the end-to-end harness's ~150 B and ~500 B
//!   events.
//! - `decode/<format>`: `RecordDecoder::decode` alone (records -> Arrow `RecordBatch`), to split
//!   the first figure into decoding and Parquet encoding.
//!
//! - `size_targeting` (printed, not timed): replays the sink loop's flush decisions — records in
//!   consumer batches of 2048, `encode_pending` on full chunks, `FlushPolicy::due` after each
//!   batch — and reports how far each file sealed for `bytes` lands from `max_file_bytes`, so an
//!   estimator error shows up here without a broker.
//!
//! Throughput is in bytes of record values (what producers sent). Each iteration handles
//! `RECORDS` records of `RECORD_BYTES` bytes, generated once, with Landfall's default Parquet
//! settings (zstd level 1, dictionary, page statistics) and default chunk size.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use landfall_bench::{
    buffer_format, event_record, sink_config, timestamp_ms, Format, Shape, SinkSpec,
};
use landfall_core::buffer::{BufferFormat, PartitionBuffer, SealedBatch};
use landfall_core::config::Compression;
use landfall_core::config::FlushConfig;
use landfall_core::flush::{FlushPolicy, FlushReason};
use landfall_core::manifest::OffsetRange;
use landfall_core::{KafkaRecord, TopicPartition};

const RECORDS: u64 = 16_384;
const RECORD_BYTES: usize = 1024;
const FORMATS: [Format; 3] = [Format::Declared, Format::Inferred, Format::Raw];

fn spec(format: Format) -> SinkSpec {
    shaped_spec(format, Shape::Padded(RECORD_BYTES))
}

fn shaped_spec(format: Format, shape: Shape) -> SinkSpec {
    SinkSpec {
        name: "bench".into(),
        topic: "events".into(),
        bootstrap: "127.0.0.1:9092".into(),
        group_id: "bench".into(),
        format,
        shape,
        data_url: "file:///tmp/landfall-bench/data".into(),
        markers_url: "file:///tmp/landfall-bench/markers".into(),
        // Large enough that nothing here depends on the flush policy.
        max_file_bytes: 1 << 30,
        max_records: 100_000_000,
        max_age_ms: 600_000,
        max_buffered_bytes: 2 << 30,
        kafka_options: Vec::new(),
        store_options: Vec::new(),
    }
}

fn records() -> Vec<KafkaRecord> {
    shaped_records(Shape::Padded(RECORD_BYTES), RECORDS)
}

fn shaped_records(shape: Shape, n: u64) -> Vec<KafkaRecord> {
    let topic: Arc<str> = "events".into();
    (0..n)
        .map(|seq| KafkaRecord {
            topic: topic.clone(),
            partition: 0,
            offset: seq as i64,
            timestamp_ms: Some(timestamp_ms(seq)),
            key: Some(Bytes::from(seq.to_string())),
            value: Some(Bytes::from(shape.record(seq))),
            headers: Vec::new(),
        })
        .collect()
}

fn value_bytes(records: &[KafkaRecord]) -> u64 {
    records
        .iter()
        .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
        .sum()
}

fn partition_buffer(c: &mut Criterion) {
    let input = records();
    let mut group = group(c, "partition_buffer", 4, &input);
    for format in FORMATS {
        let cfg = sink_config(&spec(format));
        let fmt = buffer_format(&cfg);
        // One line of context per format: how much the Parquet output weighs.
        let mut b = PartitionBuffer::new(TopicPartition::new("events", 0));
        for r in input.iter().cloned() {
            b.push(r, 0);
        }
        let sealed = b
            .seal(&fmt, FlushReason::Bytes, whole(RECORDS), "bench", 0)
            .expect("seal")
            .expect("not empty");
        eprintln!(
            "{}: {} records, {} value bytes -> {} Parquet bytes in {} file(s) (ratio {:.3})",
            format.name(),
            sealed.records,
            value_bytes(&input),
            sealed.bytes(),
            sealed.files.len(),
            sealed.bytes() as f64 / value_bytes(&input) as f64,
        );
        assert_eq!(sealed.rows(), RECORDS, "every record decoded");

        bench_land(&mut group, format.name(), &fmt, &input);
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let input = records();
    let mut group = group(c, "decode", 3, &input);
    for format in FORMATS {
        let fmt = buffer_format(&sink_config(&spec(format)));
        let chunk = fmt.chunk_records;
        group.bench_function(format.name(), |bench| {
            bench.iter(|| {
                let mut rows = 0;
                for records in input.chunks(chunk) {
                    let d = fmt.decoder.decode(records, 0).expect("decode");
                    rows += d.batch.num_rows();
                }
                assert_eq!(rows as u64, RECORDS);
                rows
            })
        });
    }
    group.finish();
}

/// `partition_buffer/json_declared` under each Parquet codec and zstd level: what the codec
/// costs per byte and what it saves on the store (printed ratio), to choose the default.
fn parquet_codec(c: &mut Criterion) {
    let input = records();
    let mut group = group(c, "parquet_codec", 4, &input);
    let codecs = [
        ("zstd1", Compression::Zstd(1)),
        ("zstd3", Compression::Zstd(3)),
        ("lz4", Compression::Lz4),
        ("snappy", Compression::Snappy),
        ("none", Compression::None),
    ];
    for (name, codec) in codecs {
        let mut cfg = sink_config(&spec(Format::Declared));
        cfg.parquet.compression = codec;
        let fmt = buffer_format(&cfg);
        let sealed = land(&fmt, input.clone());
        eprintln!(
            "parquet_codec/{name}: {} value bytes -> {} Parquet bytes (ratio {:.3})",
            value_bytes(&input),
            sealed.bytes(),
            sealed.bytes() as f64 / value_bytes(&input) as f64,
        );
        bench_land(&mut group, name, &fmt, &input);
    }
    group.finish();
}

/// `event_shapes/<shape>_<format>`: the realistic 12-field events of the end-to-end harness
/// (`small` ~150 B, `medium` ~500 B; nested objects, lists, timestamps) landed like
/// `partition_buffer`, declared and inferred. The per-core targets are stated for these
/// sizes (250 MB/s of ~500 B declared JSON, 1M records/s of ~100 B records); records/s is
/// MiB/s x 2^20 / the mean size printed per shape.
fn event_shapes(c: &mut Criterion) {
    for shape in [Shape::Small, Shape::Medium] {
        // About 2.5 MB of values per iteration for either shape, as `partition_buffer` lands.
        let n = match shape {
            Shape::Small => 16_384,
            _ => 5_120,
        };
        let input = shaped_records(shape, n);
        let mut group = group(c, &format!("event_shapes/{}", shape.name()), 4, &input);
        eprintln!(
            "event_shapes/{}: {n} records, mean {:.1} B",
            shape.name(),
            value_bytes(&input) as f64 / n as f64
        );
        for format in [Format::Declared, Format::Inferred] {
            let fmt = buffer_format(&sink_config(&shaped_spec(format, shape)));
            let sealed = land(&fmt, input.clone());
            assert_eq!(sealed.rows(), n, "every record decoded");
            bench_land(&mut group, format.name(), &fmt, &input);
        }
        group.finish();
    }
}

/// A benchmark group measuring throughput in bytes of `input`'s values: few samples of
/// whole iterations (each is many milliseconds), `measure_secs` each.
fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    measure_secs: u64,
    input: &[KafkaRecord],
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measure_secs))
        .throughput(Throughput::Bytes(value_bytes(input)));
    group
}

/// Time [`land`] on a fresh copy of `input` per iteration (the copy is not timed).
fn bench_land(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    fmt: &BufferFormat,
    input: &[KafkaRecord],
) {
    group.bench_function(name, |bench| {
        bench.iter_batched(
            || input.to_vec(),
            |records| land(fmt, records),
            BatchSize::PerIteration,
        )
    });
}

/// What the sink loop does with one partition's records: push, encode full chunks, seal.
fn land(fmt: &BufferFormat, records: Vec<KafkaRecord>) -> SealedBatch {
    let n = records.len() as u64;
    let mut b = PartitionBuffer::new(TopicPartition::new("events", 0));
    for r in records {
        b.push(r, 0);
        if b.chunk_full(fmt) {
            b.encode_pending(fmt, 0).expect("encode");
        }
    }
    b.seal(fmt, FlushReason::Bytes, whole(n), "bench", 0)
        .expect("seal")
        .expect("not empty")
}

/// True when criterion was asked for some benches and `name` is not among them (criterion
/// filters timed benches itself; the printed ones check here).
fn filtered_out(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str()))
}

/// Not a timing: how close the sizes of byte-triggered files come to `max_file_bytes`.
fn size_targeting(_: &mut Criterion) {
    if filtered_out("size_targeting") {
        return;
    }
    const CONSUMER_BATCH: u64 = 2048; // landfall-runtime's `batch_records`
    let fmt = buffer_format(&sink_config(&spec(Format::Declared)));
    let topic: Arc<str> = "events".into();
    for target_mib in [8u64, 16, 32, 64] {
        let target = target_mib << 20;
        let policy = FlushPolicy::new(FlushConfig {
            max_records: 100_000_000,
            max_file_bytes: target,
            max_age_ms: 600_000,
        });
        let mut b = PartitionBuffer::new(TopicPartition::new("events", 0));
        let mut sealed = Vec::new();
        let mut seq = 0u64;
        while sealed.len() < 2 {
            for _ in 0..CONSUMER_BATCH {
                b.push(
                    KafkaRecord {
                        topic: topic.clone(),
                        partition: 0,
                        offset: seq as i64,
                        timestamp_ms: Some(timestamp_ms(seq)),
                        key: None,
                        value: Some(Bytes::from(event_record(seq, RECORD_BYTES))),
                        headers: Vec::new(),
                    },
                    0,
                );
                seq += 1;
            }
            if b.chunk_full(&fmt) {
                b.encode_pending(&fmt, 0).expect("encode");
            }
            let stats = b.stats(&fmt);
            if let Some(reason) = policy.due(&stats, 0) {
                let range = OffsetRange::new(0, seq as i64 - 1);
                let batch = b
                    .seal(&fmt, reason, range, "bench", 0)
                    .expect("seal")
                    .expect("not empty");
                sealed.push((
                    stats.largest_file_bytes,
                    batch.bytes(),
                    batch.records,
                    reason,
                ));
            }
        }
        for (estimate, actual, records, reason) in sealed {
            eprintln!(
                "size_targeting: max_file_bytes {target} ({target_mib} MiB): sealed for {} at estimate {estimate} B; file {actual} B ({:+.1}% of target, estimate {:+.1}% of file), {records} records",
                reason.as_str(),
                (actual as f64 - target as f64) / target as f64 * 100.0,
                (estimate as f64 - actual as f64) / actual as f64 * 100.0,
            );
        }
    }
}

criterion_group!(
    benches,
    size_targeting,
    partition_buffer,
    decode,
    parquet_codec,
    event_shapes
);
criterion_main!(benches);

/// The offsets of a buffer holding records 0..n (the ledger's range in a real sink).
fn whole(records: u64) -> OffsetRange {
    OffsetRange::new(0, records as i64 - 1)
}
