#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
//! The planner loop's own cost per step, without the model's latency: a scripted
//! provider answers at once, each step is one recorded answer plus one tool call
//! (fs.read) on a durable SQLite log, and the time between two consecutive requests
//! is one step. The same run measures a bare HTTP round trip to the same provider;
//! the overhead is the step's median minus the round trip's median.
//!
//! `cargo bench -p toka-planner --bench step_overhead` (three runs; medians).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use toka_planner::Planner;
use toka_runtime::host::host;

const STEPS: usize = 60;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

async fn one_run() -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (rt, _executor) = node(dir.path()).await;
    std::fs::write(dir.path().join("workspace/notes.txt"), "a short note").unwrap();
    let mut turns: Vec<Turn> = (0..STEPS)
        .map(|_| calls(&[("fs_read", r#"{"path": "notes.txt"}"#)]))
        .collect();
    turns.push(calls(&[("toka_finish", r#"{"answer": "done"}"#)]));
    // The baseline first, against its own provider: HTTP round trips alone.
    let (probe_url, _, _probe) = provider(vec![calls(&[("x", "{}")]); 200]).await;
    let http = reqwest::Client::new();
    let body = serde_json::json!({"model": "m", "messages": [{"role": "system", "content": "x"}], "tools": []});
    let mut trips = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = http
            .post(format!("{probe_url}/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await.unwrap();
        trips.push(t.elapsed());
    }
    let (url, script, _server) = provider(turns).await;
    let mut perms = PLANNER_PERMISSIONS.to_vec();
    perms.push("tool:fs.read");
    let (planner, token) = agent(&rt, "bench", &perms).await;
    let task = schedule(&rt, planner, "read the note many times").await;
    let mut settings = config(&url, 5000);
    settings.max_steps = 100;
    let _hosted = host(
        &rt,
        planner,
        token,
        Arc::new(Planner::new(settings).unwrap()),
        0,
    );
    assert_eq!(outcome(&rt, task).await, Ok("done".into()));
    let arrivals = script.lock().unwrap().arrivals.clone();
    let steps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    rt.shutdown().await;
    (median(steps), median(trips))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut overheads = Vec::new();
    for run in 1..=3 {
        let (step, trip) = runtime.block_on(one_run());
        let overhead = step.saturating_sub(trip);
        println!(
            "run {run}: step median {:.3} ms, HTTP round trip median {:.3} ms, planner overhead {:.3} ms",
            step.as_secs_f64() * 1e3,
            trip.as_secs_f64() * 1e3,
            overhead.as_secs_f64() * 1e3
        );
        overheads.push(overhead);
    }
    println!(
        "planner overhead per step (record + decide + tool call, SQLite, fsync on): median of 3 runs {:.3} ms",
        median(overheads).as_secs_f64() * 1e3
    );
}
