//! [`ModelTable`]: what the state keeps of recorded model exchanges. For each task,
//! the `seq`s of its `model.answered` events, in step order (a transcript is read
//! from those events: the state keeps no text); for each agent, the steps and
//! tokens it used, which budgets debit.
//!
//! Invariant 10: every task with steps exists; its steps are in ascending `seq`
//! order; an agent's usage counts at least one step per step recorded for its tasks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toka_types::EntityId;

/// What one agent used of the models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// Steps recorded.
    pub steps: u64,
    /// Tokens the recorded responses say they used.
    pub tokens: u64,
}

/// Recorded model steps by task, usage by agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelTable {
    pub(crate) by_task: BTreeMap<EntityId, Vec<u64>>,
    pub(crate) usage: BTreeMap<EntityId, ModelUsage>,
}

impl ModelTable {
    /// Whether no step was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.by_task.is_empty() && self.usage.is_empty()
    }

    /// The `seq`s of the steps recorded for `task`, in order.
    pub fn steps_of(&self, task: EntityId) -> &[u64] {
        self.by_task.get(&task).map_or(&[], Vec::as_slice)
    }

    /// What `agent` used.
    pub fn usage_of(&self, agent: EntityId) -> ModelUsage {
        self.usage.get(&agent).copied().unwrap_or_default()
    }

    /// Every task with steps, in id order.
    pub fn tasks(&self) -> impl Iterator<Item = (EntityId, &[u64])> {
        self.by_task.iter().map(|(t, s)| (*t, s.as_slice()))
    }

    /// Every agent's usage, in id order.
    pub fn usages(&self) -> impl Iterator<Item = (EntityId, ModelUsage)> + '_ {
        self.usage.iter().map(|(a, u)| (*a, *u))
    }

    pub(crate) fn apply(&mut self, agent: EntityId, task: EntityId, tokens: u64, seq: u64) {
        self.by_task.entry(task).or_default().push(seq);
        let usage = self.usage.entry(agent).or_default();
        usage.steps = usage.steps.saturating_add(1);
        usage.tokens = usage.tokens.saturating_add(tokens);
    }

    pub(crate) fn from_parts(
        by_task: Vec<(EntityId, Vec<u64>)>,
        usage: Vec<(EntityId, ModelUsage)>,
    ) -> Self {
        Self {
            by_task: by_task.into_iter().collect(),
            usage: usage.into_iter().collect(),
        }
    }

    /// Invariant 10 (see the module), with `task_agent` the owner of a task.
    pub(crate) fn check(
        &self,
        task_agent: impl Fn(EntityId) -> Option<EntityId>,
    ) -> Result<(), String> {
        let mut steps_per_agent: BTreeMap<EntityId, u64> = BTreeMap::new();
        for (task, seqs) in &self.by_task {
            let agent = task_agent(*task)
                .ok_or_else(|| format!("model steps recorded for unknown task {task}"))?;
            if seqs.is_empty() || seqs.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("model steps of task {task} are not in seq order"));
            }
            *steps_per_agent.entry(agent).or_default() += seqs.len() as u64;
        }
        for (agent, steps) in steps_per_agent {
            if self.usage_of(agent).steps < steps {
                return Err(format!(
                    "agent {agent} has fewer steps counted than recorded"
                ));
            }
        }
        Ok(())
    }
}
