#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]
//! Process-level crash test of the runtime on SQLite.
//!
//! A child process runs the runtime with 8 concurrent submitters and prints every
//! acknowledgement (`ack <seq> <description>`). The parent kills it with SIGKILL at a
//! random moment, ten times, and after each kill checks, on the same database, that
//!
//! * every acknowledged event is in the log, at its acknowledged `seq`;
//! * recovery (newest snapshot + tail) reaches the same state digest as a fresh replay
//!   of the whole log.
//!
//! The seed is printed; `TOKA_CRASH_SEED` replays a run.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use toka_runtime::{Runtime, RuntimeOptions};
use toka_store_core::StorageBackend;
use toka_store_sqlite::SqliteStore;
use toka_types::KernelEvent;

const CHILD: &str = "TOKA_RUNTIME_CRASH_CHILD";
const KILLS: u32 = 10;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(dir) = std::env::var(CHILD) {
        rt.block_on(child(Path::new(&dir)));
        return;
    }
    let mut seed: u64 = std::env::var("TOKA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("runtime crash test: {KILLS} kills, seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for round in 1..=KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(300 + seed % 700);
        let acks = run_child(dir.path(), wait);
        let head = rt.block_on(check(dir.path(), &acks, round));
        total += acks.len();
        println!(
            "round {round}: killed after {wait:?}, {} acks, head {head}",
            acks.len()
        );
    }
    println!("runtime crash: {KILLS} passed, 0 failed ({total} acknowledged messages checked)");
}

fn run_child(dir: &Path, wait: Duration) -> Vec<(u64, String)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    std::thread::sleep(wait);
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let lines = lines.lock().unwrap();
    lines
        .iter()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("ack"), Some(seq), Some(what)) => {
                    Some((seq.parse().unwrap(), what.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

async fn check(dir: &Path, acks: &[(u64, String)], round: u32) -> u64 {
    let store: Arc<dyn StorageBackend> =
        Arc::new(SqliteStore::open(dir.join("toka.db")).await.unwrap());
    let log = common::log(store.as_ref()).await;
    for (seq, what) in acks {
        match log.get(*seq as usize - 1) {
            Some((s, KernelEvent::TaskScheduled { spec, .. }))
                if s == seq && spec.description() == what => {}
            other => panic!(
                "round {round}: acknowledged {what:?} at seq {seq} not in the log (found {other:?})"
            ),
        }
    }
    let recovered = toka_runtime::recovery::recover(store.as_ref(), &Default::default(), |_| {})
        .await
        .unwrap();
    let fresh = common::replay(store.as_ref()).await;
    assert_eq!(
        recovered.state.digest(),
        fresh.digest(),
        "round {round}: recovery differs from a fresh replay"
    );
    assert_eq!(recovered.head.seq, log.len() as u64);
    recovered.head.seq
}

async fn child(dir: &Path) {
    let store: Arc<dyn StorageBackend> =
        Arc::new(SqliteStore::open(dir.join("toka.db")).await.unwrap());
    let mut options = RuntimeOptions::default();
    options.snapshots.every_events = 500;
    options.snapshots.on_shutdown = false;
    let rt = Runtime::with_store(store, common::keys(), options)
        .await
        .unwrap();
    let (root, token) = common::admin(&rt).await;
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let run = std::process::id();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (rt, token, out) = (rt.clone(), token.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let what = format!("p{run}-w{w}-n{n}");
                let c = rt
                    .submit(common::schedule(root, &token, root, &what))
                    .await
                    .unwrap();
                {
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ack {} {what}", c.first_seq).unwrap();
                    out.flush().unwrap();
                }
                // Keep the root's queue under its 10 000 limit across rounds.
                if n % 2 == 0 {
                    let task = match &c.events[0] {
                        KernelEvent::TaskScheduled { task, .. } => *task,
                        _ => unreachable!(),
                    };
                    let claim = toka_types::Operation::ClaimTask { agent: root, task };
                    rt.submit(toka_types::Message::new(root, token.clone(), claim))
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
