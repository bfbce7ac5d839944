//! What every converted (migrated) store must still do with the log it was given.

use crate::backend::StorageBackend;
use crate::chain::seal;
use crate::hash::Hash32;
use crate::record::EventRecord;
use crate::testkit::event;
use crate::verify::{Verdict, verify};

/// `store`, opened on a log an older version wrote as `written` (at least 9 records),
/// reads it back as written, verifies intact, finds a record by id and by payload hash;
/// then appends one record whose payload repeats the first's (the caller checks that
/// no copy was stored: only it can look at the tables).
pub async fn reads_back_as_written<S: StorageBackend>(store: &S, written: &[EventRecord]) {
    assert_eq!(
        store.read_range(1, usize::MAX).await.expect("read"),
        written
    );
    let verdict = verify(store, 1, Hash32::ZERO, None, |_| {})
        .await
        .expect("verify");
    assert!(
        matches!(verdict, Verdict::Intact { checked, .. } if checked == written.len() as u64),
        "{verdict:?}"
    );
    let r = &written[8];
    assert_eq!(
        store
            .read_by_id(r.header.id)
            .await
            .expect("read by id")
            .as_ref(),
        Some(r)
    );
    assert_eq!(
        store
            .read_payload(&r.header.payload_hash)
            .await
            .expect("read payload"),
        Some(r.payload.clone())
    );
    // Appending goes on, with a payload the old log holds.
    let head = store.head().await.expect("head");
    let mut next = event(head.seq + 1, 0);
    next.payload.clone_from(&written[0].payload);
    store
        .append(head.seq, &seal(head, vec![next]))
        .await
        .expect("append");
}
