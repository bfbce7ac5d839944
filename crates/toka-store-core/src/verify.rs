//! [`verify`]: walk a log and prove its chain, or name the first bad `seq`.

use std::fmt;

use crate::backend::StorageBackend;
use crate::cursor::ChainCursor;
use crate::error::StoreError;
use crate::hash::Hash32;
use crate::pages::EventPages;
use crate::record::EventRecord;

/// What is wrong at the first bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The payload bytes do not hash to the header's payload hash.
    PayloadAltered,
    /// The header does not produce its digest from the previous one (a field was
    /// changed, or the digest itself).
    HeaderAltered,
    /// The record at this `seq` is missing (the next one found is `found`).
    Missing {
        /// The `seq` read instead.
        found: u64,
    },
    /// The record here belongs at another position: the record that follows it would
    /// chain correctly here (two records were swapped).
    Reordered,
    /// The log ends before the `seq` it must reach (e.g. a snapshot's).
    Truncated {
        /// The last `seq` present.
        last: u64,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PayloadAltered => f.write_str("payload altered (hash mismatch)"),
            Self::HeaderAltered => f.write_str("header altered (digest does not chain)"),
            Self::Missing { found } => write!(f, "record missing (next present is seq {found})"),
            Self::Reordered => f.write_str("records reordered (the next record belongs here)"),
            Self::Truncated { last } => write!(f, "log truncated (ends at seq {last})"),
        }
    }
}

/// The result of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record checked out.
    Intact {
        /// How many records were checked.
        checked: u64,
        /// The digest of the last one.
        digest: Hash32,
    },
    /// The first bad record.
    Broken {
        /// Its `seq`.
        seq: u64,
        /// What is wrong.
        corruption: Corruption,
    },
}

/// Verifies the records from `from` up to `to` (inclusive; `None` = the head), chaining
/// from `start_digest` (the digest of record `from - 1`; zero when `from` is 1).
/// Recomputes every payload hash and digest from the bytes exactly as stored.
/// `progress` is called after each page with the last `seq` checked.
pub async fn verify(
    store: &dyn StorageBackend,
    from: u64,
    start_digest: Hash32,
    to: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<Verdict, StoreError> {
    let from = from.max(1);
    let mut pages = EventPages::new(store, from);
    if let Some(to) = to {
        pages = pages.until(to);
    }
    let mut cursor = ChainCursor::at(from, start_digest);
    // The last record of the previous page, kept so a reorder across a page boundary
    // can still be recognised.
    let mut carry: Option<EventRecord> = None;
    loop {
        let mut page = pages.next_page().await?;
        if page.is_empty() && carry.is_none() {
            break;
        }
        let at_end = page.is_empty();
        if let Some(c) = carry.take() {
            page.insert(0, c);
        }
        let checkable = if at_end { page.len() } else { page.len() - 1 };
        for i in 0..checkable {
            if let Err(corruption) = cursor.accept(&page[i]) {
                // Would the next record chain here? Then the two were swapped.
                let corruption = match (corruption, page.get(i + 1)) {
                    (Corruption::HeaderAltered, Some(next)) if cursor.would_chain_here(next) => {
                        Corruption::Reordered
                    }
                    (c, _) => c,
                };
                return Ok(Verdict::Broken {
                    seq: cursor.next_seq(),
                    corruption,
                });
            }
        }
        if at_end {
            break;
        }
        carry = page.pop();
        progress(cursor.head().seq);
    }
    progress(cursor.head().seq);
    let expected = cursor.next_seq();
    let prev = cursor.head().digest;
    if let Some(to) = to
        && expected <= to
    {
        return Ok(Verdict::Broken {
            seq: expected,
            corruption: Corruption::Truncated { last: expected - 1 },
        });
    }
    Ok(Verdict::Intact {
        checked: expected - from,
        digest: prev,
    })
}
