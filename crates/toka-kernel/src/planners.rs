//! Planner designations: which agents the node runs as LLM planners, with which token
//! and model. They are facts in the log, so a node that restarts hosts them again by
//! itself. The rule: the sender holds `token:issue`, the agent is in its scope and
//! active, and the token `jti` was issued for that agent by the sender's token or a
//! token issued from it (never someone else's), not revoked.
//!
//! Invariant 13: every designation names an agent and a token for it.

use std::collections::BTreeMap;

use toka_auth::{Claims, permissions};
use toka_types::{EntityId, KernelEvent, Operation};

use crate::decide::{require, target};
use crate::error::KernelError;
use crate::state::WorldState;

/// A designated planner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannerRecord {
    /// The token it acts with.
    pub jti: String,
    /// The model it asks (none: the node's configured model).
    pub model: Option<String>,
}

/// Designated planners by agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannerTable {
    pub(crate) by_agent: BTreeMap<EntityId, PlannerRecord>,
}

impl PlannerTable {
    /// The designation of `agent`.
    pub fn of(&self, agent: EntityId) -> Option<&PlannerRecord> {
        self.by_agent.get(&agent)
    }

    /// Every designation, by agent.
    pub fn entries(&self) -> impl Iterator<Item = (EntityId, &PlannerRecord)> {
        self.by_agent.iter().map(|(a, r)| (*a, r))
    }

    /// Whether none was made.
    pub fn is_empty(&self) -> bool {
        self.by_agent.is_empty()
    }

    pub(crate) fn from_parts(entries: Vec<(EntityId, PlannerRecord)>) -> Self {
        Self {
            by_agent: entries.into_iter().collect(),
        }
    }
}

/// `DesignatePlanner`.
pub(crate) fn designate(
    state: &WorldState,
    claims: &Claims,
    op: &Operation,
    (agent, jti, model): (EntityId, &str, Option<&str>),
) -> Result<Vec<KernelEvent>, KernelError> {
    require(claims, permissions::TOKEN_ISSUE, op)?;
    target(state, claims, agent)?;
    let refuse = |reason: String| KernelError::PlannerTokenRefused {
        jti: jti.to_string(),
        reason,
    };
    let issued = state
        .tokens
        .get(jti)
        .ok_or_else(|| refuse("the log never issued it".into()))?;
    if issued.sub != agent {
        return Err(refuse(format!(
            "it is for agent {}, not {agent}",
            issued.sub
        )));
    }
    let from_sender = issued.parent.as_deref() == Some(claims.jti.as_str())
        || issued.lineage.contains(&claims.jti);
    if !from_sender {
        return Err(refuse("it was not issued from the sender's token".into()));
    }
    if state.revoked.contains(jti) || issued.lineage.iter().any(|j| state.revoked.contains(j)) {
        return Err(refuse("it is revoked".into()));
    }
    Ok(vec![KernelEvent::PlannerDesignated {
        agent,
        jti: jti.to_string(),
        model: model.map(str::to_string),
    }])
}
