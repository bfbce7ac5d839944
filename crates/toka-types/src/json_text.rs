//! [`JsonText`]: a JSON value from outside (a task's input, a task's output), kept as
//! its compact text within a byte limit.
//!
//! Kept as text so values stay hashable and cheap to clone, and so replay reads back
//! exactly the bytes that were decided; it serialises as the JSON value itself.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::ValidationError;

/// A JSON value as compact text, at most the limit it was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// `value`'s compact text, if it is at most `limit` bytes (`field` names it in the
    /// error).
    pub fn new(
        value: &serde_json::Value,
        field: &'static str,
        limit: usize,
    ) -> Result<Self, ValidationError> {
        let text = value.to_string();
        if text.len() > limit {
            return Err(ValidationError::TooLarge {
                field,
                actual: text.len(),
                limit,
            });
        }
        Ok(Self(text.into()))
    }

    /// The compact text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        serde_json::from_str::<serde_json::Value>(&self.0)
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

/// Reads a value without a bound: the owner checks it (see `TaskSpec`, `TaskOutcome`).
impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Self(value.to_string().into()))
    }
}
