//! Offset coverage of a sink's commit records, for `landfall verify`: which offsets each
//! partition's commits cover, where they leave gaps, where they overlap, and which offsets
//! inside them the manifests explain as skipped (retention). Pure.
//!
//! A hole between commits is never explained: Landfall records a skip inside the range of the
//! batch after it (see `ledger.rs`), so the chain is gap-free by construction and a hole means
//! a commit record is missing.

use crate::manifest::{Gap, OffsetRange};

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
    /// Offsets the manifests say were skipped, not read, with the reason: explained, not holes.
    pub explained: Vec<Gap>,
    /// Skips a manifest claims outside its own range, or that overlap another: a manifest
    /// Landfall did not write.
    pub bad_gaps: Vec<Gap>,
}

impl Coverage {
    /// No hole, no overlap, no misplaced skip.
    pub fn ok(&self) -> bool {
        self.gaps.is_empty() && self.overlaps.is_empty() && self.bad_gaps.is_empty()
    }

    /// Offsets skipped with an explanation.
    pub fn skipped(&self) -> u64 {
        self.explained.iter().map(Gap::len).sum()
    }
}

/// [`analyze`] over commits with the skips each manifest explains inside its range.
pub fn analyze_batches(genesis: Option<i64>, batches: &[(OffsetRange, &[Gap])]) -> Coverage {
    let ranges: Vec<OffsetRange> = batches.iter().map(|(r, _)| *r).collect();
    let mut cov = analyze(genesis, &ranges);
    let mut gaps: Vec<Gap> = Vec::new();
    for (range, gs) in batches {
        for g in gs.iter() {
            if g.first > g.last || g.first < range.first || g.last > range.last {
                cov.bad_gaps.push(*g);
            } else {
                gaps.push(*g);
            }
        }
    }
    gaps.sort_by_key(|g| (g.first, g.last));
    for g in gaps {
        match cov.explained.last() {
            Some(prev) if g.first <= prev.last => cov.bad_gaps.push(g),
            _ => cov.explained.push(g),
        }
    }
    cov
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

    #[test]
    fn skips_inside_a_commit_are_explained_and_holes_between_commits_are_not() {
        use crate::manifest::GapReason::Retention;
        let g = |first, last| Gap {
            first,
            last,
            reason: Retention,
        };
        let skip = [g(60, 99)];
        let c = analyze_batches(Some(0), &[(r(0, 49), &[]), (r(50, 149), &skip)]);
        assert!(c.ok(), "{c:?}");
        assert_eq!((c.explained.clone(), c.skipped()), (vec![g(60, 99)], 40));
        // A hole between commits fails whatever lies around it.
        let c = analyze_batches(Some(0), &[(r(0, 9), &[]), (r(20, 29), &[])]);
        assert!(!c.ok());
        assert_eq!(c.gaps, vec![(10, 19)]);
        // A skip outside its own batch, or claimed twice, is not Landfall's.
        let outside = [g(140, 160)];
        let c = analyze_batches(Some(0), &[(r(0, 149), &outside)]);
        assert_eq!((c.ok(), c.bad_gaps.clone()), (false, vec![g(140, 160)]));
        let (a, b) = ([g(10, 20)], [g(15, 25)]);
        let c = analyze_batches(Some(0), &[(r(0, 29), &a), (r(0, 29), &b)]);
        assert!(!c.ok());
        assert_eq!(c.bad_gaps, vec![g(15, 25)]);
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
