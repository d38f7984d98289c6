//! The messages of a round and their canonical, size-limited byte encodings.
#![doc = include_str!("../docs/messages.md")]

use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::Error;
use crate::params::RingSet;
use crate::prg::Seed;
use crate::round::Round;
use crate::verifiable::Attachment;
use crate::wire::{Reader, Writer, packed_len};

/// A client's identifier within a round (assigned by the service).
pub type ClientId = u64;

const CLIENT_TAG: &[u8; 4] = b"VGAC";
const SHARE_TAG: &[u8; 4] = b"VGAS";
const MEMBER_TAG: &[u8; 4] = b"VGAM";
const PRESENT_TAG: &[u8; 4] = b"VGAP";
const VERSION: u8 = 1;

fn check_round(r: &mut Reader<'_>, round: &Round) -> Result<(), Error> {
    let digest = r.array::<32>()?;
    if &digest != round.digest() {
        return Err(Error::WrongRound);
    }
    Ok(())
}

/// The one message a client sends: its masked vector, one sealed share payload per committee
/// member, and (verifiable rounds) its commitments and range proof.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientMessage {
    pub(crate) round_digest: [u8; 32],
    pub(crate) client: ClientId,
    pub(crate) masked: Vec<u64>,
    pub(crate) sealed_shares: Vec<Vec<u8>>,
    pub(crate) attachment: Option<Attachment>,
}

impl fmt::Debug for ClientMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientMessage")
            .field("client", &self.client)
            .field("entries", &self.masked.len())
            .field("sealed_shares", &self.sealed_shares.len())
            .field("verifiable", &self.attachment.is_some())
            .finish()
    }
}

impl ClientMessage {
    /// The sending client.
    pub fn client(&self) -> ClientId {
        self.client
    }
    /// The masked vector (`masked_length` values modulo `p`).
    pub fn masked(&self) -> &[u64] {
        &self.masked
    }
    /// The sealed share payload for member `member` (1-based), to forward to that member.
    pub fn sealed_share(&self, member: u16) -> Option<&[u8]> {
        self.sealed_shares
            .get((member as usize).checked_sub(1)?)
            .map(Vec::as_slice)
    }
    /// The verifiable-mode attachment.
    pub fn attachment(&self) -> Option<&Attachment> {
        self.attachment.as_ref()
    }

    /// Exact encoded size for `round`.
    pub fn encoded_len(round: &Round) -> usize {
        let p = round.params();
        let set = p.ring();
        let mut n = 4 + 1 + 32 + 8 + 4 + packed_len(p.masked_length(), set.output_bits()) + 2;
        n += p.committee() as usize * (4 + round.sealed_share_len());
        n += 1;
        if p.is_verifiable() {
            n += Attachment::encoded_len(round);
        }
        n
    }

    /// Canonical bytes.
    pub fn to_bytes(&self, round: &Round) -> Vec<u8> {
        let set = round.params().ring();
        let mut w = Writer::with_capacity(Self::encoded_len(round));
        w.bytes(CLIENT_TAG);
        w.u8(VERSION);
        w.bytes(&self.round_digest);
        w.u64(self.client);
        w.u32(self.masked.len() as u32);
        w.packed(&self.masked, set.output_bits());
        w.u16(self.sealed_shares.len() as u16);
        for s in &self.sealed_shares {
            w.var(s);
        }
        match &self.attachment {
            None => w.u8(0),
            Some(a) => {
                w.u8(1);
                a.write(&mut w);
            }
        }
        w.0
    }

    /// Decodes a message of `round`: exact sizes, reduced residues, no trailing bytes.
    pub fn from_bytes(round: &Round, bytes: &[u8]) -> Result<Self, Error> {
        let view = ClientMessageView::parse(round, bytes)?;
        let set = round.params().ring();
        let masked = crate::wire::unpack(
            view.masked_bytes,
            round.params().masked_length(),
            set.output_bits(),
            set.output_modulus().value(),
        )
        .ok_or(Error::Malformed {
            what: "client message",
            reason: "non-canonical masked value",
        })?;
        Ok(Self {
            round_digest: *round.digest(),
            client: view.client,
            masked,
            sealed_shares: view.sealed_shares.iter().map(|s| s.to_vec()).collect(),
            attachment: view.attachment,
        })
    }
}

/// A client message parsed except for its masked vector, which stays packed (the server adds it
/// straight into its running sum).
pub(crate) struct ClientMessageView<'a> {
    pub(crate) client: ClientId,
    pub(crate) masked_bytes: &'a [u8],
    pub(crate) sealed_shares: Vec<&'a [u8]>,
    pub(crate) attachment: Option<Attachment>,
}

impl<'a> ClientMessageView<'a> {
    pub(crate) fn parse(round: &Round, bytes: &'a [u8]) -> Result<Self, Error> {
        const WHAT: &str = "client message";
        let p = round.params();
        let set = p.ring();
        let mut r = Reader::new(WHAT, bytes);
        r.expect(CLIENT_TAG, "bad tag")?;
        r.expect(&[VERSION], "unknown version")?;
        check_round(&mut r, round)?;
        if bytes.len() != ClientMessage::encoded_len(round) {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "wrong size for this round",
            });
        }
        let client = r.u64()?;
        let len = r.u32()? as usize;
        if len != p.masked_length() {
            return Err(Error::WrongLength {
                expected: p.masked_length(),
                got: len,
            });
        }
        let masked_bytes = r.take(packed_len(len, set.output_bits()))?;
        let members = r.u16()?;
        if members != p.committee() {
            return Err(Error::Malformed {
                what: WHAT,
                reason: "share count differs from the committee size",
            });
        }
        let mut sealed_shares = Vec::with_capacity(members as usize);
        for _ in 0..members {
            let s = r.var(round.sealed_share_len())?;
            if s.len() != round.sealed_share_len() {
                return Err(Error::Malformed {
                    what: WHAT,
                    reason: "sealed share of the wrong size",
                });
            }
            sealed_shares.push(s);
        }
        let attachment = match (r.u8()?, p.is_verifiable()) {
            (0, false) => None,
            (1, true) => Some(Attachment::read(&mut r, round)?),
            _ => {
                return Err(Error::Mode(
                    "attachment presence differs from the round's mode",
                ));
            }
        };
        r.finish()?;
        Ok(Self {
            client,
            masked_bytes,
            sealed_shares,
            attachment,
        })
    }
}

/// What a member finds inside a sealed share payload. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SharePayload {
    pub(crate) share: Seed,
}

impl SharePayload {
    pub(crate) fn to_bytes(&self, round: &Round, client: ClientId, member: u16) -> Vec<u8> {
        let set = round.params().ring();
        let mut w = Writer::with_capacity(round.share_payload_len());
        w.bytes(SHARE_TAG);
        w.u8(VERSION);
        w.bytes(round.digest());
        w.u64(client);
        w.u16(member);
        w.packed(self.share.residues_p(), set.output_bits());
        w.packed(self.share.residues_q(), set.noise_bits());
        w.0
    }

    pub(crate) fn from_bytes(
        round: &Round,
        client: ClientId,
        member: u16,
        bytes: &[u8],
    ) -> Result<Self, Error> {
        let bad = |reason| Error::BadSharePayload { client, reason };
        if bytes.len() != round.share_payload_len() {
            return Err(bad("wrong size"));
        }
        let set: RingSet = round.params().ring();
        let mut r = Reader::new("share payload", bytes);
        r.expect(SHARE_TAG, "bad tag").map_err(|_| bad("bad tag"))?;
        r.expect(&[VERSION], "bad version")
            .map_err(|_| bad("bad version"))?;
        check_round(&mut r, round).map_err(|_| bad("for another round"))?;
        if r.u64()? != client {
            return Err(bad("for another client"));
        }
        if r.u16()? != member {
            return Err(bad("for another member"));
        }
        let n = set.degree();
        let p = r
            .packed(n, set.output_bits(), set.output_modulus().value())
            .map_err(|_| bad("non-canonical share"))?;
        let q = r
            .packed(n, set.noise_bits(), set.noise_modulus().value())
            .map_err(|_| bad("non-canonical share"))?;
        r.finish().map_err(|_| bad("trailing bytes"))?;
        let share = Seed::from_residues(set, p, q).ok_or_else(|| bad("non-canonical share"))?;
        Ok(Self { share })
    }
}

/// The set of clients the server declares present (sorted, distinct), bound to the round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentSet {
    pub(crate) round_digest: [u8; 32],
    pub(crate) clients: Vec<ClientId>,
}

impl PresentSet {
    /// A declared set for `round`; sorts, refuses duplicates and more than `N` clients.
    pub fn new(round: &Round, mut clients: Vec<ClientId>) -> Result<Self, Error> {
        clients.sort_unstable();
        if clients.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::DeclaredSet("a client appears twice"));
        }
        if clients.len() > round.params().max_clients() as usize {
            return Err(Error::TooManyClients(round.params().max_clients()));
        }
        Ok(Self {
            round_digest: *round.digest(),
            clients,
        })
    }

    /// The clients, sorted.
    pub fn clients(&self) -> &[ClientId] {
        &self.clients
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// `true` if no client is present.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Whether `client` is in the set.
    pub fn contains(&self, client: ClientId) -> bool {
        self.clients.binary_search(&client).is_ok()
    }

    /// SHA-256 commitment to the set, carried by member messages.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"veilgrid/agg/present/v1");
        h.update(self.round_digest);
        h.update((self.clients.len() as u64).to_le_bytes());
        for c in &self.clients {
            h.update(c.to_le_bytes());
        }
        h.finalize().into()
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + 1 + 32 + 4 + 8 * self.clients.len());
        w.bytes(PRESENT_TAG);
        w.u8(VERSION);
        w.bytes(&self.round_digest);
        w.u32(self.clients.len() as u32);
        for &c in &self.clients {
            w.u64(c);
        }
        w.0
    }

    /// Decodes a set of `round` (at most `N` clients, strictly increasing).
    pub fn from_bytes(round: &Round, bytes: &[u8]) -> Result<Self, Error> {
        let max = round.params().max_clients() as usize;
        if bytes.len() > 4 + 1 + 32 + 4 + 8 * max {
            return Err(Error::Malformed {
                what: "present set",
                reason: "too long",
            });
        }
        let mut r = Reader::new("present set", bytes);
        r.expect(PRESENT_TAG, "bad tag")?;
        r.expect(&[VERSION], "unknown version")?;
        check_round(&mut r, round)?;
        let count = r.u32()? as usize;
        if count > max {
            return Err(Error::TooManyClients(max as u32));
        }
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            clients.push(r.u64()?);
        }
        r.finish()?;
        if clients.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Malformed {
                what: "present set",
                reason: "clients not strictly increasing",
            });
        }
        Ok(Self {
            round_digest: *round.digest(),
            clients,
        })
    }
}

/// A committee member's one message: the sum of its shares over the declared present set.
#[derive(Clone, PartialEq, Eq)]
pub struct MemberMessage {
    pub(crate) round_digest: [u8; 32],
    pub(crate) member: u16,
    pub(crate) set_digest: [u8; 32],
    pub(crate) count: u32,
    pub(crate) share_sum: Seed,
}

impl fmt::Debug for MemberMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberMessage")
            .field("member", &self.member)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl MemberMessage {
    /// The member's index (1-based).
    pub fn member(&self) -> u16 {
        self.member
    }

    /// The number of clients the member summed over.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Exact encoded size for `round`.
    pub fn encoded_len(round: &Round) -> usize {
        let set = round.params().ring();
        4 + 1
            + 32
            + 2
            + 32
            + 4
            + packed_len(set.degree(), set.output_bits())
            + packed_len(set.degree(), set.noise_bits())
    }

    /// Canonical bytes.
    pub fn to_bytes(&self, round: &Round) -> Vec<u8> {
        let set = round.params().ring();
        let mut w = Writer::with_capacity(Self::encoded_len(round));
        w.bytes(MEMBER_TAG);
        w.u8(VERSION);
        w.bytes(&self.round_digest);
        w.u16(self.member);
        w.bytes(&self.set_digest);
        w.u32(self.count);
        w.packed(self.share_sum.residues_p(), set.output_bits());
        w.packed(self.share_sum.residues_q(), set.noise_bits());
        w.0
    }

    /// Decodes a member message of `round`.
    pub fn from_bytes(round: &Round, bytes: &[u8]) -> Result<Self, Error> {
        let set = round.params().ring();
        let mut r = Reader::new("member message", bytes);
        r.expect(MEMBER_TAG, "bad tag")?;
        r.expect(&[VERSION], "unknown version")?;
        check_round(&mut r, round)?;
        if bytes.len() != Self::encoded_len(round) {
            return Err(Error::Malformed {
                what: "member message",
                reason: "wrong size for this round",
            });
        }
        let member = r.u16()?;
        if member == 0 || member > round.params().committee() {
            return Err(Error::UnknownMember(member));
        }
        let set_digest = r.array::<32>()?;
        let count = r.u32()?;
        let n = set.degree();
        let p = r.packed(n, set.output_bits(), set.output_modulus().value())?;
        let q = r.packed(n, set.noise_bits(), set.noise_modulus().value())?;
        r.finish()?;
        let share_sum = Seed::from_residues(set, p, q).ok_or(Error::Malformed {
            what: "member message",
            reason: "non-canonical share sum",
        })?;
        Ok(Self {
            round_digest: *round.digest(),
            member,
            set_digest,
            count,
            share_sum,
        })
    }
}
