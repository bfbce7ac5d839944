//! [`AgentContext`]: what a hosted agent can see and do.

use std::collections::HashSet;
use std::sync::Arc;

use toka_types::{EntityId, KernelEvent, Message, Observation, Operation, TaskOutcome, TaskState};

use super::{Agent, AgentError, AgentHandle, TokenCell, host};
use crate::codec::decode;
use crate::runtime::Runtime;
use crate::subscription::Subscription;

/// A task delivered to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedTask {
    /// The task.
    pub id: EntityId,
    /// What it asks.
    pub description: String,
    /// Its structured input, if it has one.
    pub input: Option<serde_json::Value>,
}

/// The handle a hosted agent acts through.
pub struct AgentContext {
    runtime: Runtime,
    id: EntityId,
    token: TokenCell,
    backlog: Vec<AssignedTask>,
    feed: Subscription,
    delivered: HashSet<EntityId>,
    /// Queued tasks of this agent waiting for other tasks to end.
    waiting: std::collections::BTreeSet<EntityId>,
    max_restarts: u32,
}

impl std::fmt::Debug for AgentContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentContext")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AgentContext {
    pub(crate) fn new(runtime: Runtime, id: EntityId, token: TokenCell, max_restarts: u32) -> Self {
        // Subscribe first, then read the queued tasks: a task scheduled in between is
        // seen twice and delivered once.
        let feed = runtime.subscribe(runtime.head().seq + 1);
        let mut backlog: Vec<AssignedTask> = runtime.read(|s| {
            s.tasks_of(id)
                .into_iter()
                .filter(|t| t.state == TaskState::Queued)
                .map(|t| AssignedTask {
                    id: t.id,
                    description: t.spec.description().to_string(),
                    input: t.spec.input(),
                })
                .collect()
        });
        backlog.reverse(); // popped from the end: oldest first
        Self {
            runtime,
            id,
            token,
            backlog,
            feed,
            delivered: HashSet::new(),
            waiting: std::collections::BTreeSet::new(),
            max_restarts,
        }
    }

    /// The agent's id.
    pub fn id(&self) -> EntityId {
        self.id
    }

    /// The agent's current token (the host renews it before it expires).
    pub fn token(&self) -> String {
        self.token.get()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn still_queued(&self, task: EntityId) -> bool {
        self.runtime
            .read(|s| s.task(task).is_some_and(|t| t.state == TaskState::Queued))
    }

    /// The next task scheduled to this agent, still queued and not waiting for other
    /// tasks, waiting for one (a task that waits is delivered once what it waits for
    /// has ended). `None` if the runtime stops feeding.
    pub async fn next_task(&mut self) -> Option<AssignedTask> {
        while let Some(task) = self.backlog.pop() {
            if let Some(ready) = self.offer(task.id) {
                return Some(ready);
            }
        }
        // Several waiting tasks may have become ready with one event.
        if let Some(task) = self.first_ready()
            && let Some(ready) = self.offer(task)
        {
            return Some(ready);
        }
        loop {
            let record = self.feed.next().await?.ok()?;
            let candidate = match record.header.kind.as_str() {
                "task.scheduled" => match decode(&record) {
                    Ok(KernelEvent::TaskScheduled { agent, task, .. }) if agent == self.id => {
                        Some(task)
                    }
                    _ => None,
                },
                // A task whose lease ran out, or that was requeued, is queued again:
                // deliver it again.
                "task.lease_expired" | "task.requeued" => match decode(&record) {
                    Ok(
                        KernelEvent::TaskLeaseExpired { agent, task }
                        | KernelEvent::TaskRequeued { agent, task, .. },
                    ) if agent == self.id => {
                        self.delivered.remove(&task);
                        Some(task)
                    }
                    _ => None,
                },
                // A task ended: one of ours may have been waiting for it.
                "task.completed" | "agent.terminated" => self.first_ready(),
                _ => None,
            };
            if let Some(ready) = candidate.and_then(|t| self.offer(t)) {
                return Some(ready);
            }
        }
    }

    /// A waiting task that waits for nothing any more.
    fn first_ready(&self) -> Option<EntityId> {
        self.waiting
            .iter()
            .copied()
            .find(|t| self.runtime.read(|s| s.waiting_on(*t).is_empty()))
    }

    /// `task`, if it is this agent's, queued, not yet delivered and waits for nothing
    /// (one that waits is kept until it does not).
    fn offer(&mut self, task: EntityId) -> Option<AssignedTask> {
        if self.delivered.contains(&task) || !self.still_queued(task) {
            self.waiting.remove(&task);
            return None;
        }
        if !self.runtime.read(|s| s.waiting_on(task).is_empty()) {
            self.waiting.insert(task);
            return None;
        }
        self.waiting.remove(&task);
        self.delivered.insert(task);
        let (description, input) = self.runtime.read(|s| {
            s.task(task)
                .map(|t| (t.spec.description().to_string(), t.spec.input()))
        })?;
        Some(AssignedTask {
            id: task,
            description,
            input,
        })
    }

    async fn send(&self, operation: Operation) -> Result<Vec<KernelEvent>, AgentError> {
        let committed = self
            .runtime
            .submit(Message::new(self.id, self.token.get(), operation))
            .await?;
        Ok(committed.events)
    }

    /// Claims `task` (queued → claimed).
    pub async fn claim(&self, task: EntityId) -> Result<(), AgentError> {
        self.send(Operation::ClaimTask {
            agent: self.id,
            task,
        })
        .await
        .map(|_| ())
    }

    /// Keeps a claimed `task` claimed for `lease_secs` more seconds; without another
    /// heartbeat by then it is queued again (`task.lease_expired`).
    pub async fn heartbeat(&self, task: EntityId, lease_secs: u32) -> Result<(), AgentError> {
        self.send(Operation::Heartbeat {
            agent: self.id,
            task,
            lease_secs,
        })
        .await
        .map(|_| ())
    }

    /// Completes a claimed `task`.
    pub async fn complete(&self, task: EntityId, outcome: TaskOutcome) -> Result<(), AgentError> {
        self.send(Operation::CompleteTask {
            agent: self.id,
            task,
            outcome,
        })
        .await
        .map(|_| ())
    }

    /// Records an observation.
    pub async fn observe(&self, data: impl Into<Vec<u8>>) -> Result<(), AgentError> {
        let data = Observation::new(data)?;
        self.send(Operation::EmitObservation {
            agent: self.id,
            data,
        })
        .await
        .map(|_| ())
    }

    /// Calls tool `tool` with `input` as this agent and waits up to `wait` for the
    /// call to end (approval included). Returns the call as committed: ended, or still
    /// open when `wait` ran out (read it again with
    /// [`Runtime::call_view`]). A refusal (permission, schema, …) is an error.
    pub async fn call_tool(
        &self,
        tool: &str,
        input: serde_json::Value,
        wait: std::time::Duration,
    ) -> Result<crate::tools::CallView, AgentError> {
        let events = self
            .send(Operation::CallTool {
                agent: self.id,
                tool: tool.into(),
                input,
            })
            .await?;
        let Some(KernelEvent::ToolCalled(call)) = events.first() else {
            return Err(AgentError("the call produced no tool.called event".into()));
        };
        self.runtime.wait_call(call.call, wait).await;
        self.runtime
            .call_view(call.call)
            .await
            .map_err(AgentError)?
            .ok_or_else(|| AgentError(format!("call {} is not in the state", call.call)))
    }

    /// Spawns a child agent running `agent`, with a token attenuated from this agent's
    /// (only `permissions`, which this agent's token must have), hosted under the same
    /// supervision.
    pub async fn spawn_child(
        &self,
        name: &str,
        permissions: &[&str],
        agent: Arc<dyn Agent>,
    ) -> Result<AgentHandle, AgentError> {
        let spec = toka_types::AgentSpec::new(name)?;
        let events = self
            .send(Operation::SpawnSubAgent {
                parent: self.id,
                spec,
            })
            .await?;
        let Some(KernelEvent::AgentSpawned { agent: child, .. }) = events.first() else {
            return Err(AgentError("spawn produced no agent".into()));
        };
        let grant = toka_types::TokenGrant {
            sub: *child,
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            scope: None,
            ttl_secs: None,
            budget: Default::default(),
        };
        let signed = self
            .runtime
            .issue_token(self.id, &self.token.get(), grant)
            .await
            .map_err(|e| AgentError(e.to_string()))?;
        Ok(host(
            &self.runtime,
            *child,
            signed.token,
            agent,
            self.max_restarts,
        ))
    }
}
