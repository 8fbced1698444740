//! One-shot requests outside the consumer thread: the start-up preflight and the watermarks
//! `landfall verify` compares the store against.

use std::collections::BTreeMap;
use std::sync::Mutex;

use landfall_core::config::{KafkaConfig, TopicSelection};
use landfall_core::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;
use tracing::warn;

use crate::settings::{admin_config, client_config, ConsumerSettings, METADATA_TIMEOUT};
use crate::KafkaSinkError;

/// The `security.protocol` the clients speak: `[kafka.security]`, else the passthrough option,
/// else librdkafka's default.
fn security_protocol(kafka: &KafkaConfig) -> &'static str {
    use landfall_core::config::SecurityProtocol as P;
    let protocol = match (&kafka.security, kafka.options.get("security.protocol")) {
        (Some(s), _) => s.protocol,
        (None, None) => P::Plaintext,
        (None, Some(p)) => match p.to_ascii_lowercase().as_str() {
            "ssl" => P::Ssl,
            "sasl_plaintext" => P::SaslPlaintext,
            "sasl_ssl" => P::SaslSsl,
            _ => P::Plaintext,
        },
    };
    protocol.librdkafka_name()
}

/// What a refused authentication points at, for the configured mechanism.
fn credentials_to_check(kafka: &KafkaConfig) -> &'static str {
    use landfall_core::config::SaslSettings;
    match kafka.security.as_ref().and_then(|s| s.sasl.as_ref()) {
        Some(SaslSettings::OauthBearer { .. }) => {
            "kafka.security: token_endpoint_url, client_id, client_secret, scope, and that the brokers accept OAUTHBEARER tokens of this issuer"
        }
        Some(_) => "kafka.security: mechanism, username, password",
        None => "the sasl.* options in kafka.options",
    }
}

/// How long a failed preflight serves librdkafka's queued error events to learn the cause.
const ERROR_DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

/// Why a connection failed, as librdkafka's error callback said it: a failed metadata request
/// only says "transport failure", the callback says "SASL authentication failed" or "SSL
/// handshake failed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandshakeFailure {
    Authentication,
    Tls,
}

/// The handshake failure an error from librdkafka's error callback reports, if any.
fn handshake_failure(code: RDKafkaErrorCode, reason: &str) -> Option<HandshakeFailure> {
    match code {
        RDKafkaErrorCode::Authentication => Some(HandshakeFailure::Authentication),
        RDKafkaErrorCode::SSL => Some(HandshakeFailure::Tls),
        // A TLS client talking to a plaintext listener (or the reverse) sees the connection
        // dropped mid-handshake; librdkafka says so in the reason, not the code.
        RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown
            if reason.contains("SSL") || reason.contains("security.protocol") =>
        {
            Some(HandshakeFailure::Tls)
        }
        _ => None,
    }
}

/// The preflight client's context: logs client errors like the consumer's, and keeps the
/// first handshake failure so a failed start names the real cause.
#[derive(Default)]
struct PreflightContext {
    failure: Mutex<Option<(HandshakeFailure, String)>>,
}

impl ClientContext for PreflightContext {
    fn error(&self, error: KafkaError, reason: &str) {
        warn!(%error, reason, "kafka client error");
        if let Some(code) = error.rdkafka_error_code() {
            if let Some(kind) = handshake_failure(code, reason) {
                let mut first = self.failure.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert((kind, reason.to_string()));
            }
        }
    }
}

impl ConsumerContext for PreflightContext {}

/// Check the broker answers and named topics exist: a clear error at start beats a silent wait.
pub fn preflight(s: &ConsumerSettings) -> Result<(), KafkaSinkError> {
    let mut c = client_config(s);
    c.set("group.id", format!("{}-preflight", s.kafka.group_id));
    let consumer: BaseConsumer<PreflightContext> = c
        .create_with_context(PreflightContext::default())
        .map_err(KafkaSinkError::Create)?;
    let bootstrap = || s.kafka.bootstrap_servers.clone();
    let md = consumer
        .fetch_metadata(None, METADATA_TIMEOUT)
        .map_err(|source| {
            // librdkafka queues error events; the context only sees them when the client is
            // polled, so serve the queue (briefly) before deciding what went wrong.
            let deadline = std::time::Instant::now() + ERROR_DRAIN;
            let recorded = || {
                consumer
                    .context()
                    .failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            };
            while recorded().is_none() && std::time::Instant::now() < deadline {
                // An unsubscribed consumer has no records to return; this serves callbacks.
                let _ = consumer.poll(std::time::Duration::from_millis(50));
            }
            let failure = recorded();
            match failure {
                Some((HandshakeFailure::Authentication, reason)) => {
                    KafkaSinkError::Authentication {
                        bootstrap: bootstrap(),
                        reason,
                        check: credentials_to_check(&s.kafka),
                    }
                }
                Some((HandshakeFailure::Tls, reason)) => KafkaSinkError::Tls {
                    bootstrap: bootstrap(),
                    reason,
                },
                None => KafkaSinkError::Unreachable {
                    bootstrap: bootstrap(),
                    protocol: security_protocol(&s.kafka),
                    source,
                },
            }
        })?;
    if let TopicSelection::Names(names) = &s.topics {
        for n in names {
            let found = md
                .topics()
                .iter()
                .any(|t| t.name() == n && t.error().is_none() && !t.partitions().is_empty());
            if !found {
                return Err(KafkaSinkError::NoSuchTopic(n.clone()));
            }
        }
    }
    Ok(())
}

/// (low, high) watermark per topic-partition.
pub type Watermarks = BTreeMap<TopicPartition, (i64, i64)>;

/// Low and high watermark of every partition of `topics` (for `landfall verify`).
pub fn watermarks(kafka: &KafkaConfig, topics: &[String]) -> Result<Watermarks, KafkaSinkError> {
    let consumer: BaseConsumer = admin_config(kafka)
        .create()
        .map_err(KafkaSinkError::Create)?;
    let unreachable = |source| KafkaSinkError::Unreachable {
        bootstrap: kafka.bootstrap_servers.clone(),
        protocol: security_protocol(kafka),
        source,
    };
    let mut out = BTreeMap::new();
    for t in topics {
        let md = consumer
            .fetch_metadata(Some(t), METADATA_TIMEOUT)
            .map_err(unreachable)?;
        for mt in md.topics() {
            for p in mt.partitions() {
                let w = consumer
                    .fetch_watermarks(t, p.id(), METADATA_TIMEOUT)
                    .map_err(unreachable)?;
                out.insert(TopicPartition::new(t.as_str(), p.id()), w);
            }
        }
    }
    Ok(out)
}

/// The partition ids of `topic` from cluster metadata (for window closing: every partition must
/// have passed a window). One metadata request with a short-lived client.
pub fn partitions(kafka: &KafkaConfig, topic: &str) -> Result<Vec<i32>, KafkaSinkError> {
    let consumer: BaseConsumer = admin_config(kafka)
        .create()
        .map_err(KafkaSinkError::Create)?;
    let md = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|source| KafkaSinkError::Unreachable {
            bootstrap: kafka.bootstrap_servers.clone(),
            protocol: security_protocol(kafka),
            source,
        })?;
    let mut ids: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_are_told_apart_from_an_absent_broker() {
        let sasl = "sasl_ssl://k:9093/bootstrap: SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof";
        assert_eq!(
            handshake_failure(RDKafkaErrorCode::Authentication, sasl),
            Some(HandshakeFailure::Authentication)
        );
        assert_eq!(
            handshake_failure(
                RDKafkaErrorCode::SSL,
                "ssl://k:9093/bootstrap: SSL handshake failed: certificate verify failed"
            ),
            Some(HandshakeFailure::Tls)
        );
        assert_eq!(
            handshake_failure(
                RDKafkaErrorCode::BrokerTransportFailure,
                "ssl://k:9092/bootstrap: Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?)"
            ),
            Some(HandshakeFailure::Tls)
        );
        assert_eq!(
            handshake_failure(
                RDKafkaErrorCode::BrokerTransportFailure,
                "k:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
            ),
            None
        );
    }
}
