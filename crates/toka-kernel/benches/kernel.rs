#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! decide+apply throughput of `ScheduleAgentTask`, every kernel check included:
//!
//! * `unverified`: claims verified once up front (`submit_verified`);
//! * `hs256_cold`: the HS256 token verified on every message (cache disabled);
//! * `hs256_warm`: through the verified-token cache;
//! * `eddsa_cold`: the Ed25519 token verified on every message.
//!
//! One iteration schedules 10 000 tasks spread over 100 agents (so no queue fills) on
//! a fresh copy of the same kernel; criterion reports elements (messages) per second.
//! Run: `cargo bench -p toka-kernel`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
mod common;

use common::{T0, World, world};
use toka_auth::{Claims, KeySet, SigningKey, Verifier};
use toka_kernel::{Context, Kernel};
use toka_types::{Message, Operation, TaskSpec, Timestamp};

const AGENTS: usize = 100;
const MESSAGES: usize = 10_000;

struct Setup {
    kernel: Kernel,
    messages: Vec<Message>,
    claims: Claims,
}

fn setup(keys: KeySet, cache: usize) -> Setup {
    let kernel =
        Kernel::new(keys.clone()).with_verifier(Verifier::with_capacity(keys.clone(), cache));
    let World {
        kernel,
        root,
        token,
        claims,
        agents,
    } = world(kernel, &keys, AGENTS);
    let task = TaskSpec::new("summarise the incident report and file a ticket").unwrap();
    let messages = (0..MESSAGES)
        .map(|i| {
            let op = Operation::ScheduleAgentTask {
                agent: agents[i % AGENTS],
                task: task.clone(),
            };
            Message::new(root, token.clone(), op)
        })
        .collect();
    Setup {
        kernel,
        messages,
        claims,
    }
}

fn hs256() -> KeySet {
    KeySet::new(SigningKey::hs256("bench", &[9u8; 32]).unwrap())
}

fn eddsa() -> KeySet {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    KeySet::new(SigningKey::ed25519_pkcs8("bench-ed", pkcs8.as_ref()).unwrap())
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::from_unix_secs(T0 + 1);
    let mut group = c.benchmark_group("schedule");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(20);

    let base = setup(hs256(), 0);
    group.bench_function("unverified", |b| {
        b.iter_batched(
            || (base.kernel.clone(), base.messages.clone()),
            |(mut kernel, messages)| {
                for m in &messages {
                    let ctx = Context::new(now, kernel.state().next_seq());
                    kernel.submit_verified(m, &base.claims, &ctx).unwrap();
                }
                kernel
            },
            BatchSize::PerIteration,
        )
    });

    for (name, keys, cache) in [
        ("hs256_cold", hs256(), 0),
        ("hs256_warm", hs256(), 1024),
        ("eddsa_cold", eddsa(), 0),
    ] {
        let base = setup(keys, cache);
        group.bench_function(name, |b| {
            b.iter_batched(
                || (base.kernel.clone(), base.messages.clone()),
                |(mut kernel, messages)| {
                    for m in &messages {
                        let ctx = Context::new(now, kernel.state().next_seq());
                        kernel.submit(m, &ctx).unwrap();
                    }
                    kernel
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
