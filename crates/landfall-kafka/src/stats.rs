//! High watermarks from librdkafka's statistics (`statistics.interval.ms`), for the consumer lag
//! the sink reports (`landfall_consumer_lag_records`, `/status`).
//!
//! Why statistics rather than `fetch_watermarks`: librdkafka already learns each partition's
//! high watermark and last stable offset from every fetch response; the statistics callback
//! hands them over once per interval on the consumer thread, inside `poll`, at no extra broker
//! round trip. `fetch_watermarks` would be one blocking request per partition on the thread
//! that must keep polling. The cost: a paused partition is not fetched, so its watermark is as
//! old as its last fetch (lag is then underestimated until it resumes).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use landfall_core::TopicPartition;
use serde::Deserialize;

/// How often librdkafka reports statistics unless the sink's `kafka.options` say otherwise.
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// The latest end offset of each partition the consumer fetches, shared with the sink loop.
pub type HighWatermarks = Arc<Mutex<HashMap<TopicPartition, i64>>>;

#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    topics: BTreeMap<String, Topic>,
}

#[derive(Deserialize)]
struct Topic {
    #[serde(default)]
    partitions: BTreeMap<String, Partition>,
}

#[derive(Deserialize)]
struct Partition {
    #[serde(default = "unknown")]
    hi_offset: i64,
    #[serde(default = "unknown")]
    ls_offset: i64,
}

fn unknown() -> i64 {
    -1
}

/// The end offset of every partition a statistics document knows. The consumer reads with
/// `isolation.level=read_committed`, so its end is the last stable offset (`ls_offset`) when
/// known, else the high watermark. librdkafka's internal partition -1 and unknown offsets
/// (negative) are skipped. `None` if the document does not parse.
pub fn end_offsets(json: &[u8]) -> Option<Vec<(TopicPartition, i64)>> {
    let stats: Stats = serde_json::from_slice(json).ok()?;
    let mut out = Vec::new();
    for (topic, t) in stats.topics {
        for (p, part) in t.partitions {
            let Ok(p) = p.parse::<i32>() else { continue };
            let end = if part.ls_offset >= 0 {
                part.ls_offset
            } else {
                part.hi_offset
            };
            if p >= 0 && end >= 0 {
                out.push((TopicPartition::new(topic.as_str(), p), end));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_prefer_the_last_stable_offset_and_skip_unknowns() {
        let json =
            br#"{"name":"c","type":"consumer","topics":{"orders":{"topic":"orders","partitions":{
            "0":{"partition":0,"hi_offset":120,"ls_offset":118,"consumer_lag":3},
            "1":{"partition":1,"hi_offset":40,"ls_offset":-1001},
            "2":{"partition":2,"hi_offset":-1001,"ls_offset":-1001},
            "-1":{"partition":-1,"hi_offset":-1001,"ls_offset":-1001}}}}}"#;
        let got = end_offsets(json).unwrap();
        assert_eq!(
            got,
            vec![
                (TopicPartition::new("orders", 0), 118),
                (TopicPartition::new("orders", 1), 40)
            ]
        );
        assert_eq!(end_offsets(b"not json"), None);
        assert_eq!(end_offsets(b"{}"), Some(vec![]));
    }
}
