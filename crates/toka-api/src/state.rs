//! [`AppState`]: what every handler shares.

use std::time::{SystemTime, UNIX_EPOCH};

use toka_runtime::Runtime;

/// The server's shared state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The runtime.
    pub runtime: Runtime,
}

impl AppState {
    /// Now, in seconds since the epoch (for token checks).
    pub fn now_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
