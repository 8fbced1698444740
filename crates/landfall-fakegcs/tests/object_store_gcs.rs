//! End-to-end: object_store's GCS backend (`GoogleCloudStorageBuilder`, no raw
//! HTTP) against the landfall-fakegcs test fixture running in-process.

use std::collections::BTreeSet;
use std::str::FromStr;

use bytes::Bytes;
use futures::TryStreamExt;
use landfall_fakegcs::{spawn, Config, RunningFakeGcs};
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig, UpdateVersion,
};
use tokio::net::TcpListener;

const BUCKET: &str = "lake";

fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 1,
        ..RetryConfig::default()
    }
}

/// The canonical configuration documented in the crate docs.
fn gcs(base_url: &str, bucket: &str) -> GoogleCloudStorage {
    GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_base_url(base_url)
        .with_bearer_token("fake")
        .with_retry(retry())
        .build()
        .expect("build GoogleCloudStorage")
}

async fn start() -> (RunningFakeGcs, GoogleCloudStorage) {
    let server = spawn(Config {
        buckets: vec![BUCKET.into()],
        ..Config::default()
    })
    .await
    .expect("spawn fixture");
    let store = gcs(&server.base_url(), BUCKET);
    (server, store)
}

async fn list_paths(store: &GoogleCloudStorage, prefix: Option<&Path>) -> Vec<String> {
    let metas: Vec<ObjectMeta> = store.list(prefix).try_collect().await.expect("list");
    metas.into_iter().map(|m| m.location.to_string()).collect()
}

/// Deterministic, non-repeating-ish test data.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u64) as u8
        })
        .collect()
}

/// The scenario from the brief, in one flow: the server is started with the
/// plain `serve(listener, None)` entry point on port 0.
#[tokio::test]
async fn object_store_end_to_end() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(landfall_fakegcs::serve(listener, None));
    let store = gcs(&format!("http://{addr}"), BUCKET);

    // --- put / get / range / head ---------------------------------------
    let key = Path::from("data/2024/01/part-0.parquet");
    let body = Bytes::from_static(b"hello, fake gcs! 0123456789");
    let put = store.put(&key, body.clone().into()).await.unwrap();
    assert!(put.e_tag.is_some(), "put returns an ETag");
    assert!(put.version.is_some(), "put returns x-goog-generation");

    let got = store.get(&key).await.unwrap();
    assert_eq!(got.meta.size, body.len() as u64);
    assert_eq!(got.meta.e_tag, put.e_tag);
    assert_eq!(got.meta.version, put.version);
    assert_eq!(got.bytes().await.unwrap(), body);

    assert_eq!(
        store.get_range(&key, 7..15).await.unwrap(),
        body.slice(7..15)
    );
    // A bounded range past the end is clamped, like GCS.
    assert_eq!(
        store.get_range(&key, 20..1000).await.unwrap(),
        body.slice(20..)
    );
    let suffix = store
        .get_opts(
            &key,
            GetOptions::new().with_range(Some(GetRange::Suffix(4))),
        )
        .await
        .unwrap();
    assert_eq!(suffix.range, 23..27);
    assert_eq!(suffix.bytes().await.unwrap(), body.slice(23..));
    let ranges = store.get_ranges(&key, &[0..5, 17..27]).await.unwrap();
    assert_eq!(ranges, vec![body.slice(0..5), body.slice(17..27)]);

    let head = store.head(&key).await.unwrap();
    assert_eq!(head.location, key);
    assert_eq!(head.size, body.len() as u64);
    assert_eq!(head.e_tag, put.e_tag);
    assert_eq!(head.version, put.version);
    let age = chrono::Utc::now() - head.last_modified;
    assert!(age.num_seconds().abs() < 60, "last_modified is recent");

    // --- create-only put ------------------------------------------------
    let once = Path::from("commits/000001.json");
    let create = PutOptions::from(PutMode::Create);
    store
        .put_opts(&once, PutPayload::from_static(b"first"), create.clone())
        .await
        .expect("first create succeeds");
    let err = store
        .put_opts(&once, PutPayload::from_static(b"second"), create)
        .await
        .expect_err("second create must fail");
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "expected AlreadyExists, got {err:?}"
    );
    let kept = store.get(&once).await.unwrap().bytes().await.unwrap();
    assert_eq!(kept.as_ref(), b"first", "losing create did not overwrite");

    // --- listing ---------------------------------------------------------
    for k in [
        "data/2024/01/part-1.parquet",
        "data/2024/02/part-0.parquet",
        "data/2025/01/part-0.parquet",
        "data/top.json",
        "other/x",
    ] {
        store.put(&Path::from(k), "x".into()).await.unwrap();
    }

    let mut under_2024 = list_paths(&store, Some(&Path::from("data/2024"))).await;
    under_2024.sort();
    assert_eq!(
        under_2024,
        [
            "data/2024/01/part-0.parquet",
            "data/2024/01/part-1.parquet",
            "data/2024/02/part-0.parquet",
        ]
    );
    // The prefix is a directory prefix, not a string prefix.
    assert!(list_paths(&store, Some(&Path::from("data/202")))
        .await
        .is_empty());
    assert_eq!(list_paths(&store, None).await.len(), 7);

    let listed = store
        .list(Some(&Path::from("data")))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let meta = listed.iter().find(|m| m.location == key).unwrap();
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(meta.e_tag, put.e_tag, "list ETag matches put ETag");

    let d = store
        .list_with_delimiter(Some(&Path::from("data")))
        .await
        .unwrap();
    let prefixes: Vec<String> = d.common_prefixes.iter().map(|p| p.to_string()).collect();
    assert_eq!(prefixes, ["data/2024", "data/2025"]);
    let objects: Vec<String> = d.objects.iter().map(|m| m.location.to_string()).collect();
    assert_eq!(objects, ["data/top.json"]);

    let root = store.list_with_delimiter(None).await.unwrap();
    let root_prefixes: BTreeSet<String> =
        root.common_prefixes.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        root_prefixes,
        BTreeSet::from(["commits".into(), "data".into(), "other".into()])
    );
    assert!(root.objects.is_empty());

    let after: Vec<String> = store
        .list_with_offset(
            Some(&Path::from("data")),
            &Path::from("data/2024/01/part-1.parquet"),
        )
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let after: BTreeSet<String> = after.into_iter().collect();
    assert_eq!(
        after,
        BTreeSet::from([
            "data/2024/02/part-0.parquet".into(),
            "data/2025/01/part-0.parquet".into(),
            "data/top.json".into(),
        ]),
        "list_with_offset is exclusive of the offset"
    );

    // --- multipart: ~12 MiB in three parts -------------------------------
    let big_key = Path::from("big/blob.bin");
    let big = pattern(12 * 1024 * 1024 + 12_345, 7);
    let mut upload = store.put_multipart(&big_key).await.unwrap();
    let part = 5 * 1024 * 1024;
    for chunk in big.chunks(part) {
        upload
            .put_part(PutPayload::from(Bytes::copy_from_slice(chunk)))
            .await
            .unwrap();
    }
    let done = upload.complete().await.unwrap();
    assert!(done.e_tag.is_some());
    assert!(done.version.is_some());
    let back = store.get(&big_key).await.unwrap();
    assert_eq!(back.meta.size, big.len() as u64);
    assert_eq!(back.meta.e_tag, done.e_tag);
    let back = back.bytes().await.unwrap();
    assert!(
        back.as_ref() == big.as_slice(),
        "multipart data round-trips"
    );
    let mid = store
        .get_range(&big_key, 5 * 1024 * 1024 - 10..5 * 1024 * 1024 + 10)
        .await
        .unwrap();
    assert_eq!(
        mid.as_ref(),
        &big[5 * 1024 * 1024 - 10..5 * 1024 * 1024 + 10]
    );

    // --- copy / delete / not found ----------------------------------------
    let copy_key = Path::from("copies/part-0.parquet");
    store.copy(&key, &copy_key).await.unwrap();
    assert_eq!(
        store.get(&copy_key).await.unwrap().bytes().await.unwrap(),
        body
    );
    let err = store.copy_if_not_exists(&key, &copy_key).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "{err:?}"
    );

    store.delete(&key).await.unwrap();
    let err = store.get(&key).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "get after delete: {err:?}"
    );
    let err = store.head(&key).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    let err = store.get(&Path::from("never/written")).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    let err = store
        .copy(&Path::from("never/written"), &Path::from("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    // The copy survives deletion of its source.
    assert!(store.head(&copy_key).await.is_ok());

    server.abort();
}

#[tokio::test]
async fn conditional_put_and_get() {
    let (_server, store) = start().await;
    let key = Path::from("state/manifest.json");
    let v1 = store.put(&key, "v1".into()).await.unwrap();

    // PutMode::Update with the current generation succeeds ...
    let update = |r: &object_store::PutResult| {
        PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: r.e_tag.clone(),
            version: r.version.clone(),
        }))
    };
    let v2 = store
        .put_opts(&key, "v2".into(), update(&v1))
        .await
        .unwrap();
    assert_ne!(v1.version, v2.version, "generation changes on overwrite");
    // ... and with a stale one fails with Precondition.
    let err = store
        .put_opts(&key, "v3".into(), update(&v1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err:?}"
    );

    let etag = v2.e_tag.clone().unwrap();
    let err = store
        .get_opts(
            &key,
            GetOptions::new().with_if_none_match(Some(etag.clone())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotModified { .. }),
        "{err:?}"
    );
    let err = store
        .get_opts(&key, GetOptions::new().with_if_match(Some("\"nope\"")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err:?}"
    );
    let ok = store
        .get_opts(&key, GetOptions::new().with_if_match(Some(etag)))
        .await
        .unwrap();
    assert_eq!(ok.bytes().await.unwrap().as_ref(), b"v2");

    let meta = store.head(&key).await.unwrap();
    let later = meta.last_modified + chrono::Duration::seconds(5);
    let err = store
        .get_opts(&key, GetOptions::new().with_if_modified_since(Some(later)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotModified { .. }),
        "{err:?}"
    );
    let earlier = meta.last_modified - chrono::Duration::seconds(5);
    let err = store
        .get_opts(
            &key,
            GetOptions::new().with_if_unmodified_since(Some(earlier)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err:?}"
    );

    // Reading a specific (current) generation works; an old one is gone.
    let current = store
        .get_opts(&key, GetOptions::new().with_version(v2.version.clone()))
        .await
        .unwrap();
    assert_eq!(current.bytes().await.unwrap().as_ref(), b"v2");
    let err = store
        .get_opts(&key, GetOptions::new().with_version(v1.version.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn paginated_listing() {
    let (_server, store) = start().await;
    let mut expected = BTreeSet::new();
    for i in 0..7 {
        let k = format!("p/file-{i:02}");
        store
            .put(&Path::from(k.as_str()), "x".into())
            .await
            .unwrap();
        expected.insert(k);
    }
    for d in ["p/dir-a/1", "p/dir-a/2", "p/dir-b/1"] {
        store.put(&Path::from(d), "x".into()).await.unwrap();
    }

    // Small pages, with a delimiter, through the low-level API.
    let mut token = None;
    let mut objects = BTreeSet::new();
    let mut prefixes = Vec::new();
    let mut pages = 0;
    loop {
        let page = store
            .list_paginated(
                Some("p/"),
                PaginatedListOptions {
                    delimiter: Some("/".into()),
                    max_keys: Some(3),
                    page_token: token.take(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.result.objects.len() + page.result.common_prefixes.len() <= 3);
        objects.extend(
            page.result
                .objects
                .into_iter()
                .map(|m| m.location.to_string()),
        );
        prefixes.extend(
            page.result
                .common_prefixes
                .into_iter()
                .map(|p| p.to_string()),
        );
        match page.page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 3, "9 entries in pages of 3");
    assert_eq!(objects, expected);
    assert_eq!(prefixes, ["p/dir-a", "p/dir-b"], "each prefix exactly once");

    // More than one 1000-entry page through the high-level stream.
    let many = 1_005;
    let futs = (0..many).map(|i| {
        let store = store.clone();
        async move {
            store
                .put(&Path::from(format!("many/{i:05}")), "x".into())
                .await
        }
    });
    futures::future::try_join_all(futs).await.unwrap();
    let all = list_paths(&store, Some(&Path::from("many"))).await;
    assert_eq!(all.len(), many);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), many);
}

#[tokio::test]
async fn multipart_edge_cases() {
    let (_server, store) = start().await;
    let key = Path::from("mp/object");

    // Abort leaves nothing behind.
    let id = store.create_multipart(&key).await.unwrap();
    let part = store
        .put_part(&key, &id, 0, PutPayload::from(vec![1u8; 1024]))
        .await
        .unwrap();
    store.abort_multipart(&key, &id).await.unwrap();
    let err = store
        .complete_multipart(&key, &id, vec![part])
        .await
        .unwrap_err();
    assert!(!matches!(err, object_store::Error::NotImplemented { .. }));
    assert!(matches!(
        store.head(&key).await.unwrap_err(),
        object_store::Error::NotFound { .. }
    ));

    // Like GCS, non-final parts under 5 MiB are rejected on completion.
    let id = store.create_multipart(&key).await.unwrap();
    let p0 = store
        .put_part(&key, &id, 0, PutPayload::from(vec![1u8; 1024]))
        .await
        .unwrap();
    let p1 = store
        .put_part(&key, &id, 1, PutPayload::from(vec![2u8; 1024]))
        .await
        .unwrap();
    let err = store
        .complete_multipart(&key, &id, vec![p0, p1])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("EntityTooSmall"), "{err}");

    // Parts uploaded out of order are assembled by part number; a single
    // small (final) part is fine; empty uploads fall back to a plain put.
    let id = store.create_multipart(&key).await.unwrap();
    let big = pattern(5 * 1024 * 1024, 1);
    let p1 = store
        .put_part(&key, &id, 1, PutPayload::from_static(b"tail"))
        .await
        .unwrap();
    let p0 = store
        .put_part(&key, &id, 0, PutPayload::from(big.clone()))
        .await
        .unwrap();
    store
        .complete_multipart(&key, &id, vec![p0, p1])
        .await
        .unwrap();
    let got = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.len(), big.len() + 4);
    assert!(got.starts_with(&big) && got.ends_with(b"tail"));

    let mut empty = store.put_multipart(&Path::from("mp/empty")).await.unwrap();
    empty.complete().await.unwrap();
    assert_eq!(store.head(&Path::from("mp/empty")).await.unwrap().size, 0);
}

#[tokio::test]
async fn attributes_round_trip() {
    let (_server, store) = start().await;
    let key = Path::from("attrs/thing.json");
    let mut attrs = Attributes::new();
    attrs.insert(Attribute::ContentType, "application/json".into());
    attrs.insert(Attribute::CacheControl, "no-cache".into());
    attrs.insert(Attribute::Metadata("writer".into()), "landfall".into());
    let opts = PutOptions {
        attributes: attrs.clone(),
        ..PutOptions::default()
    };
    store.put_opts(&key, "{}".into(), opts).await.unwrap();
    let got = store.get(&key).await.unwrap();
    assert_eq!(got.attributes, attrs);
}

/// Other ways of configuring the builder, as documented in lib.rs.
#[tokio::test]
async fn alternative_builder_configurations() {
    let (server, _) = start().await;
    let base = server.base_url();

    // Service-account key JSON carrying the base URL, OAuth disabled.
    let key = format!(
        r#"{{"gcs_base_url": "{base}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#
    );
    let sa = GoogleCloudStorageBuilder::new()
        .with_bucket_name(BUCKET)
        .with_service_account_key(key)
        .with_retry(retry())
        .build()
        .unwrap();
    sa.put(&Path::from("cfg/a"), "a".into()).await.unwrap();

    // String config keys: exactly what `from_env()` feeds from GOOGLE_* vars
    // (GOOGLE_BASE_URL, GOOGLE_BEARER_TOKEN, GOOGLE_BUCKET), plus a gs:// URL.
    let mut b = GoogleCloudStorageBuilder::new().with_url("gs://other-bucket");
    for (k, v) in [
        ("google_base_url", base.as_str()),
        ("google_bearer_token", "fake"),
    ] {
        b = b.with_config(GoogleConfigKey::from_str(k).unwrap(), v);
    }
    let keyed = b.with_retry(retry()).build().unwrap();
    keyed.put(&Path::from("cfg/b"), "b".into()).await.unwrap();

    // Buckets are independent and auto-created.
    let lake = gcs(&base, BUCKET);
    assert_eq!(list_paths(&lake, Some(&Path::from("cfg"))).await, ["cfg/a"]);
    assert_eq!(list_paths(&keyed, None).await, ["cfg/b"]);
}

#[tokio::test]
async fn directory_root_persists_across_restarts() {
    let dir = std::env::temp_dir().join(format!(
        "landfall-fakegcs-test-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let config = || Config {
        root: Some(dir.clone()),
        ..Config::default()
    };
    let key = Path::from("persist/me");
    let (etag, version) = {
        let server = spawn(config()).await.unwrap();
        let store = gcs(&server.base_url(), BUCKET);
        let r = store.put(&key, "durable".into()).await.unwrap();
        store
            .put(&Path::from("persist/gone"), "x".into())
            .await
            .unwrap();
        store.delete(&Path::from("persist/gone")).await.unwrap();
        (r.e_tag, r.version)
    };
    let server = spawn(config()).await.unwrap();
    let store = gcs(&server.base_url(), BUCKET);
    let got = store.get(&key).await.unwrap();
    assert_eq!(got.meta.e_tag, etag);
    assert_eq!(got.meta.version, version);
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"durable");
    assert_eq!(list_paths(&store, None).await, ["persist/me"]);
    // Generations keep increasing after a restart.
    let r = store.put(&key, "again".into()).await.unwrap();
    let (old, new): (u64, u64) = (
        version.unwrap().parse().unwrap(),
        r.version.unwrap().parse().unwrap(),
    );
    assert!(new > old);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
