//! [`EventPages`]: walk a log page by page, so no reader has to hold it all.

use crate::backend::StorageBackend;
use crate::error::StoreError;
use crate::record::EventRecord;

/// How many records a page holds by default.
pub const DEFAULT_PAGE: usize = 4096;

/// Reads a log forward from a `seq`, one page per call to [`EventPages::next_page`].
pub struct EventPages<'a> {
    store: &'a dyn StorageBackend,
    next: u64,
    until: Option<u64>,
    page: usize,
}

impl<'a> EventPages<'a> {
    /// Pages of `store` from `from` (inclusive) to the end of the log.
    pub fn new(store: &'a dyn StorageBackend, from: u64) -> Self {
        Self {
            store,
            next: from.max(1),
            until: None,
            page: DEFAULT_PAGE,
        }
    }

    /// Stops after `seq` (inclusive).
    pub fn until(mut self, seq: u64) -> Self {
        self.until = Some(seq);
        self
    }

    /// Uses pages of `size` records.
    pub fn page_size(mut self, size: usize) -> Self {
        self.page = size.max(1);
        self
    }

    /// The next page; empty once the end (or `until`) is reached.
    pub async fn next_page(&mut self) -> Result<Vec<EventRecord>, StoreError> {
        let mut limit = self.page;
        if let Some(until) = self.until {
            if self.next > until {
                return Ok(Vec::new());
            }
            limit = limit.min((until - self.next + 1) as usize);
        }
        let records = self.store.read_range(self.next, limit).await?;
        if let Some(last) = records.last() {
            self.next = last.header.seq + 1;
        }
        Ok(records)
    }
}
