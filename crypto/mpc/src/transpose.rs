//! 64 × 64 bit-matrix transposition: turns 64 ring elements into 64 bit planes
//! (plane `t`, bit `v` = bit `t` of element `v`) so that one word operation acts on
//! the same bit of 64 different values ("bit slicing").

/// Transpose in place: afterwards `m[t] >> v & 1 == old m[v] >> t & 1`.
pub(crate) fn transpose64(m: &mut [u64; 64]) {
    // Recursive block swap (Hacker's Delight §7-3), for the LSB-first bit order.
    let mut j = 32usize;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0usize;
        while k < 64 {
            // swap the upper j bits of m[k] with the lower j bits of m[k + j]
            let t = ((m[k] >> j) ^ m[k + j]) & mask;
            m[k] ^= t << j;
            m[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        mask ^= mask << j;
    }
}

/// Bit planes `0..w` of `values`, plane-major: plane `t` occupies words
/// `t·nw .. (t+1)·nw` where `nw = ⌈n/64⌉`; lanes past `n` are zero.
pub(crate) fn to_planes(values: &[u64], w: usize) -> Vec<u64> {
    let nw = values.len().div_ceil(64);
    let mut out = vec![0u64; w * nw];
    let mut block = [0u64; 64];
    for c in 0..nw {
        let chunk = &values[c * 64..values.len().min(c * 64 + 64)];
        block.fill(0);
        block[..chunk.len()].copy_from_slice(chunk);
        transpose64(&mut block);
        for t in 0..w {
            out[t * nw + c] = block[t];
        }
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn transpose_matches_definition() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut m = [0u64; 64];
        for x in m.iter_mut() {
            *x = rng.r#gen();
        }
        let orig = m;
        transpose64(&mut m);
        for t in 0..64 {
            for v in 0..64 {
                assert_eq!((m[t] >> v) & 1, (orig[v] >> t) & 1, "t={t} v={v}");
            }
        }
        transpose64(&mut m);
        assert_eq!(m, orig);
    }

    #[test]
    fn planes_of_short_vectors() {
        let vals: Vec<u64> = (0..70).map(|v| v * 3 + 1).collect();
        let p = to_planes(&vals, 10);
        let nw = 2;
        for (v, x) in vals.iter().enumerate() {
            for t in 0..10 {
                assert_eq!((p[t * nw + v / 64] >> (v % 64)) & 1, (x >> t) & 1);
            }
        }
        // padding lanes are zero
        for t in 0..10 {
            assert_eq!(p[t * nw + 1] >> 6, 0);
        }
    }
}
