#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Snapshots larger than one chunk: written a chunk per transaction so appends go on
//! meanwhile, read back whole, invisible until complete, pruned with their chunks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod old_files;

use rusqlite::Connection;
use toka_store_core::testkit::batch;
use toka_store_core::{Hash32, Head, Snapshot, StorageBackend, StoreError};
use toka_store_sqlite::SqliteStore;

const CHUNK: usize = 4 << 20;

fn db(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("toka.db")
}

fn snapshot(seq: u64, len: usize) -> Snapshot {
    Snapshot {
        seq,
        chain_digest: Hash32([seq as u8; 32]),
        state_digest: Hash32([0xa5; 32]),
        // Not periodic in the chunk size, so chunks out of order would be caught.
        state: (0..len).map(|i| (i % 251) as u8).collect(),
    }
}

fn chunk_rows(dir: &std::path::Path) -> Vec<(i64, i64)> {
    let conn = Connection::open(db(dir)).unwrap();
    let mut stmt = conn
        .prepare("SELECT seq, n FROM snapshot_chunks ORDER BY seq, n")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_large_snapshot_reads_back_whole_and_is_replaced_and_pruned_with_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    let large = snapshot(10, 3 * CHUNK + CHUNK / 2);
    store.put_snapshot(&large).await.unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), large);
    assert_eq!(
        chunk_rows(dir.path()),
        vec![(10, 0), (10, 1), (10, 2), (10, 3)]
    );
    // Exactly one chunk's worth stays inline.
    let small = snapshot(10, CHUNK);
    store.put_snapshot(&small).await.unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), small);
    assert!(chunk_rows(dir.path()).is_empty());

    let newer = snapshot(20, CHUNK + 1);
    store.put_snapshot(&newer).await.unwrap();
    assert_eq!(store.snapshot_seqs().await.unwrap(), vec![10, 20]);
    assert_eq!(store.prune_snapshots(1).await.unwrap(), 1);
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), newer);
    assert_eq!(chunk_rows(dir.path()), vec![(20, 0), (20, 1)]);
    // And after a reopen.
    drop(store);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), newer);
}

#[tokio::test]
async fn a_version_3_snapshot_reads_back_after_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    // As version 3 left it: no chunks table, no chunks column, the state inline.
    old_files::old_file(&db(dir.path()), 3, &[]);
    let old = snapshot(7, 1000);
    Connection::open(db(dir.path()))
        .unwrap()
        .execute(
            "INSERT INTO snapshots (seq, chain_digest, state_digest, state) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                old.seq as i64,
                old.chain_digest.as_bytes().as_slice(),
                old.state_digest.as_bytes().as_slice(),
                old.state
            ],
        )
        .unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), old);
    let large = snapshot(8, CHUNK + 10);
    store.put_snapshot(&large).await.unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), large);
}

#[tokio::test]
async fn a_snapshot_cut_short_is_not_seen_and_a_missing_chunk_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    let kept = snapshot(10, 2 * CHUNK + 5);
    store.put_snapshot(&kept).await.unwrap();
    {
        // A write that died after two chunks: below and above the stored snapshot.
        let conn = Connection::open(db(dir.path())).unwrap();
        for seq in [4, 30] {
            for n in 0..2 {
                conn.execute(
                    "INSERT INTO snapshot_chunks (seq, n, bytes) VALUES (?1, ?2, x'00')",
                    rusqlite::params![seq, n],
                )
                .unwrap();
            }
        }
    }
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), kept);
    assert_eq!(store.snapshot_seqs().await.unwrap(), vec![10]);
    // Pruning removes the leftovers below the kept snapshot, never a write that may
    // still be going on above it.
    assert_eq!(store.prune_snapshots(1).await.unwrap(), 0);
    let seqs: Vec<i64> = chunk_rows(dir.path()).iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![10, 10, 10, 30, 30]);

    Connection::open(db(dir.path()))
        .unwrap()
        .execute("DELETE FROM snapshot_chunks WHERE seq = 10 AND n = 1", [])
        .unwrap();
    let err = store.latest_snapshot().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { seq: 10, reason, .. } if reason.contains("chunk 1 is missing")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_go_on_while_a_large_snapshot_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(db(dir.path())).await.unwrap());
    let big = snapshot(1, 16 * CHUNK);
    let writing = Arc::new(AtomicBool::new(true));
    let appender = {
        let (store, writing) = (store.clone(), writing.clone());
        tokio::spawn(async move {
            let mut head = Head::EMPTY;
            let mut slowest = Duration::ZERO;
            while writing.load(Ordering::SeqCst) {
                let records = batch(head, 10, 64);
                let started = Instant::now();
                head = store.append(head.seq, &records).await.unwrap();
                slowest = slowest.max(started.elapsed());
            }
            (head, slowest)
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    store.put_snapshot(&big).await.unwrap();
    let put = started.elapsed();
    writing.store(false, Ordering::SeqCst);
    let (head, slowest) = appender.await.unwrap();
    // In one transaction, an append would wait for most of the write; a chunk at a time,
    // for about one chunk of sixteen.
    assert!(
        slowest < put / 2,
        "the slowest append took {slowest:?} while the snapshot took {put:?}"
    );
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap(), big);
}
