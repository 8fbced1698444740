//! Secrets never reach a log line, a metric, `landfall validate` output or an object in the store.
//! A SASL password (`kafka.options`) and an AWS secret key (`store.options`), both set through
//! `${ENV}` substitution to distinctive random values, go through every path that reports
//! something — start-up failures, permanent 403s from the store (at start-up and mid-run), a
//! normal run — at `debug` log level, librdkafka's own debug output included; then every byte
//! written is searched for them.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use landfall_runtime::SinkStores;
use landfall_store::io;
use landfall_testkit::{
    eventually, json_record, produce, producer, write_config, S3Server, SinkProcess,
};

/// Everything a process may print, at debug level (librdkafka's `debug` contexts too).
const LOG: &str = "debug,librdkafka=debug,rdkafka=debug";

struct Secrets {
    sasl: String,
    aws: String,
}

impl Secrets {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LF_TEST_SASL_PASSWORD", self.sasl.clone()),
            ("LF_TEST_AWS_SECRET", self.aws.clone()),
            ("LANDFALL_LOG", LOG.to_string()),
        ]
    }

    /// Fails naming where a secret appeared (the secret itself is not printed).
    fn assert_absent(&self, what: &str, text: &[u8]) {
        for (name, s) in [("SASL password", &self.sasl), ("AWS secret key", &self.aws)] {
            if let Some(at) = text.windows(s.len()).position(|w| w == s.as_bytes()) {
                let from = at.saturating_sub(200);
                let context = String::from_utf8_lossy(&text[from..at]);
                panic!("the {name} appears in {what} after: …{context}");
            }
        }
    }
}

/// A sink config whose Kafka client carries the SASL password and whose store the AWS secret.
fn config(name: &str, topic: &str, bootstrap: &str, s3: &str, protocol: &str) -> String {
    let mut options: BTreeMap<String, String> = landfall_testkit::s3_options(s3);
    options.insert(
        "aws_secret_access_key".into(),
        "${LF_TEST_AWS_SECRET}".into(),
    );
    let t = Target {
        data: "s3://lake/raw".into(),
        markers: "s3://lake/_landfall".into(),
        options,
    };
    sink_toml(
        name,
        topic,
        bootstrap,
        &t,
        "max_records = 50\nmax_age_ms = 500",
        "",
    )
    .replace(
        "session_timeout_ms = 6000\n",
        &format!(
            "session_timeout_ms = 6000\noptions = {{ \"security.protocol\" = \"{protocol}\", \
             \"sasl.mechanism\" = \"PLAIN\", \"sasl.username\" = \"landfall\", \
             \"sasl.password\" = \"${{LF_TEST_SASL_PASSWORD}}\", \"debug\" = \"conf,security,broker,generic\" }}\n"
        ),
    )
}

fn start(dir: &Path, name: &str, toml: &str, secrets: &Secrets) -> SinkProcess {
    let f = write_config(dir, name, toml);
    let env = secrets.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    SinkProcess::start(&landfall_bin(), &f, &env, dir.join(format!("{name}.log")))
}

/// Wait for the process to exit by itself; its exit code.
async fn exit_code(sink: &mut SinkProcess, within: Duration) -> Option<i32> {
    eventually("the sink exits", within, || {
        let status = sink.try_wait();
        async move { status }
    })
    .await
    .code()
}

/// Everything the HTTP port serves: `/metrics`, `/status`, `/healthz`, `/readyz`.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut all = String::new();
    for path in ["/metrics", "/status", "/healthz", "/readyz"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        s.read_to_string(&mut all).unwrap();
    }
    assert!(all.contains("landfall_"), "the HTTP port answered: {all}");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_metrics_validate_output_or_objects() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let secrets = Secrets {
        sasl: format!("SaslPw-{}", &id[..16]),
        aws: format!("AwsSecret-{}", &id[16..]),
    };
    let broker = broker();
    let topic = unique("secrets");
    broker.create_topic(&topic, 2);
    let s3 = S3Server::start();
    let dir = test_dir();
    let mut written: Vec<(String, Vec<u8>)> = Vec::new();

    // `landfall validate`: a valid file and one with problems, next to the secrets.
    let good = config(
        "secrets",
        &topic,
        &broker.bootstrap(),
        &s3.endpoint(),
        "PLAINTEXT",
    );
    let bad = good.replace("max_age_ms = 500", "max_age_ms = 0").replace(
        "\"sasl.username\"",
        "\"auto.offset.reset\" = \"latest\", \"sasl.username\"",
    );
    for (name, text, code) in [("validate-ok", &good, 0), ("validate-bad", &bad, 1)] {
        let f = write_config(dir.path(), name, text);
        let mut c = Command::new(landfall_bin());
        c.args(["validate", "-c", f.to_str().unwrap()]);
        for (k, v) in secrets.env() {
            c.env(k, v);
        }
        let out = c.output().expect("landfall validate");
        assert_eq!(out.status.code(), Some(code), "{name}");
        written.push((format!("{name} stdout"), out.stdout));
        written.push((format!("{name} stderr"), out.stderr));
    }

    // (a) Start-up failures: an unreachable broker with SASL configured, and SASL against a
    // broker that does not speak it.
    let nobroker = format!("127.0.0.1:{}", landfall_testkit::free_port());
    let mut a1 = start(
        dir.path(),
        "a1-unreachable",
        &config("a1", &topic, &nobroker, &s3.endpoint(), "SASL_PLAINTEXT"),
        &secrets,
    );
    assert_eq!(
        exit_code(&mut a1, Duration::from_secs(90)).await,
        Some(2),
        "{}",
        a1.log_tail(20)
    );
    let mut a2 = start(
        dir.path(),
        "a2-sasl-mismatch",
        &config(
            "a2",
            &topic,
            &broker.bootstrap(),
            &s3.endpoint(),
            "SASL_PLAINTEXT",
        ),
        &secrets,
    );
    // Whatever tansu makes of a SASL handshake, the process ends: by itself or on SIGTERM.
    let a2_exit = tokio::time::timeout(
        Duration::from_secs(45),
        exit_code(&mut a2, Duration::from_secs(90)),
    )
    .await;
    let a2_log = a2.log.clone();
    let a2_exit = match a2_exit {
        Ok(code) => code,
        Err(_) => a2.terminate(Duration::from_secs(30)),
    };
    eprintln!("SASL against a broker without SASL: exit {a2_exit:?}");

    // (b1) A permanent 403 at start-up: the store does not know the key.
    let s3_auth = S3Server::start_with_auth();
    let mut b1 = start(
        dir.path(),
        "b1-403-start",
        &config(
            "b1",
            &topic,
            &broker.bootstrap(),
            &s3_auth.endpoint(),
            "PLAINTEXT",
        ),
        &secrets,
    );
    assert_eq!(
        exit_code(&mut b1, Duration::from_secs(90)).await,
        Some(2),
        "{}",
        b1.log_tail(20)
    );
    let b1_log = std::fs::read_to_string(&b1.log).unwrap();
    assert!(b1_log.contains("403") || b1_log.contains("InvalidAccessKeyId"));

    // (c) A normal run landing on moto; /metrics scraped while it runs; SIGTERM exits 0.
    let p = producer(&broker.bootstrap());
    let produced = produce(&p, &topic, 2, (0..200).map(|i| (i, json_record(i)))).await;
    let cfg = parse(
        &good
            .replace("${LF_TEST_SASL_PASSWORD}", "x")
            .replace("${LF_TEST_AWS_SECRET}", "x"),
    );
    let st = SinkStores::open(&cfg).expect("stores");
    let c = start(dir.path(), "c-normal", &good, &secrets);
    await_landed(&st.markers, "secrets", &produced, Duration::from_secs(90)).await;
    written.push((
        "HTTP port (/metrics, /status, ...) of the normal run".into(),
        scrape(c.metrics_port).into_bytes(),
    ));
    let c_log = c.log.clone();
    assert_eq!(c.terminate(Duration::from_secs(30)), Some(0));

    // (b2) A permanent 403 mid-run: credentials revoked while landing.
    let restarted = good.replace(
        "session_timeout_ms = 6000\n",
        "session_timeout_ms = 6000\ngroup_id = \"secrets-b2\"\n",
    );
    let mut b2 = start(dir.path(), "b2-403-mid-run", &restarted, &secrets);
    eventually(
        "the restarted sink serves /metrics",
        Duration::from_secs(60),
        || {
            let up = b2.metric("landfall_partitions_assigned") == Some(2.0);
            async move { up.then_some(()) }
        },
    )
    .await;
    written.push((
        "HTTP port of the mid-run 403 run, before the 403".into(),
        scrape(b2.metrics_port).into_bytes(),
    ));
    s3.enforce_auth(true);
    produce(&p, &topic, 2, (200..300).map(|i| (i, json_record(i)))).await;
    assert_eq!(
        exit_code(&mut b2, Duration::from_secs(90)).await,
        Some(2),
        "{}",
        b2.log_tail(20)
    );
    let b2_log = std::fs::read_to_string(&b2.log).unwrap();
    assert!(b2_log.contains("403") || b2_log.contains("InvalidAccessKeyId"));
    s3.enforce_auth(false);

    for (what, path) in [
        ("a1 log", a1.log.clone()),
        ("a2 log", a2_log),
        ("b1 log", b1.log.clone()),
        ("c log", c_log),
        ("b2 log", b2.log.clone()),
    ] {
        let text = std::fs::read(&path).unwrap();
        assert!(!text.is_empty(), "{what} is empty");
        // The logs are at debug level: librdkafka's config dump and the sink's are there.
        written.push((what.into(), text));
    }
    // Every object in the bucket: data files, commit records, markers, index entries.
    let lake = landfall_store::Location::open(
        &url::Url::parse("s3://lake/").unwrap(),
        &open_opts(&Target {
            data: String::new(),
            markers: String::new(),
            options: s3.options(),
        }),
    )
    .unwrap();
    let objects = io::list(&lake, "", None).await.expect("list the bucket");
    assert!(
        objects.len() > 4,
        "the normal run landed objects: {}",
        objects.len()
    );
    for o in &objects {
        let body = io::get_path(&lake, &o.path).await.unwrap().unwrap();
        written.push((format!("object {}", o.path), body.to_vec()));
    }
    let mut bytes = 0;
    for (what, text) in &written {
        secrets.assert_absent(what, text);
        bytes += text.len();
    }
    eprintln!(
        "secrets: searched {} outputs ({} objects, {bytes} bytes): no secret",
        written.len(),
        objects.len()
    );
}
