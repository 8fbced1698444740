//! Prometheus metrics, named `landfall_<noun>_<unit>[_total]`, labelled by sink, topic and
//! (where it matters for lag) partition only, plus small closed sets (`reason`, `class`,
//! `stage`). `docs/metrics.md` lists every one; a test checks that list against a real scrape.

use landfall_core::flush::FlushReason;
use landfall_core::manifest::Manifest;
use prometheus::{
    exponential_buckets, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};

use crate::board::Board;

/// The flush reasons, store error classes, retry stages, pause reasons and failure classes a
/// sink's series are created for at start, so `rate()` and alerts see a 0 before the first event.
const FLUSH_REASONS: [FlushReason; 6] = [
    FlushReason::Records,
    FlushReason::Bytes,
    FlushReason::Age,
    FlushReason::Memory,
    FlushReason::Revoke,
    FlushReason::Shutdown,
];
pub const STORE_ERROR_CLASSES: [&str; 2] = ["transient", "permanent"];
pub const RETRY_STAGES: [&str; 2] = ["landing", "recovery"];
pub const PAUSE_REASONS: [&str; 3] = ["memory", "retry", "out_of_range"];
pub const FAILURE_CLASSES: [&str; 6] = [
    "kafka",
    "store",
    "buffer",
    "state",
    "consumer",
    "shutdown_timeout",
];

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub records_consumed: IntCounterVec,
    pub records_landed: IntCounterVec,
    pub records_dead_lettered: IntCounterVec,
    pub records_duplicate: IntCounterVec,
    pub offsets_skipped: IntCounterVec,
    pub bytes_landed: IntCounterVec,
    pub files_landed: IntCounterVec,
    pub batches_committed: IntCounterVec,
    pub commit_conflicts: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub buffered_bytes: IntGaugeVec,
    pub partitions_assigned: IntGaugeVec,
    pub partitions_paused: IntGaugeVec,
    pub partitions_stuck: IntGaugeVec,
    pub durable_offset: IntGaugeVec,
    pub landing_seconds: HistogramVec,
    pub recovery_seconds: HistogramVec,
    pub upload_seconds: HistogramVec,
    pub commit_seconds: HistogramVec,
    pub consumer_lag: IntGaugeVec,
    pub freshness: GaugeVec,
    pub retries: IntCounterVec,
    pub buffer_budget: IntGaugeVec,
    pub partitions_paused_by_reason: IntGaugeVec,
    pub sink_failures: IntCounterVec,
    pub build_info: IntGaugeVec,
    pub resident_memory: IntGaugeVec,
    /// What `/status`, `/readyz` and `/healthz` read: each sink's latest snapshot and heartbeat.
    pub board: Board,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn float_gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(exponential_buckets(0.005, 2.0, 14).expect("valid")),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let st = &["sink", "topic"];
        let stp = &["sink", "topic", "partition"];
        let build_info = gauge(
            &r,
            "landfall_build_info",
            "Always 1; the labels say which build is running",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Metrics {
            records_consumed: counter(
                &r,
                "landfall_records_consumed_total",
                "Records received from Kafka and buffered",
                st,
            ),
            records_landed: counter(
                &r,
                "landfall_records_landed_total",
                "Rows in committed Parquet files",
                st,
            ),
            records_dead_lettered: counter(
                &r,
                "landfall_records_dead_lettered_total",
                "Records written to the dead-letter destination in committed batches",
                st,
            ),
            records_duplicate: counter(
                &r,
                "landfall_records_duplicate_total",
                "Re-delivered records dropped because they were already buffered or landed",
                st,
            ),
            offsets_skipped: counter(
                &r,
                "landfall_offsets_skipped_total",
                "Offsets skipped without being read, as explained in committed manifests' gaps, by reason (retention: Kafka deleted them before they were landed)",
                &["sink", "topic", "reason"],
            ),
            bytes_landed: counter(
                &r,
                "landfall_bytes_landed_total",
                "Bytes of committed Parquet files",
                st,
            ),
            files_landed: counter(
                &r,
                "landfall_files_landed_total",
                "Committed Parquet files",
                st,
            ),
            batches_committed: counter(
                &r,
                "landfall_batches_committed_total",
                "Committed batches by flush reason",
                &["sink", "topic", "reason"],
            ),
            commit_conflicts: counter(
                &r,
                "landfall_commit_conflicts_total",
                "Commits refused because another writer committed the range first",
                st,
            ),
            store_errors: counter(
                &r,
                "landfall_store_errors_total",
                "Object-store errors by class",
                &["sink", "class"],
            ),
            buffered_bytes: gauge(
                &r,
                "landfall_buffered_bytes",
                "Bytes held in partition buffers and landing batches",
                &["sink"],
            ),
            partitions_assigned: gauge(
                &r,
                "landfall_partitions_assigned",
                "Partitions assigned to this member",
                &["sink"],
            ),
            partitions_paused: gauge(
                &r,
                "landfall_partitions_paused",
                "Partitions paused for the memory budget or a failing store",
                &["sink"],
            ),
            partitions_stuck: gauge(
                &r,
                "landfall_partitions_stuck",
                "Partitions whose oldest batch has failed to land for runtime.stuck_after_ms (retries go on), or stopped because Kafka's log ends before their position",
                &["sink"],
            ),
            durable_offset: gauge(
                &r,
                "landfall_durable_offset",
                "Next offset after the last committed batch",
                &["sink", "topic", "partition"],
            ),
            landing_seconds: histogram(
                &r,
                "landfall_landing_seconds",
                "Time from seal to commit of a batch",
                &["sink"],
            ),
            recovery_seconds: histogram(
                &r,
                "landfall_recovery_seconds",
                "Time to recover a partition's position from the store",
                &["sink"],
            ),
            upload_seconds: histogram(
                &r,
                "landfall_upload_seconds",
                "Time to upload a batch's Parquet files and dead letters",
                &["sink"],
            ),
            commit_seconds: histogram(
                &r,
                "landfall_commit_seconds",
                "Time to write a batch's commit record and run its post-commit step (marker, index, hint)",
                &["sink"],
            ),
            consumer_lag: gauge(
                &r,
                "landfall_consumer_lag_records",
                "Records between the durable (landed) offset and the partition's end offset (high watermark or last stable offset)",
                stp,
            ),
            freshness: float_gauge(
                &r,
                "landfall_freshness_seconds",
                "Age of the newest Kafka timestamp among the records of the partition's last committed batch",
                stp,
            ),
            retries: counter(
                &r,
                "landfall_retries_total",
                "Retries scheduled after a transient store error, by stage (landing, recovery)",
                &["sink", "stage"],
            ),
            buffer_budget: gauge(
                &r,
                "landfall_buffer_budget_bytes",
                "The memory budget for buffered bytes (runtime.max_buffered_bytes)",
                &["sink"],
            ),
            partitions_paused_by_reason: gauge(
                &r,
                "landfall_partitions_paused_by_reason",
                "Paused partitions by reason (memory, retry); a partition can have both",
                &["sink", "reason"],
            ),
            sink_failures: counter(
                &r,
                "landfall_sink_failures_total",
                "Sinks stopped by an error, by class (kafka, store, buffer, state, consumer, shutdown_timeout)",
                &["sink", "class"],
            ),
            resident_memory: gauge(
                &r,
                "landfall_resident_memory_bytes",
                "Resident memory of the process (VmRSS), read at scrape",
                &[],
            ),
            build_info,
            board: Board::default(),
            registry: r,
        }
    }

    /// Create a sink's series at zero (named topics only; a regex's topics appear as they
    /// land), so dashboards and alerts see every series from the start.
    pub fn init_sink(&self, sink: &str, topics: &[String], budget: u64) {
        for t in topics {
            let labels = [sink, t.as_str()];
            for c in [
                &self.records_consumed,
                &self.records_landed,
                &self.records_dead_lettered,
                &self.records_duplicate,
                &self.bytes_landed,
                &self.files_landed,
                &self.commit_conflicts,
            ] {
                c.with_label_values(&labels);
            }
            for r in FLUSH_REASONS {
                self.batches_committed
                    .with_label_values(&[sink, t, r.as_str()]);
            }
            // Every gap reason there is: the series reads 0 from the start, so an alert on its
            // increase fires on the first skipped offset.
            self.offsets_skipped.with_label_values(&[
                sink,
                t,
                landfall_core::manifest::GapReason::Retention.as_str(),
            ]);
        }
        for c in STORE_ERROR_CLASSES {
            self.store_errors.with_label_values(&[sink, c]);
        }
        for s in RETRY_STAGES {
            self.retries.with_label_values(&[sink, s]);
        }
        for r in PAUSE_REASONS {
            self.partitions_paused_by_reason
                .with_label_values(&[sink, r])
                .set(0);
        }
        for c in FAILURE_CLASSES {
            self.sink_failures.with_label_values(&[sink, c]);
        }
        for g in [
            &self.buffered_bytes,
            &self.partitions_assigned,
            &self.partitions_paused,
            &self.partitions_stuck,
        ] {
            g.with_label_values(&[sink]);
        }
        self.buffer_budget
            .with_label_values(&[sink])
            .set(budget as i64);
        for h in [
            &self.landing_seconds,
            &self.recovery_seconds,
            &self.upload_seconds,
            &self.commit_seconds,
        ] {
            h.with_label_values(&[sink]);
        }
    }

    /// Drop the per-partition series of a partition this process no longer owns (its new owner
    /// reports it).
    pub fn forget_partition(&self, sink: &str, topic: &str, partition: i32) {
        let p = partition.to_string();
        let labels = [sink, topic, p.as_str()];
        let _ = self.durable_offset.remove_label_values(&labels);
        let _ = self.consumer_lag.remove_label_values(&labels);
        let _ = self.freshness.remove_label_values(&labels);
    }

    /// Count a committed batch.
    pub fn batch_committed(&self, sink: &str, m: &Manifest, took: std::time::Duration) {
        let labels = [sink, m.topic.as_str()];
        self.records_landed
            .with_label_values(&labels)
            .inc_by(m.rows);
        self.records_dead_lettered
            .with_label_values(&labels)
            .inc_by(m.dead_lettered);
        self.files_landed
            .with_label_values(&labels)
            .inc_by(m.files.len() as u64);
        self.bytes_landed
            .with_label_values(&labels)
            .inc_by(m.files.iter().map(|f| f.size_bytes).sum());
        self.batches_committed
            .with_label_values(&[sink, &m.topic, &m.flush_reason])
            .inc();
        // Counted when committed, from the manifest: each skipped offset once, as the
        // manifests explain it, however often the skip was decided before it landed.
        for g in &m.gaps {
            self.offsets_skipped
                .with_label_values(&[sink, &m.topic, g.reason.as_str()])
                .inc_by(g.len());
        }
        self.landing_seconds
            .with_label_values(&[sink])
            .observe(took.as_secs_f64());
        self.durable_offset
            .with_label_values(&[sink, &m.topic, &m.partition.to_string()])
            .set(m.offsets.next);
    }

    pub fn render(&self) -> String {
        use prometheus::Encoder;
        if let Some(rss) = resident_bytes() {
            self.resident_memory
                .with_label_values::<&str>(&[])
                .set(rss as i64);
        }
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("utf-8")
    }
}

/// VmRSS of this process from `/proc/self/status` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
