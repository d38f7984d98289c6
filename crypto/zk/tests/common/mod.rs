//! Shared helpers of the integration tests: signed receipts and a store the test can tamper with.
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::rc::Rc;

use veilgrid_core::protocol::ProtocolId;
use veilgrid_core::receipt::{Receipt, SignedReceipt, request_hash, response_hash};
use veilgrid_core::sign::SigningIdentity;
use veilgrid_zk::Error;
use veilgrid_zk::log::{LogStore, MemoryStore, encode_receipt_entry};

/// A receipt for request number `i`, signed by `provider`.
pub fn signed_receipt(provider: &SigningIdentity, i: u64) -> SignedReceipt {
    let protocol = ProtocolId::from_name("veilgrid/echo/v1");
    let payload = format!("request {i}");
    Receipt {
        request_hash: request_hash(&protocol, payload.as_bytes()),
        response_hash: response_hash(payload.as_bytes()),
        provider_id: provider.verifier().to_bytes(),
        protocol_id: protocol,
        price: 10 + i,
        currency: "VGC".into(),
        started_at_ms: 1_700_000_000_000 + i,
        finished_at_ms: 1_700_000_000_100 + i,
    }
    .sign(provider)
    .unwrap()
}

/// The log entry of [`signed_receipt`].
pub fn receipt_entry(provider: &SigningIdentity, i: u64) -> Vec<u8> {
    encode_receipt_entry(&signed_receipt(provider, i)).unwrap()
}

/// A store shared between the log and the test, so the test can damage it while the log runs
/// (as a database edited behind the service's back would be). Also shows how to implement
/// [`LogStore`] on top of another store.
#[derive(Clone, Default)]
pub struct SharedStore(pub Rc<RefCell<MemoryStore>>);

impl SharedStore {
    pub fn parts(&self) -> (Vec<Vec<u8>>, Vec<String>) {
        self.0.borrow().clone().into_parts()
    }

    pub fn replace(&self, entries: Vec<Vec<u8>>, checkpoints: Vec<String>) {
        *self.0.borrow_mut() = MemoryStore::from_parts(entries, checkpoints);
    }
}

impl LogStore for SharedStore {
    fn append(&mut self, entry: &[u8]) -> Result<(), Error> {
        self.0.borrow_mut().append(entry)
    }
    fn get(&self, index: u64) -> Result<Vec<u8>, Error> {
        self.0.borrow().get(index)
    }
    fn len(&self) -> Result<u64, Error> {
        self.0.borrow().len()
    }
    fn append_checkpoint(&mut self, note: &str) -> Result<(), Error> {
        self.0.borrow_mut().append_checkpoint(note)
    }
    fn checkpoint_count(&self) -> Result<u64, Error> {
        self.0.borrow().checkpoint_count()
    }
    fn checkpoint(&self, i: u64) -> Result<String, Error> {
        self.0.borrow().checkpoint(i)
    }
}

/// A store whose appends fail (a full disk).
#[derive(Default)]
pub struct FailingStore(pub MemoryStore);

impl LogStore for FailingStore {
    fn append(&mut self, _entry: &[u8]) -> Result<(), Error> {
        Err(Error::Store("disk full".into()))
    }
    fn get(&self, index: u64) -> Result<Vec<u8>, Error> {
        self.0.get(index)
    }
    fn len(&self) -> Result<u64, Error> {
        self.0.len()
    }
    fn append_checkpoint(&mut self, note: &str) -> Result<(), Error> {
        self.0.append_checkpoint(note)
    }
    fn checkpoint_count(&self) -> Result<u64, Error> {
        self.0.checkpoint_count()
    }
    fn checkpoint(&self, i: u64) -> Result<String, Error> {
        self.0.checkpoint(i)
    }
}
