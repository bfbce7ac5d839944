//! [`mint`]: sign claims into a compact JWT with the active key.

use jsonwebtoken::Header;
use toka_types::limits::MAX_TOKEN_BYTES;

use crate::claims::Claims;
use crate::error::AuthError;
use crate::keys::KeySet;

/// Signs `claims` with the active key of `keys`, after checking the rules every token
/// obeys ([`Claims::check_rules`]) and that the result fits the size limit.
///
/// The caller supplies `iat`, `exp` and a fresh `jti`: minting reads no clock and draws
/// no randomness.
pub fn mint(keys: &KeySet, claims: &Claims) -> Result<String, AuthError> {
    let key = keys.active().ok_or(AuthError::NoActiveKey)?;
    sign(key, claims)
}

/// Signs `claims` with the key `kid` of `keys` (which must be able to sign), after the
/// same checks as [`mint`].
pub fn mint_with(keys: &KeySet, kid: &str, claims: &Claims) -> Result<String, AuthError> {
    let key = keys
        .get(kid)
        .ok_or_else(|| AuthError::UnknownKid { kid: kid.into() })?;
    sign(key, claims)
}

fn sign(key: &crate::keys::SigningKey, claims: &Claims) -> Result<String, AuthError> {
    claims.check_rules()?;
    let encoding = key.encoding().ok_or(AuthError::NoActiveKey)?;
    let mut header = Header::new(key.algorithm().jwt());
    header.kid = Some(key.kid().to_string());
    header.typ = Some("JWT".into());
    let token =
        jsonwebtoken::encode(&header, claims, encoding).map_err(|e| AuthError::Signing {
            reason: e.to_string(),
        })?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge {
            actual: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    Ok(token)
}
