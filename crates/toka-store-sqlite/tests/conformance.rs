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
            "SELECT kind, body, typeof(body) FROM events WHERE seq = 2",
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

#[tokio::test]
async fn a_payload_redirected_with_sqlite3_is_reported_at_its_seq() {
    // One row per event: `body`, or `body_at` naming the event that holds the same
    // payload. Someone with sqlite3 points an event at another event's payload, or at
    // nothing, or at itself: each reads back as a payload that does not hash right.
    for (edit, seq) in [
        (
            "UPDATE events SET body = NULL, body_at = 3 WHERE seq = 5",
            5,
        ),
        (
            "UPDATE events SET body = NULL, body_at = 999 WHERE seq = 4",
            4,
        ),
        (
            "UPDATE events SET body = NULL, body_at = 6 WHERE seq = 6",
            6,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(db(dir.path())).await.unwrap();
        store.append(0, &batch(Head::EMPTY, 8, 60)).await.unwrap();
        drop(store);
        rusqlite::Connection::open(db(dir.path()))
            .unwrap()
            .execute(edit, [])
            .unwrap();
        let store = SqliteStore::open(db(dir.path())).await.unwrap();
        let verdict =
            toka_store_core::verify(&store, 1, toka_store_core::Hash32::ZERO, None, |_| {})
                .await
                .unwrap();
        assert_eq!(
            verdict,
            toka_store_core::Verdict::Broken {
                seq,
                corruption: toka_store_core::Corruption::PayloadAltered
            },
            "{edit}"
        );
    }
}

#[tokio::test]
async fn a_snapshot_rewritten_as_text_with_sqlite3_reads_back_its_bytes() {
    // Someone edits a snapshot's JSON with sqlite3 (or a script) and it is stored as
    // TEXT: the store still hands recovery those bytes to check, instead of failing on
    // the column's type with an error that names neither the snapshot nor its seq.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    let head = store.append(0, &batch(Head::EMPTY, 3, 40)).await.unwrap();
    let snapshot = toka_store_core::Snapshot {
        seq: head.seq,
        chain_digest: head.digest,
        state_digest: toka_store_core::Hash32::of(b"state"),
        state: br#"{"version":2,"agents":[]}"#.to_vec(),
    };
    store.put_snapshot(&snapshot).await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(db(dir.path())).unwrap();
    conn.execute("UPDATE snapshots SET state = CAST(state AS TEXT)", [])
        .unwrap();
    let stored: String = conn
        .query_row("SELECT typeof(state) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, "text");
    drop(conn);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    let read = store.latest_snapshot().await.unwrap().unwrap();
    assert_eq!(read.state, snapshot.state);
    assert_eq!(read.seq, snapshot.seq);
}
