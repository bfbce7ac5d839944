//! Commands that talk to a running server.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use toka_api::views::{AgentView, StateView, SubmitResponse, TaskView};

use crate::Remote;
use crate::client::Client;
use crate::output::{Out, table};

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Spawn a child agent.
    Spawn {
        #[command(flatten)]
        remote: Remote,
        /// The parent: an id, id prefix, name or path such as root/planner (default:
        /// the token's subject).
        #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        parent: Option<String>,
        /// The new agent's name.
        name: String,
    },
    /// Terminate an agent and its descendants.
    Terminate {
        #[command(flatten)]
        remote: Remote,
        /// The agent.
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        agent: String,
    },
    /// The agent tree.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// The recorded model conversation of a planner agent, step by step.
    Transcript {
        #[command(flatten)]
        remote: Remote,
        /// The agent.
        #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        agent: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Queue a task for an agent.
    Schedule {
        #[command(flatten)]
        remote: Remote,
        /// The agent (default: the token's subject).
        #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        agent: Option<String>,
        /// What to do.
        description: String,
        /// Structured input for the worker: JSON text, or @FILE to read it (at most
        /// 1 MiB).
        #[arg(long)]
        input: Option<String>,
    },
    /// Claim a queued task, or with --next the oldest ready one (waiting with --wait).
    Claim {
        #[command(flatten)]
        remote: Remote,
        /// The agent whose queue holds it (default: the token's subject).
        #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        agent: Option<String>,
        /// The task.
        #[arg(required_unless_present = "next", conflicts_with = "next", value_parser = crate::parse_id, add = clap_complete::ArgValueCompleter::new(crate::complete::tasks))]
        task: Option<String>,
        /// Claim the oldest queued task that waits for nothing.
        #[arg(long)]
        next: bool,
        /// With --next: wait this long for a task when none is ready (`30s`, `2m`;
        /// at most 120 s).
        #[arg(long, conflicts_with = "task", value_parser = parse_wait)]
        wait: Option<u64>,
    },
    /// Drop a queued or claimed task (needs task:cancel).
    Cancel(TaskChangeArgs),
    /// Put a claimed task back in its queue (needs task:requeue).
    Requeue(TaskChangeArgs),
    /// Complete a claimed task.
    Complete {
        #[command(flatten)]
        remote: Remote,
        /// The agent (default: the token's subject).
        #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        agent: Option<String>,
        /// The task.
        #[arg(value_parser = crate::parse_id, add = clap_complete::ArgValueCompleter::new(crate::complete::tasks))]
        task: String,
        /// What came of it.
        #[arg(long, default_value = "")]
        result: String,
        /// Mark it failed, for this reason.
        #[arg(long, conflicts_with_all = ["result", "output"])]
        fail: Option<String>,
        /// What came of it as data: JSON text, or @FILE (at most 1 MiB).
        #[arg(long)]
        output: Option<String>,
    },
    /// Tasks by agent and state.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Only this agent's.
        #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
        agent: Option<String>,
        /// Only in this state.
        #[arg(long, value_parser = ["queued", "claimed", "done", "failed", "cancelled"])]
        state: Option<String>,
    },
}

/// A task to cancel or requeue, and why.
#[derive(Debug, Args)]
pub struct TaskChangeArgs {
    #[command(flatten)]
    remote: Remote,
    /// The agent whose task it is (default: the token's subject).
    #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
    agent: Option<String>,
    /// The task.
    #[arg(value_parser = crate::parse_id, add = clap_complete::ArgValueCompleter::new(crate::complete::tasks))]
    task: String,
    /// Why (recorded in the log).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, Args)]
pub struct ObserveArgs {
    #[command(flatten)]
    remote: Remote,
    /// The observing agent (default: the token's subject).
    #[arg(long, add = clap_complete::ArgValueCompleter::new(crate::complete::agents))]
    agent: Option<String>,
    /// What it observed (text).
    data: String,
}

/// The agent `reference` names (see [`Client::agent_id`]), or the token's subject.
pub(crate) async fn agent_or_subject(client: &Client, reference: Option<&str>) -> Result<String> {
    match reference {
        Some(r) => client.agent_id(r).await,
        None => subject(client),
    }
}

/// The subject of the token (for defaults).
pub(crate) fn subject(client: &Client) -> Result<String> {
    let claims = toka_auth_claims(client.token())?;
    Ok(claims["sub"].as_str().unwrap_or_default().to_string())
}

pub(crate) fn toka_auth_claims(token: &str) -> Result<Value> {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .context("not a JWT: expected three dot-separated parts")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .context("not a JWT: payload is not base64url")?;
    serde_json::from_slice(&bytes).context("not a JWT: payload is not JSON")
}

pub(crate) async fn send(
    client: &Client,
    origin: Option<&str>,
    operation: Value,
) -> Result<SubmitResponse> {
    client
        .post(
            "/v1/messages",
            &json!({"origin": origin, "operation": operation}),
        )
        .await
}

/// Prints what a submission committed; with `-q`, the ids it created (agents, tasks).
fn print_committed(out: Out, response: &SubmitResponse) {
    let ids: Vec<&str> = response
        .events
        .iter()
        .filter_map(|e| match e.kind.as_str() {
            "agent.spawned" => e.event["agent"].as_str(),
            "task.scheduled" | "task.claimed" => e.event["task"].as_str(),
            _ => None,
        })
        .collect();
    out.result(response, &ids, || {
        for e in &response.events {
            out.say(crate::describe::event(e));
        }
    });
}

pub async fn agent(cmd: AgentCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        AgentCmd::Spawn {
            remote,
            parent,
            name,
        } => {
            let client = Client::new(&remote)?;
            let parent = agent_or_subject(&client, parent.as_deref()).await?;
            let r = send(
                &client,
                None,
                json!({"op": "spawn_sub_agent", "parent": parent, "spec": {"name": name}}),
            )
            .await?;
            let id = r
                .events
                .first()
                .and_then(|e| e.event["agent"].as_str())
                .unwrap_or("");
            out.result(&r, &[id], || {
                if let Some(e) = r.events.first() {
                    out.say(format!(
                        "spawned {} ({name}) at seq {}",
                        e.event["agent"].as_str().unwrap_or("?"),
                        e.seq
                    ));
                }
            });
        }
        AgentCmd::Terminate { remote, agent } => {
            let client = Client::new(&remote)?;
            let agent = client.agent_id(&agent).await?;
            let r = send(
                &client,
                None,
                json!({"op": "terminate_agent", "agent": agent}),
            )
            .await?;
            out.emit(&r, || {
                out.say(format!("terminated {} agent(s)", r.events.len()))
            });
        }
        AgentCmd::Transcript { remote, agent } => {
            let client = Client::new(&remote)?;
            let agent = client.agent_id(&agent).await?;
            let t: toka_api::transcript::Transcript = client
                .get(&format!("/v1/agents/{agent}/transcript"), &[])
                .await?;
            out.emit(&t, || print_transcript(out, &t));
        }
        AgentCmd::List { remote } => {
            let client = Client::new(&remote)?;
            let agents: Vec<AgentView> = client.get_all("/v1/agents", &[]).await?;
            let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
            out.result(&agents, &ids, || {
                let base = agents.first().map(|a| a.depth).unwrap_or(0);
                let rows: Vec<Vec<String>> = agents
                    .iter()
                    .map(|a| {
                        let indent = "  ".repeat((a.depth - base) as usize);
                        vec![
                            format!("{indent}{}", a.name),
                            // A prefix names the agent wherever an id is taken.
                            a.id[..8.min(a.id.len())].to_string(),
                            a.status.clone(),
                            format!(
                                "{}/{}/{}",
                                a.tasks.queued + a.tasks.claimed,
                                a.tasks.done,
                                a.tasks.failed
                            ),
                            a.observations.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &["agent", "id", "status", "open/done/failed", "observations"],
                    &rows,
                );
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn task(cmd: TaskCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        TaskCmd::Schedule {
            remote,
            agent,
            description,
            input,
        } => {
            let client = Client::new(&remote)?;
            let agent = agent_or_subject(&client, agent.as_deref()).await?;
            let mut task = json!({"description": description});
            if let Some(input) = input {
                task["input"] = crate::cmd::tool::json_arg(&input, "--input")?;
            }
            let r = send(
                &client,
                None,
                json!({"op": "schedule_agent_task", "agent": agent, "task": task}),
            )
            .await?;
            let id = r
                .events
                .first()
                .and_then(|e| e.event["task"].as_str())
                .unwrap_or("");
            out.result(&r, &[id], || {
                if let Some(e) = r.events.first() {
                    out.say(format!(
                        "scheduled task {} at seq {}",
                        e.event["task"].as_str().unwrap_or("?"),
                        e.seq
                    ));
                }
            });
        }
        TaskCmd::Claim {
            remote,
            agent,
            task: Some(task),
            ..
        } => {
            let client = Client::new(&remote)?;
            let agent = agent_or_subject(&client, agent.as_deref()).await?;
            let r = send(
                &client,
                None,
                json!({"op": "claim_task", "agent": agent, "task": task}),
            )
            .await?;
            print_committed(out, &r);
        }
        TaskCmd::Claim {
            remote,
            agent,
            task: None,
            wait,
            ..
        } => {
            let client = Client::new(&remote)?;
            let r: toka_api::claim::Claimed = client
                .post(
                    "/v1/tasks/claim-next",
                    &json!({"agent": agent, "wait_secs": wait.unwrap_or(0)}),
                )
                .await?;
            out.result(&r, &[&r.task.id], || {
                out.say(format!(
                    "claimed {} (seq {}): {}",
                    r.task.id,
                    r.seq,
                    toka_planner::one_line(&r.task.description, 200)
                ));
            });
        }
        TaskCmd::Cancel(args) => change_task(args, "cancel_task", out).await?,
        TaskCmd::Requeue(args) => change_task(args, "requeue_task", out).await?,
        TaskCmd::Complete {
            remote,
            agent,
            task,
            result,
            fail,
            output,
        } => {
            let client = Client::new(&remote)?;
            let agent = agent_or_subject(&client, agent.as_deref()).await?;
            let outcome = match (fail, output) {
                (Some(reason), _) => json!({"status": "failure", "reason": reason}),
                (None, None) => json!({"status": "success", "result": result}),
                (None, Some(output)) => json!({"status": "success", "result": result,
                    "output": crate::cmd::tool::json_arg(&output, "--output")?}),
            };
            let r = send(
                &client,
                None,
                json!({"op": "complete_task", "agent": agent, "task": task, "outcome": outcome}),
            )
            .await?;
            print_committed(out, &r);
        }
        TaskCmd::List {
            remote,
            agent,
            state,
        } => {
            let client = Client::new(&remote)?;
            let mut query = Vec::new();
            if let Some(a) = agent {
                query.push(("agent", a));
            }
            if let Some(s) = state {
                query.push(("state", s));
            }
            let tasks: Vec<TaskView> = client.get_all("/v1/tasks", &query).await?;
            // Names for the agent column (the JSON keeps the ids).
            let names: std::collections::HashMap<String, String> = if out.json {
                Default::default()
            } else {
                client
                    .get_all::<AgentView>("/v1/agents", &[])
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| (a.id, a.name))
                    .collect()
            };
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            out.result(&tasks, &ids, || {
                let rows: Vec<Vec<String>> = tasks
                    .iter()
                    .map(|t| {
                        let agent = names.get(&t.agent).map_or_else(
                            || t.agent.clone(),
                            |n| format!("{n} ({})", &t.agent[..8.min(t.agent.len())]),
                        );
                        vec![
                            t.id.clone(),
                            agent,
                            t.state.clone(),
                            toka_planner::one_line(&t.description, 60),
                        ]
                    })
                    .collect();
                table(&["task", "agent", "state", "description"], &rows);
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cancel_task` or `requeue_task` (`op`) of the task `args` names.
async fn change_task(args: TaskChangeArgs, op: &str, out: Out) -> Result<()> {
    let client = Client::new(&args.remote)?;
    let agent = agent_or_subject(&client, args.agent.as_deref()).await?;
    let r = send(
        &client,
        None,
        json!({"op": op, "agent": agent, "task": args.task, "reason": args.reason}),
    )
    .await?;
    print_committed(out, &r);
    Ok(())
}

/// A wait from the command line: seconds or a duration (`30s`, `2m`), 0 to 120 s.
fn parse_wait(text: &str) -> Result<u64, String> {
    let secs = crate::duration_secs(text, "30 or 30s")?;
    if secs <= toka_api::claim::MAX_CLAIM_WAIT_SECS {
        Ok(secs)
    } else {
        Err(format!("{text:?} is {secs} s; wait at most 120 s"))
    }
}

pub async fn observe(args: ObserveArgs, out: Out) -> Result<ExitCode> {
    use base64::Engine as _;
    let client = Client::new(&args.remote)?;
    let agent = agent_or_subject(&client, args.agent.as_deref()).await?;
    let data = base64::engine::general_purpose::STANDARD.encode(args.data.as_bytes());
    let r = send(
        &client,
        None,
        json!({"op": "emit_observation", "agent": agent, "data": data}),
    )
    .await?;
    print_committed(out, &r);
    Ok(ExitCode::SUCCESS)
}

/// One line per message: who said it and what (tool calls with their arguments).
fn print_transcript(out: Out, t: &toka_api::transcript::Transcript) {
    let short = |v: &serde_json::Value| -> String {
        let text = match v.as_str() {
            Some(s) => s.to_string(),
            None if v.is_null() => String::new(),
            None => v.to_string(),
        };
        toka_planner::one_line(&text, 200)
    };
    if t.steps.is_empty() {
        out.say(format!("agent {} has no recorded model steps", t.agent));
    }
    let mut task = String::new();
    for s in &t.steps {
        if s.task != task {
            task = s.task.clone();
            out.say(format!("task {task}"));
        }
        for m in &s.appended {
            let role = m["role"].as_str().unwrap_or("?");
            match role {
                "tool" => out.say(format!(
                    "  tool {}: {}",
                    m["tool_call_id"].as_str().unwrap_or(""),
                    short(&m["content"])
                )),
                _ => out.say(format!("  {role}: {}", short(&m["content"]))),
            }
        }
        out.say(format!(
            "  step {} · seq {} · {} · {} tokens · {}",
            s.step,
            s.seq,
            s.model,
            s.tokens,
            s.finish_reason.as_deref().unwrap_or("?")
        ));
        let content = short(&s.answer["content"]);
        if !content.is_empty() {
            out.say(format!("  assistant: {content}"));
        }
        for c in s.answer["tool_calls"].as_array().into_iter().flatten() {
            out.say(format!(
                "  assistant calls {}({})",
                c["function"]["name"].as_str().unwrap_or("?"),
                short(&c["function"]["arguments"])
            ));
        }
    }
}

pub async fn state(remote: Remote, out: Out) -> Result<ExitCode> {
    let client = Client::new(&remote)?;
    let s: StateView = client.get("/v1/state", &[]).await?;
    out.emit(&s, || {
        out.say(format!("head seq      {}", s.head));
        out.say(format!("state digest  {}", s.state_digest));
        out.say(format!("chain digest  {}", s.chain_digest));
        out.say(format!("agents {}, tasks {}", s.agents, s.tasks));
    });
    Ok(ExitCode::SUCCESS)
}
