//! Public setup of a round: id, parameters, public seed, committee keys, and the digest that every
//! message of the round carries.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use veilgrid_core::seal::{SEAL_OVERHEAD, SealPublicKey};

use crate::error::Error;
use crate::params::RoundParams;
use crate::prg::RlwrPrg;
use crate::wire::{Reader, Writer, packed_len};

/// HPKE `info` under which share payloads are sealed.
pub const SHARE_SEAL_INFO: &[u8] = b"veilgrid/agg/share/v1";

const ROUND_TAG: &[u8; 4] = b"VGAR";

/// The public description of one round, shared by clients, members and the server.
///
/// Its [`Round::digest`] binds the round id, the parameters, the public seed and the committee's
/// sealing keys; every message of the round carries it, so a message of another round (or of the
/// same round id with other parameters) is refused.
pub struct Round {
    id: [u8; 32],
    params: RoundParams,
    public_seed: [u8; 32],
    committee: Vec<SealPublicKey>,
    digest: [u8; 32],
    prg: OnceLock<RlwrPrg>,
    #[allow(clippy::type_complexity)]
    pub(crate) verify_gens: OnceLock<crate::verifiable::Generators>,
}

impl core::fmt::Debug for Round {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Round")
            .field("id", &hex_short(&self.id))
            .field("params", &self.params)
            .field("digest", &hex_short(&self.digest))
            .finish_non_exhaustive()
    }
}

fn hex_short(b: &[u8; 32]) -> String {
    b[..8].iter().map(|x| format!("{x:02x}")).collect()
}

impl Round {
    /// Sets up a round. `committee[i]` is the sealing key of member `i + 1`.
    pub fn new(
        id: [u8; 32],
        params: RoundParams,
        public_seed: [u8; 32],
        committee: Vec<SealPublicKey>,
    ) -> Result<Self, Error> {
        if committee.len() != params.committee() as usize {
            return Err(Error::InvalidParams(
                "committee key count differs from the committee size",
            ));
        }
        let mut h = Sha256::new();
        h.update(b"veilgrid/agg/round/v1");
        h.update(id);
        h.update(params.to_bytes());
        h.update(public_seed);
        for k in &committee {
            h.update(k.to_bytes());
        }
        let digest = h.finalize().into();
        Ok(Self {
            id,
            params,
            public_seed,
            committee,
            digest,
            prg: OnceLock::new(),
            verify_gens: OnceLock::new(),
        })
    }

    /// The round id.
    pub fn id(&self) -> &[u8; 32] {
        &self.id
    }
    /// The parameters.
    pub fn params(&self) -> &RoundParams {
        &self.params
    }
    /// The public seed of the PRG's public randomness.
    pub fn public_seed(&self) -> &[u8; 32] {
        &self.public_seed
    }
    /// Sealing keys of members `1..=m`.
    pub fn committee(&self) -> &[SealPublicKey] {
        &self.committee
    }
    /// The digest bound into every message of the round.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The round's PRG, expanded on first use (members never need it).
    pub fn prg(&self) -> &RlwrPrg {
        self.prg.get_or_init(|| {
            RlwrPrg::new(
                self.params.ring(),
                &self.digest,
                self.params.masked_length(),
            )
        })
    }

    /// AAD of the sealed share payload of `client` for `member`.
    pub fn share_aad(&self, client: u64, member: u16) -> [u8; 42] {
        let mut aad = [0u8; 42];
        aad[..32].copy_from_slice(&self.digest);
        aad[32..40].copy_from_slice(&client.to_le_bytes());
        aad[40..].copy_from_slice(&member.to_le_bytes());
        aad
    }

    /// Bytes of a share payload before sealing.
    pub fn share_payload_len(&self) -> usize {
        let set = self.params.ring();
        4 + 1
            + 32
            + 8
            + 2
            + packed_len(set.degree(), set.output_bits())
            + packed_len(set.degree(), set.noise_bits())
    }

    /// Bytes of a sealed share payload.
    pub fn sealed_share_len(&self) -> usize {
        self.share_payload_len() + SEAL_OVERHEAD
    }

    /// Canonical bytes of the public round description.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + 1 + 32 + 20 + 32 + 2 + 32 * self.committee.len());
        w.bytes(ROUND_TAG);
        w.u8(1);
        w.bytes(&self.id);
        w.bytes(&self.params.to_bytes());
        w.bytes(&self.public_seed);
        w.u16(self.committee.len() as u16);
        for k in &self.committee {
            w.bytes(&k.to_bytes());
        }
        w.0
    }

    /// Decodes [`Round::to_bytes`] (at most `MAX_COMMITTEE` keys).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > 4 + 1 + 32 + 20 + 32 + 2 + 32 * crate::params::MAX_COMMITTEE as usize {
            return Err(Error::Malformed {
                what: "round",
                reason: "too long",
            });
        }
        let mut r = Reader::new("round", bytes);
        r.expect(ROUND_TAG, "bad tag")?;
        r.expect(&[1], "unknown version")?;
        let id = r.array::<32>()?;
        let params = RoundParams::from_bytes(r.take(20)?)?;
        let seed = r.array::<32>()?;
        let count = r.u16()? as usize;
        let mut committee = Vec::with_capacity(count);
        for _ in 0..count {
            committee.push(SealPublicKey::from_bytes(r.take(32)?)?);
        }
        r.finish()?;
        Self::new(id, params, seed, committee)
    }
}
