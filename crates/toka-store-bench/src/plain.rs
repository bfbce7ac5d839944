//! The honest baseline: what this machine's SQLite or PostgreSQL does with a plain
//! append-only table, with no Toka code in the loop.
//!
//! The workload anyone can reproduce with `sqlite3` or `psql`: a table
//! `t(id INTEGER PRIMARY KEY, digest BLOB, payload BLOB)`, explicit ids, 32-byte
//! digests and 256-byte payloads of pseudo-random bytes, WAL with `synchronous=FULL`
//! (PostgreSQL: its defaults, `synchronous_commit=on`), `rows_per_commit` rows per
//! transaction; then every row read back in id order. What Toka stores beside a row
//! (headers, a hash chain, an index of payloads) is Toka's cost, so it is not here.
//!
//! What it is not: a copy of a driver's schema or SQL. Such a baseline would be near
//! 1× by construction and say nothing about the design.

use std::path::Path;
use std::time::Instant;

/// Bytes of the digest column.
pub const DIGEST_BYTES: usize = 32;
/// Bytes of the payload column.
pub const PAYLOAD_BYTES: usize = 256;

/// What one baseline run measured.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PlainFigures {
    /// Rows written and read back.
    pub rows: u64,
    /// Rows per transaction.
    pub rows_per_commit: u64,
    /// Rows committed per second.
    pub append_per_second: f64,
    /// Rows read back per second, in id order.
    pub read_per_second: f64,
}

/// Why a baseline run failed.
#[derive(Debug, thiserror::Error)]
pub enum PlainError {
    /// SQLite refused.
    #[error("sqlite baseline: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused.
    #[error("postgres baseline: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The rows read back are not the rows written.
    #[error("baseline read back {read} rows of {written}")]
    ReadBack {
        /// Rows read.
        read: u64,
        /// Rows written.
        written: u64,
    },
}

/// Pseudo-random bytes (xorshift64*): cheap, so the baseline times the database.
struct Filler(u64);

impl Filler {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The figures of a run that wrote `rows` and read back `read` rows of `bytes` bytes,
/// or why the read-back is not what was written.
fn figures(
    rows: u64,
    rows_per_commit: u64,
    (append_seconds, read_seconds): (f64, f64),
    (read, bytes): (u64, usize),
) -> Result<PlainFigures, PlainError> {
    if read != rows || bytes != rows as usize * (DIGEST_BYTES + PAYLOAD_BYTES) {
        return Err(PlainError::ReadBack {
            read,
            written: rows,
        });
    }
    Ok(PlainFigures {
        rows,
        rows_per_commit,
        append_per_second: rows as f64 / append_seconds.max(1e-9),
        read_per_second: rows as f64 / read_seconds.max(1e-9),
    })
}

/// `rows` rows into a fresh `t` in the SQLite file `path`, `rows_per_commit` per
/// transaction, then read back.
pub fn sqlite(path: &Path, rows: u64, rows_per_commit: u64) -> Result<PlainFigures, PlainError> {
    let rows_per_commit = rows_per_commit.max(1);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "DROP TABLE IF EXISTS t; CREATE TABLE t (id INTEGER PRIMARY KEY, digest BLOB, payload BLOB);",
    )?;
    let mut filler = Filler(0x9e37_79b9_7f4a_7c15);
    let (mut digest, mut payload) = ([0u8; DIGEST_BYTES], [0u8; PAYLOAD_BYTES]);
    let started = Instant::now();
    let mut id = 0u64;
    while id < rows {
        let tx = conn.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO t (id, digest, payload) VALUES (?1, ?2, ?3)")?;
            for _ in 0..rows_per_commit.min(rows - id) {
                id += 1;
                filler.fill(&mut digest);
                filler.fill(&mut payload);
                insert.execute(rusqlite::params![id as i64, &digest[..], &payload[..]])?;
            }
        }
        tx.commit()?;
    }
    let append_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut read = 0u64;
    let mut bytes = 0usize;
    {
        let mut select = conn.prepare("SELECT id, digest, payload FROM t ORDER BY id")?;
        let mut cursor = select.query([])?;
        while let Some(row) = cursor.next()? {
            let _: i64 = row.get(0)?;
            let digest: &[u8] = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let payload: &[u8] = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            bytes += digest.len() + payload.len();
            read += 1;
        }
    }
    let read_seconds = started.elapsed().as_secs_f64();
    figures(
        rows,
        rows_per_commit,
        (append_seconds, read_seconds),
        (read, bytes),
    )
}

/// The same rows into a fresh `t` in PostgreSQL schema `schema` (dropped after), one
/// multi-row insert of `rows_per_commit` rows per transaction, then read back.
pub async fn postgres(
    url: &str,
    schema: &str,
    rows: u64,
    rows_per_commit: u64,
) -> Result<PlainFigures, PlainError> {
    let rows_per_commit = rows_per_commit.max(1);
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema};
             CREATE TABLE t (id BIGINT PRIMARY KEY, digest BYTEA, payload BYTEA);"
        ))
        .await?;
    let insert = client
        .prepare("INSERT INTO t (id, digest, payload) SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[])")
        .await?;
    let mut filler = Filler(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut id = 0u64;
    while id < rows {
        let n = rows_per_commit.min(rows - id) as usize;
        let (mut ids, mut digests, mut payloads) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..n {
            id += 1;
            let (mut digest, mut payload) = (vec![0u8; DIGEST_BYTES], vec![0u8; PAYLOAD_BYTES]);
            filler.fill(&mut digest);
            filler.fill(&mut payload);
            ids.push(id as i64);
            digests.push(digest);
            payloads.push(payload);
        }
        // One statement is one transaction: committed (and flushed) when it returns.
        client
            .execute(&insert, &[&ids, &digests, &payloads])
            .await?;
    }
    let append_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut read = 0u64;
    let mut bytes = 0usize;
    let mut after = 0i64;
    loop {
        let page = client
            .query(
                "SELECT id, digest, payload FROM t WHERE id > $1 ORDER BY id LIMIT 10000",
                &[&after],
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = last.get(0);
        for row in &page {
            bytes += row.get::<_, &[u8]>(1).len() + row.get::<_, &[u8]>(2).len();
            read += 1;
        }
    }
    let read_seconds = started.elapsed().as_secs_f64();
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    drop(client);
    let _ = connection.await;
    figures(
        rows,
        rows_per_commit,
        (append_seconds, read_seconds),
        (read, bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_baseline_writes_and_reads_back_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.db");
        let figures = sqlite(&path, 2500, 1000).unwrap();
        assert_eq!(figures.rows, 2500);
        assert!(figures.append_per_second > 0.0 && figures.read_per_second > 0.0);
        // What `sqlite3 plain.db` would show.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (count, max, len): (i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), max(id), sum(length(digest) + length(payload)) FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((count, max, len), (2500, 2500, 2500 * 288));
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn the_postgres_baseline_writes_and_reads_back_every_row() {
        // The PostgreSQL every test of the workspace uses (no skip: CI has one).
        let url = std::env::var("TOKA_POSTGRES_URL").unwrap_or_else(|_| {
            let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
            format!("host=127.0.0.1 port=5432 dbname=test user={user}")
        });
        let schema = format!("toka_plain_test_{}", std::process::id());
        let figures = postgres(&url, &schema, 2500, 1000).await.unwrap();
        assert_eq!((figures.rows, figures.rows_per_commit), (2500, 1000));
        assert!(figures.append_per_second > 0.0 && figures.read_per_second > 0.0);
        // The schema is dropped after the run.
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let left = client
            .query_one(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
                &[&schema],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        assert_eq!(left, 0);
    }
}
