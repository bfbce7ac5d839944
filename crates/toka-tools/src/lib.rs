//! Toka's tools: the [`Tool`] trait, the [`Registry`] a node offers, and the built-in
//! tools, each safe by construction.
//!
//! * `fs.read`, `fs.write`, `fs.list`: inside a workspace folder (one per node, or one
//!   per agent), every path opened beneath the folder's handle: `..`, absolute paths,
//!   symlinks pointing out, NUL bytes and over-long names are refused; sizes are
//!   capped; `fs.write` never writes through a symlink.
//! * `http.fetch`: GET or POST to hosts on an allowlist only, each redirect checked
//!   again, with a timeout and a response size cap.
//! * `exec.<name>`: only commands declared in `toka.toml`, each a fixed program with an
//!   argument template filled from schema-checked input, run without a shell, with a
//!   cleared environment, a timeout, in the workspace, output capped.
//!
//! Which tools a node offers, and how, comes from the `[tools]` section of `toka.toml`
//! ([`ToolsConfig`]). The registry is what the runtime's executor runs calls with
//! ([`toka_runtime::tools::ToolHost`]) and what the kernel checks inputs with
//! ([`JsonSchemaCheck`]).
//!
//! What it is not: the rules of who may call what (the kernel decides those) or the
//! record of calls (the log holds it).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod exec;
mod fs;
mod http;
mod node;
mod registry;
mod schema;
mod source;
mod workspace;

use async_trait::async_trait;
use toka_types::{ApprovalPolicy, EntityId, RetryPolicy};

pub use config::{ConfigError, ExecCommand, HttpConfig, ToolsConfig};
pub use node::{NodeError, plug_in, start_node, start_node_with};
pub use registry::Registry;
pub use schema::JsonSchemaCheck;
pub use source::{ToolSource, ToolsChanged};
pub use workspace::{Workspace, WorkspaceError};

/// What a tool knows about the call it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolContext {
    /// The call.
    pub call: EntityId,
    /// The agent it is made for.
    pub agent: EntityId,
    /// Which run of the call this is (2 and up after a crash, repeatable tools only).
    pub attempt: u32,
}

/// Why a tool failed; the message goes to the caller as the call's error, so it says
/// what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// How a tool presents itself: everything of a [`toka_types::ToolSpec`] but the
/// approval window, which the node sets.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The JSON Schema of its input.
    pub input_schema: serde_json::Value,
    /// Whether calls need approval (by default; `[tools] require_approval` decides).
    pub approval: ApprovalPolicy,
    /// What a crash does to a running call.
    pub retry: RetryPolicy,
    /// Longest a run may take, in milliseconds.
    pub timeout_ms: u64,
}

/// A tool. Implementations must keep their own sandbox: the input has been checked
/// against [`ToolInfo::input_schema`], nothing more.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Its name, description, schema and policies.
    fn info(&self) -> ToolInfo;

    /// Runs it once.
    async fn call(
        &self,
        input: serde_json::Value,
        ctx: &ToolContext,
    ) -> Result<serde_json::Value, ToolError>;
}
