//! Tools from the runtime's side: the [`ToolHost`] a node plugs in (which tools it
//! offers and how to run one), the executor that runs calls outside the kernel, and
//! reading a call back ([`Runtime::call_view`], [`Runtime::wait_call`]).
//!
//! The contract, per call:
//!
//! * The kernel decides `CallTool` (permission, scope, schema) and commits
//!   `tool.called`. Nothing runs before that, nor before an approval is committed.
//! * The executor commits `tool.started` (naming this node) *before* it runs the tool,
//!   runs it with the tool's timeout, and commits `tool.returned`. The caller learns
//!   the result only from the committed event.
//! * At start, a call this node had started and not finished is resolved by the
//!   tool's retry policy: repeatable tools run again (at least once), all others are
//!   recorded `tool.abandoned`, "outcome unknown" (at most once). A call that was
//!   ready but never started simply starts: nothing of it ran.
//! * Replay and `toka verify` only apply events: they never run a tool.
//!
//! What it is not: the tools themselves (`toka-tools`) or their sandboxes.

mod executor;

use std::time::Duration;

use futures::future::BoxFuture;
use toka_kernel::CallRecord;
use toka_types::{EntityId, KernelEvent, ToolCall, ToolResult, ToolSpec};

use crate::runtime::Runtime;

pub use executor::ToolExecutor;

/// One run of a call, as the executor hands it to the host.
#[derive(Debug, Clone)]
pub struct ToolInvocation {
    /// The call.
    pub call: EntityId,
    /// The agent it is made for (per-agent workspaces key on it).
    pub agent: EntityId,
    /// The tool.
    pub tool: String,
    /// The input, exactly as committed (its hash was checked against the call's).
    pub input: serde_json::Value,
    /// Which run this is (2 and up: a repeatable call run again after a crash).
    pub attempt: u32,
}

/// What a node plugs in to offer tools. The executor enforces the timeout and the
/// output bound around [`ToolHost::run`]; the host enforces each tool's sandbox.
pub trait ToolHost: Send + Sync + 'static {
    /// The tools this node offers (recorded as `tool.registered` / `tool.retired` when
    /// they differ from what the log has).
    fn specs(&self) -> Vec<ToolSpec>;

    /// Runs one call. Failures are a [`ToolResult::Error`], never a panic.
    fn run(&self, invocation: ToolInvocation) -> BoxFuture<'static, ToolResult>;

    /// Changes whenever [`ToolHost::specs`] may have changed while the node runs (a
    /// downstream server went down or came back); the executor then offers the
    /// tools again. `None`: the tools are fixed for the node's life.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// A call with what the log says about it: its input, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// The call as the state has it.
    pub record: CallRecord,
    /// The `tool.called` event (with the input).
    pub called: ToolCall,
    /// The result, once it returned.
    pub result: Option<ToolResult>,
}

/// Longest a caller may wait for a call to end in one request.
pub const MAX_CALL_WAIT: Duration = Duration::from_secs(120);

impl Runtime {
    /// The call `id` with its input and result, read from the log; `None` if there
    /// is no such call.
    pub async fn call_view(&self, id: EntityId) -> Result<Option<CallView>, String> {
        let Some(record) = self.read(|s| s.tools().call(id).cloned()) else {
            return Ok(None);
        };
        let called = match self.event_at(record.called_seq).await? {
            KernelEvent::ToolCalled(c) if c.call == id => c,
            other => {
                return Err(format!(
                    "seq {} holds {} where call {id} was opened",
                    record.called_seq,
                    other.kind()
                ));
            }
        };
        let result = match record.ended_seq {
            Some(seq) => match self.event_at(seq).await? {
                KernelEvent::ToolReturned { result, .. } => Some(result),
                _ => None,
            },
            None => None,
        };
        Ok(Some(CallView {
            record,
            called,
            result,
        }))
    }

    /// Waits until call `id` has ended or `timeout` (at most [`MAX_CALL_WAIT`]) has
    /// passed, and returns the call as it is then; `None` if there is no such call.
    pub async fn wait_call(&self, id: EntityId, timeout: Duration) -> Option<CallRecord> {
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_CALL_WAIT);
        let mut head = self.watch_head();
        loop {
            let record = self.read(|s| s.tools().call(id).cloned())?;
            if !record.status.is_open() {
                return Some(record);
            }
            match tokio::time::timeout_at(deadline, head.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the runtime stopped: the call as it is.
                _ => return Some(record),
            }
        }
    }

    /// The kernel event at `seq`.
    pub async fn event_at(&self, seq: u64) -> Result<KernelEvent, String> {
        let records = self
            .store()
            .read_range(seq, 1)
            .await
            .map_err(|e| e.to_string())?;
        match records.first() {
            Some(r) if r.header.seq == seq => crate::codec::decode(r).map_err(|e| e.to_string()),
            _ => Err(format!("seq {seq} is not in the log")),
        }
    }
}
