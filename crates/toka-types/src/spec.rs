//! The bounded values inside operations: task and agent specs, observations, task
//! outcomes and extension calls.
//!
//! Each type can only be built through a checking constructor, and deserialisation goes
//! through the same check (`#[serde(try_from)]`), so holding one means it is valid.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{ValidationError, check_bytes, check_chars, check_text};
use crate::json_text::JsonText;
use crate::limits::{
    MAX_AGENT_NAME_CHARS, MAX_EXTENSION_FAMILY_BYTES, MAX_EXTENSION_PAYLOAD_BYTES,
    MAX_OBSERVATION_BYTES, MAX_TASK_DESCRIPTION_CHARS, MAX_TASK_RESULT_CHARS,
};

/// What a task asks an agent to do: a non-empty description of at most
/// [`MAX_TASK_DESCRIPTION_CHARS`]. Cheap to clone (shared text): the kernel copies it
/// into an event and into the state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawTaskSpec", deny_unknown_fields)]
pub struct TaskSpec {
    #[serde(serialize_with = "serialize_shared")]
    description: Arc<str>,
    /// Tasks that must end before this one may be claimed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    waits_for: Vec<crate::EntityId>,
    /// Structured input beside the description (at most
    /// [`crate::limits::MAX_TASK_INPUT_BYTES`] of compact JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input: Option<JsonText>,
}

fn serialize_shared<S: Serializer>(text: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaskSpec {
    description: String,
    #[serde(default)]
    waits_for: Vec<crate::EntityId>,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

impl TryFrom<RawTaskSpec> for TaskSpec {
    type Error = ValidationError;
    fn try_from(raw: RawTaskSpec) -> Result<Self, Self::Error> {
        let spec = Self::new(raw.description)?.waiting_for(raw.waits_for)?;
        match raw.input {
            None | Some(serde_json::Value::Null) => Ok(spec),
            Some(input) => spec.with_input(&input),
        }
    }
}

impl TaskSpec {
    /// A task with this description, if it is non-empty and within the limit.
    pub fn new(description: impl Into<String>) -> Result<Self, ValidationError> {
        let description = description.into();
        check_text("task description", &description, MAX_TASK_DESCRIPTION_CHARS)?;
        Ok(Self {
            description: description.into(),
            waits_for: Vec::new(),
            input: None,
        })
    }

    /// This task, carrying `input` (at most
    /// [`MAX_TASK_INPUT_BYTES`](crate::limits::MAX_TASK_INPUT_BYTES) of compact JSON).
    pub fn with_input(mut self, input: &serde_json::Value) -> Result<Self, ValidationError> {
        self.input = Some(JsonText::new(
            input,
            "task input",
            crate::limits::MAX_TASK_INPUT_BYTES,
        )?);
        Ok(self)
    }

    /// The structured input, as compact JSON text.
    pub fn input_text(&self) -> Option<&str> {
        self.input.as_ref().map(JsonText::as_str)
    }

    /// The structured input.
    pub fn input(&self) -> Option<serde_json::Value> {
        self.input.as_ref().map(JsonText::value)
    }

    /// This task, waiting for `tasks` to end before it may be claimed (at most
    /// [`crate::limits::MAX_TASK_WAITS`], no repeats).
    pub fn waiting_for(mut self, tasks: Vec<crate::EntityId>) -> Result<Self, ValidationError> {
        let limit = crate::limits::MAX_TASK_WAITS;
        if tasks.len() > limit {
            return Err(ValidationError::TooMany {
                field: "waits_for",
                actual: tasks.len(),
                limit,
            });
        }
        let distinct: std::collections::BTreeSet<_> = tasks.iter().collect();
        if distinct.len() != tasks.len() {
            return Err(ValidationError::BadCharacter {
                field: "waits_for",
                reason: "a task is named twice",
            });
        }
        self.waits_for = tasks;
        Ok(self)
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The tasks this one waits for.
    pub fn waits_for(&self) -> &[crate::EntityId] {
        &self.waits_for
    }
}

/// How an agent is to be created: a non-empty name of at most [`MAX_AGENT_NAME_CHARS`]
/// without control characters (names are printed in terminals and logs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawAgentSpec", deny_unknown_fields)]
pub struct AgentSpec {
    #[serde(serialize_with = "serialize_shared")]
    name: Arc<str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgentSpec {
    name: String,
}

impl TryFrom<RawAgentSpec> for AgentSpec {
    type Error = ValidationError;
    fn try_from(raw: RawAgentSpec) -> Result<Self, Self::Error> {
        Self::new(raw.name)
    }
}

impl AgentSpec {
    /// An agent spec with this name, if it is valid.
    pub fn new(name: impl Into<String>) -> Result<Self, ValidationError> {
        let name = name.into();
        check_text("agent name", &name, MAX_AGENT_NAME_CHARS)?;
        if name.chars().any(char::is_control) {
            return Err(ValidationError::BadCharacter {
                field: "agent name",
                reason: "control characters are not allowed",
            });
        }
        Ok(Self { name: name.into() })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Bytes an agent reports about what it saw or did, at most [`MAX_OBSERVATION_BYTES`].
/// Base64 in JSON.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "RawBytes")]
pub struct Observation(Vec<u8>);

#[derive(Deserialize)]
#[serde(transparent)]
struct RawBytes(#[serde(with = "crate::bytes")] Vec<u8>);

impl TryFrom<RawBytes> for Observation {
    type Error = ValidationError;
    fn try_from(raw: RawBytes) -> Result<Self, Self::Error> {
        Self::new(raw.0)
    }
}

impl Serialize for Observation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::bytes::serialize(&self.0, serializer)
    }
}

impl std::fmt::Debug for Observation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observation({} bytes)", self.0.len())
    }
}

impl Observation {
    /// An observation holding `data`, if it is within the limit.
    pub fn new(data: impl Into<Vec<u8>>) -> Result<Self, ValidationError> {
        let data = data.into();
        check_bytes("observation", data.len(), MAX_OBSERVATION_BYTES)?;
        Ok(Self(data))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// How a claimed task ended. A result may be empty; a failure must give a reason.
/// Both are at most [`MAX_TASK_RESULT_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawTaskOutcome", rename_all = "snake_case", tag = "status")]
pub enum TaskOutcome {
    /// The task was done; `result` says what came of it, `output` (if any) in JSON.
    Success {
        /// What came of it.
        result: String,
        /// What came of it as data (at most
        /// [`MAX_TASK_OUTPUT_BYTES`](crate::limits::MAX_TASK_OUTPUT_BYTES)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<JsonText>,
    },
    /// The task could not be done; `reason` says why.
    Failure {
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", deny_unknown_fields)]
enum RawTaskOutcome {
    Success {
        result: String,
        #[serde(default)]
        output: Option<serde_json::Value>,
    },
    Failure {
        reason: String,
    },
}

impl TryFrom<RawTaskOutcome> for TaskOutcome {
    type Error = ValidationError;
    fn try_from(raw: RawTaskOutcome) -> Result<Self, Self::Error> {
        match raw {
            RawTaskOutcome::Success {
                result,
                output: None | Some(serde_json::Value::Null),
            } => Self::success(result),
            RawTaskOutcome::Success {
                result,
                output: Some(output),
            } => Self::success_with_output(result, &output),
            RawTaskOutcome::Failure { reason } => Self::failure(reason),
        }
    }
}

impl TaskOutcome {
    /// A success with this result (which may be empty).
    pub fn success(result: impl Into<String>) -> Result<Self, ValidationError> {
        let result = result.into();
        check_chars("task result", &result, MAX_TASK_RESULT_CHARS)?;
        Ok(Self::Success {
            result,
            output: None,
        })
    }

    /// A success with this result and structured `output`.
    pub fn success_with_output(
        result: impl Into<String>,
        output: &serde_json::Value,
    ) -> Result<Self, ValidationError> {
        let result = result.into();
        check_chars("task result", &result, MAX_TASK_RESULT_CHARS)?;
        Ok(Self::Success {
            result,
            output: Some(JsonText::new(
                output,
                "task output",
                crate::limits::MAX_TASK_OUTPUT_BYTES,
            )?),
        })
    }

    /// A failure for this (non-empty) reason.
    pub fn failure(reason: impl Into<String>) -> Result<Self, ValidationError> {
        let reason = reason.into();
        check_text("failure reason", &reason, MAX_TASK_RESULT_CHARS)?;
        Ok(Self::Failure { reason })
    }

    /// Whether the task succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success { .. })
    }

    /// Checks the limits again (for values built before a limit changed, or by hand).
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::Success { result, output } => {
                check_chars("task result", result, MAX_TASK_RESULT_CHARS)?;
                match output {
                    Some(o) if o.as_str().len() > crate::limits::MAX_TASK_OUTPUT_BYTES => {
                        Err(ValidationError::TooLarge {
                            field: "task output",
                            actual: o.as_str().len(),
                            limit: crate::limits::MAX_TASK_OUTPUT_BYTES,
                        })
                    }
                    _ => Ok(()),
                }
            }
            Self::Failure { reason } => check_text("failure reason", reason, MAX_TASK_RESULT_CHARS),
        }
    }
}

/// A call to an extension opcode handler registered with the kernel: a `family` name
/// (lowercase ASCII letters, digits, `.`, `_`, `-`; at most [`MAX_EXTENSION_FAMILY_BYTES`]),
/// an `opcode` within it, and an opaque payload of at most [`MAX_EXTENSION_PAYLOAD_BYTES`].
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawExtensionCall", deny_unknown_fields)]
pub struct ExtensionCall {
    family: String,
    opcode: u16,
    #[serde(with = "crate::bytes")]
    payload: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtensionCall {
    family: String,
    #[serde(deserialize_with = "crate::whole::u16")]
    opcode: u16,
    #[serde(with = "crate::bytes")]
    payload: Vec<u8>,
}

impl TryFrom<RawExtensionCall> for ExtensionCall {
    type Error = ValidationError;
    fn try_from(raw: RawExtensionCall) -> Result<Self, Self::Error> {
        Self::new(raw.family, raw.opcode, raw.payload)
    }
}

impl std::fmt::Debug for ExtensionCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ExtensionCall({}/{}, {} bytes)",
            self.family,
            self.opcode,
            self.payload.len()
        )
    }
}

impl ExtensionCall {
    /// An extension call, if the family name and payload are valid.
    pub fn new(
        family: impl Into<String>,
        opcode: u16,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Self, ValidationError> {
        let family = family.into();
        let payload = payload.into();
        check_text("extension family", &family, MAX_EXTENSION_FAMILY_BYTES)?;
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if !family.chars().all(allowed) {
            return Err(ValidationError::BadCharacter {
                field: "extension family",
                reason: "only a-z, 0-9, '.', '_' and '-' are allowed",
            });
        }
        check_bytes(
            "extension payload",
            payload.len(),
            MAX_EXTENSION_PAYLOAD_BYTES,
        )?;
        Ok(Self {
            family,
            opcode,
            payload,
        })
    }

    /// The handler family.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// The opcode within the family.
    pub fn opcode(&self) -> u16 {
        self.opcode
    }

    /// The opaque payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_description_bounds() {
        assert!(TaskSpec::new("a".repeat(MAX_TASK_DESCRIPTION_CHARS)).is_ok());
        let err = TaskSpec::new("a".repeat(MAX_TASK_DESCRIPTION_CHARS + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task description is 4097 characters, limit 4096"
        );
        // Characters, not bytes: 4096 four-byte characters fit.
        assert!(TaskSpec::new("𝄞".repeat(MAX_TASK_DESCRIPTION_CHARS)).is_ok());
        assert_eq!(
            TaskSpec::new("").unwrap_err(),
            ValidationError::Empty {
                field: "task description"
            }
        );
    }

    #[test]
    fn agent_name_bounds() {
        assert!(AgentSpec::new("n".repeat(MAX_AGENT_NAME_CHARS)).is_ok());
        assert!(matches!(
            AgentSpec::new("n".repeat(MAX_AGENT_NAME_CHARS + 1)),
            Err(ValidationError::TooLong { limit: 256, .. })
        ));
        assert!(matches!(
            AgentSpec::new("bad\nname"),
            Err(ValidationError::BadCharacter { .. })
        ));
        assert!(matches!(
            AgentSpec::new(""),
            Err(ValidationError::Empty { .. })
        ));
    }

    #[test]
    fn observation_bounds() {
        assert!(Observation::new(vec![0u8; MAX_OBSERVATION_BYTES]).is_ok());
        assert!(Observation::new(vec![0u8; MAX_OBSERVATION_BYTES + 1]).is_err());
    }

    #[test]
    fn deserialisation_validates() {
        let long = format!(r#"{{"description":"{}"}}"#, "a".repeat(5000));
        let err = serde_json::from_str::<TaskSpec>(&long).unwrap_err();
        assert!(
            err.to_string()
                .contains("task description is 5000 characters, limit 4096"),
            "{err}"
        );
        assert!(serde_json::from_str::<AgentSpec>(r#"{"name":""}"#).is_err());
        assert!(serde_json::from_str::<AgentSpec>(r#"{"name":"a","extra":1}"#).is_err());
        assert!(
            serde_json::from_str::<TaskOutcome>(r#"{"status":"failure","reason":""}"#).is_err()
        );
        assert!(
            serde_json::from_str::<ExtensionCall>(
                r#"{"family":"Bad Family","opcode":1,"payload":""}"#
            )
            .is_err()
        );
        let ok: TaskOutcome = serde_json::from_str(r#"{"status":"success","result":""}"#).unwrap();
        assert!(ok.is_success());
    }

    #[test]
    fn observation_is_base64_in_json() {
        let obs = Observation::new(b"hello".to_vec()).unwrap();
        let json = serde_json::to_string(&obs).unwrap();
        assert_eq!(json, r#""aGVsbG8=""#);
        assert_eq!(serde_json::from_str::<Observation>(&json).unwrap(), obs);
        assert!(serde_json::from_str::<Observation>(r#""not base64!""#).is_err());
    }
}
