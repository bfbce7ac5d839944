//! `GET /v1/overview`: trust and load at a glance — the head, the newest signed
//! checkpoint and whether the running log still matches it, commits per second over
//! the last minutes, the writer's queue.
//!
//! What it is not: the state digest (that is `GET /v1/state`); nothing here reads
//! more than one stored record.
//!
//! Commit rates come from a sampler ([`CommitRates`]) that reads the runtime's
//! counters every [`SAMPLE_EVERY`] while the server runs, so the history starts when
//! the server did.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use toka_runtime::Runtime;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// How often the sampler reads the counters.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// How many samples are kept (ten minutes' worth).
pub const SAMPLES_KEPT: usize = 300;

/// One reading of the committed counters.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at_secs: f64,
    events: u64,
    messages: u64,
}

/// The recent history of the committed counters.
#[derive(Debug, Default)]
pub struct CommitRates {
    readings: Mutex<VecDeque<Reading>>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl CommitRates {
    /// Starts sampling `runtime` on the current tokio runtime until `shutdown` turns
    /// `true`; without a tokio runtime the history stays empty.
    pub fn start(runtime: Runtime, mut shutdown: watch::Receiver<bool>) -> Arc<Self> {
        let rates = Arc::new(Self::default());
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return rates;
        };
        let sampler = Arc::clone(&rates);
        handle.spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => sampler.sample(&runtime),
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                }
            }
        });
        rates
    }

    fn sample(&self, runtime: &Runtime) {
        let m = runtime.metrics().snapshot();
        let reading = Reading {
            at_secs: now_secs(),
            events: m.committed_events,
            messages: m.committed_messages,
        };
        let Ok(mut readings) = self.readings.lock() else {
            return;
        };
        if readings.len() == SAMPLES_KEPT {
            readings.pop_front();
        }
        readings.push_back(reading);
    }

    /// Rates between consecutive readings, oldest first.
    pub fn history(&self) -> Vec<RateSample> {
        let Ok(readings) = self.readings.lock() else {
            return Vec::new();
        };
        readings
            .iter()
            .zip(readings.iter().skip(1))
            .map(|(a, b)| {
                let span = (b.at_secs - a.at_secs).max(1e-3);
                RateSample {
                    at: b.at_secs.round() as u64,
                    events_per_sec: b.events.saturating_sub(a.events) as f64 / span,
                    messages_per_sec: b.messages.saturating_sub(a.messages) as f64 / span,
                }
            })
            .collect()
    }
}

/// Commits over one sampling interval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RateSample {
    /// End of the interval, seconds since the epoch.
    pub at: u64,
    /// Events committed per second.
    pub events_per_sec: f64,
    /// Messages committed per second.
    pub messages_per_sec: f64,
}

/// The newest signed checkpoint, checked against the running log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointCheck {
    /// The last `seq` it covers.
    pub seq: u64,
    /// The chain digest it states at `seq`.
    pub chain_digest: String,
    /// When it was signed, µs since the epoch.
    pub time: u64,
    /// The signing key's id.
    pub key_id: String,
    /// Whether the signature verifies with this node's public key.
    pub signature_valid: bool,
    /// Whether the log's record at `seq` carries the stated chain digest.
    pub matches_log: bool,
    /// What differs, when it does not.
    pub problem: Option<String>,
    /// Events committed since.
    pub behind: u64,
}

/// Trust and load at a glance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    /// The committed head `seq`.
    pub head: u64,
    /// Chain digest at the head.
    pub chain_digest: String,
    /// Agents in state (any status).
    pub agents: usize,
    /// Tasks in state (any state).
    pub tasks: usize,
    /// Messages waiting for the writer.
    pub queue_depth: u64,
    /// Open live event streams.
    pub subscribers: usize,
    /// Why the node refuses writes, when it does.
    pub unavailable: Option<String>,
    /// The newest checkpoint (absent before the first, or when the node signs none).
    pub checkpoint: Option<CheckpointCheck>,
    /// Commits per second, one sample per interval, oldest first.
    pub commit_rate: Vec<RateSample>,
    /// The sampling interval, seconds.
    pub sample_secs: u64,
}

/// Trust and load at a glance: head, chain digest, the newest checkpoint checked
/// against the log, recent commit rates and the queue depth.
#[utoipa::path(get, path = "/v1/overview", tag = "state",
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn overview(
    State(app): State<AppState>,
    _caller: Caller,
) -> Result<Json<Overview>, ApiError> {
    let runtime = &app.runtime;
    let head = runtime.head();
    let checkpoint = match runtime.latest_checkpoint() {
        None => None,
        Some(signed) => {
            let seq = signed.checkpoint.seq;
            // A record that cannot be read back (the store refuses an edited one) is
            // a mismatch too, with the store's reason.
            let (matches_log, problem) = match runtime.store().read_range(seq, 1).await {
                Ok(stored) => match stored.first() {
                    Some(r) if r.header.seq == seq => {
                        if r.header.digest == signed.checkpoint.chain_digest {
                            (true, None)
                        } else {
                            (
                                false,
                                Some(format!(
                                    "the log's chain digest at seq {seq} is {}",
                                    r.header.digest
                                )),
                            )
                        }
                    }
                    _ => (false, Some(format!("the log holds no record at seq {seq}"))),
                },
                Err(e) => (false, Some(e.to_string())),
            };
            let signature_valid = runtime
                .checkpoint_verifier()
                .is_some_and(|v| v.verify(&signed).is_ok());
            Some(CheckpointCheck {
                seq,
                chain_digest: signed.checkpoint.chain_digest.to_string(),
                time: signed.checkpoint.time.as_micros(),
                key_id: signed.key_id.clone(),
                signature_valid,
                matches_log,
                problem,
                behind: head.seq.saturating_sub(seq),
            })
        }
    };
    let (agents, tasks) = runtime.read(|s| (s.agent_count(), s.task_count()));
    Ok(Json(Overview {
        head: head.seq,
        chain_digest: head.digest.to_string(),
        agents,
        tasks,
        queue_depth: runtime.metrics().snapshot().queue_depth,
        subscribers: runtime.subscriber_count(),
        unavailable: runtime.unavailable(),
        checkpoint,
        commit_rate: app.rates.history(),
        sample_secs: SAMPLE_EVERY.as_secs(),
    }))
}
