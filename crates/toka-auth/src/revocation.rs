//! [`RevocationList`]: the set of revoked `jti`s, as the caller keeps it.

use std::collections::{BTreeSet, HashSet};
use std::hash::BuildHasher;

/// Answers whether a token id has been revoked. The kernel's state implements it from
/// the `token.revoked` events of the log.
pub trait RevocationList {
    /// Whether `jti` is revoked.
    fn is_revoked(&self, jti: &str) -> bool;
}

/// No token is revoked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

impl RevocationList for NoRevocations {
    fn is_revoked(&self, _jti: &str) -> bool {
        false
    }
}

impl<S: BuildHasher> RevocationList for HashSet<String, S> {
    fn is_revoked(&self, jti: &str) -> bool {
        self.contains(jti)
    }
}

impl RevocationList for BTreeSet<String> {
    fn is_revoked(&self, jti: &str) -> bool {
        self.contains(jti)
    }
}

impl<T: RevocationList + ?Sized> RevocationList for &T {
    fn is_revoked(&self, jti: &str) -> bool {
        (**self).is_revoked(jti)
    }
}
