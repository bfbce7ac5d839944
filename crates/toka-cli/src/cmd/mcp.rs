//! `toka mcp`: Toka as an MCP server on stdio, for an MCP client that starts it.
//!
//! With `--server URL` (or `TOKA_SERVER`) it bridges to a running `toka serve`;
//! without, it opens the data folder of `--config` itself, as `toka serve` would (for
//! one user on a laptop; refused while a server holds the store). stdout carries the
//! protocol only; logs go to stderr. The token comes from `TOKA_TOKEN` or
//! `--token-file`, never from an argument (it would show in `ps`).
//!
//! `toka mcp config --client claude|cursor|generic` prints the snippet that makes an
//! MCP client use Toka.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::setup;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct McpArgs {
    #[command(subcommand)]
    command: Option<McpCommand>,
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

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// Print the JSON to paste into an MCP client's configuration.
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The client: claude (Claude Desktop's claude_desktop_config.json, Claude Code's
    /// .mcp.json), cursor (.cursor/mcp.json) or generic.
    #[arg(long, value_enum, default_value_t = Client::Generic)]
    client: Client,
    /// stdio: the client starts `toka mcp` (a bridge to the server); http: the client
    /// connects to /mcp on the server.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    transport: Transport,
    /// The Toka server.
    #[arg(long, env = "TOKA_SERVER", default_value = "http://127.0.0.1:7878",
          value_parser = server_url)]
    server: String,
    /// The file the client's `toka mcp` reads the token from (stdio; else the snippet
    /// passes TOKA_TOKEN in its environment).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The name the client shows for the server.
    #[arg(long, default_value = "toka")]
    name: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Client {
    Claude,
    Cursor,
    Generic,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Transport {
    Stdio,
    Http,
}

fn server_url(text: &str) -> Result<String, String> {
    let url = text.trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_string())
    } else {
        Err("the server URL must start with http:// or https://".into())
    }
}

/// The `mcpServers` entry for `args`.
fn client_config(args: &ConfigArgs, binary: &str) -> Result<Value> {
    let server = &args.server;
    let entry = match args.transport {
        Transport::Stdio => {
            let mut argv = vec!["mcp".to_string(), "--server".into(), server.to_string()];
            let mut entry = json!({"command": binary});
            match &args.token_file {
                Some(path) => {
                    let path = std::path::absolute(path)
                        .with_context(|| format!("{} is not a usable path", path.display()))?;
                    argv.push("--token-file".into());
                    argv.push(path.display().to_string());
                }
                None => entry["env"] = json!({"TOKA_TOKEN": "<a Toka token for this client>"}),
            }
            entry["args"] = json!(argv);
            entry
        }
        Transport::Http => {
            // The token stays out of the file where the client can read it from the
            // environment; each client spells that differently.
            let bearer = match args.client {
                Client::Claude => "Bearer ${TOKA_TOKEN}",
                Client::Cursor => "Bearer ${env:TOKA_TOKEN}",
                Client::Generic => "Bearer <a Toka token for this client>",
            };
            let mut entry = json!({
                "url": format!("{server}/mcp"),
                "headers": {"Authorization": bearer},
            });
            match args.client {
                Client::Claude => entry["type"] = json!("http"),
                Client::Generic => entry["type"] = json!("streamable-http"),
                Client::Cursor => {}
            }
            entry
        }
    };
    Ok(json!({"mcpServers": {args.name.clone(): entry}}))
}

fn print_config(args: &ConfigArgs) -> Result<ExitCode> {
    let binary = std::env::current_exe()
        .context("cannot tell where this toka binary is")?
        .display()
        .to_string();
    let config = client_config(args, &binary)?;
    crate::output::line(&serde_json::to_string_pretty(&config)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: McpArgs) -> Result<ExitCode> {
    if let Some(McpCommand::Config(config)) = &args.command {
        return print_config(config);
    }
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
