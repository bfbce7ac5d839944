//! The supervisor: runs an agent, restarts it after an error or a panic, gives up after
//! a limit.

use std::sync::Arc;
use std::time::Duration;

use toka_types::EntityId;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Agent, AgentContext};
use crate::runtime::Runtime;

/// Longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a hosted agent is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostedStatus {
    /// Its `run` is executing.
    Running {
        /// How many times it was restarted so far.
        restarts: u32,
    },
    /// Its `run` returned `Ok`: done.
    Finished,
    /// It failed more often than allowed; the last failure.
    GaveUp {
        /// Why its last run failed.
        last_error: String,
    },
}

/// A hosted agent: its id, its status, and the supervisor task.
#[derive(Debug)]
pub struct AgentHandle {
    /// The agent.
    pub id: EntityId,
    status: watch::Receiver<HostedStatus>,
    task: JoinHandle<()>,
}

impl AgentHandle {
    /// Its status now.
    pub fn status(&self) -> HostedStatus {
        self.status.borrow().clone()
    }

    /// Waits until it finished or the supervisor gave up; returns the final status.
    pub async fn wait(mut self) -> HostedStatus {
        let _ = (&mut self.task).await;
        self.status.borrow().clone()
    }

    /// Stops it (without waiting for `run` to return).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Runs `agent` as agent `id` with `token`, restarting it after a failure up to
/// `max_restarts` times (pausing 100 ms, 200 ms, … up to 5 s between tries).
pub fn host(
    runtime: &Runtime,
    id: EntityId,
    token: String,
    agent: Arc<dyn Agent>,
    max_restarts: u32,
) -> AgentHandle {
    let (status_tx, status) = watch::channel(HostedStatus::Running { restarts: 0 });
    let runtime = runtime.clone();
    let task = tokio::spawn(async move {
        // The token outlives restarts: one renewer for the agent's whole life.
        let cell = super::TokenCell::new(token);
        let _renewer = AbortOnDrop(tokio::spawn(super::renewer::keep_renewed(
            runtime.clone(),
            id,
            cell.clone(),
        )));
        let mut restarts = 0u32;
        loop {
            status_tx.send_replace(HostedStatus::Running { restarts });
            let mut ctx = AgentContext::new(runtime.clone(), id, cell.clone(), max_restarts);
            let agent = Arc::clone(&agent);
            // Its own task, so a panic is caught here instead of unwinding through us;
            // aborting the supervisor drops the guard, which aborts the run too.
            let run = AbortOnDrop(tokio::spawn(async move { agent.run(&mut ctx).await }));
            let failure = match run.wait().await {
                Ok(Ok(())) => {
                    status_tx.send_replace(HostedStatus::Finished);
                    return;
                }
                Ok(Err(e)) => e.to_string(),
                Err(join) if join.is_panic() => "the agent panicked".to_string(),
                Err(_) => return, // cancelled: the handle was aborted
            };
            tracing::warn!(agent = %id, restarts, error = %failure, "agent failed");
            if restarts >= max_restarts {
                tracing::error!(agent = %id, restarts, "agent failed too often; giving up");
                status_tx.send_replace(HostedStatus::GaveUp {
                    last_error: failure,
                });
                return;
            }
            restarts += 1;
            let pause = Duration::from_millis(100u64 << restarts.min(6)).min(MAX_BACKOFF);
            tokio::time::sleep(pause).await;
        }
    });
    AgentHandle { id, status, task }
}

/// A task that is aborted when this handle is dropped (with its owner).
#[derive(Debug)]
pub struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task to end.
    pub async fn wait(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
