//! [`Caller`]: the bearer token of a request, validated; and what its scope may see.

use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use toka_auth::{AuthError, Claims, KeySet, Scope, Verifier};
use toka_kernel::WorldState;
use toka_types::{EntityId, KernelEvent};

use crate::error::ApiError;
use crate::state::AppState;

/// A request's validated capability. The raw token is kept to act with it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its claims.
    pub claims: Arc<Claims>,
    /// The token itself.
    pub token: String,
}

impl Caller {
    /// Whether the token's scope covers `agent`.
    pub fn sees(&self, state: &WorldState, agent: EntityId) -> bool {
        match self.claims.effective_scope() {
            Scope::All => true,
            Scope::Subtree(top) => state.is_within(agent, top),
        }
    }

    /// Whether the token may read this event: its origin or the agent it concerns is in
    /// scope (events that concern no agent, such as revocations, need scope `*`).
    pub fn sees_event(&self, state: &WorldState, origin: EntityId, event: &KernelEvent) -> bool {
        if matches!(self.claims.effective_scope(), Scope::All) {
            return true;
        }
        self.sees(state, origin) || subject(state, event).is_some_and(|a| self.sees(state, a))
    }
}

/// The agent an event concerns beyond its origin (the one spawned, whose task, whose
/// call…), or `None` for events about no agent (revocations, keys, tools).
pub fn subject(state: &WorldState, event: &KernelEvent) -> Option<EntityId> {
    match event {
        KernelEvent::AgentSpawned { agent, .. }
        | KernelEvent::TaskScheduled { agent, .. }
        | KernelEvent::TaskClaimed { agent, .. }
        | KernelEvent::TaskCompleted { agent, .. }
        | KernelEvent::ObservationEmitted { agent, .. }
        | KernelEvent::AgentTerminated { agent, .. }
        | KernelEvent::TaskHeartbeat { agent, .. }
        | KernelEvent::PlannerDesignated { agent, .. }
        | KernelEvent::TaskLeaseExpired { agent, .. }
        | KernelEvent::TaskCancelled { agent, .. }
        | KernelEvent::TaskRequeued { agent, .. } => Some(*agent),
        KernelEvent::TokenIssued(t) => Some(t.sub),
        KernelEvent::IdempotencyKeyRecorded(r) => Some(r.origin),
        KernelEvent::ToolCalled(c) => Some(c.agent),
        KernelEvent::ModelAnswered { step, .. } => Some(step.agent),
        // Spending is the authorising token's: its subject.
        KernelEvent::BudgetSpent(s) => s
            .jtis
            .last()
            .and_then(|j| state.issued_token(j))
            .map(|t| t.sub),
        KernelEvent::ToolApproved { call, .. }
        | KernelEvent::ToolDenied { call, .. }
        | KernelEvent::ToolApprovalExpired { call }
        | KernelEvent::ToolStarted { call, .. }
        | KernelEvent::ToolReturned { call, .. }
        | KernelEvent::ToolAbandoned { call, .. } => state.tools().call(*call).map(|c| c.agent),
        KernelEvent::ToolRegistered(_)
        | KernelEvent::ToolRetired { .. }
        | KernelEvent::TokenRevoked { .. }
        | KernelEvent::KeyRotated { .. }
        | KernelEvent::KeyRetired { .. }
        | KernelEvent::Extension(_) => None,
    }
}

impl Caller {
    /// Why the token may no longer be used (expired, revoked, its subject terminated,
    /// its key retired), or `None` while it may. Long-lived requests (event streams)
    /// ask again as they go.
    pub fn lapsed(&self, app: &AppState) -> Option<String> {
        let now = app.now_secs();
        let keys = app.runtime.keys();
        app.runtime.read(|state| {
            if let Err(e) = toka_auth::validate(&self.token, now, state, &keys) {
                return Some(format!("token refused: {e}"));
            }
            match state.agent(self.claims.sub).map(|a| a.status) {
                Some(toka_kernel::AgentStatus::Active) => None,
                Some(_) => Some(format!("agent {} was terminated", self.claims.sub)),
                None => Some(format!("agent {} does not exist", self.claims.sub)),
            }
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing Authorization: Bearer <token> header")
            })?;
        let text = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("Authorization header is not text"))?;
        Self::from_authorization(app, text)
    }
}

impl Caller {
    /// The caller an `Authorization: Bearer <token>` header value names, validated now
    /// against the keys and the revocations of the committed state.
    pub fn from_authorization(app: &AppState, text: &str) -> Result<Self, ApiError> {
        let token = text
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?
            .trim()
            .to_string();
        let now = app.now_secs();
        let keys = app.runtime.keys();
        let claims = app
            .runtime
            .read(|state| app.verifier.verify(&token, now, state, keys))
            .map_err(|e| {
                tracing::info!(reason = %e, "request refused: bad token");
                ApiError::unauthorized(format!("token refused: {e}"))
            })?;
        Ok(Self { claims, token })
    }
}

/// Token checks for requests, behind a cache of verified signatures ([`Verifier`]): an
/// agent sends the same token with every request, and checking its signature and
/// reading its claims was a quarter of a `POST /v1/messages`. Expiry and revocation
/// are still checked on every request, against the committed state; a change of the
/// node's keys empties the cache.
#[derive(Debug)]
pub struct RequestVerifier {
    /// The key set the verifier holds (compared by pointer with the runtime's), and
    /// the verifier.
    inner: Mutex<(Arc<KeySet>, Verifier)>,
}

impl RequestVerifier {
    /// A verifier for `keys`.
    pub fn new(keys: Arc<KeySet>) -> Self {
        let verifier = Verifier::new((*keys).clone());
        Self {
            inner: Mutex::new((keys, verifier)),
        }
    }

    /// Checks `token` at `now` against `revoked`, with the node's current `keys`.
    fn verify(
        &self,
        token: &str,
        now: u64,
        revoked: &WorldState,
        keys: Arc<KeySet>,
    ) -> Result<Arc<Claims>, AuthError> {
        // A panic elsewhere cannot leave the cache wrong: entries are whole.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (held, verifier) = &mut *inner;
        if !Arc::ptr_eq(held, &keys) {
            verifier.set_keys((*keys).clone());
            *held = keys;
        }
        verifier.verify(token, now, revoked)
    }
}
