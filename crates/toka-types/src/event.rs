//! [`KernelEvent`]: what the kernel decided, the only thing that changes state.

use serde::{Deserialize, Deserializer, Serialize};

use crate::budget::Spend;
use crate::id::EntityId;
use crate::model::ModelStep;
use crate::spec::{AgentSpec, ExtensionCall, Observation, TaskOutcome, TaskSpec};
use crate::tag_first::{self, TaggedEnum};
use crate::token::IssuedToken;
use crate::tool::{ToolCall, ToolResult, ToolSpec};

/// Defines [`KernelEvent`] and its externally tagged twin, from one list of variants.
/// The twin is how the enum is read (see [`crate::tag_first`]): the same variants and
/// fields, so the two cannot drift apart.
macro_rules! kernel_event {
    ($(#[$attr:meta])* pub enum KernelEvent { $($variants:tt)* }) => {
        $(#[$attr])*
        pub enum KernelEvent { $($variants)* }

        /// [`KernelEvent`] read externally tagged; `tag_first` hands it the `kind` as
        /// the variant and the other fields as its body.
        #[derive(Deserialize)]
        #[serde(remote = "KernelEvent", rename_all = "snake_case", deny_unknown_fields)]
        #[allow(dead_code)] // only its derived `deserialize` is used
        enum ExternallyTagged { $($variants)* }

        /// `serde`'s own (buffering) reading of the enum: the oracle `tag_first`'s
        /// tests compare with.
        #[cfg(test)]
        #[derive(Deserialize)]
        #[serde(remote = "KernelEvent", tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
        #[allow(dead_code)]
        pub(crate) enum SerdeTagged { $($variants)* }
    };
}

kernel_event! {
    /// A fact the kernel decided. Applying the events of a log in order to an empty state
    /// rebuilds the state exactly; nothing else changes it.
    ///
    /// Events carry every id they introduce, so applying one never derives or draws
    /// anything. In JSON the variant is the `kind` field.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub enum KernelEvent {
        /// An agent came to be. `parent` is `None` only for the root agent of a log.
        AgentSpawned {
            /// The new agent.
            agent: EntityId,
            /// Its parent.
            parent: Option<EntityId>,
            /// Its spec.
            spec: AgentSpec,
        },
        /// A task was queued for `agent`.
        TaskScheduled {
            /// The agent whose queue got it.
            agent: EntityId,
            /// The new task's id.
            task: EntityId,
            /// What it asks.
            spec: TaskSpec,
        },
        /// A queued task was claimed.
        TaskClaimed {
            /// Its agent.
            agent: EntityId,
            /// The task.
            task: EntityId,
        },
        /// A claimed task finished.
        TaskCompleted {
            /// Its agent.
            agent: EntityId,
            /// The task.
            task: EntityId,
            /// How it ended.
            outcome: TaskOutcome,
        },
        /// `agent` recorded an observation.
        ObservationEmitted {
            /// The agent.
            agent: EntityId,
            /// The observation.
            data: Observation,
        },
        /// `agent` was terminated; its open tasks (listed) were cancelled. A cascade is
        /// one such event per agent, descendants before
        /// ancestors (so every prefix of a cascade leaves no active agent under a terminated one).
        AgentTerminated {
            /// The agent.
            agent: EntityId,
            /// Its tasks that were queued or claimed, in id order.
            cancelled_tasks: Vec<EntityId>,
        },
        /// A token was issued (a delegation): its claims, never the token itself.
        TokenIssued(IssuedToken),
        /// The message before it in the log (the events of its intent) carried an
        /// idempotency key: a retry with that key gets the same answer.
        IdempotencyKeyRecorded(IdempotencyRecord),
        /// The node signs new tokens with key `kid` from now on; tokens signed with older
        /// keys keep verifying until those are retired. Never the key itself.
        KeyRotated {
            /// The new active key.
            kid: String,
            /// Its algorithm (`HS256` or `EdDSA`).
            alg: String,
            /// The key it replaces as the signing key, if the log knew one.
            replaces: Option<String>,
        },
        /// Key `kid` no longer verifies: every token it signed is refused from now on.
        KeyRetired {
            /// The retired key.
            kid: String,
        },
        /// The token with this `jti` (and every token derived from it) is revoked.
        TokenRevoked {
            /// The token id.
            jti: String,
        },
        /// The node offers this tool (new, or its spec changed since the last start).
        ToolRegistered(ToolSpec),
        /// The node no longer offers tool `name`: calling it is refused from now on.
        ToolRetired {
            /// The tool.
            name: String,
        },
        /// A call was opened: waiting for approval, or ready to run.
        ToolCalled(ToolCall),
        /// An approver approved a waiting call, for the input with `input_hash`.
        ToolApproved {
            /// The call.
            call: EntityId,
            /// The approving agent.
            by: EntityId,
            /// Why.
            reason: String,
        },
        /// An approver denied a waiting call; it ends here.
        ToolDenied {
            /// The call.
            call: EntityId,
            /// The denying agent.
            by: EntityId,
            /// Why.
            reason: String,
        },
        /// Nobody decided a waiting call before its approval expired; it ends here.
        ToolApprovalExpired {
            /// The call.
            call: EntityId,
        },
        /// A node's executor started running a ready call (`attempt` 1), or ran a
        /// repeatable call again after its node died (`attempt` 2, 3, …).
        ToolStarted {
            /// The call.
            call: EntityId,
            /// The node running it.
            node: String,
            /// Which run this is.
            attempt: u32,
        },
        /// The tool returned (or failed); the call ends here.
        ToolReturned {
            /// The call.
            call: EntityId,
            /// What it returned.
            result: ToolResult,
        },
        /// The call's node died while it ran and the tool must not repeat: nobody knows
        /// whether it took effect. The call ends here.
        ToolAbandoned {
            /// The call.
            call: EntityId,
            /// Why, for the caller.
            reason: String,
        },
        /// An agent recorded one exchange with a language model, before acting on it.
        ModelAnswered {
            /// The exchange.
            step: ModelStep,
            /// The tokens debited (what the recorded response says it used).
            tokens: u64,
        },
        /// `agent` is an LLM planner the node hosts, acting with token `jti`.
        PlannerDesignated {
            /// The planner agent.
            agent: EntityId,
            /// The token it acts with.
            jti: String,
            /// The model it asks (none: the node's configured model).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            model: Option<String>,
        },
        /// The worker holding a claimed task is alive: its lease runs until `until`.
        TaskHeartbeat {
            /// The task's agent.
            agent: EntityId,
            /// The task.
            task: EntityId,
            /// Unix seconds the lease runs to.
            until: u64,
        },
        /// A claimed task's lease ran out without a heartbeat: it is queued again.
        TaskLeaseExpired {
            /// The task's agent.
            agent: EntityId,
            /// The task.
            task: EntityId,
        },
        /// A queued or claimed task was dropped (`cancel_task`).
        TaskCancelled {
            /// The task's agent.
            agent: EntityId,
            /// The task.
            task: EntityId,
            /// Why.
            reason: String,
        },
        /// A claimed task was put back in its queue (`requeue_task`).
        TaskRequeued {
            /// The task's agent.
            agent: EntityId,
            /// The task.
            task: EntityId,
            /// Why.
            reason: String,
        },
        /// A decision spent from budgets: debited from each listed token.
        BudgetSpent(Spend),
        /// An event of an extension handler; only that handler interprets the payload.
        Extension(ExtensionCall),
    }
}

impl<'de> Deserialize<'de> for KernelEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        tag_first::deserialize(deserializer)
    }
}

impl<'de> TaggedEnum<'de> for KernelEvent {
    const TAG: &'static str = "kind";
    const EXPECTING: &'static str = "a kernel event: an object with a `kind`";
    fn deserialize_variant<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ExternallyTagged::deserialize(deserializer)
    }
}

impl KernelEvent {
    /// The event's kind as stored in the log header (`agent.spawned`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AgentSpawned { .. } => "agent.spawned",
            Self::TaskScheduled { .. } => "task.scheduled",
            Self::TaskClaimed { .. } => "task.claimed",
            Self::TaskCompleted { .. } => "task.completed",
            Self::ObservationEmitted { .. } => "observation.emitted",
            Self::AgentTerminated { .. } => "agent.terminated",
            Self::TokenIssued(_) => "token.issued",
            Self::IdempotencyKeyRecorded(_) => "idempotency.recorded",
            Self::KeyRotated { .. } => "key.rotated",
            Self::KeyRetired { .. } => "key.retired",
            Self::TokenRevoked { .. } => "token.revoked",
            Self::ToolRegistered(_) => "tool.registered",
            Self::ToolRetired { .. } => "tool.retired",
            Self::ToolCalled(_) => "tool.called",
            Self::ToolApproved { .. } => "tool.approved",
            Self::ToolDenied { .. } => "tool.denied",
            Self::ToolApprovalExpired { .. } => "tool.approval_expired",
            Self::ToolStarted { .. } => "tool.started",
            Self::ToolReturned { .. } => "tool.returned",
            Self::ToolAbandoned { .. } => "tool.abandoned",
            Self::ModelAnswered { .. } => "model.answered",
            Self::BudgetSpent(_) => "budget.spent",
            Self::TaskHeartbeat { .. } => "task.heartbeat",
            Self::PlannerDesignated { .. } => "planner.designated",
            Self::TaskLeaseExpired { .. } => "task.lease_expired",
            Self::TaskCancelled { .. } => "task.cancelled",
            Self::TaskRequeued { .. } => "task.requeued",
            Self::Extension(_) => "extension",
        }
    }
}

/// What the state remembers of a message that carried an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyRecord {
    /// The sender.
    pub origin: EntityId,
    /// The key.
    pub key: String,
    /// BLAKE3 of the operation's JSON, 64 hex digits: a retry must ask for the same.
    pub request_hash: String,
    /// The `seq` of the message's first event.
    pub first_seq: u64,
    /// How many events the message produced (this record not counted).
    pub events: u32,
}

/// Where a task is in its life: queued → claimed → done | failed, or cancelled from
/// queued or claimed when its agent is terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting to be claimed.
    Queued,
    /// Being worked on.
    Claimed,
    /// Finished with success.
    Done,
    /// Finished with failure.
    Failed,
    /// Dropped because its agent was terminated.
    Cancelled,
}

impl TaskState {
    /// Whether the task can still change (queued or claimed).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Queued | Self::Claimed)
    }

    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Claimed => "claimed",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json() {
        let a = EntityId::from_u128(1);
        let t = EntityId::from_u128(2);
        let events = vec![
            KernelEvent::AgentSpawned {
                agent: a,
                parent: None,
                spec: AgentSpec::new("root").unwrap(),
            },
            KernelEvent::TaskScheduled {
                agent: a,
                task: t,
                spec: TaskSpec::new("x").unwrap(),
            },
            KernelEvent::TaskClaimed { agent: a, task: t },
            KernelEvent::TaskCompleted {
                agent: a,
                task: t,
                outcome: TaskOutcome::failure("no").unwrap(),
            },
            KernelEvent::ObservationEmitted {
                agent: a,
                data: Observation::new(vec![9]).unwrap(),
            },
            KernelEvent::AgentTerminated {
                agent: a,
                cancelled_tasks: vec![t],
            },
            KernelEvent::TokenRevoked { jti: "j".into() },
            KernelEvent::Extension(ExtensionCall::new("x", 1, vec![]).unwrap()),
        ];
        for e in events {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(
                serde_json::from_str::<KernelEvent>(&json).unwrap(),
                e,
                "{json}"
            );
        }
    }
}
