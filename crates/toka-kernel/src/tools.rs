//! The tool part of the state: which tools the log has registered and every call, and
//! how `tool.*` events fold into them.
//!
//! What it is not: the rules (those are in [`decide_tools`](crate::decide_tools)) or
//! anything that runs a tool (the runtime's executor does, outside the kernel).
//!
//! A call's input and output stay in the log (the `tool.called` and `tool.returned`
//! events, found by `called_seq` and `ended_seq`); the state keeps what the rules need:
//! who, which tool, the input's hash, the status.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use toka_types::limits::{MAX_OPEN_CALLS_PER_AGENT, MAX_REGISTERED_TOOLS};
use toka_types::{CallStatus, EntityId, KernelEvent, ToolCall, ToolResult, ToolSpec};

use crate::error::InvariantViolation;

/// A tool the log has registered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolRecord {
    /// The spec as registered.
    pub spec: ToolSpec,
    /// Whether it was retired (calls are refused).
    pub retired: bool,
}

/// One call, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallRecord {
    /// Its id.
    pub id: EntityId,
    /// The agent it is made for.
    pub agent: EntityId,
    /// The agent that sent it.
    pub origin: EntityId,
    /// The tool.
    pub tool: String,
    /// BLAKE3 of its input's compact JSON.
    pub input_hash: String,
    /// The `seq` of its `tool.called` event (which holds the input).
    pub called_seq: u64,
    /// Where it is.
    pub status: CallStatus,
    /// Until when (Unix seconds) it may wait for approval.
    pub approval_expires_at: Option<u64>,
    /// Who approved or denied it.
    pub decided_by: Option<EntityId>,
    /// The approver's reason, or the abandonment's.
    pub reason: Option<String>,
    /// The node that last started it.
    pub node: Option<String>,
    /// How many times it was started.
    pub attempts: u32,
    /// The `seq` of the event that ended it (`tool.returned`, `.denied`, …).
    pub ended_seq: Option<u64>,
}

/// Registered tools and calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolTable {
    pub(crate) tools: BTreeMap<String, ToolRecord>,
    pub(crate) calls: FxHashMap<EntityId, CallRecord>,
    /// Calls awaiting approval, ready or running, in id order.
    pub(crate) open: BTreeSet<EntityId>,
    pub(crate) open_per_agent: FxHashMap<EntityId, usize>,
}

impl ToolTable {
    /// The tool `name`, registered or retired.
    pub fn tool(&self, name: &str) -> Option<&ToolRecord> {
        self.tools.get(name)
    }

    /// Every tool ever registered, by name.
    pub fn tools(&self) -> impl Iterator<Item = &ToolRecord> {
        self.tools.values()
    }

    /// How many registered tools are not retired.
    pub fn active_tools(&self) -> usize {
        self.tools.values().filter(|t| !t.retired).count()
    }

    /// The call `id`.
    pub fn call(&self, id: EntityId) -> Option<&CallRecord> {
        self.calls.get(&id)
    }

    /// Every call, in id order.
    pub fn calls(&self) -> Vec<&CallRecord> {
        let mut all: Vec<_> = self.calls.values().collect();
        all.sort_unstable_by_key(|c| c.id);
        all
    }

    /// The open calls, in id order.
    pub fn open_calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.open.iter().filter_map(|id| self.calls.get(id))
    }

    /// How many calls `agent` has open.
    pub fn open_of(&self, agent: EntityId) -> usize {
        self.open_per_agent.get(&agent).copied().unwrap_or(0)
    }

    /// Folds one tool event at `seq` (other events change nothing here).
    pub(crate) fn apply(&mut self, event: &KernelEvent, seq: u64) {
        match event {
            KernelEvent::ToolRegistered(spec) => {
                self.tools.insert(
                    spec.name.clone(),
                    ToolRecord {
                        spec: spec.clone(),
                        retired: false,
                    },
                );
            }
            KernelEvent::ToolRetired { name } => {
                if let Some(t) = self.tools.get_mut(name) {
                    t.retired = true;
                }
            }
            KernelEvent::ToolCalled(call) => self.open_call(call, seq),
            KernelEvent::ToolApproved { call, by, reason } => {
                self.update(*call, |c| {
                    debug_assert_eq!(c.status, CallStatus::AwaitingApproval);
                    c.status = CallStatus::Ready;
                    c.decided_by = Some(*by);
                    c.reason = Some(reason.clone());
                });
            }
            KernelEvent::ToolDenied { call, by, reason } => {
                self.update(*call, |c| {
                    c.decided_by = Some(*by);
                    c.reason = Some(reason.clone());
                });
                self.end(*call, CallStatus::Denied, seq);
            }
            KernelEvent::ToolApprovalExpired { call } => {
                self.end(*call, CallStatus::Expired, seq);
            }
            KernelEvent::ToolStarted {
                call,
                node,
                attempt,
            } => {
                self.update(*call, |c| {
                    debug_assert!(matches!(c.status, CallStatus::Ready | CallStatus::Running));
                    c.status = CallStatus::Running;
                    c.node = Some(node.clone());
                    c.attempts = *attempt;
                });
            }
            KernelEvent::ToolReturned { call, result } => {
                let status = match result {
                    ToolResult::Ok { .. } => CallStatus::Succeeded,
                    ToolResult::Error { .. } => CallStatus::Failed,
                };
                self.end(*call, status, seq);
            }
            KernelEvent::ToolAbandoned { call, reason } => {
                self.update(*call, |c| c.reason = Some(reason.clone()));
                self.end(*call, CallStatus::Abandoned, seq);
            }
            _ => {}
        }
    }

    fn open_call(&mut self, call: &ToolCall, seq: u64) {
        debug_assert!(!self.calls.contains_key(&call.call), "call opened twice");
        self.calls.insert(
            call.call,
            CallRecord {
                id: call.call,
                agent: call.agent,
                origin: call.origin,
                tool: call.tool.clone(),
                input_hash: call.input_hash.clone(),
                called_seq: seq,
                status: if call.awaiting_approval {
                    CallStatus::AwaitingApproval
                } else {
                    CallStatus::Ready
                },
                approval_expires_at: call.approval_expires_at,
                decided_by: None,
                reason: None,
                node: None,
                attempts: 0,
                ended_seq: None,
            },
        );
        self.open.insert(call.call);
        *self.open_per_agent.entry(call.agent).or_default() += 1;
    }

    fn update(&mut self, call: EntityId, change: impl FnOnce(&mut CallRecord)) {
        match self.calls.get_mut(&call) {
            Some(c) => change(c),
            None => debug_assert!(false, "event for unknown call {call}"),
        }
    }

    fn end(&mut self, call: EntityId, status: CallStatus, seq: u64) {
        let Some(c) = self.calls.get_mut(&call) else {
            debug_assert!(false, "end of unknown call {call}");
            return;
        };
        debug_assert!(c.status.is_open(), "call {call} ended twice");
        c.status = status;
        c.ended_seq = Some(seq);
        if self.open.remove(&call)
            && let Some(n) = self.open_per_agent.get_mut(&c.agent)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open_per_agent.remove(&c.agent);
            }
        }
    }

    /// Rebuilds the table from an image's tools and calls (open sets recomputed).
    pub(crate) fn from_parts(tools: Vec<(ToolSpec, bool)>, calls: Vec<CallRecord>) -> Self {
        let mut table = Self::default();
        for (spec, retired) in tools {
            table
                .tools
                .insert(spec.name.clone(), ToolRecord { spec, retired });
        }
        for call in calls {
            if call.status.is_open() {
                table.open.insert(call.id);
                *table.open_per_agent.entry(call.agent).or_default() += 1;
            }
            table.calls.insert(call.id, call);
        }
        table
    }

    /// Invariant 9 (see the crate docs).
    pub(crate) fn check(
        &self,
        agent_known: impl Fn(EntityId) -> bool,
    ) -> Result<(), InvariantViolation> {
        let fail = |detail: String| Err(InvariantViolation { number: 9, detail });
        if self.active_tools() > MAX_REGISTERED_TOOLS {
            return fail(format!("{} tools registered", self.active_tools()));
        }
        let mut per_agent: FxHashMap<EntityId, usize> = FxHashMap::default();
        for call in self.calls.values() {
            if !self.tools.contains_key(&call.tool) || !agent_known(call.agent) {
                return fail(format!("call {} names an unknown tool or agent", call.id));
            }
            if call.status.is_open() != self.open.contains(&call.id)
                || call.status.is_open() == call.ended_seq.is_some()
            {
                return fail(format!(
                    "call {} is {} but listed otherwise",
                    call.id,
                    call.status.as_str()
                ));
            }
            if call.status == CallStatus::AwaitingApproval && call.approval_expires_at.is_none() {
                return fail(format!(
                    "call {} awaits approval without an expiry",
                    call.id
                ));
            }
            if call.status.is_open() {
                *per_agent.entry(call.agent).or_default() += 1;
            }
        }
        if per_agent != self.open_per_agent
            || per_agent.values().any(|n| *n > MAX_OPEN_CALLS_PER_AGENT)
            || self.open.len() != per_agent.values().sum::<usize>()
        {
            return fail("open call counts are stale or over the limit".into());
        }
        Ok(())
    }
}

/// The hash a call's input is known by: BLAKE3 of its compact JSON, 64 hex digits.
pub fn input_hash(input: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(input).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}
