//! `toka demo`: the tour. On an embedded SQLite store in a fresh folder, a root agent
//! spawns a planner and two workers with attenuated tokens; tasks are scheduled,
//! claimed and completed with observations; a worker tries what its token does not
//! allow and is refused, the planner tries to mint for the root and to revoke the
//! root's token and is refused; a worker calls tools (a read runs at once, a write waits
//! for approval, which the worker may not give itself; the root approves one write and
//! denies another); then the agent tree, the tasks and the last events are shown,
//! the chain is verified and a replay reaches the same digest.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use toka_auth::permissions as p;
use toka_runtime::{Runtime, SignedToken, SubmitError};
use toka_store_core::{EventPages, Hash32, Verdict, verify};
use toka_types::{
    AgentSpec, EntityId, KernelEvent, Message, Observation, Operation, TaskOutcome, TaskSpec,
    TokenGrant,
};

use crate::cmd::init::{Alg, initialise};
use crate::output::{Out, table};

pub(super) async fn send(
    rt: &Runtime,
    origin: EntityId,
    token: &str,
    op: Operation,
) -> Result<Vec<KernelEvent>, SubmitError> {
    rt.submit(Message::new(origin, token, op))
        .await
        .map(|c| c.events)
        .map_err(|r| r.error)
}

/// A token for `sub`, delegated by `issuer` (the issuance is a `token.issued` event).
async fn issue(
    rt: &Runtime,
    issuer: EntityId,
    issuer_token: &str,
    sub: EntityId,
    permissions: &[&str],
) -> Result<SignedToken> {
    let grant = TokenGrant {
        sub,
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        scope: None,
        ttl_secs: None,
        budget: Default::default(),
    };
    Ok(rt.issue_token(issuer, issuer_token, grant).await?)
}

pub(super) fn new_id(events: &[KernelEvent]) -> Result<EntityId> {
    match events.first() {
        Some(KernelEvent::AgentSpawned { agent, .. }) => Ok(*agent),
        Some(KernelEvent::TaskScheduled { task, .. }) => Ok(*task),
        other => bail!("unexpected event {other:?}"),
    }
}

/// Opens a call of `tool` for `agent`; its id.
async fn call(
    rt: &Runtime,
    (agent, token): (EntityId, &str),
    tool: &str,
    input: serde_json::Value,
) -> Result<EntityId> {
    let events = send(
        rt,
        agent,
        token,
        Operation::CallTool {
            agent,
            tool: tool.into(),
            input,
        },
    )
    .await?;
    match events.first() {
        Some(KernelEvent::ToolCalled(c)) => Ok(c.call),
        other => bail!("unexpected event {other:?}"),
    }
}

/// The call once it ended (the executor runs it outside the kernel).
async fn ended(rt: &Runtime, id: EntityId) -> Result<toka_runtime::tools::CallView> {
    rt.wait_call(id, std::time::Duration::from_secs(10)).await;
    rt.call_view(id)
        .await
        .map_err(anyhow::Error::msg)?
        .context("the call is not in the state")
}

fn result_line(view: &toka_runtime::tools::CallView) -> String {
    match &view.result {
        Some(r) => serde_json::to_string(r).unwrap_or_default(),
        None => view.record.reason.clone().unwrap_or_default(),
    }
}

/// Step 7: tools. A read runs at once; a write waits for approval, which the worker
/// cannot give itself; the root approves one (for its exact input) and denies another.
async fn tool_tour(
    rt: &Runtime,
    (root, admin): (EntityId, &str),
    (worker, token): (EntityId, &str),
    out: Out,
) -> Result<()> {
    let note = json!({"path": "postmortem.md", "content": "# Postmortem\nRoot cause: expired certificate.\n"});
    let write = call(rt, (worker, token), "fs.write", note).await?;
    let record = rt
        .wait_call(write, std::time::Duration::from_millis(300))
        .await
        .context("the call is not in the state")?;
    out.say(format!(
        "7. worker-1 called fs.write: {} (fs.write needs approval; input hash {}…)",
        record.status.as_str(),
        &record.input_hash[..16]
    ));
    let decide = |approve: bool, call: EntityId, reason: &str, hash: Option<String>| {
        Operation::DecideApproval {
            call,
            approve,
            reason: reason.into(),
            input_hash: hash,
        }
    };
    let own = decide(
        true,
        write,
        "looks right to me",
        Some(record.input_hash.clone()),
    );
    match send(rt, worker, token, own).await {
        Ok(_) => bail!("worker-1 approved its own call"),
        Err(e) => out.say(format!(
            "   worker-1 tried to approve it itself, refused:\n   {e}"
        )),
    }
    send(
        rt,
        root,
        admin,
        decide(
            true,
            write,
            "reviewed the postmortem",
            Some(record.input_hash),
        ),
    )
    .await?;
    let view = ended(rt, write).await?;
    out.say(format!(
        "   root approved it for exactly that input; it ran: {} {}",
        view.record.status.as_str(),
        result_line(&view)
    ));
    let read = call(
        rt,
        (worker, token),
        "fs.read",
        json!({"path": "postmortem.md"}),
    )
    .await?;
    let view = ended(rt, read).await?;
    out.say(format!(
        "   fs.read needs no approval: {} ({} bytes read)",
        view.record.status.as_str(),
        view.result
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok())
            .and_then(|v| v["output"]["read"].as_u64())
            .unwrap_or(0)
    ));
    let risky = json!({"path": "notes/../../toka.toml", "content": "pwned"});
    let denied = call(rt, (worker, token), "fs.write", risky).await?;
    send(
        rt,
        root,
        admin,
        decide(false, denied, "writes outside the task's files", None),
    )
    .await?;
    let view = ended(rt, denied).await?;
    out.say(format!(
        "   a second fs.write (to notes/../../toka.toml) was denied: {} ({})",
        view.record.status.as_str(),
        view.record.reason.as_deref().unwrap_or("")
    ));
    Ok(())
}

pub async fn run(
    dir: Option<PathBuf>,
    llm: Option<(String, String)>,
    out: Out,
) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "toka-demo-{}",
            &toka_runtime::keys::random_id()?.to_string()[..8]
        )),
    };
    out.say(
        "Toka demo: agents with capability tokens, tasks, a refusal, and a log that replays.\n",
    );
    let (config, root, admin) = initialise(&dir, true, Alg::Hs256).await?;
    let root: EntityId = root.parse()?;
    let node = toka_mcp::start_node(&config).await?;
    let rt = node.runtime.clone();

    let planner = new_id(
        &send(
            &rt,
            root,
            &admin,
            Operation::SpawnSubAgent {
                parent: root,
                spec: AgentSpec::new("planner")?,
            },
        )
        .await?,
    )?;
    let planner_token = issue(
        &rt,
        root,
        &admin,
        planner,
        &[
            p::AGENT_SPAWN,
            p::TASK_SCHEDULE,
            p::OBSERVATION_EMIT,
            p::TOKEN_ISSUE,
            p::TOKEN_REVOKE,
        ],
    )
    .await?
    .token;
    out.say(format!("1. root spawned planner {planner}\n   its token (issued by root, recorded as token.issued) allows agent:spawn, task:schedule, observation:emit, token:issue, token:revoke"));

    let mut workers = Vec::new();
    for name in ["worker-1", "worker-2"] {
        let id = new_id(
            &send(
                &rt,
                planner,
                &planner_token,
                Operation::SpawnSubAgent {
                    parent: planner,
                    spec: AgentSpec::new(name)?,
                },
            )
            .await?,
        )?;
        // Workers act on their own queues: the root grants them claim/complete, the
        // fs tools, and approval:grant (over their own subtree, where the rule that no
        // one approves their own calls still refuses them).
        let token = issue(
            &rt,
            root,
            &admin,
            id,
            &[
                p::TASK_CLAIM,
                p::TASK_COMPLETE,
                p::OBSERVATION_EMIT,
                "tool:fs.*",
                p::APPROVAL_GRANT,
            ],
        )
        .await?
        .token;
        workers.push((name, id, token));
    }
    out.say("2. planner spawned worker-1 and worker-2; their tokens allow task:claim, task:complete, observation:emit,
   tool:fs.* and approval:grant");

    let jobs = [
        ("fetch the incident report", 0),
        ("summarise the incident report", 1),
        ("draft the postmortem", 0),
        ("file follow-up tickets", 1),
    ];
    let mut tasks = Vec::new();
    for (what, w) in jobs {
        let task = new_id(
            &send(
                &rt,
                planner,
                &planner_token,
                Operation::ScheduleAgentTask {
                    agent: workers[w].1,
                    task: TaskSpec::new(what)?,
                },
            )
            .await?,
        )?;
        tasks.push((task, w, what));
    }
    out.say(format!("3. planner scheduled {} tasks", tasks.len()));

    for (i, (task, w, what)) in tasks.iter().enumerate() {
        let (_, id, token) = &workers[*w];
        send(
            &rt,
            *id,
            token,
            Operation::ClaimTask {
                agent: *id,
                task: *task,
            },
        )
        .await?;
        let note = Observation::new(format!("working on: {what}").into_bytes())?;
        send(
            &rt,
            *id,
            token,
            Operation::EmitObservation {
                agent: *id,
                data: note,
            },
        )
        .await?;
        let outcome = if i == 3 {
            TaskOutcome::failure("ticket tracker unreachable")?
        } else {
            TaskOutcome::success(format!("done: {what}"))?
        };
        send(
            &rt,
            *id,
            token,
            Operation::CompleteTask {
                agent: *id,
                task: *task,
                outcome,
            },
        )
        .await?;
    }
    out.say("4. workers claimed, observed and completed their tasks (one failed)");

    let (_, w2, w2_token) = &workers[1];
    match send(
        &rt,
        *w2,
        w2_token,
        Operation::SpawnSubAgent {
            parent: *w2,
            spec: AgentSpec::new("rogue")?,
        },
    )
    .await
    {
        Ok(_) => bail!("worker-2 spawned an agent its token does not allow"),
        Err(e) => out.say(format!(
            "5. worker-2 tried to spawn an agent and was refused:\n   {e}"
        )),
    }
    let (_, w1, _) = &workers[0];
    match send(
        &rt,
        *w2,
        w2_token,
        Operation::ScheduleAgentTask {
            agent: *w1,
            task: TaskSpec::new("do my work")?,
        },
    )
    .await
    {
        Ok(_) => bail!("worker-2 acted outside its scope"),
        Err(e) => out.say(format!(
            "   and to push work onto worker-1, refused too:\n   {e}"
        )),
    }

    // Delegation is scoped: the planner may not mint for the root, nor revoke the
    // root's token, though it holds token:issue and token:revoke.
    let admin_jti = rt
        .read(|s| {
            s.issued_sorted()
                .iter()
                .find(|t| t.issuer.is_none())
                .map(|t| t.jti.clone())
        })
        .context("the root token's issuance is not in the log")?;
    match issue(&rt, planner, &planner_token, root, &[p::TASK_SCHEDULE]).await {
        Ok(_) => bail!("the planner minted a token for the root"),
        Err(e) => out.say(format!(
            "6. the planner tried to mint a token for the root, refused:\n   {e}"
        )),
    }
    match send(
        &rt,
        planner,
        &planner_token,
        Operation::RevokeToken { jti: admin_jti },
    )
    .await
    {
        Ok(_) => bail!("the planner revoked its own ancestor token"),
        Err(e) => out.say(format!(
            "   and to revoke the root's token, refused:\n   {e}"
        )),
    }

    let (_, w1, w1_token) = &workers[0];
    tool_tour(&rt, (root, &admin), (*w1, w1_token), out).await?;
    let llm = llm.as_ref().map(|(u, m)| (u.as_str(), m.as_str()));
    super::demo_planner::planner_step(&rt, (root, &admin), llm, out).await?;

    out.say("\nAgent tree:");
    let rows: Vec<Vec<String>> = rt.read(|s| {
        s.subtree(root)
            .into_iter()
            .filter_map(|id| s.agent(id))
            .map(|a| {
                vec![
                    format!("{}{}", "  ".repeat(a.depth as usize), a.spec.name()),
                    a.id.to_string(),
                    s.tasks_of(a.id).len().to_string(),
                    a.observations.to_string(),
                ]
            })
            .collect()
    });
    table(&["agent", "id", "tasks", "observations"], &rows);
    out.say("\nTasks:");
    let rows: Vec<Vec<String>> = rt.read(|s| {
        tasks
            .iter()
            .filter_map(|(t, w, what)| {
                s.task(*t).map(|r| {
                    vec![
                        r.state.as_str().to_string(),
                        workers[*w].0.to_string(),
                        what.to_string(),
                    ]
                })
            })
            .collect()
    });
    table(&["state", "worker", "task"], &rows);

    let head = rt.head();
    let live_digest = rt.read(|s| s.digest());
    node.shutdown(std::time::Duration::from_secs(3)).await;
    drop(rt);
    drop(node);

    let store = toka_runtime::open_store(&config).await?;
    out.say("\nLast events:");
    let first = head.seq.saturating_sub(5) + 1;
    let page = EventPages::new(store.as_ref(), first).next_page().await?;
    let rows: Vec<Vec<String>> = page
        .iter()
        .map(|r| {
            vec![
                r.header.seq.to_string(),
                r.header.kind.clone(),
                r.header.origin.to_string(),
                r.header.digest.to_string()[..16].to_string(),
            ]
        })
        .collect();
    table(&["seq", "kind", "origin", "digest"], &rows);

    let verdict = verify(store.as_ref(), 1, Hash32::ZERO, None, |_| {}).await?;
    let Verdict::Intact { checked, .. } = verdict else {
        bail!("the demo's own log does not verify: {verdict:?}")
    };
    // From seq 1, as `toka verify` replays: the snapshot the demo's shutdown wrote is
    // checked against the replay, not used (and no checkpoint needs to cover it).
    let replayed = toka_runtime::recovery::recover_with(
        store.as_ref(),
        &Default::default(),
        &[],
        false,
        |_| {},
    )
    .await?;
    let replay_digest = replayed.state.digest();
    if replay_digest != live_digest {
        bail!("replay reached {replay_digest}, the live state was {live_digest}");
    }
    let config_path = dir.join("toka.toml");
    out.emit(&json!({"dir": dir.display().to_string(), "events": checked, "state_digest": live_digest.to_string()}), || {
        out.say(format!("\nChain verified: {checked} events, head digest {}", head.digest));
        out.say(format!("Live state digest   {live_digest}"));
        out.say(format!("Replayed digest     {replay_digest}  (identical)"));
        out.say(format!("\nData: {}", config.resolve(&config.store.path).display()));
        out.say("Try next:");
        out.say(format!("  toka verify --config {}", config_path.display()));
        out.say(format!("  toka replay --config {} --to 6", config_path.display()));
        out.say(format!(
            "  toka token root --config {}   # a token to paste into the web console",
            config_path.display()
        ));
        out.say(format!(
            "  toka serve  --config {}   # then open the console it prints (http://127.0.0.1:7878/ by default)",
            config_path.display()
        ));
    });
    Ok(ExitCode::SUCCESS)
}
