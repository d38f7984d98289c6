//! Signed notes and checkpoints in the C2SP formats.
#![doc = include_str!("../../docs/notes.md")]

mod checkpoint;
mod signed_note;

pub use checkpoint::{
    Checkpoint, LogSigner, LogVerifier, MAX_CHECKPOINT_EXTENSIONS, SignedCheckpoint,
};
pub(crate) use checkpoint::{parse_decimal, parse_hash};
pub use signed_note::{
    MAX_KEY_NAME_LEN, MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES, MAX_VKEY_LEN, NoteSignature, NoteSigner,
    NoteVerifier, SIG_TYPE_ED25519, SignedNote, check_key_name, ed25519_key_id,
};
