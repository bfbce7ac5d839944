//! The conformance cases. Each takes a fresh folder, opens the driver's store there
//! and checks one clause of the [`StorageBackend`] contract.

use std::sync::Arc;

use crate::backend::{Snapshot, StorageBackend};
use crate::chain::{head_after, seal};
use crate::error::AppendError;
use crate::hash::Hash32;
use crate::record::{EventRecord, Head, NewEvent};
use crate::sealed::Sealed;
use crate::testkit::{Harness, Tamper, batch, event};
use crate::verify::{Corruption, Verdict, verify};

fn folder() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary folder")
}

async fn fill<S: StorageBackend>(store: &S, batches: usize, size: usize) -> Head {
    let mut head = store.head().await.expect("head");
    for _ in 0..batches {
        let records = batch(head, size, 300);
        head = store.append(head.seq, &records).await.expect("append");
    }
    head
}

async fn all<S: StorageBackend>(store: &S) -> Vec<EventRecord> {
    store.read_range(1, usize::MAX).await.expect("read")
}

async fn intact<S: StorageBackend>(store: &S) -> Verdict {
    verify(store, 1, Hash32::ZERO, None, |_| {})
        .await
        .expect("verify")
}

/// `seq`s start at 1 and follow each other without gaps across batches.
pub async fn appends_are_gap_free_from_one<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    assert_eq!(store.head().await.expect("head"), Head::EMPTY);
    let mut head = Head::EMPTY;
    for size in [1, 3, 64, 1, 7] {
        let records = batch(head, size, 100);
        let new_head = store.append(head.seq, &records).await.expect("append");
        assert_eq!(new_head, head_after(head, &records));
        head = new_head;
    }
    let seqs: Vec<u64> = all(&store).await.iter().map(|r| r.header.seq).collect();
    assert_eq!(seqs, (1..=76).collect::<Vec<_>>());
    assert_eq!(store.head().await.expect("head"), head);
    assert!(matches!(
        intact(&store).await,
        Verdict::Intact { checked: 76, .. }
    ));
}

/// An append with a stale `expected_head` is a `Conflict` and writes nothing.
pub async fn stale_expected_head_is_refused_and_writes_nothing<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    let head = fill(&store, 2, 5).await;
    // Sealed after an older head: exactly what a second node would send.
    let old = store.read_range(5, 1).await.expect("read")[0]
        .header
        .clone();
    let stale = batch(
        Head {
            seq: old.seq,
            digest: old.digest,
        },
        3,
        100,
    );
    match store.append(old.seq, &stale).await {
        Err(AppendError::Conflict { expected, actual }) => {
            assert_eq!((expected, actual), (5, 10));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Also with a head from the future.
    let future = batch(
        Head {
            seq: 20,
            digest: Hash32::ZERO,
        },
        1,
        100,
    );
    assert!(matches!(
        store.append(20, &future).await,
        Err(AppendError::Conflict {
            expected: 20,
            actual: 10
        })
    ));
    assert_eq!(store.head().await.expect("head"), head);
    assert_eq!(all(&store).await.len(), 10);
}

/// A batch with a bad record in the middle is refused whole.
pub async fn batch_failing_midway_writes_nothing<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    let head = fill(&store, 1, 4).await;
    let before = H::stored_payloads(&store, dir.path()).await;
    for corrupt in 0..3 {
        let mut records = batch(head, 10, 200);
        match corrupt {
            0 => records[5].payload.push(b' '),
            1 => records[5].header.digest = Hash32::ZERO,
            _ => records[5].header.seq += 1,
        }
        match store.append(head.seq, &records).await {
            Err(AppendError::InvalidBatch { seq, .. }) => assert!(seq == 10 || seq == 11, "{seq}"),
            other => panic!("expected an invalid batch, got {other:?}"),
        }
        assert_eq!(store.head().await.expect("head"), head);
        assert_eq!(all(&store).await.len(), 4);
        assert_eq!(
            H::stored_payloads(&store, dir.path()).await,
            before,
            "payloads of a refused batch were kept"
        );
    }
    // The same head still takes a good batch.
    store
        .append(head.seq, &batch(head, 2, 10))
        .await
        .expect("append after refusal");
}

/// `append_sealed` keeps `append`'s promises without hashing again: a batch sealed on
/// a stale head is a `Conflict`, one sealed on the right `seq` but another digest (a
/// log that forked) is refused, one over the limits is refused, and each writes
/// nothing; a batch sealed on the head appends and reads back as sealed.
pub async fn sealed_batches_append_only_after_the_head_they_were_sealed_on<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    let head = fill(&store, 1, 4).await;
    let events = |from: u64, count: u64| (from..from + count).map(|n| event(n, 120)).collect();
    let stale = Sealed::new(
        Head {
            seq: 2,
            digest: Hash32::ZERO,
        },
        events(3, 2),
    );
    assert!(matches!(
        store.append_sealed(Arc::new(stale)).await,
        Err(AppendError::Conflict {
            expected: 2,
            actual: 4
        })
    ));
    let forked = Sealed::new(
        Head {
            seq: head.seq,
            digest: Hash32::of(b"another log"),
        },
        events(5, 2),
    );
    assert!(matches!(
        store.append_sealed(Arc::new(forked)).await,
        Err(AppendError::InvalidBatch { seq: 5, .. })
    ));
    let mut too_long: Vec<NewEvent> = events(5, 3);
    too_long[1].kind = "k".repeat(crate::record::MAX_KIND_BYTES + 1);
    assert!(matches!(
        store
            .append_sealed(Arc::new(Sealed::new(head, too_long)))
            .await,
        Err(AppendError::InvalidBatch { seq: 6, .. })
    ));
    assert_eq!(store.head().await.expect("head"), head);
    assert_eq!(all(&store).await.len(), 4);

    let mut good = Sealed::new(head, events(5, 2));
    good.extend(events(7, 3));
    let sealed = good.records().to_vec();
    let tip = store.append_sealed(Arc::new(good)).await.expect("append");
    assert_eq!(tip, head_after(head, &sealed));
    assert_eq!(all(&store).await[4..], sealed[..]);
    assert!(matches!(
        intact(&store).await,
        Verdict::Intact { checked: 9, .. }
    ));
}

/// Records with the same payload share one stored copy.
pub async fn identical_payloads_are_stored_once<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    let events: Vec<NewEvent> = (1..=50)
        .map(|n| NewEvent {
            payload: format!("{{\"same\":{}}}", n % 5).into_bytes(),
            ..event(n, 0)
        })
        .collect();
    let records = seal(Head::EMPTY, events);
    store.append(0, &records).await.expect("append");
    // A second batch repeating payloads already stored.
    let head = store.head().await.expect("head");
    let more: Vec<NewEvent> = (51..=60)
        .map(|n| NewEvent {
            payload: b"{\"same\":0}".to_vec(),
            ..event(n, 0)
        })
        .collect();
    store
        .append(head.seq, &seal(head, more))
        .await
        .expect("append");
    assert_eq!(H::stored_payloads(&store, dir.path()).await, 5);
    let read = all(&store).await;
    assert_eq!(read.len(), 60);
    assert!(
        read.iter()
            .all(|r| Hash32::of(&r.payload) == r.header.payload_hash)
    );
}

/// Close and reopen: everything is still there and appending continues.
pub async fn everything_survives_close_and_reopen<H: Harness>() {
    if !H::DURABLE {
        return;
    }
    let dir = folder();
    let (head, before) = {
        let store = H::open(dir.path()).await.expect("open");
        let head = fill(&store, 5, 20).await;
        store
            .put_snapshot(&Snapshot {
                seq: 50,
                chain_digest: head.digest,
                state_digest: Hash32::of(b"s"),
                state: b"state".to_vec(),
            })
            .await
            .expect("snapshot");
        (head, all(&store).await)
    };
    let store = H::open(dir.path()).await.expect("reopen");
    assert_eq!(store.head().await.expect("head"), head);
    assert_eq!(all(&store).await, before);
    assert_eq!(
        store
            .latest_snapshot()
            .await
            .expect("snapshot")
            .map(|s| s.state),
        Some(b"state".to_vec())
    );
    let next = store
        .append(head.seq, &batch(head, 3, 10))
        .await
        .expect("append after reopen");
    assert_eq!(next.seq, 103);
    assert!(matches!(
        intact(&store).await,
        Verdict::Intact { checked: 103, .. }
    ));
}

/// Two tasks appending on the same head through clones of one handle: one wins, the
/// other gets `Conflict`; never both.
pub async fn concurrent_appends_never_both_win<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    for round in 0..40 {
        let head = store.head().await.expect("head");
        let a = batch(head, 1 + round % 5, 50);
        // A different batch on the same head, as another writer would make it.
        let b = seal(
            head,
            (0..2u64)
                .map(|i| NewEvent {
                    id: toka_types::EntityId::from_u128(0xb0b0_0000 + u128::from(head.seq + i)),
                    ..event(head.seq + 1 + i, 60)
                })
                .collect(),
        );
        let (s1, s2) = (store.clone(), store.clone());
        let t1 = tokio::spawn(async move { s1.append(head.seq, &a).await });
        let t2 = tokio::spawn(async move { s2.append(head.seq, &b).await });
        let (r1, r2) = (t1.await.expect("task"), t2.await.expect("task"));
        let wins = [&r1, &r2].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {r1:?} / {r2:?}");
        for r in [r1, r2] {
            if let Err(e) = r {
                assert!(matches!(e, AppendError::Conflict { .. }), "{e:?}");
            }
        }
    }
    assert!(matches!(intact(&store).await, Verdict::Intact { .. }));
}

/// A 1 MiB payload is stored and read back byte for byte.
pub async fn one_mib_payload_round_trips<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let records = seal(
        Head::EMPTY,
        vec![NewEvent {
            payload: payload.clone(),
            ..event(1, 0)
        }],
    );
    store.append(0, &records).await.expect("append");
    let read = store.read_range(1, 10).await.expect("read");
    assert_eq!(read[0].payload, payload);
    assert_eq!(
        store
            .read_payload(&Hash32::of(&payload))
            .await
            .expect("read"),
        Some(payload)
    );
}

/// An empty batch writes nothing; it returns the head, or `Conflict` on a stale head.
pub async fn empty_batch_checks_the_head_and_writes_nothing<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    assert_eq!(
        store.append(0, &[]).await.expect("empty on empty log"),
        Head::EMPTY
    );
    let head = fill(&store, 1, 3).await;
    assert_eq!(store.append(3, &[]).await.expect("empty"), head);
    assert!(matches!(
        store.append(1, &[]).await,
        Err(AppendError::Conflict {
            expected: 1,
            actual: 3
        })
    ));
    assert_eq!(all(&store).await.len(), 3);
}

/// Reads by `seq` range (paged), by event id and by payload hash.
pub async fn reads_by_range_id_and_payload_hash<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    fill(&store, 10, 10).await;
    let page = store.read_range(37, 5).await.expect("read");
    assert_eq!(
        page.iter().map(|r| r.header.seq).collect::<Vec<_>>(),
        vec![37, 38, 39, 40, 41]
    );
    assert!(store.read_range(101, 5).await.expect("read").is_empty());
    assert_eq!(store.read_range(98, 100).await.expect("read").len(), 3);
    let r = &page[2];
    assert_eq!(
        store.read_by_id(r.header.id).await.expect("read").as_ref(),
        Some(r)
    );
    assert_eq!(
        store
            .read_by_id(toka_types::EntityId::from_u128(1))
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store
            .read_payload(&r.header.payload_hash)
            .await
            .expect("read"),
        Some(r.payload.clone())
    );
    assert_eq!(
        store
            .read_payload(&Hash32::of(b"nothing"))
            .await
            .expect("read"),
        None
    );
    // Paging through the whole log.
    let mut pages = crate::EventPages::new(&store, 1).page_size(7);
    let mut seen = 0;
    loop {
        let page = pages.next_page().await.expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        seen += page.len();
    }
    assert_eq!(seen, 100);
}

/// Snapshots: the latest wins, replacing by `seq` works, pruning keeps the newest.
pub async fn snapshots_put_latest_and_prune<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    assert_eq!(store.latest_snapshot().await.expect("latest"), None);
    let snap = |seq: u64| Snapshot {
        seq,
        chain_digest: Hash32::of(&seq.to_le_bytes()),
        state_digest: Hash32::of(b"state"),
        state: format!("state at {seq}").into_bytes(),
    };
    for seq in [10, 30, 20] {
        store.put_snapshot(&snap(seq)).await.expect("put");
    }
    assert_eq!(
        store.latest_snapshot().await.expect("latest"),
        Some(snap(30))
    );
    let mut replaced = snap(30);
    replaced.state = b"again".to_vec();
    store.put_snapshot(&replaced).await.expect("put");
    assert_eq!(
        store.latest_snapshot().await.expect("latest"),
        Some(replaced)
    );
    assert_eq!(store.snapshot_seqs().await.expect("seqs"), vec![10, 20, 30]);
    assert_eq!(store.prune_snapshots(1).await.expect("prune"), 2);
    assert_eq!(store.snapshot_seqs().await.expect("seqs"), vec![30]);
    assert_eq!(store.prune_snapshots(5).await.expect("prune"), 0);
}

/// Checkpoints: kept in the order they were put, across a reopen (durable drivers), and
/// only the newest [`MAX_STORED_CHECKPOINTS`](crate::MAX_STORED_CHECKPOINTS).
pub async fn checkpoints_are_kept_in_order<H: Harness>() {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    assert!(store.checkpoints().await.expect("read").is_empty());
    for seq in [5u64, 9, 9, 12] {
        let body = format!("{{\"seq\":{seq}}}");
        store
            .put_checkpoint(seq, body.as_bytes())
            .await
            .expect("put");
    }
    let expected: Vec<Vec<u8>> = [5u64, 9, 9, 12]
        .iter()
        .map(|s| format!("{{\"seq\":{s}}}").into_bytes())
        .collect();
    assert_eq!(store.checkpoints().await.expect("read"), expected);
    if H::DURABLE {
        drop(store);
        let store = H::open(dir.path()).await.expect("reopen");
        assert_eq!(store.checkpoints().await.expect("read"), expected);
        for seq in 0..crate::MAX_STORED_CHECKPOINTS as u64 {
            store.put_checkpoint(100 + seq, b"{}").await.expect("put");
        }
        let kept = store.checkpoints().await.expect("read");
        assert_eq!(kept.len(), crate::MAX_STORED_CHECKPOINTS);
        assert!(!kept.contains(&expected[0]), "the oldest is gone");
    }
}

async fn tampered<H: Harness>(tamper: Tamper) -> Verdict {
    let dir = folder();
    let store = H::open(dir.path()).await.expect("open");
    // Distinct payloads, so no record shares the tampered one.
    fill(&store, 4, 10).await;
    assert!(matches!(
        intact(&store).await,
        Verdict::Intact { checked: 40, .. }
    ));
    let store = H::tamper(store, dir.path(), tamper).await;
    intact(&store).await
}

/// One payload byte changed in the database: reported at that record.
pub async fn flipped_payload_byte_is_reported_at_its_seq<H: Harness>() {
    assert_eq!(
        tampered::<H>(Tamper::FlipPayloadByte { seq: 17 }).await,
        Verdict::Broken {
            seq: 17,
            corruption: Corruption::PayloadAltered
        }
    );
}

/// One record deleted in the database: reported at its `seq`.
pub async fn deleted_record_is_reported_at_its_seq<H: Harness>() {
    assert_eq!(
        tampered::<H>(Tamper::DeleteRecord { seq: 23 }).await,
        Verdict::Broken {
            seq: 23,
            corruption: Corruption::Missing { found: 24 }
        }
    );
}

/// Two records swapped in the database: reported at the first.
pub async fn swapped_records_are_reported_at_the_first<H: Harness>() {
    assert_eq!(
        tampered::<H>(Tamper::SwapRecords { a: 8, b: 9 }).await,
        Verdict::Broken {
            seq: 8,
            corruption: Corruption::Reordered
        }
    );
}
