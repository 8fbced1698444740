//! Whole-file tests: TOML text in, validated config or problems out.

use super::*;

const GOOD: &str = r#"
name = "orders"
topics = ["orders"]

[kafka]
bootstrap_servers = "127.0.0.1:9092"

[format]
type = "json"
fields = [
  { name = "id", type = "int64", nullable = false },
  { name = "ts", type = "timestamp" },
  { name = "amount", type = "decimal(18,2)" },
]

[partitioning]
event_time_field = "ts"

[store]
url = "s3://lake/raw"

[marker]
prefix = "s3://lake/_landfall"
"#;

/// A password that breaks TOML if pasted into the file as text.
const TRICKY: &str = "pa\"ss\\word' \"\"\" ${HOME} \n# end";

fn parse(text: &str) -> Result<SinkConfig, ConfigErrors> {
    SinkConfig::from_toml(text, Path::new("orders.toml"), &|name| match name {
        "PASSWORD" => Some("s3cret".into()),
        "TRICKY" => Some(TRICKY.into()),
        _ => None,
    })
}

#[test]
fn good_config_gets_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.kafka.group_id, "landfall-orders");
    assert_eq!(c.flush.max_file_bytes, 128 * 1024 * 1024);
    assert_eq!(c.parquet.compression, Compression::Zstd(1));
    assert_eq!(
        c.errors.dead_letter_url.as_str(),
        "s3://lake/_landfall/_dead_letter"
    );
    assert!(matches!(c.format, FormatConfig::JsonDeclared(ref f) if f.len() == 3));
}

#[test]
fn unknown_key_names_the_line() {
    let text = GOOD
        .replace("[flush]", "")
        .replace("[store]\n", "[store]\nbucket_name = \"x\"\n");
    let err = parse(&text).unwrap_err();
    let p = &err.0[0];
    assert!(p.message.contains("unknown field `bucket_name`"), "{p}");
    assert_eq!(p.line, Some(line_with(&text, "bucket_name")));
}

#[test]
fn every_semantic_problem_is_reported() {
    let text = GOOD
        .replace("\"s3://lake/raw\"", "\"ftp://lake/raw\"")
        .replace(
            "[partitioning]\nevent_time_field = \"ts\"",
            "[partitioning]\nevent_time_field = \"id\"\ntimezone = \"Mars/Base\"",
        )
        + "\n[flush]\nmax_records = 0\n";
    let err = parse(&text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "partitioning.timezone",
            "partitioning.event_time_field",
            "flush.max_records",
            "store.url"
        ],
        "{err}"
    );
    let store = err.0.iter().find(|p| p.key == "store.url").unwrap();
    assert_eq!(store.line, Some(line_with(&text, "url = ")));
    assert!(store.to_string().starts_with("orders.toml:"), "{store}");
}

#[test]
fn env_substitution_and_missing_variables() {
    let text = GOOD.replace(
        "[store]\n",
        "[store]\noptions = { secret_access_key = \"${PASSWORD}\", token = \"${NOPE}\" }\n",
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].message.contains("`NOPE` is not set"));
    let ok = parse(&text.replace(", token = \"${NOPE}\"", "")).unwrap();
    assert_eq!(ok.store.options["secret_access_key"], "s3cret");
    let p = &err.0[0];
    assert_eq!(p.key, "store.options.token");
    assert_eq!(p.line, Some(line_with(&text, "${NOPE}")));
    // `$${` is a literal `${`, and comments are not substituted.
    let escaped = format!("# uses ${{UNSET}}\n{}", text.replace("${NOPE}", "$${HOME}"));
    let ok = parse(&escaped).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.store.options["token"], "${HOME}");
}

/// 1-based line of the first line of `text` containing `needle` (the test's oracle).
fn line_with(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn lines_point_at_keys_in_inline_tables_arrays_and_dotted_keys() {
    let text = GOOD
        .replace(
            "bootstrap_servers = \"127.0.0.1:9092\"",
            "bootstrap_servers = \"127.0.0.1:9092\"\noptions = {\n  \"client.id\" = \"x\",\n  \"group.id\" = \"mine\" }",
        )
        .replace("type = \"decimal(18,2)\"", "type = \"decimal(99,2)\"")
        .replace("[store]\nurl = \"s3://lake/raw\"\n", "")
        // A dotted key at the root, before the first table header.
        .replace(
            "topics = [\"orders\"]\n",
            "topics = [\"orders\"]\nstore.url = \"ftp://lake/raw\"\n",
        );
    let err = parse(&text).unwrap_err();
    let line = |key: &str| {
        err.0
            .iter()
            .find(|p| p.key.starts_with(key))
            .unwrap_or_else(|| panic!("no problem for {key}: {err}"))
            .line
    };
    assert_eq!(
        line("kafka.options"),
        Some(line_with(&text, "\"group.id\""))
    );
    assert_eq!(
        line("format.fields"),
        Some(line_with(&text, "decimal(99,2)"))
    );
    assert_eq!(line("store.url"), Some(line_with(&text, "store.url =")));
}

#[test]
fn env_values_arrive_byte_exact() {
    let text = GOOD.replace(
        "bootstrap_servers = \"127.0.0.1:9092\"",
        "bootstrap_servers = \"127.0.0.1:9092\"\noptions = { \"sasl.password\" = \"${TRICKY}\" }",
    )
    .replace(
        "[store]\n",
        "[store]\noptions = { secret_access_key = '${TRICKY}', aws_session_token = \"\"\"x${TRICKY}\"\"\" }\n",
    );
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.kafka.options["sasl.password"], TRICKY);
    assert_eq!(c.store.options["secret_access_key"], TRICKY);
    assert_eq!(c.store.options["aws_session_token"], format!("x{TRICKY}"));
}

fn with_kafka_options(options: &str) -> String {
    GOOD.replace(
        "bootstrap_servers = \"127.0.0.1:9092\"",
        &format!("bootstrap_servers = \"127.0.0.1:9092\"\noptions = {{ {options} }}"),
    )
}

#[test]
fn kafka_options_cannot_change_what_is_read() {
    for key in [
        "group.id",
        "bootstrap.servers",
        "metadata.broker.list",
        "enable.auto.commit",
        "auto.commit.enable",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "enable.partition.eof",
        "partition.assignment.strategy",
        "session.timeout.ms",
    ] {
        let text = with_kafka_options(&format!("\"{key}\" = \"x\""));
        let err = parse(&text).unwrap_err();
        assert_eq!(err.0.len(), 1, "{key}: {err}");
        let p = &err.0[0];
        assert_eq!(p.key, format!("kafka.options.{key}"));
        assert_eq!(p.line, Some(line_with(&text, key)), "{p}");
    }

    let text = with_kafka_options("\"isolation.level\" = \"read_uncommitted\"");
    let err = parse(&text).unwrap_err();
    let shown = err.0[0].to_string();
    let line = line_with(&text, "isolation.level");
    assert!(
        shown.starts_with(&format!(
            "orders.toml:{line}: `kafka.options.isolation.level`"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("read_committed") && shown.contains("aborted"),
        "{shown}"
    );

    // Saying what Landfall does anyway is allowed; tuning the rest is too.
    let ok = with_kafka_options(
        "\"isolation.level\" = \"read_committed\", \"client.id\" = \"me\", \"fetch.wait.max.ms\" = \"10\"",
    );
    parse(&ok).unwrap_or_else(|e| panic!("{e}"));
}

/// Secret-looking option keys, each with a value that must never print.
const SECRETS: [(&str, &str, &str); 11] = [
    ("kafka", "sasl.password", "kafka-sasl-pw"),
    ("kafka", "ssl.key.password", "kafka-key-pw"),
    ("kafka", "ssl.keystore.password", "kafka-store-pw"),
    (
        "kafka",
        "sasl.oauthbearer.client.secret",
        "kafka-oauth-secret",
    ),
    ("store", "aws_secret_access_key", "aws-secret-key"),
    ("store", "aws_session_token", "aws-session-token"),
    (
        "store",
        "google_service_account_key",
        "{\"private_key\": \"gsa-key\"}",
    ),
    ("marker", "secret_access_key", "marker-secret-key"),
    ("marker", "session_token", "marker-session-token"),
    ("marker", "service_account_key", "marker-sa-key"),
    ("marker", "my_credential", "${PASSWORD}"),
];

fn with_secrets(kafka_extra: &str) -> String {
    let table = |section: &str| {
        SECRETS
            .iter()
            .filter(|(s, _, _)| *s == section)
            .map(|(_, k, v)| format!("{k:?} = {:?}, ", v))
            .collect::<String>()
    };
    GOOD.replace(
        "bootstrap_servers = \"127.0.0.1:9092\"",
        &format!(
            "bootstrap_servers = \"127.0.0.1:9092\"\noptions = {{ {}{kafka_extra} }}",
            table("kafka")
        ),
    )
    .replace(
        "[store]\n",
        &format!(
            "[store]\noptions = {{ {}aws_region = \"eu-west-1\" }}\n",
            table("store")
        ),
    )
    .replace(
        "prefix = \"s3://lake/_landfall\"",
        &format!(
            "prefix = \"s3://lake/_landfall\"\noptions = {{ {} }}",
            table("marker").trim_end_matches(", ")
        ),
    )
}

fn assert_no_secret(shown: &str) {
    for (_, key, value) in SECRETS {
        let value = if value == "${PASSWORD}" {
            "s3cret"
        } else {
            value
        };
        assert!(!shown.contains(value), "`{key}` printed: {shown}");
        assert!(!shown.contains("gsa-key"), "{shown}");
    }
}

#[test]
fn secrets_never_print() {
    let c = parse(&with_secrets("")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.kafka.options["sasl.password"], "kafka-sasl-pw");
    let shown = format!("{c:?} {:?} {:?} {:?}", c.kafka, c.store, c.marker);
    assert_no_secret(&shown);
    assert!(
        shown.contains("eu-west-1"),
        "ordinary options still show: {shown}"
    );

    // Semantic problems in a file full of secrets.
    let bad = with_secrets("\"isolation.level\" = \"read_uncommitted\"")
        .replace("url = \"s3://lake/raw\"", "url = \"ftp://lake/raw\"");
    let err = parse(&bad).unwrap_err();
    assert!(err.0.len() >= 2, "{err}");
    assert_no_secret(&format!("{err} {err:?}"));

    // A secret of the wrong type: the parser's message would quote it.
    let typed = with_secrets("").replace("\"kafka-sasl-pw\"", "12345678");
    let err = parse(&typed).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("12345678"), "{shown}");
}

#[test]
fn notify_defaults_to_the_kafka_cluster_and_its_security_settings() {
    let text = GOOD.replace(
        "bootstrap_servers = \"127.0.0.1:9092\"\n",
        "bootstrap_servers = \"127.0.0.1:9092\"\noptions = { \"security.protocol\" = \"SASL_SSL\", \"sasl.password\" = \"${PASSWORD}\", \"fetch.wait.max.ms\" = \"50\" }\n",
    ) + "\n[notify]\nkafka_topic = \"landfall.batches\"\noptions = { \"linger.ms\" = \"20\" }\n";
    let c = parse(&text).unwrap();
    let n = c.notify.as_ref().unwrap();
    assert_eq!(n.kafka_topic, "landfall.batches");
    assert_eq!(n.bootstrap_servers, "127.0.0.1:9092");
    // Connection and security options are inherited, consumer options are not.
    assert_eq!(
        n.options.keys().map(String::as_str).collect::<Vec<_>>(),
        ["linger.ms", "sasl.password", "security.protocol"]
    );
    assert!(!format!("{n:?}").contains("s3cret"), "{n:?}");
    // No section: no notifications; windows off by default.
    let c = parse(GOOD).unwrap();
    assert!(c.notify.is_none());
    assert_eq!(
        c.windows,
        WindowsConfig {
            enabled: false,
            allowed_lateness_ms: 600_000,
            late_records: LateRecords::LateArea,
            idle_after_ms: 60_000,
        }
    );
}

#[test]
fn notify_on_another_cluster_inherits_nothing() {
    let text = GOOD.replace(
        "bootstrap_servers = \"127.0.0.1:9092\"\n",
        "bootstrap_servers = \"127.0.0.1:9092\"\noptions = { \"security.protocol\" = \"SSL\" }\n",
    ) + "\n[notify]\nkafka_topic = \"n\"\nbootstrap_servers = \"other:9092\"\n";
    let n = parse(&text).unwrap().notify.unwrap();
    assert_eq!(n.bootstrap_servers, "other:9092");
    assert!(n.options.is_empty(), "{:?}", n.options);
}

#[test]
fn late_records_dead_letter_is_accepted() {
    let cfg = parse(
        &(GOOD.to_string() + "\n[windows]\nenabled = true\nlate_records = \"dead_letter\"\n"),
    )
    .unwrap();
    assert_eq!(cfg.windows.late_records, LateRecords::DeadLetter);
}

#[test]
fn bad_notify_and_windows_keys_are_each_reported() {
    let text = GOOD.to_string()
        + "\n[notify]\nkafka_topic = \"bad topic!\"\nbootstrap_servers = \" \"\noptions = { \"enable.idempotence\" = \"false\" }\n\
           \n[windows]\nenabled = true\nlate_records = \"drop\"\nallowed_lateness_ms = 999999999999\n";
    let err = parse(&text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "notify.kafka_topic",
            "notify.bootstrap_servers",
            "notify.options.enable.idempotence",
            "windows.late_records",
            "windows.allowed_lateness_ms"
        ],
        "{err}"
    );
    assert!(err.0.iter().all(|p| p.line.is_some()), "{err}");
}
