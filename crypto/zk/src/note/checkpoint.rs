//! C2SP checkpoints (<https://c2sp.org/tlog-checkpoint>): a signed note whose
//! text is `origin`, `tree size`, `base64(root hash)` and optional extension lines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use veilgrid_core::sign::{SigningIdentity, VerifierKey};

use super::signed_note::{NoteSigner, NoteVerifier, SignedNote};
use crate::Error;
use crate::error::check_len;
use crate::merkle::{HASH_LEN, Hash, verify_consistency};

/// Most extension lines accepted on a checkpoint.
pub const MAX_CHECKPOINT_EXTENSIONS: usize = 8;

/// The unsigned body of a checkpoint: one tree head of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `veilgrid.example/audit-log`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash at that size.
    pub root: Hash,
    /// Optional opaque extension lines (not recommended by the spec; we emit none).
    pub extensions: Vec<String>,
}

fn check_line(what: &'static str, line: &str) -> Result<(), Error> {
    if line.is_empty() {
        return Err(Error::malformed(what, "empty line"));
    }
    if line.contains('\n') {
        return Err(Error::malformed(what, "contains a newline"));
    }
    Ok(())
}

/// Parse an ASCII decimal with no leading zeroes (unless it is `0`) into a `u64`.
pub(crate) fn parse_decimal(what: &'static str, s: &str) -> Result<u64, Error> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::malformed(what, "not an ASCII decimal number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(Error::malformed(what, "leading zero"));
    }
    s.parse::<u64>()
        .map_err(|_| Error::malformed(what, "does not fit in 64 bits"))
}

/// Decode a base64 SHA-256 hash (strict, canonical padding).
pub(crate) fn parse_hash(what: &'static str, s: &str) -> Result<Hash, Error> {
    check_len(what, s.len(), 44)?;
    let bytes = B64
        .decode(s)
        .map_err(|e| Error::malformed(what, e.to_string()))?;
    <[u8; HASH_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| Error::malformed(what, format!("{} bytes, expected 32", bytes.len())))
}

impl Checkpoint {
    /// A checkpoint with no extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: `origin\nsize\nbase64(root)\n[extension\n]...`.
    pub fn to_note_text(&self) -> Result<String, Error> {
        check_line("checkpoint origin", &self.origin)?;
        check_len(
            "checkpoint extension lines",
            self.extensions.len(),
            MAX_CHECKPOINT_EXTENSIONS,
        )?;
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for ext in &self.extensions {
            check_line("checkpoint extension line", ext)?;
            text.push_str(ext);
            text.push('\n');
        }
        Ok(text)
    }

    /// Parse a checkpoint note text (ending in a newline).
    pub fn from_note_text(text: &str) -> Result<Self, Error> {
        check_len("checkpoint", text.len(), super::MAX_NOTE_BYTES)?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| Error::malformed("checkpoint", "does not end with a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Error::malformed("checkpoint", "fewer than three lines"));
        };
        check_line("checkpoint origin", origin)?;
        let size = parse_decimal("checkpoint tree size", size)?;
        let root = parse_hash("checkpoint root hash", root)?;
        let mut extensions = Vec::new();
        for ext in lines {
            check_line("checkpoint extension line", ext)?;
            if extensions.len() == MAX_CHECKPOINT_EXTENSIONS {
                return Err(Error::TooLarge {
                    what: "checkpoint extension lines",
                    actual: MAX_CHECKPOINT_EXTENSIONS + 1,
                    limit: MAX_CHECKPOINT_EXTENSIONS,
                });
            }
            extensions.push(ext.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// A log's signing key: signs checkpoints under the key name = origin.
#[derive(Debug)]
pub struct LogSigner {
    signer: NoteSigner,
}

impl LogSigner {
    /// The signer of the log `origin` (the origin is also the note key name).
    pub fn new(origin: impl Into<String>, identity: SigningIdentity) -> Result<Self, Error> {
        Ok(Self {
            signer: NoteSigner::new(origin, identity)?,
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// What auditors need to verify this log's checkpoints.
    pub fn verifier(&self) -> LogVerifier {
        LogVerifier {
            note: self.signer.verifier(),
        }
    }

    /// Sign the tree head `(size, root)` of this log.
    pub fn sign(&self, size: u64, root: Hash) -> Result<SignedCheckpoint, Error> {
        let checkpoint = Checkpoint::new(self.origin(), size, root);
        let note = self.signer.sign(&checkpoint.to_note_text()?)?;
        Ok(SignedCheckpoint { checkpoint, note })
    }
}

/// What an auditor holds to verify a log's checkpoints offline: its origin and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogVerifier {
    note: NoteVerifier,
}

impl LogVerifier {
    /// The verifier of the log `origin` whose checkpoints `key` signs.
    pub fn new(origin: impl Into<String>, key: VerifierKey) -> Result<Self, Error> {
        Ok(Self {
            note: NoteVerifier::new(origin, key)?,
        })
    }

    /// Parse the log's verifier key string `<origin>+<key id>+<base64(0x01 || key)>`.
    pub fn from_vkey(vkey: &str) -> Result<Self, Error> {
        Ok(Self {
            note: NoteVerifier::from_vkey(vkey)?,
        })
    }

    /// The verifier key string to publish.
    pub fn to_vkey(&self) -> String {
        self.note.to_vkey()
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.note.name()
    }

    /// The note verifier (key name, key ID, public key).
    pub fn note_verifier(&self) -> &NoteVerifier {
        &self.note
    }

    /// Parse a signed checkpoint, verify the log's signature on it and that it is this log's.
    pub fn verify_checkpoint(&self, note: &[u8]) -> Result<SignedCheckpoint, Error> {
        let parsed = SignedNote::parse(note)?;
        parsed.verify(&self.note)?;
        let checkpoint = Checkpoint::from_note_text(parsed.text())?;
        if checkpoint.origin != self.origin() {
            return Err(Error::OriginMismatch {
                expected: self.origin().to_owned(),
                found: checkpoint.origin,
            });
        }
        // The note bytes were checked to be UTF-8 by the parser.
        let note = String::from_utf8_lossy(note).into_owned();
        Ok(SignedCheckpoint { checkpoint, note })
    }
}

/// A checkpoint whose signature has been made or verified: only [`LogSigner::sign`]
/// and [`LogVerifier::verify_checkpoint`] produce one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: String,
}

impl SignedCheckpoint {
    /// The tree head.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Tree size.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// Root hash.
    pub fn root(&self) -> &Hash {
        &self.checkpoint.root
    }

    /// The signed note, exactly as signed or received.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Verify that this checkpoint extends `older` (RFC 9162 consistency):
    /// failure means the log forked (or the proof is wrong).
    pub fn verify_extends(&self, older: &SignedCheckpoint, proof: &[Hash]) -> Result<(), Error> {
        if older.checkpoint.origin != self.checkpoint.origin {
            return Err(Error::OriginMismatch {
                expected: self.checkpoint.origin.clone(),
                found: older.checkpoint.origin.clone(),
            });
        }
        verify_consistency(older.size(), self.size(), older.root(), self.root(), proof)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_text_round_trip_and_strictness() {
        let cp = Checkpoint::new("example.com/log", 20852163, [7u8; 32]);
        let text = cp.to_note_text().unwrap();
        assert_eq!(
            text,
            "example.com/log\n20852163\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(Checkpoint::from_note_text(&text).unwrap(), cp);
        for bad in [
            "example.com/log\n020852163\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n99999999999999999999\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==\n",
            "example.com/log\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd=\n",
            "example.com/log\n1\n",
            "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "example.com/log\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n",
            "example.com/log\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
        ] {
            assert!(
                matches!(
                    Checkpoint::from_note_text(bad),
                    Err(Error::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn signed_checkpoint_verifies_only_under_its_log_key_and_origin() {
        let signer = LogSigner::new("example.com/log", SigningIdentity::generate()).unwrap();
        let signed = signer.sign(3, [1u8; 32]).unwrap();
        let v = signer.verifier();
        let again = v.verify_checkpoint(signed.note().as_bytes()).unwrap();
        assert_eq!(again, signed);
        let v2 = LogVerifier::from_vkey(&v.to_vkey()).unwrap();
        assert_eq!(v2, v);
        v2.verify_checkpoint(signed.note().as_bytes()).unwrap();

        let other = LogSigner::new("example.com/log", SigningIdentity::generate()).unwrap();
        assert!(matches!(
            other.verifier().verify_checkpoint(signed.note().as_bytes()),
            Err(Error::NoTrustedSignature { .. })
        ));
        // Same key, different origin: the key id differs, so the signature is not trusted.
        let same_key = SigningIdentity::generate();
        let a = LogSigner::new(
            "a.example/log",
            SigningIdentity::from_secret_bytes(&same_key.secret_bytes()),
        )
        .unwrap();
        let b = LogSigner::new("b.example/log", same_key).unwrap();
        let from_a = a.sign(1, [0; 32]).unwrap();
        assert!(
            b.verifier()
                .verify_checkpoint(from_a.note().as_bytes())
                .is_err()
        );
    }
}
