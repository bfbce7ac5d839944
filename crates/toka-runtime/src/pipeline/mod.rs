//! The commit pipeline: one writer task owns the kernel.
//!
//! Rules, in the order the writer follows them for each batch:
//!
//! 1. Take up to `max_batch` queued commands (waiting only for the first).
//! 2. For each message, in queue order: authenticate, charge the rate limit of the
//!    token's verified subject (once per batch, not per retry), decide and apply on
//!    the writer's kernel, so each message sees the effects of those before it. A
//!    rejection produces no event.
//! 3. Seal the batch's events after the head and append them in **one** storage call.
//! 4. Only if the append returned `Ok`: update the committed state and head, publish
//!    the records on the bus, then answer every submitter (events and `seq`s, or its
//!    rejection).
//! 5. If the append failed, its outcome is unknown (the write may have happened and
//!    only the reply been lost): rebuild the kernel from the log and look. If the
//!    batch is there, it is committed: step 4. If it is not, answer every submitter
//!    `Storage` (nothing was written; retry). If the log cannot be read, answer
//!    `CommitUnknown` and go into an outage.
//! 6. In an outage (the store cannot be read or written), every submission is
//!    answered `Unavailable` with a retry delay at once, `/readyz` says why, and the
//!    writer retries the rebuild with bounded backoff ([`OUTAGE_BACKOFF_MAX`]) until
//!    it succeeds; then it serves again by itself. It never stops for good.
//!
//! Readers only ever see state and records of step 4.
//!
//! On a log of one node, steps 1 to 3 of the next batch overlap step 3's wait of the
//! one before (see `overlap`): it is decided on the kernel that already holds the
//! batch in flight, sealed after it, appended only once that one returned `Ok` (and
//! before that one's step 4, so the disk does not wait for the answers), and answered
//! only after its own append. The writer holds at most one batch in flight and one
//! decided, beyond the queue.
//!
//! On a shared log (several nodes appending to one PostgreSQL log), while other nodes
//! append (this writer caught up with their records, or lost the head to them, in the
//! last [`ALONE_AFTER`]), steps 2 and 3 run while the writer holds the log's head: it
//! takes the head (waiting at most [`HEAD_WAIT`] for other nodes, which queue for it in
//! turn), catches up with what other nodes appended (verified, applied, published),
//! decides the batch once and appends it, which gives the head up. No batch is decided
//! on a head that moves under it, so none is decided twice, and no node can starve the
//! others by being faster. A head still busy after [`HEAD_WAIT`] refuses the batch
//! `Unavailable`; nothing was written.
//!
//! A writer alone on a shared log overlaps batches of `pipeline.shared_overlap_min`
//! ([`SHARED_OVERLAP_MIN`] by default) or more as on a log of one node (smaller ones
//! cost less to decide than a commit costs), and the store takes the head only to append: if another node appended since the batch
//! was sealed, the store writes nothing and answers `Conflict`. The writer then goes
//! back to the committed state (the readers' copy), and decides that batch and the one
//! decided after it again, under the head, as above; while the head stays busy past
//! the wait, both are refused `Unavailable`. So a node alone pays no round trip to
//! take the head before deciding and does not leave the database idle while it
//! decides, and a node among others behaves as if it had never been alone.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use toka_kernel::{Kernel, OpcodeRegistry};
use toka_store_core::Head;
use toka_types::{EntityId, KernelEvent, Message, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::config::{PipelineConfig, SnapshotConfig};
use crate::error::SubmitError;
use crate::shared::Shared;

mod commit;
mod outage;
mod overlap;
mod snapshot;

/// What a committed message produced: its events, the first at `first_seq`, the rest
/// following.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The `seq` of the first event.
    pub first_seq: u64,
    /// The events, in log order.
    pub events: Vec<KernelEvent>,
    /// Whether this is the answer to an idempotent retry: the events were committed
    /// by the original message, and nothing new was written.
    pub replayed: bool,
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
    /// The node's signing keys changed (a rotation, retirements): record it and verify
    /// with `keys` from here on.
    Keys {
        /// The new key set.
        keys: toka_auth::KeySet,
        /// The new active key's `kid` and algorithm, if it changed.
        rotated: Option<(String, String)>,
        /// The `kid`s that no longer verify.
        retired: Vec<String>,
    },
    /// Queue again the claimed tasks whose lease ran out (the runtime's timer).
    ExpireLeases,
    /// What the node's tool executor reports (tools offered, a call started or
    /// returned, approvals expired). No message can ask for these.
    Tool(toka_kernel::ToolOp),
}

/// The answer to a submission: its events, or why not, with the request handed back
/// either way (for the submitter to free, or to return to its caller).
pub(crate) type Reply = oneshot::Sender<Result<(Committed, Request), (SubmitError, Request)>>;

/// How long a writer on a shared log waits for the head while another node holds it.
pub const HEAD_WAIT: Duration = Duration::from_secs(5);
/// First wait before retrying the store after it failed.
pub const OUTAGE_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between retries of a failed store.
pub const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long after it last saw another node's records a writer on a shared log still
/// decides under the head.
pub const ALONE_AFTER: Duration = Duration::from_secs(5);

/// The smallest batch a writer alone on a shared log decides without the head, by
/// default (`pipeline.shared_overlap_min`). Measured on PostgreSQL on 2 cores: at 64
/// submitters overlapping halved the batches and cost a fifth of the throughput; at
/// 1024 it gained a third.
pub const SHARED_OVERLAP_MIN: usize = 256;

/// How often an idle writer looks at the clock.
const TICK: Duration = Duration::from_secs(1);

/// The store failed and the writer cannot commit until a rebuild succeeds.
pub(crate) struct Outage {
    reason: String,
    retry_at: Instant,
    backoff: Duration,
}

// Submit is nearly every command: boxing it would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    Submit {
        request: Request,
        reply: Reply,
    },
    /// Another node appended: read and apply its events.
    CatchUp,
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
    /// How long a chain of tokens may be renewed (handed to every decision).
    pub(crate) chain_lifetime_secs: u64,
    /// Signs checkpoints, if configured.
    pub(crate) checkpointer: Option<crate::checkpoint::Checkpointer>,
    /// Set while the store cannot be used.
    pub(crate) outage: Option<Outage>,
    /// Messages per second per verified subject, if limited.
    pub(crate) limiter: Option<governor::DefaultKeyedRateLimiter<EntityId>>,
    /// The batch being appended (a log of one node, see `overlap`).
    pub(crate) inflight: Option<overlap::InFlight>,
    /// The batch decided after it, waiting for its append.
    pub(crate) decided: Option<overlap::Decided>,
    /// The snapshot being encoded and stored, if any (see `snapshot`).
    pub(crate) snapshot_job: Option<snapshot::SnapshotJob>,
    /// On a shared log: the head, taken before the batch was gathered (or why not), for
    /// `commit` to use.
    pub(crate) head_right: Option<Result<Box<dyn toka_store_core::HeadLease>, String>>,
    /// On a shared log: when this writer last caught up with another node's records or
    /// lost the head to one (`None`: never, it is alone).
    pub(crate) others_seen: Option<Instant>,
}

impl Writer {
    /// Whether the shared log's head, as last heard of, is past this writer's: the
    /// notice of its own append is not a reason to read the log.
    fn log_moved_on(&self) -> bool {
        self.shared
            .store
            .watch_head()
            .is_none_or(|heard| *heard.borrow() > self.head.seq)
    }

    /// Whether no batch of this writer's is in flight or decided.
    fn nothing_in_flight(&self) -> bool {
        self.inflight.is_none() && self.decided.is_none()
    }

    /// Whether the next batch, of `size` submissions, is decided holding the shared
    /// log's head: no batch of this writer's is in flight or decided (those were
    /// decided without the head, and the next one is sealed after them), and either
    /// other nodes append or the batch is small. Overlapping splits the submitters
    /// into two batches that take turns; a commit on a shared log costs a few round
    /// trips and a WAL flush, which for a small batch is more than deciding it.
    fn decides_under_head(&self, size: usize) -> bool {
        self.shared.store.is_shared()
            && self.nothing_in_flight()
            && (size < self.pipeline.shared_overlap_min
                || self
                    .others_seen
                    .is_some_and(|at| at.elapsed() < ALONE_AFTER))
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut shutdown_replies = Vec::new();
        // Time-based work (checkpoints, pruning idle rate-limit keys) while idle.
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let retry_at = self.outage.as_ref().map(|o| o.retry_at);
            let busy = self.inflight.is_some();
            let next = tokio::select! {
                biased;
                result = async {
                    match self.inflight.as_mut() {
                        Some(inflight) => overlap::joined((&mut inflight.append).await),
                        None => std::future::pending().await,
                    }
                }, if busy => {
                    self.finish_append(result).await;
                    continue;
                }
                // While a batch is in flight, the next one grows up to the batch limit.
                c = rx.recv(), if self.decided_has_room() => c,
                () = async {
                    match retry_at {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.try_to_recover().await;
                    continue;
                }
                _ = tick.tick() => {
                    self.on_tick().await;
                    continue;
                }
            };
            let Some(first) = next else { break };
            // On a shared log, take the head before gathering the batch: what queued
            // while other nodes held it joins this batch instead of waiting a turn more.
            if self.decides_under_head(rx.len() + 1)
                && self.outage.is_none()
                && matches!(first, Command::Submit { .. })
            {
                self.head_right = self.take_head().await.transpose();
            }
            let mut commands = vec![first];
            let room = self.pipeline.max_batch.saturating_sub(self.decided_len());
            while commands.len() < room {
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
                    Command::CatchUp => {}
                    Command::Shutdown { reply } => {
                        // Nothing new gets in; what is queued is still committed.
                        rx.close();
                        shutdown_replies.push(reply);
                    }
                }
            }
            if self
                .outage
                .as_ref()
                .is_some_and(|o| Instant::now() >= o.retry_at)
            {
                self.try_to_recover().await;
            }
            if let Some(reason) = self.outage.as_ref().map(|o| o.reason.clone()) {
                self.head_right = None;
                self.refuse_unavailable(submissions, &reason);
                for reply in snapshot_requests {
                    let _ = reply.send(Err(format!("the store is unavailable: {reason}")));
                }
                continue;
            }
            // Records past the head are another node's only while none of this
            // writer's is in flight; under the head, taking it catches up anyway.
            if self.shared.store.is_shared()
                && self.nothing_in_flight()
                && (submissions.is_empty() || !self.decides_under_head(submissions.len()))
                && self.log_moved_on()
                && !self.catch_up().await
            {
                self.rebuild_or_enter_outage("cannot read other nodes' events")
                    .await;
            }
            if !submissions.is_empty() {
                // Holding the head already (taken before gathering), decide under it.
                if self.head_right.is_some() || self.decides_under_head(submissions.len()) {
                    self.commit(submissions).await;
                } else {
                    self.decide_overlapped(submissions);
                }
            }
            if self.outage.is_some() {
                continue;
            }
            if !snapshot_requests.is_empty() {
                let result = self.take_snapshot().await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "snapshot failed");
                }
                for reply in snapshot_requests {
                    let _ = reply.send(result.clone());
                }
            } else {
                self.snapshot_if_due().await;
                self.checkpoint_if_due().await;
            }
        }
        // The queue is closed and drained: a clean shutdown, once what is in flight is in.
        self.drain().await;
        self.reap_snapshot(true).await;
        let healthy = self.outage.is_none();
        if healthy
            && self.snapshots.on_shutdown
            && self.head.seq > 0
            && let Err(e) = self.take_snapshot().await
        {
            tracing::error!(error = %e, "final snapshot failed");
        }
        if healthy
            && self
                .checkpointer
                .as_ref()
                .is_some_and(|c| c.last_seq < self.head.seq)
        {
            self.checkpoint().await;
        }
        tracing::info!(head = self.head.seq, "writer stopped");
        for reply in shutdown_replies {
            let _ = reply.send(());
        }
    }
}
