//! The memory-budget policy (invariant 5: bounded memory), a pure function over all partitions of
//! a sink. Decides which buffers to flush early, which partitions to pause, and when to resume
//! them; the sink state applies the steps. The consumer never stops polling: pausing a partition
//! is how intake stops, and a paused partition still answers rebalances.

/// Bytes of a sink's budget set aside for each of librdkafka's two prefetch buffers: its queue
/// of fetched records (`queued.max.messages.kbytes`) and a fetch response being received
/// (`fetch.max.bytes`). A sixteenth of the budget each, within 1..=32 MiB: enough to keep a
/// partition fed between polls, small enough that the budget stays the process's memory.
pub fn kafka_prefetch_bytes(budget: u64) -> u64 {
    (budget / 16).clamp(1 << 20, 32 << 20)
}

/// What the sink's buffers and sealed batches may hold: `runtime.max_buffered_bytes` less
/// librdkafka's two prefetch buffers, so that the configured budget bounds every byte of
/// record data in the process, not only the sink's own.
pub fn buffers_budget(budget: u64) -> u64 {
    budget.saturating_sub(2 * kafka_prefetch_bytes(budget))
}

/// What the policy sees of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    /// Bytes its open buffer holds (raw records pending, open Parquet writers, finished files).
    pub buffered: u64,
    /// Estimated bytes of the buffer once sealed (what flushing it would leave in memory).
    pub after_flush: u64,
    /// Bytes of its sealed batches waiting to land or landing.
    pub sealed: u64,
    /// Nothing of it is landing or waiting to retry: a flush would start landing at once.
    pub idle: bool,
    /// Paused by an earlier step of this policy.
    pub paused_for_memory: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Seal the buffer of partition `i` now (reason `memory`).
    Flush(usize),
    /// Stop fetching partition `i` until memory is back under half the budget.
    Pause(usize),
    Resume(usize),
}

/// Above `budget`: flush the biggest idle buffers until the total is at 80% of the budget; a big
/// buffer whose partition is still landing cannot be flushed usefully, so it is paused instead.
/// Below half the budget: resume what this policy paused. Between the two: hold (hysteresis, so
/// a sink near its budget does not flap). `outside` is memory held for the sink elsewhere
/// (records the consumer holds for a full channel).
pub fn plan(budget: u64, outside: u64, views: &[View]) -> Vec<Step> {
    let mut total: u64 = outside + views.iter().map(|v| v.buffered + v.sealed).sum::<u64>();
    let mut steps = Vec::new();
    if total > budget {
        let mut order: Vec<usize> = (0..views.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(views[i].buffered));
        for i in order {
            let v = views[i];
            if total <= budget / 10 * 8 || v.buffered == 0 {
                break;
            }
            if v.idle {
                steps.push(Step::Flush(i));
                total = total.saturating_sub(v.buffered.saturating_sub(v.after_flush));
            } else if !v.paused_for_memory {
                steps.push(Step::Pause(i));
            }
        }
    } else if total < budget / 2 {
        steps.extend(
            views
                .iter()
                .enumerate()
                .filter(|(_, v)| v.paused_for_memory)
                .map(|(i, _)| Step::Resume(i)),
        );
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafkas_prefetch_comes_out_of_the_budget() {
        let mib = 1u64 << 20;
        // 256 MiB: 16 MiB each for the queue and the fetch in flight, 224 MiB for buffers.
        assert_eq!(kafka_prefetch_bytes(256 * mib), 16 * mib);
        assert_eq!(buffers_budget(256 * mib), 224 * mib);
        // The default 512 MiB and above: capped at 32 MiB each.
        assert_eq!(kafka_prefetch_bytes(512 * mib), 32 * mib);
        assert_eq!(buffers_budget(4096 * mib), 4032 * mib);
        // The smallest budget validation allows (8 MiB files): at least 1 MiB each.
        assert_eq!(kafka_prefetch_bytes(8 * mib), mib);
        assert_eq!(buffers_budget(8 * mib), 6 * mib);
    }
    use proptest::prelude::*;

    fn v(buffered: u64, idle: bool) -> View {
        View {
            buffered,
            after_flush: buffered / 10,
            sealed: 0,
            idle,
            paused_for_memory: false,
        }
    }

    #[test]
    fn flushes_biggest_idle_first_and_pauses_busy_ones() {
        let views = [v(100, true), v(500, false), v(300, true), v(10, true)];
        // 910 bytes against 600: pause the busy 500, flush 300 (-270) and 100 (-90); still
        // above 80% (480), so the 10 goes too.
        assert_eq!(
            plan(600, 0, &views),
            vec![
                Step::Pause(1),
                Step::Flush(2),
                Step::Flush(0),
                Step::Flush(3)
            ]
        );
        assert_eq!(plan(800, 0, &views), vec![Step::Pause(1), Step::Flush(2)]);
    }

    #[test]
    fn resumes_only_below_half_and_holds_between() {
        let mut p = v(10, true);
        p.paused_for_memory = true;
        assert_eq!(plan(100, 0, &[p]), vec![Step::Resume(0)]);
        assert_eq!(plan(100, 45, &[p]), vec![]);
        // Memory held outside the buffers counts too.
        assert_eq!(plan(100, 95, &[p]), vec![Step::Flush(0)]);
    }

    proptest! {
        /// Whatever the partitions, every step names a partition once, flushes only idle ones,
        /// pauses only busy ones, and nothing happens under the budget except resumes.
        #[test]
        fn steps_are_sound(
            parts in prop::collection::vec((0u64..1000, 0u64..1000, any::<bool>(), any::<bool>()), 0..20),
            budget in 1u64..5000,
            outside in 0u64..1000,
        ) {
            let views: Vec<View> = parts.iter().map(|&(b, s, idle, paused)| View {
                buffered: b, after_flush: b / 4, sealed: s, idle, paused_for_memory: paused,
            }).collect();
            let total: u64 = outside + views.iter().map(|v| v.buffered + v.sealed).sum::<u64>();
            let steps = plan(budget, outside, &views);
            let mut seen = std::collections::HashSet::new();
            for s in &steps {
                let i = match *s { Step::Flush(i) | Step::Pause(i) | Step::Resume(i) => i };
                prop_assert!(seen.insert(i), "partition {} got two steps", i);
                match *s {
                    Step::Flush(i) => { prop_assert!(total > budget); prop_assert!(views[i].idle); }
                    Step::Pause(i) => { prop_assert!(total > budget); prop_assert!(!views[i].idle && !views[i].paused_for_memory); }
                    Step::Resume(i) => { prop_assert!(total < budget / 2); prop_assert!(views[i].paused_for_memory); }
                }
            }
            // Over budget with an idle non-empty buffer: something is done about it.
            if total > budget && views.iter().any(|v| v.idle && v.buffered > 0) {
                prop_assert!(steps.iter().any(|s| matches!(s, Step::Flush(_))));
            }
        }
    }
}
