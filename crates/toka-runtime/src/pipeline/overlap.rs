//! Deciding the next batch while the last one is being written (a log of one node).
//!
//! The append of batch N waits on the disk; the CPU is idle. So while N is in flight
//! the writer takes the next commands and decides them on its kernel, which already
//! holds N's effects, and seals them after N's last record: batch N+1 is *decided*,
//! not written. Its append starts only once N's returned `Ok`, and nobody hears about
//! N+1 before its own append does. At most one batch is in flight and one decided;
//! what arrives meanwhile joins the decided one, up to the batch limit.
//!
//! If N's append fails, N is handled by rule 5 (rebuild, look, answer), which also
//! throws away what N+1 was decided on; N+1 is decided again on the rebuilt state, by
//! the path that does not overlap, or refused `Unavailable` in an outage.
//!
//! On a shared log only while no other node appends: another node may append between N
//! and N+1, and then the store refuses N+1 (`Conflict`, nothing written), the writer
//! goes back to the committed state and decides again under the head (see
//! [`Writer::commit`]).

use std::sync::Arc;
use std::time::Instant;

use toka_store_core::{AppendError, Head, Sealed, StoreError};

use super::commit::Outcome;
use super::{Reply, Request, Writer};

/// An append running as a task of its own, so it proceeds while the writer decides.
type Append = tokio::task::JoinHandle<Result<Head, AppendError>>;

/// What an append task returned; a task that panicked or was cancelled is a failed
/// append whose outcome is unknown (rule 5 finds out).
pub(super) fn joined(
    result: Result<Result<Head, AppendError>, tokio::task::JoinError>,
) -> Result<Head, AppendError> {
    result.unwrap_or_else(|e| {
        Err(AppendError::Store(toka_store_core::StoreError::backend(
            "runtime",
            format!("the append task ended without an answer: {e}"),
        )))
    })
}

/// Whether a failed append certainly wrote nothing: the store compared the head first.
fn nothing_written(error: &AppendError) -> bool {
    matches!(
        error,
        AppendError::Conflict { .. } | AppendError::Store(StoreError::HeadBusy { .. })
    )
}

/// A batch decided and sealed after everything before it, not yet appended.
pub(crate) struct Decided {
    records: Sealed,
    submissions: Vec<(Request, Reply)>,
    outcomes: Vec<Outcome>,
    accepted: usize,
}

/// A batch whose append is running.
pub(crate) struct InFlight {
    pub(super) append: Append,
    records: Arc<Sealed>,
    submissions: Vec<(Request, Reply)>,
    outcomes: Vec<Outcome>,
    accepted: usize,
    started: Instant,
}

impl Writer {
    /// Rules 2 and 3 on a log of one node: decides `submissions` after everything
    /// decided so far and either starts the append or, if one is in flight, keeps the
    /// batch decided until it returns. A batch with nothing to write is answered now.
    pub(super) fn decide_overlapped(&mut self, submissions: Vec<(Request, Reply)>) {
        let limited = self.rate_limit(&submissions);
        let (outcomes, new_events, accepted) = self.decide_batch(&submissions, &limited);
        if new_events.is_empty() && self.inflight.is_none() && self.decided.is_none() {
            self.answer_without_writing(submissions, outcomes);
            return;
        }
        // Even a batch that writes nothing waits for the one in flight: its answers
        // were decided on that batch's effects, which are not durable yet.
        match self.decided.as_mut() {
            // What arrives while a batch is in flight joins the one decided after it,
            // so batches grow as large as before overlapping: one append per fsync.
            Some(decided) => {
                decided.records.extend(new_events);
                decided.submissions.extend(submissions);
                decided.outcomes.extend(outcomes);
                decided.accepted += accepted;
            }
            None => {
                let after = self
                    .inflight
                    .as_ref()
                    .map_or(self.head, |i| i.records.tip());
                let decided = Decided {
                    records: Sealed::new(after, new_events),
                    submissions,
                    outcomes,
                    accepted,
                };
                if self.inflight.is_none() {
                    self.start_append(decided);
                } else {
                    self.decided = Some(decided);
                }
            }
        }
    }

    /// How many submissions the batch decided after the one in flight holds.
    pub(super) fn decided_len(&self) -> usize {
        self.decided.as_ref().map_or(0, |d| d.submissions.len())
    }

    /// Whether the batch decided after the one in flight has room for more.
    pub(super) fn decided_has_room(&self) -> bool {
        self.decided_len() < self.pipeline.max_batch
    }

    /// Starts appending `decided` (nothing may be in flight); answers it at once if it
    /// has nothing to write.
    fn start_append(&mut self, decided: Decided) {
        debug_assert!(self.inflight.is_none(), "two appends in flight");
        if decided.records.is_empty() {
            self.answer_without_writing(decided.submissions, decided.outcomes);
            return;
        }
        // Sealed after the head the batch in flight left; if the log's head is not that
        // (it returned another), the store refuses the batch and rule 5 finds out.
        let records = Arc::new(decided.records);
        let (store, batch) = (Arc::clone(&self.shared.store), Arc::clone(&records));
        let append: Append = tokio::spawn(async move { store.append_sealed(batch).await });
        self.inflight = Some(InFlight {
            append,
            records,
            submissions: decided.submissions,
            outcomes: decided.outcomes,
            accepted: decided.accepted,
            started: Instant::now(),
        });
    }

    /// The in-flight append returned `result`: rule 4 or 5 for it, then the decided
    /// batch's append starts (or, after a failure, it is decided again).
    pub(super) async fn finish_append(&mut self, result: Result<Head, AppendError>) {
        let Some(done) = self.inflight.take() else {
            return;
        };
        let records = Arc::try_unwrap(done.records)
            .map(Sealed::into_records)
            .unwrap_or_else(|shared| shared.records().to_vec());
        match result {
            Ok(new_head) => {
                // The next append goes to the disk first: answering this batch (applying
                // it for readers, publishing, one reply each) takes the writer a while,
                // and the disk would wait for it. The next batch is still answered only
                // after its own append.
                if let Some(next) = self.decided.take() {
                    self.start_append(next);
                }
                self.committed(
                    new_head,
                    records,
                    done.submissions,
                    done.outcomes,
                    done.accepted,
                    done.started,
                );
            }
            Err(e) if self.shared.store.is_shared() && nothing_written(&e) => {
                self.lost_the_head(e, done.submissions, done.outcomes).await;
            }
            Err(e) => {
                self.after_failed_append(
                    e.to_string(),
                    records,
                    done.submissions,
                    done.outcomes,
                    done.accepted,
                    done.started,
                )
                .await;
                // The next batch was decided on top of the failed one: decide it again
                // on what the log holds (the rebuild threw the speculation away).
                if let Some(next) = self.decided.take() {
                    self.decide_again(next.submissions, next.outcomes).await;
                }
            }
        }
    }

    /// On a shared log, a batch decided without the head could not be appended: another
    /// node appended first (`Conflict`) or held the head past the wait. Nothing was
    /// written. Back to the committed state, then that batch and the one decided after
    /// it are decided again under the head, or refused `Unavailable` if it is still busy.
    async fn lost_the_head(
        &mut self,
        error: AppendError,
        submissions: Vec<(Request, Reply)>,
        outcomes: Vec<Outcome>,
    ) {
        tracing::info!(%error, "another node appends to the shared log: deciding under its head");
        self.others_seen = Some(Instant::now());
        self.shared
            .metrics
            .head_conflicts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let next = self.decided.take().map(|d| (d.submissions, d.outcomes));
        let committed = self.shared.read_state().clone();
        self.restart_kernel(committed);
        if matches!(error, AppendError::Store(StoreError::HeadBusy { .. })) {
            let reason = error.to_string();
            self.refuse_unavailable(submissions, &reason);
            if let Some((next, _)) = next {
                self.refuse_unavailable(next, &reason);
            }
            return;
        }
        self.decide_again(submissions, outcomes).await;
        if let Some((next, outcomes)) = next {
            self.decide_again(next, outcomes).await;
        }
    }

    /// A batch whose speculation was thrown away (`outcomes`: what it was decided to):
    /// decided again under the usual rules, without charging the rate limit a second
    /// time, or refused `Unavailable` in an outage.
    async fn decide_again(&mut self, submissions: Vec<(Request, Reply)>, outcomes: Vec<Outcome>) {
        match self.outage.as_ref().map(|o| o.reason.clone()) {
            Some(reason) => self.refuse_unavailable(submissions, &reason),
            None => {
                let limited = Self::charged(&outcomes);
                self.commit_charged(submissions, limited).await;
            }
        }
    }

    /// Waits for everything in flight or decided to be committed (or refused).
    pub(super) async fn drain(&mut self) {
        while let Some(inflight) = self.inflight.as_mut() {
            let result = joined((&mut inflight.append).await);
            self.finish_append(result).await;
        }
    }
}
