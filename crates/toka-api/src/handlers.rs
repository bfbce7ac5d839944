//! The request handlers. Each reads committed state only, and checks the caller's
//! token for what it reads or does.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::Stream;
use toka_auth::Scope;
use toka_types::{EntityId, Message, Operation};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::*;

fn parse_id(text: &str, what: &str) -> Result<EntityId, ApiError> {
    text.parse()
        .map_err(|e: toka_types::ParseIdError| ApiError::bad_request(format!("{what}: {e}")))
}

/// Submit a message; answered once its events are durable.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = SubmitRequest,
    responses((status = 200, body = SubmitResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Json<SubmitRequest>, JsonRejection>,
) -> Result<Json<SubmitResponse>, ApiError> {
    let Json(request) = body?;
    let origin = match &request.origin {
        Some(o) => parse_id(o, "origin")?,
        None => caller.claims.sub,
    };
    let operation: Operation = serde_json::from_value(request.operation).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_operation",
            e.to_string(),
        )
    })?;
    let committed = app
        .runtime
        .submit(Message::new(origin, caller.token, operation))
        .await
        .map_err(|refused| ApiError::from(refused.error))?;
    let events = committed
        .numbered()
        .map(|(seq, e)| CommittedEvent {
            seq,
            kind: e.kind().to_string(),
            event: serde_json::to_value(e).unwrap_or_default(),
        })
        .collect();
    Ok(Json(SubmitResponse { events }))
}

/// Read committed events by range (only those the token's scope covers).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn events(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let from = q.from.unwrap_or(1).max(1);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let records = app
        .runtime
        .store()
        .read_range(from, limit)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))?;
    let head = app.runtime.head().seq;
    // Only committed records: the store may hold a batch the writer has not
    // acknowledged yet (it is appended, then published).
    let records: Vec<_> = records
        .into_iter()
        .filter(|r| r.header.seq <= head)
        .collect();
    let next = records.last().map(|r| r.header.seq + 1).unwrap_or(from);
    let events = app.runtime.read(|state| {
        records
            .iter()
            .filter(|r| visible(&caller, state, r))
            .map(EventView::of)
            .collect()
    });
    Ok(Json(EventPage { events, next, head }))
}

/// Whether the caller's scope covers a stored record (decoded once, from its bytes).
fn visible(
    caller: &Caller,
    state: &toka_kernel::WorldState,
    record: &toka_store_core::EventRecord,
) -> bool {
    match toka_runtime::codec::decode(record) {
        Ok(event) => caller.sees_event(state, record.header.origin, &event),
        Err(_) => matches!(caller.claims.effective_scope(), Scope::All),
    }
}

/// Live stream of committed events (Server-Sent Events): history from `from` (or the
/// `Last-Event-ID` header + 1), then live, with no gap and no duplicate. Each event's
/// SSE id is its `seq`.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of EventView"), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|last| last + 1);
    let from = resume
        .or(q.from)
        .unwrap_or_else(|| app.runtime.head().seq + 1);
    let mut subscription = app.runtime.subscribe(from);
    let runtime = app.runtime.clone();
    let stream = async_stream(move |yield_tx| async move {
        while let Some(Ok(record)) = subscription.next().await {
            if !runtime.read(|state| visible(&caller, state, &record)) {
                continue;
            }
            let view = EventView::of(&record);
            let data = serde_json::to_string(&view).unwrap_or_default();
            let event = Event::default()
                .id(view.seq.to_string())
                .event(view.kind.clone())
                .data(data);
            if yield_tx.send(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A stream fed by a task through a channel (a small stand-in for `async-stream`).
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(body(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The agents the token's scope covers, parents before children.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentView>), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn agents(State(app): State<AppState>, caller: Caller) -> Json<Vec<AgentView>> {
    Json(app.runtime.read(|state| {
        let top = match caller.claims.effective_scope() {
            Scope::All => state.root(),
            Scope::Subtree(top) => Some(top),
        };
        top.map(|t| state.subtree(t))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| state.agent(id))
            .map(|a| AgentView::of(a, state))
            .collect()
    }))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "agent id")),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn agent(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let id = parse_id(&id, "agent id")?;
    app.runtime
        .read(|state| {
            state
                .agent(id)
                .filter(|_| caller.sees(state, id))
                .map(|a| AgentView::of(a, state))
        })
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no agent {id} in your scope")))
}

/// Tasks, by agent and state, within the token's scope.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(TaskQuery),
    responses((status = 200, body = Vec<TaskView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tasks(
    State(app): State<AppState>,
    caller: Caller,
    query: Result<Query<TaskQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let agent = q
        .agent
        .as_deref()
        .map(|a| parse_id(a, "agent"))
        .transpose()?;
    let wanted = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            ["queued", "claimed", "done", "failed", "cancelled"]
                .into_iter()
                .find(|k| *k == s)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "state {s:?} is not queued, claimed, done, failed or cancelled"
                    ))
                })?,
        ),
    };
    Ok(Json(app.runtime.read(|state| {
        let list = match agent {
            Some(a) => state.tasks_of(a),
            None => state.tasks(),
        };
        list.into_iter()
            .filter(|t| caller.sees(state, t.agent))
            .filter(|t| wanted.is_none_or(|w| t.state.as_str() == w))
            .map(TaskView::of)
            .collect()
    })))
}

/// The committed head and the state digest.
#[utoipa::path(get, path = "/v1/state", tag = "state",
    responses((status = 200, body = StateView), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn state(State(app): State<AppState>, _caller: Caller) -> Json<StateView> {
    let head = app.runtime.head();
    Json(app.runtime.read(|s| StateView {
        head: head.seq,
        chain_digest: head.digest.to_string(),
        state_digest: s.digest().to_string(),
        root: s.root().map(|r| r.to_string()),
        agents: s.agent_count(),
        tasks: s.task_count(),
    }))
}

/// Issue a token attenuated from the bearer token (needs `token:issue`). The kernel
/// decides the delegation and the log records it (`token.issued`) before it is signed.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn mint_token(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    let Json(request) = body?;
    let sub = parse_id(&request.sub, "sub")?;
    let scope = request
        .scope
        .as_deref()
        .map(|s| {
            s.parse::<Scope>()
                .map_err(|e| ApiError::bad_request(format!("scope: {e}")))
        })
        .transpose()?;
    let grant = toka_types::TokenGrant {
        sub,
        permissions: request.permissions,
        scope,
        ttl_secs: request.ttl_secs,
    };
    let signed = app
        .runtime
        .issue_token(caller.claims.sub, &caller.token, grant)
        .await
        .map_err(|e| match e {
            toka_runtime::IssueError::Refused(e) => ApiError::from(e),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "signing",
                other.to_string(),
            ),
        })?;
    Ok(Json(TokenResponse {
        token: signed.token,
        jti: signed.claims.jti,
        sub: signed.claims.sub.to_string(),
        exp: signed.claims.exp,
        permissions: signed.claims.permissions,
        seq: signed.seq,
    }))
}

/// The newest checkpoint this node signed (Ed25519 over the documented bytes), with the
/// public key to check it. 404 before the first one.
#[utoipa::path(get, path = "/v1/checkpoints/latest", tag = "state",
    responses((status = 200, body = CheckpointView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn latest_checkpoint(
    State(app): State<AppState>,
    _caller: Caller,
) -> Result<Json<CheckpointView>, ApiError> {
    let public_key = app
        .runtime
        .checkpoint_verifier()
        .map(|v| v.public_hex())
        .ok_or_else(|| ApiError::not_found("this node signs no checkpoints"))?;
    let signed = app
        .runtime
        .latest_checkpoint()
        .ok_or_else(|| ApiError::not_found("no checkpoint signed yet"))?;
    Ok(Json(CheckpointView {
        checkpoint: serde_json::to_value(&signed).unwrap_or_default(),
        public_key,
    }))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the runtime can commit (its store answers). 503 with the reason while the
/// store is down; the runtime retries it and becomes ready again by itself.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "ready"), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    if let Some(reason) = app.runtime.unavailable() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("cannot commit: {reason}"),
        )
        .retry_after_ms(1000));
    }
    app.runtime
        .store()
        .head()
        .await
        .map(|_| "ready\n")
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string()))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let body = crate::metrics::render(&app.runtime);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}
