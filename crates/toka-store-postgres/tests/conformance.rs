#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The storage conformance kit against a real PostgreSQL, and what is particular to it.

mod common;

use common::{PostgresHarness, url};
use toka_store_core::testkit::{Harness, batch};
use toka_store_core::{Head, StorageBackend, StoreError};
use toka_store_postgres::PostgresStore;

toka_store_core::conformance_tests!(PostgresHarness);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_schema_see_each_others_appends() {
    if PostgresHarness::skip_reason().await.is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema(dir.path());
    // Two handles opened together: migrations must not collide.
    let url = url();
    let (a, b) = tokio::join!(
        PostgresStore::open(&url, &schema),
        PostgresStore::open(&url, &schema)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut watch = b.watch_head().unwrap();
    let head = a.append(0, &batch(Head::EMPTY, 3, 50)).await.unwrap();
    // b learns of a's append through NOTIFY, without being asked.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        watch.wait_for(|h| *h >= head.seq),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(b.head().await.unwrap(), head);
    // b's append on the old head conflicts; the database decided.
    let stale = batch(Head::EMPTY, 1, 50);
    assert!(matches!(
        b.append(0, &stale).await,
        Err(toka_store_core::AppendError::Conflict {
            expected: 0,
            actual: 3
        })
    ));
    a.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_head_keeps_every_other_appender_out_until_it_appends_or_is_dropped() {
    use std::time::Duration;
    use toka_store_core::AppendError;
    if PostgresHarness::skip_reason().await.is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema(dir.path());
    let (a, b) = (
        PostgresStore::open(&url(), &schema).await.unwrap(),
        PostgresStore::open(&url(), &schema).await.unwrap(),
    );
    let first = a.append(0, &batch(Head::EMPTY, 2, 50)).await.unwrap();

    let lease = a.lock_head(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(lease.head(), first);
    // While it is held, another node waits for the head and, past its bound, is told so.
    let busy = b.lock_head(Duration::from_millis(200)).await;
    assert!(
        matches!(busy, Err(StoreError::HeadBusy { waited_ms: 200, .. })),
        "{:?}",
        busy.err()
    );
    // A plain append waits behind the lease too, and loses to it.
    let stale = batch(first, 1, 50);
    let racing = {
        let b = b.clone();
        let stale = stale.clone();
        tokio::spawn(async move { b.append(first.seq, &stale).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!racing.is_finished(), "an append got past a held head");
    let second = lease.append(&batch(first, 3, 50)).await.unwrap();
    assert_eq!(second.seq, first.seq + 3);
    assert!(matches!(
        racing.await.unwrap(),
        Err(AppendError::Conflict { actual, .. }) if actual == second.seq
    ));

    // A batch that does not chain from the held head is refused and writes nothing.
    let lease = b.lock_head(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(lease.head(), second);
    let refused = lease.append(&batch(first, 1, 50)).await;
    assert!(
        matches!(refused, Err(AppendError::InvalidBatch { .. })),
        "{refused:?}"
    );
    assert_eq!(a.head().await.unwrap(), second);

    // Given up either way (released, or dropped mid-batch), the head is free at once.
    let lease = a.lock_head(Duration::from_secs(5)).await.unwrap().unwrap();
    lease.release().await;
    let lease = b
        .lock_head(Duration::from_millis(500))
        .await
        .unwrap()
        .unwrap();
    drop(lease);
    let lease = a
        .lock_head(Duration::from_millis(2000))
        .await
        .unwrap()
        .unwrap();
    let third = lease.append(&batch(second, 1, 50)).await.unwrap();
    assert_eq!(third.seq, second.seq + 1);
    assert_eq!(b.head().await.unwrap(), third);
    a.drop_schema().await.unwrap();
}

#[tokio::test]
async fn unreachable_server_and_bad_schema_names_are_clear_errors() {
    let err = PostgresStore::open(
        "host=127.0.0.1 port=1 dbname=test user=nobody connect_timeout=2",
        "toka_x",
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("cannot connect to PostgreSQL"),
        "{err}"
    );
    let err = PostgresStore::open(&url(), "Robert'); DROP TABLE")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidRequest(_)), "{err:?}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    if PostgresHarness::skip_reason().await.is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema(dir.path());
    let store = PostgresStore::open(&url(), &schema).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("UPDATE {schema}.toka_schema SET version = 99"))
        .await
        .unwrap();
    let err = PostgresStore::open(&url(), &schema).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn tls_when_the_connection_string_requires_it() {
    let cert = std::path::Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    if PostgresHarness::skip_reason().await.is_some() {
        return;
    }
    // Under CI this test must run: a missing certificate fails it.
    assert!(
        cert.exists() || std::env::var_os("CI").is_none(),
        "no server certificate at {}",
        cert.display()
    );
    if !cert.exists() {
        eprintln!("\n*** SKIPPED tls test: no snakeoil certificate ***\n");
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "postgres".into());
    // The server's certificate names `localhost`; TLS verifies that name.
    let url = format!("host=localhost port=5432 dbname=test user={user} sslmode=require");
    let schema = format!("toka_tls_{}", std::process::id());
    let store = PostgresStore::open_with_ca(&url, &schema, Some(cert))
        .await
        .unwrap();
    store.append(0, &batch(Head::EMPTY, 2, 50)).await.unwrap();
    assert_eq!(store.head().await.unwrap().seq, 2);
    // The same server by an address its certificate does not name: the handshake is
    // refused, so the certificate really is verified.
    let wrong_name = format!("host=127.0.0.1 port=5432 dbname=test user={user} sslmode=require");
    let err = PostgresStore::open_with_ca(&wrong_name, &schema, Some(cert))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
    store.drop_schema().await.unwrap();
}

/// What a psql user reads (`body_json`) is computed from the bytes the chain covers:
/// it cannot be edited on its own, and editing `body` is caught by `verify` (issue 9).
#[tokio::test]
async fn body_json_cannot_disagree_with_body() {
    if PostgresHarness::skip_reason().await.is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema(dir.path());
    let store = PostgresStore::open(&url(), &schema).await.unwrap();
    let mut records = batch(Head::EMPTY, 3, 50);
    records.truncate(3);
    store.append(0, &records).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let edit = client
        .batch_execute(&format!(
            "UPDATE {schema}.payloads_json SET body_json = '{{\"forged\": true}}'"
        ))
        .await;
    let err = edit.unwrap_err();
    let message = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("body_json"), "{message}");
    // No second copy is stored to edit.
    let copy = client
        .batch_execute(&format!("UPDATE {schema}.events SET body_json = '{{}}'"))
        .await;
    assert!(copy.is_err(), "events stores a body_json column");
    client
        .batch_execute(&format!(
            "UPDATE {schema}.events SET body = convert_to('{{\"forged\": true}}', 'UTF8')
             WHERE seq = 2"
        ))
        .await
        .unwrap();
    let row = client
        .query_one(
            &format!("SELECT body_json->>'forged' FROM {schema}.events_json WHERE seq = 2"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("true"));
    let verdict = toka_store_core::verify(&store, 1, toka_store_core::Hash32::ZERO, None, |_| {})
        .await
        .unwrap();
    assert!(
        matches!(verdict, toka_store_core::Verdict::Broken { seq: 2, .. }),
        "{verdict:?}"
    );
    store.drop_schema().await.unwrap();
}

/// Two nodes, each with its own hints: a payload the other node stored is stored again
/// (a hint it does not have costs a copy), a payload it stored itself is not, and every
/// event reads back with its own payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_shared_by_two_nodes_read_back_right() {
    if PostgresHarness::skip_reason().await.is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema(dir.path());
    let a = PostgresStore::open(&url(), &schema).await.unwrap();
    let b = PostgresStore::open(&url(), &schema).await.unwrap();
    let same = |n: u64| toka_store_core::NewEvent {
        payload: b"{\"same\":true}".to_vec(),
        ..toka_store_core::testkit::event(n, 0)
    };
    let head = a
        .append(
            0,
            &toka_store_core::seal(Head::EMPTY, vec![same(1), same(2)]),
        )
        .await
        .unwrap();
    let head = b
        .append(head.seq, &toka_store_core::seal(head, vec![same(3)]))
        .await
        .unwrap();
    a.append(head.seq, &toka_store_core::seal(head, vec![same(4)]))
        .await
        .unwrap();
    assert_eq!(PostgresHarness::stored_payloads(&a, dir.path()).await, 2);
    for store in [&a, &b] {
        let read = store.read_range(1, 10).await.unwrap();
        assert_eq!(read.len(), 4);
        assert!(read.iter().all(|r| r.payload == b"{\"same\":true}"));
    }
    let verdict = toka_store_core::verify(&b, 1, toka_store_core::Hash32::ZERO, None, |_| {})
        .await
        .unwrap();
    assert!(
        matches!(verdict, toka_store_core::Verdict::Intact { checked: 4, .. }),
        "{verdict:?}"
    );
    // Pointing an event at another event's payload with psql is caught at its seq.
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let more = a.head().await.unwrap();
    a.append(more.seq, &batch(more, 3, 40)).await.unwrap();
    client
        .batch_execute(&format!(
            "UPDATE {schema}.events SET body = NULL, body_at = 1 WHERE seq = 6"
        ))
        .await
        .unwrap();
    let verdict = toka_store_core::verify(&a, 1, toka_store_core::Hash32::ZERO, None, |_| {})
        .await
        .unwrap();
    assert_eq!(
        verdict,
        toka_store_core::Verdict::Broken {
            seq: 6,
            corruption: toka_store_core::Corruption::PayloadAltered
        }
    );
    a.drop_schema().await.unwrap();
}
