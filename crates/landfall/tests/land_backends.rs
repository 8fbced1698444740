//! The core sink on real parts: a tansu broker (SQLite engine), and local disk, moto's S3 server
//! and the GCS fixture as stores. N JSON records over P partitions land exactly once.

mod common;

use std::time::Duration;

use common::*;
use landfall_store::scan;
use landfall_testkit::{
    assert_exactly_once, json_record, landed_offsets, produce, producer, S3Server,
};

const N: u64 = 20_000;
const P: i32 = 4;

async fn lands_every_offset_once(target: Target) {
    let broker = broker();
    let topic = unique("orders");
    broker.create_topic(&topic, P);
    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        P,
        (0..N).map(|i| (i, json_record(i))),
    )
    .await;

    // Small files and chunks so every partition lands several batches and files.
    let cfg = parse(&sink_toml(
        "orders",
        &topic,
        &broker.bootstrap(),
        &target,
        "max_records = 1500\nmax_age_ms = 5000",
        "[runtime]\nchunk_records = 500\n",
    ));
    let stores = stores(&cfg, &target);
    let sink = start_sink(cfg, stores.clone(), "test-writer");
    await_landed(
        &stores.markers,
        "orders",
        &produced,
        Duration::from_secs(120),
    )
    .await;
    sink.stop().await;

    // Read back what a user reads: every row from Parquet, against the produced set.
    let ms = landfall_testkit::manifests(&stores.markers, "orders").await;
    let landed = landed_offsets(&stores.data, &ms).await;
    assert_exactly_once(&topic, &produced, &ms, &landed);
    // max_records is exact: 5000 records per partition make batches of 1500, 1500, 1500, 500.
    let mut sizes: Vec<u64> = ms.iter().map(|m| m.records).collect();
    sizes.sort();
    assert_eq!(
        sizes,
        [vec![500; P as usize], vec![1500; 3 * P as usize]].concat(),
        "batch sizes"
    );
    // A marker never lists a file that is not there.
    assert_eq!(
        scan::missing_files(&stores.data, &ms).await.unwrap(),
        Vec::<String>::new()
    );
    // Every commit record has its batch marker with the same content.
    for m in &ms {
        let key = stores
            .markers
            .key_of_url(&m.marker_url)
            .expect("marker under the prefix");
        let bytes = landfall_store::io::get(&stores.markers, &key)
            .await
            .unwrap()
            .expect("marker exists");
        assert_eq!(
            &landfall_core::manifest::Manifest::from_json(&bytes).unwrap(),
            m
        );
    }
    // No data file without a manifest (nothing crashed, so no orphans): every Parquet object
    // under the topic's directory is one a manifest lists, as `landfall gc` judges it.
    let view = landfall_core::orphans::GcView::new(
        "orders",
        &ms,
        (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp_millis(),
    );
    let found = scan::judge(
        &stores.data,
        landfall_core::keys::FileKind::Data,
        std::slice::from_ref(&topic),
        &view,
    )
    .await
    .unwrap();
    let unlisted: Vec<_> = found
        .iter()
        .filter(|(l, v)| {
            l.path.as_ref().ends_with(".parquet") && *v != landfall_core::orphans::Verdict::Listed
        })
        .map(|(l, v)| format!("{} {v:?}", l.path))
        .collect();
    assert!(unlisted.is_empty(), "unlisted data files: {unlisted:?}");
    // The group's offsets were committed as hints, never ahead of the markers.
    let committed = broker.committed("landfall-orders", &topic, P);
    for (p, n) in &produced {
        let (off, _) = committed.get(p).cloned().unwrap_or((0, String::new()));
        assert!(
            off <= *n as i64,
            "partition {p}: group offset {off} ahead of markers"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lands_every_offset_once_on_local_fs() {
    let dir = test_dir();
    lands_every_offset_once(Target::local(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lands_every_offset_once_on_s3() {
    let s3 = S3Server::start();
    let prefix = unique("t");
    lands_every_offset_once(Target {
        data: format!("s3://lake/{prefix}/raw"),
        markers: format!("s3://lake/{prefix}/_landfall"),
        options: s3.options(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lands_every_offset_once_on_gcs_fixture() {
    let gcs = gcs_fixture().await;
    let options = gcs_options(&gcs);
    lands_every_offset_once(Target {
        data: "gs://lake/raw".into(),
        markers: "gs://lake/_landfall".into(),
        options,
    })
    .await;
}

/// `max_age_ms` lands an idle partition's tail: no more records arrive to trigger a check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_lands_an_idle_tail() {
    let broker = broker();
    let topic = unique("idle");
    broker.create_topic(&topic, 2);
    let dir = test_dir();
    let target = Target::local(dir.path());
    let cfg = parse(&sink_toml(
        "idle",
        &topic,
        &broker.bootstrap(),
        &target,
        "max_records = 1000000\nmax_age_ms = 1500",
        "",
    ));
    let stores = stores(&cfg, &target);
    let sink = start_sink(cfg, stores.clone(), "w");
    // Produce after the sink has joined, then go idle.
    let produced = produce(
        &producer(&broker.bootstrap()),
        &topic,
        2,
        (0..7).map(|i| (i, json_record(i))),
    )
    .await;
    let ms = await_landed(&stores.markers, "idle", &produced, Duration::from_secs(60)).await;
    assert!(
        ms.iter().all(|m| m.flush_reason == "age"),
        "{:?}",
        ms.iter().map(|m| &m.flush_reason).collect::<Vec<_>>()
    );
    assert_eq!(ms.iter().map(|m| m.rows).sum::<u64>(), 7);
    sink.stop().await;
}

/// Files above the multipart threshold go up in parts and come back byte-identical, on S3 and
/// on the GCS fixture alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_round_trip_on_s3_and_gcs() {
    use rand::RngCore;
    let s3 = S3Server::start();
    let gcs = gcs_fixture().await;
    let gcs_options = gcs_options(&gcs);
    let mut bytes = vec![0u8; 13 * 1024 * 1024 + 17];
    rand::rng().fill_bytes(&mut bytes);
    let bytes = bytes::Bytes::from(bytes);
    for (url, options) in [
        ("s3://lake/mp", s3.options()),
        ("gs://lake/mp", gcs_options),
    ] {
        let t = Target {
            data: url.into(),
            markers: url.into(),
            options,
        };
        let loc =
            landfall_store::Location::open(&url::Url::parse(url).unwrap(), &open_opts(&t)).unwrap();
        landfall_store::io::upload(
            &loc,
            "big.parquet",
            bytes.clone(),
            6 * 1024 * 1024,
            5 * 1024 * 1024,
        )
        .await
        .unwrap();
        let back = landfall_store::io::get(&loc, "big.parquet")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.len(), bytes.len(), "{url}");
        assert!(back == bytes, "{url}: content differs");
    }
}

/// A multipart upload that fails mid-way is aborted, so no parts linger in the store (on S3 and
/// GCS invisible but billed; on local disk a staging file). More parts than the 8 in flight at a
/// time, so the failure surfaces while parts are still being written, not only at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multipart_upload_is_aborted() {
    use landfall_testkit::faults::{FaultConfig, FaultyStore};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let real = landfall_store::Location::open(&url, &Default::default()).unwrap();
    let faulty = Arc::new(FaultyStore::new(
        real.store.clone(),
        FaultConfig {
            fail_parts_from: Some(3),
            ..Default::default()
        },
        1,
    ));
    let loc = real.with_store(faulty.clone());
    let bytes = bytes::Bytes::from(vec![7u8; 20 * 1024]);
    let err = landfall_store::io::upload(&loc, "t/big.parquet", bytes, 1024, 1024)
        .await
        .expect_err("parts 3.. fail");
    let counts = &faulty.counts;
    let (started, failed, completed, aborted) = (
        counts.multipart_started.load(Ordering::Relaxed),
        counts.parts_failed.load(Ordering::Relaxed),
        counts.multipart_completed.load(Ordering::Relaxed),
        counts.multipart_aborted.load(Ordering::Relaxed),
    );
    println!("upload error: {err}; started={started} parts_failed={failed} completed={completed} aborted={aborted}");
    assert!(err.to_string().contains("big.parquet"), "{err}");
    assert_eq!((started, completed, aborted), (1, 0, 1));
    // What an operator would see: nothing left under the directory, no object, no staging file.
    let left: Vec<_> = walk(dir.path());
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if e.is_dir() {
            out.extend(walk(&e));
        } else {
            out.push(e);
        }
    }
    out
}

/// The same on moto's S3: after a multipart upload fails mid-way, S3 holds no upload in progress
/// (`ListMultipartUploads`, asked with boto3 as an operator would), so no parts are billed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_multipart_upload_leaves_no_upload_in_progress_on_s3() {
    use landfall_testkit::faults::{FaultConfig, FaultyStore};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    let s3 = S3Server::start();
    let t = Target {
        data: "s3://lake/mpfail".into(),
        markers: "s3://lake/mpfail".into(),
        options: s3.options(),
    };
    let real =
        landfall_store::Location::open(&url::Url::parse(&t.data).unwrap(), &open_opts(&t)).unwrap();
    // Parts 0-2 reach S3, part 3 and later fail; 10 parts, more than the 8 in flight.
    let faulty = Arc::new(FaultyStore::new(
        real.store.clone(),
        FaultConfig {
            fail_parts_from: Some(3),
            ..Default::default()
        },
        1,
    ));
    let loc = real.with_store(faulty.clone());
    let part = 5 * 1024 * 1024;
    let bytes = bytes::Bytes::from(vec![3u8; 10 * part]);
    let err = landfall_store::io::upload(&loc, "t/big.parquet", bytes, part as u64, part as u64)
        .await
        .expect_err("parts 3.. fail");
    let in_progress = std::process::Command::new(landfall_testkit::python())
        .args([
            "-c",
            &format!(
                "import boto3; c = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test'); print(len(c.list_multipart_uploads(Bucket='lake').get('Uploads', [])))",
                s3.endpoint()
            ),
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&in_progress.stdout)
        .trim()
        .to_string();
    println!(
        "upload error: {err}; aborted={} multipart uploads in progress on S3: {listed}",
        faulty.counts.multipart_aborted.load(Ordering::Relaxed)
    );
    assert_eq!(
        listed,
        "0",
        "{}",
        String::from_utf8_lossy(&in_progress.stderr)
    );
    assert_eq!(faulty.counts.multipart_aborted.load(Ordering::Relaxed), 1);
}
