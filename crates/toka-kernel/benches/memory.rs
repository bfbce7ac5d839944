#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
//! Resident memory of the kernel's state: bytes per agent and per task, for 100 000
//! agents and 1 000 000 tasks (the size the performance targets name), measured as the growth
//! of this process's resident set (`/proc/self/statm`) while the state is built.
//!
//! Task descriptions are one byte, so "per task" is what a task costs beyond its
//! description. Per task: the state as built, and after its first digest (which keeps
//! no hash per entry, see `digest::map`). Then every task is claimed: what the digest
//! keeps while every entry changed since it was last asked for (the worst case: a hash
//! per changed entry), and after the next digest, which lets it go (the allocator may
//! keep the pages). Last, the size of one more copy of the whole state (agents
//! included, not digested), which a runtime also holds: the writer's kernel beside the
//! readers' committed state.
//!
//! Also times the invariant check recovery runs on the whole state.
//!
//! Run: `cargo bench -p toka-kernel --bench memory` (Linux; takes about a minute).
//! `TOKA_BENCH_AGENTS` and `TOKA_BENCH_TASKS` change the sizes.

mod common;

use common::{T0, World, world};
use toka_auth::{KeySet, SigningKey};
use toka_kernel::{Context, Kernel};
use toka_types::{Message, Operation, TaskSpec, Timestamp};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test` runs benches without --bench: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let agents = env("TOKA_BENCH_AGENTS", if quick { 1_000 } else { 100_000 });
    let tasks = env("TOKA_BENCH_TASKS", if quick { 10_000 } else { 1_000_000 });
    let keys = KeySet::new(SigningKey::hs256("bench", &[9u8; 32]).unwrap());

    // Filled before measuring, so its pages are not counted as the state's.
    let mut task_ids = vec![toka_types::EntityId::from_u128(0); tasks];
    let before = resident_bytes();
    let World {
        mut kernel,
        root,
        token,
        claims,
        agents: ids,
    } = world(Kernel::new(keys.clone()), &keys, agents);
    let with_agents = resident_bytes();

    let task = TaskSpec::new("t").unwrap();
    let now = Timestamp::from_unix_secs(T0 + 1);
    for (i, id) in task_ids.iter_mut().enumerate() {
        let op = Operation::ScheduleAgentTask {
            agent: ids[i % ids.len()],
            task: task.clone(),
        };
        let ctx = Context::new(now, kernel.state().next_seq());
        let events = kernel
            .submit_verified(&Message::new(root, token.clone(), op), &claims, &ctx)
            .unwrap();
        let Some(toka_types::KernelEvent::TaskScheduled { task, .. }) = events.first() else {
            panic!("scheduling produced {events:?}");
        };
        *id = *task;
    }
    let with_tasks = resident_bytes();
    let digest = kernel.state().digest();
    let digested = resident_bytes();
    for (i, task) in task_ids.iter().enumerate() {
        let op = Operation::ClaimTask {
            agent: ids[i % ids.len()],
            task: *task,
        };
        let ctx = Context::new(now, kernel.state().next_seq());
        kernel
            .submit_verified(&Message::new(root, token.clone(), op), &claims, &ctx)
            .unwrap();
    }
    let changed = resident_bytes();
    let redigested = kernel.state().digest();
    let after_redigest = resident_bytes();
    let copy = kernel.state().clone();
    let copied = resident_bytes();

    let per = |bytes: u64, n: usize| bytes as f64 / n.max(1) as f64;
    let task_growth = |from: u64, to: u64| per(to.saturating_sub(from), tasks);
    println!("state of {agents} agents and {tasks} tasks (digest {digest})");
    let rows = [
        (
            "per agent",
            per(with_agents.saturating_sub(before), agents),
            "",
        ),
        ("per task", task_growth(with_agents, with_tasks), ""),
        ("per task, digested", task_growth(with_agents, digested), ""),
        (
            "every task claimed",
            task_growth(digested, changed),
            " more per task, the hashes kept for the next digest included",
        ),
        (
            "after that digest",
            task_growth(digested, after_redigest),
            " more per task",
        ),
        (
            "a second copy",
            task_growth(after_redigest, copied),
            " per task, agents included (a runtime holds two)",
        ),
    ];
    for (what, bytes, note) in rows {
        println!("  {what:<20} {bytes:>8.0} B{note}");
    }
    println!(
        "  resident in all      {:>8.1} MiB (with the copy)",
        copied as f64 / 1048576.0
    );
    // What every recovery and `toka verify` run once on the whole state: linear in it
    // (every agent here is a child of the root, the case a quadratic check hid in).
    let checking = std::time::Instant::now();
    copy.check_invariants().unwrap();
    println!(
        "  invariants checked   {:>8.1} ms (the whole state, as recovery does)",
        checking.elapsed().as_secs_f64() * 1e3
    );
    assert_ne!(redigested, digest, "claiming changed every task");
    assert_eq!(
        copy.digest(),
        redigested,
        "a copy, hashed from scratch, hashes alike"
    );
}
