//! The baseline of the pipeline's figure: the same messages through the kernel alone.
//!
//! One thread authenticates (HS256, through the kernel's verified-token cache, as the
//! writer does), decides and applies each message, one after the other: no log, no
//! hashing, no batches, no submitters to answer. What the pipeline does on top of that
//! is what makes a message durable and answered; the ratio of the two says what it
//! costs on this machine. Not a pipeline: nothing here is written or kept.

use std::time::Instant;

use serde::Serialize;
use toka_auth::{Claims, KeySet, SigningKey, mint, mint_with};
use toka_kernel::{Context, Kernel};
use toka_types::{AgentSpec, EntityId, KernelEvent, Message, Operation, TaskSpec};

use super::{LoadError, TASK, grant_for, next_operation};
use crate::clock::{Clock, SystemClock};

/// What the kernel alone did.
#[derive(Debug, Clone, Serialize)]
pub struct KernelReport {
    /// Messages decided and applied.
    pub messages: u64,
    /// Wall time.
    pub seconds: f64,
    /// Messages per second.
    pub per_second: f64,
}

/// The work of [`run`](super::run) with `submitters` agents and `messages` messages,
/// on one kernel on this thread: each agent in turn schedules a task, then claims it,
/// with its own HS256 token verified on every message.
pub fn kernel_alone(submitters: usize, messages: u64) -> Result<KernelReport, LoadError> {
    let mut load = Workload::new(submitters)?;
    let started = Instant::now();
    for i in 0..messages {
        let Some((turn, message)) = load.message(i) else {
            break;
        };
        let ctx = load.context();
        let events = load
            .kernel
            .submit(&message, &ctx)
            .map_err(|e| LoadError(format!("kernel baseline: {e}")))?;
        load.saw(turn, &events);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(KernelReport {
        messages,
        seconds,
        per_second: messages as f64 / seconds.max(1e-9),
    })
}

/// Why the workload could not be set up (it is shared: the kernel baseline's and the
/// floor's errors after set-up say which).
fn fail(e: &dyn std::fmt::Display) -> LoadError {
    LoadError(format!("load set-up: {e}"))
}

/// The load of [`run`](super::run) on one kernel of this thread: one agent per
/// submitter under a root, each with its own HS256 token, taking turns.
pub(super) struct Workload {
    pub(super) kernel: Kernel,
    /// Each agent: its id, its token, and the task it scheduled last (to claim next).
    agents: Vec<(EntityId, String, Option<EntityId>)>,
    task: TaskSpec,
    clock: SystemClock,
}

impl Workload {
    /// A kernel past genesis with `submitters` agents (at least one) and their tokens.
    pub(super) fn new(submitters: usize) -> Result<Self, LoadError> {
        let mut secret = [0u8; 32];
        crate::keys::random_bytes(&mut secret).map_err(|e| fail(&e))?;
        let keys = KeySet::new(SigningKey::hs256("baseline", &secret).map_err(|e| fail(&e))?);
        let mut load = Self {
            kernel: Kernel::new(keys.clone()),
            agents: Vec::with_capacity(submitters.max(1)),
            task: TaskSpec::new(TASK).map_err(|e| fail(&e))?,
            clock: SystemClock,
        };
        let ctx = load.context();
        load.kernel
            .genesis(&AgentSpec::new("root").map_err(|e| fail(&e))?, &ctx)
            .map_err(|e| fail(&e))?;
        let root = load
            .kernel
            .state()
            .root()
            .ok_or_else(|| fail(&"genesis made no root"))?;
        let ctx = load.context();
        let issued = load
            .kernel
            .issue_root_token(3600, &ctx)
            .map_err(|e| fail(&e))?;
        let admin = sign(&keys, &issued).map_err(|e| fail(&e))?;
        for i in 0..submitters.max(1) {
            let spec = AgentSpec::new(format!("baseline-{i}")).map_err(|e| fail(&e))?;
            let spawn = Operation::SpawnSubAgent { parent: root, spec };
            let ctx = load.context();
            let events = load
                .kernel
                .submit(&Message::new(root, admin.clone(), spawn), &ctx)
                .map_err(|e| fail(&e))?;
            let Some(KernelEvent::AgentSpawned { agent, .. }) = events.first() else {
                return Err(fail(&"the spawn produced no agent"));
            };
            let grant = Operation::IssueToken(grant_for(*agent));
            let ctx = load.context();
            let events = load
                .kernel
                .submit(&Message::new(root, admin.clone(), grant), &ctx)
                .map_err(|e| fail(&e))?;
            let token = sign(&keys, &events).map_err(|e| fail(&e))?;
            load.agents.push((*agent, token, None));
        }
        Ok(load)
    }

    /// The context of the next decision: now, and the next `seq`.
    pub(super) fn context(&self) -> Context {
        Context::new(self.clock.now(), self.kernel.state().next_seq())
    }

    /// Whose turn the `i`th message of the run is, and the message.
    pub(super) fn message(&mut self, i: u64) -> Option<(usize, Message)> {
        let turn = (i % self.agents.len().max(1) as u64) as usize;
        let (agent, token, last_task) = self.agents.get_mut(turn)?;
        let op = next_operation(*agent, last_task, &self.task);
        Some((turn, Message::new(*agent, token.clone(), op)))
    }

    /// What the message of `turn` produced: its task, if it scheduled one, is claimed
    /// next.
    pub(super) fn saw(&mut self, turn: usize, events: &[KernelEvent]) {
        if let (Some(KernelEvent::TaskScheduled { task, .. }), Some(agent)) =
            (events.first(), self.agents.get_mut(turn))
        {
            agent.2 = Some(*task);
        }
    }
}

/// The token a `token.issued` among `events` records, signed.
fn sign(keys: &KeySet, events: &[KernelEvent]) -> Result<String, String> {
    let issued = events
        .iter()
        .find_map(|e| match e {
            KernelEvent::TokenIssued(issued) => Some(issued),
            _ => None,
        })
        .ok_or("no token.issued event")?;
    let claims = Claims::of_issued(issued);
    match &issued.kid {
        Some(kid) => mint_with(keys, kid, &claims),
        None => mint(keys, &claims),
    }
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_baseline_decides_every_message() {
        let report = kernel_alone(3, 31).unwrap();
        assert_eq!(report.messages, 31);
        assert!(report.per_second > 0.0 && report.seconds > 0.0);
    }
}
