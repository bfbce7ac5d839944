//! [`StateImage`]: a [`WorldState`] as plain, serialisable data, for snapshots.
//!
//! The image holds only the facts; the bookkeeping `apply` maintains (queued counts,
//! open-task sets) is recomputed when the image is loaded, and the loaded state must
//! pass [`WorldState::check_invariants`], so a snapshot can never smuggle in a state
//! that `apply` could not have produced.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toka_types::{
    AgentSpec, EntityId, IdempotencyRecord, IssuedToken, TaskOutcome, TaskSpec, TaskState, ToolSpec,
};

use crate::error::InvariantViolation;
use crate::models::ModelUsage;
use crate::state::{AgentRecord, AgentStatus, TaskRecord, WorldState};
use crate::tools::CallRecord;

/// One agent in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentImage {
    /// Its id.
    pub id: EntityId,
    /// Its parent.
    pub parent: Option<EntityId>,
    /// Its spec.
    pub spec: AgentSpec,
    /// Its status.
    pub status: AgentStatus,
    /// Its observation count.
    pub observations: u64,
    /// Its children, in spawn order.
    pub children: Vec<EntityId>,
    /// Its tasks, in schedule order.
    pub tasks: Vec<EntityId>,
}

/// One task in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskImage {
    /// Its id.
    pub id: EntityId,
    /// Its agent.
    pub agent: EntityId,
    /// Its spec.
    pub spec: TaskSpec,
    /// Its state.
    pub state: TaskState,
    /// Its outcome.
    pub outcome: Option<TaskOutcome>,
}

/// One extension family's state: (key, value) pairs in key order.
pub type ExtensionEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// A whole state as data (agents and tasks in id order, so equal states give equal
/// images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateImage {
    /// Format version of the image.
    pub version: u32,
    /// The root agent.
    pub root: Option<EntityId>,
    /// Events applied.
    pub applied: u64,
    /// The agents.
    pub agents: Vec<AgentImage>,
    /// The tasks.
    pub tasks: Vec<TaskImage>,
    /// Revoked `jti`s, sorted.
    pub revoked: Vec<String>,
    /// Issued tokens, by `jti`.
    pub tokens: Vec<IssuedToken>,
    /// Remembered idempotency keys, oldest first.
    pub idempotency: Vec<IdempotencyRecord>,
    /// Signing keys the log has seen (`kid`, retired?).
    pub keys: Vec<(String, bool)>,
    /// The key new tokens are signed with.
    pub signing_kid: Option<String>,
    /// Extension state per family: (key, value) pairs in key order.
    pub extensions: BTreeMap<String, ExtensionEntries>,
    /// Registered tools by name, with whether each was retired (absent in images
    /// written before tools existed).
    #[serde(default)]
    pub tools: Vec<(ToolSpec, bool)>,
    /// Every tool call, in id order.
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    /// The `seq`s of each task's recorded model steps (absent in images written
    /// before model steps existed).
    #[serde(default)]
    pub model_steps: Vec<(EntityId, Vec<u64>)>,
    /// Model usage per agent.
    #[serde(default)]
    pub model_usage: Vec<(EntityId, ModelUsage)>,
    /// What each budgeted token spent.
    #[serde(default)]
    pub spent: Vec<(String, crate::budgets::Spent)>,
    /// Leases of claimed tasks (Unix seconds they run to).
    #[serde(default)]
    pub leases: Vec<(EntityId, u64)>,
    /// Designated planners.
    #[serde(default)]
    pub planners: Vec<(EntityId, crate::planners::PlannerRecord)>,
}

/// The image format this build writes and reads.
pub const IMAGE_VERSION: u32 = 2;

impl WorldState {
    /// This state as an image.
    pub fn image(&self) -> StateImage {
        StateImage {
            version: IMAGE_VERSION,
            root: self.root,
            applied: self.applied,
            agents: self
                .agents()
                .into_iter()
                .map(|a| AgentImage {
                    id: a.id,
                    parent: a.parent,
                    spec: a.spec.clone(),
                    status: a.status,
                    observations: a.observations,
                    children: a.children.clone(),
                    tasks: a.tasks.clone(),
                })
                .collect(),
            tasks: self
                .tasks()
                .into_iter()
                .map(|t| TaskImage {
                    id: t.id,
                    agent: t.agent,
                    spec: t.spec.clone(),
                    state: t.state,
                    outcome: t.outcome.clone(),
                })
                .collect(),
            revoked: self.revoked().into_iter().map(str::to_string).collect(),
            tokens: self.issued_sorted().into_iter().cloned().collect(),
            idempotency: self.idempotency.records().cloned().collect(),
            keys: self.keys.iter().map(|(k, r)| (k.clone(), *r)).collect(),
            signing_kid: self.signing_kid.clone(),
            extensions: self
                .extensions
                .iter()
                .map(|(family, entries)| {
                    (
                        family.clone(),
                        entries
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                })
                .collect(),
            tools: self
                .tools
                .tools()
                .map(|t| (t.spec.clone(), t.retired))
                .collect(),
            calls: self.tools.calls().into_iter().cloned().collect(),
            model_steps: self
                .models
                .tasks()
                .map(|(t, seqs)| (t, seqs.to_vec()))
                .collect(),
            model_usage: self.models.usages().collect(),
            spent: self
                .spent
                .entries()
                .map(|(j, s)| (j.to_string(), s))
                .collect(),
            leases: self.leases.entries().collect(),
            planners: self
                .planners
                .entries()
                .map(|(a, r)| (a, r.clone()))
                .collect(),
        }
    }

    /// The state an image describes, if it is one `apply` could have produced.
    pub fn from_image(image: StateImage) -> Result<WorldState, InvariantViolation> {
        if image.version != IMAGE_VERSION {
            return Err(InvariantViolation {
                number: 0,
                detail: format!("image version {} is not {IMAGE_VERSION}", image.version),
            });
        }
        let mut state = WorldState {
            root: image.root,
            applied: image.applied,
            ..WorldState::default()
        };
        let depth_of = |agents: &[AgentImage]| {
            // Depth by walking parents (bounded by the agent count).
            let parents: BTreeMap<EntityId, Option<EntityId>> =
                agents.iter().map(|a| (a.id, a.parent)).collect();
            move |mut id: EntityId| {
                let mut depth = 0u32;
                for _ in 0..parents.len() {
                    match parents.get(&id).copied().flatten() {
                        Some(p) => {
                            depth += 1;
                            id = p;
                        }
                        None => break,
                    }
                }
                depth
            }
        };
        let depth = depth_of(&image.agents);
        for task in image.tasks {
            state.tasks.insert(
                task.id,
                TaskRecord {
                    id: task.id,
                    agent: task.agent,
                    spec: task.spec,
                    state: task.state,
                    outcome: task.outcome,
                },
            );
        }
        for a in image.agents {
            let open_tasks = a
                .tasks
                .iter()
                .filter(|t| state.tasks.get(t).is_some_and(|t| t.state.is_open()))
                .copied()
                .collect();
            let queued = a
                .tasks
                .iter()
                .filter(|t| {
                    state
                        .tasks
                        .get(t)
                        .is_some_and(|t| t.state == TaskState::Queued)
                })
                .count();
            let lists = crate::state::ListHashes::of(&a.children, &a.tasks);
            state.agents.insert(
                a.id,
                AgentRecord {
                    id: a.id,
                    parent: a.parent,
                    spec: a.spec,
                    depth: depth(a.id),
                    lists,
                    children: a.children,
                    status: a.status,
                    observations: a.observations,
                    queued,
                    open_tasks,
                    tasks: a.tasks,
                },
            );
        }
        state.revoked = image.revoked.into_iter().collect();
        for record in image.idempotency {
            state.idempotency.insert(record);
        }
        state.keys = image.keys.into_iter().collect();
        state.signing_kid = image.signing_kid;
        state.tokens = image
            .tokens
            .into_iter()
            .map(|t| (t.jti.clone(), t))
            .collect();
        state.extensions = image
            .extensions
            .into_iter()
            .map(|(f, entries)| (f, entries.into_iter().collect()))
            .collect();
        state.tools = crate::tools::ToolTable::from_parts(image.tools, image.calls);
        state.models = crate::models::ModelTable::from_parts(image.model_steps, image.model_usage);
        state.spent = crate::budgets::SpentTable::from_parts(image.spent);
        state.leases = crate::leases::LeaseTable::from_parts(image.leases);
        state.planners = crate::planners::PlannerTable::from_parts(image.planners);
        state.check_invariants()?;
        Ok(state)
    }
}
