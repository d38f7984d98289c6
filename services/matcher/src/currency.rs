//! Personal currencies: every agent issues its own and registers it with the three
//! nodes (id, display symbol, the issuer's Ed25519 key, signed by the issuer). Rounds
//! are only opened for pairs of registered currencies. The node's numeraire is
//! registered by configuration (no issuer key).
//!
//! An id belongs to the first issuer that registers it: registering it again with
//! the same key and symbol is a no-op, with anything else it is refused.

use std::collections::BTreeMap;

use bytes::Bytes;
use veilgrid_core::sign::{SigningIdentity, VerifierKey};
use veilgrid_proto::matching::v1 as pb;

use crate::MatchError;

/// Domain tag of an issuer's signature over a registration.
pub const CURRENCY_TAG: &[u8] = b"veilgrid/match/currency/v1\0";
/// Longest currency id.
pub const MAX_ID_LEN: usize = 64;
/// Longest display symbol.
pub const MAX_SYMBOL_LEN: usize = 16;

/// The bytes an issuer signs.
pub fn registration_message(id: &str, symbol: &str, issuer_key: &[u8]) -> Vec<u8> {
    let mut m = CURRENCY_TAG.to_vec();
    for part in [id.as_bytes(), symbol.as_bytes()] {
        // lengths are checked (≤ 64) before anything is signed or verified
        m.push(part.len().min(255) as u8);
        m.extend_from_slice(part);
    }
    m.extend_from_slice(issuer_key);
    m
}

/// Check an id: `1..=64` bytes of `[A-Za-z0-9_-]`.
pub fn check_id(id: &str) -> Result<(), MatchError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(MatchError::BadRequest(format!(
            "currency id {id:?} must be 1..={MAX_ID_LEN} characters of A-Z, a-z, 0-9, _ or -"
        )))
    }
}

/// A registration signed by `issuer`.
pub fn sign_registration(
    issuer: &SigningIdentity,
    id: &str,
    symbol: &str,
) -> Result<pb::Currency, MatchError> {
    check_id(id)?;
    check_symbol(symbol)?;
    let key = issuer.verifier().to_bytes();
    let signature = issuer.sign(&registration_message(id, symbol, &key));
    Ok(pb::Currency {
        id: id.to_owned(),
        symbol: symbol.to_owned(),
        issuer_key: Bytes::copy_from_slice(&key),
        signature: Bytes::copy_from_slice(&signature),
    })
}

fn check_symbol(symbol: &str) -> Result<(), MatchError> {
    if symbol.is_empty() || symbol.len() > MAX_SYMBOL_LEN || symbol.chars().any(char::is_control) {
        return Err(MatchError::BadRequest(format!(
            "currency symbol must be 1..={MAX_SYMBOL_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Check a registration's fields and the issuer's signature.
pub fn verify_registration(c: &pb::Currency) -> Result<(), MatchError> {
    check_id(&c.id)?;
    check_symbol(&c.symbol)?;
    let key = VerifierKey::from_bytes(&c.issuer_key)
        .map_err(|e| MatchError::BadRequest(format!("issuer key of currency {}: {e}", c.id)))?;
    key.verify_named(
        "currency registration",
        &registration_message(&c.id, &c.symbol, &c.issuer_key),
        &c.signature,
    )?;
    Ok(())
}

/// The currencies one node knows.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_id: BTreeMap<String, pb::Currency>,
}

impl Registry {
    /// A registry holding only the numeraire (registered by configuration).
    pub fn with_numeraire(numeraire: &str) -> Self {
        let mut by_id = BTreeMap::new();
        if !numeraire.is_empty() {
            by_id.insert(
                numeraire.to_owned(),
                pb::Currency {
                    id: numeraire.to_owned(),
                    symbol: numeraire.chars().take(MAX_SYMBOL_LEN).collect(),
                    ..Default::default()
                },
            );
        }
        Registry { by_id }
    }

    /// Register `c` after checking its signature; `Ok(false)` when the identical
    /// registration is already there.
    pub fn register(&mut self, c: pb::Currency) -> Result<bool, MatchError> {
        verify_registration(&c)?;
        match self.by_id.get(&c.id) {
            Some(old) if old.issuer_key == c.issuer_key && old.symbol == c.symbol => Ok(false),
            Some(old) if old.issuer_key.is_empty() => Err(MatchError::CurrencyTaken(format!(
                "{} is the nodes' numeraire",
                c.id
            ))),
            Some(_) => Err(MatchError::CurrencyTaken(format!(
                "{} is registered by another issuer (or with another symbol)",
                c.id
            ))),
            None => {
                self.by_id.insert(c.id.clone(), c);
                Ok(true)
            }
        }
    }

    /// Whether `id` is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Every registration, by id.
    pub fn all(&self) -> Vec<pb::Currency> {
        self.by_id.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_signed_and_ids_belong_to_their_first_issuer() {
        let alice = SigningIdentity::generate();
        let mallory = SigningIdentity::generate();
        let mut r = Registry::with_numeraire("VG");
        assert!(r.contains("VG"));
        let alc = sign_registration(&alice, "ALC", "Ⓐ").unwrap();
        assert!(r.register(alc.clone()).unwrap());
        assert!(
            !r.register(alc.clone()).unwrap(),
            "identical again is a no-op"
        );
        // someone else cannot take the id, nor the numeraire
        let stolen = sign_registration(&mallory, "ALC", "Ⓐ").unwrap();
        assert!(matches!(
            r.register(stolen),
            Err(MatchError::CurrencyTaken(_))
        ));
        let vg = sign_registration(&mallory, "VG", "VG").unwrap();
        assert!(matches!(r.register(vg), Err(MatchError::CurrencyTaken(_))));
        // a forged signature or an altered field fails verification
        let mut forged = alc.clone();
        forged.symbol = "A".into();
        assert!(verify_registration(&forged).is_err());
        let mut swapped = sign_registration(&mallory, "MAL", "M").unwrap();
        swapped.issuer_key = alc.issuer_key.clone();
        assert!(r.register(swapped).is_err());
        // bad ids and symbols
        assert!(sign_registration(&alice, "", "A").is_err());
        assert!(sign_registration(&alice, "A/B", "A").is_err());
        assert!(sign_registration(&alice, &"x".repeat(65), "A").is_err());
        assert!(sign_registration(&alice, "OK", "").is_err());
        assert!(sign_registration(&alice, "OK", "\n").is_err());
        assert_eq!(
            r.all().iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["ALC", "VG"]
        );
    }
}
