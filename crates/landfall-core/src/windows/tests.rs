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

// `late_records = "dead_letter"`: the decision applied to a batch as the sink's own buffer
// seals it.
mod dead_letter {
    use super::*;
    use crate::buffer::{BufferFormat, PartitionBuffer, SealedBatch};
    use crate::config::{Compression, FormatConfig, MetadataColumn, ParquetConfig, Statistics};
    use crate::deadletter::{jsonl, parse_jsonl};
    use crate::flush::FlushReason;
    use crate::{KafkaRecord, TopicPartition};
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn fmt(hold_records: bool) -> BufferFormat {
        BufferFormat {
            decoder: crate::decode::RecordDecoder::new(
                &FormatConfig::JsonInferred,
                &[MetadataColumn::Offset],
                None,
            ),
            props: crate::parquet_props::writer_properties(&ParquetConfig {
                compression: Compression::Zstd(3),
                row_group_rows: 1000,
                data_page_bytes: 64 * 1024,
                dictionary: true,
                statistics: Statistics::Page,
            }),
            timezone: chrono_tz::UTC,
            chunk_records: 3,
            fail_on_bad_record: false,
            size_model: Default::default(),
            dictionary: Default::default(),
            hold_records,
        }
    }

    /// Seal records whose Kafka timestamps (the event time) are `hours[i]` hours after `T0`;
    /// offsets 100.. and an undecodable value where `hours[i]` is `None`.
    fn sealed(hours: &[Option<i64>], hold: bool) -> (SealedBatch, u64) {
        let f = fmt(hold);
        let mut b = PartitionBuffer::new(TopicPartition::new("t", 4));
        for (i, h) in hours.iter().enumerate() {
            let o = 100 + i as i64;
            let value = match h {
                Some(_) => format!(r#"{{"n":{o}}}"#),
                None => "{oops".into(),
            };
            b.push(
                KafkaRecord {
                    topic: "t".into(),
                    partition: 4,
                    offset: o,
                    timestamp_ms: Some((T0 + h.unwrap_or(0) * H) / 1000 + i as i64),
                    key: Some(Bytes::from(format!("k{o}"))),
                    value: Some(Bytes::from(value)),
                    headers: vec![("h".into(), Some(Bytes::from_static(b"\x00\xff")))],
                },
                0,
            );
            if b.chunk_full(&f) {
                b.encode_pending(&f, 0).unwrap();
            }
        }
        let memory = b.memory_bytes();
        let last = 100 + hours.len() as i64 - 1;
        let batch = b
            .seal(&f, FlushReason::Age, OffsetRange::new(100, last), "a1", 0)
            .unwrap()
            .unwrap();
        (batch, memory)
    }

    fn offsets_in(bytes: &Bytes) -> Vec<i64> {
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .unwrap()
            .build()
            .unwrap()
            .flat_map(|b| {
                b.unwrap()
                    .column_by_name("_offset")
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn rows_of_a_closed_window_become_dead_letters_with_their_original_bytes() {
        // Offsets 100-105: hour 10 (closed), hour 12, a bad record, hour 10, hour 12, hour 10.
        let hours = [Some(0), Some(2), None, Some(0), Some(2), Some(0)];
        let (batch, held_memory) = sealed(&hours, true);
        let (plain, plain_memory) = sealed(&hours, false);
        assert!(
            held_memory > plain_memory,
            "the kept records count against the budget: {held_memory} vs {plain_memory}"
        );
        assert!(batch.memory_bytes() > plain.memory_bytes());
        assert_eq!(batch.files.len(), 2);
        let closed = "dt=2026-11-21/hour=10".to_string();
        let out = dead_letter_late(&batch, std::slice::from_ref(&closed)).unwrap();

        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].time_partition, "dt=2026-11-21/hour=12");
        assert_eq!(offsets_in(&out.files[0].bytes), [101, 104]);
        assert_eq!((out.offsets, out.records), (batch.offsets, 6));
        assert_eq!(out.records, out.rows() + out.rejected.len() as u64);
        // The event time left is that of the hour-12 rows (timestamps carry +i ms).
        assert_eq!(
            out.event_time_us,
            Some((T0 + 2 * H + 1_000, T0 + 2 * H + 4_000))
        );
        let lines = parse_jsonl(&jsonl(&out.rejected)).unwrap();
        let got: Vec<(i64, &str)> = lines
            .iter()
            .map(|l| (l.offset, l.reason.as_str()))
            .collect();
        let late = "late: window dt=2026-11-21/hour=10 closed";
        assert_eq!(got[0], (100, late));
        assert_eq!(got[1].0, 102);
        assert!(got[1].1.contains("line 1"), "decode error: {}", got[1].1);
        assert_eq!(got[2..], [(103, late), (105, late)]);
        // Byte-exact: key, value and headers as produced.
        assert_eq!(lines[0].key_base64.as_deref(), Some("azEwMA==")); // "k100"
        assert_eq!(lines[0].value_base64.as_deref(), Some("eyJuIjoxMDB9")); // {"n":100}
        assert_eq!(lines[0].headers[0].value_base64.as_deref(), Some("AP8="));
        // A retry of the attempt decides the same and lands the same bytes.
        let again = dead_letter_late(&batch, &[closed]).unwrap();
        assert_eq!(jsonl(&again.rejected), jsonl(&out.rejected));
        assert_eq!(again.files[0].sha256, out.files[0].sha256);
    }

    #[test]
    fn a_batch_entirely_late_keeps_no_rows_and_no_event_time() {
        let (batch, _) = sealed(&[Some(0), Some(0)], true);
        let out = dead_letter_late(&batch, &["dt=2026-11-21/hour=10".into()]).unwrap();
        assert!(out.files.is_empty());
        assert_eq!((out.rows(), out.rejected.len()), (0, 2));
        assert_eq!(out.event_time_us, None);
        // Nothing late: the batch as sealed.
        let same = dead_letter_late(&batch, &[]).unwrap();
        assert_eq!(same.files.len(), 1);
        assert_eq!(same.event_time_us, batch.event_time_us);
    }

    #[test]
    fn without_the_records_the_decision_refuses_naming_the_window() {
        let (batch, _) = sealed(&[Some(0), Some(2)], false);
        let err = dead_letter_late(&batch, &["dt=2026-11-21/hour=10".into()]).unwrap_err();
        assert!(
            err.contains("t[4] offsets 100..=101: window dt=2026-11-21/hour=10 has 1 rows"),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the hours, bad records and closed windows: every offset of the batch is a
        /// landed row or a dead letter, exactly once, and no landed row is of a closed window.
        #[test]
        fn every_offset_is_a_row_or_a_dead_letter_once(
            hours in proptest::collection::vec(proptest::option::weighted(0.9, 0i64..4), 1..40),
            closed in proptest::collection::btree_set(0i64..4, 0..4),
        ) {
            let (batch, _) = sealed(&hours, true);
            let late: Vec<String> = closed
                .iter()
                .map(|h| time_partition(T0 + h * H, chrono_tz::UTC))
                .collect();
            let out = dead_letter_late(&batch, &late).unwrap();
            let mut seen: Vec<i64> = out.files.iter().flat_map(|f| offsets_in(&f.bytes)).collect();
            seen.extend(out.rejected.iter().map(|r| r.record.offset));
            seen.sort();
            let all: Vec<i64> = (100..100 + hours.len() as i64).collect();
            prop_assert_eq!(seen, all);
            prop_assert_eq!(out.records, out.rows() + out.rejected.len() as u64);
            for f in &out.files {
                prop_assert!(!late.contains(&f.time_partition));
            }
            let late_lines = out.rejected.iter().filter(|r| r.reason.starts_with("late: ")).count();
            let expected = hours.iter().flatten().filter(|h| closed.contains(h)).count();
            prop_assert_eq!(late_lines, expected);
        }
    }
}
