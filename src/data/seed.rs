//! Seed derivation. Every random choice in the data layer (synthetic samples, epoch orders,
//! augmentation) is a pure function of a few integers, so a resumed run reproduces it exactly.

/// The splitmix64 finaliser: a bijection on `u64` that spreads every input bit over all output bits.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from a sequence of integers; order matters, and (a, b) and (b, a) differ.
pub fn derive_seed(parts: &[u64]) -> u64 {
    // Chaining through the mixer (not XOR-ing the parts) keeps nearby tuples such as
    // (seed, epoch) and (seed, epoch + 1) far apart.
    parts
        .iter()
        .fold(0x6A09_E667_F3BC_C908, |h, &p| mix64(h ^ mix64(p)))
}
