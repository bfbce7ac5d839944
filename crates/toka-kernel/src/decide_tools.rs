//! The rules of tools: calling one, deciding an approval, and what only the node's
//! executor may ask for (registering tools, starting a call, recording its result,
//! expiring approvals).
//!
//! A call is decided like every operation (permission, scope, target alive) plus its
//! own rules, in this order: the tool is registered and not retired; the agent has
//! fewer than [`MAX_OPEN_CALLS_PER_AGENT`] open calls; the input matches the tool's
//! schema. An approval needs `approval:grant` with scope over the calling agent, and
//! the approver is never the calling agent, the sender of the call, nor a descendant
//! of either (an agent cannot approve itself, directly or through a child it
//! spawned). An approval names the hash of the input it approves: it applies to those
//! bytes only, and once (the call leaves `awaiting_approval`).
//!
//! What it is not: running tools. [`ToolOp`]s are not reachable through a message; the
//! runtime submits them on behalf of its executor.

use toka_auth::{Claims, permissions};
use toka_types::limits::{MAX_NODE_NAME_CHARS, MAX_OPEN_CALLS_PER_AGENT, MAX_REGISTERED_TOOLS};
use toka_types::{
    CallStatus, EntityId, KernelEvent, Operation, RetryPolicy, ToolCall, ToolResult, ToolSpec,
};

use crate::context::Context;
use crate::decide::{check_position, require, target};
use crate::error::KernelError;
use crate::ids::derive_id;
use crate::opcode::OpcodeRegistry;
use crate::state::WorldState;
use crate::tools::input_hash;

/// How many schema errors a refusal lists.
const MAX_SCHEMA_ERRORS: usize = 5;
/// How many approvals one expiry decision ends (the rest at the next tick).
pub const MAX_EXPIRIES_PER_DECISION: usize = 1024;

/// Everything a tool rule looks at besides the operation's own fields.
#[derive(Clone, Copy)]
pub(crate) struct Asked<'a> {
    pub state: &'a WorldState,
    pub root: EntityId,
    pub origin: EntityId,
    pub claims: &'a Claims,
    pub ctx: &'a Context,
    pub op: &'a Operation,
    pub handlers: &'a OpcodeRegistry,
}

/// `CallTool`.
pub(crate) fn call_tool(
    asked: &Asked<'_>,
    (agent, tool, input): (EntityId, &str, &serde_json::Value),
) -> Result<Vec<KernelEvent>, KernelError> {
    let Asked {
        state,
        root,
        origin,
        claims,
        ctx,
        op,
        handlers,
    } = *asked;
    require(claims, &permissions::tool(tool), op)?;
    target(state, claims, agent)?;
    let record = state
        .tools
        .tool(tool)
        .ok_or_else(|| KernelError::UnknownTool { name: tool.into() })?;
    if record.retired {
        return Err(KernelError::ToolRetired { name: tool.into() });
    }
    if state.tools.open_of(agent) >= MAX_OPEN_CALLS_PER_AGENT {
        return Err(KernelError::TooManyOpenCalls {
            agent,
            limit: MAX_OPEN_CALLS_PER_AGENT,
        });
    }
    let errors = match handlers.schema_check() {
        Some(check) => check.errors(&record.spec.input_schema, input, MAX_SCHEMA_ERRORS),
        None => vec!["this node has no schema check plugged in".into()],
    };
    if !errors.is_empty() {
        return Err(KernelError::ToolInputInvalid {
            tool: tool.into(),
            errors: errors.join("; "),
        });
    }
    let call = derive_id(root, ctx.seq);
    if state.tools.call(call).is_some() {
        return Err(KernelError::IdCollision(call));
    }
    let spent = crate::budgets::spend(state, claims, toka_types::BudgetKind::ToolCalls, 1)?;
    let awaiting = record.spec.approval == toka_types::ApprovalPolicy::Required;
    let mut events = vec![KernelEvent::ToolCalled(ToolCall {
        call,
        agent,
        origin,
        tool: tool.into(),
        input: input.clone(),
        input_hash: input_hash(input),
        awaiting_approval: awaiting,
        approval_expires_at: awaiting
            .then(|| ctx.now.as_unix_secs() + record.spec.approval_ttl_secs),
    })];
    events.extend(spent);
    Ok(events)
}

/// `DecideApproval`.
pub(crate) fn decide_approval(
    asked: &Asked<'_>,
    (call_id, approve, reason, hash): (EntityId, bool, &str, Option<&str>),
) -> Result<Vec<KernelEvent>, KernelError> {
    let Asked {
        state,
        origin,
        claims,
        ctx,
        op,
        ..
    } = *asked;
    require(claims, permissions::APPROVAL_GRANT, op)?;
    let call = state
        .tools
        .call(call_id)
        .ok_or(KernelError::UnknownCall(call_id))?;
    target(state, claims, call.agent)?;
    if state.is_within(origin, call.agent) || state.is_within(origin, call.origin) {
        return Err(KernelError::SelfApproval {
            call: call_id,
            approver: origin,
        });
    }
    if call.status != CallStatus::AwaitingApproval {
        return Err(KernelError::WrongCallStatus {
            call: call_id,
            status: call.status,
            expected: CallStatus::AwaitingApproval,
        });
    }
    if call
        .approval_expires_at
        .is_some_and(|at| ctx.now.as_unix_secs() >= at)
    {
        return Err(KernelError::ApprovalExpired { call: call_id });
    }
    if !approve {
        if reason.trim().is_empty() {
            return Err(KernelError::ReasonRequired { call: call_id });
        }
        return Ok(vec![KernelEvent::ToolDenied {
            call: call_id,
            by: origin,
            reason: reason.into(),
        }]);
    }
    match hash {
        Some(h) if h == call.input_hash => Ok(vec![KernelEvent::ToolApproved {
            call: call_id,
            by: origin,
            reason: reason.into(),
        }]),
        other => Err(KernelError::ApprovalInputMismatch {
            call: call_id,
            approved: other.unwrap_or("").into(),
            actual: call.input_hash.clone(),
        }),
    }
}

/// What the node's executor asks the kernel to record. No message can express these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOp {
    /// The node offers exactly these tools: register new or changed ones, retire the
    /// rest.
    Offer(Vec<ToolSpec>),
    /// Start a ready call on `node`; or, for a call left running by a node that died,
    /// run it again (repeatable tools) or abandon it (all others).
    Start {
        /// The call.
        call: EntityId,
        /// The node asking.
        node: String,
    },
    /// A running call's tool returned.
    Return {
        /// The call.
        call: EntityId,
        /// What it returned.
        result: ToolResult,
    },
    /// End every call whose approval expired by now.
    ExpireApprovals,
}

/// The events of an executor request `op` at `ctx`.
pub fn decide_tool_op(
    state: &WorldState,
    op: &ToolOp,
    ctx: &Context,
    handlers: &OpcodeRegistry,
) -> Result<Vec<KernelEvent>, KernelError> {
    check_position(state, ctx)?;
    state.root.ok_or(KernelError::NotInitialised)?;
    match op {
        ToolOp::Offer(specs) => offer(state, specs, handlers),
        ToolOp::Start { call, node } => start(state, *call, node),
        ToolOp::Return { call, result } => {
            result.validate()?;
            let record = state
                .tools
                .call(*call)
                .ok_or(KernelError::UnknownCall(*call))?;
            if record.status != CallStatus::Running {
                return Err(KernelError::WrongCallStatus {
                    call: *call,
                    status: record.status,
                    expected: CallStatus::Running,
                });
            }
            Ok(vec![KernelEvent::ToolReturned {
                call: *call,
                result: result.clone(),
            }])
        }
        ToolOp::ExpireApprovals => {
            let now = ctx.now.as_unix_secs();
            Ok(state
                .tools
                .open_calls()
                .filter(|c| {
                    c.status == CallStatus::AwaitingApproval
                        && c.approval_expires_at.is_some_and(|at| now >= at)
                })
                .take(MAX_EXPIRIES_PER_DECISION)
                .map(|c| KernelEvent::ToolApprovalExpired { call: c.id })
                .collect())
        }
    }
}

fn offer(
    state: &WorldState,
    specs: &[ToolSpec],
    handlers: &OpcodeRegistry,
) -> Result<Vec<KernelEvent>, KernelError> {
    if specs.len() > MAX_REGISTERED_TOOLS {
        return Err(KernelError::TooManyTools {
            limit: MAX_REGISTERED_TOOLS,
        });
    }
    let mut events = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for spec in specs {
        let invalid = |reason: String| KernelError::ToolSpecInvalid {
            name: spec.name.clone(),
            reason,
        };
        spec.validate().map_err(|e| invalid(e.to_string()))?;
        handlers
            .schema_check()
            .ok_or_else(|| invalid("this node has no schema check plugged in".into()))?
            .compile(&spec.input_schema)
            .map_err(invalid)?;
        if !seen.insert(spec.name.as_str()) {
            return Err(invalid("offered twice".into()));
        }
        match state.tools.tool(&spec.name) {
            Some(t) if !t.retired && t.spec == *spec => {}
            _ => events.push(KernelEvent::ToolRegistered(spec.clone())),
        }
    }
    for t in state.tools.tools() {
        if !t.retired && !seen.contains(t.spec.name.as_str()) {
            events.push(KernelEvent::ToolRetired {
                name: t.spec.name.clone(),
            });
        }
    }
    Ok(events)
}

fn start(
    state: &WorldState,
    call_id: EntityId,
    node: &str,
) -> Result<Vec<KernelEvent>, KernelError> {
    if node.is_empty()
        || node.chars().count() > MAX_NODE_NAME_CHARS
        || node.chars().any(char::is_control)
    {
        return Err(KernelError::Invalid(
            toka_types::ValidationError::BadCharacter {
                field: "node name",
                reason: "must be 1 to 64 characters without control characters",
            },
        ));
    }
    let call = state
        .tools
        .call(call_id)
        .ok_or(KernelError::UnknownCall(call_id))?;
    let started = |attempt| KernelEvent::ToolStarted {
        call: call_id,
        node: node.into(),
        attempt,
    };
    match call.status {
        CallStatus::Ready => {
            let agent_active = state
                .agents
                .get(&call.agent)
                .is_some_and(|a| a.status == crate::state::AgentStatus::Active);
            if !agent_active {
                // Approved or ready, but its agent was terminated before it ran: it
                // never runs, and says why.
                return Ok(vec![
                    started(call.attempts + 1),
                    KernelEvent::ToolReturned {
                        call: call_id,
                        result: ToolResult::error(format!(
                            "not run: agent {} was terminated before the call started",
                            call.agent
                        )),
                    },
                ]);
            }
            Ok(vec![started(call.attempts + 1)])
        }
        CallStatus::Running => {
            let retry = state
                .tools
                .tool(&call.tool)
                .map(|t| t.spec.retry)
                .unwrap_or(RetryPolicy::AtMostOnce);
            match retry {
                RetryPolicy::Repeatable => Ok(vec![started(call.attempts + 1)]),
                RetryPolicy::AtMostOnce => Ok(vec![KernelEvent::ToolAbandoned {
                    call: call_id,
                    reason: format!(
                        "outcome unknown: node {} stopped while {} was running, and the tool \
                         is not safe to repeat",
                        call.node.as_deref().unwrap_or("?"),
                        call.tool
                    ),
                }]),
            }
        }
        status => Err(KernelError::WrongCallStatus {
            call: call_id,
            status,
            expected: CallStatus::Ready,
        }),
    }
}
