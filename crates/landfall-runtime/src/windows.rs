//! Window `_SUCCESS` markers (`[windows]`): the IO around `landfall_core::windows`.
//!
//! Three hooks, all coordinated through the object store only:
//!
//! - [`Windows::late_partitions`] when a batch starts landing: which of its time partitions go
//!   to the late area (frozen per attempt id, so a retry lands the same layout).
//! - [`Windows::committed`] in the post-commit step, before the batch marker: the batch's
//!   window entries, then the partition's progress.
//! - [`Windows::on_tick`] from the sink loop: quiet partitions get an idle promise; and the
//!   closer task ([`Windows::run_closer`]) closes every window all partitions have passed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use landfall_core::config::{KafkaConfig, WindowsConfig};
use landfall_core::keys::{
    window_entry_key, window_marker_key, window_open_dir, window_progress_dir, window_progress_key,
};
use landfall_core::manifest::Manifest;
use landfall_core::notify;
use landfall_core::state::{PartitionStatus, Phase};
use landfall_core::windows::{
    assemble, closable, entries_of, on_time_max_event_us, window_of, CloseIds, OwnerState,
    Progress, WindowEntry,
};
use landfall_core::TopicPartition;
use landfall_store::io::{self, Created};
use landfall_store::{Location, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::publish::Notify;

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Default)]
struct Owned {
    state: OwnerState,
    /// Loaded from the store (or found absent) since this worker was assigned the partition.
    loaded: bool,
    quiet_since: Option<Instant>,
    promised_at: Option<Instant>,
}

/// One sink's window machinery.
#[derive(Debug)]
pub struct Windows {
    cfg: WindowsConfig,
    tz: chrono_tz::Tz,
    sink: String,
    writer_id: String,
    data: Location,
    markers: Location,
    kafka: KafkaConfig,
    notify: Option<Arc<dyn Notify>>,
    owned: tokio::sync::Mutex<HashMap<TopicPartition, Owned>>,
    /// The late decision of each partition's current batch, with its attempt id: a retried
    /// batch lands the same layout. One batch per partition lands at a time, so one entry per
    /// partition; the next batch's decision replaces it.
    decided: Mutex<HashMap<TopicPartition, (String, Vec<String>)>>,
    /// Topics with partitions assigned here: the closer's work list.
    topics: Mutex<BTreeSet<String>>,
    wake: tokio::sync::Notify,
    last_tick: Mutex<Option<Instant>>,
}

/// How often idle promises are refreshed and the closer runs without being woken.
fn refresh(cfg: &WindowsConfig) -> Duration {
    Duration::from_millis((cfg.allowed_lateness_ms / 4).clamp(1_000, 60_000))
}

impl Windows {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: WindowsConfig,
        tz: chrono_tz::Tz,
        sink: &str,
        writer_id: &str,
        data: Location,
        markers: Location,
        kafka: KafkaConfig,
        notify: Option<Arc<dyn Notify>>,
    ) -> Windows {
        Windows {
            cfg,
            tz,
            sink: sink.into(),
            writer_id: writer_id.into(),
            data,
            markers,
            kafka,
            notify,
            owned: Default::default(),
            decided: Default::default(),
            topics: Default::default(),
            wake: tokio::sync::Notify::new(),
            last_tick: Mutex::new(None),
        }
    }

    async fn load(&self, owned: &mut Owned, tp: &TopicPartition) -> Result<(), StoreError> {
        if owned.loaded {
            return Ok(());
        }
        let key = window_progress_key(&self.sink, &tp.topic, tp.partition);
        let progress =
            match io::get(&self.markers, &key).await? {
                Some(b) => Some(serde_json::from_slice::<Progress>(&b).map_err(|e| {
                    StoreError::Corrupt {
                        url: self.markers.url_of(&self.markers.path(&key)),
                        message: format!("not a window progress object: {e}"),
                    }
                })?),
                None => None,
            };
        owned.state = OwnerState::from_progress(progress.as_ref());
        owned.loaded = true;
        Ok(())
    }

    pub fn late_records(&self) -> landfall_core::config::LateRecords {
        self.cfg.late_records
    }

    /// The partition was (re)assigned here: whatever this worker knew of it may be stale.
    pub async fn assigned(&self, tp: &TopicPartition) {
        self.owned.lock().await.remove(tp);
    }

    /// Which time partitions of a batch about to land are late. The first call for an attempt
    /// decides; retries get the same answer.
    pub async fn late_partitions(
        &self,
        tp: &TopicPartition,
        attempt_id: &str,
        time_partitions: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        if let Some((a, d)) = self.decided.lock().expect("not poisoned").get(tp) {
            if a == attempt_id {
                return Ok(d.clone());
            }
        }
        let mut late = {
            let mut owned = self.owned.lock().await;
            let o = owned.entry(tp.clone()).or_default();
            self.load(o, tp).await?;
            o.state.late_partitions(
                time_partitions.iter().copied(),
                self.tz,
                self.cfg.allowed_lateness_ms,
            )
        };
        // What the watermark cannot know (a partition added after a window closed, progress
        // that predates `[windows]`): a window whose marker exists is closed.
        for t in time_partitions {
            if !late.iter().any(|l| l == t)
                && io::exists(&self.data, &window_marker_key(&tp.topic, t)).await?
            {
                late.push(t.to_string());
            }
        }
        late.sort();
        self.decided
            .lock()
            .expect("not poisoned")
            .insert(tp.clone(), (attempt_id.to_string(), late.clone()));
        Ok(late)
    }

    /// The post-commit part: the batch's window entries, then the partition's progress. Runs
    /// before the batch marker, so a crash in between repeats it (every write is idempotent).
    pub async fn committed(&self, m: &Manifest) -> Result<(), StoreError> {
        for (time_partition, entry) in entries_of(m) {
            let key = window_entry_key(
                &m.sink,
                &m.topic,
                &time_partition,
                m.partition,
                m.offsets.first,
            );
            io::put(
                &self.markers,
                &key,
                Bytes::from(serde_json::to_vec(&entry).expect("serializes")),
            )
            .await?;
        }
        let tp = TopicPartition::new(m.topic.as_str(), m.partition);
        let progress = {
            let mut owned = self.owned.lock().await;
            let o = owned.entry(tp.clone()).or_default();
            self.load(o, &tp).await?;
            o.state.committed(m.offsets.next, on_time_max_event_us(m));
            o.state
                .progress(&m.sink, &m.topic, m.partition, &self.writer_id, wall_ms())
        };
        self.put_progress(&progress).await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn put_progress(&self, p: &Progress) -> Result<(), StoreError> {
        io::put(
            &self.markers,
            &window_progress_key(&p.sink, &p.topic, p.partition),
            Bytes::from(serde_json::to_vec_pretty(p).expect("serializes")),
        )
        .await
    }

    /// From the sink loop's tick: note quiet partitions and, every refresh interval, promise
    /// (in memory first, then in the store) that they are idle up to now.
    pub fn on_tick(self: &Arc<Self>, statuses: Vec<PartitionStatus>) {
        {
            // Twice a second is plenty for a quiet period of at least a second.
            let mut last = self.last_tick.lock().expect("not poisoned");
            if last.is_some_and(|t| t.elapsed() < Duration::from_millis(500)) {
                return;
            }
            *last = Some(Instant::now());
        }
        {
            let mut topics = self.topics.lock().expect("not poisoned");
            topics.clear();
            topics.extend(statuses.iter().map(|s| s.tp.topic.to_string()));
        }
        let me = self.clone();
        // The async mutex is held only briefly; the tick must not wait on store IO.
        tokio::spawn(async move {
            let now = Instant::now();
            let mut writes = Vec::new();
            {
                let mut owned = me.owned.lock().await;
                for s in &statuses {
                    let quiet = s.phase == Phase::Running
                        && s.buffered_records == 0
                        && s.sealed_batches == 0
                        && !s.paused.any();
                    let o = owned.entry(s.tp.clone()).or_default();
                    if !quiet {
                        o.quiet_since = None;
                        continue;
                    }
                    let since = *o.quiet_since.get_or_insert(now);
                    let due = o
                        .promised_at
                        .is_none_or(|t| now.duration_since(t) >= refresh(&me.cfg));
                    let quiet_for = Duration::from_millis(me.cfg.idle_after_ms);
                    if now.duration_since(since) < quiet_for || !due {
                        continue;
                    }
                    if me.load(o, &s.tp).await.is_err() {
                        continue; // retried on a later tick
                    }
                    // The promise holds in memory before anyone can read it in the store.
                    o.state.idle(wall_ms() * 1000);
                    o.promised_at = Some(now);
                    writes.push(o.state.progress(
                        &me.sink,
                        &s.tp.topic,
                        s.tp.partition,
                        &me.writer_id,
                        wall_ms(),
                    ));
                }
            }
            for p in writes {
                if let Err(e) = me.put_progress(&p).await {
                    warn!(sink = %me.sink, topic = %p.topic, partition = p.partition, error = %e, "could not write window progress; retried");
                } else {
                    me.wake.notify_one();
                }
            }
        });
    }

    /// Close windows until `stop`: woken after each committed batch and idle promise, and at
    /// least every refresh interval.
    pub async fn run_closer(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(refresh(&self.cfg)) => {}
            }
            let topics: Vec<String> = self
                .topics
                .lock()
                .expect("not poisoned")
                .iter()
                .cloned()
                .collect();
            for topic in topics {
                if let Err(e) = self.close_ready(&topic).await {
                    warn!(sink = %self.sink, %topic, error = %e, "closing windows failed; retried");
                }
            }
            // At most two rounds a second however often batches commit; wake-ups meanwhile
            // are kept (one permit) and served by the next round.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Close every window of `topic` that all its partitions have passed.
    pub async fn close_ready(&self, topic: &str) -> Result<usize, String> {
        let err = |e: StoreError| e.to_string();
        let open_dir = window_open_dir(&self.sink, topic);
        // Nothing open (between hours): nothing to read.
        if io::list(&self.markers, &open_dir, None)
            .await
            .map_err(err)?
            .is_empty()
        {
            return Ok(0);
        }
        // Progress first, entries second. A batch's entries are written before its progress,
        // so every entry of a batch that a progress object read here accounts for is in the
        // listing below. The other order loses files: an entry written after the listing but
        // a progress read after it (found by `windows::two_workers_...`).
        let mut progress = BTreeMap::new();
        let progress_dir = window_progress_dir(&self.sink, topic);
        for l in io::list(&self.markers, &progress_dir, None)
            .await
            .map_err(err)?
        {
            if let Some(b) = io::get_path(&self.markers, &l.path).await.map_err(err)? {
                if let Ok(pr) = serde_json::from_slice::<Progress>(&b) {
                    progress.insert(pr.partition, pr);
                }
            }
        }
        let mut by_window: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let prefix = format!("{open_dir}/");
        for l in io::list(&self.markers, &open_dir, None)
            .await
            .map_err(err)?
        {
            let Some(rel) = self.markers.relative(&l.path) else {
                continue;
            };
            if let Some((tp, _)) = rel.strip_prefix(&prefix).and_then(|r| r.rsplit_once('/')) {
                by_window
                    .entry(tp.to_string())
                    .or_default()
                    .push(rel.to_string());
            }
        }
        // Only when some window could close with the partitions that have progress, ask Kafka
        // whether the topic has others (they hold every window open): one metadata request per
        // window closed, not per round.
        let known: Vec<i32> = progress.keys().copied().collect();
        let lateness = self.cfg.allowed_lateness_ms;
        let could_close = by_window.keys().any(|tp| {
            window_of(tp, self.tz)
                .is_some_and(|w| closable(w, lateness, &known, &progress).is_some())
        });
        if !could_close {
            return Ok(0);
        }
        let kafka = self.kafka.clone();
        let t = topic.to_string();
        let partitions: Vec<i32> =
            tokio::task::spawn_blocking(move || landfall_kafka::partitions(&kafka, &t))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let mut closed = 0;
        for (time_partition, keys) in by_window {
            let Some(w) = window_of(&time_partition, self.tz) else {
                continue;
            };
            let Some(by) = closable(w, self.cfg.allowed_lateness_ms, &partitions, &progress) else {
                continue;
            };
            let mut entries: Vec<WindowEntry> = Vec::new();
            for k in &keys {
                if let Some(b) = io::get(&self.markers, k).await.map_err(|e| e.to_string())? {
                    entries.push(serde_json::from_slice(&b).map_err(|e| format!("{k}: {e}"))?);
                }
            }
            let manifest = assemble(
                CloseIds {
                    sink: &self.sink,
                    topic,
                    time_partition: &time_partition,
                    window: w,
                    tz: self.tz,
                    allowed_lateness_ms: self.cfg.allowed_lateness_ms,
                    writer_id: &self.writer_id,
                    now_ms: wall_ms(),
                },
                &entries,
                by,
            );
            let key = window_marker_key(topic, &time_partition);
            let body = Bytes::from(manifest.to_json());
            let written = match io::create(&self.data, &key, body.clone())
                .await
                .map_err(|e| e.to_string())?
            {
                Created::Yes => {
                    info!(sink = %self.sink, %topic, %time_partition, files = manifest.files.len(), rows = manifest.rows, "window closed");
                    body
                }
                // Another worker closed it first: its body is the one notified.
                Created::AlreadyExists => {
                    match io::get(&self.data, &key).await.map_err(|e| e.to_string())? {
                        Some(b) => b,
                        None => continue, // its create is still in flight; next round
                    }
                }
            };
            if let Some(n) = &self.notify {
                n.send(&notify::window(&self.sink, topic, written.to_vec()))
                    .await
                    .map_err(|e| format!("notify {}: {e}", n.topic()))?;
            }
            // Notified: the window is no longer open. A crash before this re-notifies.
            for k in &keys {
                io::delete(&self.markers, &self.markers.path(k))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            debug!(sink = %self.sink, %topic, %time_partition, "window entries removed");
            closed += 1;
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_core::config::{LateRecords, StartFrom};

    fn windows() -> Windows {
        let store = Arc::new(object_store::memory::InMemory::new());
        Windows::new(
            WindowsConfig {
                enabled: true,
                allowed_lateness_ms: 0,
                late_records: LateRecords::LateArea,
                idle_after_ms: 1000,
            },
            chrono_tz::UTC,
            "s",
            "w",
            Location::from_store(store.clone(), "memory://lake", "raw"),
            Location::from_store(store, "memory://lake", "_landfall"),
            KafkaConfig {
                bootstrap_servers: "unused:9092".into(),
                group_id: "g".into(),
                start_from: StartFrom::Earliest,
                session_timeout_ms: 6000,
                options: Default::default(),
                security: None,
            },
            None,
        )
    }

    #[tokio::test]
    async fn a_late_decision_is_frozen_for_its_attempt_and_a_closed_window_is_late() {
        let w = windows();
        let tp = TopicPartition::new("t", 0);
        let hour = "dt=2026-11-21/hour=10";
        assert!(w
            .late_partitions(&tp, "a1", &[hour])
            .await
            .unwrap()
            .is_empty());
        // The window closes meanwhile.
        io::put(
            &w.data,
            &window_marker_key("t", hour),
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
        // A retry of the same attempt lands the same layout; the next batch's files are late.
        assert!(w
            .late_partitions(&tp, "a1", &[hour])
            .await
            .unwrap()
            .is_empty());
        assert_eq!(w.late_partitions(&tp, "a2", &[hour]).await.unwrap(), [hour]);
    }
}
