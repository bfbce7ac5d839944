//! Logging set-up and the files a Toka folder holds.

use std::path::{Path, PathBuf};

use anyhow::Result;
use toka_runtime::Config;

/// Logs through tracing to stderr; `RUST_LOG` filters (default: warnings). Colour only
/// when stderr is a terminal and `NO_COLOR` is unset, so log files hold no escape codes.
pub fn logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .try_init();
}

/// Whether stderr may carry colour: a terminal, and `NO_COLOR` unset or empty.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
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
