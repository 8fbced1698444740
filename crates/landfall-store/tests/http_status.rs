//! How store errors are classified from what the server answered. object_store reports most
//! HTTP failures as `Error::Generic` with the status inside its source chain; a deterministic 4xx
//! must come out Permanent (retrying cannot help, and retrying forever hides the problem) and a
//! transient answer (408, 429, 5xx, a dropped connection) Transient.
//!
//! The server (`landfall_testkit::faults::answering_http`) is a minimal HTTP/1.1 responder on a
//! loopback port that answers every request with one fixed status and an S3-style XML error body:
//! every status can be had on purpose, which no emulator offers.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use landfall_store::{io, ErrorClass, Location, OpenOptions};
use landfall_testkit::faults::answering_http;

fn s3(endpoint: &str) -> Location {
    let opts = OpenOptions {
        options: BTreeMap::from([
            ("aws_endpoint".to_string(), endpoint.to_string()),
            ("aws_allow_http".to_string(), "true".to_string()),
            ("aws_access_key_id".to_string(), "AKIDTEST".to_string()),
            (
                "aws_secret_access_key".to_string(),
                "s3cr3t-value-never-printed".to_string(),
            ),
            ("aws_region".to_string(), "us-east-1".to_string()),
        ]),
        // No retries inside object_store: the test is about the class of the final answer.
        max_retries: 0,
        request_timeout: Duration::from_secs(5),
    };
    Location::open(&url::Url::parse("s3://lake/raw").unwrap(), &opts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_4xx_are_permanent_and_transient_answers_are_retried() {
    let cases: &[(u16, ErrorClass)] = &[
        (400, ErrorClass::Permanent),
        (403, ErrorClass::Permanent),
        (404, ErrorClass::Permanent),
        (405, ErrorClass::Permanent),
        (411, ErrorClass::Permanent),
        (413, ErrorClass::Permanent),
        (408, ErrorClass::Transient),
        (429, ErrorClass::Transient),
        (500, ErrorClass::Transient),
        (503, ErrorClass::Transient),
        (0, ErrorClass::Transient),
    ];
    let mut wrong = Vec::new();
    for &(status, want) in cases {
        let loc = s3(&answering_http(status).await);
        let err = io::put(&loc, "orders/part-0.parquet", Bytes::from_static(b"x"))
            .await
            .expect_err("every request fails");
        let shown = format!("{err} — {}", err.cause());
        println!(
            "{status}: {:?} {:?}: {shown}",
            err.class(),
            err.http_status()
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("s3://lake/raw/orders/part-0.parquet"),
            "{shown}"
        );
        if status != 0 {
            assert_eq!(err.http_status(), Some(status), "{shown}");
        }
        if err.class() != want {
            wrong.push(format!(
                "{status}: {:?}, want {want:?}: {shown}",
                err.class()
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
