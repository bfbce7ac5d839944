//! `GET /v1/agents/{id}/activity`: the newest events concerning one agent (sent by it,
//! or about it: its tasks, observations, tool calls, model answers), newest first.
//!
//! The log has no per-agent index, so the route reads backwards from `before` (the
//! head by default) and stops after [`MAX_SCAN`] records or `limit` matches; the
//! answer's `next_before` continues the walk. The cost of one request is bounded, not
//! proportional to the log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toka_types::EntityId;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, subject};
use crate::error::{ApiError, ErrorBody};
use crate::query::ApiQuery;
use crate::state::AppState;
use crate::views::EventView;

/// The largest `seq` the API takes (JSON Schema's `int64`).
const MAX_SEQ: u64 = i64::MAX as u64;
/// Most records one request reads.
pub const MAX_SCAN: u64 = 20_000;
/// Records read per store request.
const WINDOW: u64 = 500;
/// Most events one answer holds.
const MAX_LIMIT: u64 = 200;

/// Query of `GET /v1/agents/{id}/activity`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// Only events before this `seq` (default: everything up to the head).
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub before: Option<u64>,
    /// Most events returned (default 50, at most 200).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
}

/// The newest events concerning an agent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Activity {
    /// The agent.
    pub agent: String,
    /// Its events, newest first.
    pub events: Vec<EventView>,
    /// Pass as `before` to read older events; absent once the walk reached `seq` 1.
    pub next_before: Option<u64>,
}

/// The newest events concerning agent `id` (in the token's scope), newest first,
/// reading at most 20,000 records back per request.
#[utoipa::path(get, path = "/v1/agents/{id}/activity", tag = "agents",
    params(("id" = String, Path, description = "an agent id, id prefix, name or path (root/planner)"), ActivityQuery),
    responses((status = 200, body = Activity), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn activity(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> Result<Json<Activity>, ApiError> {
    let agent = app
        .runtime
        .read(|s| crate::resolve::agent(s, &caller, &id))?;
    let limit = match q.limit.unwrap_or(50) {
        n @ 1..=MAX_LIMIT => n as usize,
        n => {
            return Err(ApiError::bad_request(format!(
                "limit is {n}, must be 1 to {MAX_LIMIT}"
            )));
        }
    };
    if !app
        .runtime
        .read(|s| s.agent(agent).is_some() && caller.sees(s, agent))
    {
        return Err(ApiError::not_found(format!(
            "no agent {agent} in the token's scope"
        )));
    }
    let head = app.runtime.head().seq;
    // `end` is one past the newest seq still to read.
    let mut end = match q.before {
        Some(b) if !(1..=MAX_SEQ).contains(&b) => {
            return Err(ApiError::bad_request(format!(
                "before is {b}, must be 1 to {MAX_SEQ}"
            )));
        }
        Some(b) => b.min(head + 1),
        None => head + 1,
    };
    let floor = end.saturating_sub(MAX_SCAN).max(1);
    let mut events = Vec::new();
    while end > floor && events.len() < limit {
        let start = end.saturating_sub(WINDOW).max(floor);
        let records = app
            .runtime
            .store()
            .read_range(start, (end - start) as usize)
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
            })?;
        let window: Vec<EventView> = app.runtime.read(|s| {
            records
                .iter()
                .filter(|r| r.header.seq < end && concerns(s, r, agent))
                .map(EventView::of)
                .collect()
        });
        let room = limit - events.len();
        events.extend(window.into_iter().rev().take(room));
        end = start;
    }
    let next_before = if events.len() == limit {
        events.last().map(|v| v.seq)
    } else {
        (end > 1).then_some(end)
    };
    Ok(Json(Activity {
        agent: agent.to_string(),
        events,
        next_before,
    }))
}

/// Whether a stored record was sent by `agent` or is about it.
fn concerns(
    state: &toka_kernel::WorldState,
    record: &toka_store_core::EventRecord,
    agent: EntityId,
) -> bool {
    if record.header.origin == agent {
        return true;
    }
    toka_runtime::codec::decode(record).is_ok_and(|event| subject(state, &event) == Some(agent))
}
