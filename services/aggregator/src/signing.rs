//! What committee members sign (Ed25519, the key of their provider identity) and how the server
//! checks it. Each signed message starts with its own domain-separation string and names the
//! round, so a signature cannot be moved to another kind of message or another round.

use veilgrid_core::sign::{SigningIdentity, VerifierKey};

use crate::AggError;

const CHECK_DOMAIN: &[u8] = b"veilgrid/agg/member-check/v1\0";
const ANSWER_DOMAIN: &[u8] = b"veilgrid/agg/member-answer/v1\0";

/// The bytes a member signs to report the clients whose shares did not open (`bad` strictly
/// increasing).
pub fn check_bytes(round_id: &[u8; 32], member: u16, bad: &[u64]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECK_DOMAIN.len() + 32 + 2 + 4 + 8 * bad.len());
    m.extend_from_slice(CHECK_DOMAIN);
    m.extend_from_slice(round_id);
    m.extend_from_slice(&member.to_le_bytes());
    m.extend_from_slice(&(bad.len() as u32).to_le_bytes());
    for c in bad {
        m.extend_from_slice(&c.to_le_bytes());
    }
    m
}

/// The bytes a member signs with its answer (`message` = `MemberMessage::to_bytes`).
pub fn answer_bytes(round_id: &[u8; 32], message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(ANSWER_DOMAIN.len() + 32 + message.len());
    m.extend_from_slice(ANSWER_DOMAIN);
    m.extend_from_slice(round_id);
    m.extend_from_slice(message);
    m
}

/// Sign `bytes` as a member.
pub fn sign(identity: &SigningIdentity, bytes: &[u8]) -> [u8; 64] {
    identity.sign(bytes)
}

/// Check that member `member` (1-based) of a round whose signing keys are `signers` (32 bytes
/// each, in committee order) signed `bytes`.
pub(crate) fn verify(
    signers: &[u8],
    member: u16,
    what: &'static str,
    bytes: &[u8],
    signature: &[u8],
) -> Result<(), AggError> {
    let i = usize::from(member);
    let key = (i >= 1)
        .then(|| signers.get((i - 1) * 32..i * 32))
        .flatten()
        .ok_or(AggError::BadSignature {
            member,
            what,
            reason: "the round has no signing key for this member".into(),
        })?;
    let key = VerifierKey::from_bytes(key).map_err(|_| AggError::CorruptStore("signing key"))?;
    key.verify_named(what, bytes, signature)
        .map_err(|e| AggError::BadSignature {
            member,
            what,
            reason: e.to_string(),
        })
}
