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

/// Claims and completes every task it is given, noting the order.
struct Completer(std::sync::Mutex<Vec<String>>);

#[async_trait]
impl Agent for Completer {
    async fn run(&self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        while let Some(task) = ctx.next_task().await {
            ctx.claim(task.id).await?;
            if let Ok(mut seen) = self.0.lock() {
                seen.push(task.description.clone());
            }
            ctx.complete(task.id, TaskOutcome::success("ok")?).await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_task_is_delivered_only_once_what_it_waits_for_ended() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let rt = start(store, options()).await;
    let (root, admin_token) = admin(&rt).await;
    let helper = spawn(&rt, root, "helper").await;
    let lead = spawn(&rt, root, "lead").await;
    let schedule_spec = |agent, spec| {
        toka_types::Message::new(
            root,
            admin_token.clone(),
            toka_types::Operation::ScheduleAgentTask { agent, task: spec },
        )
    };
    let part = rt
        .submit(schedule(root, &admin_token, helper, "part"))
        .await
        .unwrap();
    let Some(toka_types::KernelEvent::TaskScheduled { task: part, .. }) =
        part.events.first().cloned()
    else {
        panic!("no task");
    };
    let whole = toka_types::TaskSpec::new("whole")
        .unwrap()
        .waiting_for(vec![part])
        .unwrap();
    rt.submit(schedule_spec(lead, whole)).await.unwrap();
    rt.submit(schedule(root, &admin_token, lead, "independent"))
        .await
        .unwrap();
    let perms = ["task:claim", "task:complete"];
    let lead_token = delegate(&rt, root, &admin_token, lead, &perms)
        .await
        .unwrap();
    let lead_agent = Arc::new(Completer(std::sync::Mutex::new(Vec::new())));
    let _lead = host(&rt, lead, lead_token, lead_agent.clone(), 0);
    // The lead does what it can; "whole" waits for the helper's part.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        *lead_agent.0.lock().unwrap(),
        vec!["independent".to_string()]
    );
    let waiting = rt.read(|s| {
        s.all_tasks()
            .find(|t| t.spec.description() == "whole")
            .map(|t| (t.state, s.waiting_on(t.id)))
    });
    assert_eq!(waiting, Some((TaskState::Queued, vec![part])));
    // The helper does its part: then, and only then, the lead gets "whole".
    let helper_token = delegate(&rt, root, &admin_token, helper, &perms)
        .await
        .unwrap();
    let _helper = host(
        &rt,
        helper,
        helper_token,
        Arc::new(Completer(std::sync::Mutex::new(Vec::new()))),
        0,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lead_agent.0.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiting task was never delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *lead_agent.0.lock().unwrap(),
        vec!["independent".to_string(), "whole".to_string()]
    );
}

/// Observes once per task, with whatever token the host holds for it now.
struct Observer;

#[async_trait]
impl Agent for Observer {
    async fn run(&self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        loop {
            let task = ctx
                .next_task()
                .await
                .ok_or_else(|| AgentError("feed ended".into()))?;
            ctx.observe(format!("saw {}", task.description)).await?;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_agent_keeps_working_past_its_first_tokens_expiry() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let rt = start(store, options()).await;
    let (root, admin_token) = admin(&rt).await;
    let agent = spawn(&rt, root, "long-runner").await;
    let grant = toka_types::TokenGrant {
        sub: agent,
        permissions: vec!["observation:emit".into()],
        scope: None,
        ttl_secs: Some(3),
        budget: Default::default(),
    };
    let first = rt.issue_token(root, &admin_token, grant).await.unwrap();
    let _hosted = host(&rt, agent, first.token, Arc::new(Observer), 0);
    // Past the first token's expiry (3 s), a task still gets its observation.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    rt.submit(schedule(root, &admin_token, agent, "late work"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rt.read(|s| s.agent(agent).unwrap().observations) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent could not act"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The log holds the renewals, each of the first token's family.
    let renewals = rt.read(|s| {
        s.issued_sorted()
            .into_iter()
            .filter(|t| t.renewal_of.as_deref() == Some(first.claims.jti.as_str()))
            .count()
    });
    assert!(renewals >= 1, "renewed {renewals} times");
}
