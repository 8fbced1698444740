//! Latency distributions, weighted by records, at millisecond resolution.

use serde::{Deserialize, Serialize};

/// A histogram of latencies in whole milliseconds (negative values count as 0: clocks of one
/// machine, so only rounding can make them negative).
#[derive(Debug, Default, Clone)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
}

impl Hist {
    pub fn add(&mut self, ms: i64, weight: u64) {
        if weight == 0 {
            return;
        }
        let i = ms.max(0) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += weight;
        self.total += weight;
    }

    /// The smallest latency at or below which a fraction `q` of the weight lies.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (ms, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        None
    }

    pub fn summary(&self) -> Option<Latency> {
        Some(Latency {
            count: self.total,
            p50_ms: self.quantile(0.50)?,
            p99_ms: self.quantile(0.99)?,
            max_ms: self.quantile(1.0)?,
        })
    }
}

/// p50/p99/max of a latency distribution and how many records (or batches) it covers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_quantiles() {
        let mut h = Hist::default();
        assert!(h.summary().is_none());
        h.add(10, 98);
        h.add(500, 1);
        h.add(-3, 1);
        let s = h.summary().expect("non-empty");
        assert_eq!((s.count, s.p50_ms, s.p99_ms, s.max_ms), (100, 10, 10, 500));
        h.add(2000, 2);
        let s = h.summary().expect("non-empty");
        assert_eq!((s.p99_ms, s.max_ms), (2000, 2000));
        assert_eq!(h.quantile(0.0), Some(0));
    }
}
