//! Logging set-up and the files a Toka folder holds.

use std::path::{Path, PathBuf};

use anyhow::Result;
use toka_runtime::Config;

/// Logs through tracing to stderr; `RUST_LOG` filters (default: warnings).
pub fn logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the configuration, with a hint if it is missing.
pub fn load_config(path: &Path) -> Result<Config> {
    if !path.exists() {
        anyhow::bail!(
            "{} not found; run `toka init` first or pass --config",
            path.display()
        );
    }
    Ok(Config::load(path)?)
}

/// The key file of a configuration.
pub fn key_file(config: &Config) -> PathBuf {
    config.resolve(&config.auth.key_file)
}
