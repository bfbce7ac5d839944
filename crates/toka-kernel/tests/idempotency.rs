#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Idempotent retries (issue 9): a keyed message is answered once; a retry with the same
//! key and operation is `AlreadyCommitted` with the original's place, another operation
//! under the key is refused, keys are per origin, and replay remembers the same keys.

mod common;

use common::World;
use toka_kernel::{Kernel, KernelError};
use toka_types::{KernelEvent, Message, Operation, TaskSpec};

fn schedule(agent: toka_types::EntityId, what: &str) -> Operation {
    Operation::ScheduleAgentTask {
        agent,
        task: TaskSpec::new(what).unwrap(),
    }
}

fn keyed(w: &mut World, op: Operation, key: &str) -> Result<Vec<KernelEvent>, KernelError> {
    let ctx = w.ctx();
    let message = Message::new(w.root, w.root_token.clone(), op).with_idempotency_key(key);
    let events = w.kernel.submit(&message, &ctx)?;
    w.log.extend(events.iter().cloned());
    Ok(events)
}

#[test]
fn a_key_is_answered_once_and_remembered_through_replay() {
    let mut w = World::new();
    let root = w.root;
    let first_seq = w.kernel.state().next_seq();
    let events = keyed(&mut w, schedule(root, "once"), "k-1").unwrap();
    assert_eq!(events.len(), 2);
    let KernelEvent::IdempotencyKeyRecorded(record) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (record.first_seq, record.events, record.key.as_str()),
        (first_seq, 1, "k-1")
    );

    let before = w.kernel.state().digest();
    assert_eq!(
        keyed(&mut w, schedule(root, "once"), "k-1").unwrap_err(),
        KernelError::AlreadyCommitted {
            first_seq,
            events: 1
        }
    );
    assert_eq!(
        keyed(&mut w, schedule(root, "something else"), "k-1").unwrap_err(),
        KernelError::IdempotencyKeyReused {
            key: "k-1".into(),
            first_seq
        }
    );
    assert_eq!(w.kernel.state().digest(), before, "retries wrote nothing");
    // Another key, or no key, is a new message.
    keyed(&mut w, schedule(root, "once"), "k-2").unwrap();
    let root_token = w.root_token.clone();
    w.submit(w.root, &root_token, schedule(root, "once"))
        .unwrap();
    // Keys are per origin: another agent may use k-1.
    let other = w.spawn(w.root, "other");
    let token = w.token(other, toka_auth::permissions::ALL, None);
    let ctx = w.ctx();
    let message = Message::new(
        other,
        token,
        Operation::ScheduleAgentTask {
            agent: other,
            task: TaskSpec::new("once").unwrap(),
        },
    )
    .with_idempotency_key("k-1");
    let events = w.kernel.submit(&message, &ctx).unwrap();
    w.log.extend(events);

    // Replay of the log remembers the same keys: the same retry gets the same answer.
    let mut replayed = Kernel::new(w.keys.clone());
    for event in &w.log {
        replayed.apply(event);
    }
    assert_eq!(
        replayed.state().idempotency(),
        w.kernel.state().idempotency()
    );
    let record = replayed.state().idempotency().get(w.root, "k-1").unwrap();
    assert_eq!(record.first_seq, first_seq);
    assert_eq!(
        record.request_hash,
        toka_kernel::request_hash(&schedule(root, "once"))
    );
}

#[test]
fn keys_are_bounded() {
    let mut w = World::new();
    let root = w.root;
    let ctx = w.ctx();
    let long = "k".repeat(toka_types::limits::MAX_IDEMPOTENCY_KEY_BYTES + 1);
    let message =
        Message::new(w.root, w.root_token.clone(), schedule(root, "x")).with_idempotency_key(long);
    assert!(matches!(
        w.kernel.submit(&message, &ctx),
        Err(KernelError::Invalid(_))
    ));
}
