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
    let fail = |e: &dyn std::fmt::Display| LoadError(format!("kernel baseline: {e}"));
    let mut secret = [0u8; 32];
    crate::keys::random_bytes(&mut secret).map_err(|e| fail(&e))?;
    let keys = KeySet::new(SigningKey::hs256("baseline", &secret).map_err(|e| fail(&e))?);
    let clock = SystemClock;
    let mut kernel = Kernel::new(keys.clone());
    let ctx = |kernel: &Kernel| Context::new(clock.now(), kernel.state().next_seq());
    kernel
        .genesis(
            &AgentSpec::new("root").map_err(|e| fail(&e))?,
            &ctx(&kernel),
        )
        .map_err(|e| fail(&e))?;
    let root = kernel
        .state()
        .root()
        .ok_or_else(|| fail(&"genesis made no root"))?;
    let issued = kernel
        .issue_root_token(3600, &ctx(&kernel))
        .map_err(|e| fail(&e))?;
    let admin = sign(&keys, &issued).map_err(|e| fail(&e))?;
    // Each agent: its id, its token, and the task it scheduled last (to claim next).
    let mut agents: Vec<(EntityId, String, Option<EntityId>)> = Vec::with_capacity(submitters);
    for i in 0..submitters.max(1) {
        let spec = AgentSpec::new(format!("baseline-{i}")).map_err(|e| fail(&e))?;
        let spawn = Operation::SpawnSubAgent { parent: root, spec };
        let events = kernel
            .submit(&Message::new(root, admin.clone(), spawn), &ctx(&kernel))
            .map_err(|e| fail(&e))?;
        let Some(KernelEvent::AgentSpawned { agent, .. }) = events.first() else {
            return Err(fail(&"the spawn produced no agent"));
        };
        let grant = Operation::IssueToken(grant_for(*agent));
        let events = kernel
            .submit(&Message::new(root, admin.clone(), grant), &ctx(&kernel))
            .map_err(|e| fail(&e))?;
        agents.push((*agent, sign(&keys, &events).map_err(|e| fail(&e))?, None));
    }
    let task = TaskSpec::new(TASK).map_err(|e| fail(&e))?;
    let started = Instant::now();
    for i in 0..messages {
        let turn = (i % agents.len() as u64) as usize;
        let Some((agent, token, last_task)) = agents.get_mut(turn) else {
            break;
        };
        let op = next_operation(*agent, last_task, &task);
        let events = kernel
            .submit(&Message::new(*agent, token.clone(), op), &ctx(&kernel))
            .map_err(|e| fail(&e))?;
        if let Some(KernelEvent::TaskScheduled { task, .. }) = events.first() {
            *last_task = Some(*task);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(KernelReport {
        messages,
        seconds,
        per_second: messages as f64 / seconds.max(1e-9),
    })
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
