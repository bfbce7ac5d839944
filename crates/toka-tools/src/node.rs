//! [`start_node`]: a runtime with this crate's tools plugged in, as `toka serve` runs
//! it.

use std::sync::Arc;

use toka_kernel::OpcodeRegistry;
use toka_runtime::tools::ToolExecutor;
use toka_runtime::{Config, Runtime, RuntimeError, SubmitError};

use crate::{ConfigError, JsonSchemaCheck, Registry, ToolsConfig};

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// `[tools]` is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The runtime did not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The tools could not be registered in the log.
    #[error("the node's tools could not be recorded: {0}")]
    Tools(#[from] SubmitError),
}

/// The kernel plug-ins tools need (the schema check), added to `handlers`.
pub fn plug_in(handlers: &mut OpcodeRegistry) {
    handlers.set_schema_check(Arc::new(JsonSchemaCheck::new()));
}

/// Starts the runtime of `config` with the tools of its `[tools]` section: registers
/// them in the log, resolves calls left open by a crash, and runs the executor.
pub async fn start_node(config: &Config) -> Result<(Runtime, ToolExecutor, Registry), NodeError> {
    let tools = ToolsConfig::from_table(&config.tools, &config.base_dir)?;
    start_node_with(config, Registry::from_config(&tools)?).await
}

/// [`start_node`] with `registry` (e.g. the configured tools plus a gateway's
/// downstream servers as a [`crate::ToolSource`]).
pub async fn start_node_with(
    config: &Config,
    registry: Registry,
) -> Result<(Runtime, ToolExecutor, Registry), NodeError> {
    let mut handlers = OpcodeRegistry::new();
    plug_in(&mut handlers);
    let runtime = Runtime::start_with(config, handlers).await?;
    let executor = runtime.start_tools(Arc::new(registry.clone())).await?;
    Ok((runtime, executor, registry))
}
