//! The crate's one error type: what can keep the consumer from starting.

use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    #[error("cannot create the Kafka consumer: {0}")]
    Create(KafkaError),
    /// `protocol` is librdkafka's `security.protocol`: a TLS client at a plaintext listener
    /// (or the reverse) often gets no error at all, only a timeout, so the message says which
    /// protocol was spoken.
    #[error(
        "cannot reach Kafka at {bootstrap} over {protocol}: {source} (is the broker up, the address right, and does the listener speak {protocol}?)"
    )]
    Unreachable {
        bootstrap: String,
        protocol: &'static str,
        source: KafkaError,
    },
    /// SASL refused: wrong mechanism, user or password. `reason` is librdkafka's, which names
    /// the mechanism and the broker's answer, never the password.
    #[error("Kafka at {bootstrap} refused the credentials: {reason} (check {check})")]
    Authentication {
        bootstrap: String,
        reason: String,
        /// What to check, for the configured mechanism.
        check: &'static str,
    },
    /// The TLS handshake failed: an untrusted or mismatched certificate, or a listener that does
    /// not speak TLS.
    #[error(
        "TLS with Kafka at {bootstrap} failed: {reason} (check kafka.security: protocol, ca_file, verify_hostname, and that the listener speaks TLS)"
    )]
    Tls { bootstrap: String, reason: String },
    #[error("topic `{0}` does not exist on the cluster")]
    NoSuchTopic(String),
    #[error("cannot subscribe: {0}")]
    Subscribe(KafkaError),
}
