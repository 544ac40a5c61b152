//! A fast non-cryptographic hasher (the rotate-multiply "Fx" hash used inside
//! rustc) for the host and path maps.
//!
//! HashDoS does not apply: only the config inserts keys, so a request can only
//! probe a table whose layout it cannot influence; SipHash would cost more than
//! the rest of a lookup.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The length keeps zero padding from colliding ("" vs "\0").
        self.add(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(
                <[u8; 8]>::try_from(chunk).unwrap_or_default(),
            ));
        }
        let mut tail = [0u8; 8];
        for (slot, &b) in tail.iter_mut().zip(chunks.remainder()) {
            *slot = b;
        }
        if !chunks.remainder().is_empty() {
            self.add(u64::from_le_bytes(tail));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn distinguishes_lengths_and_tails() {
        let h = |s: &str| BuildHasherDefault::<FxHasher>::default().hash_one(s);
        assert_ne!(h("abc"), h("abd"));
        assert_ne!(h("/v1/items/1"), h("/v1/items/2"));
        assert_ne!(h(""), h("\0"));
        let mut map = FastMap::default();
        map.insert("a".to_owned(), 1);
        assert_eq!(map.get("a"), Some(&1));
    }
}
