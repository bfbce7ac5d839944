#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tasks that wait for tasks (issue 12): what a task waits for must exist in the
//! sender's scope; it cannot be claimed until all of it ended; state shows what it
//! still waits on; replay agrees.

mod common;

use common::{World, assert_replays, refused};
use toka_auth::permissions as p;
use toka_types::{EntityId, KernelEvent, Operation, TaskOutcome, TaskSpec};

fn schedule_waiting(
    w: &mut World,
    agent: EntityId,
    waits: Vec<EntityId>,
) -> Result<EntityId, String> {
    let token = w.root_token.clone();
    let spec = TaskSpec::new("combine")
        .unwrap()
        .waiting_for(waits)
        .map_err(|e| e.to_string())?;
    let events = w
        .submit(
            w.root,
            &token,
            Operation::ScheduleAgentTask { agent, task: spec },
        )
        .map_err(|e| e.code().to_string())?;
    match &events[0] {
        KernelEvent::TaskScheduled { task, .. } => Ok(*task),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_waiting_task_is_claimed_only_once_what_it_waits_for_ended() {
    let mut w = World::new();
    let helper = w.spawn(w.root, "helper");
    let lead = w.spawn(w.root, "lead");
    let helper_token = w.token(helper, &[p::TASK_CLAIM, p::TASK_COMPLETE], None);
    let lead_token = w.token(lead, &[p::TASK_CLAIM, p::TASK_COMPLETE], None);
    let part = w.schedule(helper, "part one");
    assert_eq!(
        schedule_waiting(&mut w, lead, vec![EntityId::from_u128(77)]),
        Err("unknown_task".into())
    );
    assert!(
        TaskSpec::new("x")
            .unwrap()
            .waiting_for(vec![part, part])
            .is_err()
    );
    let whole = schedule_waiting(&mut w, lead, vec![part]).unwrap();
    assert_eq!(w.kernel.state().waiting_on(whole), vec![part]);
    let claim = Operation::ClaimTask {
        agent: lead,
        task: whole,
    };
    let err = refused(&mut w, lead, &lead_token, claim.clone(), "task_waiting");
    assert!(err.to_string().contains(&part.to_string()), "{err}");
    w.submit(
        helper,
        &helper_token,
        Operation::ClaimTask {
            agent: helper,
            task: part,
        },
    )
    .unwrap();
    let outcome = TaskOutcome::success("42").unwrap();
    w.submit(
        helper,
        &helper_token,
        Operation::CompleteTask {
            agent: helper,
            task: part,
            outcome,
        },
    )
    .unwrap();
    assert!(w.kernel.state().waiting_on(whole).is_empty());
    w.submit(lead, &lead_token, claim).unwrap();
    assert_replays(&w);
}
