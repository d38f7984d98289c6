//! The server role: `ServerCollecting → close → ServerAwaitingMembers → finish`.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;

use crate::accumulator::Accumulator;
use crate::error::Error;
use crate::messages::{ClientId, ClientMessage, ClientMessageView, MemberMessage, PresentSet};
use crate::prg::{Seed, SeedHomomorphicPrg};
use crate::round::Round;
use crate::wire::{Reader, Writer};
use crate::{shamir, verifiable};

/// The result of a round: the exact sum and the clients it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateResult {
    /// `Σ x_i` over the counted clients, one integer per entry.
    pub sum: Vec<u64>,
    /// The counted clients (the declared present set), sorted.
    pub counted: Vec<ClientId>,
    /// Verifiable rounds: `R_j`, the sum of the counted clients' blinding factors of entry `j`.
    pub blindings: Option<Vec<Scalar>>,
}

/// The server while client messages arrive (before the deadline).
pub struct ServerCollecting<'r> {
    round: &'r Round,
    acc: Accumulator,
    clients: BTreeSet<ClientId>,
    commitments: Option<Vec<RistrettoPoint>>,
}

impl core::fmt::Debug for ServerCollecting<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerCollecting")
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

const SNAPSHOT_TAG: &[u8; 4] = b"VGAZ";
const AWAITING_TAG: &[u8; 4] = b"VGAW";

impl<'r> ServerCollecting<'r> {
    /// An empty round.
    pub fn new(round: &'r Round) -> Self {
        let p = round.params();
        Self {
            round,
            acc: Accumulator::new(p.ring().output_modulus(), p.masked_length()),
            clients: BTreeSet::new(),
            commitments: p
                .is_verifiable()
                .then(|| vec![RistrettoPoint::identity(); p.length()]),
        }
    }

    fn check(&self, msg: &ClientMessage) -> Result<(), Error> {
        let p = self.round.params();
        if &msg.round_digest != self.round.digest() {
            return Err(Error::WrongRound);
        }
        if msg.masked.len() != p.masked_length() {
            return Err(Error::WrongLength {
                expected: p.masked_length(),
                got: msg.masked.len(),
            });
        }
        let modulus = p.ring().output_modulus().value();
        if msg.masked.iter().any(|&v| v >= modulus) {
            return Err(Error::Malformed {
                what: "client message",
                reason: "masked value not reduced",
            });
        }
        if msg.sealed_shares.len() != p.committee() as usize
            || msg
                .sealed_shares
                .iter()
                .any(|s| s.len() != self.round.sealed_share_len())
        {
            return Err(Error::Malformed {
                what: "client message",
                reason: "sealed shares of the wrong count or size",
            });
        }
        Ok(())
    }

    fn admit(&self, client: ClientId) -> Result<(), Error> {
        if self.clients.contains(&client) {
            return Err(Error::DuplicateClient(client));
        }
        let max = self.round.params().max_clients();
        if self.clients.len() >= max as usize {
            return Err(Error::TooManyClients(max));
        }
        Ok(())
    }

    /// Verifies the attachment (verifiable rounds) and returns the entry commitments.
    fn verify_attachment(
        &self,
        client: ClientId,
        att: Option<&verifiable::Attachment>,
    ) -> Result<Option<Vec<RistrettoPoint>>, Error> {
        match (&self.commitments, att) {
            (Some(_), Some(att)) => Ok(Some(verifiable::verify(self.round, client, att)?)),
            (Some(_), None) => Err(Error::Mode(
                "verifiable round needs commitments and a proof",
            )),
            (None, Some(_)) => Err(Error::Mode("plain round got a verifiable attachment")),
            (None, None) => Ok(None),
        }
    }

    fn add_commitments(&mut self, points: Option<Vec<RistrettoPoint>>) {
        if let (Some(acc), Some(points)) = (&mut self.commitments, points) {
            for (a, c) in acc.iter_mut().zip(points) {
                *a += c;
            }
        }
    }

    /// Accepts a client's message: checks round, length, duplicates, capacity and (verifiable
    /// rounds) the range proof, then adds the masked vector. A refused message changes nothing.
    pub fn accept(&mut self, msg: &ClientMessage) -> Result<(), Error> {
        self.check(msg)?;
        self.admit(msg.client)?;
        let points = self.verify_attachment(msg.client, msg.attachment.as_ref())?;
        self.add_commitments(points);
        self.acc.add(&msg.masked);
        self.clients.insert(msg.client);
        Ok(())
    }

    /// Accepts a client's message from its canonical bytes, adding the packed masked vector
    /// straight into the running sum (no intermediate vector): the fast path of [`Self::accept`]
    /// with the same checks. Returns the client's id.
    pub fn accept_bytes(&mut self, bytes: &[u8]) -> Result<ClientId, Error> {
        let view = ClientMessageView::parse(self.round, bytes)?;
        self.admit(view.client)?;
        let points = self.verify_attachment(view.client, view.attachment.as_ref())?;
        let bits = self.round.params().ring().output_bits();
        if !self.acc.add_packed(view.masked_bytes, bits) {
            return Err(Error::Malformed {
                what: "client message",
                reason: "non-canonical masked value",
            });
        }
        self.add_commitments(points);
        self.clients.insert(view.client);
        Ok(view.client)
    }

    /// Removes an accepted client again (e.g. a member reported its share payload as bad).
    pub fn exclude(&mut self, msg: &ClientMessage) -> Result<(), Error> {
        self.check(msg)?;
        if !self.clients.contains(&msg.client) {
            return Err(Error::DeclaredSet("excluded client was not accepted"));
        }
        if let Some(acc) = &mut self.commitments {
            let att = msg.attachment.as_ref().ok_or(Error::Mode(
                "verifiable round needs commitments and a proof",
            ))?;
            for (a, c) in acc.iter_mut().zip(&att.commitments) {
                let p = c.decompress().ok_or(Error::Malformed {
                    what: "commitment",
                    reason: "not a Ristretto point",
                })?;
                *a -= p;
            }
        }
        self.acc.sub(&msg.masked);
        self.clients.remove(&msg.client);
        Ok(())
    }

    /// Clients accepted so far.
    pub fn clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.clients.iter().copied()
    }

    /// Ends collection (deadline reached or all `N` arrived) and declares the present set.
    pub fn close(self) -> Result<ServerAwaitingMembers<'r>, Error> {
        let need = self.round.params().min_clients() as usize;
        if self.clients.len() < need {
            return Err(Error::TooFewClients {
                have: self.clients.len(),
                need,
            });
        }
        let present = PresentSet::new(self.round, self.clients.into_iter().collect())?;
        Ok(ServerAwaitingMembers {
            round: self.round,
            acc: self.acc.reduced(),
            set_digest: present.digest(),
            present,
            members: BTreeMap::new(),
            commitments: self.commitments,
        })
    }

    /// Canonical snapshot of the state, to survive a restart (the state holds only public data:
    /// the sum of masked vectors and of commitments).
    pub fn snapshot(&self) -> Vec<u8> {
        let set = self.round.params().ring();
        let mut w = Writer::default();
        w.bytes(SNAPSHOT_TAG);
        w.u8(1);
        w.bytes(self.round.digest());
        w.u32(self.clients.len() as u32);
        for &c in &self.clients {
            w.u64(c);
        }
        w.packed(&self.acc.reduced(), set.output_bits());
        if let Some(acc) = &self.commitments {
            for p in acc {
                w.bytes(p.compress().as_bytes());
            }
        }
        w.0
    }

    /// Restores [`ServerCollecting::snapshot`].
    pub fn restore(round: &'r Round, bytes: &[u8]) -> Result<Self, Error> {
        let p = round.params();
        let set = p.ring();
        let max = 4
            + 1
            + 32
            + 4
            + 8 * p.max_clients() as usize
            + crate::wire::packed_len(p.masked_length(), set.output_bits())
            + 32 * p.length();
        if bytes.len() > max {
            return Err(Error::Malformed {
                what: "server snapshot",
                reason: "too long",
            });
        }
        let mut r = Reader::new("server snapshot", bytes);
        r.expect(SNAPSHOT_TAG, "bad tag")?;
        r.expect(&[1], "unknown version")?;
        if &r.array::<32>()? != round.digest() {
            return Err(Error::WrongRound);
        }
        let count = r.u32()? as usize;
        if count > p.max_clients() as usize {
            return Err(Error::TooManyClients(p.max_clients()));
        }
        let mut clients = BTreeSet::new();
        for _ in 0..count {
            if !clients.insert(r.u64()?) {
                return Err(Error::Malformed {
                    what: "server snapshot",
                    reason: "duplicate client",
                });
            }
        }
        let acc = r.packed(
            p.masked_length(),
            set.output_bits(),
            set.output_modulus().value(),
        )?;
        let commitments = if p.is_verifiable() {
            let mut v = Vec::with_capacity(p.length());
            for _ in 0..p.length() {
                v.push(CompressedRistretto(r.array::<32>()?).decompress().ok_or(
                    Error::Malformed {
                        what: "server snapshot",
                        reason: "not a Ristretto point",
                    },
                )?);
            }
            Some(v)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            round,
            acc: Accumulator::from_reduced(set.output_modulus(), acc),
            clients,
            commitments,
        })
    }
}

/// The server after the deadline: the present set is fixed, member messages arrive.
pub struct ServerAwaitingMembers<'r> {
    round: &'r Round,
    acc: Vec<u64>,
    present: PresentSet,
    set_digest: [u8; 32],
    members: BTreeMap<u16, Seed>,
    commitments: Option<Vec<RistrettoPoint>>,
}

impl core::fmt::Debug for ServerAwaitingMembers<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerAwaitingMembers")
            .field("present", &self.present.len())
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl<'r> ServerAwaitingMembers<'r> {
    /// The declared present set, to send to every committee member.
    pub fn present(&self) -> &PresentSet {
        &self.present
    }

    /// Members that answered.
    pub fn members(&self) -> impl Iterator<Item = u16> + '_ {
        self.members.keys().copied()
    }

    /// Canonical snapshot of the state after the deadline (declared set, running sum, member
    /// messages received so far), to survive a restart.
    pub fn snapshot(&self) -> Vec<u8> {
        let set = self.round.params().ring();
        let mut w = Writer::default();
        w.bytes(AWAITING_TAG);
        w.u8(1);
        w.bytes(self.round.digest());
        w.var(&self.present.to_bytes());
        w.packed(&self.acc, set.output_bits());
        if let Some(acc) = &self.commitments {
            for p in acc {
                w.bytes(p.compress().as_bytes());
            }
        }
        w.u16(self.members.len() as u16);
        for (&member, share_sum) in &self.members {
            let msg = MemberMessage {
                round_digest: *self.round.digest(),
                member,
                set_digest: self.set_digest,
                count: self.present.len() as u32,
                share_sum: share_sum.clone(),
            };
            w.bytes(&msg.to_bytes(self.round));
        }
        w.0
    }

    /// Restores [`ServerAwaitingMembers::snapshot`].
    pub fn restore(round: &'r Round, bytes: &[u8]) -> Result<Self, Error> {
        let p = round.params();
        let set = p.ring();
        let present_max = 4 + 1 + 32 + 4 + 8 * p.max_clients() as usize;
        let max = 4
            + 1
            + 32
            + 4
            + present_max
            + crate::wire::packed_len(p.masked_length(), set.output_bits())
            + 32 * p.length()
            + 2
            + p.committee() as usize * MemberMessage::encoded_len(round);
        if bytes.len() > max {
            return Err(Error::Malformed {
                what: "server snapshot",
                reason: "too long",
            });
        }
        let mut r = Reader::new("server snapshot", bytes);
        r.expect(AWAITING_TAG, "bad tag")?;
        r.expect(&[1], "unknown version")?;
        if &r.array::<32>()? != round.digest() {
            return Err(Error::WrongRound);
        }
        let present = PresentSet::from_bytes(round, r.var(present_max)?)?;
        let acc = r.packed(
            p.masked_length(),
            set.output_bits(),
            set.output_modulus().value(),
        )?;
        let commitments = if p.is_verifiable() {
            let mut v = Vec::with_capacity(p.length());
            for _ in 0..p.length() {
                v.push(CompressedRistretto(r.array::<32>()?).decompress().ok_or(
                    Error::Malformed {
                        what: "server snapshot",
                        reason: "not a Ristretto point",
                    },
                )?);
            }
            Some(v)
        } else {
            None
        };
        let count = r.u16()?;
        if count > p.committee() {
            return Err(Error::Malformed {
                what: "server snapshot",
                reason: "more members than the committee",
            });
        }
        let mut state = Self {
            round,
            acc,
            set_digest: present.digest(),
            present,
            members: BTreeMap::new(),
            commitments,
        };
        for _ in 0..count {
            let msg = MemberMessage::from_bytes(round, r.take(MemberMessage::encoded_len(round))?)?;
            state.accept_member(&msg)?;
        }
        r.finish()?;
        Ok(state)
    }

    /// Accepts a member's share sum; refuses another round, a set other than the declared one,
    /// and a second message from the same member.
    pub fn accept_member(&mut self, msg: &MemberMessage) -> Result<(), Error> {
        if &msg.round_digest != self.round.digest() {
            return Err(Error::WrongRound);
        }
        if msg.member == 0 || msg.member > self.round.params().committee() {
            return Err(Error::UnknownMember(msg.member));
        }
        if msg.set_digest != self.set_digest || msg.count as usize != self.present.len() {
            return Err(Error::MemberSetMismatch(msg.member));
        }
        if self.members.contains_key(&msg.member) {
            return Err(Error::DuplicateMember(msg.member));
        }
        self.members.insert(msg.member, msg.share_sum.clone());
        Ok(())
    }

    /// Reconstructs `Σ s_i` from `t + 1` members (checking any further ones), expands `G` once,
    /// unmasks and decodes. Fails without releasing anything if fewer than `t + 1` answered, if
    /// the members disagree, or if the result does not decode.
    pub fn finish(self) -> Result<AggregateResult, Error> {
        let p = self.round.params();
        let set = p.ring();
        let need = p.threshold() as usize + 1;
        if self.members.len() < need {
            return Err(Error::NotEnoughMembers {
                have: self.members.len(),
                need,
            });
        }
        let (mp, mq) = (set.output_modulus(), set.noise_modulus());
        let xs: Vec<u64> = self
            .members
            .keys()
            .take(need)
            .map(|&i| u64::from(i))
            .collect();
        let base: Vec<&Seed> = self.members.values().take(need).collect();
        let sp: Vec<&[u64]> = base.iter().map(|s| s.residues_p()).collect();
        let sq: Vec<&[u64]> = base.iter().map(|s| s.residues_q()).collect();
        let bad = Error::InvalidParams("duplicate member points");
        let seed_sum = Seed {
            p: shamir::reconstruct(mp, &xs, &sp).ok_or(bad.clone())?,
            q: shamir::reconstruct(mq, &xs, &sq).ok_or(bad.clone())?,
        };
        for (&idx, s) in self.members.iter().skip(need) {
            let lp = shamir::lagrange_coefficients(mp, &xs, u64::from(idx)).ok_or(bad.clone())?;
            let lq = shamir::lagrange_coefficients(mq, &xs, u64::from(idx)).ok_or(bad.clone())?;
            if shamir::combine(mp, &lp, &sp) != s.residues_p()
                || shamir::combine(mq, &lq, &sq) != s.residues_q()
            {
                return Err(Error::InconsistentMembers(idx));
            }
        }

        let mask = self.round.prg().expand(&seed_sum);
        drop(seed_sum);
        let k = self.present.len() as u64;
        let d = p.scale_bits();
        let half = 1u64 << (d - 1).min(63);
        let delta_mask = (1u64 << d) - 1;
        let max_err = k / 2;
        let entry_max = k * ((1u64 << p.bits()) - 1);
        let limb_max = k * ((1u64 << p.limb_bits()) - 1);
        let mut decoded = Vec::with_capacity(self.acc.len());
        for (j, (&a, &g)) in self.acc.iter().zip(&mask).enumerate() {
            let v = mp.add(mp.sub(a, g), half);
            let low = v & delta_mask;
            if low.abs_diff(half) > max_err {
                return Err(Error::Decode("rounding error beyond its bound"));
            }
            let x = v >> d;
            let bound = if j < p.length() { entry_max } else { limb_max };
            if x > bound {
                return Err(Error::Decode("entry above the largest possible sum"));
            }
            decoded.push(x);
        }
        let blindings = match &self.commitments {
            None => None,
            Some(c) => {
                let limbs = decoded.split_off(p.length());
                let r = verifiable::blinding_sums(self.round, &limbs);
                verifiable::check_opening(c, &decoded, &r)?;
                Some(r)
            }
        };
        Ok(AggregateResult {
            sum: decoded,
            counted: self.present.clients.clone(),
            blindings,
        })
    }
}
