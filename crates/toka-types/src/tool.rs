//! Tools as data: what a node offers ([`ToolSpec`]), what a call asked for
//! ([`ToolCall`]) and how it ended ([`ToolResult`]).
//!
//! A tool runs outside the kernel; the log records that it was offered, that it was
//! called (with the exact input and its hash), who approved it, when it started, on
//! which node, and what it returned. Nothing here runs anything.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, check_bytes, check_chars, check_text};
use crate::id::EntityId;
use crate::limits::{
    MAX_APPROVAL_REASON_CHARS, MAX_APPROVAL_TTL_SECS, MAX_TOOL_DESCRIPTION_CHARS,
    MAX_TOOL_ERROR_CHARS, MAX_TOOL_INPUT_BYTES, MAX_TOOL_NAME_CHARS, MAX_TOOL_OUTPUT_BYTES,
    MAX_TOOL_SCHEMA_BYTES, MAX_TOOL_TIMEOUT_MS,
};

/// Whether a call needs a person's (or another agent's) approval before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalPolicy {
    /// It runs as soon as it is called.
    Never,
    /// It waits in `awaiting_approval` until an approver with `approval:grant` decides.
    Required,
}

/// What happens to a call that was running when its node died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryPolicy {
    /// Safe to repeat (reads): it runs again at start, so it runs *at least once*.
    Repeatable,
    /// Not safe to repeat (writes, commands): it is recorded as abandoned with
    /// "outcome unknown", so it runs *at most once*.
    AtMostOnce,
}

/// A tool as the node offers it. `tool.registered` records this, so the log alone
/// tells what an agent could have called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// Its name: ASCII letters, digits and `._-`, at most [`MAX_TOOL_NAME_CHARS`]
    /// (`fs.read`, `exec.git-status`). Calling it needs permission `tool:<name>`.
    pub name: String,
    /// What it does, for people and models.
    pub description: String,
    /// The JSON Schema its input must match.
    pub input_schema: serde_json::Value,
    /// Whether calls wait for approval.
    pub approval: ApprovalPolicy,
    /// What a crash does to a running call.
    pub retry: RetryPolicy,
    /// How long one run may take, in milliseconds.
    pub timeout_ms: u64,
    /// How long a call may wait for approval, in seconds.
    pub approval_ttl_secs: u64,
}

impl ToolSpec {
    /// Checks every bound (the schema itself is checked by the kernel, which compiles
    /// it).
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_tool_name(&self.name)?;
        check_chars(
            "tool description",
            &self.description,
            MAX_TOOL_DESCRIPTION_CHARS,
        )?;
        check_bytes(
            "tool input schema",
            json_len(&self.input_schema),
            MAX_TOOL_SCHEMA_BYTES,
        )?;
        check_range("tool timeout_ms", self.timeout_ms, 1, MAX_TOOL_TIMEOUT_MS)?;
        check_range(
            "tool approval_ttl_secs",
            self.approval_ttl_secs,
            1,
            MAX_APPROVAL_TTL_SECS,
        )
    }
}

/// A tool name: 1 to [`MAX_TOOL_NAME_CHARS`] ASCII letters, digits and `._-`, not
/// starting with a punctuation mark (so `tool:<name>` is a valid permission).
pub fn check_tool_name(name: &str) -> Result<(), ValidationError> {
    check_text("tool name", name, MAX_TOOL_NAME_CHARS)?;
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if !ok {
        return Err(ValidationError::BadCharacter {
            field: "tool name",
            reason: "only ASCII letters, digits and ._- are allowed, starting with a letter or digit",
        });
    }
    Ok(())
}

fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ValidationError> {
    if !(min..=max).contains(&value) {
        return Err(ValidationError::OutOfRange {
            field,
            actual: value,
            min,
            max,
        });
    }
    Ok(())
}

/// The length of `value` as compact JSON.
pub fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Checks a call's input: at most [`MAX_TOOL_INPUT_BYTES`] of JSON.
pub fn check_tool_input(input: &serde_json::Value) -> Result<(), ValidationError> {
    check_bytes("tool input", json_len(input), MAX_TOOL_INPUT_BYTES)
}

/// The hash a call's input is known by (and an approval is bound to): BLAKE3 of its
/// compact JSON, as the call event records it, in 64 hex digits. Computed once, by
/// the kernel, when the call is decided; never recomputed on replay.
pub type InputHash = String;

/// Checks an approval's reason.
pub fn check_approval_reason(reason: &str) -> Result<(), ValidationError> {
    check_chars("approval reason", reason, MAX_APPROVAL_REASON_CHARS)
}

/// The event that opens a call (`tool.called`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The call's id (derived from its log position).
    pub call: EntityId,
    /// The agent the call is made for.
    pub agent: EntityId,
    /// The agent that sent it (the token's subject): the agent itself or one with
    /// scope over it.
    pub origin: EntityId,
    /// The tool.
    pub tool: String,
    /// The exact input.
    pub input: serde_json::Value,
    /// BLAKE3 of the input's compact JSON, 64 hex digits.
    pub input_hash: InputHash,
    /// Whether it waits for approval.
    pub awaiting_approval: bool,
    /// Until when (Unix seconds) it may wait for approval; then it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<u64>,
}

/// How a run ended, as the executor reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolResult {
    /// The tool returned this output.
    Ok {
        /// The output (at most [`MAX_TOOL_OUTPUT_BYTES`] of JSON).
        output: serde_json::Value,
    },
    /// The tool failed, was refused by its sandbox, or timed out.
    Error {
        /// Why, for the caller.
        error: String,
    },
}

impl ToolResult {
    /// A failure with this reason, cut to [`MAX_TOOL_ERROR_CHARS`].
    pub fn error(reason: impl Into<String>) -> Self {
        let mut error: String = reason.into();
        if error.chars().count() > MAX_TOOL_ERROR_CHARS {
            error = error.chars().take(MAX_TOOL_ERROR_CHARS).collect();
        }
        if error.is_empty() {
            error = "the tool failed without a reason".into();
        }
        Self::Error { error }
    }

    /// An output, or a failure if it is larger than [`MAX_TOOL_OUTPUT_BYTES`].
    pub fn output(output: serde_json::Value) -> Self {
        let len = json_len(&output);
        if len > MAX_TOOL_OUTPUT_BYTES {
            return Self::error(format!(
                "the tool's output is {len} bytes of JSON, limit {MAX_TOOL_OUTPUT_BYTES}"
            ));
        }
        Self::Ok { output }
    }

    /// Whether it succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }

    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::Ok { output } => {
                check_bytes("tool output", json_len(output), MAX_TOOL_OUTPUT_BYTES)
            }
            Self::Error { error } => check_text("tool error", error, MAX_TOOL_ERROR_CHARS),
        }
    }
}

/// Where a call is in its life:
/// `awaiting_approval → ready → running → succeeded | failed`, with `denied` and
/// `expired` from `awaiting_approval`, and `abandoned` from `running` (the node died
/// while a tool that must not repeat was running: the outcome is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Waiting for an approver.
    AwaitingApproval,
    /// Approved (or needing no approval), not started yet.
    Ready,
    /// Started by the executor of a node.
    Running,
    /// The tool returned an output.
    Succeeded,
    /// The tool failed, or timed out.
    Failed,
    /// An approver refused it.
    Denied,
    /// Nobody approved it in time.
    Expired,
    /// Its node died while it ran and it must not repeat: the outcome is unknown.
    Abandoned,
}

impl CallStatus {
    /// Whether the call can still change.
    pub fn is_open(self) -> bool {
        matches!(self, Self::AwaitingApproval | Self::Ready | Self::Running)
    }

    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: "d".into(),
            input_schema: serde_json::json!({"type": "object"}),
            approval: ApprovalPolicy::Never,
            retry: RetryPolicy::Repeatable,
            timeout_ms: 1000,
            approval_ttl_secs: 60,
        }
    }

    #[test]
    fn tool_names_are_permission_safe() {
        for good in ["fs.read", "exec.git-status", "mcp.github.list_issues", "a"] {
            assert!(check_tool_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_TOOL_NAME_CHARS + 1);
        for bad in ["", ".x", "fs read", "fs:*", "fs/../x", "é", long.as_str()] {
            assert!(check_tool_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_bounds() {
        assert!(spec("fs.read").validate().is_ok());
        let mut s = spec("fs.read");
        s.timeout_ms = 0;
        assert!(s.validate().is_err());
        let mut s = spec("fs.read");
        s.approval_ttl_secs = MAX_APPROVAL_TTL_SECS + 1;
        assert!(s.validate().is_err());
    }

    #[test]
    fn outputs_are_bounded() {
        let big = serde_json::Value::String("x".repeat(MAX_TOOL_OUTPUT_BYTES));
        assert!(!ToolResult::output(big).is_ok());
        assert!(ToolResult::output(serde_json::json!({"a": 1})).is_ok());
        assert!(ToolResult::error("").validate().is_ok());
        let long = ToolResult::error("e".repeat(MAX_TOOL_ERROR_CHARS * 2));
        assert!(long.validate().is_ok());
    }

    #[test]
    fn json_len_counts_compact_bytes() {
        assert_eq!(
            json_len(&serde_json::json!({"a": [1, 2]})),
            r#"{"a":[1,2]}"#.len()
        );
    }
}
