//! [`validate`]: the pure check of a token against a time, a revoked set and keys.
//!
//! The checks run in a fixed order and the first failure is returned:
//!
//! 1. size ≤ 8 KiB;
//! 2. the header: three parts, `alg` is HS256 or EdDSA (`none` has its own error), a `kid`;
//! 3. the `kid` names a known key, and the key's algorithm is the token's (so an HS256
//!    token is never checked with an Ed25519 public key used as an HMAC secret);
//! 4. the signature (HMAC-SHA256 or Ed25519 from aws-lc-rs, jsonwebtoken's backend), and
//!    each part strict base64url (no padding, no spare bits set: one spelling per token);
//! 5. the rules of [`Claims::check_rules`] (lifetime ≤ 24 h, ≤ 100 permissions, …);
//! 6. `valid_from ≤ now < exp`, against the `now` passed in;
//! 7. neither the token's `jti` nor any in its lineage is revoked.

use aws_lc_rs::hmac;
use jsonwebtoken::errors::ErrorKind;
use toka_types::limits::MAX_TOKEN_BYTES;

use crate::claims::Claims;
use crate::error::AuthError;
use crate::header::{LastHeader, Parts, decode_part, split};
use crate::keys::{KeySet, SigningKey};
use crate::revocation::RevocationList;

/// Checks `token` at time `now` (seconds since the epoch) against `revoked` and `keys`,
/// and returns its claims. Pure: the same inputs give the same answer, always.
pub fn validate(
    token: &str,
    now: u64,
    revoked: &impl RevocationList,
    keys: &KeySet,
) -> Result<Claims, AuthError> {
    let claims = verify_signed_claims(token, keys, &mut LastHeader::default())?;
    check_in_force(&claims, now, revoked)?;
    Ok(claims)
}

/// Steps 1–5: everything that does not depend on time or revocation, and so can be
/// cached per token. `last` is the header memo (see [`LastHeader`]).
pub(crate) fn verify_signed_claims(
    token: &str,
    keys: &KeySet,
    last: &mut LastHeader,
) -> Result<Claims, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge {
            actual: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    let parts = split(token)?;
    let header = last.read(parts.header)?;
    let key = keys.get(&header.kid).ok_or_else(|| AuthError::UnknownKid {
        kid: header.kid.clone(),
    })?;
    if key.algorithm() != header.algorithm {
        return Err(AuthError::AlgorithmMismatch {
            kid: header.kid.clone(),
            key: key.algorithm().as_str(),
            token: header.algorithm.as_str(),
        });
    }
    let claims = decode_verified(&parts, key)?;
    claims.check_rules()?;
    Ok(claims)
}

/// Checks the signature over `header.payload`, then decodes the payload once.
///
/// HS256 is checked with the key's precomputed HMAC (aws-lc-rs, jsonwebtoken's own
/// backend, in constant time); EdDSA through `jsonwebtoken::crypto::verify`. We do not
/// call `jsonwebtoken::decode`: it would parse the header and the claims twice more
/// and build a `Validation` per call, and the header is already read and checked here.
fn decode_verified(parts: &Parts<'_>, key: &SigningKey) -> Result<Claims, AuthError> {
    let Parts {
        signed,
        payload,
        signature,
        ..
    } = *parts;
    match key.hmac() {
        Some(hmac_key) => {
            let tag = decode_part("signature", signature)?;
            hmac::verify(hmac_key, signed.as_bytes(), &tag).map_err(|_| AuthError::BadSignature)?;
        }
        None => match jsonwebtoken::crypto::verify(
            signature,
            signed.as_bytes(),
            key.decoding(),
            key.algorithm().jwt(),
        ) {
            Ok(true) => {}
            Ok(false) => return Err(AuthError::BadSignature),
            Err(e) => {
                return Err(match e.kind() {
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    _ => AuthError::Malformed {
                        reason: e.to_string(),
                    },
                });
            }
        },
    }
    let json = decode_part("claims", payload)?;
    // One UTF-8 check of the whole payload, then the faster `&str` parser.
    let text = std::str::from_utf8(&json).map_err(|e| AuthError::Malformed {
        reason: format!("claims are not UTF-8: {e}"),
    })?;
    serde_json::from_str(text).map_err(|e| AuthError::Malformed {
        reason: format!("claims do not parse: {e}"),
    })
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
        return Err(AuthError::Expired {
            exp: claims.exp,
            now,
        });
    }
    if revoked.is_revoked(&claims.jti) {
        return Err(AuthError::Revoked {
            jti: claims.jti.clone(),
        });
    }
    if let Some(jti) = claims.lineage.iter().find(|j| revoked.is_revoked(j)) {
        return Err(AuthError::Revoked { jti: jti.clone() });
    }
    Ok(())
}
