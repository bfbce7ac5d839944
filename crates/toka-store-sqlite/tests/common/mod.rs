//! The conformance harness for the SQLite driver: opens `toka.db` in the test folder and
//! tampers with it through a plain rusqlite connection.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use toka_store_core::StoreError;
use toka_store_core::testkit::{Harness, Tamper};
use toka_store_sqlite::SqliteStore;

pub struct SqliteHarness;

pub fn db(dir: &Path) -> std::path::PathBuf {
    dir.join("toka.db")
}

#[async_trait]
impl Harness for SqliteHarness {
    type Store = SqliteStore;
    const DURABLE: bool = true;

    async fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(db(dir)).await
    }

    async fn tamper(store: SqliteStore, dir: &Path, tamper: Tamper) -> SqliteStore {
        drop(store);
        let conn = Connection::open(db(dir)).unwrap();
        match tamper {
            Tamper::FlipPayloadByte { seq } => {
                // The row holding the payload: the event's own, or the one it points at.
                let (holder, body): (i64, String) = conn
                    .query_row(
                        "SELECT b.seq, b.body FROM events e JOIN events b ON b.seq = coalesce(e.body_at, e.seq) WHERE e.seq = ?1",
                        params![seq as i64],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                let mut bytes = body.into_bytes();
                bytes[3] ^= 1;
                let body = String::from_utf8(bytes).unwrap();
                conn.execute(
                    "UPDATE events SET body = ?1 WHERE seq = ?2",
                    params![body, holder],
                )
                .unwrap();
            }
            Tamper::DeleteRecord { seq } => {
                conn.execute("DELETE FROM events WHERE seq = ?1", params![seq as i64])
                    .unwrap();
            }
            Tamper::SwapRecords { a, b } => {
                conn.execute(
                    "UPDATE events SET seq = -1 WHERE seq = ?1",
                    params![a as i64],
                )
                .unwrap();
                conn.execute(
                    "UPDATE events SET seq = ?1 WHERE seq = ?2",
                    params![a as i64, b as i64],
                )
                .unwrap();
                conn.execute(
                    "UPDATE events SET seq = ?1 WHERE seq = -1",
                    params![b as i64],
                )
                .unwrap();
            }
        }
        drop(conn);
        SqliteStore::open(db(dir)).await.unwrap()
    }

    async fn stored_payloads(_store: &SqliteStore, dir: &Path) -> u64 {
        let conn = Connection::open(db(dir)).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM events WHERE body IS NOT NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as u64
    }
}
