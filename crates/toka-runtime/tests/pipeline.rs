#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The commit pipeline end to end: concurrency, group commit, ordering, restarts,
//! back-pressure, rate limits, snapshots and recovery.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use toka_runtime::{RuntimeError, SubmitError};
use toka_store_core::StorageBackend;
use toka_store_memory::MemoryStore;
use toka_store_sqlite::SqliteStore;
use toka_types::KernelEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_submitters_on_sqlite_keep_order_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toka.db");
    let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let rt = start(store.clone(), options()).await;
    let root = rt.root().unwrap();
    let mut agents = Vec::new();
    for i in 0..32 {
        let agent = spawn(&rt, root, &format!("submitter-{i}")).await;
        let token = child_token(&rt, agent, &["task:schedule"]).await;
        agents.push((agent, token));
    }
    let mut tasks = Vec::new();
    for (i, (agent, token)) in agents.clone().into_iter().enumerate() {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..1000 {
                let c = rt
                    .submit(schedule(agent, &token, agent, &format!("{i}:{n}")))
                    .await
                    .unwrap();
                acked.push(c.first_seq);
            }
            acked
        }));
    }
    let mut acked_seqs = Vec::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a submitter's acks are in its order"
        );
        acked_seqs.extend(seqs);
    }
    assert_eq!(acked_seqs.len(), 32_000);

    // The log holds exactly the acknowledged events, each submitter's in its order.
    let log = log(store.as_ref()).await;
    let mut next_n: HashMap<usize, usize> = HashMap::new();
    let mut scheduled = 0;
    for (seq, event) in &log {
        if let KernelEvent::TaskScheduled { spec, .. } = event {
            let (i, n) = spec.description().split_once(':').unwrap();
            let (i, n): (usize, usize) = (i.parse().unwrap(), n.parse().unwrap());
            assert_eq!(
                n,
                *next_n.get(&i).unwrap_or(&0),
                "submitter {i} out of order at seq {seq}"
            );
            next_n.insert(i, n + 1);
            scheduled += 1;
        }
    }
    assert_eq!(scheduled, 32_000);
    let mut acked_sorted = acked_seqs.clone();
    acked_sorted.sort_unstable();
    acked_sorted.dedup();
    assert_eq!(acked_sorted.len(), 32_000);
    let batches = rt.metrics().snapshot().batches;
    assert!(
        batches < 32_000,
        "group commit: {batches} appends for 32 000 messages"
    );

    let digest = rt.read(|s| s.digest());
    rt.shutdown().await;
    drop(rt);
    drop(store);
    let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let rt = start(store.clone(), options()).await;
    assert_eq!(rt.read(|s| s.digest()), digest);
    assert_eq!(replay(store.as_ref()).await.digest(), digest);
}

#[tokio::test]
async fn rejected_messages_write_nothing_and_hand_the_message_back() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let rt = start(store.clone(), options()).await;
    let root = rt.root().unwrap();
    let worker = spawn(&rt, root, "w").await;
    let token = child_token(&rt, worker, &["observation:emit"]).await;
    let head = rt.head();
    let refused = rt
        .submit(schedule(worker, &token, worker, "not allowed"))
        .await
        .unwrap_err();
    assert!(matches!(
        refused.error,
        SubmitError::Rejected(toka_kernel::KernelError::PermissionDenied { .. })
    ));
    assert_eq!(refused.message.unwrap().origin, worker);
    assert_eq!(rt.head(), head);
    assert_eq!(
        rt.metrics().snapshot().rejections.get("permission_denied"),
        Some(&1)
    );
}

#[tokio::test]
async fn rate_limit_refuses_and_writes_nothing() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let mut o = options();
    o.rate_limit.per_second = 1;
    o.rate_limit.burst = 5;
    let rt = start(store.clone(), o).await;
    let (root, token) = admin(&rt).await;
    let mut limited = 0;
    for n in 0..10 {
        match rt
            .submit(schedule(root, &token, root, &format!("t{n}")))
            .await
        {
            Ok(_) => {}
            Err(r) => {
                assert!(
                    matches!(r.error, SubmitError::RateLimited { .. }),
                    "{:?}",
                    r.error
                );
                limited += 1;
            }
        }
    }
    assert!(limited >= 4, "{limited} limited");
    assert_eq!(rt.head().seq, 2 + (10 - limited) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_from_one_sees_every_event_once_in_order_while_writers_run() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let rt = start(store.clone(), options()).await;
    let (root, token) = admin(&rt).await;
    // Some history before the subscription starts.
    for n in 0..300 {
        rt.submit(schedule(root, &token, root, &format!("before {n}")))
            .await
            .unwrap();
    }
    let mut sub = rt.subscribe(1);
    let mut writers = Vec::new();
    for w in 0..8 {
        let (rt, token) = (rt.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..500 {
                rt.submit(schedule(root, &token, root, &format!("w{w} {n}")))
                    .await
                    .unwrap();
            }
        }));
    }
    // A slow consumer at first, so the bus laps it and it must go back to the store.
    let mut expected = 1;
    let final_head = 2 + 300 + 8 * 500;
    while expected <= final_head {
        let record = sub.next().await.unwrap().unwrap();
        assert_eq!(record.header.seq, expected, "gap or duplicate");
        expected += 1;
        if expected < 200 {
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(rt.head().seq, final_head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let store: Arc<dyn StorageBackend> = Arc::new(Hooked {
        inner: MemoryStore::new(),
        hook: Gate(gate.clone()),
    });
    gate.add_permits(2); // the genesis and the admin token's issuance
    let mut o = options();
    o.pipeline.queue_capacity = 1;
    o.pipeline.max_batch = 1;
    o.pipeline.busy_timeout_ms = 50;
    let rt = start(store, o).await;
    let (root, token) = admin(&rt).await;
    let first = tokio::spawn({
        let (rt, token) = (rt.clone(), token.clone());
        async move {
            rt.submit(schedule(root, &token, root, "held in append"))
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // The writer decides the next batch while one is in flight (and then takes no
    // more): the second is decided, the third waits in the queue.
    let second = tokio::spawn({
        let (rt, token) = (rt.clone(), token.clone());
        async move {
            rt.submit(schedule(root, &token, root, "decided, waits for the first"))
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let third = tokio::spawn({
        let (rt, token) = (rt.clone(), token.clone());
        async move {
            rt.submit(schedule(root, &token, root, "waits in the queue"))
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let fourth = rt
        .submit(schedule(root, &token, root, "no room"))
        .await
        .unwrap_err();
    assert!(
        matches!(fourth.error, SubmitError::Busy),
        "{:?}",
        fourth.error
    );
    assert_eq!(fourth.message.unwrap().origin, root);
    assert!(
        !second.is_finished(),
        "answered before the batch under it was written"
    );
    gate.add_permits(10);
    let first = first.await.unwrap().unwrap();
    let second = second.await.unwrap().unwrap();
    third.await.unwrap().unwrap();
    assert_eq!(
        second.first_seq,
        first.first_seq + 1,
        "decided after the first"
    );
}

#[tokio::test]
async fn snapshots_speed_up_recovery_and_agree_with_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toka.db");
    let mut o = options();
    o.snapshots.every_events = 100;
    o.snapshots.keep = 2;
    let settings = toka_runtime::checkpoint::CheckpointSettings {
        key: Arc::new(
            toka_runtime::checkpoint::CheckpointKey::load_or_create(&dir.path().join("ck.json"))
                .unwrap(),
        ),
        file: dir.path().join("checkpoints.jsonl"),
        every_events: 0,
        every_secs: 0,
    };
    o.checkpoints = Some(settings.clone());
    let digest = {
        let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let rt = start(store.clone(), o.clone()).await;
        let (root, token) = admin(&rt).await;
        for n in 0..550 {
            rt.submit(schedule(root, &token, root, &format!("t{n}")))
                .await
                .unwrap();
        }
        let d = rt.read(|s| s.digest());
        rt.shutdown().await;
        assert_eq!(
            store.snapshot_seqs().await.unwrap().len(),
            2,
            "old snapshots pruned"
        );
        d
    };
    let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
    // With the signed checkpoints (one per snapshot), the newest snapshot is a short cut.
    let trusted = settings.trusted(store.as_ref()).await.unwrap();
    assert!(trusted.len() >= 5, "{} checkpoints", trusted.len());
    let recovered = toka_runtime::recovery::recover_with(
        store.as_ref(),
        &Default::default(),
        &trusted,
        true,
        |_| {},
    )
    .await
    .unwrap();
    assert!(recovered.from_snapshot.is_some_and(|s| s >= 500));
    assert_eq!(recovered.state.digest(), digest);
    // Without them the snapshot is only checked against a full replay, never trusted.
    let unchecked = toka_runtime::recovery::recover(store.as_ref(), &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(unchecked.from_snapshot, None);
    assert_eq!(unchecked.state.digest(), digest);
    assert_eq!(replay(store.as_ref()).await.digest(), digest);
}

/// Stores snapshots only once released; says when one is waiting.
struct HeldSnapshots {
    waiting: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl StoreHook for Arc<HeldSnapshots> {
    async fn put_snapshot(
        &self,
        inner: &MemoryStore,
        snapshot: &toka_store_core::Snapshot,
    ) -> Result<(), toka_store_core::StoreError> {
        self.waiting.notify_one();
        let permit = tokio::time::timeout(Duration::from_secs(30), self.release.acquire())
            .await
            .expect("the test releases the snapshot")
            .unwrap();
        permit.forget();
        inner.put_snapshot(snapshot).await
    }
}

/// A snapshot of a large state takes long to encode and write; the writer must go on
/// committing meanwhile, and the snapshot must be the state at the `seq` it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_commits_while_a_snapshot_is_being_written() {
    let hook = Arc::new(HeldSnapshots {
        waiting: tokio::sync::Notify::new(),
        release: tokio::sync::Semaphore::new(0),
    });
    let inner = MemoryStore::new();
    let store: Arc<dyn StorageBackend> = Arc::new(Hooked {
        inner: inner.clone(),
        hook: hook.clone(),
    });
    let mut o = options();
    o.snapshots.every_events = 20;
    let rt = start(store.clone(), o).await;
    let (root, token) = admin(&rt).await;
    let waiting = hook.waiting.notified();
    for n in 0..25 {
        rt.submit(schedule(root, &token, root, &format!("before {n}")))
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("a snapshot was due after 20 events");
    let snapshot_seq_at_most = rt.head().seq;
    // The snapshot is held: commits go on regardless.
    for n in 0..30 {
        tokio::time::timeout(
            Duration::from_secs(5),
            rt.submit(schedule(root, &token, root, &format!("during {n}"))),
        )
        .await
        .expect("committed while the snapshot is held")
        .unwrap();
    }
    assert!(store.latest_snapshot().await.unwrap().is_none());
    hook.release.add_permits(100);
    let snapshot = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(s) = store.latest_snapshot().await.unwrap() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("stored once released");
    assert!(
        (20..=snapshot_seq_at_most).contains(&snapshot.seq),
        "{}",
        snapshot.seq
    );
    // It is the state at its seq, and carries that state's digest.
    let mut state = toka_kernel::WorldState::new();
    for (_, e) in log(&inner)
        .await
        .iter()
        .take_while(|(s, _)| *s <= snapshot.seq)
    {
        toka_kernel::apply(&mut state, e, &Default::default());
    }
    let image = toka_runtime::recovery::decode_image(snapshot.seq, &snapshot.state).unwrap();
    assert_eq!(image.applied(), snapshot.seq);
    assert_eq!(image.digest(), state.digest());
    assert_eq!(snapshot.state_digest.as_bytes(), state.digest().as_bytes());
    rt.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_from_before_digest_v3_still_loads_and_a_false_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toka.db");
    let mut o = options();
    o.snapshots.every_events = 50;
    let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let rt = start(store.clone(), o).await;
    let (root, token) = admin(&rt).await;
    for n in 0..60 {
        rt.submit(schedule(root, &token, root, &format!("t{n}")))
            .await
            .unwrap();
    }
    let digest = rt.read(|s| s.digest());
    rt.shutdown().await;
    let mut snapshot = store.latest_snapshot().await.unwrap().unwrap();
    let state = toka_runtime::recovery::decode_image(snapshot.seq, &snapshot.state).unwrap();
    assert_eq!(snapshot.state_digest.as_bytes(), state.digest().as_bytes());
    // As an older version wrote it: the same state under the v2 digest.
    snapshot.state_digest = toka_store_core::Hash32(*state.legacy_digest_v2().as_bytes());
    store.put_snapshot(&snapshot).await.unwrap();
    let recovered = toka_runtime::recovery::recover(store.as_ref(), &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(recovered.state.digest(), digest);
    // A digest that is neither refuses to start, naming the snapshot.
    snapshot.state_digest = toka_store_core::Hash32([7; 32]);
    store.put_snapshot(&snapshot).await.unwrap();
    let Err(refused) =
        toka_runtime::recovery::recover(store.as_ref(), &Default::default(), |_| {}).await
    else {
        panic!("a snapshot with a false digest was accepted");
    };
    assert!(
        refused
            .to_string()
            .contains(&format!("snapshot at seq {}", snapshot.seq)),
        "{refused}"
    );
}

#[tokio::test]
async fn a_damaged_log_refuses_to_start_naming_the_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toka.db");
    {
        let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let rt = start(store, options()).await;
        let (root, token) = admin(&rt).await;
        for n in 0..20 {
            rt.submit(schedule(root, &token, root, &format!("t{n}")))
                .await
                .unwrap();
        }
        rt.shutdown().await;
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE events SET body = replace(body, 't7', 'tX') WHERE seq = 10",
        [],
    )
    .unwrap();
    drop(conn);
    let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let err = toka_runtime::Runtime::with_store(store, keys(), options())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::Corrupt { seq: 10, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("seq 10"), "{err}");
}

#[tokio::test]
async fn shutdown_commits_what_is_queued_then_refuses() {
    let store: Arc<dyn StorageBackend> = Arc::new(MemoryStore::new());
    let rt = start(store.clone(), options()).await;
    let (root, token) = admin(&rt).await;
    let mut pending = Vec::new();
    for n in 0..200 {
        let (rt, token) = (rt.clone(), token.clone());
        pending.push(tokio::spawn(async move {
            rt.submit(schedule(root, &token, root, &format!("t{n}")))
                .await
        }));
    }
    tokio::task::yield_now().await;
    rt.shutdown().await;
    let mut acked = 0;
    for p in pending {
        if p.await.unwrap().is_ok() {
            acked += 1;
        }
    }
    assert_eq!(
        log(store.as_ref()).await.len(),
        2 + acked,
        "every ack is in the log and nothing else (after genesis and the admin token)"
    );
    let late = rt
        .submit(schedule(root, &token, root, "late"))
        .await
        .unwrap_err();
    assert!(matches!(late.error, SubmitError::Stopped));
}

/// Waits for a permit before each append (to hold the writer).
struct Gate(Arc<tokio::sync::Semaphore>);

#[async_trait::async_trait]
impl StoreHook for Gate {
    async fn append(
        &self,
        inner: &MemoryStore,
        expected: u64,
        batch: &[toka_store_core::EventRecord],
    ) -> Result<toka_store_core::Head, toka_store_core::AppendError> {
        self.0.acquire().await.unwrap().forget();
        inner.append(expected, batch).await
    }
}

/// Issue 9: concurrent retries of one idempotency key commit once, every retry gets the
/// original answer, and after a restart (replay) the same retry still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_of_one_key_commit_once_and_replay_keeps_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toka.db");
    let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let rt = start(store.clone(), options()).await;
    let (root, token) = admin(&rt).await;
    let message = || schedule(root, &token, root, "exactly once").with_idempotency_key("job-42");
    let mut retries = Vec::new();
    for _ in 0..16 {
        let (rt, m) = (rt.clone(), message());
        retries.push(tokio::spawn(async move { rt.submit(m).await }));
    }
    let mut answers = Vec::new();
    for r in retries {
        answers.push(r.await.unwrap().unwrap());
    }
    let originals = answers.iter().filter(|c| !c.replayed).count();
    assert_eq!(originals, 1, "one commit, fifteen replays");
    assert!(
        answers
            .iter()
            .all(|c| c.first_seq == answers[0].first_seq && c.events == answers[0].events)
    );
    let scheduled = log(store.as_ref())
        .await
        .iter()
        .filter(|(_, e)| matches!(e, KernelEvent::TaskScheduled { .. }))
        .count();
    assert_eq!(scheduled, 1);
    // The same key with another body is refused and writes nothing.
    let head = rt.head();
    let other = schedule(root, &token, root, "something else").with_idempotency_key("job-42");
    let refused = rt.submit(other).await.unwrap_err();
    assert!(matches!(
        refused.error,
        SubmitError::Rejected(toka_kernel::KernelError::IdempotencyKeyReused { .. })
    ));
    assert_eq!(rt.head(), head);
    rt.shutdown().await;
    drop(rt);
    drop(store);

    let store: Arc<dyn StorageBackend> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let rt = start(store, options()).await;
    let again = rt.submit(message()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.first_seq, &again.events),
        (answers[0].first_seq, &answers[0].events)
    );
    rt.shutdown().await;
}
