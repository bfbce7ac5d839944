//! Commands that talk to a running server.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use futures::StreamExt as _;
use serde_json::{Value, json};
use toka_api::views::{AgentView, EventPage, EventView, StateView, SubmitResponse, TaskView};

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
        #[arg(long)]
        parent: Option<String>,
        /// The new agent's name.
        name: String,
    },
    /// Terminate an agent and its descendants.
    Terminate {
        #[command(flatten)]
        remote: Remote,
        /// The agent.
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
        #[arg(long)]
        agent: Option<String>,
        /// What to do.
        description: String,
    },
    /// Claim a queued task, or with --next the oldest ready one (waiting with --wait).
    Claim {
        #[command(flatten)]
        remote: Remote,
        /// The agent whose queue holds it (default: the token's subject).
        #[arg(long)]
        agent: Option<String>,
        /// The task.
        #[arg(required_unless_present = "next", conflicts_with = "next")]
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
    Cancel {
        #[command(flatten)]
        remote: Remote,
        /// The agent whose task it is (default: the token's subject).
        #[arg(long)]
        agent: Option<String>,
        /// The task.
        task: String,
        /// Why (recorded in the log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Put a claimed task back in its queue (needs task:requeue).
    Requeue {
        #[command(flatten)]
        remote: Remote,
        /// The agent whose task it is (default: the token's subject).
        #[arg(long)]
        agent: Option<String>,
        /// The task.
        task: String,
        /// Why (recorded in the log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Complete a claimed task.
    Complete {
        #[command(flatten)]
        remote: Remote,
        /// The agent (default: the token's subject).
        #[arg(long)]
        agent: Option<String>,
        /// The task.
        task: String,
        /// What came of it.
        #[arg(long, default_value = "")]
        result: String,
        /// Mark it failed, for this reason.
        #[arg(long, conflicts_with = "result")]
        fail: Option<String>,
    },
    /// Tasks by agent and state.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// Only in this state.
        #[arg(long, value_parser = ["queued", "claimed", "done", "failed", "cancelled"])]
        state: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ObserveArgs {
    #[command(flatten)]
    remote: Remote,
    /// The observing agent (default: the token's subject).
    #[arg(long)]
    agent: Option<String>,
    /// What it observed (text).
    data: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    remote: Remote,
    /// First seq.
    #[arg(long)]
    from: Option<u64>,
    /// Keep streaming new events.
    #[arg(long)]
    follow: bool,
    /// Most events to print (without --follow).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// The subject of the token (for defaults).
/// The agent `reference` names (see [`Client::agent_id`]), or the token's subject.
pub(crate) async fn agent_or_subject(client: &Client, reference: Option<&str>) -> Result<String> {
    match reference {
        Some(r) => client.agent_id(r).await,
        None => subject(client),
    }
}

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

fn print_committed(out: Out, response: &SubmitResponse) {
    out.emit(response, || {
        for e in &response.events {
            out.say(format!("#{} {} {}", e.seq, e.kind, e.event));
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
            out.emit(&r, || {
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
            out.emit(&agents, || {
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
        } => {
            let client = Client::new(&remote)?;
            let agent = agent_or_subject(&client, agent.as_deref()).await?;
            let r = send(&client, None, json!({"op": "schedule_agent_task", "agent": agent, "task": {"description": description}})).await?;
            out.emit(&r, || {
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
            out.emit(&r, || {
                out.say(format!(
                    "claimed {} (seq {}): {}",
                    r.task.id,
                    r.seq,
                    toka_planner::one_line(&r.task.description, 200)
                ));
            });
        }
        TaskCmd::Cancel {
            remote,
            agent,
            task,
            reason,
        } => end_or_requeue(&remote, agent, &task, "cancel_task", &reason, out).await?,
        TaskCmd::Requeue {
            remote,
            agent,
            task,
            reason,
        } => end_or_requeue(&remote, agent, &task, "requeue_task", &reason, out).await?,
        TaskCmd::Complete {
            remote,
            agent,
            task,
            result,
            fail,
        } => {
            let client = Client::new(&remote)?;
            let agent = agent_or_subject(&client, agent.as_deref()).await?;
            let outcome = match fail {
                Some(reason) => json!({"status": "failure", "reason": reason}),
                None => json!({"status": "success", "result": result}),
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
            out.emit(&tasks, || {
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

/// `cancel_task` or `requeue_task` of `task`.
async fn end_or_requeue(
    remote: &Remote,
    agent: Option<String>,
    task: &str,
    op: &str,
    reason: &str,
    out: Out,
) -> Result<()> {
    let client = Client::new(remote)?;
    let agent = agent_or_subject(&client, agent.as_deref()).await?;
    let r = send(
        &client,
        None,
        json!({"op": op, "agent": agent, "task": task, "reason": reason}),
    )
    .await?;
    print_committed(out, &r);
    Ok(())
}

/// A wait from the command line: seconds or a duration (`30s`, `2m`), 0 to 120 s.
fn parse_wait(text: &str) -> Result<u64, String> {
    let secs = match text.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 30 or 30s"))?
            .as_secs(),
    };
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

fn print_event(out: Out, e: &EventView) {
    out.emit(e, || {
        out.say(format!(
            "#{:<6} {:<20} origin {}  {}",
            e.seq, e.kind, e.origin, e.event
        ))
    });
}

pub async fn events(args: EventsArgs, out: Out) -> Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    if !args.follow {
        let from = args.from.unwrap_or(1);
        let page: EventPage = client
            .get(
                "/v1/events",
                &[
                    ("from", from.to_string()),
                    ("limit", args.limit.to_string()),
                ],
            )
            .await?;
        if out.json {
            for e in &page.events {
                print_event(out, e);
            }
        } else {
            let rows: Vec<Vec<String>> = page
                .events
                .iter()
                .map(|e| {
                    vec![
                        e.seq.to_string(),
                        e.kind.clone(),
                        e.origin.clone(),
                        e.jti.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(&["seq", "kind", "origin", "jti"], &rows);
        }
        return Ok(ExitCode::SUCCESS);
    }
    follow(&client, args.from, out).await
}

/// Longest pause between reconnections of `events --follow`.
const MAX_RECONNECT_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Prints the live event stream from `from` (default: the next event), for as long
/// as it runs; when the server goes away (a restart), reconnects from the event after
/// the last one printed, so nothing is missed or printed twice.
async fn follow(client: &Client, from: Option<u64>, out: Out) -> Result<ExitCode> {
    use eventsource_stream::Eventsource as _;
    let mut last = match from {
        Some(f) => f.saturating_sub(1),
        None => {
            let page: EventPage = client.get("/v1/events", &[("limit", "1".into())]).await?;
            page.head
        }
    };
    let mut pause = std::time::Duration::from_millis(250);
    loop {
        match client.stream(Some(last + 1)).await {
            Ok(response) => {
                pause = std::time::Duration::from_millis(250);
                let mut events = response.bytes_stream().eventsource();
                while let Some(Ok(event)) = events.next().await {
                    if event.event == "closed" {
                        break; // the server is stopping
                    }
                    if let Ok(view) = serde_json::from_str::<EventView>(&event.data)
                        && view.seq > last
                    {
                        last = view.seq;
                        print_event(out, &view);
                    }
                }
                crate::output::warn(format!(
                    "the event stream ended after seq {last}; reconnecting"
                ));
            }
            Err(e) => crate::output::warn(format!("{e}; retrying in {} ms", pause.as_millis())),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
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
