//! `[kafka.security]` and `store.sse*`: TOML in, librdkafka properties / object_store options
//! or problems (with file and line) out; no secret in any of it.

use std::path::Path;

use super::*;

const BASE: &str = r#"
name = "orders"
topics = ["orders"]

[kafka]
bootstrap_servers = "broker:9093"
options = { "fetch.wait.max.ms" = "50" }

[store]
url = "s3://lake/raw"

[marker]
prefix = "s3://lake/_landfall"
"#;

const ENV_PASSWORD: &str = "env-pa$$word\"1";
const FILE_PASSWORD: &str = "file-pw-7f3a";
const CLIENT_SECRET: &str = "oidc-client-secret-91";

fn parse(text: &str) -> Result<SinkConfig, ConfigErrors> {
    SinkConfig::from_toml(text, Path::new("orders.toml"), &|name| match name {
        "KAFKA_PASSWORD" => Some(ENV_PASSWORD.into()),
        "OIDC_SECRET" => Some(CLIENT_SECRET.into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    })
}

/// A directory with the files a Kubernetes Secret mount would hold.
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    fn new() -> Mounted {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("ca.crt", "-----BEGIN CERTIFICATE-----\n"),
            ("tls.crt", "-----BEGIN CERTIFICATE-----\n"),
            ("tls.key", "-----BEGIN PRIVATE KEY-----\n"),
            // Secret tooling and `echo` add a trailing newline; it is not part of the secret.
            ("password", &format!("{FILE_PASSWORD}\n")),
            ("empty", ""),
        ] {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        Mounted { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn with_security(section: &str) -> String {
    format!("{BASE}\n[kafka.security]\n{section}\n")
}

fn props(c: &SinkConfig) -> Vec<(String, String)> {
    c.kafka
        .security
        .as_ref()
        .expect("security section")
        .librdkafka_properties()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn scram_over_mutual_tls_with_secret_files_maps_to_librdkafka() {
    let m = Mounted::new();
    let text = with_security(&format!(
        r#"protocol = "sasl_ssl"
ca_file = "{ca}"
cert_file = "{crt}"
key_file = "{key}"
mechanism = "SCRAM-SHA-512"
username = "landfall"
password_file = "{pw}"
"#,
        ca = m.path("ca.crt"),
        crt = m.path("tls.crt"),
        key = m.path("tls.key"),
        pw = m.path("password"),
    ));
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        props(&c),
        pairs(&[
            ("security.protocol", "sasl_ssl"),
            ("ssl.ca.location", &m.path("ca.crt")),
            ("ssl.certificate.location", &m.path("tls.crt")),
            ("ssl.key.location", &m.path("tls.key")),
            ("ssl.endpoint.identification.algorithm", "https"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "landfall"),
            ("sasl.password", FILE_PASSWORD),
        ])
    );
    let shown = format!("{c:?}");
    assert!(!shown.contains(FILE_PASSWORD), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn plain_and_scram_256_from_env_and_hostname_check_off() {
    let m = Mounted::new();
    let c = parse(&with_security(&format!(
        "protocol = \"SASL_SSL\"\nca_file = \"{}\"\nverify_hostname = false\nmechanism = \"scram-sha-256\"\nusername = \"u\"\npassword = \"${{KAFKA_PASSWORD}}\"\n",
        m.path("ca.crt")
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        props(&c),
        pairs(&[
            ("security.protocol", "sasl_ssl"),
            ("ssl.ca.location", &m.path("ca.crt")),
            ("ssl.endpoint.identification.algorithm", "none"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "u"),
            ("sasl.password", ENV_PASSWORD),
        ])
    );
    let c = parse(&with_security(
        "protocol = \"sasl_plaintext\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"${KAFKA_PASSWORD}\"\n",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        props(&c),
        pairs(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", ENV_PASSWORD),
        ])
    );
    assert!(!format!("{c:?}").contains(ENV_PASSWORD));
}

#[test]
fn oauthbearer_uses_librdkafkas_oidc_client_credentials() {
    let c = parse(&with_security(
        r#"protocol = "sasl_ssl"
mechanism = "OAUTHBEARER"
token_endpoint_url = "https://idp.example.com/oauth2/token"
client_id = "landfall"
client_secret = "${OIDC_SECRET}"
scope = "kafka"
"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        props(&c),
        pairs(&[
            ("security.protocol", "sasl_ssl"),
            ("ssl.endpoint.identification.algorithm", "https"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "oidc"),
            (
                "sasl.oauthbearer.token.endpoint.url",
                "https://idp.example.com/oauth2/token"
            ),
            ("sasl.oauthbearer.client.id", "landfall"),
            ("sasl.oauthbearer.client.secret", CLIENT_SECRET),
            ("sasl.oauthbearer.scope", "kafka"),
        ])
    );
    assert!(!format!("{c:?}").contains(CLIENT_SECRET));
}

fn problems(text: &str) -> Vec<(String, Option<usize>, String)> {
    let err = parse(text).expect_err("config should be refused");
    let shown = format!("{err} {err:?}");
    for secret in [ENV_PASSWORD, FILE_PASSWORD, CLIENT_SECRET] {
        assert!(!shown.contains(secret), "secret printed: {shown}");
    }
    err.0
        .into_iter()
        .map(|p| (p.key, p.line, p.message))
        .collect()
}

fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[test]
fn missing_pieces_per_mechanism_are_named_with_their_line() {
    let text = with_security("protocol = \"sasl_ssl\"\nmechanism = \"SCRAM-SHA-512\"\n");
    let got = problems(&text);
    let keys: Vec<&str> = got.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        keys,
        ["kafka.security.username", "kafka.security.password"],
        "{got:?}"
    );
    // An absent key points at its section header.
    assert_eq!(got[0].1, line_of(&text, "[kafka.security]"));
    assert!(got[1].2.contains("password_file"), "{got:?}");

    let text = with_security(
        "protocol = \"sasl_ssl\"\nmechanism = \"OAUTHBEARER\"\nusername = \"u\"\nclient_id = \"c\"\n",
    );
    let got = problems(&text);
    let keys: Vec<&str> = got.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "kafka.security.username",
            "kafka.security.token_endpoint_url",
            "kafka.security.client_secret"
        ],
        "{got:?}"
    );
    assert_eq!(got[0].1, line_of(&text, "username = "));
    assert!(got[0]
        .2
        .contains("does not apply to mechanism `OAUTHBEARER`"));

    let got = problems(&with_security("protocol = \"sasl_plaintext\"\n"));
    assert_eq!(got[0].0, "kafka.security.mechanism");
    let got = problems(&with_security(
        "protocol = \"sasl_plaintext\"\nmechanism = \"GSSAPI\"\n",
    ));
    assert_eq!(got[0].2, "unknown mechanism `GSSAPI`");
    let got = problems(&with_security("protocol = \"tls\"\n"));
    assert_eq!(got[0].2, "unknown protocol `tls`");
}

#[test]
fn settings_the_protocol_does_not_use_are_refused() {
    let m = Mounted::new();
    let text = with_security(&format!(
        "protocol = \"sasl_plaintext\"\nca_file = \"{}\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"${{KAFKA_PASSWORD}}\"\n",
        m.path("ca.crt")
    ));
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "kafka.security.ca_file");
    assert_eq!(got[0].1, line_of(&text, "ca_file"));
    assert!(got[0].2.contains("does not use TLS"), "{got:?}");

    let got = problems(&with_security("protocol = \"ssl\"\nusername = \"u\"\n"));
    assert_eq!(got[0].0, "kafka.security.username");
    assert!(got[0].2.contains("does not use SASL"), "{got:?}");
}

#[test]
fn unreadable_files_and_double_secrets_are_refused_at_validate_time() {
    let m = Mounted::new();
    let text = with_security(&format!(
        r#"protocol = "sasl_ssl"
ca_file = "/no/such/ca.crt"
cert_file = "{crt}"
mechanism = "PLAIN"
username = "u"
password = "${{KAFKA_PASSWORD}}"
password_file = "{pw}"
"#,
        crt = m.path("tls.crt"),
        pw = m.path("password"),
    ));
    let got = problems(&text);
    let keys: Vec<&str> = got.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "kafka.security.ca_file",
            "kafka.security.cert_file",
            "kafka.security.password_file"
        ],
        "{got:?}"
    );
    assert_eq!(got[0].1, line_of(&text, "ca_file"));
    assert!(
        got[0]
            .2
            .starts_with("cannot read `/no/such/ca.crt`: No such file"),
        "{got:?}"
    );
    assert!(got[1].2.contains("without `key_file`"), "{got:?}");
    assert!(got[2].2.contains("together with `password`"), "{got:?}");

    let text = with_security(&format!(
        "protocol = \"sasl_plaintext\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword_file = \"{}\"\n",
        m.path("empty")
    ));
    let got = problems(&text);
    assert_eq!(got[0].0, "kafka.security.password_file");
    assert!(got[0].2.ends_with("is empty"), "{got:?}");

    // An empty environment variable is an empty password: refused, not sent.
    let got = problems(&with_security(
        "protocol = \"sasl_plaintext\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"${EMPTY}\"\n",
    ));
    assert_eq!(got[0].0, "kafka.security.password");
}

#[test]
fn passthrough_options_that_conflict_with_the_section_are_refused() {
    let text = with_security(
        "protocol = \"sasl_plaintext\"\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"${KAFKA_PASSWORD}\"\n",
    )
    .replace(
        "options = { \"fetch.wait.max.ms\" = \"50\" }",
        "options = { \"fetch.wait.max.ms\" = \"50\", \"security.protocol\" = \"plaintext\", \"sasl.password\" = \"${KAFKA_PASSWORD}\" }",
    );
    let got = problems(&text);
    let keys: Vec<&str> = got.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "kafka.options.sasl.password",
            "kafka.options.security.protocol"
        ],
        "{got:?}"
    );
    assert!(got[0].2.contains("conflicts with [kafka.security]"));
    assert_eq!(got[0].1, line_of(&text, "options = {"));

    // Without the section, passthrough keeps working as before.
    let text = BASE.replace(
        "options = { \"fetch.wait.max.ms\" = \"50\" }",
        "options = { \"security.protocol\" = \"sasl_plaintext\" }",
    );
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.kafka.security.is_none());
    assert_eq!(c.kafka.options["security.protocol"], "sasl_plaintext");
}

fn with_store(keys: &str) -> String {
    BASE.replace(
        "url = \"s3://lake/raw\"\n",
        &format!("url = \"s3://lake/raw\"\n{keys}\n"),
    )
}

#[test]
fn s3_encryption_maps_to_object_store_options() {
    let c = parse(&with_store(
        "sse = \"aws:kms\"\nsse_kms_key_id = \"arn:aws:kms:eu-west-1:111122223333:key/k1\"\nsse_bucket_key = true",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let opts = c.store.encryption.as_ref().unwrap().object_store_options();
    assert_eq!(
        opts,
        [
            ("aws_server_side_encryption", "aws:kms".to_string()),
            (
                "aws_sse_kms_key_id",
                "arn:aws:kms:eu-west-1:111122223333:key/k1".to_string()
            ),
            ("aws_sse_bucket_key_enabled", "true".to_string()),
        ]
    );
    let c = parse(&with_store("sse = \"AES256\"")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.store.encryption.unwrap().object_store_options(),
        [("aws_server_side_encryption", "AES256".to_string())]
    );
    assert!(parse(BASE).unwrap().store.encryption.is_none());
}

#[test]
fn s3_encryption_mistakes_are_named() {
    let text = with_store("sse_kms_key_id = \"k1\"");
    let got = problems(&text);
    assert_eq!(got[0].0, "store.sse_kms_key_id");
    assert_eq!(got[0].1, line_of(&text, "sse_kms_key_id"));

    let got = problems(&with_store("sse = \"AES256\"\nsse_kms_key_id = \"k1\""));
    assert_eq!(got[0].2, "applies to SSE-KMS only, not `AES256`");

    let got = problems(&with_store("sse = \"kms\""));
    assert_eq!(got[0].2, "unknown server-side encryption `kms`");

    let text = BASE
        .replace("s3://lake/raw", "gs://lake/raw")
        .replace("s3://lake/_landfall", "gs://lake/_landfall")
        .replace(
            "url = \"gs://lake/raw\"\n",
            "url = \"gs://lake/raw\"\nsse = \"aws:kms\"\n",
        );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0[0].key, "store.sse");
    assert!(
        err.0[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("default Cloud KMS key"),
        "{err}"
    );

    let text =
        with_store("sse = \"aws:kms\"\noptions = { aws_server_side_encryption = \"AES256\" }");
    let got = problems(&text);
    assert_eq!(got[0].0, "store.options.aws_server_side_encryption");
    assert_eq!(got[0].2, "conflicts with store.sse");
}

/// `[notify]` on the same cluster produces with the consumer's `[kafka.security]`: without it a
/// sink on a secured cluster could consume but never notify.
#[test]
fn notify_on_the_same_cluster_inherits_kafka_security() {
    let m = Mounted::new();
    let text = with_security(&format!(
        "protocol = \"sasl_ssl\"\nca_file = \"{ca}\"\nmechanism = \"SCRAM-SHA-256\"\nusername = \"landfall\"\npassword_file = \"{pw}\"\n",
        ca = m.path("ca.crt"),
        pw = m.path("password"),
    )) + "\n[notify]\nkafka_topic = \"landfall.batches\"\n";
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let n = c.notify.as_ref().unwrap();
    for (k, v) in c.kafka.security.as_ref().unwrap().librdkafka_properties() {
        assert_eq!(n.options.get(k), Some(&v), "{k}");
    }
    assert_eq!(n.options["sasl.password"], FILE_PASSWORD);
    assert!(!format!("{n:?}").contains(FILE_PASSWORD));
}
