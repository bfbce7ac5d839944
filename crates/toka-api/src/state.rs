//! [`AppState`]: what every handler shares.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use toka_runtime::Runtime;
use tokio::sync::{Semaphore, watch};

/// The server's shared state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The runtime.
    pub runtime: Runtime,
    /// Becomes `true` when the server is shutting down: event streams end.
    pub shutdown: watch::Receiver<bool>,
    /// One permit per event stream that may be open at once.
    pub streams: Arc<Semaphore>,
    /// Recent commit rates (for `GET /v1/overview`).
    pub rates: Arc<crate::overview::CommitRates>,
    /// Checks requests' tokens, caching signatures.
    pub verifier: Arc<crate::auth::RequestVerifier>,
}

impl AppState {
    /// The state for `runtime`, serving at most `max_streams` event streams at once,
    /// shutting down when `shutdown` turns `true`.
    pub fn new(runtime: Runtime, max_streams: usize, shutdown: watch::Receiver<bool>) -> Self {
        let rates = crate::overview::CommitRates::start(runtime.clone(), shutdown.clone());
        let verifier = Arc::new(crate::auth::RequestVerifier::new(runtime.keys()));
        Self {
            runtime,
            shutdown,
            streams: Arc::new(Semaphore::new(max_streams)),
            rates,
            verifier,
        }
    }

    /// Now, in seconds since the epoch (for token checks).
    pub fn now_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
