#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! The kernel's main property: the state reached live equals, by value and by digest,
//! the state rebuilt by applying only the emitted events (after a JSON round trip, as
//! the log stores them) to a fresh state; and a rejected message leaves the digest
//! unchanged. Random sequences over many agents, valid, invalid and forbidden.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use toka_auth::{Scope, permissions};
use toka_kernel::{
    ExtensionRefusal, ExtensionState, Kernel, OpcodeHandler, ToolOp, WorldState, apply,
};
use toka_types::{
    AgentSpec, ApprovalPolicy, EntityId, ExtensionCall, KernelEvent, Observation, Operation,
    RetryPolicy, TaskOutcome, TaskSpec, TaskState, TokenGrant, ToolResult,
};

/// A test extension: opcode 1 adds the payload's first byte to a counter keyed by the
/// origin; an empty payload is refused.
struct Counter;

impl OpcodeHandler for Counter {
    fn family(&self) -> &str {
        "counter"
    }
    fn decide(
        &self,
        _state: &ExtensionState,
        call: &ExtensionCall,
        origin: EntityId,
        _ctx: &toka_kernel::Context,
    ) -> Result<Vec<ExtensionCall>, ExtensionRefusal> {
        let Some(&by) = call.payload().first() else {
            return Err(ExtensionRefusal::new("empty payload"));
        };
        let mut payload = origin.to_bytes().to_vec();
        payload.push(by);
        Ok(vec![ExtensionCall::new("counter", 2, payload).unwrap()])
    }
    fn apply(&self, state: &mut ExtensionState, event: &ExtensionCall) {
        let (key, by) = event.payload().split_at(16);
        let entry = state.entry(key.to_vec()).or_insert_with(|| vec![0]);
        entry[0] = entry[0].wrapping_add(by[0]);
    }
}

#[derive(Debug, Clone)]
enum TokenKind {
    Full,
    FullScopeAll,
    Subset(Vec<usize>),
    OtherSubject,
    Revoked,
}

#[derive(Debug, Clone)]
struct Action {
    origin: usize,
    token: TokenKind,
    op: u8,
    target: usize,
    task: usize,
    text_len: usize,
    advance: u64,
}

fn action() -> impl Strategy<Value = Action> {
    let token = prop_oneof![
        4 => Just(TokenKind::Full),
        2 => Just(TokenKind::FullScopeAll),
        2 => proptest::collection::vec(0usize..permissions::ALL.len() + 1, 0..4).prop_map(TokenKind::Subset),
        1 => Just(TokenKind::OtherSubject),
        1 => Just(TokenKind::Revoked),
    ];
    (
        0usize..64,
        token,
        0u8..15,
        0usize..64,
        0usize..256,
        0usize..5000,
        prop_oneof![9 => Just(0u64), 1 => 0u64..4000],
    )
        .prop_map(
            |(origin, token, op, target, task, text_len, advance)| Action {
                origin,
                token,
                op,
                target,
                task,
                text_len,
                advance,
            },
        )
}

fn pick<T: Copy>(items: &[T], index: usize, ghost: T) -> T {
    // One slot past the end names something that does not exist.
    items
        .get(index % (items.len() + 1))
        .copied()
        .unwrap_or(ghost)
}

/// The tools of the run: one needing no approval and repeatable, one needing approval
/// and run at most once.
fn offer_tools(w: &mut common::World) {
    let spec = |name: &str, approval, retry| toka_types::ToolSpec {
        name: name.into(),
        description: "test tool".into(),
        input_schema: serde_json::json!({"type": "object", "properties": {"n": {"type": "integer", "maximum": 3000}}, "required": ["n"]}),
        approval,
        retry,
        timeout_ms: 1000,
        approval_ttl_secs: 600,
    };
    let ctx = w.ctx();
    let events = w
        .kernel
        .tool_op(
            &ToolOp::Offer(vec![
                spec("t.read", ApprovalPolicy::Never, RetryPolicy::Repeatable),
                spec("t.write", ApprovalPolicy::Required, RetryPolicy::AtMostOnce),
            ]),
            &ctx,
        )
        .unwrap();
    w.log.extend(events);
}

fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut w = common::World::new();
    w.kernel.register(Arc::new(Counter)).unwrap();
    w.kernel.set_schema_check(Arc::new(common::JsonSchema));
    offer_tools(&mut w);
    let ghost = EntityId::from_u128(0xdead);
    let mut revoked_token: Option<(EntityId, String)> = None;

    for a in actions {
        w.now += a.advance;
        let state = w.kernel.state();
        let agents: Vec<EntityId> = state.agents().iter().map(|r| r.id).collect();
        let tasks: Vec<EntityId> = state.tasks().iter().map(|t| t.id).collect();
        let origin = pick(&agents, a.origin, ghost);
        let target = pick(&agents, a.target, ghost);
        let task = pick(&tasks, a.task, ghost);
        let task_owner = state.task(task).map(|t| t.agent).unwrap_or(target);

        let token = match &a.token {
            TokenKind::Full => w.token(origin, permissions::ALL, None),
            TokenKind::FullScopeAll => w.token(
                origin,
                &[permissions::ALL, &["ext:counter"]].concat(),
                Some(Scope::All),
            ),
            TokenKind::Subset(ps) => {
                let ps: Vec<&str> = ps
                    .iter()
                    .map(|&p| permissions::ALL.get(p).copied().unwrap_or("ext:counter"))
                    .collect();
                w.token(origin, &ps, None)
            }
            TokenKind::OtherSubject => w.token(target, permissions::ALL, None),
            TokenKind::Revoked => match &revoked_token {
                Some((sub, t)) if *sub == origin => t.clone(),
                _ => w.token(origin, permissions::ALL, None),
            },
        };
        let calls: Vec<toka_kernel::CallRecord> = w
            .kernel
            .state()
            .tools()
            .calls()
            .into_iter()
            .cloned()
            .collect();
        let call = calls.get(a.task % (calls.len() + 1)).cloned();
        let call_id = call.as_ref().map(|c| c.id).unwrap_or(ghost);
        // What only the executor may ask: start, return, expire.
        if a.op >= 12 {
            let op = match (a.op, a.text_len % 3) {
                (12, _) => ToolOp::Start {
                    call: call_id,
                    node: "n1".into(),
                },
                (13, 0) => ToolOp::Return {
                    call: call_id,
                    result: ToolResult::error("failed"),
                },
                (13, _) => ToolOp::Return {
                    call: call_id,
                    result: ToolResult::output(serde_json::json!({"n": a.text_len})),
                },
                _ => ToolOp::ExpireApprovals,
            };
            let before = w.kernel.state().clone();
            let ctx = w.ctx();
            match w.kernel.tool_op(&op, &ctx) {
                Ok(events) => {
                    w.log.extend(events);
                    w.kernel
                        .state()
                        .check_invariants()
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                Err(_) => prop_assert_eq!(w.kernel.state(), &before),
            }
            continue;
        }
        let text = "x".repeat(a.text_len.max(1));
        let op = match a.op {
            10 => Operation::CallTool {
                agent: target,
                tool: ["t.read", "t.write", "t.ghost"][a.text_len % 3].into(),
                input: serde_json::json!({"n": a.text_len}),
            },
            11 => Operation::DecideApproval {
                call: call_id,
                approve: a.text_len % 3 != 0,
                reason: if a.text_len % 5 == 0 {
                    String::new()
                } else {
                    "because".into()
                },
                input_hash: call
                    .as_ref()
                    .filter(|_| a.text_len % 7 != 0)
                    .map(|c| c.input_hash.clone()),
            },
            0 => Operation::ScheduleAgentTask {
                agent: target,
                task: TaskSpec::new(text.chars().take(4096).collect::<String>()).unwrap(),
            },
            1 => Operation::SpawnSubAgent {
                parent: target,
                spec: AgentSpec::new(format!("agent-{}", a.text_len)).unwrap(),
            },
            2 => Operation::EmitObservation {
                agent: target,
                data: Observation::new(text.into_bytes()).unwrap(),
            },
            3 => Operation::ClaimTask {
                agent: task_owner,
                task,
            },
            4 => Operation::CompleteTask {
                agent: task_owner,
                task,
                outcome: if a.text_len % 2 == 0 {
                    TaskOutcome::success("ok").unwrap()
                } else {
                    TaskOutcome::failure("no").unwrap()
                },
            },
            5 => Operation::TerminateAgent { agent: target },
            6 if a.text_len % 2 == 0 => {
                // Delegate: the origin issues a token for the target through the kernel.
                Operation::IssueToken(TokenGrant {
                    sub: target,
                    permissions: vec![permissions::TASK_SCHEDULE.into()],
                    scope: None,
                    ttl_secs: None,
                    budget: Default::default(),
                })
            }
            6 => {
                // Revoke the newest issued token (it may be out of scope: then refused).
                let jti = w
                    .kernel
                    .state()
                    .issued_sorted()
                    .last()
                    .map(|t| t.jti.clone())
                    .unwrap_or_else(|| "never-issued".into());
                if let Some(issued) = w.kernel.state().issued_token(&jti) {
                    let token =
                        toka_auth::mint(&w.keys, &toka_auth::Claims::of_issued(issued)).unwrap();
                    revoked_token = Some((issued.sub, token));
                }
                Operation::RevokeToken { jti }
            }
            7 => Operation::Extension(
                ExtensionCall::new("counter", 1, vec![(a.text_len % 3) as u8; a.text_len % 2])
                    .unwrap(),
            ),
            8 => Operation::ClaimTask {
                agent: target,
                task,
            },
            _ => Operation::ScheduleAgentTask {
                agent: target,
                task: TaskSpec::new("small").unwrap(),
            },
        };

        let before = w.kernel.state().clone();
        match w.submit(origin, &token, op) {
            Ok(events) => {
                prop_assert!(!events.is_empty());
                w.kernel
                    .state()
                    .check_invariants()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Err(_) => {
                prop_assert_eq!(w.kernel.state().digest(), before.digest());
                prop_assert_eq!(w.kernel.state(), &before);
            }
        }
    }

    // Replay: only the events, through JSON as the log stores them.
    let mut replayed = WorldState::new();
    let handlers = w.kernel.handlers().clone();
    for event in &w.log {
        let json = serde_json::to_vec(event).unwrap();
        let event: KernelEvent = serde_json::from_slice(&json).unwrap();
        apply(&mut replayed, &event, &handlers);
        replayed
            .check_invariants()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    prop_assert_eq!(&replayed, w.kernel.state());
    prop_assert_eq!(replayed.digest(), w.kernel.state().digest());
    prop_assert_eq!(replayed.applied(), w.log.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn live_state_equals_replay_of_its_events(actions in proptest::collection::vec(action(), 1..160)) {
        run(actions)?;
    }
}

#[test]
fn a_long_run_exercises_every_outcome() {
    // A deterministic long run so that every event kind certainly occurs at least once.
    let mut w = common::World::new();
    w.kernel.register(Arc::new(Counter)).unwrap();
    let root = w.root;
    let a = w.spawn(root, "a");
    let b = w.spawn(a, "b");
    let t1 = w.schedule(b, "one");
    let t2 = w.schedule(b, "two");
    let token = w.token(a, &[permissions::ALL, &["ext:counter"]].concat(), None);
    w.submit(a, &token, Operation::ClaimTask { agent: b, task: t1 })
        .unwrap();
    w.submit(
        a,
        &token,
        Operation::CompleteTask {
            agent: b,
            task: t1,
            outcome: TaskOutcome::failure("boom").unwrap(),
        },
    )
    .unwrap();
    w.submit(
        a,
        &token,
        Operation::EmitObservation {
            agent: b,
            data: Observation::new(vec![1, 2]).unwrap(),
        },
    )
    .unwrap();
    w.submit(
        a,
        &token,
        Operation::Extension(ExtensionCall::new("counter", 1, vec![5]).unwrap()),
    )
    .unwrap();
    let issued = w
        .submit(
            a,
            &token,
            Operation::IssueToken(TokenGrant {
                sub: b,
                permissions: vec![permissions::TASK_SCHEDULE.into()],
                scope: None,
                ttl_secs: None,
                budget: Default::default(),
            }),
        )
        .unwrap();
    let KernelEvent::TokenIssued(issued) = &issued[0] else {
        panic!("{issued:?}")
    };
    w.submit(
        a,
        &token,
        Operation::RevokeToken {
            jti: issued.jti.clone(),
        },
    )
    .unwrap();
    w.submit(
        root,
        &w.root_token.clone(),
        Operation::TerminateAgent { agent: a },
    )
    .unwrap();
    assert_eq!(
        w.kernel.state().task(t2).unwrap().state,
        TaskState::Cancelled
    );
    let kinds: std::collections::BTreeSet<_> = w.log.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds.len(), 9, "{kinds:?}");

    let mut replayed = Kernel::new(w.keys.clone());
    replayed.register(Arc::new(Counter)).unwrap();
    for e in &w.log {
        replayed.apply(e);
    }
    assert_eq!(replayed.state().digest(), w.kernel.state().digest());
    let counter = replayed.state().extension_state("counter").unwrap();
    assert_eq!(counter.get(&a.to_bytes().to_vec()), Some(&vec![5]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// A state written to an image (through JSON, as snapshots store it) and loaded
    /// back is the same state, by value and digest.
    #[test]
    fn images_round_trip(actions in proptest::collection::vec(action(), 1..120)) {
        let mut w = common::World::new();
        w.kernel.register(Arc::new(Counter)).unwrap();
        for a in actions.into_iter().take(120) {
            let state = w.kernel.state();
            let agents: Vec<EntityId> = state.agents().iter().map(|r| r.id).collect();
            let target = pick(&agents, a.target, EntityId::from_u128(1));
            let token = w.root_token.clone();
            let root = w.root;
            let op = match a.op % 3 {
                0 => Operation::SpawnSubAgent { parent: target, spec: AgentSpec::new("x").unwrap() },
                1 => Operation::ScheduleAgentTask { agent: target, task: TaskSpec::new("t").unwrap() },
                _ => Operation::TerminateAgent { agent: target },
            };
            let _ = w.submit(root, &token, op);
        }
        let json = serde_json::to_vec(&w.kernel.state().image()).unwrap();
        let loaded = WorldState::from_image(serde_json::from_slice(&json).unwrap()).unwrap();
        prop_assert_eq!(&loaded, w.kernel.state());
        prop_assert_eq!(loaded.digest(), w.kernel.state().digest());
    }
}

/// A forged image whose agent tree does not match its children lists is refused
/// (invariant 1), however the lists were altered: an agent left out of its parent's
/// list, listed twice in place of a sibling (the count of entries still matches), or
/// listed under an agent that is not its parent.
#[test]
fn images_whose_children_lists_disagree_with_the_tree_are_refused() {
    let mut w = common::World::new();
    let root = w.root;
    let a = w.spawn(root, "a");
    let b = w.spawn(root, "b");
    let c = w.spawn(a, "c");
    let image = w.kernel.state().image();
    WorldState::from_image(image.clone()).unwrap();
    // The children lists of the root, `a` and `b`, edited by hand.
    type Edit<'a> = dyn Fn(&mut Vec<EntityId>, &mut Vec<EntityId>, &mut Vec<EntityId>) + 'a;
    let forged = |edit: &Edit<'_>| {
        let mut image = image.clone();
        let mut lists: Vec<Vec<EntityId>> = [root, a, b]
            .iter()
            .map(|id| {
                image
                    .agents
                    .iter()
                    .find(|x| x.id == *id)
                    .unwrap()
                    .children
                    .clone()
            })
            .collect();
        let [r, la, lb] = &mut lists[..] else {
            unreachable!()
        };
        edit(r, la, lb);
        for (id, list) in [root, a, b].into_iter().zip(lists) {
            image
                .agents
                .iter_mut()
                .find(|x| x.id == id)
                .unwrap()
                .children = list;
        }
        WorldState::from_image(image).map(|_| ()).unwrap_err()
    };
    let left_out = forged(&|r, _, _| r.retain(|x| *x != b));
    let twice_for_a_sibling = forged(&|r, _, _| *r = vec![a, a]);
    let under_another = forged(&|_, la, lb| {
        la.clear();
        lb.push(c);
    });
    for refused in [&left_out, &twice_for_a_sibling, &under_another] {
        assert_eq!(refused.number, 1, "{refused}");
    }
    assert!(
        twice_for_a_sibling.detail.contains("twice"),
        "{twice_for_a_sibling}"
    );
    assert!(
        under_another.detail.contains("does not name it"),
        "{under_another}"
    );
}
