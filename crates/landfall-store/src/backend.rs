//! Object-store backends from URLs: `s3://bucket/prefix`, `gs://bucket/prefix`, `file:///path`.
//! One code path for all: only the builder differs.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

use landfall_core::config::RedactedOptions;

use crate::error::StoreError;

/// A bucket (or directory) and a key prefix within it.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// `s3://bucket`, `gs://bucket` or `file://` — prepended to keys to make URLs.
    base_url: String,
    /// Key prefix inside the store (no leading or trailing slash).
    prefix: String,
}

/// Settings for opening a location; the store section of a sink config.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// object_store configuration keys (`aws_endpoint`, `aws_region`, `google_service_account`...).
    pub options: BTreeMap<String, String>,
    pub max_retries: u32,
    pub request_timeout: Duration,
}

// Hand-written: the options carry credentials, and object_store's own `Debug` of a store prints
// its configuration, credentials included. Only the URL and the non-secret settings show.
impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("options", &RedactedOptions(&self.options))
            .field("max_retries", &self.max_retries)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Location").field(&self.display()).finish()
    }
}

impl Location {
    /// Wrap an existing store (tests use this to inject faults).
    pub fn from_store(store: Arc<dyn ObjectStore>, base_url: &str, prefix: &str) -> Self {
        Location {
            store,
            base_url: base_url.trim_end_matches('/').to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    pub fn open(url: &url::Url, opts: &OpenOptions) -> Result<Location, StoreError> {
        let open_err = |message: String| StoreError::Open {
            url: url.to_string(),
            message,
        };
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: opts.max_retries as usize,
            retry_timeout: Duration::from_secs(120),
        };
        // Timeouts go in as config keys: `with_client_options` would replace the client options
        // `from_env` read (AWS_ALLOW_HTTP, proxies, ...).
        let timeout = format!("{}ms", opts.request_timeout.as_millis().max(1));
        let connect_timeout = "5s".to_string();
        let bucket = url.host_str().unwrap_or_default().to_string();
        let prefix = url.path().trim_matches('/').to_string();
        let (store, base_url): (Arc<dyn ObjectStore>, String) = match url.scheme() {
            "s3" => {
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry)
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                        &timeout,
                    )
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        &connect_timeout,
                    );
                let mut has_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
                for (k, v) in &opts.options {
                    let key = AmazonS3ConfigKey::from_str(k).map_err(|_| {
                        open_err(format!(
                            "unknown S3 option `{k}` (see docs/configuration.md)"
                        ))
                    })?;
                    if matches!(
                        key,
                        AmazonS3ConfigKey::AccessKeyId
                            | AmazonS3ConfigKey::WebIdentityTokenFile
                            | AmazonS3ConfigKey::ContainerCredentialsRelativeUri
                            | AmazonS3ConfigKey::ContainerCredentialsFullUri
                            | AmazonS3ConfigKey::SkipSignature
                    ) {
                        has_credentials = true;
                    }
                    b = b.with_config(key, v);
                }
                // Without static keys object_store falls back to web identity, container
                // credentials or the EC2 instance metadata endpoint. Refuse to guess the last one
                // unless asked: a missing key should be a clear error, not a hang against an
                // address that does not answer.
                let federated = std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
                    || std::env::var_os("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
                    || std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
                let unsigned = opts
                    .options
                    .get("aws_skip_signature")
                    .is_some_and(|v| v == "true");
                let imds = opts
                    .options
                    .get("aws_imdsv1_fallback")
                    .is_some_and(|v| v == "true")
                    || std::env::var("LANDFALL_ALLOW_INSTANCE_METADATA").is_ok_and(|v| v == "true");
                if !(has_credentials || federated || unsigned || imds) {
                    return Err(open_err(
                        "missing credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or store.options), use web identity (IRSA), or set LANDFALL_ALLOW_INSTANCE_METADATA=true to use the EC2 instance role".into(),
                    ));
                }
                let s = b.build().map_err(|e| open_err(e.to_string()))?;
                (Arc::new(s), format!("s3://{bucket}"))
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry)
                    .with_config(GoogleConfigKey::Client(ClientConfigKey::Timeout), &timeout)
                    .with_config(
                        GoogleConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        &connect_timeout,
                    );
                for (k, v) in &opts.options {
                    let key = GoogleConfigKey::from_str(k).map_err(|_| {
                        open_err(format!(
                            "unknown GCS option `{k}` (see docs/configuration.md)"
                        ))
                    })?;
                    b = b.with_config(key, v);
                }
                let s = b.build().map_err(|e| open_err(e.to_string()))?;
                (Arc::new(s), format!("gs://{bucket}"))
            }
            "file" => {
                let root = url
                    .to_file_path()
                    .map_err(|_| open_err("not an absolute local path".into()))?;
                std::fs::create_dir_all(&root)
                    .map_err(|e| open_err(format!("cannot create {}: {e}", root.display())))?;
                let s = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| open_err(e.to_string()))?
                    // "Durable" must mean on disk before a marker lists the file.
                    .with_fsync(true);
                // Without a trailing slash, however the URL spelled the directory: manifests
                // list `url_of` URLs, and `file:///d/` must not make `file:///d//topic/...`.
                let base = format!(
                    "file://{}",
                    root.display().to_string().trim_end_matches('/')
                );
                return Ok(Location {
                    store: Arc::new(s),
                    base_url: base,
                    prefix: String::new(),
                });
            }
            other => return Err(open_err(format!("unsupported scheme `{other}`"))),
        };
        Ok(Location {
            store,
            base_url,
            prefix,
        })
    }

    /// Store path of a key relative to this location's prefix.
    pub fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{}", self.prefix, key))
        }
    }

    /// Key relative to this location's prefix, if `path` lies under it.
    pub fn relative<'a>(&self, path: &'a Path) -> Option<&'a str> {
        let s = path.as_ref();
        if self.prefix.is_empty() {
            Some(s)
        } else {
            s.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
        }
    }

    /// Full URL of a store path: what manifests list and readers open.
    pub fn url_of(&self, path: &Path) -> String {
        format!("{}/{}", self.base_url, path)
    }

    /// The key readers use within the bucket (for file:// the absolute path).
    pub fn bucket_key(&self, path: &Path) -> String {
        if self.base_url.starts_with("file://") {
            format!("{}/{}", self.base_url.trim_start_matches("file://"), path)
        } else {
            path.to_string()
        }
    }

    pub fn display(&self) -> String {
        if self.prefix.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}/{}", self.base_url, self.prefix)
        }
    }
}

impl Location {
    /// The same location through another store (tests wrap the real one to inject faults).
    pub fn with_store(&self, store: Arc<dyn ObjectStore>) -> Location {
        Location {
            store,
            ..self.clone()
        }
    }

    /// Key relative to this location of a URL it produced with [`Location::url_of`].
    pub fn key_of_url(&self, url: &str) -> Option<String> {
        let path = url.strip_prefix(&self.base_url)?.strip_prefix('/')?;
        self.relative(&Path::from(path)).map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a log line, a panic message or an error with `{:?}` could print of a store: never
    /// its credentials.
    #[test]
    fn debug_never_prints_credentials() {
        let opts = OpenOptions {
            options: BTreeMap::from([
                ("aws_access_key_id".to_string(), "AKIDEXAMPLE".to_string()),
                (
                    "aws_secret_access_key".to_string(),
                    "s3cr3t-k3y-value".to_string(),
                ),
                ("aws_endpoint".to_string(), "http://127.0.0.1:1".to_string()),
                ("aws_allow_http".to_string(), "true".to_string()),
            ]),
            max_retries: 0,
            request_timeout: Duration::from_secs(1),
        };
        let loc = Location::open(&url::Url::parse("s3://lake/raw").unwrap(), &opts).unwrap();
        for shown in [format!("{opts:?}"), format!("{loc:?}")] {
            assert!(!shown.contains("s3cr3t-k3y-value"), "{shown}");
        }
        assert!(format!("{loc:?}").contains("s3://lake/raw"));
    }
}
