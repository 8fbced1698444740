//! The notification producer (`[notify]`): an idempotent rdkafka `FutureProducer` that sends a
//! [`Notification`] and waits for the broker's acknowledgement.

use std::time::Duration;

use landfall_core::config::NotifyConfig;
use landfall_core::notify::Notification;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::KafkaSinkError;

/// librdkafka's delivery timeout for one notification unless `[notify] options` says otherwise:
/// after it the post-commit step fails and is retried with the landing's backoff.
const DEFAULT_MESSAGE_TIMEOUT_MS: &str = "30000";

pub struct Notifier {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("topic", &self.topic)
            .finish()
    }
}

impl Notifier {
    pub fn new(cfg: &NotifyConfig, client_id: &str) -> Result<Notifier, KafkaSinkError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &cfg.bootstrap_servers)
            .set("client.id", client_id)
            .set("message.timeout.ms", DEFAULT_MESSAGE_TIMEOUT_MS)
            .set("linger.ms", "5");
        for (k, v) in &cfg.options {
            c.set(k, v);
        }
        // Last, so no option can undo them (validation refuses them anyway): no duplicates or
        // reordering from the producer's own retries.
        c.set("enable.idempotence", "true").set("acks", "all");
        let producer = c.create().map_err(KafkaSinkError::Create)?;
        Ok(Notifier {
            producer,
            topic: cfg.kafka_topic.clone(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Send one notification and wait until the broker has acknowledged it.
    pub async fn send(&self, n: &Notification) -> Result<(), String> {
        let mut headers = OwnedHeaders::new_with_capacity(n.headers.len());
        for (k, v) in &n.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let record = FutureRecord::to(&self.topic)
            .key(&n.key)
            .payload(&n.value)
            .headers(headers);
        // Waits up to 5 s for room in a full local queue, then for the delivery (message.timeout.ms).
        match self.producer.send(record, Duration::from_secs(5)).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.to_string()),
        }
    }

    /// Wait for outstanding deliveries (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}
