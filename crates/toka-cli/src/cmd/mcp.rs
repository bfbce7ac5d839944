//! `toka mcp`: Toka as an MCP server on stdio, for an MCP client that starts it.
//!
//! With `--server URL` (or `TOKA_SERVER`) it bridges to a running `toka serve`;
//! without, it opens the data folder of `--config` itself, as `toka serve` would (for
//! one user on a laptop; refused while a server holds the store). stdout carries the
//! protocol only; logs go to stderr. The token comes from `TOKA_TOKEN` or
//! `--token-file`, never from an argument (it would show in `ps`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::setup;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// A running Toka server to act through (default: open --config's data folder).
    #[arg(long, env = "TOKA_SERVER")]
    server: Option<String>,
    /// The configuration, when there is no --server.
    #[arg(long, env = "TOKA_CONFIG", default_value = "toka.toml")]
    config: PathBuf,
    /// A file holding the capability token (else TOKA_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Seconds a tool call waits for its result (approval included) before answering
    /// with the call's id and state.
    #[arg(long, default_value_t = toka_mcp::CALL_WAIT_SECS,
          value_parser = clap::value_parser!(u64).range(0..=toka_mcp::MAX_CALL_WAIT_SECS))]
    wait_secs: u64,
}

pub async fn run(args: McpArgs) -> Result<ExitCode> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?,
        None => std::env::var("TOKA_TOKEN").unwrap_or_default(),
    };
    if token.trim().is_empty() {
        bail!(
            "no token: set TOKA_TOKEN or pass --token-file (never the token itself as an argument)"
        );
    }
    if let Some(server) = &args.server {
        tracing::info!(%server, "MCP on stdio, bridged to the server");
        let backend = toka_mcp::remote(server, args.wait_secs)?;
        toka_mcp::serve_stdio(backend, token.trim(), args.wait_secs).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = setup::load_config(&args.config)?;
    let node = toka_mcp::start_node(&config).await?;
    let runtime = node.runtime.clone();
    tracing::info!(config = %args.config.display(), "MCP on stdio, on the data folder");
    let (_stopping, stop) = tokio::sync::watch::channel(false);
    let app = toka_api::AppState::new(runtime.clone(), config.server.max_streams, stop);
    let api = toka_api::router(app, config.server.max_body_bytes);
    let served =
        toka_mcp::serve_stdio(toka_mcp::Backend::Local(api), token.trim(), args.wait_secs).await;
    node.shutdown(std::time::Duration::from_secs(3)).await;
    served?;
    Ok(ExitCode::SUCCESS)
}
