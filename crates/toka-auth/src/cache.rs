//! [`Verifier`]: [`validate`](crate::validate) behind a cache of verified tokens.
//!
//! Checking a signature costs microseconds; an agent sends the same token with every
//! message. The cache keeps, per token, the claims whose signature and rules were
//! already checked (steps 1–5 of `validate`). Time and revocation (steps 6–7) are
//! checked on every call, hit or miss, so a cached token expires and is revoked exactly
//! when an uncached one would be.
//!
//! Entries are found by a fixed, unseeded hash of the token's last [`KEY_TAIL`] bytes
//! (the signature's end: tokens differ there, and hashing the whole token was most of
//! a cache hit's cost) and then compared with the whole token byte for byte, so a hash
//! collision can never admit an unverified token: it is a miss, and the newer token
//! takes the entry.
//! Changing the key set empties the cache. The cache is bounded: when full, it is
//! emptied and refills with the tokens in use.

use std::sync::Arc;

use std::hash::Hasher as _;

use rustc_hash::{FxHashMap, FxHasher};

use crate::claims::Claims;
use crate::error::AuthError;
use crate::header::LastHeader;
use crate::keys::{KeySet, SigningKey};
use crate::revocation::RevocationList;
use crate::validate::{check_in_force, verify_signed_claims};

/// How many verified tokens a [`Verifier`] keeps by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 16 * 1024;

/// How many bytes at a token's end its cache slot is found by.
const KEY_TAIL: usize = 32;

/// The slot of `token` in the cache: a hash of its last [`KEY_TAIL`] bytes.
fn slot(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let mut hasher = FxHasher::default();
    hasher.write(&bytes[bytes.len().saturating_sub(KEY_TAIL)..]);
    hasher.finish()
}

/// Validates tokens against a key set, caching signature checks.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    /// By [`slot`]: the whole token (compared on every hit) and its verified claims.
    cache: FxHashMap<u64, (Box<str>, Arc<Claims>)>,
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
        let slot = slot(token);
        let claims = match self.cache.get(&slot) {
            Some((cached, claims)) if **cached == *token => Arc::clone(claims),
            _ => {
                let claims = Arc::new(verify_signed_claims(
                    token,
                    &self.keys,
                    &mut self.last_header,
                )?);
                if self.capacity > 0 {
                    if self.cache.len() >= self.capacity {
                        self.cache.clear();
                    }
                    self.cache.insert(slot, (token.into(), Arc::clone(&claims)));
                }
                claims
            }
        };
        check_in_force(&claims, now, revoked)?;
        Ok(claims)
    }
}
