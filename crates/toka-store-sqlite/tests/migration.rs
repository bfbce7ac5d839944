#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Files written by older versions of the driver: they open, migrate to the current
//! schema, and read back exactly as they were written, damage included.

mod old_files;

use std::path::Path;

use old_files::old_file;
use rusqlite::Connection;
use toka_store_core::testkit::{Tmpfs, event, log_with_repeated_payloads, reads_back_as_written};
use toka_store_core::{
    Corruption, Hash32, Head, StorageBackend, StoreError, Verdict, seal, verify,
};
use toka_store_sqlite::{SCHEMA_VERSION, SqliteStore};

fn db(dir: &Path) -> std::path::PathBuf {
    dir.join("toka.db")
}

async fn intact(store: &SqliteStore) -> Verdict {
    verify(store, 1, Hash32::ZERO, None, |_| {}).await.unwrap()
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_version_4_file_reads_back_as_written_and_keeps_each_payload_once() {
    let dir = tempfile::tempdir().unwrap();
    let written = log_with_repeated_payloads(30);
    old_file(&db(dir.path()), 4, &written);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    // Appending goes on, and a payload the old file held is not stored again.
    reads_back_as_written(&store, &written).await;
    assert!(matches!(
        intact(&store).await,
        Verdict::Intact { checked: 31, .. }
    ));
    drop(store);
    let path = db(dir.path());
    assert_eq!(
        count(&path, "SELECT user_version FROM pragma_user_version"),
        SCHEMA_VERSION
    );
    assert_eq!(
        count(&path, "SELECT count(*) FROM events WHERE body IS NOT NULL"),
        20
    );
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM sqlite_master WHERE name = 'payloads'"
        ),
        0
    );
    // The view shows what the old text columns held.
    let r = &written[8];
    let conn = Connection::open(&path).unwrap();
    let (id, origin, body): (String, String, String) = conn
        .query_row(
            "SELECT id, origin, body FROM events_text WHERE seq = 9",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(id, r.header.id.to_string());
    assert_eq!(origin, r.header.origin.to_string());
    assert_eq!(body.as_bytes(), r.payload.as_slice());
}

#[tokio::test]
async fn a_version_2_file_loses_its_random_index_and_keeps_its_payloads_once() {
    let dir = tempfile::tempdir().unwrap();
    let written = log_with_repeated_payloads(30);
    old_file(&db(dir.path()), 2, &written);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    assert_eq!(store.read_range(1, 100).await.unwrap(), written);
    for r in &written {
        let payload = store.read_payload(&r.header.payload_hash).await.unwrap();
        assert_eq!(payload.as_deref(), Some(r.payload.as_slice()));
    }
    drop(store);
    let path = db(dir.path());
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM sqlite_master WHERE name = 'payloads_by_hash_prefix'"
        ),
        0
    );
    assert_eq!(
        count(&path, "SELECT count(*) FROM events WHERE body IS NOT NULL"),
        20
    );
    assert_eq!(
        count(&path, "SELECT user_version FROM pragma_user_version"),
        SCHEMA_VERSION
    );
}

#[tokio::test]
async fn a_damaged_version_4_file_migrates_and_the_damage_is_reported_at_its_seq() {
    // A payload row gone: the event reads back with an empty payload, which verification
    // reports as altered at that event's seq.
    let dir = tempfile::tempdir().unwrap();
    let written = log_with_repeated_payloads(30);
    old_file(&db(dir.path()), 4, &written);
    let conn = Connection::open(db(dir.path())).unwrap();
    conn.execute(
        "DELETE FROM payloads WHERE id = (SELECT payload_id FROM events WHERE seq = 13)",
        [],
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    assert_eq!(
        intact(&store).await,
        Verdict::Broken {
            seq: 13,
            corruption: Corruption::PayloadAltered
        }
    );
    drop(store);

    // An id that is not a UUID: reading that event fails, naming its seq.
    let dir = tempfile::tempdir().unwrap();
    old_file(&db(dir.path()), 4, &written);
    let conn = Connection::open(db(dir.path())).unwrap();
    conn.execute("UPDATE events SET origin = 'not a uuid' WHERE seq = 7", [])
        .unwrap();
    drop(conn);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    assert_eq!(store.read_range(1, 6).await.unwrap(), written[..6]);
    match store.read_range(7, 1).await {
        Err(StoreError::Corrupt { seq: 7, .. }) => {}
        other => panic!("expected record 7 to be reported corrupt, got {other:?}"),
    }
}

/// Unmounts the tmpfs when the test ends, however it ends.
fn used_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test]
async fn a_migration_that_fills_the_disk_changes_nothing_and_succeeds_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(dir.path(), 64 << 20, "migration on a full disk") else {
        return;
    };
    let written = seal(Head::EMPTY, (1..=3000u64).map(|n| event(n, 300)).collect());
    old_file(&db(dir.path()), 4, &written);
    // Room for the old file and a little more, not for a second copy of the log.
    let used = used_bytes(dir.path());
    tmpfs.resize(used + (256 << 10));
    let err = SqliteStore::open(db(dir.path())).await.unwrap_err();
    assert!(
        err.to_string().contains("full"),
        "the error should say the disk is full: {err}"
    );
    // Nothing changed: still version 4, every event in its old table.
    let path = db(dir.path());
    assert_eq!(
        count(&path, "SELECT user_version FROM pragma_user_version"),
        4
    );
    assert_eq!(count(&path, "SELECT count(*) FROM events"), 3000);
    assert_eq!(count(&path, "SELECT count(*) FROM payloads"), 3000);
    // With room, the same file migrates and reads back as written.
    tmpfs.resize(64 << 20);
    let store = SqliteStore::open(db(dir.path())).await.unwrap();
    assert_eq!(store.read_range(1, 5000).await.unwrap(), written);
    assert!(matches!(
        intact(&store).await,
        Verdict::Intact { checked: 3000, .. }
    ));
}
