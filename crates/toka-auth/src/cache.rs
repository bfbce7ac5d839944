//! [`Verifier`]: [`validate`](crate::validate) behind a cache of verified tokens.
//!
//! Checking a signature costs microseconds; an agent sends the same token with every
//! message. The cache keeps, per token, the claims whose signature and rules were
//! already checked (steps 1–5 of `validate`). Time and revocation (steps 6–7) are
//! checked on every call, hit or miss, so a cached token expires and is revoked exactly
//! when an uncached one would be.
//!
//! Entries are keyed by the whole token string (hashed with a fixed, unseeded hash;
//! compared byte for byte), so a hash collision can never admit an unverified token.
//! Changing the key set empties the cache. The cache is bounded: when full, it is
//! emptied and refills with the tokens in use.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::claims::Claims;
use crate::error::AuthError;
use crate::header::LastHeader;
use crate::keys::{KeySet, SigningKey};
use crate::revocation::RevocationList;
use crate::validate::{check_in_force, verify_signed_claims};

/// How many verified tokens a [`Verifier`] keeps by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 16 * 1024;

/// Validates tokens against a key set, caching signature checks.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    cache: FxHashMap<Box<str>, Arc<Claims>>,
    capacity: usize,
    /// The last header read: tokens of one key share it (used with or without a cache).
    last_header: LastHeader,
}

impl Verifier {
    /// A verifier for `keys` with the default cache capacity.
    pub fn new(keys: KeySet) -> Self {
        Self::with_capacity(keys, DEFAULT_CACHE_CAPACITY)
    }

    /// A verifier for `keys` keeping at most `capacity` verified tokens (0 disables the
    /// cache: every call verifies the signature).
    pub fn with_capacity(keys: KeySet, capacity: usize) -> Self {
        Self {
            keys,
            cache: FxHashMap::default(),
            capacity,
            last_header: LastHeader::default(),
        }
    }

    /// The key set.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Replaces the key set (and so empties the cache).
    pub fn set_keys(&mut self, keys: KeySet) {
        self.keys = keys;
        self.cache.clear();
    }

    /// Adds `key` and makes it the active one (see [`KeySet::rotate_to`]).
    pub fn rotate_to(&mut self, key: SigningKey) -> Result<(), AuthError> {
        self.keys.rotate_to(key)?;
        self.cache.clear();
        Ok(())
    }

    /// Removes the key `kid` (see [`KeySet::remove`]).
    pub fn remove_key(&mut self, kid: &str) -> bool {
        self.cache.clear();
        self.keys.remove(kid)
    }

    /// How many tokens are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The claims of `token` if it is valid at `now` and not revoked; the same answer
    /// as [`validate`](crate::validate) with this verifier's keys.
    pub fn verify(
        &mut self,
        token: &str,
        now: u64,
        revoked: &impl RevocationList,
    ) -> Result<Arc<Claims>, AuthError> {
        let claims = match self.cache.get(token) {
            Some(claims) => Arc::clone(claims),
            None => {
                let claims = Arc::new(verify_signed_claims(
                    token,
                    &self.keys,
                    &mut self.last_header,
                )?);
                if self.capacity > 0 {
                    if self.cache.len() >= self.capacity {
                        self.cache.clear();
                    }
                    self.cache.insert(token.into(), Arc::clone(&claims));
                }
                claims
            }
        };
        check_in_force(&claims, now, revoked)?;
        Ok(claims)
    }
}
