//! What the consumer is configured with: the settings the sink passes in, the librdkafka client
//! configuration built from them, and the timeouts that bound every blocking call the consumer
//! thread makes.
//!
//! # How the timeouts relate
//!
//! The thread is the only caller of `poll`, and librdkafka runs the rebalance callbacks inside
//! `poll`, so every wait below is time the member does not poll. Heartbeats go on meanwhile
//! (librdkafka sends them from its own thread), so the limit that matters for a wait inside a
//! callback is `max.poll.interval.ms` (librdkafka's default: 300 s), after which the member is
//! evicted; a revoke additionally holds up the whole group's rebalance.
//!
//! - [`ConsumerSettings::revoke_timeout`] (config `runtime.revoke_flush_timeout_ms`, default 5 s):
//!   the wait for the sink to land revoked partitions. The config check keeps it below
//!   `kafka.session_timeout_ms`; the sink itself gives up at 90 % of it.
//! - [`ConsumerSettings::assign_timeout`] (config `runtime.recovery_timeout_ms`, default 120 s,
//!   plus a margin the sink adds): the wait for the sink to say where new partitions start. The
//!   sink's recovery gives up at `recovery_timeout_ms`, below it, so the sink answers (if only
//!   with an error) before the thread gives up; the config check keeps `recovery_timeout_ms`
//!   below `max.poll.interval.ms`. Before that wait the callback looks up committed offsets and
//!   watermarks, each bounded by [`METADATA_TIMEOUT`].
//! - [`METADATA_TIMEOUT`] (10 s): one metadata, committed-offset or watermark request.
//! - [`SEEK_TIMEOUT`] (1 s): one seek; a refused seek is retried on the next loop, so this only
//!   bounds how long one loop may stall.
//! - [`LEAVE_GROUP_TIMEOUT`] (5 s): how long the thread keeps polling after unsubscribing so the
//!   final revoke is served. The sink waits longer than this for the thread to end
//!   (`CONSUMER_CLOSE_TIMEOUT` in `landfall-runtime`, 15 s).

use std::time::Duration;

use landfall_core::config::{KafkaConfig, TopicSelection};
use rdkafka::config::ClientConfig;

/// One metadata, committed-offset or watermark request.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// One seek request (retried every loop while refused).
pub const SEEK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the thread polls after unsubscribing, to serve the final revoke.
pub const LEAVE_GROUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the consumer thread of one sink is started with.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub kafka: KafkaConfig,
    pub topics: TopicSelection,
    pub client_id: String,
    /// How long the thread waits for the sink to land revoked partitions (see the module docs).
    pub revoke_timeout: Duration,
    /// How long the thread waits for the sink to say where new partitions start.
    pub assign_timeout: Duration,
    /// Records per channel message.
    pub batch_records: usize,
    /// Bytes librdkafka may hold in its queue of fetched records, and in one fetch response:
    /// `queued.max.messages.kbytes` and `fetch.max.bytes` (the sink's budget sets them aside,
    /// `landfall_core::budget::kafka_prefetch_bytes`).
    pub prefetch_bytes: u64,
}

/// `[kafka.security]`, then the passthrough options (validation refuses passthrough keys the
/// section manages, so the order only matters without the section).
fn security_and_options(c: &mut ClientConfig, kafka: &KafkaConfig) {
    if let Some(security) = &kafka.security {
        for (k, v) in security.librdkafka_properties() {
            c.set(k, v);
        }
    }
    for (k, v) in &kafka.options {
        c.set(k, v);
    }
}

/// The group consumer's librdkafka configuration. User options come last, so they win; the
/// config validation refuses the ones Landfall depends on.
pub(crate) fn client_config(s: &ConsumerSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.kafka.bootstrap_servers)
        .set("group.id", &s.kafka.group_id)
        .set("client.id", &s.client_id)
        // Records of aborted transactions must never land (librdkafka's default, said outright).
        .set("isolation.level", "read_committed")
        // Offsets are decided by the object store and committed by Landfall as hints.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The sink decides every start position from the store, so a position Kafka does not
        // hold must never be replaced silently: librdkafka reports it, the sink decides.
        .set("auto.offset.reset", "error")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", s.kafka.session_timeout_ms.to_string())
        // Bound what librdkafka prefetches, within the sink's byte budget: its queue and the
        // fetch response being received. At least 1 MiB, librdkafka's `message.max.bytes`.
        .set(
            "queued.max.messages.kbytes",
            (s.prefetch_bytes.max(1 << 20) / 1024).to_string(),
        )
        .set("fetch.max.bytes", s.prefetch_bytes.max(1 << 20).to_string())
        .set("fetch.wait.max.ms", "100");
    security_and_options(&mut c, &s.kafka);
    c
}

/// A group-less client for metadata and watermarks (`landfall verify`).
pub(crate) fn admin_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.bootstrap_servers);
    security_and_options(&mut c, kafka);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_core::config::StartFrom;

    fn settings(options: &[(&str, &str)]) -> ConsumerSettings {
        ConsumerSettings {
            kafka: KafkaConfig {
                bootstrap_servers: "k1:9092".into(),
                group_id: "g".into(),
                start_from: StartFrom::Earliest,
                session_timeout_ms: 10_000,
                options: options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                security: None,
            },
            topics: TopicSelection::Names(vec!["t".into()]),
            client_id: "landfall-s-w".into(),
            revoke_timeout: Duration::from_secs(5),
            assign_timeout: Duration::from_secs(60),
            batch_records: 10,
            prefetch_bytes: 16 << 20,
        }
    }

    #[test]
    fn offsets_are_landfalls_and_user_options_come_last() {
        let c = client_config(&settings(&[("fetch.wait.max.ms", "10")]));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("auto.offset.reset"), Some("error"));
        assert_eq!(c.get("isolation.level"), Some("read_committed"));
        assert_eq!(
            c.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(c.get("session.timeout.ms"), Some("10000"));
        assert_eq!(c.get("fetch.wait.max.ms"), Some("10"));
    }

    #[test]
    fn admin_client_has_no_group() {
        let s = settings(&[("security.protocol", "ssl")]);
        let c = admin_config(&s.kafka);
        assert_eq!(c.get("group.id"), None);
        assert_eq!(c.get("security.protocol"), Some("ssl"));
    }

    #[test]
    fn security_section_reaches_both_clients() {
        use landfall_core::config::{KafkaSecurity, SaslSettings, ScramHash, Secret};
        let mut s = settings(&[]);
        s.kafka.security = Some(KafkaSecurity {
            protocol: landfall_core::config::SecurityProtocol::SaslPlaintext,
            tls: None,
            sasl: Some(SaslSettings::Scram {
                hash: ScramHash::Sha256,
                username: "u".into(),
                password: Secret::new("pw"),
            }),
        });
        for c in [client_config(&s), admin_config(&s.kafka)] {
            assert_eq!(c.get("security.protocol"), Some("sasl_plaintext"));
            assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
            assert_eq!(c.get("sasl.username"), Some("u"));
            assert_eq!(c.get("sasl.password"), Some("pw"));
        }
    }

    /// librdkafka refuses `sasl.oauthbearer.method=oidc` when built without libcurl ("OAuth/OIDC
    /// depends on libcurl and OpenSSL which were not available at build time"); the workspace
    /// enables rdkafka's `curl` feature for it. Creating the client checks the whole property
    /// set without contacting anything.
    #[test]
    fn librdkafka_accepts_the_oidc_client_credentials_properties() {
        use landfall_core::config::{KafkaSecurity, SaslSettings, Secret, SecurityProtocol};
        use rdkafka::consumer::BaseConsumer;
        let mut s = settings(&[]);
        s.kafka.security = Some(KafkaSecurity {
            protocol: SecurityProtocol::SaslSsl,
            tls: None,
            sasl: Some(SaslSettings::OauthBearer {
                token_endpoint_url: "https://idp.invalid/oauth2/token".parse().unwrap(),
                client_id: "landfall".into(),
                client_secret: Secret::new("s"),
                scope: Some("kafka".into()),
            }),
        });
        let created: Result<BaseConsumer, _> = client_config(&s).create();
        assert!(created.is_ok(), "{:?}", created.err());
    }
}
