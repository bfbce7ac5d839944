//! The commit pipeline: one writer task owns the kernel.
//!
//! Rules, in the order the writer follows them for each batch:
//!
//! 1. Take up to `max_batch` queued commands (waiting only for the first).
//! 2. For each message, in queue order: authenticate, decide and apply on the writer's
//!    kernel, so each message sees the effects of those before it. A rejection
//!    produces no event.
//! 3. Seal the batch's events after the head and append them in **one** storage call.
//! 4. Only if the append returned `Ok`: update the committed state and head, publish
//!    the records on the bus, then answer every submitter (events and `seq`s, or its
//!    rejection).
//! 5. If the append failed: answer every submitter of the batch with the error,
//!    publish nothing, and rebuild the kernel from the log before taking more work.
//!    If that rebuild fails, the writer stops: every later submission gets `Stopped`.
//!
//! Readers only ever see state and records of step 4.
//!
//! On a shared log (several nodes appending to one PostgreSQL log), the writer first
//! catches up with what other nodes appended (verified, applied, published), and an
//! append refused with `Conflict` means another node got there first: the writer
//! resets its kernel to the committed state, catches up, decides the same messages
//! again on the new state and retries, up to [`MAX_CONFLICT_RETRIES`] times.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use toka_bus_core::EventBus as _;
use toka_kernel::{Context, Kernel, OpcodeRegistry};
use toka_store_core::{AppendError, Hash32, Head, Snapshot, seal};
use toka_types::{EntityId, KernelEvent, Message, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::codec::{self, Provenance};
use crate::config::{PipelineConfig, SnapshotConfig};
use crate::error::SubmitError;
use crate::recovery;
use crate::shared::Shared;

/// What a committed message produced: its events, the first at `first_seq`, the rest
/// following.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The `seq` of the first event.
    pub first_seq: u64,
    /// The events, in log order.
    pub events: Vec<KernelEvent>,
}

impl Committed {
    /// `(seq, event)` pairs.
    pub fn numbered(&self) -> impl Iterator<Item = (u64, &KernelEvent)> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| (self.first_seq + i as u64, e))
    }
}

/// What a submitter asks the writer to decide.
#[derive(Debug)]
pub(crate) enum Request {
    /// A message, authorised by its capability token.
    Message(Message),
    /// A root token, for the holder of the node's signing key (no message can ask for
    /// one: the runtime's own API is the only way in).
    RootToken {
        /// Its lifetime.
        ttl_secs: u64,
    },
}

/// The answer to a submission: its events, or why not, with the request handed back.
pub(crate) type Reply = oneshot::Sender<Result<Committed, (SubmitError, Request)>>;

/// How often a batch is re-decided after losing the race for the head of a shared log.
pub const MAX_CONFLICT_RETRIES: usize = 256;

pub(crate) enum Command {
    Submit {
        request: Request,
        reply: Reply,
    },
    /// Another node appended: read and apply its events.
    CatchUp,
    /// Time passed: sign a checkpoint if one is due.
    Tick,
    Snapshot {
        reply: oneshot::Sender<Result<u64, String>>,
    },
    /// Stop taking commands, commit what is queued, snapshot if configured, answer.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

pub(crate) struct Writer {
    pub(crate) kernel: Kernel,
    pub(crate) head: Head,
    pub(crate) namespace: EntityId,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) last_now: Timestamp,
    pub(crate) shared: Arc<Shared>,
    pub(crate) handlers: OpcodeRegistry,
    pub(crate) pipeline: PipelineConfig,
    pub(crate) snapshots: SnapshotConfig,
    pub(crate) since_snapshot: u64,
    /// Records other nodes appended that this writer caught up with (a shared log).
    pub(crate) foreign_seen: u64,
    /// Signs checkpoints, if configured.
    pub(crate) checkpointer: Option<crate::checkpoint::Checkpointer>,
}

enum Outcome {
    Accepted {
        first_seq: u64,
        events: Vec<KernelEvent>,
    },
    Rejected(SubmitError),
}

impl Writer {
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut stopped = false;
        let mut shutdown_replies = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut commands = vec![first];
            while commands.len() < self.pipeline.max_batch {
                match rx.try_recv() {
                    Ok(c) => commands.push(c),
                    Err(_) => break,
                }
            }
            self.shared
                .metrics
                .queue_depth
                .store(rx.len() as u64, Ordering::Relaxed);
            let mut submissions = Vec::with_capacity(commands.len());
            let mut snapshot_requests = Vec::new();
            for c in commands {
                match c {
                    Command::Submit { request, reply } => submissions.push((request, reply)),
                    Command::Snapshot { reply } => snapshot_requests.push(reply),
                    Command::CatchUp | Command::Tick => {}
                    Command::Shutdown { reply } => {
                        // Nothing new gets in; what is queued is still committed.
                        rx.close();
                        shutdown_replies.push(reply);
                    }
                }
            }
            if stopped {
                for (request, reply) in submissions {
                    let _ = reply.send(Err((SubmitError::Stopped, request)));
                }
                for reply in snapshot_requests {
                    let _ = reply.send(Err("the writer stopped after a storage failure".into()));
                }
                continue;
            }
            if self.shared.store.is_shared() && submissions.is_empty() && !self.catch_up().await {
                stopped = !self.rebuild().await;
            }
            if !submissions.is_empty() && !self.commit(submissions).await {
                stopped = true;
                continue;
            }
            let due = self.snapshots.every_events > 0
                && self.since_snapshot >= self.snapshots.every_events;
            if due || !snapshot_requests.is_empty() {
                let result = self.take_snapshot().await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "snapshot failed");
                }
                for reply in snapshot_requests {
                    let _ = reply.send(result.clone());
                }
            } else {
                let now = self.clock.now().max(self.last_now);
                if self
                    .checkpointer
                    .as_ref()
                    .is_some_and(|c| c.due(self.head.seq, now))
                {
                    self.checkpoint();
                }
            }
        }
        // The queue is closed and drained: a clean shutdown.
        if !stopped
            && self.snapshots.on_shutdown
            && self.head.seq > 0
            && let Err(e) = self.take_snapshot().await
        {
            tracing::error!(error = %e, "final snapshot failed");
        }
        if !stopped
            && self
                .checkpointer
                .as_ref()
                .is_some_and(|c| c.last_seq < self.head.seq)
        {
            self.checkpoint();
        }
        tracing::info!(head = self.head.seq, "writer stopped");
        for reply in shutdown_replies {
            let _ = reply.send(());
        }
    }

    /// Decides every submission in order on the writer's kernel; returns the outcomes,
    /// the events to append and how many messages were accepted.
    fn decide_batch(
        &mut self,
        submissions: &[(Request, Reply)],
    ) -> (Vec<Outcome>, Vec<toka_store_core::NewEvent>, usize) {
        let mut outcomes = Vec::with_capacity(submissions.len());
        let mut new_events = Vec::new();
        let mut accepted = 0usize;
        for (request, _) in submissions {
            let now = self.clock.now().max(self.last_now);
            self.last_now = now;
            let seq = self.kernel.state().next_seq();
            let ctx = Context::new(now, seq);
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
            };
            match decided {
                Ok(((origin, jti), events)) => {
                    let who = Provenance {
                        origin,
                        jti,
                        timestamp: now,
                    };
                    new_events.extend(codec::encode(self.namespace, seq, &events, &who));
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

    /// Decides and commits one batch. Returns false if the writer must stop.
    async fn commit(&mut self, submissions: Vec<(Request, Reply)>) -> bool {
        let shared_log = self.shared.store.is_shared();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let foreign_before = self.foreign_seen;
            if shared_log && !self.catch_up().await {
                return self
                    .fail_batch(submissions, "cannot read other nodes' events".into())
                    .await;
            }
            let (outcomes, new_events, accepted) = self.decide_batch(&submissions);
            if new_events.is_empty() {
                for outcome in &outcomes {
                    if let Outcome::Rejected(SubmitError::Rejected(e)) = outcome {
                        self.shared.metrics.reject(e.code());
                    }
                }
                for ((request, reply), outcome) in submissions.into_iter().zip(outcomes) {
                    if let Outcome::Rejected(e) = outcome {
                        let _ = reply.send(Err((e, request)));
                    }
                }
                return true;
            }
            let records = seal(self.head, new_events);
            let started = Instant::now();
            match self.shared.store.append(self.head.seq, &records).await {
                Ok(new_head) => {
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
                    self.head = new_head;
                    self.since_snapshot += records.len() as u64;
                    {
                        let mut state =
                            self.shared.state.write().unwrap_or_else(|e| e.into_inner());
                        for outcome in &outcomes {
                            if let Outcome::Accepted { events, .. } = outcome {
                                for event in events {
                                    toka_kernel::apply(&mut state, event, &self.handlers);
                                }
                            }
                        }
                    }
                    self.shared.head.send_replace(new_head);
                    for record in records {
                        self.shared.bus.publish(Arc::new(record));
                    }
                    for ((request, reply), outcome) in submissions.into_iter().zip(outcomes) {
                        let answer = match outcome {
                            Outcome::Accepted { first_seq, events } => {
                                Ok(Committed { first_seq, events })
                            }
                            Outcome::Rejected(e) => Err((e, request)),
                        };
                        let _ = reply.send(answer);
                    }
                    if shared_log && (attempt > 1 || self.foreign_seen > foreign_before) {
                        // Other nodes are appending too. The winner of the head lock is
                        // the node that decides fastest, and could win every round while
                        // the others keep catching up: step aside for a moment, at
                        // random, so every node gets its turn.
                        let pause = u64::from(crate::keys::random_u16()) % 1500;
                        tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                    }
                    return true;
                }
                Err(AppendError::Conflict { actual, .. })
                    if shared_log && attempt < MAX_CONFLICT_RETRIES =>
                {
                    // Another node appended first: forget this attempt, catch up, decide again.
                    tracing::debug!(
                        ours = self.head.seq,
                        actual,
                        attempt,
                        "append conflict; catching up and retrying"
                    );
                    self.reset_to_committed();
                }
                Err(e) => {
                    self.shared
                        .metrics
                        .commit_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, batch = submissions.len(), "commit failed; rebuilding state from the log");
                    return self.fail_batch(submissions, e.to_string()).await;
                }
            }
        }
    }

    /// Answers every submitter of a batch with a storage error and rebuilds the state.
    async fn fail_batch(&mut self, submissions: Vec<(Request, Reply)>, message: String) -> bool {
        for (request, reply) in submissions {
            let _ = reply.send(Err((SubmitError::Storage(message.clone()), request)));
        }
        self.rebuild().await
    }

    /// Throws away what the kernel decided since the last commit: it goes back to the
    /// committed state (which readers share and which only commits change).
    fn reset_to_committed(&mut self) {
        let committed = self.shared.read_state().clone();
        self.kernel.replace_state(committed);
    }

    /// Reads, verifies, applies and publishes records other nodes appended after our
    /// head. Returns false if the log cannot be read or does not chain.
    async fn catch_up(&mut self) -> bool {
        loop {
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
            for record in page {
                let h = &record.header;
                if h.seq != self.head.seq + 1
                    || Hash32::of(&record.payload) != h.payload_hash
                    || toka_store_core::chain_digest(&self.head.digest, h) != h.digest
                {
                    tracing::error!(seq = h.seq, "record from another node does not chain");
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

    /// Throws away the writer's (possibly uncommitted) state and replays the log.
    async fn rebuild(&mut self) -> bool {
        let trusted: Vec<_> = self
            .shared
            .latest_checkpoint
            .read()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default();
        let store = self.shared.store.as_ref();
        match recovery::recover_with(store, &self.handlers, &trusted, true, |_| {}).await {
            Ok(recovered) => {
                let keys = self.kernel.verifier().keys().clone();
                self.kernel = recovery::kernel_for(recovered.state.clone(), keys, &self.handlers);
                self.head = recovered.head;
                *self.shared.state.write().unwrap_or_else(|e| e.into_inner()) = recovered.state;
                self.shared.head.send_replace(recovered.head);
                tracing::info!(head = recovered.head.seq, "state rebuilt from the log");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot rebuild state from the log; the writer stops");
                false
            }
        }
    }

    async fn take_snapshot(&mut self) -> Result<u64, String> {
        let state = self.kernel.state();
        let image = serde_json::to_vec(&state.image()).map_err(|e| e.to_string())?;
        let snapshot = Snapshot {
            seq: self.head.seq,
            chain_digest: self.head.digest,
            state_digest: Hash32(*state.digest().as_bytes()),
            state: image,
        };
        self.shared
            .store
            .put_snapshot(&snapshot)
            .await
            .map_err(|e| e.to_string())?;
        self.shared
            .store
            .prune_snapshots(self.snapshots.keep.max(1))
            .await
            .map_err(|e| e.to_string())?;
        self.since_snapshot = 0;
        tracing::info!(
            seq = snapshot.seq,
            bytes = snapshot.state.len(),
            "snapshot taken"
        );
        // A snapshot is only trusted at start when a checkpoint covers it.
        self.sign_checkpoint(snapshot.state_digest)
            .map_err(|e| format!("snapshot taken, but its checkpoint failed: {e}"))?;
        Ok(snapshot.seq)
    }

    /// Signs a checkpoint at the head now, if checkpoints are configured. Only called
    /// right after a commit or a catch-up: the kernel's state is the committed state.
    fn checkpoint(&mut self) {
        let digest = Hash32(*self.kernel.state().digest().as_bytes());
        if let Err(e) = self.sign_checkpoint(digest) {
            tracing::error!(error = %e, "checkpoint failed");
        }
    }

    fn sign_checkpoint(&mut self, state_digest: Hash32) -> Result<(), String> {
        let now = self.clock.now().max(self.last_now);
        let Some(checkpointer) = self.checkpointer.as_mut() else {
            return Ok(());
        };
        let signed = checkpointer
            .sign(crate::checkpoint::Checkpoint {
                seq: self.head.seq,
                chain_digest: self.head.digest,
                state_digest,
                time: now,
            })
            .map_err(|e| e.to_string())?;
        tracing::info!(seq = signed.checkpoint.seq, "checkpoint signed");
        *self
            .shared
            .latest_checkpoint
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(signed);
        Ok(())
    }
}
