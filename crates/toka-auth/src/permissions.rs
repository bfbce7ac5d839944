//! The permission names a token may carry, one per kernel operation.
//!
//! A permission is `resource:action`. Extension handlers are allowed by
//! `ext:<family>` (see [`extension`]). There is no wildcard: a root token lists every
//! permission it grants, so attenuation is a plain subset check.

/// Queue a task for an agent in scope.
pub const TASK_SCHEDULE: &str = "task:schedule";
/// Claim a queued task of an agent in scope.
pub const TASK_CLAIM: &str = "task:claim";
/// Complete (succeed or fail) a claimed task of an agent in scope.
pub const TASK_COMPLETE: &str = "task:complete";
/// Spawn a child of an agent in scope.
pub const AGENT_SPAWN: &str = "agent:spawn";
/// Terminate an agent in scope (and its descendants).
pub const AGENT_TERMINATE: &str = "agent:terminate";
/// Emit an observation as an agent in scope.
pub const OBSERVATION_EMIT: &str = "observation:emit";
/// Revoke a token (by `jti`).
pub const TOKEN_REVOKE: &str = "token:revoke";
/// Mint attenuated tokens for agents in scope (checked by the runtime's token service).
pub const TOKEN_ISSUE: &str = "token:issue";

/// Every built-in permission, for minting a root token.
pub const ALL: &[&str] = &[
    TASK_SCHEDULE,
    TASK_CLAIM,
    TASK_COMPLETE,
    AGENT_SPAWN,
    AGENT_TERMINATE,
    OBSERVATION_EMIT,
    TOKEN_REVOKE,
    TOKEN_ISSUE,
];

/// The permission that allows calling the extension handler family `family`.
pub fn extension(family: &str) -> String {
    format!("ext:{family}")
}
