//! Capability grants as data: [`Scope`], what an issuer asks for ([`TokenGrant`]) and
//! what the kernel decided to issue ([`IssuedToken`]).
//!
//! A token's *claims* and its signature live in `toka-auth`; here is only what the log
//! records about a delegation, so replay and audit see every grant without ever seeing
//! a token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::budget::Budget;

use crate::error::{ValidationError, check_text};
use crate::id::{EntityId, ParseIdError};
use crate::limits::{
    MAX_GRANT_PERMISSIONS, MAX_JTI_BYTES, MAX_PERMISSION_BYTES, MAX_PERMISSIONS,
    MAX_TOKEN_LIFETIME_SECS,
};

/// Which agents a token may act on.
///
/// In JSON: `"*"` for [`Scope::All`], an agent id for [`Scope::Subtree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every agent.
    All,
    /// This agent and its descendants.
    Subtree(EntityId),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Subtree(id) => id.fmt(f),
        }
    }
}

impl FromStr for Scope {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            Ok(Self::All)
        } else {
            s.parse().map(Self::Subtree)
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What an issuer asks the kernel to delegate: a token for `sub` with at most the
/// issuer's permissions, scope and lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenGrant {
    /// The agent the new token is for.
    pub sub: EntityId,
    /// What it allows (a subset of the issuer's permissions).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Which agents it acts on; `None` means the subject's own subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Its lifetime in seconds from the decision. `None`: as long as the issuer's own
    /// token (at most 24 hours). An explicit lifetime past the issuer's expiry is
    /// refused, never shortened silently.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::opt_u64"
    )]
    pub ttl_secs: Option<u64>,
    /// What it may spend; each limit at most what the issuer's token has left. A
    /// limit left out is what the issuer has left of it (if the issuer has one).
    #[serde(default, skip_serializing_if = "Budget::is_unlimited")]
    pub budget: Budget,
}

impl TokenGrant {
    /// Checks the bounds: at most [`MAX_GRANT_PERMISSIONS`] permissions, each a name
    /// of 1 to [`MAX_PERMISSION_BYTES`] ASCII letters, digits and `:._*/-`; a lifetime
    /// of 1 s to 24 h.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_grant(&self.permissions, self.ttl_secs)
    }
}

/// The bounds a grant and a renewal share: at most [`MAX_GRANT_PERMISSIONS`] valid
/// permission names, a lifetime of 1 s to [`MAX_TOKEN_LIFETIME_SECS`].
fn check_grant(permissions: &[String], ttl_secs: Option<u64>) -> Result<(), ValidationError> {
    if permissions.len() > MAX_GRANT_PERMISSIONS {
        return Err(ValidationError::TooMany {
            field: "permissions",
            actual: permissions.len(),
            limit: MAX_GRANT_PERMISSIONS,
        });
    }
    for p in permissions {
        check_permission_name(p)?;
    }
    if let Some(ttl) = ttl_secs
        && !(1..=MAX_TOKEN_LIFETIME_SECS).contains(&ttl)
    {
        return Err(ValidationError::OutOfRange {
            field: "ttl_secs",
            actual: ttl,
            min: 1,
            max: MAX_TOKEN_LIFETIME_SECS,
        });
    }
    Ok(())
}

/// What the holder of a token asks for to keep acting after it expires: a new token of
/// the same renewal family, with the same grant (or only some of its permissions) and
/// a fresh expiry, never past the chain's lifetime. No permission is needed: holding a
/// valid token is the proof.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRenewal {
    /// Its lifetime in seconds from the decision (default: the renewed token's own
    /// lifetime), at most 24 hours; cut at the end of the chain's lifetime.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::opt_u64"
    )]
    pub ttl_secs: Option<u64>,
    /// Only these of the token's permissions (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

impl TokenRenewal {
    /// Checks the bounds, as [`TokenGrant::validate`] does.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_grant(
            self.permissions.as_deref().unwrap_or_default(),
            self.ttl_secs,
        )
    }
}

/// The characters a permission name may hold, besides ASCII letters and digits.
pub const PERMISSION_PUNCTUATION: &str = ":._*/-";

/// A permission name: 1 to [`MAX_PERMISSION_BYTES`] ASCII letters, digits and
/// [`PERMISSION_PUNCTUATION`] (`task:claim`, `ext:counter`, `tool:fs.read`).
pub fn check_permission_name(name: &str) -> Result<(), ValidationError> {
    check_text("permission", name, MAX_PERMISSION_BYTES)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || PERMISSION_PUNCTUATION.as_bytes().contains(&b))
    {
        return Err(ValidationError::BadCharacter {
            field: "permission",
            reason: "use ASCII letters, digits and :._*/-",
        });
    }
    Ok(())
}

/// A delegation the kernel accepted, as the log records it: everything a token's
/// claims say except the signature. The runtime signs exactly these claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedToken {
    /// The token's id, derived from the log position (never random).
    pub jti: String,
    /// The agent that may use it.
    pub sub: EntityId,
    /// What it allows.
    pub permissions: Vec<String>,
    /// Which agents it acts on; `None` means the subject's own subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Issued at (seconds since the epoch; the decision's time).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// The `jti` of the issuer's token; `None` for a root token (issued by the holder
    /// of the node's signing key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Every ancestor's `jti`, root first; its last entry is `parent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<String>,
    /// The agent whose token issued it; `None` for a root token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<EntityId>,
    /// The `kid` of the key that signs it (the node's active key when it was decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// What it may spend (absent: no limit of its own).
    #[serde(default, skip_serializing_if = "Budget::is_unlimited")]
    pub budget: Budget,
    /// For a renewal: the first token of its family (the one first issued; every
    /// renewal of it, or of a renewal, names the same). A family shares its budget,
    /// and revoking any member revokes all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_of: Option<String>,
}

impl IssuedToken {
    /// The `jti` of this token's renewal family: the first token of it.
    pub fn family(&self) -> &str {
        self.renewal_of.as_deref().unwrap_or(&self.jti)
    }

    /// The scope in force: the explicit one, or the subject's subtree.
    pub fn effective_scope(&self) -> Scope {
        self.scope.unwrap_or(Scope::Subtree(self.sub))
    }

    /// Checks the bounds of a recorded issuance (as read back from a log).
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("jti", &self.jti, MAX_JTI_BYTES)?;
        if let Some(family) = &self.renewal_of {
            check_text("renewal_of", family, MAX_JTI_BYTES)?;
        }
        if self.permissions.len() > MAX_PERMISSIONS {
            return Err(ValidationError::TooMany {
                field: "permissions",
                actual: self.permissions.len(),
                limit: MAX_PERMISSIONS,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_round_trips() {
        for text in ["\"*\"", "\"00000000-0000-0000-0000-000000000007\""] {
            let scope: Scope = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&scope).unwrap(), text);
        }
        assert!(serde_json::from_str::<Scope>("\"root\"").is_err());
    }

    #[test]
    fn grant_bounds() {
        let mut grant = TokenGrant {
            sub: EntityId::from_u128(1),
            permissions: vec!["task:claim".into()],
            scope: None,
            ttl_secs: Some(60),
            budget: Default::default(),
        };
        assert!(grant.validate().is_ok());
        grant.ttl_secs = Some(0);
        assert!(grant.validate().is_err());
        grant.ttl_secs = Some(MAX_TOKEN_LIFETIME_SECS + 1);
        assert!(grant.validate().is_err());
        grant.ttl_secs = None;
        grant.permissions = vec!["p".into(); MAX_GRANT_PERMISSIONS + 1];
        assert!(grant.validate().is_err());
        grant.permissions = vec!["p".repeat(MAX_PERMISSION_BYTES + 1)];
        assert!(grant.validate().is_err());
        grant.permissions = vec!["task claim".into()];
        assert!(grant.validate().is_err());
        grant.permissions = vec!["p".repeat(MAX_PERMISSION_BYTES); MAX_GRANT_PERMISSIONS];
        assert!(grant.validate().is_ok());
    }
}
