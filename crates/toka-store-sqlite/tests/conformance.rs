#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The storage conformance kit, and what is particular to SQLite.

mod common;

use common::{SqliteHarness, db};
use toka_store_core::testkit::batch;
use toka_store_core::{Head, StorageBackend, StoreError};
use toka_store_sqlite::{SCHEMA_VERSION, SqliteStore};

toka_store_core::conformance_tests!(SqliteHarness);

#[tokio::test]
async fn a_second_writer_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SqliteStore::open(db(dir.path())).await.unwrap();
    let err = SqliteStore::open(db(dir.path())).await.unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
}

#[tokio::test]
async fn a_second_process_gets_a_clear_error() {
    // flock is per open file description, so a second process is refused like a
    // second handle; checked here with the `flock` tool against our lock file.
    let dir = tempfile::tempdir().unwrap();
    let _store = SqliteStore::open(db(dir.path())).await.unwrap();
    let status = std::process::Command::new("flock")
        .args(["--nonblock", "--exclusive"])
        .arg(dir.path().join("toka.db.lock"))
        .arg("true")
        .status();
    if let Ok(status) = status {
        assert!(
            !status.success(),
            "another process could take the writer lock"
        );
    }
}

#[tokio::test]
async fn payloads_are_readable_text_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    store.append(0, &batch(Head::EMPTY, 3, 80)).await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(db(dir.path())).unwrap();
    let (kind, body, body_type): (String, String, String) = conn
        .query_row(
            "SELECT e.kind, p.body, typeof(p.body) FROM events e JOIN payloads p ON p.id = e.payload_id WHERE e.seq = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(kind, "test.event");
    assert_eq!(body_type, "text");
    assert!(body.starts_with(r#"{"n":2,"#), "{body}");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_version_2_file_loses_its_random_index_and_keeps_its_payloads_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    let first = batch(Head::EMPTY, 5, 120);
    let head = store.append(0, &first).await.unwrap();
    drop(store);
    // As version 2 left it: the prefix index present.
    let conn = rusqlite::Connection::open(db(dir.path())).unwrap();
    conn.execute_batch(
        "DROP TABLE snapshot_chunks; ALTER TABLE snapshots DROP COLUMN chunks;
         CREATE INDEX payloads_by_hash_prefix ON payloads (hash_prefix); PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    // The same payloads again, as new events: found through the in-memory index.
    let again: Vec<_> = first
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut e = toka_store_core::testkit::event(6 + i as u64, 0);
            e.payload.clone_from(&r.payload);
            e
        })
        .collect();
    let again = toka_store_core::seal(head, again);
    store.append(head.seq, &again).await.unwrap();
    assert_eq!(store.read_range(1, 20).await.unwrap().len(), 10);
    for r in &first {
        let payload = store.read_payload(&r.header.payload_hash).await.unwrap();
        assert_eq!(payload.as_deref(), Some(r.payload.as_slice()));
    }
    drop(store);
    let conn = rusqlite::Connection::open(db(dir.path())).unwrap();
    let (payloads, indexes, version): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM payloads),
                    (SELECT count(*) FROM sqlite_master WHERE name = 'payloads_by_hash_prefix'),
                    (SELECT user_version FROM pragma_user_version)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((payloads, indexes, version), (5, 0, SCHEMA_VERSION));
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(db(dir.path())).await.unwrap());
    let conn = rusqlite::Connection::open(db(dir.path())).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(db(dir.path())).await.unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade toka"), "{err}");
}

#[tokio::test]
async fn reopening_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    store.append(0, &batch(Head::EMPTY, 2, 10)).await.unwrap();
    drop(store);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    assert_eq!(store.head().await.unwrap().seq, 2);
}

/// Issue 9: the durability settings are read back from the store's own connection, so
/// weakening them fails here (the SIGKILL tests would still pass with
/// `synchronous=OFF`: a killed process leaves its pages to the operating system).
#[tokio::test]
async fn durability_settings_are_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    store.append(0, &batch(Head::EMPTY, 3, 20)).await.unwrap();
    // synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    assert_eq!(store.durability().unwrap(), ("wal".to_string(), 2));
}

/// Checkpoints run beside the writer (the database file fills while the store is
/// open), and the write-ahead log starts over instead of growing with the log: after
/// about 37 MB of appends it never held more than the backstop (4000 pages, 16 MiB)
/// plus one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_is_folded_in_while_open_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(dir.path());
    let wal = dir.path().join("toka.db-wal");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut head = Head::EMPTY;
    let mut largest_wal = 0;
    for _ in 0..160 {
        head = store
            .append(head.seq, &batch(head, 256, 500))
            .await
            .unwrap();
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert_eq!(head.seq, 160 * 256);
    let database = std::fs::metadata(&path).unwrap().len();
    assert!(
        database > 16 << 20,
        "only {database} bytes reached the database file while open"
    );
    assert!(
        largest_wal < 18 << 20,
        "the write-ahead log grew to {largest_wal} bytes"
    );
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.head().await.unwrap(), head);
}
