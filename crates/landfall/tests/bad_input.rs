//! Bad input gets one clear error naming what is wrong and where, and loses nothing: bad
//! configs, an unreachable broker, a missing or unreachable bucket, missing credentials, and
//! malformed records (dead-lettered with their offsets, or stopping the sink when so configured).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use landfall_store::io;
use landfall_testkit::{
    json_record, manifests, produce, producer, write_config, S3Server, SinkProcess,
};

fn landfall(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_landfall"));
    c.args(args).env("LANDFALL_LOG", "error");
    for (k, v) in env {
        c.env(k, v);
    }
    for k in unset {
        c.env_remove(k);
    }
    c.output().expect("run landfall")
}

/// `landfall run -c F` must exit 2 with exactly one `error:` line; returns that line.
fn run_expecting_one_error(f: &Path, unset: &[&str]) -> String {
    let out = landfall(
        &[
            "run",
            "-c",
            f.to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
        unset,
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.into_iter().next().expect("one line")
}

fn error_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(String::from)
        .collect()
}

/// No commit record was written under the marker prefix.
async fn nothing_committed(markers: &landfall_store::Location) {
    let listed = io::list(markers, "_commits", None).await.unwrap();
    assert!(
        listed.is_empty(),
        "commit records were written: {:?}",
        listed
            .iter()
            .map(|l| l.path.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn bad_config_reports_every_problem_with_file_and_line() {
    let dir = test_dir();
    let t = Target::local(dir.path());
    let good = sink_toml(
        "cfg",
        "orders",
        "127.0.0.1:9092",
        &t,
        "max_age_ms = 1000",
        "",
    );
    let bad = good
        .replace("[flush]\n", "[flush]\nmax_file_byte = 10\n")
        .replace("type = \"json\"", "type = \"jsn\"");
    let f = write_config(dir.path(), "bad", &bad);
    let out = landfall(&["validate", "-c", f.to_str().unwrap()], &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().next().unwrap();
    // TOML errors stop parsing at the first: the unknown key, with its line.
    let expected_line = bad
        .lines()
        .position(|l| l.starts_with("max_file_byte"))
        .unwrap()
        + 1;
    assert!(
        line.starts_with(&format!("{}:{expected_line}:", f.display())),
        "{line}"
    );
    assert!(line.contains("unknown field `max_file_byte`"), "{line}");

    // Semantic problems are all reported, each with its line and a hint.
    let bad2 = good
        .replace("type = \"json\"", "type = \"jsn\"")
        .replace("max_age_ms = 1000", "max_age_ms = 0");
    let f2 = write_config(dir.path(), "bad2", &bad2);
    let out = landfall(&["run", "-c", f2.to_str().unwrap()], &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`format.type`: unknown format `jsn` (hint: json | raw)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`flush.max_age_ms`: must be at least 1"),
        "{stderr}"
    );
    // Nothing was started, so nothing was written.
    assert!(!dir.path().join("markers/_commits").exists());
}

#[test]
fn unreachable_broker_is_one_clear_line() {
    let dir = test_dir();
    let t = Target::local(dir.path());
    let port = landfall_testkit::free_port();
    let f = write_config(
        dir.path(),
        "nobroker",
        &sink_toml(
            "nobroker",
            "orders",
            &format!("127.0.0.1:{port}"),
            &t,
            "",
            "",
        ),
    );
    let error = run_expecting_one_error(&f, &[]);
    assert!(
        error.contains(&format!("cannot reach Kafka at 127.0.0.1:{port}")),
        "{}",
        error
    );
    assert!(!dir.path().join("markers/_commits").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_unreachable_store_and_missing_credentials_are_one_clear_line() {
    let s3 = S3Server::start();
    let dir = test_dir();
    let cases: Vec<(&str, Target, Vec<&str>, &str)> = vec![
        (
            "missing bucket",
            Target {
                data: "s3://nope/raw".into(),
                markers: "s3://nope/_landfall".into(),
                options: s3.options(),
            },
            vec![],
            "does the bucket exist?",
        ),
        (
            "unreachable endpoint",
            Target {
                data: "s3://lake/raw".into(),
                markers: "s3://lake/_landfall".into(),
                options: {
                    let mut o = s3.options();
                    o.insert(
                        "aws_endpoint".into(),
                        format!("http://127.0.0.1:{}", landfall_testkit::free_port()),
                    );
                    o
                },
            },
            vec![],
            "s3://lake/raw",
        ),
        (
            "missing credentials",
            Target {
                data: "s3://lake/raw".into(),
                markers: "s3://lake/_landfall".into(),
                options: {
                    let mut o = s3.options();
                    o.remove("aws_access_key_id");
                    o.remove("aws_secret_access_key");
                    o
                },
            },
            vec![
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ],
            "missing credentials",
        ),
    ];
    for (name, t, unset, needle) in cases {
        let f = write_config(
            dir.path(),
            "store",
            &sink_toml("store", "orders", "127.0.0.1:9", &t, "", ""),
        );
        let started = std::time::Instant::now();
        let error = run_expecting_one_error(&f, &unset);
        assert!(error.contains(needle), "{name}: {}", error);
        assert!(error.contains("sink `store`"), "{name}: {}", error);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name}: took {:?}",
            started.elapsed()
        );
    }
    // Nothing was committed anywhere.
    let o = open_opts(&Target {
        data: String::new(),
        markers: String::new(),
        options: s3.options(),
    });
    let lake = landfall_store::Location::open(&url::Url::parse("s3://lake/_landfall").unwrap(), &o)
        .unwrap();
    nothing_committed(&lake).await;
}

/// The dead-letter location is probed at start-up like data and markers: a dead-letter bucket
/// that does not exist ends the start with one line naming it, before anything is consumed,
/// instead of failing the first landing that has a bad record, hours later.
#[test]
fn missing_dead_letter_bucket_is_one_clear_line() {
    let s3 = S3Server::start();
    let dir = test_dir();
    let t = Target {
        data: "s3://lake/raw".into(),
        markers: "s3://lake/_landfall".into(),
        options: s3.options(),
    };
    let f = write_config(
        dir.path(),
        "dl",
        &sink_toml(
            "dl",
            "orders",
            "127.0.0.1:9",
            &t,
            "",
            "[errors]\ndead_letter_url = \"s3://no-such-dl-bucket/dead\"\n",
        ),
    );
    let started = std::time::Instant::now();
    let error = run_expecting_one_error(&f, &[]);
    println!("{error} (after {:?})", started.elapsed());
    assert!(error.contains("sink `dl`"), "{error}");
    assert!(
        error.contains("errors.dead_letter_url: ") && error.contains("s3://no-such-dl-bucket/dead"),
        "{error}"
    );
    assert!(error.contains("does the bucket exist?"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(60), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_go_to_the_dead_letter_prefix_with_offset_and_reason() {
    let broker = broker();
    let topic = unique("dlq");
    broker.create_topic(&topic, 1);
    let values: Vec<(u64, String)> = (0..200)
        .map(|i| match i % 50 {
            7 => (i, "{not json".to_string()),
            8 => (i, r#"{"seq":"not a number"}"#.to_string()),
            _ => (i, json_record(i)),
        })
        .collect();
    let produced = produce(&producer(&broker.bootstrap()), &topic, 1, values).await;
    let dir = test_dir();
    let t = Target::local(dir.path());
    let cfg = parse(&sink_toml(
        "dlq",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 100\nmax_age_ms = 500",
        "",
    ));
    let st = stores(&cfg, &t);
    let sink = start_sink(cfg, st.clone(), "w");
    let ms = await_landed(&st.markers, "dlq", &produced, Duration::from_secs(60)).await;
    sink.stop().await;
    assert_eq!(ms.iter().map(|m| m.rows).sum::<u64>(), 192);
    assert_eq!(ms.iter().map(|m| m.dead_lettered).sum::<u64>(), 8);
    let mut bad = Vec::new();
    for m in &ms {
        assert_eq!(m.records, m.rows + m.dead_lettered);
        for f in &m.dead_letter_files {
            let key = st.dead_letters.key_of_url(&f.url).unwrap();
            let body = io::get(&st.dead_letters, &key).await.unwrap().unwrap();
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                assert_eq!(v["topic"], topic.as_str());
                assert!(!v["reason"].as_str().unwrap().is_empty());
                assert!(v["value_base64"].is_string());
                bad.push(v["offset"].as_i64().unwrap());
            }
        }
    }
    bad.sort();
    assert_eq!(bad, vec![7, 8, 57, 58, 107, 108, 157, 158]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_mode_stops_the_sink_naming_the_record_and_commits_nothing_past_it() {
    let broker = broker();
    let topic = unique("failmode");
    broker.create_topic(&topic, 1);
    let values: Vec<(u64, String)> = (0..10)
        .map(|i| {
            (
                i,
                if i == 4 {
                    "garbage".into()
                } else {
                    json_record(i)
                },
            )
        })
        .collect();
    produce(&producer(&broker.bootstrap()), &topic, 1, values).await;
    let dir = test_dir();
    let t = Target::local(dir.path());
    let cfg = parse(&sink_toml(
        "failmode",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_age_ms = 500",
        "[errors]\non_decode_error = \"fail\"\n",
    ));
    let st = stores(&cfg, &t);
    let sink = start_sink(cfg, st.clone(), "w");
    let err = tokio::time::timeout(Duration::from_secs(60), sink.task)
        .await
        .expect("sink stops")
        .unwrap()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("{topic}[0] offset 4")), "{msg}");
    assert!(manifests(&st.markers, "failmode").await.is_empty());
    let _ = Path::new("");
}

/// Keys the store does not accept: one line naming the cause, before anything is consumed.
#[test]
fn wrong_credentials_are_one_clear_line() {
    let s3 = S3Server::start_with_auth();
    let dir = test_dir();
    let t = Target {
        data: "s3://lake/raw".into(),
        markers: "s3://lake/_landfall".into(),
        options: s3.options(),
    };
    let f = write_config(
        dir.path(),
        "creds",
        &sink_toml("creds", "orders", "127.0.0.1:9", &t, "", ""),
    );
    let error = run_expecting_one_error(&f, &[]);
    assert!(
        error.contains("sink `creds`") && error.contains("permission denied: wrong credentials"),
        "{}",
        error
    );
    assert!(error.contains("InvalidAccessKeyId"), "{}", error);
}

/// An orchestrator may stop a pod that is still starting (here: waiting on a store that accepts
/// connections and never answers). SIGTERM then ends it cleanly with exit 0, not by the signal.
#[test]
fn sigterm_while_starting_exits_cleanly() {
    let dir = test_dir();
    // Accepts TCP connections (the kernel's backlog) and never answers a request.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let t = Target {
        data: "s3://lake/raw".into(),
        markers: "s3://lake/_landfall".into(),
        options: landfall_testkit::s3_options(&format!(
            "http://{}",
            blackhole.local_addr().unwrap()
        )),
    };
    let f = write_config(
        dir.path(),
        "starting",
        &sink_toml("starting", "orders", "127.0.0.1:9", &t, "", ""),
    );
    let sink = SinkProcess::start(
        Path::new(env!("CARGO_BIN_EXE_landfall")),
        &f,
        &[],
        dir.path().join("starting.log"),
    );
    // The metrics port is bound before the store probe starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", sink.metrics_port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "sink never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = sink.log.clone();
    assert_eq!(sink.terminate(Duration::from_secs(10)), Some(0));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("stopped before starting"), "{log}");
}
