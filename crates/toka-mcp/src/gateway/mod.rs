//! The gateway: downstream MCP servers declared in `[tools.mcp.<name>]` become Toka
//! tools named `mcp.<name>.<tool>`, with their schemas, so permissions, approvals,
//! recording, crash rules and replay apply to them exactly as to built-in tools.
//!
//! ```toml
//! [tools.mcp.files]                  # a server Toka starts, over stdio
//! command = "/usr/bin/python3"
//! args = ["files_server.py"]
//! env = { ROOT = "/srv/data" }       # the environment is otherwise empty
//! timeout_ms = 30000
//! repeatable = ["read"]              # tools safe to run again after a crash
//!
//! [tools.mcp.search]                 # a server already running, over streamable HTTP
//! url = "https://search.internal/mcp"
//! headers = { "X-Team" = "agents" }
//! bearer_token_env = "SEARCH_TOKEN"  # the *name* of the variable with its token
//! ```
//!
//! Each server has a supervisor: a server that dies, hangs or drops the connection
//! fails the open call (bounded by `timeout_ms`; never a hung caller), its tools are
//! retired while it is down (`tool.retired` in the log, so a call is refused at once),
//! and it is started or connected again with a pause that grows with each failure;
//! once back, its tools are registered again. What it is not: the rules (the kernel
//! decides every call) or a proxy of anything but tools.

mod downstream;
mod leftovers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toka_tools::{ToolSource, ToolsChanged};
use tokio::sync::watch;

use downstream::{Downstream, DownstreamTools};

/// How Toka reaches a downstream server.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// A program Toka starts and talks to over stdin/stdout.
    Stdio {
        /// The program (absolute, or relative to toka.toml's folder).
        command: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// Its whole environment.
        env: BTreeMap<String, String>,
    },
    /// A server at a streamable HTTP endpoint.
    Http {
        /// Its URL (`http` or `https`).
        url: String,
        /// Headers sent on every request.
        headers: std::collections::HashMap<axum::http::HeaderName, axum::http::HeaderValue>,
        /// The bearer token sent on every request (read from the environment).
        bearer: Option<String>,
    },
}

/// `[tools.mcp.<name>]`, checked.
#[derive(Debug, Clone)]
pub struct DownstreamConfig {
    /// How to reach it.
    pub endpoint: Endpoint,
    /// Timeout of starting it and of one call, in milliseconds.
    pub timeout_ms: u64,
    /// Tools of this server that are safe to run again after a crash.
    pub repeatable: Vec<String>,
}

/// `[tools.mcp.<name>]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    command: Option<PathBuf>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    bearer_token_env: Option<String>,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    repeatable: Vec<String>,
}

fn default_timeout() -> u64 {
    30_000
}

impl DownstreamConfig {
    fn parse(raw: &toml::Value) -> Result<Self, String> {
        let w: Written = raw
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        if !(1..=toka_types::limits::MAX_TOOL_TIMEOUT_MS).contains(&w.timeout_ms) {
            return Err(format!(
                "timeout_ms is {}, must be 1 to {}",
                w.timeout_ms,
                toka_types::limits::MAX_TOOL_TIMEOUT_MS
            ));
        }
        let stdio_only = !w.args.is_empty() || !w.env.is_empty();
        let http_only = !w.headers.is_empty() || w.bearer_token_env.is_some();
        let endpoint = match (w.command, w.url) {
            (Some(_), Some(_)) => {
                return Err("give `command` (stdio) or `url` (HTTP), not both".into());
            }
            (None, None) => {
                return Err(
                    "give `command` (a server to start, over stdio) or `url` (streamable HTTP)"
                        .into(),
                );
            }
            (Some(_), None) if http_only => {
                return Err("`headers` and `bearer_token_env` are for `url` servers".into());
            }
            (Some(command), None) => Endpoint::Stdio {
                command,
                args: w.args,
                env: w.env,
            },
            (None, Some(_)) if stdio_only => {
                return Err("`args` and `env` are for `command` servers".into());
            }
            (None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("url {url:?} must start with http:// or https://"));
                }
                let bearer = match &w.bearer_token_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        format!("bearer_token_env names {var}, which is not set in the environment")
                    })?),
                    None => None,
                };
                Endpoint::Http {
                    url,
                    headers: downstream::header_map(&w.headers)?,
                    bearer,
                }
            }
        };
        Ok(Self {
            endpoint,
            timeout_ms: w.timeout_ms,
            repeatable: w.repeatable,
        })
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
pub struct Gateway {
    servers: Vec<Arc<Downstream>>,
    stop: watch::Sender<bool>,
    supervisors: tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            stop: watch::channel(false).0,
            supervisors: tokio::sync::Mutex::new(Vec::new()),
        }
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.servers.iter().map(|d| &d.name))
            .finish()
    }
}

impl Gateway {
    /// Stops every downstream server (stdio ones get SIGTERM, then a kill) and waits
    /// for each supervisor to end.
    pub async fn close(&self) {
        let _ = self.stop.send(true);
        let handles = std::mem::take(&mut *self.supervisors.lock().await);
        for h in handles {
            let _ = h.await;
        }
    }
}

/// The downstream servers of `servers` (`[tools.mcp]`) as tool sources, each tried
/// once now (so a server that is up at start is offered at once) and then kept up by
/// its supervisor, which raises `changed` when its tools come or go. The servers it
/// starts are recorded in `pid_file`; those a killed node left there are stopped
/// first.
pub async fn gateway_sources(
    servers: &BTreeMap<String, toml::Value>,
    base_dir: &Path,
    pid_file: PathBuf,
    changed: &ToolsChanged,
) -> Result<(Vec<Arc<dyn ToolSource>>, Gateway), GatewayError> {
    let mut configs = Vec::new();
    for (name, raw) in servers {
        let bad = |reason: String| GatewayError {
            server: name.clone(),
            reason,
        };
        toka_types::check_tool_name(&format!("mcp.{name}.x")).map_err(|e| bad(e.to_string()))?;
        configs.push((name.clone(), DownstreamConfig::parse(raw).map_err(bad)?));
    }
    let leftovers = Arc::new(leftovers::Leftovers::reap(pid_file));
    let gateway = Gateway::default();
    let mut sources: Vec<Arc<dyn ToolSource>> = Vec::new();
    let mut servers = Vec::new();
    let mut supervisors = Vec::new();
    for (name, config) in configs {
        let d = Arc::new(Downstream::new(
            name,
            config,
            base_dir.to_path_buf(),
            changed.clone(),
            Arc::clone(&leftovers),
        ));
        let session = d.first_connect().await;
        supervisors.push(tokio::spawn(
            Arc::clone(&d).supervise(session, gateway.stop.subscribe()),
        ));
        sources.push(Arc::new(DownstreamTools(Arc::clone(&d))));
        servers.push(d);
    }
    *gateway.supervisors.lock().await = supervisors;
    Ok((sources, Gateway { servers, ..gateway }))
}
