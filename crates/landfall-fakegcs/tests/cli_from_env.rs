//! Runs the `landfall-fakegcs` binary as a child process, configures
//! object_store purely from `GOOGLE_*` environment variables
//! (`GoogleCloudStorageBuilder::from_env()`), and pokes the JSON API.
//!
//! This file deliberately holds a single test: it mutates the process
//! environment, which must not race with other threads.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures::TryStreamExt;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kills the child (by its handle) when the test ends, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Minimal HTTP/1.1 GET (Connection: close), returns (status, body).
async fn http_get(base: &str, path_and_query: &str) -> (u16, String) {
    let host = base.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[test]
fn binary_with_from_env_config() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_landfall-fakegcs"))
        .args(["--port", "0", "--bucket", "lake", "--bucket", "other"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start landfall-fakegcs");
    let stdout = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    // The documented env-only configuration. Set before any other thread
    // (tokio runtime, HTTP client) exists; drop any GOOGLE_* settings of the
    // developer's shell so the test is hermetic.
    for (k, _) in std::env::vars_os() {
        if k.to_str()
            .is_some_and(|k| k.starts_with("GOOGLE_") || k == "SERVICE_ACCOUNT")
        {
            std::env::remove_var(k);
        }
    }
    std::env::set_var("GOOGLE_BASE_URL", &base);
    std::env::set_var("GOOGLE_BEARER_TOKEN", "fake");
    std::env::set_var("GOOGLE_BUCKET", "lake");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = GoogleCloudStorageBuilder::from_env().build().unwrap();
        store
            .put(&Path::from("env/a b+c.txt"), "hi".into())
            .await
            .unwrap();
        store
            .put(&Path::from("env/d/e.txt"), "there".into())
            .await
            .unwrap();
        let got = store.get(&Path::from("env/a b+c.txt")).await.unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), b"hi");
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(listed.len(), 2);

        // The pre-created buckets exist (JSON API bucket list) ...
        let (status, body) = http_get(&base, "/storage/v1/b?project=x").await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let names: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["lake", "other"]);

        // ... and the JSON API lists what object_store wrote.
        let (status, body) = http_get(&base, "/storage/v1/b/lake/o?prefix=env/&delimiter=/").await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["items"][0]["name"], "env/a b+c.txt");
        assert_eq!(v["items"][0]["size"], "2");
        assert!(v["items"][0]["generation"].as_str().is_some());
        assert!(v["items"][0]["etag"].as_str().is_some());
        assert_eq!(v["prefixes"], serde_json::json!(["env/d/"]));

        let (status, body) =
            http_get(&base, "/storage/v1/b/lake/o?maxResults=1&startOffset=env/b").await;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["items"][0]["name"], "env/d/e.txt");
        assert!(v.get("nextPageToken").is_none());

        let (status, body) =
            http_get(&base, "/storage/v1/b/lake/o/env%2Fd%2Fe.txt?alt=media").await;
        assert_eq!((status, body.as_str()), (200, "there"));
        let (status, _) = http_get(&base, "/storage/v1/b/lake/o/env%2Fnope").await;
        assert_eq!(status, 404);
    });
    drop(child);
}
