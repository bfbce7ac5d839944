#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Storage throughput, per driver, with the plain-table baseline in the same run.
//!
//! * `append/<driver>/<batch>`: events per second appended in batches of 1, 64 and
//!   1024 events with ~300-byte payloads. Sealing (hashing and chaining) happens
//!   before the timed call: the runtime seals, the driver stores. This times
//!   `append`, which hashes the batch again (records from anywhere); the runtime's
//!   own batches go through `append_sealed`, which does not: `append/sqlite_sealed/<batch>`
//!   times that path.
//! * `append/plain_sqlite/<batch>`, `append/plain_postgres/<batch>`: the baseline of
//!   `toka_store_bench::plain`, a plain table `t(id, digest, payload)` with the same
//!   batch sizes, one transaction per batch; no Toka code, and not the drivers' SQL.
//! * `read_verify/<driver>`: reading a 200 000-event log from seq 1 with full chain
//!   verification (payload hashes and digests recomputed); `plain_sqlite` reads as
//!   many rows of the plain table in id order.
//!
//! Run: `cargo bench -p toka-store-bench`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use toka_store_bench::plain;
use toka_store_core::testkit::{batch, sealed_batch};
use toka_store_core::{Hash32, Head, StorageBackend, Verdict, verify};
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

/// Times `iters` appends of `size`-event batches; sealing is outside the timing. With
/// `sealed`, through `append_sealed` (the runtime's path: no second hashing), else
/// through `append`.
async fn timed_appends(
    store: &dyn StorageBackend,
    size: usize,
    iters: u64,
    sealed: bool,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut head = store.head().await.unwrap();
    for _ in 0..iters {
        let batch = sealed_batch(head, size, PAYLOAD);
        let start = Instant::now();
        head = if sealed {
            store.append_sealed(std::sync::Arc::new(batch)).await
        } else {
            store.append(head.seq, batch.records()).await
        }
        .unwrap();
        total += start.elapsed();
    }
    total
}

/// The plain-table baseline ([`plain`]): `iters` transactions of `size` rows, timed
/// by the baseline itself (which then reads them back, untimed here).
fn plain_sqlite_appends(dir: &std::path::Path, size: usize, iters: u64) -> Duration {
    let rows = iters * size as u64;
    let figures = plain::sqlite(&dir.join("plain.db"), rows, size as u64).unwrap();
    Duration::from_secs_f64(rows as f64 / figures.append_per_second)
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

fn append(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    for size in [1usize, 64, 1024] {
        group.throughput(Throughput::Elements(size as u64));

        // `sqlite_sealed`: the runtime's own path, batches it sealed, which the driver
        // does not hash again.
        for (name, sealed) in [("sqlite", false), ("sqlite_sealed", true)] {
            let dir = tempfile::tempdir().unwrap();
            let store = rt
                .block_on(SqliteStore::open(dir.path().join("toka.db")))
                .unwrap();
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let s = store.clone();
                    async move { timed_appends(&s, size, iters, sealed).await }
                })
            });
        }

        let dir = tempfile::tempdir().unwrap();
        group.bench_function(BenchmarkId::new("plain_sqlite", size), |b| {
            b.iter_custom(|iters| plain_sqlite_appends(dir.path(), size, iters))
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
                async move { timed_appends(&s, size, iters, false).await }
            })
        });

        if let Some(url) = postgres_url(&rt) {
            let schema = format!("toka_bench_plain_{size}_{}", std::process::id());
            group.bench_function(BenchmarkId::new("plain_postgres", size), |b| {
                b.iter_custom(|iters| {
                    let rows = iters * size as u64;
                    let figures = rt
                        .block_on(plain::postgres(&url, &schema, rows, size as u64))
                        .unwrap();
                    Duration::from_secs_f64(rows as f64 / figures.append_per_second)
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
                    async move { timed_appends(&s, size, iters, false).await }
                })
            });
            rt.block_on(pg.drop_schema()).unwrap();
        }

        let memory = MemoryStore::new();
        group.bench_function(BenchmarkId::new("memory", size), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let s = memory.clone();
                async move { timed_appends(&s, size, iters, false).await }
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
    let plain_dir = tempfile::tempdir().unwrap();
    group.bench_function("plain_sqlite", |b| {
        b.iter_custom(|iters| {
            let rows = READ_EVENTS as u64;
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let figures =
                    plain::sqlite(&plain_dir.path().join("plain.db"), rows, 4096).unwrap();
                total += Duration::from_secs_f64(rows as f64 / figures.read_per_second);
            }
            total
        })
    });
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
