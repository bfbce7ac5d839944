#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The agent host: agents work through the runtime; the supervisor restarts failures.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use toka_runtime::host::{Agent, AgentContext, AgentError, HostedStatus, host};
use toka_store_core::StorageBackend;
use toka_store_memory::MemoryStore;
use toka_types::{TaskOutcome, TaskState};

/// Does `count` tasks, then returns. Panics once, on its first task of its first run.
struct Worker {
    runs: AtomicU32,
    count: usize,
}

#[async_trait]
impl Agent for Worker {
    async fn run(&self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        let mut done = ctx.runtime().read(|s| {
            s.tasks_of(ctx.id())
                .iter()
                .filter(|t| t.state == TaskState::Done)
                .count()
        });
        while done < self.count {
            let task = ctx
                .next_task()
                .await
                .ok_or_else(|| AgentError("feed ended".into()))?;
            if run == 0 {
                panic!("first run crashes");
            }
            ctx.claim(task.id).await?;
            ctx.observe(format!("did {}", task.description)).await?;
            ctx.complete(task.id, TaskOutcome::success("ok")?).await?;
            done += 1;
        }
        Ok(())
    }
}

struct AlwaysFails;

#[async_trait]
impl Agent for AlwaysFails {
    async fn run(&self, _ctx: &mut AgentContext) -> Result<(), AgentError> {
        Err(AgentError("cannot reach its tool".into()))
    }
}

/// Spawns a child that may only emit observations; the child tries to spawn too.
struct Parent;

struct Child;

#[async_trait]
impl Agent for Child {
    async fn run(&self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        ctx.observe("child alive").await?;
        match ctx
            .spawn_child("grandchild", &[], Arc::new(AlwaysFails))
            .await
        {
            Ok(_) => Err(AgentError("a child without agent:spawn spawned".into())),
            Err(e) if e.0.contains("agent:spawn") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Agent for Parent {
    async fn run(&self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        let child = ctx
            .spawn_child("child", &["observation:emit"], Arc::new(Child))
            .await?;
        match child.wait().await {
            HostedStatus::Finished => Ok(()),
            other => Err(AgentError(format!("child ended {other:?}"))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_agent_is_restarted_and_finishes_its_tasks_while_a_failing_one_is_given_up() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let rt = start(store, options()).await;
    let (root, admin_token) = admin(&rt).await;
    let worker = spawn(&rt, root, "worker").await;
    let flaky = spawn(&rt, root, "flaky").await;
    for n in 0..5 {
        rt.submit(schedule(root, &admin_token, worker, &format!("job {n}")))
            .await
            .unwrap();
    }
    let perms = ["task:claim", "task:complete", "observation:emit"];
    let worker_token = delegate(&rt, root, &admin_token, worker, &perms)
        .await
        .unwrap();
    let flaky_token = delegate(&rt, root, &admin_token, flaky, &[]).await.unwrap();

    let failing = host(&rt, flaky, flaky_token, Arc::new(AlwaysFails), 2);
    let handle = host(
        &rt,
        worker,
        worker_token,
        Arc::new(Worker {
            runs: AtomicU32::new(0),
            count: 8,
        }),
        3,
    );
    // Three more arrive while it works.
    for n in 5..8 {
        rt.submit(schedule(root, &admin_token, worker, &format!("job {n}")))
            .await
            .unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(20), handle.wait())
        .await
        .unwrap();
    assert_eq!(status, HostedStatus::Finished);
    let (done, observations) = rt.read(|s| {
        (
            s.tasks_of(worker)
                .iter()
                .filter(|t| t.state == TaskState::Done)
                .count(),
            s.agent(worker).unwrap().observations,
        )
    });
    assert_eq!((done, observations), (8, 8));

    let gave_up = tokio::time::timeout(Duration::from_secs(20), failing.wait())
        .await
        .unwrap();
    assert_eq!(
        gave_up,
        HostedStatus::GaveUp {
            last_error: "cannot reach its tool".into()
        }
    );
    // The kernel still takes work.
    rt.submit(schedule(root, &admin_token, root, "still alive"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_get_attenuated_tokens() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let rt = start(store, options()).await;
    let (root, admin_token) = admin(&rt).await;
    let parent = spawn(&rt, root, "parent").await;
    let perms = ["agent:spawn", "observation:emit", "token:issue"];
    let token = delegate(&rt, root, &admin_token, parent, &perms)
        .await
        .unwrap();
    let status = tokio::time::timeout(
        Duration::from_secs(20),
        host(&rt, parent, token, Arc::new(Parent), 0).wait(),
    )
    .await
    .unwrap();
    assert_eq!(status, HostedStatus::Finished);
    let child_obs = rt.read(|s| {
        let p = s.agent(parent).unwrap();
        s.agent(p.children[0]).unwrap().observations
    });
    assert_eq!(child_obs, 1);
    // A child token can never be wider than its parent's.
    let narrow = delegate(
        &rt,
        root,
        &admin_token,
        parent,
        &["observation:emit", "token:issue"],
    )
    .await
    .unwrap();
    let head = rt.head();
    let wider = delegate(&rt, parent, &narrow, parent, &["agent:spawn"]).await;
    assert!(
        matches!(
            wider,
            Err(toka_runtime::IssueError::Refused(
                toka_runtime::SubmitError::Rejected(toka_kernel::KernelError::Delegation(
                    toka_auth::AuthError::PermissionEscalation { .. }
                ))
            ))
        ),
        "{wider:?}"
    );
    assert_eq!(rt.head(), head, "a refused delegation writes nothing");
}
