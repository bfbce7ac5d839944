#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The state digest on a large state (1 000 000 tasks over 500 agents):
//!
//! * `v2_full`: the format-2 digest, one stream over the whole state (the baseline:
//!   what `GET /v1/state` cost on every call before v3);
//! * `v3_after_100_changes`: 100 more tasks scheduled, then the v3 digest, which
//!   rehashes only what those changed;
//! * `v3_unchanged`: the v3 digest asked again with nothing changed.
//!
//! Run: `cargo bench -p toka-kernel --bench digest`.

use criterion::{Criterion, criterion_group, criterion_main};
mod common;

use common::{T0, World, world};
use toka_auth::{KeySet, SigningKey};
use toka_kernel::{Context, Kernel};
use toka_types::{Message, Operation, TaskSpec, Timestamp};

const AGENTS: usize = 500;
const TASKS: usize = 1_000_000;

fn big() -> World {
    let keys = KeySet::new(SigningKey::hs256("bench", &[9u8; 32]).unwrap());
    let mut big = world(Kernel::new(keys.clone()), &keys, AGENTS);
    schedule(&mut big, TASKS);
    big
}

fn schedule(big: &mut World, n: usize) {
    let now = Timestamp::from_unix_secs(T0 + 1);
    let task = TaskSpec::new("summarise the incident report and file a ticket").unwrap();
    for _ in 0..n {
        let seq = big.kernel.state().next_seq();
        let op = Operation::ScheduleAgentTask {
            agent: big.agents[seq as usize % AGENTS],
            task: task.clone(),
        };
        let message = Message::new(big.root, big.token.clone(), op);
        big.kernel
            .submit_verified(&message, &big.claims, &Context::new(now, seq))
            .unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let mut big = big();
    assert_eq!(big.kernel.state().task_count(), TASKS);
    let mut group = c.benchmark_group("state_digest_1m_tasks");
    group.sample_size(10);
    group.bench_function("v2_full", |b| {
        b.iter(|| big.kernel.state().legacy_digest_v2())
    });
    // The first v3 digest hashes everything; later ones only what changed.
    big.kernel.state().digest();
    group.bench_function("v3_after_100_changes", |b| {
        b.iter(|| {
            schedule(&mut big, 100);
            big.kernel.state().digest()
        })
    });
    group.bench_function("v3_unchanged", |b| b.iter(|| big.kernel.state().digest()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
