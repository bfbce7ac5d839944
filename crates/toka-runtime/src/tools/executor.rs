//! [`ToolExecutor`]: runs committed calls outside the kernel and records what they
//! returned (see the module above for the contract).

use std::sync::{Arc, Weak};
use std::time::Duration;

use toka_kernel::{KernelError, ToolOp};
use toka_types::{CallStatus, EntityId, KernelEvent, ToolResult};
use tokio::sync::{Semaphore, watch};

use super::{ToolHost, ToolInvocation};
use crate::error::SubmitError;
use crate::pipeline::Request;
use crate::runtime::{Inner, Runtime};

/// Most calls one node runs at once; more wait for a slot.
pub const MAX_CONCURRENT_CALLS: usize = 64;
/// How often the executor looks for approvals that expired.
const EXPIRY_POLL: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The running executor of one node. Dropping it leaves it running until the runtime
/// stops; [`ToolExecutor::stop`] stops it and lets running calls finish.
#[derive(Debug)]
pub struct ToolExecutor {
    stop: watch::Sender<bool>,
    slots: Arc<Semaphore>,
    node: String,
}

impl ToolExecutor {
    /// The node name this executor records on the calls it starts.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Starts no new call, and waits up to `grace` for running ones to record their
    /// results. A call still running after that is resolved at the next start by its
    /// retry policy.
    pub async fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = u32::try_from(MAX_CONCURRENT_CALLS).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, self.slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                running = MAX_CONCURRENT_CALLS - self.slots.available_permits(),
                "tool calls still running at shutdown; they are resolved at the next start"
            );
        }
    }
}

/// The next change of the host's tools (never, for a host without changes).
async fn changed(changes: &mut Option<watch::Receiver<u64>>) {
    match changes {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *changes = None; // the host went away: no more changes
            }
        }
        None => std::future::pending().await,
    }
}

#[derive(Clone)]
struct Exec {
    runtime: Weak<Inner>,
    host: Arc<dyn ToolHost>,
    node: String,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

impl Runtime {
    /// Offers `host`'s tools (recording registrations and retirements), resolves the
    /// calls this node left open, and starts the executor.
    pub async fn start_tools(&self, host: Arc<dyn ToolHost>) -> Result<ToolExecutor, SubmitError> {
        // Watched before the first offer, so a change in between is offered again.
        let mut changes = host.changes();
        if let Some(c) = &mut changes {
            c.mark_unchanged();
        }
        let specs = host.specs();
        self.submit_request(Request::Tool(ToolOp::Offer(specs)))
            .await
            .map_err(|r| r.error)?;
        let (stop, stop_rx) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS));
        let exec = Exec {
            runtime: self.downgrade(),
            host,
            node: self.node_name().to_string(),
            slots: Arc::clone(&slots),
            stop: stop_rx,
        };
        // Subscribe first, then look at the state: a call opened in between is seen
        // twice, and the second start is refused by the kernel.
        let mut feed = self.subscribe(self.head().seq + 1);
        let node = exec.node.clone();
        let open: Vec<EntityId> = self.read(|s| {
            s.tools()
                .open_calls()
                .filter(|c| {
                    c.status == CallStatus::Ready
                        || (c.status == CallStatus::Running && c.node.as_deref() == Some(&node))
                })
                .map(|c| c.id)
                .collect()
        });
        if !open.is_empty() {
            tracing::info!(calls = open.len(), "resolving tool calls left open");
        }
        for id in open {
            exec.start(id).await;
        }
        let looping = exec.clone();
        tokio::spawn(async move {
            // Stopped by ToolExecutor::stop; a dropped handle leaves the executor
            // running until the runtime stops (the feed ends).
            let stop = looping.stop.clone();
            let stopped = async move {
                let mut stop = stop;
                if stop.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::pin!(stopped);
            let mut tick = tokio::time::interval(EXPIRY_POLL);
            loop {
                tokio::select! {
                    next = feed.next() => {
                        let Some(Ok(record)) = next else { return };
                        match crate::codec::decode(&record) {
                            Ok(KernelEvent::ToolCalled(c)) if !c.awaiting_approval => {
                                looping.start(c.call).await;
                            }
                            Ok(KernelEvent::ToolApproved { call, .. }) => looping.start(call).await,
                            _ => {}
                        }
                    }
                    () = changed(&mut changes) => looping.offer_again().await,
                    _ = tick.tick() => {
                        if looping.runtime().is_none() {
                            return; // the runtime stopped
                        }
                        looping.expire().await;
                    }
                    () = &mut stopped => return,
                }
            }
        });
        Ok(ToolExecutor {
            stop,
            slots,
            node: exec.node,
        })
    }
}

impl Exec {
    fn runtime(&self) -> Option<Runtime> {
        Runtime::upgrade(&self.runtime).filter(|r| !r.is_stopped())
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Takes a run slot, commits `tool.started` for `call`, then runs it on its own
    /// task. (The slot comes first, so a call recorded as running is running.)
    async fn start(&self, call: EntityId) {
        if self.stopping() {
            return;
        }
        let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
            return;
        };
        let op = ToolOp::Start {
            call,
            node: self.node.clone(),
        };
        let Some(committed) = self.submit(op).await else {
            return;
        };
        let mut attempt = None;
        for event in &committed {
            match event {
                KernelEvent::ToolStarted { attempt: a, .. } => attempt = Some(*a),
                // Abandoned, or ended at once (its agent was terminated): nothing runs.
                KernelEvent::ToolAbandoned { .. } | KernelEvent::ToolReturned { .. } => {
                    attempt = None;
                }
                _ => {}
            }
        }
        let Some(attempt) = attempt else { return };
        let exec = self.clone();
        tokio::spawn(async move {
            let result = exec.run(call, attempt).await;
            exec.submit(ToolOp::Return { call, result }).await;
            drop(slot);
        });
    }

    /// Runs `call` with its tool's timeout; any failure is a result.
    async fn run(&self, call: EntityId, attempt: u32) -> ToolResult {
        let Some(runtime) = self.runtime() else {
            return ToolResult::error("the node stopped before the call ran");
        };
        let view = match runtime.call_view(call).await {
            Ok(Some(view)) => view,
            Ok(None) => return ToolResult::error("the call is not in the log"),
            Err(e) => return ToolResult::error(format!("the call's input could not be read: {e}")),
        };
        // What runs is exactly what was approved: the bytes whose hash the call has.
        if toka_kernel::input_hash(&view.called.input) != view.record.input_hash {
            return ToolResult::error("the input read back does not match the call's input hash");
        }
        let timeout_ms = runtime
            .read(|s| s.tools().tool(&view.record.tool).map(|t| t.spec.timeout_ms))
            .unwrap_or(1);
        drop(runtime);
        let invocation = ToolInvocation {
            call,
            agent: view.record.agent,
            tool: view.record.tool.clone(),
            input: view.called.input,
            attempt,
        };
        tracing::debug!(%call, tool = %invocation.tool, attempt, "tool call running");
        let running = self.host.run(invocation);
        match tokio::time::timeout(Duration::from_millis(timeout_ms), running).await {
            Ok(ToolResult::Ok { output }) => ToolResult::output(output),
            Ok(error) => error,
            Err(_) => ToolResult::error(format!("timed out after {timeout_ms} ms")),
        }
    }

    /// Offers the host's tools again after they changed: the kernel records what was
    /// retired (a downstream server went down) or registered (it came back).
    async fn offer_again(&self) {
        let specs = self.host.specs();
        if let Some(events) = self.submit(ToolOp::Offer(specs)).await
            && !events.is_empty()
        {
            tracing::info!(changes = events.len(), "the node's tools changed");
        }
    }

    /// Ends the calls whose approval expired, if any did.
    async fn expire(&self) {
        let Some(runtime) = self.runtime() else {
            return;
        };
        let now = runtime.now_secs();
        let due = runtime.read(|s| {
            s.tools().open_calls().any(|c| {
                c.status == CallStatus::AwaitingApproval
                    && c.approval_expires_at.is_some_and(|at| now >= at)
            })
        });
        drop(runtime);
        if due {
            self.submit(ToolOp::ExpireApprovals).await;
        }
    }

    /// Submits `op`, retrying while the store is busy or unavailable, until the
    /// runtime stops. The committed events, or `None` when refused or stopped.
    async fn submit(&self, op: ToolOp) -> Option<Vec<KernelEvent>> {
        let mut backoff = RETRY_MIN;
        loop {
            let runtime = self.runtime()?;
            match runtime.submit_request(Request::Tool(op.clone())).await {
                Ok(committed) => return Some(committed.events),
                Err(refused) => match refused.error {
                    SubmitError::Rejected(KernelError::WrongCallStatus { .. }) => return None,
                    SubmitError::Rejected(e) => {
                        tracing::warn!(?op, reason = %e, "the kernel refused an executor request");
                        return None;
                    }
                    SubmitError::Stopped => return None,
                    other => {
                        tracing::warn!(?op, reason = %other, retry_in = ?backoff, "could not record a tool call's progress; retrying");
                    }
                },
            }
            drop(runtime);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }
}
