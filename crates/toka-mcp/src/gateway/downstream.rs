//! One downstream MCP server: its session, kept up by a supervisor task, and its
//! tools as a [`ToolSource`] (none while it is down, so the node retires them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::Value;
use toka_tools::{Tool, ToolContext, ToolError, ToolInfo, ToolSource, ToolsChanged};
use toka_types::{ApprovalPolicy, RetryPolicy};
use tokio::sync::watch;

use super::leftovers::Leftovers;
use super::{DownstreamConfig, Endpoint};

/// The longest pause between restarts of a failing downstream server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the supervisor looks whether a quiet session is still alive.
const LIVENESS_POLL: Duration = Duration::from_millis(250);

type Session = RunningService<RoleClient, ()>;

/// One downstream server.
pub(super) struct Downstream {
    pub(super) name: String,
    config: DownstreamConfig,
    base_dir: PathBuf,
    /// The session's peer and the tools it listed, while it is up.
    link: Mutex<Option<Link>>,
    /// The session a call last saw fail (an error or a timeout): restart it.
    failed: watch::Sender<u64>,
    /// The number of the newest session.
    sessions: std::sync::atomic::AtomicU64,
    changed: ToolsChanged,
    leftovers: Arc<Leftovers>,
}

/// A live session, and the server's process when Toka started it.
pub(super) struct Live {
    session: Session,
    pid: Option<u32>,
}

#[derive(Clone)]
struct Link {
    /// Which session this is (see `Downstream::failed`).
    number: u64,
    peer: Peer<RoleClient>,
    tools: Vec<(String, ToolInfo)>,
}

impl Downstream {
    pub(super) fn new(
        name: String,
        config: DownstreamConfig,
        base_dir: PathBuf,
        changed: ToolsChanged,
        leftovers: Arc<Leftovers>,
    ) -> Self {
        Self {
            name,
            config,
            base_dir,
            leftovers,
            link: Mutex::new(None),
            failed: watch::channel(0).0,
            sessions: std::sync::atomic::AtomicU64::new(0),
            changed,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    fn link(&self) -> Option<Link> {
        self.link.lock().ok().and_then(|l| l.clone())
    }

    fn set_link(&self, link: Option<Link>) {
        if let Ok(mut l) = self.link.lock() {
            *l = link;
        }
        self.changed.notify();
    }

    /// Offers the tools of the new `session`.
    fn up(&self, session: &Session, tools: Vec<(String, ToolInfo)>) {
        let number = self
            .sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        self.set_link(Some(Link {
            number,
            peer: session.peer().clone(),
            tools,
        }));
    }

    /// Resolves once a call saw the current session fail.
    async fn failed(&self) {
        let Some(number) = self.link().map(|l| l.number) else {
            return;
        };
        let mut failed = self.failed.subscribe();
        if failed.wait_for(|f| *f == number).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Closes `live` (a stdio server gets SIGTERM, then a kill).
    async fn close(&self, mut live: Live) {
        let _ = live.session.close_with_timeout(self.timeout()).await;
        drop(live.session);
        if let Some(pid) = live.pid {
            self.leftovers.stopped(pid);
        }
    }

    /// Starts (stdio) or connects to (HTTP) the server and opens a session.
    async fn open(&self) -> Result<Live, String> {
        let mut pid = None;
        let started = match &self.config.endpoint {
            Endpoint::Stdio { command, args, env } => {
                let program = if command.is_absolute() {
                    command.clone()
                } else {
                    self.base_dir.join(command)
                };
                let mut cmd = tokio::process::Command::new(&program);
                cmd.args(args)
                    .env_clear()
                    .envs(env)
                    .current_dir(&self.base_dir);
                let transport = TokioChildProcess::new(cmd)
                    .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
                pid = transport.id();
                if let Some(pid) = pid {
                    self.leftovers.started(pid);
                }
                tokio::time::timeout(self.timeout(), ().serve(transport)).await
            }
            Endpoint::Http {
                url,
                headers,
                bearer,
            } => {
                let http = reqwest::Client::builder()
                    .connect_timeout(self.timeout())
                    .pool_max_idle_per_host(0)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))?;
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(headers.clone());
                if let Some(token) = bearer {
                    config = config.auth_header(token.clone());
                }
                let transport = StreamableHttpClientTransport::with_client(http, config);
                tokio::time::timeout(self.timeout(), ().serve(transport)).await
            }
        };
        let failed = match started {
            Ok(Ok(session)) => return Ok(Live { session, pid }),
            Ok(Err(e)) => format!("no session: {e}"),
            Err(_) => format!("no answer within {} ms", self.config.timeout_ms),
        };
        // The transport, and with it the process, is gone already.
        if let Some(pid) = pid {
            self.leftovers.stopped(pid);
        }
        Err(failed)
    }

    /// Opens a session and lists the server's tools.
    async fn connect(&self) -> Result<(Live, Vec<(String, ToolInfo)>), String> {
        let live = self.open().await?;
        let listed = tokio::time::timeout(self.timeout(), live.session.list_all_tools()).await;
        let listed = match listed {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                self.close(live).await;
                return Err(format!("tools/list failed: {e}"));
            }
            Err(_) => {
                self.close(live).await;
                return Err(format!(
                    "no tools/list answer within {} ms",
                    self.config.timeout_ms
                ));
            }
        };
        let tools = listed
            .into_iter()
            .filter_map(|tool| self.info_of(&tool))
            .collect();
        Ok((live, tools))
    }

    /// The Toka tool of a downstream tool, if its name fits.
    fn info_of(&self, tool: &rmcp::model::Tool) -> Option<(String, ToolInfo)> {
        let name = &self.name;
        let full = format!("mcp.{name}.{}", tool.name);
        if let Err(e) = toka_types::check_tool_name(&full) {
            tracing::warn!(tool = %full, error = %e, "downstream tool skipped: its name does not fit a Toka tool name");
            return None;
        }
        let repeatable = self
            .config
            .repeatable
            .iter()
            .any(|r| r == tool.name.as_ref());
        let info = ToolInfo {
            name: full,
            description: format!(
                "{} (through MCP server {name})",
                tool.description.as_deref().unwrap_or("")
            ),
            input_schema: Value::Object((*tool.input_schema).clone()),
            approval: ApprovalPolicy::Never,
            retry: if repeatable {
                RetryPolicy::Repeatable
            } else {
                RetryPolicy::AtMostOnce
            },
            // The call is bounded by timeout_ms; the executor's own limit comes
            // after it, so the gateway's timeout fires first and stops a hung server.
            timeout_ms: self
                .config
                .timeout_ms
                .saturating_mul(2)
                .saturating_add(1000),
        };
        Some((tool.name.to_string(), info))
    }

    /// The first connection, made before the node offers its tools (so a server that
    /// is up at start is offered at once). The session goes to the supervisor.
    pub(super) async fn first_connect(&self) -> Option<Live> {
        match self.connect().await {
            Ok((live, tools)) => {
                tracing::info!(server = %self.name, tools = tools.len(), "downstream MCP server up");
                self.up(&live.session, tools);
                Some(live)
            }
            Err(e) => {
                tracing::warn!(server = %self.name, error = %e, "downstream MCP server unreachable; its tools are offered once it is up");
                None
            }
        }
    }

    /// Keeps the server up until `stop`: watches the session, and when it ends (the
    /// process died, the connection dropped, a call failed) withdraws its tools and
    /// starts it again after a pause that grows with each failure.
    pub(super) async fn supervise(
        self: Arc<Self>,
        mut session: Option<Live>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut failures: u32 = 0;
        loop {
            if *stop.borrow() {
                break;
            }
            if let Some(live) = session.take() {
                tokio::select! {
                    () = self.failed() => {}
                    () = ended(&live.session) => {}
                    _ = stop.changed() => {
                        self.close(live).await;
                        break;
                    }
                }
                tracing::warn!(server = %self.name, "downstream MCP server down; its tools are retired until it is back");
                self.set_link(None);
                self.close(live).await;
                continue;
            }
            let pause = Duration::from_millis(250 * 2u64.saturating_pow(failures.min(10)));
            tokio::select! {
                () = tokio::time::sleep(pause.min(MAX_BACKOFF)) => {}
                _ = stop.changed() => break,
            }
            match self.connect().await {
                Ok((live, tools)) => {
                    failures = 0;
                    tracing::info!(server = %self.name, tools = tools.len(), "downstream MCP server back");
                    self.up(&live.session, tools);
                    session = Some(live);
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(server = %self.name, error = %e, failures, "downstream MCP server still down");
                }
            }
        }
        if let Ok(mut l) = self.link.lock() {
            *l = None;
        }
    }
}

/// Resolves once `session` ended (its transport closed or it was cancelled).
async fn ended(session: &Session) {
    while !session.is_closed() && !session.peer().is_transport_closed() {
        tokio::time::sleep(LIVENESS_POLL).await;
    }
}

/// The tools of one downstream server, for the node's registry.
pub(super) struct DownstreamTools(pub(super) Arc<Downstream>);

impl ToolSource for DownstreamTools {
    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let Some(link) = self.0.link() else {
            return Vec::new();
        };
        link.tools
            .into_iter()
            .map(|(remote, info)| {
                Arc::new(GatewayTool {
                    downstream: Arc::clone(&self.0),
                    remote,
                    info,
                }) as Arc<dyn Tool>
            })
            .collect()
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
        let d = &self.downstream;
        let Some(link) = d.link() else {
            return Err(ToolError(format!(
                "MCP server {} is down; it is being started again",
                d.name
            )));
        };
        let arguments = match input {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let params = CallToolRequestParams::new(self.remote.clone()).with_arguments(arguments);
        let answer = tokio::time::timeout(d.timeout(), link.peer.call_tool(params)).await;
        match answer {
            Ok(Ok(result)) => {
                let value = serde_json::to_value(&result).unwrap_or(Value::Null);
                if result.is_error == Some(true) {
                    return Err(ToolError(format!(
                        "MCP server {} reported an error: {}",
                        d.name, value["content"]
                    )));
                }
                Ok(value)
            }
            Ok(Err(e)) => {
                d.failed.send_replace(link.number);
                Err(ToolError(format!("MCP server {} failed: {e}", d.name)))
            }
            Err(_) => {
                d.failed.send_replace(link.number);
                Err(ToolError(format!(
                    "MCP server {} did not answer within {} ms",
                    d.name, d.config.timeout_ms
                )))
            }
        }
    }
}

/// Header names and values of `[tools.mcp.<name>] headers`, checked.
pub(super) fn header_map(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<HashMap<axum::http::HeaderName, axum::http::HeaderValue>, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let name = axum::http::HeaderName::try_from(k.as_str())
                .map_err(|_| format!("header name {k:?} is not valid"))?;
            let value = axum::http::HeaderValue::try_from(v.as_str())
                .map_err(|_| format!("header {k} has a value that is not valid"))?;
            Ok((name, value))
        })
        .collect()
}
