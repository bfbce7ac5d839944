//! [`LtHash`]: a homomorphic hash of a set, so one entry can be added or taken out
//! without rehashing the others.
//!
//! Each entry's 32-byte hash is stretched by BLAKE3's extendable output to 1024
//! 16-bit lanes, and the set's hash is the lane-wise sum (mod 2^16) of its entries'
//! lanes: the construction of Bellare and Micciancio as deployed by Lewi et al.
//! ("Securing Update Propagation with Homomorphic Hashing", 2019), whose parameters
//! (n = 1024, 16-bit lanes) they give about 200 bits of security. Narrower additive
//! sums (mod 2^256, say) fall to generalised-birthday attacks and are not used.
//!
//! Not a replacement for the chain digest: the log is pinned by its hash chain; this
//! only lets the state digest follow small changes in time proportional to them.

const LANES: usize = 1024;

/// The sum of a set's entry lanes. Empty set: all zero.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct LtHash(Box<[u16; LANES]>);

impl Default for LtHash {
    fn default() -> Self {
        Self(Box::new([0; LANES]))
    }
}

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", blake3::Hash::from(self.finish()))
    }
}

impl LtHash {
    /// Adds the entry whose hash is `entry`.
    pub(crate) fn add(&mut self, entry: &[u8; 32]) {
        let lanes = stretch(entry);
        self.0
            .iter_mut()
            .zip(lanes.iter())
            .for_each(|(sum, lane)| *sum = sum.wrapping_add(*lane));
    }

    /// Takes out the entry whose hash is `entry` (added before).
    pub(crate) fn remove(&mut self, entry: &[u8; 32]) {
        let lanes = stretch(entry);
        self.0
            .iter_mut()
            .zip(lanes.iter())
            .for_each(|(sum, lane)| *sum = sum.wrapping_sub(*lane));
    }

    /// A 32-byte summary of the sum (BLAKE3 of its little-endian lanes).
    pub(crate) fn finish(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"toka.lthash16.v1");
        let mut bytes = [0u8; LANES * 2];
        for (chunk, lane) in bytes.chunks_exact_mut(2).zip(self.0.iter()) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
        hasher.update(&bytes);
        *hasher.finalize().as_bytes()
    }
}

/// The entry's 1024 lanes: BLAKE3 in derive-key mode over the entry hash, read out to
/// 2048 bytes.
fn stretch(entry: &[u8; 32]) -> [u16; LANES] {
    let mut bytes = [0u8; LANES * 2];
    let mut hasher = blake3::Hasher::new_derive_key("toka.lthash16.v1 lanes");
    hasher.update(entry);
    hasher.finalize_xof().fill(&mut bytes);
    let mut lanes = [0u16; LANES];
    for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
        *lane = u16::from_le_bytes([chunk[0], chunk[1]]);
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> [u8; 32] {
        *blake3::hash(&[n]).as_bytes()
    }

    #[test]
    fn order_does_not_matter_and_removal_undoes_addition() {
        let (mut a, mut b) = (LtHash::default(), LtHash::default());
        a.add(&h(1));
        a.add(&h(2));
        b.add(&h(2));
        b.add(&h(1));
        assert_eq!(a.finish(), b.finish());
        b.add(&h(3));
        assert_ne!(a.finish(), b.finish());
        b.remove(&h(3));
        assert_eq!(a.finish(), b.finish());
        a.remove(&h(1));
        a.remove(&h(2));
        assert_eq!(a, LtHash::default());
    }

    #[test]
    fn a_multiset_counts_repeats() {
        let (mut once, mut twice) = (LtHash::default(), LtHash::default());
        once.add(&h(7));
        twice.add(&h(7));
        twice.add(&h(7));
        assert_ne!(once.finish(), twice.finish());
    }
}
