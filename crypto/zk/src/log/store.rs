//! Where a transparency log keeps its entries and the checkpoints it signed.

use crate::Error;

/// A callback visiting `(index, entry)` pairs in order (see [`LogStore::scan`]).
pub type EntryVisitor<'a> = dyn FnMut(u64, &[u8]) -> Result<(), Error> + 'a;

/// Storage of a [`TransparencyLog`](super::TransparencyLog): an append-only list
/// of entries and an append-only list of the signed checkpoints (note text).
///
/// The log never trusts the store: on [`open`](super::TransparencyLog::open) it
/// rehashes every entry and compares the tree with every stored checkpoint, and
/// before signing a new checkpoint it rereads the entries appended since the last
/// one. A store that lost or changed an entry makes the log refuse to start or
/// to sign, instead of silently forking.
///
/// Implementations report their own failures as [`Error::Store`].
pub trait LogStore {
    /// Append `entry` at index [`len`](Self::len).
    fn append(&mut self, entry: &[u8]) -> Result<(), Error>;

    /// The entry at `index` (an error if `index >= len()`).
    fn get(&self, index: u64) -> Result<Vec<u8>, Error>;

    /// Number of entries.
    fn len(&self) -> Result<u64, Error>;

    /// Whether the store holds no entries.
    fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Record a checkpoint the log has just signed (the signed note text).
    fn append_checkpoint(&mut self, note: &str) -> Result<(), Error>;

    /// Number of recorded checkpoints.
    fn checkpoint_count(&self) -> Result<u64, Error>;

    /// Recorded checkpoint number `i`, oldest first.
    fn checkpoint(&self, i: u64) -> Result<String, Error>;

    /// Visit the entries `[from, to)` in order. The default calls [`get`](Self::get)
    /// for each; a database can override it with one range query.
    fn scan(&self, from: u64, to: u64, visit: &mut EntryVisitor<'_>) -> Result<(), Error> {
        for i in from..to {
            visit(i, &self.get(i)?)?;
        }
        Ok(())
    }
}

/// A [`LogStore`] in memory (tests, benchmarks, and the embedded single-process mode
/// before the service layer adds persistence).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    entries: Vec<Vec<u8>>,
    checkpoints: Vec<String>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding exactly these entries and checkpoint notes (e.g. restored from a snapshot).
    pub fn from_parts(entries: Vec<Vec<u8>>, checkpoints: Vec<String>) -> Self {
        Self {
            entries,
            checkpoints,
        }
    }

    /// The entries and checkpoint notes held.
    pub fn into_parts(self) -> (Vec<Vec<u8>>, Vec<String>) {
        (self.entries, self.checkpoints)
    }
}

impl LogStore for MemoryStore {
    fn append(&mut self, entry: &[u8]) -> Result<(), Error> {
        self.entries.push(entry.to_vec());
        Ok(())
    }

    fn get(&self, index: u64) -> Result<Vec<u8>, Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
            .cloned()
            .ok_or(Error::IndexOutOfRange {
                index,
                size: self.entries.len() as u64,
            })
    }

    fn len(&self) -> Result<u64, Error> {
        Ok(self.entries.len() as u64)
    }

    fn append_checkpoint(&mut self, note: &str) -> Result<(), Error> {
        self.checkpoints.push(note.to_owned());
        Ok(())
    }

    fn checkpoint_count(&self) -> Result<u64, Error> {
        Ok(self.checkpoints.len() as u64)
    }

    fn checkpoint(&self, i: u64) -> Result<String, Error> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.checkpoints.get(i))
            .cloned()
            .ok_or_else(|| Error::Store(format!("no stored checkpoint #{i}")))
    }

    fn scan(&self, from: u64, to: u64, visit: &mut EntryVisitor<'_>) -> Result<(), Error> {
        for i in from..to {
            let entry = usize::try_from(i)
                .ok()
                .and_then(|j| self.entries.get(j))
                .ok_or(Error::IndexOutOfRange {
                    index: i,
                    size: self.entries.len() as u64,
                })?;
            visit(i, entry)?;
        }
        Ok(())
    }
}
