//! `GET /v1/agents/{id}/transcript`: the recorded conversation of a planner agent,
//! read from its `model.answered` events (the log holds it whole; nothing is asked
//! of a model to show it).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toka_types::KernelEvent;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Most steps one transcript returns (the oldest first).
const MAX_STEPS: usize = 2000;

/// One recorded model step.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    /// The task it worked on.
    pub task: String,
    /// Its place in the task's conversation.
    pub step: u32,
    /// The `seq` of its `model.answered` event.
    pub seq: u64,
    /// The model asked.
    pub model: String,
    /// The tokens debited.
    pub tokens: u64,
    /// BLAKE3 of the exact request body.
    pub request_hash: String,
    /// The messages the request added.
    #[schema(value_type = Vec<Object>)]
    pub appended: Vec<serde_json::Value>,
    /// The model's answer (the first choice's message).
    #[schema(value_type = Object)]
    pub answer: serde_json::Value,
    /// Why the model stopped (`stop`, `tool_calls`, `length`, …).
    pub finish_reason: Option<String>,
}

/// An agent's recorded conversation, task by task, in log order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    /// The agent.
    pub agent: String,
    /// Its steps.
    pub steps: Vec<StepView>,
}

/// The recorded model conversation of agent `id` (in the token's scope).
#[utoipa::path(get, path = "/v1/agents/{id}/transcript", tag = "agents",
    params(("id" = String, Path, description = "an agent id, id prefix, name or path (root/planner)")),
    responses((status = 200, body = Transcript), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn transcript(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Transcript>, ApiError> {
    let agent = app
        .runtime
        .read(|s| crate::resolve::agent(s, &caller, &id))?;
    let seqs = app.runtime.read(|s| {
        if s.agent(agent).is_none() || !caller.sees(s, agent) {
            return None;
        }
        let mut seqs: Vec<u64> = s
            .tasks_of(agent)
            .iter()
            .flat_map(|t| s.models().steps_of(t.id).iter().copied())
            .collect();
        seqs.sort_unstable();
        seqs.truncate(MAX_STEPS);
        Some(seqs)
    });
    let seqs =
        seqs.ok_or_else(|| ApiError::not_found(format!("no agent {agent} in the token's scope")))?;
    let mut steps = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let event = app
            .runtime
            .event_at(seq)
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e))?;
        if let KernelEvent::ModelAnswered { step, tokens } = event {
            let choice = &step.response["choices"][0];
            steps.push(StepView {
                task: step.task.to_string(),
                step: step.step,
                seq,
                model: step.model,
                tokens,
                request_hash: step.request_hash,
                appended: step.appended,
                answer: choice["message"].clone(),
                finish_reason: choice["finish_reason"].as_str().map(str::to_string),
            });
        }
    }
    Ok(Json(Transcript {
        agent: agent.to_string(),
        steps,
    }))
}
