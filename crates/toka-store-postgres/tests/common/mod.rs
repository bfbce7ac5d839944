//! The conformance harness for PostgreSQL: each test folder maps to its own schema in
//! the database of `TOKA_POSTGRES_URL` (default: 127.0.0.1:5432, database `test`, the
//! current user, as on the CI machine), and tampering goes through plain SQL.

use std::path::Path;

use async_trait::async_trait;
use toka_store_core::StoreError;
use toka_store_core::testkit::{Harness, Tamper};
use toka_store_postgres::PostgresStore;

pub fn url() -> String {
    std::env::var("TOKA_POSTGRES_URL").unwrap_or_else(|_| {
        let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
        format!("host=127.0.0.1 port=5432 dbname=test user={user}")
    })
}

/// A schema name derived from the test's folder, so reopening finds the same log.
pub fn schema(dir: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("toka_t{h:016x}")
}

async fn sql(statements: &str) {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(statements).await.unwrap();
}

pub struct PostgresHarness;

#[async_trait]
impl Harness for PostgresHarness {
    type Store = PostgresStore;
    const DURABLE: bool = true;

    async fn open(dir: &Path) -> Result<PostgresStore, StoreError> {
        // After a SIGKILL the dead writer's COMMIT may still be under way in its
        // backend: wait for any transaction holding the head row before reading.
        let s = schema(dir);
        if let Ok((client, connection)) =
            tokio_postgres::connect(&url(), tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            let _ = client
                .batch_execute(&format!(
                    "BEGIN; SELECT seq FROM \"{s}\".head FOR UPDATE; COMMIT;"
                ))
                .await;
        }
        PostgresStore::open(&url(), &s).await
    }

    async fn tamper(store: PostgresStore, dir: &Path, tamper: Tamper) -> PostgresStore {
        drop(store);
        let s = schema(dir);
        let change = match tamper {
            Tamper::FlipPayloadByte { seq } => format!(
                "UPDATE {s}.events SET body = set_byte(body, 3, get_byte(body, 3) # 1)
                 WHERE seq = (SELECT coalesce(body_at, seq) FROM {s}.events WHERE seq = {seq})"
            ),
            Tamper::DeleteRecord { seq } => format!("DELETE FROM {s}.events WHERE seq = {seq}"),
            Tamper::SwapRecords { a, b } => format!(
                "UPDATE {s}.events SET seq = -1 WHERE seq = {a};
                 UPDATE {s}.events SET seq = {a} WHERE seq = {b};
                 UPDATE {s}.events SET seq = {b} WHERE seq = -1;"
            ),
        };
        sql(&change).await;
        PostgresStore::open(&url(), &s).await.unwrap()
    }

    async fn stored_payloads(_store: &PostgresStore, dir: &Path) -> u64 {
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.events WHERE body IS NOT NULL",
                    schema(dir)
                ),
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) as u64
    }

    async fn skip_reason() -> Option<String> {
        match tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
            Ok(_) => None,
            // Under CI the tests must run: report the failure instead of skipping.
            Err(_) if std::env::var_os("CI").is_some() => None,
            Err(e) => Some(format!(
                "no PostgreSQL at {} ({e}); set TOKA_POSTGRES_URL",
                url()
            )),
        }
    }
}
