//! Offset coverage of a sink's commit records, for `landfall verify`: which offsets each
//! partition's commits cover, where they leave gaps, where they overlap. Pure.

use crate::manifest::OffsetRange;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// First covered offset (the genesis offset when known).
    pub start: Option<i64>,
    /// First offset not covered after the last commit.
    pub next: Option<i64>,
    pub commits: usize,
    /// Inclusive offset ranges no commit covers, between `start` and `next`.
    pub gaps: Vec<(i64, i64)>,
    /// Inclusive offset ranges more than one commit covers.
    pub overlaps: Vec<(i64, i64)>,
}

pub fn analyze(genesis: Option<i64>, ranges: &[OffsetRange]) -> Coverage {
    let mut sorted: Vec<OffsetRange> = ranges.to_vec();
    sorted.sort_by_key(|r| (r.first, r.last));
    let mut cov = Coverage {
        commits: sorted.len(),
        ..Default::default()
    };
    let Some(first) = sorted.first() else {
        cov.start = genesis;
        cov.next = genesis;
        return cov;
    };
    let start = genesis.unwrap_or(first.first).min(first.first);
    cov.start = Some(start);
    let mut expect = start;
    for r in &sorted {
        if r.first > expect {
            cov.gaps.push((expect, r.first - 1));
        } else if r.first < expect {
            cov.overlaps.push((r.first, (expect - 1).min(r.last)));
        }
        expect = expect.max(r.next);
    }
    cov.next = Some(expect);
    cov
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(a: i64, b: i64) -> OffsetRange {
        OffsetRange::new(a, b)
    }

    #[test]
    fn finds_gaps_and_overlaps() {
        let c = analyze(Some(0), &[r(0, 9), r(15, 19), r(18, 25), r(10, 14)]);
        assert_eq!(c.gaps, vec![]);
        assert_eq!(c.overlaps, vec![(18, 19)]);
        assert_eq!(c.next, Some(26));
        let c = analyze(Some(0), &[r(5, 9), r(20, 29)]);
        assert_eq!(c.gaps, vec![(0, 4), (10, 19)]);
        assert_eq!(analyze(Some(7), &[]).next, Some(7));
    }

    proptest! {
        /// Cutting [0, n) into consecutive ranges always verifies clean.
        #[test]
        fn a_tiling_is_clean(cuts in prop::collection::btree_set(1i64..1000, 0..50)) {
            let mut bounds: Vec<i64> = vec![0];
            bounds.extend(cuts);
            bounds.push(1000);
            let ranges: Vec<OffsetRange> = bounds.windows(2).map(|w| r(w[0], w[1] - 1)).collect();
            let c = analyze(Some(0), &ranges);
            prop_assert!(c.gaps.is_empty() && c.overlaps.is_empty());
            prop_assert_eq!(c.next, Some(1000));
        }
    }
}
