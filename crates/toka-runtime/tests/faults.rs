#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fault injection: a store that fails the k-th append, before writing or after.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use common::*;
use toka_runtime::SubmitError;
use toka_store_core::{AppendError, EventRecord, Head, StorageBackend, StoreError};
use toka_store_memory::MemoryStore;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The call fails and nothing is written.
    BeforeWrite,
    /// The data is written but the call reports an error.
    AfterWrite,
}

/// Fails the `fail_at`-th append, before or after writing; with `hold`, only once a
/// permit is released.
struct Faulty {
    calls: AtomicU64,
    fail_at: u64,
    mode: Mode,
    hold: Option<Arc<tokio::sync::Semaphore>>,
}

#[async_trait]
impl StoreHook for Faulty {
    async fn append(
        &self,
        inner: &MemoryStore,
        expected: u64,
        batch: &[EventRecord],
    ) -> Result<Head, AppendError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call != self.fail_at {
            return inner.append(expected, batch).await;
        }
        if let Some(hold) = &self.hold {
            let _permit = hold.acquire().await;
        }
        if self.mode == Mode::AfterWrite {
            inner.append(expected, batch).await?;
        }
        Err(StoreError::backend("faulty", "injected I/O error").into())
    }
}

async fn run(mode: Mode) {
    // Append 1 is the genesis, 2 the admin token's issuance, then one append per
    // scheduled task; fail the 6th.
    let inner = MemoryStore::new();
    let mut bus_tail = inner.subscribe();
    let hook = Faulty {
        calls: AtomicU64::new(0),
        fail_at: 6,
        mode,
        hold: None,
    };
    let store: Arc<dyn StorageBackend> = Arc::new(Hooked {
        inner: inner.clone(),
        hook,
    });
    let rt = start(store.clone(), options()).await;
    let (root, token) = admin(&rt).await;
    let mut live = rt.subscribe(rt.head().seq + 1);
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    for n in 0..12 {
        match rt
            .submit(schedule(root, &token, root, &format!("t{n}")))
            .await
        {
            Ok(c) => acked.push(c.first_seq),
            Err(r) => {
                assert!(matches!(r.error, SubmitError::Storage(_)), "{:?}", r.error);
                assert!(r.message.is_some(), "the message is handed back");
                failed.push(n);
            }
        }
    }
    match mode {
        Mode::BeforeWrite => assert_eq!(
            failed,
            vec![3],
            "exactly the 6th append (the 4th task) failed"
        ),
        // The writer read the log back, found the batch there and acknowledged it:
        // never "nothing was written" for what was written.
        Mode::AfterWrite => assert!(failed.is_empty(), "{failed:?}"),
    }
    // The writer rebuilt its state from the log: it equals a fresh replay.
    let replayed = replay(store.as_ref()).await;
    assert_eq!(rt.read(|s| s.digest()), replayed.digest());
    let in_log = log(store.as_ref()).await.len() as u64;
    match mode {
        Mode::BeforeWrite => assert_eq!(in_log, 2 + 11),
        // The failed batch reached the log: it is a fact now, replayed like any other.
        Mode::AfterWrite => assert_eq!(in_log, 2 + 12),
    }
    match mode {
        Mode::BeforeWrite => assert_eq!(acked.len(), 11),
        Mode::AfterWrite => assert_eq!(acked.len(), 12),
    }
    // Live subscribers only ever got committed records in order, without gaps.
    let mut expected = 3;
    while expected <= in_log {
        let r = live.next().await.unwrap().unwrap();
        assert_eq!(r.header.seq, expected);
        expected += 1;
    }
    // What the store appended is exactly what acknowledged submitters were told.
    let mut stored = 0;
    while let Ok(r) = bus_tail.try_recv() {
        stored += 1;
        let acknowledged = r.header.seq <= 2 || acked.contains(&r.header.seq);
        assert!(
            acknowledged,
            "unacknowledged record {} appended",
            r.header.seq
        );
    }
    assert_eq!(stored, in_log);
}

#[tokio::test]
async fn failure_before_write_answers_errors_and_rebuilds() {
    run(Mode::BeforeWrite).await;
}

#[tokio::test]
async fn failure_after_write_answers_errors_and_rebuilds_from_what_is_there() {
    run(Mode::AfterWrite).await;
}

/// A memory store that can be switched off: every call fails while it is down, as a
/// database that restarts does.
struct Switchable {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::backend("switchable", "connection refused"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl StorageBackend for Switchable {
    fn driver(&self) -> &'static str {
        "switchable"
    }
    async fn head(&self) -> Result<Head, StoreError> {
        self.check()?;
        self.inner.head().await
    }
    async fn append(&self, expected: u64, batch: &[EventRecord]) -> Result<Head, AppendError> {
        self.check()?;
        self.inner.append(expected, batch).await
    }
    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.check()?;
        self.inner.read_range(from, limit).await
    }
    async fn read_by_id(
        &self,
        id: toka_types::EntityId,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.check()?;
        self.inner.read_by_id(id).await
    }
    async fn read_payload(
        &self,
        hash: &toka_store_core::Hash32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.read_payload(hash).await
    }
    async fn put_snapshot(&self, s: &toka_store_core::Snapshot) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_snapshot(s).await
    }
    async fn latest_snapshot(&self) -> Result<Option<toka_store_core::Snapshot>, StoreError> {
        self.check()?;
        self.inner.latest_snapshot().await
    }
    async fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        self.check()?;
        self.inner.snapshot_seqs().await
    }
    async fn prune_snapshots(&self, keep: usize) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.prune_snapshots(keep).await
    }
    async fn put_checkpoint(&self, seq: u64, checkpoint: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_checkpoint(seq, checkpoint).await
    }
    async fn checkpoints(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.checkpoints().await
    }
}

/// Issue 9: a store outage never stops the writer for good. While the store is down,
/// submissions are answered at once (`CommitUnknown` for the batch whose append failed
/// and could not be read back, `Unavailable` with a retry delay after), the runtime
/// says why it is not ready, and once the store is back it serves again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_answered_then_heals_without_a_restart() {
    let store = Arc::new(Switchable {
        inner: MemoryStore::new(),
        down: std::sync::atomic::AtomicBool::new(false),
    });
    let rt = start(store.clone(), options()).await;
    let (root, token) = admin(&rt).await;
    let mut acked = 0u64;
    for n in 0..3 {
        rt.submit(schedule(root, &token, root, &format!("before {n}")))
            .await
            .unwrap();
        acked += 1;
    }
    assert!(rt.unavailable().is_none());

    store.down.store(true, Ordering::SeqCst);
    let first = rt
        .submit(schedule(root, &token, root, "during 1"))
        .await
        .unwrap_err();
    assert!(
        matches!(first.error, SubmitError::CommitUnknown(_)),
        "{:?}",
        first.error
    );
    let second = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        rt.submit(schedule(root, &token, root, "during 2")),
    )
    .await
    .expect("answered at once, not hung")
    .unwrap_err();
    match &second.error {
        SubmitError::Unavailable { retry_after_ms, .. } => assert!(*retry_after_ms > 0),
        other => panic!("{other:?}"),
    }
    assert!(second.message.is_some(), "the message is handed back");
    assert!(rt.unavailable().unwrap().contains("connection refused"));

    store.down.store(false, Ordering::SeqCst);
    let started = std::time::Instant::now();
    loop {
        match rt.submit(schedule(root, &token, root, "after")).await {
            Ok(_) => {
                acked += 1;
                break;
            }
            Err(r) => {
                assert!(
                    matches!(r.error, SubmitError::Unavailable { .. }),
                    "{:?}",
                    r.error
                );
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(15),
                    "still unavailable after the store came back"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    assert!(rt.unavailable().is_none());
    // Nothing but the acknowledged messages is in the log, and the state is its replay.
    let in_log = log(store.as_ref()).await;
    assert_eq!(in_log.len() as u64, 2 + acked);
    assert_eq!(
        rt.read(|s| s.digest()),
        replay(store.as_ref()).await.digest()
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn a_batch_decided_on_a_failed_one_is_decided_again_and_answered_after() {
    // Appends 1 and 2 are the genesis and the admin token; the 3rd (task A) is held,
    // then fails. Task B is decided while A is in flight, on A's effects.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let store: Arc<dyn StorageBackend> = Arc::new(Hooked {
        inner: MemoryStore::new(),
        hook: Faulty {
            calls: AtomicU64::new(0),
            fail_at: 3,
            mode: Mode::BeforeWrite,
            hold: Some(Arc::clone(&release)),
        },
    });
    let rt = start(store.clone(), options()).await;
    let (root, token) = admin(&rt).await;
    let a = tokio::spawn({
        let (rt, token) = (rt.clone(), token.clone());
        async move { rt.submit(schedule(root, &token, root, "A")).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let b = tokio::spawn({
        let (rt, token) = (rt.clone(), token.clone());
        async move { rt.submit(schedule(root, &token, root, "B")).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !b.is_finished(),
        "B answered while the batch under it was in flight"
    );
    release.add_permits(1); // the held append now fails
    let a = a.await.unwrap();
    let b = b.await.unwrap().unwrap();
    assert!(matches!(a.unwrap_err().error, SubmitError::Storage(_)));
    // B was decided again on what the log holds: it took the seq A would have had.
    assert_eq!(b.first_seq, 3);
    assert_eq!(rt.read(|s| s.task_count()), 1);
    let replayed = replay(store.as_ref()).await;
    assert_eq!(rt.read(|s| s.digest()), replayed.digest());
    assert_eq!(log(store.as_ref()).await.len(), 3);
}

/// Reads fail from `seq` `fail_from` on: a database that went away in the middle of a
/// replay.
struct FailsReadingFrom {
    fail_from: AtomicU64,
}

#[async_trait]
impl StoreHook for FailsReadingFrom {
    async fn read_range(
        &self,
        inner: &MemoryStore,
        from: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        if from >= self.fail_from.load(Ordering::SeqCst) {
            return Err(StoreError::backend("test", "connection lost"));
        }
        inner.read_range(from, limit).await
    }
}

#[tokio::test]
async fn a_read_that_fails_mid_log_is_reported_after_every_page_before_it_applied() {
    let store = Arc::new(Hooked {
        inner: MemoryStore::new(),
        hook: FailsReadingFrom {
            fail_from: AtomicU64::new(u64::MAX),
        },
    });
    let page = toka_store_core::DEFAULT_PAGE as u64;
    let rt = start(store.clone(), options()).await;
    let (root, token) = admin(&rt).await;
    // Scheduled and claimed in turn, so the root's queue never fills.
    while rt.head().seq <= 3 * page {
        let c = rt
            .submit(schedule(root, &token, root, "page filler"))
            .await
            .unwrap();
        let Some(toka_types::KernelEvent::TaskScheduled { task, .. }) = c.events.first() else {
            panic!("{c:?}")
        };
        let claim = toka_types::Operation::ClaimTask {
            agent: root,
            task: *task,
        };
        rt.submit(toka_types::Message::new(root, token.clone(), claim))
            .await
            .unwrap();
    }
    rt.shutdown().await;
    store.hook.fail_from.store(2 * page + 1, Ordering::SeqCst);
    let mut progress = Vec::new();
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        toka_runtime::recovery::recover_with(
            store.as_ref(),
            &toka_kernel::OpcodeRegistry::new(),
            &[],
            false,
            |seq| progress.push(seq),
        ),
    )
    .await
    .expect("the replay ends");
    assert!(
        matches!(result, Err(toka_runtime::RuntimeError::Store(_))),
        "{:?}",
        result.err()
    );
    assert_eq!(progress, vec![page, 2 * page]);
}
