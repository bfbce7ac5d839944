//! The conformance harness for the sled driver: tampers through a plain `sled::open`.

use std::path::Path;

use async_trait::async_trait;
use toka_store_core::StoreError;
use toka_store_core::testkit::{Harness, Tamper};
use toka_store_sled::SledStore;

pub struct SledHarness;

fn folder(dir: &Path) -> std::path::PathBuf {
    dir.join("sled")
}

/// sled releases its folder lock when the last handle (and its flusher) is gone; give
/// it a moment rather than failing the reopen.
async fn open_retrying(dir: &Path) -> SledStore {
    for _ in 0..100 {
        match SledStore::open(folder(dir)).await {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    SledStore::open(folder(dir)).await.unwrap()
}

fn raw_open(dir: &Path) -> sled::Db {
    for _ in 0..100 {
        if let Ok(db) = sled::open(folder(dir)) {
            return db;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sled::open(folder(dir)).unwrap()
}

#[async_trait]
impl Harness for SledHarness {
    type Store = SledStore;
    const DURABLE: bool = true;

    async fn open(dir: &Path) -> Result<SledStore, StoreError> {
        // A reopen in the same process can find the folder still locked by the
        // dropped handle's flusher for a moment; only that is waited out (2 s at most).
        for _ in 0..100 {
            match SledStore::open(folder(dir)).await {
                Err(StoreError::Locked { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
        SledStore::open(folder(dir)).await
    }

    async fn tamper(store: SledStore, dir: &Path, tamper: Tamper) -> SledStore {
        drop(store);
        let dir_owned = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let db = raw_open(&dir_owned);
            let events = db.open_tree("events").unwrap();
            match tamper {
                Tamper::FlipPayloadByte { seq } => {
                    let header: serde_json::Value =
                        serde_json::from_slice(&events.get(seq.to_be_bytes()).unwrap().unwrap())
                            .unwrap();
                    let hash: toka_store_core::Hash32 =
                        header["payload_hash"].as_str().unwrap().parse().unwrap();
                    let payloads = db.open_tree("payloads").unwrap();
                    let mut bytes = payloads.get(hash.as_bytes()).unwrap().unwrap().to_vec();
                    bytes[3] ^= 1;
                    payloads.insert(hash.as_bytes(), bytes).unwrap();
                }
                Tamper::DeleteRecord { seq } => {
                    events.remove(seq.to_be_bytes()).unwrap();
                }
                Tamper::SwapRecords { a, b } => {
                    let va = events.get(a.to_be_bytes()).unwrap().unwrap();
                    let vb = events.get(b.to_be_bytes()).unwrap().unwrap();
                    events.insert(a.to_be_bytes(), vb).unwrap();
                    events.insert(b.to_be_bytes(), va).unwrap();
                }
            }
            db.flush().unwrap();
        })
        .await
        .unwrap();
        open_retrying(dir).await
    }

    async fn stored_payloads(store: &SledStore, _dir: &Path) -> u64 {
        store.payload_count() as u64
    }
}
