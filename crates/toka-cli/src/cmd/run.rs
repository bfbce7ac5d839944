//! `toka run "goal"`: a planner agent works one goal on the data folder itself (an
//! embedded runtime, as `toka serve` would open it), showing its progress live —
//! model steps, tool calls, approvals it waits for — and printing the answer.
//!
//! The planner is spawned under the root with a token attenuated from a root token
//! (both recorded), optionally with a model-token budget. `--resume AGENT` starts a
//! planner again (after a crash, a kill) on the tasks it left: it continues from its
//! recorded conversation and only asks the model for the next step.
//!
//! What it is not: a server. Approvals need one (`toka serve`, then `toka approve`);
//! hosting planners in `toka serve` is the planner issue's remaining part.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use toka_auth::permissions as p;
use toka_runtime::Runtime;
use toka_types::{
    Budget, EntityId, KernelEvent, Message, Operation, TaskSpec, TaskState, TokenGrant,
};

use crate::output::{self, Out};
use crate::setup;

/// What the planner's token allows (attenuated from a root token).
pub(crate) const PLANNER_PERMISSIONS: &[&str] = &[
    p::TASK_CLAIM,
    p::TASK_COMPLETE,
    p::MODEL_USE,
    p::OBSERVATION_EMIT,
    p::AGENT_SPAWN,
    p::TASK_SCHEDULE,
    p::TOOL_ALL,
    // To give helper planners tokens of their own, attenuated from its.
    p::TOKEN_ISSUE,
];

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What the planner should do (a task of at most 4096 characters).
    #[arg(required_unless_present = "resume")]
    pub(crate) goal: Option<String>,
    /// The configuration (its [planner] section names the model).
    #[arg(long, env = "TOKA_CONFIG", default_value = "toka.toml")]
    config: PathBuf,
    /// The model (default: [planner] model).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// The OpenAI-compatible endpoint, up to /v1 (default: [planner] base_url).
    #[arg(long)]
    llm_url: Option<String>,
    /// Most model tokens the planner may spend.
    #[arg(long)]
    pub(crate) budget_tokens: Option<u64>,
    /// Start the planner AGENT again on the tasks it left, instead of a new goal.
    #[arg(long, value_name = "AGENT", conflicts_with = "goal")]
    pub(crate) resume: Option<String>,
    /// A running `toka serve` to host the planner (it needs a [planner] section): the
    /// planner is designated in the log and the server runs it, resuming it after a
    /// restart. Without it, the planner runs here on --config's data folder.
    #[arg(long)]
    pub(crate) server: Option<String>,
    /// Your token, with --server (else TOKA_TOKEN).
    #[arg(long, env = "TOKA_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

fn planner_config(
    args: &RunArgs,
    config: &toka_runtime::Config,
) -> Result<toka_planner::PlannerConfig> {
    let mut table = config.planner.clone();
    if let Some(url) = &args.llm_url {
        table.insert("base_url".into(), toml::Value::String(url.clone()));
    }
    if let Some(model) = &args.model {
        table.insert("model".into(), toml::Value::String(model.clone()));
    }
    if !table.contains_key("base_url") {
        bail!(
            "no model endpoint: add a [planner] section to {} (docs/planner.md) or pass --llm-url",
            args.config.display()
        );
    }
    if !table.contains_key("model") {
        table.insert("model".into(), toml::Value::String("default".into()));
    }
    toka_planner::PlannerConfig::from_table(&table)?.context("no [planner] settings")
}

pub async fn run(args: RunArgs, out: Out) -> Result<ExitCode> {
    if let Some(server) = args.server.clone() {
        return super::run_remote::run(args, server, out).await;
    }
    let config = setup::load_config(&args.config)?;
    let planner_config = planner_config(&args, &config)?;
    let planner = toka_planner::Planner::new(planner_config).map_err(anyhow::Error::msg)?;
    let node = toka_mcp::start_node(&config).await?;
    let result = drive(
        &node.runtime,
        &args,
        planner,
        config.agents.max_restarts,
        out,
    )
    .await;
    node.shutdown(std::time::Duration::from_secs(5)).await;
    result
}

async fn drive(
    rt: &Runtime,
    args: &RunArgs,
    planner: toka_planner::Planner,
    max_restarts: u32,
    out: Out,
) -> Result<ExitCode> {
    let root = rt.root().context("the log has no root agent")?;
    let admin = rt.issue_root_token().await?.token;
    let submit = |op: Operation| {
        let admin = admin.clone();
        async move {
            rt.submit(Message::new(root, admin, op))
                .await
                .map(|c| c.events)
                .map_err(|r| anyhow::anyhow!("{}", r.error))
        }
    };
    let agent = match &args.resume {
        Some(id) => {
            let id: EntityId = id
                .parse()
                .map_err(|e| anyhow::anyhow!("--resume {id:?}: {e}"))?;
            if rt.read(|s| s.agent(id).is_none()) {
                bail!("--resume: there is no agent {id}");
            }
            id
        }
        None => {
            // Sibling names are unique: each run's planner is named after the log
            // position it is spawned at.
            let name = format!("planner-{}", rt.head().seq + 1);
            let events = submit(Operation::SpawnSubAgent {
                parent: root,
                spec: toka_types::AgentSpec::new(name)?,
            })
            .await?;
            match events.first() {
                Some(KernelEvent::AgentSpawned { agent, .. }) => *agent,
                _ => bail!("spawning the planner produced no agent"),
            }
        }
    };
    let grant = TokenGrant {
        sub: agent,
        permissions: PLANNER_PERMISSIONS.iter().map(|s| s.to_string()).collect(),
        scope: None,
        ttl_secs: None,
        budget: Budget {
            model_tokens: args.budget_tokens,
            ..Budget::default()
        },
    };
    let token = rt.issue_token(root, &admin, grant).await?.token;
    // Watch from here on, then give the planner its goal.
    let mut feed = rt.subscribe(rt.head().seq + 1);
    let tasks: Vec<EntityId> = match &args.goal {
        Some(goal) => {
            let events = submit(Operation::ScheduleAgentTask {
                agent,
                task: TaskSpec::new(goal.as_str())?,
            })
            .await?;
            match events.first() {
                Some(KernelEvent::TaskScheduled { task, .. }) => vec![*task],
                _ => bail!("scheduling the goal produced no task"),
            }
        }
        None => rt.read(|s| {
            s.tasks_of(agent)
                .into_iter()
                .filter(|t| matches!(t.state, TaskState::Queued | TaskState::Claimed))
                .map(|t| t.id)
                .collect()
        }),
    };
    if tasks.is_empty() {
        bail!("agent {agent} has no open task to resume");
    }
    progress(
        out,
        &format!(
            "planner {agent} works task {} (every model exchange is recorded)",
            tasks[0]
        ),
    );
    let hosted = toka_runtime::host::host(rt, agent, token, Arc::new(planner), max_restarts);
    let done = |rt: &Runtime| {
        rt.read(|s| {
            tasks
                .iter()
                .all(|t| s.task(*t).is_some_and(|t| !t.state.is_open()))
        })
    };
    while !done(rt) {
        tokio::select! {
            next = feed.next() => {
                let Some(Ok(record)) = next else { break };
                if let Ok(event) = toka_runtime::codec::decode(&record) {
                    show(rt, agent, &event, out);
                }
            }
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                if let toka_runtime::host::HostedStatus::GaveUp { last_error } = hosted.status() {
                    bail!("the planner failed too often: {last_error}");
                }
            }
        }
    }
    hosted.abort();
    let mut failed = false;
    for task in &tasks {
        let (state, outcome, usage) = rt.read(|s| {
            let t = s.task(*task);
            (
                t.map(|t| t.state),
                t.and_then(|t| t.outcome.clone()),
                s.models().usage_of(agent),
            )
        });
        let outcome = serde_json::to_value(outcome).unwrap_or(Value::Null);
        failed |= state != Some(TaskState::Done);
        let report = json!({"agent": agent, "task": task, "outcome": outcome,
                            "steps": usage.steps, "model_tokens": usage.tokens});
        print_outcome(out, &report);
    }
    Ok(exit_code(failed))
}

/// Prints one task's `report` (`{"outcome": …, …}`): the answer on stdout, or why it
/// failed on stderr; the whole report with `--json`.
pub(crate) fn print_outcome(out: Out, report: &Value) {
    let outcome = &report["outcome"];
    out.emit(report, || match outcome["status"].as_str() {
        Some("success") => output::line(outcome["result"].as_str().unwrap_or("")),
        _ => output::warn(format!(
            "the task failed: {}",
            outcome["reason"].as_str().unwrap_or("cancelled")
        )),
    });
}

/// 0 when every task succeeded, 1 otherwise.
pub(crate) fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Progress goes to stderr, so stdout holds the answer alone.
pub(crate) fn progress(out: Out, text: &str) {
    if !out.json {
        output::warn(text);
    }
}

fn short(text: &str) -> String {
    toka_planner::one_line(text, 120)
}

/// One progress line for `event`, if it concerns the planner or its helpers: `mine`
/// says whether an agent is the planner or one of its helpers, `caller_of` which
/// agent made a tool call.
pub(crate) fn describe(
    event: &KernelEvent,
    mine: &dyn Fn(EntityId) -> bool,
    caller_of: &dyn Fn(EntityId) -> Option<EntityId>,
) -> Option<String> {
    let of_mine = |call: &EntityId| caller_of(*call).is_some_and(mine);
    Some(match event {
        KernelEvent::ModelAnswered { step, tokens } if mine(step.agent) => {
            let what = toka_planner::Reply::of(&step.response)
                .map_or_else(|| "no answer".to_string(), |r| r.describe(120));
            format!("step {} ({tokens} tokens): {what}", step.step)
        }
        KernelEvent::ToolCalled(c) if mine(c.agent) && c.awaiting_approval => format!(
            "tool {} waits for approval: toka approve {} (with toka serve running)",
            c.tool, c.call
        ),
        KernelEvent::ToolCalled(c) if mine(c.agent) => {
            format!("tool {} {}", c.tool, short(&c.input.to_string()))
        }
        KernelEvent::ToolReturned { call, result } if of_mine(call) => match result {
            toka_types::ToolResult::Ok { output } => {
                format!("  → ok {}", short(&output.to_string()))
            }
            toka_types::ToolResult::Error { error } => format!("  → error: {}", short(error)),
        },
        KernelEvent::ToolAbandoned { call, reason } if of_mine(call) => {
            format!("  → abandoned: {}", short(reason))
        }
        KernelEvent::AgentSpawned {
            agent,
            parent: Some(p),
            spec,
        } if mine(*p) => format!("spawned helper {} ({agent})", spec.name()),
        KernelEvent::TaskLeaseExpired { task, agent } if mine(*agent) => {
            format!("the lease on task {task} ran out; it is queued again")
        }
        _ => return None,
    })
}

/// [`describe`] against the live state of `rt`.
fn show(rt: &Runtime, planner: EntityId, event: &KernelEvent, out: Out) {
    let mine = |a: EntityId| rt.read(|s| s.is_within(a, planner));
    let caller_of = |call: EntityId| rt.read(|s| s.tools().call(call).map(|c| c.agent));
    if let Some(line) = describe(event, &mine, &caller_of) {
        progress(out, &line);
    }
}
