//! A scripted OpenAI-compatible Chat Completions server (the stand-in for a provider
//! we do not own: it checks each request's shape and answers from a script), and a
//! real node (SQLite log, real tools) with a hosted planner.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use toka_auth::{KeySet, SigningKey, permissions as p};
use toka_kernel::OpcodeRegistry;
use toka_runtime::{Runtime, RuntimeOptions};
use toka_types::{AgentSpec, EntityId, KernelEvent, Message, Operation, TaskSpec, TaskState};

/// One scripted answer.
#[derive(Clone)]
pub enum Turn {
    /// 200 with this assistant message (`tool_calls` or `content`).
    Say(Value),
    /// This status (and `Retry-After` seconds, for a 429).
    Status(u16, Option<u64>),
    /// Wait this long, then answer the next turn (the client should time out first).
    Stall(Duration),
    /// 200 with the assistant message this makes of the request (to use ids the
    /// conversation learned).
    Reply(Arc<dyn Fn(&Value) -> Value + Send + Sync>),
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Say(v) => write!(f, "Say({v})"),
            Self::Status(c, a) => write!(f, "Status({c}, {a:?})"),
            Self::Stall(d) => write!(f, "Stall({d:?})"),
            Self::Reply(_) => f.write_str("Reply(..)"),
        }
    }
}

/// The content of the last tool message of a request, parsed as JSON.
pub fn last_tool_answer(request: &Value) -> Value {
    let text = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "tool"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("null")
        .to_string();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The calls to make in one assistant message: `(function, arguments JSON text)`.
pub fn calls(list: &[(&str, &str)]) -> Turn {
    let tool_calls: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("call_{i}_{name}"), "type": "function",
                                       "function": {"name": name, "arguments": args}})
        })
        .collect();
    Turn::Say(json!({"role": "assistant", "content": null, "tool_calls": tool_calls}))
}

#[derive(Default, Clone)]
pub struct Script {
    pub turns: Vec<Turn>,
    /// Every request body received, in order.
    pub requests: Vec<Value>,
    /// Shape problems found in requests.
    pub problems: Vec<String>,
    /// When each request arrived.
    pub arrivals: Vec<std::time::Instant>,
}

pub type Shared = Arc<Mutex<Script>>;

fn check_shape(body: &Value, problems: &mut Vec<String>) {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    if body["model"].as_str().is_none() {
        problems.push("no model".into());
    }
    if msgs.first().map(|m| m["role"].clone()) != Some(json!("system")) {
        problems.push("the first message is not the system prompt".into());
    }
    for t in body["tools"].as_array().cloned().unwrap_or_default() {
        let f = &t["function"];
        let name = f["name"].as_str().unwrap_or("");
        let ok = t["type"] == "function"
            && !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && f["parameters"]["type"] == "object";
        if !ok {
            problems.push(format!("bad tool {t}"));
        }
    }
    // Every tool call is answered by a tool message with its id, in order.
    let mut open: Vec<String> = Vec::new();
    for m in &msgs {
        match m["role"].as_str() {
            Some("assistant") => {
                if !open.is_empty() {
                    problems.push(format!("tool calls {open:?} left unanswered"));
                }
                open = m["tool_calls"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .map(|c| c["id"].as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or("").to_string();
                if open.first() == Some(&id) {
                    open.remove(0);
                } else {
                    problems.push(format!("tool message for {id:?}, expected {open:?}"));
                }
            }
            _ => {}
        }
    }
}

async fn completions(State(script): State<Shared>, Json(body): Json<Value>) -> Response {
    let turn = {
        let mut s = script.lock().unwrap();
        let mut problems = Vec::new();
        check_shape(&body, &mut problems);
        s.problems.extend(problems);
        s.requests.push(body);
        s.arrivals.push(std::time::Instant::now());
        if s.turns.is_empty() {
            return (StatusCode::GONE, "the script is over").into_response();
        }
        s.turns.remove(0)
    };
    let say = |message: Value| {
        Json(json!({
            "id": "chatcmpl-scripted", "object": "chat.completion", "model": "scripted-1",
            "choices": [{"index": 0, "message": message, "finish_reason":
                if message["tool_calls"].is_array() { "tool_calls" } else { "stop" }}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }))
        .into_response()
    };
    match turn {
        Turn::Say(m) => say(m),
        Turn::Reply(make) => {
            let last = script
                .lock()
                .unwrap()
                .requests
                .last()
                .cloned()
                .unwrap_or_default();
            say(make(&last))
        }
        Turn::Status(code, after) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), "scripted failure").into_response();
            if let Some(secs) = after {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            r
        }
        Turn::Stall(d) => {
            tokio::time::sleep(d).await;
            (StatusCode::SERVICE_UNAVAILABLE, "stalled").into_response()
        }
    }
}

/// Starts the scripted provider; its base URL (…/v1) and the script.
pub async fn provider(turns: Vec<Turn>) -> (String, Shared, tokio::task::JoinHandle<()>) {
    let script: Shared = Arc::new(Mutex::new(Script {
        turns,
        ..Script::default()
    }));
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(Arc::clone(&script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, script, server)
}

pub fn keys() -> KeySet {
    KeySet::new(SigningKey::hs256("test", &[9u8; 32]).unwrap())
}

/// A node on the SQLite log in `dir`, with the built-in tools over `dir/workspace`.
pub async fn node(dir: &std::path::Path) -> (Runtime, toka_runtime::tools::ToolExecutor) {
    let store = toka_store_sqlite::SqliteStore::open(dir.join("toka.db"))
        .await
        .unwrap();
    let mut options = RuntimeOptions::default();
    options.snapshots.every_events = 0;
    let mut handlers = OpcodeRegistry::new();
    toka_tools::plug_in(&mut handlers);
    options.handlers = handlers;
    let runtime = Runtime::with_store(Arc::new(store), keys(), options)
        .await
        .unwrap();
    let table: toml::Table = toml::from_str("require_approval = []").unwrap();
    let tools = toka_tools::ToolsConfig::from_table(&table, dir).unwrap();
    let registry = toka_tools::Registry::from_config(&tools).unwrap();
    let executor = runtime.start_tools(Arc::new(registry)).await.unwrap();
    (runtime, executor)
}

/// The state of the log in `store`, from its events alone.
pub async fn replay(store: &dyn toka_store_core::StorageBackend) -> toka_kernel::WorldState {
    let mut state = toka_kernel::WorldState::new();
    let handlers = OpcodeRegistry::new();
    let mut next = 1;
    loop {
        let page = store.read_range(next, 1000).await.unwrap();
        if page.is_empty() {
            return state;
        }
        for record in page {
            let event = toka_runtime::codec::decode(&record).unwrap();
            toka_kernel::apply(&mut state, &event, &handlers);
            next = record.header.seq + 1;
        }
    }
}

pub const PLANNER_PERMISSIONS: &[&str] = &[
    p::TASK_CLAIM,
    p::TASK_COMPLETE,
    p::MODEL_USE,
    p::AGENT_SPAWN,
    p::TASK_SCHEDULE,
    p::OBSERVATION_EMIT,
];

/// Spawns agent `name` under the root and gives it a token with `permissions`.
pub async fn agent(rt: &Runtime, name: &str, permissions: &[&str]) -> (EntityId, String) {
    let root = rt.root().unwrap();
    let admin = rt.issue_root_token().await.unwrap().token;
    let events = rt
        .submit(Message::new(
            root,
            admin.clone(),
            Operation::SpawnSubAgent {
                parent: root,
                spec: AgentSpec::new(name).unwrap(),
            },
        ))
        .await
        .unwrap()
        .events;
    let KernelEvent::AgentSpawned { agent, .. } = events[0] else {
        panic!("no agent");
    };
    let grant = toka_types::TokenGrant {
        sub: agent,
        permissions: permissions.iter().map(|s| s.to_string()).collect(),
        scope: None,
        ttl_secs: None,
        budget: Default::default(),
    };
    let token = rt.issue_token(root, &admin, grant).await.unwrap().token;
    (agent, token)
}

/// Schedules `what` for `agent` as the root.
pub async fn schedule(rt: &Runtime, agent: EntityId, what: &str) -> EntityId {
    let root = rt.root().unwrap();
    let admin = rt.issue_root_token().await.unwrap().token;
    let events = rt
        .submit(Message::new(
            root,
            admin,
            Operation::ScheduleAgentTask {
                agent,
                task: TaskSpec::new(what).unwrap(),
            },
        ))
        .await
        .unwrap()
        .events;
    let KernelEvent::TaskScheduled { task, .. } = events[0] else {
        panic!("no task");
    };
    task
}

/// Waits (up to 30 s) until `task` is done or failed; its result or reason.
pub async fn outcome(rt: &Runtime, task: EntityId) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = rt.read(|s| s.task(task).cloned()).unwrap();
        match t.state {
            TaskState::Done | TaskState::Failed => {
                let v = serde_json::to_value(t.outcome.unwrap()).unwrap();
                return match v["status"].as_str() {
                    Some("success") => Ok(v["result"].as_str().unwrap().to_string()),
                    _ => Err(v["reason"].as_str().unwrap_or("").to_string()),
                };
            }
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task still {:?}",
            t.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn config(base_url: &str, timeout_ms: u64) -> toka_planner::PlannerConfig {
    let table: toml::Table = toml::from_str(&format!(
        "base_url = {base_url:?}\nmodel = \"scripted-1\"\ntimeout_ms = {timeout_ms}\nmax_steps = 8\nmax_retries = 4\n"
    ))
    .unwrap();
    toka_planner::PlannerConfig::from_table(&table)
        .unwrap()
        .unwrap()
}
