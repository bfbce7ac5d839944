//! [`Operation`]: what a message asks the kernel to do.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, check_text};
use crate::id::EntityId;
use crate::limits::{MAX_JTI_BYTES, MAX_TASK_REASON_CHARS};
use crate::model::ModelStep;
use crate::spec::{AgentSpec, ExtensionCall, Observation, TaskOutcome, TaskSpec};
use crate::token::{TokenGrant, TokenRenewal};
use crate::tool::{check_approval_reason, check_tool_input, check_tool_name};

/// One thing an agent asks the kernel to do. In JSON, the variant is the `op` field:
/// `{"op":"schedule_agent_task","agent":"…","task":{"description":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Queue a task for `agent`.
    ScheduleAgentTask {
        /// The agent whose queue gets the task.
        agent: EntityId,
        /// The task.
        task: TaskSpec,
    },
    /// Create a child of `parent`.
    SpawnSubAgent {
        /// The agent the new one descends from.
        parent: EntityId,
        /// The new agent.
        spec: AgentSpec,
    },
    /// Record an observation made by `agent`.
    EmitObservation {
        /// The agent that observed.
        agent: EntityId,
        /// What it observed.
        data: Observation,
    },
    /// Take a queued task of `agent` (queued → claimed).
    ClaimTask {
        /// The agent whose queue holds the task.
        agent: EntityId,
        /// The task.
        task: EntityId,
    },
    /// Take the oldest queued task of `agent` that waits for nothing (queued →
    /// claimed); refused with `no_task_queued` when there is none.
    ClaimNext {
        /// The agent whose queue to take from.
        agent: EntityId,
    },
    /// Drop a queued or claimed task of `agent` (→ cancelled), saying why.
    CancelTask {
        /// The agent whose task it is.
        agent: EntityId,
        /// The task.
        task: EntityId,
        /// Why (recorded).
        #[serde(default)]
        reason: String,
    },
    /// Put a claimed task of `agent` back in its queue (claimed → queued), e.g. when
    /// its worker is gone; saying why.
    RequeueTask {
        /// The agent whose task it is.
        agent: EntityId,
        /// The task.
        task: EntityId,
        /// Why (recorded).
        #[serde(default)]
        reason: String,
    },
    /// Finish a claimed task of `agent` (claimed → done or failed).
    CompleteTask {
        /// The agent whose task it is.
        agent: EntityId,
        /// The task.
        task: EntityId,
        /// How it ended.
        outcome: TaskOutcome,
    },
    /// Stop `agent` and all its descendants; their queued and claimed tasks are cancelled.
    TerminateAgent {
        /// The agent to stop.
        agent: EntityId,
    },
    /// Delegate: issue a token for `grant.sub`, attenuated from the sender's own
    /// (needs `token:issue`). The event records the grant; the runtime signs it.
    IssueToken(TokenGrant),
    /// Renew the sender's own token: a new token of its renewal family with the same
    /// grant (or fewer permissions) and a fresh expiry, within the chain's lifetime.
    RenewToken(TokenRenewal),
    /// Revoke the capability token with this `jti`, and with it every token derived
    /// from it. Only a token whose subject is in the sender's scope (or any, with scope
    /// `*` for a `jti` the log never issued), and never one of the sender's ancestors.
    RevokeToken {
        /// The token id.
        jti: String,
    },
    /// Call the registered tool `tool` for `agent` with `input` (needs
    /// `tool:<tool>`). The event `tool.called` opens the call; the node's executor runs
    /// it (after approval, if the tool needs one) and records what it returned.
    CallTool {
        /// The agent the call is made for (the sender itself, or one in its scope).
        agent: EntityId,
        /// The tool's name.
        tool: String,
        /// Its input, checked against the tool's schema.
        input: serde_json::Value,
    },
    /// Approve or deny a call waiting for approval (needs `approval:grant` with scope
    /// over the calling agent; never the caller itself nor one of its descendants).
    DecideApproval {
        /// The call.
        call: EntityId,
        /// Approve (`true`) or deny.
        approve: bool,
        /// Why, for the record (required to deny).
        #[serde(default)]
        reason: String,
        /// The hash of the input the approver saw (required to approve): an approval
        /// applies only to those exact bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_hash: Option<String>,
    },
    /// Hand `agent` to the node's planner host (needs `token:issue`): the node runs it
    /// as an LLM planner acting with the token `jti`, which the sender's token (or one
    /// it descends from) issued for `agent`. The designation is in the log, so a node
    /// that restarts resumes its planners by itself.
    DesignatePlanner {
        /// The planner agent.
        agent: EntityId,
        /// The token it acts with.
        jti: String,
        /// The model it asks (default: the node's `[planner]` model).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
    /// Keep a claimed task of `agent` claimed for `lease_secs` more seconds (needs
    /// `task:claim`). A task with a lease that runs out without a heartbeat is queued
    /// again (`task.lease_expired`), so a crashed worker's task is picked up.
    Heartbeat {
        /// The task's agent.
        agent: EntityId,
        /// The task.
        task: EntityId,
        /// Seconds from now, 1 to 3600.
        #[serde(deserialize_with = "crate::whole::u32")]
        lease_secs: u32,
    },
    /// Record one exchange with a language model (needs `model:use`), before acting
    /// on its answer: `agent` works on `task`, claimed. The kernel debits the tokens
    /// the recorded response says were used.
    RecordModelStep(Box<ModelStep>),
    /// Call a handler registered with the kernel by another crate.
    Extension(ExtensionCall),
}

impl Operation {
    /// A short stable name, used in logs, metrics and errors (`task.schedule`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ScheduleAgentTask { .. } => "task.schedule",
            Self::SpawnSubAgent { .. } => "agent.spawn",
            Self::EmitObservation { .. } => "observation.emit",
            Self::ClaimTask { .. } => "task.claim",
            Self::ClaimNext { .. } => "task.claim_next",
            Self::CancelTask { .. } => "task.cancel",
            Self::RequeueTask { .. } => "task.requeue",
            Self::CompleteTask { .. } => "task.complete",
            Self::TerminateAgent { .. } => "agent.terminate",
            Self::IssueToken(_) => "token.issue",
            Self::RenewToken(_) => "token.renew",
            Self::RevokeToken { .. } => "token.revoke",
            Self::CallTool { .. } => "tool.call",
            Self::DecideApproval { .. } => "approval.decide",
            Self::RecordModelStep(_) => "model.step",
            Self::Heartbeat { .. } => "task.heartbeat",
            Self::DesignatePlanner { .. } => "planner.designate",
            Self::Extension(_) => "extension",
        }
    }

    /// Checks every bound of this operation. Values built through constructors or
    /// deserialised are already checked; this catches those built by hand.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::CompleteTask { outcome, .. } => outcome.validate(),
            Self::RevokeToken { jti } => check_text("jti", jti, MAX_JTI_BYTES),
            Self::IssueToken(grant) => grant.validate(),
            Self::RenewToken(renewal) => renewal.validate(),
            Self::CancelTask { reason, .. } | Self::RequeueTask { reason, .. } => {
                check_task_reason(reason)
            }
            Self::CallTool { tool, input, .. } => {
                check_tool_name(tool)?;
                check_tool_input(input)
            }
            Self::DecideApproval {
                reason, input_hash, ..
            } => {
                check_approval_reason(reason)?;
                match input_hash {
                    Some(h) => check_text("input_hash", h, 64),
                    None => Ok(()),
                }
            }
            Self::RecordModelStep(step) => step.validate(),
            Self::DesignatePlanner { jti, model, .. } => {
                check_text("jti", jti, MAX_JTI_BYTES)?;
                match model {
                    Some(m) => check_text("model", m, crate::limits::MAX_MODEL_NAME_CHARS),
                    None => Ok(()),
                }
            }
            Self::Heartbeat { lease_secs, .. } => {
                if (1..=crate::limits::MAX_LEASE_SECS).contains(lease_secs) {
                    Ok(())
                } else {
                    Err(ValidationError::OutOfRange {
                        field: "lease_secs",
                        actual: u64::from(*lease_secs),
                        min: 1,
                        max: u64::from(crate::limits::MAX_LEASE_SECS),
                    })
                }
            }
            Self::ScheduleAgentTask { .. }
            | Self::SpawnSubAgent { .. }
            | Self::EmitObservation { .. }
            | Self::ClaimTask { .. }
            | Self::ClaimNext { .. }
            | Self::TerminateAgent { .. }
            | Self::Extension(_) => Ok(()),
        }
    }
}

fn check_task_reason(reason: &str) -> Result<(), ValidationError> {
    let actual = reason.chars().count();
    if actual > MAX_TASK_REASON_CHARS {
        return Err(ValidationError::TooLong {
            field: "reason",
            actual,
            limit: MAX_TASK_REASON_CHARS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_tagged() {
        let agent = EntityId::from_u128(7);
        let op = Operation::ScheduleAgentTask {
            agent,
            task: TaskSpec::new("do it").unwrap(),
        };
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(
            json,
            r#"{"op":"schedule_agent_task","agent":"00000000-0000-0000-0000-000000000007","task":{"description":"do it"}}"#
        );
        assert_eq!(serde_json::from_str::<Operation>(&json).unwrap(), op);
    }

    #[test]
    fn extension_round_trips() {
        let op = Operation::Extension(ExtensionCall::new("counter", 1, vec![1, 2, 3]).unwrap());
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Operation>(&json).unwrap(), op);
    }

    #[test]
    fn refuses_unknown_fields_and_ops() {
        assert!(serde_json::from_str::<Operation>(r#"{"op":"format_disk"}"#).is_err());
        assert!(
            serde_json::from_str::<Operation>(
                r#"{"op":"terminate_agent","agent":"00000000-0000-0000-0000-000000000007","force":true}"#
            )
            .is_err()
        );
    }

    #[test]
    fn revocation_jti_bounded() {
        assert!(
            Operation::RevokeToken {
                jti: "x".repeat(MAX_JTI_BYTES + 1)
            }
            .validate()
            .is_err()
        );
        assert!(
            Operation::RevokeToken { jti: String::new() }
                .validate()
                .is_err()
        );
        assert!(
            Operation::RevokeToken { jti: "abc".into() }
                .validate()
                .is_ok()
        );
    }
}
