//! Which objects `landfall gc` may delete. A wrong "yes" deletes data a reader was promised (a
//! file a manifest lists), so every rule here errs towards keeping: a file is an orphan only if
//! all of these hold, and everything else is kept.
//!
//! 1. Its key has the exact form this sink writes, with this sink's name in it
//!    ([`keys::parse_data_key`], [`keys::parse_dead_letter_key`]): files of other sinks sharing
//!    the prefix — renamed, separately deployed, `topics_regex` sinks — and anything else under
//!    the prefix are never candidates.
//! 2. No manifest found under the marker prefix lists it — any sink's, not only this one's —
//!    compared by what the key names ([`keys::FileKey`]), not by URL spelling.
//! 3. It is older than the grace period (`--min-age-secs`): a younger file may be a landing
//!    that has not committed yet.
//! 4. Its batch starts below where this sink's commits of its partition end. A file at or past
//!    that point may belong to a landing still retrying its commit (a store outage can outlast
//!    any grace period); once the range is committed by whichever attempt, an attempt that did
//!    not commit it never will (the commit record at its first offset is taken).

use std::collections::{HashMap, HashSet};

use crate::keys::{self, FileKey, FileKind};
use crate::manifest::Manifest;

/// Why a listed object is kept or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deletable: this sink's uncommitted attempt, old enough, behind the committed offsets.
    Orphan,
    /// Not a key of the form Landfall writes (or of an older layout): not ours to judge.
    Unrecognised,
    /// Written by another sink (the name in its key differs).
    OtherSink,
    /// A manifest lists it.
    Listed,
    /// Younger than the grace period.
    TooYoung,
    /// Its batch starts at or past this sink's last commit of the partition (or the partition
    /// has none): its landing may still commit.
    AheadOfCommits,
}

/// What gc knows: the files every manifest lists and where this sink's commits end.
#[derive(Debug, Default)]
pub struct GcView {
    sink: String,
    listed: HashSet<FileKey>,
    /// Per (topic, partition): the end (`next`) of this sink's highest commit.
    committed_next: HashMap<(String, i32), i64>,
    /// Only objects last modified before this instant (ms since the epoch) may be orphans.
    cutoff_ms: i64,
}

impl GcView {
    /// `manifests` are all commit records found under the marker prefix, of every sink.
    pub fn new(sink: &str, manifests: &[Manifest], cutoff_ms: i64) -> GcView {
        let mut v = GcView {
            sink: sink.to_string(),
            cutoff_ms,
            ..Default::default()
        };
        v.add_listed(manifests);
        for m in manifests.iter().filter(|m| m.sink == sink) {
            let e = v
                .committed_next
                .entry((m.topic.clone(), m.partition))
                .or_insert(m.offsets.next);
            *e = (*e).max(m.offsets.next);
        }
        v
    }

    /// Add manifests read later (the re-check just before deleting).
    pub fn add_listed(&mut self, manifests: &[Manifest]) {
        for f in manifests
            .iter()
            .flat_map(|m| m.files.iter().chain(&m.dead_letter_files))
        {
            if let Some(k) = keys::parse_file_url(&f.url) {
                self.listed.insert(k);
            }
            // The bucket key too: it names the same file, and a manifest edited by hand or
            // written by another tool may get one of the two wrong.
            if let Some(k) = keys::parse_file_url(&f.key) {
                self.listed.insert(k);
            }
        }
    }

    /// Judge one object found under the data (`kind = Data`) or dead-letter location. `key` is
    /// its key (relative or absolute: only its last four segments are read).
    pub fn judge(&self, kind: FileKind, key: &str, last_modified_ms: i64) -> Verdict {
        let parsed = match kind {
            FileKind::Data => keys::parse_data_key(key),
            FileKind::DeadLetters => keys::parse_dead_letter_key(key),
        };
        let Some(k) = parsed else {
            return Verdict::Unrecognised;
        };
        if k.sink != self.sink {
            return Verdict::OtherSink;
        }
        if self.listed.contains(&k) {
            return Verdict::Listed;
        }
        if last_modified_ms >= self.cutoff_ms {
            return Verdict::TooYoung;
        }
        match self.committed_next.get(&(k.topic.clone(), k.partition)) {
            Some(&next) if k.first_offset < next => Verdict::Orphan,
            _ => Verdict::AheadOfCommits,
        }
    }

    /// Topics this sink has commits of: the only data directories that can hold its orphans
    /// (rule 4 keeps everything of a partition without commits).
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .committed_next
            .keys()
            .map(|(t, _)| t.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        t.sort();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{data_key, dead_letter_key};
    use crate::manifest::{FileEntry, OffsetRange};

    fn entry(url: String) -> FileEntry {
        FileEntry {
            key: url.trim_start_matches("s3://lake/").to_string(),
            url,
            size_bytes: 1,
            rows: 1,
            sha256: String::new(),
            time_partition: None,
            min_offset: 0,
            max_offset: 0,
            schema_fingerprint: None,
        }
    }

    fn manifest(sink: &str, first: i64, next: i64, attempt: &str) -> Manifest {
        let tp = "dt=2026-11-21/hour=10";
        let data = format!(
            "s3://lake/raw/{}",
            data_key(sink, "t", tp, 0, first, attempt, 0)
        );
        let dl = format!(
            "s3://lake/dl/{}",
            dead_letter_key(sink, "t", 0, first, attempt)
        );
        let json = serde_json::json!({
            "format_version": 1, "sink": sink, "topic": "t", "partition": 0,
            "offsets": OffsetRange::new(first, next - 1), "records": 1, "rows": 1,
            "dead_lettered": 1, "files": [entry(data)], "dead_letter_files": [entry(dl)],
            "writer_id": "w", "attempt_id": attempt, "landed_at": "x", "flush_reason": "age",
            "commit_url": "x", "marker_url": "x",
        });
        serde_json::from_value(json).unwrap()
    }

    fn k(sink: &str, first: i64, attempt: &str) -> String {
        // A different spelling from the manifests': another prefix, a doubled slash.
        format!(
            "raw//{}",
            data_key(sink, "t", "dt=2026-11-21/hour=10", 0, first, attempt, 0)
        )
    }

    #[test]
    fn only_this_sinks_old_uncommitted_files_behind_its_commits_are_orphans() {
        let ms = [
            manifest("a", 0, 100, "aaaaaaaaaaa1"),
            manifest("a", 100, 200, "aaaaaaaaaaa2"),
            manifest("b", 0, 50, "bbbbbbbbbbb1"),
        ];
        let v = GcView::new("a", &ms, 1_000);
        use Verdict::*;
        let cases = [
            (k("a", 0, "aaaaaaaaaaa1"), 0, Listed),
            (k("a", 0, "ccccccccccc1"), 0, Orphan),
            (k("a", 100, "ccccccccccc2"), 999, Orphan),
            (k("a", 100, "ccccccccccc2"), 1_000, TooYoung),
            (k("a", 200, "ccccccccccc3"), 0, AheadOfCommits),
            (k("b", 0, "bbbbbbbbbbb1"), 0, OtherSink),
            (k("b", 0, "ccccccccccc4"), 0, OtherSink),
            (
                "raw/t/dt=2026-11-21/hour=10/t+0+00000000000000000000+aaaaaaaaaaa1-0.parquet"
                    .into(),
                0,
                Unrecognised,
            ),
            ("raw/_landfall_probe/w".into(), 0, Unrecognised),
        ];
        for (key, at, want) in cases {
            assert_eq!(v.judge(FileKind::Data, &key, at), want, "{key}");
        }
        let dl = |s: &str, a: &str| format!("dl/{}", dead_letter_key(s, "t", 0, 0, a));
        assert_eq!(
            v.judge(FileKind::DeadLetters, &dl("a", "aaaaaaaaaaa1"), 0),
            Listed
        );
        assert_eq!(
            v.judge(FileKind::DeadLetters, &dl("a", "ccccccccccc1"), 0),
            Orphan
        );
        assert_eq!(
            v.judge(FileKind::DeadLetters, &dl("b", "ccccccccccc1"), 0),
            OtherSink
        );
        // A data key is never judged as a dead-letter key and the other way round.
        assert_eq!(
            v.judge(FileKind::DeadLetters, &k("a", 0, "ccccccccccc1"), 0),
            Unrecognised
        );
        assert_eq!(v.topics(), ["t"]);
    }

    #[test]
    fn a_manifest_found_at_the_recheck_keeps_its_files() {
        let mut v = GcView::new("a", &[manifest("a", 0, 100, "aaaaaaaaaaa1")], 1_000);
        let late = manifest("a", 100, 200, "aaaaaaaaaaa2");
        let key = k("a", 100, "aaaaaaaaaaa2");
        let v2 = GcView::new("a", &[manifest("a", 0, 300, "aaaaaaaaaaa1")], 1_000);
        assert_eq!(v2.judge(FileKind::Data, &key, 0), Verdict::Orphan);
        v.add_listed(std::slice::from_ref(&late));
        assert_eq!(v.judge(FileKind::Data, &key, 0), Verdict::Listed);
    }
}
