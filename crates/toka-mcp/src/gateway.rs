//! The gateway: downstream MCP servers declared in `[tools.mcp.<name>]` become Toka
//! tools named `mcp.<name>.<tool>`, with their schemas, so permissions, approvals,
//! recording, crash rules and replay apply to them exactly as to built-in tools.
//!
//! ```toml
//! [tools.mcp.files]
//! command = "/usr/bin/python3"
//! args = ["files_server.py"]
//! env = { ROOT = "/srv/data" }      # the environment is otherwise empty
//! timeout_ms = 30000
//! repeatable = ["read"]              # tools safe to run again after a crash
//! ```
//!
//! A downstream server that dies or hangs fails the open call (the call's timeout
//! bounds it; never a hung caller) and is started again, with a growing pause, on the
//! next call. Only stdio servers for now; streamable HTTP downstreams are issue 11's
//! remaining part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde::Deserialize;
use serde_json::Value;
use toka_tools::{Tool, ToolContext, ToolError, ToolInfo};
use toka_types::{ApprovalPolicy, RetryPolicy};
use tokio::sync::Mutex;

/// The longest pause between restarts of a failing downstream server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `[tools.mcp.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownstreamConfig {
    /// The program (absolute, or relative to toka.toml's folder).
    pub command: PathBuf,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Fixed environment variables (the environment is otherwise empty).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Timeout of one call, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Tools of this server that are safe to run again after a crash.
    #[serde(default)]
    pub repeatable: Vec<String>,
}

fn default_timeout() -> u64 {
    30_000
}

type Session = RunningService<RoleClient, ()>;

/// One downstream server and its session (started again when it died).
struct Downstream {
    name: String,
    config: DownstreamConfig,
    base_dir: PathBuf,
    state: Mutex<Link>,
}

struct Link {
    session: Option<Arc<Session>>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Downstream {
    async fn connect(&self) -> Result<Session, String> {
        let program = if self.config.command.is_absolute() {
            self.config.command.clone()
        } else {
            self.base_dir.join(&self.config.command)
        };
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&self.config.args)
            .env_clear()
            .envs(&self.config.env)
            .current_dir(&self.base_dir);
        let transport = TokioChildProcess::new(command).map_err(|e| {
            format!(
                "cannot start MCP server {} ({}): {e}",
                self.name,
                program.display()
            )
        })?;
        let started = tokio::time::timeout(
            Duration::from_millis(self.config.timeout_ms),
            ().serve(transport),
        );
        match started.await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) => Err(format!(
                "MCP server {} did not start a session: {e}",
                self.name
            )),
            Err(_) => Err(format!(
                "MCP server {} did not answer within {} ms",
                self.name, self.config.timeout_ms
            )),
        }
    }

    /// The live session, starting the server if it is not running (unless it failed
    /// too recently: then why not).
    async fn session(&self) -> Result<Arc<Session>, String> {
        let mut link = self.state.lock().await;
        if let Some(s) = &link.session
            && !s.is_closed()
        {
            return Ok(Arc::clone(s));
        }
        if let Some(at) = link.retry_at
            && Instant::now() < at
        {
            return Err(format!(
                "MCP server {} is down (failed {} times); retrying in {} ms",
                self.name,
                link.failures,
                at.saturating_duration_since(Instant::now()).as_millis()
            ));
        }
        match self.connect().await {
            Ok(session) => {
                let session = Arc::new(session);
                link.session = Some(Arc::clone(&session));
                link.failures = 0;
                link.retry_at = None;
                Ok(session)
            }
            Err(e) => {
                link.failures += 1;
                let pause = Duration::from_millis(250 * 2u64.saturating_pow(link.failures.min(10)));
                link.retry_at = Some(Instant::now() + pause.min(MAX_BACKOFF));
                link.session = None;
                Err(e)
            }
        }
    }

    /// Forgets the session after a failed call, so the next call starts it again.
    async fn drop_session(&self) {
        let mut link = self.state.lock().await;
        if let Some(s) = link.session.take()
            && let Ok(session) = Arc::try_unwrap(s)
        {
            let _ = session.cancel().await;
        }
    }
}

/// One tool of a downstream server.
struct GatewayTool {
    downstream: Arc<Downstream>,
    remote: String,
    info: ToolInfo,
}

#[async_trait]
impl Tool for GatewayTool {
    fn info(&self) -> ToolInfo {
        self.info.clone()
    }

    async fn call(&self, input: Value, _ctx: &ToolContext) -> Result<Value, ToolError> {
        let session = self.downstream.session().await.map_err(ToolError)?;
        let arguments = match input {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let params = CallToolRequestParams::new(self.remote.clone()).with_arguments(arguments);
        let limit = Duration::from_millis(self.downstream.config.timeout_ms);
        let answer = tokio::time::timeout(limit, session.call_tool(params)).await;
        drop(session);
        match answer {
            Ok(Ok(result)) => {
                let value = serde_json::to_value(&result).unwrap_or(Value::Null);
                if result.is_error == Some(true) {
                    return Err(ToolError(format!(
                        "MCP server {} reported an error: {}",
                        self.downstream.name, value["content"]
                    )));
                }
                Ok(value)
            }
            Ok(Err(e)) => {
                self.downstream.drop_session().await;
                Err(ToolError(format!(
                    "MCP server {} failed: {e}",
                    self.downstream.name
                )))
            }
            Err(_) => {
                self.downstream.drop_session().await;
                Err(ToolError(format!(
                    "MCP server {} did not answer within {} ms",
                    self.downstream.name, self.downstream.config.timeout_ms
                )))
            }
        }
    }
}

/// Why the gateway's configuration is not usable.
#[derive(Debug, thiserror::Error)]
#[error("[tools.mcp.{server}] in toka.toml: {reason}")]
pub struct GatewayError {
    /// The server.
    pub server: String,
    /// Why.
    pub reason: String,
}

/// The downstream servers of a node, to stop them with it.
#[derive(Default)]
pub struct Gateway {
    servers: Vec<Arc<Downstream>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.servers.iter().map(|d| &d.name))
            .finish()
    }
}

impl Gateway {
    /// Stops every downstream server (SIGTERM, then kill), waiting for each.
    pub async fn close(&self) {
        for d in &self.servers {
            d.drop_session().await;
        }
    }
}

/// The tools of every downstream server in `servers` (`[tools.mcp]`), each server
/// started and asked for its tools now. A server that cannot be reached is logged and
/// offers no tools until the next start.
pub async fn gateway_tools(
    servers: &BTreeMap<String, toml::Value>,
    base_dir: &Path,
) -> Result<(Vec<Arc<dyn Tool>>, Gateway), GatewayError> {
    let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
    let mut gateway = Gateway::default();
    for (name, raw) in servers {
        let bad = |reason: String| GatewayError {
            server: name.clone(),
            reason,
        };
        let config: DownstreamConfig = raw
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        if !(1..=toka_types::limits::MAX_TOOL_TIMEOUT_MS).contains(&config.timeout_ms) {
            return Err(bad("timeout_ms out of range".into()));
        }
        toka_types::check_tool_name(&format!("mcp.{name}.x")).map_err(|e| bad(e.to_string()))?;
        let downstream = Arc::new(Downstream {
            name: name.clone(),
            config,
            base_dir: base_dir.to_path_buf(),
            state: Mutex::new(Link {
                session: None,
                failures: 0,
                retry_at: None,
            }),
        });
        gateway.servers.push(Arc::clone(&downstream));
        let limit = Duration::from_millis(downstream.config.timeout_ms);
        let listed = match downstream.session().await {
            Ok(session) => match tokio::time::timeout(limit, session.list_all_tools()).await {
                Ok(listed) => listed.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "no tools/list answer within {} ms",
                    limit.as_millis()
                )),
            },
            Err(e) => Err(e),
        };
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(server = %name, error = %e, "downstream MCP server unreachable; its tools are not offered");
                continue;
            }
        };
        for tool in listed {
            let full = format!("mcp.{name}.{}", tool.name);
            if let Err(e) = toka_types::check_tool_name(&full) {
                tracing::warn!(tool = %full, error = %e, "downstream tool skipped: its name does not fit a Toka tool name");
                continue;
            }
            let retry = if downstream
                .config
                .repeatable
                .iter()
                .any(|r| r == tool.name.as_ref())
            {
                RetryPolicy::Repeatable
            } else {
                RetryPolicy::AtMostOnce
            };
            let info = ToolInfo {
                name: full,
                description: format!(
                    "{} (through MCP server {name})",
                    tool.description.as_deref().unwrap_or("")
                ),
                input_schema: Value::Object((*tool.input_schema).clone()),
                approval: ApprovalPolicy::Never,
                retry,
                // Starting the server and the call are each bounded by timeout_ms; the
                // executor's own limit comes after both, so the gateway's timeout
                // fires first and stops a hung server.
                timeout_ms: downstream
                    .config
                    .timeout_ms
                    .saturating_mul(2)
                    .saturating_add(1000),
            };
            tools.push(Arc::new(GatewayTool {
                downstream: Arc::clone(&downstream),
                remote: tool.name.to_string(),
                info,
            }));
        }
    }
    Ok((tools, gateway))
}

/// Why a node with its gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `[tools]` is wrong.
    #[error(transparent)]
    Config(#[from] toka_tools::ConfigError),
    /// `[tools.mcp.*]` is wrong.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The node did not start.
    #[error(transparent)]
    Node(#[from] toka_tools::NodeError),
}

/// The node of `config` with its tools and the tools of its downstream MCP servers
/// (what `toka serve` runs).
pub async fn start_node(config: &toka_runtime::Config) -> Result<Node, StartError> {
    let tools = toka_tools::ToolsConfig::from_table(&config.tools, &config.base_dir)?;
    let (extra, gateway) = if tools.enabled {
        gateway_tools(&tools.mcp, &config.base_dir).await?
    } else {
        (Vec::new(), Gateway::default())
    };
    let (runtime, executor, registry) = toka_tools::start_node_with(config, extra).await?;
    Ok(Node {
        runtime,
        executor,
        registry,
        gateway,
    })
}

/// A running node: its runtime, tool executor, tools and downstream servers.
#[derive(Debug)]
pub struct Node {
    /// The runtime.
    pub runtime: toka_runtime::Runtime,
    /// The tool executor.
    pub executor: toka_runtime::tools::ToolExecutor,
    /// The tools it offers.
    pub registry: toka_tools::Registry,
    /// Its downstream MCP servers.
    pub gateway: Gateway,
}

impl Node {
    /// Lets running calls finish (up to `grace`), stops the downstream servers and
    /// the runtime (which commits what is queued).
    pub async fn shutdown(&self, grace: Duration) {
        self.executor.stop(grace).await;
        self.gateway.close().await;
        self.runtime.shutdown().await;
    }
}
