//! Kafka security end to end against the real broker (tansu 0.6.0): records land over TLS with
//! SASL/SCRAM-SHA-512 configured through `[kafka.security]`, and a wrong password ends
//! `landfall run` with one clear error line that does not contain the password.
//!
//! tansu 0.6.0 authenticates SCRAM (users created with `tansu user create`), but its
//! `--cert`/`--key` are parsed and never used: the broker builds its TLS acceptor and serves the
//! plain socket (`let _acceptor = ...` in tansu-broker 0.6.0 `broker.rs`). So TLS here is
//! terminated by a listener in this test (rustls, a CA and certificate made with rcgen), in
//! front of tansu, the way a TLS sidecar or proxy fronts a broker; tansu advertises that
//! listener, so every connection librdkafka makes — bootstrap, group coordinator, partition
//! leader — is TLS, checked against the test CA with hostname verification on.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use landfall_testkit::{free_port, json_record, produce, tansu_bin, SinkProcess};
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use tokio_rustls::rustls;

const USER: &str = "landfall-sink";
const PASSWORD: &str = "Sc7am-p4ss:word";
const WRONG_PASSWORD: &str = "not-the-Pa55word";

/// A CA and a certificate for `localhost` / 127.0.0.1 signed by it, as PEM files in `dir`.
struct Pki {
    ca_file: String,
    server: Arc<rustls::ServerConfig>,
}

fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "landfall test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("broker key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("broker certificate");
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server TLS config");
    Pki {
        ca_file: ca_file.display().to_string(),
        server: Arc::new(server),
    }
}

/// TLS on `tls_port`, plain TCP to tansu on `broker_port`; runs until the runtime ends.
async fn tls_listener(tls_port: u16, broker_port: u16, server: Arc<rustls::ServerConfig>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", tls_port))
        .await
        .expect("bind the TLS port");
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that fails the handshake just goes away.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) =
                    tokio::net::TcpStream::connect(("127.0.0.1", broker_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

/// tansu with `--authentication`, a SCRAM-SHA-512 user and a topic, advertising the TLS port.
struct SecureBroker {
    /// The broker's storage and log; removed when the broker is dropped.
    _dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_tansu(dir: &Path, broker_port: u16, advertised: &str, auth: bool) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .expect("log");
    let mut cmd = Command::new(tansu_bin());
    cmd.args([
        "broker",
        "--cluster-id",
        "landfall-security",
        "--storage-engine",
        "sqlite://tansu.db",
        "--listener-url",
        &format!("tcp://127.0.0.1:{broker_port}"),
        "--advertised-listener-url",
        advertised,
        "--silent",
    ])
    .current_dir(dir)
    .env("RUST_LOG", "warn")
    .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
    .stdout(log.try_clone().expect("dup"))
    .stderr(log);
    if auth {
        cmd.arg("--authentication");
    }
    let mut child = cmd
        .spawn()
        .expect("start tansu (run scripts/ensure-tools.sh)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", broker_port)).is_err() {
        assert!(
            child.try_wait().expect("tansu status").is_none(),
            "tansu exited: {}",
            std::fs::read_to_string(dir.join("tansu.log")).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "tansu did not open its port");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn tansu_cli(args: &[&str]) {
    let out = Command::new(tansu_bin())
        .args(args)
        .output()
        .expect("run tansu");
    assert!(
        out.status.success(),
        "tansu {:?}: {}",
        args.first(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SecureBroker {
    /// Users are created over the Kafka protocol (AlterUserScramCredentials), which an
    /// authenticating tansu refuses to an unauthenticated client: create them (and the topic)
    /// on an open broker, then restart it with `--authentication` on the same storage.
    fn start(broker_port: u16, tls_port: u16, topic: &str, partitions: i32) -> SecureBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = format!("tcp://127.0.0.1:{broker_port}");
        let mut child = spawn_tansu(dir.path(), broker_port, &open, false);
        tansu_cli(&[
            "user",
            "create",
            "--broker",
            &open,
            "--mechanism",
            "scram512",
            USER,
            PASSWORD,
        ]);
        tansu_cli(&[
            "topic",
            "create",
            "--broker",
            &open,
            "--partitions",
            &partitions.to_string(),
            topic,
        ]);
        let _ = child.kill();
        let _ = child.wait();
        let child = spawn_tansu(
            dir.path(),
            broker_port,
            &format!("tcp://localhost:{tls_port}"),
            true,
        );
        SecureBroker { _dir: dir, child }
    }
}

/// The `[kafka.security]` section the sink and the test's producer use.
fn security_section(ca_file: &str, password_file: &str) -> String {
    format!(
        r#"
[kafka.security]
protocol = "sasl_ssl"
ca_file = "{ca_file}"
mechanism = "SCRAM-SHA-512"
username = "{USER}"
password_file = "{password_file}"
"#
    )
}

fn secure_producer(bootstrap: &str, ca_file: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("security.protocol", "sasl_ssl")
        .set("ssl.ca.location", ca_file)
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", USER)
        .set("sasl.password", PASSWORD)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

/// The sink config for this test, with the security section placed under `[kafka]` and
/// `broker.address.family=v4` (the TLS listener binds 127.0.0.1; `localhost` may resolve to ::1
/// first).
fn secure_sink_toml(
    name: &str,
    topic: &str,
    bootstrap: &str,
    t: &Target,
    security: &str,
) -> String {
    let text = sink_toml(
        name,
        topic,
        bootstrap,
        t,
        "max_records = 100\nmax_age_ms = 500",
        "",
    );
    text.replace(
        "session_timeout_ms = 6000\n",
        &format!(
            "session_timeout_ms = 6000\noptions = {{ \"broker.address.family\" = \"v4\" }}\n{security}\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_land_over_tls_with_scram_sha_512() {
    let dir = test_dir();
    let pki = make_pki(dir.path());
    let password_file = dir.path().join("kafka-password");
    // As a Kubernetes Secret mount holds it: the value and a trailing newline.
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let (broker_port, tls_port) = (free_port(), free_port());
    let topic = unique("secure");
    let _broker = SecureBroker::start(broker_port, tls_port, &topic, 2);
    tls_listener(tls_port, broker_port, pki.server.clone()).await;
    let bootstrap = format!("localhost:{tls_port}");

    let produced = produce(
        &secure_producer(&bootstrap, &pki.ca_file),
        &topic,
        2,
        (0..500).map(|i| (i, json_record(i))),
    )
    .await;

    let t = Target::local(dir.path());
    let text = secure_sink_toml(
        "secure",
        &topic,
        &bootstrap,
        &t,
        &security_section(&pki.ca_file, &password_file.display().to_string()),
    );
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    // The real binary, logging at debug, so its log and /metrics can be searched for the secret.
    let config = landfall_testkit::write_config(dir.path(), "secure", &text);
    let log = dir.path().join("secure.log");
    let sink = SinkProcess::start(
        &landfall_bin(),
        &config,
        &[("LANDFALL_LOG", "debug")],
        log.clone(),
    );
    let ms = await_landed(&st.markers, "secure", &produced, Duration::from_secs(90)).await;
    let metrics = scrape(sink.metrics_port);
    assert!(
        metrics.contains("landfall_"),
        "a /metrics scrape: {metrics}"
    );
    assert_eq!(
        sink.terminate(Duration::from_secs(60)),
        Some(0),
        "clean stop"
    );

    let rows = landfall_testkit::landed_offsets(&st.data, &ms).await;
    landfall_testkit::assert_exactly_once(&topic, &produced, &ms, &rows);
    eprintln!(
        "landed over TLS + SCRAM-SHA-512: {} rows in {} batches (produced {:?})",
        rows.len(),
        ms.len(),
        produced
    );
    // No trace of the password: log (debug), metrics, every object written (data, markers).
    let logged = std::fs::read_to_string(&log).expect("sink log");
    assert!(!logged.contains(PASSWORD), "the password is in the log");
    assert!(!metrics.contains(PASSWORD), "the password is in /metrics");
    let mut files = 0;
    for root in ["data", "markers"] {
        for f in walk(&dir.path().join(root)) {
            files += 1;
            let bytes = std::fs::read(&f).expect("read");
            assert!(
                !bytes
                    .windows(PASSWORD.len())
                    .any(|w| w == PASSWORD.as_bytes()),
                "the password is in {}",
                f.display()
            );
        }
    }
    eprintln!(
        "password absent from {} log bytes, {} metrics bytes and {files} stored files",
        logged.len(),
        metrics.len()
    );
    assert_eq!(rows.len(), 500);
}

/// The landfall binary under test: `LANDFALL_BIN` (as the Python tests take it) if set, else the
/// one cargo built for this test crate.
fn landfall_bin() -> std::path::PathBuf {
    std::env::var_os("LANDFALL_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_landfall").into())
}

/// The body of one GET /metrics.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Run `landfall run` on `text` with `KAFKA_PASSWORD=password` until it exits (at most 60 s);
/// its exit status and everything it logged.
async fn run_until_exit(
    dir: &Path,
    name: &str,
    text: &str,
    password: &str,
) -> (std::process::ExitStatus, String) {
    let config = landfall_testkit::write_config(dir, name, text);
    let log = dir.join(format!("{name}.log"));
    let mut sink = SinkProcess::start(
        &landfall_bin(),
        &config,
        &[
            ("KAFKA_PASSWORD", password),
            // Every log line librdkafka has to say, so a leak anywhere would show.
            ("LANDFALL_LOG", "debug"),
        ],
        log.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = sink.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "landfall kept running: {}",
            sink.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    (status, std::fs::read_to_string(&log).expect("sink log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_scram_password_is_one_clear_start_up_error_without_the_password() {
    let dir = test_dir();
    let pki = make_pki(dir.path());
    let (broker_port, tls_port) = (free_port(), free_port());
    let topic = unique("secure");
    let _broker = SecureBroker::start(broker_port, tls_port, &topic, 1);
    tls_listener(tls_port, broker_port, pki.server.clone()).await;
    let bootstrap = format!("localhost:{tls_port}");

    let t = Target::local(dir.path());
    let security = security_section(&pki.ca_file, "unused").replace(
        "password_file = \"unused\"",
        "password = \"${KAFKA_PASSWORD}\"",
    );
    let text = secure_sink_toml("secure-bad", &topic, &bootstrap, &t, &security);
    let (status, out) = run_until_exit(dir.path(), "secure-bad", &text, WRONG_PASSWORD).await;
    assert!(!status.success(), "exit {status}: {out}");
    assert!(
        !out.contains(WRONG_PASSWORD),
        "the password reached the output:\n{out}"
    );
    let last = out.lines().last().unwrap_or_default();
    eprintln!("exit {status}; last line: {last}");
    assert!(
        last.contains("secure-bad") && last.to_lowercase().contains("authentication"),
        "the last line should name the sink and the failed authentication: {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plaintext_listener_fails_start_up_naming_the_protocol() {
    let dir = test_dir();
    let pki = make_pki(dir.path());
    let broker = broker();
    let topic = unique("plain");
    broker.create_topic(&topic, 1);
    let t = Target::local(dir.path());
    let security = format!(
        "\n[kafka.security]\nprotocol = \"ssl\"\nca_file = \"{}\"\n",
        pki.ca_file
    );
    let text = secure_sink_toml("tls-bad", &topic, &broker.bootstrap(), &t, &security);
    let (status, out) = run_until_exit(dir.path(), "tls-bad", &text, "unused").await;
    assert!(!status.success(), "exit {status}: {out}");
    let last = out.lines().last().unwrap_or_default();
    eprintln!("exit {status}; last line: {last}");
    // tansu reads the TLS ClientHello as a Kafka frame and waits for the rest of it, so
    // librdkafka gets no handshake error, only a timeout: the message says what was spoken.
    assert!(
        last.contains("tls-bad") && last.contains("does the listener speak ssl?"),
        "the last line should name the sink and the protocol: {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_broker_certificate_is_a_clear_tls_error() {
    let dir = test_dir();
    let trusted = make_pki(&dir.path().join("trusted").tap_mkdir());
    let other = make_pki(&dir.path().join("other").tap_mkdir());
    let (broker_port, tls_port) = (free_port(), free_port());
    let topic = unique("secure");
    let _broker = SecureBroker::start(broker_port, tls_port, &topic, 1);
    // The listener presents a certificate of a CA the sink does not trust.
    tls_listener(tls_port, broker_port, other.server.clone()).await;
    let t = Target::local(dir.path());
    let security = security_section(&trusted.ca_file, "unused").replace(
        "password_file = \"unused\"",
        "password = \"${KAFKA_PASSWORD}\"",
    );
    let text = secure_sink_toml(
        "tls-untrusted",
        &topic,
        &format!("localhost:{tls_port}"),
        &t,
        &security,
    );
    let (status, out) = run_until_exit(dir.path(), "tls-untrusted", &text, PASSWORD).await;
    assert!(!status.success(), "exit {status}: {out}");
    assert!(!out.contains(PASSWORD), "the password reached the output");
    let last = out.lines().last().unwrap_or_default();
    eprintln!("exit {status}; last line: {last}");
    assert!(
        last.contains("tls-untrusted")
            && last.contains("TLS with Kafka")
            && last.contains("certificate verify failed"),
        "the last line should name the sink and the failed certificate check: {last}"
    );
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}

const CLIENT_SECRET: &str = "oidc-Client-s3cret";

/// A token endpoint that hands out an unsigned JWT for `sub=landfall` and keeps every request.
async fn token_endpoint() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            // Headers, then as many body bytes as Content-Length says.
            while let Ok(n) = socket.read(&mut buf[len..]).await {
                len += n;
                let text = String::from_utf8_lossy(&buf[..len]).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let body_len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if len >= end + 4 + body_len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..len]).to_string());
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            let jwt = format!(
                "{}.{}.c2ln",
                b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
                b64.encode(format!(
                    r#"{{"sub":"landfall","exp":{exp},"iat":{}}}"#,
                    exp - 3600
                ))
            );
            let body =
                format!(r#"{{"access_token":"{jwt}","token_type":"bearer","expires_in":3600}}"#);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (port, requests)
}

/// OAUTHBEARER as far as tansu 0.6.0 allows: librdkafka fetches a token from the OIDC
/// endpoint with the client credentials grant (checked here), then tansu refuses the mechanism
/// (it accepts only PLAIN and SCRAM), which ends start-up with one line that does not contain
/// the client secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_fetches_an_oidc_token_with_client_credentials() {
    use base64::Engine;
    let dir = test_dir();
    let pki = make_pki(dir.path());
    let (broker_port, tls_port) = (free_port(), free_port());
    let topic = unique("oidc");
    let _broker = SecureBroker::start(broker_port, tls_port, &topic, 1);
    tls_listener(tls_port, broker_port, pki.server.clone()).await;
    let (idp_port, requests) = token_endpoint().await;
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, CLIENT_SECRET).expect("secret file");
    let security = format!(
        r#"
[kafka.security]
protocol = "sasl_ssl"
ca_file = "{}"
mechanism = "OAUTHBEARER"
token_endpoint_url = "http://127.0.0.1:{idp_port}/oauth2/token"
client_id = "landfall"
client_secret_file = "{}"
scope = "kafka"
"#,
        pki.ca_file,
        secret_file.display()
    );
    let t = Target::local(dir.path());
    let text = secure_sink_toml(
        "oidc",
        &topic,
        &format!("localhost:{tls_port}"),
        &t,
        &security,
    );
    let (status, out) = run_until_exit(dir.path(), "oidc", &text, "unused").await;
    let seen = requests.lock().unwrap().clone();
    assert!(!seen.is_empty(), "no token request; sink output:\n{out}");
    let first = &seen[0];
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("landfall:{CLIENT_SECRET}"));
    assert!(first.starts_with("POST /oauth2/token "), "{first}");
    assert!(
        first.contains(&format!("Authorization: Basic {basic}")),
        "{first}"
    );
    assert!(
        first.ends_with("grant_type=client_credentials&scope=kafka"),
        "{first}"
    );
    assert!(
        !status.success(),
        "tansu 0.6.0 cannot accept OAUTHBEARER: {out}"
    );
    assert!(
        !out.contains(CLIENT_SECRET),
        "the client secret reached the output"
    );
    let last = out.lines().last().unwrap_or_default();
    eprintln!(
        "{} token request(s); exit {status}; last line: {last}",
        seen.len()
    );
    assert!(
        last.contains("sink `oidc`") && last.contains("check kafka.security: token_endpoint_url"),
        "{last}"
    );
}
