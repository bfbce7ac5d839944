//! `POST /v1/tasks/claim-next`: a worker takes the oldest ready task of an agent,
//! waiting (at most 120 s) for one to arrive when none is queued.
//!
//! Every attempt is the kernel's `claim_next` operation; between attempts the handler
//! waits on the committed event stream for something that can make a task ready
//! (scheduled, requeued, a lease expired, a task it waited for ended), so a waiting
//! worker costs one idle request, not a poll loop.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use toka_kernel::KernelError;
use toka_runtime::SubmitError;
use toka_types::{KernelEvent, Message, Operation};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::TaskView;

/// Longest wait for a task, seconds.
pub const MAX_CLAIM_WAIT_SECS: u64 = 120;

/// Body of `POST /v1/tasks/claim-next`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimNextRequest {
    /// The agent whose queue to take from: an id, an id prefix, a name or a path
    /// (default: the token's subject).
    pub agent: Option<String>,
    /// Wait up to this many seconds for a task when none is ready (default 0).
    #[schema(minimum = 0, maximum = 120)]
    #[serde(default, deserialize_with = "toka_types::whole::opt_u64")]
    pub wait_secs: Option<u64>,
}

/// The task claimed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Claimed {
    /// The task, now claimed.
    pub task: TaskView,
    /// The `seq` of its `task.claimed` event.
    pub seq: u64,
}

/// Events after which a task of the agent may be ready to claim.
fn may_ready(kind: &str) -> bool {
    matches!(
        kind,
        "task.scheduled"
            | "task.requeued"
            | "task.lease_expired"
            | "task.completed"
            | "task.cancelled"
            | "agent.terminated"
    )
}

/// Claim the oldest queued task of `agent` that waits for nothing (needs
/// `task:claim`), waiting up to `wait_secs` for one; 409 `no_task_queued` when none
/// came.
#[utoipa::path(post, path = "/v1/tasks/claim-next", tag = "tasks", request_body = ClaimNextRequest,
    responses((status = 200, body = Claimed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn claim_next(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Claimed>, ApiError> {
    let request: ClaimNextRequest = crate::query::object_body(body)?;
    let agent = match &request.agent {
        Some(a) => app.runtime.read(|s| crate::resolve::agent(s, &caller, a))?,
        None => caller.claims.sub,
    };
    let wait = match request.wait_secs.unwrap_or(0) {
        n @ 0..=MAX_CLAIM_WAIT_SECS => Duration::from_secs(n),
        n => {
            return Err(ApiError::bad_request(format!(
                "wait_secs is {n}, must be 0 to {MAX_CLAIM_WAIT_SECS}"
            )));
        }
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Subscribe before trying, so a task scheduled in between is not missed.
        let mut feed = app.runtime.subscribe(app.runtime.head().seq + 1);
        let message = Message::new(
            caller.claims.sub,
            caller.token.clone(),
            Operation::ClaimNext { agent },
        );
        match app.runtime.submit(message).await {
            Ok(committed) => {
                let claimed = committed.numbered().find_map(|(seq, e)| match e {
                    KernelEvent::TaskClaimed { task, .. } => Some((seq, *task)),
                    _ => None,
                });
                let (seq, task) = claimed.ok_or_else(|| {
                    ApiError::internal("claim_next committed no task.claimed event")
                })?;
                let view = app
                    .runtime
                    .read(|s| s.task(task).map(|t| TaskView::of(t, s)))
                    .ok_or_else(|| ApiError::internal("the claimed task is not in state"))?;
                return Ok(Json(Claimed { task: view, seq }));
            }
            Err(refused) => {
                let none_yet = matches!(
                    refused.error,
                    SubmitError::Rejected(KernelError::NoTaskQueued { .. })
                );
                if !none_yet || tokio::time::Instant::now() >= deadline {
                    return Err(ApiError::from(refused.error));
                }
            }
        }
        // Wait for something that may make a task ready, or the deadline.
        // At the deadline the loop tries once more, then refuses.
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(Ok(record)) = feed.next().await {
                if may_ready(&record.header.kind) {
                    return;
                }
            }
            // The feed ended (the server is stopping): wait out the deadline.
            std::future::pending::<()>().await;
        })
        .await;
    }
}
