#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Recording model exchanges (issue 12): only with `model:use`, for a claimed task of
//! an agent in scope, one step after another (no gap, no repeat); the tokens debited
//! come from the recorded response; live, replayed and reloaded state agree.

mod common;

use common::{World, assert_replays, refused};
use toka_auth::permissions as p;
use toka_types::{EntityId, KernelEvent, ModelStep, Operation};

fn step(agent: EntityId, task: EntityId, n: u32, tokens: u64) -> Operation {
    Operation::RecordModelStep(Box::new(ModelStep {
        agent,
        task,
        step: n,
        model: "scripted-1".into(),
        request_hash: "ab".repeat(32),
        appended: vec![serde_json::json!({"role": "user", "content": "go"})],
        response: serde_json::json!({
            "choices": [{"message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tokens / 2, "completion_tokens": tokens - tokens / 2, "total_tokens": tokens}
        }),
    }))
}

#[test]
fn steps_are_recorded_in_order_for_claimed_tasks_only() {
    let mut w = World::new();
    let planner = w.spawn(w.root, "planner");
    let token = w.token(planner, &[p::MODEL_USE, p::TASK_CLAIM], None);
    let no_model = w.token(planner, &[p::TASK_CLAIM], None);
    let task = w.schedule(planner, "plan it");

    // Not claimed yet.
    refused(
        &mut w,
        planner,
        &token,
        step(planner, task, 1, 10),
        "wrong_task_state",
    );
    w.submit(
        planner,
        &token,
        Operation::ClaimTask {
            agent: planner,
            task,
        },
    )
    .unwrap();
    refused(
        &mut w,
        planner,
        &no_model,
        step(planner, task, 1, 10),
        "permission_denied",
    );
    refused(
        &mut w,
        planner,
        &token,
        step(planner, task, 2, 10),
        "model_step_out_of_order",
    );
    let events = w
        .submit(planner, &token, step(planner, task, 1, 120))
        .unwrap();
    assert!(matches!(
        &events[0],
        KernelEvent::ModelAnswered { tokens: 120, .. }
    ));
    // A repeat of step 1 (a resumed planner asking again) is refused.
    refused(
        &mut w,
        planner,
        &token,
        step(planner, task, 1, 120),
        "model_step_out_of_order",
    );
    w.submit(planner, &token, step(planner, task, 2, 30))
        .unwrap();

    let models = w.kernel.state().models();
    assert_eq!(models.steps_of(task).len(), 2);
    let usage = models.usage_of(planner);
    assert_eq!((usage.steps, usage.tokens), (2, 150));
    assert_replays(&w);
}

#[test]
fn steps_for_agents_out_of_scope_are_refused() {
    let mut w = World::new();
    let a = w.spawn(w.root, "a");
    let b = w.spawn(w.root, "b");
    let a_token = w.token(a, &[p::MODEL_USE, p::TASK_CLAIM], None);
    let b_token = w.token(b, &[p::TASK_CLAIM], None);
    let task = w.schedule(b, "b's work");
    w.submit(b, &b_token, Operation::ClaimTask { agent: b, task })
        .unwrap();
    refused(&mut w, a, &a_token, step(b, task, 1, 10), "out_of_scope");
    // A's own task id under b's name, or b's task under a's: refused either way.
    refused(
        &mut w,
        a,
        &a_token,
        step(a, task, 1, 10),
        "task_of_another_agent",
    );
    assert_replays(&w);
}
