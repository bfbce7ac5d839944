//! [`Budget`]: what a token may spend, carried in the log with the token's issuance.
//! A token's budget is at most what its issuer's has left (the kernel checks it when
//! it issues the token), and every spend is debited from the token and from each of
//! its ancestors that has a budget, so no descendant can widen what it was given.
//! Lifetime is the token's `exp`.

use serde::{Deserialize, Serialize};

/// Limits on what a token may spend; `None` in a field: no limit of its own (its
/// ancestors' still apply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Model tokens, as the recorded responses report them.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::opt_u64"
    )]
    pub model_tokens: Option<u64>,
    /// Tool calls.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::opt_u64"
    )]
    pub tool_calls: Option<u64>,
    /// Agents spawned.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::opt_u64"
    )]
    pub spawns: Option<u64>,
}

impl Budget {
    /// Whether no field limits anything.
    pub fn is_unlimited(&self) -> bool {
        *self == Self::default()
    }

    /// The limit of `kind`.
    pub fn limit(&self, kind: BudgetKind) -> Option<u64> {
        match kind {
            BudgetKind::ModelTokens => self.model_tokens,
            BudgetKind::ToolCalls => self.tool_calls,
            BudgetKind::Spawns => self.spawns,
        }
    }

    /// This budget with the limit of `kind` set to `value`.
    pub fn with(mut self, kind: BudgetKind, value: Option<u64>) -> Self {
        match kind {
            BudgetKind::ModelTokens => self.model_tokens = value,
            BudgetKind::ToolCalls => self.tool_calls = value,
            BudgetKind::Spawns => self.spawns = value,
        }
        self
    }
}

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BudgetKind {
    /// Model tokens.
    ModelTokens,
    /// Tool calls.
    ToolCalls,
    /// Spawned agents.
    Spawns,
}

impl BudgetKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::ModelTokens, Self::ToolCalls, Self::Spawns];

    /// Its name in errors and JSON (`model_tokens`, `tool_calls`, `spawns`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModelTokens => "model_tokens",
            Self::ToolCalls => "tool_calls",
            Self::Spawns => "spawns",
        }
    }
}

/// What one decision spends, debited from the listed tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    /// The tokens debited: the one that authorised the decision and its ancestors,
    /// those with a budget.
    pub jtis: Vec<String>,
    /// Model tokens.
    #[serde(default)]
    pub model_tokens: u64,
    /// Tool calls.
    #[serde(default)]
    pub tool_calls: u64,
    /// Agents spawned.
    #[serde(default)]
    pub spawns: u64,
}

impl Spend {
    /// The amount of `kind`.
    pub fn amount(&self, kind: BudgetKind) -> u64 {
        match kind {
            BudgetKind::ModelTokens => self.model_tokens,
            BudgetKind::ToolCalls => self.tool_calls,
            BudgetKind::Spawns => self.spawns,
        }
    }
}
