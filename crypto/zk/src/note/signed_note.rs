//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 signatures (type `0x01`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use veilgrid_core::sign::{SigningIdentity, VerifierKey};

use crate::Error;
use crate::error::check_len;

/// Largest signed note accepted, in bytes (text plus signature lines).
pub const MAX_NOTE_BYTES: usize = 16 * 1024;
/// Most signature lines accepted on one note (the spec asks verifiers to accept at least 16).
pub const MAX_NOTE_SIGNATURES: usize = 32;
/// Longest key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 256;
/// Longest verifier key string (`name+keyid+base64`) accepted.
pub const MAX_VKEY_LEN: usize = MAX_KEY_NAME_LEN + 64;

/// The signed-note signature type byte of Ed25519.
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// The separator that starts every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]`: the key ID of an Ed25519 note key.
pub fn ed25519_key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, SIG_TYPE_ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Check a key name: non-empty, no Unicode spaces, no `+`, bounded length.
pub fn check_key_name(name: &str) -> Result<(), Error> {
    check_len("key name", name.len(), MAX_KEY_NAME_LEN)?;
    if name.is_empty() {
        return Err(Error::malformed("key name", "empty"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(Error::malformed(
            "key name",
            "contains a space, a control character or '+'",
        ));
    }
    Ok(())
}

/// Signs note texts under one key name with an Ed25519 [`SigningIdentity`].
pub struct NoteSigner {
    name: String,
    key_id: [u8; 4],
    identity: SigningIdentity,
}

impl core::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .field("identity", &self.identity)
            .finish()
    }
}

impl NoteSigner {
    /// A signer named `name` (for a log: its origin) using `identity`.
    pub fn new(name: impl Into<String>, identity: SigningIdentity) -> Result<Self, Error> {
        let name = name.into();
        check_key_name(&name)?;
        let key_id = ed25519_key_id(&name, &identity.verifier().to_bytes());
        Ok(Self {
            name,
            key_id,
            identity,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier matching this signer.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.identity.verifier(),
        }
    }

    /// The signature line `— <name> base64(key id || signature)\n` over `text`.
    pub fn signature_line(&self, text: &str) -> String {
        let sig = self.identity.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&sig);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }

    /// Sign `text` (which must be a valid note text ending in a newline) into a signed note.
    pub fn sign(&self, text: &str) -> Result<String, Error> {
        check_note_text(text)?;
        let mut note = String::with_capacity(text.len() + 1 + 128);
        note.push_str(text);
        note.push('\n');
        note.push_str(&self.signature_line(text));
        check_len("signed note", note.len(), MAX_NOTE_BYTES)?;
        Ok(note)
    }
}

/// A trusted note key: name, key ID and Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifierKey,
}

impl NoteVerifier {
    /// The verifier for `key` under `name`, with the key ID computed per the spec.
    pub fn new(name: impl Into<String>, key: VerifierKey) -> Result<Self, Error> {
        let name = name.into();
        check_key_name(&name)?;
        let key_id = ed25519_key_id(&name, &key.to_bytes());
        Ok(Self { name, key_id, key })
    }

    /// Parse a verifier key string `<name>+<hex key id>+<base64(0x01 || public key)>`
    /// (the `golang.org/x/mod/sumdb/note` encoding), checking the key ID.
    pub fn from_vkey(vkey: &str) -> Result<Self, Error> {
        check_len("verifier key", vkey.len(), MAX_VKEY_LEN)?;
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::malformed(
                "verifier key",
                "expected <name>+<key id>+<key>",
            ));
        };
        check_key_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::malformed(
                "verifier key",
                "key id is not 8 hex digits",
            ));
        }
        let key_bytes = B64
            .decode(key_b64)
            .map_err(|e| Error::malformed("verifier key", e.to_string()))?;
        let Some((&SIG_TYPE_ED25519, pk)) = key_bytes.split_first() else {
            return Err(Error::malformed(
                "verifier key",
                "not an Ed25519 (0x01) key",
            ));
        };
        let key = VerifierKey::from_bytes(pk)
            .map_err(|e| Error::malformed("verifier key", e.to_string()))?;
        let verifier = Self::new(name, key)?;
        if hex_lower(&verifier.key_id) != id_hex.to_ascii_lowercase() {
            return Err(Error::malformed(
                "verifier key",
                "key id does not match name and key",
            ));
        }
        Ok(verifier)
    }

    /// The verifier key string `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn to_vkey(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(SIG_TYPE_ED25519);
        key.extend_from_slice(&self.key.to_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex_lower(&self.key_id),
            B64.encode(key)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name on the line.
    pub name: String,
    /// The first four bytes of the decoded signature: the key ID.
    pub key_id: [u8; 4],
    /// The signature proper (64 bytes for Ed25519; other lengths for other types).
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// ASCII control characters (below U+0020) other than newline are not allowed in notes.
fn is_forbidden_control(c: char) -> bool {
    (c as u32) < 0x20 && c != '\n'
}

/// Check the rules a note text must follow: non-empty, ends in a newline,
/// no control characters but newline.
fn check_note_text(text: &str) -> Result<(), Error> {
    check_len("note text", text.len(), MAX_NOTE_BYTES)?;
    if !text.ends_with('\n') {
        return Err(Error::malformed("note text", "does not end with a newline"));
    }
    if text.chars().any(is_forbidden_control) {
        return Err(Error::malformed(
            "note text",
            "contains a control character",
        ));
    }
    Ok(())
}

impl SignedNote {
    /// Parse a signed note (size-limited; strict about every rule of the spec).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        check_len("signed note", bytes.len(), MAX_NOTE_BYTES)?;
        let s = core::str::from_utf8(bytes)
            .map_err(|_| Error::malformed("signed note", "not valid UTF-8"))?;
        if s.chars().any(is_forbidden_control) {
            return Err(Error::malformed(
                "signed note",
                "contains a control character",
            ));
        }
        if !s.ends_with('\n') {
            return Err(Error::malformed(
                "signed note",
                "does not end with a newline",
            ));
        }
        // The text is separated from the signatures by the last empty line.
        let Some(split) = s.rfind("\n\n") else {
            return Err(Error::malformed(
                "signed note",
                "no blank line before the signatures",
            ));
        };
        let text = &s[..=split];
        let sig_block = &s[split + 2..];
        if sig_block.is_empty() {
            return Err(Error::malformed("signed note", "no signature lines"));
        }
        let mut signatures = Vec::new();
        for line in sig_block.split_terminator('\n') {
            if signatures.len() == MAX_NOTE_SIGNATURES {
                return Err(Error::TooLarge {
                    what: "signature lines",
                    actual: sig_block.split_terminator('\n').count(),
                    limit: MAX_NOTE_SIGNATURES,
                });
            }
            signatures.push(parse_signature_line(line)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note text (unverified until [`Self::verify`] succeeds), including its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Verify the note against one trusted key. Signatures by other keys are
    /// ignored; a signature by the trusted key that fails rejects the note; at
    /// least one signature by the trusted key must verify.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<(), Error> {
        let mut verified = false;
        for sig in &self.signatures {
            if sig.name != verifier.name || sig.key_id != verifier.key_id {
                continue;
            }
            verifier
                .key
                .verify(self.text.as_bytes(), &sig.signature)
                .map_err(|_| Error::BadSignature {
                    key_name: sig.name.clone(),
                })?;
            verified = true;
        }
        if verified {
            Ok(())
        } else {
            Err(Error::NoTrustedSignature {
                key_name: verifier.name.clone(),
            })
        }
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, Error> {
    let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
        Error::malformed(
            "signature line",
            "does not start with an em dash and a space",
        )
    })?;
    let (name, blob) = rest
        .split_once(' ')
        .ok_or_else(|| Error::malformed("signature line", "no space after the key name"))?;
    check_key_name(name)?;
    let raw = B64
        .decode(blob)
        .map_err(|e| Error::malformed("signature line", e.to_string()))?;
    if raw.len() < 5 {
        return Err(Error::malformed(
            "signature line",
            "signature shorter than key id plus one byte",
        ));
    }
    let (id, signature) = raw.split_at(4);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: [id[0], id[1], id[2], id[3]],
        signature: signature.to_vec(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::new("example.com/log", SigningIdentity::generate()).unwrap()
    }

    #[test]
    fn sign_then_parse_and_verify() {
        let s = signer();
        let note = s.sign("hello\nworld\n").unwrap();
        let parsed = SignedNote::parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.text(), "hello\nworld\n");
        parsed.verify(&s.verifier()).unwrap();
        // Another key with the same name is a different key id: ignored, so no trusted signature.
        let other = signer();
        assert!(matches!(
            parsed.verify(&other.verifier()),
            Err(Error::NoTrustedSignature { .. })
        ));
    }

    #[test]
    fn vkey_round_trip_and_tamper() {
        let v = signer().verifier();
        let vkey = v.to_vkey();
        assert_eq!(NoteVerifier::from_vkey(&vkey).unwrap(), v);
        let renamed = vkey.replacen("example.com/log", "example.com/lag", 1);
        assert!(NoteVerifier::from_vkey(&renamed).is_err());
        assert!(NoteVerifier::from_vkey("nothing").is_err());
        assert!(NoteVerifier::from_vkey(&"a".repeat(MAX_VKEY_LEN + 1)).is_err());
    }

    #[test]
    fn structural_errors_are_typed() {
        let s = signer();
        let note = s.sign("text\n").unwrap();
        for bad in [
            "text\n".to_string(),                         // no signatures
            note.trim_end().to_string(),                  // no final newline
            note.replace('\u{2014}', "-"),                // wrong dash
            note.replacen("text", "te\u{7}xt", 1),        // control char
            format!("{note}garbage\n"),                   // bad signature line
            note.replacen("example.com/log ", "a+b ", 1), // bad key name
        ] {
            let err = SignedNote::parse(bad.as_bytes()).unwrap_err();
            assert!(
                matches!(err, Error::Malformed { .. }),
                "{bad:?} gave {err:?}"
            );
        }
        assert!(matches!(
            SignedNote::parse(&vec![b'a'; MAX_NOTE_BYTES + 1]),
            Err(Error::TooLarge { .. })
        ));
        assert!(s.sign("no newline").is_err());
    }

    #[test]
    fn too_many_signature_lines_are_refused() {
        let s = signer();
        let text = "t\n";
        let mut note = format!("{text}\n");
        for _ in 0..=MAX_NOTE_SIGNATURES {
            note.push_str(&s.signature_line(text));
        }
        assert!(matches!(
            SignedNote::parse(note.as_bytes()),
            Err(Error::TooLarge { .. })
        ));
    }
}
