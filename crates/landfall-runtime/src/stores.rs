//! The three places a sink writes, opened from its config: one way for `landfall run`, the
//! audit commands and the tests alike.

use std::time::Duration;

use landfall_core::config::{SinkConfig, StoreConfig};
use landfall_store::{Location, OpenOptions, StoreError};

/// Data files, markers (commit records, index, batch markers) and dead letters.
#[derive(Debug, Clone)]
pub struct SinkStores {
    pub data: Location,
    pub markers: Location,
    pub dead_letters: Location,
}

/// The start-up probe fails fast: one retry, at most 10 s per request.
const PROBE_MAX_RETRIES: u32 = 1;
const PROBE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn options(store: &StoreConfig) -> OpenOptions {
    OpenOptions {
        options: store.options.clone(),
        max_retries: store.max_retries,
        request_timeout: Duration::from_millis(store.request_timeout_ms),
    }
}

/// `store.sse*` applies to every S3 object the sink writes: data, markers and dead letters,
/// whichever options map a location is opened with (a location on another backend has no such
/// keys). Validation refuses the same keys in the maps themselves, so nothing here overrides a
/// user's choice.
fn with_encryption(
    store: &StoreConfig,
    scheme: &str,
    mut options: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    if let Some(encryption) = store.encryption.as_ref().filter(|_| scheme == "s3") {
        for (k, v) in encryption.object_store_options() {
            options.insert(k.to_string(), v);
        }
    }
    options
}

impl SinkStores {
    /// Open the sink's locations with its configured retries and timeouts.
    pub fn open(cfg: &SinkConfig) -> Result<SinkStores, StoreError> {
        Self::open_with(cfg, None)
    }

    /// Open them for the start-up probe: wrong credentials or a missing bucket should end the
    /// start in seconds, not after the configured retry budget.
    pub fn open_for_probe(cfg: &SinkConfig) -> Result<SinkStores, StoreError> {
        Self::open_with(cfg, Some((PROBE_MAX_RETRIES, PROBE_REQUEST_TIMEOUT)))
    }

    fn open_with(
        cfg: &SinkConfig,
        probe: Option<(u32, Duration)>,
    ) -> Result<SinkStores, StoreError> {
        let mut data_opts = options(&cfg.store);
        if let Some((retries, timeout)) = probe {
            data_opts.max_retries = retries;
            data_opts.request_timeout = data_opts.request_timeout.min(timeout);
        }
        // Markers may live in another bucket with its own credentials (`marker.options`).
        let mut marker_opts = data_opts.clone();
        if !cfg.marker.options.is_empty() {
            marker_opts.options = cfg.marker.options.clone();
        }
        let encrypted = |scheme: &str, opts: &OpenOptions| OpenOptions {
            options: with_encryption(&cfg.store, scheme, opts.options.clone()),
            ..opts.clone()
        };
        let data = Location::open(
            &cfg.store.url,
            &encrypted(cfg.store.url.scheme(), &data_opts),
        )?;
        let markers = Location::open(
            &cfg.marker.prefix,
            &encrypted(cfg.marker.prefix.scheme(), &marker_opts),
        )?;
        // Dead letters take the credentials of whichever of the two they share a bucket with.
        let dl = &cfg.errors.dead_letter_url;
        let same_as_markers = dl.scheme() == cfg.marker.prefix.scheme()
            && dl.host_str() == cfg.marker.prefix.host_str();
        let dead_letters = Location::open(
            dl,
            &encrypted(
                dl.scheme(),
                if same_as_markers {
                    &marker_opts
                } else {
                    &data_opts
                },
            ),
        )?;
        Ok(SinkStores {
            data,
            markers,
            dead_letters,
        })
    }
}
