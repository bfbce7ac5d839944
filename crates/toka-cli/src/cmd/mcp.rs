//! `toka mcp`: Toka as an MCP server on stdio, bridged to a running `toka serve`.
//!
//! stdout carries the protocol only; logs go to stderr. The token comes from
//! `TOKA_TOKEN` or `--token-file`, never from an argument (it would show in `ps`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The running Toka server to act through.
    #[arg(long, env = "TOKA_SERVER", default_value = "http://127.0.0.1:7878")]
    server: String,
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
    tracing::info!(server = %args.server, "MCP bridge on stdio");
    toka_mcp::serve_stdio_bridge(&args.server, &token, args.wait_secs).await?;
    Ok(ExitCode::SUCCESS)
}
