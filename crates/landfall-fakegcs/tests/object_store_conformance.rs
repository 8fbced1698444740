//! object_store's own backend conformance suite (`object_store::integration`,
//! enabled by its `integration` feature) run against the fixture: the same
//! checks object_store's `gcs_test` runs against real GCS.

use landfall_fakegcs::{spawn, Config, RunningFakeGcs};
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::integration::*;

async fn start() -> (RunningFakeGcs, GoogleCloudStorage) {
    // `get_opts` reads an overwritten generation, which needs versioning.
    let server = spawn(Config {
        versioning: true,
        ..Config::default()
    })
    .await
    .expect("spawn fixture");
    let store = GoogleCloudStorageBuilder::new()
        .with_bucket_name("conformance")
        .with_base_url(&server.base_url())
        .with_bearer_token("fake")
        .build()
        .expect("build");
    (server, store)
}

#[tokio::test]
async fn basic_put_get_delete_list() {
    let (_s, gcs) = start().await;
    put_get_delete_list(&gcs).await;
    list_with_offset_exclusivity(&gcs).await;
    list_uses_directories_correctly(&gcs).await;
    list_with_delimiter(&gcs).await;
    get_nonexistent_object(&gcs, None).await.unwrap_err();
}

#[tokio::test]
async fn copy_and_rename() {
    let (_s, gcs) = start().await;
    rename_and_copy(&gcs).await;
    copy_if_not_exists(&gcs).await;
    copy_rename_nonexistent_object(&gcs).await;
}

#[tokio::test]
async fn conditional_requests() {
    let (_s, gcs) = start().await;
    get_opts(&gcs).await;
    put_opts(&gcs, true).await;
}

#[tokio::test]
async fn attributes() {
    let (_s, gcs) = start().await;
    put_get_attributes(&gcs).await;
}

#[tokio::test]
async fn streaming_and_multipart() {
    let (_s, gcs) = start().await;
    stream_get(&gcs).await;
    multipart(&gcs, &gcs).await;
    multipart_with_opts(&gcs, &gcs).await;
    multipart_put_part_out_of_order(&gcs, &gcs).await;
    multipart_race_condition(&gcs, true).await;
    multipart_out_of_order(&gcs).await;
}

#[tokio::test]
async fn paginated() {
    let (_s, gcs) = start().await;
    list_paginated(&gcs, &gcs).await;
}
