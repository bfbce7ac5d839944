//! The tool routes: list the tools a token may call, call one, read a call (with a
//! bounded long-poll until it ends), list pending approvals and decide one.
//!
//! Every call and decision is a message like any other (the kernel decides it with the
//! bearer's token); this module only shapes requests and answers and filters what the
//! bearer may see: tools it has the permission for, calls of agents in its scope.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use toka_runtime::tools::{CallView, MAX_CALL_WAIT};
use toka_types::{CallStatus, EntityId, KernelEvent, Message, Operation, ToolResult};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::parse_id;
use crate::query::ApiQuery;
use crate::state::AppState;

/// Most pending approvals one listing returns.
const MAX_APPROVALS: usize = 1000;

/// A tool the bearer may call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ToolView {
    /// Its name; calling it needs `tool:<name>` (or a family such as `tool:fs.*`).
    pub name: String,
    /// What it does.
    pub description: String,
    /// The JSON Schema its input must match.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    /// `never` or `required`.
    pub approval: String,
    /// `repeatable` (at least once across crashes) or `at_most_once`.
    pub retry: String,
    /// Longest a run may take, ms.
    pub timeout_ms: u64,
    /// Longest a call may wait for approval, s.
    pub approval_ttl_secs: u64,
}

/// The tools the bearer may call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ToolList {
    /// By name.
    pub tools: Vec<ToolView>,
    /// A fingerprint of this list: pass it back as `?version=` with `wait_secs` to
    /// be answered when the list changes.
    pub version: String,
}

/// `?wait_secs=&version=` of `GET /v1/tools`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ToolsQuery {
    /// Wait up to this many seconds (at most 120) for the list to differ from
    /// `version`.
    pub wait_secs: Option<u64>,
    /// The `version` of the list the caller has.
    pub version: Option<String>,
}

/// Kinds of event after which the tools a token may call can differ.
fn may_change_tools(kind: &str) -> bool {
    matches!(
        kind,
        "tool.registered" | "tool.retired" | "token.revoked" | "agent.terminated" | "key.retired"
    )
}

/// Body of `POST /v1/tools/{name}/calls`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The agent the call is for (default: the token's subject).
    pub agent: Option<String>,
    /// The input, matching the tool's schema.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// Wait up to this many seconds for the call to end (0, the default: answer at
    /// once with the call opened).
    #[serde(default, deserialize_with = "toka_types::whole::opt_u64")]
    pub wait_secs: Option<u64>,
}

/// Body of `POST /v1/calls/{id}/approval`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// Approve (`true`) or deny.
    pub approve: bool,
    /// Why (required to deny).
    #[serde(default)]
    pub reason: String,
    /// The `input_hash` of the call as you reviewed it (required to approve).
    pub input_hash: Option<String>,
    /// Wait up to this many seconds for an approved call to end.
    #[serde(default, deserialize_with = "toka_types::whole::opt_u64")]
    pub wait_secs: Option<u64>,
}

/// `?wait_secs=` of `GET /v1/calls/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait up to this many seconds (at most 120) for the call to end.
    pub wait_secs: Option<u64>,
}

/// One call, as the log records it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallResponse {
    /// The call's id.
    pub call: String,
    /// The agent it is for.
    pub agent: String,
    /// The agent that sent it.
    pub origin: String,
    /// The tool.
    pub tool: String,
    /// `awaiting_approval`, `ready`, `running`, `succeeded`, `failed`, `denied`,
    /// `expired` or `abandoned`.
    pub status: String,
    /// The exact input.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// BLAKE3 of the input's compact JSON; an approval names it.
    pub input_hash: String,
    /// Until when (Unix seconds) it may wait for approval.
    pub approval_expires_at: Option<u64>,
    /// Who approved or denied it.
    pub decided_by: Option<String>,
    /// The approver's reason, or why it was abandoned.
    pub reason: Option<String>,
    /// The node that ran it.
    pub node: Option<String>,
    /// How many times it was started.
    pub attempts: u32,
    /// The `seq` of `tool.called`.
    pub called_seq: u64,
    /// The `seq` of the event that ended it.
    pub ended_seq: Option<u64>,
    /// What the tool returned: `{"status":"ok","output":…}` or
    /// `{"status":"error","error":"…"}`.
    #[schema(value_type = Object)]
    pub result: Option<serde_json::Value>,
}

impl CallResponse {
    fn of(view: CallView) -> Self {
        let r = view.record;
        Self {
            call: r.id.to_string(),
            agent: r.agent.to_string(),
            origin: r.origin.to_string(),
            tool: r.tool,
            status: r.status.as_str().into(),
            input: view.called.input,
            input_hash: r.input_hash,
            approval_expires_at: r.approval_expires_at,
            decided_by: r.decided_by.map(|d| d.to_string()),
            reason: r.reason,
            node: r.node,
            attempts: r.attempts,
            called_seq: r.called_seq,
            ended_seq: r.ended_seq,
            result: view
                .result
                .map(|res: ToolResult| serde_json::to_value(res).unwrap_or_default()),
        }
    }
}

/// Pending approvals.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApprovalList {
    /// Calls awaiting approval of agents in the bearer's scope, oldest first.
    pub approvals: Vec<CallResponse>,
}

fn storage(e: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e)
}

fn wait_of(secs: Option<u64>) -> Result<Duration, ApiError> {
    match secs.unwrap_or(0) {
        s if s <= MAX_CALL_WAIT.as_secs() => Ok(Duration::from_secs(s)),
        s => Err(ApiError::bad_request(format!(
            "wait_secs is {s}, must be 0 to {}",
            MAX_CALL_WAIT.as_secs()
        ))),
    }
}

/// The call `id` if the caller's scope covers its agent (404 otherwise, so a token
/// never learns of calls outside its scope), after waiting up to `wait`.
async fn read_call(
    app: &AppState,
    caller: &Caller,
    id: EntityId,
    wait: Duration,
) -> Result<CallResponse, ApiError> {
    let visible = app
        .runtime
        .read(|s| s.tools().call(id).is_some_and(|c| caller.sees(s, c.agent)));
    if !visible {
        return Err(ApiError::not_found(format!(
            "no tool call {id} in the token's scope"
        )));
    }
    if !wait.is_zero() {
        app.runtime.wait_call(id, wait).await;
    }
    let view = app
        .runtime
        .call_view(id)
        .await
        .map_err(storage)?
        .ok_or_else(|| ApiError::not_found(format!("no tool call {id}")))?;
    Ok(CallResponse::of(view))
}

/// The tools the bearer's token may call (registered, not retired, permitted). With
/// `wait_secs` and `version`, a long-poll: answered once the list differs from that
/// version (a tool registered or retired, the token revoked: then 401) or the wait
/// ran out (the same list again).
#[utoipa::path(get, path = "/v1/tools", tag = "tools", params(ToolsQuery),
    responses((status = 200, body = ToolList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_tools(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ToolsQuery>,
) -> Result<Json<ToolList>, ApiError> {
    let wait = wait_of(query.wait_secs)?;
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first look, so no change between the two is missed.
    let mut feed = app.runtime.subscribe(app.runtime.head().seq + 1);
    loop {
        if let Some(why) = caller.lapsed(&app) {
            return Err(ApiError::unauthorized(why));
        }
        let tools = visible_tools(&app, &caller);
        let version = list_version(&tools);
        if wait.is_zero() || query.version.as_deref() != Some(version.as_str()) {
            return Ok(Json(ToolList { tools, version }));
        }
        loop {
            match tokio::time::timeout_at(deadline, feed.next()).await {
                Ok(Some(Ok(record))) if may_change_tools(&record.header.kind) => break,
                Ok(Some(Ok(_))) => {}
                // The wait ran out, or the runtime stopped: the list as it is.
                _ => return Ok(Json(ToolList { tools, version })),
            }
        }
    }
}

/// The fingerprint of a tool list (BLAKE3 of its JSON, first 16 bytes).
fn list_version(tools: &[ToolView]) -> String {
    let json = serde_json::to_value(tools).unwrap_or_default();
    toka_kernel::input_hash(&json).chars().take(32).collect()
}

/// The registered, not retired tools `caller`'s token may call, by name (what
/// `GET /v1/tools` and an MCP `tools/list` show).
pub fn visible_tools(app: &AppState, caller: &Caller) -> Vec<ToolView> {
    let text = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    app.runtime.read(|s| {
        s.tools()
            .tools()
            .filter(|t| {
                !t.retired
                    && caller
                        .claims
                        .allows(&toka_auth::permissions::tool(&t.spec.name))
            })
            .map(|t| ToolView {
                name: t.spec.name.clone(),
                description: t.spec.description.clone(),
                input_schema: t.spec.input_schema.clone(),
                approval: text(serde_json::to_value(t.spec.approval)),
                retry: text(serde_json::to_value(t.spec.retry)),
                timeout_ms: t.spec.timeout_ms,
                approval_ttl_secs: t.spec.approval_ttl_secs,
            })
            .collect()
    })
}

/// Call a tool. Answered once `tool.called` is durable (and, with `wait_secs`, once
/// the call ended or the wait ran out); the call's `status` says where it is.
#[utoipa::path(post, path = "/v1/tools/{name}/calls", tag = "tools", request_body = CallRequest,
    params(("name" = String, Path, description = "the tool"),
           ("Idempotency-Key" = Option<String>, Header, description = "1 to 128 bytes; makes retries safe")),
    responses((status = 200, body = CallResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn call_tool(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CallRequest>, JsonRejection>,
) -> Result<Json<CallResponse>, ApiError> {
    let Json(request) = body?;
    let wait = wait_of(request.wait_secs)?;
    let agent = app
        .runtime
        .read(|s| crate::resolve::optional(s, &caller, request.agent.as_deref()))?;
    let key = crate::handlers::idempotency_key(&headers)?;
    call_as(&app, &caller, &name, agent, request.input, wait, key)
        .await
        .map(Json)
}

/// Calls tool `name` as `caller` (for `agent`, default the token's subject) and
/// waits up to `wait` for it to end: the call as committed, or why it was refused.
/// (What `POST /v1/tools/{name}/calls` and an MCP `tools/call` do.)
pub async fn call_as(
    app: &AppState,
    caller: &Caller,
    name: &str,
    agent: Option<EntityId>,
    input: serde_json::Value,
    wait: Duration,
    idempotency_key: Option<String>,
) -> Result<CallResponse, ApiError> {
    let mut message = Message::new(
        caller.claims.sub,
        caller.token.clone(),
        Operation::CallTool {
            agent: agent.unwrap_or(caller.claims.sub),
            tool: name.to_string(),
            input,
        },
    );
    message.idempotency_key = idempotency_key;
    let committed = app
        .runtime
        .submit(message)
        .await
        .map_err(|r| ApiError::from(r.error))?;
    let Some(KernelEvent::ToolCalled(call)) = committed.events.first() else {
        return Err(storage("the call produced no tool.called event".into()));
    };
    read_call(app, caller, call.call, wait.min(MAX_CALL_WAIT)).await
}

/// Read a call: its input, status and result. With `wait_secs`, waits (at most 120 s)
/// until it ended.
#[utoipa::path(get, path = "/v1/calls/{id}", tag = "tools", params(("id" = String, Path), WaitQuery),
    responses((status = 200, body = CallResponse), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_call(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Json<CallResponse>, ApiError> {
    let id = parse_id(&id, "id")?;
    read_call(&app, &caller, id, wait_of(q.wait_secs)?)
        .await
        .map(Json)
}

/// Calls awaiting approval, of agents in the bearer's scope, oldest first.
#[utoipa::path(get, path = "/v1/approvals", tag = "tools",
    responses((status = 200, body = ApprovalList), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn approvals(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<ApprovalList>, ApiError> {
    let ids: Vec<EntityId> = app.runtime.read(|s| {
        s.tools()
            .open_calls()
            .filter(|c| c.status == CallStatus::AwaitingApproval && caller.sees(s, c.agent))
            .take(MAX_APPROVALS)
            .map(|c| c.id)
            .collect()
    });
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(view) = app.runtime.call_view(id).await.map_err(storage)? {
            out.push(CallResponse::of(view));
        }
    }
    out.sort_by_key(|c| c.called_seq);
    Ok(Json(ApprovalList { approvals: out }))
}

/// Approve or deny a call waiting for approval (needs `approval:grant` with scope
/// over the calling agent; never the caller itself or one of its descendants).
#[utoipa::path(post, path = "/v1/calls/{id}/approval", tag = "tools", request_body = ApprovalRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = CallResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn decide(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<ApprovalRequest>, JsonRejection>,
) -> Result<Json<CallResponse>, ApiError> {
    let Json(request) = body?;
    let id = parse_id(&id, "id")?;
    let wait = wait_of(request.wait_secs)?;
    let message = Message::new(
        caller.claims.sub,
        caller.token.clone(),
        Operation::DecideApproval {
            call: id,
            approve: request.approve,
            reason: request.reason,
            input_hash: request.input_hash,
        },
    );
    app.runtime
        .submit(message)
        .await
        .map_err(|r| ApiError::from(r.error))?;
    read_call(&app, &caller, id, wait).await.map(Json)
}
