//! Personal currencies: every agent issues its own and registers it with the three
//! nodes (id, display symbol, the issuer's Ed25519 key, signed by the issuer). Rounds
//! are only opened for pairs of registered currencies. The node's numeraire is
//! registered by configuration (no issuer key).
//!
//! An id belongs to the first issuer that registers it: registering it again with
//! the same key and symbol is a no-op, with anything else it is refused.
//!
//! A node with a data directory keeps the registrations in `currencies.pb` there
//! (the protobuf `CurrenciesResponse`, rewritten atomically on every new
//! registration) and reloads them at start, checking every signature again.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use prost::Message;

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

/// Name of the registrations file in a node's data directory.
pub const FILE: &str = "currencies.pb";
/// Largest registrations file read back.
pub const MAX_FILE_LEN: usize = 16 << 20;

/// The currencies one node knows.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_id: BTreeMap<String, pb::Currency>,
    /// Where the registrations are kept (`None`: memory only).
    file: Option<PathBuf>,
}

fn storage(what: &'static str, path: &Path, reason: impl ToString) -> MatchError {
    MatchError::Storage {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
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
        Registry { by_id, file: None }
    }

    /// The registry kept in `dir/currencies.pb`: the numeraire plus every registration
    /// saved there (each signature checked again; a file that does not decode, or a
    /// registration that does not verify, is an error, not silently dropped).
    pub fn open(numeraire: &str, dir: &Path) -> Result<Self, MatchError> {
        let mut r = Self::with_numeraire(numeraire);
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                veilgrid_core::limits::check_len("currencies file", bytes.len(), MAX_FILE_LEN)?;
                let saved = pb::CurrenciesResponse::decode(bytes.as_slice())
                    .map_err(|e| storage("decoding", &path, e))?;
                for c in saved.currencies {
                    if c.issuer_key.is_empty() {
                        continue; // a numeraire (re-added from the configuration)
                    }
                    r.register(c)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| storage("creating", dir, e))?;
            }
            Err(e) => return Err(storage("reading", &path, e)),
        }
        r.file = Some(path);
        Ok(r)
    }

    fn save(&self) -> Result<(), MatchError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let bytes = pb::CurrenciesResponse {
            currencies: self
                .by_id
                .values()
                .filter(|c| !c.issuer_key.is_empty())
                .cloned()
                .collect(),
        }
        .encode_to_vec();
        let tmp = path.with_extension("pb.tmp");
        std::fs::write(&tmp, &bytes).map_err(|e| storage("writing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| storage("replacing", path, e))
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
                let id = c.id.clone();
                self.by_id.insert(id.clone(), c);
                if let Err(e) = self.save() {
                    self.by_id.remove(&id);
                    return Err(e);
                }
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

    #[test]
    fn registrations_survive_a_restart_and_a_tampered_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("vg-currencies-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let alice = SigningIdentity::generate();
        let alc = sign_registration(&alice, "ALC", "A").unwrap();
        {
            let mut r = Registry::open("VG", &dir).unwrap();
            assert!(r.register(alc.clone()).unwrap());
        }
        let mut again = Registry::open("VG", &dir).unwrap();
        assert!(again.contains("ALC") && again.contains("VG"));
        assert!(!again.register(alc.clone()).unwrap(), "still registered");
        let bob = SigningIdentity::generate();
        assert!(matches!(
            again.register(sign_registration(&bob, "ALC", "A").unwrap()),
            Err(MatchError::CurrencyTaken(_))
        ));
        // a registration altered on disk no longer verifies: the node refuses to start
        let mut forged = alc.clone();
        forged.symbol = "Z".into();
        let bytes = pb::CurrenciesResponse {
            currencies: vec![forged],
        }
        .encode_to_vec();
        std::fs::write(dir.join(FILE), bytes).unwrap();
        assert!(Registry::open("VG", &dir).is_err());
        std::fs::write(dir.join(FILE), b"\xff\xff\xff").unwrap();
        assert!(Registry::open("VG", &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
