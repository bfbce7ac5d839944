//! [`validate`]: the pure check of a token against a time, a revoked set and keys.
//!
//! The checks run in a fixed order and the first failure is returned:
//!
//! 1. size ≤ 8 KiB;
//! 2. the header: three parts, `alg` is HS256 or EdDSA (`none` has its own error), a `kid`;
//! 3. the `kid` names a known key, and the key's algorithm is the token's (so an HS256
//!    token is never checked with an Ed25519 public key used as an HMAC secret);
//! 4. the signature (by `jsonwebtoken`, told not to look at the clock);
//! 5. the rules of [`Claims::check_rules`] (lifetime ≤ 24 h, ≤ 100 permissions, …);
//! 6. `valid_from ≤ now < exp`, against the `now` passed in;
//! 7. neither the token's `jti` nor any in its lineage is revoked.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use toka_types::limits::MAX_TOKEN_BYTES;

use crate::claims::Claims;
use crate::error::AuthError;
use crate::header::read_header;
use crate::keys::{KeyAlgorithm, KeySet};
use crate::revocation::RevocationList;

/// Checks `token` at time `now` (seconds since the epoch) against `revoked` and `keys`,
/// and returns its claims. Pure: the same inputs give the same answer, always.
pub fn validate(
    token: &str,
    now: u64,
    revoked: &impl RevocationList,
    keys: &KeySet,
) -> Result<Claims, AuthError> {
    let claims = verify_signed_claims(token, keys)?;
    check_in_force(&claims, now, revoked)?;
    Ok(claims)
}

/// Steps 1–5: everything that does not depend on time or revocation, and so can be
/// cached per token.
pub(crate) fn verify_signed_claims(token: &str, keys: &KeySet) -> Result<Claims, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge { actual: token.len(), limit: MAX_TOKEN_BYTES });
    }
    let header = read_header(token)?;
    let key = keys.get(&header.kid).ok_or_else(|| AuthError::UnknownKid { kid: header.kid.clone() })?;
    if key.algorithm() != header.algorithm {
        return Err(AuthError::AlgorithmMismatch {
            kid: header.kid,
            key: key.algorithm().as_str(),
            token: header.algorithm.as_str(),
        });
    }
    let claims = decode_verified(token, key.decoding(), key.algorithm())?;
    claims.check_rules()?;
    Ok(claims)
}

fn decode_verified(token: &str, key: &DecodingKey, algorithm: KeyAlgorithm) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(algorithm.jwt());
    // Time is ours to check against the `now` we are given: with these off,
    // jsonwebtoken never reads the system clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<Claims>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            _ => AuthError::Malformed { reason: e.to_string() },
        }),
    }
}

/// Steps 6–7: the checks that depend on `now` and on the revoked set; run on every use,
/// cached or not.
pub(crate) fn check_in_force(
    claims: &Claims,
    now: u64,
    revoked: &impl RevocationList,
) -> Result<(), AuthError> {
    let valid_from = claims.valid_from();
    if now < valid_from {
        return Err(AuthError::NotYetValid { valid_from, now });
    }
    if now >= claims.exp {
        return Err(AuthError::Expired { exp: claims.exp, now });
    }
    if revoked.is_revoked(&claims.jti) {
        return Err(AuthError::Revoked { jti: claims.jti.clone() });
    }
    if let Some(jti) = claims.lineage.iter().find(|j| revoked.is_revoked(j)) {
        return Err(AuthError::Revoked { jti: jti.clone() });
    }
    Ok(())
}
