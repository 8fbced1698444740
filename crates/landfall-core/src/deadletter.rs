//! The dead-letter format (beside the manifest, arrow 5): one JSON line per record that could not
//! be decoded, with everything needed to find and replay it — topic, partition, offset, the reason,
//! and the key, value and headers byte-exact in base64. Invariant 6: bad input is recorded, never
//! dropped. A batch's dead-letter file is listed in its manifest like a data file.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::decode::Rejected;

/// One line of a dead-letter file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub reason: String,
    pub key_base64: Option<String>,
    pub value_base64: Option<String>,
    pub headers: Vec<DeadLetterHeader>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterHeader {
    pub key: String,
    pub value_base64: Option<String>,
}

impl DeadLetter {
    pub fn of(r: &Rejected) -> DeadLetter {
        let b64 = base64::engine::general_purpose::STANDARD;
        let rec = &r.record;
        DeadLetter {
            topic: rec.topic.to_string(),
            partition: rec.partition,
            offset: rec.offset,
            timestamp_ms: rec.timestamp_ms,
            reason: r.reason.clone(),
            key_base64: rec.key.as_ref().map(|k| b64.encode(k)),
            value_base64: rec.value.as_ref().map(|v| b64.encode(v)),
            headers: rec
                .headers
                .iter()
                .map(|(k, v)| DeadLetterHeader {
                    key: k.clone(),
                    value_base64: v.as_ref().map(|v| b64.encode(v)),
                })
                .collect(),
        }
    }
}

/// The body of a dead-letter file: JSON lines, one per rejected record, in offset order.
pub fn jsonl(rejected: &[Rejected]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rejected {
        serde_json::to_writer(&mut out, &DeadLetter::of(r)).expect("a dead letter serializes");
        out.push(b'\n');
    }
    out
}

/// Parse a dead-letter file (for `verify`, tests and replay tools).
pub fn parse_jsonl(body: &[u8]) -> Result<Vec<DeadLetter>, serde_json::Error> {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KafkaRecord;
    use bytes::Bytes;

    #[test]
    fn lines_round_trip_byte_exact() {
        let r = Rejected {
            record: KafkaRecord {
                topic: "t".into(),
                partition: 2,
                offset: 41,
                timestamp_ms: Some(7),
                key: Some(Bytes::from_static(b"\xff\x00k")),
                value: Some(Bytes::from_static(b"{\"a\":")),
                headers: vec![("h".into(), None)],
            },
            reason: "EOF while parsing".into(),
        };
        let body = jsonl(&[r.clone(), r]);
        let back = parse_jsonl(&body).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].offset, 41);
        assert_eq!(back[0].key_base64.as_deref(), Some("/wBr"));
        assert_eq!(back[0].value_base64.as_deref(), Some("eyJhIjo="));
        assert_eq!(back[0].headers[0].value_base64, None);
    }
}
