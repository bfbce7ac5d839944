//! [`SigningKey`] and [`KeySet`]: the keys tokens are signed and verified with.
//!
//! A key set holds several keys by `kid`. One is active: new tokens are signed with it.
//! The others still verify the tokens they signed until they are removed, which is how
//! keys rotate without logging every agent out at once.

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::error::AuthError;

/// Shortest HS256 secret accepted: 256 bits, the size of the hash (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// The algorithms Toka signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// Ed25519 signatures.
    EdDsa,
}

impl KeyAlgorithm {
    /// The JWT `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// One key: its `kid`, algorithm, a verifying half and, unless it is verify-only, a
/// signing half.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    algorithm: KeyAlgorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    /// For HS256: the HMAC key with its pads already computed, so verifying a token
    /// does not re-derive them (a third of the cost of a cold check).
    hmac: Option<hmac::Key>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.encoding.is_some())
            .finish()
    }
}

fn check_kid(kid: &str) -> Result<(), AuthError> {
    if kid.is_empty() || kid.len() > 64 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::InvalidKey {
            kid: kid.chars().take(64).collect(),
            reason: "kid must be 1 to 64 printable ASCII characters".into(),
        });
    }
    Ok(())
}

impl SigningKey {
    /// An HS256 key from a shared secret of at least 32 bytes.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Self, AuthError> {
        let kid = kid.into();
        check_kid(&kid)?;
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(AuthError::InvalidKey {
                kid,
                reason: format!(
                    "HS256 secret is {} bytes, at least {MIN_HS256_SECRET_BYTES} needed",
                    secret.len()
                ),
            });
        }
        Ok(Self {
            kid,
            algorithm: KeyAlgorithm::Hs256,
            encoding: Some(EncodingKey::from_secret(secret)),
            decoding: DecodingKey::from_secret(secret),
            hmac: Some(hmac::Key::new(hmac::HMAC_SHA256, secret)),
        })
    }

    /// An Ed25519 key from its PKCS#8 (v1 or v2) DER private key.
    pub fn ed25519_pkcs8(kid: impl Into<String>, pkcs8_der: &[u8]) -> Result<Self, AuthError> {
        let kid = kid.into();
        check_kid(&kid)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8_der).map_err(|e| AuthError::InvalidKey {
            kid: kid.clone(),
            reason: format!("not an Ed25519 PKCS#8 key: {e}"),
        })?;
        Ok(Self {
            algorithm: KeyAlgorithm::EdDsa,
            encoding: Some(EncodingKey::from_ed_der(pkcs8_der)),
            decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
            hmac: None,
            kid,
        })
    }

    /// A verify-only Ed25519 key from its 32-byte public key.
    pub fn ed25519_public(kid: impl Into<String>, public_key: &[u8]) -> Result<Self, AuthError> {
        let kid = kid.into();
        check_kid(&kid)?;
        if public_key.len() != 32 {
            return Err(AuthError::InvalidKey {
                kid,
                reason: format!(
                    "Ed25519 public key is {} bytes, expected 32",
                    public_key.len()
                ),
            });
        }
        Ok(Self {
            kid,
            algorithm: KeyAlgorithm::EdDsa,
            encoding: None,
            decoding: DecodingKey::from_ed_der(public_key),
            hmac: None,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Whether this key can sign (it is not verify-only).
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    pub(crate) fn encoding(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) fn hmac(&self) -> Option<&hmac::Key> {
        self.hmac.as_ref()
    }
}

/// The keys by `kid`, one of them active for minting.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    active: Option<usize>,
}

impl KeySet {
    /// A key set holding `key`, active if it can sign.
    pub fn new(key: SigningKey) -> Self {
        let active = key.can_sign().then_some(0);
        Self {
            keys: vec![key],
            active,
        }
    }

    /// A key set with no keys: verifies nothing, mints nothing.
    pub fn empty() -> Self {
        Self {
            keys: Vec::new(),
            active: None,
        }
    }

    /// Adds a key that verifies but does not become active (replacing one with the same
    /// `kid`).
    pub fn add(&mut self, key: SigningKey) {
        self.insert(key);
    }

    /// Adds `key` and makes it the active one; the previous active key still verifies.
    pub fn rotate_to(&mut self, key: SigningKey) -> Result<(), AuthError> {
        if !key.can_sign() {
            return Err(AuthError::InvalidKey {
                kid: key.kid.clone(),
                reason: "a verify-only key cannot be the active key".into(),
            });
        }
        let index = self.insert(key);
        self.active = Some(index);
        Ok(())
    }

    /// Removes the key `kid`: tokens it signed no longer verify. Returns whether it was
    /// there. Removing the active key leaves the set unable to mint until rotated.
    pub fn remove(&mut self, kid: &str) -> bool {
        let Some(index) = self.keys.iter().position(|k| k.kid == kid) else {
            return false;
        };
        self.keys.remove(index);
        self.active = match self.active {
            Some(a) if a == index => None,
            Some(a) if a > index => Some(a - 1),
            other => other,
        };
        true
    }

    /// The key `kid`.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The active key.
    pub fn active(&self) -> Option<&SigningKey> {
        self.active.and_then(|i| self.keys.get(i))
    }

    /// The kids, in insertion order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    fn insert(&mut self, key: SigningKey) -> usize {
        if let Some(i) = self.keys.iter().position(|k| k.kid == key.kid) {
            self.keys[i] = key;
            i
        } else {
            self.keys.push(key);
            self.keys.len() - 1
        }
    }
}
