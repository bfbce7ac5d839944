#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Budgets are capabilities (issue 12): a token spends only while it and every
//! ancestor with a budget have some left; a child is issued at most what its issuer's
//! chain has left; spending debits the whole chain; all of it replays.

mod common;

use common::{World, assert_replays, refused};
use proptest::prelude::*;
use toka_auth::permissions as p;
use toka_types::{
    AgentSpec, Budget, BudgetKind, EntityId, KernelEvent, ModelStep, Operation, TokenGrant,
};

fn grant(sub: EntityId, perms: &[&str], budget: Budget) -> TokenGrant {
    TokenGrant {
        sub,
        permissions: perms.iter().map(|s| s.to_string()).collect(),
        scope: None,
        ttl_secs: None,
        budget,
    }
}

fn step(agent: EntityId, task: EntityId, n: u32, tokens: u64) -> Operation {
    Operation::RecordModelStep(Box::new(ModelStep {
        agent,
        task,
        step: n,
        model: "m".into(),
        request_hash: "cd".repeat(32),
        appended: vec![],
        response: serde_json::json!({"choices": [{"message": {"role": "assistant", "content": "x"}}],
                                     "usage": {"total_tokens": tokens}}),
    }))
}

fn spawn(parent: EntityId, name: &str) -> Operation {
    Operation::SpawnSubAgent {
        parent,
        spec: AgentSpec::new(name).unwrap(),
    }
}

const PLANNER: &[&str] = &[p::MODEL_USE, p::TASK_CLAIM, p::AGENT_SPAWN, p::TOKEN_ISSUE];

#[test]
fn a_child_given_500_model_tokens_is_refused_at_its_first_step_past_them() {
    let mut w = World::new();
    let a = w.spawn(w.root, "planner");
    let root_token = w.root_token.clone();
    let budget = Budget {
        model_tokens: Some(500),
        ..Budget::default()
    };
    let (token, jti) = w
        .issue(w.root, &root_token, grant(a, PLANNER, budget))
        .unwrap();
    let task = w.schedule(a, "think");
    w.submit(a, &token, Operation::ClaimTask { agent: a, task })
        .unwrap();
    for n in 1..=5 {
        let events = w.submit(a, &token, step(a, task, n, 120)).unwrap();
        assert!(matches!(&events[1], KernelEvent::BudgetSpent(s) if s.model_tokens == 120));
    }
    // 600 spent of 500: the next step is refused, naming the budget.
    let err = refused(&mut w, a, &token, step(a, task, 6, 120), "budget_exhausted");
    assert!(err.to_string().contains("model_tokens"), "{err}");
    assert!(err.to_string().contains(&jti), "{err}");
    assert_eq!(w.kernel.state().spent().of(&jti).model_tokens, 600);
    assert_replays(&w);
}

#[test]
fn children_get_at_most_what_is_left_and_their_spending_debits_the_chain() {
    let mut w = World::new();
    let a = w.spawn(w.root, "a");
    let root_token = w.root_token.clone();
    let two_spawns = Budget {
        spawns: Some(3),
        model_tokens: Some(1000),
        ..Budget::default()
    };
    let (a_token, a_jti) = w
        .issue(w.root, &root_token, grant(a, PLANNER, two_spawns))
        .unwrap();
    let events = w.submit(a, &a_token, spawn(a, "b")).unwrap();
    let KernelEvent::AgentSpawned { agent: b, .. } = events[0] else {
        panic!()
    };
    // Asking more than is left is refused; leaving a limit out inherits the rest.
    let too_much = Budget {
        spawns: Some(3),
        ..Budget::default()
    };
    refused(
        &mut w,
        a,
        &a_token,
        Operation::IssueToken(grant(b, PLANNER, too_much)),
        "budget_exceeds_issuer",
    );
    let (b_token, b_jti) = w
        .issue(a, &a_token, grant(b, PLANNER, Budget::default()))
        .unwrap();
    let issued = w.kernel.state().issued_token(&b_jti).unwrap().budget;
    assert_eq!((issued.spawns, issued.model_tokens), (Some(2), Some(1000)));
    // b spends: a's remainder shrinks with it, so a cannot spend it again.
    w.submit(b, &b_token, spawn(b, "c")).unwrap();
    w.submit(b, &b_token, spawn(b, "d")).unwrap();
    refused(&mut w, a, &a_token, spawn(a, "e"), "budget_exhausted");
    refused(&mut w, b, &b_token, spawn(b, "f"), "budget_exhausted");
    assert_eq!(w.kernel.state().spent().of(&a_jti).spawns, 3);
    let claims = toka_auth::Claims::of_issued(w.kernel.state().issued_token(&b_jti).unwrap());
    let left = toka_kernel::remaining(w.kernel.state(), &claims, BudgetKind::Spawns);
    assert_eq!(left.map(|(n, _)| n), Some(0));
    assert_replays(&w);
}

proptest! {
    /// Whatever the parent spent and the child asks, the child never holds more than
    /// the parent has left, and the parent's remainder always covers the child's.
    #[test]
    fn a_child_never_gets_more_than_its_parent_has_left(
        limit in 1u64..50,
        spent_first in 0u64..60,
        asked in proptest::option::of(0u64..80),
        child_spawns in 0u64..60,
    ) {
        let mut w = World::new();
        let a = w.spawn(w.root, "a");
        let root_token = w.root_token.clone();
        let budget = Budget { spawns: Some(limit), ..Budget::default() };
        let (a_token, _) = w.issue(w.root, &root_token, grant(a, PLANNER, budget)).unwrap();
        let mut spent = 0;
        for i in 0..spent_first {
            if w.submit(a, &a_token, spawn(a, &format!("s{i}"))).is_ok() {
                spent += 1;
            }
        }
        prop_assert_eq!(spent, spent_first.min(limit));
        let left = limit - spent;
        let events = w.submit(a, &a_token, spawn(a, "child"));
        let Ok(events) = events else {
            prop_assert_eq!(left, 0);
            return Ok(());
        };
        let KernelEvent::AgentSpawned { agent: child, .. } = events[0] else { panic!() };
        let left = left - 1;
        let ask = Budget { spawns: asked, ..Budget::default() };
        match w.issue(a, &a_token, grant(child, PLANNER, ask)) {
            Err(e) => {
                prop_assert_eq!(e.code(), "budget_exceeds_issuer");
                prop_assert!(asked.is_some_and(|n| n > left));
            }
            Ok((child_token, child_jti)) => {
                let got = w.kernel.state().issued_token(&child_jti).unwrap().budget.spawns.unwrap();
                prop_assert!(got <= left, "child got {got}, parent had {left}");
                let mut child_spent = 0;
                for i in 0..child_spawns {
                    if w.submit(child, &child_token, spawn(child, &format!("c{i}"))).is_ok() {
                        child_spent += 1;
                    }
                }
                prop_assert!(child_spent <= got);
                // The parent can spend only what the child left of its remainder.
                let mut parent_more = 0;
                for i in 0..60 {
                    if w.submit(a, &a_token, spawn(a, &format!("p{i}"))).is_ok() {
                        parent_more += 1;
                    }
                }
                prop_assert_eq!(parent_more, left - child_spent);
            }
        }
        assert_replays(&w);
    }
}
