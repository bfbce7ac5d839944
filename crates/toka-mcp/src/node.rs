//! [`start_node`]: the node `toka serve` runs: the runtime, its tools, and the tools
//! of its downstream MCP servers.

use std::time::Duration;

use crate::gateway::{Gateway, GatewayError, gateway_sources};

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

/// The node of `config` with its tools and the tools of its downstream MCP servers.
pub async fn start_node(config: &toka_runtime::Config) -> Result<Node, StartError> {
    let tools = toka_tools::ToolsConfig::from_table(&config.tools, &config.base_dir)?;
    let mut registry = toka_tools::Registry::from_config(&tools)?;
    let gateway = if tools.enabled {
        // Beside the store: per node, and where a node's own files are.
        let store = config.base_dir.join(&config.store.path);
        let pid_file = store
            .parent()
            .unwrap_or(&config.base_dir)
            .join("mcp-servers.pids");
        let (sources, gateway) =
            gateway_sources(&tools.mcp, &config.base_dir, pid_file, &registry.changes()).await?;
        for source in sources {
            registry.add_source(source);
        }
        gateway
    } else {
        Gateway::default()
    };
    let started = toka_tools::start_node_with(config, registry).await;
    let (runtime, executor, registry) = match started {
        Ok(parts) => parts,
        Err(e) => {
            gateway.close().await;
            return Err(e.into());
        }
    };
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
    /// the runtime (which commits what is queued). The executor stops first, so
    /// stopping the servers does not retire their tools in the log.
    pub async fn shutdown(&self, grace: Duration) {
        self.executor.stop(grace).await;
        self.gateway.close().await;
        self.runtime.shutdown().await;
    }
}
