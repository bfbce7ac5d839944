//! Deciding and committing a batch (rules 2 to 5), and catching up with other nodes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use toka_bus_core::EventBus as _;
use toka_kernel::Context;
use toka_store_core::{EventRecord, Head, HeadLease, StoreError, seal};
use toka_types::KernelEvent;

use super::{Committed, HEAD_WAIT, Reply, Request, Writer};
use crate::codec::{self, Provenance};
use crate::error::SubmitError;

/// How many records behind a shared log's head a writer catches up before taking it.
const FAR_BEHIND: u64 = 4096;

pub(super) enum Outcome {
    Accepted {
        first_seq: u64,
        events: Vec<KernelEvent>,
    },
    Rejected(SubmitError),
}

/// Answers each submitter with its outcome, handing its request back either way: the
/// submitter that built it frees it, not the writer (a tenth of the writer's time went
/// to dropping messages).
fn answer(submissions: Vec<(Request, Reply)>, outcomes: Vec<Outcome>) {
    for ((request, reply), outcome) in submissions.into_iter().zip(outcomes) {
        let answer = match outcome {
            Outcome::Accepted { first_seq, events } => Ok((
                Committed {
                    first_seq,
                    events,
                    replayed: false,
                },
                request,
            )),
            Outcome::Rejected(e) => Err((e, request)),
        };
        let _ = reply.send(answer);
    }
}

impl Writer {
    /// Decides every submission in order on the writer's kernel; returns the outcomes,
    /// the events to append and how many messages were accepted.
    pub(super) fn decide_batch(
        &mut self,
        submissions: &[(Request, Reply)],
        limited: &[Option<SubmitError>],
    ) -> (Vec<Outcome>, Vec<toka_store_core::NewEvent>, usize) {
        let mut outcomes = Vec::with_capacity(submissions.len());
        let mut new_events = Vec::with_capacity(submissions.len());
        let mut scratch = Vec::with_capacity(1024);
        let mut accepted = 0usize;
        for (i, (request, _)) in submissions.iter().enumerate() {
            if let Some(Some(refusal)) = limited.get(i) {
                outcomes.push(Outcome::Rejected(refusal.clone()));
                continue;
            }
            let now = self.clock.now().max(self.last_now);
            self.last_now = now;
            let seq = self.kernel.state().next_seq();
            let ctx = Context::new(now, seq).with_chain_lifetime(self.chain_lifetime_secs);
            let decided = match request {
                Request::Message(message) => {
                    self.kernel.authenticate(message, now).and_then(|claims| {
                        self.kernel
                            .submit_verified(message, &claims, &ctx)
                            .map(|e| ((message.origin, Some(claims.jti.clone())), e))
                    })
                }
                Request::RootToken { ttl_secs } => self
                    .kernel
                    .issue_root_token(*ttl_secs, &ctx)
                    .map(|e| ((self.namespace, None), e)),
                Request::Keys {
                    keys,
                    rotated,
                    retired,
                } => self
                    .kernel
                    .change_keys(
                        keys.clone(),
                        rotated.as_ref().map(|(k, a)| (k.as_str(), a.as_str())),
                        retired,
                        &ctx,
                    )
                    .map(|e| ((self.namespace, None), e)),
                Request::Tool(op) => self
                    .kernel
                    .tool_op(op, &ctx)
                    .map(|e| ((self.namespace, None), e)),
                Request::ExpireLeases => self
                    .kernel
                    .expire_leases(&ctx)
                    .map(|e| ((self.namespace, None), e)),
            };
            match decided {
                Ok(((origin, jti), events)) => {
                    let who = Provenance {
                        origin,
                        jti,
                        timestamp: now,
                    };
                    codec::encode_into(
                        &mut new_events,
                        &mut scratch,
                        self.namespace,
                        seq,
                        &events,
                        &who,
                    );
                    accepted += 1;
                    outcomes.push(Outcome::Accepted {
                        first_seq: seq,
                        events,
                    });
                }
                Err(e) => {
                    tracing::debug!(?request, reason = %e, "request rejected");
                    outcomes.push(Outcome::Rejected(SubmitError::Rejected(e)));
                }
            }
        }
        (outcomes, new_events, accepted)
    }

    /// Decides and commits one batch; a storage failure leaves the writer rebuilt or in
    /// an outage (rule 5). On a shared log, the batch is decided while holding the head
    /// (see [`StorageBackend::lock_head`]): caught up to it, decided once, appended.
    ///
    /// [`StorageBackend::lock_head`]: toka_store_core::StorageBackend::lock_head
    pub(super) async fn commit(&mut self, submissions: Vec<(Request, Reply)>) {
        let limited = self.rate_limit(&submissions);
        self.commit_charged(submissions, limited).await;
    }

    /// [`Writer::commit`] for a batch already charged against the rate limit: `limited`
    /// says which of its messages the limit refused.
    pub(super) async fn commit_charged(
        &mut self,
        submissions: Vec<(Request, Reply)>,
        limited: Vec<Option<SubmitError>>,
    ) {
        let taken = match self.head_right.take() {
            Some(taken) => taken.map(Some),
            None => self.take_head().await,
        };
        let lease = match taken {
            Ok(lease) => lease,
            Err(reason) => {
                // Nothing was decided or written yet: the batch may simply be retried.
                self.refuse_unavailable(submissions, &reason);
                return;
            }
        };
        let (outcomes, new_events, accepted) = self.decide_batch(&submissions, &limited);
        if new_events.is_empty() {
            if let Some(lease) = lease {
                lease.release().await;
            }
            self.answer_without_writing(submissions, outcomes);
            return;
        }
        let records = seal(self.head, new_events);
        let started = Instant::now();
        let appended = match lease {
            Some(lease) => lease.append(&records).await,
            None => self.shared.store.append(self.head.seq, &records).await,
        };
        match appended {
            Ok(new_head) => {
                self.committed(new_head, records, submissions, outcomes, accepted, started)
            }
            Err(e) => {
                self.after_failed_append(
                    e.to_string(),
                    records,
                    submissions,
                    outcomes,
                    accepted,
                    started,
                )
                .await
            }
        }
    }

    /// On a shared log: the head, held, with the kernel caught up to it. `None` on a log
    /// of one node. On failure, why (the writer is rebuilt or in an outage if the log
    /// could not be read).
    pub(super) async fn take_head(&mut self) -> Result<Option<Box<dyn HeadLease>>, String> {
        if !self.shared.store.is_shared() {
            return Ok(None);
        }
        // Far behind (a node back from a partition): catch up before taking the head, so
        // the others do not wait on this node's reading, and the held transaction does
        // not sit idle past the server's limit.
        let heard = self.shared.store.watch_head().map(|w| *w.borrow());
        if heard.is_some_and(|seq| seq > self.head.seq + FAR_BEHIND) && !self.catch_up().await {
            let reason = "cannot read other nodes' events";
            self.rebuild_or_enter_outage(reason).await;
            return Err(reason.to_string());
        }
        let lease = match self.shared.store.lock_head(HEAD_WAIT).await {
            Ok(lease) => lease,
            Err(e @ StoreError::HeadBusy { .. }) => return Err(e.to_string()),
            Err(e) => {
                let reason = format!("cannot take the shared log's head: {e}");
                self.rebuild_or_enter_outage(&reason).await;
                return Err(reason);
            }
        };
        let held = lease.as_ref().map(|l| l.head());
        let caught_up = self.catch_up_to(held.map(|h| h.seq)).await;
        let at_head = held.is_none_or(|h| h == self.head);
        if caught_up && at_head {
            return Ok(lease);
        }
        if let Some(lease) = lease {
            lease.release().await;
        }
        let reason = match caught_up {
            true => "the shared log's head is not where its records end",
            false => "cannot read other nodes' events",
        };
        self.rebuild_or_enter_outage(reason).await;
        Err(reason.to_string())
    }

    /// What the rate limit decided for a batch decided before, read off its outcomes, so
    /// that deciding it again charges no message twice.
    pub(super) fn charged(outcomes: &[Outcome]) -> Vec<Option<SubmitError>> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Rejected(e @ SubmitError::RateLimited { .. }) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    /// Charges each message's verified subject against the rate limit, once per batch;
    /// a message with a token that does not verify is left to the kernel to refuse.
    pub(super) fn rate_limit(
        &mut self,
        submissions: &[(Request, Reply)],
    ) -> Vec<Option<SubmitError>> {
        let Some(limiter) = &self.limiter else {
            return Vec::new();
        };
        let now = self.clock.now().max(self.last_now);
        let clock = governor::clock::DefaultClock::default();
        submissions
            .iter()
            .map(|(request, _)| {
                let Request::Message(message) = request else {
                    return None;
                };
                let claims = self.kernel.authenticate(message, now).ok()?;
                let not_until = limiter.check_key(&claims.sub).err()?;
                self.shared
                    .metrics
                    .rate_limited
                    .fetch_add(1, Ordering::Relaxed);
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
                Some(SubmitError::RateLimited {
                    origin: claims.sub,
                    retry_after_ms: (wait.as_millis() as u64).max(1),
                })
            })
            .collect()
    }

    /// Answers a batch that wrote nothing: its rejections, and acceptances with nothing
    /// to record (e.g. tools offered as the log already has them).
    pub(super) fn answer_without_writing(
        &self,
        submissions: Vec<(Request, Reply)>,
        outcomes: Vec<Outcome>,
    ) {
        for outcome in &outcomes {
            if let Outcome::Rejected(SubmitError::Rejected(e)) = outcome {
                self.shared.metrics.reject(e.code());
            }
        }
        answer(submissions, outcomes);
    }

    /// Step 4: the batch is durable. Update committed state and head, publish, answer.
    pub(super) fn committed(
        &mut self,
        new_head: Head,
        records: Vec<EventRecord>,
        submissions: Vec<(Request, Reply)>,
        outcomes: Vec<Outcome>,
        accepted: usize,
        started: Instant,
    ) {
        let metrics = &self.shared.metrics;
        metrics.observe_commit(started.elapsed().as_micros() as u64, submissions.len());
        metrics.batches.fetch_add(1, Ordering::Relaxed);
        metrics
            .committed_messages
            .fetch_add(accepted as u64, Ordering::Relaxed);
        metrics
            .committed_events
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        for outcome in &outcomes {
            if let Outcome::Rejected(SubmitError::Rejected(e)) = outcome {
                metrics.reject(e.code());
            }
        }
        // After a rebuild that found the batch in the log, the shared state already
        // holds it; otherwise apply it now.
        if self.shared.read_state().applied() < new_head.seq {
            let mut state = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
            for outcome in &outcomes {
                if let Outcome::Accepted { events, .. } = outcome {
                    for event in events {
                        toka_kernel::apply(&mut state, event, &self.handlers);
                    }
                }
            }
        }
        self.head = new_head;
        self.since_snapshot += records.len() as u64;
        self.shared.head.send_replace(new_head);
        for record in records {
            self.shared.bus.publish(Arc::new(record));
        }
        answer(submissions, outcomes);
    }

    /// Rule 5: count and log the failure, then learn what the append did by reading
    /// the log back.
    pub(super) async fn after_failed_append(
        &mut self,
        error: String,
        records: Vec<EventRecord>,
        submissions: Vec<(Request, Reply)>,
        outcomes: Vec<Outcome>,
        accepted: usize,
        started: Instant,
    ) {
        self.shared
            .metrics
            .commit_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(%error, batch = submissions.len(), "append failed; reading the log back to learn its outcome");
        let Err(reason) = self.rebuild().await else {
            if self.log_holds(&records).await {
                tracing::warn!(error, "the failed append was written after all: committed");
                let head = toka_store_core::head_after(self.head, &records);
                self.committed(head, records, submissions, outcomes, accepted, started);
            } else {
                for ((request, reply), outcome) in submissions.into_iter().zip(outcomes) {
                    let error = match outcome {
                        Outcome::Accepted { .. } => SubmitError::Storage(error.clone()),
                        Outcome::Rejected(e) => e,
                    };
                    let _ = reply.send(Err((error, request)));
                }
            }
            return;
        };
        self.enter_outage(&reason);
        for ((request, reply), outcome) in submissions.into_iter().zip(outcomes) {
            let error = match outcome {
                Outcome::Accepted { .. } => SubmitError::CommitUnknown(format!(
                    "{error}; then the log could not be read back ({reason})"
                )),
                Outcome::Rejected(e) => e,
            };
            let _ = reply.send(Err((error, request)));
        }
    }

    /// Whether the (rebuilt) log holds exactly these records.
    pub(super) async fn log_holds(&self, records: &[EventRecord]) -> bool {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return false;
        };
        if self.head.seq < last.header.seq {
            return false;
        }
        let mut stored = Vec::with_capacity(records.len());
        let mut pages =
            toka_store_core::EventPages::new(self.shared.store.as_ref(), first.header.seq)
                .until(last.header.seq);
        loop {
            match pages.next_page().await {
                Ok(page) if page.is_empty() => break,
                Ok(page) => stored.extend(page.into_iter().map(|r| r.header.digest)),
                Err(_) => return false,
            }
        }
        stored.len() == records.len()
            && stored
                .iter()
                .zip(records)
                .all(|(d, r)| *d == r.header.digest)
    }

    /// Reads, verifies, applies and publishes records other nodes appended after our
    /// head. Returns false if the log cannot be read or does not chain.
    pub(super) async fn catch_up(&mut self) -> bool {
        self.catch_up_to(None).await
    }

    /// [`catch_up`](Self::catch_up), stopping at seq `until` if given (the head held: no
    /// need to ask the log for a page past it).
    async fn catch_up_to(&mut self, until: Option<u64>) -> bool {
        loop {
            if until.is_some_and(|seq| self.head.seq >= seq) {
                return true;
            }
            let page = match self.shared.store.read_range(self.head.seq + 1, 1024).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the shared log");
                    return false;
                }
            };
            if page.is_empty() {
                return true;
            }
            self.others_seen = Some(Instant::now());
            for record in page {
                let h = &record.header;
                if let Err(corruption) =
                    toka_store_core::ChainCursor::after(self.head).accept(&record)
                {
                    tracing::error!(seq = h.seq, %corruption, "record from another node does not chain");
                    return false;
                }
                let event = match codec::decode(&record) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(error = %e, "record from another node is not a kernel event");
                        return false;
                    }
                };
                self.kernel.apply(&event);
                toka_kernel::apply(
                    &mut self.shared.state.write().unwrap_or_else(|e| e.into_inner()),
                    &event,
                    &self.handlers,
                );
                self.head = Head {
                    seq: h.seq,
                    digest: h.digest,
                };
                self.since_snapshot += 1;
                self.shared.head.send_replace(self.head);
                self.shared.bus.publish(Arc::new(record));
            }
        }
    }
}
