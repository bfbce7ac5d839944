//! Extension opcodes: operations defined outside the kernel, decided and applied by
//! handlers that each kernel instance registers (there is no global registry).
//!
//! A handler owns one *family* (`Operation::Extension` calls whose `family` matches).
//! Like the kernel it is split in two: `decide` looks at the family's state and a call
//! and returns the events to record (or refuses); `apply` folds one of those events into
//! the family's state and never fails. A family's state is a key-value map inside the
//! [`WorldState`](crate::WorldState), so it is covered by the digest, snapshots and
//! replay like everything else.
//!
//! The caller's token must grant `ext:<family>`; scope does not apply (the kernel does
//! not know what an extension's payload refers to).

use std::collections::BTreeMap;
use std::sync::Arc;

use toka_types::{EntityId, ExtensionCall};

use crate::context::Context;
use crate::state::ExtensionState;

/// Why a handler refused a call; becomes
/// [`KernelError::ExtensionRefused`](crate::KernelError::ExtensionRefused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ExtensionRefusal {
    /// What was wrong with the call.
    pub reason: String,
}

impl ExtensionRefusal {
    /// A refusal for `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A handler of one extension family. Must be deterministic: the same state, call,
/// origin and context always give the same answer.
pub trait OpcodeHandler: Send + Sync {
    /// The family it handles.
    fn family(&self) -> &str;

    /// The events (of this family) that `call` from `origin` causes, or a refusal.
    fn decide(
        &self,
        state: &ExtensionState,
        call: &ExtensionCall,
        origin: EntityId,
        ctx: &Context,
    ) -> Result<Vec<ExtensionCall>, ExtensionRefusal>;

    /// Folds one event that `decide` returned into the state. Never fails.
    fn apply(&self, state: &mut ExtensionState, event: &ExtensionCall);
}

/// Checks tool inputs against JSON Schemas, for the rule "the input matches the tool's
/// schema". Plugged in by the node (the kernel itself draws in no schema engine: the
/// well-kept ones hash with random seeds and pull in far more than the core allows).
/// Must be deterministic: the same schema and input always give the same answer, and
/// it must never fetch anything (a remote `$ref` is an error).
pub trait SchemaCheck: Send + Sync {
    /// Whether `schema` is a usable JSON Schema; why not otherwise.
    fn compile(&self, schema: &serde_json::Value) -> Result<(), String>;

    /// The errors of `input` against `schema`, at most `limit` (empty: valid). Each
    /// should say where in the input it is.
    fn errors(
        &self,
        schema: &serde_json::Value,
        input: &serde_json::Value,
        limit: usize,
    ) -> Vec<String>;
}

/// What one kernel instance has plugged in: extension handlers by family and the
/// tool schema check. Cheap to clone.
#[derive(Clone, Default)]
pub struct OpcodeRegistry {
    handlers: BTreeMap<String, Arc<dyn OpcodeHandler>>,
    schemas: Option<Arc<dyn SchemaCheck>>,
}

impl std::fmt::Debug for OpcodeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.handlers.keys()).finish()
    }
}

impl OpcodeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `handler`; refused if its family already has one.
    pub fn register(&mut self, handler: Arc<dyn OpcodeHandler>) -> Result<(), crate::KernelError> {
        let family = handler.family().to_string();
        if self.handlers.contains_key(&family) {
            return Err(crate::KernelError::DuplicateExtension { family });
        }
        self.handlers.insert(family, handler);
        Ok(())
    }

    /// The handler of `family`.
    pub fn get(&self, family: &str) -> Option<&Arc<dyn OpcodeHandler>> {
        self.handlers.get(family)
    }

    /// Checks tool inputs with `check` from now on.
    pub fn set_schema_check(&mut self, check: Arc<dyn SchemaCheck>) {
        self.schemas = Some(check);
    }

    /// The tool schema check, if one is plugged in (without one, every tool call and
    /// every tool registration is refused).
    pub fn schema_check(&self) -> Option<&Arc<dyn SchemaCheck>> {
        self.schemas.as_ref()
    }

    /// The registered families, sorted.
    pub fn families(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}
