//! Object-store IO for Landfall (arrows 4 and 5 of the data flow): backends from URLs, uploads,
//! the create-only commit that fences writers, recovery on assignment, and the scans behind
//! `landfall verify` and `landfall gc`. Decisions live in `landfall-core`; this crate only moves
//! bytes and classifies errors.

pub mod backend;
pub mod commit;
pub mod error;
pub mod io;
pub mod recovery;
pub mod scan;

pub use backend::{Location, OpenOptions};
pub use error::{ErrorClass, StoreError};
