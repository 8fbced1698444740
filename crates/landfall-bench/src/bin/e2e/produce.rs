//! Filling a topic: as fast as possible (a backlog for the throughput and memory modes) or at a
//! fixed rate with Kafka timestamps = produce time (the latency mode).
//!
//! Per partition end offsets come from the producer's delivery reports, not from ListOffsets:
//! tansu's memory engine answers ListOffsets(latest) with the last batch's base offset + 1.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use landfall_bench::{timestamp_ms, Shape};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};
use serde::Serialize;

use crate::{note, MB};

/// Per partition: offsets `(first, next)` of a fresh topic.
pub type Marks = BTreeMap<i32, (i64, i64)>;

#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Partition -> (records acknowledged, largest offset the broker assigned).
    partitions: Mutex<BTreeMap<i32, (i64, i64)>>,
    /// Partition -> Kafka timestamp of each offset, when asked for (latency mode).
    timestamps: Option<Mutex<BTreeMap<i32, Vec<i64>>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                let mut parts = self.partitions.lock().expect("not poisoned");
                let (n, max) = parts.entry(m.partition()).or_insert((0, -1));
                *n += 1;
                *max = (*max).max(m.offset());
                if let Some(ts) = &self.timestamps {
                    let mut ts = ts.lock().expect("not poisoned");
                    let v = ts.entry(m.partition()).or_default();
                    let o = m.offset() as usize;
                    if v.len() <= o {
                        v.resize(o + 1, i64::MIN);
                    }
                    v[o] = m.timestamp().to_millis().unwrap_or(i64::MIN);
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("not poisoned");
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// How to produce.
pub struct ProduceSpec<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub shape: Shape,
    pub partitions: i32,
    pub compression: &'a str,
    /// `linger.ms`: 20 for a backlog (big batches), a few ms when latency counts.
    pub linger_ms: u64,
    pub options: &'a [(String, String)],
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub seconds: f64,
    pub records: u64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
}

/// What was produced: value bytes, each partition's offsets, and (if asked) each record's Kafka
/// timestamp by partition and offset.
pub struct Produced {
    pub records: u64,
    pub bytes: u64,
    pub marks: Marks,
    pub phase: Phase,
    pub timestamps: Option<BTreeMap<i32, Vec<i64>>>,
}

/// When to send record `seq` and with which timestamp.
pub enum Pace {
    /// `records` records as fast as the producer takes them, timestamps inside the base hour
    /// ([`timestamp_ms`]): the run lands in one time partition.
    Backlog { records: u64 },
    /// `rate` records/s for `seconds`, Kafka timestamp = wall-clock time of the send.
    Rate { rate: f64, seconds: f64 },
}

fn producer(spec: &ProduceSpec<'_>, timestamps: bool) -> Result<BaseProducer<Deliveries>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", spec.bootstrap)
        // Idempotent, so the topic holds exactly the records sent however librdkafka retries.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", spec.linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", spec.compression)
        .set("message.timeout.ms", "300000");
    for (k, v) in spec.options {
        config.set(k, v);
    }
    let ctx = Deliveries {
        timestamps: timestamps.then(Default::default),
        ..Default::default()
    };
    config.create_with_context(ctx).context("create producer")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Produce round-robin over the partitions, record `seq` to partition `seq % partitions`.
pub fn produce(spec: &ProduceSpec<'_>, pace: Pace) -> Result<Produced> {
    let keep_ts = matches!(pace, Pace::Rate { .. });
    let producer = producer(spec, keep_ts)?;
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut last_note = Instant::now();
    let mut seq = 0u64;
    let check = |producer: &BaseProducer<Deliveries>| -> Result<()> {
        if let Some(e) = producer
            .context()
            .first_error
            .lock()
            .expect("not poisoned")
            .as_ref()
        {
            bail!("delivery failed: {e}");
        }
        Ok(())
    };
    let send = |seq: u64, ts: i64, bytes: &mut u64| -> Result<()> {
        let value = spec.shape.record(seq);
        let key = seq.to_string();
        *bytes += value.len() as u64;
        let mut record = BaseRecord::to(spec.topic)
            .partition((seq % spec.partitions as u64) as i32)
            .key(&key)
            .payload(&value)
            .timestamp(ts);
        loop {
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("produce record {seq}: {e}"),
            }
        }
    };
    match pace {
        Pace::Backlog { records } => {
            while seq < records {
                send(seq, timestamp_ms(seq), &mut bytes)?;
                if seq % 1024 == 0 {
                    producer.poll(Duration::ZERO);
                    check(&producer)?;
                }
                seq += 1;
                if last_note.elapsed() > Duration::from_secs(10) {
                    note(format!(
                        "produced {seq}/{records} records ({:.0} MB/s)",
                        bytes as f64 / MB / started.elapsed().as_secs_f64()
                    ));
                    last_note = Instant::now();
                }
            }
        }
        Pace::Rate { rate, seconds } => {
            let end = Duration::from_secs_f64(seconds);
            loop {
                let elapsed = started.elapsed();
                if elapsed >= end {
                    break;
                }
                let due = (elapsed.as_secs_f64() * rate) as u64;
                let ts = now_ms();
                while seq < due {
                    send(seq, ts, &mut bytes)?;
                    seq += 1;
                }
                producer.poll(Duration::ZERO);
                check(&producer)?;
                if last_note.elapsed() > Duration::from_secs(10) {
                    note(format!(
                        "producing at {rate:.0} records/s: {seq} records after {:.0}s",
                        elapsed.as_secs_f64()
                    ));
                    last_note = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let records = seq;
    producer
        .flush(Duration::from_secs(300))
        .context("flush producer")?;
    let secs = started.elapsed().as_secs_f64();
    let ctx = producer.context();
    let (ok, failed) = (
        ctx.ok.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    if failed > 0 || ok != records {
        bail!(
            "{ok} of {records} records delivered, {failed} failed (first error: {:?})",
            ctx.first_error.lock().expect("not poisoned")
        );
    }
    let parts = ctx.partitions.lock().expect("not poisoned").clone();
    let mut marks = BTreeMap::new();
    for (p, (n, max)) in parts {
        // A fresh topic: offsets 0..n, each acknowledged once.
        if max + 1 != n {
            bail!("partition {p}: {n} records acknowledged but the largest offset is {max}");
        }
        marks.insert(p, (0, n));
    }
    // Partitions no record went to (fewer records than partitions) are empty: 0..0.
    for p in 0..spec.partitions {
        marks.entry(p).or_insert((0, 0));
    }
    let timestamps = ctx
        .timestamps
        .as_ref()
        .map(|t| std::mem::take(&mut *t.lock().expect("not poisoned")));
    Ok(Produced {
        records,
        bytes,
        marks,
        phase: Phase {
            seconds: secs,
            records,
            records_per_s: records as f64 / secs,
            mb_per_s: bytes as f64 / MB / secs,
        },
        timestamps,
    })
}
