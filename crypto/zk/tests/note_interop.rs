//! Interoperability of the signed-note code with the reference implementation
//! (golang.org/x/mod/sumdb/note): its published key, note and signature must be
//! reproduced byte for byte (Ed25519 is deterministic), and its verifier key parsed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use veilgrid_core::sign::SigningIdentity;
use veilgrid_zk::Error;
use veilgrid_zk::note::{NoteSigner, NoteVerifier, SignedNote, ed25519_key_id};

fn kat() -> Value {
    let v: Value = serde_json::from_str(include_str!("data/rfc6962_vectors.json")).unwrap();
    v["note_kat"].clone()
}

fn reference_signer(kat: &Value) -> NoteSigner {
    // PRIVATE+KEY+<name>+<key id>+base64(0x01 || 32-byte Ed25519 seed)
    let skey = kat["signer_key"].as_str().unwrap();
    let parts: Vec<&str> = skey.splitn(5, '+').collect();
    assert_eq!(parts[..2], ["PRIVATE", "KEY"]);
    let raw = B64.decode(parts[4]).unwrap();
    assert_eq!(raw[0], 0x01);
    let seed: [u8; 32] = raw[1..].try_into().unwrap();
    NoteSigner::new(parts[2], SigningIdentity::from_secret_bytes(&seed)).unwrap()
}

#[test]
fn signing_reproduces_the_reference_note_byte_for_byte() {
    let kat = kat();
    let signer = reference_signer(&kat);
    let note = signer.sign(kat["text"].as_str().unwrap()).unwrap();
    assert_eq!(note, kat["signed_note"].as_str().unwrap());
    assert_eq!(
        signer.verifier().to_vkey(),
        kat["verifier_key"].as_str().unwrap()
    );
}

#[test]
fn the_reference_note_verifies_under_the_reference_verifier_key() {
    let kat = kat();
    let verifier = NoteVerifier::from_vkey(kat["verifier_key"].as_str().unwrap()).unwrap();
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(
        ed25519_key_id("PeterNeumann", &verifier.key().to_bytes()),
        verifier.key_id()
    );
    let note = SignedNote::parse(kat["signed_note"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(note.text(), kat["text"].as_str().unwrap());
    note.verify(&verifier).unwrap();

    // One changed character of the text: the known key's signature fails, and that rejects the note.
    let tampered = kat["signed_note"]
        .as_str()
        .unwrap()
        .replacen("cryptography", "cryptographY", 1);
    let parsed = SignedNote::parse(tampered.as_bytes()).unwrap();
    assert_eq!(
        parsed.verify(&verifier),
        Err(Error::BadSignature {
            key_name: "PeterNeumann".into()
        })
    );
}

#[test]
fn unknown_signatures_are_ignored_but_one_trusted_signature_is_required() {
    let kat = kat();
    let verifier = NoteVerifier::from_vkey(kat["verifier_key"].as_str().unwrap()).unwrap();
    let text = kat["text"].as_str().unwrap();
    let witness = NoteSigner::new("witness.example", SigningIdentity::generate()).unwrap();
    // Reference signature plus a cosignature by an unknown key, in either order.
    let reference_line = kat["signed_note"].as_str().unwrap()[text.len() + 1..].to_owned();
    for lines in [
        [reference_line.clone(), witness.signature_line(text)],
        [witness.signature_line(text), reference_line.clone()],
    ] {
        let note = format!("{text}\n{}{}", lines[0], lines[1]);
        SignedNote::parse(note.as_bytes())
            .unwrap()
            .verify(&verifier)
            .unwrap();
    }
    // Only the unknown key: rejected.
    let note = format!("{text}\n{}", witness.signature_line(text));
    assert!(matches!(
        SignedNote::parse(note.as_bytes())
            .unwrap()
            .verify(&verifier),
        Err(Error::NoTrustedSignature { .. })
    ));
}
