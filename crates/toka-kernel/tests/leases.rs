#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Leases (issue 12): a heartbeat gives a claimed task a lease in log time; when it
//! runs out, the expiry the runtime asks for (decided with the context's time) queues
//! the task again; heartbeats extend it, completion ends it; replay agrees.

mod common;

use common::{World, assert_replays, refused};
use toka_auth::permissions as p;
use toka_kernel::{Context, decide_expire_leases};
use toka_types::{KernelEvent, Operation, TaskState, Timestamp};

fn expire(w: &mut World) -> Vec<KernelEvent> {
    let ctx = Context::new(
        Timestamp::from_unix_secs(w.now),
        w.kernel.state().next_seq(),
    );
    let events = w.kernel.expire_leases(&ctx).unwrap();
    w.log.extend(events.iter().cloned());
    events
}

#[test]
fn a_lease_that_runs_out_queues_the_task_again() {
    let mut w = World::new();
    let worker = w.spawn(w.root, "worker");
    let token = w.token(worker, &[p::TASK_CLAIM, p::TASK_COMPLETE], None);
    let task = w.schedule(worker, "long job");
    let beat = |lease_secs| Operation::Heartbeat {
        agent: worker,
        task,
        lease_secs,
    };
    refused(&mut w, worker, &token, beat(30), "wrong_task_state");
    w.submit(
        worker,
        &token,
        Operation::ClaimTask {
            agent: worker,
            task,
        },
    )
    .unwrap();
    refused(&mut w, worker, &token, beat(0), "invalid");
    w.submit(worker, &token, beat(30)).unwrap();
    assert_eq!(w.kernel.state().leases().of(task), Some(common::T0 + 30));
    // Before it runs out, nothing expires; a heartbeat pushes it on.
    w.now += 20;
    assert!(expire(&mut w).is_empty());
    w.submit(worker, &token, beat(30)).unwrap();
    w.now += 20;
    assert!(expire(&mut w).is_empty(), "the heartbeat extended it");
    // The worker stops beating: the lease runs out and the task is queued again.
    w.now += 15;
    let events = expire(&mut w);
    assert!(
        matches!(events.as_slice(), [KernelEvent::TaskLeaseExpired { task: t, .. }] if *t == task)
    );
    let state = w.kernel.state();
    assert_eq!(state.task(task).unwrap().state, TaskState::Queued);
    assert!(state.leases().of(task).is_none());
    assert_replays(&w);
    // Another claim (the worker restarted) and completion end it for good.
    w.submit(
        worker,
        &token,
        Operation::ClaimTask {
            agent: worker,
            task,
        },
    )
    .unwrap();
    w.submit(worker, &token, beat(5)).unwrap();
    let done = toka_types::TaskOutcome::success("done").unwrap();
    w.submit(
        worker,
        &token,
        Operation::CompleteTask {
            agent: worker,
            task,
            outcome: done,
        },
    )
    .unwrap();
    assert!(w.kernel.state().leases().is_empty());
    w.now += 60;
    assert!(expire(&mut w).is_empty());
    assert!(
        decide_expire_leases(
            w.kernel.state(),
            &Context::new(Timestamp::from_unix_secs(w.now), 1)
        )
        .is_err()
    );
    assert_replays(&w);
}
