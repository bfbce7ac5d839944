//! The crash test: a child process appends batches in a loop (every other one through
//! `append_sealed`, the runtime's path) and reports each one it is about to append and
//! each acknowledgement; the parent kills it with SIGKILL at a
//! random moment, reopens the store and checks that
//!
//! 1. every acknowledged batch is present, with the acknowledged digest;
//! 2. the head is the end of a batch the child tried (no partial batch is visible);
//! 3. `verify` passes over the whole log;
//! 4. appending continues from the head.
//!
//! The same test binary is both: [`crash_main`] runs the child when `TOKA_CRASH_CHILD`
//! names a folder. The random moments come from a seed printed at the start; set
//! `TOKA_CRASH_SEED` to replay a run.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backend::StorageBackend as _;
use crate::hash::Hash32;
use crate::testkit::{Harness, batch, sealed_batch};
use crate::verify::{Verdict, verify};

const CHILD_ENV: &str = "TOKA_CRASH_CHILD";
const SEED_ENV: &str = "TOKA_CRASH_SEED";

/// Entry point of a `harness = false` test target: runs `kills` crash rounds on
/// `H`'s store, or the child loop when invoked as the child. Prints
/// `crash: N passed, 0 failed` and exits 0 when every round held; panics otherwise.
#[allow(clippy::print_stdout)]
pub fn crash_main<H: Harness>(kills: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        runtime.block_on(child::<H>(Path::new(&dir)));
        return;
    }
    if let Some(reason) = runtime.block_on(H::skip_reason()) {
        println!("\n*** SKIPPED crash test: {reason} ***\n");
        return;
    }
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("crash test: {kills} kills, seed {seed} (replay with {SEED_ENV}={seed})");
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut rng = seed;
    let mut acked_total = 0u64;
    let mut head = 0;
    for round in 1..=kills {
        let wait = Duration::from_millis(30 + next(&mut rng) % 400);
        let (acked, tried) = run_child(dir.path(), wait);
        head = runtime.block_on(check_after_crash::<H>(
            dir.path(),
            &acked,
            &tried,
            head,
            round,
        ));
        acked_total += acked.len() as u64;
        println!(
            "round {round}: killed after {wait:?}, {} batches acknowledged, head {}",
            acked.len(),
            head
        );
    }
    println!("crash: {kills} passed, 0 failed ({acked_total} acknowledged batches checked)");
}

fn next(state: &mut u64) -> u64 {
    // xorshift64*: reproducible from the printed seed.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// (seq, digest) of each acknowledged batch's last record, and the last seq of each
/// batch the child was about to append.
type Acked = Vec<(u64, String)>;

fn run_child(dir: &Path, wait: Duration) -> (Acked, Vec<u64>) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().expect("lines").push(line);
            }
        })
    };
    std::thread::sleep(wait);
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    reader.join().expect("reader thread");
    let lines = lines.lock().expect("lines");
    let mut acked = Vec::new();
    let mut tried = Vec::new();
    for line in lines.iter() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["try", last] => tried.push(last.parse().expect("seq")),
            ["ack", seq, digest] => acked.push((seq.parse().expect("seq"), digest.to_string())),
            _ => {}
        }
    }
    (acked, tried)
}

async fn check_after_crash<H: Harness>(
    dir: &Path,
    acked: &Acked,
    tried: &[u64],
    parent_head: u64,
    round: u32,
) -> u64 {
    let store = H::open(dir).await.expect("reopen after the kill");
    let head = store.head().await.expect("head");
    if let Some((seq, digest)) = acked.last() {
        assert!(
            head.seq >= *seq,
            "round {round}: acknowledged seq {seq} lost (head {})",
            head.seq
        );
        let record = &store.read_range(*seq, 1).await.expect("read")[0];
        assert_eq!(
            &record.header.digest.to_string(),
            digest,
            "round {round}: acknowledged record {seq} changed"
        );
    }
    // The head is where the parent left it last round, or the end of a batch the child
    // tried (acknowledged or not: a batch may be durable before its ack was printed).
    let boundary = head.seq == parent_head || tried.contains(&head.seq);
    assert!(
        boundary,
        "round {round}: head {} is not the end of any batch (partial batch visible)",
        head.seq
    );
    match verify(&store, 1, Hash32::ZERO, None, |_| {})
        .await
        .expect("verify")
    {
        Verdict::Intact { checked, .. } => assert_eq!(checked, head.seq),
        broken => panic!("round {round}: log broken after a crash: {broken:?}"),
    }
    // Appending continues from the head.
    let more = batch(head, 2, 100);
    let new_head = store
        .append(head.seq, &more)
        .await
        .expect("append after the crash");
    assert_eq!(new_head.seq, head.seq + 2);
    new_head.seq
}

async fn child<H: Harness>(dir: &Path) {
    let store = H::open(dir).await.expect("child: open");
    let mut head = store.head().await.expect("child: head");
    let mut size = 1usize;
    let out = std::io::stdout();
    loop {
        let records = sealed_batch(head, size, 300);
        let last = head.seq + size as u64;
        {
            let mut out = out.lock();
            let _ = writeln!(out, "try {last}");
            let _ = out.flush();
        }
        let appended = match size.is_multiple_of(2) {
            true => store.append_sealed(Arc::new(records)).await,
            false => store.append(head.seq, records.records()).await,
        };
        head = appended.expect("child: append");
        {
            let mut out = out.lock();
            let _ = writeln!(out, "ack {} {}", head.seq, head.digest);
            let _ = out.flush();
        }
        size = size % 97 + 1;
    }
}
