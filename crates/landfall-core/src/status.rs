//! What an operator or an orchestrator sees of a sink: the `/status` document, the readiness and
//! liveness decisions, lag and freshness. Pure: the sink loop snapshots its state machine into a
//! [`SinkStatus`] on every tick (via [`Observer::snapshot`]), the HTTP task serves the latest
//! snapshot and decides with [`readiness`] and [`liveness`]; neither holds a lock across an await.
//!
//! Definitions (`docs/operations.md` documents them for users):
//! - **lag** of a partition: records between its *durable* offset (the next offset no commit
//!   covers) and the broker's high watermark — what is not yet landed, buffered records included.
//!   This is what matters to a reader of the lake; a consumer position would hide what is
//!   buffered but not committed.
//! - **freshness**: age of the newest Kafka timestamp among the records of the last committed
//!   batch. It grows while nothing lands, whether because the topic is idle or the sink is behind.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::REDACTED;
use crate::manifest::{rfc3339_ms, Manifest};
use crate::state::{Phase, SinkState};
use crate::TopicPartition;

/// Longest error message `/status` shows; the full one is in the log.
const MAX_ERROR_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkPhase {
    /// Probing its store and the broker, joining the group.
    Starting,
    /// Consuming and landing.
    Running,
    /// Shutting down: landing what is buffered.
    Stopping,
    /// Stopped cleanly.
    Stopped,
    /// Stopped with an error (`last_error` says which).
    Failed,
}

/// One sink, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkStatus {
    pub sink: String,
    /// The writer id recorded in this process's manifests.
    pub writer_id: String,
    pub phase: SinkPhase,
    /// Partitions being assigned whose position is still being recovered from the store.
    pub recovering_partitions: usize,
    /// Bytes held in buffers and landing batches (and by the consumer for a full channel).
    pub buffered_bytes: u64,
    /// `runtime.max_buffered_bytes`.
    pub buffer_budget_bytes: u64,
    pub partitions: Vec<PartitionReport>,
    /// The error that stopped the sink, if it failed.
    pub last_error: Option<ErrorReport>,
}

/// One assigned partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    /// Writer id of the process that owns it (this one).
    pub owner: String,
    /// `running`, `recovering` (lost a commit race, re-reading its position) or `revoking`.
    pub state: &'static str,
    /// The next offset no commit covers: everything before it is landed.
    pub durable_offset: i64,
    /// The broker's high watermark as last reported by the consumer; `None` until known.
    pub high_watermark: Option<i64>,
    /// `high_watermark - durable_offset` (records not yet landed), at least 0.
    pub lag: Option<i64>,
    pub buffered_records: u64,
    pub sealed_batches: usize,
    pub paused: bool,
    /// `memory` (the buffer budget is reached) and/or `retry` (a landing failed; waiting to retry).
    pub paused_because: Vec<&'static str>,
    /// Its oldest batch has failed to land for `runtime.stuck_after_ms`.
    pub stuck: bool,
    /// Set when the partition is stopped because Kafka's log ends before its position (topic
    /// recreated, log truncated): the operator's message, naming the offsets and the procedure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range: Option<String>,
    /// Consecutive failed landings of its oldest batch.
    pub failures: u32,
    /// The last batch this process committed for it.
    pub last_batch: Option<BatchReport>,
    /// Seconds since the newest Kafka timestamp of the last committed batch.
    pub freshness_seconds: Option<f64>,
    /// The last landing or recovery error (redacted), cleared by the next commit.
    pub last_error: Option<ErrorReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchReport {
    pub first_offset: i64,
    pub last_offset: i64,
    pub next_offset: i64,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    pub reason: String,
    pub commit_url: String,
    pub marker_url: String,
    pub landed_at: String,
    /// Seconds since `landed_at` when the status was read.
    pub age_seconds: f64,
    /// The newest Kafka timestamp among its records (RFC 3339), if the broker gave any.
    pub newest_record_at: Option<String>,
    #[serde(skip)]
    pub landed_at_ms: i64,
    #[serde(skip)]
    pub newest_record_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    pub at: String,
    /// `transient` (retried), `permanent` (stops the sink), or the kind of fatal error.
    pub class: String,
    /// Redacted and shortened; the full message is in the log.
    pub message: String,
}

impl ErrorReport {
    /// An error as `/status` shows it: every secret value of the sink replaced by
    /// `<redacted>`, at most [`MAX_ERROR_CHARS`] characters.
    pub fn new(now_ms: i64, class: &str, message: &str, secrets: &[String]) -> ErrorReport {
        ErrorReport {
            at: rfc3339_ms(now_ms),
            class: class.to_string(),
            message: redact(message, secrets),
        }
    }
}

/// `text` with every occurrence of a secret replaced by `<redacted>`, shortened to
/// [`MAX_ERROR_CHARS`] characters. Longer secrets first, so one that contains another is hidden
/// whole.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), REDACTED);
    }
    match out.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out,
    }
}

/// Records behind the high watermark, if it is known.
pub fn lag(durable_next: i64, high_watermark: Option<i64>) -> Option<i64> {
    high_watermark.map(|h| (h - durable_next).max(0))
}

/// Seconds from `then_ms` to `now_ms` (0 if the clocks disagree the other way).
pub fn age_seconds(now_ms: i64, then_ms: i64) -> f64 {
    (now_ms - then_ms).max(0) as f64 / 1000.0
}

/// What the sink loop remembers for `/status` beyond its state machine: the last committed batch
/// and the last error of each partition, and the high watermarks the consumer reported.
#[derive(Debug, Default)]
pub struct Observer {
    last_batch: HashMap<TopicPartition, BatchReport>,
    last_error: HashMap<TopicPartition, ErrorReport>,
    high_watermarks: HashMap<TopicPartition, i64>,
}

impl Observer {
    /// A batch committed (by this process): it is the partition's last batch, and its error is
    /// over.
    pub fn committed(&mut self, m: &Manifest, landed_at_ms: i64, newest_record_ms: Option<i64>) {
        let tp = TopicPartition::new(m.topic.as_str(), m.partition);
        self.last_error.remove(&tp);
        self.last_batch.insert(
            tp,
            BatchReport {
                first_offset: m.offsets.first,
                last_offset: m.offsets.last,
                next_offset: m.offsets.next,
                rows: m.rows,
                files: m.files.len(),
                bytes: m.files.iter().map(|f| f.size_bytes).sum(),
                reason: m.flush_reason.clone(),
                commit_url: m.commit_url.clone(),
                marker_url: m.marker_url.clone(),
                landed_at: m.landed_at.clone(),
                age_seconds: 0.0,
                newest_record_at: newest_record_ms.map(rfc3339_ms),
                landed_at_ms,
                newest_record_ms,
            },
        );
    }

    pub fn failed(&mut self, tp: &TopicPartition, error: ErrorReport) {
        self.last_error.insert(tp.clone(), error);
    }

    /// The consumer's latest high watermarks (partitions it no longer reports keep their last).
    pub fn high_watermarks(&mut self, marks: impl IntoIterator<Item = (TopicPartition, i64)>) {
        self.high_watermarks.extend(marks);
    }

    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.high_watermarks.get(tp).copied()
    }

    /// The newest Kafka timestamp landed for `tp` by this process.
    pub fn newest_landed_ms(&self, tp: &TopicPartition) -> Option<i64> {
        self.last_batch.get(tp).and_then(|b| b.newest_record_ms)
    }

    /// Forget partitions no longer assigned (their next owner reports them).
    pub fn retain(&mut self, state: &SinkState) {
        let owned: Vec<TopicPartition> = state.status().into_iter().map(|p| p.tp).collect();
        self.last_batch.retain(|tp, _| owned.contains(tp));
        self.last_error.retain(|tp, _| owned.contains(tp));
    }

    /// The partitions of `state` as `/status` shows them, ages computed at `now_ms`.
    pub fn partitions(&self, state: &SinkState, owner: &str, now_ms: i64) -> Vec<PartitionReport> {
        state
            .status()
            .into_iter()
            .map(|p| {
                let high_watermark = self.high_watermark(&p.tp);
                let last_batch = self.last_batch.get(&p.tp).cloned().map(|mut b| {
                    b.age_seconds = age_seconds(now_ms, b.landed_at_ms);
                    b
                });
                let freshness_seconds = last_batch
                    .as_ref()
                    .and_then(|b| b.newest_record_ms)
                    .map(|t| age_seconds(now_ms, t));
                let mut paused_because = Vec::new();
                if p.paused.memory {
                    paused_because.push("memory");
                }
                if p.paused.retry {
                    paused_because.push("retry");
                }
                if p.paused.out_of_range {
                    paused_because.push("out_of_range");
                }
                PartitionReport {
                    topic: p.tp.topic.to_string(),
                    partition: p.tp.partition,
                    owner: owner.to_string(),
                    state: match p.phase {
                        Phase::Running => "running",
                        Phase::Recovering => "recovering",
                        Phase::Revoking => "revoking",
                    },
                    durable_offset: p.durable_next,
                    high_watermark,
                    lag: lag(p.durable_next, high_watermark),
                    buffered_records: p.buffered_records,
                    sealed_batches: p.sealed_batches,
                    paused: p.paused.any(),
                    paused_because,
                    stuck: p.stuck,
                    out_of_range: p.out_of_range.as_ref().map(|o| o.to_string()),
                    failures: p.failures,
                    last_batch,
                    freshness_seconds,
                    last_error: self.last_error.get(&p.tp).cloned(),
                }
            })
            .collect()
    }
}

impl SinkStatus {
    /// Recompute the ages (`last_batch.age_seconds`, `freshness_seconds`) for reading at `now_ms`.
    pub fn aged(mut self, now_ms: i64) -> SinkStatus {
        for p in &mut self.partitions {
            if let Some(b) = &mut p.last_batch {
                b.age_seconds = age_seconds(now_ms, b.landed_at_ms);
                p.freshness_seconds = b.newest_record_ms.map(|t| age_seconds(now_ms, t));
            }
        }
        self
    }
}

/// Readiness: every sink has started (its store probe and the Kafka preflight passed), every
/// assigned partition has recovered its position from the store, and none is stuck. `Err` lists
/// every reason it is not ready, one line each.
pub fn readiness(sinks: &[SinkStatus]) -> Result<(), Vec<String>> {
    let mut why = Vec::new();
    if sinks.is_empty() {
        why.push("no sink has started yet (store probe)".to_string());
    }
    for s in sinks {
        let name = &s.sink;
        match s.phase {
            SinkPhase::Running => {}
            SinkPhase::Starting => why.push(format!(
                "sink `{name}`: starting (Kafka preflight, joining the group)"
            )),
            SinkPhase::Stopping => why.push(format!("sink `{name}`: shutting down")),
            SinkPhase::Stopped => why.push(format!("sink `{name}`: stopped")),
            SinkPhase::Failed => why.push(format!("sink `{name}`: failed")),
        }
        if s.recovering_partitions > 0 {
            why.push(format!(
                "sink `{name}`: {} assigned partition(s) still recovering their position from the store",
                s.recovering_partitions
            ));
        }
        for p in &s.partitions {
            if p.state == "recovering" {
                why.push(format!(
                    "sink `{name}`: {}[{}] recovering its position after a lost commit race",
                    p.topic, p.partition
                ));
            }
            if let Some(stopped) = &p.out_of_range {
                why.push(format!("sink `{name}`: out of range: {stopped}"));
            }
            if p.stuck {
                let last = p
                    .last_error
                    .as_ref()
                    .map(|e| format!(": {}", e.message))
                    .unwrap_or_default();
                why.push(format!(
                    "sink `{name}`: {}[{}] stuck: its oldest batch failed to land {} time(s) in a row for runtime.stuck_after_ms{last}",
                    p.topic, p.partition, p.failures
                ));
            }
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why)
    }
}

/// A sink loop's heartbeat: the monotonic time (ms) its loop last went round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub sink: String,
    pub phase: SinkPhase,
    pub last_beat_ms: u64,
}

/// Liveness: every sink loop that runs has gone round within `stale_after_ms` (the loop ticks
/// every 100 ms whatever happens, so silence means it is wedged). Sinks still starting are
/// bounded by their own timeouts, and stopped ones end the process: neither is judged here.
pub fn liveness(beats: &[Heartbeat], now_ms: u64, stale_after_ms: u64) -> Result<(), Vec<String>> {
    let why: Vec<String> = beats
        .iter()
        .filter(|b| matches!(b.phase, SinkPhase::Running | SinkPhase::Stopping))
        .filter_map(|b| {
            let silent = now_ms.saturating_sub(b.last_beat_ms);
            (silent > stale_after_ms).then(|| {
                format!(
                    "sink `{}`: loop has not gone round for {silent} ms (limit {stale_after_ms} ms)",
                    b.sink
                )
            })
        })
        .collect();
    if why.is_empty() {
        Ok(())
    } else {
        Err(why)
    }
}

#[cfg(test)]
mod tests;
