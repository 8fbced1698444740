//! Object key layout. Every key is a pure function of what it names, so a retry or a recovering
//! worker computes the same key as the writer before it. See `docs/commit-protocol.md`.
//!
//! Three families, each relative to its own prefix:
//! - data files (under `store.url`): time-partitioned for readers; the attempt id makes each
//!   writer's file distinct so a zombie can never overwrite a committed file.
//! - commit records (under `marker.prefix/_commits`): ordered by partition then offset, so
//!   recovery is a short listing; written create-only at a key derived from the first offset,
//!   which is what fences two writers of the same range.
//! - batch markers (under `marker.prefix/batches`): ordered by landing time, so a DAG lists
//!   "what is new since the last key I saw".

use chrono::{DateTime, TimeZone, Utc};

/// `dt=YYYY-MM-DD/hour=HH` of an event time (microseconds) in the configured timezone.
pub fn time_partition(event_time_us: i64, tz: chrono_tz::Tz) -> String {
    let t = Utc
        .timestamp_micros(event_time_us)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .with_timezone(&tz);
    t.format("dt=%Y-%m-%d/hour=%H").to_string()
}

/// Start of the quarter hour containing `event_time_us`. Every timezone offset in use is a
/// multiple of 15 minutes, so all instants of one quarter hour share a time partition: the buffer
/// caches partition strings by this instead of formatting a date per row.
pub fn quarter_hour_floor_us(event_time_us: i64) -> i64 {
    const QUARTER_US: i64 = 900_000_000;
    event_time_us.div_euclid(QUARTER_US) * QUARTER_US
}

/// Data file key below the store prefix.
pub fn data_key(
    topic: &str,
    time_partition: &str,
    partition: i32,
    first_offset: i64,
    attempt: &str,
    seq: usize,
) -> String {
    format!(
        "{topic}/{time_partition}/{topic}+{partition}+{first_offset:020}+{attempt}-{seq}.parquet"
    )
}

/// Directory of one partition's commit records below the marker prefix.
pub fn commit_dir(sink: &str, topic: &str, partition: i32) -> String {
    format!("_commits/{sink}/{topic}/{partition:05}")
}

/// Commit record key: the fence. Two writers of a batch starting at `first_offset` compute the
/// same key and only one create succeeds.
pub fn commit_key(sink: &str, topic: &str, partition: i32, first_offset: i64) -> String {
    format!(
        "{}/{first_offset:020}.json",
        commit_dir(sink, topic, partition)
    )
}

/// Index entry of a commit, keyed by the offset the commit ends before (`next`). The group's
/// committed offset is that `next`, so recovery finds the commit record it came from in one GET,
/// with any broker (some Kafka-protocol brokers drop offset-commit metadata).
pub fn index_key(sink: &str, topic: &str, partition: i32, next: i64) -> String {
    format!("_index/{sink}/{topic}/{partition:05}/{next:020}.json")
}

/// Genesis record: where the first commit of a partition starts, chosen once, create-only, so two
/// workers that start on an empty store agree on where the chain begins.
pub fn genesis_key(sink: &str, topic: &str, partition: i32) -> String {
    format!("{}/genesis.json", commit_dir(sink, topic, partition))
}

/// The first offset a commit key names, if it is a commit key.
pub fn parse_commit_key(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?;
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Batch marker key below the marker prefix; sorts by landing time (UTC) within a sink's topic.
pub fn batch_marker_key(
    sink: &str,
    topic: &str,
    partition: i32,
    first_offset: i64,
    landed_at_ms: i64,
) -> String {
    let t = Utc
        .timestamp_millis_opt(landed_at_ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    format!(
        "batches/{sink}/{topic}/{}/{}_{partition:05}_{first_offset:020}.json",
        t.format("dt=%Y-%m-%d/hour=%H"),
        t.format("%Y%m%dT%H%M%S%.3fZ").to_string().replace('.', "")
    )
}

/// The documented sensor pattern for "a batch of `sink`/`topic` landed", relative to the marker
/// prefix: `S3KeySensor(wildcard_match=True)` matches it with `fnmatch`, where `*` also matches
/// `/`. Only batch markers may ever match it (`docs/markers.md`), so every internal object lives
/// under an underscore directory beside `batches/`, never below it.
pub fn batch_marker_pattern(sink: &str, topic: &str) -> String {
    format!("batches/{sink}/{topic}/*.json")
}

/// The documented sensor pattern for "a window of `topic` is complete", relative to the data
/// prefix (`store.url`): only window `_SUCCESS` markers match it.
pub fn window_marker_pattern(topic: &str) -> String {
    format!("{topic}/*/_SUCCESS")
}

/// The window completion marker of a time partition, relative to the data prefix: in the data
/// files' own directory, the Hadoop/Spark convention.
pub fn window_marker_key(topic: &str, time_partition: &str) -> String {
    format!("{topic}/{time_partition}/_SUCCESS")
}

/// Start-up probe key (relative to the data and to the marker prefix): an underscore directory
/// beside `batches/` and the topics, so no documented sensor pattern matches it.
pub fn probe_key(probe_name: &str) -> String {
    format!("{PROBE_DIR}/{probe_name}")
}

/// Directory of the start-up probes.
pub const PROBE_DIR: &str = "_landfall_probe";

/// A partition's window progress (`[windows]`), below the marker prefix.
pub fn window_progress_key(sink: &str, topic: &str, partition: i32) -> String {
    format!("{}/{partition:05}.json", window_progress_dir(sink, topic))
}

/// Directory of a topic's window progress objects, below the marker prefix.
pub fn window_progress_dir(sink: &str, topic: &str) -> String {
    format!("_windows/{sink}/{topic}/progress")
}

/// Directory of a topic's open-window entries (one per batch and window, deleted once the
/// window's `_SUCCESS` is written and notified), below the marker prefix.
pub fn window_open_dir(sink: &str, topic: &str) -> String {
    format!("_windows/{sink}/{topic}/open")
}

/// One batch's files of one open window.
pub fn window_entry_key(
    sink: &str,
    topic: &str,
    time_partition: &str,
    partition: i32,
    first_offset: i64,
) -> String {
    format!(
        "{}/{time_partition}/{partition:05}_{first_offset:020}.json",
        window_open_dir(sink, topic)
    )
}

/// Python's `fnmatch.fnmatchcase` for the patterns Landfall documents: `*` matches any run of
/// characters including `/` (unlike a shell glob), `?` any one character, everything else
/// itself. This is what `S3KeySensor(wildcard_match=True)` applies to every listed key, so
/// tests check the key layout against the documented patterns with it.
pub fn fnmatch(pattern: &str, key: &str) -> bool {
    let (p, k): (Vec<char>, Vec<char>) = (pattern.chars().collect(), key.chars().collect());
    // Classic greedy matcher with one backtrack point per `*`.
    let (mut pi, mut ki) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == k[ki])) {
            pi += 1;
            ki += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ki));
            pi += 1;
        } else if let Some((sp, sk)) = star {
            pi = sp + 1;
            ki = sk + 1;
            star = Some((sp, sk + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Dead-letter file key below the dead-letter prefix.
pub fn dead_letter_key(
    sink: &str,
    topic: &str,
    partition: i32,
    first_offset: i64,
    attempt: &str,
) -> String {
    format!("{sink}/{topic}/{partition:05}/{first_offset:020}+{attempt}.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_keys_round_trip_and_sort_by_offset() {
        let a = commit_key("s", "orders", 3, 99);
        let b = commit_key("s", "orders", 3, 100);
        assert_eq!(a, "_commits/s/orders/00003/00000000000000000099.json");
        assert!(a < b);
        assert_eq!(parse_commit_key(&b), Some(100));
        assert_eq!(parse_commit_key(&genesis_key("s", "orders", 3)), None);
    }

    #[test]
    fn marker_keys_sort_by_time() {
        let early = batch_marker_key("s", "t", 9, 500, 1_763_719_200_000);
        let late = batch_marker_key("s", "t", 0, 0, 1_763_719_200_001);
        assert!(early < late);
        assert_eq!(
            early,
            "batches/s/t/dt=2025-11-21/hour=10/20251121T100000000Z_00009_00000000000000000500.json"
        );
    }

    #[test]
    fn fnmatch_is_pythons() {
        // Cases checked against CPython's fnmatch.fnmatchcase.
        assert!(fnmatch("a/*.json", "a/b/c.json"));
        assert!(fnmatch("a/*.json", "a/.json"));
        assert!(!fnmatch("a/*.json", "a/b.jsonx"));
        assert!(!fnmatch("a/*.json", "b/a/x.json"));
        assert!(fnmatch("t/*/_SUCCESS", "t/dt=2026-11-21/hour=10/_SUCCESS"));
        assert!(!fnmatch("t/*/_SUCCESS", "t/_SUCCESS"));
        assert!(fnmatch("?b*", "ab"));
        assert!(fnmatch("*", ""));
        assert!(!fnmatch("", "a"));
    }

    #[test]
    fn only_batch_markers_match_the_batch_pattern_and_only_success_the_window_pattern() {
        let (sink, topic) = ("orders", "orders");
        let batch = batch_marker_pattern(sink, topic);
        let window = window_marker_pattern(topic);
        let marker = batch_marker_key(sink, topic, 3, 4000, 1_763_719_200_000);
        assert!(fnmatch(&batch, &marker), "{marker}");
        // Everything else Landfall writes under the marker prefix (and, for the probe, under the
        // data prefix too).
        let internal = [
            commit_key(sink, topic, 3, 4000),
            genesis_key(sink, topic, 3),
            index_key(sink, topic, 3, 6000),
            format!(
                "_dead_letter/{}",
                dead_letter_key(sink, topic, 3, 4000, "a")
            ),
            probe_key("host-1-abc"),
            window_progress_key(sink, topic, 3),
            window_entry_key(sink, topic, "dt=2026-11-21/hour=10", 3, 4000),
        ];
        for key in &internal {
            assert!(!fnmatch(&batch, key), "{key} matches {batch}");
            assert!(!fnmatch(&window, key), "{key} matches {window}");
            assert!(!fnmatch("batches/*", key), "{key} matches batches/*");
        }
        let success = window_marker_key(topic, "dt=2026-11-21/hour=10");
        let data = data_key(topic, "dt=2026-11-21/hour=10", 3, 4000, "a", 0);
        assert!(fnmatch(&window, &success));
        assert!(!fnmatch(&window, &data));
        assert!(!fnmatch(&batch, &success));
        // A topic whose name extends another's is not caught by the other's patterns.
        assert!(!fnmatch(
            &batch,
            &batch_marker_key(sink, "orders-eu", 0, 0, 0)
        ));
        assert!(!fnmatch(
            &window,
            &window_marker_key("orders-eu", "dt=2026-11-21/hour=10")
        ));
    }

    #[test]
    fn time_partitions_follow_the_timezone() {
        let us = 1_763_719_200_000_000; // 2025-11-21T10:00:00Z
        assert_eq!(time_partition(us, chrono_tz::UTC), "dt=2025-11-21/hour=10");
        assert_eq!(
            time_partition(us, chrono_tz::Asia::Tokyo),
            "dt=2025-11-21/hour=19"
        );
        assert_eq!(quarter_hour_floor_us(us + 14 * 60 * 1_000_000), us);
        assert_eq!(quarter_hour_floor_us(-1), -900_000_000);
    }
}
