//! [`WorldState`]: the agent tree, task queues, observation counts, revoked tokens and
//! extension state; a pure fold of the log.
//!
//! Only [`apply`](crate::apply) changes it. Everything here is a query, plus
//! [`WorldState::check_invariants`], which says whether a state is one that `apply`
//! could have produced.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;
use toka_auth::RevocationList;
use toka_types::limits::MAX_QUEUED_TASKS_PER_AGENT;
use toka_types::{AgentSpec, EntityId, IssuedToken, TaskOutcome, TaskSpec, TaskState};

use crate::error::InvariantViolation;

/// Deepest agent tree allowed: the root is at depth 0. Bounds every walk up the tree.
pub const MAX_AGENT_DEPTH: u32 = 64;

/// Whether an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// It may act and be acted on.
    Active,
    /// It was terminated (itself or through an ancestor); final.
    Terminated,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentRecord {
    /// Its id.
    pub id: EntityId,
    /// Its parent (`None` for the root).
    pub parent: Option<EntityId>,
    /// Its spec.
    pub spec: AgentSpec,
    /// Distance from the root.
    pub depth: u32,
    /// Its children, in spawn order.
    pub children: Vec<EntityId>,
    /// Whether it runs.
    pub status: AgentStatus,
    /// How many observations it emitted.
    pub observations: u64,
    /// How many of its tasks are queued.
    pub queued: usize,
    /// Its queued and claimed tasks (unordered; sort before showing).
    pub open_tasks: FxHashSet<EntityId>,
    /// Every task ever scheduled for it, in schedule order.
    pub tasks: Vec<EntityId>,
    /// A running hash of `children` and of `tasks`, so the state digest of an agent
    /// costs the same whatever the length of its lists (see `digest`).
    pub(crate) lists: ListHashes,
}

/// Running hashes of an agent's two append-only lists: `h(n) = BLAKE3(h(n-1) ‖ id)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ListHashes {
    pub(crate) children: [u8; 32],
    pub(crate) tasks: [u8; 32],
}

impl ListHashes {
    fn extend(hash: &mut [u8; 32], id: EntityId) {
        // One 48-byte input hashed at once: a `Hasher` fed twice cost twice as much.
        let mut input = [0u8; 48];
        input[..32].copy_from_slice(hash);
        input[32..].copy_from_slice(&id.to_bytes());
        *hash = *blake3::hash(&input).as_bytes();
    }

    /// The hashes of these lists.
    pub(crate) fn of(children: &[EntityId], tasks: &[EntityId]) -> Self {
        let mut lists = Self::default();
        children
            .iter()
            .for_each(|c| Self::extend(&mut lists.children, *c));
        tasks
            .iter()
            .for_each(|t| Self::extend(&mut lists.tasks, *t));
        lists
    }
}

impl AgentRecord {
    /// Adds a child (the only way `children` grows).
    pub(crate) fn push_child(&mut self, child: EntityId) {
        self.children.push(child);
        ListHashes::extend(&mut self.lists.children, child);
    }

    /// Adds a task (the only way `tasks` grows).
    pub(crate) fn push_task(&mut self, task: EntityId) {
        self.tasks.push(task);
        ListHashes::extend(&mut self.lists.tasks, task);
    }
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskRecord {
    /// Its id.
    pub id: EntityId,
    /// The agent whose queue holds it.
    pub agent: EntityId,
    /// What it asks.
    pub spec: TaskSpec,
    /// Where it is in its life.
    pub state: TaskState,
    /// How it ended, once done or failed.
    pub outcome: Option<TaskOutcome>,
}

/// The key-value state of one extension family, in key order.
pub type ExtensionState = BTreeMap<Vec<u8>, Vec<u8>>;

/// The state of a Toka log: what applying its events, in order, to an empty state gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorldState {
    pub(crate) root: Option<EntityId>,
    pub(crate) applied: u64,
    pub(crate) agents: crate::digest::DigestedMap<EntityId, AgentRecord>,
    pub(crate) tasks: crate::digest::DigestedMap<EntityId, TaskRecord>,
    pub(crate) revoked: FxHashSet<String>,
    /// Every token the log issued, by `jti`.
    pub(crate) tokens: crate::digest::DigestedMap<String, IssuedToken>,
    /// Every signing key the log has seen (`kid` → retired?).
    pub(crate) keys: BTreeMap<String, bool>,
    /// The key the node signs new tokens with, as far as the log knows.
    pub(crate) signing_kid: Option<String>,
    /// The newest keyed messages, for idempotent retries.
    pub(crate) idempotency: crate::idempotency::IdempotencyIndex,
    pub(crate) extensions: BTreeMap<String, ExtensionState>,
    /// Registered tools and every call.
    pub(crate) tools: crate::tools::ToolTable,
    /// Recorded model steps and usage.
    pub(crate) models: crate::models::ModelTable,
    /// What each budgeted token spent.
    pub(crate) spent: crate::budgets::SpentTable,
    /// Leases of claimed tasks whose workers heartbeat.
    pub(crate) leases: crate::leases::LeaseTable,
    /// Agents the node runs as LLM planners.
    pub(crate) planners: crate::planners::PlannerTable,
}

impl WorldState {
    /// The empty state, before genesis.
    pub fn new() -> Self {
        Self::default()
    }

    /// The root agent, once genesis is applied.
    pub fn root(&self) -> Option<EntityId> {
        self.root
    }

    /// How many events have been applied: the `seq` of the last one.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The `seq` the next event will have.
    pub fn next_seq(&self) -> u64 {
        self.applied + 1
    }

    /// The agent `id`.
    pub fn agent(&self, id: EntityId) -> Option<&AgentRecord> {
        self.agents.get(&id)
    }

    /// Every agent, in id order.
    pub fn agents(&self) -> Vec<&AgentRecord> {
        let mut all: Vec<_> = self.agents.values().collect();
        all.sort_unstable_by_key(|a| a.id);
        all
    }

    /// How many agents exist (active or terminated).
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// The task `id`.
    pub fn task(&self, id: EntityId) -> Option<&TaskRecord> {
        self.tasks.get(&id)
    }

    /// How many tasks exist, in any state.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// The tasks of `agent`, in schedule order.
    pub fn tasks_of(&self, agent: EntityId) -> Vec<&TaskRecord> {
        self.agents
            .get(&agent)
            .map(|a| a.tasks.iter().filter_map(|t| self.tasks.get(t)).collect())
            .unwrap_or_default()
    }

    /// Every task, in no particular order (cheap: nothing is sorted).
    pub fn all_tasks(&self) -> impl Iterator<Item = &TaskRecord> {
        self.tasks.values()
    }

    /// Every task, in id order.
    pub fn tasks(&self) -> Vec<&TaskRecord> {
        let mut all: Vec<_> = self.tasks.values().collect();
        all.sort_unstable_by_key(|t| t.id);
        all
    }

    /// Whether the token id `jti` is revoked: itself, or (for a member of a renewal
    /// family) its family, which revoking any member revokes.
    pub fn is_revoked(&self, jti: &str) -> bool {
        // Checked for every link of every message's token: with nothing revoked (the
        // common case) no lookup is needed.
        !self.revoked.is_empty()
            && (self.revoked.contains(jti) || self.revoked.contains(self.family_of(jti)))
    }

    /// The member of `jti`'s renewal family that expires last (`jti` itself when it
    /// was never renewed): the one to act with after a restart.
    pub fn newest_of_family<'a>(&'a self, jti: &'a str) -> &'a str {
        let family = self.family_of(jti);
        self.tokens
            .values()
            .filter(|t| t.family() == family)
            .max_by(|a, b| (a.exp, &a.jti).cmp(&(b.exp, &b.jti)))
            .map_or(jti, |t| t.jti.as_str())
    }

    /// The first token of `jti`'s renewal family (`jti` itself unless it is a renewal).
    pub fn family_of<'a>(&'a self, jti: &'a str) -> &'a str {
        self.tokens
            .get(jti)
            .and_then(|t| t.renewal_of.as_deref())
            .unwrap_or(jti)
    }

    /// The revoked token ids, sorted.
    pub fn revoked(&self) -> Vec<&str> {
        let mut all: Vec<_> = self.revoked.iter().map(String::as_str).collect();
        all.sort_unstable();
        all
    }

    /// The issuance of token `jti`, if this log issued it.
    pub fn issued_token(&self, jti: &str) -> Option<&IssuedToken> {
        self.tokens.get(jti)
    }

    /// Every issued token, in `jti` order.
    pub fn issued_sorted(&self) -> Vec<&IssuedToken> {
        let mut all: Vec<_> = self.tokens.values().collect();
        all.sort_unstable_by(|a, b| a.jti.cmp(&b.jti));
        all
    }

    /// How many tokens the log issued.
    pub fn issued_count(&self) -> usize {
        self.tokens.len()
    }

    /// The key new tokens are signed with, as far as the log knows (from the newest
    /// `key.rotated` or `token.issued`).
    pub fn signing_kid(&self) -> Option<&str> {
        self.signing_kid.as_deref()
    }

    /// Every key `kid` the log has seen, with whether it was retired.
    pub fn signing_keys(&self) -> impl Iterator<Item = (&str, bool)> {
        self.keys.iter().map(|(k, r)| (k.as_str(), *r))
    }

    /// The keyed messages remembered for idempotent retries.
    pub fn idempotency(&self) -> &crate::idempotency::IdempotencyIndex {
        &self.idempotency
    }

    /// The state of extension `family` (empty if it has none).
    pub fn extension_state(&self, family: &str) -> Option<&ExtensionState> {
        self.extensions.get(family)
    }

    /// Registered tools and every call.
    pub fn tools(&self) -> &crate::tools::ToolTable {
        &self.tools
    }

    /// Recorded model steps and usage.
    pub fn models(&self) -> &crate::models::ModelTable {
        &self.models
    }

    /// What each budgeted token spent.
    pub fn spent(&self) -> &crate::budgets::SpentTable {
        &self.spent
    }

    /// Leases of claimed tasks.
    pub fn leases(&self) -> &crate::leases::LeaseTable {
        &self.leases
    }

    /// The tasks `task` waits for that have not ended yet (it may be claimed once
    /// this is empty).
    pub fn waiting_on(&self, task: EntityId) -> Vec<EntityId> {
        self.tasks.get(&task).map_or_else(Vec::new, |t| {
            t.spec
                .waits_for()
                .iter()
                .copied()
                .filter(|d| self.tasks.get(d).is_some_and(|r| r.state.is_open()))
                .collect()
        })
    }

    /// Agents the node runs as LLM planners.
    pub fn planners(&self) -> &crate::planners::PlannerTable {
        &self.planners
    }

    /// Whether `descendant` is `ancestor` or below it in the agent tree. Walks at most
    /// [`MAX_AGENT_DEPTH`] links.
    pub fn is_within(&self, descendant: EntityId, ancestor: EntityId) -> bool {
        let mut current = Some(descendant);
        for _ in 0..=MAX_AGENT_DEPTH {
            let Some(id) = current else { return false };
            if id == ancestor {
                return self.agents.contains_key(&id);
            }
            current = self.agents.get(&id).and_then(|a| a.parent);
        }
        false
    }

    /// `agent` and all its descendants, parents before children (pre-order, children in
    /// spawn order).
    pub fn subtree(&self, agent: EntityId) -> Vec<EntityId> {
        let mut out = Vec::new();
        let mut stack = vec![agent];
        while let Some(id) = stack.pop() {
            let Some(record) = self.agents.get(&id) else {
                continue;
            };
            out.push(id);
            stack.extend(record.children.iter().rev().copied());
        }
        out
    }

    /// Checks the invariants listed in the crate docs; the first broken one is returned.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |number, detail: String| Err(InvariantViolation { number, detail });
        // 1. One root iff anything was applied; every other agent hangs off the tree.
        match self.root {
            None if !self.agents.is_empty() => return fail(1, "agents exist but no root".into()),
            Some(root) if self.agents.get(&root).is_none_or(|r| r.parent.is_some()) => {
                return fail(1, format!("root {root} missing or has a parent"));
            }
            _ => {}
        }
        // Agents with a parent, and entries of children lists (see invariant 1 below).
        let (mut with_parent, mut children) = (0usize, 0usize);
        for agent in self.agents.values() {
            // 15. An agent's running list hashes are those of its lists.
            if agent.lists != ListHashes::of(&agent.children, &agent.tasks) {
                return fail(15, format!("agent {}'s list hashes are stale", agent.id));
            }
            match agent.parent {
                None if Some(agent.id) != self.root => {
                    return fail(
                        1,
                        format!("agent {} has no parent but is not the root", agent.id),
                    );
                }
                None => {}
                Some(p) => {
                    let Some(parent) = self.agents.get(&p) else {
                        return fail(1, format!("agent {} has unknown parent {p}", agent.id));
                    };
                    // 2. Depth follows the tree and is bounded.
                    if agent.depth != parent.depth + 1 || agent.depth > MAX_AGENT_DEPTH {
                        return fail(2, format!("agent {} has depth {}", agent.id, agent.depth));
                    }
                    // 3. Termination covers whole subtrees.
                    if parent.status == AgentStatus::Terminated
                        && agent.status == AgentStatus::Active
                    {
                        return fail(
                            3,
                            format!("agent {} is active under terminated {p}", agent.id),
                        );
                    }
                }
            }
            // Each agent listed once among its parent's children, checked in time linear
            // in the agents (scanning the parent's list for each child was quadratic: 5 s
            // at every recovery for 100 000 agents under the root). Every entry of a list
            // names an agent whose parent is the list's owner, no list repeats an entry,
            // and the lists hold as many entries as there are agents with a parent:
            // then each of those agents is in its parent's list, exactly once.
            with_parent += usize::from(agent.parent.is_some());
            children += agent.children.len();
            let mut listed_here = FxHashSet::default();
            for child in &agent.children {
                if self.agents.get(child).and_then(|c| c.parent) != Some(agent.id) {
                    return fail(
                        1,
                        format!("child {child} of {} does not name it as parent", agent.id),
                    );
                }
                if !listed_here.insert(*child) {
                    return fail(
                        1,
                        format!(
                            "agent {child} is listed twice among {}'s children",
                            agent.id
                        ),
                    );
                }
            }
            // 4. Per-agent task bookkeeping matches the tasks: one look-up per task,
            // and no set built (building one per agent was most of this check's time).
            let (mut open, mut queued) = (0usize, 0usize);
            for task in &agent.tasks {
                let Some(state) = self.tasks.get(task).map(|t| t.state) else {
                    continue;
                };
                if state.is_open() {
                    if !agent.open_tasks.contains(task) {
                        return fail(4, format!("agent {} open task set is stale", agent.id));
                    }
                    open += 1;
                }
                queued += usize::from(state == TaskState::Queued);
            }
            if open != agent.open_tasks.len() {
                return fail(4, format!("agent {} open task set is stale", agent.id));
            }
            if queued != agent.queued || queued > MAX_QUEUED_TASKS_PER_AGENT {
                return fail(
                    4,
                    format!(
                        "agent {} counts {} queued, has {queued}",
                        agent.id, agent.queued
                    ),
                );
            }
            // 5. Terminated agents have no open tasks.
            if agent.status == AgentStatus::Terminated && !agent.open_tasks.is_empty() {
                return fail(5, format!("terminated agent {} has open tasks", agent.id));
            }
        }
        if children != with_parent {
            return fail(
                1,
                format!("{with_parent} agents have a parent, {children} are listed as children"),
            );
        }
        let listed: usize = self.agents.values().map(|a| a.tasks.len()).sum();
        if listed != self.tasks.len() {
            return fail(
                4,
                format!("{} tasks, {listed} listed under agents", self.tasks.len()),
            );
        }
        for (jti, token) in &self.tokens {
            // 7. Every issued token is for a known agent and names its parent last in
            //    its lineage; a child's parent was issued before it (or is unknown).
            if *jti != token.jti || !self.agents.contains_key(&token.sub) {
                return fail(7, format!("token {jti} is for unknown agent {}", token.sub));
            }
            if token.parent.as_ref() != token.lineage.last() || token.exp <= token.iat {
                return fail(
                    7,
                    format!("token {jti} has an inconsistent lineage or window"),
                );
            }
        }
        // 8. The idempotency index agrees with itself and holds its bound.
        if !self.idempotency.consistent() {
            return fail(
                8,
                "idempotency index is inconsistent or over capacity".into(),
            );
        }
        // 9. Calls name known tools and agents; the open sets match the statuses.
        self.tools.check(|a| self.agents.contains_key(&a))?;
        // 14. Renewals name the first token of a family of the same subject.
        if let Err(detail) = crate::renewals::check(self) {
            return fail(14, detail);
        }
        // 13. Designations name known agents and tokens for them.
        if let Some((agent, _)) = self.planners.entries().find(|(a, r)| {
            !self.agents.contains_key(a) || self.tokens.get(&r.jti).is_none_or(|t| t.sub != *a)
        }) {
            return fail(
                13,
                format!("planner {agent} names an unknown agent or a token not for it"),
            );
        }
        // 12. Only claimed tasks hold a lease.
        if let Some((task, _)) = self.leases.entries().find(|(t, _)| {
            self.tasks
                .get(t)
                .is_none_or(|r| r.state != TaskState::Claimed)
        }) {
            return fail(12, format!("task {task} holds a lease but is not claimed"));
        }
        // 11. Only tokens the log issued have spending.
        if let Some((jti, _)) = self
            .spent
            .entries()
            .find(|(j, _)| !self.tokens.contains_key(*j))
        {
            return fail(
                11,
                format!("spending recorded for token {jti}, which the log never issued"),
            );
        }
        // 10. Model steps name known tasks, in seq order, and are counted.
        if let Err(detail) = self.models.check(|t| self.tasks.get(&t).map(|r| r.agent)) {
            return fail(10, detail);
        }
        for task in self.tasks.values() {
            // 6. A task's outcome is there exactly when it finished, and matches.
            let consistent = match (&task.state, &task.outcome) {
                (TaskState::Done, Some(o)) => o.is_success(),
                (TaskState::Failed, Some(o)) => !o.is_success(),
                (TaskState::Queued | TaskState::Claimed | TaskState::Cancelled, None) => true,
                _ => false,
            };
            if !consistent {
                return fail(
                    6,
                    format!(
                        "task {} is {} with outcome {:?}",
                        task.id,
                        task.state.as_str(),
                        task.outcome
                    ),
                );
            }
        }
        Ok(())
    }
}

impl RevocationList for WorldState {
    fn is_revoked(&self, jti: &str) -> bool {
        WorldState::is_revoked(self, jti)
    }
}
