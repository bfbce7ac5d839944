use thiserror::Error;
use toka_auth::AuthError;
use toka_types::{CallStatus, EntityId, TaskState, ValidationError};

/// Why the kernel refused a message. A refused message changes nothing.
///
/// Variants are the rules, named as such; the kernel checks them in a fixed order (see
/// [`decide`](crate::decide)), so a message breaking several rules always gets the same
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The message breaks a size or shape limit.
    #[error("invalid message: {0}")]
    Invalid(#[from] ValidationError),
    /// The capability token was refused.
    #[error("capability refused: {0}")]
    Unauthenticated(#[from] AuthError),
    /// The token's subject is not the message's origin.
    #[error("token subject {sub} is not the origin {origin}")]
    OriginMismatch {
        /// The message origin.
        origin: EntityId,
        /// The token's `sub`.
        sub: EntityId,
    },
    /// The token does not carry the permission the operation needs.
    #[error("{operation} needs permission {permission:?}, which the token does not grant")]
    PermissionDenied {
        /// The operation.
        operation: &'static str,
        /// The permission it needs.
        permission: String,
    },
    /// The target agent is outside the token's scope.
    #[error("agent {target} is outside the token's scope ({scope})")]
    OutOfScope {
        /// The agent acted on.
        target: EntityId,
        /// The token's scope.
        scope: String,
    },
    /// No agent has this id.
    #[error("unknown agent {0}")]
    UnknownAgent(EntityId),
    /// The agent was terminated.
    #[error("agent {0} is terminated")]
    AgentTerminated(EntityId),
    /// No task has this id.
    #[error("unknown task {0}")]
    UnknownTask(EntityId),
    /// The task belongs to another agent.
    #[error("task {task} belongs to agent {owner}, not {agent}")]
    TaskOfAnotherAgent {
        /// The task.
        task: EntityId,
        /// The agent named in the message.
        agent: EntityId,
        /// The agent it belongs to.
        owner: EntityId,
    },
    /// The task is not in the state the operation needs.
    #[error("task {task} is {}, must be {}", state.as_str(), expected.as_str())]
    WrongTaskState {
        /// The task.
        task: EntityId,
        /// Its state.
        state: TaskState,
        /// The state the operation needs.
        expected: TaskState,
    },
    /// The agent's queue is full.
    #[error("agent {agent} has {limit} queued tasks, the limit")]
    QueueFull {
        /// The agent.
        agent: EntityId,
        /// The limit.
        limit: usize,
    },
    /// Spawning would make the agent tree deeper than allowed.
    #[error("agent tree depth limit {limit} reached")]
    TreeTooDeep {
        /// The limit.
        limit: u32,
    },
    /// The root agent cannot be terminated.
    #[error("the root agent cannot be terminated")]
    CannotTerminateRoot,
    /// A delegation (token issuance) would be wider than the issuer's own token.
    #[error("delegation refused: {0}")]
    Delegation(AuthError),
    /// The token to revoke belongs to an agent outside the sender's scope.
    #[error("token {jti:?} belongs to agent {subject}, outside the sender's scope ({scope})")]
    RevokeOutOfScope {
        /// The `jti`.
        jti: String,
        /// The agent it was issued to.
        subject: EntityId,
        /// The sender's scope.
        scope: String,
    },
    /// A token may not revoke one of its own ancestors (nor, through it, everything
    /// derived from that ancestor).
    #[error("token {jti:?} is an ancestor of the sender's token and cannot be revoked with it")]
    CannotRevokeAncestor {
        /// The `jti`.
        jti: String,
    },
    /// The log never issued this `jti`, so its subject is unknown: only a token with
    /// scope `*` may revoke it.
    #[error("token {jti:?} was never issued in this log; revoking it needs scope \"*\"")]
    UnknownTokenNeedsGlobalScope {
        /// The `jti`.
        jti: String,
    },
    /// A message with this idempotency key was committed already, asking for the same:
    /// its answer is the events at `first_seq` (the runtime reads them back).
    #[error("already committed at seq {first_seq} ({events} events) under this idempotency key")]
    AlreadyCommitted {
        /// The original's first `seq`.
        first_seq: u64,
        /// How many events it produced.
        events: u32,
    },
    /// The idempotency key was used for a different operation.
    #[error(
        "idempotency key {key:?} was used at seq {first_seq} for a different operation; use a new key"
    )]
    IdempotencyKeyReused {
        /// The key.
        key: String,
        /// Where it was used.
        first_seq: u64,
    },
    /// The active signing key cannot be retired: rotate to another first.
    #[error("key {kid:?} is the active signing key; rotate to a new key before retiring it")]
    CannotRetireActiveKey {
        /// The key.
        kid: String,
    },
    /// A retired key cannot become the signing key again.
    #[error("key {kid:?} was retired; rotate to a new key")]
    KeyRetired {
        /// The key.
        kid: String,
    },
    /// The token is already revoked.
    #[error("token {jti:?} is already revoked")]
    AlreadyRevoked {
        /// The `jti`.
        jti: String,
    },
    /// No extension handler is registered for the family.
    #[error("no extension handler for family {family:?}")]
    UnknownExtension {
        /// The family.
        family: String,
    },
    /// An extension handler refused the call.
    #[error("extension {family:?} refused: {reason}")]
    ExtensionRefused {
        /// The family.
        family: String,
        /// The handler's reason.
        reason: String,
    },
    /// A handler for the family is already registered.
    #[error("an extension handler for family {family:?} is already registered")]
    DuplicateExtension {
        /// The family.
        family: String,
    },
    /// The context's `seq` is not the state's next position.
    #[error("context seq {got} is not the next log position {expected}")]
    SeqOutOfOrder {
        /// The next position.
        expected: u64,
        /// The context's.
        got: u64,
    },
    /// The context's time is before the previous decision's.
    #[error("context time {now} µs is before the previous decision's {last} µs")]
    ClockWentBack {
        /// The previous time.
        last: u64,
        /// The context's time.
        now: u64,
    },
    /// There is no root agent yet: the log needs its genesis first.
    #[error("the log has no root agent yet; run genesis first")]
    NotInitialised,
    /// Genesis was asked for a log that already has a root agent.
    #[error("the log already has a root agent")]
    AlreadyInitialised,
    /// No tool of this name was ever registered in this log.
    #[error("no tool {name:?} is registered (see `toka tool list`)")]
    UnknownTool {
        /// The name.
        name: String,
    },
    /// The tool was retired: the node no longer offers it.
    #[error("tool {name:?} was retired; the node no longer offers it")]
    ToolRetired {
        /// The name.
        name: String,
    },
    /// The input does not match the tool's schema.
    #[error("input for tool {tool:?} does not match its schema: {errors}")]
    ToolInputInvalid {
        /// The tool.
        tool: String,
        /// What is wrong, by place in the input.
        errors: String,
    },
    /// The agent has as many open calls as allowed.
    #[error("agent {agent} has {limit} open tool calls, the limit; wait for one to end")]
    TooManyOpenCalls {
        /// The agent.
        agent: EntityId,
        /// The limit.
        limit: usize,
    },
    /// No call has this id.
    #[error("unknown tool call {0}")]
    UnknownCall(EntityId),
    /// The approver is the calling agent, the call's sender, or a descendant of either.
    #[error("agent {approver} may not decide call {call}: it is the caller or descends from it")]
    SelfApproval {
        /// The call.
        call: EntityId,
        /// Who tried.
        approver: EntityId,
    },
    /// The call is not in the status the request needs.
    #[error("tool call {call} is {}, must be {}", status.as_str(), expected.as_str())]
    WrongCallStatus {
        /// The call.
        call: EntityId,
        /// Its status.
        status: CallStatus,
        /// The status needed.
        expected: CallStatus,
    },
    /// The call's approval window has passed.
    #[error("the approval of tool call {call} expired")]
    ApprovalExpired {
        /// The call.
        call: EntityId,
    },
    /// The approval names other input bytes than the call has.
    #[error(
        "approval of call {call} names input hash {approved:?}, the call's input hash is {actual}; review the input and approve that"
    )]
    ApprovalInputMismatch {
        /// The call.
        call: EntityId,
        /// The hash the approver named.
        approved: String,
        /// The call's.
        actual: String,
    },
    /// A denial must say why.
    #[error("denying call {call} needs a reason")]
    ReasonRequired {
        /// The call.
        call: EntityId,
    },
    /// A tool the node offers is not acceptable.
    #[error("tool {name:?} cannot be registered: {reason}")]
    ToolSpecInvalid {
        /// The tool.
        name: String,
        /// Why.
        reason: String,
    },
    /// More tools than a log may register.
    #[error("more than {limit} tools offered")]
    TooManyTools {
        /// The limit.
        limit: usize,
    },
    /// A model step that is not the next of its task's conversation.
    #[error("model step {step} of task {task} is out of order: the next step is {expected}")]
    ModelStepOutOfOrder {
        /// The task.
        task: EntityId,
        /// The step asked for.
        step: u32,
        /// The next step.
        expected: u64,
    },
    /// The token, or an ancestor of it, has spent its budget of this kind.
    #[error("budget exhausted: {budget} of token {jti} (limit {limit}) is spent")]
    BudgetExhausted {
        /// Which budget.
        budget: &'static str,
        /// The token whose budget is spent.
        jti: String,
        /// Its limit.
        limit: u64,
    },
    /// A grant asks for more budget than the issuer has left.
    #[error("budget {budget} of {asked} is more than the issuing token has left ({left})")]
    BudgetExceedsIssuer {
        /// Which budget.
        budget: &'static str,
        /// What the grant asked.
        asked: u64,
        /// What the issuer has left.
        left: u64,
    },
    /// The task waits for tasks that have not ended.
    #[error("task {task} waits for {} task(s) that have not ended: {}", waiting_on.len(),
            waiting_on.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    TaskWaiting {
        /// The task.
        task: EntityId,
        /// What it still waits for.
        waiting_on: Vec<EntityId>,
    },
    /// A planner designation names a token it may not hand to the node.
    #[error("token {jti:?} cannot be the planner's: {reason}")]
    PlannerTokenRefused {
        /// The token.
        jti: String,
        /// Why.
        reason: String,
    },
    /// A renewal would end at or before now: the chain reached its lifetime.
    #[error(
        "token {jti} cannot be renewed: its chain began at {started} (Unix seconds) and may last \
         {max_secs} s (tokens.max_chain_lifetime); get a fresh root token (`toka token root`) \
         and issue again"
    )]
    ChainLifetimeExceeded {
        /// The token asking.
        jti: String,
        /// When its chain's root token was first issued.
        started: u64,
        /// The configured lifetime.
        max_secs: u64,
    },
    /// The parent already has an active child of that name.
    #[error("agent {parent} already has an active child named {name:?}; pick another name")]
    NameTaken {
        /// The parent.
        parent: EntityId,
        /// The name.
        name: String,
    },
    /// `claim_next` found no queued task ready to claim.
    #[error("agent {agent} has no queued task ready to claim")]
    NoTaskQueued {
        /// The agent.
        agent: EntityId,
    },
    /// The task already ended.
    #[error("task {task} is {state}: only a queued or claimed task can be cancelled")]
    TaskNotOpen {
        /// The task.
        task: EntityId,
        /// Its state.
        state: &'static str,
    },
    /// Only tokens the log issued can be renewed.
    #[error("token {jti} was not issued by this log, so it cannot be renewed")]
    RenewUnknownToken {
        /// The token asking.
        jti: String,
    },
    /// A derived id is taken (astronomically unlikely; refused rather than overwritten).
    #[error("derived id {0} is already in use")]
    IdCollision(EntityId),
}

impl KernelError {
    /// A short stable name for the rule that refused, for metrics and API error codes.
    pub fn code(&self) -> &'static str {
        use KernelError as K;
        match self {
            K::Invalid(_) => "invalid",
            K::Unauthenticated(_) => "unauthenticated",
            K::OriginMismatch { .. } => "origin_mismatch",
            K::PermissionDenied { .. } => "permission_denied",
            K::OutOfScope { .. } => "out_of_scope",
            K::UnknownAgent(_) => "unknown_agent",
            K::AgentTerminated(_) => "agent_terminated",
            K::UnknownTask(_) => "unknown_task",
            K::TaskOfAnotherAgent { .. } => "task_of_another_agent",
            K::WrongTaskState { .. } => "wrong_task_state",
            K::QueueFull { .. } => "queue_full",
            K::TreeTooDeep { .. } => "tree_too_deep",
            K::CannotTerminateRoot => "cannot_terminate_root",
            K::Delegation(AuthError::PermissionEscalation { .. }) => "permission_escalation",
            K::Delegation(AuthError::ScopeWidening { .. }) => "scope_widening",
            K::Delegation(AuthError::ExpiryExtension { .. }) => "expiry_extension",
            K::Delegation(_) => "delegation_refused",
            K::RevokeOutOfScope { .. } => "revoke_out_of_scope",
            K::CannotRevokeAncestor { .. } => "cannot_revoke_ancestor",
            K::UnknownTokenNeedsGlobalScope { .. } => "unknown_token",
            K::AlreadyRevoked { .. } => "already_revoked",
            K::CannotRetireActiveKey { .. } => "cannot_retire_active_key",
            K::KeyRetired { .. } => "key_retired",
            K::AlreadyCommitted { .. } => "already_committed",
            K::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            K::UnknownExtension { .. } => "unknown_extension",
            K::ExtensionRefused { .. } => "extension_refused",
            K::DuplicateExtension { .. } => "duplicate_extension",
            K::SeqOutOfOrder { .. } => "seq_out_of_order",
            K::ClockWentBack { .. } => "clock_went_back",
            K::NotInitialised => "not_initialised",
            K::AlreadyInitialised => "already_initialised",
            K::IdCollision(_) => "id_collision",
            K::UnknownTool { .. } => "unknown_tool",
            K::ToolRetired { .. } => "tool_retired",
            K::ToolInputInvalid { .. } => "tool_input_invalid",
            K::TooManyOpenCalls { .. } => "too_many_open_calls",
            K::UnknownCall(_) => "unknown_call",
            K::SelfApproval { .. } => "self_approval",
            K::WrongCallStatus { .. } => "wrong_call_status",
            K::ApprovalExpired { .. } => "approval_expired",
            K::ApprovalInputMismatch { .. } => "approval_input_mismatch",
            K::ReasonRequired { .. } => "reason_required",
            K::ToolSpecInvalid { .. } => "tool_spec_invalid",
            K::TooManyTools { .. } => "too_many_tools",
            K::ModelStepOutOfOrder { .. } => "model_step_out_of_order",
            K::BudgetExhausted { .. } => "budget_exhausted",
            K::BudgetExceedsIssuer { .. } => "budget_exceeds_issuer",
            K::PlannerTokenRefused { .. } => "planner_token_refused",
            K::TaskWaiting { .. } => "task_waiting",
            K::ChainLifetimeExceeded { .. } => "chain_lifetime_exceeded",
            K::NoTaskQueued { .. } => "no_task_queued",
            K::NameTaken { .. } => "name_taken",
            K::TaskNotOpen { .. } => "task_not_open",
            K::RenewUnknownToken { .. } => "renew_unknown_token",
        }
    }
}

/// A broken state invariant: the state is not one that `apply` can produce from a log.
/// Found by [`WorldState::check_invariants`](crate::WorldState::check_invariants).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("state invariant {number} broken: {detail}")]
pub struct InvariantViolation {
    /// The invariant's number in the crate docs.
    pub number: u8,
    /// What was found.
    pub detail: String,
}
