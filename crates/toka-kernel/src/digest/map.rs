//! [`DigestedMap`]: a hash map that keeps the [`LtHash`] of its entries current
//! lazily, so the state digest costs time in proportion to what changed since it was
//! last asked for, not to the size of the state.
//!
//! How: until the digest is first asked for, the map is a plain map (nothing is
//! tracked: the writer's own kernel never asks, and a clone starts cold). The first [`DigestedMap::sum`] hashes
//! every entry and keeps each entry's hash; from then on every way to change an entry
//! (`get_mut`, `insert`; nothing is ever removed) notes its key, and the next `sum` rehashes only the
//! noted keys, taking the old hash out of the sum and putting the new one in.
//!
//! Invariant: when warm, `sum` equals the sum over `hashes`, and `hashes[k]` is the
//! hash of `entries[k]` for every key not in `dirty`; the keys of `hashes` and
//! `entries` differ only within `dirty`. The tests below check this against a
//! from-scratch sum after random changes.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use rustc_hash::{FxHashMap, FxHashSet};

use super::lthash::LtHash;

/// A value that hashes to one entry of the state digest (its key is part of it).
pub(crate) trait Digestible {
    /// The entry's hash: BLAKE3 of its canonical encoding, under a domain of its kind.
    fn entry_hash(&self) -> [u8; 32];
}

/// A map whose entries' [`LtHash`] is kept current (see the module doc).
pub(crate) struct DigestedMap<K, V> {
    entries: FxHashMap<K, V>,
    cache: Mutex<SumCache<K>>,
}

struct SumCache<K> {
    warm: bool,
    hashes: FxHashMap<K, [u8; 32]>,
    dirty: FxHashSet<K>,
    sum: LtHash,
}

impl<K> Default for SumCache<K> {
    fn default() -> Self {
        Self {
            warm: false,
            hashes: FxHashMap::default(),
            dirty: FxHashSet::default(),
            sum: LtHash::default(),
        }
    }
}

impl<K, V> Default for DigestedMap<K, V> {
    fn default() -> Self {
        Self {
            entries: FxHashMap::default(),
            cache: Mutex::new(SumCache::default()),
        }
    }
}

impl<K: Clone, V: Clone> Clone for DigestedMap<K, V> {
    /// A copy starts cold: copies are working copies (the writer's kernel, a fork)
    /// that seldom ask for a digest, and should not pay to track one.
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            cache: Mutex::new(SumCache::default()),
        }
    }
}

impl<K: Eq + Hash, V: PartialEq> PartialEq for DigestedMap<K, V> {
    /// Equal entries: the cache is how the digest is computed, not what the map holds.
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<K: Eq + Hash, V: Eq> Eq for DigestedMap<K, V> {}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for DigestedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.entries.fmt(f)
    }
}

impl<K: Eq + Hash, V> FromIterator<(K, V)> for DigestedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
            cache: Mutex::new(SumCache::default()),
        }
    }
}

impl<'a, K, V> IntoIterator for &'a DigestedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::collections::hash_map::Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl<K, V> DigestedMap<K, V> {
    fn lock(&self) -> MutexGuard<'_, SumCache<K>> {
        // The cache is rebuilt from the entries if a panic left it half-updated.
        self.cache.lock().unwrap_or_else(|poisoned| {
            let mut cache = poisoned.into_inner();
            cache.warm = false;
            cache
        })
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The values, in no particular order.
    pub fn values(&self) -> std::collections::hash_map::Values<'_, K, V> {
        self.entries.values()
    }
}

impl<K: Eq + Hash + Clone, V> DigestedMap<K, V> {
    /// The value at `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// The value at `key`, to change (the key is noted for the next digest).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let value = self.entries.get_mut(key)?;
        let cache = self.cache.get_mut().unwrap_or_else(|p| p.into_inner());
        if cache.warm {
            cache.dirty.insert(key.to_owned());
        }
        Some(value)
    }

    /// Sets `key` to `value`, returning the old value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let cache = self.cache.get_mut().unwrap_or_else(|p| p.into_inner());
        if cache.warm {
            cache.dirty.insert(key.clone());
        }
        self.entries.insert(key, value)
    }
}

impl<K: Eq + Hash + Clone, V: Digestible> DigestedMap<K, V> {
    /// The 32-byte summary of the entries' [`LtHash`]: the first call hashes every
    /// entry, later ones only those changed since the call before.
    pub(crate) fn sum(&self) -> [u8; 32] {
        let mut cache = self.lock();
        let cache = &mut *cache;
        if !cache.warm {
            cache.hashes.clear();
            cache.dirty.clear();
            cache.sum = LtHash::default();
            cache.hashes.reserve(self.entries.len());
            for (key, value) in &self.entries {
                let hash = value.entry_hash();
                cache.sum.add(&hash);
                cache.hashes.insert(key.clone(), hash);
            }
            cache.warm = true;
        } else {
            for key in cache.dirty.drain() {
                let new = self.entries.get(&key).map(Digestible::entry_hash);
                let old = match new {
                    Some(hash) => cache.hashes.insert(key, hash),
                    None => cache.hashes.remove(&key),
                };
                if old == new {
                    continue;
                }
                if let Some(old) = old {
                    cache.sum.remove(&old);
                }
                if let Some(new) = new {
                    cache.sum.add(&new);
                }
            }
        }
        cache.sum.finish()
    }

    /// The summary computed from scratch, ignoring and not touching the cache.
    #[cfg(test)]
    pub(crate) fn sum_from_scratch(&self) -> [u8; 32] {
        let mut sum = LtHash::default();
        self.entries.values().for_each(|v| sum.add(&v.entry_hash()));
        sum.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Entry(u8, u32);

    impl Digestible for Entry {
        fn entry_hash(&self) -> [u8; 32] {
            let mut h = blake3::Hasher::new();
            h.update(&[self.0]);
            h.update(&self.1.to_le_bytes());
            *h.finalize().as_bytes()
        }
    }

    #[derive(Clone, Debug)]
    enum Change {
        Insert(u8, u32),
        Bump(u8),
        Digest,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            (0u8..16, any::<u32>()).prop_map(|(k, v)| Change::Insert(k, v)),
            (0u8..16).prop_map(Change::Bump),
            Just(Change::Digest),
        ]
    }

    proptest! {
        #[test]
        fn the_kept_sum_equals_the_sum_from_scratch(changes in prop::collection::vec(change(), 0..64)) {
            let mut map: DigestedMap<u8, Entry> = DigestedMap::default();
            for c in changes {
                match c {
                    Change::Insert(k, v) => { map.insert(k, Entry(k, v)); }
                    Change::Bump(k) => { if let Some(e) = map.get_mut(&k) { e.1 = e.1.wrapping_add(1); } }
                    Change::Digest => { prop_assert_eq!(map.sum(), map.sum_from_scratch()); }
                }
                let copy = map.clone();
                prop_assert_eq!(copy.sum(), map.sum_from_scratch());
            }
            prop_assert_eq!(map.sum(), map.sum_from_scratch());
        }
    }

    #[test]
    fn a_changed_and_restored_entry_gives_the_old_sum() {
        let mut map: DigestedMap<u8, Entry> = (0..10).map(|k| (k, Entry(k, 0))).collect();
        let before = map.sum();
        if let Some(e) = map.get_mut(&3) {
            e.1 = 9;
        }
        let changed = map.sum();
        assert_ne!(changed, before);
        if let Some(e) = map.get_mut(&3) {
            e.1 = 0;
        }
        assert_eq!(map.sum(), before);
    }
}
