//! Snapshots and signed checkpoints taken by the writer, and its clock tick.

use toka_store_core::{Hash32, Snapshot};

use super::Writer;

impl Writer {
    /// Time passed: sign a checkpoint if one is due by time, forget rate-limit keys of
    /// subjects idle long enough to be full again.
    pub(super) async fn on_tick(&mut self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
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

    pub(super) async fn take_snapshot(&mut self) -> Result<u64, String> {
        // The committed state readers share: its digest is kept current as it changes.
        let (image, digest) = {
            let state = self.shared.read_state();
            let image = serde_json::to_vec(&state.image()).map_err(|e| e.to_string())?;
            (image, Hash32(*state.digest().as_bytes()))
        };
        let snapshot = Snapshot {
            seq: self.head.seq,
            chain_digest: self.head.digest,
            state_digest: digest,
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
            .await
            .map_err(|e| format!("snapshot taken, but its checkpoint failed: {e}"))?;
        Ok(snapshot.seq)
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
