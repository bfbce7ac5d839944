//! Leases: a claimed task whose worker heartbeats (`Heartbeat`) holds a lease in log
//! time; when it runs out without a heartbeat, the runtime asks the kernel to expire
//! it (`decide_expire_leases`, with the context's time) and the task is queued again
//! (`task.lease_expired`), so a crashed worker's task is picked up. Tasks claimed
//! without a heartbeat keep their claim as before.
//!
//! Invariant 12: only claimed tasks hold a lease.

use std::collections::BTreeMap;

use toka_auth::{Claims, permissions};
use toka_types::limits::MAX_LEASE_EXPIRIES_PER_DECISION;
use toka_types::{EntityId, KernelEvent, Operation, TaskState};

use crate::context::Context;
use crate::decide::{check_position, require, target, task_in_state};
use crate::error::KernelError;
use crate::state::WorldState;

/// The lease of each task that has one: Unix seconds it runs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseTable {
    pub(crate) until: BTreeMap<EntityId, u64>,
}

impl LeaseTable {
    /// When the lease of `task` runs out, if it has one.
    pub fn of(&self, task: EntityId) -> Option<u64> {
        self.until.get(&task).copied()
    }

    /// Every lease, by task.
    pub fn entries(&self) -> impl Iterator<Item = (EntityId, u64)> + '_ {
        self.until.iter().map(|(t, u)| (*t, *u))
    }

    /// Whether a lease has run out at `now`.
    pub fn any_due(&self, now: u64) -> bool {
        self.until.values().any(|u| *u <= now)
    }

    /// Whether no task holds a lease.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    pub(crate) fn from_parts(entries: Vec<(EntityId, u64)>) -> Self {
        Self {
            until: entries.into_iter().collect(),
        }
    }
}

/// `Heartbeat`.
pub(crate) fn heartbeat(
    state: &WorldState,
    claims: &Claims,
    op: &Operation,
    (agent, task, lease_secs): (EntityId, EntityId, u32),
    ctx: &Context,
) -> Result<Vec<KernelEvent>, KernelError> {
    require(claims, permissions::TASK_CLAIM, op)?;
    target(state, claims, agent)?;
    task_in_state(state, agent, task, TaskState::Claimed)?;
    Ok(vec![KernelEvent::TaskHeartbeat {
        agent,
        task,
        until: ctx.now.as_unix_secs().saturating_add(u64::from(lease_secs)),
    }])
}

/// The events that queue again every claimed task whose lease ran out by `ctx.now`
/// (at most [`MAX_LEASE_EXPIRIES_PER_DECISION`]). Not reachable through a message:
/// the runtime asks for it on a timer.
pub fn decide_expire_leases(
    state: &WorldState,
    ctx: &Context,
) -> Result<Vec<KernelEvent>, KernelError> {
    check_position(state, ctx)?;
    let now = ctx.now.as_unix_secs();
    Ok(state
        .leases
        .until
        .iter()
        .filter(|(_, until)| **until <= now)
        .filter_map(|(task, _)| state.task(*task))
        .filter(|t| t.state == TaskState::Claimed)
        .take(MAX_LEASE_EXPIRIES_PER_DECISION)
        .map(|t| KernelEvent::TaskLeaseExpired {
            agent: t.agent,
            task: t.id,
        })
        .collect())
}
