//! The status board: what each sink loop last published about itself (a
//! [`SinkStatus`] snapshot, replaced whole on every tick) and its heartbeat, for the HTTP task.
//! The lock guards a map swap or a clone, never an await; heartbeats are atomics so the loop
//! never takes the lock to say it is alive.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use landfall_core::status::{Heartbeat, SinkPhase, SinkStatus};

#[derive(Clone)]
pub struct Board {
    inner: Arc<Mutex<BTreeMap<String, Entry>>>,
    /// Heartbeats are monotonic milliseconds since this instant.
    origin: Instant,
}

struct Entry {
    status: SinkStatus,
    beat: Arc<AtomicU64>,
}

/// One sink's handle on the board.
#[derive(Clone)]
pub struct SinkBoard {
    board: Board,
    name: String,
    beat: Arc<AtomicU64>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            inner: Default::default(),
            origin: Instant::now(),
        }
    }
}

impl Board {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // Nothing panics while holding it; a poisoned map is still whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mono_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// The handle of sink `name`, entered as `phase` (kept if it is already on the board).
    pub fn sink(&self, name: &str, writer_id: &str, budget: u64, phase: SinkPhase) -> SinkBoard {
        let now = self.mono_ms();
        let mut map = self.lock();
        let entry = map.entry(name.to_string()).or_insert_with(|| Entry {
            status: SinkStatus {
                sink: name.to_string(),
                writer_id: writer_id.to_string(),
                phase,
                recovering_partitions: 0,
                buffered_bytes: 0,
                buffer_budget_bytes: budget,
                partitions: Vec::new(),
                last_error: None,
            },
            beat: Arc::new(AtomicU64::new(now)),
        });
        entry.status.phase = phase;
        entry.beat.store(now, Ordering::Relaxed);
        SinkBoard {
            board: self.clone(),
            name: name.to_string(),
            beat: entry.beat.clone(),
        }
    }

    /// Every sink's latest snapshot.
    pub fn statuses(&self) -> Vec<SinkStatus> {
        self.lock().values().map(|e| e.status.clone()).collect()
    }

    pub fn heartbeats(&self) -> Vec<Heartbeat> {
        self.lock()
            .values()
            .map(|e| Heartbeat {
                sink: e.status.sink.clone(),
                phase: e.status.phase,
                last_beat_ms: e.beat.load(Ordering::Relaxed),
            })
            .collect()
    }
}

impl SinkBoard {
    /// The loop went round.
    pub fn beat(&self) {
        self.beat.store(self.board.mono_ms(), Ordering::Relaxed);
    }

    /// Replace the sink's snapshot (its phase and last error are kept).
    pub fn publish(&self, mut status: SinkStatus) {
        let mut map = self.board.lock();
        if let Some(e) = map.get_mut(&self.name) {
            status.phase = e.status.phase;
            if status.last_error.is_none() {
                status.last_error = e.status.last_error.take();
            }
            e.status = status;
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut SinkStatus)) {
        if let Some(e) = self.board.lock().get_mut(&self.name) {
            f(&mut e.status);
        }
    }

    pub fn set_phase(&self, phase: SinkPhase) {
        self.update(|s| s.phase = phase);
    }
}
