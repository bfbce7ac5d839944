//! The Toka runtime: turns the pure kernel and a storage driver into a running system.
//!
//! * [`Config`]: settings from `toka.toml` with `TOKA_*` overrides, every key documented
//!   and checked.
//! * [`Runtime`]: the commit pipeline (one writer owns the kernel; submitters queue;
//!   group commit; nobody hears "ok" before the events are durable), recovery by
//!   snapshot + replay at start, snapshots, per-origin rate limits, subscriptions from
//!   any `seq`, clean shutdown.
//! * The token service ([`Runtime::issue_token`], [`Runtime::issue_root_token`]): every
//!   token the runtime signs is a `token.issued` event the kernel decided first.
//! * [`host`]: user-space agents running inside the runtime under a supervisor.
//!
//! What it is not: the HTTP server (`toka-api`) or the command line (`toka-cli`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use toka_runtime::{Runtime, RuntimeOptions};
//! use toka_store_memory::MemoryStore;
//! use toka_auth::{KeySet, SigningKey};
//!
//! let keys = KeySet::new(SigningKey::hs256("k1", &[7u8; 32])?);
//! let runtime = Runtime::with_store(Arc::new(MemoryStore::new()), keys, RuntimeOptions::default()).await?;
//! let root = runtime.root().unwrap();
//! let admin = runtime.issue_root_token().await?;
//! assert_eq!(admin.claims.sub, root);
//! runtime.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod checkpoint;
mod clock;
pub mod codec;
pub mod config;
mod error;
pub mod host;
pub mod keys;
pub mod load;
mod pipeline;
pub mod recovery;
mod runtime;
mod shared;
mod signing;
mod store;
mod subscription;
mod tokens;
pub mod tools;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use error::{Refused, RuntimeError, SubmitError};
pub use pipeline::{ALONE_AFTER, Committed, HEAD_WAIT};
pub use runtime::{Runtime, RuntimeOptions};
pub use shared::{BATCH_BUCKETS, LATENCY_BUCKETS_MS, Metrics, MetricsSnapshot};
pub use signing::{KeyChange, KeyReloadError};
pub use store::{compiled_drivers, open_store};
pub use subscription::Subscription;
pub use tokens::{IssueError, SignedToken};
