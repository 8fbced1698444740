//! The async shell around Landfall's decisions: it connects the stages of the data flow.
//!
//! ```text
//! consumer thread (landfall-kafka) ──events──> sink loop (sink.rs) ──Land──> land task (land.rs)
//!        ^                                        │  SinkState (landfall-core)    │ upload, commit record
//!        │                                        │  decides; the loop performs   v
//!        └──────── commands: pause, seek, hint ───┘<── landing result ──── post-commit step (publish.rs)
//! ```
//!
//! - [`sink::run_sink`]: one sink, from consumer group membership to committed markers;
//!   [`sink::drive`] is its loop, with the consumer's channels passed in (tests script them).
//! - [`land::land`]: one batch to the store, marker after data.
//! - [`publish::Publisher`]: what runs after every committed batch, fresh or repaired.
//! - [`stores::SinkStores`]: a sink's three locations, opened from its config.
//! - [`metrics`], [`http`], [`board`]: what an operator sees (`/metrics`, `/healthz`, `/readyz`,
//!   `/status`).
//! - [`windows::Windows`]: window `_SUCCESS` markers (late routing, progress, the closer task).

pub mod board;
pub mod http;
pub mod land;
pub mod metrics;
pub mod publish;
pub mod sink;
pub mod stores;
pub mod windows;

pub use metrics::Metrics;
pub use sink::{drive, drive_with, run_sink, SinkContext, SinkError};
pub use stores::SinkStores;
