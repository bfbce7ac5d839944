//! [`decide`]: validate a message against the state and return the events it causes.
//!
//! `decide` never mutates; a refusal changes nothing. The checks run in this order, and
//! the first that fails is the answer:
//!
//! 1. the context is the next log position;
//! 2. the log has its root (genesis was applied);
//! 3. the message is within every size limit;
//! 4. the token's subject is the origin, and the origin is a live agent;
//! 5. the token grants the operation's permission;
//! 6. the target agent is inside the token's scope (an unknown agent outside the scope
//!    is reported as out of scope, so a token never learns what lies outside it), then
//!    exists and is active;
//! 7. the operation's own rules (task ownership and state, queue limit, tree depth, …);
//!
//! and, for a message with an idempotency key, between 4 and 5: a key already
//! remembered for this origin answers `AlreadyCommitted` (same operation) or
//! `IdempotencyKeyReused` (another).

use toka_auth::{ChildGrant, Claims, Scope, attenuate, permissions};
use toka_types::limits::{MAX_QUEUED_TASKS_PER_AGENT, MAX_TOKEN_LIFETIME_SECS};
use toka_types::{
    AgentSpec, EntityId, IdempotencyRecord, IssuedToken, KernelEvent, Message, Operation,
    TaskState, TokenGrant,
};

use crate::context::Context;
use crate::error::KernelError;
use crate::idempotency::request_hash;
use crate::ids::{derive_id, root_id};
use crate::opcode::OpcodeRegistry;
use crate::state::{AgentRecord, AgentStatus, MAX_AGENT_DEPTH, WorldState};

/// The events `message`, authorised by `claims` (already verified for the message's
/// token), causes in `state` at `ctx`; or why it is refused.
pub fn decide(
    state: &WorldState,
    message: &Message,
    claims: &Claims,
    ctx: &Context,
    handlers: &OpcodeRegistry,
) -> Result<Vec<KernelEvent>, KernelError> {
    check_position(state, ctx)?;
    let root = state.root.ok_or(KernelError::NotInitialised)?;
    message.validate()?;
    if claims.sub != message.origin {
        return Err(KernelError::OriginMismatch {
            origin: message.origin,
            sub: claims.sub,
        });
    }
    live_agent(state, message.origin)?;

    let keyed = message
        .idempotency_key
        .as_deref()
        .map(|key| (key, request_hash(&message.operation)));
    if let Some((key, hash)) = &keyed
        && let Some(done) = state.idempotency.get(message.origin, key)
    {
        return Err(if done.request_hash == *hash {
            KernelError::AlreadyCommitted {
                first_seq: done.first_seq,
                events: done.events,
            }
        } else {
            KernelError::IdempotencyKeyReused {
                key: key.to_string(),
                first_seq: done.first_seq,
            }
        });
    }
    let mut events = decide_operation(state, root, message, claims, ctx, handlers)?;
    if let Some((key, request_hash)) = keyed {
        events.push(KernelEvent::IdempotencyKeyRecorded(IdempotencyRecord {
            origin: message.origin,
            key: key.to_string(),
            request_hash,
            first_seq: ctx.seq,
            events: events.len() as u32,
        }));
    }
    Ok(events)
}

/// Rules 5 to 7: the permission, the target and the operation's own rules.
fn decide_operation(
    state: &WorldState,
    root: EntityId,
    message: &Message,
    claims: &Claims,
    ctx: &Context,
    handlers: &OpcodeRegistry,
) -> Result<Vec<KernelEvent>, KernelError> {
    let op = &message.operation;
    let asked = || crate::decide_tools::Asked {
        state,
        root,
        origin: message.origin,
        claims,
        ctx,
        op,
        handlers,
    };
    match op {
        Operation::ScheduleAgentTask { agent, task } => {
            require(claims, permissions::TASK_SCHEDULE, op)?;
            let target = target(state, claims, *agent)?;
            if target.queued >= MAX_QUEUED_TASKS_PER_AGENT {
                return Err(KernelError::QueueFull {
                    agent: *agent,
                    limit: MAX_QUEUED_TASKS_PER_AGENT,
                });
            }
            // What it waits for exists and is the sender's to see.
            for dep in task.waits_for() {
                let record = state.tasks.get(dep).ok_or(KernelError::UnknownTask(*dep))?;
                if let Scope::Subtree(top) = claims.effective_scope()
                    && !state.is_within(record.agent, top)
                {
                    return Err(KernelError::OutOfScope {
                        target: record.agent,
                        scope: claims.effective_scope().to_string(),
                    });
                }
            }
            let id = fresh_task_id(state, root, ctx)?;
            Ok(vec![KernelEvent::TaskScheduled {
                agent: *agent,
                task: id,
                spec: task.clone(),
            }])
        }
        Operation::SpawnSubAgent { parent, spec } => {
            require(claims, permissions::AGENT_SPAWN, op)?;
            let parent_record = target(state, claims, *parent)?;
            if parent_record.depth >= MAX_AGENT_DEPTH {
                return Err(KernelError::TreeTooDeep {
                    limit: MAX_AGENT_DEPTH,
                });
            }
            // Active siblings have distinct names, so a path such as
            // `root/planner/worker-1` names one agent.
            let taken = parent_record.children.iter().any(|c| {
                state.agents.get(c).is_some_and(|a| {
                    a.status == AgentStatus::Active && a.spec.name() == spec.name()
                })
            });
            if taken {
                return Err(KernelError::NameTaken {
                    parent: *parent,
                    name: spec.name().to_string(),
                });
            }
            let id = derive_id(root, ctx.seq);
            if state.agents.contains_key(&id) {
                return Err(KernelError::IdCollision(id));
            }
            let spent = crate::budgets::spend(state, claims, toka_types::BudgetKind::Spawns, 1)?;
            let mut events = vec![KernelEvent::AgentSpawned {
                agent: id,
                parent: Some(*parent),
                spec: spec.clone(),
            }];
            events.extend(spent);
            Ok(events)
        }
        Operation::EmitObservation { agent, data } => {
            require(claims, permissions::OBSERVATION_EMIT, op)?;
            target(state, claims, *agent)?;
            Ok(vec![KernelEvent::ObservationEmitted {
                agent: *agent,
                data: data.clone(),
            }])
        }
        Operation::ClaimTask { agent, task } => {
            require(claims, permissions::TASK_CLAIM, op)?;
            target(state, claims, *agent)?;
            task_in_state(state, *agent, *task, TaskState::Queued)?;
            let waiting = state.waiting_on(*task);
            if !waiting.is_empty() {
                return Err(KernelError::TaskWaiting {
                    task: *task,
                    waiting_on: waiting,
                });
            }
            Ok(vec![KernelEvent::TaskClaimed {
                agent: *agent,
                task: *task,
            }])
        }
        Operation::ClaimNext { agent } => {
            require(claims, permissions::TASK_CLAIM, op)?;
            target(state, claims, *agent)?;
            let next = state
                .tasks_of(*agent)
                .into_iter()
                .find(|t| t.state == TaskState::Queued && state.waiting_on(t.id).is_empty())
                .ok_or(KernelError::NoTaskQueued { agent: *agent })?;
            Ok(vec![KernelEvent::TaskClaimed {
                agent: *agent,
                task: next.id,
            }])
        }
        Operation::CancelTask {
            agent,
            task,
            reason,
        } => {
            require(claims, permissions::TASK_CANCEL, op)?;
            target(state, claims, *agent)?;
            let record = state
                .tasks
                .get(task)
                .filter(|t| t.agent == *agent)
                .ok_or(KernelError::UnknownTask(*task))?;
            if !record.state.is_open() {
                return Err(KernelError::TaskNotOpen {
                    task: *task,
                    state: record.state.as_str(),
                });
            }
            Ok(vec![KernelEvent::TaskCancelled {
                agent: *agent,
                task: *task,
                reason: reason.clone(),
            }])
        }
        Operation::RequeueTask {
            agent,
            task,
            reason,
        } => {
            require(claims, permissions::TASK_REQUEUE, op)?;
            target(state, claims, *agent)?;
            task_in_state(state, *agent, *task, TaskState::Claimed)?;
            Ok(vec![KernelEvent::TaskRequeued {
                agent: *agent,
                task: *task,
                reason: reason.clone(),
            }])
        }
        Operation::CompleteTask {
            agent,
            task,
            outcome,
        } => {
            require(claims, permissions::TASK_COMPLETE, op)?;
            target(state, claims, *agent)?;
            task_in_state(state, *agent, *task, TaskState::Claimed)?;
            Ok(vec![KernelEvent::TaskCompleted {
                agent: *agent,
                task: *task,
                outcome: outcome.clone(),
            }])
        }
        Operation::TerminateAgent { agent } => {
            require(claims, permissions::AGENT_TERMINATE, op)?;
            target(state, claims, *agent)?;
            if *agent == root {
                return Err(KernelError::CannotTerminateRoot);
            }
            // Descendants before ancestors, so every prefix of the cascade keeps
            // invariant 3 (no active agent under a terminated one) during replay.
            Ok(state
                .subtree(*agent)
                .into_iter()
                .rev()
                .filter_map(|id| state.agents.get(&id))
                .filter(|a| a.status == AgentStatus::Active)
                .map(|a| {
                    let mut cancelled_tasks: Vec<EntityId> = a.open_tasks.iter().copied().collect();
                    cancelled_tasks.sort_unstable();
                    KernelEvent::AgentTerminated {
                        agent: a.id,
                        cancelled_tasks,
                    }
                })
                .collect())
        }
        Operation::IssueToken(grant) => {
            require(claims, permissions::TOKEN_ISSUE, op)?;
            target(state, claims, grant.sub)?;
            let issued = delegate(state, root, claims, message.origin, grant, ctx)?;
            Ok(vec![KernelEvent::TokenIssued(issued)])
        }
        Operation::RenewToken(renewal) => {
            let jti = fresh_jti(state, root, ctx)?;
            crate::renewals::renew(state, claims, renewal, jti, ctx)
        }
        Operation::RevokeToken { jti } => {
            require(claims, permissions::TOKEN_REVOKE, op)?;
            // Revoking a renewal revokes its family: an ancestor's family is refused
            // like the ancestor itself.
            let family = state.family_of(jti);
            if claims
                .lineage
                .iter()
                .any(|a| a == jti || state.family_of(a) == family)
            {
                return Err(KernelError::CannotRevokeAncestor { jti: jti.clone() });
            }
            let scope = claims.effective_scope();
            match (state.tokens.get(jti), scope) {
                (_, Scope::All) => {}
                (Some(issued), Scope::Subtree(top)) => {
                    if !state.is_within(issued.sub, top) {
                        return Err(KernelError::RevokeOutOfScope {
                            jti: jti.clone(),
                            subject: issued.sub,
                            scope: scope.to_string(),
                        });
                    }
                }
                (None, Scope::Subtree(_)) => {
                    return Err(KernelError::UnknownTokenNeedsGlobalScope { jti: jti.clone() });
                }
            }
            if state.revoked.contains(jti) {
                return Err(KernelError::AlreadyRevoked { jti: jti.clone() });
            }
            Ok(vec![KernelEvent::TokenRevoked { jti: jti.clone() }])
        }
        Operation::CallTool { agent, tool, input } => {
            crate::decide_tools::call_tool(&asked(), (*agent, tool, input))
        }
        Operation::DecideApproval {
            call,
            approve,
            reason,
            input_hash,
        } => crate::decide_tools::decide_approval(
            &asked(),
            (*call, *approve, reason, input_hash.as_deref()),
        ),
        Operation::DesignatePlanner { agent, jti, model } => {
            crate::planners::designate(state, claims, op, (*agent, jti, model.as_deref()))
        }
        Operation::Heartbeat {
            agent,
            task,
            lease_secs,
        } => crate::leases::heartbeat(state, claims, op, (*agent, *task, *lease_secs), ctx),
        Operation::RecordModelStep(step) => {
            crate::decide_models::record_model_step(state, claims, op, step)
        }
        Operation::Extension(call) => {
            let family = call.family();
            let granted = claims
                .permissions
                .iter()
                .any(|p| p.strip_prefix("ext:") == Some(family));
            if !granted {
                return Err(KernelError::PermissionDenied {
                    operation: op.name(),
                    permission: permissions::extension(family),
                });
            }
            let handler = handlers
                .get(family)
                .ok_or_else(|| KernelError::UnknownExtension {
                    family: family.to_string(),
                })?;
            let empty = Default::default();
            let ext_state = state.extensions.get(family).unwrap_or(&empty);
            let refused = |reason: String| KernelError::ExtensionRefused {
                family: family.to_string(),
                reason,
            };
            let events = handler
                .decide(ext_state, call, message.origin, ctx)
                .map_err(|r| refused(r.reason))?;
            if let Some(other) = events.iter().find(|e| e.family() != family) {
                return Err(refused(format!(
                    "handler emitted an event of family {:?}",
                    other.family()
                )));
            }
            Ok(events.into_iter().map(KernelEvent::Extension).collect())
        }
    }
}

/// The events that create the root agent of an empty log: the first event of every
/// log. Its id is derived from `ctx.now`.
pub fn decide_genesis(
    state: &WorldState,
    root: &AgentSpec,
    ctx: &Context,
) -> Result<Vec<KernelEvent>, KernelError> {
    check_position(state, ctx)?;
    if state.root.is_some() || state.applied > 0 {
        return Err(KernelError::AlreadyInitialised);
    }
    Ok(vec![KernelEvent::AgentSpawned {
        agent: root_id(ctx.now),
        parent: None,
        spec: root.clone(),
    }])
}

/// The event that issues a root token: every built-in permission, scope `*`, for the
/// root agent, valid `ttl_secs` from `ctx.now`. Not reachable through a [`Message`]:
/// only the runtime asks for it, on behalf of whoever holds the node's signing key.
pub fn decide_root_token(
    state: &WorldState,
    ttl_secs: u64,
    ctx: &Context,
) -> Result<Vec<KernelEvent>, KernelError> {
    check_position(state, ctx)?;
    let root = state.root.ok_or(KernelError::NotInitialised)?;
    let iat = ctx.now.as_unix_secs();
    let issued = IssuedToken {
        jti: fresh_jti(state, root, ctx)?,
        sub: root,
        permissions: permissions::ALL.iter().map(|p| p.to_string()).collect(),
        scope: Some(Scope::All),
        iat,
        exp: iat + ttl_secs.clamp(1, MAX_TOKEN_LIFETIME_SECS),
        parent: None,
        lineage: Vec::new(),
        issuer: None,
        kid: None,
        budget: Default::default(),
        renewal_of: None,
    };
    Ok(vec![KernelEvent::TokenIssued(issued)])
}

/// The events that record a change of the node's signing keys: `rotated` becomes the
/// active key, each of `retired` stops verifying. The keys themselves live with the
/// runtime; the log records their `kid`s. Not reachable through a [`Message`].
pub fn decide_key_change(
    state: &WorldState,
    rotated: Option<(&str, &str)>,
    retired: &[String],
    ctx: &Context,
) -> Result<Vec<KernelEvent>, KernelError> {
    check_position(state, ctx)?;
    state.root.ok_or(KernelError::NotInitialised)?;
    let mut events = Vec::new();
    if let Some((kid, alg)) = rotated {
        if state.keys.get(kid) == Some(&true) {
            return Err(KernelError::KeyRetired { kid: kid.into() });
        }
        events.push(KernelEvent::KeyRotated {
            kid: kid.into(),
            alg: alg.into(),
            replaces: state.signing_kid.clone().filter(|k| k != kid),
        });
    }
    let active = rotated.map(|(k, _)| k).or(state.signing_kid.as_deref());
    for kid in retired {
        if Some(kid.as_str()) == active {
            return Err(KernelError::CannotRetireActiveKey { kid: kid.clone() });
        }
        if state.keys.get(kid) != Some(&true) {
            events.push(KernelEvent::KeyRetired { kid: kid.clone() });
        }
    }
    Ok(events)
}

/// A delegation from the token `claims` of `issuer`: the grant narrowed by the rule of
/// [`attenuate`] (permissions a subset, scope inside, expiry no later, lineage bounded).
fn delegate(
    state: &WorldState,
    root: EntityId,
    claims: &Claims,
    issuer: EntityId,
    grant: &TokenGrant,
    ctx: &Context,
) -> Result<IssuedToken, KernelError> {
    let iat = ctx.now.as_unix_secs();
    let exp = match grant.ttl_secs {
        Some(ttl) => iat.saturating_add(ttl),
        None => claims.exp.min(iat + MAX_TOKEN_LIFETIME_SECS),
    };
    let child = ChildGrant {
        sub: grant.sub,
        jti: fresh_jti(state, root, ctx)?,
        iat,
        exp,
        permissions: grant.permissions.clone(),
        scope: grant.scope,
    };
    let child =
        attenuate(claims, child, |d, a| state.is_within(d, a)).map_err(KernelError::Delegation)?;
    let budget = crate::budgets::attenuate(state, claims, grant.budget)?;
    Ok(IssuedToken {
        jti: child.jti,
        sub: child.sub,
        permissions: child.permissions.into_iter().map(String::from).collect(),
        scope: child.scope,
        iat: child.iat,
        exp: child.exp,
        parent: child.parent,
        lineage: child.lineage,
        issuer: Some(issuer),
        kid: None,
        budget,
        renewal_of: None,
    })
}

/// The `jti` of the token issued by the event at `ctx.seq`, derived like entity ids.
fn fresh_jti(state: &WorldState, root: EntityId, ctx: &Context) -> Result<String, KernelError> {
    let id = derive_id(root, ctx.seq);
    let jti = id.to_string();
    if state.tokens.contains_key(&jti) {
        return Err(KernelError::IdCollision(id));
    }
    Ok(jti)
}

pub(crate) fn check_position(state: &WorldState, ctx: &Context) -> Result<(), KernelError> {
    if ctx.seq != state.next_seq() {
        return Err(KernelError::SeqOutOfOrder {
            expected: state.next_seq(),
            got: ctx.seq,
        });
    }
    Ok(())
}

pub(crate) fn require(
    claims: &Claims,
    permission: &str,
    op: &Operation,
) -> Result<(), KernelError> {
    if claims.allows(permission) {
        Ok(())
    } else {
        Err(KernelError::PermissionDenied {
            operation: op.name(),
            permission: permission.to_string(),
        })
    }
}

pub(crate) fn live_agent(state: &WorldState, id: EntityId) -> Result<&AgentRecord, KernelError> {
    let agent = state.agents.get(&id).ok_or(KernelError::UnknownAgent(id))?;
    if agent.status != AgentStatus::Active {
        return Err(KernelError::AgentTerminated(id));
    }
    Ok(agent)
}

/// Rule 6: the agent acted on is in scope, exists and is active.
pub(crate) fn target<'s>(
    state: &'s WorldState,
    claims: &Claims,
    agent: EntityId,
) -> Result<&'s AgentRecord, KernelError> {
    let scope = claims.effective_scope();
    if let Scope::Subtree(top) = scope
        && !state.is_within(agent, top)
    {
        return Err(KernelError::OutOfScope {
            target: agent,
            scope: scope.to_string(),
        });
    }
    live_agent(state, agent)
}

pub(crate) fn task_in_state(
    state: &WorldState,
    agent: EntityId,
    task: EntityId,
    expected: TaskState,
) -> Result<(), KernelError> {
    let record = state
        .tasks
        .get(&task)
        .ok_or(KernelError::UnknownTask(task))?;
    if record.agent != agent {
        return Err(KernelError::TaskOfAnotherAgent {
            task,
            agent,
            owner: record.agent,
        });
    }
    if record.state != expected {
        return Err(KernelError::WrongTaskState {
            task,
            state: record.state,
            expected,
        });
    }
    Ok(())
}

fn fresh_task_id(
    state: &WorldState,
    root: EntityId,
    ctx: &Context,
) -> Result<EntityId, KernelError> {
    let id = derive_id(root, ctx.seq);
    if state.tasks.contains_key(&id) {
        return Err(KernelError::IdCollision(id));
    }
    Ok(id)
}
