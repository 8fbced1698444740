//! The async shell around Landfall's decisions: it connects the stages of the data flow.
//!
//! ```text
//! consumer thread (landfall-kafka) ──events──> sink loop (sink.rs) ──seal──> land task (land.rs)
//!        ^                                        │  ledger + buffer per partition      │ upload, commit, marker
//!        └──────── commands: pause, seek, hint ───┘<──────────── landing result ────────┘
//! ```
//!
//! - [`sink::run_sink`]: one sink, from consumer group membership to committed markers.
//! - [`land::land`]: one batch to the store, marker after data.
//! - [`metrics`], [`http`]: what an operator sees.

pub mod http;
pub mod land;
pub mod metrics;
pub mod sink;

pub use land::SinkStores;
pub use metrics::Metrics;
pub use sink::{run_sink, SinkContext, SinkError};
