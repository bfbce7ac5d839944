//! The JSON shapes of the API.

use serde::{Deserialize, Serialize};
use toka_kernel::{AgentRecord, TaskRecord};
use toka_store_core::EventRecord;
use toka_types::TaskState;
use utoipa::{IntoParams, ToSchema};

/// One event of the log, with its header.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Position in the log.
    pub seq: u64,
    /// Event id.
    pub id: String,
    /// Kind, e.g. `task.scheduled`.
    pub kind: String,
    /// When it was decided, µs since the Unix epoch.
    pub timestamp: u64,
    /// The agent whose message caused it.
    pub origin: String,
    /// The capability that authorised it.
    pub jti: Option<String>,
    /// The submission it came from.
    pub intent: String,
    /// Causal parents.
    pub parents: Vec<String>,
    /// BLAKE3 of the payload.
    pub payload_hash: String,
    /// Chain digest.
    pub digest: String,
    /// The kernel event (the payload), as JSON.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

impl EventView {
    /// The view of a stored record.
    pub fn of(record: &EventRecord) -> Self {
        let h = &record.header;
        Self {
            seq: h.seq,
            id: h.id.to_string(),
            kind: h.kind.clone(),
            timestamp: h.timestamp.as_micros(),
            origin: h.origin.to_string(),
            jti: h.jti.clone(),
            intent: h.intent.to_string(),
            parents: h.parents.iter().map(ToString::to_string).collect(),
            payload_hash: h.payload_hash.to_string(),
            digest: h.digest.to_string(),
            event: serde_json::from_slice(&record.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    /// The events the token may see, in order.
    pub events: Vec<EventView>,
    /// The `from` to ask for next.
    pub next: u64,
    /// The committed head.
    pub head: u64,
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// First `seq` (default 1).
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub from: Option<u64>,
    /// Most records to scan (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

/// Largest page of any list route.
pub const MAX_PAGE: u64 = 1000;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u64 = 100;

/// Query of `GET /v1/agents`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgentQuery {
    /// Most agents in the page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next` of the previous page.
    #[param(format = "uuid")]
    pub after: Option<String>,
}

/// A page of agents, parents before children.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentPage {
    /// The agents.
    pub items: Vec<AgentView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A page of tasks, in id order (or schedule order for one agent).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskPage {
    /// The tasks.
    pub items: Vec<TaskView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// Query of `GET /v1/events/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// First `seq` (default: the next one). `Last-Event-ID` wins over it.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub from: Option<u64>,
}

/// Task counts of one agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TaskCounts {
    /// Queued.
    pub queued: usize,
    /// Claimed.
    pub claimed: usize,
    /// Done.
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// Cancelled.
    pub cancelled: usize,
}

/// One agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    /// Id.
    pub id: String,
    /// Parent (none for the root).
    pub parent: Option<String>,
    /// Name.
    pub name: String,
    /// `active` or `terminated`.
    pub status: String,
    /// Depth in the tree.
    pub depth: u32,
    /// Children ids.
    pub children: Vec<String>,
    /// Its tasks by state.
    pub tasks: TaskCounts,
    /// Observations emitted.
    pub observations: u64,
    /// What its live tokens with a budget have left (none: no budgeted token).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<TokenBudget>,
}

/// What one live token of an agent may still spend.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenBudget {
    /// The token.
    pub jti: String,
    /// Its expiry, seconds since the epoch.
    pub exp: u64,
    /// What it has left of each kind, along its chain (absent: unlimited).
    pub left: BudgetView,
}

/// The budgets of every agent's live (unexpired, unrevoked) tokens that have one,
/// gathered in one pass over the issued tokens.
#[derive(Debug, Default)]
pub struct LiveBudgets(std::collections::HashMap<toka_types::EntityId, Vec<TokenBudget>>);

impl LiveBudgets {
    /// The budgets in `state` at `now` (seconds since the epoch).
    pub fn of(state: &toka_kernel::WorldState, now: u64) -> Self {
        use toka_types::BudgetKind as K;
        let mut by_agent: std::collections::HashMap<_, Vec<TokenBudget>> = Default::default();
        for token in state.issued_sorted() {
            if token.budget.is_unlimited() || token.exp <= now || state.is_revoked(&token.jti) {
                continue;
            }
            let left = |k| toka_kernel::remaining_of_issued(state, token, k).map(|(n, _)| n);
            by_agent.entry(token.sub).or_default().push(TokenBudget {
                jti: token.jti.clone(),
                exp: token.exp,
                left: BudgetView {
                    model_tokens: left(K::ModelTokens),
                    tool_calls: left(K::ToolCalls),
                    spawns: left(K::Spawns),
                },
            });
        }
        Self(by_agent)
    }

    fn of_agent(&self, agent: toka_types::EntityId) -> Vec<TokenBudget> {
        self.0.get(&agent).cloned().unwrap_or_default()
    }
}

impl AgentView {
    /// The view of an agent, counting its tasks in `state`, with its tokens' budgets.
    pub fn of(agent: &AgentRecord, state: &toka_kernel::WorldState, budgets: &LiveBudgets) -> Self {
        let mut tasks = TaskCounts::default();
        for t in state.tasks_of(agent.id) {
            match t.state {
                TaskState::Queued => tasks.queued += 1,
                TaskState::Claimed => tasks.claimed += 1,
                TaskState::Done => tasks.done += 1,
                TaskState::Failed => tasks.failed += 1,
                TaskState::Cancelled => tasks.cancelled += 1,
            }
        }
        Self {
            id: agent.id.to_string(),
            parent: agent.parent.map(|p| p.to_string()),
            name: agent.spec.name().to_string(),
            status: match agent.status {
                toka_kernel::AgentStatus::Active => "active".into(),
                toka_kernel::AgentStatus::Terminated => "terminated".into(),
            },
            depth: agent.depth,
            children: agent.children.iter().map(ToString::to_string).collect(),
            tasks,
            observations: agent.observations,
            budgets: budgets.of_agent(agent.id),
        }
    }
}

/// One task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    /// Id.
    pub id: String,
    /// The agent whose queue holds it.
    pub agent: String,
    /// What it asks.
    pub description: String,
    /// Its structured input, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub input: Option<serde_json::Value>,
    /// `queued`, `claimed`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// How it ended.
    #[schema(value_type = Object)]
    pub outcome: Option<serde_json::Value>,
    /// The tasks it waits for (it may be claimed once they all ended).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waits_for: Vec<String>,
    /// Those of them that have not ended yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<String>,
}

impl TaskView {
    /// The view of a task in `state`.
    pub fn of(task: &TaskRecord, state: &toka_kernel::WorldState) -> Self {
        let ids = |v: &[toka_types::EntityId]| v.iter().map(ToString::to_string).collect();
        Self {
            id: task.id.to_string(),
            agent: task.agent.to_string(),
            description: task.spec.description().to_string(),
            input: task.spec.input(),
            state: task.state.as_str().to_string(),
            outcome: task
                .outcome
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok()),
            waits_for: ids(task.spec.waits_for()),
            waiting_on: ids(&state.waiting_on(task.id)),
        }
    }
}

/// Query of `GET /v1/tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// Only this agent's tasks (then in schedule order): its id, an id prefix, its
    /// name or its path (`root/planner`).
    pub agent: Option<String>,
    /// Only tasks in this state.
    #[param(inline)]
    pub state: Option<TaskStateName>,
    /// Most tasks in the page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next` of the previous page.
    #[param(format = "uuid")]
    pub after: Option<String>,
}

/// A task state, as a query filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStateName {
    /// Waiting to be claimed.
    Queued,
    /// Being worked on.
    Claimed,
    /// Finished with success.
    Done,
    /// Finished with failure.
    Failed,
    /// Dropped with its agent.
    Cancelled,
}

impl TaskStateName {
    /// The kernel's state.
    pub fn state(self) -> TaskState {
        match self {
            Self::Queued => TaskState::Queued,
            Self::Claimed => TaskState::Claimed,
            Self::Done => TaskState::Done,
            Self::Failed => TaskState::Failed,
            Self::Cancelled => TaskState::Cancelled,
        }
    }
}

/// Head and digests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StateView {
    /// The committed head `seq`.
    pub head: u64,
    /// Chain digest at the head.
    pub chain_digest: String,
    /// Digest of the committed state.
    pub state_digest: String,
    /// The root agent.
    pub root: Option<String>,
    /// Agents (all, active or not).
    pub agents: usize,
    /// Tasks (in any state).
    pub tasks: usize,
}

/// Body of `POST /v1/messages`: the bearer token is the capability.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The sending agent (default: the token's subject).
    pub origin: Option<String>,
    /// The operation, e.g. `{"op": "schedule_agent_task", "agent": "...", "task": {"description": "..."}}`.
    /// Kept as its raw text: the handler decodes it into an operation directly (a
    /// `Value` tree first cost a sixth of the handler's time).
    #[schema(value_type = Object)]
    pub operation: Box<serde_json::value::RawValue>,
}

/// A committed event in a submit response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommittedEvent {
    /// Its `seq`.
    pub seq: u64,
    /// Its kind.
    pub kind: String,
    /// The event.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// Response of `POST /v1/messages`: the events, durable.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmitResponse {
    /// The events, in log order.
    pub events: Vec<CommittedEvent>,
}

/// Body of `POST /v1/tokens`: a child token attenuated from the bearer token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The agent the new token is for (inside the bearer's scope, active).
    #[schema(format = "uuid")]
    pub sub: String,
    /// Its permissions (a subset of the bearer token's).
    #[schema(max_items = 100)]
    pub permissions: Vec<String>,
    /// `*` or an agent id (default: `sub`'s subtree); inside the bearer's scope.
    pub scope: Option<String>,
    /// Lifetime in seconds (default: until the bearer token expires); refused if it
    /// would outlive the bearer token.
    #[schema(minimum = 1, maximum = 86400)]
    #[serde(default, deserialize_with = "toka_types::whole::opt_u64")]
    pub ttl_secs: Option<u64>,
    /// What it may spend: each limit at most what the bearer's token has left; a
    /// limit left out is what the bearer has left of it.
    #[serde(default)]
    pub budget: Option<BudgetView>,
}

/// Budget limits (absent: no limit of this token's own).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetView {
    /// Model tokens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "toka_types::whole::opt_u64"
    )]
    #[schema(minimum = 0)]
    pub model_tokens: Option<u64>,
    /// Tool calls.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "toka_types::whole::opt_u64"
    )]
    #[schema(minimum = 0)]
    pub tool_calls: Option<u64>,
    /// Agents spawned.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "toka_types::whole::opt_u64"
    )]
    #[schema(minimum = 0)]
    pub spawns: Option<u64>,
}

impl From<BudgetView> for toka_types::Budget {
    fn from(v: BudgetView) -> Self {
        Self {
            model_tokens: v.model_tokens,
            tool_calls: v.tool_calls,
            spawns: v.spawns,
        }
    }
}

impl From<toka_types::Budget> for BudgetView {
    fn from(b: toka_types::Budget) -> Self {
        Self {
            model_tokens: b.model_tokens,
            tool_calls: b.tool_calls,
            spawns: b.spawns,
        }
    }
}

/// What the bearer's token may still spend.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BudgetLeft {
    /// The token.
    pub jti: String,
    /// Its own limits.
    pub limits: BudgetView,
    /// What it has left of each kind, along its whole chain (absent: unlimited).
    pub left: BudgetView,
    /// What it (and the tokens it issued) spent.
    pub spent: BudgetView,
}

/// A minted token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The token.
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Its subject.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Its permissions.
    pub permissions: Vec<String>,
    /// The `seq` of the `token.issued` event that records it.
    pub seq: u64,
    /// What it may spend.
    #[serde(default)]
    pub budget: BudgetView,
}

/// A signed checkpoint and the key that signed it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// `seq`, `chain_digest`, `state_digest`, `time` (µs), `key_id`, `signature`
    /// (base64 Ed25519 over the documented bytes).
    #[schema(value_type = Object)]
    pub checkpoint: serde_json::Value,
    /// The node's Ed25519 public key, 64 hex digits.
    pub public_key: String,
}
