//! [`ToolSource`]: tools that come and go while the node runs (a gateway's downstream
//! MCP servers), and [`ToolsChanged`], how a source tells the node to offer its
//! tools again.
//!
//! The registry asks every source for its tools each time it offers them; the kernel
//! records the difference (`tool.retired` for tools gone, `tool.registered` for tools
//! back), so the log says when a downstream was down. What it is not: the tools'
//! life cycle (each source restarts its own servers).

use std::sync::Arc;

use tokio::sync::watch;

use crate::Tool;

/// Tools offered for as long as something outside the node is up.
pub trait ToolSource: Send + Sync + 'static {
    /// The tools offered now (none while their server is down).
    fn tools(&self) -> Vec<Arc<dyn Tool>>;
}

/// Tells the node its tools changed, so it offers them again.
#[derive(Debug, Clone)]
pub struct ToolsChanged {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for ToolsChanged {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolsChanged {
    /// A new signal, not yet watched.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(0).0),
        }
    }

    /// The tools changed: offer them again.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`ToolsChanged::notify`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}
