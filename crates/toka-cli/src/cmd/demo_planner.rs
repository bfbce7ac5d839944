//! Step 8 of `toka demo`: an LLM planner reads the postmortem and answers, every
//! model exchange recorded. By default on a **scripted** model built into this binary
//! (a local HTTP server that answers the OpenAI-compatible Chat Completions API from a
//! fixed script: no network, no key); `--llm-url URL --model M` uses a real endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};
use toka_auth::permissions as p;
use toka_runtime::Runtime;
use toka_types::{
    AgentSpec, Budget, EntityId, KernelEvent, Operation, TaskSpec, TaskState, TokenGrant,
};

use crate::output::Out;

/// The scripted model's answers, in order.
fn script() -> Vec<Value> {
    vec![
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "fs_read", "arguments": "{\"path\": \"postmortem.md\"}"}}]}),
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_2", "type": "function",
            "function": {"name": "toka_finish", "arguments":
                "{\"answer\": \"The outage was caused by an expired certificate.\"}"}}]}),
    ]
}

/// Starts the scripted model on a free local port; its base URL.
async fn scripted_model() -> Result<String> {
    let turns = Arc::new(Mutex::new(script()));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(request): axum::Json<Value>| {
            let turns = Arc::clone(&turns);
            async move {
                let next = turns
                    .lock()
                    .ok()
                    .and_then(|mut t| (!t.is_empty()).then(|| t.remove(0)));
                let message = next.unwrap_or_else(
                    || json!({"role": "assistant", "content": "(the script is over)"}),
                );
                axum::Json(json!({
                    "id": "chatcmpl-scripted", "object": "chat.completion",
                    "model": request["model"], "choices": [{"index": 0, "message": message,
                    "finish_reason": "tool_calls"}],
                    "usage": {"prompt_tokens": 180, "completion_tokens": 20, "total_tokens": 200},
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// Runs the planner step of the demo.
pub async fn planner_step(
    rt: &Runtime,
    (root, admin): (EntityId, &str),
    llm: Option<(&str, &str)>,
    out: Out,
) -> Result<()> {
    let (url, model, label) = match llm {
        Some((url, model)) => (url.to_string(), model.to_string(), format!("the model {model} at {url}")),
        None => (
            scripted_model().await?,
            "scripted-1".to_string(),
            "a SCRIPTED model built into this binary (no network; --llm-url URL --model M for a real one)".to_string(),
        ),
    };
    let table: toml::Table = toml::from_str(&format!(
        "base_url = {url:?}\nmodel = {model:?}\ntimeout_ms = 60000\nmax_steps = 6\nmax_retries = 2\n"
    ))?;
    let config = toka_planner::PlannerConfig::from_table(&table)?.context("planner settings")?;
    let planner = toka_planner::Planner::new(config).map_err(anyhow::Error::msg)?;
    let agent = super::demo::new_id(
        &super::demo::send(
            rt,
            root,
            admin,
            Operation::SpawnSubAgent {
                parent: root,
                spec: AgentSpec::new("llm-planner")?,
            },
        )
        .await?,
    )?;
    let grant = TokenGrant {
        sub: agent,
        permissions: [
            p::TASK_CLAIM,
            p::TASK_COMPLETE,
            p::MODEL_USE,
            "tool:fs.read",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        scope: None,
        ttl_secs: None,
        budget: Budget {
            model_tokens: Some(5000),
            ..Budget::default()
        },
    };
    let token = rt.issue_token(root, admin, grant).await?.token;
    let task = super::demo::new_id(
        &super::demo::send(
            rt,
            root,
            admin,
            Operation::ScheduleAgentTask {
                agent,
                task: TaskSpec::new("Summarise postmortem.md in one sentence.")?,
            },
        )
        .await?,
    )?;
    out.say(format!(
        "8. llm-planner (token: fs.read only, budget 5000 model tokens) works a task on {label}"
    ));
    let hosted = toka_runtime::host::host(rt, agent, token, Arc::new(planner), 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while rt.read(|s| s.task(task).is_some_and(|t| t.state.is_open()))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hosted.abort();
    for seq in rt.read(|s| s.models().steps_of(task).to_vec()) {
        if let Ok(KernelEvent::ModelAnswered { step, tokens }) = rt.event_at(seq).await {
            let what = toka_planner::Reply::of(&step.response)
                .map_or_else(|| "no answer".to_string(), |r| r.describe(200));
            out.say(format!(
                "   step {} (seq {seq}, {tokens} tokens, recorded before it acted): {what}",
                step.step
            ));
        }
    }
    let (state, outcome, used) = rt.read(|s| {
        let t = s.task(task);
        (
            t.map(|t| t.state),
            t.and_then(|t| t.outcome.clone()),
            s.models().usage_of(agent).tokens,
        )
    });
    let outcome = serde_json::to_value(outcome).unwrap_or(Value::Null);
    match state {
        Some(TaskState::Done) => out.say(format!(
            "   answer: {}\n   {used} of 5000 model tokens spent; replay and verify reuse the recorded answers",
            outcome["result"].as_str().unwrap_or("")
        )),
        _ => out.say(format!(
            "   the planner did not finish: {}",
            outcome["reason"].as_str().unwrap_or("still working after 120 s")
        )),
    }
    Ok(())
}
