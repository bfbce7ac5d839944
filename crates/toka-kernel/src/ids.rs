//! Deterministic ids for new entities.
//!
//! An entity created by the event at log position `seq` gets an id computed from `seq`
//! and the log's namespace (derived from the root agent, so two logs name their
//! entities differently). The low 62 bits are a bijective scramble of `seq` XOR the
//! namespace, so two events of one log can never produce the same id; the high 64 bits
//! are another scramble of both, so ids do not look alike. The result is laid out as a
//! version-8 ("custom") UUID, so tools that check UUID bits accept it.
//!
//! The root agent's own id is a BLAKE3 hash of the genesis time.

use toka_types::{EntityId, Timestamp};

/// The finaliser of SplitMix64: a fast bijective scramble of 64 bits.
const fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A bijective scramble of 62-bit values: each step (xor-shift right, multiply by an odd
/// constant modulo 2^62) is invertible on that domain.
const fn mix62(mut x: u64) -> u64 {
    x &= LOW_62_BITS;
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9) & LOW_62_BITS;
    x ^= x >> 29;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb) & LOW_62_BITS;
    x ^ (x >> 32)
}

const VERSION_MASK: u64 = 0xffff_ffff_ffff_0fff; // clears the version nibble of the high half
const VERSION_8: u64 = 0x0000_0000_0000_8000;
const LOW_62_BITS: u64 = (1 << 62) - 1;
const VARIANT_RFC4122: u64 = 0b10 << 62;

/// The id of the entity created by the event at `seq` in the log rooted at `root`.
pub(crate) fn derive_id(root: EntityId, seq: u64) -> EntityId {
    let ns = root.as_u128();
    let (ns_hi, ns_lo) = ((ns >> 64) as u64, ns as u64);
    let hi = (mix64(seq ^ ns_hi) & VERSION_MASK) | VERSION_8;
    let lo = mix62(seq ^ ns_lo) | VARIANT_RFC4122;
    EntityId::from_u128((u128::from(hi) << 64) | u128::from(lo))
}

/// The root agent's id: derived from the genesis time, so every log has its own.
pub(crate) fn root_id(now: Timestamp) -> EntityId {
    let hash = blake3::hash(&[b"toka.root.v1".as_slice(), &now.as_micros().to_le_bytes()].concat());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    EntityId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_positions_give_distinct_ids() {
        let root = root_id(Timestamp::from_micros(42));
        let ids: std::collections::HashSet<_> =
            (1..100_000u64).map(|s| derive_id(root, s)).collect();
        assert_eq!(ids.len(), 99_999);
        assert!(!ids.contains(&root));
    }

    #[test]
    fn ids_are_version_8_uuids() {
        let id = derive_id(root_id(Timestamp::from_micros(1)), 7).to_string();
        assert_eq!(&id[14..15], "8");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
    }
}
