//! Toka as an MCP server: an MCP client (Claude Desktop, Claude Code, an agent SDK)
//! lists and calls tools, and every call is a Toka tool call, authorised by the
//! capability token and recorded in the log like any other.
//!
//! Two ways in:
//!
//! * **stdio**, `toka mcp --server URL`: speaks MCP on stdin/stdout to the client that
//!   started it and the HTTP API to a running `toka serve`, with the token from
//!   `TOKA_TOKEN` or `--token-file` (never an argument: it would show in `ps`).
//! * **streamable HTTP**, `/mcp` on `toka serve`: the bearer token on every request;
//!   without a usable one, 401 with `WWW-Authenticate: Bearer`.
//!
//! Either way `tools/list` shows exactly the tools the token may call (what `GET
//! /v1/tools` shows it), with their JSON Schemas; a refused or failed call is an MCP
//! tool error (`isError: true`, with Toka's reason), never a protocol failure; a call
//! still waiting for approval answers with its id and state.
//!
//! What it is not: the rules (the kernel decides every call) or the tools (the node
//! runs them). Besides the registered tools, Toka's own operations are tools
//! ([`ops`]: `toka.spawn_agent`, `toka.schedule_task`, `toka.decide_approval`, …),
//! listed when the token has their permission.
//!
//! When the tools a token may call change (a tool registered or retired, the token
//! revoked), a client listening for it gets `notifications/tools/list_changed`.
//!
//! And Toka is a **gateway**: downstream MCP servers in `[tools.mcp.<name>]`, started
//! over stdio or reached over streamable HTTP, become tools `mcp.<name>.<tool>` of the
//! node (see [`gateway_sources`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod changes;
mod gateway;
mod http;
mod node;
pub mod ops;
mod server;

pub use backend::Backend;
pub use gateway::{DownstreamConfig, Endpoint, Gateway, GatewayError, gateway_sources};
pub use http::http_service;
pub use node::{Node, StartError, start_node};
pub use server::{CALL_WAIT_SECS, MAX_CALL_WAIT_SECS, TokaMcp};

use rmcp::ServiceExt as _;

/// Why an MCP session could not run.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The MCP session failed.
    #[error("MCP session: {0}")]
    Session(String),
}

/// The backend of a bridge to the Toka server at `server`.
pub fn remote(server: &str, wait_secs: u64) -> Result<Backend, McpError> {
    let http = reqwest::Client::builder()
        // Above both the longest call wait and the tool-list long-poll.
        .timeout(std::time::Duration::from_secs(
            wait_secs.clamp(changes::LIST_WAIT_SECS, MAX_CALL_WAIT_SECS) + 15,
        ))
        .build()
        .map_err(|e| McpError::Client(e.to_string()))?;
    Ok(Backend::Remote {
        http,
        base: server.trim_end_matches('/').into(),
    })
}

/// Serves MCP on stdin/stdout over `backend` with `token`, until the client closes
/// the session.
pub async fn serve_stdio(backend: Backend, token: &str, wait_secs: u64) -> Result<(), McpError> {
    let service = TokaMcp::new(backend, Some(token), wait_secs)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    service
        .waiting()
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    Ok(())
}
