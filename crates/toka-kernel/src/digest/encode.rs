//! The canonical encoding the state digests hash: maps walked in key order, every
//! variable-length field length-prefixed, integers little-endian.
//!
//! One encoding of each record serves both digests: the current one hashes each
//! agent, task and issued token on its own (see [`super::map`]), the legacy one
//! hashed them all in one stream.

use toka_types::{EntityId, IssuedToken, Scope, TaskOutcome, TaskState};

use super::map::Digestible;
use crate::state::{AgentRecord, AgentStatus, TaskRecord, WorldState};

pub(super) struct Encoder(pub(super) blake3::Hasher);

impl Encoder {
    pub(super) fn new() -> Self {
        Self(blake3::Hasher::new())
    }
    pub(super) fn tag(&mut self, tag: &[u8]) {
        self.0.update(tag);
    }
    pub(super) fn u8(&mut self, v: u8) {
        self.0.update(&[v]);
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.update(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    pub(super) fn len(&mut self, v: usize) {
        self.u64(v as u64);
    }
    pub(super) fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.0.update(v);
    }
    pub(super) fn id(&mut self, v: EntityId) {
        self.0.update(&v.to_bytes());
    }
    pub(super) fn opt_id(&mut self, v: Option<EntityId>) {
        match v {
            None => self.u8(0),
            Some(id) => {
                self.u8(1);
                self.id(id);
            }
        }
    }
    pub(super) fn finish(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

fn task_state_code(state: TaskState) -> u8 {
    match state {
        TaskState::Queued => 0,
        TaskState::Claimed => 1,
        TaskState::Done => 2,
        TaskState::Failed => 3,
        TaskState::Cancelled => 4,
    }
}

/// An agent as format v2 hashed it: its lists in full.
pub(super) fn agent(e: &mut Encoder, agent: &AgentRecord) {
    agent_fields(e, agent);
    e.len(agent.children.len());
    agent.children.iter().for_each(|c| e.id(*c));
    e.len(agent.tasks.len());
    agent.tasks.iter().for_each(|t| e.id(*t));
}

fn agent_fields(e: &mut Encoder, agent: &AgentRecord) {
    e.id(agent.id);
    e.opt_id(agent.parent);
    e.bytes(agent.spec.name().as_bytes());
    e.u32(agent.depth);
    e.u8(match agent.status {
        AgentStatus::Active => 0,
        AgentStatus::Terminated => 1,
    });
    e.u64(agent.observations);
}

pub(super) fn task(e: &mut Encoder, task: &TaskRecord) {
    e.id(task.id);
    e.id(task.agent);
    e.bytes(task.spec.description().as_bytes());
    // Only tasks that wait add bytes, so older logs keep their digests.
    if !task.spec.waits_for().is_empty() {
        e.tag(b"waits.v1");
        e.len(task.spec.waits_for().len());
        task.spec.waits_for().iter().for_each(|d| e.id(*d));
    }
    // Likewise only tasks with a structured input.
    if let Some(input) = task.spec.input_text() {
        e.tag(b"input.v1");
        e.bytes(input.as_bytes());
    }
    e.u8(task_state_code(task.state));
    match &task.outcome {
        None => e.u8(0),
        Some(TaskOutcome::Success { result, output }) => {
            e.u8(1);
            e.bytes(result.as_bytes());
            // Only outcomes with data add bytes, so older logs keep their digests.
            if let Some(output) = output {
                e.tag(b"output.v1");
                e.bytes(output.as_str().as_bytes());
            }
        }
        Some(TaskOutcome::Failure { reason }) => {
            e.u8(2);
            e.bytes(reason.as_bytes());
        }
    }
}

pub(super) fn token(e: &mut Encoder, t: &IssuedToken) {
    e.bytes(t.jti.as_bytes());
    e.id(t.sub);
    e.len(t.permissions.len());
    t.permissions.iter().for_each(|p| e.bytes(p.as_bytes()));
    match t.scope {
        None => e.u8(0),
        Some(Scope::All) => e.u8(1),
        Some(Scope::Subtree(top)) => {
            e.u8(2);
            e.id(top);
        }
    }
    e.u64(t.iat);
    e.u64(t.exp);
    e.len(t.lineage.len());
    t.lineage.iter().for_each(|j| e.bytes(j.as_bytes()));
    e.opt_id(t.issuer);
    e.bytes(t.kid.as_deref().unwrap_or("").as_bytes());
    // Only budgeted tokens add bytes, so older logs keep their digests.
    if !t.budget.is_unlimited() {
        e.tag(b"budget.v1");
        for kind in toka_types::BudgetKind::ALL {
            e.u64(t.budget.limit(kind).map_or(0, |l| l.saturating_add(1)));
        }
    }
    // Likewise only renewals.
    if let Some(first) = &t.renewal_of {
        e.tag(b"renewal.v1");
        e.bytes(first.as_bytes());
    }
}

impl Digestible for AgentRecord {
    /// The lists enter by their running hashes: an agent with a million tasks costs
    /// no more to rehash than one with none.
    fn entry_hash(&self) -> [u8; 32] {
        let mut e = Encoder::new();
        e.tag(b"toka.agent.v1");
        agent_fields(&mut e, self);
        e.len(self.children.len());
        e.tag(&self.lists.children);
        e.len(self.tasks.len());
        e.tag(&self.lists.tasks);
        e.finish()
    }
}

impl Digestible for TaskRecord {
    fn entry_hash(&self) -> [u8; 32] {
        let mut e = Encoder::new();
        e.tag(b"toka.task.v1");
        task(&mut e, self);
        e.finish()
    }
}

impl Digestible for IssuedToken {
    fn entry_hash(&self) -> [u8; 32] {
        let mut e = Encoder::new();
        e.tag(b"toka.token.v1");
        token(&mut e, self);
        e.finish()
    }
}

impl WorldState {
    /// The revoked token ids, sorted.
    pub(super) fn encode_revoked(&self, e: &mut Encoder) {
        let revoked = self.revoked();
        e.len(revoked.len());
        revoked.iter().for_each(|j| e.bytes(j.as_bytes()));
    }

    /// Everything after the issued tokens, the same in both digests: keys,
    /// idempotency records, extensions, and the sections appended only once used.
    pub(super) fn encode_tail(&self, e: &mut Encoder) {
        e.len(self.keys.len());
        for (kid, retired) in &self.keys {
            e.bytes(kid.as_bytes());
            e.u8(u8::from(*retired));
        }
        e.bytes(self.signing_kid.as_deref().unwrap_or("").as_bytes());

        e.len(self.idempotency.len());
        for r in self.idempotency.records() {
            e.id(r.origin);
            e.bytes(r.key.as_bytes());
            e.bytes(r.request_hash.as_bytes());
            e.u64(r.first_seq);
            e.u32(r.events);
        }

        e.len(self.extensions.len());
        for (family, entries) in &self.extensions {
            e.bytes(family.as_bytes());
            e.len(entries.len());
            for (k, v) in entries {
                e.bytes(k);
                e.bytes(v);
            }
        }
        // The tool section is appended only once the log has a tool, so the digests of
        // logs from before tools (and their signed checkpoints) stay what they were.
        if !(self.tools.tools.is_empty() && self.tools.calls.is_empty()) {
            self.encode_tools(e);
        }
        // Likewise the planner section, once a planner was designated.
        if !self.planners.is_empty() {
            e.tag(b"planners.v1");
            let entries: Vec<_> = self.planners.entries().collect();
            e.len(entries.len());
            for (agent, r) in entries {
                e.id(agent);
                e.bytes(r.jti.as_bytes());
                e.bytes(r.model.as_deref().unwrap_or("").as_bytes());
                e.u8(u8::from(r.model.is_some()));
            }
        }
        // Likewise the lease section, once a task held a lease.
        if !self.leases.is_empty() {
            e.tag(b"leases.v1");
            let entries: Vec<_> = self.leases.entries().collect();
            e.len(entries.len());
            for (task, until) in entries {
                e.id(task);
                e.u64(until);
            }
        }
        // Likewise the spending section, once a budgeted token spent.
        if !self.spent.is_empty() {
            e.tag(b"spent.v1");
            let entries: Vec<_> = self.spent.entries().collect();
            e.len(entries.len());
            for (jti, s) in entries {
                e.bytes(jti.as_bytes());
                e.u64(s.model_tokens);
                e.u64(s.tool_calls);
                e.u64(s.spawns);
            }
        }
        // Likewise the model section, once a step was recorded.
        if !self.models.is_empty() {
            e.tag(b"models.v1");
            let tasks: Vec<_> = self.models.tasks().collect();
            e.len(tasks.len());
            for (task, seqs) in tasks {
                e.id(task);
                e.len(seqs.len());
                for seq in seqs {
                    e.u64(*seq);
                }
            }
            let usages: Vec<_> = self.models.usages().collect();
            e.len(usages.len());
            for (agent, usage) in usages {
                e.id(agent);
                e.u64(usage.steps);
                e.u64(usage.tokens);
            }
        }
    }

    fn encode_tools(&self, e: &mut Encoder) {
        e.tag(b"tools.v1");
        e.len(self.tools.tools.len());
        for t in self.tools.tools() {
            // The spec's JSON as the event carried it: its fields are our own types.
            e.bytes(&serde_json::to_vec(&t.spec).unwrap_or_default());
            e.u8(u8::from(t.retired));
        }
        let calls = self.tools.calls();
        e.len(calls.len());
        for c in calls {
            e.id(c.id);
            e.id(c.agent);
            e.id(c.origin);
            e.bytes(c.tool.as_bytes());
            e.bytes(c.input_hash.as_bytes());
            e.u64(c.called_seq);
            e.bytes(c.status.as_str().as_bytes());
            e.u64(c.approval_expires_at.map_or(0, |t| t.saturating_add(1)));
            e.opt_id(c.decided_by);
            e.bytes(c.reason.as_deref().unwrap_or("").as_bytes());
            e.u8(u8::from(c.reason.is_some()));
            e.bytes(c.node.as_deref().unwrap_or("").as_bytes());
            e.u32(c.attempts);
            e.u64(c.ended_seq.unwrap_or(0));
        }
    }
}
