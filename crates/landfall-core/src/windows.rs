//! Window completion markers (`[windows]`): the decisions, as plain synchronous code. The IO
//! around them is `landfall-runtime::windows`; the contract is `docs/markers.md#window-markers`.
//!
//! A window is one event-time hour of the data layout (`dt=YYYY-MM-DD/hour=HH` in
//! `partitioning.timezone`). Workers coordinate only through the object store:
//!
//! - Each partition's owner keeps a **progress** object: the largest event time of the
//!   partition's committed rows, and an **idle promise** (a wall-clock time up to which it
//!   declared the partition quiet). Its **watermark** is the larger of the two.
//! - The owner decides, when a batch starts landing (one batch per partition lands at a time),
//!   which of its files are **late**: a file whose window ended `allowed_lateness_ms` or more
//!   before the owner's watermark goes to the late area. The decision is frozen for the batch's
//!   retries, so they produce the same layout.
//! - Any worker may **close** a window once every partition of the topic (from Kafka metadata)
//!   has a watermark at or past the window's end plus the lateness. Because an owner writes a
//!   batch's window entries before its progress, and judges later batches against a watermark at
//!   least as high as any progress it wrote, every non-late file of a closed window is committed
//!   and listed by then, and no later file can join it.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::buffer::SealedBatch;
use crate::decode::Rejected;
use crate::manifest::{rfc3339_ms, rfc3339_us, FileEntry, Manifest, FORMAT_VERSION};

/// A window's bounds, microseconds since the epoch, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_us: i64,
    pub end_us: i64,
}

/// The window of a time partition `dt=YYYY-MM-DD/hour=HH` in `tz`. An hour repeated when
/// daylight saving time ends spans both occurrences (it is one directory); `None` for a string
/// that is not a time partition or an hour that does not exist in `tz`.
pub fn window_of(time_partition: &str, tz: chrono_tz::Tz) -> Option<Window> {
    let rest = time_partition.strip_prefix("dt=")?;
    let (date, hour) = rest.split_once("/hour=")?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let hour: u32 = hour.parse().ok()?;
    let start = NaiveDateTime::new(date, NaiveTime::from_hms_opt(hour, 0, 0)?);
    let local = tz.from_local_datetime(&start);
    let first = local.earliest()?.with_timezone(&Utc);
    let last = local.latest()?.with_timezone(&Utc);
    Some(Window {
        start_us: first.timestamp_micros(),
        end_us: last.timestamp_micros() + 3_600_000_000,
    })
}

/// Whether a watermark has passed a window plus the allowed lateness.
pub fn passed(w: Window, allowed_lateness_ms: u64, watermark_us: i64) -> bool {
    w.end_us.saturating_add(allowed_lateness_ms as i64 * 1000) <= watermark_us
}

/// A partition's window progress, written by its owner
/// (`{marker.prefix}/_windows/{sink}/{topic}/progress/{partition:05}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub format_version: u32,
    pub sink: String,
    pub topic: String,
    pub partition: i32,
    /// `offsets.next` of the last committed batch whose progress this includes.
    pub next_offset: i64,
    /// Largest event time (µs) of the committed rows, late ones excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_time_us: Option<i64>,
    /// The owner found the partition quiet (nothing buffered, landing or arriving) at this wall
    /// time (µs): rows it lands later for windows that ended `allowed_lateness_ms` before this
    /// go to the late area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_watermark_us: Option<i64>,
    pub writer_id: String,
    pub updated_at: String,
}

impl Progress {
    pub fn watermark_us(&self) -> i64 {
        self.max_event_time_us
            .unwrap_or(i64::MIN)
            .max(self.idle_watermark_us.unwrap_or(i64::MIN))
    }
}

/// What an owner knows of its partition; the source of its progress objects and late decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnerState {
    pub next_offset: i64,
    pub max_event_time_us: Option<i64>,
    pub idle_watermark_us: Option<i64>,
}

impl OwnerState {
    /// Continue from the progress a previous owner (or an earlier life) wrote.
    pub fn from_progress(p: Option<&Progress>) -> OwnerState {
        p.map(|p| OwnerState {
            next_offset: p.next_offset,
            max_event_time_us: p.max_event_time_us,
            idle_watermark_us: p.idle_watermark_us,
        })
        .unwrap_or_default()
    }

    pub fn watermark_us(&self) -> i64 {
        self.max_event_time_us
            .unwrap_or(i64::MIN)
            .max(self.idle_watermark_us.unwrap_or(i64::MIN))
    }

    /// Which time partitions of a batch about to land are late by this owner's watermark (by
    /// their windows, in `tz`). The caller adds those whose window marker already exists (what
    /// an owner without history, e.g. of a partition added later, cannot know). Called once per
    /// batch; the answer is kept for its retries.
    pub fn late_partitions<'a>(
        &self,
        time_partitions: impl IntoIterator<Item = &'a str>,
        tz: chrono_tz::Tz,
        allowed_lateness_ms: u64,
    ) -> Vec<String> {
        let wm = self.watermark_us();
        let mut late: Vec<String> = time_partitions
            .into_iter()
            .filter(|tp| window_of(tp, tz).is_some_and(|w| passed(w, allowed_lateness_ms, wm)))
            .map(String::from)
            .collect();
        late.sort();
        late.dedup();
        late
    }

    /// A batch committed: its non-late rows' largest event time raises the watermark.
    pub fn committed(&mut self, next_offset: i64, on_time_max_event_us: Option<i64>) {
        self.next_offset = self.next_offset.max(next_offset);
        self.max_event_time_us = match (self.max_event_time_us, on_time_max_event_us) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The partition was found quiet at `now_us`. The promise only ever moves forward.
    pub fn idle(&mut self, now_us: i64) {
        self.idle_watermark_us = Some(self.idle_watermark_us.unwrap_or(i64::MIN).max(now_us));
    }

    pub fn progress(
        &self,
        sink: &str,
        topic: &str,
        partition: i32,
        writer_id: &str,
        now_ms: i64,
    ) -> Progress {
        Progress {
            format_version: FORMAT_VERSION,
            sink: sink.into(),
            topic: topic.into(),
            partition,
            next_offset: self.next_offset,
            max_event_time_us: self.max_event_time_us,
            idle_watermark_us: self.idle_watermark_us,
            writer_id: writer_id.into(),
            updated_at: rfc3339_ms(now_ms),
        }
    }
}

/// The largest event time (µs) of a committed batch's on-time rows: a batch's
/// `event_time.max` unless all its files are late (late rows are older than every on-time row:
/// their windows ended before the on-time rows' windows began). Late files are the ones whose
/// `time_partition` starts with [`LATE_DIR`].
pub fn on_time_max_event_us(m: &Manifest) -> Option<i64> {
    let any_on_time = m.files.iter().any(|f| {
        f.time_partition
            .as_deref()
            .is_some_and(|tp| !tp.starts_with(LATE_DIR))
    });
    if !any_on_time {
        return None;
    }
    let max = m.event_time.as_ref()?.max.as_str();
    chrono::DateTime::parse_from_rfc3339(max)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// The `time_partition` (and directory below the topic) of a late file of `time_partition`.
pub fn late_partition(time_partition: &str) -> String {
    format!("{LATE_DIR}/{time_partition}")
}

/// The reason a late record's dead letter gives (`late_records = "dead_letter"`).
pub fn late_reason(time_partition: &str) -> String {
    format!("late: window {time_partition} closed")
}

/// `late_records = "dead_letter"`: the batch as it lands once the late decision found the
/// windows `late` closed. Their files are left out and their rows' original records become
/// dead letters ([`late_reason`]), beside the batch's undecodable records in offset order; the
/// event-time range is that of the rows that remain. `offsets` and `records` stay, so the
/// manifest still says `records = rows + dead_lettered` and covers every offset. A pure function
/// of the batch and the decision, so a retry of the attempt lands the same layout.
///
/// Errs, naming the window, when the batch did not keep the records of a late window's rows
/// ([`crate::buffer::BufferFormat::hold_records`] off): the caller lands them in the late area
/// rather than lose them.
pub fn dead_letter_late(batch: &SealedBatch, late: &[String]) -> Result<SealedBatch, String> {
    let is_late = |tp: &str| late.iter().any(|l| l == tp);
    let mut rejected = batch.rejected.clone();
    for tp in late {
        let rows: u64 = batch
            .files
            .iter()
            .filter(|f| &f.time_partition == tp)
            .map(|f| f.rows)
            .sum();
        let held = batch.held.get(tp).map_or(&[][..], Vec::as_slice);
        if held.len() as u64 != rows {
            return Err(format!(
                "{}[{}] offsets {}..={}: window {tp} has {rows} rows but {} original records were kept",
                batch.tp.topic,
                batch.tp.partition,
                batch.offsets.first,
                batch.offsets.last,
                held.len()
            ));
        }
        let reason = late_reason(tp);
        rejected.extend(held.iter().map(|h| Rejected {
            record: h.record.clone(),
            reason: reason.clone(),
        }));
    }
    rejected.sort_by_key(|r| r.record.offset);
    let files = batch
        .files
        .iter()
        .filter(|f| !is_late(&f.time_partition))
        .cloned()
        .collect();
    let event_time_us = batch
        .held
        .iter()
        .filter(|(tp, _)| !is_late(tp))
        .flat_map(|(_, h)| h.iter().map(|h| h.event_time_us))
        .fold(None, |acc: Option<(i64, i64)>, t| {
            Some(acc.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))))
        });
    Ok(SealedBatch {
        files,
        rejected,
        // Landed now: nothing more can become a dead letter.
        held: BTreeMap::new(),
        event_time_us,
        ..batch.clone()
    })
}

/// One batch's files of one window
/// (`{marker.prefix}/_windows/{sink}/{topic}/open/{time_partition}/{partition:05}_{first:020}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowEntry {
    pub partition: i32,
    pub commit_first: i64,
    pub files: Vec<FileEntry>,
}

/// The entries a committed batch adds, one per window it has on-time files in.
pub fn entries_of(m: &Manifest) -> BTreeMap<String, WindowEntry> {
    let mut out: BTreeMap<String, WindowEntry> = BTreeMap::new();
    for f in &m.files {
        let Some(tp) = &f.time_partition else {
            continue;
        };
        if tp.starts_with(LATE_DIR) {
            continue;
        }
        out.entry(tp.clone())
            .or_insert_with(|| WindowEntry {
                partition: m.partition,
                commit_first: m.offsets.first,
                files: Vec::new(),
            })
            .files
            .push(f.clone());
    }
    out
}

/// Directory (below `{store.url}/{topic}/`) of late files.
pub const LATE_DIR: &str = "_late";

/// Why a partition counted as past a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClosedBy {
    /// Its committed rows' event times passed the window plus the lateness.
    Watermark,
    /// Its owner found it quiet (caught up) after the window plus the lateness.
    Idle,
}

/// Whether every partition of the topic has passed `w`; `partitions` are the topic's
/// partitions from Kafka metadata, `progress` what their owners wrote. A partition without
/// progress holds every window open.
pub fn closable(
    w: Window,
    allowed_lateness_ms: u64,
    partitions: &[i32],
    progress: &BTreeMap<i32, Progress>,
) -> Option<Vec<(i32, i64, ClosedBy)>> {
    if partitions.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for p in partitions {
        let pr = progress.get(p)?;
        if !passed(w, allowed_lateness_ms, pr.watermark_us()) {
            return None;
        }
        let by = if passed(
            w,
            allowed_lateness_ms,
            pr.max_event_time_us.unwrap_or(i64::MIN),
        ) {
            ClosedBy::Watermark
        } else {
            ClosedBy::Idle
        };
        out.push((*p, pr.next_offset, by));
    }
    Some(out)
}

/// A window `_SUCCESS` body (`docs/schemas/window.v1.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowManifest {
    pub format_version: u32,
    pub kind: String,
    pub sink: String,
    pub topic: String,
    pub time_partition: String,
    pub window: WindowBounds,
    pub allowed_lateness_ms: u64,
    pub closed_at: String,
    pub writer_id: String,
    pub rows: u64,
    pub size_bytes: u64,
    pub files: Vec<WindowFile>,
    pub partitions: Vec<PartitionClose>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowBounds {
    pub start: String,
    pub end: String,
    pub timezone: String,
}

/// A data file of the window: the batch manifest's entry plus where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowFile {
    #[serde(flatten)]
    pub file: FileEntry,
    pub partition: i32,
    pub commit_first: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionClose {
    pub partition: i32,
    pub next_offset: i64,
    pub closed_by: ClosedBy,
}

/// What a window's `_SUCCESS` needs besides its entries.
#[derive(Debug, Clone)]
pub struct CloseIds<'a> {
    pub sink: &'a str,
    pub topic: &'a str,
    pub time_partition: &'a str,
    pub window: Window,
    pub tz: chrono_tz::Tz,
    pub allowed_lateness_ms: u64,
    pub writer_id: &'a str,
    pub now_ms: i64,
}

/// Assemble a window's `_SUCCESS` body from every entry of the window. Files are ordered by
/// partition, batch and key, so two workers closing the same window list the same files in the
/// same order.
pub fn assemble(
    ids: CloseIds<'_>,
    entries: &[WindowEntry],
    partitions: Vec<(i32, i64, ClosedBy)>,
) -> WindowManifest {
    let mut files: Vec<WindowFile> = entries
        .iter()
        .flat_map(|e| {
            e.files.iter().map(|f| WindowFile {
                file: f.clone(),
                partition: e.partition,
                commit_first: e.commit_first,
            })
        })
        .collect();
    files.sort_by(|a, b| {
        (a.partition, a.commit_first, &a.file.key).cmp(&(b.partition, b.commit_first, &b.file.key))
    });
    files.dedup_by(|a, b| a.file.key == b.file.key);
    WindowManifest {
        format_version: FORMAT_VERSION,
        kind: "window".into(),
        sink: ids.sink.into(),
        topic: ids.topic.into(),
        time_partition: ids.time_partition.into(),
        window: WindowBounds {
            start: rfc3339_us(ids.window.start_us).replace(".000000Z", "Z"),
            end: rfc3339_us(ids.window.end_us).replace(".000000Z", "Z"),
            timezone: ids.tz.name().into(),
        },
        allowed_lateness_ms: ids.allowed_lateness_ms,
        closed_at: rfc3339_ms(ids.now_ms),
        writer_id: ids.writer_id.into(),
        rows: files.iter().map(|f| f.file.rows).sum(),
        size_bytes: files.iter().map(|f| f.file.size_bytes).sum(),
        files,
        partitions: partitions
            .into_iter()
            .map(|(partition, next_offset, closed_by)| PartitionClose {
                partition,
                next_offset,
                closed_by,
            })
            .collect(),
    }
}

impl WindowManifest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a window manifest always serializes")
    }
}

#[cfg(test)]
mod tests;
