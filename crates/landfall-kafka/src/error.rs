//! The crate's one error type: what can keep the consumer from starting.

use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    #[error("cannot create the Kafka consumer: {0}")]
    Create(KafkaError),
    #[error(
        "cannot reach Kafka at {bootstrap}: {source} (is the broker up and the address right?)"
    )]
    Unreachable {
        bootstrap: String,
        source: KafkaError,
    },
    #[error("topic `{0}` does not exist on the cluster")]
    NoSuchTopic(String),
    #[error("cannot subscribe: {0}")]
    Subscribe(KafkaError),
}
