//! [`Sealed`]: a batch this process placed after a head, so that a driver need not
//! hash it again before writing it.
//!
//! [`StorageBackend::append`](crate::StorageBackend::append) takes records from
//! anywhere (an import, a fork, a test), so every driver recomputes their payload
//! hashes and digests before writing ([`check_batch`](crate::check_batch)). The
//! runtime's own batches were hashed a moment before by [`seal`]: hashing them again
//! found nothing, and was a tenth of an append. A `Sealed` can only be made by sealing
//! (its records are never handed out mutably), so its hashes are right by
//! construction; what a driver still checks ([`admit_sealed`]) is that it was sealed
//! after the head the log has, digest included, and the size limits.

use crate::chain::{Limits, head_after, seal};
use crate::error::AppendError;
use crate::record::{EventRecord, Head, NewEvent};

/// Records sealed in this process after [`after`](Self::after), in order.
#[derive(Debug, Clone)]
pub struct Sealed {
    after: Head,
    records: Vec<EventRecord>,
}

impl Sealed {
    /// Seals `events` after `after` (numbers, payload hashes, chained digests).
    pub fn new(after: Head, events: Vec<NewEvent>) -> Self {
        Self {
            after,
            records: seal(after, events),
        }
    }

    /// Seals `events` after the last record, as part of this batch.
    pub fn extend(&mut self, events: Vec<NewEvent>) {
        let tip = self.tip();
        self.records.extend(seal(tip, events));
    }

    /// The head this batch was sealed after (what it must be appended to).
    pub fn after(&self) -> Head {
        self.after
    }

    /// The head once this batch is appended.
    pub fn tip(&self) -> Head {
        head_after(self.after, &self.records)
    }

    /// The records.
    pub fn records(&self) -> &[EventRecord] {
        &self.records
    }

    /// The records, given up.
    pub fn into_records(self) -> Vec<EventRecord> {
        self.records
    }

    /// Whether there is nothing to append.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// [`admit`](crate::admit) for a [`Sealed`] batch, without hashing: the head is the one
/// it was sealed after (else `Conflict` when the `seq` differs, `InvalidBatch` when only
/// the digest does), and every record is within the limits. `Ok(false)`: empty.
pub fn admit_sealed(head: &Head, batch: &Sealed) -> Result<bool, AppendError> {
    if head.seq != batch.after.seq {
        return Err(AppendError::Conflict {
            expected: batch.after.seq,
            actual: head.seq,
        });
    }
    let Some(first) = batch.records.first() else {
        return Ok(false);
    };
    if head.digest != batch.after.digest {
        return Err(AppendError::InvalidBatch {
            seq: first.header.seq,
            reason: "sealed after a head whose digest is not the log's".into(),
        });
    }
    let mut limits = Limits::for_batch(&batch.records);
    for record in &batch.records {
        limits.check(record)?;
    }
    Ok(true)
}
