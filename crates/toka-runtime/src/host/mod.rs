//! User-space agents inside the runtime, under a supervisor.
//!
//! An [`Agent`] is code that acts as one agent of the log: it receives the tasks
//! scheduled to it, claims and completes them, emits observations and spawns children
//! (each child gets a token the runtime attenuates from its parent's). Everything it
//! does goes through the runtime like any other client: its messages are authorised by
//! its token and decided by the kernel.
//!
//! [`host`] runs an agent under a supervisor: if `run` returns an error or panics, the
//! agent is restarted (with a growing pause) up to a limit; one failing agent never
//! stops the kernel or the other agents.

mod context;
mod renewer;
mod supervisor;

pub use context::{AgentContext, AssignedTask};
pub use renewer::TokenCell;
pub use supervisor::{AbortOnDrop, AgentHandle, HostedStatus, host};

use async_trait::async_trait;

/// Why an agent's run failed (the supervisor logs it and restarts the agent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AgentError(pub String);

impl From<crate::Refused> for AgentError {
    fn from(r: crate::Refused) -> Self {
        Self(r.error.to_string())
    }
}

impl From<toka_auth::AuthError> for AgentError {
    fn from(e: toka_auth::AuthError) -> Self {
        Self(e.to_string())
    }
}

impl From<toka_types::ValidationError> for AgentError {
    fn from(e: toka_types::ValidationError) -> Self {
        Self(e.to_string())
    }
}

/// Code that acts as one agent. `run` is called again after a failure, with a fresh
/// context that first delivers the tasks still queued for the agent.
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// Does the agent's work; returns when the agent is done.
    async fn run(&self, ctx: &mut AgentContext) -> Result<(), AgentError>;
}
