//! Commands that talk to a running server.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use futures::StreamExt as _;
use serde_json::{Value, json};
use toka_api::views::{
    AgentView, EventPage, EventView, StateView, SubmitResponse, TaskView, TokenResponse,
};

use crate::Remote;
use crate::client::Client;
use crate::output::{Out, table};

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Spawn a child agent.
    Spawn {
        #[command(flatten)]
        remote: Remote,
        /// The parent (default: the token's subject).
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
    /// Claim a queued task.
    Claim {
        #[command(flatten)]
        remote: Remote,
        /// The agent whose queue holds it (default: the token's subject).
        #[arg(long)]
        agent: Option<String>,
        /// The task.
        task: String,
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

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Mint a token attenuated from yours (needs token:issue).
    Issue {
        #[command(flatten)]
        remote: Remote,
        /// The agent it is for.
        #[arg(long)]
        sub: String,
        /// A permission to grant (repeat).
        #[arg(long = "perm", required = true)]
        permissions: Vec<String>,
        /// `*` or an agent id.
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime in seconds (default: as long as your own token).
        #[arg(long = "ttl", value_parser = clap::value_parser!(u64).range(1..=86400))]
        ttl_secs: Option<u64>,
        /// Most model tokens it may spend (default: what your token has left).
        #[arg(long)]
        budget_tokens: Option<u64>,
        /// Most tool calls it may make (default: what your token has left).
        #[arg(long)]
        budget_tool_calls: Option<u64>,
        /// Most agents it may spawn (default: what your token has left).
        #[arg(long)]
        budget_spawns: Option<u64>,
    },
    /// Show a token's claims (without verifying them) and, from the server, what its
    /// budget has left.
    Inspect {
        #[command(flatten)]
        remote: Remote,
        /// The token (default: --token / TOKA_TOKEN).
        #[arg(value_name = "TOKEN")]
        inspected: Option<String>,
    },
    /// Revoke a token by its jti (needs token:revoke).
    Revoke {
        #[command(flatten)]
        remote: Remote,
        /// The token id.
        jti: String,
    },
    /// Mint a fresh admin token for the root agent from the local signing key (offline).
    Root {
        #[command(flatten)]
        local: crate::Local,
    },
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
pub(crate) fn subject(client: &Client) -> Result<String> {
    let claims = toka_auth_claims(client.token())?;
    Ok(claims["sub"].as_str().unwrap_or_default().to_string())
}

fn toka_auth_claims(token: &str) -> Result<Value> {
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

async fn send(client: &Client, origin: Option<&str>, operation: Value) -> Result<SubmitResponse> {
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
            let parent = match parent {
                Some(p) => p,
                None => subject(&client)?,
            };
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
                            a.id.clone(),
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
            let agent = agent.map_or_else(|| subject(&client), Ok)?;
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
            task,
        } => {
            let client = Client::new(&remote)?;
            let agent = agent.map_or_else(|| subject(&client), Ok)?;
            let r = send(
                &client,
                None,
                json!({"op": "claim_task", "agent": agent, "task": task}),
            )
            .await?;
            print_committed(out, &r);
        }
        TaskCmd::Complete {
            remote,
            agent,
            task,
            result,
            fail,
        } => {
            let client = Client::new(&remote)?;
            let agent = agent.map_or_else(|| subject(&client), Ok)?;
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
            out.emit(&tasks, || {
                let rows: Vec<Vec<String>> = tasks
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.agent.clone(),
                            t.state.clone(),
                            t.description.clone(),
                        ]
                    })
                    .collect();
                table(&["task", "agent", "state", "description"], &rows);
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn observe(args: ObserveArgs, out: Out) -> Result<ExitCode> {
    use base64::Engine as _;
    let client = Client::new(&args.remote)?;
    let agent = args.agent.map_or_else(|| subject(&client), Ok)?;
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

pub async fn token(cmd: TokenCmd, out: Out) -> Result<ExitCode> {
    match cmd {
        TokenCmd::Issue {
            remote,
            sub,
            permissions,
            scope,
            ttl_secs,
            budget_tokens,
            budget_tool_calls,
            budget_spawns,
        } => {
            let client = Client::new(&remote)?;
            let budget = json!({"model_tokens": budget_tokens, "tool_calls": budget_tool_calls, "spawns": budget_spawns});
            let r: TokenResponse = client
                .post(
                    "/v1/tokens",
                    &json!({"sub": sub, "permissions": permissions, "scope": scope, "ttl_secs": ttl_secs, "budget": budget}),
                )
                .await?;
            out.emit(&r, || {
                out.say(format!(
                    "token for {} (jti {}, expires {}, permissions {}, budget {}):",
                    r.sub,
                    r.jti,
                    r.exp,
                    r.permissions.join(","),
                    budget_text(&r.budget)
                ));
                out.say(&r.token);
            });
        }
        TokenCmd::Inspect {
            mut remote,
            inspected,
        } => {
            let token = inspected
                .or_else(|| remote.token.clone())
                .unwrap_or_default();
            let claims = toka_auth_claims(&token)?;
            // What is left is the log's to say: ask the server, if one answers.
            remote.token = Some(token);
            let left: Option<toka_api::views::BudgetLeft> = match Client::new(&remote) {
                Ok(client) => client.get("/v1/budget", &[]).await.ok(),
                Err(_) => None,
            };
            out.emit(&json!({"claims": claims, "budget": left}), || {
                out.say("claims (signature NOT verified; the server verifies):");
                out.say(serde_json::to_string_pretty(&claims).unwrap_or_default());
                match &left {
                    Some(b) => out.say(format!(
                        "budget: limits {}; left {}; spent {}",
                        budget_text(&b.limits),
                        budget_text(&b.left),
                        budget_text(&b.spent)
                    )),
                    None => out.say("budget: no server answered (--server / TOKA_SERVER)"),
                }
            });
        }
        TokenCmd::Revoke { remote, jti } => {
            let client = Client::new(&remote)?;
            let r = send(&client, None, json!({"op": "revoke_token", "jti": jti})).await?;
            out.emit(&r, || out.say(format!("revoked {jti}")));
        }
        TokenCmd::Root { local } => {
            // The issuance goes through the kernel and into the log like any other, so
            // this opens the data folder (refused while a server holds it).
            let config = crate::setup::load_config(&local.config)?;
            let runtime = toka_runtime::Runtime::start(&config).await?;
            let issued = runtime.issue_root_token().await;
            runtime.shutdown().await;
            let issued = issued?;
            let root = issued.claims.sub.to_string();
            out.emit(
                &json!({"root": root, "token": issued.token, "jti": issued.claims.jti, "exp": issued.claims.exp, "seq": issued.seq}),
                || out.say(&issued.token),
            );
        }
    }
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

/// `model_tokens 500, tool_calls 10`, or `unlimited`.
fn budget_text(b: &toka_api::views::BudgetView) -> String {
    let parts: Vec<String> = [
        ("model_tokens", b.model_tokens),
        ("tool_calls", b.tool_calls),
        ("spawns", b.spawns),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|n| format!("{k} {n}")))
    .collect();
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(", ")
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
