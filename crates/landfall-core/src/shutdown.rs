//! How a graceful shutdown spends `runtime.shutdown_timeout_ms`.
//!
//! The timeout bounds the **whole** shutdown, from the signal to the process's exit: an
//! orchestrator's grace period is derived from it (the Helm chart adds only a small margin), and
//! whatever runs past it is cut short by SIGKILL. So the budget is split into phases that end at
//! fixed points after the signal, each later phase keeping a reserve the earlier ones may not
//! spend:
//!
//! 1. **land** — seal every buffer and land it (data, commit record, marker). When this phase
//!    ends, landings still in flight are aborted: their offsets are not committed, so whoever
//!    owns the partition next re-reads them (an aborted commit write is the kill -9 case the
//!    commit protocol already covers);
//! 2. **leave** — leave the consumer group (librdkafka's close: final revoke, LeaveGroup). A
//!    member that cannot leave in time is dropped by the group at its session timeout;
//! 3. **exit** — stop the runtime (tasks and blocking threads) and exit.
//!
//! A phase that finishes early hands its remaining time to the next one.

use std::time::Duration;

/// Phase ends, measured from the moment the shutdown began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownPlan {
    /// Landing must be done by then; in-flight landings are aborted.
    pub land_until: Duration,
    /// Leaving the group must be done by then.
    pub leave_until: Duration,
    /// The process has exited by then: `runtime.shutdown_timeout_ms`.
    pub exit_until: Duration,
}

/// Reserve for leaving the group: a fifth of the timeout, at most 4 s (a LeaveGroup to a
/// reachable coordinator takes milliseconds; 4 s also covers a coordinator move).
const LEAVE_RESERVE_MAX: Duration = Duration::from_secs(4);
/// Reserve for stopping the runtime and exiting: a tenth of the timeout, at most 1 s.
const EXIT_RESERVE_MAX: Duration = Duration::from_secs(1);

impl ShutdownPlan {
    /// The plan for `runtime.shutdown_timeout_ms`. With the default 25000: land 20 s, leave
    /// until 24 s, exit by 25 s.
    pub fn new(shutdown_timeout_ms: u64) -> ShutdownPlan {
        let total = Duration::from_millis(shutdown_timeout_ms);
        let exit_reserve = (total / 10).min(EXIT_RESERVE_MAX);
        let leave_reserve = (total / 5).min(LEAVE_RESERVE_MAX);
        ShutdownPlan {
            land_until: total - exit_reserve - leave_reserve,
            leave_until: total - exit_reserve,
            exit_until: total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_lands_for_20_s_and_exits_by_25_s() {
        let p = ShutdownPlan::new(crate::config::defaults::shutdown_timeout_ms());
        assert_eq!(p.land_until, Duration::from_secs(20));
        assert_eq!(p.leave_until, Duration::from_secs(24));
        assert_eq!(p.exit_until, Duration::from_secs(25));
    }

    #[test]
    fn short_timeouts_keep_proportional_reserves() {
        let p = ShutdownPlan::new(4000);
        assert_eq!(p.land_until, Duration::from_millis(2800));
        assert_eq!(p.leave_until, Duration::from_millis(3600));
        assert_eq!(p.exit_until, Duration::from_millis(4000));
        assert_eq!(ShutdownPlan::new(0).exit_until, Duration::ZERO);
    }

    proptest! {
        #[test]
        fn phases_are_ordered_and_end_at_the_timeout(ms in 0u64..10_000_000) {
            let p = ShutdownPlan::new(ms);
            prop_assert!(p.land_until <= p.leave_until);
            prop_assert!(p.leave_until <= p.exit_until);
            prop_assert_eq!(p.exit_until, Duration::from_millis(ms));
            // Landing gets most of the budget: at least 70 % of it. Compared in nanoseconds:
            // below 10 ms the phases end at sub-millisecond points, which whole milliseconds
            // would round away (ms = 1 lands until 0.7 ms).
            prop_assert!(p.land_until.as_nanos() * 10 >= u128::from(ms) * 7_000_000);
        }
    }
}
