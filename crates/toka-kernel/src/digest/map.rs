//! [`DigestedMap`]: a map that keeps the [`LtHash`] of its entries current lazily, so
//! the state digest costs time in proportion to what changed since it was last asked
//! for, not to the size of the state.
//!
//! How: until the digest is first asked for, the map is a plain map (nothing is
//! tracked: the writer's own kernel never asks, and a clone starts cold). The first
//! [`DigestedMap::sum`] hashes every entry into the sum. From then on, the first change
//! of an entry since the last `sum` (`get_mut`, `insert` over it; nothing is ever
//! removed) hashes the entry as it still is and keeps that hash beside its slot; the
//! next `sum` takes those hashes out of the sum, puts the changed entries' new hashes
//! in, adds the entries inserted since, and forgets the kept hashes. No hash is kept
//! per entry between sums: at a million tasks that was 32 bytes a task, a tenth of the
//! state. The price is one hash per entry changed between two sums, paid at its first
//! change instead of being read back.
//!
//! Layout, for memory: the entries live in one `Vec` of slots, in insertion order, and
//! a hash map holds only key → slot. Entries are never removed, so a slot's index never
//! changes. (A hash map of whole entries doubles to the next power of two of buckets of
//! the entry's size; at a million tasks that was a third of the state.) Iteration is in
//! insertion order; nothing may depend on it (images sort, the digest is a sum), and
//! equality ignores it.
//!
//! Invariant: `index[slots[i].0] == i` for every slot. When warm, `sum` is the sum of
//! the hashes of the entries as they were at the last `sum` for every slot below
//! `hashed` (`hashed <= slots.len()`), and `before[i]` is that hash for every slot
//! changed since. The tests below check the sum against a from-scratch sum after random
//! changes.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use toka_maps::ShardedMap;

use super::lthash::LtHash;

/// A value that hashes to one entry of the state digest (its key is part of it).
pub(crate) trait Digestible {
    /// The entry's hash: BLAKE3 of its canonical encoding, under a domain of its kind.
    fn entry_hash(&self) -> [u8; 32];
}

/// A map whose entries' [`LtHash`] is kept current (see the module doc).
pub(crate) struct DigestedMap<K, V> {
    /// Key to slot, in shards that grow one at a time (a whole-table doubling at a
    /// million tasks stalled the writer and the readers' copy for tens of ms).
    index: ShardedMap<K, usize>,
    slots: Vec<(K, V)>,
    cache: Mutex<SumCache>,
}

#[derive(Default)]
struct SumCache {
    warm: bool,
    /// Slots below this are in `sum`, as they were at the last `sum`.
    hashed: usize,
    /// Slots below `hashed` changed since the last `sum`: the hash `sum` holds for each.
    before: FxHashMap<usize, [u8; 32]>,
    sum: LtHash,
}

impl<K, V> Default for DigestedMap<K, V> {
    fn default() -> Self {
        Self {
            index: ShardedMap::default(),
            slots: Vec::new(),
            cache: Mutex::new(SumCache::default()),
        }
    }
}

impl<K: Clone, V: Clone> Clone for DigestedMap<K, V> {
    /// A copy starts cold: copies are working copies (the writer's kernel, a fork)
    /// that seldom ask for a digest, and should not pay to track one.
    fn clone(&self) -> Self {
        Self {
            index: self.index.clone(),
            slots: self.slots.clone(),
            cache: Mutex::new(SumCache::default()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: PartialEq> PartialEq for DigestedMap<K, V> {
    /// The same keys with equal values, whatever order they were inserted in: the
    /// cache is how the digest is computed, not what the map holds.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.slots.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<K: Eq + Hash + Clone, V: Eq> Eq for DigestedMap<K, V> {}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for DigestedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.slots.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Eq + Hash + Clone, V: Digestible> FromIterator<(K, V)> for DigestedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::default();
        for (key, value) in iter {
            map.insert(key, value);
        }
        map
    }
}

/// The entries of a [`DigestedMap`], in insertion order.
pub(crate) type Iter<'a, K, V> =
    std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

impl<'a, K, V> IntoIterator for &'a DigestedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.slots.iter().map(|(k, v)| (k, v))
    }
}

impl<K, V> DigestedMap<K, V> {
    fn lock(&self) -> MutexGuard<'_, SumCache> {
        // The cache is rebuilt from the entries if a panic left it half-updated.
        self.cache.lock().unwrap_or_else(|poisoned| {
            let mut cache = poisoned.into_inner();
            cache.warm = false;
            cache
        })
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The values, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().map(|(_, v)| v)
    }
}

impl<K: Eq + Hash + Clone, V> DigestedMap<K, V> {
    /// The value at `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = *self.index.get(key)?;
        self.slots.get(i).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.contains_key(key)
    }
}

impl<K: Eq + Hash + Clone, V: Digestible> DigestedMap<K, V> {
    /// Keeps slot `i`'s hash as `sum` holds it, before its first change since the last
    /// `sum`, if the digest is tracked.
    fn touching(&mut self, i: usize) {
        let cache = self.cache.get_mut().unwrap_or_else(|p| p.into_inner());
        if !cache.warm || i >= cache.hashed {
            return;
        }
        if let (Entry::Vacant(kept), Some((_, value))) = (cache.before.entry(i), self.slots.get(i))
        {
            kept.insert(value.entry_hash());
        }
    }

    /// The value at `key`, to change (its slot is noted for the next digest).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = *self.index.get(key)?;
        self.touching(i);
        self.slots.get_mut(i).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, returning the old value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(&i) = self.index.get(&key) {
            self.touching(i);
            return self
                .slots
                .get_mut(i)
                .map(|(_, old)| std::mem::replace(old, value));
        }
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push((key, value));
        None
    }

    /// The 32-byte summary of the entries' [`LtHash`]: the first call hashes every
    /// entry, later ones only those changed or added since the call before.
    pub(crate) fn sum(&self) -> [u8; 32] {
        let mut cache = self.lock();
        let cache = &mut *cache;
        if !cache.warm {
            cache.before.clear();
            cache.sum = LtHash::default();
            cache.hashed = 0;
            cache.warm = true;
        }
        for (i, old) in cache.before.drain() {
            let Some((_, value)) = self.slots.get(i) else {
                continue;
            };
            let new = value.entry_hash();
            if old != new {
                cache.sum.remove(&old);
                cache.sum.add(&new);
            }
        }
        let unhashed = self.slots.get(cache.hashed..).unwrap_or_default();
        for (_, value) in unhashed {
            cache.sum.add(&value.entry_hash());
        }
        cache.hashed = self.slots.len();
        // Room a burst of changes took is not kept until the next one.
        if cache.before.capacity() > 1024 {
            cache.before.shrink_to(0);
        }
        cache.sum.finish()
    }

    /// The summary computed from scratch, ignoring and not touching the cache.
    #[cfg(test)]
    pub(crate) fn sum_from_scratch(&self) -> [u8; 32] {
        let mut sum = LtHash::default();
        self.values().for_each(|v| sum.add(&v.entry_hash()));
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
    fn maps_with_the_same_entries_are_equal_whatever_their_insertion_order() {
        let forward: DigestedMap<u8, Entry> = (0..10).map(|k| (k, Entry(k, 0))).collect();
        let mut backward: DigestedMap<u8, Entry> =
            (0..10).rev().map(|k| (k, Entry(k, 0))).collect();
        assert_eq!(forward, backward);
        assert_eq!(forward.sum(), backward.sum());
        backward.insert(4, Entry(4, 1));
        assert_ne!(forward, backward);
        let mut longer = forward.clone();
        longer.insert(10, Entry(10, 0));
        assert_ne!(forward, longer);
        assert_ne!(longer, forward);
    }

    #[test]
    fn between_digests_only_entries_changed_since_the_last_keep_a_hash() {
        let mut map: DigestedMap<u8, Entry> = (0..10).map(|k| (k, Entry(k, 0))).collect();
        if let Some(e) = map.get_mut(&1) {
            e.1 = 5;
        }
        assert!(map.lock().before.is_empty(), "a cold map tracks nothing");
        map.sum();
        assert!(map.lock().before.is_empty());
        for v in 1..4 {
            if let Some(e) = map.get_mut(&3) {
                e.1 = v;
            }
        }
        map.insert(4, Entry(4, 7));
        map.insert(11, Entry(11, 0));
        // 3 (changed three times) and 4 (replaced); 11 is new, not in the sum yet.
        assert_eq!(map.lock().before.len(), 2);
        assert_eq!(map.sum(), map.sum_from_scratch());
        assert!(map.lock().before.is_empty());
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
