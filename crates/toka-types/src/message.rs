//! [`Message`]: an operation, who asks for it, and the token that allows it.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, check_bytes, check_text};
use crate::id::EntityId;
use crate::limits::{MAX_IDEMPOTENCY_KEY_BYTES, MAX_TOKEN_BYTES};
use crate::operation::Operation;

/// A request to the kernel: `origin` asks for `operation` under the capability token
/// `capability` (a JWT whose `sub` must be `origin`).
///
/// The token never reaches the log: events record the token's `jti` only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// The agent that sends the message.
    pub origin: EntityId,
    /// The capability token (a compact JWT), at most [`MAX_TOKEN_BYTES`].
    pub capability: String,
    /// What it asks for.
    pub operation: Operation,
    /// Makes retries safe: a second message from the same origin with the same key and
    /// operation gets the first one's answer and writes nothing; with another
    /// operation it is refused. 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl std::fmt::Debug for Message {
    // Never print the token: it is a bearer credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("origin", &self.origin)
            .field(
                "capability",
                &format_args!("<{} bytes>", self.capability.len()),
            )
            .field("operation", &self.operation)
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

impl Message {
    /// A message; call [`Message::validate`] before trusting it.
    pub fn new(origin: EntityId, capability: impl Into<String>, operation: Operation) -> Self {
        Self {
            origin,
            capability: capability.into(),
            operation,
            idempotency_key: None,
        }
    }

    /// The same message, made safe to retry under `key`.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Checks the token size and every bound of the operation.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.capability.is_empty() {
            return Err(ValidationError::Empty {
                field: "capability token",
            });
        }
        check_bytes("capability token", self.capability.len(), MAX_TOKEN_BYTES)?;
        if let Some(key) = &self.idempotency_key {
            check_text("idempotency key", key, MAX_IDEMPOTENCY_KEY_BYTES)?;
        }
        self.operation.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_size_bounded() {
        let op = Operation::TerminateAgent {
            agent: EntityId::from_u128(1),
        };
        let msg = Message::new(
            EntityId::from_u128(1),
            "t".repeat(MAX_TOKEN_BYTES + 1),
            op.clone(),
        );
        assert_eq!(
            msg.validate().unwrap_err(),
            ValidationError::TooLarge {
                field: "capability token",
                actual: 8193,
                limit: 8192
            }
        );
        assert!(
            Message::new(EntityId::from_u128(1), "", op.clone())
                .validate()
                .is_err()
        );
        assert!(
            Message::new(EntityId::from_u128(1), "t.t.t", op)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn debug_hides_token() {
        let msg = Message::new(
            EntityId::from_u128(1),
            "secret-token",
            Operation::TerminateAgent {
                agent: EntityId::from_u128(1),
            },
        );
        assert!(!format!("{msg:?}").contains("secret-token"));
    }
}
