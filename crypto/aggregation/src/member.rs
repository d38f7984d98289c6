//! The committee-member role: open shares as they arrive, then answer once for the declared set.

use std::collections::BTreeMap;

use veilgrid_core::seal::SealKeyPair;

use crate::error::Error;
use crate::messages::{ClientId, MemberMessage, PresentSet, SharePayload};
use crate::prg::Seed;
use crate::round::{Round, SHARE_SEAL_INFO};

/// A committee member collecting its sealed shares. [`CommitteeMember::respond`] consumes it, so a
/// member answers at most once per round: a server cannot ask for sums over two different sets
/// (whose difference would reveal a client's seed).
pub struct CommitteeMember<'r> {
    round: &'r Round,
    index: u16,
    keypair: &'r SealKeyPair,
    /// Sealed payloads of the accepted clients (ciphertexts: no per-client secret stays in memory).
    accepted: BTreeMap<ClientId, Vec<u8>>,
    /// Running sum of every accepted share, so that answering costs only the (few) clients that
    /// were accepted here but are not in the declared set, whose shares are opened again.
    total: Seed,
}

impl core::fmt::Debug for CommitteeMember<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CommitteeMember")
            .field("index", &self.index)
            .field("accepted", &self.accepted.len())
            .finish_non_exhaustive()
    }
}

/// What a member has collected of one round between two steps: the sealed payloads it accepted
/// (ciphertexts) and the running sum of the shares inside them (a [`Seed`], zeroized on drop,
/// hidden from `Debug`). Made by [`CommitteeMember::suspend`], used by [`CommitteeMember::resume`].
pub struct HeldShares {
    round_digest: [u8; 32],
    index: u16,
    accepted: BTreeMap<ClientId, Vec<u8>>,
    total: Seed,
}

impl HeldShares {
    /// How many clients' shares are held.
    pub fn len(&self) -> usize {
        self.accepted.len()
    }

    /// Whether no share is held.
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }

    /// Whether `client`'s share is held.
    pub fn contains(&self, client: ClientId) -> bool {
        self.accepted.contains_key(&client)
    }
}

impl core::fmt::Debug for HeldShares {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeldShares")
            .field("index", &self.index)
            .field("accepted", &self.accepted.len())
            .finish_non_exhaustive()
    }
}

impl<'r> CommitteeMember<'r> {
    /// Member `index` (1-based) of `round`, holding the secret half of its published key.
    pub fn new(round: &'r Round, index: u16, keypair: &'r SealKeyPair) -> Result<Self, Error> {
        if index == 0 || index > round.params().committee() {
            return Err(Error::UnknownMember(index));
        }
        if round.committee()[index as usize - 1] != keypair.public() {
            return Err(Error::InvalidParams(
                "key pair does not match the member's published key",
            ));
        }
        Ok(Self {
            round,
            index,
            keypair,
            accepted: BTreeMap::new(),
            total: Seed::zero(round.params().ring().degree()),
        })
    }

    /// Opens and checks `client`'s sealed share payload. A payload that does not open, or opens
    /// to another round, client or member, is refused with [`Error::BadSharePayload`] and not
    /// kept: the service reports the client so the server excludes it before declaring the set.
    pub fn accept_share(&mut self, client: ClientId, sealed: &[u8]) -> Result<(), Error> {
        if self.accepted.contains_key(&client) {
            return Err(Error::DuplicateClient(client));
        }
        let payload = self.open(client, sealed)?;
        self.total
            .add_assign(&payload.share, self.round.params().ring());
        self.accepted.insert(client, sealed.to_vec());
        Ok(())
    }

    fn open(&self, client: ClientId, sealed: &[u8]) -> Result<SharePayload, Error> {
        if sealed.len() != self.round.sealed_share_len() {
            return Err(Error::BadSharePayload {
                client,
                reason: "wrong sealed size",
            });
        }
        let opened = self
            .keypair
            .open(
                SHARE_SEAL_INFO,
                &self.round.share_aad(client, self.index),
                sealed,
            )
            .map_err(|_| Error::BadSharePayload {
                client,
                reason: "does not open under this member's key, round and client",
            })?;
        SharePayload::from_bytes(self.round, client, self.index, &opened)
    }

    /// Whether this member holds `client`'s share.
    pub fn holds(&self, client: ClientId) -> bool {
        self.accepted.contains_key(&client)
    }

    /// Clients whose shares this member holds.
    pub fn clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.accepted.keys().copied()
    }

    /// Sets the collected shares aside (no borrow of the round or the key), so a member process
    /// can open each share as it arrives during the round and pick the state up again later with
    /// [`CommitteeMember::resume`]. The running share sum stays zeroized-on-drop.
    pub fn suspend(self) -> HeldShares {
        HeldShares {
            round_digest: *self.round.digest(),
            index: self.index,
            accepted: self.accepted,
            total: self.total,
        }
    }

    /// Member `index` of `round` again, with the shares it opened before [`CommitteeMember::suspend`].
    /// Refused if `held` belongs to another round or another member.
    pub fn resume(
        round: &'r Round,
        index: u16,
        keypair: &'r SealKeyPair,
        held: HeldShares,
    ) -> Result<Self, Error> {
        if &held.round_digest != round.digest() {
            return Err(Error::WrongRound);
        }
        if held.index != index {
            return Err(Error::InvalidParams(
                "held shares belong to another committee member",
            ));
        }
        let mut m = Self::new(round, index, keypair)?;
        m.accepted = held.accepted;
        m.total = held.total;
        Ok(m)
    }

    /// The member's one message: the sum of its shares over exactly the declared set.
    pub fn respond(self, declared: &PresentSet) -> Result<MemberMessage, Error> {
        let round = self.round;
        if &declared.round_digest != round.digest() {
            return Err(Error::WrongRound);
        }
        let need = round.params().min_clients() as usize;
        if declared.len() < need {
            return Err(Error::TooFewClients {
                have: declared.len(),
                need,
            });
        }
        if declared
            .clients()
            .iter()
            .any(|c| !self.accepted.contains_key(c))
        {
            return Err(Error::DeclaredSet("no valid share for a declared client"));
        }
        // Σ over the declared set = running total − Σ over accepted clients not declared.
        let set = round.params().ring();
        let (mp, mq) = (set.output_modulus(), set.noise_modulus());
        let mut sum = self.total.clone();
        for (&c, sealed) in &self.accepted {
            if !declared.contains(c) {
                let share = self.open(c, sealed)?;
                for (a, &b) in sum.p.iter_mut().zip(&share.share.p) {
                    *a = mp.sub(*a, b);
                }
                for (a, &b) in sum.q.iter_mut().zip(&share.share.q) {
                    *a = mq.sub(*a, b);
                }
            }
        }
        Ok(MemberMessage {
            round_digest: *round.digest(),
            member: self.index,
            set_digest: declared.digest(),
            count: declared.len() as u32,
            share_sum: sum,
        })
    }
}
