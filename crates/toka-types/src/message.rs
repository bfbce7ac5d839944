//! [`Message`]: an operation, who asks for it, and the token that allows it.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, check_text};
use crate::id::EntityId;
use crate::limits::MAX_TOKEN_BYTES;
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
        }
    }

    /// Checks the token size and every bound of the operation.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("capability token", &self.capability, MAX_TOKEN_BYTES)?;
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
