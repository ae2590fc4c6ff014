//! The crate's fast hasher for hash maps of integer keys and short names.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// A fast hasher for integer keys and short names (a folded 128-bit
/// multiply, so high and low hash bits both depend on every input bit).
/// Not for keys an adversary chooses.
#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl IntHasher {
    fn mix(&mut self, n: u64) {
        let p = u128::from(self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        self.0 = (p >> 64) as u64 ^ p as u64;
    }
}

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.mix(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
}

/// A map keyed by integers, with [`IntHasher`].
pub(crate) type IntMap<V> = HashMap<u64, V, BuildHasherDefault<IntHasher>>;
/// A map keyed by names, with [`IntHasher`].
pub(crate) type NameMap<V> = HashMap<String, V, BuildHasherDefault<IntHasher>>;
