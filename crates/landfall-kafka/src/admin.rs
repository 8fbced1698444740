//! One-shot requests outside the consumer thread: the start-up preflight and the watermarks
//! `landfall verify` compares the store against.

use std::collections::BTreeMap;

use landfall_core::config::{KafkaConfig, TopicSelection};
use landfall_core::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::settings::{admin_config, client_config, ConsumerSettings, METADATA_TIMEOUT};
use crate::KafkaSinkError;

/// Check the broker answers and named topics exist: a clear error at start beats a silent wait.
pub fn preflight(s: &ConsumerSettings) -> Result<(), KafkaSinkError> {
    let mut c = client_config(s);
    c.set("group.id", format!("{}-preflight", s.kafka.group_id));
    let consumer: BaseConsumer = c.create().map_err(KafkaSinkError::Create)?;
    let md = consumer
        .fetch_metadata(None, METADATA_TIMEOUT)
        .map_err(|source| KafkaSinkError::Unreachable {
            bootstrap: s.kafka.bootstrap_servers.clone(),
            source,
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
