//! [`apply`]: fold one decided event into the state. The only way state changes.
//!
//! `apply` never fails and never re-checks rules: it takes events that `decide`
//! produced (live, or read back from a verified log). Its preconditions are asserted in
//! debug builds, one fact per assertion; in release an event that does not fit (which
//! only a corrupt log could hold) is counted and otherwise skipped, and
//! [`WorldState::check_invariants`] is how recovery notices.

use toka_types::{KernelEvent, TaskOutcome, TaskState};

use crate::opcode::OpcodeRegistry;
use crate::state::{AgentRecord, AgentStatus, TaskRecord, WorldState};

/// Applies `event` to `state`. Extension events go to their family's handler in
/// `handlers`; an extension event with no registered handler changes nothing but the
/// event count (the runtime refuses to start on a log whose families it lacks).
pub fn apply(state: &mut WorldState, event: &KernelEvent, handlers: &OpcodeRegistry) {
    state.applied += 1;
    match event {
        KernelEvent::AgentSpawned {
            agent,
            parent,
            spec,
        } => {
            debug_assert!(
                !state.agents.contains_key(agent),
                "agent {agent} spawned twice"
            );
            let depth = match parent {
                None => {
                    debug_assert!(state.root.is_none(), "second root {agent}");
                    state.root = Some(*agent);
                    0
                }
                Some(p) => match state.agents.get_mut(p) {
                    Some(parent) => {
                        parent.push_child(*agent);
                        parent.depth + 1
                    }
                    None => {
                        debug_assert!(false, "parent {p} of {agent} unknown");
                        return;
                    }
                },
            };
            state.agents.insert(
                *agent,
                AgentRecord {
                    id: *agent,
                    parent: *parent,
                    spec: spec.clone(),
                    depth,
                    children: Vec::new(),
                    status: AgentStatus::Active,
                    observations: 0,
                    queued: 0,
                    open_tasks: Default::default(),
                    tasks: Vec::new(),
                    lists: Default::default(),
                },
            );
        }
        KernelEvent::TaskScheduled { agent, task, spec } => {
            debug_assert!(
                !state.tasks.contains_key(task),
                "task {task} scheduled twice"
            );
            let Some(record) = state.agents.get_mut(agent) else {
                debug_assert!(false, "task {task} for unknown agent {agent}");
                return;
            };
            record.push_task(*task);
            record.open_tasks.insert(*task);
            record.queued += 1;
            state.tasks.insert(
                *task,
                TaskRecord {
                    id: *task,
                    agent: *agent,
                    spec: spec.clone(),
                    state: TaskState::Queued,
                    outcome: None,
                },
            );
        }
        KernelEvent::TaskClaimed { agent, task } => {
            if let Some(t) = state.tasks.get_mut(task) {
                debug_assert_eq!(t.state, TaskState::Queued);
                t.state = TaskState::Claimed;
            }
            if let Some(a) = state.agents.get_mut(agent) {
                debug_assert!(a.queued > 0);
                a.queued = a.queued.saturating_sub(1);
            }
        }
        KernelEvent::TaskCompleted {
            agent,
            task,
            outcome,
        } => {
            if let Some(t) = state.tasks.get_mut(task) {
                debug_assert_eq!(t.state, TaskState::Claimed);
                t.state = match outcome {
                    TaskOutcome::Success { .. } => TaskState::Done,
                    TaskOutcome::Failure { .. } => TaskState::Failed,
                };
                t.outcome = Some(outcome.clone());
            }
            state.leases.until.remove(task);
            if let Some(a) = state.agents.get_mut(agent) {
                let was_open = a.open_tasks.remove(task);
                debug_assert!(was_open);
            }
        }
        KernelEvent::PlannerDesignated { agent, jti, model } => {
            state.planners.by_agent.insert(
                *agent,
                crate::planners::PlannerRecord {
                    jti: jti.clone(),
                    model: model.clone(),
                },
            );
        }
        KernelEvent::TaskHeartbeat { task, until, .. } => {
            state.leases.until.insert(*task, *until);
        }
        KernelEvent::TaskCancelled { agent, task, .. } => {
            let mut was_queued = false;
            if let Some(t) = state.tasks.get_mut(task) {
                debug_assert!(t.state.is_open());
                was_queued = t.state == TaskState::Queued;
                t.state = TaskState::Cancelled;
            }
            state.leases.until.remove(task);
            if let Some(a) = state.agents.get_mut(agent) {
                if was_queued {
                    a.queued = a.queued.saturating_sub(1);
                }
                a.open_tasks.remove(task);
            }
        }
        KernelEvent::TaskLeaseExpired { agent, task }
        | KernelEvent::TaskRequeued { agent, task, .. } => {
            if let Some(t) = state.tasks.get_mut(task) {
                debug_assert_eq!(t.state, TaskState::Claimed);
                t.state = TaskState::Queued;
            }
            state.leases.until.remove(task);
            if let Some(a) = state.agents.get_mut(agent) {
                a.queued += 1;
            }
        }
        KernelEvent::ObservationEmitted { agent, .. } => {
            if let Some(a) = state.agents.get_mut(agent) {
                a.observations += 1;
            }
        }
        KernelEvent::AgentTerminated {
            agent,
            cancelled_tasks,
        } => {
            let mut unqueued = 0;
            for id in cancelled_tasks {
                if let Some(t) = state.tasks.get_mut(id) {
                    debug_assert!(t.state.is_open());
                    if t.state == TaskState::Queued {
                        unqueued += 1;
                    }
                    t.state = TaskState::Cancelled;
                }
                state.leases.until.remove(id);
            }
            if let Some(a) = state.agents.get_mut(agent) {
                debug_assert_eq!(a.status, AgentStatus::Active);
                a.status = AgentStatus::Terminated;
                a.queued = a.queued.saturating_sub(unqueued);
                for id in cancelled_tasks {
                    a.open_tasks.remove(id);
                }
            }
        }
        KernelEvent::TokenIssued(token) => {
            debug_assert!(
                !state.tokens.contains_key(&token.jti),
                "token {} issued twice",
                token.jti
            );
            if let Some(kid) = &token.kid {
                state.keys.entry(kid.clone()).or_insert(false);
                state.signing_kid = Some(kid.clone());
            }
            state.tokens.insert(token.jti.clone(), token.clone());
        }
        KernelEvent::KeyRotated { kid, .. } => {
            state.keys.insert(kid.clone(), false);
            state.signing_kid = Some(kid.clone());
        }
        KernelEvent::KeyRetired { kid } => {
            state.keys.insert(kid.clone(), true);
        }
        KernelEvent::IdempotencyKeyRecorded(record) => {
            state.idempotency.insert(record.clone());
        }
        KernelEvent::TokenRevoked { jti } => {
            // Revoking a renewal revokes its whole family (see `renewals`).
            let family = state.family_of(jti).to_string();
            state.revoked.insert(jti.clone());
            state.revoked.insert(family);
        }
        KernelEvent::ToolRegistered(_)
        | KernelEvent::ToolRetired { .. }
        | KernelEvent::ToolCalled(_)
        | KernelEvent::ToolApproved { .. }
        | KernelEvent::ToolDenied { .. }
        | KernelEvent::ToolApprovalExpired { .. }
        | KernelEvent::ToolStarted { .. }
        | KernelEvent::ToolReturned { .. }
        | KernelEvent::ToolAbandoned { .. } => {
            let seq = state.applied;
            state.tools.apply(event, seq);
        }
        KernelEvent::BudgetSpent(spend) => state.spent.apply(spend),
        KernelEvent::ModelAnswered { step, tokens } => {
            let seq = state.applied;
            state.models.apply(step.agent, step.task, *tokens, seq);
        }
        KernelEvent::Extension(call) => {
            if let Some(handler) = handlers.get(call.family()) {
                let family_state = state
                    .extensions
                    .entry(call.family().to_string())
                    .or_default();
                handler.apply(family_state, call);
            }
        }
    }
}
