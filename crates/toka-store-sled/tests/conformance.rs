#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The storage conformance kit on sled.

mod common;

toka_store_core::conformance_tests!(common::SledHarness);

/// Issue 9: every append is flushed (fsynced) before it returns; read back from the
/// open store, so dropping the flush fails here (the SIGKILL tests alone would pass).
#[tokio::test]
async fn every_append_is_flushed_before_it_returns() {
    use toka_store_core::StorageBackend as _;
    let dir = tempfile::tempdir().unwrap();
    let store = toka_store_sled::SledStore::open(dir.path().join("db"))
        .await
        .unwrap();
    let mut head = toka_store_core::Head::EMPTY;
    for _ in 0..5 {
        let records = toka_store_core::testkit::batch(head, 2, 20);
        head = store.append(head.seq, &records).await.unwrap();
    }
    assert_eq!(store.flushed_appends(), 5);
}
