//! `store.sse*` reaches S3: every object a sink writes — data files, commit records, batch
//! markers, dead letters — carries the configured server-side encryption, as S3 (moto) reports
//! it to boto3's `head_object`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use landfall_testkit::{json_record, produce, producer, python, S3Server};

const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/landfall-test-key";

/// `ServerSideEncryption`, `SSEKMSKeyId` and `BucketKeyEnabled` of every object in `lake`, by
/// key, from boto3's `head_object`.
fn encryption_of_every_object(endpoint: &str) -> BTreeMap<String, serde_json::Value> {
    let script = format!(
        r#"
import boto3, json
s3 = boto3.client("s3", endpoint_url="{endpoint}", region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
out = {{}}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lake"):
    for o in page.get("Contents", []):
        h = s3.head_object(Bucket="lake", Key=o["Key"])
        out[o["Key"]] = [h.get("ServerSideEncryption"), h.get("SSEKMSKeyId"), h.get("BucketKeyEnabled")]
print(json.dumps(out))
"#
    );
    let out = Command::new(python())
        .args(["-c", &script])
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_carries_sse_kms_with_the_configured_key() {
    let s3 = S3Server::start();
    let broker = broker();
    let topic = unique("sse");
    broker.create_topic(&topic, 1);
    // 40 good records and 2 that cannot be decoded (they go to the dead-letter prefix).
    let values = (0..42).map(|i| {
        if i % 20 == 7 {
            (i, "not json".to_string())
        } else {
            (i, json_record(i))
        }
    });
    let produced = produce(&producer(&broker.bootstrap()), &topic, 1, values).await;
    let t = Target {
        data: "s3://lake/data".into(),
        markers: "s3://lake/_landfall".into(),
        options: s3.options(),
    };
    let text = sink_toml(
        "sse",
        &topic,
        &broker.bootstrap(),
        &t,
        "max_records = 20\nmax_age_ms = 500",
        "",
    )
    .replace(
        "max_retries = 3\n",
        &format!(
            "max_retries = 3\nsse = \"aws:kms\"\nsse_kms_key_id = \"{KMS_KEY}\"\nsse_bucket_key = true\n"
        ),
    );
    let cfg = parse(&text);
    let st = stores(&cfg, &t);
    let sink = start_sink(cfg, st.clone(), "w");
    let ms = await_landed(&st.markers, "sse", &produced, Duration::from_secs(60)).await;
    sink.stop().await;
    assert_eq!(ms.iter().map(|m| m.dead_lettered).sum::<u64>(), 2);

    let objects = encryption_of_every_object(&s3.endpoint());
    let count = |prefix: &str| objects.keys().filter(|k| k.starts_with(prefix)).count();
    let (data, markers, dead) = (
        count("data/"),
        count("_landfall/") - count("_landfall/_dead_letter/"),
        count("_landfall/_dead_letter/"),
    );
    eprintln!(
        "{} objects: {data} data, {markers} marker/commit, {dead} dead-letter",
        objects.len()
    );
    assert!(data >= 2 && markers >= 2 && dead >= 1, "{objects:#?}");
    for (key, enc) in &objects {
        assert_eq!(
            enc,
            &serde_json::json!(["aws:kms", KMS_KEY, true]),
            "object {key}"
        );
    }
}
