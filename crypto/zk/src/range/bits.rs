//! The bit sizes Bulletproofs range proofs support.

use crate::Error;

/// Width `n` of a range proof: a value is proven to lie in `[0, 2^n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BitSize {
    /// `[0, 2^8)`.
    Bits8,
    /// `[0, 2^16)`.
    Bits16,
    /// `[0, 2^32)`.
    Bits32,
    /// `[0, 2^64)`.
    Bits64,
}

impl BitSize {
    /// Every supported size, smallest first.
    pub const ALL: [BitSize; 4] = [Self::Bits8, Self::Bits16, Self::Bits32, Self::Bits64];

    /// `n`.
    pub fn bits(self) -> usize {
        match self {
            Self::Bits8 => 8,
            Self::Bits16 => 16,
            Self::Bits32 => 32,
            Self::Bits64 => 64,
        }
    }

    /// The size for `n` bits.
    pub fn from_bits(n: u64) -> Result<Self, Error> {
        match n {
            8 => Ok(Self::Bits8),
            16 => Ok(Self::Bits16),
            32 => Ok(Self::Bits32),
            64 => Ok(Self::Bits64),
            other => Err(Error::UnsupportedBitSize(other)),
        }
    }

    /// The largest value in range, `2^n - 1`.
    pub fn max_value(self) -> u64 {
        match self {
            Self::Bits64 => u64::MAX,
            other => (1u64 << other.bits()) - 1,
        }
    }

    /// Whether `value < 2^n`.
    pub fn fits(self, value: u64) -> bool {
        value <= self.max_value()
    }

    /// The smallest size that fits `value`.
    pub fn smallest_fitting(value: u64) -> Self {
        Self::ALL
            .into_iter()
            .find(|b| b.fits(value))
            .unwrap_or(Self::Bits64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_limits() {
        for b in BitSize::ALL {
            assert_eq!(BitSize::from_bits(b.bits() as u64).unwrap(), b);
        }
        assert!(BitSize::from_bits(12).is_err());
        assert_eq!(BitSize::Bits8.max_value(), 255);
        assert!(!BitSize::Bits32.fits(1 << 32));
        assert!(BitSize::Bits64.fits(u64::MAX));
        assert_eq!(BitSize::smallest_fitting(63), BitSize::Bits8);
        assert_eq!(BitSize::smallest_fitting(256), BitSize::Bits16);
    }
}
