//! Notifications (`[notify]`): the Kafka message of a committed batch or a window marker, as
//! plain data. The producer lives in `landfall-kafka`; when it is sent, in
//! `landfall-runtime::publish`. Format: `docs/markers.md#notifications`.
//!
//! The value is the manifest JSON byte for byte as written to the store, so a consumer of the
//! topic and a reader of the marker see the same document. The key keeps one partition's
//! batches in one notify-topic partition, so they arrive in commit order.

use crate::manifest::Manifest;

/// Header names (values are UTF-8).
pub const HEADER_KIND: &str = "landfall-kind";
pub const HEADER_SINK: &str = "landfall-sink";
pub const HEADER_TOPIC: &str = "landfall-topic";
pub const HEADER_PARTITION: &str = "landfall-partition";

/// One message for the notification topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub key: String,
    pub headers: Vec<(&'static str, String)>,
    pub value: Vec<u8>,
}

/// The notification of a committed batch: key `{sink}/{topic}/{partition:05}`, kind `batch`.
pub fn batch(m: &Manifest) -> Notification {
    Notification {
        key: format!("{}/{}/{:05}", m.sink, m.topic, m.partition),
        headers: vec![
            (HEADER_KIND, "batch".into()),
            (HEADER_SINK, m.sink.clone()),
            (HEADER_TOPIC, m.topic.clone()),
            (HEADER_PARTITION, m.partition.to_string()),
        ],
        value: m.to_json(),
    }
}

/// The notification of a window marker: key `{sink}/{topic}/window`, kind `window`; `body` is
/// the `_SUCCESS` object's bytes.
pub fn window(sink: &str, topic: &str, body: Vec<u8>) -> Notification {
    Notification {
        key: format!("{sink}/{topic}/window"),
        headers: vec![
            (HEADER_KIND, "window".into()),
            (HEADER_SINK, sink.into()),
            (HEADER_TOPIC, topic.into()),
        ],
        value: body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{OffsetRange, FORMAT_VERSION};

    #[test]
    fn a_batch_notification_is_the_marker_bytes_keyed_by_partition() {
        let m = Manifest {
            format_version: FORMAT_VERSION,
            sink: "orders".into(),
            topic: "orders".into(),
            partition: 3,
            offsets: OffsetRange::new(10, 19),
            records: 10,
            rows: 10,
            dead_lettered: 0,
            files: vec![],
            dead_letter_files: vec![],
            schema_fingerprint: None,
            event_time: None,
            writer_id: "w".into(),
            attempt_id: "a".into(),
            landed_at: "2026-11-22T00:00:00.000Z".into(),
            flush_reason: "age".into(),
            commit_url: "c".into(),
            marker_url: "m".into(),
            gaps: vec![],
        };
        let n = batch(&m);
        assert_eq!(n.key, "orders/orders/00003");
        assert_eq!(n.value, m.to_json());
        assert_eq!(
            n.headers,
            [
                ("landfall-kind", "batch".to_string()),
                ("landfall-sink", "orders".into()),
                ("landfall-topic", "orders".into()),
                ("landfall-partition", "3".into()),
            ]
        );
        let w = window("orders", "orders", b"{}".to_vec());
        assert_eq!(w.key, "orders/orders/window");
        assert_eq!(w.headers.len(), 3);
        assert_eq!(w.headers[0], ("landfall-kind", "window".to_string()));
    }
}
