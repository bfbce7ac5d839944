#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Storage throughput, per driver, with a raw rusqlite baseline in the same run.
//!
//! * `append/<driver>/<batch>`: events per second appended in batches of 1, 64 and
//!   1024 events with ~300-byte payloads. Sealing (hashing and chaining) happens
//!   before the timed call: the runtime seals, the driver stores (and re-checks).
//! * `append/raw_sqlite/<batch>`: plain rusqlite inserting the same rows into the same
//!   schema with the same pragmas (WAL, synchronous=FULL) and batch sizes, one
//!   transaction per batch; no Toka code.
//! * `read_verify/<driver>`: reading a 200 000-event log from seq 1 with full chain
//!   verification (payload hashes and digests recomputed).
//!
//! Run: `cargo bench -p toka-store-bench`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, OptionalExtension, params};
use toka_store_core::testkit::batch;
use toka_store_core::{EventRecord, Hash32, Head, StorageBackend, Verdict, parents_json, verify};
use toka_store_memory::MemoryStore;
use toka_store_sled::SledStore;
use toka_store_sqlite::SqliteStore;

const PAYLOAD: usize = 300;
const READ_EVENTS: usize = 200_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Times `iters` appends of `size`-event batches; sealing is outside the timing.
async fn timed_appends(store: &dyn StorageBackend, size: usize, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut head = store.head().await.unwrap();
    for _ in 0..iters {
        let records = batch(head, size, PAYLOAD);
        let start = Instant::now();
        head = store.append(head.seq, &records).await.unwrap();
        total += start.elapsed();
    }
    total
}

/// The raw baseline: the same rows, schema and pragmas, straight through rusqlite.
fn raw_sqlite(dir: &std::path::Path) -> Connection {
    let conn = Connection::open(dir.join("raw.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "cache_size", -65_536).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 16_384)
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE payloads (id INTEGER PRIMARY KEY, hash_prefix INTEGER NOT NULL, hash BLOB NOT NULL, body NOT NULL);
         CREATE INDEX payloads_by_hash_prefix ON payloads (hash_prefix);
         CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
             timestamp INTEGER NOT NULL, intent TEXT NOT NULL, parents TEXT NOT NULL, origin TEXT NOT NULL,
             jti TEXT, payload_hash BLOB NOT NULL, payload_id INTEGER NOT NULL, digest BLOB NOT NULL);",
    )
    .unwrap();
    conn
}

fn raw_append(conn: &mut Connection, records: &[EventRecord]) {
    let tx = conn.transaction().unwrap();
    {
        let mut find = tx
            .prepare_cached("SELECT id FROM payloads WHERE hash_prefix = ?1 AND hash = ?2")
            .unwrap();
        let mut payload = tx
            .prepare_cached("INSERT INTO payloads (hash_prefix, hash, body) VALUES (?1, ?2, ?3)")
            .unwrap();
        let mut event = tx
            .prepare_cached(
                "INSERT INTO events (seq, id, kind, timestamp, intent, parents, origin, jti, payload_hash, payload_id, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .unwrap();
        for r in records {
            let h = &r.header;
            let hash = h.payload_hash.as_bytes().as_slice();
            let prefix = i64::from_le_bytes(hash[..8].try_into().unwrap());
            let existing: Option<i64> = find
                .query_row(params![prefix, hash], |r| r.get(0))
                .optional()
                .unwrap();
            let payload_id = match existing {
                Some(id) => id,
                None => {
                    payload
                        .execute(params![
                            prefix,
                            hash,
                            std::str::from_utf8(&r.payload).unwrap()
                        ])
                        .unwrap();
                    tx.last_insert_rowid()
                }
            };
            event
                .execute(params![
                    h.seq as i64,
                    h.id.to_string(),
                    h.kind,
                    h.timestamp.as_micros() as i64,
                    h.intent.to_string(),
                    parents_json(&h.parents),
                    h.origin.to_string(),
                    h.jti,
                    hash,
                    payload_id,
                    h.digest.as_bytes().as_slice(),
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// The PostgreSQL to benchmark against, if one answers (`TOKA_POSTGRES_URL`, default
/// 127.0.0.1:5432/test as the current user).
fn postgres_url(rt: &tokio::runtime::Runtime) -> Option<String> {
    let url = std::env::var("TOKA_POSTGRES_URL").unwrap_or_else(|_| {
        format!(
            "host=127.0.0.1 port=5432 dbname=test user={}",
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        )
    });
    rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))
        .ok()
        .map(|_| url)
}

/// The raw PostgreSQL baseline: the driver's tables, filled with plain tokio-postgres.
async fn raw_postgres(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema};
             CREATE TABLE payloads (hash BYTEA PRIMARY KEY, body BYTEA NOT NULL, body_json JSONB);
             CREATE TABLE events (seq BIGINT PRIMARY KEY, id UUID NOT NULL UNIQUE, kind TEXT NOT NULL, ts BIGINT NOT NULL,
                 intent UUID NOT NULL, parents TEXT NOT NULL, origin UUID NOT NULL, jti TEXT, payload_hash BYTEA NOT NULL,
                 digest BYTEA NOT NULL);"
        ))
        .await
        .unwrap();
    client
}

async fn raw_postgres_append(client: &tokio_postgres::Client, records: &[EventRecord]) {
    let mut hashes = Vec::new();
    let mut bodies = Vec::new();
    let mut jsons = Vec::new();
    let (
        mut seqs,
        mut ids,
        mut kinds,
        mut stamps,
        mut intents,
        mut parents,
        mut origins,
        mut jtis,
        mut digests,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for r in records {
        let h = &r.header;
        hashes.push(h.payload_hash.as_bytes().to_vec());
        bodies.push(r.payload.clone());
        jsons.push(std::str::from_utf8(&r.payload).ok().map(str::to_string));
        seqs.push(h.seq as i64);
        ids.push(h.id.to_string());
        kinds.push(h.kind.clone());
        stamps.push(h.timestamp.as_micros() as i64);
        intents.push(h.intent.to_string());
        parents.push(parents_json(&h.parents));
        origins.push(h.origin.to_string());
        jtis.push(h.jti.clone());
        digests.push(h.digest.as_bytes().to_vec());
    }
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(
            "INSERT INTO payloads (hash, body, body_json) SELECT h, b, j::jsonb FROM UNNEST($1::bytea[], $2::bytea[], $3::text[]) AS t(h, b, j) ON CONFLICT (hash) DO NOTHING",
            &[&hashes, &bodies, &jsons],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO events (seq, id, kind, ts, intent, parents, origin, jti, payload_hash, digest)
             SELECT s, i::uuid, k, t, n::uuid, p, o::uuid, j, h, d FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[]) AS x(s, i, k, t, n, p, o, j, h, d)",
            &[&seqs, &ids, &kinds, &stamps, &intents, &parents, &origins, &jtis, &hashes, &digests],
        )
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    for size in [1usize, 64, 1024] {
        group.throughput(Throughput::Elements(size as u64));

        let dir = tempfile::tempdir().unwrap();
        let sqlite = rt
            .block_on(SqliteStore::open(dir.path().join("toka.db")))
            .unwrap();
        group.bench_function(BenchmarkId::new("sqlite", size), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let s = sqlite.clone();
                async move { timed_appends(&s, size, iters).await }
            })
        });

        let dir = tempfile::tempdir().unwrap();
        let mut conn = raw_sqlite(dir.path());
        let mut head = Head::EMPTY;
        group.bench_function(BenchmarkId::new("raw_sqlite", size), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let records = batch(head, size, PAYLOAD);
                    let start = Instant::now();
                    raw_append(&mut conn, &records);
                    total += start.elapsed();
                    head = toka_store_core::head_after(head, &records);
                }
                total
            })
        });

        let dir = tempfile::tempdir().unwrap();
        let sqlite_sync =
            toka_store_sqlite::SqliteStore::open_blocking(&dir.path().join("toka.db")).unwrap();
        let mut head = Head::EMPTY;
        group.bench_function(BenchmarkId::new("sqlite_sync", size), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let records = batch(head, size, PAYLOAD);
                    let start = Instant::now();
                    head = sqlite_sync.append_blocking(head.seq, &records).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });

        let dir = tempfile::tempdir().unwrap();
        let sled = rt
            .block_on(SledStore::open(dir.path().join("sled")))
            .unwrap();
        group.bench_function(BenchmarkId::new("sled", size), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let s = sled.clone();
                async move { timed_appends(&s, size, iters).await }
            })
        });

        if let Some(url) = postgres_url(&rt) {
            let schema = format!("toka_bench_raw_{size}_{}", std::process::id());
            let client = rt.block_on(raw_postgres(&url, &schema));
            let mut head = Head::EMPTY;
            group.bench_function(BenchmarkId::new("raw_postgres", size), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let records = batch(head, size, PAYLOAD);
                            let start = Instant::now();
                            raw_postgres_append(&client, &records).await;
                            total += start.elapsed();
                            head = toka_store_core::head_after(head, &records);
                        }
                        total
                    })
                })
            });
            let pg = rt
                .block_on(toka_store_postgres::PostgresStore::open(
                    &url,
                    &format!("toka_bench_{size}_{}", std::process::id()),
                ))
                .unwrap();
            group.bench_function(BenchmarkId::new("postgres", size), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let s = pg.clone();
                    async move { timed_appends(&s, size, iters).await }
                })
            });
            rt.block_on(pg.drop_schema()).unwrap();
            rt.block_on(client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")))
                .unwrap();
        }

        let memory = MemoryStore::new();
        group.bench_function(BenchmarkId::new("memory", size), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let s = memory.clone();
                async move { timed_appends(&s, size, iters).await }
            })
        });
    }
    group.finish();
}

async fn fill(store: &dyn StorageBackend) {
    let mut head = store.head().await.unwrap();
    while (head.seq as usize) < READ_EVENTS {
        let size = (READ_EVENTS - head.seq as usize).min(4096);
        head = store
            .append(head.seq, &batch(head, size, PAYLOAD))
            .await
            .unwrap();
    }
}

fn read_verify(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("read_verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt
        .block_on(SqliteStore::open(dir.path().join("toka.db")))
        .unwrap();
    let sled = rt
        .block_on(SledStore::open(dir.path().join("sled")))
        .unwrap();
    let memory = MemoryStore::new();
    let stores: [(&str, &dyn StorageBackend); 3] =
        [("sqlite", &sqlite), ("sled", &sled), ("memory", &memory)];
    group.throughput(Throughput::Elements(READ_EVENTS as u64));
    for (name, store) in stores {
        // Filled on first use, so a filtered run does not pay for the others.
        let mut filled = false;
        group.bench_function(name, |b| {
            if !filled {
                rt.block_on(fill(store));
                filled = true;
            }
            b.to_async(&rt).iter(|| async {
                let verdict = verify(store, 1, Hash32::ZERO, None, |_| {}).await.unwrap();
                assert!(matches!(verdict, Verdict::Intact { .. }));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append, read_verify);
criterion_main!(benches);
