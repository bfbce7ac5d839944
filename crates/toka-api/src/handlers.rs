//! The request handlers. Each reads committed state only, and checks the caller's
//! token for what it reads or does.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::Stream;
use toka_auth::Scope;
use toka_types::{EntityId, Message, Operation};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::query::ApiQuery;
use crate::state::AppState;
use crate::views::*;

/// The largest `seq` the API takes (JSON Schema's `int64`).
const MAX_SEQ: u64 = i64::MAX as u64;

pub(crate) fn parse_id(text: &str, what: &str) -> Result<EntityId, ApiError> {
    text.parse()
        .map_err(|e: toka_types::ParseIdError| ApiError::bad_request(format!("{what}: {e}")))
}

/// Submit a message; answered once its events are durable. With an `Idempotency-Key`
/// header, a retry with the same key and body gets the original answer (and the
/// header `Idempotent-Replayed: true`) without writing anything; the same key with
/// another body is refused (409 `idempotency_key_reused`).
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 128 bytes; makes retries safe")),
    responses((status = 200, body = SubmitResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn submit(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<SubmitRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(request) = body?;
    let origin = match &request.origin {
        Some(o) => parse_id(o, "origin")?,
        None => caller.claims.sub,
    };
    let key = idempotency_key(&headers)?;
    let operation: Operation = serde_json::from_str(request.operation.get()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_operation",
            e.to_string(),
        )
    })?;
    let mut message = Message::new(origin, caller.token, operation);
    message.idempotency_key = key;
    let committed = app
        .runtime
        .submit(message)
        .await
        .map_err(|refused| ApiError::from(refused.error))?;
    let events = committed
        .numbered()
        .map(|(seq, event)| Answered {
            seq,
            kind: event.kind(),
            event,
        })
        .collect();
    let replayed = if committed.replayed { "true" } else { "false" };
    Ok(([("idempotent-replayed", replayed)], Json(Answer { events })).into_response())
}

/// [`SubmitResponse`] as the server writes it: the events serialised where they are,
/// not copied into a `serde_json::Value` first (that copy and its encoding were a fifth
/// of the handler's time).
#[derive(serde::Serialize)]
struct Answer<'a> {
    events: Vec<Answered<'a>>,
}

/// [`CommittedEvent`] as the server writes it.
#[derive(serde::Serialize)]
struct Answered<'a> {
    seq: u64,
    kind: &'a str,
    event: &'a toka_types::KernelEvent,
}

/// The `Idempotency-Key` header, if any: 1 to 128 visible ASCII characters (as the
/// OpenAPI document states it).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let limit = toka_types::limits::MAX_IDEMPOTENCY_KEY_BYTES;
    if bytes.is_empty() || bytes.len() > limit || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {limit} visible ASCII characters (no spaces)"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Read committed events by range (only those the token's scope covers).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 500, body = ErrorBody)), security(("bearer" = [])))]
pub async fn events(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let from = match q.from {
        Some(f) if !(1..=MAX_SEQ).contains(&f) => {
            return Err(ApiError::bad_request(format!(
                "from is {f}, must be 1 to {MAX_SEQ}"
            )));
        }
        f => f.unwrap_or(1),
    };
    let limit = page_size(q.limit)?;
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
/// SSE id is its `seq`. The token is checked again every second and with every event:
/// once it expires or is revoked, or its subject is terminated, or the server shuts
/// down, the stream ends with a final `closed` event saying why. At most
/// `server.max_streams` streams are served at once (503 with `Retry-After` beyond).
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this seq")),
    responses((status = 200, description = "text/event-stream of EventView, ending with a `closed` event"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => {
            let last: u64 = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID must be a seq (a whole number)")
                })?;
            if last > MAX_SEQ {
                return Err(ApiError::bad_request(format!(
                    "Last-Event-ID {last} is larger than any seq ({MAX_SEQ})"
                )));
            }
            Some(last + 1)
        }
    };
    let permit = Arc::clone(&app.streams).try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "the server serves as many event streams as it may (server.max_streams); retry later",
        )
        .retry_after_ms(5000)
    })?;
    if let Some(from) = q.from
        && !(1..=MAX_SEQ).contains(&from)
    {
        return Err(ApiError::bad_request(format!(
            "from is {from}, must be 1 to {MAX_SEQ}"
        )));
    }
    let from = resume
        .or(q.from)
        .unwrap_or_else(|| app.runtime.head().seq + 1);
    let mut subscription = app.runtime.subscribe(from);
    let stream = async_stream(move |yield_tx| async move {
        let _permit = permit;
        let mut shutdown = app.shutdown.clone();
        let mut recheck = tokio::time::interval(Duration::from_secs(1));
        let closed = |reason: String| {
            Event::default()
                .event("closed")
                .data(serde_json::json!({"reason": reason}).to_string())
        };
        loop {
            let record = tokio::select! {
                () = async {
                    // The guard it returns must not live across the send below.
                    let _ = shutdown.wait_for(|stopping| *stopping).await;
                } => {
                    let _ = yield_tx.send(Ok(closed("the server is shutting down".into()))).await;
                    return;
                }
                _ = recheck.tick() => {
                    if let Some(reason) = caller.lapsed(&app) {
                        let _ = yield_tx.send(Ok(closed(reason))).await;
                        return;
                    }
                    continue;
                }
                next = subscription.next() => match next {
                    Some(Ok(record)) => record,
                    Some(Err(e)) => {
                        let _ = yield_tx.send(Ok(closed(format!("storage error: {e}")))).await;
                        return;
                    }
                    None => return,
                },
            };
            if let Some(reason) = caller.lapsed(&app) {
                let _ = yield_tx.send(Ok(closed(reason))).await;
                return;
            }
            if !app.runtime.read(|state| visible(&caller, state, &record)) {
                continue;
            }
            let view = EventView::of(&record);
            let data = serde_json::to_string(&view).unwrap_or_default();
            let event = Event::default()
                .id(view.seq.to_string())
                .event(view.kind.clone())
                .data(data);
            if yield_tx.send(Ok(event)).await.is_err() {
                return;
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

/// A page size from a query: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
fn page_size(limit: Option<u64>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n as usize),
        n => Err(ApiError::bad_request(format!(
            "limit is {n}, must be 1 to {MAX_PAGE}"
        ))),
    }
}

/// The agents the token's scope covers, parents before children, a page at a time.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(AgentQuery),
    responses((status = 200, body = AgentPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn agents(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AgentQuery>,
) -> Result<Json<AgentPage>, ApiError> {
    let limit = page_size(q.limit)?;
    let after = q
        .after
        .as_deref()
        .map(|a| parse_id(a, "after"))
        .transpose()?;
    // Only the page's views are built under the read lock; serialising happens after.
    let now = app.now_secs();
    let page = app.runtime.read(|state| {
        let budgets = LiveBudgets::of(state, now);
        let top = match caller.claims.effective_scope() {
            Scope::All => state.root(),
            Scope::Subtree(top) => Some(top),
        };
        let order = top.map(|t| state.subtree(t)).unwrap_or_default();
        let start = match after {
            None => 0,
            Some(a) => order
                .iter()
                .position(|id| *id == a)
                .map(|i| i + 1)
                .ok_or_else(|| ApiError::not_found(format!("after: no agent {a} in your scope")))?,
        };
        let ids = &order[start.min(order.len())..];
        let items: Vec<AgentView> = ids
            .iter()
            .take(limit)
            .filter_map(|id| state.agent(*id))
            .map(|a| AgentView::of(a, state, &budgets))
            .collect();
        let next = (ids.len() > limit)
            .then(|| items.last().map(|a| a.id.clone()))
            .flatten();
        Ok::<_, ApiError>(AgentPage { items, next })
    })?;
    Ok(Json(page))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "an agent id, id prefix, name or path (root/planner)")),
    responses((status = 200, body = AgentView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn agent(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let id = app
        .runtime
        .read(|s| crate::resolve::agent(s, &caller, &id))?;
    let now = app.now_secs();
    app.runtime
        .read(|state| {
            state
                .agent(id)
                .filter(|_| caller.sees(state, id))
                .map(|a| AgentView::of(a, state, &LiveBudgets::of(state, now)))
        })
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no agent {id} in your scope")))
}

/// Tasks, by agent and state, within the token's scope, a page at a time: in id order,
/// or in schedule order for one agent.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(TaskQuery),
    responses((status = 200, body = TaskPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tasks(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> Result<Json<TaskPage>, ApiError> {
    let limit = page_size(q.limit)?;
    let agent = app
        .runtime
        .read(|s| crate::resolve::optional(s, &caller, q.agent.as_deref()))?;
    let after = q
        .after
        .as_deref()
        .map(|a| parse_id(a, "after"))
        .transpose()?;
    let wanted = q.state.map(TaskStateName::state);
    let page = app.runtime.read(|state| {
        let fits = |t: &&toka_kernel::TaskRecord| {
            caller.sees(state, t.agent) && wanted.is_none_or(|w| t.state == w)
        };
        // One more than the page, to know whether there is a next one.
        let mut chosen: Vec<&toka_kernel::TaskRecord> = match agent {
            Some(a) => {
                let list = state.tasks_of(a);
                let start = match after {
                    None => 0,
                    Some(c) => list
                        .iter()
                        .position(|t| t.id == c)
                        .map(|i| i + 1)
                        .unwrap_or(list.len()),
                };
                list.into_iter()
                    .skip(start)
                    .filter(|t| fits(t))
                    .take(limit + 1)
                    .collect()
            }
            None => {
                // The smallest ids after the cursor, without sorting every task.
                let mut heap = std::collections::BinaryHeap::with_capacity(limit + 2);
                for t in state
                    .all_tasks()
                    .filter(|t| after.is_none_or(|c| t.id > c))
                    .filter(|t| fits(t))
                {
                    heap.push(TaskById(t));
                    if heap.len() > limit + 1 {
                        heap.pop();
                    }
                }
                let mut list: Vec<_> = heap.into_iter().map(|t| t.0).collect();
                list.sort_unstable_by_key(|t| t.id);
                list
            }
        };
        let more = chosen.len() > limit;
        chosen.truncate(limit);
        let items: Vec<TaskView> = chosen.into_iter().map(|t| TaskView::of(t, state)).collect();
        let next = more.then(|| items.last().map(|t| t.id.clone())).flatten();
        TaskPage { items, next }
    });
    Ok(Json(page))
}

/// Orders tasks by id in a max-heap (the largest is popped first).
struct TaskById<'a>(&'a toka_kernel::TaskRecord);

impl PartialEq for TaskById<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for TaskById<'_> {}
impl PartialOrd for TaskById<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TaskById<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
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
