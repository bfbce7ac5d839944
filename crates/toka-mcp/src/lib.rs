//! Toka as an MCP server: an MCP client (Claude Desktop, Claude Code, an agent SDK)
//! lists and calls tools, and every call is a Toka tool call, authorised by the
//! capability token and recorded in the log like any other.
//!
//! This crate has the **bridge**: `toka mcp --server URL` speaks MCP on stdio to its
//! client and the HTTP API to a running `toka serve`, with the token from `TOKA_TOKEN`
//! or `--token-file` (never an argument: it would show in `ps`). `tools/list` shows
//! exactly the tools the token may call, with their JSON Schemas; a refused or failed
//! call is an MCP tool error (`isError: true`, with Toka's reason), never a protocol
//! failure; a call waiting for approval answers with its id and state.
//!
//! What it is not: the rules (the kernel decides every call) or the tools (the node
//! runs them). Not yet here (issue 11): Toka's own operations as MCP tools, the
//! streamable HTTP endpoint on `toka serve`, the stand-alone mode without a server,
//! `notifications/tools/list_changed`, and the gateway to downstream MCP servers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bridge;

pub use bridge::{Bridge, BridgeError, CALL_WAIT_SECS, MAX_CALL_WAIT_SECS, serve_stdio};
