#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! Each kernel refusal gets its specific error, and a refused message changes nothing.

mod common;

use common::{T0, World};
use toka_auth::{AuthError, Scope, permissions};
use toka_kernel::{Context, KernelError};
use toka_types::limits::MAX_QUEUED_TASKS_PER_AGENT;
use toka_types::{
    AgentSpec, EntityId, ExtensionCall, Message, Observation, Operation, TaskOutcome, TaskSpec,
    TaskState, Timestamp,
};

fn task(what: &str) -> TaskSpec {
    TaskSpec::new(what).unwrap()
}

/// Submits and asserts it is refused with `expected`, leaving the state untouched.
fn refused(world: &mut World, origin: EntityId, token: &str, op: Operation, expected: KernelError) {
    let before = world.kernel.state().digest();
    let got = world.submit(origin, token, op).unwrap_err();
    assert_eq!(got, expected);
    assert_eq!(
        world.kernel.state().digest(),
        before,
        "a refusal changed the state"
    );
}

#[test]
fn subject_must_be_origin() {
    let mut w = World::new();
    let worker = w.spawn(w.root, "worker");
    let token = w.root_token.clone();
    let root = w.root;
    refused(
        &mut w,
        worker,
        &token,
        Operation::EmitObservation {
            agent: worker,
            data: Observation::new(vec![1]).unwrap(),
        },
        KernelError::OriginMismatch {
            origin: worker,
            sub: root,
        },
    );
}

#[test]
fn token_problems_surface_as_unauthenticated() {
    let mut w = World::new();
    let root = w.root;
    let op = Operation::ScheduleAgentTask {
        agent: root,
        task: task("x"),
    };
    let before = w.kernel.state().digest();
    let err = w.submit(root, "not.a.token", op.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            KernelError::Unauthenticated(AuthError::Malformed { .. })
        ),
        "{err:?}"
    );
    assert_eq!(w.kernel.state().digest(), before);
    // Expired: move the clock past exp.
    let token = w.root_token.clone();
    w.now = T0 + 3600;
    refused(
        &mut w,
        root,
        &token,
        op,
        KernelError::Unauthenticated(AuthError::Expired {
            exp: T0 + 3600,
            now: T0 + 3600,
        }),
    );
}

#[test]
fn permission_is_required_per_operation() {
    let mut w = World::new();
    let root = w.root;
    let t = w.schedule(root, "t");
    let nothing = w.token(root, &[], None);
    let cases = [
        (
            Operation::ScheduleAgentTask {
                agent: root,
                task: task("x"),
            },
            permissions::TASK_SCHEDULE,
        ),
        (
            Operation::SpawnSubAgent {
                parent: root,
                spec: AgentSpec::new("a").unwrap(),
            },
            permissions::AGENT_SPAWN,
        ),
        (
            Operation::EmitObservation {
                agent: root,
                data: Observation::new(vec![]).unwrap(),
            },
            permissions::OBSERVATION_EMIT,
        ),
        (
            Operation::ClaimTask {
                agent: root,
                task: t,
            },
            permissions::TASK_CLAIM,
        ),
        (
            Operation::CompleteTask {
                agent: root,
                task: t,
                outcome: TaskOutcome::success("").unwrap(),
            },
            permissions::TASK_COMPLETE,
        ),
        (
            Operation::TerminateAgent { agent: root },
            permissions::AGENT_TERMINATE,
        ),
        (
            Operation::RevokeToken { jti: "j".into() },
            permissions::TOKEN_REVOKE,
        ),
        (
            Operation::Extension(ExtensionCall::new("counter", 1, vec![]).unwrap()),
            "ext:counter",
        ),
    ];
    for (op, permission) in cases {
        let operation = op.name();
        refused(
            &mut w,
            root,
            &nothing,
            op,
            KernelError::PermissionDenied {
                operation,
                permission: permission.into(),
            },
        );
    }
}

#[test]
fn scope_defaults_to_own_subtree() {
    let mut w = World::new();
    let a = w.spawn(w.root, "a");
    let a_child = w.spawn(a, "a-child");
    let b = w.spawn(w.root, "b");
    let token = w.token(a, permissions::ALL, None);
    // Itself and its descendants: allowed.
    w.submit(
        a,
        &token,
        Operation::ScheduleAgentTask {
            agent: a,
            task: task("self"),
        },
    )
    .unwrap();
    w.submit(
        a,
        &token,
        Operation::ScheduleAgentTask {
            agent: a_child,
            task: task("child"),
        },
    )
    .unwrap();
    // A sibling, the parent, an unknown id: out of scope (unknown ids are not revealed).
    for target in [b, w.root, EntityId::from_u128(99)] {
        refused(
            &mut w,
            a,
            &token,
            Operation::ScheduleAgentTask {
                agent: target,
                task: task("no"),
            },
            KernelError::OutOfScope {
                target,
                scope: a.to_string(),
            },
        );
    }
    // A wider scope is honoured.
    let wide = w.token(a, permissions::ALL, Some(Scope::All));
    w.submit(
        a,
        &wide,
        Operation::ScheduleAgentTask {
            agent: b,
            task: task("granted"),
        },
    )
    .unwrap();
    // With scope *, an unknown id is reported as unknown.
    let ghost = EntityId::from_u128(99);
    refused(
        &mut w,
        a,
        &wide,
        Operation::ScheduleAgentTask {
            agent: ghost,
            task: task("x"),
        },
        KernelError::UnknownAgent(ghost),
    );
}

#[test]
fn task_lifecycle_rules() {
    let mut w = World::new();
    let a = w.spawn(w.root, "a");
    let b = w.spawn(w.root, "b");
    let t = w.schedule(a, "work");
    let token = w.token(a, permissions::ALL, None);
    let wide = w.token(a, permissions::ALL, Some(Scope::All));
    let ghost = EntityId::from_u128(5);
    refused(
        &mut w,
        a,
        &token,
        Operation::ClaimTask {
            agent: a,
            task: ghost,
        },
        KernelError::UnknownTask(ghost),
    );
    refused(
        &mut w,
        a,
        &wide,
        Operation::ClaimTask { agent: b, task: t },
        KernelError::TaskOfAnotherAgent {
            task: t,
            agent: b,
            owner: a,
        },
    );
    refused(
        &mut w,
        a,
        &token,
        Operation::CompleteTask {
            agent: a,
            task: t,
            outcome: TaskOutcome::success("early").unwrap(),
        },
        KernelError::WrongTaskState {
            task: t,
            state: TaskState::Queued,
            expected: TaskState::Claimed,
        },
    );
    w.submit(a, &token, Operation::ClaimTask { agent: a, task: t })
        .unwrap();
    refused(
        &mut w,
        a,
        &token,
        Operation::ClaimTask { agent: a, task: t },
        KernelError::WrongTaskState {
            task: t,
            state: TaskState::Claimed,
            expected: TaskState::Queued,
        },
    );
    w.submit(
        a,
        &token,
        Operation::CompleteTask {
            agent: a,
            task: t,
            outcome: TaskOutcome::success("ok").unwrap(),
        },
    )
    .unwrap();
    assert_eq!(w.kernel.state().task(t).unwrap().state, TaskState::Done);
    refused(
        &mut w,
        a,
        &token,
        Operation::CompleteTask {
            agent: a,
            task: t,
            outcome: TaskOutcome::success("again").unwrap(),
        },
        KernelError::WrongTaskState {
            task: t,
            state: TaskState::Done,
            expected: TaskState::Claimed,
        },
    );
}

#[test]
fn queue_limit() {
    let mut w = World::new();
    let a = w.spawn(w.root, "a");
    for i in 0..MAX_QUEUED_TASKS_PER_AGENT {
        w.schedule(a, &format!("t{i}"));
    }
    let token = w.root_token.clone();
    let root = w.root;
    refused(
        &mut w,
        root,
        &token,
        Operation::ScheduleAgentTask {
            agent: a,
            task: task("one too many"),
        },
        KernelError::QueueFull {
            agent: a,
            limit: MAX_QUEUED_TASKS_PER_AGENT,
        },
    );
    // Claiming one frees a slot.
    let first = w.kernel.state().tasks_of(a)[0].id;
    w.submit(
        root,
        &token,
        Operation::ClaimTask {
            agent: a,
            task: first,
        },
    )
    .unwrap();
    w.schedule(a, "fits now");
    w.kernel.state().check_invariants().unwrap();
}

#[test]
fn termination_cascades_and_blocks() {
    let mut w = World::new();
    let a = w.spawn(w.root, "a");
    let a1 = w.spawn(a, "a1");
    let a11 = w.spawn(a1, "a11");
    let b = w.spawn(w.root, "b");
    let queued = w.schedule(a11, "queued");
    let claimed = w.schedule(a1, "claimed");
    let root = w.root;
    let token = w.root_token.clone();
    w.submit(
        root,
        &token,
        Operation::ClaimTask {
            agent: a1,
            task: claimed,
        },
    )
    .unwrap();

    let events = w
        .submit(root, &token, Operation::TerminateAgent { agent: a })
        .unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["agent.terminated"; 3]);
    let s = w.kernel.state();
    for id in [a, a1, a11] {
        assert_eq!(
            s.agent(id).unwrap().status,
            toka_kernel::AgentStatus::Terminated
        );
    }
    assert_eq!(s.agent(b).unwrap().status, toka_kernel::AgentStatus::Active);
    assert_eq!(s.task(queued).unwrap().state, TaskState::Cancelled);
    assert_eq!(s.task(claimed).unwrap().state, TaskState::Cancelled);
    s.check_invariants().unwrap();

    refused(
        &mut w,
        root,
        &token,
        Operation::TerminateAgent { agent: a1 },
        KernelError::AgentTerminated(a1),
    );
    refused(
        &mut w,
        root,
        &token,
        Operation::ScheduleAgentTask {
            agent: a11,
            task: task("x"),
        },
        KernelError::AgentTerminated(a11),
    );
    // A terminated agent's own token stops working.
    let a1_token = w.token(a1, permissions::ALL, None);
    refused(
        &mut w,
        a1,
        &a1_token,
        Operation::EmitObservation {
            agent: a1,
            data: Observation::new(vec![]).unwrap(),
        },
        KernelError::AgentTerminated(a1),
    );
    refused(
        &mut w,
        root,
        &token,
        Operation::TerminateAgent { agent: root },
        KernelError::CannotTerminateRoot,
    );
}

#[test]
fn revocation_is_an_event_and_takes_effect() {
    let mut w = World::new();
    let a = w.spawn(w.root, "a");
    let a_token = w.token(a, permissions::ALL, None);
    let root = w.root;
    // Minted outside the log, so its subject is unknown to the kernel: revoking it
    // needs scope `*`.
    let root_token = w.token(root, permissions::ALL, Some(Scope::All));
    let jti = "jti-2".to_string(); // the second token minted by the world
    let events = w
        .submit(
            root,
            &root_token,
            Operation::RevokeToken { jti: jti.clone() },
        )
        .unwrap();
    assert_eq!(events[0].kind(), "token.revoked");
    refused(
        &mut w,
        root,
        &root_token,
        Operation::RevokeToken { jti: jti.clone() },
        KernelError::AlreadyRevoked { jti: jti.clone() },
    );
    refused(
        &mut w,
        a,
        &a_token,
        Operation::ScheduleAgentTask {
            agent: a,
            task: task("x"),
        },
        KernelError::Unauthenticated(AuthError::Revoked { jti }),
    );
}

#[test]
fn limits_and_context() {
    let mut w = World::new();
    let root = w.root;
    let token = w.root_token.clone();
    // An oversized operation built by hand is refused by validation.
    let op = Operation::CompleteTask {
        agent: root,
        task: EntityId::from_u128(1),
        outcome: TaskOutcome::Success {
            result: "r".repeat(64 * 1024 + 1),
            output: None,
        },
    };
    let before = w.kernel.state().digest();
    assert!(matches!(
        w.submit(root, &token, op),
        Err(KernelError::Invalid(_))
    ));
    assert_eq!(before, w.kernel.state().digest());

    let msg = Message::new(
        root,
        token.clone(),
        Operation::TerminateAgent { agent: root },
    );
    let wrong = Context::new(Timestamp::from_unix_secs(T0), 7);
    assert_eq!(
        w.kernel.submit(&msg, &wrong),
        Err(KernelError::SeqOutOfOrder {
            expected: 2,
            got: 7
        })
    );
    let back = Context::new(Timestamp::from_unix_secs(T0 - 1), 2);
    assert!(matches!(
        w.kernel.submit(&msg, &back),
        Err(KernelError::ClockWentBack { .. })
    ));
    assert_eq!(
        w.kernel
            .genesis(&AgentSpec::new("again").unwrap(), &w.ctx()),
        Err(KernelError::AlreadyInitialised)
    );
}

#[test]
fn nothing_before_genesis() {
    let keys = toka_auth::KeySet::new(toka_auth::SigningKey::hs256("k", &[1u8; 32]).unwrap());
    let mut kernel = toka_kernel::Kernel::new(keys);
    let id = EntityId::from_u128(1);
    let claims = toka_auth::Claims::new(id, "j", T0, T0 + 10);
    let msg = Message::new(id, "t.t.t", Operation::TerminateAgent { agent: id });
    let ctx = Context::new(Timestamp::from_unix_secs(T0), 1);
    assert_eq!(
        kernel.submit_verified(&msg, &claims, &ctx),
        Err(KernelError::NotInitialised)
    );
}

#[test]
fn ids_are_deterministic_uuid_v8() {
    let mut w1 = World::new();
    let mut w2 = World::new();
    assert_eq!(w1.root, w2.root);
    let a1 = w1.spawn(w1.root, "a");
    let a2 = w2.spawn(w2.root, "a");
    assert_eq!(a1, a2);
    let text = a1.to_string();
    assert_eq!(&text[14..15], "8", "version nibble of {text}");
    assert!(
        matches!(&text[19..20], "8" | "9" | "a" | "b"),
        "variant of {text}"
    );
    let t = w1.schedule(a1, "x");
    assert_ne!(t, a1);
}
