//! Flush policy (inside arrow 2): when a partition buffer becomes a batch. Pure; the caller passes
//! the clock in.

use crate::config::FlushConfig;

/// Why a batch was sealed; recorded in the manifest and in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushReason {
    Records,
    Bytes,
    Age,
    /// The sink's memory budget was reached and this was among the biggest buffers.
    Memory,
    /// The partition is being revoked in a rebalance.
    Revoke,
    Shutdown,
}

impl FlushReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Records => "records",
            FlushReason::Bytes => "bytes",
            FlushReason::Age => "age",
            FlushReason::Memory => "memory",
            FlushReason::Revoke => "revoke",
            FlushReason::Shutdown => "shutdown",
        }
    }
}

/// What the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferStats {
    pub records: u64,
    /// Estimated size of the largest file this buffer would write now (compressed Parquet).
    pub largest_file_bytes: u64,
    /// Wall-clock milliseconds when the first record of this buffer arrived.
    pub opened_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    cfg: FlushConfig,
}

impl FlushPolicy {
    pub fn new(cfg: FlushConfig) -> Self {
        FlushPolicy { cfg }
    }

    /// The reason to flush now, if any. Empty buffers never flush.
    pub fn due(&self, stats: &BufferStats, now_ms: u64) -> Option<FlushReason> {
        if stats.records == 0 {
            return None;
        }
        if stats.records >= self.cfg.max_records {
            return Some(FlushReason::Records);
        }
        if stats.largest_file_bytes >= self.cfg.max_file_bytes {
            return Some(FlushReason::Bytes);
        }
        let opened = stats.opened_at_ms?;
        // Age is wall clock since the first record arrived, so an idle partition's tail lands
        // on time even when no more records come to trigger a check.
        (now_ms.saturating_sub(opened) >= self.cfg.max_age_ms).then_some(FlushReason::Age)
    }

    /// When `due` would next return `Age` for this buffer, for the timer.
    pub fn age_deadline_ms(&self, stats: &BufferStats) -> Option<u64> {
        (stats.records > 0)
            .then_some(stats.opened_at_ms)
            .flatten()
            .map(|o| o + self.cfg.max_age_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> FlushPolicy {
        FlushPolicy::new(FlushConfig {
            max_records: 100,
            max_file_bytes: 1000,
            max_age_ms: 5000,
        })
    }

    #[test]
    fn thresholds() {
        let p = policy();
        let s = |records, bytes, opened| BufferStats {
            records,
            largest_file_bytes: bytes,
            opened_at_ms: Some(opened),
        };
        assert_eq!(p.due(&s(0, 5000, 0), 99_999), None);
        assert_eq!(p.due(&s(100, 0, 0), 0), Some(FlushReason::Records));
        assert_eq!(p.due(&s(1, 1000, 0), 0), Some(FlushReason::Bytes));
        assert_eq!(p.due(&s(1, 999, 10), 5009), None);
        assert_eq!(p.due(&s(1, 999, 10), 5010), Some(FlushReason::Age));
        assert_eq!(p.age_deadline_ms(&s(1, 0, 10)), Some(5010));
        assert_eq!(p.age_deadline_ms(&s(0, 0, 10)), None);
    }

    proptest! {
        /// Whatever the stats, a flush is due exactly when some threshold is reached.
        #[test]
        fn due_iff_a_threshold_is_reached(records in 0u64..300, bytes in 0u64..3000, opened in 0u64..10_000, now in 0u64..20_000) {
            let p = policy();
            let stats = BufferStats { records, largest_file_bytes: bytes, opened_at_ms: Some(opened) };
            let reached = records > 0 && (records >= 100 || bytes >= 1000 || now.saturating_sub(opened) >= 5000);
            prop_assert_eq!(p.due(&stats, now).is_some(), reached);
        }
    }
}
