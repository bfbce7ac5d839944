//! Model exchanges as data: one [`ModelStep`] is one request to a language model and
//! the provider's whole answer, recorded by the agent *before* it acts on the answer.
//!
//! The log thus holds the conversation: a replay, `toka verify` or a restart reads the
//! recorded answers and never asks the model again. A step stores the messages it
//! added to the conversation (the system prompt and the task on the first step, tool
//! results after), not the whole conversation again, and the hash of the exact
//! request body sent. Nothing here talks to a model.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, check_bytes, check_chars};
use crate::id::EntityId;
use crate::limits::{MAX_MODEL_NAME_CHARS, MAX_MODEL_STEP_BYTES, MAX_MODEL_STEPS_PER_TASK};
use crate::tool::json_len;

/// One exchange with a model, working on `task` for `agent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelStep {
    /// The agent that asked.
    pub agent: EntityId,
    /// The task it works on.
    pub task: EntityId,
    /// Its place in the task's conversation: 1, 2, … (the kernel refuses a gap or a
    /// repeat, so a planner resumed after a crash cannot record a step twice).
    #[serde(deserialize_with = "crate::whole::u32")]
    pub step: u32,
    /// The model asked, as configured.
    pub model: String,
    /// BLAKE3 (hex) of the exact request body sent to the provider.
    pub request_hash: String,
    /// The messages this request added to the conversation, as sent.
    pub appended: Vec<serde_json::Value>,
    /// The provider's whole response body (choices, finish reason, tool calls, usage).
    pub response: serde_json::Value,
}

impl ModelStep {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_chars("model", &self.model, MAX_MODEL_NAME_CHARS)?;
        if self.model.is_empty() {
            return Err(ValidationError::Empty { field: "model" });
        }
        if self.request_hash.len() != 64
            || !self.request_hash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ValidationError::BadCharacter {
                field: "request_hash",
                reason: "must be 64 hexadecimal digits (BLAKE3)",
            });
        }
        if !(1..=MAX_MODEL_STEPS_PER_TASK).contains(&self.step) {
            return Err(ValidationError::OutOfRange {
                field: "step",
                actual: u64::from(self.step),
                min: 1,
                max: u64::from(MAX_MODEL_STEPS_PER_TASK),
            });
        }
        let size = self.appended.iter().map(json_len).sum::<usize>() + json_len(&self.response);
        check_bytes("model step", size, MAX_MODEL_STEP_BYTES)
    }

    /// The tokens the provider says this exchange used (`usage.total_tokens`, else
    /// prompt plus completion tokens; 0 when it says nothing). The kernel debits this,
    /// read from the recorded response, so replay debits the same.
    pub fn tokens_used(&self) -> u64 {
        let usage = &self.response["usage"];
        usage["total_tokens"].as_u64().unwrap_or_else(|| {
            usage["prompt_tokens"]
                .as_u64()
                .unwrap_or(0)
                .saturating_add(usage["completion_tokens"].as_u64().unwrap_or(0))
        })
    }
}
