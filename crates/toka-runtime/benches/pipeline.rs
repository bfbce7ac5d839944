#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
//! End-to-end acknowledged messages per second and latency through the real runtime,
//! with 1, 8 and 64 submitters, on memory, SQLite (durable: WAL, synchronous=FULL) and
//! PostgreSQL; three nodes on one PostgreSQL log, with the same 63 submitters split
//! between them and with 64 each; then recovery speed of a log with no snapshot.
//!
//! Run: `cargo bench -p toka-runtime --bench pipeline` (set `TOKA_BENCH_MESSAGES` and
//! `TOKA_BENCH_RECOVERY_EVENTS` to change the sizes). Each figure is the median of
//! three runs on a fresh store.

use std::sync::Arc;
use std::time::Instant;

use toka_auth::{KeySet, SigningKey};
use toka_runtime::{Runtime, RuntimeOptions, load};
use toka_store_core::StorageBackend;
use toka_store_memory::MemoryStore;
use toka_store_postgres::PostgresStore;
use toka_store_sqlite::SqliteStore;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options() -> RuntimeOptions {
    let mut o = RuntimeOptions::default();
    o.snapshots.every_events = 0;
    o.snapshots.on_shutdown = false;
    o
}

async fn fresh(driver: &str, dir: &std::path::Path) -> Arc<dyn StorageBackend> {
    match driver {
        "memory" => Arc::new(MemoryStore::new()),
        _ => Arc::new(SqliteStore::open(dir.join("toka.db")).await.unwrap()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A PostgreSQL schema of this process's own for the run named `tag`.
fn schema(tag: &str) -> String {
    format!("toka_bench_{tag}_{}", std::process::id())
}

/// Three nodes on one PostgreSQL log, `per_node` submitters each, `messages` in all:
/// the median total rate and the median share of the slowest node.
fn three_nodes(
    rt: &tokio::runtime::Runtime,
    pg_url: &str,
    keys: &KeySet,
    per_node: usize,
    messages: u64,
    runs: usize,
) -> (f64, f64) {
    let mut totals = Vec::new();
    for run in 0..runs {
        let total = rt.block_on(async {
            let name = schema(&format!("x3_{per_node}_{run}"));
            let mut nodes = Vec::new();
            for _ in 0..3 {
                let store = PostgresStore::open(pg_url, &name).await.unwrap();
                nodes.push(
                    Runtime::with_store(Arc::new(store), keys.clone(), options())
                        .await
                        .unwrap(),
                );
            }
            let started = Instant::now();
            let runs = futures::future::join_all(
                nodes
                    .iter()
                    .map(|n| load::run(n, per_node, messages / 3, |_| {})),
            )
            .await;
            let seconds = started.elapsed().as_secs_f64();
            // Each node's rate while all three ran: the slowest one's share of the
            // total is the starvation figure.
            let reports: Vec<_> = runs.into_iter().map(|r| r.unwrap()).collect();
            let acked: u64 = reports.iter().map(|r| r.acknowledged).sum();
            let rates: Vec<f64> = reports.iter().map(|r| r.per_second).collect();
            let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let rate = (acked as f64 / seconds, slowest / rates.iter().sum::<f64>());
            for n in &nodes {
                n.shutdown().await;
            }
            PostgresStore::open(pg_url, &name)
                .await
                .unwrap()
                .drop_schema()
                .await
                .unwrap();
            rate
        });
        totals.push(total);
    }
    let (rates, shares): (Vec<f64>, Vec<f64>) = totals.into_iter().unzip();
    (median(rates), median(shares))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs benches with no args: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let messages = env("TOKA_BENCH_MESSAGES", if quick { 2_000 } else { 100_000 });
    let recovery_events = env(
        "TOKA_BENCH_RECOVERY_EVENTS",
        if quick { 2_000 } else { 1_000_000 },
    );
    let runs = if quick { 1 } else { 3 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = KeySet::new(SigningKey::hs256("bench", &[5u8; 32]).unwrap());
    println!(
        "{:<8} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9}",
        "driver", "submitters", "acked msg/s", "p50 ms", "p99 ms", "max ms", "commits"
    );
    // TOKA_BENCH_ONLY=postgres or =recovery runs only that part.
    let only = std::env::var("TOKA_BENCH_ONLY").unwrap_or_default();
    let only_postgres = only == "postgres";
    let only_recovery = only == "recovery";
    for driver in ["memory", "sqlite"].into_iter().filter(|_| only.is_empty()) {
        for submitters in [1usize, 8, 64] {
            let mut reports = Vec::new();
            for _ in 0..runs {
                let dir = tempfile::tempdir().unwrap();
                let report = rt.block_on(async {
                    let store = fresh(driver, dir.path()).await;
                    let runtime = Runtime::with_store(store, keys.clone(), options())
                        .await
                        .unwrap();
                    let n = if driver == "sqlite" && submitters == 1 {
                        messages / 20
                    } else {
                        messages
                    };
                    let r = load::run(&runtime, submitters, n, |_| {}).await.unwrap();
                    runtime.shutdown().await;
                    r
                });
                reports.push(report);
            }
            let m = |f: fn(&load::LoadReport) -> f64| median(reports.iter().map(f).collect());
            println!(
                "{:<8} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9.0}",
                driver,
                submitters,
                m(|r| r.per_second),
                m(|r| r.p50_ms),
                m(|r| r.p99_ms),
                m(|r| r.max_ms),
                m(|r| r.commits as f64)
            );
        }
    }
    // PostgreSQL (durable, shared): one node, then three nodes on one log.
    let pg_url = std::env::var("TOKA_POSTGRES_URL").unwrap_or_else(|_| {
        format!(
            "host=127.0.0.1 port=5432 dbname=test user={}",
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        )
    });
    if only_recovery {
        // PostgreSQL skipped on request.
    } else if rt
        .block_on(tokio_postgres::connect(&pg_url, tokio_postgres::NoTls))
        .is_ok()
    {
        for submitters in [1usize, 8, 64] {
            let mut reports = Vec::new();
            for run in 0..runs {
                let report = rt.block_on(async {
                    let store =
                        PostgresStore::open(&pg_url, &schema(&format!("{submitters}_{run}")))
                            .await
                            .unwrap();
                    let runtime =
                        Runtime::with_store(Arc::new(store.clone()), keys.clone(), options())
                            .await
                            .unwrap();
                    let n = if submitters == 1 {
                        messages / 20
                    } else {
                        messages
                    };
                    let r = load::run(&runtime, submitters, n, |_| {}).await.unwrap();
                    runtime.shutdown().await;
                    store.drop_schema().await.unwrap();
                    r
                });
                reports.push(report);
            }
            let m = |f: fn(&load::LoadReport) -> f64| median(reports.iter().map(f).collect());
            println!(
                "{:<8} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>9.0}",
                "postgres",
                submitters,
                m(|r| r.per_second),
                m(|r| r.p50_ms),
                m(|r| r.p99_ms),
                m(|r| r.max_ms),
                m(|r| r.commits as f64)
            );
        }
        // The same 63 submitters split over three nodes, then three nodes as loaded as
        // the one above: the first is bounded by a node's batch (its own 21 submitters)
        // per turn at the head, the second says whether adding nodes costs throughput.
        for per_node in [21usize, 64] {
            let (rate, share) = three_nodes(&rt, &pg_url, &keys, per_node, messages, runs);
            println!(
                "{:<8} {:>10} {:>12.0}   (3 nodes x {per_node} submitters, one shared log; slowest node {:.0}% of the total)",
                "postgres",
                3 * per_node,
                rate,
                100.0 * share
            );
        }
    } else {
        println!("postgres: no server at {pg_url}; skipped (set TOKA_POSTGRES_URL)");
    }

    if only_postgres {
        return;
    }
    // Recovery: build a log of `recovery_events` events on SQLite, then replay it.
    let dir = tempfile::tempdir().unwrap();
    let (events, seconds) = rt.block_on(async {
        let store = fresh("sqlite", dir.path()).await;
        let runtime = Runtime::with_store(store.clone(), keys.clone(), options())
            .await
            .unwrap();
        load::run(&runtime, 64, recovery_events, |_| {})
            .await
            .unwrap();
        runtime.shutdown().await;
        let head = store.head().await.unwrap().seq;
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let r = toka_runtime::recovery::recover(store.as_ref(), &Default::default(), |_| {})
                .await
                .unwrap();
            assert_eq!(r.head.seq, head);
            times.push(started.elapsed().as_secs_f64());
        }
        (head, median(times))
    });
    println!(
        "recovery (sqlite, no snapshot): {events} events in {seconds:.2} s = {:.0} events/s",
        events as f64 / seconds
    );
}
