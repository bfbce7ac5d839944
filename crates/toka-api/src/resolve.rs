//! Agent references: wherever the API takes an agent, it takes its id, an
//! unambiguous id prefix (4 characters or more), its name when only one agent in the
//! token's scope has it, or its path from the top of the scope
//! (`root/planner/worker-1`: active siblings have distinct names, see the kernel's
//! `name_taken`).
//!
//! Resolution only ever looks at agents the token's scope covers, so a reference can
//! not reveal that an out-of-scope agent exists.

use toka_auth::Scope;
use toka_kernel::{AgentStatus, WorldState};
use toka_types::EntityId;

use crate::auth::Caller;
use crate::error::ApiError;

/// Shortest id prefix accepted.
pub const MIN_PREFIX: usize = 4;
/// Longest reference accepted, in bytes.
const MAX_REFERENCE_BYTES: usize = 1024;

/// The agent `reference` names: a full id as it is, anything else among the agents
/// `caller` may see.
pub fn agent(state: &WorldState, caller: &Caller, reference: &str) -> Result<EntityId, ApiError> {
    let reference = reference.trim();
    if reference.is_empty() || reference.len() > MAX_REFERENCE_BYTES {
        return Err(ApiError::bad_request(format!(
            "an agent reference is 1 to {MAX_REFERENCE_BYTES} bytes: an id, an id prefix, a name or a path"
        )));
    }
    // A full id is taken as it is: the route or the kernel decides whether the
    // token may act on it (and says so in its own words).
    if let Ok(id) = reference.parse::<EntityId>() {
        return Ok(id);
    }
    if reference.contains('/') {
        return by_path(state, caller, reference);
    }
    let top = top(state, caller);
    let in_scope: Vec<EntityId> = top.map(|t| state.subtree(t)).unwrap_or_default();
    let named: Vec<EntityId> = in_scope
        .iter()
        .copied()
        .filter(|id| state.agent(*id).is_some_and(|a| a.spec.name() == reference))
        .collect();
    let candidates = match named.len() {
        0 if reference.len() >= MIN_PREFIX => in_scope
            .iter()
            .copied()
            .filter(|id| id.to_string().starts_with(&reference.to_ascii_lowercase()))
            .collect(),
        _ => named,
    };
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err(not_found(reference)),
        many => Err(ambiguous(state, reference, many)),
    }
}

/// The agent `text` names (see [`agent`]), or `None` for `None`.
pub fn optional(
    state: &WorldState,
    caller: &Caller,
    text: Option<&str>,
) -> Result<Option<EntityId>, ApiError> {
    text.map(|t| agent(state, caller, t)).transpose()
}

fn top(state: &WorldState, caller: &Caller) -> Option<EntityId> {
    match caller.claims.effective_scope() {
        Scope::All => state.root(),
        Scope::Subtree(top) => Some(top),
    }
}

/// `a/b/c`: `a` is the top of the scope (or the root), then a child by name at
/// each step, active children first.
fn by_path(state: &WorldState, caller: &Caller, path: &str) -> Result<EntityId, ApiError> {
    let mut parts = path.trim_matches('/').split('/');
    let first = parts.next().unwrap_or_default();
    let mut at = top(state, caller)
        .filter(|t| state.agent(*t).is_some_and(|a| a.spec.name() == first))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no agent at {path:?}: a path starts at the top of your token's scope ({})",
                top(state, caller)
                    .and_then(|t| state.agent(t))
                    .map_or("none", |a| a.spec.name())
            ))
        })?;
    for name in parts {
        let Some(parent) = state.agent(at) else {
            return Err(not_found(path));
        };
        let children: Vec<EntityId> = parent
            .children
            .iter()
            .copied()
            .filter(|c| state.agent(*c).is_some_and(|a| a.spec.name() == name))
            .collect();
        let active: Vec<EntityId> = children
            .iter()
            .copied()
            .filter(|c| {
                state
                    .agent(*c)
                    .is_some_and(|a| a.status == AgentStatus::Active)
            })
            .collect();
        at = match (active.as_slice(), children.as_slice()) {
            ([one], _) | ([], [one]) => *one,
            ([], []) => return Err(not_found(path)),
            (_, many) => return Err(ambiguous(state, path, many)),
        };
    }
    Ok(at)
}

fn not_found(reference: &str) -> ApiError {
    ApiError::not_found(format!(
        "no agent {reference:?} in your token's scope (give an id, an id prefix of at least {MIN_PREFIX} characters, a name or a path such as root/planner)"
    ))
}

fn ambiguous(state: &WorldState, reference: &str, many: &[EntityId]) -> ApiError {
    let listed: Vec<String> = many
        .iter()
        .take(10)
        .map(|id| {
            let name = state.agent(*id).map_or("?", |a| a.spec.name());
            format!("{name} {id}")
        })
        .collect();
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "ambiguous_agent",
        format!(
            "{reference:?} names {} agents: {}; give the id, a longer prefix or the path",
            many.len(),
            listed.join(", ")
        ),
    )
}
