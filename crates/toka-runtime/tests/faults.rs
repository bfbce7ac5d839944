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

/// Fails the `fail_at`-th append, before or after writing.
struct Faulty {
    calls: AtomicU64,
    fail_at: u64,
    mode: Mode,
}

#[async_trait]
impl AppendHook for Faulty {
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
    assert_eq!(
        failed,
        vec![3],
        "exactly the 6th append (the 4th task) failed"
    );
    // The writer rebuilt its state from the log: it equals a fresh replay.
    let replayed = replay(store.as_ref()).await;
    assert_eq!(rt.read(|s| s.digest()), replayed.digest());
    let in_log = log(store.as_ref()).await.len() as u64;
    match mode {
        Mode::BeforeWrite => assert_eq!(in_log, 2 + 11),
        // The failed batch reached the log: it is a fact now, replayed like any other.
        Mode::AfterWrite => assert_eq!(in_log, 2 + 12),
    }
    // Live subscribers only ever got committed records in order, without gaps.
    let mut expected = 3;
    while expected <= in_log {
        let r = live.next().await.unwrap().unwrap();
        assert_eq!(r.header.seq, expected);
        expected += 1;
    }
    // What the store appended is what acknowledged submitters were told (plus, after a
    // write-then-fail, the record whose submitter heard an error).
    let mut stored = 0;
    while let Ok(r) = bus_tail.try_recv() {
        stored += 1;
        let acknowledged = r.header.seq <= 2 || acked.contains(&r.header.seq);
        assert!(
            acknowledged || mode == Mode::AfterWrite,
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
