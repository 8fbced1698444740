use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::keys::time_partition;
use crate::manifest::{OffsetRange, TimeRange};

const H: i64 = 3_600_000_000; // one hour in µs
const T0: i64 = 1_795_255_200_000_000; // 2026-11-21T10:00:00Z (an hour start)

#[test]
fn windows_follow_the_layout_and_the_timezone() {
    let w = window_of("dt=2026-11-21/hour=10", chrono_tz::UTC).unwrap();
    assert_eq!((w.start_us, w.end_us), (T0, T0 + H));
    assert_eq!(time_partition(T0, chrono_tz::UTC), "dt=2026-11-21/hour=10");
    // Tokyo is UTC+9: local 19:00 is 10:00 UTC.
    let w = window_of("dt=2026-11-21/hour=19", chrono_tz::Asia::Tokyo).unwrap();
    assert_eq!(w.start_us, T0);
    // The hour repeated when DST ends (Berlin, 2026-10-25 02:00 local twice) is one directory
    // spanning both occurrences; the skipped hour in spring does not exist.
    let w = window_of("dt=2026-10-25/hour=02", chrono_tz::Europe::Berlin).unwrap();
    assert_eq!(w.end_us - w.start_us, 2 * H);
    assert!(window_of("dt=2026-03-29/hour=02", chrono_tz::Europe::Berlin).is_none());
    assert!(window_of("_late/dt=2026-11-21/hour=08", chrono_tz::UTC).is_none());
    assert!(window_of("dt=2026-11-21/hour=xx", chrono_tz::UTC).is_none());
    // Every instant's window contains it.
    for t in [T0, T0 + 1, T0 + H - 1, T0 + 7 * H + 123] {
        for tz in [
            chrono_tz::UTC,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::New_York,
        ] {
            let w = window_of(&time_partition(t, tz), tz).unwrap();
            assert!(w.start_us <= t && t < w.end_us, "{t} {tz}");
        }
    }
}

fn progress(p: i32, max_event: Option<i64>, idle: Option<i64>) -> Progress {
    OwnerState {
        next_offset: 10,
        max_event_time_us: max_event,
        idle_watermark_us: idle,
    }
    .progress("s", "t", p, "w", 0)
}

#[test]
fn a_window_closes_only_when_every_partition_passed_it() {
    let w = Window {
        start_us: T0,
        end_us: T0 + H,
    };
    let lateness_ms = 600_000;
    let past = T0 + H + 600_000_000;
    let mut pr = BTreeMap::new();
    pr.insert(0, progress(0, Some(past), None));
    pr.insert(1, progress(1, Some(past - 1), None));
    // Partition 1 is one microsecond short; partition 2 has no progress at all.
    assert!(closable(w, lateness_ms, &[0, 1], &pr).is_none());
    pr.insert(1, progress(1, Some(past - 1), Some(past)));
    let closed = closable(w, lateness_ms, &[0, 1], &pr).unwrap();
    assert_eq!(
        closed,
        [(0, 10, ClosedBy::Watermark), (1, 10, ClosedBy::Idle)]
    );
    assert!(closable(w, lateness_ms, &[0, 1, 2], &pr).is_none());
    assert!(closable(w, lateness_ms, &[], &pr).is_none());
}

#[test]
fn late_decisions_use_the_owners_watermark() {
    let mut o = OwnerState::default();
    let tps = ["dt=2026-11-21/hour=10", "dt=2026-11-21/hour=11"];
    assert!(o.late_partitions(tps, chrono_tz::UTC, 0).is_empty());
    o.committed(100, Some(T0 + H + 5));
    assert_eq!(
        o.late_partitions(tps, chrono_tz::UTC, 0),
        ["dt=2026-11-21/hour=10"]
    );
    assert!(o.late_partitions(tps, chrono_tz::UTC, 1).is_empty());
    // Idle promises only move forward and count like event time.
    o.idle(T0 + 3 * H);
    o.idle(T0);
    assert_eq!(o.idle_watermark_us, Some(T0 + 3 * H));
    assert_eq!(o.late_partitions(tps, chrono_tz::UTC, 0).len(), 2);
}

fn file(tp: &str, key: &str, rows: u64) -> FileEntry {
    FileEntry {
        url: format!("s3://lake/{key}"),
        key: key.into(),
        size_bytes: rows * 10,
        rows,
        sha256: "x".into(),
        time_partition: Some(tp.into()),
        min_offset: 0,
        max_offset: 0,
        schema_fingerprint: None,
    }
}

fn manifest(partition: i32, first: i64, files: Vec<FileEntry>, max_event: i64) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        sink: "s".into(),
        topic: "t".into(),
        partition,
        offsets: OffsetRange::new(first, first + 9),
        records: 10,
        rows: files.iter().map(|f| f.rows).sum(),
        dead_lettered: 0,
        files,
        dead_letter_files: vec![],
        schema_fingerprint: None,
        event_time: Some(TimeRange {
            min: rfc3339_us(max_event - 1),
            max: rfc3339_us(max_event),
        }),
        writer_id: "w".into(),
        attempt_id: "a".into(),
        landed_at: "x".into(),
        flush_reason: "age".into(),
        commit_url: "c".into(),
        marker_url: "m".into(),
        gaps: vec![],
    }
}

#[test]
fn entries_skip_late_files_and_the_manifest_sums_and_orders_them() {
    let h8 = "dt=2026-11-21/hour=08";
    let m = manifest(
        2,
        40,
        vec![
            file(h8, "t/h8/b", 3),
            file(&late_partition(h8), "t/_late/h8/c", 1),
            file("dt=2026-11-21/hour=09", "t/h9/d", 2),
        ],
        T0 + H + 1,
    );
    let e = entries_of(&m);
    assert_eq!(e.keys().collect::<Vec<_>>(), [h8, "dt=2026-11-21/hour=09"]);
    assert_eq!(on_time_max_event_us(&m), Some(T0 + H + 1));
    let all_late = manifest(0, 0, vec![file(&late_partition(h8), "k", 1)], T0);
    assert_eq!(on_time_max_event_us(&all_late), None);
    let other = WindowEntry {
        partition: 0,
        commit_first: 7,
        files: vec![file(h8, "t/h8/a", 5)],
    };
    let wm = assemble(
        CloseIds {
            sink: "s",
            topic: "t",
            time_partition: h8,
            window: window_of(h8, chrono_tz::UTC).unwrap(),
            tz: chrono_tz::UTC,
            allowed_lateness_ms: 0,
            writer_id: "w",
            now_ms: 0,
        },
        &[e[h8].clone(), other],
        vec![(0, 17, ClosedBy::Watermark), (2, 50, ClosedBy::Idle)],
    );
    assert_eq!((wm.rows, wm.size_bytes), (8, 80));
    assert_eq!(
        wm.files
            .iter()
            .map(|f| f.file.key.as_str())
            .collect::<Vec<_>>(),
        ["t/h8/a", "t/h8/b"]
    );
    assert_eq!(wm.window.start, "2026-11-21T08:00:00Z");
    assert_eq!(wm.window.end, "2026-11-21T09:00:00Z");
    // The JSON has the contract's shape: flattened file entries with partition and commit_first.
    let v: serde_json::Value = serde_json::from_slice(&wm.to_json()).unwrap();
    assert_eq!(v["kind"], "window");
    assert_eq!(v["files"][0]["partition"], 0);
    assert_eq!(v["files"][0]["commit_first"], 7);
    assert_eq!(v["files"][0]["sha256"], "x");
    assert_eq!(v["partitions"][1]["closed_by"], "idle");
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/schemas/window.v1.json")).unwrap();
    for key in schema["required"].as_array().unwrap() {
        assert!(v.get(key.as_str().unwrap()).is_some(), "{key} missing");
    }
}

/// One step of the model: several partitions (owners may restart, i.e. hand over through their
/// progress object), a wall clock, and closers running at any moment.
#[derive(Debug, Clone)]
enum Step {
    /// Partition lands a batch with rows at these event-time offsets (in minutes, relative to
    /// the clock; negative = in the past).
    Land(usize, Vec<i64>),
    /// Partition found quiet.
    Idle(usize),
    /// The owner of a partition restarts (a new owner reads its progress).
    Restart(usize),
    /// The clock moves on (minutes).
    Tick(i64),
    /// Some worker runs the closer.
    Close,
    /// A partition is added to the topic.
    AddPartition,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, prop::collection::vec(-150i64..30, 1..6)).prop_map(|(p, v)| Step::Land(p, v)),
        1 => (0..4usize).prop_map(Step::Idle),
        1 => (0..4usize).prop_map(Step::Restart),
        2 => (0..40i64).prop_map(Step::Tick),
        2 => Just(Step::Close),
        1 => Just(Step::AddPartition),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the interleaving: a closed window lists every on-time file of its hour that is
    /// ever committed (none joins later), every file is either in its window's directory or
    /// late, and a window closes only once every partition's watermark passed it.
    #[test]
    fn closed_windows_are_complete_and_nothing_joins_them(
        partitions0 in 1usize..4,
        lateness_min in 0u64..30,
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let tz = chrono_tz::UTC;
        let lateness_ms = lateness_min * 60_000;
        let mut clock = T0 + 5 * H;
        let mut partitions = partitions0;
        // Owners' in-memory states and the store's progress objects.
        let mut owners: Vec<OwnerState> = vec![OwnerState::default(); partitions];
        let mut store: BTreeMap<i32, Progress> = BTreeMap::new();
        // window -> on-time file keys committed (the open entries), and what was closed.
        let mut entries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut closed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut seq = 0;
        for s in steps {
            match s {
                Step::Land(p, rows) => {
                    let p = p % partitions;
                    let times: Vec<i64> = rows.iter().map(|m| clock + m * 60_000_000).collect();
                    let tps: BTreeSet<String> = times.iter().map(|t| time_partition(*t, tz)).collect();
                    // The owner's watermark, and (for what it cannot know, e.g. a partition added
                    // after a window closed) whether the window's `_SUCCESS` exists.
                    let mut late = owners[p].late_partitions(tps.iter().map(String::as_str), tz, lateness_ms);
                    late.extend(tps.iter().filter(|tp| closed.contains_key(*tp)).cloned());
                    let files: Vec<FileEntry> = tps.iter().map(|tp| {
                        seq += 1;
                        let key = format!("{p}-{seq}");
                        if late.contains(tp) {
                            file(&late_partition(tp), &key, 1)
                        } else {
                            file(tp, &key, 1)
                        }
                    }).collect();
                    let m = manifest(p as i32, seq, files, *times.iter().max().unwrap());
                    // The post-commit step: entries, then progress.
                    for (tp, e) in entries_of(&m) {
                        prop_assert!(!closed.contains_key(&tp), "an on-time file joined closed window {tp}");
                        entries.entry(tp).or_default().extend(e.files.iter().map(|f| f.key.clone()));
                    }
                    owners[p].committed(m.offsets.next, on_time_max_event_us(&m));
                    store.insert(p as i32, owners[p].progress("s", "t", p as i32, "w", 0));
                }
                Step::Idle(p) => {
                    let p = p % partitions;
                    owners[p].idle(clock);
                    store.insert(p as i32, owners[p].progress("s", "t", p as i32, "w", 0));
                }
                Step::Restart(p) => {
                    let p = p % partitions;
                    owners[p] = OwnerState::from_progress(store.get(&(p as i32)));
                }
                Step::Tick(m) => clock += m * 60_000_000,
                Step::AddPartition => {
                    partitions += 1;
                    owners.push(OwnerState::default());
                }
                Step::Close => {
                    let ids: Vec<i32> = (0..partitions as i32).collect();
                    for (tp, files) in &entries {
                        if closed.contains_key(tp) {
                            continue;
                        }
                        let w = window_of(tp, tz).unwrap();
                        if let Some(by) = closable(w, lateness_ms, &ids, &store) {
                            for (p, _, _) in &by {
                                prop_assert!(passed(w, lateness_ms, store[p].watermark_us()));
                            }
                            closed.insert(tp.clone(), files.clone());
                        }
                    }
                }
            }
        }
        // Nothing was added to a closed window after it closed.
        for (tp, files) in &closed {
            prop_assert_eq!(&entries[tp], files, "window {}", tp);
        }
    }
}
