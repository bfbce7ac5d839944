//! [`ShardedMap`]: a hash map split into shards that each grow on their own, so that no
//! insert waits for the whole table to be rehashed.
//!
//! Why: a hash table doubles when it fills, moving every entry into a new table whose
//! pages are then faulted in. At a million entries that is tens of milliseconds, paid
//! by the one insert that crosses the threshold, under whatever lock the caller holds:
//! the writer's state, the readers' copy of it and the memory store all doubled in the
//! same batch (each message of a benchmark schedules one task), and the longest
//! acknowledgement of a run grew with the state, to 100 ms and more at a million.
//! Split into [`SHARDS`] shards chosen by the key's hash, a doubling moves a
//! [`SHARDS`]th of the entries, and the shards, filled unevenly by the hash, double at
//! different moments. The total work is the same; the longest pause is not.
//!
//! Not here: ordering (iteration follows the shards, deterministically for the same
//! insertions, and nothing may depend on it) or removal (nothing that uses it removes).
//!
//! Invariant: a key lives only in the shard [`shard_of`] names.

#![forbid(unsafe_code)]

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap};

/// How many shards a map has.
pub const SHARDS: usize = 256;

/// A hash map grown a shard at a time (see the crate doc).
#[derive(Clone)]
pub struct ShardedMap<K, V> {
    shards: Box<[FxHashMap<K, V>; SHARDS]>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self {
            shards: Box::new(std::array::from_fn(|_| FxHashMap::default())),
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The shard `key` lives in (below [`SHARDS`]): the top bits of its hash after a
/// finalising mix (MurmurHash3's), so that every bit of the shard depends on every bit
/// of the hash, whichever bits Fx spreads for a given shape of key, and the shard is
/// independent of the bits its own table uses (the low ones for the bucket, the top
/// seven for the tag).
fn shard_of<Q: Hash + ?Sized>(key: &Q) -> usize {
    let mut h = FxBuildHasher.hash_one(key);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> (64 - SHARDS.trailing_zeros())) as usize
}

impl<K, V> ShardedMap<K, V> {
    /// How many entries (counted over the shards: nothing on a hot path asks).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.is_empty())
    }

    /// Every entry, shard by shard.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }
}

impl<K: Eq + Hash, V> ShardedMap<K, V> {
    /// The value at `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[shard_of(key)].get(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, returning the old value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.shards[shard_of(&key)].insert(key, value)
    }

    /// The value at `key`, set to `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.shards[shard_of(&key)].entry(key).or_insert_with(make)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn behaves_as_one_hash_map(ops in prop::collection::vec((0u16..512, any::<u32>(), any::<bool>()), 0..2000)) {
            let mut sharded = ShardedMap::default();
            let mut plain = HashMap::new();
            for (key, value, by_entry) in ops {
                if by_entry {
                    let kept = *sharded.get_or_insert_with(key, || value);
                    prop_assert_eq!(kept, *plain.entry(key).or_insert(value));
                } else {
                    prop_assert_eq!(sharded.insert(key, value), plain.insert(key, value));
                }
                prop_assert_eq!(sharded.len(), plain.len());
            }
            for key in 0u16..512 {
                prop_assert_eq!(sharded.get(&key), plain.get(&key));
                prop_assert_eq!(sharded.contains_key(&key), plain.contains_key(&key));
            }
            let mut all: Vec<_> = sharded.iter().map(|(k, v)| (*k, *v)).collect();
            all.sort_unstable();
            let mut expected: Vec<_> = plain.into_iter().collect();
            expected.sort_unstable();
            prop_assert_eq!(all, expected);
        }
    }

    /// `count` keys shaped like event ids: the `seq` in the first six bytes, then ten
    /// bytes the same for every key (the log's namespace).
    fn event_ids(count: u64) -> impl Iterator<Item = [u8; 16]> {
        (1..=count).map(|seq| {
            let mut id = [0x5au8; 16];
            id[..6].copy_from_slice(&seq.to_be_bytes()[2..]);
            id
        })
    }

    #[test]
    fn keys_that_differ_in_a_few_bytes_spread_so_that_shards_double_at_different_moments() {
        let count = 1_000_000;
        let mut map = ShardedMap::default();
        for id in event_ids(count) {
            map.insert(id, ());
        }
        let lengths: Vec<usize> = map.shards.iter().map(|s| s.len()).collect();
        let share = count as usize / SHARDS;
        let (least, most) = (lengths.iter().min().unwrap(), lengths.iter().max().unwrap());
        // Even enough that no shard holds much more than its share...
        assert!(
            *most < share * 11 / 10 && *least > share * 9 / 10,
            "{lengths:?}"
        );
        // ...and uneven enough that they do not all cross a threshold in the same insert.
        assert!(most - least > SHARDS, "{lengths:?}");
        assert_eq!(map.len(), count as usize);
        assert!(event_ids(count).all(|id| map.contains_key(&id)));
    }
}
