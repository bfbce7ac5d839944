#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The rules of tools (issue 10): the permission matrix of `CallTool`, approvals (who
//! may, for which bytes, once), what only the executor may record, crash resolution by
//! retry policy, and live state equal to replayed and reloaded state throughout.

mod common;

use std::sync::Arc;

use common::{JsonSchema, World, assert_replays, refused};
use toka_auth::{Scope, permissions as p};
use toka_kernel::{KernelError, ToolOp};
use toka_types::{
    ApprovalPolicy, CallStatus, EntityId, KernelEvent, Operation, RetryPolicy, ToolResult, ToolSpec,
};

fn spec(name: &str, approval: ApprovalPolicy, retry: RetryPolicy) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("{name} for tests"),
        input_schema: serde_json::json!({
            "type": "object",
            "properties": {"path": {"type": "string", "maxLength": 100}},
            "required": ["path"],
            "additionalProperties": false
        }),
        approval,
        retry,
        timeout_ms: 1000,
        approval_ttl_secs: 60,
    }
}

fn tool_op(w: &mut World, op: ToolOp) -> Result<Vec<KernelEvent>, KernelError> {
    let ctx = w.ctx();
    let events = w.kernel.tool_op(&op, &ctx)?;
    w.log.extend(events.iter().cloned());
    Ok(events)
}

fn call(agent: EntityId, tool: &str, path: &str) -> Operation {
    Operation::CallTool {
        agent,
        tool: tool.into(),
        input: serde_json::json!({ "path": path }),
    }
}

fn call_id(events: &[KernelEvent]) -> EntityId {
    match &events[0] {
        KernelEvent::ToolCalled(c) => c.call,
        other => panic!("unexpected {other:?}"),
    }
}

fn status(w: &World, call: EntityId) -> CallStatus {
    w.kernel.state().tools().call(call).unwrap().status
}

struct Setup {
    w: World,
    worker: EntityId,
    worker_token: String,
    child: EntityId,
    child_token: String,
    reviewer: EntityId,
    reviewer_token: String,
    other: EntityId,
}

/// root → worker → child; root → reviewer (approval:grant over the root's subtree);
/// root → other. Tools: fs.read (no approval, repeatable), fs.write (approval,
/// at-most-once).
fn setup() -> Setup {
    let mut w = World::new();
    w.kernel.set_schema_check(Arc::new(JsonSchema));
    let root = w.root;
    let events = tool_op(
        &mut w,
        ToolOp::Offer(vec![
            spec("fs.read", ApprovalPolicy::Never, RetryPolicy::Repeatable),
            spec(
                "fs.write",
                ApprovalPolicy::Required,
                RetryPolicy::AtMostOnce,
            ),
        ]),
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    let worker = w.spawn(root, "worker");
    let child = w.spawn(worker, "child");
    let reviewer = w.spawn(root, "reviewer");
    let other = w.spawn(root, "other");
    let worker_token = w.token(worker, &["tool:fs.*", p::APPROVAL_GRANT], None);
    let child_token = w.token(
        child,
        &[p::APPROVAL_GRANT, "tool:fs.read"],
        Some(Scope::Subtree(worker)),
    );
    let reviewer_token = w.token(reviewer, &[p::APPROVAL_GRANT], Some(Scope::Subtree(root)));
    Setup {
        w,
        worker,
        worker_token,
        child,
        child_token,
        reviewer,
        reviewer_token,
        other,
    }
}

#[test]
fn registration_is_idempotent_and_retires_what_is_no_longer_offered() {
    let mut s = setup();
    let same = vec![
        spec("fs.read", ApprovalPolicy::Never, RetryPolicy::Repeatable),
        spec(
            "fs.write",
            ApprovalPolicy::Required,
            RetryPolicy::AtMostOnce,
        ),
    ];
    assert!(tool_op(&mut s.w, ToolOp::Offer(same)).unwrap().is_empty());
    let mut changed = spec("fs.read", ApprovalPolicy::Never, RetryPolicy::Repeatable);
    changed.timeout_ms = 5;
    let events = tool_op(&mut s.w, ToolOp::Offer(vec![changed])).unwrap();
    let kinds: Vec<_> = events.iter().map(KernelEvent::kind).collect();
    assert_eq!(kinds, ["tool.registered", "tool.retired"]);
    let (worker, token) = (s.worker, s.worker_token.clone());
    refused(
        &mut s.w,
        worker,
        &token,
        call(worker, "fs.write", "a"),
        "tool_retired",
    );
    let mut bad = spec("bad", ApprovalPolicy::Never, RetryPolicy::Repeatable);
    bad.input_schema = serde_json::json!({"type": 12});
    let err = tool_op(&mut s.w, ToolOp::Offer(vec![bad])).unwrap_err();
    assert_eq!(err.code(), "tool_spec_invalid");
    let remote = ToolSpec {
        input_schema: serde_json::json!({"$ref": "https://example.invalid/schema.json"}),
        ..spec("remote", ApprovalPolicy::Never, RetryPolicy::Repeatable)
    };
    assert!(
        tool_op(&mut s.w, ToolOp::Offer(vec![remote])).is_err(),
        "remote refs are never fetched"
    );
    assert_replays(&s.w);
}

#[test]
fn permission_matrix() {
    let mut s = setup();
    let (worker, other) = (s.worker, s.other);
    let root = s.w.root;
    // No tool permission at all.
    let plain = s.w.token(worker, &[p::TASK_SCHEDULE], None);
    let err = refused(
        &mut s.w,
        worker,
        &plain,
        call(worker, "fs.read", "a"),
        "permission_denied",
    );
    assert!(err.to_string().contains("tool:fs.read"), "{err}");
    // Another tool's permission does not cover it.
    let only_write = s.w.token(worker, &["tool:fs.write"], None);
    refused(
        &mut s.w,
        worker,
        &only_write,
        call(worker, "fs.read", "a"),
        "permission_denied",
    );
    // A family does.
    let token = s.worker_token.clone();
    let events =
        s.w.submit(worker, &token, call(worker, "fs.read", "a"))
            .unwrap();
    assert_eq!(status(&s.w, call_id(&events)), CallStatus::Ready);
    // Out of scope, unknown tool, schema-invalid input.
    refused(
        &mut s.w,
        worker,
        &token,
        call(other, "fs.read", "a"),
        "out_of_scope",
    );
    refused(
        &mut s.w,
        worker,
        &token,
        call(root, "fs.read", "a"),
        "out_of_scope",
    );
    refused(
        &mut s.w,
        worker,
        &only_write,
        call(worker, "fs.delete", "a"),
        "permission_denied",
    );
    let any = s.w.token(worker, &[p::TOOL_ALL], None);
    refused(
        &mut s.w,
        worker,
        &any,
        call(worker, "fs.delete", "a"),
        "unknown_tool",
    );
    let bad_input = Operation::CallTool {
        agent: worker,
        tool: "fs.read".into(),
        input: serde_json::json!({"path": 7, "extra": true}),
    };
    let err = refused(&mut s.w, worker, &token, bad_input, "tool_input_invalid");
    assert!(
        err.to_string().contains("7"),
        "the schema error is named: {err}"
    );
    let too_long = call(worker, "fs.read", &"x".repeat(101));
    refused(&mut s.w, worker, &token, too_long, "tool_input_invalid");
    // A terminated agent calls nothing.
    let child = s.child;
    let root_token = s.w.root_token.clone();
    s.w.submit(
        root,
        &root_token,
        Operation::TerminateAgent { agent: child },
    )
    .unwrap();
    let child_token = s.child_token.clone();
    refused(
        &mut s.w,
        child,
        &child_token,
        call(child, "fs.read", "a"),
        "agent_terminated",
    );
    assert_replays(&s.w);
}

#[test]
fn approval_rules() {
    let mut s = setup();
    let (worker, child, reviewer) = (s.worker, s.child, s.reviewer);
    let wt = s.worker_token.clone();
    let events =
        s.w.submit(worker, &wt, call(worker, "fs.write", "notes.txt"))
            .unwrap();
    let id = call_id(&events);
    let KernelEvent::ToolCalled(opened) = &events[0] else {
        unreachable!()
    };
    assert!(opened.awaiting_approval);
    assert_eq!(opened.approval_expires_at, Some(common::T0 + 60));
    assert_eq!(opened.input_hash, toka_kernel::input_hash(&opened.input));
    assert_eq!(status(&s.w, id), CallStatus::AwaitingApproval);
    let hash = opened.input_hash.clone();
    let approve = |h: &str| Operation::DecideApproval {
        call: id,
        approve: true,
        reason: "looks fine".into(),
        input_hash: Some(h.into()),
    };
    // Not by itself, not by its child, not without the permission.
    refused(&mut s.w, worker, &wt, approve(&hash), "self_approval");
    let ct = s.child_token.clone();
    refused(&mut s.w, child, &ct, approve(&hash), "self_approval");
    let no_grant = s.w.token(reviewer, &[p::TASK_SCHEDULE], Some(Scope::All));
    refused(
        &mut s.w,
        reviewer,
        &no_grant,
        approve(&hash),
        "permission_denied",
    );
    // Not with scope elsewhere.
    let other = s.other;
    let narrow =
        s.w.token(reviewer, &[p::APPROVAL_GRANT], Some(Scope::Subtree(other)));
    refused(&mut s.w, reviewer, &narrow, approve(&hash), "out_of_scope");
    // Not for other bytes.
    let rt = s.reviewer_token.clone();
    let other_hash = toka_kernel::input_hash(&serde_json::json!({"path": "/etc/passwd"}));
    refused(
        &mut s.w,
        reviewer,
        &rt,
        approve(&other_hash),
        "approval_input_mismatch",
    );
    let no_hash = Operation::DecideApproval {
        call: id,
        approve: true,
        reason: String::new(),
        input_hash: None,
    };
    refused(&mut s.w, reviewer, &rt, no_hash, "approval_input_mismatch");
    // The reviewer approves: ready, once.
    let events = s.w.submit(reviewer, &rt, approve(&hash)).unwrap();
    assert!(matches!(&events[0], KernelEvent::ToolApproved { by, .. } if *by == reviewer));
    assert_eq!(status(&s.w, id), CallStatus::Ready);
    refused(&mut s.w, reviewer, &rt, approve(&hash), "wrong_call_status");
    // The executor runs it once.
    tool_op(
        &mut s.w,
        ToolOp::Start {
            call: id,
            node: "n1".into(),
        },
    )
    .unwrap();
    let ok = ToolResult::output(serde_json::json!({"written": 5}));
    tool_op(
        &mut s.w,
        ToolOp::Return {
            call: id,
            result: ok.clone(),
        },
    )
    .unwrap();
    assert_eq!(status(&s.w, id), CallStatus::Succeeded);
    assert_eq!(
        tool_op(
            &mut s.w,
            ToolOp::Return {
                call: id,
                result: ok
            }
        )
        .unwrap_err()
        .code(),
        "wrong_call_status"
    );
    assert_eq!(
        tool_op(
            &mut s.w,
            ToolOp::Start {
                call: id,
                node: "n1".into()
            }
        )
        .unwrap_err()
        .code(),
        "wrong_call_status"
    );
    assert_replays(&s.w);
}

#[test]
fn denial_needs_a_reason_and_ends_the_call_and_approvals_expire() {
    let mut s = setup();
    let (worker, reviewer) = (s.worker, s.reviewer);
    let wt = s.worker_token.clone();
    let rt = s.reviewer_token.clone();
    let denied = call_id(
        &s.w.submit(worker, &wt, call(worker, "fs.write", "a"))
            .unwrap(),
    );
    let deny = |reason: &str| Operation::DecideApproval {
        call: denied,
        approve: false,
        reason: reason.into(),
        input_hash: None,
    };
    refused(&mut s.w, reviewer, &rt, deny("  "), "reason_required");
    s.w.submit(reviewer, &rt, deny("writes outside the task"))
        .unwrap();
    let record = s.w.kernel.state().tools().call(denied).unwrap().clone();
    assert_eq!(record.status, CallStatus::Denied);
    assert_eq!(record.reason.as_deref(), Some("writes outside the task"));
    assert_eq!(
        tool_op(
            &mut s.w,
            ToolOp::Start {
                call: denied,
                node: "n1".into()
            }
        )
        .unwrap_err()
        .code(),
        "wrong_call_status"
    );

    let waiting = call_id(
        &s.w.submit(worker, &wt, call(worker, "fs.write", "b"))
            .unwrap(),
    );
    assert!(
        tool_op(&mut s.w, ToolOp::ExpireApprovals)
            .unwrap()
            .is_empty(),
        "not yet"
    );
    s.w.now += 60;
    let hash =
        s.w.kernel
            .state()
            .tools()
            .call(waiting)
            .unwrap()
            .input_hash
            .clone();
    let late = Operation::DecideApproval {
        call: waiting,
        approve: true,
        reason: String::new(),
        input_hash: Some(hash),
    };
    refused(&mut s.w, reviewer, &rt, late, "approval_expired");
    let events = tool_op(&mut s.w, ToolOp::ExpireApprovals).unwrap();
    assert_eq!(
        events,
        vec![KernelEvent::ToolApprovalExpired { call: waiting }]
    );
    assert_eq!(status(&s.w, waiting), CallStatus::Expired);
    assert_eq!(s.w.kernel.state().tools().open_of(worker), 0);
    assert_replays(&s.w);
}

#[test]
fn a_crash_repeats_what_may_repeat_and_abandons_the_rest() {
    let mut s = setup();
    let (worker, reviewer) = (s.worker, s.reviewer);
    let wt = s.worker_token.clone();
    let rt = s.reviewer_token.clone();
    let read = call_id(
        &s.w.submit(worker, &wt, call(worker, "fs.read", "a"))
            .unwrap(),
    );
    let write = call_id(
        &s.w.submit(worker, &wt, call(worker, "fs.write", "a"))
            .unwrap(),
    );
    let hash =
        s.w.kernel
            .state()
            .tools()
            .call(write)
            .unwrap()
            .input_hash
            .clone();
    s.w.submit(
        reviewer,
        &rt,
        Operation::DecideApproval {
            call: write,
            approve: true,
            reason: "ok".into(),
            input_hash: Some(hash),
        },
    )
    .unwrap();
    for id in [read, write] {
        tool_op(
            &mut s.w,
            ToolOp::Start {
                call: id,
                node: "n1".into(),
            },
        )
        .unwrap();
        assert_eq!(status(&s.w, id), CallStatus::Running);
    }
    // The node died; at start it asks again for both.
    let again = tool_op(
        &mut s.w,
        ToolOp::Start {
            call: read,
            node: "n1".into(),
        },
    )
    .unwrap();
    assert_eq!(
        again,
        vec![KernelEvent::ToolStarted {
            call: read,
            node: "n1".into(),
            attempt: 2
        }]
    );
    let gone = tool_op(
        &mut s.w,
        ToolOp::Start {
            call: write,
            node: "n1".into(),
        },
    )
    .unwrap();
    assert!(
        matches!(&gone[0], KernelEvent::ToolAbandoned { reason, .. } if reason.contains("outcome unknown"))
    );
    assert_eq!(status(&s.w, write), CallStatus::Abandoned);
    assert_eq!(status(&s.w, read), CallStatus::Running);
    tool_op(
        &mut s.w,
        ToolOp::Return {
            call: read,
            result: ToolResult::error("no such file"),
        },
    )
    .unwrap();
    assert_eq!(status(&s.w, read), CallStatus::Failed);
    assert_replays(&s.w);
}

#[test]
fn open_calls_are_bounded_per_agent_and_a_terminated_agent_never_runs() {
    let mut s = setup();
    let worker = s.worker;
    let wt = s.worker_token.clone();
    for i in 0..toka_types::limits::MAX_OPEN_CALLS_PER_AGENT {
        s.w.submit(worker, &wt, call(worker, "fs.read", &format!("f{i}")))
            .unwrap();
    }
    refused(
        &mut s.w,
        worker,
        &wt,
        call(worker, "fs.read", "one more"),
        "too_many_open_calls",
    );
    let first = s.w.kernel.state().tools().open_calls().next().unwrap().id;
    let root = s.w.root;
    let root_token = s.w.root_token.clone();
    s.w.submit(
        root,
        &root_token,
        Operation::TerminateAgent { agent: worker },
    )
    .unwrap();
    let events = tool_op(
        &mut s.w,
        ToolOp::Start {
            call: first,
            node: "n1".into(),
        },
    )
    .unwrap();
    assert!(
        matches!(&events[1], KernelEvent::ToolReturned { result: ToolResult::Error { error }, .. } if error.contains("terminated"))
    );
    assert_eq!(
        s.w.kernel.state().tools().open_of(worker),
        toka_types::limits::MAX_OPEN_CALLS_PER_AGENT - 1
    );
    assert_replays(&s.w);
}

#[test]
fn without_a_schema_check_no_tool_is_called() {
    let mut w = World::new();
    let err = tool_op(
        &mut w,
        ToolOp::Offer(vec![spec(
            "fs.read",
            ApprovalPolicy::Never,
            RetryPolicy::Repeatable,
        )]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "tool_spec_invalid");
}
