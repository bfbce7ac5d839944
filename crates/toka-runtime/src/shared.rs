//! What the writer shares with readers: committed state, head, the live bus, metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use toka_bus_core::BroadcastBus;
use toka_kernel::WorldState;
use toka_store_core::{EventRecord, Head, StorageBackend};
use tokio::sync::watch;

/// How many committed records the live bus keeps for slow subscribers.
pub(crate) const BUS_CAPACITY: usize = 16 * 1024;

/// Counters the runtime keeps; read with [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) submitted: AtomicU64,
    pub(crate) committed_messages: AtomicU64,
    pub(crate) committed_events: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) busy: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) commit_failures: AtomicU64,
    pub(crate) head_conflicts: AtomicU64,
    pub(crate) commit_micros_total: AtomicU64,
    pub(crate) queue_depth: AtomicU64,
    /// Rejections by reason (the error's variant name), updated under a lock: rare.
    pub(crate) rejections: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Commit latency histogram: counts per bucket of [`LATENCY_BUCKETS_MS`].
    pub(crate) commit_latency: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    /// Batch size histogram: counts per bucket of [`BATCH_BUCKETS`].
    pub(crate) batch_sizes: [AtomicU64; BATCH_BUCKETS.len() + 1],
}

/// Upper bounds (ms) of the commit latency buckets.
pub const LATENCY_BUCKETS_MS: [f64; 10] =
    [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 1000.0];
/// Upper bounds of the batch size buckets.
pub const BATCH_BUCKETS: [u64; 8] = [1, 4, 16, 64, 256, 1024, 4096, 16384];

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MetricsSnapshot {
    /// Messages submitted.
    pub submitted: u64,
    /// Messages committed.
    pub committed_messages: u64,
    /// Events committed.
    pub committed_events: u64,
    /// Messages the kernel rejected.
    pub rejected: u64,
    /// Messages refused by the rate limit.
    pub rate_limited: u64,
    /// Messages refused as Busy.
    pub busy: u64,
    /// Batches committed.
    pub batches: u64,
    /// Failed commits.
    pub commit_failures: u64,
    /// On a shared log: batches decided without the head that another node's append
    /// voided (nothing written; decided again under the head).
    pub head_conflicts: u64,
    /// Sum of commit latencies, µs.
    pub commit_micros_total: u64,
    /// Messages waiting for the writer.
    pub queue_depth: u64,
    /// Rejections by reason.
    pub rejections: std::collections::BTreeMap<String, u64>,
    /// Commit latency bucket counts (cumulative counts are the caller's job).
    pub commit_latency: Vec<u64>,
    /// Batch size bucket counts.
    pub batch_sizes: Vec<u64>,
}

impl Metrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            submitted: load(&self.submitted),
            committed_messages: load(&self.committed_messages),
            committed_events: load(&self.committed_events),
            rejected: load(&self.rejected),
            rate_limited: load(&self.rate_limited),
            busy: load(&self.busy),
            batches: load(&self.batches),
            commit_failures: load(&self.commit_failures),
            head_conflicts: load(&self.head_conflicts),
            commit_micros_total: load(&self.commit_micros_total),
            queue_depth: load(&self.queue_depth),
            rejections: self
                .rejections
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default(),
            commit_latency: self.commit_latency.iter().map(load).collect(),
            batch_sizes: self.batch_sizes.iter().map(load).collect(),
        }
    }

    pub(crate) fn observe_commit(&self, micros: u64, batch: usize) {
        self.commit_micros_total
            .fetch_add(micros, Ordering::Relaxed);
        let ms = micros as f64 / 1000.0;
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.commit_latency[i].fetch_add(1, Ordering::Relaxed);
        let j = BATCH_BUCKETS
            .iter()
            .position(|b| batch as u64 <= *b)
            .unwrap_or(BATCH_BUCKETS.len());
        self.batch_sizes[j].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.rejections.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }
}

pub(crate) struct Shared {
    pub(crate) state: RwLock<WorldState>,
    pub(crate) head: watch::Sender<Head>,
    pub(crate) bus: BroadcastBus<Arc<EventRecord>>,
    pub(crate) store: Arc<dyn StorageBackend>,
    pub(crate) metrics: Metrics,
    pub(crate) latest_checkpoint: RwLock<Option<crate::checkpoint::SignedCheckpoint>>,
    /// Why the writer cannot commit, while it cannot.
    pub(crate) unavailable: RwLock<Option<String>>,
}

impl Shared {
    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, WorldState> {
        // A writer that panicked mid-update cannot leave a torn state behind: updates
        // apply whole events. Keep serving what is there.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}
