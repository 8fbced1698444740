//! Poison records against the real broker: a `landfall run` process (default format, inferred
//! JSON) consumes a multi-partition topic mixing good records with every kind of input that has
//! crashed, stalled or silently skipped sinks before. It must stay up, account for every offset
//! (a row in a landed Parquet file or a line in a dead-letter file a manifest lists, each once)
//! and exit 0 on SIGTERM.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use landfall_runtime::SinkStores;
use landfall_store::io;
use landfall_testkit::{json_record, write_config, SinkProcess};

/// Header key bytes that are not UTF-8 (and no NUL: librdkafka keeps a header name as a C
/// string).
const BAD_HEADER_KEY: &[u8] = b"tr\xff\xfeace";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(v: &serde_json::Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("base64")
    })
}

/// `tests/python/kafka_raw.py`: librdkafka's C API through ctypes, because no client the tests
/// can use sends a header key's bytes as they are (rust-rdkafka's `OwnedHeaders` takes `&str`,
/// the workspace forbids `unsafe`, and confluent-kafka's Python `produce()` sends the text of a
/// `bytes` key's repr).
fn kafka_raw(args: &[&str], stdin: Option<&Path>) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/kafka_raw.py"
    );
    let mut c = std::process::Command::new(landfall_testkit::python());
    c.arg(script).args(args);
    if let Some(f) = stdin {
        c.stdin(std::fs::File::open(f).expect("records file"));
    }
    let out = c.output().expect("run kafka_raw.py");
    assert!(
        out.status.success(),
        "kafka_raw.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// What a poison kind must become.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Row,
    /// Dead-lettered with a reason containing this text.
    Dead(&'static str),
}

struct Item {
    kind: &'static str,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    expect: Expect,
}

fn item(kind: &'static str, value: impl Into<Vec<u8>>, expect: Expect) -> Item {
    Item {
        kind,
        value: Some(value.into()),
        headers: Vec::new(),
        expect,
    }
}

/// The records of one partition, in produce order: good records around runs of each poison kind.
/// Runs are longer than `runtime.chunk_records` (8) where a kind must fill a whole chunk (an
/// empty object in every record of a chunk; a list/scalar conflict inside one chunk).
fn partition_items(p: i32) -> Vec<Item> {
    let mut items = Vec::new();
    let mut seq = p as u64 * 1_000_000;
    let mut good = |items: &mut Vec<Item>, n: usize| {
        for _ in 0..n {
            seq += 1;
            items.push(item("good", json_record(seq), Expect::Row));
        }
    };
    good(&mut items, 20);
    for i in 0..20 {
        items.push(item(
            "always-empty nested object",
            format!(r#"{{"i":{i},"attrs":{{}}}}"#),
            Expect::Row,
        ));
    }
    good(&mut items, 5);
    for i in 0..20 {
        let v = if i % 2 == 0 {
            format!(r#"{{"a":[{i}]}}"#)
        } else {
            format!(r#"{{"a":{i}}}"#)
        };
        items.push(item("list/scalar conflict", v, Expect::Row));
    }
    good(&mut items, 5);
    for _ in 0..3 {
        items.push(item(
            "invalid UTF-8",
            b"{\"name\":\"caf\xe9 \xff\xfe\"}".to_vec(),
            Expect::Dead("not UTF-8"),
        ));
        items.push(item(
            "truncated JSON",
            r#"{"seq":1,"name":"trunc"#,
            Expect::Dead("invalid JSON"),
        ));
        items.push(Item {
            kind: "tombstone",
            value: None,
            headers: Vec::new(),
            expect: Expect::Dead("tombstone"),
        });
        items.push(item(
            "metadata-name collision",
            r#"{"_offset":1,"_partition":"x","_topic":[1],"_timestamp":{"a":1}}"#,
            Expect::Row,
        ));
        good(&mut items, 3);
    }
    let deep = format!(
        r#"{{"d":{}1{}}}"#,
        r#"{"a":"#.repeat(5000),
        "}".repeat(5000)
    );
    items.push(item(
        "5,000-deep nesting",
        deep,
        Expect::Dead("nested deeper"),
    ));
    let deep_list = format!(r#"{{"l":{}{}}}"#, "[".repeat(5000), "]".repeat(5000));
    items.push(item(
        "5,000-deep nesting",
        deep_list,
        Expect::Dead("nested deeper"),
    ));
    good(&mut items, 5);
    // Near 1 MB: the whole value is 1,000,000 bytes, a valid object that lands as a row.
    let pad = 1_000_000 - r#"{"big":""}"#.len();
    items.push(item(
        "near-1 MB record",
        format!(r#"{{"big":"{}"}}"#, "x".repeat(pad)),
        Expect::Row,
    ));
    good(&mut items, 5);
    for i in 0..3 {
        items.push(Item {
            kind: "non-UTF-8 header key",
            value: Some(format!(r#"{{"h":{i}}}"#).into_bytes()),
            headers: vec![
                (BAD_HEADER_KEY.to_vec(), b"v\xff".to_vec()),
                (b"ok".to_vec(), b"fine".to_vec()),
            ],
            expect: Expect::Row,
        });
    }
    good(&mut items, 20);
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_rows_or_dead_letters_and_the_sink_stays_up() {
    const PARTITIONS: i32 = 3;
    let broker = broker();
    let topic = unique("poison");
    broker.create_topic(&topic, PARTITIONS);

    // Produce every item with one idempotent producer, so each partition's offsets follow the
    // produce order; the key names the item.
    let dir = test_dir();
    let mut by_key: BTreeMap<Vec<u8>, (&'static str, Expect)> = BTreeMap::new();
    let mut produced: BTreeMap<i32, u64> = BTreeMap::new();
    let mut lines = String::new();
    for p in 0..PARTITIONS {
        for (i, it) in partition_items(p).into_iter().enumerate() {
            let key = format!("p{p}-{i}").into_bytes();
            let headers: Vec<[String; 2]> =
                it.headers.iter().map(|(k, v)| [b64(k), b64(v)]).collect();
            lines.push_str(
                &serde_json::json!({
                    "topic": topic, "partition": p, "key": b64(&key),
                    "value": it.value.as_deref().map(b64), "headers": headers,
                })
                .to_string(),
            );
            lines.push('\n');
            by_key.insert(key, (it.kind, it.expect));
            *produced.entry(p).or_default() += 1;
        }
    }
    let records = dir.path().join("records.jsonl");
    std::fs::write(&records, lines).expect("write records");
    kafka_raw(&["produce", &broker.bootstrap()], Some(&records));
    let total: u64 = produced.values().sum();
    assert_eq!(
        broker.high_watermarks(&topic, PARTITIONS),
        produced
            .iter()
            .map(|(p, n)| (*p, *n as i64))
            .collect::<BTreeMap<_, _>>(),
        "the broker holds exactly what was produced"
    );
    // What the broker holds, read back by a plain consumer: offset -> item, and proof that the
    // header keys' bytes are on the wire as produced.
    let held = kafka_raw(
        &[
            "consume",
            &broker.bootstrap(),
            &topic,
            &PARTITIONS.to_string(),
            &total.to_string(),
        ],
        None,
    );
    let mut expect_at: BTreeMap<(i32, i64), (&'static str, Expect)> = BTreeMap::new();
    let mut raw_keys_seen = 0;
    for line in held.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("consumed record");
        let (p, o) = (
            v["partition"].as_i64().unwrap() as i32,
            v["offset"].as_i64().unwrap(),
        );
        let (kind, expect) = by_key[&unb64(&v["key"]).expect("key")];
        let header_keys: Vec<Vec<u8>> = v["header_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| unb64(k).unwrap())
            .collect();
        if kind == "non-UTF-8 header key" {
            assert_eq!(
                header_keys,
                vec![BAD_HEADER_KEY.to_vec(), b"ok".to_vec()],
                "header keys on the wire"
            );
            assert!(std::str::from_utf8(&header_keys[0]).is_err());
            raw_keys_seen += 1;
        }
        if kind == "tombstone" {
            assert!(v["value"].is_null(), "a tombstone on the wire");
        }
        expect_at.insert((p, o), (kind, expect));
    }
    assert_eq!(expect_at.len() as u64, total);
    assert_eq!(raw_keys_seen, 3 * PARTITIONS);

    // The sink: inferred JSON (no `fields`), small chunks so runs of one kind fill whole chunks.
    let t = Target::local(dir.path());
    let toml = sink_toml(
        "poison",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 40\nmax_age_ms = 500",
        "[runtime]\nchunk_records = 8\n",
    )
    // Every metadata column, so keys and headers (the renamed non-UTF-8 key too) are written.
    .replace(
        DECLARED_FIELDS,
        r#"metadata_columns = ["topic", "partition", "offset", "timestamp", "key", "headers"]"#,
    );
    let cfg = parse(&toml);
    assert!(
        matches!(
            cfg.format,
            landfall_core::config::FormatConfig::JsonInferred
        ),
        "inferred JSON"
    );
    let st = SinkStores::open(&cfg).expect("stores");
    let f = write_config(dir.path(), "poison", &toml);
    let mut sink = SinkProcess::start(&landfall_bin(), &f, &[], dir.path().join("poison.log"));
    let ms = await_landed(&st.markers, "poison", &produced, Duration::from_secs(120)).await;
    assert!(
        sink.try_wait().is_none(),
        "the sink exited while landing poison: {}",
        sink.log_tail(40)
    );
    assert_eq!(sink.metric("landfall_partitions_stuck"), Some(0.0));

    // Rows: `_offset` of every row of every listed file (checksums and row counts checked too).
    let mut seen: BTreeMap<(i32, i64), u32> = BTreeMap::new();
    let mut rows = 0u64;
    for (tp_topic, p, o) in landfall_testkit::landed_offsets(&st.data, &ms).await {
        assert_eq!(tp_topic, topic);
        *seen.entry((p, o)).or_default() += 1;
        rows += 1;
        let (kind, expect) = expect_at[&(p, o)];
        assert_eq!(
            expect,
            Expect::Row,
            "{kind} at {p}/{o} landed as a row, expected {expect:?}"
        );
    }
    // Dead letters: every line of every file a manifest lists.
    let mut dead = 0u64;
    for m in &ms {
        assert_eq!(m.records, m.rows + m.dead_lettered, "manifest {m:?}");
        for file in &m.dead_letter_files {
            let key = st
                .dead_letters
                .key_of_url(&file.url)
                .expect("dead-letter key");
            let body = io::get(&st.dead_letters, &key)
                .await
                .expect("get")
                .expect("listed dead-letter file exists");
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).expect("JSON line");
                assert_eq!(v["topic"], topic.as_str());
                let (p, o) = (
                    v["partition"].as_i64().unwrap() as i32,
                    v["offset"].as_i64().unwrap(),
                );
                *seen.entry((p, o)).or_default() += 1;
                dead += 1;
                let reason = v["reason"].as_str().unwrap();
                let (kind, expect) = expect_at[&(p, o)];
                match expect {
                    Expect::Dead(text) => assert!(
                        reason.contains(text),
                        "{kind} at {p}/{o}: reason {reason:?} lacks {text:?}"
                    ),
                    Expect::Row => panic!("{kind} at {p}/{o} dead-lettered: {reason}"),
                }
                if kind == "tombstone" {
                    assert!(v["value_base64"].is_null(), "a tombstone has no value");
                }
            }
        }
    }
    // Every produced offset exactly once, per partition, and nothing else.
    let produced_offsets: BTreeSet<(i32, i64)> = expect_at.keys().copied().collect();
    let accounted: BTreeSet<(i32, i64)> = seen.keys().copied().collect();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "accounted more than once: {twice:?}");
    assert_eq!(
        produced_offsets.difference(&accounted).collect::<Vec<_>>(),
        Vec::<&(i32, i64)>::new(),
        "offsets neither landed nor dead-lettered"
    );
    assert_eq!(accounted, produced_offsets);
    let expected_dead = expect_at
        .values()
        .filter(|(_, e)| matches!(e, Expect::Dead(_)))
        .count() as u64;
    assert_eq!(dead, expected_dead);
    assert_eq!(rows + dead, total);
    eprintln!(
        "poison: {total} records over {PARTITIONS} partitions -> {rows} rows + {dead} dead letters, {} batches",
        ms.len()
    );

    assert_eq!(
        sink.terminate(Duration::from_secs(60)),
        Some(0),
        "SIGTERM exits 0"
    );
}
