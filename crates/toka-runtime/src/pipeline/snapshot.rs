//! Snapshots and signed checkpoints taken by the writer, and its clock tick.
//!
//! A snapshot due by events is written beside the writer, not by it: the writer copies
//! the state and goes on committing while a task encodes and stores the copy. At most
//! one is being written at a time; a request for one, and shutdown, wait for it.

use toka_store_core::{Hash32, Snapshot};

use super::Writer;

/// A snapshot being encoded and stored: its `seq`, or why not.
pub(crate) type SnapshotJob = tokio::task::JoinHandle<Result<u64, String>>;

impl Writer {
    /// Time passed: sign a checkpoint if one is due by time, forget rate-limit keys of
    /// subjects idle long enough to be full again.
    pub(super) async fn on_tick(&mut self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.reap_snapshot(false).await;
        if self.outage.is_none() {
            self.checkpoint_if_due().await;
        }
    }

    /// Signs a checkpoint if one is due by events or by time.
    pub(super) async fn checkpoint_if_due(&mut self) {
        let now = self.clock.now().max(self.last_now);
        if self
            .checkpointer
            .as_ref()
            .is_some_and(|c| c.due(self.head.seq, now))
        {
            self.checkpoint().await;
        }
    }

    /// A snapshot at the head, waited for (a request, or the one at shutdown).
    pub(super) async fn take_snapshot(&mut self) -> Result<u64, String> {
        self.reap_snapshot(true).await;
        let job = self.start_snapshot().await?;
        job.await
            .map_err(|e| format!("the snapshot task failed: {e}"))?
    }

    /// Starts a snapshot at the head if one is due by events and none is being written.
    pub(super) async fn snapshot_if_due(&mut self) {
        self.reap_snapshot(false).await;
        let due =
            self.snapshots.every_events > 0 && self.since_snapshot >= self.snapshots.every_events;
        if !due || self.snapshot_job.is_some() {
            return;
        }
        match self.start_snapshot().await {
            Ok(job) => self.snapshot_job = Some(job),
            Err(e) => tracing::error!(error = %e, "snapshot failed"),
        }
    }

    /// Logs how the snapshot being written ended, once it has (with `wait`, waits).
    pub(super) async fn reap_snapshot(&mut self, wait: bool) {
        let Some(job) = self.snapshot_job.take_if(|job| wait || job.is_finished()) else {
            return;
        };
        match job.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "snapshot failed"),
            Err(e) => tracing::error!(error = %e, "the snapshot task failed"),
        }
    }

    /// Copies the committed state at the head, signs a checkpoint that covers it, and
    /// hands the copy to a task that encodes and stores it.
    ///
    /// Why a copy: encoding a large state takes several times longer than copying it
    /// (a million tasks: 0.6 s against 0.15 s), and the writer cannot commit while it
    /// holds the state, so it only copies. The checkpoint is signed first, from the
    /// digest the state keeps current, so a snapshot is never stored without one.
    async fn start_snapshot(&mut self) -> Result<SnapshotJob, String> {
        let (state, digest) = {
            let state = self.shared.read_state();
            (state.clone(), Hash32(*state.digest().as_bytes()))
        };
        self.since_snapshot = 0;
        self.sign_checkpoint(digest)
            .await
            .map_err(|e| format!("no snapshot taken: its checkpoint failed: {e}"))?;
        let (seq, chain_digest) = (self.head.seq, self.head.digest);
        let store = std::sync::Arc::clone(&self.shared.store);
        let keep = self.snapshots.keep.max(1);
        Ok(tokio::spawn(async move {
            let state = tokio::task::spawn_blocking(move || serde_json::to_vec(&state.image()))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let snapshot = Snapshot {
                seq,
                chain_digest,
                state_digest: digest,
                state,
            };
            store
                .put_snapshot(&snapshot)
                .await
                .map_err(|e| e.to_string())?;
            store
                .prune_snapshots(keep)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(seq, bytes = snapshot.state.len(), "snapshot taken");
            Ok(seq)
        }))
    }

    /// Signs a checkpoint at the head now, if checkpoints are configured. Only called
    /// right after a commit or a catch-up, when the shared state is at the head.
    pub(super) async fn checkpoint(&mut self) {
        let digest = Hash32(*self.shared.read_state().digest().as_bytes());
        if let Err(e) = self.sign_checkpoint(digest).await {
            tracing::error!(error = %e, "checkpoint failed");
        }
    }

    /// Signs a checkpoint at the head, appends it to the file, then stores it beside
    /// the log (either copy alone is enough to catch a cut tail).
    pub(super) async fn sign_checkpoint(&mut self, state_digest: Hash32) -> Result<(), String> {
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
        let json = serde_json::to_vec(&signed).map_err(|e| e.to_string())?;
        self.shared
            .store
            .put_checkpoint(signed.checkpoint.seq, &json)
            .await
            .map_err(|e| format!("checkpoint signed and filed, but not stored: {e}"))?;
        tracing::info!(seq = signed.checkpoint.seq, "checkpoint signed");
        *self
            .shared
            .latest_checkpoint
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(signed);
        Ok(())
    }
}
