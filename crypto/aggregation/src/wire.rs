//! Canonical byte encoding helpers: a bounded reader, a writer, and bit-packing of reduced
//! residues. Every decode checks lengths before reading and rejects non-canonical input.

use crate::error::Error;

/// Appends fixed-width little-endian fields.
#[derive(Default, Debug)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// A writer with capacity.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }
    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// `u16` LE.
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// `u32` LE.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// `u64` LE.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u32` length prefix and the bytes.
    pub fn var(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.bytes(b);
    }
    /// Values of `bits` bits each, packed little-endian, the last byte zero-padded.
    pub fn packed(&mut self, values: &[u64], bits: u32) {
        pack_into(&mut self.0, values, bits);
    }
}

/// Reads fields from an untrusted buffer, never past its end.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, naming `what` in errors.
    pub fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Self { buf, what }
    }

    fn err(&self, reason: &'static str) -> Error {
        Error::Malformed {
            what: self.what,
            reason,
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.buf.len() < n {
            return Err(self.err("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    /// `u16` LE.
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// `u32` LE.
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// `u64` LE.
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A `u32`-length-prefixed byte string of at most `max` bytes.
    pub fn var(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(self.err("length prefix over the limit"));
        }
        self.take(len)
    }
    /// A tag that must match.
    pub fn expect(&mut self, tag: &[u8], reason: &'static str) -> Result<(), Error> {
        if self.take(tag.len())? != tag {
            return Err(self.err(reason));
        }
        Ok(())
    }
    /// `count` values of `bits` bits, each `< modulus`.
    pub fn packed(&mut self, count: usize, bits: u32, modulus: u64) -> Result<Vec<u64>, Error> {
        let nbytes = packed_len(count, bits);
        let b = self.take(nbytes)?;
        unpack(b, count, bits, modulus).ok_or_else(|| self.err("non-canonical packed value"))
    }
    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), Error> {
        if !self.buf.is_empty() {
            return Err(self.err("trailing bytes"));
        }
        Ok(())
    }
}

/// Bytes taken by `count` values of `bits` bits.
pub fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

/// Packs `values` (each `< 2^bits`, `bits ≤ 64`) little-endian into `out`.
pub fn pack_into(out: &mut Vec<u8>, values: &[u64], bits: u32) {
    out.reserve(packed_len(values.len(), bits));
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut acc: u128 = 0;
    let mut filled = 0u32;
    for &v in values {
        acc |= ((v & mask) as u128) << filled;
        filled += bits;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// Calls `f(i, value_i)` for the `count` values of `bits` bits packed in `buf`; `false` if `buf`
/// has the wrong length or nonzero padding bits (values are not range-checked here).
#[inline]
pub fn for_each_packed(buf: &[u8], count: usize, bits: u32, mut f: impl FnMut(usize, u64)) -> bool {
    if buf.len() != packed_len(count, bits) || bits == 0 || bits > 64 {
        return false;
    }
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let bits_us = bits as usize;
    // Values whose 8-byte window lies inside the buffer are read with one u64 load when
    // `bits + 7 ≤ 64`; the rest (and wider values) through a zero-padded u128 window.
    let fast = if bits <= 57 && buf.len() >= 8 {
        count.min((buf.len() - 8) * 8 / bits_us + 1)
    } else {
        0
    };
    for i in 0..fast {
        let bitpos = i * bits_us;
        let byte = bitpos / 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(&buf[byte..byte + 8]);
        f(i, (u64::from_le_bytes(a) >> (bitpos % 8)) & mask);
    }
    for i in fast..count {
        let bitpos = i * bits_us;
        let byte = bitpos / 8;
        let shift = (bitpos % 8) as u32;
        let mut a = [0u8; 16];
        let end = buf.len().min(byte + 16);
        a[..end - byte].copy_from_slice(&buf[byte..end]);
        f(i, ((u128::from_le_bytes(a) >> shift) as u64) & mask);
    }
    let used = count * bits_us;
    used.is_multiple_of(8) || buf[buf.len() - 1] >> (used % 8) == 0
}

/// Unpacks `count` values of `bits` bits; `None` if a value is `≥ modulus`, if the padding bits
/// are not zero, or if `buf` has the wrong length.
pub fn unpack(buf: &[u8], count: usize, bits: u32, modulus: u64) -> Option<Vec<u64>> {
    let mut out = Vec::with_capacity(if buf.len() == packed_len(count, bits) {
        count
    } else {
        0
    });
    let mut bad = false;
    let ok = for_each_packed(buf, count, bits, |_, v| {
        bad |= v >= modulus;
        out.push(v);
    });
    if ok && !bad { Some(out) } else { None }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_round_trips(bits in 1u32..=64, raw in proptest::collection::vec(any::<u64>(), 0..40)) {
            let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
            let values: Vec<u64> = raw.iter().map(|v| v & mask).collect();
            let mut buf = Vec::new();
            pack_into(&mut buf, &values, bits);
            prop_assert_eq!(buf.len(), packed_len(values.len(), bits));
            prop_assert_eq!(unpack(&buf, values.len(), bits, u64::MAX).unwrap_or_default(), values.clone());
        }

        #[test]
        fn unpack_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64), count in 0usize..40, bits in 0u32..70) {
            let _ = unpack(&buf, count, bits, 1 << 40);
        }
    }

    #[test]
    fn non_canonical_is_refused() {
        let mut buf = Vec::new();
        pack_into(&mut buf, &[5, 6, 7], 3);
        assert!(
            unpack(&buf, 3, 3, 7).is_none(),
            "7 is not below the modulus 7"
        );
        assert!(unpack(&buf, 3, 3, 8).is_some());
        let mut bad = buf.clone();
        *bad.last_mut().unwrap() |= 0x80;
        assert!(unpack(&bad, 3, 3, 8).is_none(), "padding bits must be zero");
        let mut r = Reader::new("x", &[1, 0, 0, 0, 9]);
        assert!(r.var(0).is_err());
        let r = Reader::new("x", &[1]);
        assert!(r.finish().is_err());
    }
}
