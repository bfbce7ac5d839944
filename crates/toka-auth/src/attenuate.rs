//! [`attenuate`]: derive a child token's claims from its parent's, never wider.
//!
//! A child gets a subset of the parent's permissions, an expiry no later than the
//! parent's, and a scope inside the parent's scope. Whether one agent subtree lies
//! inside another depends on the agent tree, which only the caller (the kernel state)
//! knows, so the caller passes that test in.

use toka_types::EntityId;
use toka_types::limits::MAX_ATTENUATION_DEPTH;

use toka_types::Scope;

use crate::claims::Claims;
use crate::error::AuthError;

/// What a child token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildGrant {
    /// The agent the child token is for.
    pub sub: EntityId,
    /// A fresh, unique id for the child token.
    pub jti: String,
    /// When it is issued.
    pub iat: u64,
    /// When it expires (no later than the parent's `exp`).
    pub exp: u64,
    /// What it allows (a subset of the parent's).
    pub permissions: Vec<String>,
    /// Which agents it acts on; `None` means the child's own subtree, which must lie
    /// inside the parent's scope like any other.
    pub scope: Option<Scope>,
}

/// The claims of a child token for `grant`, derived from `parent`, or the reason it
/// would be wider than its parent.
///
/// `is_within(descendant, ancestor)` must say whether agent `descendant` is `ancestor`
/// or one of its descendants.
pub fn attenuate(
    parent: &Claims,
    grant: ChildGrant,
    is_within: impl Fn(EntityId, EntityId) -> bool,
) -> Result<Claims, AuthError> {
    if let Some(permission) = grant.permissions.iter().find(|p| !parent.allows(p)) {
        return Err(AuthError::PermissionEscalation {
            permission: permission.clone(),
        });
    }
    if grant.exp > parent.exp {
        return Err(AuthError::ExpiryExtension {
            child: grant.exp,
            parent: parent.exp,
        });
    }
    let child_scope = grant.scope.unwrap_or(Scope::Subtree(grant.sub));
    let parent_scope = parent.effective_scope();
    let inside = match (child_scope, parent_scope) {
        (_, Scope::All) => true,
        (Scope::All, Scope::Subtree(_)) => false,
        (Scope::Subtree(c), Scope::Subtree(p)) => is_within(c, p),
    };
    if !inside {
        return Err(AuthError::ScopeWidening {
            child: child_scope.to_string(),
            parent: parent_scope.to_string(),
        });
    }
    let mut lineage = parent.lineage.clone();
    lineage.push(parent.jti.clone());
    if lineage.len() > MAX_ATTENUATION_DEPTH {
        return Err(AuthError::AttenuationTooDeep {
            depth: lineage.len(),
            limit: MAX_ATTENUATION_DEPTH,
        });
    }
    let child = Claims {
        sub: grant.sub,
        iat: grant.iat,
        exp: grant.exp,
        nbf: parent.nbf.filter(|nbf| *nbf > grant.iat),
        jti: grant.jti,
        permissions: crate::permissions::names(grant.permissions),
        scope: grant.scope,
        parent: Some(parent.jti.clone()),
        lineage,
    };
    child.check_rules()?;
    Ok(child)
}
