//! Schema and migrations. Each migration runs once, in order, in one transaction that
//! holds an advisory lock, so two nodes starting together cannot both apply it.

use toka_store_core::StoreError;
use tokio_postgres::Client;

use crate::{DRIVER, backend};

/// Migrations, oldest first; index + 1 is the version each brings the schema to.
const MIGRATIONS: &[&str] = &[
    // 1: the log. Payload bytes are kept exactly as hashed (`body`); `body_json` holds
    // the same payload as jsonb when it is JSON, so people can query it with psql
    // (generated from `body` since migration 2).
    "CREATE TABLE payloads (
        hash BYTEA PRIMARY KEY,
        body BYTEA NOT NULL,
        body_json JSONB
    );
    CREATE TABLE events (
        seq BIGINT PRIMARY KEY,
        id UUID NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        ts BIGINT NOT NULL,
        intent UUID NOT NULL,
        parents TEXT NOT NULL,
        origin UUID NOT NULL,
        jti TEXT,
        payload_hash BYTEA NOT NULL,
        digest BYTEA NOT NULL
    );
    CREATE TABLE head (
        only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        seq BIGINT NOT NULL,
        digest BYTEA NOT NULL
    );
    INSERT INTO head (seq, digest) VALUES (0, '\\x0000000000000000000000000000000000000000000000000000000000000000');
    CREATE TABLE snapshots (
        seq BIGINT PRIMARY KEY,
        chain_digest BYTEA NOT NULL,
        state_digest BYTEA NOT NULL,
        state BYTEA NOT NULL
    );",
    // 2: nothing is stored twice. `body_json` was a second copy of the payload that a
    // psql user could edit without touching what the chain covers; now it is computed
    // from `body` when read, in the views `payloads_json` and `events_json`, so what a
    // database user reads is always what `verify` checks.
    "CREATE FUNCTION toka_json_of(body BYTEA) RETURNS JSONB
        LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
     BEGIN
        RETURN convert_from(body, 'UTF8')::jsonb;
     EXCEPTION WHEN others THEN
        RETURN NULL;
     END
     $fn$;
     ALTER TABLE payloads DROP COLUMN body_json;
     CREATE VIEW payloads_json AS
        SELECT hash, body, toka_json_of(body) AS body_json FROM payloads;
     CREATE VIEW events_json AS
        SELECT e.seq, e.id, e.kind, e.ts, e.origin, e.jti, toka_json_of(p.body) AS body_json
        FROM events e JOIN payloads p ON p.hash = e.payload_hash;",
    // 3: signed checkpoints of every node sharing the log (the runtime's JSON).
    "CREATE TABLE checkpoints (
        id BIGSERIAL PRIMARY KEY,
        seq BIGINT NOT NULL,
        body TEXT NOT NULL
    );",
    // 4: no table of payloads. Its primary key, the payload hash, was the log's one
    // random-order index: each append dirtied about one of its pages per event (and
    // wrote each whole to the WAL after a checkpoint), half of an append's time in
    // PostgreSQL. An event's payload is now in its own row (`body`) or, when an earlier
    // event holds the same bytes, that event's `seq` is (`body_at`): still stored once,
    // found through the driver's in-memory hints and checked against the whole hash in
    // the insert itself.
    //
    // Converting keeps what a damaged log holds: an event whose payload row is missing
    // gets an empty body, which verification reports as altered at its seq.
    "ALTER TABLE events ADD COLUMN body BYTEA, ADD COLUMN body_at BIGINT;
     CREATE TEMP TABLE first_with_payload ON COMMIT DROP AS
        SELECT payload_hash, min(seq) AS seq FROM events GROUP BY payload_hash;
     UPDATE events e SET
        body = CASE WHEN f.seq = e.seq THEN coalesce(p.body, '\\x'::bytea) END,
        body_at = CASE WHEN f.seq = e.seq THEN NULL ELSE f.seq END
     FROM first_with_payload f LEFT JOIN payloads p ON p.hash = f.payload_hash
     WHERE f.payload_hash = e.payload_hash;
     DROP VIEW events_json;
     DROP VIEW payloads_json;
     DROP TABLE payloads;
     CREATE VIEW payloads_json AS
        SELECT payload_hash AS hash, body, toka_json_of(body) AS body_json
        FROM events WHERE body IS NOT NULL;
     CREATE VIEW events_json AS
        SELECT e.seq, e.id, e.kind, e.ts, e.origin, e.jti,
               toka_json_of(coalesce(e.body, b.body)) AS body_json
        FROM events e LEFT JOIN events b ON b.seq = e.body_at;",
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Creates `schema` if needed and brings it to [`SCHEMA_VERSION`].
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    // One lock per schema name: concurrent starters wait here, then see the work done.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
        .await
        .map_err(backend)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE IF NOT EXISTS \"{schema}\".toka_schema (version BIGINT NOT NULL);"
    ))
    .await
    .map_err(backend)?;
    let row = tx
        .query_opt(
            &format!("SELECT version FROM \"{schema}\".toka_schema"),
            &[],
        )
        .await
        .map_err(backend)?;
    let found: i64 = row.map(|r| r.get(0)).unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            driver: DRIVER,
            found,
            supported: SCHEMA_VERSION,
        });
    }
    tx.batch_execute(&format!("SET LOCAL search_path TO \"{schema}\""))
        .await
        .map_err(backend)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).await.map_err(backend)?;
        tracing::info!(schema, version = index + 1, "postgres schema migrated");
    }
    if found < SCHEMA_VERSION {
        tx.execute("DELETE FROM toka_schema", &[])
            .await
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO toka_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .await
        .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(())
}
