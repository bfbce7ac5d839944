//! Load generation: many concurrent submitters through the real pipeline, measured.
//! Shared by `cargo bench -p toka-runtime` and `toka bench`; [`kernel_alone`] is the
//! baseline `toka bench --driver memory --compare` puts beside it, and [`floor`] the
//! cost of each message's own work, stage by stage, that `toka bench --floor` prints.

mod floor;
mod kernel;

pub use floor::{FloorReport, floor};
pub use kernel::{KernelReport, kernel_alone};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use toka_types::{AgentSpec, EntityId, KernelEvent, Message, Operation, TaskSpec, TokenGrant};

use crate::runtime::Runtime;

/// The task every load message schedules.
const TASK: &str = "load test task";

/// What each load agent may do: schedule tasks for itself and claim them.
fn grant_for(agent: EntityId) -> TokenGrant {
    TokenGrant {
        sub: agent,
        permissions: vec!["task:schedule".into(), "task:claim".into()],
        scope: None,
        ttl_secs: None,
        budget: Default::default(),
    }
}

/// A load agent's next operation: claim the task it scheduled last, or schedule one
/// (so no queue fills).
fn next_operation(agent: EntityId, last_task: &mut Option<EntityId>, task: &TaskSpec) -> Operation {
    match last_task.take() {
        Some(scheduled) => Operation::ClaimTask {
            agent,
            task: scheduled,
        },
        None => Operation::ScheduleAgentTask {
            agent,
            task: task.clone(),
        },
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Concurrent submitters.
    pub submitters: usize,
    /// Messages acknowledged (durable).
    pub acknowledged: u64,
    /// Wall time.
    pub seconds: f64,
    /// Acknowledged messages per second.
    pub per_second: f64,
    /// Median submit-to-ack latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Storage appends (group commits) it took.
    pub commits: u64,
}

/// Why a load run stopped.
#[derive(Debug, thiserror::Error)]
#[error("load run failed: {0}")]
pub struct LoadError(pub String);

/// Spawns one agent per submitter (each with a token for its own queue), then has
/// `submitters` tasks send `messages` messages in all, alternating "schedule a task"
/// and "claim it" so no queue fills. `progress` gets the running count of acks.
pub async fn run(
    rt: &Runtime,
    submitters: usize,
    messages: u64,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<LoadReport, LoadError> {
    let submitters = submitters.max(1);
    let root = rt.root().ok_or_else(|| LoadError("no root agent".into()))?;
    let admin = rt
        .issue_root_token()
        .await
        .map_err(|e| LoadError(e.to_string()))?
        .token;
    // Sibling names must differ, also between runs on one log (several nodes at once).
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let mut agents = Vec::with_capacity(submitters);
    for i in 0..submitters {
        let name = format!("load-{}-{run}-{i}", std::process::id());
        let op = Operation::SpawnSubAgent {
            parent: root,
            spec: AgentSpec::new(name).map_err(|e| LoadError(e.to_string()))?,
        };
        let c = rt
            .submit(Message::new(root, admin.clone(), op))
            .await
            .map_err(|e| LoadError(e.to_string()))?;
        let Some(KernelEvent::AgentSpawned { agent, .. }) = c.events.first() else {
            return Err(LoadError("spawn produced no agent".into()));
        };
        let signed = rt
            .issue_token(root, &admin, grant_for(*agent))
            .await
            .map_err(|e| LoadError(e.to_string()))?;
        agents.push((*agent, signed.token));
    }
    let commits_before = rt.metrics().snapshot().batches;
    let acked = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(progress);
    let task = TaskSpec::new(TASK).map_err(|e| LoadError(e.to_string()))?;
    let started = Instant::now();
    let mut workers = Vec::with_capacity(submitters);
    for (i, (agent, token)) in agents.into_iter().enumerate() {
        let share =
            messages / submitters as u64 + u64::from((i as u64) < messages % submitters as u64);
        let (rt, acked, progress, task) =
            (rt.clone(), acked.clone(), progress.clone(), task.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share as usize);
            let mut last_task: Option<EntityId> = None;
            for _ in 0..share {
                let op = next_operation(agent, &mut last_task, &task);
                let sent = Instant::now();
                let c = rt
                    .submit(Message::new(agent, token.clone(), op))
                    .await
                    .map_err(|e| LoadError(e.to_string()))?;
                latencies.push(sent.elapsed());
                if let Some(KernelEvent::TaskScheduled { task, .. }) = c.events.first() {
                    last_task = Some(*task);
                }
                let n = acked.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 1024 == 0 {
                    progress(n);
                }
            }
            Ok::<_, LoadError>(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(messages as usize);
    for w in workers {
        latencies.extend(w.await.map_err(|e| LoadError(e.to_string()))??);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
    };
    let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
    let acknowledged = acked.load(Ordering::Relaxed);
    progress(acknowledged);
    Ok(LoadReport {
        submitters,
        acknowledged,
        seconds,
        per_second: acknowledged as f64 / seconds.max(1e-9),
        p50_ms: ms(pick(0.50)),
        p99_ms: ms(pick(0.99)),
        max_ms: ms(latencies.last()),
        commits: rt.metrics().snapshot().batches - commits_before,
    })
}
