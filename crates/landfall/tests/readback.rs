//! The Parquet output read back by pyarrow and duckdb: types, values, row counts
//! (`tests/python/check_readback.py` does the reading).

mod common;

use std::time::Duration;

use common::*;
use landfall_testkit::{produce, producer, python};

fn typed_record(i: u64) -> String {
    let nested = if i % 2 == 1 {
        format!(r#","tags":["a","t{i}"],"addr":{{"city":"Oslo","zip":{i}}}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"seq":{i},"name":"record-{i}","amount":"{}.25","ts":"2026-11-21T10:{:02}:00.5Z"{nested}}}"#,
        i % 1000,
        i % 60
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_reads_back_in_pyarrow_and_duckdb() {
    let broker = broker();
    let topic = unique("typed");
    broker.create_topic(&topic, 2);
    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        2,
        (0..1000).map(|i| (i, typed_record(i))),
    )
    .await;
    let dir = test_dir();
    let t = Target::local(dir.path());
    let text = sink_toml(
        "typed",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 300\nmax_age_ms = 500",
        "",
    )
    .replace(
        DECLARED_FIELDS,
        r#"fields = [
  { name = "seq", type = "int64", nullable = false },
  { name = "name", type = "string" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "ts", type = "timestamp" },
  { name = "tags", type = "list<string>" },
  { name = "addr", type = "struct<city:string,zip:int32>" },
]"#,
    );
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let sink = start_sink(cfg, st.clone(), "w");
    await_landed(&st.markers, "typed", &produced, Duration::from_secs(60)).await;
    sink.stop().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/check_readback.py"
    );
    let out = std::process::Command::new(python())
        .args([
            script,
            &format!("{}/markers", dir.path().display()),
            "typed",
            "1000",
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "readback failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("readback ok: 1000 rows"));
}
