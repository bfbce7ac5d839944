#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Calls through the real runtime (issue 10): a call runs once and its result is
//! committed before the caller sees it; approval holds a call, a grant runs it exactly
//! once, a denial ends it; timeouts and expiry; a node that stops mid-call repeats the
//! repeatable call and abandons the other; live state equals the replayed state.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use toka_auth::{KeySet, Scope, SigningKey, permissions as p};
use toka_kernel::{OpcodeRegistry, WorldState};
use toka_runtime::{ManualClock, Runtime, RuntimeOptions};
use toka_store_core::{EventPages, StorageBackend};
use toka_tools::{Registry, Tool, ToolContext, ToolError, ToolInfo};
use toka_types::{
    AgentSpec, ApprovalPolicy, CallStatus, EntityId, KernelEvent, Message, Operation, RetryPolicy,
    Timestamp, TokenGrant, ToolResult,
};

/// A tool that counts its runs (the side effect) and sleeps `delay`.
struct Counting {
    name: &'static str,
    runs: Arc<AtomicUsize>,
    retry: RetryPolicy,
    approval: ApprovalPolicy,
    delay: Duration,
    timeout_ms: u64,
}

#[async_trait]
impl Tool for Counting {
    fn info(&self) -> ToolInfo {
        ToolInfo {
            name: self.name.into(),
            description: "counts".into(),
            input_schema: json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
            approval: self.approval,
            retry: self.retry,
            timeout_ms: self.timeout_ms,
        }
    }
    async fn call(&self, input: Value, ctx: &ToolContext) -> Result<Value, ToolError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        Ok(json!({"run": run, "n": input["n"], "attempt": ctx.attempt}))
    }
}

struct Tools {
    read_runs: Arc<AtomicUsize>,
    write_runs: Arc<AtomicUsize>,
}

fn registry(delay: Duration, tools: &Tools) -> Registry {
    let mut r = Registry::new(60);
    let tool = |name, runs: &Arc<AtomicUsize>, retry, approval, timeout_ms| Counting {
        name,
        runs: Arc::clone(runs),
        retry,
        approval,
        delay,
        timeout_ms,
    };
    r.add(Arc::new(tool(
        "count.read",
        &tools.read_runs,
        RetryPolicy::Repeatable,
        ApprovalPolicy::Never,
        60_000,
    )));
    r.add(Arc::new(tool(
        "count.write",
        &tools.write_runs,
        RetryPolicy::AtMostOnce,
        ApprovalPolicy::Required,
        60_000,
    )));
    r.add(Arc::new(tool(
        "count.slow",
        &tools.write_runs,
        RetryPolicy::AtMostOnce,
        ApprovalPolicy::Never,
        200,
    )));
    r
}

fn tools() -> Tools {
    Tools {
        read_runs: Arc::default(),
        write_runs: Arc::default(),
    }
}

fn options(clock: Option<ManualClock>) -> RuntimeOptions {
    let mut o = RuntimeOptions::default();
    o.snapshots.every_events = 0;
    o.snapshots.on_shutdown = false;
    let mut handlers = OpcodeRegistry::new();
    toka_tools::plug_in(&mut handlers);
    o.handlers = handlers;
    if let Some(c) = clock {
        o.clock = Arc::new(c);
    }
    o
}

fn keys() -> KeySet {
    KeySet::new(SigningKey::hs256("test", &[5u8; 32]).unwrap())
}

struct Node {
    rt: Runtime,
    root: EntityId,
    admin: String,
}

async fn node(store: Arc<dyn StorageBackend>, opts: RuntimeOptions) -> Node {
    let rt = Runtime::with_store(store, keys(), opts).await.unwrap();
    let root = rt.root().unwrap();
    let admin = rt.issue_root_token().await.unwrap().token;
    Node { rt, root, admin }
}

impl Node {
    async fn spawn(&self, parent: EntityId, name: &str) -> EntityId {
        let op = Operation::SpawnSubAgent {
            parent,
            spec: AgentSpec::new(name).unwrap(),
        };
        let c = self
            .rt
            .submit(Message::new(self.root, &self.admin, op))
            .await
            .unwrap();
        match &c.events[0] {
            KernelEvent::AgentSpawned { agent, .. } => *agent,
            other => panic!("{other:?}"),
        }
    }

    async fn token(&self, sub: EntityId, perms: &[&str], scope: Option<Scope>) -> String {
        let grant = TokenGrant {
            sub,
            permissions: perms.iter().map(|s| s.to_string()).collect(),
            scope,
            ttl_secs: None,
            budget: Default::default(),
        };
        self.rt
            .issue_token(self.root, &self.admin, grant)
            .await
            .unwrap()
            .token
    }

    async fn call(&self, agent: EntityId, token: &str, tool: &str, n: i64) -> EntityId {
        let op = Operation::CallTool {
            agent,
            tool: tool.into(),
            input: json!({"n": n}),
        };
        let c = self
            .rt
            .submit(Message::new(agent, token, op))
            .await
            .unwrap();
        match &c.events[0] {
            KernelEvent::ToolCalled(call) => call.call,
            other => panic!("{other:?}"),
        }
    }

    async fn ended(&self, call: EntityId) -> toka_kernel::CallRecord {
        let record = self
            .rt
            .wait_call(call, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            !record.status.is_open(),
            "call {call} still {}",
            record.status.as_str()
        );
        record
    }

    async fn assert_replays(&self) {
        let mut state = WorldState::new();
        let handlers = OpcodeRegistry::new();
        let mut pages = EventPages::new(self.rt.store().as_ref(), 1);
        loop {
            let page = pages.next_page().await.unwrap();
            if page.is_empty() {
                break;
            }
            for r in page {
                toka_kernel::apply(
                    &mut state,
                    &toka_runtime::codec::decode(&r).unwrap(),
                    &handlers,
                );
            }
        }
        state.check_invariants().unwrap();
        assert_eq!(
            state.digest(),
            self.rt.read(|s| s.digest()),
            "live state differs from the replay"
        );
    }
}

#[tokio::test]
async fn a_call_runs_once_and_its_result_is_committed() {
    let t = tools();
    let n = node(
        Arc::new(toka_store_memory::MemoryStore::new()),
        options(None),
    )
    .await;
    n.rt.start_tools(Arc::new(registry(Duration::ZERO, &t)))
        .await
        .unwrap();
    let worker = n.spawn(n.root, "worker").await;
    let token = n.token(worker, &["tool:count.read"], None).await;
    let id = n.call(worker, &token, "count.read", 7).await;
    let record = n.ended(id).await;
    assert_eq!(record.status, CallStatus::Succeeded);
    assert_eq!(record.attempts, 1);
    let view = n.rt.call_view(id).await.unwrap().unwrap();
    assert_eq!(
        view.result,
        Some(ToolResult::Ok {
            output: json!({"run": 1, "n": 7, "attempt": 1})
        })
    );
    assert_eq!(t.read_runs.load(Ordering::SeqCst), 1);
    // The kinds in the log, in order.
    let kinds: Vec<&str> =
        n.rt.store()
            .read_range(record.called_seq, 3)
            .await
            .unwrap()
            .iter()
            .map(|r| toka_runtime::codec::decode(r).unwrap().kind())
            .collect();
    assert_eq!(kinds, ["tool.called", "tool.started", "tool.returned"]);
    // The same registry again registers nothing; refusals are the kernel's.
    let head = n.rt.head().seq;
    n.rt.start_tools(Arc::new(registry(Duration::ZERO, &t)))
        .await
        .unwrap();
    assert_eq!(n.rt.head().seq, head, "an unchanged registry wrote events");
    let refused =
        n.rt.submit(Message::new(
            worker,
            &token,
            Operation::CallTool {
                agent: worker,
                tool: "count.read".into(),
                input: json!({"n": "x"}),
            },
        ))
        .await
        .unwrap_err();
    assert!(
        refused.error.to_string().contains("schema"),
        "{}",
        refused.error
    );
    n.assert_replays().await;
}

#[tokio::test]
async fn approval_holds_a_call_and_a_grant_runs_it_exactly_once() {
    let t = tools();
    let n = node(
        Arc::new(toka_store_memory::MemoryStore::new()),
        options(None),
    )
    .await;
    n.rt.start_tools(Arc::new(registry(Duration::ZERO, &t)))
        .await
        .unwrap();
    let worker = n.spawn(n.root, "worker").await;
    let reviewer = n.spawn(n.root, "reviewer").await;
    let wt = n.token(worker, &["tool:count.*"], None).await;
    let rt_token = n
        .token(reviewer, &[p::APPROVAL_GRANT], Some(Scope::Subtree(n.root)))
        .await;
    let id = n.call(worker, &wt, "count.write", 1).await;
    let waited =
        n.rt.wait_call(id, Duration::from_millis(300))
            .await
            .unwrap();
    assert_eq!(waited.status, CallStatus::AwaitingApproval);
    assert_eq!(
        t.write_runs.load(Ordering::SeqCst),
        0,
        "ran before approval"
    );
    let approve = Operation::DecideApproval {
        call: id,
        approve: true,
        reason: "ok".into(),
        input_hash: Some(waited.input_hash.clone()),
    };
    n.rt.submit(Message::new(reviewer, &rt_token, approve.clone()))
        .await
        .unwrap();
    assert_eq!(n.ended(id).await.status, CallStatus::Succeeded);
    assert!(
        n.rt.submit(Message::new(reviewer, &rt_token, approve))
            .await
            .is_err(),
        "an approval is used once"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(t.write_runs.load(Ordering::SeqCst), 1);

    let denied = n.call(worker, &wt, "count.write", 2).await;
    let deny = Operation::DecideApproval {
        call: denied,
        approve: false,
        reason: "not today".into(),
        input_hash: None,
    };
    n.rt.submit(Message::new(reviewer, &rt_token, deny))
        .await
        .unwrap();
    let record = n.ended(denied).await;
    assert_eq!(record.status, CallStatus::Denied);
    assert_eq!(record.reason.as_deref(), Some("not today"));
    assert_eq!(t.write_runs.load(Ordering::SeqCst), 1);
    n.assert_replays().await;
}

#[tokio::test]
async fn slow_tools_time_out_and_approvals_expire() {
    let t = tools();
    let clock = ManualClock::new(Timestamp::from_unix_secs(1_900_000_000));
    let n = node(
        Arc::new(toka_store_memory::MemoryStore::new()),
        options(Some(clock.clone())),
    )
    .await;
    n.rt.start_tools(Arc::new(registry(Duration::from_secs(30), &t)))
        .await
        .unwrap();
    let worker = n.spawn(n.root, "worker").await;
    let wt = n.token(worker, &["tool:count.*"], None).await;
    let slow = n.call(worker, &wt, "count.slow", 1).await;
    let record = n.ended(slow).await;
    assert_eq!(record.status, CallStatus::Failed);
    let view = n.rt.call_view(slow).await.unwrap().unwrap();
    assert!(
        matches!(&view.result, Some(ToolResult::Error { error }) if error.contains("timed out after 200 ms")),
        "{view:?}"
    );

    let waiting = n.call(worker, &wt, "count.write", 1).await;
    clock.advance_secs(61);
    let record = n.ended(waiting).await;
    assert_eq!(record.status, CallStatus::Expired);
    n.assert_replays().await;
}

#[tokio::test]
async fn a_stopped_node_repeats_the_repeatable_and_abandons_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toka.db");
    let t = tools();
    let (worker, wt, read, write);
    {
        let store: Arc<dyn StorageBackend> =
            Arc::new(toka_store_sqlite::SqliteStore::open(&path).await.unwrap());
        let n = node(store, options(None)).await;
        // Tools that never finish: the node stops while both run.
        let executor =
            n.rt.start_tools(Arc::new(registry(Duration::from_secs(3600), &t)))
                .await
                .unwrap();
        worker = n.spawn(n.root, "worker").await;
        let reviewer = n.spawn(n.root, "reviewer").await;
        wt = n.token(worker, &["tool:count.*"], None).await;
        let rt_token = n
            .token(reviewer, &[p::APPROVAL_GRANT], Some(Scope::All))
            .await;
        read = n.call(worker, &wt, "count.read", 1).await;
        write = n.call(worker, &wt, "count.write", 2).await;
        let hash =
            n.rt.read(|s| s.tools().call(write).unwrap().input_hash.clone());
        let approve = Operation::DecideApproval {
            call: write,
            approve: true,
            reason: "go".into(),
            input_hash: Some(hash),
        };
        n.rt.submit(Message::new(reviewer, &rt_token, approve))
            .await
            .unwrap();
        for _ in 0..100 {
            if t.read_runs.load(Ordering::SeqCst) == 1 && t.write_runs.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            n.rt.read(|s| s.tools().call(read).unwrap().status),
            CallStatus::Running
        );
        assert_eq!(
            n.rt.read(|s| s.tools().call(write).unwrap().status),
            CallStatus::Running
        );
        executor.stop(Duration::from_millis(100)).await;
        n.rt.shutdown().await;
    }
    assert_eq!(
        (
            t.read_runs.load(Ordering::SeqCst),
            t.write_runs.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    // The node comes back with tools that finish.
    let store: Arc<dyn StorageBackend> =
        Arc::new(toka_store_sqlite::SqliteStore::open(&path).await.unwrap());
    let n = node(store, options(None)).await;
    assert_eq!(
        (
            t.read_runs.load(Ordering::SeqCst),
            t.write_runs.load(Ordering::SeqCst)
        ),
        (1, 1),
        "recovery ran a tool"
    );
    n.rt.start_tools(Arc::new(registry(Duration::ZERO, &t)))
        .await
        .unwrap();
    let r = n.ended(read).await;
    assert_eq!((r.status, r.attempts), (CallStatus::Succeeded, 2));
    let w = n.ended(write).await;
    assert_eq!(w.status, CallStatus::Abandoned);
    assert!(w.reason.as_deref().unwrap().contains("outcome unknown"));
    assert_eq!(
        (
            t.read_runs.load(Ordering::SeqCst),
            t.write_runs.load(Ordering::SeqCst)
        ),
        (2, 1)
    );
    let _ = (worker, wt);
    n.assert_replays().await;
}

/// A hosted agent that calls one tool and reports what it got.
struct Caller(tokio::sync::mpsc::Sender<toka_runtime::tools::CallView>);

#[async_trait]
impl toka_runtime::host::Agent for Caller {
    async fn run(
        &self,
        ctx: &mut toka_runtime::host::AgentContext,
    ) -> Result<(), toka_runtime::host::AgentError> {
        let view = ctx
            .call_tool("count.read", json!({"n": 42}), Duration::from_secs(10))
            .await?;
        let _ = self.0.send(view).await;
        Ok(())
    }
}

#[tokio::test]
async fn a_hosted_agent_calls_a_tool_and_gets_the_committed_result() {
    let t = tools();
    let n = node(
        Arc::new(toka_store_memory::MemoryStore::new()),
        options(None),
    )
    .await;
    n.rt.start_tools(Arc::new(registry(Duration::ZERO, &t)))
        .await
        .unwrap();
    let worker = n.spawn(n.root, "hosted").await;
    let token = n.token(worker, &["tool:count.read"], None).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let _handle = toka_runtime::host::host(&n.rt, worker, token, Arc::new(Caller(tx)), 0);
    let view = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.record.status, CallStatus::Succeeded);
    assert_eq!(view.record.agent, worker);
    assert_eq!(
        view.result,
        Some(ToolResult::Ok {
            output: json!({"run": 1, "n": 42, "attempt": 1})
        })
    );
    n.assert_replays().await;
}
