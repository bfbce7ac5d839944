//! The Toka kernel: a deterministic state machine of agents, tasks, observations and
//! capabilities, split into *decide* and *apply*.
//!
//! ```text
//! decide(&WorldState, &Message, &Claims, &Context, &OpcodeRegistry) -> Result<Vec<KernelEvent>, KernelError>
//! apply(&mut WorldState, &KernelEvent, &OpcodeRegistry)            // never fails
//! ```
//!
//! [`decide`] checks a message (limits, token subject, permission, scope, referenced
//! entities and their states, queue limits) and returns the events it causes; it does
//! not mutate. [`apply`] is the only way the state changes. The log stores events, so
//! replay is `apply` over the log and never re-runs `decide`.
//!
//! Everything non-deterministic comes in through [`Context`] (the time and the log
//! position). New ids are derived from the log position, never drawn at random. The
//! state hashes to a [`StateDigest`] over a canonical encoding: the digest of the live
//! state equals the digest of the state rebuilt from its events; that is this crate's
//! main test.
//!
//! [`Kernel`] bundles a state with a token [`Verifier`](toka_auth::Verifier) and the
//! extension [`OpcodeRegistry`] of this instance (there is no global registry).
//!
//! # Permissions and scope
//!
//! Each operation needs one permission from [`toka_auth::permissions`]:
//! `task:schedule`, `task:claim`, `task:complete`, `agent:spawn`, `agent:terminate`,
//! `observation:emit`, `token:issue`, `token:revoke`, `approval:grant`, `tool:<name>`
//! for a tool call (or a family, `tool:fs.*`), and `ext:<family>` for extension
//! calls. An
//! operation acts on one agent (the task queue's owner, the parent of a spawn, the
//! observer, the agent to terminate); that agent must lie inside the token's scope,
//! which by default is the token subject and its descendants.
//!
//! # Delegation and revocation
//!
//! Issuing a token is an operation like any other (`IssueToken`): the subject must be
//! a live agent inside the issuer's scope, and the grant may only narrow the issuer's
//! permissions, scope and lifetime (the rule of [`toka_auth::attenuate`]). The event
//! `token.issued` records the claims; its `jti` is derived from the log position. A
//! token may revoke (with `token:revoke`) a token issued to an agent inside its scope,
//! never one of its own ancestors; a `jti` the log never issued needs scope `*`.
//!
//! # State invariants
//!
//! [`WorldState::check_invariants`] checks these after every `apply` in tests and at
//! recovery; each violation names its number.
//!
//! 1. There is a root agent exactly when any event was applied; every other agent has
//!    an existing parent that lists it once among its children.
//! 2. An agent's depth is its parent's plus one, and at most [`MAX_AGENT_DEPTH`].
//! 3. No active agent has a terminated ancestor (termination covers subtrees).
//! 4. Each agent's task list, open-task set and queued count agree with the tasks;
//!    at most 10 000 tasks are queued per agent; each task is listed under one agent.
//! 5. A terminated agent has no open (queued or claimed) task.
//! 6. A task has an outcome exactly when it is done (a success) or failed (a failure).
//! 7. Every issued token is for a known agent, its `parent` is the last entry of its
//!    `lineage`, and it expires after it was issued.
//! 8. The idempotency index is consistent and holds at most
//!    [`MAX_IDEMPOTENCY_KEYS`](toka_types::limits::MAX_IDEMPOTENCY_KEYS) keys.
//! 9. Every tool call names a tool the log registered and a known agent; a call is in
//!    the open set exactly when its status is open (and then has no end), a call
//!    awaiting approval has an expiry, and no agent has more than
//!    [`MAX_OPEN_CALLS_PER_AGENT`](toka_types::limits::MAX_OPEN_CALLS_PER_AGENT) open.
//!
//! # Idempotent retries
//!
//! A message with an idempotency key is decided as usual, plus one
//! `idempotency.recorded` event naming the key, the hash of the operation and where
//! its events are. A later message from the same origin with the same key is answered
//! [`KernelError::AlreadyCommitted`] (the runtime turns that into the original answer)
//! if it asks for the same operation, and [`KernelError::IdempotencyKeyReused`] if not;
//! neither writes anything.
//!
//! ```
//! use toka_auth::{Claims, KeySet, SigningKey, mint, permissions};
//! use toka_kernel::{Context, Kernel};
//! use toka_types::{AgentSpec, Message, Operation, TaskSpec, Timestamp};
//!
//! let keys = KeySet::new(SigningKey::hs256("k1", &[7u8; 32])?);
//! let mut kernel = Kernel::new(keys.clone());
//! let now = Timestamp::from_unix_secs(1_800_000_000);
//! kernel.genesis(&AgentSpec::new("root")?, &Context::new(now, 1))?;
//! let root = kernel.state().root().unwrap();
//!
//! let claims = Claims::new(root, "root-token", 1_800_000_000, 1_800_003_600)
//!     .with_permissions(permissions::ALL.iter().copied());
//! let token = mint(&keys, &claims)?;
//! let op = Operation::ScheduleAgentTask { agent: root, task: TaskSpec::new("hello")? };
//! let events = kernel.submit(&Message::new(root, token, op), &Context::new(now, 2))?;
//! assert_eq!(events[0].kind(), "task.scheduled");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod apply;
mod budgets;
mod context;
mod decide;
mod decide_models;
mod decide_tools;
mod digest;
mod error;
mod idempotency;
mod ids;
mod image;
mod kernel;
mod leases;
mod models;
mod opcode;
mod planners;
mod renewals;
mod state;
mod tools;

pub use apply::apply;
pub use budgets::{Spent, SpentTable, remaining, remaining_of_issued};
pub use context::Context;
pub use decide::{decide, decide_genesis, decide_key_change, decide_root_token};
pub use decide_tools::{MAX_EXPIRIES_PER_DECISION, ToolOp, decide_tool_op};
pub use digest::{ParseDigestError, StateDigest};
pub use error::{InvariantViolation, KernelError};
pub use idempotency::{IdempotencyIndex, request_hash};
pub use image::{AgentImage, ExtensionEntries, IMAGE_VERSION, StateImage, TaskImage};
pub use kernel::Kernel;
pub use leases::{LeaseTable, decide_expire_leases};
pub use models::{ModelTable, ModelUsage};
pub use opcode::{ExtensionRefusal, OpcodeHandler, OpcodeRegistry, SchemaCheck};
pub use planners::{PlannerRecord, PlannerTable};
pub use renewals::chain_start;
pub use state::{
    AgentRecord, AgentStatus, ExtensionState, MAX_AGENT_DEPTH, TaskRecord, WorldState,
};
pub use tools::{CallRecord, ToolRecord, ToolTable, input_hash};
