//! The permission names a token may carry, one per kernel operation.
//!
//! A permission is `resource:action`. Extension handlers are allowed by
//! `ext:<family>` (see [`extension`]); tools by `tool:<name>` (see [`tool`]).
//!
//! The one wildcard is a *tool family*: `tool:<prefix>*` allows every tool whose name
//! starts with `<prefix>` (`tool:fs.*` allows `fs.read`, `fs.write`, `fs.list`;
//! `tool:*` every tool, including tools registered later). Attenuation goes through
//! [`covers`], so a child may hold `tool:fs.read` or `tool:fs.*` under a parent's
//! `tool:*`, never the other way round. Every other permission is matched exactly.

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

/// Decide a call waiting for approval, of an agent in scope.
pub const APPROVAL_GRANT: &str = "approval:grant";
/// Every tool (the widest tool family).
pub const TOOL_ALL: &str = "tool:*";
/// Record exchanges with a language model (a planner's steps).
pub const MODEL_USE: &str = "model:use";

/// Cancel a queued or claimed task of an agent in scope.
pub const TASK_CANCEL: &str = "task:cancel";
/// Put a claimed task of an agent in scope back in its queue.
pub const TASK_REQUEUE: &str = "task:requeue";

/// Every built-in permission, for minting a root token.
pub const ALL: &[&str] = &[
    TOOL_ALL,
    APPROVAL_GRANT,
    TASK_SCHEDULE,
    TASK_CLAIM,
    TASK_COMPLETE,
    TASK_CANCEL,
    TASK_REQUEUE,
    AGENT_SPAWN,
    AGENT_TERMINATE,
    OBSERVATION_EMIT,
    TOKEN_REVOKE,
    TOKEN_ISSUE,
    MODEL_USE,
];

/// For a permission name that is none of Toka's, the built-in one it most likely
/// meant (`task:clam` → `task:claim`); `None` for a known name or no close match.
pub fn closest(name: &str) -> Option<&'static str> {
    if is_known(name) {
        return None;
    }
    ALL.iter()
        .copied()
        .map(|p| (toka_types::edit_distance(p, name), p))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, p)| p)
}

/// Whether `name` is a permission Toka knows: a built-in one, `tool:<name>` or
/// `ext:<family>`.
pub fn is_known(name: &str) -> bool {
    ALL.contains(&name) || name.starts_with("tool:") || name.starts_with("ext:")
}

/// The permission that allows calling the extension handler family `family`.
pub fn extension(family: &str) -> String {
    format!("ext:{family}")
}

/// The permission that allows calling tool `name`.
pub fn tool(name: &str) -> String {
    format!("tool:{name}")
}

/// Whether holding `granted` allows `wanted`: equal, or `granted` is a tool family
/// `tool:<prefix>*` and `wanted` is a tool permission (or family) starting with
/// `tool:<prefix>`.
pub fn covers(granted: &str, wanted: &str) -> bool {
    if granted == wanted {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(prefix) if prefix.starts_with("tool:") => {
            wanted.starts_with("tool:") && wanted.starts_with(prefix)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_families_cover_only_tools_below_them() {
        assert!(covers("tool:*", "tool:fs.read"));
        assert!(covers("tool:*", "tool:fs.*"));
        assert!(covers("tool:fs.*", "tool:fs.read"));
        assert!(covers("tool:fs.read", "tool:fs.read"));
        assert!(!covers("tool:fs.*", "tool:*"));
        assert!(!covers("tool:fs.*", "tool:exec.ls"));
        assert!(!covers("tool:fs.read", "tool:fs.write"));
        assert!(!covers("tool:*", "task:claim"));
        assert!(
            !covers("task:*", "task:claim"),
            "only tool families are wildcards"
        );
    }
}
