//! Receipts: what a provider signs when it completes a request.
//!
//! The signature covers a canonical, fixed-layout encoding (not the protobuf
//! encoding, whose byte form is not canonical):
//!
//! ```text
//! "veilgrid/receipt/v1" 0x00
//! request_hash (32) response_hash (32) provider_id (32) protocol_id (32)
//! price (u64 BE) currency_len (u16 BE) currency (UTF-8, <= 64 bytes)
//! started_at_ms (u64 BE) finished_at_ms (u64 BE)
//! ```
//!
//! `request_hash = SHA-256("veilgrid/request/v1" 0x00 ‖ protocol_id ‖ payload)`,
//! `response_hash = SHA-256("veilgrid/response/v1" 0x00 ‖ completion)`;
//! `provider_id` is the provider's Ed25519 public key, so a receipt names the key
//! that must verify it and no provider can sign in another's name.

use sha2::{Digest, Sha256};

use crate::{
    Error, limits,
    protocol::ProtocolId,
    sign::{SigningIdentity, VerifierKey},
};

const RECEIPT_TAG: &[u8] = b"veilgrid/receipt/v1\0";
const REQUEST_TAG: &[u8] = b"veilgrid/request/v1\0";
const RESPONSE_TAG: &[u8] = b"veilgrid/response/v1\0";
/// Longest currency id a receipt carries.
pub const MAX_CURRENCY_LEN: usize = 64;
/// Length of the canonical encoding without the currency id.
const FIXED_LEN: usize = RECEIPT_TAG.len() + 4 * 32 + 8 + 2 + 8 + 8;
/// Longest canonical receipt encoding.
pub const MAX_RECEIPT_LEN: usize = FIXED_LEN + MAX_CURRENCY_LEN;

/// The hash of a request as a receipt names it.
pub fn request_hash(protocol: &ProtocolId, payload: &[u8]) -> [u8; 32] {
    let mut h = RequestHasher::new(protocol);
    h.update(payload);
    h.finish()
}

/// [`request_hash`] over a payload that arrives in pieces (a streamed request,
/// hashed as it passes through the router).
#[derive(Clone)]
pub struct RequestHasher(Sha256);

impl RequestHasher {
    /// Start the hash of a request for `protocol`.
    pub fn new(protocol: &ProtocolId) -> Self {
        let mut h = Sha256::new();
        h.update(REQUEST_TAG);
        h.update(protocol.as_bytes());
        Self(h)
    }

    /// Absorb the next piece of the payload.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The request hash of everything absorbed.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl std::fmt::Debug for RequestHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestHasher")
    }
}

/// The hash of a completion as a receipt names it.
pub fn response_hash(completion: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(RESPONSE_TAG);
    h.update(completion);
    h.finalize().into()
}

/// The signed facts of one completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// [`request_hash`] of the request.
    pub request_hash: [u8; 32],
    /// [`response_hash`] of the completion.
    pub response_hash: [u8; 32],
    /// The provider's Ed25519 public key.
    pub provider_id: [u8; 32],
    /// The protocol completed.
    pub protocol_id: ProtocolId,
    /// Price charged, in the smallest unit of `currency`.
    pub price: u64,
    /// The currency the price is quoted in.
    pub currency: String,
    /// When the provider started, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// When the provider finished, milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
}

/// A receipt with the provider's signature over its canonical encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReceipt {
    /// The facts.
    pub receipt: Receipt,
    /// Ed25519 signature by `receipt.provider_id` over [`Receipt::canonical_bytes`].
    pub signature: [u8; 64],
}

impl Receipt {
    /// The canonical encoding that is signed.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, Error> {
        limits::check_len("receipt currency id", self.currency.len(), MAX_CURRENCY_LEN)?;
        let mut out = Vec::with_capacity(FIXED_LEN + self.currency.len());
        out.extend_from_slice(RECEIPT_TAG);
        out.extend_from_slice(&self.request_hash);
        out.extend_from_slice(&self.response_hash);
        out.extend_from_slice(&self.provider_id);
        out.extend_from_slice(self.protocol_id.as_bytes());
        out.extend_from_slice(&self.price.to_be_bytes());
        out.extend_from_slice(&(self.currency.len() as u16).to_be_bytes());
        out.extend_from_slice(self.currency.as_bytes());
        out.extend_from_slice(&self.started_at_ms.to_be_bytes());
        out.extend_from_slice(&self.finished_at_ms.to_be_bytes());
        Ok(out)
    }

    /// Decode a canonical encoding (size-limited, strict: no trailing bytes).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, Error> {
        limits::check_len("receipt", bytes.len(), MAX_RECEIPT_LEN)?;
        let bad = |reason: &str| Error::Malformed {
            what: "receipt",
            reason: reason.to_owned(),
        };
        let rest = bytes
            .strip_prefix(RECEIPT_TAG)
            .ok_or_else(|| bad("missing veilgrid/receipt/v1 tag"))?;
        let mut r = Reader(rest);
        let request_hash = r.take::<32>().ok_or_else(|| bad("truncated"))?;
        let response_hash = r.take::<32>().ok_or_else(|| bad("truncated"))?;
        let provider_id = r.take::<32>().ok_or_else(|| bad("truncated"))?;
        let protocol_id = ProtocolId(r.take::<32>().ok_or_else(|| bad("truncated"))?);
        let price = u64::from_be_bytes(r.take::<8>().ok_or_else(|| bad("truncated"))?);
        let clen = u16::from_be_bytes(r.take::<2>().ok_or_else(|| bad("truncated"))?) as usize;
        limits::check_len("receipt currency id", clen, MAX_CURRENCY_LEN)?;
        let currency = r.slice(clen).ok_or_else(|| bad("truncated"))?;
        let currency =
            String::from_utf8(currency.to_vec()).map_err(|_| bad("currency id is not UTF-8"))?;
        let started_at_ms = u64::from_be_bytes(r.take::<8>().ok_or_else(|| bad("truncated"))?);
        let finished_at_ms = u64::from_be_bytes(r.take::<8>().ok_or_else(|| bad("truncated"))?);
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self {
            request_hash,
            response_hash,
            provider_id,
            protocol_id,
            price,
            currency,
            started_at_ms,
            finished_at_ms,
        })
    }

    /// Sign this receipt. The identity must be the one named in `provider_id`.
    pub fn sign(self, identity: &SigningIdentity) -> Result<SignedReceipt, Error> {
        if identity.verifier().to_bytes() != self.provider_id {
            return Err(Error::Malformed {
                what: "receipt",
                reason: "provider_id is not the signing identity's public key".into(),
            });
        }
        let signature = identity.sign(&self.canonical_bytes()?);
        Ok(SignedReceipt {
            receipt: self,
            signature,
        })
    }
}

impl SignedReceipt {
    /// Verify the signature against the key the receipt names as its provider.
    pub fn verify(&self) -> Result<(), Error> {
        let key = VerifierKey::from_bytes(&self.receipt.provider_id)?;
        key.verify_named("receipt", &self.receipt.canonical_bytes()?, &self.signature)
    }

    /// Verify that this receipt is for exactly `payload` under `protocol` and
    /// answered with exactly `completion`, and that its signature holds.
    pub fn verify_for(
        &self,
        protocol: &ProtocolId,
        payload: &[u8],
        completion: &[u8],
    ) -> Result<(), Error> {
        self.verify()?;
        let bad = |reason: &str| Error::Malformed {
            what: "receipt",
            reason: reason.to_owned(),
        };
        if self.receipt.protocol_id != *protocol {
            return Err(bad("protocol id does not match the request"));
        }
        if self.receipt.request_hash != request_hash(protocol, payload) {
            return Err(bad("request hash does not match the request"));
        }
        if self.receipt.response_hash != response_hash(completion) {
            return Err(bad("response hash does not match the completion"));
        }
        Ok(())
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn slice(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.slice(N).and_then(|s| s.try_into().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(id: &SigningIdentity) -> Receipt {
        let p = ProtocolId::from_name("veilgrid/echo/v1");
        Receipt {
            request_hash: request_hash(&p, b"ping"),
            response_hash: response_hash(b"ping"),
            provider_id: id.verifier().to_bytes(),
            protocol_id: p,
            price: 7,
            currency: "VGC".into(),
            started_at_ms: 1,
            finished_at_ms: 2,
        }
    }

    #[test]
    fn signed_receipt_verifies_and_binds_request_and_response() {
        let id = SigningIdentity::generate();
        let signed = sample(&id).sign(&id).unwrap();
        signed.verify().unwrap();
        let p = ProtocolId::from_name("veilgrid/echo/v1");
        let mut pieces = RequestHasher::new(&p);
        pieces.update(b"pi");
        pieces.update(b"");
        pieces.update(b"ng");
        assert_eq!(pieces.finish(), request_hash(&p, b"ping"));
        let p = ProtocolId::from_name("veilgrid/echo/v1");
        signed.verify_for(&p, b"ping", b"ping").unwrap();
        assert!(signed.verify_for(&p, b"pong", b"ping").is_err());
        assert!(signed.verify_for(&p, b"ping", b"pong").is_err());
        let other = ProtocolId::from_name("veilgrid/echo/v2");
        assert!(signed.verify_for(&other, b"ping", b"ping").is_err());
    }

    #[test]
    fn cannot_sign_in_another_providers_name() {
        let id = SigningIdentity::generate();
        let mallory = SigningIdentity::generate();
        assert!(sample(&id).sign(&mallory).is_err());
        // A signature by another key over a receipt naming `id` fails.
        let mut forged = sample(&id).sign(&id).unwrap();
        forged.signature = mallory.sign(&forged.receipt.canonical_bytes().unwrap());
        assert!(forged.verify().is_err());
    }

    #[test]
    fn every_byte_flip_breaks_the_signature() {
        let id = SigningIdentity::generate();
        let signed = sample(&id).sign(&id).unwrap();
        let bytes = signed.receipt.canonical_bytes().unwrap();
        for i in RECEIPT_TAG.len()..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            if let Ok(r) = Receipt::from_canonical_bytes(&b) {
                let tampered = SignedReceipt {
                    receipt: r,
                    signature: signed.signature,
                };
                assert!(
                    tampered.verify().is_err(),
                    "flip at byte {i} still verifies"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn canonical_round_trip(price: u64, cur in "[A-Z]{0,64}", s: u64, f: u64, h: [u8; 32]) {
            let id = SigningIdentity::generate();
            let mut r = sample(&id);
            r.price = price; r.currency = cur; r.started_at_ms = s; r.finished_at_ms = f; r.request_hash = h;
            let bytes = r.canonical_bytes().unwrap();
            prop_assert_eq!(Receipt::from_canonical_bytes(&bytes).unwrap(), r);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Receipt::from_canonical_bytes(&bytes);
        }
    }
}
