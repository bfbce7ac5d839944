//! [`Claims`]: what a capability token says, and the rules every token obeys.

use serde::{Deserialize, Serialize};
use toka_types::limits::{
    MAX_ATTENUATION_DEPTH, MAX_JTI_BYTES, MAX_PERMISSIONS, MAX_TOKEN_LIFETIME_SECS,
};
use toka_types::{EntityId, IssuedToken, Scope};

use crate::error::AuthError;
use crate::permissions::Permission;

/// The claims of a Toka capability token. Times are JWT NumericDates (whole seconds
/// since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The agent that may use the token.
    pub sub: EntityId,
    /// When it was issued.
    pub iat: u64,
    /// When it stops being valid (exclusive: valid while `now < exp`).
    pub exp: u64,
    /// When it starts being valid, if later than `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Its unique id.
    pub jti: String,
    /// What it allows. Toka's own names are borrowed, not copied, when a token is read
    /// (see [`crate::permissions::read_names`]): a token is read on every message.
    #[serde(default, deserialize_with = "crate::permissions::read_names")]
    pub permissions: Vec<Permission>,
    /// Which agents it acts on; `None` means the subject and its descendants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The `jti` of the token it was attenuated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Every ancestor's `jti`, root first; its last entry is `parent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<String>,
}

impl Claims {
    /// Claims for `sub` with id `jti`, valid from `iat` until `exp`, allowing nothing yet.
    pub fn new(sub: EntityId, jti: impl Into<String>, iat: u64, exp: u64) -> Self {
        Self {
            sub,
            iat,
            exp,
            nbf: None,
            jti: jti.into(),
            permissions: Vec::new(),
            scope: None,
            parent: None,
            lineage: Vec::new(),
        }
    }

    /// The same claims, allowing these permissions.
    pub fn with_permissions<I, P>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.permissions = permissions
            .into_iter()
            .map(|p| crate::permissions::name(p.into()))
            .collect();
        self
    }

    /// The same claims, with this scope.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Whether the token allows `permission`.
    pub fn allows(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| crate::permissions::covers(p, permission))
    }

    /// The scope in force: the explicit one, or the subject's subtree.
    pub fn effective_scope(&self) -> Scope {
        self.scope.unwrap_or(Scope::Subtree(self.sub))
    }

    /// The moment from which the token is valid: `nbf` if set, else `iat`.
    pub fn valid_from(&self) -> u64 {
        self.nbf.unwrap_or(self.iat).max(self.iat)
    }

    /// The claims of a token the kernel issued (a `token.issued` event).
    pub fn of_issued(issued: &IssuedToken) -> Self {
        Self {
            sub: issued.sub,
            iat: issued.iat,
            exp: issued.exp,
            nbf: None,
            jti: issued.jti.clone(),
            permissions: crate::permissions::names(issued.permissions.clone()),
            scope: issued.scope,
            parent: issued.parent.clone(),
            lineage: issued.lineage.clone(),
        }
    }

    /// Checks the rules every token obeys whatever the time: a sane window no longer
    /// than 24 hours, at most 100 permissions, a bounded `jti`, a consistent lineage.
    pub fn check_rules(&self) -> Result<(), AuthError> {
        if self.exp <= self.iat {
            return Err(AuthError::InvalidClaims {
                reason: format!("exp ({}) is not after iat ({})", self.exp, self.iat),
            });
        }
        let lifetime = self.exp - self.iat;
        if lifetime > MAX_TOKEN_LIFETIME_SECS {
            return Err(AuthError::LifetimeTooLong {
                lifetime,
                limit: MAX_TOKEN_LIFETIME_SECS,
            });
        }
        if self.permissions.len() > MAX_PERMISSIONS {
            return Err(AuthError::TooManyPermissions {
                count: self.permissions.len(),
                limit: MAX_PERMISSIONS,
            });
        }
        if self.jti.is_empty() || self.jti.len() > MAX_JTI_BYTES {
            return Err(AuthError::InvalidClaims {
                reason: format!(
                    "jti must be 1 to {MAX_JTI_BYTES} bytes, got {}",
                    self.jti.len()
                ),
            });
        }
        if self.lineage.len() > MAX_ATTENUATION_DEPTH {
            return Err(AuthError::AttenuationTooDeep {
                depth: self.lineage.len(),
                limit: MAX_ATTENUATION_DEPTH,
            });
        }
        if self.parent.as_ref() != self.lineage.last() {
            return Err(AuthError::InvalidClaims {
                reason: "parent must be the last entry of lineage".to_string(),
            });
        }
        Ok(())
    }
}
