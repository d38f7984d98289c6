//! The client role: `Client::new → encode → mask`, each step consuming the previous one.

use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::messages::{ClientId, ClientMessage, SharePayload};
use crate::prg::Seed;
use crate::round::{Round, SHARE_SEAL_INFO};
use crate::{shamir, verifiable};

/// A client of a round, before it has an input.
#[derive(Debug)]
pub struct Client<'r> {
    round: &'r Round,
    id: ClientId,
}

/// A client with a validated input, ready to mask. The input is zeroized on drop.
pub struct EncodedInput<'r> {
    round: &'r Round,
    id: ClientId,
    values: Zeroizing<Vec<u64>>,
}

impl fmt::Debug for EncodedInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedInput")
            .field("id", &self.id)
            .field("values", &"<hidden>")
            .finish()
    }
}

impl<'r> Client<'r> {
    /// Client `id` of `round`.
    pub fn new(round: &'r Round, id: ClientId) -> Self {
        Self { round, id }
    }

    /// Checks the input's length and bound (`x_j < 2^B`).
    pub fn encode(self, input: &[u64]) -> Result<EncodedInput<'r>, Error> {
        let p = self.round.params();
        if input.len() != p.length() {
            return Err(Error::WrongLength {
                expected: p.length(),
                got: input.len(),
            });
        }
        if let Some(index) = input.iter().position(|&x| x >> p.bits() != 0) {
            return Err(Error::EntryOverBound {
                index,
                bits: p.bits(),
            });
        }
        Ok(EncodedInput {
            round: self.round,
            id: self.id,
            values: Zeroizing::new(input.to_vec()),
        })
    }
}

impl EncodedInput<'_> {
    /// Masks the input with `G(s)` for a fresh seed `s`, Shamir-shares `s` to the committee and
    /// seals each member's shares to its key: the client's one message.
    pub fn mask<R: RngCore + CryptoRng>(self, rng: &mut R) -> Result<ClientMessage, Error> {
        // All of the client's randomness comes from a ChaCha20 generator seeded once from the
        // caller's generator (an `OsRng` would cost a system call per word).
        let mut seed_bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed_bytes.as_mut());
        let mut local = ChaCha20Rng::from_seed(*seed_bytes);
        let rng = &mut local;
        let round = self.round;
        let p = round.params();
        let set = p.ring();
        let d = p.scale_bits();

        // Entries, then (verifiable) the blinding-factor limbs.
        let mut plain: Zeroizing<Vec<u64>> = Zeroizing::new(Vec::with_capacity(p.masked_length()));
        plain.extend_from_slice(&self.values);
        let attachment = if p.is_verifiable() {
            let (att, mut blindings) = verifiable::prove(round, self.id, &self.values, rng)?;
            plain.extend(verifiable::limbs(round, &blindings));
            blindings.zeroize();
            Some(att)
        } else {
            None
        };

        // Δ·x + G(s) mod p. Capacity guarantees Δ·x < p for entries and limbs.
        let mut masked: Vec<u64> = plain.iter().map(|&x| x << d).collect();
        let seed = Seed::random(set, set.degree(), rng);
        round.prg().expand_add(&seed, &mut masked);

        let t = p.threshold() as usize;
        let m = p.committee() as usize;
        let mut shares_p = shamir::share(set.output_modulus(), seed.residues_p(), t, m, rng);
        let mut shares_q = shamir::share(set.noise_modulus(), seed.residues_q(), t, m, rng);
        let mut sealed_shares = Vec::with_capacity(m);
        for (i, (sp, sq)) in shares_p.iter_mut().zip(shares_q.iter_mut()).enumerate() {
            let member = (i + 1) as u16;
            let payload = SharePayload {
                share: Seed {
                    p: core::mem::take(sp),
                    q: core::mem::take(sq),
                },
            };
            let bytes = Zeroizing::new(payload.to_bytes(round, self.id, member));
            let key = &round.committee()[i];
            sealed_shares.push(key.seal(
                SHARE_SEAL_INFO,
                &round.share_aad(self.id, member),
                &bytes,
            )?);
        }
        Ok(ClientMessage {
            round_digest: *round.digest(),
            client: self.id,
            masked,
            sealed_shares,
            attachment,
        })
    }
}
