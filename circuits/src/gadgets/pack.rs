//! Packing of small integers into field elements before hashing.
//!
//! Fields are laid out little-endian, in order, into chunks of at most
//! [`CHUNK_BITS`] bits; a field never straddles two chunks. In a circuit each
//! field is given by its (already range-checked) bits, so a chunk is a linear
//! combination of bits and costs nothing; because every field is range-checked to
//! its width and `CHUNK_BITS < 253`, the packing is injective. Hashing one chunk of
//! up to 248 bits instead of one element per value cuts Poseidon costs by up to
//! 30x for small values.

use super::{Bit, FrVar};
use crate::field::{Fr, pow2};
use ark_r1cs_std::fields::FieldVar;

/// Bits per chunk.
pub const CHUNK_BITS: usize = 248;

/// Packs `(value, width)` pairs natively (each `value < 2^width`, `width <= 128`).
/// Returns `None` if a value does not fit its width.
pub fn pack_native(fields: &[(u128, usize)]) -> Option<Vec<Fr>> {
    let mut chunks = Vec::new();
    let mut cur = Fr::from(0u64);
    let mut used = 0usize;
    let mut any = false;
    for &(value, width) in fields {
        if width == 0 || width > 128 || (width < 128 && value >> width != 0) {
            return None;
        }
        if used + width > CHUNK_BITS {
            chunks.push(cur);
            cur = Fr::from(0u64);
            used = 0;
        }
        cur += Fr::from(value) * pow2(used);
        used += width;
        any = true;
    }
    if any {
        chunks.push(cur);
    }
    Some(chunks)
}

/// Packs fields given by their little-endian bits, with the same layout as
/// [`pack_native`]. No constraints.
pub fn pack_bits(fields: &[Vec<Bit>]) -> Vec<FrVar> {
    let mut chunks = Vec::new();
    let mut cur = FrVar::zero();
    let mut used = 0usize;
    let mut any = false;
    for bits in fields {
        let width = bits.len();
        if used + width > CHUNK_BITS {
            chunks.push(core::mem::replace(&mut cur, FrVar::zero()));
            used = 0;
        }
        for (i, b) in bits.iter().enumerate() {
            cur += FrVar::from(b.clone()) * pow2(used + i);
        }
        used += width;
        any = true;
    }
    if any {
        chunks.push(cur);
    }
    chunks
}

/// Packs variables that the caller guarantees to be in `[0, 2^width)` (by range
/// checks or by construction), with the same layout as [`pack_native`]. No
/// constraints.
pub fn pack_vars(fields: &[(FrVar, usize)]) -> Vec<FrVar> {
    let mut chunks = Vec::new();
    let mut cur = FrVar::zero();
    let mut used = 0usize;
    let mut any = false;
    for (v, width) in fields {
        if used + width > CHUNK_BITS {
            chunks.push(core::mem::replace(&mut cur, FrVar::zero()));
            used = 0;
        }
        cur += v * pow2(used);
        used += width;
        any = true;
    }
    if any {
        chunks.push(cur);
    }
    chunks
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gadgets::range;
    use ark_r1cs_std::GR1CSVar;
    use ark_relations::gr1cs::ConstraintSystem;

    #[test]
    fn native_and_gadget_layouts_agree() {
        let fields: Vec<(u128, usize)> = (0..20u128)
            .map(|i| (i * 7919 % 4096, 12 + (i as usize % 5) * 10))
            .collect();
        let native = pack_native(&fields).unwrap();
        let cs = ConstraintSystem::<Fr>::new_ref();
        let bit_fields: Vec<Vec<Bit>> = fields
            .iter()
            .map(|&(v, w)| range::alloc_uint(cs.clone(), v, w).unwrap().1)
            .collect();
        let packed = pack_bits(&bit_fields);
        assert_eq!(packed.len(), native.len());
        for (a, b) in packed.iter().zip(&native) {
            assert_eq!(a.value().unwrap(), *b);
        }
        assert!(cs.is_satisfied().unwrap());
        assert!(native.len() > 1, "the test must cross a chunk boundary");
    }

    #[test]
    fn values_wider_than_their_field_are_refused() {
        assert!(pack_native(&[(256, 8)]).is_none());
        assert!(pack_native(&[(255, 8)]).is_some());
        assert!(pack_native(&[(1, 0)]).is_none());
    }
}
