#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
//! A log written by schema v3 (payloads in a table of their own, keyed by hash): it
//! migrates on open and reads back exactly as written, damage included.

use toka_store_core::testkit::{log_with_repeated_payloads, reads_back_as_written};
use toka_store_core::{Corruption, EventRecord, Hash32, Verdict, parents_json, verify};
use toka_store_postgres::{PostgresStore, SCHEMA_VERSION};

fn url() -> String {
    std::env::var("TOKA_POSTGRES_URL").unwrap_or_else(|_| {
        let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
        format!("host=127.0.0.1 port=5432 dbname=test user={user}")
    })
}

async fn connect() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI has PostgreSQL at {}: {e}",
                url()
            );
            eprintln!("\n*** SKIPPED: no PostgreSQL at {} ({e}) ***\n", url());
            None
        }
    }
}

/// The schema as migrations 1 to 3 left it.
const V3: &str = "
    CREATE TABLE payloads (hash BYTEA PRIMARY KEY, body BYTEA NOT NULL);
    CREATE TABLE events (seq BIGINT PRIMARY KEY, id UUID NOT NULL UNIQUE, kind TEXT NOT NULL,
        ts BIGINT NOT NULL, intent UUID NOT NULL, parents TEXT NOT NULL, origin UUID NOT NULL,
        jti TEXT, payload_hash BYTEA NOT NULL, digest BYTEA NOT NULL);
    CREATE TABLE head (only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
        seq BIGINT NOT NULL, digest BYTEA NOT NULL);
    CREATE TABLE snapshots (seq BIGINT PRIMARY KEY, chain_digest BYTEA NOT NULL,
        state_digest BYTEA NOT NULL, state BYTEA NOT NULL);
    CREATE FUNCTION toka_json_of(body BYTEA) RETURNS JSONB LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
     BEGIN RETURN convert_from(body, 'UTF8')::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END $fn$;
    CREATE VIEW payloads_json AS SELECT hash, body, toka_json_of(body) AS body_json FROM payloads;
    CREATE VIEW events_json AS
        SELECT e.seq, e.id, e.kind, e.ts, e.origin, e.jti, toka_json_of(p.body) AS body_json
        FROM events e JOIN payloads p ON p.hash = e.payload_hash;
    CREATE TABLE checkpoints (id BIGSERIAL PRIMARY KEY, seq BIGINT NOT NULL, body TEXT NOT NULL);
    CREATE TABLE toka_schema (version BIGINT NOT NULL);
    INSERT INTO toka_schema VALUES (3);";

/// Writes `records` into a new schema `schema` as the v3 driver did.
async fn v3_log(client: &tokio_postgres::Client, schema: &str, records: &[EventRecord]) {
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}; {V3}"
        ))
        .await
        .unwrap();
    for r in records {
        let h = &r.header;
        client
            .execute(
                "INSERT INTO payloads (hash, body) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                &[&h.payload_hash.as_bytes().as_slice(), &r.payload],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO events VALUES ($1, $2::text::uuid, $3, $4, $5::text::uuid, $6, $7::text::uuid, $8, $9, $10)",
                &[
                    &(h.seq as i64),
                    &h.id.to_string(),
                    &h.kind,
                    &(h.timestamp.as_micros() as i64),
                    &h.intent.to_string(),
                    &parents_json(&h.parents),
                    &h.origin.to_string(),
                    &h.jti,
                    &h.payload_hash.as_bytes().as_slice(),
                    &h.digest.as_bytes().as_slice(),
                ],
            )
            .await
            .unwrap();
    }
    let head = records.last().map(|r| r.header.clone());
    let (seq, digest) = head.map_or((0, Hash32::ZERO), |h| (h.seq as i64, h.digest));
    client
        .execute(
            "INSERT INTO head (seq, digest) VALUES ($1, $2)",
            &[&seq, &digest.as_bytes().as_slice()],
        )
        .await
        .unwrap();
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_version_3_log_reads_back_as_written_and_keeps_each_payload_once() {
    let Some(client) = connect().await else {
        return;
    };
    let schema = format!("toka_mig_{}", std::process::id());
    let written = log_with_repeated_payloads(30);
    v3_log(&client, &schema, &written).await;
    let store = PostgresStore::open(&url(), &schema).await.unwrap();
    // Appending goes on; a payload the old log held is not stored again.
    reads_back_as_written(&store, &written).await;
    let s = &schema;
    assert_eq!(
        count(&client, &format!("SELECT version FROM {s}.toka_schema")).await,
        SCHEMA_VERSION
    );
    assert_eq!(
        count(
            &client,
            &format!("SELECT count(*) FROM {s}.events WHERE body IS NOT NULL")
        )
        .await,
        20
    );
    assert_eq!(
        count(&client, &format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{s}' AND table_name = 'payloads'")).await,
        0
    );
    // What psql users read: every event's payload, repeated ones included.
    let n = count(
        &client,
        &format!("SELECT count(*) FROM {s}.events_json WHERE body_json IS NOT NULL"),
    )
    .await;
    assert_eq!(n, 31);
    let row = client
        .query_one(
            &format!("SELECT body_json->>'n' FROM {s}.events_json WHERE seq = 9"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("8"));
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_damaged_version_3_log_migrates_and_the_damage_is_reported_at_its_seq() {
    let Some(client) = connect().await else {
        return;
    };
    let schema = format!("toka_migd_{}", std::process::id());
    let written = log_with_repeated_payloads(30);
    v3_log(&client, &schema, &written).await;
    client
        .batch_execute(&format!(
            "DELETE FROM {schema}.payloads WHERE hash = (SELECT payload_hash FROM {schema}.events WHERE seq = 13)"
        ))
        .await
        .unwrap();
    let store = PostgresStore::open(&url(), &schema).await.unwrap();
    let verdict = verify(&store, 1, Hash32::ZERO, None, |_| {}).await.unwrap();
    assert_eq!(
        verdict,
        Verdict::Broken {
            seq: 13,
            corruption: Corruption::PayloadAltered
        }
    );
    store.drop_schema().await.unwrap();
}
