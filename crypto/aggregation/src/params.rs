//! Ring parameter sets and per-round parameters, with the capacity (no wrap-around) check.
#![doc = include_str!("../docs/parameters.md")]

use crate::error::Error;
use crate::modarith::Modulus;

/// The LWR noise modulus `p'` (the Fermat prime `2^16 + 1`). The PRG works modulo `q = p·p'` and
/// rounds to `p`: the rounding noise is uniform of width `p' = q/p`.
pub const NOISE_PRIME: u64 = 65_537;
/// Output modulus of [`RingSet::R2048P32`]: the largest prime below `2^32` that is `1 mod 2^13`.
pub const P32: u64 = 4_294_828_033;
/// Output modulus of [`RingSet::R2048P40`]: the largest prime below `2^40` that is `1 mod 2^13`.
pub const P40: u64 = 1_099_511_480_321;
/// Output modulus of [`RingSet::R2048P50`]: the largest prime below `2^50` that is `1 mod 2^13`.
pub const P50: u64 = 1_125_899_906_826_241;
/// Output modulus of [`RingSet::R4096P61`]: the largest prime below `2^61` that is `1 mod 2^13`.
pub const P61: u64 = 2_305_843_009_213_554_689;

/// Largest vector length a round accepts.
pub const MAX_LENGTH: u32 = 1 << 24;
/// Largest number of clients a round accepts.
pub const MAX_CLIENTS: u32 = 1 << 20;
/// Largest committee.
pub const MAX_COMMITTEE: u16 = 1024;
/// Largest vector length of a verifiable round (Bulletproofs generators grow with it).
pub const MAX_VERIFIABLE_LENGTH: u32 = 1 << 14;

/// A named ring-LWR parameter set (see `docs/parameters.md` for the security analysis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingSet {
    /// `n = 2048`, `p ≈ 2^32`: the smallest messages, for narrow sums; core-SVP above 2^250.
    R2048P32,
    /// `n = 2048`, `p ≈ 2^40`: core-SVP ≈ 2^198 classical.
    R2048P40,
    /// `n = 2048`, `p ≈ 2^50`, `q = p·65537`: primal/dual core-SVP ≈ 2^140 classical, 2^128 quantum.
    R2048P50,
    /// `n = 4096`, `p ≈ 2^61`, `q = p·65537`: core-SVP above 2^250; for wide entries or many clients.
    R4096P61,
}

impl RingSet {
    /// All sets, smallest first.
    pub const ALL: [RingSet; 4] = [
        RingSet::R2048P32,
        RingSet::R2048P40,
        RingSet::R2048P50,
        RingSet::R4096P61,
    ];

    /// Ring degree `n`.
    pub fn degree(self) -> usize {
        match self {
            RingSet::R2048P32 | RingSet::R2048P40 | RingSet::R2048P50 => 2048,
            RingSet::R4096P61 => 4096,
        }
    }

    /// Output modulus `p`.
    pub fn output_modulus(self) -> Modulus {
        match self {
            RingSet::R2048P32 => Modulus::new(P32),
            RingSet::R2048P40 => Modulus::new(P40),
            RingSet::R2048P50 => Modulus::new(P50),
            RingSet::R4096P61 => Modulus::new(P61),
        }
    }

    /// Noise modulus `p'`.
    pub fn noise_modulus(self) -> Modulus {
        Modulus::new(NOISE_PRIME)
    }

    /// Bits per packed output coefficient (`ceil(log2 p)`).
    pub fn output_bits(self) -> u32 {
        64 - (self.output_modulus().value() - 1).leading_zeros()
    }

    /// Bits per packed noise-modulus coefficient.
    pub fn noise_bits(self) -> u32 {
        64 - (NOISE_PRIME - 1).leading_zeros()
    }

    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            RingSet::R2048P50 => 1,
            RingSet::R4096P61 => 2,
            RingSet::R2048P32 => 3,
            RingSet::R2048P40 => 4,
        }
    }

    /// From the wire code.
    pub fn from_code(code: u8) -> Result<Self, Error> {
        match code {
            1 => Ok(RingSet::R2048P50),
            2 => Ok(RingSet::R4096P61),
            3 => Ok(RingSet::R2048P32),
            4 => Ok(RingSet::R2048P40),
            _ => Err(Error::Malformed {
                what: "round parameters",
                reason: "unknown ring set",
            }),
        }
    }
}

/// Bits of the encoding scale `Δ = 2^d`: the smallest `d` with `2^d > max_clients`, so that the
/// accumulated rounding error `|e| ≤ ⌊N/2⌋` stays below `Δ/2`.
pub fn scale_bits(max_clients: u32) -> u32 {
    32 - max_clients.leading_zeros()
}

/// `true` if `max_clients` entries of `bits` bits sum without wrapping modulo `p` once scaled by
/// `Δ`: `Δ · (N·(2^bits − 1) + 1) ≤ p − 1`.
pub fn fits(set: RingSet, max_clients: u32, bits: u32) -> bool {
    if bits == 0 || bits > 62 {
        return false;
    }
    let delta = 1u128 << scale_bits(max_clients);
    let max_sum = max_clients as u128 * ((1u128 << bits) - 1);
    delta * (max_sum + 1) < set.output_modulus().value() as u128
}

/// The widest entry (in bits) that `max_clients` clients can sum in `set` without wrapping.
pub fn max_bits(set: RingSet, max_clients: u32) -> u32 {
    (1..=62)
        .rev()
        .find(|&b| fits(set, max_clients, b))
        .unwrap_or(0)
}

fn needed_bits(max_clients: u32, bits: u32) -> u32 {
    let delta_bits = scale_bits(max_clients);
    let max_sum = max_clients as u128 * ((1u128 << bits.min(62)) - 1) + 1;
    delta_bits + (128 - max_sum.leading_zeros())
}

/// Parameters of one round, public. Build with [`RoundParams::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundParams {
    length: u32,
    bits: u32,
    max_clients: u32,
    committee: u16,
    threshold: u16,
    min_clients: u32,
    verifiable: bool,
    ring: RingSet,
}

impl RoundParams {
    /// A round for vectors of `length` entries in `[0, 2^bits)`, at most `max_clients` clients, a
    /// committee of `committee` members of which any `threshold + 1` reconstruct and any
    /// `threshold` learn nothing. Picks the smallest ring set whose capacity holds the sum.
    pub fn new(
        length: u32,
        bits: u32,
        max_clients: u32,
        committee: u16,
        threshold: u16,
    ) -> Result<Self, Error> {
        let ring = RingSet::ALL
            .into_iter()
            .find(|&s| fits(s, max_clients.max(1), bits))
            .unwrap_or(RingSet::R4096P61);
        let p = Self {
            length,
            bits,
            max_clients,
            committee,
            threshold,
            min_clients: 1,
            verifiable: false,
            ring,
        };
        p.validate()?;
        Ok(p)
    }

    /// Uses the given ring set instead of the automatic choice.
    pub fn with_ring(mut self, ring: RingSet) -> Result<Self, Error> {
        self.ring = ring;
        self.validate()?;
        Ok(self)
    }

    /// Committee members refuse to answer for fewer than `min` present clients.
    pub fn with_min_clients(mut self, min: u32) -> Result<Self, Error> {
        self.min_clients = min;
        self.validate()?;
        Ok(self)
    }

    /// Turns on the verifiable mode (Pedersen commitments and Bulletproofs range proofs).
    pub fn verifiable(mut self) -> Result<Self, Error> {
        self.verifiable = true;
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.length == 0 || self.length > MAX_LENGTH {
            return Err(Error::InvalidParams("length must be in 1..=2^24"));
        }
        if self.bits == 0 || self.bits > 62 {
            return Err(Error::InvalidParams("bits must be in 1..=62"));
        }
        if self.max_clients == 0 || self.max_clients > MAX_CLIENTS {
            return Err(Error::InvalidParams("max clients must be in 1..=2^20"));
        }
        if self.threshold == 0 {
            return Err(Error::InvalidParams(
                "threshold must be at least 1 (one member alone must learn nothing)",
            ));
        }
        if self.committee > MAX_COMMITTEE || self.committee < self.threshold + 1 {
            return Err(Error::InvalidParams(
                "committee size must be in threshold+1..=1024",
            ));
        }
        if self.min_clients == 0 || self.min_clients > self.max_clients {
            return Err(Error::InvalidParams(
                "min clients must be in 1..=max clients",
            ));
        }
        if self.verifiable && self.length > MAX_VERIFIABLE_LENGTH {
            return Err(Error::InvalidParams(
                "verifiable rounds support at most 2^14 entries",
            ));
        }
        if !fits(self.ring, self.max_clients, self.bits) {
            return Err(Error::Capacity {
                clients: self.max_clients,
                bits: self.bits,
                needed_bits: needed_bits(self.max_clients, self.bits),
                available_bits: 64 - self.ring.output_modulus().value().leading_zeros() - 1,
            });
        }
        Ok(())
    }

    /// Vector length `L`.
    pub fn length(&self) -> usize {
        self.length as usize
    }
    /// Bits per entry `B`: entries are in `[0, 2^B)`.
    pub fn bits(&self) -> u32 {
        self.bits
    }
    /// Maximum number of clients `N`.
    pub fn max_clients(&self) -> u32 {
        self.max_clients
    }
    /// Committee size `m`.
    pub fn committee(&self) -> u16 {
        self.committee
    }
    /// Threshold `t`: `t` members learn nothing, `t + 1` reconstruct.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }
    /// Minimum number of present clients for members to answer.
    pub fn min_clients(&self) -> u32 {
        self.min_clients
    }
    /// Whether the round is verifiable.
    pub fn is_verifiable(&self) -> bool {
        self.verifiable
    }
    /// The ring parameter set.
    pub fn ring(&self) -> RingSet {
        self.ring
    }
    /// `d` with `Δ = 2^d`.
    pub fn scale_bits(&self) -> u32 {
        scale_bits(self.max_clients)
    }
    /// Width of the blinding-factor limbs carried in the masked vector (verifiable mode): the
    /// widest entry the capacity allows, at most 32 bits.
    pub fn limb_bits(&self) -> u32 {
        max_bits(self.ring, self.max_clients).min(32)
    }
    /// Limbs per blinding factor (a Ristretto scalar is below `2^253`).
    pub fn limbs_per_scalar(&self) -> usize {
        253usize.div_ceil(self.limb_bits() as usize)
    }
    /// Entries of the masked vector: `L`, plus `L · limbs` blinding limbs in verifiable mode.
    pub fn masked_length(&self) -> usize {
        if self.verifiable {
            self.length() * (1 + self.limbs_per_scalar())
        } else {
            self.length()
        }
    }

    /// Canonical bytes (fixed width, little-endian), bound into the round digest.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[0] = 1; // version
        out[1] = self.ring.code();
        out[2..6].copy_from_slice(&self.length.to_le_bytes());
        out[6] = self.bits as u8;
        out[7..11].copy_from_slice(&self.max_clients.to_le_bytes());
        out[11..13].copy_from_slice(&self.committee.to_le_bytes());
        out[13..15].copy_from_slice(&self.threshold.to_le_bytes());
        out[15..19].copy_from_slice(&self.min_clients.to_le_bytes());
        out[19] = u8::from(self.verifiable);
        out
    }

    /// Decodes and validates [`RoundParams::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let malformed = |reason| Error::Malformed {
            what: "round parameters",
            reason,
        };
        if bytes.len() != 20 {
            return Err(malformed("expected 20 bytes"));
        }
        if bytes[0] != 1 {
            return Err(malformed("unknown version"));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let verifiable = match bytes[19] {
            0 => false,
            1 => true,
            _ => return Err(malformed("verifiable flag must be 0 or 1")),
        };
        let p = Self {
            ring: RingSet::from_code(bytes[1])?,
            length: u32_at(2),
            bits: u32::from(bytes[6]),
            max_clients: u32_at(7),
            committee: u16_at(11),
            threshold: u16_at(13),
            min_clients: u32_at(15),
            verifiable,
        };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn moduli_are_ntt_friendly_primes() {
        for set in RingSet::ALL {
            let p = set.output_modulus().value();
            assert!(Modulus::is_probable_prime(p));
            assert_eq!((p - 1) % (2 * set.degree() as u64), 0);
            assert_eq!((NOISE_PRIME - 1) % (2 * set.degree() as u64), 0);
        }
        assert!(Modulus::is_probable_prime(NOISE_PRIME));
        assert_eq!(RingSet::R2048P50.output_bits(), 50);
        assert_eq!(RingSet::R2048P40.output_bits(), 40);
        assert_eq!(RingSet::R2048P32.output_bits(), 32);
        for set in RingSet::ALL {
            assert_eq!(RingSet::from_code(set.code()).unwrap(), set);
        }
        assert_eq!(RingSet::R4096P61.output_bits(), 61);
        assert_eq!(RingSet::R2048P50.noise_bits(), 17);
    }

    #[test]
    fn capacity_is_checked_exactly() {
        assert_eq!(scale_bits(1000), 10);
        assert_eq!(scale_bits(1024), 11);
        // 1000 clients of 30-bit entries fit under 2^50, 31-bit entries do not.
        assert!(fits(RingSet::R2048P50, 1000, 30));
        assert!(!fits(RingSet::R2048P50, 1000, 31));
        assert_eq!(max_bits(RingSet::R2048P50, 1000), 30);
        // The smallest set that holds the sum is chosen: 1000 × 16 bits needs 36 bits.
        assert_eq!(
            RoundParams::new(10, 16, 1000, 5, 2).unwrap().ring(),
            RingSet::R2048P40
        );
        assert_eq!(
            RoundParams::new(10, 12, 1000, 5, 2).unwrap().ring(),
            RingSet::R2048P32
        );
        assert_eq!(
            RoundParams::new(10, 30, 1000, 5, 2).unwrap().ring(),
            RingSet::R2048P50
        );
        let p = RoundParams::new(100, 31, 1000, 5, 2).unwrap();
        assert_eq!(p.ring(), RingSet::R4096P61);
        let err = RoundParams::new(100, 31, 1000, 5, 2)
            .unwrap()
            .with_ring(RingSet::R2048P50)
            .unwrap_err();
        assert!(matches!(err, Error::Capacity { .. }));
        assert!(matches!(
            RoundParams::new(100, 62, 1 << 20, 5, 2).unwrap_err(),
            Error::Capacity { .. }
        ));
    }

    #[test]
    fn invalid_params_are_refused() {
        assert!(RoundParams::new(0, 8, 10, 5, 2).is_err());
        assert!(RoundParams::new(10, 0, 10, 5, 2).is_err());
        assert!(RoundParams::new(10, 8, 0, 5, 2).is_err());
        assert!(RoundParams::new(10, 8, 10, 2, 2).is_err());
        assert!(RoundParams::new(10, 8, 10, 5, 0).is_err());
        assert!(
            RoundParams::new(10, 8, 10, 5, 2)
                .unwrap()
                .with_min_clients(11)
                .is_err()
        );
    }

    #[test]
    fn params_round_trip() {
        let p = RoundParams::new(1000, 16, 1000, 5, 2)
            .unwrap()
            .with_min_clients(3)
            .unwrap()
            .verifiable()
            .unwrap();
        assert_eq!(RoundParams::from_bytes(&p.to_bytes()).unwrap(), p);
        let mut b = p.to_bytes();
        b[19] = 7;
        assert!(RoundParams::from_bytes(&b).is_err());
        assert!(RoundParams::from_bytes(&b[..19]).is_err());
    }
}
