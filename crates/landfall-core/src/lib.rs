//! Landfall's pure logic: no tokio, no rdkafka, no object_store. Everything here is a decision
//! or a transformation that can be unit- and property-tested without a broker or a bucket.
//!
//! Where each module sits in the data flow (see `docs/architecture.md`):
//!
//! ```text
//! Kafka ─(1) record ─(2) decode + buffer + flush ─(3) parquet ─(4) upload ─(5) manifest ─(6) hint
//!         record.rs    decode.rs buffer.rs flush.rs  parquet_props.rs        manifest.rs   ledger.rs
//!                                                     keys.rs (every object key)
//! ```
//!
//! - [`config`]: the sink TOML, strictly parsed and validated into [`config::SinkConfig`].
//! - [`orphans`]: which objects `landfall gc` may delete (only its own sink's uncommitted
//!   attempts).
//! - [`ledger`]: which offsets are durable; the rules that make landing exactly-once.
//! - [`notify`]: the Kafka notification of a committed batch or window marker.
//! - [`windows`]: window watermarks, late routing and window `_SUCCESS` assembly.

pub mod budget;
pub mod buffer;
pub mod config;
pub mod coverage;
pub mod deadletter;
pub mod decode;
pub mod flush;
pub mod keys;
pub mod ledger;
pub mod manifest;
pub mod notify;
pub mod orphans;
pub mod parquet_props;
pub mod record;
pub mod schema;
pub mod shutdown;
pub mod state;
pub mod status;
pub mod windows;

pub use record::{KafkaRecord, TopicPartition};
