//! Renewal: how a token outlives its expiry without widening anything.
//!
//! The holder of a valid token asks for `renew_token`; the kernel issues a new token
//! of the same *renewal family*: same subject, scope, issuer, lineage and budget, the
//! same permissions or fewer, and a fresh expiry. The new token names the family's
//! first token (`renewal_of`), so:
//!
//! * a family shares one budget: every spend debits the family's first token too, and
//!   what a member has left is bounded by what the family has left;
//! * revoking any member revokes the whole family, and with it every token issued by
//!   any member (see [`WorldState::is_revoked`]);
//! * expiry does not cascade (validation checks a token's own `exp` and its lineage's
//!   revocations), so a renewed parent's children keep working until their own expiry,
//!   and renew on their own.
//!
//! What bounds it all is the *chain lifetime*: no token is issued past the issuance of
//! its chain's root token plus [`Context::chain_lifetime_secs`]. After that, the
//! operator mints a fresh root token and delegates again.
//!
//! Invariant 14: every `renewal_of` names a token the log issued, which is itself the
//! first of its family, with the same subject.

use toka_auth::Claims;
use toka_types::limits::MAX_TOKEN_LIFETIME_SECS;
use toka_types::{IssuedToken, KernelEvent, TokenRenewal};

use crate::context::Context;
use crate::error::KernelError;
use crate::state::WorldState;

/// When the chain of `token` began: the first issuance of its chain's root family.
pub fn chain_start(state: &WorldState, token: &IssuedToken) -> u64 {
    let root = token.lineage.first().map_or(token.family(), String::as_str);
    let root = state.family_of(root);
    state.tokens.get(root).map_or(token.iat, |t| t.iat)
}

/// Decides `renew_token` for the bearer of `claims`.
pub(crate) fn renew(
    state: &WorldState,
    claims: &Claims,
    renewal: &TokenRenewal,
    jti: String,
    ctx: &Context,
) -> Result<Vec<KernelEvent>, KernelError> {
    let current = state
        .tokens
        .get(&claims.jti)
        .ok_or_else(|| KernelError::RenewUnknownToken {
            jti: claims.jti.clone(),
        })?;
    crate::decide::live_agent(state, current.sub)?;
    let permissions = match &renewal.permissions {
        None => current.permissions.clone(),
        Some(asked) => {
            if let Some(extra) = asked.iter().find(|p| !claims.allows(p)) {
                return Err(KernelError::Delegation(
                    toka_auth::AuthError::PermissionEscalation {
                        permission: extra.clone(),
                    },
                ));
            }
            asked.clone()
        }
    };
    let iat = ctx.now.as_unix_secs();
    let started = chain_start(state, current);
    let deadline = started.saturating_add(ctx.chain_lifetime_secs);
    let ttl = renewal
        .ttl_secs
        .unwrap_or_else(|| current.exp.saturating_sub(current.iat))
        .clamp(1, MAX_TOKEN_LIFETIME_SECS);
    let exp = iat.saturating_add(ttl).min(deadline);
    if exp <= iat {
        return Err(KernelError::ChainLifetimeExceeded {
            jti: claims.jti.clone(),
            started,
            max_secs: ctx.chain_lifetime_secs,
        });
    }
    Ok(vec![KernelEvent::TokenIssued(IssuedToken {
        jti,
        sub: current.sub,
        permissions,
        scope: current.scope,
        iat,
        exp,
        parent: current.parent.clone(),
        lineage: current.lineage.clone(),
        issuer: current.issuer,
        kid: None,
        budget: current.budget,
        renewal_of: Some(current.family().to_string()),
    })])
}

/// Invariant 14 (see the module docs): the first token that breaks it, described.
pub(crate) fn check(state: &WorldState) -> Result<(), String> {
    for token in state.tokens.values() {
        let Some(first) = &token.renewal_of else {
            continue;
        };
        let ok = state
            .tokens
            .get(first)
            .is_some_and(|f| f.renewal_of.is_none() && f.sub == token.sub);
        if !ok {
            return Err(format!(
                "token {} renews {first}, which is not the first token of a family of {}",
                token.jti, token.sub
            ));
        }
    }
    Ok(())
}
