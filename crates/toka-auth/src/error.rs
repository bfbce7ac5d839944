use thiserror::Error;

/// Why a token was refused, minted or attenuated no further. Each rejection case has its
/// own variant so callers (and tests) can tell them apart; messages never quote the
/// token itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is larger than the limit.
    #[error("token is {actual} bytes, limit {limit}")]
    TokenTooLarge {
        /// Its size.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// The token is not a well-formed JWT, or its claims do not parse.
    #[error("malformed token: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The token says `alg: none` (unsigned). Never accepted.
    #[error("unsigned token (alg \"none\") refused")]
    AlgNone,
    /// The token uses an algorithm Toka does not accept (only HS256 and EdDSA).
    #[error("algorithm {alg:?} is not accepted; use HS256 or EdDSA")]
    UnsupportedAlgorithm {
        /// The `alg` of the header.
        alg: String,
    },
    /// The token's header names no `kid`.
    #[error("token header has no kid; Toka tokens name their signing key")]
    MissingKid,
    /// No key with the token's `kid` is known (never was, or rotated out).
    #[error("unknown signing key {kid:?}")]
    UnknownKid {
        /// The `kid` of the header.
        kid: String,
    },
    /// The token's algorithm is not the algorithm of the key it names: e.g. an HS256
    /// token presented against an EdDSA key (algorithm confusion).
    #[error("token algorithm {token} does not match key {kid:?} ({key})")]
    AlgorithmMismatch {
        /// The key.
        kid: String,
        /// The key's algorithm.
        key: &'static str,
        /// The token's algorithm.
        token: &'static str,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `now` is at or past `exp`.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The expiry.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// `now` is before `nbf` (or `iat`).
    #[error("token not valid before {valid_from} (now {now})")]
    NotYetValid {
        /// When it becomes valid.
        valid_from: u64,
        /// The time of the check.
        now: u64,
    },
    /// `exp - iat` is longer than allowed.
    #[error("token lifetime is {lifetime} s, limit {limit} s")]
    LifetimeTooLong {
        /// Its lifetime.
        lifetime: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many permissions.
    #[error("token carries {count} permissions, limit {limit}")]
    TooManyPermissions {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The claims break a rule (window, `jti`, lineage).
    #[error("invalid claims: {reason}")]
    InvalidClaims {
        /// Which rule.
        reason: String,
    },
    /// The token, or one of its ancestors, is revoked.
    #[error("token {jti:?} is revoked")]
    Revoked {
        /// The revoked `jti` (the token's or an ancestor's).
        jti: String,
    },
    /// A child asked for a permission its parent does not have.
    #[error("cannot grant {permission:?}: the parent token does not have it")]
    PermissionEscalation {
        /// The permission.
        permission: String,
    },
    /// A child asked to live longer than its parent.
    #[error("child expiry {child} is after the parent's {parent}")]
    ExpiryExtension {
        /// The child's requested `exp`.
        child: u64,
        /// The parent's `exp`.
        parent: u64,
    },
    /// A child asked for a scope outside its parent's.
    #[error("scope {child} is not inside the parent's scope {parent}")]
    ScopeWidening {
        /// The child's scope.
        child: String,
        /// The parent's scope.
        parent: String,
    },
    /// The chain of attenuations is too long.
    #[error("attenuation depth {depth} exceeds limit {limit}")]
    AttenuationTooDeep {
        /// The depth.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// The key set has no active key to mint with.
    #[error("no active signing key; add one to the key set")]
    NoActiveKey,
    /// A key could not be loaded.
    #[error("invalid key {kid:?}: {reason}")]
    InvalidKey {
        /// The key.
        kid: String,
        /// Why.
        reason: String,
    },
    /// Signing failed in the JWT library.
    #[error("signing failed: {reason}")]
    Signing {
        /// Why.
        reason: String,
    },
}
