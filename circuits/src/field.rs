//! The scalar field of BN254 and conversions between integers and field elements.
//!
//! Signed integers are embedded as `v mod p` (so `-1` is `p - 1`). Every circuit
//! keeps its integer arithmetic far below `p / 2`, so the embedding never wraps;
//! comparisons add an offset `2^k` and range-check the sum (see `gadgets::compare`).

use ark_ff::{BigInteger, PrimeField};

/// The BN254 scalar field (the field of every circuit in this crate).
pub type Fr = ark_bn254::Fr;

/// Embeds a signed integer into the field (`-v` maps to `p - v`).
pub fn fr_from_i64(v: i64) -> Fr {
    if v >= 0 {
        Fr::from(v as u64)
    } else {
        -Fr::from(v.unsigned_abs())
    }
}

/// Embeds a signed 128-bit integer into the field.
pub fn fr_from_i128(v: i128) -> Fr {
    if v >= 0 {
        Fr::from(v as u128)
    } else {
        -Fr::from(v.unsigned_abs())
    }
}

/// `2^n` in the field.
pub fn pow2(n: usize) -> Fr {
    use ark_ff::Field;
    Fr::from(2u64).pow([n as u64])
}

/// The decimal representation of a field element's canonical integer (snarkjs style).
pub fn fr_to_decimal(v: &Fr) -> String {
    v.into_bigint().to_string()
}

/// The canonical little-endian 32-byte encoding of a field element.
pub fn fr_to_bytes(v: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    let bytes = v.into_bigint().to_bytes_le();
    out[..bytes.len()].copy_from_slice(&bytes);
    out
}

/// Decodes a canonical little-endian 32-byte field element; refuses values `>= p`.
pub fn fr_from_bytes(bytes: &[u8; 32]) -> crate::Result<Fr> {
    use ark_serialize::CanonicalDeserialize;
    Fr::deserialize_compressed(&bytes[..]).map_err(|e| crate::Error::Decode {
        what: "field element",
        reason: e.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn negative_values_are_additive_inverses() {
        assert_eq!(fr_from_i64(-5) + Fr::from(5u64), Fr::from(0u64));
        assert_eq!(fr_from_i64(i64::MIN) + Fr::from(1u64 << 63), Fr::from(0u64));
        assert_eq!(fr_from_i128(-7) + fr_from_i128(7), Fr::from(0u64));
    }

    #[test]
    fn bytes_roundtrip_and_non_canonical_refused() {
        let x = fr_from_i64(-42);
        assert_eq!(fr_from_bytes(&fr_to_bytes(&x)).unwrap(), x);
        assert!(fr_from_bytes(&[0xff; 32]).is_err());
        assert_eq!(fr_to_decimal(&Fr::from(12345u64)), "12345");
    }
}
