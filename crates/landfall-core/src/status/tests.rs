//! `/status`, readiness and liveness against a real state machine.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::buffer::BufferFormat;
use crate::config::{
    Compression, FlushConfig, FormatConfig, MetadataColumn, ParquetConfig, Statistics,
};
use crate::decode::RecordDecoder;
use crate::flush::FlushPolicy;
use crate::manifest::{Landed, OffsetRange, FORMAT_VERSION};
use crate::parquet_props::writer_properties;
use crate::state::{Action, LandingResult, Now, StateSettings};
use crate::KafkaRecord;

const STUCK_AFTER_MS: u64 = 5_000;
const SECRET: &str = "hunter2-very-secret";

fn state() -> SinkState {
    SinkState::new(StateSettings {
        format: BufferFormat {
            decoder: RecordDecoder::new(&FormatConfig::Raw, &[MetadataColumn::Offset], None),
            props: writer_properties(&ParquetConfig {
                compression: Compression::None,
                row_group_rows: 1000,
                data_page_bytes: 64 * 1024,
                dictionary: false,
                statistics: Statistics::None,
            }),
            timezone: chrono_tz::UTC,
            chunk_records: 4,
            fail_on_bad_record: false,
            size_model: Default::default(),
            dictionary: Default::default(),
            hold_records: false,
        },
        policy: FlushPolicy::new(FlushConfig {
            max_records: 3,
            max_file_bytes: u64::MAX,
            max_age_ms: 1_000,
        }),
        max_records: 3,
        max_buffered_bytes: 1 << 30,
        stuck_after_ms: STUCK_AFTER_MS,
        seed: 7,
    })
}

fn tp() -> TopicPartition {
    TopicPartition::new("orders", 0)
}

fn record(offset: i64, ts: i64) -> (KafkaRecord, u64) {
    (
        KafkaRecord {
            topic: "orders".into(),
            partition: 0,
            offset,
            timestamp_ms: Some(ts),
            key: None,
            value: Some(Bytes::from_static(b"x")),
            headers: vec![],
        },
        1,
    )
}

fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_us: 1_763_719_200_000_000 + ms as i64 * 1000,
    }
}

fn manifest(range: OffsetRange) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        sink: "orders".into(),
        topic: "orders".into(),
        partition: 0,
        offsets: range,
        records: 3,
        rows: 3,
        dead_lettered: 0,
        files: vec![],
        dead_letter_files: vec![],
        schema_fingerprint: None,
        event_time: None,
        writer_id: "w1".into(),
        attempt_id: "a".into(),
        landed_at: "2026-11-21T10:00:01.000Z".into(),
        flush_reason: "records".into(),
        commit_url: "s3://lake/_landfall/commit".into(),
        marker_url: "s3://lake/_landfall/marker".into(),
        gaps: vec![],
    }
}

fn running(name: &str, partitions: Vec<PartitionReport>) -> SinkStatus {
    SinkStatus {
        sink: name.into(),
        writer_id: "w1".into(),
        phase: SinkPhase::Running,
        recovering_partitions: 0,
        buffered_bytes: 0,
        buffer_budget_bytes: 1 << 30,
        partitions,
        last_error: None,
    }
}

/// Assign, deliver three records (sealed at once: max_records = 3) and return the batch.
fn assigned_with_a_landing(s: &mut SinkState) -> Arc<crate::buffer::SealedBatch> {
    let (epoch, _) = s.assign(tp(), 10);
    assert_eq!(epoch, 1);
    let (actions, _) = s
        .records((10..13).map(|o| record(o, 1_763_719_000_000 + o)), at(1))
        .unwrap();
    actions
        .into_iter()
        .find_map(|a| match a {
            Action::Land { batch, .. } => Some(batch),
            _ => None,
        })
        .expect("a landing starts")
}

#[test]
fn a_stuck_partition_is_not_ready_and_status_says_why_without_the_secret() {
    let mut s = state();
    let mut obs = Observer::default();
    let batch = assigned_with_a_landing(&mut s);
    assert_eq!(batch.newest_timestamp_ms, Some(1_763_719_000_012));
    obs.high_watermarks([(tp(), 20)]);
    assert_eq!(
        readiness(&[running("orders", obs.partitions(&s, "w1", 0))]),
        Ok(())
    );

    // The store keeps failing; the error message happens to carry the secret access key.
    let mut now = 1;
    let mut stuck_seen = false;
    while now < 2 * STUCK_AFTER_MS {
        let actions = s
            .landed(&tp(), 1, LandingResult::Retryable, at(now))
            .unwrap();
        assert!(actions.iter().all(|a| !matches!(a, Action::Land { .. })));
        obs.failed(
            &tp(),
            ErrorReport::new(
                now as i64,
                "transient",
                &format!("PUT failed: 503 SlowDown (signature for key {SECRET})"),
                &[SECRET.to_string()],
            ),
        );
        // Wait for the retry to be due, then the loop starts it again.
        now = s.retry_at(&tp()).expect("waits to retry");
        for a in s.tick(at(now), 0).unwrap() {
            stuck_seen |= matches!(a, Action::Stuck { .. });
        }
    }
    assert!(stuck_seen, "reported stuck after {STUCK_AFTER_MS} ms");

    let parts = obs.partitions(&s, "w1", now as i64);
    let p = &parts[0];
    assert!(p.stuck && p.paused);
    assert_eq!(p.paused_because, vec!["retry"]);
    assert_eq!(
        s.paused_by_reason(),
        [("memory", 0), ("retry", 1), ("out_of_range", 0)]
    );
    assert_eq!(
        (p.durable_offset, p.high_watermark, p.lag),
        (10, Some(20), Some(10))
    );
    assert_eq!(p.owner, "w1");
    let why = readiness(&[running("orders", parts.clone())]).unwrap_err();
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].contains("orders[0] stuck"), "{}", why[0]);
    assert!(why[0].contains("503 SlowDown"), "{}", why[0]);
    let json = serde_json::to_string(&parts).unwrap();
    assert!(!json.contains(SECRET), "{json}");
    assert!(json.contains("<redacted>"), "{json}");

    // It lands at last: ready again, the error is gone, the last batch is reported.
    let m = manifest(batch.offsets);
    let _ = s
        .landed(
            &tp(),
            1,
            LandingResult::Landed(Landed::Committed(Box::new(m.clone()))),
            at(now + 1),
        )
        .unwrap();
    obs.committed(&m, 1_763_719_201_000, batch.newest_timestamp_ms);
    let parts = obs.partitions(&s, "w1", 1_763_719_203_500);
    assert_eq!(readiness(&[running("orders", parts.clone())]), Ok(()));
    let p = &parts[0];
    assert_eq!(
        (p.durable_offset, p.lag, p.last_error.is_none()),
        (13, Some(7), true)
    );
    let b = p.last_batch.as_ref().unwrap();
    assert_eq!((b.first_offset, b.last_offset, b.next_offset), (10, 12, 13));
    assert_eq!(b.age_seconds, 2.5);
    assert_eq!(
        b.newest_record_at.as_deref(),
        Some("2025-11-21T09:56:40.012Z")
    );
}

#[test]
fn freshness_grows_while_nothing_lands() {
    let mut s = state();
    let mut obs = Observer::default();
    let batch = assigned_with_a_landing(&mut s);
    let m = manifest(batch.offsets);
    let _ = s
        .landed(
            &tp(),
            1,
            LandingResult::Landed(Landed::Committed(Box::new(m.clone()))),
            at(2),
        )
        .unwrap();
    obs.committed(&m, 1_763_719_000_100, Some(1_763_719_000_000));
    let status = running("orders", obs.partitions(&s, "w1", 1_763_719_000_500));
    assert_eq!(status.partitions[0].freshness_seconds, Some(0.5));
    // Read again 10 s later without anything landing: the snapshot ages.
    let later = status.aged(1_763_719_010_500);
    assert_eq!(later.partitions[0].freshness_seconds, Some(10.5));
    assert_eq!(
        later.partitions[0].last_batch.as_ref().unwrap().age_seconds,
        10.4
    );
}

#[test]
fn not_ready_before_start_and_while_partitions_recover() {
    assert!(readiness(&[]).is_err());
    let mut s = running("orders", vec![]);
    assert_eq!(
        readiness(std::slice::from_ref(&s)),
        Ok(()),
        "an idle member is ready"
    );
    s.phase = SinkPhase::Starting;
    let why = readiness(std::slice::from_ref(&s)).unwrap_err();
    assert!(why[0].contains("starting"), "{why:?}");
    s.phase = SinkPhase::Running;
    s.recovering_partitions = 4;
    let why = readiness(&[s]).unwrap_err();
    assert!(
        why[0].contains("4 assigned partition(s) still recovering"),
        "{why:?}"
    );
}

#[test]
fn liveness_fails_only_when_a_running_loop_goes_silent() {
    let beat = |phase, last_beat_ms| Heartbeat {
        sink: "orders".into(),
        phase,
        last_beat_ms,
    };
    assert_eq!(
        liveness(&[beat(SinkPhase::Running, 1_000)], 3_000, 2_000),
        Ok(())
    );
    let why = liveness(&[beat(SinkPhase::Running, 1_000)], 3_001, 2_000).unwrap_err();
    assert!(why[0].contains("has not gone round for 2001 ms"), "{why:?}");
    // Still starting (bounded by its own timeouts) or stopped: not judged.
    assert_eq!(
        liveness(&[beat(SinkPhase::Starting, 0)], 60_000, 2_000),
        Ok(())
    );
    assert_eq!(
        liveness(&[beat(SinkPhase::Stopped, 0)], 60_000, 2_000),
        Ok(())
    );
}

#[test]
fn redact_hides_every_secret_and_bounds_the_length() {
    let secrets = vec!["abc".to_string(), "abcdef".to_string(), String::new()];
    assert_eq!(
        redact("x abcdef y abc", &secrets),
        "x <redacted> y <redacted>"
    );
    let long = "é".repeat(MAX_ERROR_CHARS + 10);
    let r = redact(&long, &[]);
    assert_eq!(r.chars().count(), MAX_ERROR_CHARS + 1);
    assert!(r.ends_with('…'));
    assert_eq!(lag(10, Some(7)), Some(0));
    assert_eq!(lag(10, None), None);
}
