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

use crate::windows::LATE_DIR;

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

/// Data file key below the store prefix. The file name carries the sink's name, so which sink
/// wrote a file is in its key: `landfall gc` deletes only files its own sink wrote, however many
/// sinks (or renamed or separately deployed ones) share a `store.url` prefix. Sink names and
/// Kafka topic names never contain `+`, so the name splits back unambiguously
/// ([`parse_data_key`]).
pub fn data_key(
    sink: &str,
    topic: &str,
    time_partition: &str,
    partition: i32,
    first_offset: i64,
    attempt: &str,
    seq: usize,
) -> String {
    format!(
        "{topic}/{time_partition}/{topic}+{partition}+{first_offset:020}+{sink}+{attempt}-{seq}.parquet"
    )
}

/// What a data or dead-letter key names. Two spellings of one file's URL (a trailing slash on
/// the store URL, a doubled `/`) parse to the same value, so comparing these instead of URL
/// strings cannot mistake a committed file for an orphan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    pub kind: FileKind,
    pub sink: String,
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub attempt: String,
    /// `dt=…/hour=…` of a data file; empty for a dead-letter file.
    pub time_partition: String,
    /// Position in its batch; 0 for a dead-letter file.
    pub seq: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Data,
    DeadLetters,
}

/// The last `n` non-empty `/`-separated segments of a key or URL.
fn tail(key: &str, n: usize) -> Option<Vec<&str>> {
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    (segs.len() >= n).then(|| segs[segs.len() - n..].to_vec())
}

fn offset20(s: &str) -> Option<i64> {
    (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Attempt ids are 12 hex digits in production; tests use other word characters. Never `+`,
/// `-` or `/`, which delimit the key.
fn attempt_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parse a data key of the form [`data_key`] writes. Only the last four segments are read, so
/// this works on a key relative to any prefix and on a full URL.
pub fn parse_data_key(key: &str) -> Option<FileKey> {
    let t = tail(key, 4)?;
    let (dir_topic, dt, hour, name) = (t[0], t[1], t[2], t[3]);
    if !(dt.starts_with("dt=") && hour.starts_with("hour=")) {
        return None;
    }
    let mut time_partition = format!("{dt}/{hour}");
    let parts: Vec<&str> = name.strip_suffix(".parquet")?.split('+').collect();
    let [topic, partition, first, sink, attempt_seq] = parts.as_slice() else {
        return None;
    };
    let (attempt, seq) = attempt_seq.rsplit_once('-')?;
    if *topic != dir_topic {
        // A late file (`[windows]`) lives one directory deeper, under `{topic}/_late/`; its
        // manifest's `time_partition` says `_late/dt=…/hour=…`, so the parsed key does too.
        if dir_topic != LATE_DIR || tail(key, 5)?[0] != *topic {
            return None;
        }
        time_partition = format!("{LATE_DIR}/{time_partition}");
    }
    if sink.is_empty() || !attempt_ok(attempt) {
        return None;
    }
    Some(FileKey {
        kind: FileKind::Data,
        sink: sink.to_string(),
        topic: topic.to_string(),
        partition: partition.parse().ok()?,
        first_offset: offset20(first)?,
        attempt: attempt.to_string(),
        time_partition,
        seq: seq.parse().ok()?,
    })
}

/// Parse a dead-letter key of the form [`dead_letter_key`] writes (last four segments).
pub fn parse_dead_letter_key(key: &str) -> Option<FileKey> {
    let t = tail(key, 4)?;
    let (sink, topic, partition, name) = (t[0], t[1], t[2], t[3]);
    let (first, attempt) = name.strip_suffix(".jsonl")?.split_once('+')?;
    if partition.len() != 5 || !attempt_ok(attempt) {
        return None;
    }
    Some(FileKey {
        kind: FileKind::DeadLetters,
        sink: sink.to_string(),
        topic: topic.to_string(),
        partition: partition.parse().ok()?,
        first_offset: offset20(first)?,
        attempt: attempt.to_string(),
        time_partition: String::new(),
        seq: 0,
    })
}

/// What a file URL a manifest lists names, whichever family it belongs to.
pub fn parse_file_url(url: &str) -> Option<FileKey> {
    if url.ends_with(".parquet") {
        parse_data_key(url)
    } else {
        parse_dead_letter_key(url)
    }
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
    fn late_files_parse_with_their_late_time_partition() {
        let dir = crate::windows::late_partition("dt=2026-11-21/hour=10");
        let k = data_key("s", "orders", &dir, 2, 4000, "3f9a1c2b7d4e", 0);
        assert_eq!(
            k,
            "orders/_late/dt=2026-11-21/hour=10/orders+2+00000000000000004000+s+3f9a1c2b7d4e-0.parquet"
        );
        let parsed = parse_data_key(&format!("raw/{k}")).unwrap();
        assert_eq!(
            (parsed.topic.as_str(), parsed.time_partition.as_str()),
            ("orders", "_late/dt=2026-11-21/hour=10")
        );
        // A topic really named `_late` still parses as itself.
        let k = data_key("s", "_late", "dt=2026-11-21/hour=10", 0, 1, "a", 0);
        assert_eq!(parse_data_key(&k).unwrap().topic, "_late");
    }

    #[test]
    fn file_keys_round_trip_whatever_the_url_spelling() {
        let k = data_key(
            "orders-v2",
            "orders.eu",
            "dt=2026-11-21/hour=10",
            2,
            4000,
            "3f9a1c2b7d4e",
            1,
        );
        assert_eq!(
            k,
            "orders.eu/dt=2026-11-21/hour=10/orders.eu+2+00000000000000004000+orders-v2+3f9a1c2b7d4e-1.parquet"
        );
        let parsed = parse_data_key(&k).unwrap();
        assert_eq!(
            (
                parsed.sink.as_str(),
                parsed.topic.as_str(),
                parsed.partition,
                parsed.first_offset
            ),
            ("orders-v2", "orders.eu", 2, 4000)
        );
        assert_eq!((parsed.attempt.as_str(), parsed.seq), ("3f9a1c2b7d4e", 1));
        for url in [
            format!("s3://lake/raw/{k}"),
            format!("file:///data//{k}"),
            format!("file:///data/{k}"),
        ] {
            assert_eq!(parse_file_url(&url).as_ref(), Some(&parsed), "{url}");
        }
        let dl = dead_letter_key("orders-v2", "orders.eu", 2, 4000, "3f9a1c2b7d4e");
        let p = parse_file_url(&format!("s3://lake/_landfall/_dead_letter/{dl}")).unwrap();
        assert_eq!(
            (p.kind, p.sink.as_str(), p.first_offset),
            (FileKind::DeadLetters, "orders-v2", 4000)
        );
        assert_ne!(parse_data_key(&k), parse_dead_letter_key(&dl));
    }

    #[test]
    fn keys_of_other_forms_do_not_parse() {
        for k in [
            // The layout before sink names were in data keys: nobody's to delete.
            "t/dt=2026-11-21/hour=10/t+0+00000000000000000000+3f9a1c2b7d4e-0.parquet",
            // File name topic differs from its directory.
            "t/dt=2026-11-21/hour=10/u+0+00000000000000000000+s+3f9a1c2b7d4e-0.parquet",
            "t/dt=2026-11-21/hour=10/t+0+0+s+3f9a1c2b7d4e-0.parquet",
            "t/x/hour=10/t+0+00000000000000000000+s+3f9a1c2b7d4e-0.parquet",
            "t/dt=2026-11-21/hour=10/_SUCCESS",
            "_landfall_probe/host-1-abc",
            "t/dt=2026-11-21/hour=10/t+0+00000000000000000000+s+a+b-0.parquet",
        ] {
            assert_eq!(parse_data_key(k), None, "{k}");
        }
        assert_eq!(
            parse_dead_letter_key("s/t/0/00000000000000000000+a.jsonl"),
            None
        );
        assert_eq!(parse_dead_letter_key("s/t/00000/0+a.jsonl"), None);
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
        let data = data_key(sink, topic, "dt=2026-11-21/hour=10", 3, 4000, "a", 0);
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
