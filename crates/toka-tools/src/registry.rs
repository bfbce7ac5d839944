//! [`Registry`]: the tools one node offers, and how the runtime runs them.

use std::sync::Arc;

use futures::future::BoxFuture;
use toka_runtime::tools::{ToolHost, ToolInvocation};
use toka_types::{ApprovalPolicy, ToolResult, ToolSpec};

use crate::config::{ConfigError, ToolsConfig};
use crate::fs::{FsList, FsRead, FsSettings, FsWrite};
use crate::source::{ToolSource, ToolsChanged};
use crate::workspace::Workspace;
use crate::{Tool, ToolContext};

/// The tools of a node, by name: fixed ones (built-ins, commands) and those of
/// [`ToolSource`]s, which come and go.
#[derive(Clone)]
pub struct Registry {
    tools: Vec<Arc<dyn Tool>>,
    sources: Vec<Arc<dyn ToolSource>>,
    changed: ToolsChanged,
    require_approval: Option<Vec<String>>,
    approval_ttl_secs: u64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.all().iter().map(|t| t.info().name))
            .finish()
    }
}

impl Registry {
    /// An empty registry; calls wait `approval_ttl_secs` at most for approval.
    pub fn new(approval_ttl_secs: u64) -> Self {
        Self {
            tools: Vec::new(),
            sources: Vec::new(),
            changed: ToolsChanged::new(),
            require_approval: None,
            approval_ttl_secs,
        }
    }

    /// The tools `[tools]` declares: the chosen built-ins and every `exec` command.
    pub fn from_config(config: &ToolsConfig) -> Result<Self, ConfigError> {
        let mut registry = Self::new(config.approval_ttl_secs);
        registry.require_approval = Some(config.require_approval.clone());
        if !config.enabled {
            return Ok(registry);
        }
        let workspace = Workspace::new(config.workspace_dir(), config.per_agent_workspace)
            .map_err(|e| ConfigError(format!("workspace: {e}")))?;
        let fs = Arc::new(FsSettings {
            workspace: workspace.clone(),
            max_read_bytes: config.max_read_bytes,
            max_write_bytes: config.max_write_bytes,
            timeout_ms: config.fs_timeout_ms,
        });
        for name in &config.builtins {
            match name.as_str() {
                "fs.read" => registry.add(Arc::new(FsRead(Arc::clone(&fs)))),
                "fs.write" => registry.add(Arc::new(FsWrite(Arc::clone(&fs)))),
                "fs.list" => registry.add(Arc::new(FsList(Arc::clone(&fs)))),
                "http.fetch" if config.http.allow_hosts.is_empty() => {
                    tracing::info!("http.fetch not offered: [tools.http] allow_hosts is empty");
                }
                "http.fetch" => {
                    let fetch = crate::http::HttpFetch::new(&config.http).map_err(ConfigError)?;
                    registry.add(Arc::new(fetch));
                }
                _ => {}
            }
        }
        for (name, cmd) in &config.exec {
            let tool = crate::exec::ExecTool::new(name, cmd, workspace.clone())
                .map_err(|e| ConfigError(format!("exec.{name}: {e}")))?;
            registry.add(Arc::new(tool));
        }
        Ok(registry)
    }

    /// Adds `tool` (replacing one of the same name).
    pub fn add(&mut self, tool: Arc<dyn Tool>) {
        let name = tool.info().name;
        self.tools.retain(|t| t.info().name != name);
        self.tools.push(tool);
    }

    /// Adds `source`, whose tools are offered while it has them. A fixed tool of the
    /// same name wins.
    pub fn add_source(&mut self, source: Arc<dyn ToolSource>) {
        self.sources.push(source);
    }

    /// The signal a source raises when its tools changed (the node then offers them
    /// again).
    pub fn changes(&self) -> ToolsChanged {
        self.changed.clone()
    }

    /// Every tool offered now: the fixed ones, then the sources' (a name already
    /// taken is skipped).
    pub fn all(&self) -> Vec<Arc<dyn Tool>> {
        let mut all = self.tools.clone();
        let mut names: std::collections::BTreeSet<String> =
            all.iter().map(|t| t.info().name).collect();
        for source in &self.sources {
            for tool in source.tools() {
                if names.insert(tool.info().name) {
                    all.push(tool);
                }
            }
        }
        all
    }

    /// The tool `name`, if it is offered now (a fixed tool first, as in [`Registry::all`]).
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        let named = |t: &Arc<dyn Tool>| t.info().name == name;
        self.tools.iter().find(|t| named(t)).cloned().or_else(|| {
            self.sources
                .iter()
                .find_map(|s| s.tools().into_iter().find(|t| named(t)))
        })
    }

    fn approval_of(&self, name: &str, default: ApprovalPolicy) -> ApprovalPolicy {
        let Some(patterns) = &self.require_approval else {
            return default;
        };
        if crate::config::names_match(patterns, name) {
            ApprovalPolicy::Required
        } else {
            ApprovalPolicy::Never
        }
    }
}

impl ToolHost for Registry {
    fn specs(&self) -> Vec<ToolSpec> {
        let mut specs: Vec<ToolSpec> = self
            .all()
            .iter()
            .map(|t| {
                let info = t.info();
                ToolSpec {
                    approval: self.approval_of(&info.name, info.approval),
                    name: info.name,
                    description: info.description,
                    input_schema: info.input_schema,
                    retry: info.retry,
                    timeout_ms: info.timeout_ms,
                    approval_ttl_secs: self.approval_ttl_secs,
                }
            })
            .collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        (!self.sources.is_empty()).then(|| self.changed.watch())
    }

    fn run(&self, invocation: ToolInvocation) -> BoxFuture<'static, ToolResult> {
        let tool = self.get(&invocation.tool);
        Box::pin(async move {
            let Some(tool) = tool else {
                return ToolResult::error(format!(
                    "this node does not offer tool {:?} any more",
                    invocation.tool
                ));
            };
            let ctx = ToolContext {
                call: invocation.call,
                agent: invocation.agent,
                attempt: invocation.attempt,
            };
            match tool.call(invocation.input, &ctx).await {
                Ok(output) => ToolResult::output(output),
                Err(e) => ToolResult::error(e.0),
            }
        })
    }
}
