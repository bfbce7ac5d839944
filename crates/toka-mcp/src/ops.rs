//! Toka's own operations as MCP tools (`toka.spawn_agent`, `toka.schedule_task`, …):
//! each one API request, so its rules and answers are the API's. Listed only when the
//! token carries the permission the operation needs (reads need none: they show what
//! the token's scope covers).

use axum::http::Method;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::backend::{Backend, Refusal};

/// One Toka operation offered as an MCP tool.
pub struct TokaOp {
    /// The tool name.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The permission it needs, if any.
    pub permission: Option<&'static str>,
    /// The JSON Schema of its arguments.
    pub schema: Value,
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn schema(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// Every operation offered.
pub fn all() -> Vec<TokaOp> {
    let op = |name, description, permission, schema| TokaOp {
        name,
        description,
        permission,
        schema,
    };
    let agent = || json!({"type": "string", "format": "uuid", "description": "default: the token's own agent"});
    vec![
        op(
            "toka.spawn_agent",
            "Spawn a child agent (under `parent`, default the token's agent).",
            Some("agent:spawn"),
            schema(
                &["name"],
                json!({"name": {"type": "string", "minLength": 1, "maxLength": 256}, "parent": agent()}),
            ),
        ),
        op(
            "toka.terminate_agent",
            "Terminate an agent and all its descendants.",
            Some("agent:terminate"),
            schema(&["agent"], json!({"agent": uuid()})),
        ),
        op(
            "toka.schedule_task",
            "Queue a task for an agent.",
            Some("task:schedule"),
            schema(
                &["description"],
                json!({"description": {"type": "string", "minLength": 1, "maxLength": 4096}, "agent": agent()}),
            ),
        ),
        op(
            "toka.claim_task",
            "Claim a queued task.",
            Some("task:claim"),
            schema(&["task"], json!({"task": uuid(), "agent": agent()})),
        ),
        op(
            "toka.complete_task",
            "Complete a claimed task with a result, or fail it with a reason.",
            Some("task:complete"),
            schema(
                &["task"],
                json!({"task": uuid(), "agent": agent(),
               "result": {"type": "string", "maxLength": 65536}, "failure": {"type": "string", "minLength": 1, "maxLength": 65536}}),
            ),
        ),
        op(
            "toka.observe",
            "Record an observation (text).",
            Some("observation:emit"),
            schema(
                &["text"],
                json!({"text": {"type": "string", "minLength": 1, "maxLength": 65536}, "agent": agent()}),
            ),
        ),
        op(
            "toka.list_agents",
            "The agents the token's scope covers.",
            None,
            schema(&[], json!({})),
        ),
        op(
            "toka.list_tasks",
            "Tasks, optionally of one agent and in one state.",
            None,
            schema(
                &[],
                json!({"agent": uuid(), "state": {"enum": ["queued", "claimed", "done", "failed", "cancelled"]}}),
            ),
        ),
        op(
            "toka.read_events",
            "Committed events of the log the token's scope covers, from a seq.",
            None,
            schema(
                &[],
                json!({"from": {"type": "integer", "minimum": 1}, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}),
            ),
        ),
        op(
            "toka.read_call",
            "A tool call: its input, status and result (waits up to wait_secs for it to end).",
            None,
            schema(
                &["call"],
                json!({"call": uuid(), "wait_secs": {"type": "integer", "minimum": 0, "maximum": 120}}),
            ),
        ),
        op(
            "toka.decide_approval",
            "Approve (naming the call's input_hash) or deny (with a reason) a call waiting for approval.",
            Some("approval:grant"),
            schema(
                &["call", "approve"],
                json!({"call": uuid(), "approve": {"type": "boolean"},
               "reason": {"type": "string", "maxLength": 1024}, "input_hash": {"type": "string", "maxLength": 64}}),
            ),
        ),
    ]
}

/// The subject and permissions a token claims, read without checking its signature:
/// only to choose what to list (every call is checked by the server).
pub fn claimed(token: &str) -> (String, Vec<String>) {
    let payload = token.split('.').nth(1).unwrap_or("");
    let claims: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let sub = claims["sub"].as_str().unwrap_or("").to_string();
    let permissions = claims["permissions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (sub, permissions)
}

fn text(args: &Value, key: &str) -> Option<String> {
    args.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The id in `args[key]`, checked (it goes into a path or a query).
fn id(args: &Value, key: &str) -> Result<Option<String>, Refusal> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|t| t.parse::<toka_types::EntityId>().ok())
            .map(|id| Some(id.to_string()))
            .ok_or_else(|| format!("{key} must be an agent, task or call id (a UUID)")),
    }
}

/// Runs operation `name` with `args` as `token`: the API's answer.
pub async fn run(
    backend: &Backend,
    token: &str,
    name: &str,
    args: &Value,
) -> Result<Value, Refusal> {
    let (sub, _) = claimed(token);
    let agent = id(args, "agent")?.unwrap_or_else(|| sub.clone());
    let submit = |operation: Value| async move {
        backend
            .request(
                token,
                Method::POST,
                "/v1/messages",
                Some(&json!({"operation": operation})),
            )
            .await
    };
    match name {
        "toka.spawn_agent" => {
            let parent = id(args, "parent")?.unwrap_or(sub);
            submit(json!({"op": "spawn_sub_agent", "parent": parent, "spec": {"name": args["name"]}})).await
        }
        "toka.terminate_agent" => submit(json!({"op": "terminate_agent", "agent": args["agent"]})).await,
        "toka.schedule_task" => {
            submit(json!({"op": "schedule_agent_task", "agent": agent, "task": {"description": args["description"]}})).await
        }
        "toka.claim_task" => submit(json!({"op": "claim_task", "agent": agent, "task": args["task"]})).await,
        "toka.complete_task" => {
            let outcome = match text(args, "failure") {
                Some(reason) => json!({"status": "failure", "reason": reason}),
                None => json!({"status": "success", "result": text(args, "result").unwrap_or_default()}),
            };
            submit(json!({"op": "complete_task", "agent": agent, "task": args["task"], "outcome": outcome})).await
        }
        "toka.observe" => {
            let data = base64::engine::general_purpose::STANDARD.encode(text(args, "text").unwrap_or_default());
            submit(json!({"op": "emit_observation", "agent": agent, "data": data})).await
        }
        "toka.list_agents" => backend.request(token, Method::GET, "/v1/agents?limit=1000", None).await,
        "toka.list_tasks" => {
            let mut query = vec!["limit=1000".to_string()];
            if let Some(a) = id(args, "agent")? {
                query.push(format!("agent={a}"));
            }
            if let Some(s) = text(args, "state") {
                if !["queued", "claimed", "done", "failed", "cancelled"].contains(&s.as_str()) {
                    return Err(format!("state {s:?} is not a task state"));
                }
                query.push(format!("state={s}"));
            }
            backend.request(token, Method::GET, &format!("/v1/tasks?{}", query.join("&")), None).await
        }
        "toka.read_events" => {
            let from = args.get("from").and_then(Value::as_u64).unwrap_or(1);
            let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(100);
            backend.request(token, Method::GET, &format!("/v1/events?from={from}&limit={limit}"), None).await
        }
        "toka.read_call" => {
            let call = id(args, "call")?.unwrap_or_default();
            let wait = args.get("wait_secs").and_then(Value::as_u64).unwrap_or(0);
            backend.request(token, Method::GET, &format!("/v1/calls/{call}?wait_secs={wait}"), None).await
        }
        "toka.decide_approval" => {
            let call = id(args, "call")?.unwrap_or_default();
            let body = json!({
                "approve": args["approve"].as_bool().unwrap_or(false),
                "reason": text(args, "reason").unwrap_or_default(),
                "input_hash": args.get("input_hash"),
            });
            backend.request(token, Method::POST, &format!("/v1/calls/{call}/approval"), Some(&body)).await
        }
        other => Err(format!("no Toka operation {other:?}")),
    }
}
