//! `toka run --server URL`: the planner runs in `toka serve`. With the caller's
//! token this spawns the planner agent, issues its token (attenuated, budget
//! included), designates it as a planner (a fact in the log, so the server resumes it
//! after a restart), gives it the goal, then follows the event stream until the task
//! ends and prints the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use toka_types::{EntityId, KernelEvent};

use super::run::{PLANNER_PERMISSIONS, RunArgs, describe, exit_code, print_outcome, progress};
use crate::Remote;
use crate::client::Client;
use crate::output::Out;

/// How often the events are read while the planner works.
const POLL: Duration = Duration::from_millis(300);

fn id_at(v: &Value, field: &str) -> Result<EntityId> {
    v["events"][0]["event"][field]
        .as_str()
        .and_then(|t| t.parse().ok())
        .with_context(|| format!("the server's answer has no {field}: {v}"))
}

pub async fn run(args: RunArgs, server: String, out: Out) -> Result<ExitCode> {
    let remote = Remote {
        server: Some(server.clone()),
        profile: None,
        token: args.token.clone(),
        token_file: None,
        idempotency_key: None,
    };
    let client = Client::new(&remote)?;
    let me = super::client::subject(&client)?;
    let send = |op: Value| {
        let client = &client;
        async move {
            client
                .post::<_, Value>("/v1/messages", &json!({"operation": op}))
                .await
        }
    };
    let (agent, from) = match &args.resume {
        Some(id) => (
            id.parse::<EntityId>()
                .map_err(|e| anyhow::anyhow!("--resume {id:?}: {e}"))?,
            1,
        ),
        None => {
            // Sibling names are unique: name the run's planner after the time.
            let name = format!(
                "planner-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros())
                    .unwrap_or(0)
            );
            let v = send(json!({"op": "spawn_sub_agent", "parent": me, "spec": {"name": name}}))
                .await?;
            (
                id_at(&v, "agent")?,
                v["events"][0]["seq"].as_u64().unwrap_or(1),
            )
        }
    };
    let issued: Value = client
        .post(
            "/v1/tokens",
            &json!({"sub": agent, "permissions": PLANNER_PERMISSIONS,
                    "budget": {"model_tokens": args.budget_tokens}}),
        )
        .await?;
    let jti = issued["jti"]
        .as_str()
        .context("the issued token has no jti")?;
    send(json!({"op": "designate_planner", "agent": agent, "jti": jti, "model": args.model}))
        .await?;
    let tasks: BTreeSet<EntityId> = match &args.goal {
        Some(goal) => {
            let v = send(
                json!({"op": "schedule_agent_task", "agent": agent, "task": {"description": goal}}),
            )
            .await?;
            [id_at(&v, "task")?].into()
        }
        None => {
            let open: Vec<Value> = client
                .get(
                    "/v1/tasks",
                    &[("agent", agent.to_string()), ("limit", "1000".into())],
                )
                .await
                .map(|v: Value| v["items"].as_array().cloned().unwrap_or_default())?;
            open.iter()
                .filter(|t| matches!(t["state"].as_str(), Some("queued" | "claimed")))
                .filter_map(|t| t["id"].as_str().and_then(|i| i.parse().ok()))
                .collect()
        }
    };
    if tasks.is_empty() {
        bail!("agent {agent} has no open task to resume");
    }
    progress(
        out,
        &format!(
            "planner {agent} hosted by {}; task {}",
            server,
            tasks
                .iter()
                .next()
                .map(|t| t.to_string())
                .unwrap_or_default()
        ),
    );
    // Follow the log: the planner, the helpers it spawns, their calls.
    let mut family: BTreeSet<EntityId> = [agent].into();
    let mut callers: BTreeMap<EntityId, EntityId> = BTreeMap::new();
    let mut outcomes: BTreeMap<EntityId, Value> = BTreeMap::new();
    let mut next = from;
    while outcomes.len() < tasks.len() {
        let answer: Value = client
            .get(
                "/v1/events",
                &[("from", next.to_string()), ("limit", "500".into())],
            )
            .await?;
        let page = answer["events"].as_array().cloned().unwrap_or_default();
        // The events the token may see; `next` skips those it may not.
        next = answer["next"].as_u64().unwrap_or(next).max(next);
        if page.is_empty() {
            tokio::time::sleep(POLL).await;
            continue;
        }
        for e in &page {
            let Ok(event) = serde_json::from_value::<KernelEvent>(e["event"].clone()) else {
                continue;
            };
            match &event {
                KernelEvent::AgentSpawned {
                    agent: a,
                    parent: Some(p),
                    ..
                } if family.contains(p) => {
                    family.insert(*a);
                }
                KernelEvent::ToolCalled(c) => {
                    callers.insert(c.call, c.agent);
                }
                KernelEvent::TaskCompleted { task, outcome, .. } if tasks.contains(task) => {
                    outcomes.insert(*task, serde_json::to_value(outcome).unwrap_or(Value::Null));
                }
                KernelEvent::AgentTerminated {
                    cancelled_tasks, ..
                } => {
                    for t in cancelled_tasks.iter().filter(|t| tasks.contains(t)) {
                        outcomes.insert(*t, json!({"status": "failure", "reason": "cancelled: the agent was terminated"}));
                    }
                }
                _ => {}
            }
            let mine = |a: EntityId| family.contains(&a);
            let caller_of = |call: EntityId| callers.get(&call).copied();
            if let Some(line) = describe(&event, &mine, &caller_of) {
                progress(out, &line);
            }
        }
    }
    let mut failed = false;
    for (task, outcome) in &outcomes {
        failed |= outcome["status"] != "success";
        print_outcome(
            out,
            &json!({"agent": agent, "task": task, "outcome": outcome}),
        );
    }
    Ok(exit_code(failed))
}
