//! Prometheus metrics, named `landfall_<noun>_<unit>[_total]`, labelled by sink, topic and
//! (where it matters for lag) partition only.

use landfall_core::manifest::Manifest;
use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

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
            registry: r,
        }
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

    /// Partitions reported stuck, over every sink of the process.
    pub fn stuck_partitions(&self) -> i64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == "landfall_partitions_stuck")
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_gauge().get_value() as i64)
            .sum()
    }

    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("utf-8")
    }
}
