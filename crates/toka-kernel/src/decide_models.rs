//! The rule of recording a model exchange: the sender holds `model:use`, the agent
//! is in its scope and active, the task is that agent's and claimed, and the step is
//! the next one of the task's conversation (never a gap, never a repeat: a planner
//! resumed after a crash that asks again cannot record the same step twice). The
//! tokens debited are read from the recorded response, so replay debits the same.
//!
//! What it is not: talking to a model. The planner (user space) does that and
//! records what it got before it acts on it.

use toka_auth::{Claims, permissions};
use toka_types::{BudgetKind, KernelEvent, ModelStep, Operation, TaskState};

use crate::decide::{require, target, task_in_state};
use crate::error::KernelError;
use crate::state::WorldState;

/// `RecordModelStep`.
pub(crate) fn record_model_step(
    state: &WorldState,
    claims: &Claims,
    op: &Operation,
    step: &ModelStep,
) -> Result<Vec<KernelEvent>, KernelError> {
    require(claims, permissions::MODEL_USE, op)?;
    target(state, claims, step.agent)?;
    task_in_state(state, step.agent, step.task, TaskState::Claimed)?;
    let next = state.models.steps_of(step.task).len() as u64 + 1;
    if u64::from(step.step) != next {
        return Err(KernelError::ModelStepOutOfOrder {
            task: step.task,
            step: step.step,
            expected: next,
        });
    }
    let tokens = step.tokens_used();
    let spent = crate::budgets::spend(state, claims, BudgetKind::ModelTokens, tokens)?;
    let mut events = vec![KernelEvent::ModelAnswered {
        tokens,
        step: step.clone(),
    }];
    events.extend(spent);
    Ok(events)
}
