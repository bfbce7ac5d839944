//! Outages (rule 6): rebuilding from the log, and retrying a failed store with bounded
//! backoff until it is back.

use std::time::Instant;

use super::{OUTAGE_BACKOFF_MAX, OUTAGE_BACKOFF_MIN, Outage, Reply, Request, Writer};
use crate::error::SubmitError;
use crate::recovery;

impl Writer {
    /// Rebuilds; on failure goes into an outage.
    pub(super) async fn rebuild_or_enter_outage(&mut self, why: &str) {
        if let Err(reason) = self.rebuild().await {
            self.enter_outage(&format!("{why}: {reason}"));
        }
    }

    pub(super) fn enter_outage(&mut self, reason: &str) {
        let backoff = self
            .outage
            .as_ref()
            .map(|o| (o.backoff * 2).min(OUTAGE_BACKOFF_MAX))
            .unwrap_or(OUTAGE_BACKOFF_MIN);
        if self.outage.is_none() {
            tracing::error!(
                reason,
                "the store is unavailable; retrying until it is back"
            );
        }
        self.outage = Some(Outage {
            reason: reason.to_string(),
            retry_at: Instant::now() + backoff,
            backoff,
        });
        self.publish_unavailable(Some(reason.to_string()));
    }

    /// What `/readyz` reports.
    fn publish_unavailable(&self, reason: Option<String>) {
        *self
            .shared
            .unavailable
            .write()
            .unwrap_or_else(|e| e.into_inner()) = reason;
    }

    /// Answers every submission of a batch that was neither decided nor written:
    /// `Unavailable`, retry after the outage's next attempt.
    pub(super) fn refuse_unavailable(&self, submissions: Vec<(Request, Reply)>, reason: &str) {
        let retry_after_ms = self.retry_after_ms();
        for (request, reply) in submissions {
            let error = SubmitError::Unavailable {
                reason: reason.to_string(),
                retry_after_ms,
            };
            let _ = reply.send(Err((error, request)));
        }
    }

    /// In an outage: try the rebuild again; leave the outage if it works.
    pub(super) async fn try_to_recover(&mut self) {
        match self.rebuild().await {
            Ok(()) => {
                tracing::info!(head = self.head.seq, "the store is back; serving again");
                self.outage = None;
                self.publish_unavailable(None);
            }
            Err(reason) => self.enter_outage(&reason),
        }
    }

    /// How long a refused submitter should wait before trying again.
    fn retry_after_ms(&self) -> u64 {
        self.outage
            .as_ref()
            .map(|o| {
                o.retry_at
                    .saturating_duration_since(Instant::now())
                    .as_millis() as u64
            })
            .unwrap_or(0)
            .max(100)
    }

    /// Replaces the writer's kernel with one on `state`, verifying with the same keys.
    pub(super) fn restart_kernel(&mut self, state: toka_kernel::WorldState) {
        let keys = self.kernel.verifier().keys().clone();
        self.kernel = recovery::kernel_for(state, keys, &self.handlers);
    }

    /// Throws away the writer's (possibly uncommitted) state and replays the log.
    pub(super) async fn rebuild(&mut self) -> Result<(), String> {
        let trusted: Vec<_> = self
            .shared
            .latest_checkpoint
            .read()
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default();
        let store = self.shared.store.as_ref();
        match recovery::recover_with(store, &self.handlers, &trusted, true, |_| {}).await {
            Ok(recovered) => {
                self.restart_kernel(recovered.state.clone());
                self.head = recovered.head;
                // Warm the digest before readers see it (as at start).
                recovered.state.digest();
                *self.shared.state.write().unwrap_or_else(|e| e.into_inner()) = recovered.state;
                self.shared.head.send_replace(recovered.head);
                tracing::info!(head = recovered.head.seq, "state rebuilt from the log");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot rebuild state from the log");
                Err(e.to_string())
            }
        }
    }
}
