//! [`Subscription`]: every committed record from a `seq` on, history then live, with no
//! gap and no duplicate.
//!
//! How: the subscription task joins the live bus *first*, then reads the store up to
//! the committed head, then takes records from the bus, skipping those it already
//! sent. Any gap on the bus (the task fell more than the bus's capacity behind, or a
//! record was skipped) sends it back to the store to read what it missed; a slow
//! subscriber is never silently dropped.

use std::sync::Arc;

use toka_bus_core::{EventBus as _, RecvError};
use toka_store_core::{EventRecord, StoreError};
use tokio::sync::mpsc;

use crate::shared::Shared;

const PAGE: usize = 1024;
const BUFFER: usize = 1024;

/// A stream of committed records, in `seq` order.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Result<Arc<EventRecord>, StoreError>>,
}

impl Subscription {
    /// The next record, waiting for one to be committed. An `Err` (the store failed
    /// while reading history) ends the subscription; dropping it stops the feed.
    pub async fn next(&mut self) -> Option<Result<Arc<EventRecord>, StoreError>> {
        self.rx.recv().await
    }
}

pub(crate) fn subscribe(shared: Arc<Shared>, from: u64) -> Subscription {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        if let Err(e) = feed(&shared, from.max(1), &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Subscription { rx }
}

type Tx = mpsc::Sender<Result<Arc<EventRecord>, StoreError>>;

/// Ok(()) when the consumer went away or the runtime closed.
async fn feed(shared: &Shared, mut next: u64, tx: &Tx) -> Result<(), StoreError> {
    let mut live = shared.bus.subscribe();
    let mut head_watch = shared.head.subscribe();
    loop {
        // History: everything committed up to now, from the store.
        let head = head_watch.borrow_and_update().seq;
        while next <= head {
            let limit = PAGE.min((head - next + 1) as usize);
            let page = shared.store.read_range(next, limit).await?;
            if page.is_empty() {
                break;
            }
            for record in page {
                next = record.header.seq + 1;
                if tx.send(Ok(Arc::new(record))).await.is_err() {
                    return Ok(());
                }
            }
        }
        // Live: from the bus until a gap sends us back to the store.
        loop {
            // A consumer that went away releases the runtime at once, not at the
            // next event (it holds the store open).
            let received = tokio::select! {
                r = live.recv() => r,
                () = tx.closed() => return Ok(()),
            };
            match received {
                Ok(record) => {
                    let seq = record.header.seq;
                    if seq < next {
                        continue; // already sent from history
                    }
                    if seq > next {
                        break; // missed something: read it from the store
                    }
                    next = seq + 1;
                    if tx.send(Ok(record)).await.is_err() {
                        return Ok(());
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(
                        missed = n,
                        from = next,
                        "subscriber lagged; catching up from the store"
                    );
                    break;
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
}
