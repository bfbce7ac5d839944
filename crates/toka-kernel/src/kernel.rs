//! [`Kernel`]: one instance of the state machine, with its verifier and handlers.

use std::sync::Arc;

use toka_auth::{Claims, KeySet, Verifier};
use toka_types::{AgentSpec, KernelEvent, Message, Timestamp};

use crate::apply::apply;
use crate::context::Context;
use crate::decide::{decide, decide_genesis, decide_key_change, decide_root_token};
use crate::error::KernelError;
use crate::opcode::{OpcodeHandler, OpcodeRegistry};
use crate::state::WorldState;

/// The state, the token verifier (keys + verified-token cache) and the extension
/// handlers of one kernel. The runtime's writer task owns exactly one.
///
/// [`Kernel::submit`] is the live path: validate, authenticate, decide, apply.
/// [`Kernel::apply`] is the replay path: apply only, never decide again (tokens may
/// have expired since; that does not undo what they authorised).
#[derive(Debug, Clone)]
pub struct Kernel {
    state: WorldState,
    verifier: Verifier,
    handlers: OpcodeRegistry,
    last_now: Timestamp,
}

impl Kernel {
    /// A kernel on the empty state, verifying tokens with `keys`.
    pub fn new(keys: KeySet) -> Self {
        Self::with_state(WorldState::new(), keys)
    }

    /// A kernel on `state` (e.g. loaded from a snapshot).
    pub fn with_state(state: WorldState, keys: KeySet) -> Self {
        Self {
            state,
            verifier: Verifier::new(keys),
            handlers: OpcodeRegistry::new(),
            last_now: Timestamp::default(),
        }
    }

    /// Uses `verifier` (e.g. one with the cache disabled).
    pub fn with_verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// Uses `handlers` (extension handlers and the schema check) instead of its own.
    pub fn with_handlers(mut self, handlers: OpcodeRegistry) -> Self {
        self.handlers = handlers;
        self
    }

    /// Registers an extension handler; refused if its family has one already.
    pub fn register(&mut self, handler: Arc<dyn OpcodeHandler>) -> Result<(), KernelError> {
        self.handlers.register(handler)
    }

    /// Checks tool inputs with `check` (see [`SchemaCheck`](crate::SchemaCheck)).
    pub fn set_schema_check(&mut self, check: Arc<dyn crate::SchemaCheck>) {
        self.handlers.set_schema_check(check);
    }

    /// The committed-or-not state this kernel holds.
    pub fn state(&self) -> &WorldState {
        &self.state
    }

    /// Replaces the state (after recovery), keeping keys and handlers.
    pub fn replace_state(&mut self, state: WorldState) {
        self.state = state;
    }

    /// The handlers.
    pub fn handlers(&self) -> &OpcodeRegistry {
        &self.handlers
    }

    /// The verifier (keys and cache).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The verifier, to rotate keys.
    pub fn verifier_mut(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    /// Creates the root agent of an empty log and applies it.
    pub fn genesis(
        &mut self,
        root: &AgentSpec,
        ctx: &Context,
    ) -> Result<Vec<KernelEvent>, KernelError> {
        self.check_clock(ctx)?;
        let events = decide_genesis(&self.state, root, ctx)?;
        self.apply_all(&events);
        self.last_now = ctx.now;
        Ok(events)
    }

    /// Issues a root token (every permission, scope `*`) valid `ttl_secs`, and applies
    /// it. For the holder of the node's signing key only: no message authorises it.
    pub fn issue_root_token(
        &mut self,
        ttl_secs: u64,
        ctx: &Context,
    ) -> Result<Vec<KernelEvent>, KernelError> {
        self.check_clock(ctx)?;
        let mut events = decide_root_token(&self.state, ttl_secs, ctx)?;
        self.stamp_kid(&mut events);
        self.apply_all(&events);
        self.last_now = ctx.now;
        Ok(events)
    }

    /// Checks `message`'s token at `now` (using the cache) against the state's revoked
    /// set, and returns its claims.
    pub fn authenticate(
        &mut self,
        message: &Message,
        now: Timestamp,
    ) -> Result<Arc<Claims>, KernelError> {
        Ok(self
            .verifier
            .verify(&message.capability, now.as_unix_secs(), &self.state)?)
    }

    /// The live path: authenticate `message`, decide it at `ctx`, apply the events and
    /// return them. On error nothing changed.
    pub fn submit(
        &mut self,
        message: &Message,
        ctx: &Context,
    ) -> Result<Vec<KernelEvent>, KernelError> {
        self.check_clock(ctx)?;
        let claims = self.authenticate(message, ctx.now)?;
        self.submit_verified(message, &claims, ctx)
    }

    /// Decides `message` with claims already verified by the caller, and applies it.
    pub fn submit_verified(
        &mut self,
        message: &Message,
        claims: &Claims,
        ctx: &Context,
    ) -> Result<Vec<KernelEvent>, KernelError> {
        self.check_clock(ctx)?;
        let mut events = decide(&self.state, message, claims, ctx, &self.handlers)?;
        self.stamp_kid(&mut events);
        self.apply_all(&events);
        self.last_now = ctx.now;
        Ok(events)
    }

    /// Records a change of the signing keys (see [`decide_key_change`]) and makes
    /// `keys` the verifier's key set, in that order of the log.
    pub fn change_keys(
        &mut self,
        keys: KeySet,
        rotated: Option<(&str, &str)>,
        retired: &[String],
        ctx: &Context,
    ) -> Result<Vec<KernelEvent>, KernelError> {
        self.check_clock(ctx)?;
        let events = decide_key_change(&self.state, rotated, retired, ctx)?;
        self.verifier.set_keys(keys);
        self.apply_all(&events);
        self.last_now = ctx.now;
        Ok(events)
    }

    /// Queues again the claimed tasks whose lease ran out by `ctx.now`, and applies it.
    /// Not reachable through a message: the runtime asks on a timer.
    pub fn expire_leases(&mut self, ctx: &Context) -> Result<Vec<KernelEvent>, KernelError> {
        self.check_clock(ctx)?;
        let events = crate::leases::decide_expire_leases(&self.state, ctx)?;
        self.apply_all(&events);
        self.last_now = ctx.now;
        Ok(events)
    }

    /// Records what the node's executor reports (see [`ToolOp`](crate::ToolOp)), and
    /// applies it. Not reachable through a message.
    pub fn tool_op(
        &mut self,
        op: &crate::ToolOp,
        ctx: &Context,
    ) -> Result<Vec<KernelEvent>, KernelError> {
        self.check_clock(ctx)?;
        let events = crate::decide_tool_op(&self.state, op, ctx, &self.handlers)?;
        self.apply_all(&events);
        self.last_now = ctx.now;
        Ok(events)
    }

    /// Tokens are issued with the `kid` of the key that will sign them: the active
    /// one now (an input from the runtime, recorded like the time).
    fn stamp_kid(&self, events: &mut [KernelEvent]) {
        for event in events {
            if let KernelEvent::TokenIssued(issued) = event {
                issued.kid = self.verifier.keys().active().map(|k| k.kid().to_string());
            }
        }
    }

    /// The replay path: applies one event read from the log.
    pub fn apply(&mut self, event: &KernelEvent) {
        apply(&mut self.state, event, &self.handlers);
    }

    fn apply_all(&mut self, events: &[KernelEvent]) {
        for event in events {
            apply(&mut self.state, event, &self.handlers);
        }
    }

    fn check_clock(&self, ctx: &Context) -> Result<(), KernelError> {
        if ctx.now < self.last_now {
            return Err(KernelError::ClockWentBack {
                last: self.last_now.as_micros(),
                now: ctx.now.as_micros(),
            });
        }
        Ok(())
    }
}
