//! The data of Toka's deterministic core: identifiers, the operations an agent may ask
//! for, the [`Message`] that carries one, and the [`KernelEvent`]s the kernel turns
//! accepted messages into.
//!
//! This crate is only data, limits and validation. It does not decide anything (that is
//! `toka-kernel`), check tokens (`toka-auth`) or store anything (`toka-store-*`).
//!
//! Every value that comes from outside is bounded. The limits live in [`limits`]; the
//! constructors enforce them, and so does deserialisation: a [`TaskSpec`] read from JSON
//! with a 5 000-byte description is refused by `serde` itself, never built.
//!
//! ```
//! use toka_types::{EntityId, Message, Operation, TaskSpec};
//!
//! let agent: EntityId = "00000000-0000-0000-0000-00000000002a".parse()?;
//! let task = TaskSpec::new("summarise the incident report")?;
//! let msg = Message::new(agent, "<jwt>", Operation::ScheduleAgentTask { agent, task });
//! msg.validate()?;
//! assert!(TaskSpec::new("x".repeat(5000)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod budget;
mod bytes;
mod error;
mod event;
mod id;
mod json_text;
pub mod limits;
mod message;
pub mod model;
mod operation;
mod spec;
mod tag_first;
mod time;
mod token;
pub mod tool;
pub mod whole;

pub use budget::{Budget, BudgetKind, Spend};
pub use error::ValidationError;
pub use event::{IdempotencyRecord, KernelEvent, TaskState};
pub use id::{EntityId, Hyphenated, ParseIdError};
pub use json_text::JsonText;
pub use message::Message;
pub use model::ModelStep;
pub use operation::Operation;
pub use spec::{AgentSpec, ExtensionCall, Observation, TaskOutcome, TaskSpec};
pub use time::Timestamp;
pub use token::{
    IssuedToken, PERMISSION_PUNCTUATION, Scope, TokenGrant, TokenRenewal, check_permission_name,
};
pub use tool::{
    ApprovalPolicy, CallStatus, RetryPolicy, ToolCall, ToolResult, ToolSpec, check_tool_name,
};

/// Levenshtein distance between two short words (for "did you mean" hints).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}
