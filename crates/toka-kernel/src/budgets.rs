//! Budgets: what a token may spend (model tokens, tool calls, spawned agents), and
//! what was spent.
//!
//! A token's budget is recorded with its issuance. A decision that spends is allowed
//! only while the authorising token *and every ancestor with a budget* have some left
//! of that kind; it then emits `budget.spent`, debiting each of them. So a parent's
//! remainder always accounts for what its descendants spent, and a child is issued at
//! most what its issuer's chain has left (a limit left out is set to that remainder).
//! Spending can overshoot by the last step (a model answer is paid for once it
//! arrived, and is recorded); the next one is refused with `budget_exhausted`.
//!
//! Invariant 11: every token with spending is one the log issued.

use std::collections::BTreeMap;

use toka_auth::Claims;
use toka_types::{Budget, BudgetKind, KernelEvent, Spend};

use crate::error::KernelError;
use crate::state::WorldState;

/// What one token spent, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spent {
    /// Model tokens.
    pub model_tokens: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Agents spawned.
    pub spawns: u64,
}

impl Spent {
    /// The amount of `kind`.
    pub fn of(&self, kind: BudgetKind) -> u64 {
        match kind {
            BudgetKind::ModelTokens => self.model_tokens,
            BudgetKind::ToolCalls => self.tool_calls,
            BudgetKind::Spawns => self.spawns,
        }
    }

    fn add(&mut self, spend: &Spend) {
        self.model_tokens = self.model_tokens.saturating_add(spend.model_tokens);
        self.tool_calls = self.tool_calls.saturating_add(spend.tool_calls);
        self.spawns = self.spawns.saturating_add(spend.spawns);
    }
}

/// Spending per token `jti`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpentTable {
    pub(crate) by_jti: BTreeMap<String, Spent>,
}

impl SpentTable {
    /// What token `jti` (and its descendants) spent.
    pub fn of(&self, jti: &str) -> Spent {
        self.by_jti.get(jti).copied().unwrap_or_default()
    }

    /// Every token with spending, by `jti`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Spent)> {
        self.by_jti.iter().map(|(j, s)| (j.as_str(), *s))
    }

    /// Whether nothing was ever spent.
    pub fn is_empty(&self) -> bool {
        self.by_jti.is_empty()
    }

    pub(crate) fn apply(&mut self, spend: &Spend) {
        for jti in &spend.jtis {
            self.by_jti.entry(jti.clone()).or_default().add(spend);
        }
    }

    pub(crate) fn from_parts(entries: Vec<(String, Spent)>) -> Self {
        Self {
            by_jti: entries.into_iter().collect(),
        }
    }
}

/// The chain of a token, root first, with the budget each link has in the log.
fn chain<'a>(state: &'a WorldState, claims: &'a Claims) -> impl Iterator<Item = (&'a str, Budget)> {
    links(state, &claims.lineage, &claims.jti)
}

/// The links `lineage` then `jti` that the log issued with a budget, each preceded by
/// the first token of its renewal family (a family shares one budget), once each.
fn links<'a>(
    state: &'a WorldState,
    lineage: &'a [String],
    jti: &'a str,
) -> impl Iterator<Item = (&'a str, Budget)> {
    let mut seen: Vec<&'a str> = Vec::with_capacity(lineage.len() * 2 + 2);
    for link in lineage
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(jti))
    {
        for j in [state.family_of(link), link] {
            if !seen.contains(&j) {
                seen.push(j);
            }
        }
    }
    seen.into_iter()
        .filter_map(|jti| state.tokens.get(jti).map(|t| (jti, t.budget)))
        .filter(|(_, b)| !b.is_unlimited())
}

/// What the token of `claims` has left of `kind`: the smallest remainder along its
/// chain, and the `jti` that sets it; `None` when no link limits `kind`.
pub fn remaining(state: &WorldState, claims: &Claims, kind: BudgetKind) -> Option<(u64, String)> {
    smallest_remainder(state, chain(state, claims), kind)
}

/// [`remaining`] for a token the log issued (read from its issuance, not its claims).
pub fn remaining_of_issued(
    state: &WorldState,
    token: &toka_types::IssuedToken,
    kind: BudgetKind,
) -> Option<(u64, String)> {
    smallest_remainder(state, links(state, &token.lineage, &token.jti), kind)
}

fn smallest_remainder<'a>(
    state: &WorldState,
    links: impl Iterator<Item = (&'a str, Budget)>,
    kind: BudgetKind,
) -> Option<(u64, String)> {
    links
        .filter_map(|(jti, budget)| {
            let limit = budget.limit(kind)?;
            Some((
                limit.saturating_sub(state.spent.of(jti).of(kind)),
                jti.to_string(),
            ))
        })
        .min_by_key(|(left, _)| *left)
}

/// Refuses when the chain has nothing left of `kind`; else the `budget.spent` event
/// of spending `amount` (none when no link has a budget).
pub(crate) fn spend(
    state: &WorldState,
    claims: &Claims,
    kind: BudgetKind,
    amount: u64,
) -> Result<Option<KernelEvent>, KernelError> {
    if let Some((0, jti)) = remaining(state, claims, kind) {
        let limit = state
            .tokens
            .get(&jti)
            .and_then(|t| t.budget.limit(kind))
            .unwrap_or(0);
        return Err(KernelError::BudgetExhausted {
            budget: kind.as_str(),
            jti,
            limit,
        });
    }
    let jtis: Vec<String> = chain(state, claims).map(|(j, _)| j.to_string()).collect();
    if jtis.is_empty() {
        return Ok(None);
    }
    let mut spend = Spend {
        jtis,
        model_tokens: 0,
        tool_calls: 0,
        spawns: 0,
    };
    match kind {
        BudgetKind::ModelTokens => spend.model_tokens = amount,
        BudgetKind::ToolCalls => spend.tool_calls = amount,
        BudgetKind::Spawns => spend.spawns = amount,
    }
    Ok(Some(KernelEvent::BudgetSpent(spend)))
}

/// The budget a token issued by `claims` gets for `asked`: each limit at most what
/// the issuer's chain has left; a limit left out becomes that remainder.
pub(crate) fn attenuate(
    state: &WorldState,
    claims: &Claims,
    asked: Budget,
) -> Result<Budget, KernelError> {
    let mut granted = asked;
    for kind in BudgetKind::ALL {
        let Some((left, _)) = remaining(state, claims, kind) else {
            continue;
        };
        match asked.limit(kind) {
            Some(wanted) if wanted > left => {
                return Err(KernelError::BudgetExceedsIssuer {
                    budget: kind.as_str(),
                    asked: wanted,
                    left,
                });
            }
            Some(_) => {}
            None => granted = granted.with(kind, Some(left)),
        }
    }
    Ok(granted)
}
